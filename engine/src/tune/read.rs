//! Reads [`HostFacts`] from /proc and /sys under a root directory (`/` for the machine, a
//! fixture tree in tests), the rlimits and the io_uring probe. Each file's text is parsed
//! by a small pure function; a file that is missing or unreadable leaves its fact `None`.

use std::path::Path;
use std::time::Duration;

use super::{uring, HostFacts, NicIrq};
use crate::settings::{parse_cpuset, Effective};

/// Everything `cpra tune` checks, read now; steal time is sampled over `steal_secs` (0: not
/// sampled) and io_uring is probed with the settings' ring depth and io_memory.
pub fn read(root: &Path, e: &Effective, steal_secs: u64) -> HostFacts {
    let mut facts = read_files(root, steal_secs);
    facts.nofile = rlimit(libc::RLIMIT_NOFILE);
    facts.memlock = rlimit(libc::RLIMIT_MEMLOCK);
    facts.ipc_lock = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| has_capability(&t, CAP_IPC_LOCK))
        .unwrap_or(false);
    facts.allowed = crate::settings::allowed_cores();
    facts.uring = uring::probe(e.ring_depth as u32, e.io_memory_bytes);
    facts
}

/// The facts found in files under `root` (rlimits, allowed cores and io_uring left empty).
pub fn read_files(root: &Path, steal_secs: u64) -> HostFacts {
    let text = |rel: &str| std::fs::read_to_string(root.join(rel)).ok();
    let number = |rel: &str| text(rel).and_then(|t| t.trim().parse::<u64>().ok());
    let online_cores = text("sys/devices/system/cpu/online")
        .and_then(|t| parse_cpuset(t.trim()).ok())
        .map_or(1, |c| c.len());
    let kernel = text("proc/sys/kernel/osrelease").map_or((0, 0), |t| parse_kernel(&t));
    let conntrack = match (
        number("proc/sys/net/netfilter/nf_conntrack_count"),
        number("proc/sys/net/netfilter/nf_conntrack_max"),
    ) {
        (count, Some(max)) => Some((count.unwrap_or(0), max)),
        _ => None,
    };
    let governors = (0..online_cores.max(1))
        .filter_map(|c| {
            let g = text(&format!("sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"))?;
            Some((c, g.trim().to_owned()))
        })
        .collect();
    let clocksource =
        text("sys/devices/system/clocksource/clocksource0/current_clocksource").map(|c| {
            let available =
                text("sys/devices/system/clocksource/clocksource0/available_clocksource")
                    .map(|a| a.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default();
            (c.trim().to_owned(), available)
        });
    let steal_per_mille = (steal_secs > 0)
        .then(|| {
            let before = parse_steal(&text("proc/stat")?)?;
            std::thread::sleep(Duration::from_secs(steal_secs));
            let after = parse_steal(&text("proc/stat")?)?;
            Some((steal_per_mille(before, after), steal_secs))
        })
        .flatten();
    HostFacts {
        online_cores,
        allowed: Vec::new(),
        nofile: (0, 0),
        memlock: (0, 0),
        ipc_lock: false,
        kernel,
        port_range: text("proc/sys/net/ipv4/ip_local_port_range").and_then(|t| parse_pair(&t)),
        tcp_tw_reuse: number("proc/sys/net/ipv4/tcp_tw_reuse").map(|n| n as u32),
        somaxconn: number("proc/sys/net/core/somaxconn"),
        conntrack,
        nic_irqs: nic_irqs(root),
        governors,
        thp: text("sys/kernel/mm/transparent_hugepage/enabled").and_then(|t| selected(&t)),
        allocator_thp: std::env::var_os(crate::allocator::THP_OVERRIDE_ENV)
            .is_some_and(|v| v != "0"),
        steal_per_mille,
        loadavg: text("proc/loadavg").and_then(|t| t.split_whitespace().next()?.parse().ok()),
        clocksource,
        io_uring_disabled: number("proc/sys/kernel/io_uring_disabled").map(|n| n as u32),
        uring: uring::UringFacts::unavailable("not probed".to_owned()),
    }
}

fn rlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live local of that type.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return (0, 0);
    }
    let unlimited = |n: libc::rlim_t| if n == libc::RLIM_INFINITY { u64::MAX } else { n };
    (unlimited(limit.rlim_cur), unlimited(limit.rlim_max))
}

