//! `cpra tune`: the host settings that decide whether a prober keeps 100k connections a
//! second moving and its checks on time, each checked against the runtime settings
//! (`settings::Effective`), with the command that fixes it; `--apply` makes the changes a
//! running kernel takes (sysctls, IRQ affinity, governor, THP, clocksource).
//!
//! Shape: [`HostFacts`] holds the values read from /proc, /sys, the rlimits and the io_uring
//! probe ([`read`] reads them, from a root directory so tests give fixture trees); each
//! check is a pure function of the facts and the settings returning a [`Check`]; [`plan`]
//! lists the changes `--apply` makes, from the checks alone.
//!
//! What it is for: checking and tuning the host. What it is not for: choosing the settings
//! (`generate`: `cpra tune config`) or running with them (`cli::run`).

use std::fmt;

use crate::fd_budget::{minimum_for, needed_for, Wanted};
use crate::settings::{format_cores, format_size, Effective};

pub mod generate;
pub mod read;
pub mod uring;

pub use read::read;
use uring::{memlock_needed, UringFacts, GLOMMIO_MEMLOCK_MINIMUM, OPCODES_USED};

/// What the host looks like, as read.
#[derive(Clone, Debug, PartialEq)]
pub struct HostFacts {
    pub online_cores: usize,
    /// The cores this process may run on.
    pub allowed: Vec<usize>,
    /// `RLIMIT_NOFILE` (soft, hard).
    pub nofile: (u64, u64),
    /// `RLIMIT_MEMLOCK` (soft, hard); `u64::MAX` is unlimited.
    pub memlock: (u64, u64),
    /// Whether this process holds CAP_IPC_LOCK, which lifts the memlock limit for io_uring
    /// (root does; the systemd unit's user does not).
    pub ipc_lock: bool,
    /// The kernel's version (major, minor).
    pub kernel: (u32, u32),
    pub port_range: Option<(u32, u32)>,
    pub tcp_tw_reuse: Option<u32>,
    pub somaxconn: Option<u64>,
    /// `nf_conntrack_count` and `nf_conntrack_max`, when the module is loaded.
    pub conntrack: Option<(u64, u64)>,
    pub nic_irqs: Vec<NicIrq>,
    /// `scaling_governor` of each core that exposes one.
    pub governors: Vec<(usize, String)>,
    /// The selected mode of `transparent_hugepage/enabled`.
    pub thp: Option<String>,
    /// Whether `cpra run` will let its allocator use huge pages: only when the environment
    /// asks for them (`MIMALLOC_ALLOW_THP`, not 0); otherwise it turns them off for itself
    /// (engine/src/allocator.rs), whatever the host's mode.
    pub allocator_thp: bool,
    /// Steal time over the sample, in tenths of a percent, and the sample's seconds.
    pub steal_per_mille: Option<(u64, u64)>,
    pub loadavg: Option<f64>,
    /// (current, available) clocksources.
    pub clocksource: Option<(String, Vec<String>)>,
    /// `kernel.io_uring_disabled` (0 allowed, 1 for a group, 2 never), where the kernel has it.
    pub io_uring_disabled: Option<u32>,
    pub uring: UringFacts,
}

/// One network interface interrupt and the cores it may be handled on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicIrq {
    pub irq: u32,
    pub name: String,
    pub cores: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// A change `--apply` makes: write `to` into `path` (what was there: `from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub from: String,
    pub to: String,
}

impl Change {
    fn new(path: &str, from: impl Into<String>, to: impl Into<String>) -> Change {
        Change { path: path.to_owned(), from: from.into(), to: to.into() }
    }

    /// The command that makes the change by hand (`sysctl -w` for a sysctl).
    pub fn command(&self) -> String {
        command(&self.path, &self.to)
    }

    /// The command that undoes it.
    pub fn undo(&self) -> String {
        command(&self.path, &self.from)
    }
}

fn command(path: &str, value: &str) -> String {
    match path.strip_prefix("/proc/sys/") {
        Some(key) => format!("sysctl -w {}=\"{value}\"", key.replace('/', ".")),
        None => format!("echo {value} > {path}"),
    }
}

/// One line of `cpra tune`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub what: String,
    /// The command (or setting) that fixes it.
    pub fix: Option<String>,
    /// What `--apply` writes; empty when a person must act (a limit, a kernel).
    pub changes: Vec<Change>,
}

