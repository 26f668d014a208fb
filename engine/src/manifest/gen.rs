//! Synthetic manifests for big-fleet tests and benchmarks (`cpra gen`, `cpra-bench load`):
//! monitors spread over the given targets, a mix of pulse types, and realistic codes (red to
//! a webhook or PagerDuty through a notification group, both on one receiver; yellow to a
//! log). Deterministic for a given seed. Written straight to a `Write`, one monitor at a time, so generating millions
//! needs no memory.

use std::io::{self, Write};

use super::source::Format;

#[derive(Clone, Debug)]
pub struct GenOptions {
    pub monitors: u64,
    pub format: Format,
    /// `HOST:PORT`; monitors go round-robin over them.
    pub targets: Vec<String>,
    /// Pulse type and weight, e.g. `[("http", 80), ("tcp", 10), ("icmp", 10)]`.
    pub mix: Vec<(String, u32)>,
    /// A Go duration string.
    pub interval: String,
    pub seed: u64,
    /// The yellow code's log file; `None`: the process's own log (`cpra run` prints it).
    pub alert_log: Option<String>,
    /// Base URL of the receiver of red and green: the webhook endpoint posts to
    /// `<receiver>/alerts`, the PagerDuty one to `<receiver>/pagerduty`.
    pub receiver: String,
}

/// Where `cpra gen` sends red and green unless told: `cpra-bench`'s mock receiver's port.
pub const DEFAULT_RECEIVER: &str = "http://127.0.0.1:9099";

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            monitors: 100,
            format: Format::Yaml,
            targets: vec!["127.0.0.1:8080".into()],
            mix: vec![("http".into(), 80), ("tcp".into(), 10), ("icmp".into(), 10)],
            interval: "60s".into(),
            seed: 1,
            // The fleet the load benchmarks measured (docs/benchmarks); `cpra gen`'s own
            // default is no file.
            alert_log: Some("/var/log/cpra/alerts.log".into()),
            receiver: DEFAULT_RECEIVER.into(),
        }
    }
}

/// Pulse types the generator can write.
pub const GEN_TYPES: [&str; 6] = ["http", "tcp", "icmp", "dns", "udp", "tls"];

/// Parse `http=80,tcp=10,icmp=10`.
pub fn parse_mix(text: &str) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, weight) =
            part.split_once('=').ok_or_else(|| format!("'{part}' is not TYPE=WEIGHT"))?;
        let kind = kind.trim().to_ascii_lowercase();
        if !GEN_TYPES.contains(&kind.as_str()) {
            return Err(format!(
                "unknown pulse type '{kind}' in --mix; expected one of {}",
                GEN_TYPES.join(", ")
            ));
        }
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("weight '{weight}' is not a whole number"))?;
        out.push((kind, weight));
    }
    if out.iter().map(|(_, w)| u64::from(*w)).sum::<u64>() == 0 {
        return Err("--mix needs at least one positive weight".into());
    }
    Ok(out)
}

/// SplitMix64: tiny, deterministic, good enough to vary a synthetic fleet (and the scanner
/// tests' generated documents).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn split_target(t: &str) -> (&str, &str) {
    match t.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (t, "80"),
    }
}

