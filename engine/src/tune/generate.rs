//! `cpra tune config`: a runtime settings file for a machine of `cores` cores, `memory`
//! bytes and a descriptor limit, running up to `monitors` monitors. Pure: the same inputs
//! give the same file, so `deploy/tuned/cores-N.yaml` are checked against it.
//!
//! The numbers behind each choice are in docs/tuning.md: what was measured on the 2-core
//! machine CPRA is developed on (1 and 2 shards), and what is modelled beyond it.

use crate::fd_budget::{budget_for, Wanted};
use crate::limits::{
    DEFAULT_MAX_DELIVERIES_IN_FLIGHT, IO_MEMORY_BYTES, MAX_IN_FLIGHT_LIMIT, MAX_RING_DEPTH,
    MIN_CHECKS_IN_FLIGHT_PER_SHARD,
};
use crate::settings::{format_cores, format_size};
use cpra_net::limits::MAX_RESOLVER_THREADS;

/// From this many cores up, cores are kept from the shards for NIC interrupts, the control
/// plane and the resolver (perftune's `sq` mode); below it every core runs a shard and takes
/// its share of interrupts (perftune's `mq` mode): on a small machine a core kept idle is a
/// large share of the capacity.
pub const RESERVE_FROM_CORES: usize = 8;

/// Shards per kept core: one core's softirq handles about 1M packets/s; a shard at its
/// measured peak (~30k checks/s, about 10 packets each, 300k packets/s) is under a third of
/// that, and a fleet rarely runs every shard at its peak, so one kept core per 16 cores.
pub const CORES_PER_RESERVED: usize = 16;

/// Checks a shard completes per second at most, measured (`cpra-bench probes`): about 31 µs
/// of CPU per HTTP check on a new connection, so ~32k/s on one core.
pub const SHARD_CHECKS_PER_S: u64 = 32_000;

/// A check's expected latency (connect to answer) on a datacenter network, in ms, with the
/// slow tail a fleet always has: the time a check holds its in-flight slot.
pub const EXPECTED_CHECK_MS: u64 = 100;

/// Slots per expected in-flight check: room for a slow part of the fleet (4x the expected
/// latency) before due checks wait for a slot.
pub const IN_FLIGHT_HEADROOM: u64 = 4;

/// The interval the model assumes when it sizes by `--monitors`: every monitor due every
/// second (the scheduler benchmark's case, the most a fleet asks).
pub const MODEL_INTERVAL_MS: u64 = 1000;

/// Submission entries a check issues (connect, send, receive, and the linked timeout), for
/// the ring depth: a shard's ring holds one loop turn's submissions (~1 ms), twice over.
pub const SQES_PER_CHECK: u64 = 4;

/// Bytes of memory an in-flight check may hold at once: its probe task and buffers (header
/// cap 16 KiB) and the kernel's socket buffers (a few pages for a short exchange).
pub const BYTES_PER_IN_FLIGHT: u64 = 64 << 10;

/// Bytes a loaded monitor holds (cold config, 64 hot bytes, 20 recent results), measured by
/// `cpra-bench load` (413) and the recent ring (321), rounded up.
pub const BYTES_PER_MONITOR: u64 = 1024;

/// The descriptor limit the shipped configurations assume: the systemd unit's LimitNOFILE.
pub const UNIT_NOFILE: u64 = 1 << 20;

/// What the configuration is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    pub cores: usize,
    /// Monitors to size for; `None`: every shard at its measured peak.
    pub monitors: Option<u64>,
    pub memory_bytes: u64,
    /// The hard `RLIMIT_NOFILE` CPRA will run under.
    pub nofile: u64,
}

/// The tuned settings and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuned {
    pub shards: usize,
    pub cpuset: Vec<usize>,
    pub reserved: Vec<usize>,
    pub in_flight_per_shard: u32,
    pub ring_depth: usize,
    pub io_memory_bytes: usize,
    pub resolver_threads: usize,
    /// Checks per second per shard the sizing assumed.
    pub rate_per_shard: u64,
    /// What bounded in-flight (`latency`, `fd limit` or `memory`).
    pub in_flight_bound: &'static str,
    /// In-flight by the latency model alone.
    pub by_latency: u64,
}