impl Check {
    fn ok(what: String) -> Check {
        Check { status: Status::Ok, what, fix: None, changes: Vec::new() }
    }

    fn warn(what: String, fix: String) -> Check {
        Check { status: Status::Warn, what, fix: Some(fix), changes: Vec::new() }
    }

    fn fail(what: String, fix: String) -> Check {
        Check { status: Status::Fail, what, fix: Some(fix), changes: Vec::new() }
    }

    fn changing(mut self, changes: Vec<Change>) -> Check {
        self.changes = changes;
        self
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        write!(f, "{status:<4}  {}", self.what)?;
        if let Some(fix) = &self.fix {
            write!(f, "  ({fix})")?;
        }
        Ok(())
    }
}

/// Every check, in the order printed.
pub fn checks(f: &HostFacts, e: &Effective) -> Vec<Check> {
    let mut out = vec![cores(f, e), nofile(f, e), memlock(f, e)];
    out.extend(uring_checks(f, e));
    out.extend([
        port_range(f, e),
        tw_reuse(f),
        somaxconn(f),
        conntrack(f, e),
        nic_irqs(f, e),
        governor(f, e),
        thp(f),
        steal(f),
        load(f),
        clocksource(f),
    ]);
    out
}

/// The changes `--apply` makes: those of every check not OK, in order.
pub fn plan(checks: &[Check]) -> Vec<Change> {
    checks.iter().filter(|c| c.status != Status::Ok).flat_map(|c| c.changes.clone()).collect()
}

fn total_in_flight(e: &Effective) -> u64 {
    e.shards as u64 * u64::from(e.in_flight_per_shard)
}

fn cores(f: &HostFacts, e: &Effective) -> Check {
    let others = if e.other_cores.is_empty() {
        "control plane and resolver share them".to_owned()
    } else {
        format!("control plane and resolver on {}", format_cores(&e.other_cores))
    };
    Check::ok(format!(
        "cores: {} online, {} allowed; {} shard(s) on {}, {others}",
        f.online_cores,
        f.allowed.len(),
        e.shards,
        format_cores(&e.cores)
    ))
}

fn nofile(f: &HostFacts, e: &Effective) -> Check {
    let wanted = Wanted {
        checks_per_shard: e.in_flight_per_shard,
        deliveries_per_shard: e.notifier_concurrency,
    };
    let shards = e.shards as u64;
    let threads = e.resolver_threads as u64;
    let full = needed_for(shards, threads, wanted);
    let minimum = minimum_for(shards, threads);
    let hard = f.nofile.1;
    let fix = format!("ulimit -n {full} in the starting shell, LimitNOFILE={full} in the unit");
    let asked = format!(
        "{} shard(s) × ({} checks + {} deliveries in flight)",
        e.shards, e.in_flight_per_shard, e.notifier_concurrency
    );
    if hard >= full {
        Check::ok(format!("RLIMIT_NOFILE: hard limit {hard} ≥ {full} for {asked}"))
    } else if hard >= minimum {
        Check::warn(
            format!("RLIMIT_NOFILE: hard limit {hard} < {full} for {asked}: cpra run lowers in-flight checks to fit"),
            fix,
        )
    } else {
        Check::fail(
            format!(
                "RLIMIT_NOFILE: hard limit {hard} < {minimum}, the least {} shard(s) start with",
                e.shards
            ),
            fix,
        )
    }
}

fn memlock(f: &HostFacts, e: &Effective) -> Check {
    // A registered buffer is charged a whole huge page only if it lies in one: the host must
    // offer them and cpra's allocator must be allowed to use them.
    let huge_pages = f.allocator_thp && f.thp.as_deref().is_some_and(|mode| mode != "never");
    let needed = memlock_needed(
        e.shards as u64,
        e.io_memory_bytes as u64,
        f.uring.ring_bytes,
        f.kernel,
        huge_pages,
    );
    let soft = f.memlock.0;
    let shown = |n: u64| if n == u64::MAX { "unlimited".to_owned() } else { format_size(n) };
    let what = format!(
        "RLIMIT_MEMLOCK: {} for {} shard(s) needing {} (io_memory {} registered with 3 rings each{}{})",
        shown(soft),
        e.shards,
        format_size(needed),
        format_size(e.io_memory_bytes as u64),
        if huge_pages { ", each charged a whole huge page" } else { "" },
        if f.kernel < (5, 12) { ", and the rings: kernel before 5.12" } else { "" }
    );
    let fix = format!(
        "ulimit -l {} in the starting shell, LimitMEMLOCK=infinity in the unit",
        needed.div_ceil(1024)
    );
    let cap = if f.ipc_lock {
        " (this process's CAP_IPC_LOCK lifts the limit; a service user's does not)"
    } else {
        ""
    };
    if soft >= needed {
        Check::ok(what)
    } else if soft >= GLOMMIO_MEMLOCK_MINIMUM {
        Check::warn(format!("{what}: glommio skips registering the buffers{cap}"), fix)
    } else {
        Check::fail(format!("{what}: the shards cannot start{cap}"), fix)
    }
}