/// The capability number of CAP_IPC_LOCK (linux/capability.h).
const CAP_IPC_LOCK: u32 = 14;

/// Whether the `CapEff:` mask of a /proc/PID/status has capability `cap`.
pub fn has_capability(status: &str, cap: u32) -> Option<bool> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    let mask = u64::from_str_radix(hex, 16).ok()?;
    Some(mask & (1 << cap) != 0)
}

/// `6.18.44-fc-v1045` -> (6, 18).
pub fn parse_kernel(release: &str) -> (u32, u32) {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// `32768\t60999` -> (32768, 60999).
pub fn parse_pair(text: &str) -> Option<(u32, u32)> {
    let mut it = text.split_whitespace().map(|p| p.parse().ok());
    Some((it.next()??, it.next()??))
}

/// The bracketed choice of a sysfs mode file: `always [madvise] never` -> `madvise`.
pub fn selected(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_owned())
}

/// (total jiffies, steal jiffies) of the `cpu` line of /proc/stat.
pub fn parse_steal(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest times are inside user).
    let total = fields.iter().take(8).sum();
    Some((total, *fields.get(7)?))
}

/// Steal between two samples, in tenths of a percent.
pub fn steal_per_mille(before: (u64, u64), after: (u64, u64)) -> u64 {
    let total = after.0.saturating_sub(before.0).max(1);
    after.1.saturating_sub(before.1) * 1000 / total
}

/// The network interfaces' interrupts: the names of /sys/class/net (but `lo`) and of their
/// devices (a virtio NIC's interrupts are named for `virtio0`, not `eth0`), matched against
/// /proc/interrupts, with each one's /proc/irq/N/smp_affinity_list.
fn nic_irqs(root: &Path) -> Vec<NicIrq> {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir(root.join("sys/class/net")) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "lo" {
                continue;
            }
            if let Ok(device) = std::fs::read_link(entry.path().join("device")) {
                if let Some(d) = device.file_name() {
                    names.push(d.to_string_lossy().into_owned());
                }
            }
            names.push(name);
        }
    }
    let Ok(interrupts) = std::fs::read_to_string(root.join("proc/interrupts")) else {
        return Vec::new();
    };
    parse_interrupts(&interrupts, &names)
        .into_iter()
        .map(|(irq, name)| {
            let cores =
                std::fs::read_to_string(root.join(format!("proc/irq/{irq}/smp_affinity_list")))
                    .ok()
                    .and_then(|t| parse_cpuset(t.trim()).ok())
                    .unwrap_or_default();
            NicIrq { irq, name, cores }
        })
        .collect()
}

