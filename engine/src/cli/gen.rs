//! `cpra gen --monitors N [--format yaml|json] [--target HOST:PORT]... [--mix ...] [--interval 60s] [--seed S] [--output FILE]`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{flags, EXIT_OK, EXIT_UNREADABLE};
use crate::limits::{MAX_GEN_MONITORS, MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use crate::manifest::duration::{format_ms, parse_go_duration};
use crate::manifest::gen::{parse_mix, write_manifest, GenOptions};
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