fn uring_checks(f: &HostFacts, e: &Effective) -> Vec<Check> {
    let u = &f.uring;
    if let Err(why) = &u.setup {
        let fix = match f.io_uring_disabled {
            Some(n) if n > 0 => "sysctl -w kernel.io_uring_disabled=0".to_owned(),
            _ => "a kernel with io_uring (5.11 or later) and a seccomp profile allowing io_uring_setup".to_owned(),
        };
        return vec![Check::fail(format!("io_uring: cannot set up a ring: {why}"), fix)];
    }
    let mut out = Vec::new();
    let missing: Vec<String> = u
        .opcodes
        .iter()
        .filter(|(_, has)| !has)
        .map(|(name, _)| {
            let used = OPCODES_USED.iter().find(|(n, ..)| n == name).map_or("", |o| o.2);
            format!("{name} ({used})")
        })
        .collect();
    let kernel = format!("kernel {}.{}", f.kernel.0, f.kernel.1);
    if missing.is_empty() {
        out.push(Check::ok(format!(
            "io_uring: {kernel}, {} opcodes; all {} CPRA submits are there",
            u.supported,
            u.opcodes.len()
        )));
    } else {
        out.push(Check::fail(
            format!("io_uring: {kernel} lacks {}", missing.join(", ")),
            "a kernel 5.11 or later".to_owned(),
        ));
    }
    let has = |want: &str| u.features.iter().any(|(n, on)| *n == want && *on);
    let features: Vec<&str> = u.features.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    let feature_line = format!("io_uring features: {}", features.join(", "));
    out.push(if has("fast poll") {
        Check::ok(feature_line)
    } else {
        Check::warn(
            format!(
                "{feature_line}; no fast poll: each socket read takes an extra poll round trip"
            ),
            "a kernel 5.7 or later".to_owned(),
        )
    });
    let sqpoll = match &u.sqpoll {
        Ok(()) => "works".to_owned(),
        Err(e) => format!("not available here ({e})"),
    };
    let buffers = match &u.registered_buffers {
        Ok(()) => "work".to_owned(),
        Err(e) => format!("refused ({e}): glommio skips them and copies file I/O"),
    };
    out.push(Check::ok(format!(
        "io_uring: CPRA will use 3 rings per shard (main, latency, poll) of {} entries ({} bytes each), \
         io_memory {} registered (registered buffers: {buffers}), no SQPOLL (SQPOLL: {sqpoll}; \
         its kernel thread would spin beside each shard)",
        e.ring_depth,
        u.ring_bytes,
        format_size(e.io_memory_bytes as u64)
    )));
    out
}

/// Ports worth having: enough for every check in flight and as many again in TIME_WAIT, at
/// most the whole unprivileged range (1024-65535).
const FULL_PORT_RANGE: (u32, u32) = (1024, 65535);

fn port_range(f: &HostFacts, e: &Effective) -> Check {
    const PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";
    let Some((lo, hi)) = f.port_range else {
        return Check::ok("ip_local_port_range: not readable".to_owned());
    };
    let ports = u64::from(hi.saturating_sub(lo)) + 1;
    let full = u64::from(FULL_PORT_RANGE.1 - FULL_PORT_RANGE.0) + 1;
    let wanted = (2 * total_in_flight(e)).min(full);
    let what = format!(
        "ip_local_port_range: {lo}-{hi}, {ports} ephemeral ports for {} checks in flight (and as many in TIME_WAIT)",
        total_in_flight(e)
    );
    if ports >= wanted {
        return Check::ok(what);
    }
    let change = Change::new(
        PATH,
        format!("{lo} {hi}"),
        format!("{} {}", FULL_PORT_RANGE.0, FULL_PORT_RANGE.1),
    );
    Check::warn(
        format!("{what}: connect() searches longer for a free port the fuller the range"),
        format!(
            "sysctl -w net.ipv4.ip_local_port_range=\"{} {}\"",
            FULL_PORT_RANGE.0, FULL_PORT_RANGE.1
        ),
    )
    .changing(vec![change])
}