pub fn tune(m: Machine) -> Tuned {
    let cores = m.cores.max(1);
    let reserved_n =
        if cores < RESERVE_FROM_CORES { 0 } else { (cores / CORES_PER_RESERVED).max(1) };
    let reserved: Vec<usize> = (0..reserved_n).collect();
    let cpuset: Vec<usize> = (reserved_n..cores).collect();
    let shards = cpuset.len();
    let rate_per_shard = match m.monitors {
        Some(n) => (n * 1000 / MODEL_INTERVAL_MS).div_ceil(shards as u64).min(SHARD_CHECKS_PER_S),
        None => SHARD_CHECKS_PER_S,
    };
    // Little's law: slots = rate × latency, with headroom.
    let by_latency = (rate_per_shard * EXPECTED_CHECK_MS / 1000 * IN_FLIGHT_HEADROOM)
        .next_power_of_two()
        .max(u64::from(MIN_CHECKS_IN_FLIGHT_PER_SHARD) * 16);
    let resolver_threads = (shards / 8).clamp(4, MAX_RESOLVER_THREADS);
    let wanted = Wanted {
        checks_per_shard: by_latency.min(u64::from(MAX_IN_FLIGHT_LIMIT)) as u32,
        deliveries_per_shard: DEFAULT_MAX_DELIVERIES_IN_FLIGHT,
    };
    let by_fds = budget_for(m.nofile, shards as u64, resolver_threads as u64, wanted)
        .map_or(u64::from(MIN_CHECKS_IN_FLIGHT_PER_SHARD), |b| u64::from(b.checks_per_shard));
    // Half the memory for in-flight checks, after the monitors.
    let monitors_bytes = m.monitors.unwrap_or(0) * BYTES_PER_MONITOR;
    let for_checks = (m.memory_bytes / 2).saturating_sub(monitors_bytes);
    let by_memory = (for_checks / BYTES_PER_IN_FLIGHT / shards as u64)
        .max(u64::from(MIN_CHECKS_IN_FLIGHT_PER_SHARD));
    let (in_flight, bound) = [(by_latency, "latency"), (by_fds, "fd limit"), (by_memory, "memory")]
        .into_iter()
        .min_by_key(|(n, _)| *n)
        .expect("three bounds");
    let per_ms = rate_per_shard.div_ceil(1000);
    let ring_depth = (per_ms * SQES_PER_CHECK * 2)
        .next_power_of_two()
        .clamp(128, MAX_RING_DEPTH as u64) as usize;
    Tuned {
        shards,
        cpuset,
        reserved,
        in_flight_per_shard: in_flight as u32,
        ring_depth,
        io_memory_bytes: IO_MEMORY_BYTES,
        resolver_threads,
        rate_per_shard,
        in_flight_bound: bound,
        by_latency,
    }
}

