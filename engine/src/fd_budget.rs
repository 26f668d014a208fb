//! The file-descriptor budget: how many checks and alert deliveries a shard may have in flight
//! so that every descriptor CPRA may hold at once fits under `RLIMIT_NOFILE`.
//!
//! What it is for: at start, raising the soft limit to the hard one ([`raise_nofile_limit`])
//! and sizing in-flight work to the result ([`budget`], pure, with the arithmetic's table of
//! tests), so that a slow fleet does not run the process out of descriptors; refusing to
//! start, with what to do, when even a minimal budget does not fit ([`FdShortage`]). What it
//! is not for: a socket that cannot be opened anyway (inherited descriptors, another program
//! sharing the system-wide table): such a check is delayed, never failed
//! (`ShardCore::complete_delayed`).
//!
//! Each check holds at most one descriptor (CPRA never keeps HTTP connections alive between
//! checks, so the HTTP client's keep-alive pool stays empty; ICMP shares the shard's two
//! sockets, counted apart), and each alert delivery one.

use std::fmt;
use std::sync::Arc;

use cpra_net::resolver::ResolverConfig;

use crate::limits::{
    DEFAULT_MAX_DELIVERIES_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_OPEN_LOG_FILES,
    DELIVERY_SHARE_DIVISOR, FDS_ICMP_PER_SHARD, FDS_JOURNAL_PER_SHARD, FDS_PER_EXECUTOR,
    FDS_PER_RESOLVER_THREAD, FD_RESERVE_INTERVENTIONS_PER_SHARD, FD_RESERVE_PROCESS,
    MIN_CHECKS_IN_FLIGHT_PER_SHARD, MIN_DELIVERIES_IN_FLIGHT_PER_SHARD,
};
use crate::plan::ActionsTweak;
use crate::runtime::online_cores;

/// What a shard may have in flight under a descriptor limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdBudget {
    /// The limit the budget was made for (the soft `RLIMIT_NOFILE`).
    pub limit: u64,
    pub shards: u64,
    /// Checks in flight per shard (the ring's capacity and its probe tasks).
    pub checks_per_shard: u32,
    /// Alert deliveries in flight per shard (`ActionsConfig::max_in_flight`).
    pub deliveries_per_shard: usize,
}

impl FdBudget {
    /// Applies the deliveries' share to a shard's actions settings.
    pub fn actions_tweak(&self) -> ActionsTweak {
        let deliveries = self.deliveries_per_shard;
        // The budget is already at most what the settings ask (`notifier_concurrency`).
        Arc::new(move |config| config.max_in_flight = deliveries)
    }
}

impl fmt::Display for FdBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fd limit {}: at most {} checks in flight per shard ({} shard(s); {} alert deliveries \
             in flight per shard)",
            self.limit, self.checks_per_shard, self.shards, self.deliveries_per_shard
        )
    }
}

/// The limit is too low for even a minimal budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdShortage {
    pub limit: u64,
    pub shards: u64,
    /// The smallest limit that gives every shard its minimal budget.
    pub needed: u64,
}

impl fmt::Display for FdShortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FdShortage { limit, shards, needed } = *self;
        write!(
            f,
            "the file-descriptor limit (RLIMIT_NOFILE) is {limit}, too low for {shards} shards: \
             CPRA needs at least {needed} (each shard at least {MIN_CHECKS_IN_FLIGHT_PER_SHARD} \
             checks and {MIN_DELIVERIES_IN_FLIGHT_PER_SHARD} alert deliveries in flight, plus its \
             executor, log files, journal and interventions). Raise the hard limit: `ulimit -n {needed}` \
             (as root, or in /etc/security/limits.conf) in the shell that starts CPRA, \
             LimitNOFILE={needed} in a systemd unit, `--ulimit nofile={needed}` for a container; \
             or run fewer shards with --shards"
        )
    }
}

/// The budget for `shards` shards under `limit` descriptors, with `resolver_threads` resolver
/// threads. Pure. Every shard first gets its fixed needs (executor, log files, interventions,
/// ICMP) and the process its reserve; what is left per shard goes to checks, except a share
/// (at most a `DELIVERY_SHARE_DIVISOR`th, within the deliveries' bounds) to alert deliveries.
pub fn budget(limit: u64, shards: u64, resolver_threads: u64) -> Result<FdBudget, FdShortage> {
    let wanted = Wanted {
        checks_per_shard: DEFAULT_MAX_IN_FLIGHT,
        deliveries_per_shard: DEFAULT_MAX_DELIVERIES_IN_FLIGHT,
    };
    budget_for(limit, shards, resolver_threads, wanted)
}

/// What the runtime settings ask a shard to have in flight (`in_flight_per_shard`,
/// `notifier_concurrency`); the budget gives at most this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub checks_per_shard: u32,
    pub deliveries_per_shard: usize,
}