fn tw_reuse(f: &HostFacts) -> Check {
    const PATH: &str = "/proc/sys/net/ipv4/tcp_tw_reuse";
    match f.tcp_tw_reuse {
        None => Check::ok("tcp_tw_reuse: not readable".to_owned()),
        Some(1) => {
            Check::ok("tcp_tw_reuse: 1 (a connect may reuse a port in TIME_WAIT)".to_owned())
        }
        Some(n) => Check::warn(
            format!(
                "tcp_tw_reuse: {n} ({}): ports a check closed stay unusable for 60 s",
                if n == 2 { "loopback only" } else { "off" }
            ),
            "sysctl -w net.ipv4.tcp_tw_reuse=1".to_owned(),
        )
        .changing(vec![Change::new(PATH, n.to_string(), "1")]),
    }
}

/// The accept backlog worth having for the control plane (and the demo's servers): the
/// kernel's default since 5.4.
const SOMAXCONN_WANTED: u64 = 4096;

fn somaxconn(f: &HostFacts) -> Check {
    match f.somaxconn {
        None => Check::ok("net.core.somaxconn: not readable".to_owned()),
        Some(n) if n >= SOMAXCONN_WANTED => Check::ok(format!("net.core.somaxconn: {n}")),
        Some(n) => Check::warn(
            format!("net.core.somaxconn: {n} < {SOMAXCONN_WANTED}: a burst of scrapes and API calls overflows the accept queue"),
            format!("sysctl -w net.core.somaxconn={SOMAXCONN_WANTED}"),
        )
        .changing(vec![Change::new("/proc/sys/net/core/somaxconn", n.to_string(), SOMAXCONN_WANTED.to_string())]),
    }
}

/// Conntrack entries per check in flight worth having: each check's connection keeps its
/// entry through TIME_WAIT (120 s by default) after it closes, so several per slot.
const CONNTRACK_PER_IN_FLIGHT: u64 = 4;

fn conntrack(f: &HostFacts, e: &Effective) -> Check {
    let Some((count, max)) = f.conntrack else {
        return Check::ok("nf_conntrack: not loaded (no table to fill)".to_owned());
    };
    let wanted = (total_in_flight(e) * CONNTRACK_PER_IN_FLIGHT).max(2 * count);
    let what = format!(
        "nf_conntrack_max: {max}, {count} in use, for {} checks in flight",
        total_in_flight(e)
    );
    if max >= wanted {
        return Check::ok(what);
    }
    Check::warn(
        format!("{what}: a full table drops new connections silently (checks time out)"),
        format!(
            "sysctl -w net.netfilter.nf_conntrack_max={wanted}, or exempt the prober's traffic with a NOTRACK rule"
        ),
    )
    .changing(vec![Change::new("/proc/sys/net/netfilter/nf_conntrack_max", max.to_string(), wanted.to_string())])
}

fn nic_irqs(f: &HostFacts, e: &Effective) -> Check {
    if f.nic_irqs.is_empty() {
        return Check::ok("NIC interrupts: none found in /proc/interrupts".to_owned());
    }
    if e.other_cores.is_empty() {
        return Check::ok(format!(
            "NIC interrupts: {} IRQ(s) share the shards' cores (no core left over; `cpra tune config` keeps one from 8 cores up)",
            f.nic_irqs.len()
        ));
    }
    let on_shards: Vec<&NicIrq> =
        f.nic_irqs.iter().filter(|i| i.cores.iter().any(|c| e.cores.contains(c))).collect();
    if on_shards.is_empty() {
        return Check::ok(format!(
            "NIC interrupts: {} IRQ(s), all off the shards' cores {}",
            f.nic_irqs.len(),
            format_cores(&e.cores)
        ));
    }
    let others = format_cores(&e.other_cores);
    let names: Vec<String> = on_shards.iter().map(|i| format!("{} ({})", i.irq, i.name)).collect();
    let changes = on_shards
        .iter()
        .map(|i| {
            Change::new(
                &format!("/proc/irq/{}/smp_affinity_list", i.irq),
                format_cores(&i.cores),
                others.clone(),
            )
        })
        .collect();
    Check::warn(
        format!(
            "NIC interrupts: IRQ {} may run on the shards' cores {}: each interrupt preempts a shard",
            names.join(", "),
            format_cores(&e.cores)
        ),
        format!("echo {others} > /proc/irq/N/smp_affinity_list for each; stop irqbalance or set IRQBALANCE_BANNED_CPULIST={}", format_cores(&e.cores)),
    )
    .changing(changes)
}