/// Write a manifest. Both formats carry the same fleet for the same options.
pub fn write_manifest(opts: &GenOptions, out: &mut dyn Write) -> io::Result<()> {
    let targets: Vec<String> =
        if opts.targets.is_empty() { vec!["127.0.0.1:8080".into()] } else { opts.targets.clone() };
    let total_weight: u64 = opts.mix.iter().map(|(_, w)| u64::from(*w)).sum::<u64>().max(1);
    let mut rng = Rng(opts.seed);
    let json = opts.format == Format::Json;
    // User-given text is written as a JSON string, which is also a YAML double-quoted scalar.
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let receiver = opts.receiver.trim_end_matches('/');
    let webhook = quoted(&format!("{receiver}/alerts"));
    let pagerduty = quoted(&format!("{receiver}/pagerduty"));
    let log_config = match &opts.alert_log {
        Some(file) => format!(r#"{{"file":{}}}"#, quoted(file)),
        None => "{}".to_owned(),
    };
    if json {
        write!(
            out,
            r#"{{"version":"1","endpoints":{{"oncall-webhook":{{"type":"webhook","config":{{"url":{webhook},"method":"POST"}}}},"oncall-pagerduty":{{"type":"pagerduty","config":{{"routing_key":"synthetic-routing-key","url":{pagerduty}}}}}}},"notification_groups":{{"oncall":["oncall-webhook","oncall-pagerduty"],"webhook-only":["oncall-webhook"]}},"monitors":["#,
        )?;
    } else {
        write!(
            out,
            "# Synthetic manifest written by `cpra gen`.\nversion: \"1\"\nendpoints:\n  oncall-webhook:\n    type: webhook\n    config: {{url: {webhook}, method: POST}}\n  oncall-pagerduty:\n    type: pagerduty\n    config: {{routing_key: synthetic-routing-key, url: {pagerduty}}}\nnotification_groups:\n  oncall: [oncall-webhook, oncall-pagerduty]\n  webhook-only: [oncall-webhook]\nmonitors:\n",
        )?;
    }
    for i in 0..opts.monitors {
        let target = &targets[(i % targets.len() as u64) as usize];
        let (host, port) = split_target(target);
        let mut pick = rng.next() % total_weight;
        let mut kind = opts.mix[0].0.as_str();
        for (k, w) in &opts.mix {
            if pick < u64::from(*w) {
                kind = k;
                break;
            }
            pick -= u64::from(*w);
        }
        let group = if rng.next().is_multiple_of(4) { "webhook-only" } else { "oncall" };
        let threshold = 1 + rng.next() % 3;
        let config = match kind {
            "http" => format!(
                r#"{{"url":"http://{host}:{port}/health/{i}","method":"GET","expected_status":[200]}}"#
            ),
            "tcp" | "udp" => format!(r#"{{"host":"{host}","port":{port}}}"#),
            "tls" => format!(r#"{{"host":"{host}","port":{port},"warn_days":30}}"#),
            "dns" => r#"{"host":"localhost","server":"127.0.0.1:53"}"#.to_string(),
            _ => format!(r#"{{"host":"{host}","count":1}}"#),
        };
        let interval = &opts.interval;
        if json {
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(
                out,
                r#"{{"name":"svc-{i:08}","tags":["synthetic","shard-{}"],"pulse_check":{{"type":"{kind}","interval":"{interval}","timeout":"5s","unhealthy_threshold":{threshold},"healthy_threshold":2,"config":{config}}},"codes":{{"red":{{"notify_group":"{group}"}},"yellow":{{"notify":"log","config":{log_config}}},"green":{{"notify_group":"{group}"}}}}}}"#,
                i % 16
            )?;
            out.write_all(b"\n")?;
        } else {
            write!(
                out,
                "  - name: svc-{i:08}\n    tags: [synthetic, shard-{}]\n    pulse_check:\n      type: {kind}\n      interval: {interval}\n      timeout: 5s\n      unhealthy_threshold: {threshold}\n      healthy_threshold: 2\n      config: {config}\n    codes:\n      red: {{notify_group: {group}}}\n      yellow: {{notify: log, config: {log_config}}}\n      green: {{notify_group: {group}}}\n",
                i % 16
            )?;
        }
    }
    if json {
        out.write_all(b"]}\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{load_str, LoadOptions};
    use super::*;

    #[test]
    fn generated_manifests_load_in_both_formats() {
        for format in [Format::Yaml, Format::Json] {
            let opts = GenOptions {
                monitors: 200,
                format,
                targets: vec!["127.0.0.1:8080".into(), "127.0.0.1:8081".into()],
                mix: parse_mix("http=50,tcp=10,icmp=10,dns=10,udp=10,tls=10").unwrap(),
                ..Default::default()
            };
            let mut buf = Vec::new();
            write_manifest(&opts, &mut buf).unwrap();
            let text = String::from_utf8(buf).unwrap();
            let (monitors, report) = load_str(&text, Some(format), &LoadOptions::default());
            assert!(report.is_valid(), "{:?}", report.problems.kept);
            assert_eq!(report.problems.warnings, 0, "{:?}", report.problems.kept);
            assert_eq!(monitors.len(), 200);
            // Two groups and one log code: identical codes blocks are shared.
            assert!(report.distinct_codes <= 2, "{}", report.distinct_codes);
        }
    }

    #[test]
    fn the_alert_file_and_receiver_are_the_ones_given() {
        for format in [Format::Yaml, Format::Json] {
            let opts = GenOptions {
                monitors: 3,
                format,
                alert_log: Some("/tmp/my alerts \"x\".log".into()),
                receiver: "http://alerts.internal:8080/hooks/".into(),
                ..Default::default()
            };
            let mut buf = Vec::new();
            write_manifest(&opts, &mut buf).unwrap();
            let text = String::from_utf8(buf).unwrap();
            let (monitors, report) = load_str(&text, Some(format), &LoadOptions::default());
            assert!(report.is_valid(), "{:?}\n{text}", report.problems.kept);
            let yellow = monitors[0].codes.get(crate::colour::Colour::Yellow).unwrap();
            let super::super::CodeTarget::Notify(n) = &yellow.target else { panic!("notify") };
            assert_eq!(
                **n,
                super::super::Notify::Log { file: Some("/tmp/my alerts \"x\".log".into()) }
            );
            let urls: Vec<String> = report
                .registry
                .endpoints
                .iter()
                .map(|(_, e)| match &**e {
                    super::super::Notify::Webhook { url, .. } => url.clone(),
                    super::super::Notify::Pagerduty { url, .. } => url.clone().unwrap_or_default(),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert!(
                urls.contains(&"http://alerts.internal:8080/hooks/alerts".to_owned()),
                "{urls:?}"
            );
            assert!(urls.contains(&"http://alerts.internal:8080/hooks/pagerduty".to_owned()));
            // Without a file, yellow goes to the process's own log.
            let mut buf = Vec::new();
            let opts = GenOptions { monitors: 1, format, alert_log: None, ..Default::default() };
            write_manifest(&opts, &mut buf).unwrap();
            let (monitors, _) =
                load_str(std::str::from_utf8(&buf).unwrap(), Some(format), &LoadOptions::default());
            let yellow = monitors[0].codes.get(crate::colour::Colour::Yellow).unwrap();
            let super::super::CodeTarget::Notify(n) = &yellow.target else { panic!("notify") };
            assert_eq!(**n, super::super::Notify::Log { file: None });
        }
    }

    #[test]
    fn bad_mix() {
        assert!(parse_mix("htp=1").is_err());
        assert!(parse_mix("http").is_err());
        assert!(parse_mix("http=0").is_err());
        assert_eq!(parse_mix("http=1, tcp=2").unwrap().len(), 2);
    }
}