/// [`budget`] with the in-flight bounds the settings ask for instead of the defaults.
pub fn budget_for(
    limit: u64,
    shards: u64,
    resolver_threads: u64,
    wanted: Wanted,
) -> Result<FdBudget, FdShortage> {
    assert!(shards > 0, "a budget for no shard");
    let process = FD_RESERVE_PROCESS + resolver_threads.saturating_mul(FDS_PER_RESOLVER_THREAD);
    let fixed = FDS_PER_EXECUTOR
        + DEFAULT_MAX_OPEN_LOG_FILES as u64
        + FD_RESERVE_INTERVENTIONS_PER_SHARD
        + FDS_ICMP_PER_SHARD
        + FDS_JOURNAL_PER_SHARD;
    let minimum =
        u64::from(MIN_CHECKS_IN_FLIGHT_PER_SHARD) + MIN_DELIVERIES_IN_FLIGHT_PER_SHARD as u64;
    let needed = process.saturating_add(shards.saturating_mul(fixed + minimum));
    if limit < needed {
        return Err(FdShortage { limit, shards, needed });
    }
    let per_shard = (limit - process) / shards - fixed;
    debug_assert!(per_shard >= minimum);
    let deliveries = (per_shard / DELIVERY_SHARE_DIVISOR)
        .clamp(
            MIN_DELIVERIES_IN_FLIGHT_PER_SHARD as u64,
            (wanted.deliveries_per_shard as u64).max(MIN_DELIVERIES_IN_FLIGHT_PER_SHARD as u64),
        )
        .min(per_shard - u64::from(MIN_CHECKS_IN_FLIGHT_PER_SHARD));
    let checks = (per_shard - deliveries).min(u64::from(wanted.checks_per_shard));
    Ok(FdBudget {
        limit,
        shards,
        checks_per_shard: checks as u32,
        deliveries_per_shard: deliveries as usize,
    })
}

/// The descriptor limit under which `shards` shards get all they ask for (`wanted`): what
/// `cpra tune` asks `RLIMIT_NOFILE` to be.
pub fn needed_for(shards: u64, resolver_threads: u64, wanted: Wanted) -> u64 {
    let process = FD_RESERVE_PROCESS + resolver_threads.saturating_mul(FDS_PER_RESOLVER_THREAD);
    let fixed = FDS_PER_EXECUTOR
        + DEFAULT_MAX_OPEN_LOG_FILES as u64
        + FD_RESERVE_INTERVENTIONS_PER_SHARD
        + FDS_ICMP_PER_SHARD
        + FDS_JOURNAL_PER_SHARD;
    let per_shard = fixed + u64::from(wanted.checks_per_shard) + wanted.deliveries_per_shard as u64;
    process.saturating_add(shards.saturating_mul(per_shard))
}

/// The smallest limit `shards` shards start under (each with its minimal budget).
pub fn minimum_for(shards: u64, resolver_threads: u64) -> u64 {
    let wanted = Wanted {
        checks_per_shard: MIN_CHECKS_IN_FLIGHT_PER_SHARD,
        deliveries_per_shard: MIN_DELIVERIES_IN_FLIGHT_PER_SHARD,
    };
    needed_for(shards, resolver_threads, wanted)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (an unprivileged process may) and returns
/// `(before, now)`. A soft limit the kernel refuses to raise (a hard limit above
/// `fs.nr_open`) is left as it was.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live local of that type.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads one `rlimit` through a pointer to a live local.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok((before, limit.rlim_cur))
}

/// At the start of `cpra run` and `cpra demo`: raises the soft limit, makes the budget for
/// `shards` (0: one per online core) and says so once in the log. `Err` is the message to
/// print before refusing to start.
pub fn prepare(shards: usize) -> Result<FdBudget, String> {
    let wanted = Wanted {
        checks_per_shard: DEFAULT_MAX_IN_FLIGHT,
        deliveries_per_shard: DEFAULT_MAX_DELIVERIES_IN_FLIGHT,
    };
    prepare_for(shards, ResolverConfig::default().threads, wanted)
}