fn governor(f: &HostFacts, e: &Effective) -> Check {
    let slow: Vec<&(usize, String)> =
        f.governors.iter().filter(|(c, g)| e.cores.contains(c) && g != "performance").collect();
    if f.governors.is_empty() {
        return Check::ok("cpu frequency governor: not exposed (a VM, usually)".to_owned());
    }
    if slow.is_empty() {
        return Check::ok("cpu frequency governor: performance on the shards' cores".to_owned());
    }
    let changes = slow
        .iter()
        .map(|(c, g)| {
            Change::new(
                &format!("/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"),
                g.clone(),
                "performance",
            )
        })
        .collect();
    Check::warn(
        format!(
            "cpu frequency governor: {} on core {}: adds wake-up latency to every sleep of a shard",
            slow[0].1, slow[0].0
        ),
        "cpupower frequency-set -g performance".to_owned(),
    )
    .changing(changes)
}

fn thp(f: &HostFacts) -> Check {
    const PATH: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
    match f.thp.as_deref() {
        None => Check::ok("transparent huge pages: not exposed".to_owned()),
        Some("always") => Check::warn(
            "transparent huge pages: always: compaction can stall a shard for milliseconds"
                .to_owned(),
            format!("echo madvise > {PATH}"),
        )
        .changing(vec![Change::new(PATH, "always", "madvise")]),
        Some(mode) => Check::ok(format!("transparent huge pages: {mode}")),
    }
}

/// Steal above 1% of the sample: the hypervisor runs other guests on these vCPUs often
/// enough to show in lateness tails.
const STEAL_WARN_PER_MILLE: u64 = 10;

fn steal(f: &HostFacts) -> Check {
    let Some((per_mille, secs)) = f.steal_per_mille else {
        return Check::ok("steal time: not sampled".to_owned());
    };
    let what = format!("steal time: {}.{}% over {secs} s", per_mille / 10, per_mille % 10);
    if per_mille <= STEAL_WARN_PER_MILLE {
        Check::ok(what)
    } else {
        Check::warn(
            format!("{what}: the hypervisor runs other guests on these vCPUs; expect lateness tails of milliseconds"),
            "dedicated vCPUs or a bare-metal host".to_owned(),
        )
    }
}

fn load(f: &HostFacts) -> Check {
    let Some(load) = f.loadavg else {
        return Check::ok("load average: not readable".to_owned());
    };
    let cores = f.online_cores.max(1);
    let what = format!("load average {load:.2} on {cores} cores");
    if load > cores as f64 * 0.5 {
        Check::warn(
            format!("{what}: other processes share the shards' cores"),
            "give CPRA its own cores (cpuset, CPUAffinity= for the rest) or CPUWeight= in its unit"
                .to_owned(),
        )
    } else {
        Check::ok(what)
    }
}

/// Clocksources read through the vDSO without a system call: the others make every
/// `clock_gettime` (several per check) a trap into the kernel.
const FAST_CLOCKSOURCES: &[&str] =
    &["tsc", "kvm-clock", "arch_sys_counter", "hyperv_clocksource_tsc_page"];

