//! A loaded manifest and how it runs: [`start_plan`] builds, on each shard's own thread, the
//! shard's [`Monitors`] (its probe and result handler, with its actions and resolver client)
//! and starts the runtime with them.
//!
//! What it is for: wiring the manifest, the resolver thread, the fleet status and the actions
//! into shards. What it is not for: starting threads or routing monitors (`runtime`), or what
//! a shard does with its monitors (`shard`).

use std::rc::Rc;
use std::sync::Arc;

use cpra_net::resolver::{Resolver, ResolverConfig};

use crate::actions::{Actions, ActionsConfig};
use crate::clock::{Clock, MonotonicClock};
use crate::manifest::{Monitor, Registry};
use crate::probe::ShardInfo;
use crate::runtime::{shard_count, Runtime, RuntimeConfig, RuntimeError};
use crate::shard::monitors::ShardJournal;
use crate::shard::queries::FleetQueries;
use crate::shard::{AlertObserver, FleetStatus, Monitors, WallClock};
use crate::store::{Journal, Recovery};
use crate::table::MonitorSpec;

/// The loaded manifest, read-only and shared by every shard (cold config).
#[derive(Debug, Default)]
pub struct Plan {
    pub monitors: Vec<Monitor>,
    pub registry: Registry,
}

impl Plan {
    /// The runtime's view of the monitors: `cold` is the index in `monitors`.
    pub fn specs(&self) -> Vec<MonitorSpec> {
        (0..self.monitors.len()).map(|i| self.spec(i)).collect()
    }

    /// The runtime's view of monitor `index`.
    pub fn spec(&self, index: usize) -> MonitorSpec {
        let m = &self.monitors[index];
        MonitorSpec {
            id_hash: m.id_hash(),
            interval_ms: m.interval_ms().min(u64::from(u32::MAX)) as u32,
            timeout_ms: m.timeout_ms().min(u64::from(u32::MAX)) as u32,
            enabled: m.enabled,
            cold: index as u32,
        }
    }
}

/// How to run a plan.
#[derive(Clone)]
pub struct PlanConfig {
    pub runtime: RuntimeConfig,
    /// Adjusts each shard's actions settings (built on the shard from the production
    /// defaults, the runtime's clock and the shard's resolver); `None` keeps the defaults.
    pub actions: Option<ActionsTweak>,
    /// Called on the shard for each alert as it is queued.
    pub observer: Option<AlertObserver>,
    /// Where maintenance windows read Unix time (ms); `None` is the system clock. Tests pass
    /// a virtual one.
    pub wall_clock: Option<WallClock>,
    /// What the data dir's journal held, routed to this run's shards (`store::recover`);
    /// `None` runs without a journal.
    pub journal: Option<Arc<Recovery>>,
    /// Every colour's cooldown (`cpra run --cooldown`); `None`: the state machine's default.
    pub cooldown_ms: Option<u32>,
}

/// Changes a shard's [`ActionsConfig`] (e.g. shorter retry pauses in tests).
pub type ActionsTweak = Arc<dyn Fn(&mut ActionsConfig) + Send + Sync>;

/// A running plan: the runtime plus the fleet's status.
pub struct RunningPlan {
    pub runtime: Runtime,
    pub status: FleetStatus,
    /// Each shard's ring of questions from the API.
    pub queries: FleetQueries,
    /// Kept so the resolver thread lives as long as the shards.
    _resolver: Resolver,
}

/// Starts the shards for `plan`. Fails (naming the monitor) if a spec is refused.
pub fn start_plan(plan: Arc<Plan>, config: PlanConfig) -> Result<RunningPlan, RuntimeError> {
    // Checked before the status slots are sized by it.
    let shards = shard_count(config.runtime.shards).map_err(RuntimeError::Config)?;
    let status = FleetStatus::new(shards);
    let queries = FleetQueries::new(shards);
    let resolver_config =
        ResolverConfig { threads: config.runtime.resolver_threads, ..ResolverConfig::default() };
    let resolver = Resolver::start(resolver_config)
        .map_err(|e| RuntimeError::Start(format!("cannot start the resolver thread: {e}")))?;
    let specs = plan.specs();
    let factory = {
        let status = status.clone();
        let queries = queries.clone();
        let resolver = resolver.clone();
        let actions = config.actions.clone();
        let observer = config.observer.clone();
        let wall_clock = config.wall_clock.clone();
        let recovery = config.journal.clone();
        let cooldown_ms = config.cooldown_ms;
        move |info: &ShardInfo| {
            let shard_resolver = Rc::new(resolver.shard_client());
            let clock: Rc<dyn Clock> = Rc::new(MonotonicClock::new(info.epoch));
            let mut actions_config = ActionsConfig::new(clock);
            actions_config.resolver = Some(shard_resolver.clone());
            actions_config.task_queue = Some(info.queues.actions);
            if let Some(tweak) = &actions {
                tweak(&mut actions_config);
            }
            let actions = Actions::new(actions_config);
            let journal = recovery.as_ref().and_then(|recovery| {
                let start = recovery.shards.get(info.shard)?;
                let journal = Journal::start(
                    info.shard,
                    start,
                    info.shards,
                    recovery.fsync,
                    info.queues.background,
                );
                Some(ShardJournal { journal, recovery: recovery.clone() })
            });
            let monitors = Monitors::new(
                info,
                plan.clone(),
                shard_resolver,
                actions,
                status.clone(),
                queries.clone(),
                observer.clone(),
                wall_clock.clone(),
                journal,
                cooldown_ms,
            );
            (monitors.clone(), monitors)
        }
    };
    let runtime_config = RuntimeConfig { shards, ..config.runtime };
    let runtime = Runtime::start_with(runtime_config, specs, factory)?;
    Ok(RunningPlan { runtime, status, queries, _resolver: resolver })
}