/// [`prepare`] for the runtime settings: `resolver_threads` and what a shard should have in
/// flight.
pub fn prepare_for(
    shards: usize,
    resolver_threads: usize,
    wanted: Wanted,
) -> Result<FdBudget, String> {
    // More shards than cores is refused by the runtime, with that reason: the budget is made
    // for at most the shards that can start, so it does not refuse first for another one.
    let cores = online_cores();
    let shards = if shards == 0 { cores } else { shards.min(cores) };
    let (before, limit) = raise_nofile_limit()
        .map_err(|e| format!("cannot read the file-descriptor limit (RLIMIT_NOFILE): {e}"))?;
    let budget = budget_for(limit, shards as u64, resolver_threads as u64, wanted)
        .map_err(|shortage| shortage.to_string())?;
    if before < limit {
        tracing::info!("{budget} (soft limit raised from {before} to the hard limit)");
    } else {
        tracing::info!("{budget}");
    }
    Ok(budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (limit, shards, resolver threads) -> Ok((checks, deliveries)) or Err(needed).
    type Row = (u64, u64, u64, Result<(u32, usize), u64>);

    #[test]
    fn the_budget_fits_under_the_limit_and_says_what_is_needed_when_it_cannot() {
        // process: 17 + 4 × 3 = 29; per shard fixed: 6 + 16 + 8 + 2 + 2 = 34; minimum 16 + 4.
        let table: &[Row] = &[
            // The case: `ulimit -n 256`, two cores.
            (256, 2, 4, Ok((60, 19))),
            // A test's: 128, one shard: 128 - 29 - 34 = 65, a quarter (16) to deliveries.
            (128, 1, 4, Ok((49, 16))),
            // Too low for two shards: 29 + 2 × (34 + 20) = 137 needed.
            (128, 2, 4, Err(137)),
            (136, 2, 4, Err(137)),
            // Exactly the minimum: 16 checks, 4 deliveries each.
            (137, 2, 4, Ok((16, 4))),
            // Just above: 24 each, a quarter (6) to deliveries.
            (145, 2, 4, Ok((18, 6))),
            // The common 1024 default: deliveries at their bound (32).
            (1024, 2, 4, Ok((431, 32))),
            // A big machine under a low hard limit still runs, with smaller shares.
            (4096, 64, 4, Ok((22, 7))),
            // Plenty: checks at their default bound.
            (1 << 20, 2, 4, Ok((DEFAULT_MAX_IN_FLIGHT, 32))),
            (u64::MAX, 64, 16, Ok((DEFAULT_MAX_IN_FLIGHT, 32))),
            // Resolver threads count: 16 threads need 36 more than 4.
            (137, 2, 16, Err(173)),
            // Far too low, and absurd shard counts, do not overflow.
            (0, 1, 4, Err(83)),
            (1024, u64::MAX, 4, Err(u64::MAX)),
        ];
        for &(limit, shards, threads, expected) in table {
            let got = budget(limit, shards, threads)
                .map(|b| (b.checks_per_shard, b.deliveries_per_shard))
                .map_err(|s| s.needed);
            assert_eq!(got, expected, "limit {limit}, {shards} shards, {threads} threads");
            if let Ok((checks, deliveries)) = got {
                // What the budget hands out fits: process + shards × (fixed + checks + deliveries).
                let used = FD_RESERVE_PROCESS
                    + FDS_PER_RESOLVER_THREAD * threads
                    + shards * (34 + u64::from(checks) + deliveries as u64);
                assert!(used <= limit, "limit {limit}: {used} used");
            }
        }
    }

    #[test]
    fn the_settings_bound_what_the_budget_gives() {
        let wanted = Wanted { checks_per_shard: 100, deliveries_per_shard: 8 };
        let b = budget_for(1 << 20, 2, 4, wanted).unwrap();
        assert_eq!((b.checks_per_shard, b.deliveries_per_shard), (100, 8));
        // More than the default is given when the limit allows it.
        let wanted = Wanted { checks_per_shard: 50_000, deliveries_per_shard: 128 };
        let b = budget_for(1 << 20, 2, 4, wanted).unwrap();
        assert_eq!((b.checks_per_shard, b.deliveries_per_shard), (50_000, 128));
        // And less when it does not: the limit wins over the settings.
        let b = budget_for(1024, 2, 4, wanted).unwrap();
        assert_eq!((b.checks_per_shard, b.deliveries_per_shard), (348, 115));
    }

    #[test]
    fn what_tune_asks_for_is_what_the_budget_needs() {
        let wanted = Wanted { checks_per_shard: 4096, deliveries_per_shard: 32 };
        let needed = needed_for(2, 4, wanted);
        assert_eq!(needed, 29 + 2 * (34 + 4096 + 32));
        let b = budget_for(needed, 2, 4, wanted).unwrap();
        assert_eq!((b.checks_per_shard, b.deliveries_per_shard), (4096, 32));
        // One less and a shard gets less.
        let b = budget_for(needed - 1, 2, 4, wanted).unwrap();
        assert!(b.checks_per_shard < 4096);
        assert_eq!(minimum_for(2, 4), 137);
        assert!(budget(minimum_for(2, 4), 2, 4).is_ok());
        assert!(budget(minimum_for(2, 4) - 1, 2, 4).is_err());
    }

    #[test]
    fn the_messages_say_the_limit_and_what_to_do() {
        let b = budget(256, 2, 4).unwrap();
        assert_eq!(
            b.to_string(),
            "fd limit 256: at most 60 checks in flight per shard (2 shard(s); 19 alert deliveries \
             in flight per shard)"
        );
        let e = budget(100, 2, 4).unwrap_err().to_string();
        assert!(e.contains("RLIMIT_NOFILE) is 100"), "{e}");
        assert!(e.contains("needs at least 137"), "{e}");
        assert!(e.contains("ulimit -n 137") && e.contains("LimitNOFILE=137"), "{e}");
        assert!(e.contains("--shards"), "{e}");
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (before, now) = raise_nofile_limit().unwrap();
        assert!(now >= before);
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as in raise_nofile_limit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(limit.rlim_cur, now);
    }
}
