//! Numbers given on the command line, each checked against its bound in `limits` before
//! anything is read, sized or started by it: a clear message naming the flag and the bound,
//! and exit code 2 (`EXIT_UNREADABLE`, a wrong command line), never a panic or a huge
//! allocation. Values that do not even parse as their type are refused by clap, also with 2.

use std::time::Duration;

use crate::limits::{MAX_GRACE_MS, MAX_RUN_DURATION_MS, MAX_SHARDS};
use crate::runtime::{online_cores, shard_count};

/// `cpra run`'s numbers: `--grace` in ms and `--duration`, with `--shards` checked (the count
/// itself is sized again, by the same rule, when the shards start).
pub fn run_numbers(args: &super::run::RunArgs) -> Result<(u64, Option<Duration>), String> {
    let grace_ms = duration_ms("--grace", &args.grace, MAX_GRACE_MS)?;
    let duration = match args.duration.as_deref() {
        Some(d) => Some(Duration::from_millis(duration_ms("--duration", d, MAX_RUN_DURATION_MS)?)),
        None => None,
    };
    shards(args.shards)?;
    Ok((grace_ms, duration))
}

/// `--shards`: the shard count to start (0: one per online core), by the runtime's rule
/// ([`shard_count`]), in the command line's words.
pub fn shards(requested: usize) -> Result<usize, String> {
    if requested > MAX_SHARDS {
        return Err(format!(
            "--shards {requested}: more than {MAX_SHARDS}, the most CPRA runs (one shard per core)"
        ));
    }
    let cores = online_cores();
    if requested > cores {
        return Err(format!(
            "--shards {requested}: more than the {cores} online cores (shards are pinned one per \
             core); leave it out for one per core"
        ));
    }
    shard_count(requested).map_err(|e| format!("--shards {requested}: {e}"))
}

/// A Go duration given to `flag`, in ms, at most `max_ms`.
pub fn duration_ms(flag: &str, text: &str, max_ms: u64) -> Result<u64, String> {
    let longest = || {
        format!(
            "{flag} {text}: longer than {}, the longest accepted",
            crate::manifest::duration::format_ms(max_ms)
        )
    };
    // A duration too large for the parser (past ~584 years) is past the bound too.
    let ms = match crate::manifest::duration::parse_go_duration(text) {
        Ok(ns) => ns / 1_000_000,
        Err(e) if e.contains("too large") => return Err(longest()),
        Err(_) => return super::run::duration_ms(flag, text),
    };
    if ms > max_ms {
        return Err(longest());
    }
    Ok(ms)
}

/// A count given to `flag`, at most `max`.
pub fn count(flag: &str, n: u64, max: u64) -> Result<u64, String> {
    if n > max {
        return Err(format!("{flag} {n}: more than {max}, the most accepted"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{MAX_GEN_MONITORS, MAX_GRACE_MS};

    #[test]
    fn each_bound_is_named_in_its_message() {
        let e = shards(usize::MAX).unwrap_err();
        assert_eq!(
            e,
            "--shards 18446744073709551615: more than 1024, the most CPRA runs (one shard per core)"
        );
        assert!(shards(0).is_ok_and(|n| n >= 1));
        let e = duration_ms("--grace", "2h", MAX_GRACE_MS).unwrap_err();
        assert_eq!(e, "--grace 2h: longer than 1h, the longest accepted");
        assert_eq!(duration_ms("--grace", "1h", MAX_GRACE_MS), Ok(3_600_000));
        let e = duration_ms("--duration", "99999999999h", MAX_GRACE_MS).unwrap_err();
        assert_eq!(e, "--duration 99999999999h: longer than 1h, the longest accepted");
        let e = duration_ms("--grace", "5", MAX_GRACE_MS).unwrap_err();
        assert!(e.starts_with("--grace: "), "{e}");
        let e = count("--monitors", MAX_GEN_MONITORS + 1, MAX_GEN_MONITORS).unwrap_err();
        assert_eq!(e, "--monitors 100000001: more than 100000000, the most accepted");
    }
}

/// `cpra run`'s runtime settings beyond `--shards`, `--cooldown` and `--fsync-interval`:
/// each overrides the same field of `--config` (docs/tuning.md).
#[derive(Debug, Default, clap::Args)]
pub struct RuntimeFlags {
    /// A runtime settings file (YAML: shards, cpuset, in_flight_per_shard, ring_depth, ...;
    /// docs/tuning.md); the flags below override its fields. `cpra tune config` writes one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The cores the shards are pinned to, shard k on the k-th (`0-3,8`); the control plane
    /// and resolver threads run on the other allowed cores.
    #[arg(long, value_name = "CORES")]
    pub cpuset: Option<String>,
    /// Checks in flight per shard (default 4096), lowered to what the fd limit allows.
    #[arg(long = "in-flight", value_name = "N")]
    pub in_flight: Option<String>,
    /// Depth of each io_uring ring of a shard (default 128).
    #[arg(long, value_name = "N")]
    pub ring_depth: Option<String>,
    /// io_uring memory per shard, locked (default 64KiB).
    #[arg(long, value_name = "SIZE")]
    pub io_memory: Option<String>,
    /// How long an idle shard spins before it sleeps (default 0s: no spin).
    #[arg(long, value_name = "D")]
    pub spin_before_park: Option<String>,
    /// Resolver threads (default 4).
    #[arg(long, value_name = "N")]
    pub resolver_threads: Option<String>,
    /// Alert deliveries in flight per shard (default 32).
    #[arg(long, value_name = "N")]
    pub notifier_concurrency: Option<String>,
}

impl RuntimeFlags {
    /// The settings the flags give, `(field, flag, value)` for each given, in `FIELDS` order.
    pub fn given(&self) -> Vec<(&'static str, &'static str, &str)> {
        let values = [
            ("cpuset", &self.cpuset),
            ("in_flight_per_shard", &self.in_flight),
            ("ring_depth", &self.ring_depth),
            ("io_memory", &self.io_memory),
            ("spin_before_park", &self.spin_before_park),
            ("resolver_threads", &self.resolver_threads),
            ("notifier_concurrency", &self.notifier_concurrency),
        ];
        values
            .into_iter()
            .filter_map(|(field, value)| {
                let flag = crate::settings::FIELDS.iter().find(|(f, _)| *f == field)?.1;
                Some((field, flag, value.as_deref()?))
            })
            .collect()
    }
}
