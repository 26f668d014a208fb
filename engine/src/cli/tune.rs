//! `cpra tune [--config FILE] [--apply] [--steal-seconds S]`: checks the host against the
//! runtime settings, one line per check (`OK|WARN|FAIL  what  (the command that fixes it)`),
//! exit 1 on any FAIL; `--apply` (root) makes the changes the printed lines name and says
//! how to undo each. `cpra tune config [--cores N] [--monitors M] [--memory BYTES]
//! [--nofile N]` prints a tuned runtime settings file.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE};
use crate::settings::{allowed_cores, parse_size, resolve, spread_cores, RuntimeSettings};
use crate::tune::generate::{to_yaml, tune, Machine};
use crate::tune::{checks, plan, Status};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TuneArgs {
    #[command(subcommand)]
    pub action: Option<TuneAction>,
    /// The runtime settings to check the host against (as given to `cpra run --config`);
    /// default: `cpra run`'s defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Make the changes the WARN and FAIL lines name (root): sysctls, IRQ affinity, CPU
    /// governor, THP, clocksource. Each is printed with the command that undoes it.
    #[arg(long)]
    pub apply: bool,
    /// Seconds to sample steal time over (0: not sampled).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub steal_seconds: u64,
}

#[derive(Debug, Subcommand)]
pub enum TuneAction {
    /// Print a runtime settings file tuned for a machine (default: this one).
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Cores the machine has (default: the cores this process may use).
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Monitors to size for, all due every second (default: every shard at its peak).
    #[arg(long, value_name = "M")]
    pub monitors: Option<u64>,
    /// The machine's memory (`64GiB`, bytes; default: this machine's MemTotal).
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// The hard RLIMIT_NOFILE CPRA will run under (default: this process's).
    #[arg(long, value_name = "N")]
    pub nofile: Option<u64>,
}

/// The most cores `tune config` sizes for: the most shards CPRA runs.
const MAX_TUNE_CORES: usize = crate::limits::MAX_SHARDS;
/// The most monitors `tune config` sizes for: the most `cpra gen` writes.
const MAX_TUNE_MONITORS: u64 = crate::limits::MAX_GEN_MONITORS;

pub fn run(args: &TuneArgs) -> i32 {
    let mut out = std::io::stdout().lock();
    match &args.action {
        Some(TuneAction::Config(c)) => config(c, &mut out),
        None => check(args, &mut out),
    }
}

fn check(args: &TuneArgs, out: &mut dyn Write) -> i32 {
    let asked = match &args.config {
        None => RuntimeSettings::default(),
        Some(path) => match crate::settings::load(path) {
            Ok(s) => s,
            Err(problems) => {
                for p in problems {
                    let _ = writeln!(out, "error: {p}");
                }
                return EXIT_INVALID;
            }
        },
    };
    let effective = match resolve(&asked, &allowed_cores(), &spread_cores) {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_INVALID;
        }
    };
    if args.apply && !is_root() {
        let _ = writeln!(out, "error: --apply changes kernel settings: run it as root (or leave --apply out to check only)");
        return EXIT_UNREADABLE;
    }
    let facts = crate::tune::read(Path::new("/"), &effective, args.steal_seconds.min(60));
    let all = checks(&facts, &effective);
    for c in &all {
        let _ = writeln!(out, "{c}");
    }
    let failed = all.iter().any(|c| c.status == Status::Fail);
    if args.apply {
        let changes = plan(&all);
        if changes.is_empty() {
            let _ = writeln!(out, "nothing to change");
        }
        for change in &changes {
            match std::fs::write(&change.path, &change.to) {
                Ok(()) => {
                    let _ =
                        writeln!(out, "changed: {}  (undo: {})", change.command(), change.undo());
                }
                Err(e) => {
                    let _ = writeln!(out, "not changed: {}: {e}", change.command());
                }
            }
        }
        if !changes.is_empty() {
            let _ = writeln!(
                out,
                "these last until reboot: to keep the sysctls, put them in /etc/sysctl.d/90-cpra.conf"
            );
        }
    }
    if failed {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn config(args: &ConfigArgs, out: &mut dyn Write) -> i32 {
    let cores = args.cores.unwrap_or_else(|| allowed_cores().len());
    if cores == 0 || cores > MAX_TUNE_CORES {
        let _ = writeln!(out, "error: --cores {cores}: expected 1 to {MAX_TUNE_CORES}");
        return EXIT_UNREADABLE;
    }
    if let Some(m) = args.monitors.filter(|&m| m > MAX_TUNE_MONITORS) {
        let _ = writeln!(
            out,
            "error: --monitors {m}: more than {MAX_TUNE_MONITORS}, the most accepted"
        );
        return EXIT_UNREADABLE;
    }
    let memory_bytes = match &args.memory {
        Some(text) => match parse_size(text) {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                let _ = writeln!(out, "error: --memory {text}: must be more than 0");
                return EXIT_UNREADABLE;
            }
            Err(e) => {
                let _ = writeln!(out, "error: --memory {text}: {e}");
                return EXIT_UNREADABLE;
            }
        },
        None => mem_total().unwrap_or(cores as u64 * (4 << 30)),
    };
    let nofile = args
        .nofile
        .unwrap_or_else(|| crate::fd_budget::raise_nofile_limit().map_or(1024, |(_, now)| now));
    let machine = Machine { cores, monitors: args.monitors, memory_bytes, nofile };
    let _ = write!(out, "{}", to_yaml(machine, &tune(machine)));
    EXIT_OK
}

/// MemTotal from /proc/meminfo, in bytes.
fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