fn clocksource(f: &HostFacts) -> Check {
    const PATH: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    let Some((current, available)) = &f.clocksource else {
        return Check::ok("clocksource: not exposed".to_owned());
    };
    if FAST_CLOCKSOURCES.contains(&current.as_str()) {
        return Check::ok(format!("clocksource: {current}"));
    }
    let what = format!("clocksource: {current}: every clock read is a system call");
    if available.iter().any(|a| a == "tsc") {
        Check::warn(what, format!("echo tsc > {PATH}")).changing(vec![Change::new(
            PATH,
            current.clone(),
            "tsc",
        )])
    } else {
        Check::warn(what, "a host with a stable TSC (or kvm-clock in a VM)".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{resolve, RuntimeSettings};

    fn facts() -> HostFacts {
        HostFacts {
            online_cores: 4,
            allowed: vec![0, 1, 2, 3],
            nofile: (1024, 1 << 20),
            memlock: (u64::MAX, u64::MAX),
            ipc_lock: false,
            kernel: (6, 1),
            port_range: Some((1024, 65535)),
            tcp_tw_reuse: Some(1),
            somaxconn: Some(4096),
            conntrack: None,
            nic_irqs: vec![NicIrq { irq: 24, name: "eth0-rx-0".into(), cores: vec![0] }],
            governors: vec![(0, "performance".into()), (1, "performance".into())],
            thp: Some("madvise".into()),
            allocator_thp: false,
            steal_per_mille: Some((0, 1)),
            loadavg: Some(0.1),
            clocksource: Some(("tsc".into(), vec!["tsc".into(), "hpet".into()])),
            io_uring_disabled: Some(0),
            uring: UringFacts {
                setup: Ok(()),
                opcodes: OPCODES_USED.iter().map(|o| (o.0, true)).collect(),
                supported: 58,
                features: vec![("fast poll", true), ("nodrop", true)],
                sqpoll: Ok(()),
                registered_buffers: Ok(()),
                ring_bytes: 12_288,
            },
        }
    }

    fn effective(asked: RuntimeSettings) -> Effective {
        resolve(&asked, &[0, 1, 2, 3], &crate::settings::first_cores).unwrap()
    }

    fn lines(f: &HostFacts, e: &Effective) -> Vec<String> {
        checks(f, e).iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn a_tuned_host_is_all_ok() {
        let e = effective(RuntimeSettings::default());
        let all = checks(&facts(), &e);
        assert!(all.iter().all(|c| c.status == Status::Ok), "{:#?}", lines(&facts(), &e));
        assert!(plan(&all).is_empty());
        assert_eq!(
            all[0].to_string(),
            "OK    cores: 4 online, 4 allowed; 4 shard(s) on 0-3, control plane and resolver share them"
        );
    }

    #[test]
    fn limits_are_measured_against_the_configured_in_flight() {
        let e =
            effective(RuntimeSettings { in_flight_per_shard: Some(50_000), ..Default::default() });
        let f = HostFacts { nofile: (1024, 65536), ..facts() };
        let c = nofile(&f, &e);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.to_string()
                .contains("< 200293 for 4 shard(s) × (50000 checks + 32 deliveries in flight)"),
            "{c}"
        );
        assert!(
            c.to_string().contains(
                "(ulimit -n 200293 in the starting shell, LimitNOFILE=200293 in the unit)"
            ),
            "{c}"
        );
        let f = HostFacts { nofile: (64, 64), ..facts() };
        assert_eq!(nofile(&f, &e).status, Status::Fail);
        // Memlock: 4 shards of 1 MiB need 12 MiB; with 8 MiB the buffers are not registered,
        // under 512 KiB nothing starts.
        let f = HostFacts { memlock: (8 << 20, 8 << 20), thp: Some("never".into()), ..facts() };
        let e = effective(RuntimeSettings { io_memory_bytes: Some(1 << 20), ..Default::default() });
        assert_eq!(
            memlock(&HostFacts { memlock: (64 << 10, 64 << 10), ..f.clone() }, &e).status,
            Status::Fail
        );
        // In huge pages (THP madvise or always, and MIMALLOC_ALLOW_THP set) each
        // registration is charged 2 MiB; without that variable cpra keeps off them.
        let thp = HostFacts { thp: Some("madvise".into()), allocator_thp: true, ..f.clone() };
        assert!(memlock(&thp, &e).what.contains("needing 24MiB"), "{}", memlock(&thp, &e));
        let no_thp = HostFacts { thp: Some("madvise".into()), ..f.clone() };
        assert!(memlock(&no_thp, &e).what.contains("needing 12MiB"), "{}", memlock(&no_thp, &e));
        let c = memlock(&f, &e);
        assert_eq!(c.status, Status::Warn);
        assert_eq!(
            c.to_string(),
            "WARN  RLIMIT_MEMLOCK: 8MiB for 4 shard(s) needing 12MiB (io_memory 1MiB registered with 3 rings \
             each): glommio skips registering the buffers  (ulimit -l 12288 in the starting shell, \
             LimitMEMLOCK=infinity in the unit)"
        );
    }

    #[test]
    fn sysctls_out_of_tune_are_planned_with_their_undo() {
        let f = HostFacts {
            port_range: Some((32768, 60999)),
            tcp_tw_reuse: Some(2),
            somaxconn: Some(128),
            conntrack: Some((1000, 65536)),
            thp: Some("always".into()),
            ..facts()
        };
        let e =
            effective(RuntimeSettings { in_flight_per_shard: Some(20_000), ..Default::default() });
        let all = checks(&f, &e);
        let changes = plan(&all);
        let commands: Vec<(String, String)> =
            changes.iter().map(|c| (c.command(), c.undo())).collect();
        assert_eq!(
            commands,
            vec![
                (
                    "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"".to_owned(),
                    "sysctl -w net.ipv4.ip_local_port_range=\"32768 60999\"".to_owned()
                ),
                (
                    "sysctl -w net.ipv4.tcp_tw_reuse=\"1\"".to_owned(),
                    "sysctl -w net.ipv4.tcp_tw_reuse=\"2\"".to_owned()
                ),
                (
                    "sysctl -w net.core.somaxconn=\"4096\"".to_owned(),
                    "sysctl -w net.core.somaxconn=\"128\"".to_owned()
                ),
                (
                    "sysctl -w net.netfilter.nf_conntrack_max=\"320000\"".to_owned(),
                    "sysctl -w net.netfilter.nf_conntrack_max=\"65536\"".to_owned()
                ),
                (
                    "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled".to_owned(),
                    "echo always > /sys/kernel/mm/transparent_hugepage/enabled".to_owned()
                ),
            ]
        );
        // Only what was printed as not OK is changed.
        assert!(all.iter().filter(|c| c.status == Status::Ok).all(|c| c.changes.is_empty()));
    }

    #[test]
    fn nic_interrupts_move_off_the_shards_only_when_a_core_is_left_over() {
        // Every core runs a shard: sharing is the plan.
        let e = effective(RuntimeSettings::default());
        assert_eq!(nic_irqs(&facts(), &e).status, Status::Ok);
        // Shards on 1-3: the IRQ on 0 is where it should be; one on 2 is moved to 0.
        let e = effective(RuntimeSettings { cpuset: Some(vec![1, 2, 3]), ..Default::default() });
        assert_eq!(nic_irqs(&facts(), &e).status, Status::Ok);
        let f = HostFacts {
            nic_irqs: vec![NicIrq { irq: 25, name: "eth0-tx-0".into(), cores: vec![0, 1, 2, 3] }],
            ..facts()
        };
        let c = nic_irqs(&f, &e);
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.changes, vec![Change::new("/proc/irq/25/smp_affinity_list", "0-3", "0")]);
        assert_eq!(c.changes[0].command(), "echo 0 > /proc/irq/25/smp_affinity_list");
    }

    #[test]
    fn governor_steal_and_clocksource() {
        let e = effective(RuntimeSettings::default());
        let f = HostFacts {
            governors: vec![(0, "powersave".into())],
            steal_per_mille: Some((25, 3)),
            clocksource: Some(("hpet".into(), vec!["tsc".into(), "hpet".into()])),
            ..facts()
        };
        let c = governor(&f, &e);
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.changes[0].path, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
        assert_eq!(steal(&f).to_string(), "WARN  steal time: 2.5% over 3 s: the hypervisor runs other guests on these vCPUs; expect lateness tails of milliseconds  (dedicated vCPUs or a bare-metal host)");
        assert_eq!(clocksource(&f).changes[0].to, "tsc");
    }

    #[test]
    fn io_uring_missing_or_disabled_fails() {
        let e = effective(RuntimeSettings::default());
        let f = HostFacts {
            uring: UringFacts::unavailable("Operation not permitted (os error 1)".into()),
            io_uring_disabled: Some(2),
            ..facts()
        };
        let c = uring_checks(&f, &e);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].to_string(),
            "FAIL  io_uring: cannot set up a ring: Operation not permitted (os error 1)  (sysctl -w kernel.io_uring_disabled=0)"
        );
        let mut f = facts();
        f.uring.opcodes[10].1 = false;
        let c = uring_checks(&f, &e);
        assert_eq!(c[0].status, Status::Fail);
        assert!(c[0].what.contains("CONNECT (every check)"), "{}", c[0]);
    }
}