/// The settings file, with a header saying why each number.
pub fn to_yaml(m: Machine, t: &Tuned) -> String {
    let monitors = match m.monitors {
        Some(n) => format!("{n} monitors due every second"),
        None => "every shard at its measured peak".to_owned(),
    };
    let reserved = if t.reserved.is_empty() {
        format!("every core runs a shard (below {RESERVE_FROM_CORES} cores a kept core is too large a share; NIC interrupts spread over all, perftune's mq mode)")
    } else {
        format!(
            "core(s) {} kept for NIC interrupts, the control plane and the resolver (one per {CORES_PER_RESERVED} cores from {RESERVE_FROM_CORES} up, perftune's sq mode)",
            format_cores(&t.reserved)
        )
    };
    let bound = match t.in_flight_bound {
        "latency" => format!(
            "{} checks/s per shard × {EXPECTED_CHECK_MS} ms expected latency × {IN_FLIGHT_HEADROOM} headroom, to a power of two",
            t.rate_per_shard
        ),
        "fd limit" => format!(
            "bounded by the fd limit {} (RLIMIT_NOFILE; the latency model alone asks {}, see `cpra tune`)",
            m.nofile, t.by_latency
        ),
        _ => format!("bounded by memory: half of {} after the monitors, {} per check in flight", gib(m.memory_bytes), format_size(BYTES_PER_IN_FLIGHT)),
    };
    let lines = [
        format!("# CPRA runtime settings for {} cores, {} of memory, RLIMIT_NOFILE {}, sized for {monitors}.", m.cores, gib(m.memory_bytes), m.nofile),
        format!("# Written by `cpra tune config --cores {} --memory {}{} --nofile {}`; docs/tuning.md explains each choice.", m.cores, format_size(m.memory_bytes), m.monitors.map_or(String::new(), |n| format!(" --monitors {n}")), m.nofile),
        format!("# shards, cpuset: {reserved}."),
        format!("# in_flight_per_shard: {bound}."),
        format!("# ring_depth: {} checks/s per shard is {} per 1 ms loop turn × {SQES_PER_CHECK} submissions each, twice over (at least 128).", t.rate_per_shard, t.rate_per_shard.div_ceil(1000)),
        "# io_memory: the least glommio takes; CPRA's sockets use no registered buffers.".to_owned(),
        "# resolver_threads: one per 8 shards, 4 to 16 (they only block in getaddrinfo; answers are cached 60 s).".to_owned(),
        format!("shards: {}", t.shards),
        format!("cpuset: {}", format_cores(&t.cpuset)),
        format!("in_flight_per_shard: {}", t.in_flight_per_shard),
        format!("ring_depth: {}", t.ring_depth),
        format!("io_memory: {}", format_size(t.io_memory_bytes as u64)),
        format!("resolver_threads: {}", t.resolver_threads),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Memory as people say it: `256 GiB`, `23.5 GiB`.
fn gib(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{g:.1} GiB")
    }
}

/// The machines `deploy/tuned/cores-N.yaml` are written for: N cores, 4 GiB a core, the
/// unit's descriptor limit, every shard at its peak.
pub fn shipped(cores: usize) -> Machine {
    Machine { cores, monitors: None, memory_bytes: cores as u64 * (4 << 30), nofile: UNIT_NOFILE }
}

/// The core counts shipped in deploy/tuned.
pub const SHIPPED_CORES: &[usize] = &[2, 4, 8, 16, 32, 64, 128];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_machines_use_every_core_and_big_ones_keep_some() {
        let t = tune(shipped(2));
        assert_eq!((t.shards, t.cpuset.clone(), t.reserved.clone()), (2, vec![0, 1], vec![]));
        let t = tune(shipped(8));
        assert_eq!((t.shards, t.reserved.clone()), (7, vec![0]));
        let t = tune(shipped(64));
        assert_eq!((t.shards, t.reserved.clone()), (60, vec![0, 1, 2, 3]));
        assert_eq!(t.resolver_threads, 7);
        assert_eq!(tune(shipped(128)).resolver_threads, 15);
    }

    #[test]
    fn in_flight_follows_the_rate_and_is_bounded_by_fds_and_memory() {
        // At the peak: 32k/s × 100 ms × 4 = 12,800, to 16,384.
        let t = tune(shipped(4));
        assert_eq!((t.in_flight_per_shard, t.in_flight_bound), (16_384, "latency"));
        assert_eq!(t.ring_depth, 256);
        // 10k monitors on 4 shards: 2,500/s each: 1,000 slots, to 1,024.
        let t = tune(Machine { monitors: Some(10_000), ..shipped(4) });
        assert_eq!((t.in_flight_per_shard, t.in_flight_bound), (1024, "latency"));
        assert_eq!(t.ring_depth, 128);
        // A default 1024 fd limit.
        let t = tune(Machine { nofile: 1024, ..shipped(4) });
        assert_eq!(t.in_flight_bound, "fd limit");
        assert!(t.in_flight_per_shard < 256);
        // 1 GiB for 4 shards: half of it, 64 KiB a check: 2,048 each.
        let t = tune(Machine { memory_bytes: 1 << 30, ..shipped(4) });
        assert_eq!((t.in_flight_per_shard, t.in_flight_bound), (2048, "memory"));
    }

    #[test]
    fn the_yaml_loads_as_settings() {
        for &cores in SHIPPED_CORES {
            let m = shipped(cores);
            let yaml = to_yaml(m, &tune(m));
            let s = crate::settings::parse("generated", &yaml).unwrap();
            assert_eq!(s.cpuset.unwrap().len(), s.shards.unwrap());
        }
    }
}
