//! `cpra gen --monitors N [--format yaml|json] [--target HOST:PORT]... [--mix ...] [--interval 60s] [--seed S] [--alert-log FILE] [--receiver URL] [--output FILE]`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{flags, EXIT_OK, EXIT_UNREADABLE};
use crate::limits::{MAX_GEN_MONITORS, MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use crate::manifest::duration::{format_ms, parse_go_duration};
use crate::manifest::gen::{parse_mix, write_manifest, GenOptions, DEFAULT_RECEIVER};
use crate::manifest::Format;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GenFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// How many monitors.
    #[arg(long, value_name = "N")]
    pub monitors: u64,
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: GenFormat,
    /// A target HOST:PORT; repeat to spread monitors over several (round-robin).
    #[arg(long = "target", value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub targets: Vec<String>,
    /// Pulse types and weights, e.g. http=80,tcp=10,icmp=10 (types: http, tcp, icmp, dns, udp, tls).
    #[arg(long, default_value = "http=80,tcp=10,icmp=10")]
    pub mix: String,
    /// Check interval of every monitor (Go duration).
    #[arg(long, default_value = "60s")]
    pub interval: String,
    /// Seed: the same seed gives the same manifest.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The file yellow alerts are written to (log notifier); default: cpra's own log.
    #[arg(long, value_name = "FILE")]
    pub alert_log: Option<String>,
    /// Base URL of the receiver red and green alerts go to: a webhook to URL/alerts and a
    /// PagerDuty stand-in to URL/pagerduty.
    #[arg(long, value_name = "URL", default_value = DEFAULT_RECEIVER)]
    pub receiver: String,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(args: &GenArgs) -> i32 {
    if let Err(e) = flags::count("--monitors", args.monitors, MAX_GEN_MONITORS) {
        eprintln!("error: {e}");
        return EXIT_UNREADABLE;
    }
    let mix = match parse_mix(&args.mix) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: --mix: {e}");
            return EXIT_UNREADABLE;
        }
    };
    // What the loader accepts, so the output validates.
    if let Err(e) = parse_go_duration(&args.interval).and_then(|ns| {
        let ms = ns / 1_000_000;
        if ms < u64::from(MIN_INTERVAL_MS) || ms > u64::from(MAX_INTERVAL_MS) {
            Err(format!(
                "must be from {MIN_INTERVAL_MS}ms to {}",
                format_ms(MAX_INTERVAL_MS.into())
            ))
        } else {
            Ok(ns)
        }
    }) {
        eprintln!("error: --interval '{}': {e}; write e.g. 60s", args.interval);
        return EXIT_UNREADABLE;
    }
    for t in &args.targets {
        let ok = t
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            eprintln!("error: --target '{t}' is not HOST:PORT (e.g. 127.0.0.1:8080)");
            return EXIT_UNREADABLE;
        }
    }
    // The loader's own URL check, so the output validates.
    for path in ["/alerts", "/pagerduty"] {
        let url = format!("{}{path}", args.receiver.trim_end_matches('/'));
        if let Err(p) = crate::manifest::check::http_url(&url) {
            eprintln!("error: --receiver '{}': {}; {}", args.receiver, p.message, p.hint);
            return EXIT_UNREADABLE;
        }
    }
    if args.alert_log.as_deref().is_some_and(str::is_empty) {
        eprintln!("error: --alert-log is empty; leave it out to write yellow alerts to cpra's log");
        return EXIT_UNREADABLE;
    }
    let opts = GenOptions {
        monitors: args.monitors,
        format: match args.format {
            GenFormat::Yaml => Format::Yaml,
            GenFormat::Json => Format::Json,
        },
        targets: args.targets.clone(),
        mix,
        interval: args.interval.clone(),
        seed: args.seed,
        alert_log: args.alert_log.clone(),
        receiver: args.receiver.clone(),
    };
    let result = match &args.output {
        Some(path) => File::create(path).and_then(|f| {
            let mut w = BufWriter::new(f);
            write_manifest(&opts, &mut w)?;
            w.flush()
        }),
        None => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            write_manifest(&opts, &mut w).and_then(|_| w.flush())
        }
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("error: cannot write the manifest: {e}");
            EXIT_UNREADABLE
        }
    }
}