/// The numbered interrupts of /proc/interrupts whose action names one of `names` (`eth0`,
/// `eth0-TxRx-3`, `virtio0-input.0`, `mlx5_comp3@pci:...` for `mlx5_comp`).
pub fn parse_interrupts(text: &str, names: &[String]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((irq, rest)) = line.trim_start().split_once(':') else { continue };
        let Ok(irq) = irq.parse::<u32>() else { continue };
        let Some(action) = rest.split_whitespace().last() else { continue };
        let matches = names.iter().any(|n| {
            action == n
                || action
                    .strip_prefix(n.as_str())
                    .is_some_and(|tail| tail.starts_with(['-', '@', '.', '_']))
        });
        if matches {
            out.push((irq, action.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERRUPTS: &str = "           CPU0       CPU1\n\
          1:          9          0   IO-APIC   1-edge      i8042\n\
         24:          0          0   PCI-MSI 49152-edge      virtio0-config\n\
         25:     123456          0   PCI-MSI 49153-edge      virtio0-input.0\n\
         26:          1      54321   PCI-MSI 49154-edge      virtio0-output.0\n\
         27:          0          0   PCI-MSI 49155-edge      virtio10-input.0\n\
        NMI:          0          0   Non-maskable interrupts\n";

    #[test]
    fn interrupts_of_the_nic_are_found_by_interface_and_device_name() {
        let names = vec!["virtio0".to_owned(), "eth0".to_owned()];
        let found = parse_interrupts(INTERRUPTS, &names);
        assert_eq!(
            found,
            vec![
                (24, "virtio0-config".to_owned()),
                (25, "virtio0-input.0".to_owned()),
                (26, "virtio0-output.0".to_owned())
            ]
        );
    }

    #[test]
    fn small_parsers() {
        assert_eq!(parse_kernel("6.18.44-fc-v1045\n"), (6, 18));
        assert_eq!(parse_kernel("5.4.0"), (5, 4));
        assert_eq!(parse_pair("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_pair("1"), None);
        assert_eq!(selected("always [madvise] never\n"), Some("madvise".to_owned()));
        assert_eq!(selected("none"), None);
        let stat = "cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_steal(stat), Some((1000, 35)));
        assert_eq!(steal_per_mille((1000, 35), (2000, 60)), 25);
        assert_eq!(
            has_capability("Name:\tx\nCapEff:\t000001ffffffffff\n", CAP_IPC_LOCK),
            Some(true)
        );
        assert_eq!(has_capability("CapEff:\t0000000000002000\n", CAP_IPC_LOCK), Some(false));
        assert_eq!(has_capability("CapEff:\t0000000000004000\n", CAP_IPC_LOCK), Some(true));
        assert_eq!(has_capability("nothing", CAP_IPC_LOCK), None);
    }

    /// A fixture /proc and /sys: what the reader makes of them.
    #[test]
    fn a_fixture_tree_reads_into_facts() {
        let root = tempfile::tempdir().unwrap();
        let put = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        put("sys/devices/system/cpu/online", "0-3\n");
        put("proc/sys/kernel/osrelease", "5.10.0-21-amd64\n");
        put("proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n");
        put("proc/sys/net/ipv4/tcp_tw_reuse", "2\n");
        put("proc/sys/net/core/somaxconn", "4096\n");
        put("proc/sys/net/netfilter/nf_conntrack_max", "262144\n");
        put("proc/sys/net/netfilter/nf_conntrack_count", "17\n");
        put("sys/devices/system/cpu/cpu1/cpufreq/scaling_governor", "powersave\n");
        put("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n");
        put("proc/loadavg", "0.52 0.40 0.30 1/200 12345\n");
        put("sys/devices/system/clocksource/clocksource0/current_clocksource", "kvm-clock\n");
        put(
            "sys/devices/system/clocksource/clocksource0/available_clocksource",
            "kvm-clock tsc acpi_pm \n",
        );
        put("proc/interrupts", INTERRUPTS);
        put("proc/irq/25/smp_affinity_list", "0-1\n");
        put("proc/sys/kernel/io_uring_disabled", "0\n");
        std::fs::create_dir_all(root.path().join("sys/class/net/lo")).unwrap();
        std::fs::create_dir_all(root.path().join("sys/class/net/eth0")).unwrap();
        std::fs::create_dir_all(root.path().join("sys/devices/virtio0")).unwrap();
        std::os::unix::fs::symlink(
            root.path().join("sys/devices/virtio0"),
            root.path().join("sys/class/net/eth0/device"),
        )
        .unwrap();
        let f = read_files(root.path(), 0);
        assert_eq!(f.online_cores, 4);
        assert_eq!(f.kernel, (5, 10));
        assert_eq!(f.port_range, Some((32768, 60999)));
        assert_eq!(f.tcp_tw_reuse, Some(2));
        assert_eq!(f.somaxconn, Some(4096));
        assert_eq!(f.conntrack, Some((17, 262144)));
        assert_eq!(f.governors, vec![(1, "powersave".to_owned())]);
        assert_eq!(f.thp.as_deref(), Some("always"));
        assert_eq!(f.loadavg, Some(0.52));
        assert_eq!(f.clocksource.as_ref().unwrap().0, "kvm-clock");
        assert_eq!(f.io_uring_disabled, Some(0));
        assert_eq!(f.steal_per_mille, None);
        let irqs: Vec<(u32, Vec<usize>)> =
            f.nic_irqs.iter().map(|i| (i.irq, i.cores.clone())).collect();
        assert_eq!(irqs, vec![(24, vec![]), (25, vec![0, 1]), (26, vec![])]);
        // An empty root: nothing known, nothing invented.
        let empty = tempfile::tempdir().unwrap();
        let f = read_files(empty.path(), 0);
        assert_eq!((f.port_range, f.conntrack, f.thp, f.clocksource), (None, None, None, None));
        assert!(f.nic_irqs.is_empty());
    }
}
