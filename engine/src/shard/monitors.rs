//! A shard's monitors: what runs a manifest monitor's pulse and what follows its outcome.
//!
//! What it is for: the production [`Probe`] (a monitor's pulse through `cpra-net`, bounded by
//! the job's deadline) and [`ResultHandler`] (the outcome through the state machine, the
//! effects applied: alerts rendered and queued to [`Actions`], interventions started or
//! cancelled, their results fed back as events), plus the shard's status and maintenance
//! windows. Everything here is the shard's own (`Rc`/`RefCell`, nothing shared mutably across
//! cores). What it is not for: scheduling (`shard::core`), deciding (`state.rs`), wording
//! (`alert.rs`) or delivering (`actions`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpra_net::http::{HttpClient, TlsConfigCache};
use cpra_net::icmp::{IcmpClient, IcmpConfig};
use cpra_net::resolver::ShardResolver;
use cpra_net::retry::with_retries;
use cpra_net::tcp::TcpConfig;
use cpra_net::{Deadline, Detail, FailureKind, Outcome};
use rustc_hash::FxHashMap;

use super::control::{Controls, Incidents, MonitorControl, RecentResult, RecentResults};
use super::core::ScheduleChange;
use super::policies::Policies;
use super::queries::{
    Answer, Command, FleetQueries, IncidentRow, LastCheck, ListFilter, MonitorDetail,
    MonitorHealth, MonitorPage, MonitorRow, Question, RecentRow, Refused,
};
use super::reload::ShardReload;
use super::spawn_into;
use super::status::{FleetStatus, StatusSnapshot};
use super::target::{compile, host_of, plain, plain_http, Check, Compiled, Plain};
use super::ShardCore;
use crate::actions::{self, Actions, InterventionResult};
use crate::alert::{acknowledgement, incident_id, render, MonitorInfo, RenderedAlert};
use crate::clock::{Clock, MonotonicClock};
use crate::colour::{Colour, ColourSet};
use crate::limits::{
    API_LIST_MAX_LIMIT, API_QUERY_RING, MAX_INTERVAL_MS, MIN_INTERVAL_MS,
    REMOVED_INCIDENT_SEQS_KEPT,
};
use crate::manifest::{Monitor, Notify, Pulse};
use crate::plan::Plan;
use crate::probe::{Probe, ResultHandler, ShardInfo};
use crate::ring::Job;
use crate::state::{transition, Effect, Event, MonitorState, Policy, MAX_COOLDOWN_MS};
use crate::store::{
    config_check, endpoint_check, Journal, Record, Recovery, SavedAlert, SavedControl,
};

/// How often a shard publishes its status and looks at maintenance windows when no window
/// boundary comes sooner: 250 ms keeps the status line fresh at 4 cheap wake-ups a second.
pub const HOUSEKEEPING_MS: u64 = 250;

/// How often a shard looks for questions from the API: an API list waits at most this long
/// for a shard to start answering; an empty look is one atomic load, 100 times a second.
pub const QUERY_POLL_MS: u64 = 10;

// What the API's monitor list costs a monitor: its last outcome and time (here) and its place
// in the id order (4 bytes); docs/api.md states the sum.
const _: () = assert!(std::mem::size_of::<(u64, Outcome)>() <= 56);

/// The state machine's clock is the shard's plus this. The journal keeps cooldowns as the Unix
/// times of the last sends; a send shortly before this process started falls before the
/// shard clock's zero, and the cooldowns count in unsigned time. Starting the state machine's
/// clock one longest cooldown in leaves room for every send that can still delay an alert.
pub const STATE_CLOCK_ORIGIN_MS: u64 = MAX_COOLDOWN_MS as u64;

/// Called on the shard for every alert as it is queued (the demo prints it; tests record it).
pub type AlertObserver = Arc<dyn Fn(&RenderedAlert) + Send + Sync>;

/// Unix time in ms, for maintenance windows (cron in a timezone is wall-clock time).
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The compiled check of a monitor that is not plain (see `target::plain`), kept from its first
/// check: for the address it was compiled against, with the host it resolves (parsed once).
enum Prepared {
    Ready {
        host: Option<(Box<str>, u16)>,
        addr: Option<SocketAddr>,
        compiled: Compiled,
    },
    /// The config cannot be compiled (logged once); every check fails `unsupported`.
    Invalid,
}

/// What the last check said, for the status line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Health {
    Unknown,
    Up,
    Down,
}

/// Everything about its monitors that one shard owns beyond scheduling. Created on the shard
/// thread.
pub struct Monitors {
    shard: usize,
    /// The plan in force (a reload replaces it). An `Rc` around the shared `Arc`, so reading a
    /// monitor's config clones a count of this shard's own, not one every core writes.
    plan: RefCell<Rc<ShardPlan>>,
    /// Shard-local monitor index (the core's slot) -> index in `plan.monitors`; `REMOVED` for
    /// a slot whose monitor a reload removed.
    cold: RefCell<Vec<u32>>,
    policies: RefCell<Policies>,
    /// The last incident number of each monitor a reload removed (at most
    /// `REMOVED_INCIDENT_SEQS_KEPT`), for one added back later in this run.
    removed_seqs: RefCell<HashMap<String, u32>>,
    /// `--cooldown` for every colour, if given: applied to monitors a reload adds or changes.
    cooldown_ms: Option<u32>,
    /// The monitors with maintenance windows (shard-local indexes): the only ones the
    /// housekeeping task looks at, so a big shard without windows costs it nothing.
    with_windows: RefCell<Vec<u32>>,
    states: RefCell<Vec<MonitorState>>,
    health: RefCell<Vec<Health>>,
    /// When (shard ms) each monitor's state (up, down, unknown, disabled) last changed, for the
    /// API's "down for 5 min": 8 bytes a monitor, written on a change of state only.
    state_since_ms: RefCell<Vec<u64>>,
    /// The detail of a monitor's last outcome when the recent ring does not keep it (a fixed
    /// explanation, a size, a code out of range: `RecentResult::keeps`), for the API's
    /// `failure.message`; the rest of the last check is the ring's newest result. Only such
    /// monitors have an entry (at most one each), where a table of every monitor's detail
    /// cost 24 bytes a monitor (24 MB at a million), nearly all of them repeating the ring.
    odd_details: RefCell<FxHashMap<u32, Detail>>,
    /// Shard-local indexes in monitor id order: the API's lists page through it.
    by_id: RefCell<Vec<u32>>,
    /// What the API set on each monitor (disabled, silenced): one small record each.
    control: RefCell<Controls>,
    /// Each monitor's last results, for `GET /api/v1/monitors/{id}`.
    recent: RefCell<RecentResults>,
    incidents: RefCell<Incidents>,
    /// Scheduling changes the API asked for, for the dispatcher (`take_schedule_change`);
    /// at most `API_QUERY_RING` (past it the request is answered busy).
    schedule_changes: RefCell<std::collections::VecDeque<ScheduleChange>>,
    /// The compiled checks of the monitors that are not plain, by shard-local index, from
    /// their first check on. A plain monitor (tcp, icmp, plain http: most of a fleet) has no
    /// entry: its check is built per check from the plan.
    prepared: RefCell<FxHashMap<u32, Rc<Prepared>>>,
    tls_cache: RefCell<TlsConfigCache>,
    http: HttpClient,
    /// Made when the shard first has an ICMP monitor (at start or on a reload).
    icmp: RefCell<Option<Rc<IcmpClient>>>,
    resolver: Rc<ShardResolver>,
    actions: Rc<Actions>,
    clock: MonotonicClock,
    status: FleetStatus,
    queries: FleetQueries,
    local_status: Cell<StatusSnapshot>,
    observer: Option<AlertObserver>,
    wall_clock: Option<WallClock>,
    /// `None` without a data dir.
    journal: Option<Rc<Journal>>,
    /// Per monitor, the checksum of its check config the journal records (empty without a
    /// journal).
    configs: RefCell<Vec<u32>>,
    /// The journal's outbox: alerts queued and not yet delivered or given up, by id, for
    /// the snapshots. Bounded by the delivery queue (`DEFAULT_MAX_QUEUED_DELIVERIES`): a
    /// delivery that does not fit is given up at once.
    outbox: RefCell<HashMap<u64, SavedAlert>>,
}

/// A shard's journal and what recovery found for the run.
pub struct ShardJournal {
    pub journal: Rc<Journal>,
    pub recovery: Arc<Recovery>,
}

/// The policy the state machine applies to a monitor: its thresholds (defaults and bounds
/// from `Policy` itself, through the manifest's accessors) and the colours it dispatches.
impl From<&Monitor> for Policy {
    fn from(m: &Monitor) -> Policy {
        let mut dispatch = ColourSet::EMPTY;
        for colour in Colour::ALL {
            if m.codes.dispatches(colour) {
                dispatch = dispatch.with(colour);
            }
        }
        Policy {
            unhealthy: m.unhealthy_threshold(),
            healthy: m.healthy_threshold(),
            has_intervention: m.intervention.is_some(),
            recovery_max_attempts: m.recovery_max_attempts(),
            dispatch,
            ..Policy::default()
        }
    }
}

/// Calls `f` with `m` as alerts show it (its masked id, name, target and intervention): every
/// alert a shard renders, rebuilds or acknowledges names its monitor through this.
fn shown_as<R>(m: &Monitor, f: impl FnOnce(&MonitorInfo<'_>) -> R) -> R {
    let target = m.shown_target();
    let intervention = m.shown_intervention();
    f(&MonitorInfo {
        id: m.shown_id(),
        name: m.shown_name(),
        target: &target,
        intervention: intervention.as_deref(),
    })
}

/// The state machine's policy for `m`, each colour's cooldown from its code's `cooldown`,
/// else the monitor's, else `--cooldown` (`cooldown_ms`, when given), else the default: at
/// start and for monitors a reload adds or changes alike.
fn policy_of(m: &Monitor, cooldown_ms: Option<u32>) -> Policy {
    let mut policy = Policy::from(m);
    let process_ms = cooldown_ms.unwrap_or(crate::state::DEFAULT_COOLDOWN_MS);
    for colour in Colour::ALL {
        policy.cooldown_ms[colour.index()] = m.cooldown_ms_of(colour, process_ms);
    }
    policy
}

impl Monitors {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        info: &ShardInfo,
        plan: Arc<Plan>,
        resolver: Rc<ShardResolver>,
        actions: Rc<Actions>,
        status: FleetStatus,
        queries: FleetQueries,
        observer: Option<AlertObserver>,
        wall_clock: Option<WallClock>,
        journal: Option<ShardJournal>,
        cooldown_ms: Option<u32>,
    ) -> Rc<Monitors> {
        let n = info.monitors.len();
        let cold: Vec<u32> = info.monitors.iter().map(|s| s.cold).collect();
        let manifest_monitors = || cold.iter().map(|&c| &plan.monitors[c as usize]);
        let policies = Policies::new(manifest_monitors().map(|m| policy_of(m, cooldown_ms)));
        let has_icmp = manifest_monitors().any(is_icmp);
        let now_unix_ms = match &wall_clock {
            Some(clock) => clock(),
            None => chrono::Utc::now().timestamp_millis(),
        };
        // What an operator set before a restart holds again: recovery kept only what still
        // means something (a silence may have ended since).
        let mut control = Controls::default();
        if let Some(j) = &journal {
            for (l, m) in manifest_monitors().enumerate() {
                if let Some(saved) = j.recovery.controls.get(&m.id) {
                    let silenced_until_unix_ms = if saved.silenced_until_unix_ms > now_unix_ms {
                        saved.silenced_until_unix_ms
                    } else {
                        0
                    };
                    let saved = MonitorControl { disabled: saved.disabled, silenced_until_unix_ms };
                    control.set(l as u32, saved);
                }
            }
        }
        let disabled_at_start =
            |l: usize, m: &Monitor| control.get(l as u32).disabled.unwrap_or(!m.enabled);
        let disabled =
            manifest_monitors().enumerate().filter(|&(l, m)| disabled_at_start(l, m)).count()
                as u64;
        let unknown = n as u64 - disabled;
        // The scheduler loaded the manifest's flags: a monitor disabled or enabled through
        // the API before the restart changes before the first round dispatches anything.
        let mut schedule_changes = std::collections::VecDeque::with_capacity(API_QUERY_RING);
        for (l, m) in manifest_monitors().enumerate() {
            let monitor = l as u32;
            match control.get(monitor).disabled {
                Some(true) if m.enabled => {
                    schedule_changes.push_back(ScheduleChange::Disable { monitor })
                }
                Some(false) if !m.enabled => {
                    let range = u64::from(MIN_INTERVAL_MS)..=u64::from(MAX_INTERVAL_MS);
                    if range.contains(&m.interval_ms()) {
                        let interval_ms = m.interval_ms() as u32;
                        schedule_changes.push_back(ScheduleChange::Enable { monitor, interval_ms })
                    }
                }
                _ => {}
            }
        }
        // The open incidents, as the API lists them, with who acknowledged them.
        let mut incidents = Incidents::default();
        let mut incidents_open = 0;
        if let Some(j) = &journal {
            for (l, m) in manifest_monitors().enumerate() {
                let Some(saved) = j.recovery.states.get(&m.id) else { continue };
                let state = MonitorState::restore(*saved, false);
                if !state.incident_open() {
                    continue;
                }
                let seq = state.incident_seq();
                let at = match j.recovery.opened_at.get(&m.id) {
                    Some(&(s, at)) if s == seq => at,
                    _ => now_unix_ms,
                };
                incidents.opened(l as u32, seq, at);
                incidents_open += 1;
                let acked = j.recovery.controls.get(&m.id).and_then(|c| c.acked.as_ref());
                if let Some((_, by)) = acked.filter(|(s, _)| *s == seq) {
                    if let Some(record) = incidents.open_mut(l as u32, seq) {
                        record.acknowledged_by = Some(by.clone());
                    }
                }
            }
        }
        let (by_id, with_windows) = indexes(&plan, &cold);
        let clock = MonotonicClock::new(info.epoch);
        let states = match &journal {
            None => vec![MonitorState::new(); n],
            Some(j) => {
                // One reading for every monitor: cooldowns continue where the old process
                // left them, on this process's clock.
                let state_ms = clock.now_ms() + STATE_CLOCK_ORIGIN_MS;
                let unix_ms = wall_clock
                    .as_ref()
                    .map_or_else(|| chrono::Utc::now().timestamp_millis(), |c| c());
                manifest_monitors()
                    .map(|m| match j.recovery.states.get(&m.id) {
                        Some(saved) => {
                            let mut state = MonitorState::restore(*saved, false);
                            state.restore_cooldowns(saved, state_ms, unix_ms);
                            state
                        }
                        None => MonitorState::new(),
                    })
                    .collect()
            }
        };
        let configs = match &journal {
            None => Vec::new(),
            Some(_) => manifest_monitors().map(config_check).collect(),
        };
        let recovery = journal.as_ref().map(|j| j.recovery.clone());
        let monitors = Rc::new(Monitors {
            shard: info.shard,
            policies: RefCell::new(policies),
            removed_seqs: RefCell::new(HashMap::new()),
            cooldown_ms,
            with_windows: RefCell::new(with_windows),
            states: RefCell::new(states),
            health: RefCell::new(vec![Health::Unknown; n]),
            state_since_ms: RefCell::new(vec![0; n]),
            odd_details: RefCell::new(FxHashMap::default()),
            by_id: RefCell::new(by_id),
            control: RefCell::new(control),
            recent: RefCell::new(RecentResults::new(n)),
            incidents: RefCell::new(incidents),
            schedule_changes: RefCell::new(schedule_changes),
            prepared: RefCell::new(FxHashMap::default()),
            tls_cache: RefCell::new(TlsConfigCache::default()),
            http: HttpClient::new(),
            icmp: RefCell::new(has_icmp.then(|| Rc::new(IcmpClient::new()))),
            resolver,
            actions,
            clock,
            status,
            queries,
            local_status: Cell::new(StatusSnapshot {
                unknown,
                disabled,
                incidents_open,
                ..Default::default()
            }),
            observer,
            wall_clock,
            cold: RefCell::new(cold),
            plan: RefCell::new(Rc::new(ShardPlan(plan))),
            journal: journal.map(|j| j.journal),
            configs: RefCell::new(configs),
            outbox: RefCell::new(HashMap::new()),
        });
        spawn_into(housekeeping(Rc::downgrade(&monitors)), info.queues.background).detach();
        spawn_into(answer_queries(Rc::downgrade(&monitors)), info.queues.background).detach();
        if let Some(recovery) = recovery {
            monitors.resume(&recovery);
        }
        monitors
    }

    /// After a restart: the journal hears which outbox alerts settle, the alerts not yet
    /// delivered are queued again, and an intervention whose result died with the old process
    /// is reported as unknown (never retried automatically, docs/state-machine.md).
    fn resume(self: &Rc<Self>, recovery: &Recovery) {
        if self.journal.is_none() {
            return;
        }
        let me = Rc::downgrade(self);
        self.actions.on_outbox_settled(Box::new(move |id, delivered| {
            let Some(me) = me.upgrade() else { return };
            me.outbox.borrow_mut().remove(&id);
            if let Some(j) = &me.journal {
                j.append(&if delivered {
                    Record::AlertDelivered { id }
                } else {
                    Record::AlertGivenUp { id }
                });
            }
        }));
        let now_ms = self.clock.now_ms();
        let now_unix_ms = self.now_unix_ms();
        for local in 0..self.cold.borrow().len() as u32 {
            let monitor = self.monitor(local);
            for saved in recovery.outbox.get(&monitor.id).into_iter().flatten() {
                let wait_ms = saved.not_before_unix_ms.saturating_sub(now_unix_ms).max(0);
                self.requeue(local, saved, now_ms.saturating_add(wait_ms as u64));
            }
            if self.states.borrow()[local as usize].intervention_pending() {
                tracing::warn!(
                    monitor = %monitor.shown_name(),
                    "an intervention was running when CPRA stopped: its outcome is unknown"
                );
                self.apply(local, Event::InterventionUnknown, now_ms, None);
            }
        }
    }

    /// Queues an outbox alert kept across a restart, if its endpoint is still there, to go at
    /// `not_before_ms` (shard ms: its old send time, or now if that has passed).
    fn requeue(self: &Rc<Self>, local: u32, saved: &SavedAlert, not_before_ms: u64) {
        let monitor = self.monitor(local);
        let endpoints =
            actions::endpoints_for(&monitor.codes, saved.colour, &monitor.plan.registry);
        let Some(endpoint) = endpoints
            .get(usize::from(saved.endpoint))
            .filter(|e| endpoint_check(e) == saved.endpoint_check)
        else {
            tracing::warn!(
                monitor = %monitor.shown_name(),
                colour = saved.colour.as_str(),
                "an alert queued before the restart is dropped: its endpoint is no longer in \
                 the manifest"
            );
            if let Some(j) = &self.journal {
                j.append(&Record::AlertGivenUp { id: saved.id });
            }
            return;
        };
        // Sent at its old `not_before`, not at once: the cooldowns continue across the
        // restart (the journal keeps them), and a green queued after the restart waits behind
        // an alert of the same episode still waiting, as it would have without a restart.
        let alert = shown_as(&monitor, |info| {
            crate::alert::rebuild(
                saved.colour,
                saved.reason,
                info,
                saved.incident_seq,
                saved.summary.clone(),
                saved.action.clone(),
                saved.next_steps.clone(),
                not_before_ms,
            )
        });
        let mut s = self.local_status.get();
        s.alerts_queued += 1;
        self.local_status.set(s);
        self.outbox.borrow_mut().insert(saved.id, saved.clone());
        self.actions.queue_delivery(local, endpoint.clone(), Rc::new(alert), Some(saved.id));
    }

    fn monitor(&self, local: u32) -> Cold {
        let index = self.cold.borrow()[local as usize];
        debug_assert_ne!(index, REMOVED, "slot {local} has no monitor");
        Cold { plan: self.plan.borrow().clone(), index: index as usize }
    }

    /// The shard's ICMP client (a handle, so no borrow is held while a check awaits it).
    fn icmp(&self) -> Option<Rc<IcmpClient>> {
        self.icmp.borrow().clone()
    }

    /// Whether a reload removed the monitor in slot `local` (its last check may still end).
    fn is_removed(&self, local: u32) -> bool {
        self.cold.borrow()[local as usize] == REMOVED
    }

    /// The compiled check of `monitor` (slot `local`, whose kept entry is `kept`), (re)compiled
    /// when its address changed.
    async fn compiled(
        &self,
        local: u32,
        monitor: &Cold,
        kept: Option<Rc<Prepared>>,
        deadline: &Deadline,
    ) -> Result<Rc<Prepared>, Outcome> {
        let pulse = &monitor.pulse_check.pulse;
        let host = match kept.as_deref() {
            Some(Prepared::Invalid) => return Err(invalid_config()),
            Some(Prepared::Ready { host, .. }) => host.clone(),
            // The first check (or the first since a reload changed it): parsed once, kept.
            None => host_of(pulse).ok().flatten().map(|(host, port)| (host.into_boxed_str(), port)),
        };
        let addr = match &host {
            None => None,
            Some((host, port)) => {
                match self.resolver.resolve_socket_addr(host, *port, deadline.remaining()).await {
                    Ok(addr) => Some(addr),
                    Err(e) => return Err(e.to_outcome(deadline.elapsed_us())),
                }
            }
        };
        if let Some(kept) = kept {
            if matches!(&*kept, Prepared::Ready { addr: a, .. } if *a == addr) {
                return Ok(kept);
            }
        }
        let compiled = compile(
            pulse,
            addr,
            monitor.pulse_check.retries_per_check(),
            &mut self.tls_cache.borrow_mut(),
        );
        let prepared = match compiled {
            Ok(compiled) => Prepared::Ready { host, addr, compiled },
            Err(e) => {
                tracing::error!(monitor = %monitor.shown_name(), line = monitor.line, "cannot check: {e}");
                Prepared::Invalid
            }
        };
        let prepared = Rc::new(prepared);
        self.prepared.borrow_mut().insert(local, prepared.clone());
        match &*prepared {
            Prepared::Ready { .. } => Ok(prepared),
            Prepared::Invalid => Err(invalid_config()),
        }
    }

    /// Runs a plain check (see `target::plain`), built from the plan for this check only.
    /// `None` when its config cannot be built (which the loader's checks should rule out):
    /// the caller compiles it, which logs why once and keeps it as invalid.
    async fn run_plain(
        &self,
        check: Plain<'_>,
        retries: u32,
        deadline: &Deadline,
    ) -> Option<Outcome> {
        let (host, port) = check.host();
        let addr = match self.resolver.resolve_socket_addr(host, port, deadline.remaining()).await {
            Ok(addr) => addr,
            Err(e) => return Some(e.to_outcome(deadline.elapsed_us())),
        };
        // Read once: the HTTP check's own deadline starts at this reading.
        let now = Instant::now();
        let left = deadline.remaining_at(now);
        Some(match check {
            Plain::Tcp { .. } => {
                let c = TcpConfig { addr };
                with_retries(retries, left, |t| cpra_net::tcp::check(&c, t)).await
            }
            Plain::Icmp { count, .. } => {
                let c = IcmpConfig::new(addr.ip(), count).ok()?.with_retries(retries);
                match self.icmp() {
                    Some(icmp) => icmp.check(&c, left).await,
                    None => invalid_config(),
                }
            }
            Plain::Http { url, pulse } => {
                let c = plain_http(url, pulse, addr, retries);
                self.http.check_plain(&c, Deadline::new(now, left)).await.ok()?
            }
        })
    }

    async fn run_check(&self, job: &Job) -> Outcome {
        {
            // The state's line is touched here anyway, so asking it costs no extra miss.
            let mut states = self.states.borrow_mut();
            let state = &mut states[job.monitor as usize];
            if state.removed() {
                // Queued before a reload removed it: not checked; the outcome is dropped here
                // and not counted by the core.
                return Outcome::success(0);
            }
            state.begin_check(job.check_generation());
        }
        // The job's deadline, fixed by the shard when it dispatched the check, is the one
        // bound: resolution, connect, request and retries all fit inside it.
        let start = Instant::now();
        let end = self.clock.instant_at_ms(job.deadline_ms);
        let deadline = Deadline::new(start, end.saturating_duration_since(start));
        let monitor = self.monitor(job.monitor);
        let retries = monitor.pulse_check.retries_per_check();
        // Empty for a plain monitor, unless its config could not be built (then invalid).
        let kept = self.prepared.borrow().get(&job.monitor).cloned();
        if kept.is_none() {
            if let Some(check) = plain(&monitor.pulse_check.pulse) {
                if let Some(outcome) = self.run_plain(check, retries, &deadline).await {
                    return outcome;
                }
            }
        }
        let prepared = match self.compiled(job.monitor, &monitor, kept, &deadline).await {
            Ok(c) => c,
            Err(outcome) => return outcome,
        };
        let Prepared::Ready { compiled, .. } = &*prepared else { return invalid_config() };
        // Read once: the HTTP check's own deadline starts at this reading.
        let now = Instant::now();
        let left = deadline.remaining_at(now);
        let retries = compiled.retries;
        match &compiled.check {
            Check::Http(c) => self.http.check_within(c, Deadline::new(now, left)).await,
            Check::Tcp(c) => with_retries(retries, left, |t| cpra_net::tcp::check(c, t)).await,
            Check::Udp(c) => with_retries(retries, left, |t| cpra_net::udp::check(c, t)).await,
            Check::Dns(c) => with_retries(retries, left, |t| cpra_net::dns::check(c, t)).await,
            Check::Grpc(c) => with_retries(retries, left, |t| cpra_net::grpc::check(c, t)).await,
            Check::Tls(c) => with_retries(retries, left, |t| cpra_net::tlscheck::check(c, t)).await,
            Check::Docker(c) => {
                with_retries(retries, left, |t| cpra_net::docker::check(c, t)).await
            }
            Check::Icmp(c) => match self.icmp() {
                Some(icmp) => icmp.check(c, left).await,
                None => invalid_config(),
            },
        }
    }

    fn record(&self, local: u32, outcome: &Outcome, now_ms: u64) {
        let i = local as usize;
        let kept = RecentResult::new(now_ms, outcome);
        self.recent.borrow_mut().push(local, kept);
        let mut odd = self.odd_details.borrow_mut();
        if !kept.keeps(outcome) {
            // Grows to its high-water mark once (at most a monitor an entry), then reuses it.
            odd.insert(local, outcome.detail);
        } else if !odd.is_empty() {
            odd.remove(&local);
        }
        drop(odd);
        let now = if outcome.is_success() { Health::Up } else { Health::Down };
        let before = std::mem::replace(&mut self.health.borrow_mut()[i], now);
        // A disabled monitor's check that was in flight: counted under disabled still.
        if before != now && !self.is_disabled(local) {
            self.state_since_ms.borrow_mut()[i] = now_ms;
            let mut s = self.local_status.get();
            match before {
                Health::Unknown => s.unknown -= 1,
                Health::Up => s.up -= 1,
                Health::Down => s.down -= 1,
            }
            match now {
                Health::Unknown => s.unknown += 1,
                Health::Up => s.up += 1,
                Health::Down => s.down += 1,
            }
            self.local_status.set(s);
        }
    }

    /// Runs `event` through the state machine for `local` and applies the effects in order.
    /// `outcome` is the check behind the event, if it is a check (alerts describe it; other
    /// events' alerts say what happened without it, so no outcome is kept per monitor).
    /// No borrow of the state is held while effects run, so an action that reports back at
    /// once (re-entering here) is safe.
    pub fn apply(
        self: &Rc<Self>,
        local: u32,
        event: Event,
        now_ms: u64,
        outcome: Option<&Outcome>,
    ) {
        let i = local as usize;
        if self.is_removed(local) {
            // An intervention's result for a monitor a reload removed since.
            return;
        }
        let state_ms = now_ms + STATE_CLOCK_ORIGIN_MS;
        let (effects, changed) = {
            let mut states = self.states.borrow_mut();
            let before = states[i];
            let effects =
                transition(&mut states[i], self.policies.borrow().get(local), event, state_ms);
            (effects, (!before.same_saved(&states[i])).then_some(states[i]))
        };
        // Journal first, act after: everything a transition records precedes, in the journal,
        // the alerts it queues, and those wait for the commit (`Journal::then`).
        if let Some(journal) = &self.journal {
            let id = || self.monitor(local).id.clone();
            if let Some(state) = changed {
                journal.append(&Record::MonitorState {
                    monitor: id(),
                    config: self.configs.borrow()[i],
                    state: state.saved_at(state_ms, self.now_unix_ms()),
                });
            }
            for effect in &effects {
                match *effect {
                    Effect::IncidentOpened { incident_seq } => {
                        journal.append(&Record::IncidentOpened {
                            monitor: id(),
                            incident_seq,
                            at_unix_ms: self.now_unix_ms(),
                            colour: Colour::Red,
                        })
                    }
                    Effect::IncidentClosed { incident_seq, silent } => {
                        journal.append(&Record::IncidentClosed {
                            monitor: id(),
                            incident_seq,
                            at_unix_ms: self.now_unix_ms(),
                            colour: (!silent).then_some(Colour::Green),
                        })
                    }
                    _ => {}
                }
            }
        }
        for effect in &effects {
            let effect = match *effect {
                Effect::Alert {
                    colour,
                    reason,
                    incident_seq,
                    consecutive_failures,
                    not_before_ms,
                } => Effect::Alert {
                    colour,
                    reason,
                    incident_seq,
                    consecutive_failures,
                    not_before_ms: not_before_ms.saturating_sub(STATE_CLOCK_ORIGIN_MS),
                },
                other => other,
            };
            self.apply_effect(local, &effect, outcome);
        }
    }

    fn apply_effect(self: &Rc<Self>, local: u32, effect: &Effect, outcome: Option<&Outcome>) {
        let monitor = self.monitor(local);
        match *effect {
            Effect::Alert { colour, incident_seq, .. } => {
                let Some(alert) = shown_as(&monitor, |info| render(effect, info, outcome)) else {
                    return;
                };
                let control = self.control.borrow().get(local);
                if control.silenced_at(self.now_unix_ms()) {
                    tracing::info!(
                        shard = self.shard,
                        monitor = %monitor.shown_name(),
                        colour = colour.as_str(),
                        incident = alert.incident_id.as_deref().unwrap_or("-"),
                        silenced = true,
                        "alert held back (silenced until {}): {}: {}",
                        crate::actions::payload::rfc3339(control.silenced_until_unix_ms),
                        alert.title,
                        alert.summary
                    );
                    let held =
                        actions::endpoints_for(&monitor.codes, colour, &monitor.plan.registry);
                    let mut s = self.local_status.get();
                    s.alerts_silenced_by_colour[colour.index()] += held.len() as u64;
                    self.local_status.set(s);
                    return;
                }
                tracing::info!(
                    shard = self.shard,
                    monitor = %monitor.shown_name(),
                    colour = colour.as_str(),
                    incident = alert.incident_id.as_deref().unwrap_or("-"),
                    "{}: {}",
                    alert.title,
                    alert.summary
                );
                if let Some(observe) = &self.observer {
                    observe(&alert);
                }
                let endpoints =
                    actions::endpoints_for(&monitor.codes, colour, &monitor.plan.registry);
                let mut s = self.local_status.get();
                s.alerts_queued += endpoints.len() as u64;
                self.local_status.set(s);
                let alert = Rc::new(alert);
                match &self.journal {
                    None => self.actions.queue_alert(local, &endpoints, alert),
                    Some(journal) => {
                        self.queue_durably(journal, local, endpoints, alert, incident_seq)
                    }
                }
            }
            Effect::StartIntervention { attempt } => {
                let Some(intervention) = &monitor.intervention else {
                    debug_assert!(false, "intervention effect without an intervention");
                    return;
                };
                tracing::info!(
                    shard = self.shard,
                    monitor = %monitor.shown_name(),
                    attempt,
                    action = intervention.action.action_name(),
                    "starting intervention"
                );
                let mut s = self.local_status.get();
                s.interventions += 1;
                self.local_status.set(s);
                let me = Rc::downgrade(self);
                let done = Box::new(move |result: InterventionResult| {
                    let Some(me) = me.upgrade() else { return };
                    let event = Event::from(result);
                    let now_ms = me.clock.now_ms();
                    me.apply(local, event, now_ms, None);
                });
                self.actions.start_intervention(local, intervention, done);
            }
            Effect::CancelIntervention => self.actions.cancel_intervention(local),
            Effect::CancelQueuedAlerts => {
                self.actions.cancel_alerts(local);
                // Alerts still waiting for their journal commit are not in `actions` yet:
                // given up here, they are skipped when the commit lands.
                self.forget_outbox(local);
            }
            Effect::IncidentOpened { incident_seq } => {
                tracing::info!(monitor = %monitor.shown_name(), incident_seq, "incident opened");
                self.incidents.borrow_mut().opened(local, incident_seq, self.now_unix_ms());
                let mut s = self.local_status.get();
                s.incidents_open += 1;
                self.local_status.set(s);
            }
            Effect::IncidentClosed { incident_seq, silent } => {
                let what = if silent { "incident closed silently" } else { "incident closed" };
                tracing::info!(monitor = %monitor.shown_name(), incident_seq, silent, "{what}");
                self.incidents.borrow_mut().closed(local, self.now_unix_ms());
                let mut s = self.local_status.get();
                s.incidents_open = s.incidents_open.saturating_sub(1);
                self.local_status.set(s);
            }
        }
    }

    /// Applies a reload order (see `shard::reload`), through the state machine's own
    /// events: a removed monitor gets `Removed` (its open incident closes silently, logged;
    /// its queued alerts and intervention are cancelled) and stops; a changed one gets
    /// `ConfigChanged` (and `Disabled`/`Enabled` when that flipped), keeps its incident and
    /// takes the new config from its next check; a moved one is only re-pointed; an added one
    /// starts within its interval. Every kept monitor reads the new plan from here on.
    /// What the API set on a monitor (disabled, silenced) stays with it through a change,
    /// and goes with it when it is removed: a slot reused for a new monitor starts clean.
    fn reload(self: &Rc<Self>, order: &ShardReload, core: &mut ShardCore, now_ms: u64) {
        // TLS settings are cached by CA file path: a reload after the file was rotated must
        // read it again (and paths no longer named are dropped).
        *self.tls_cache.borrow_mut() = TlsConfigCache::default();
        // The API's scheduling changes asked before this reload go first, so the core agrees
        // with `control` below and none is left naming a slot this reload frees or reuses.
        loop {
            let change = self.schedule_changes.borrow_mut().pop_front();
            let Some(change) = change else { break };
            core.schedule(change, now_ms);
        }
        let slot_of: HashMap<u32, u32> = self
            .cold
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, &c)| c != REMOVED)
            .map(|(l, &c)| (c, l as u32))
            .collect();
        let slot = |old: u32| {
            let found = slot_of.get(&old).copied();
            if found.is_none() {
                tracing::error!(shard = self.shard, old, "reload names a monitor this shard lacks");
            }
            found
        };
        for &old in &order.removed {
            let Some(local) = slot(old) else { continue };
            let enabled = !self.is_disabled(local);
            // Per monitor at debug: a reload may remove a million; the summary is at info.
            tracing::debug!(
                shard = self.shard,
                monitor = %self.monitor(local).shown_name(),
                "removed by a reload"
            );
            // Journals its state with the incident closed (silently), so a restart on the
            // same data dir does not bring the incident back, and cancels its queued alerts
            // (given up in the outbox).
            self.apply(local, Event::Removed, now_ms, None);
            let seq = self.states.borrow()[local as usize].incident_seq();
            let mut removed_seqs = self.removed_seqs.borrow_mut();
            if seq > 0 && removed_seqs.len() < REMOVED_INCIDENT_SEQS_KEPT {
                removed_seqs.insert(self.monitor(local).id.clone(), seq);
            }
            drop(removed_seqs);
            if let Some(journal) = &self.journal {
                // Its silence, disable and cooldowns go with it: a monitor of the same id
                // that comes back later starts afresh (its incident numbers go on).
                journal.append(&Record::Removed { monitor: self.monitor(local).id.clone() });
            }
            self.forget_outbox(local);
            self.adjust(|s| self.uncount(s, local, enabled));
            core.remove_monitor(local);
            // Its incidents name it through the slot, which a later monitor may take.
            self.incidents.borrow_mut().forget(local);
            self.cold.borrow_mut()[local as usize] = REMOVED;
            self.prepared.borrow_mut().remove(&local);
        }
        for &(old, new) in &order.moved {
            if let Some(local) = slot(old) {
                self.cold.borrow_mut()[local as usize] = new;
            }
        }
        let changed: Vec<(u32, bool)> = order
            .changed
            .iter()
            .filter_map(|(old, spec)| {
                let local = slot(*old)?;
                let was_enabled = !self.is_disabled(local);
                // Disabled or enabled through the API: that holds over the manifest's flag.
                let mut spec = *spec;
                if let Some(disabled) = self.control.borrow().get(local).disabled {
                    spec.enabled = !disabled;
                }
                if let Err(e) = core.update_monitor(local, &spec, now_ms) {
                    // The loader checked intervals; only a bug in it reaches here.
                    tracing::error!(shard = self.shard, "reload: {e}; kept the old schedule");
                }
                self.cold.borrow_mut()[local as usize] = spec.cold;
                Some((local, was_enabled))
            })
            .collect();
        // From here, every slot points into the new plan.
        *self.plan.borrow_mut() = Rc::new(ShardPlan(order.plan.clone()));
        for (local, was_enabled) in changed {
            let i = local as usize;
            let monitor = self.monitor(local);
            self.policies.borrow_mut().set(local, policy_of(&monitor, self.cooldown_ms));
            self.prepared.borrow_mut().remove(&local);
            if let Some(journal) = &self.journal {
                self.configs.borrow_mut()[i] = config_check(&monitor);
                // The new config's checksum with the state as it is (its incident kept), so
                // a restart continues from the changed monitor, not from the old config.
                let state_ms = now_ms + STATE_CLOCK_ORIGIN_MS;
                journal.append(&Record::MonitorState {
                    monitor: monitor.id.clone(),
                    config: self.configs.borrow()[i],
                    state: self.states.borrow()[i].saved_at(state_ms, self.now_unix_ms()),
                });
            }
            tracing::debug!(shard = self.shard, monitor = %monitor.shown_name(), "changed by a reload");
            self.apply(local, Event::ConfigChanged, now_ms, None);
            let enabled = !self.is_disabled(local);
            if was_enabled != enabled {
                self.adjust(|s| {
                    self.uncount(s, local, was_enabled);
                    if enabled {
                        s.unknown += 1;
                    } else {
                        s.disabled += 1;
                    }
                });
                self.health.borrow_mut()[i] = Health::Unknown;
                self.state_since_ms.borrow_mut()[i] = now_ms;
                let event = if enabled { Event::Enabled } else { Event::Disabled };
                self.apply(local, event, now_ms, None);
            }
        }
        core.reserve(order.added.len());
        for spec in &order.added {
            let local = match core.add_monitor(spec, now_ms) {
                Ok(local) => local,
                Err(e) => {
                    tracing::error!(shard = self.shard, "reload: {e}; not added");
                    continue;
                }
            };
            let monitor = Cold { plan: self.plan.borrow().clone(), index: spec.cold as usize };
            let generation = core.generation(local);
            self.place(local, (spec.cold, policy_of(&monitor, self.cooldown_ms)), generation);
            if let Some(seq) = self.removed_seqs.borrow_mut().remove(&monitor.id) {
                let mut states = self.states.borrow_mut();
                states[local as usize] = states[local as usize].continuing(seq);
            }
            if self.journal.is_some() {
                self.configs.borrow_mut()[local as usize] = config_check(&monitor);
            }
            if !monitor.enabled {
                // Loaded, never scheduled; its state says so, so it sends nothing.
                self.apply(local, Event::Disabled, now_ms, None);
            }
            self.adjust(|s| if monitor.enabled { s.unknown += 1 } else { s.disabled += 1 });
            if is_icmp(&monitor) && self.icmp.borrow().is_none() {
                *self.icmp.borrow_mut() = Some(Rc::new(IcmpClient::new()));
            }
        }
        let (by_id, with_windows) = indexes(&self.plan.borrow(), &self.cold.borrow());
        *self.by_id.borrow_mut() = by_id;
        *self.with_windows.borrow_mut() = with_windows;
        self.publish();
        tracing::info!(
            shard = self.shard,
            added = order.added.len(),
            removed = order.removed.len(),
            changed = order.changed.len(),
            slots = core.slots(),
            "reload applied"
        );
    }

    /// Changes this shard's status counts (read, changed, written back at once, so an effect
    /// applied in between is never overwritten).
    fn adjust(&self, change: impl FnOnce(&mut StatusSnapshot)) {
        let mut s = self.local_status.get();
        change(&mut s);
        self.local_status.set(s);
    }

    /// Takes a monitor's counts out of the status (removed, or its `enabled` changed).
    fn uncount(&self, s: &mut StatusSnapshot, local: u32, enabled: bool) {
        if !enabled {
            s.disabled = s.disabled.saturating_sub(1);
            return;
        }
        match self.health.borrow()[local as usize] {
            Health::Unknown => s.unknown = s.unknown.saturating_sub(1),
            Health::Up => s.up = s.up.saturating_sub(1),
            Health::Down => s.down = s.down.saturating_sub(1),
        }
    }

    /// Fills slot `local` (new at the end, or one a removed monitor left) for a new monitor:
    /// every per-slot record starts as at load, so nothing of a removed monitor (its state,
    /// API controls, recent results, config checksum) carries over to the new one. Its
    /// incidents and outbox alerts were dropped when it was removed.
    fn place(
        &self,
        local: u32,
        (cold, policy): (u32, Policy),
        generation: crate::state::Generation,
    ) {
        let i = local as usize;
        let mut cold_v = self.cold.borrow_mut();
        debug_assert!(self.incidents.borrow().open_of(local).is_none());
        // Filled in by the caller when there is a journal (it needs the monitor).
        let journaled = self.journal.is_some();
        if i == cold_v.len() {
            cold_v.push(cold);
            self.recent.borrow_mut().grow();
            if journaled {
                self.configs.borrow_mut().push(0);
            }
            self.policies.borrow_mut().push(policy);
            self.states.borrow_mut().push(MonitorState::new());
            self.health.borrow_mut().push(Health::Unknown);
            self.state_since_ms.borrow_mut().push(self.clock.now_ms());
            return;
        }
        assert!(i < cold_v.len() && cold_v[i] == REMOVED, "slot {local} given while in use");
        cold_v[i] = cold;
        self.control.borrow_mut().set(local, MonitorControl::default());
        self.recent.borrow_mut().clear(local);
        if journaled {
            self.configs.borrow_mut()[i] = 0;
        }
        self.policies.borrow_mut().set(local, policy);
        self.states.borrow_mut()[i] = MonitorState::in_reused_slot(generation);
        self.health.borrow_mut()[i] = Health::Unknown;
        self.state_since_ms.borrow_mut()[i] = self.clock.now_ms();
        self.odd_details.borrow_mut().remove(&local);
        self.prepared.borrow_mut().remove(&local);
    }

    /// Gives up the outbox alerts of a monitor a reload removed, in the journal too, so a
    /// restart does not send them (its queued deliveries were cancelled and settle as given
    /// up; this also covers alerts still waiting for their commit).
    fn forget_outbox(&self, local: u32) {
        let Some(journal) = &self.journal else { return };
        let monitor = self.monitor(local);
        let mut outbox = self.outbox.borrow_mut();
        let mut gone: Vec<u64> =
            outbox.values().filter(|a| a.monitor == monitor.id).map(|a| a.id).collect();
        gone.sort_unstable();
        for id in gone {
            outbox.remove(&id);
            journal.append(&Record::AlertGivenUp { id });
        }
    }

    /// Records `alert` in the outbox, once per endpoint, and queues its deliveries once that
    /// is durable.
    fn queue_durably(
        self: &Rc<Self>,
        journal: &Journal,
        local: u32,
        endpoints: Vec<Arc<Notify>>,
        alert: Rc<RenderedAlert>,
        incident_seq: Option<u32>,
    ) {
        let monitor = self.monitor(local);
        let now_unix_ms = self.now_unix_ms();
        let wait_ms = alert.not_before_ms.saturating_sub(self.clock.now_ms());
        let mut ids = Vec::with_capacity(endpoints.len());
        for (k, endpoint) in endpoints.iter().enumerate() {
            let id = journal.next_alert_id();
            ids.push(id);
            let saved = SavedAlert {
                id,
                monitor: monitor.id.clone(),
                endpoint: k.min(usize::from(u16::MAX)) as u16,
                endpoint_check: endpoint_check(endpoint),
                colour: alert.colour,
                reason: alert.reason,
                incident_seq,
                summary: alert.summary.clone(),
                action: alert.action.clone(),
                next_steps: alert.next_steps.clone(),
                not_before_unix_ms: now_unix_ms.saturating_add(wait_ms as i64),
            };
            journal.append(&Record::AlertQueued(saved.clone()));
            self.outbox.borrow_mut().insert(id, saved);
        }
        let me = Rc::downgrade(self);
        journal.then(Box::new(move || {
            let Some(me) = me.upgrade() else { return };
            for (endpoint, id) in endpoints.into_iter().zip(ids) {
                // Cancelled while its record was being committed (the monitor was disabled,
                // changed or removed by a reload, its slot perhaps reused): given up already.
                if !me.outbox.borrow().contains_key(&id) {
                    continue;
                }
                me.actions.queue_delivery(local, endpoint, alert.clone(), Some(id));
            }
        }));
    }

    /// The shard's live state as framed journal records: every monitor whose saved state is
    /// not a fresh one (an incident number is kept even when healthy, so ids are never
    /// reused) and every alert in the outbox.
    fn snapshot(&self) -> Vec<u8> {
        let fresh = MonitorState::new().saved();
        let state_ms = self.clock.now_ms() + STATE_CLOCK_ORIGIN_MS;
        let unix_ms = self.now_unix_ms();
        let mut bytes = Vec::new();
        for (i, state) in self.states.borrow().iter().enumerate() {
            let saved = state.saved_at(state_ms, unix_ms);
            // A slot a reload emptied: its monitor's last state is in the journal already,
            // and leaving it out of the snapshot is what forgets it.
            if saved == fresh || self.is_removed(i as u32) {
                continue;
            }
            let record = Record::MonitorState {
                monitor: self.monitor(i as u32).id.clone(),
                config: self.configs.borrow()[i],
                state: saved,
            };
            if let Err(e) = crate::store::encode(&record, &mut bytes) {
                tracing::error!(shard = self.shard, "journal: cannot write {e}");
            }
        }
        // What an operator set and what the API shows of the open incidents.
        let now_unix_ms = self.now_unix_ms();
        let incidents = self.incidents.borrow();
        let controls = self.control.borrow();
        // The monitors with a setting or an open incident, in slot order (the same bytes for
        // the same state).
        let mut noted: Vec<u32> = controls.iter().map(|(local, _)| local).collect();
        noted.extend(incidents.list(Some(true)).map(|r| r.monitor));
        noted.sort_unstable();
        noted.dedup();
        for local in noted {
            if self.is_removed(local) {
                continue;
            }
            let control = controls.get(local);
            let open = incidents.open_of(local);
            let saved = SavedControl {
                disabled: control.disabled,
                silenced_until_unix_ms: if control.silenced_at(now_unix_ms) {
                    control.silenced_until_unix_ms
                } else {
                    0
                },
                acked: open.and_then(|r| Some((r.seq, r.acknowledged_by.clone()?))),
            };
            let id = &self.monitor(local).id;
            let mut records = saved.records(id);
            if let Some(r) = open {
                records.push(Record::IncidentOpened {
                    monitor: id.clone(),
                    incident_seq: r.seq,
                    at_unix_ms: r.opened_at_unix_ms,
                    colour: Colour::Red,
                });
            }
            for record in records {
                if let Err(e) = crate::store::encode(&record, &mut bytes) {
                    tracing::error!(shard = self.shard, "journal: cannot write {e}");
                }
            }
        }
        drop((incidents, controls));
        let mut alerts: Vec<&SavedAlert> = Vec::new();
        let outbox = self.outbox.borrow();
        alerts.extend(outbox.values());
        alerts.sort_by_key(|a| a.id);
        for alert in alerts {
            if let Err(e) = crate::store::encode(&Record::AlertQueued(alert.clone()), &mut bytes) {
                tracing::error!(shard = self.shard, "journal: cannot write {e}");
            }
        }
        bytes
    }

    /// Compacts the journal when it has grown enough since the last snapshot.
    fn compact_journal(&self) {
        if let Some(journal) = &self.journal {
            if journal.wants_snapshot() {
                journal.snapshot(self.snapshot());
            }
        }
    }

    /// A monitor's state as the API names it.
    fn health_of(&self, local: u32) -> MonitorHealth {
        if self.is_disabled(local) {
            return MonitorHealth::Disabled;
        }
        match self.health.borrow()[local as usize] {
            Health::Unknown => MonitorHealth::Unknown,
            Health::Up => MonitorHealth::Up,
            Health::Down => MonitorHealth::Down,
        }
    }

    /// What the API shows of one monitor. `now_unix_ms` and `now_ms` are the same instant
    /// on the wall clock and the shard's clock (the last check's time is kept in the latter).
    fn row(&self, local: u32, health: MonitorHealth, now_unix_ms: i64, now_ms: u64) -> MonitorRow {
        let i = local as usize;
        let monitor = self.monitor(local);
        let state = self.states.borrow()[i];
        let incident =
            state.incident_open().then(|| incident_id(&monitor.id, state.incident_seq()));
        let last_check = matches!(health, MonitorHealth::Up | MonitorHealth::Down)
            .then(|| {
                // Health is Up or Down only once `record` ran, which pushed to the ring.
                let newest = self.recent.borrow().newest_first(local).next()?;
                let mut outcome = newest.outcome();
                if let Some(&detail) = self.odd_details.borrow().get(&local) {
                    outcome.detail = detail;
                }
                let target = self.shown_check_target(local);
                Some(LastCheck {
                    at_unix_ms: now_unix_ms - now_ms.saturating_sub(newest.at_ms(now_ms)) as i64,
                    latency_us: outcome.latency_us,
                    failure: outcome.failure.map(|k| (k.as_str(), outcome.describe(&target))),
                })
            })
            .flatten();
        let silenced = self.control.borrow().get(local).silenced_until_unix_ms;
        let since_ms = self.state_since_ms.borrow()[i];
        MonitorRow {
            id: monitor.id.clone(),
            name: monitor.shown_name().to_owned(),
            kind: monitor.pulse_check.pulse.type_name(),
            health,
            incident_id: incident,
            groups: monitor.pulse_check.groups.clone(),
            last_check,
            silenced_until_unix_ms: (silenced > now_unix_ms).then_some(silenced),
            state_since_unix_ms: now_unix_ms - now_ms.saturating_sub(since_ms) as i64,
        }
    }

    /// Whether the monitor is not checked: disabled through the API, else by the manifest.
    fn is_disabled(&self, local: u32) -> bool {
        self.control.borrow().get(local).disabled.unwrap_or(!self.monitor(local).enabled)
    }

    /// How the API names a check's target: by host and port, never by URL (a URL may carry
    /// credentials).
    fn shown_check_target(&self, local: u32) -> String {
        let monitor = self.monitor(local);
        match host_of(&monitor.pulse_check.pulse) {
            Ok(Some((host, port))) => format!("{host}:{port}"),
            _ => monitor.pulse_check.pulse.type_name().to_string(),
        }
    }

    /// The shard-local index of the monitor with this id.
    fn local_of(&self, id: &str) -> Option<u32> {
        let by_id = self.by_id.borrow();
        let i = by_id.partition_point(|&l| self.monitor(l).id.as_str() < id);
        by_id.get(i).copied().filter(|&l| self.monitor(l).id == id)
    }

    /// One monitor with its recent results.
    fn detail(&self, local: u32) -> MonitorDetail {
        let now_unix_ms = self.now_unix_ms();
        let now_ms = self.clock.now_ms();
        let row = self.row(local, self.health_of(local), now_unix_ms, now_ms);
        let target = self.shown_check_target(local);
        let recent = self
            .recent
            .borrow()
            .newest_first(local)
            .map(|r| {
                let outcome = r.outcome();
                RecentRow {
                    at_unix_ms: now_unix_ms - now_ms.saturating_sub(r.at_ms(now_ms)) as i64,
                    latency_us: r.latency_us(),
                    failure: r.failure().map(|k| (k.as_str(), outcome.describe(&target))),
                }
            })
            .collect();
        MonitorDetail { row, recent }
    }

    /// Applies an operator's command to one monitor; the monitor as it is after it.
    fn command(self: &Rc<Self>, id: &str, command: Command) -> Result<MonitorDetail, Refused> {
        let local = self.local_of(id).ok_or(Refused::NotFound)?;
        let i = local as usize;
        let disabled = self.is_disabled(local);
        let change = match command {
            Command::Disable if !disabled => Some(ScheduleChange::Disable { monitor: local }),
            Command::Enable if disabled => {
                let interval_ms = self.monitor(local).interval_ms();
                let range = u64::from(MIN_INTERVAL_MS)..=u64::from(MAX_INTERVAL_MS);
                if !range.contains(&interval_ms) {
                    let why = format!("its interval ({interval_ms} ms) cannot be scheduled");
                    return Err(Refused::Conflict(why));
                }
                Some(ScheduleChange::Enable { monitor: local, interval_ms: interval_ms as u32 })
            }
            Command::CheckNow if disabled => {
                return Err(Refused::Conflict("the monitor is disabled; enable it first".into()))
            }
            Command::CheckNow => Some(ScheduleChange::CheckNow { monitor: local }),
            _ => None,
        };
        if let Some(change) = change {
            let mut changes = self.schedule_changes.borrow_mut();
            if changes.len() >= API_QUERY_RING {
                return Err(Refused::Busy);
            }
            // In order: a disable and an enable asked in one round must end enabled.
            changes.push_back(change);
        }
        let monitor = self.monitor(local);
        match command {
            Command::Disable if !disabled => {
                self.move_count(local, false);
                self.control.borrow_mut().update(local, |c| c.disabled = Some(true));
                self.state_since_ms.borrow_mut()[i] = self.clock.now_ms();
                tracing::info!(monitor = %monitor.shown_name(), "disabled through the API");
                self.apply(local, Event::Disabled, self.clock.now_ms(), None);
                self.journal_control(Record::Disabled {
                    monitor: monitor.id.clone(),
                    disabled: true,
                });
            }
            Command::Enable if disabled => {
                self.control.borrow_mut().update(local, |c| c.disabled = Some(false));
                self.state_since_ms.borrow_mut()[i] = self.clock.now_ms();
                self.move_count(local, true);
                tracing::info!(monitor = %monitor.shown_name(), "enabled through the API");
                self.apply(local, Event::Enabled, self.clock.now_ms(), None);
                self.journal_control(Record::Disabled {
                    monitor: monitor.id.clone(),
                    disabled: false,
                });
            }
            Command::Silence { until_unix_ms } => {
                self.control
                    .borrow_mut()
                    .update(local, |c| c.silenced_until_unix_ms = until_unix_ms);
                let until = crate::actions::payload::rfc3339(until_unix_ms);
                tracing::info!(monitor = %monitor.shown_name(), "silenced until {until}");
                self.journal_control(Record::Silenced {
                    monitor: monitor.id.clone(),
                    until_unix_ms,
                });
            }
            Command::Unsilence => {
                self.control.borrow_mut().update(local, |c| c.silenced_until_unix_ms = 0);
                tracing::info!(monitor = %monitor.shown_name(), "silence lifted");
                self.journal_control(Record::Silenced {
                    monitor: monitor.id.clone(),
                    until_unix_ms: 0,
                });
            }
            Command::CheckNow => {
                tracing::info!(monitor = %monitor.shown_name(), "check asked through the API");
            }
            _ => {}
        }
        Ok(self.detail(local))
    }

    /// Appends an operator's action to the journal; the API's answer waits for the commit
    /// (`answer_queries`), so a control that was answered survives a crash.
    fn journal_control(&self, record: Record) {
        if let Some(journal) = &self.journal {
            journal.append(&record);
        }
    }

    /// Moves a monitor between the disabled count and its health's count.
    fn move_count(&self, local: u32, enabling: bool) {
        let mut s = self.local_status.get();
        let bucket = match self.health.borrow()[local as usize] {
            Health::Unknown => &mut s.unknown,
            Health::Up => &mut s.up,
            Health::Down => &mut s.down,
        };
        if enabling {
            *bucket += 1;
            s.disabled = s.disabled.saturating_sub(1);
        } else {
            *bucket = bucket.saturating_sub(1);
            s.disabled += 1;
        }
        self.local_status.set(s);
    }

    fn incident_row(&self, record: &super::control::IncidentRecord) -> IncidentRow {
        let monitor = self.monitor(record.monitor);
        IncidentRow {
            id: incident_id(&monitor.id, record.seq),
            monitor_id: monitor.id.clone(),
            monitor: monitor.shown_name().to_owned(),
            opened_at_unix_ms: record.opened_at_unix_ms,
            closed_at_unix_ms: record.closed_at_unix_ms,
            acknowledged_by: record.acknowledged_by.clone(),
        }
    }

    /// The newest `limit` of this shard's incidents (open, closed or both), and how many
    /// matched: rows are built for those answered only (a shard may hold many open ones).
    /// With `monitor`, only that monitor's (none if no monitor has the id).
    fn incidents(
        &self,
        open: Option<bool>,
        limit: usize,
        monitor: Option<&str>,
    ) -> (Vec<IncidentRow>, usize) {
        let only = monitor.map(|id| self.local_of(id));
        let incidents = self.incidents.borrow();
        let mut matched: Vec<_> =
            incidents.list(open).filter(|r| only.is_none_or(|l| l == Some(r.monitor))).collect();
        let total = matched.len();
        matched.sort_unstable_by_key(|r| std::cmp::Reverse(r.opened_at_unix_ms));
        matched.truncate(limit.min(API_LIST_MAX_LIMIT));
        (matched.into_iter().map(|r| self.incident_row(r)).collect(), total)
    }

    /// Acknowledges the open incident `incident` (`"<monitor id>#<seq>"`).
    fn ack(&self, incident: &str, by: &str) -> Result<IncidentRow, Refused> {
        let (id, seq) = incident.rsplit_once('#').ok_or(Refused::NotFound)?;
        let seq: u32 = seq.parse().map_err(|_| Refused::NotFound)?;
        let local = self.local_of(id).ok_or(Refused::NotFound)?;
        let mut incidents = self.incidents.borrow_mut();
        let Some(record) = incidents.open_mut(local, seq) else {
            return Err(Refused::Conflict(format!("incident {incident} is not open")));
        };
        let first = record.acknowledged_by.is_none();
        if first {
            record.acknowledged_by = Some(by.to_owned());
        }
        let record = record.clone();
        drop(incidents);
        if first {
            let monitor = self.monitor(local);
            tracing::info!(monitor = %monitor.shown_name(), incident, by, "incident acknowledged");
            self.journal_control(Record::Acked {
                monitor: monitor.id.clone(),
                incident_seq: seq,
                by: by.to_owned(),
            });
            self.send_acknowledgement(local, seq, by);
        }
        Ok(self.incident_row(&record))
    }

    /// Tells the notifiers of the monitor's cyan code (if it has one) who acknowledged the
    /// incident; held back like any alert while the monitor is silenced.
    fn send_acknowledgement(&self, local: u32, seq: u32, by: &str) {
        let monitor = self.monitor(local);
        if !monitor.codes.dispatches(Colour::Cyan) {
            return;
        }
        let alert = shown_as(&monitor, |info| acknowledgement(info, seq, by, self.clock.now_ms()));
        if self.control.borrow().get(local).silenced_at(self.now_unix_ms()) {
            tracing::info!(monitor = %monitor.shown_name(), silenced = true, "acknowledgement held back: {}", alert.summary);
            let held = actions::endpoints_for(&monitor.codes, Colour::Cyan, &monitor.plan.registry);
            let mut s = self.local_status.get();
            s.alerts_silenced_by_colour[Colour::Cyan.index()] += held.len() as u64;
            self.local_status.set(s);
            return;
        }
        let endpoints =
            actions::endpoints_for(&monitor.codes, Colour::Cyan, &monitor.plan.registry);
        let mut s = self.local_status.get();
        s.alerts_queued += endpoints.len() as u64;
        self.local_status.set(s);
        self.actions.queue_alert(local, &endpoints, Rc::new(alert));
    }

    fn answer(self: &Rc<Self>, question: &Question) -> Answer {
        match question {
            Question::ListMonitors(filter) => Answer::Monitors(self.list(filter)),
            Question::Monitor(id) => {
                Answer::Monitor(self.local_of(id).map(|l| self.detail(l)).ok_or(Refused::NotFound))
            }
            Question::Control(id, command) => Answer::Monitor(self.command(id, *command)),
            Question::Incidents(open, limit, monitor) => {
                let (rows, total) = self.incidents(*open, *limit, monitor.as_deref());
                Answer::Incidents(rows, total)
            }
            Question::CountSilenced => {
                let now_unix_ms = self.now_unix_ms();
                let control = self.control.borrow();
                Answer::Count(
                    control.iter().filter(|(_, c)| c.silenced_at(now_unix_ms)).count() as u64
                )
            }
            Question::Ack { incident, by } => Answer::Incident(self.ack(incident, by)),
        }
    }

    /// This shard's page of a list: matching monitors after the cursor in id order, at most
    /// the limit. Looks at no more monitors than it needs, apart from `q` and `group`, whose
    /// total takes a scan of the shard.
    fn list(&self, filter: &ListFilter) -> MonitorPage {
        let limit = filter.limit.min(API_LIST_MAX_LIMIT);
        let by_id = self.by_id.borrow();
        let start = match &filter.after {
            None => 0,
            Some(after) => {
                by_id.partition_point(|&l| self.monitor(l).id.as_str() <= after.as_str())
            }
        };
        let now_unix_ms = self.now_unix_ms();
        let now_ms = self.clock.now_ms();
        let mut rows = Vec::with_capacity(limit.min(by_id.len() - start));
        // Matches after the cursor, counted to limit + 1: enough to know whether more remain.
        let mut after_cursor = 0u64;
        for &local in &by_id[start..] {
            if after_cursor > limit as u64 {
                break;
            }
            let health = self.health_of(local);
            // The state first: it is in the shard's own arrays, while the name and groups are
            // in the plan (a cache miss each), so a state list of a big shard reads only those.
            if filter.state.is_some_and(|s| s != health) {
                continue;
            }
            let m = self.monitor(local);
            if filter.matches(&m.name, &m.pulse_check.groups, health) {
                if rows.len() < limit {
                    rows.push(self.row(local, health, now_unix_ms, now_ms));
                }
                after_cursor += 1;
            }
        }
        let s = self.local_status.get();
        let total = match filter.state {
            _ if !filter.by_state_only() => by_id
                .iter()
                .filter(|&&l| {
                    let m = self.monitor(l);
                    filter.matches(&m.name, &m.pulse_check.groups, self.health_of(l))
                })
                .count() as u64,
            None => by_id.len() as u64,
            Some(MonitorHealth::Up) => s.up,
            Some(MonitorHealth::Down) => s.down,
            Some(MonitorHealth::Unknown) => s.unknown,
            Some(MonitorHealth::Disabled) => s.disabled,
        };
        MonitorPage { rows, after_cursor, total }
    }

    fn now_unix_ms(&self) -> i64 {
        match &self.wall_clock {
            Some(clock) => clock(),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Publishes this shard's status (with the delivery counts of its actions).
    fn publish(&self) {
        let mut s = self.local_status.get();
        let c = self.actions.counters();
        s.alerts_sent = c.sent;
        s.alerts_undelivered = c.undelivered;
        s.alerts_sent_by_colour = c.sent_by_colour;
        s.alerts_undelivered_by_colour = c.undelivered_by_colour;
        s.alerts_deduplicated = c.deduplicated;
        s.alerts_cancelled = c.cancelled;
        s.interventions_succeeded = c.interventions_succeeded;
        s.interventions_failed = c.interventions_failed;
        s.interventions_unknown = c.interventions_unknown;
        self.status.shard(self.shard).publish(&s);
    }

    /// Raises MaintenanceStarted/Ended for monitors whose window state changed at
    /// `now_unix_ms`; returns the Unix ms of the next window boundary, if any.
    fn maintenance(self: &Rc<Self>, now_unix_ms: i64) -> Option<i64> {
        let mut next: Option<i64> = None;
        let with_windows = self.with_windows.borrow().clone();
        for &local in with_windows.iter() {
            let monitor = self.monitor(local);
            let window = monitor.next_maintenance_window(now_unix_ms);
            let inside =
                window.is_some_and(|(start, end)| start <= now_unix_ms && now_unix_ms < end);
            let boundary = window.map(|(start, end)| if inside { end } else { start });
            if let Some(b) = boundary {
                next = Some(next.map_or(b, |n| n.min(b)));
            }
            let was = self.states.borrow()[local as usize].in_maintenance();
            if inside != was {
                let event =
                    if inside { Event::MaintenanceStarted } else { Event::MaintenanceEnded };
                tracing::info!(monitor = %monitor.shown_name(), inside, "maintenance window");
                self.apply(local, event, self.clock.now_ms(), None);
            }
        }
        next
    }
}

/// `cold` of a slot without a monitor (the table's mark, kept here too).
use crate::table::REMOVED;

/// The plan in force on this shard: one count on the shared `Arc`, and the shard's own
/// (non-atomic) counts on this, so reading a monitor's config writes no line other cores use.
struct ShardPlan(Arc<Plan>);

impl std::ops::Deref for ShardPlan {
    type Target = Plan;

    fn deref(&self) -> &Plan {
        &self.0
    }
}

/// A monitor's config in the plan in force, held by the shard's own count on that plan.
struct Cold {
    plan: Rc<ShardPlan>,
    index: usize,
}

impl std::ops::Deref for Cold {
    type Target = Monitor;

    fn deref(&self) -> &Monitor {
        &self.plan.monitors[self.index]
    }
}

/// Whether a `permission` failure of `pulse` is kept out of the state machine: an icmp pulse
/// with `ignore_privilege` (docs/configuration.md: without a raw or ping socket the check does
/// not fail; the monitor's state stays what it was, and its recent results say why).
fn privilege_ignored(pulse: &Pulse) -> bool {
    matches!(pulse, Pulse::Icmp(i) if i.ignore_privilege)
}

fn is_icmp(m: &Monitor) -> bool {
    matches!(m.pulse_check.pulse, Pulse::Icmp(_))
}

/// The shard's monitors in id order, and those with maintenance windows, for slots `cold`
/// (`REMOVED` ones left out).
fn indexes(plan: &Plan, cold: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let live = || (0..cold.len() as u32).filter(|&l| cold[l as usize] != REMOVED);
    let of = |l: u32| &plan.monitors[cold[l as usize] as usize];
    let mut by_id: Vec<u32> = live().collect();
    by_id.sort_unstable_by(|&a, &b| of(a).id.cmp(&of(b).id));
    let with_windows = live().filter(|&l| !of(l).maintenance.is_empty()).collect();
    (by_id, with_windows)
}

fn invalid_config() -> Outcome {
    Outcome::failure(
        FailureKind::Unsupported,
        0,
        Detail::Text("the check's configuration cannot be used (see the log)"),
    )
}

/// Answers the API's questions until the shard goes away.
async fn answer_queries(me: std::rc::Weak<Monitors>) {
    loop {
        {
            let Some(me) = me.upgrade() else { return };
            me.queries.shard(me.shard).drain_later(|question, reply| {
                let answer = me.answer(question);
                match (&me.journal, question) {
                    // A control is answered once what it changed is durable, as an alert
                    // is delivered only then.
                    (Some(journal), Question::Control(..) | Question::Ack { .. }) => {
                        journal.then(Box::new(move || reply(answer)))
                    }
                    _ => reply(answer),
                }
            });
        }
        glommio::timer::sleep(Duration::from_millis(QUERY_POLL_MS)).await;
    }
}

/// Publishes status and follows maintenance windows until the shard goes away.
async fn housekeeping(me: std::rc::Weak<Monitors>) {
    loop {
        let wait_ms = {
            let Some(me) = me.upgrade() else { return };
            me.publish();
            me.compact_journal();
            let now_unix_ms = match &me.wall_clock {
                Some(clock) => clock(),
                None => chrono::Utc::now().timestamp_millis(),
            };
            match me.maintenance(now_unix_ms) {
                Some(next) => ((next - now_unix_ms).max(1) as u64).min(HOUSEKEEPING_MS),
                None => HOUSEKEEPING_MS,
            }
        };
        glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
    }
}

/// A shard's [`Probe`]: runs the monitor's pulse.
impl Probe for Rc<Monitors> {
    async fn check(&self, job: &Job) -> Outcome {
        self.run_check(job).await
    }
}

/// A shard's [`ResultHandler`]: outcome -> state machine -> effects.
impl ResultHandler for Rc<Monitors> {
    fn on_outcome(&mut self, job: &Job, outcome: &Outcome, now_ms: u64) {
        if self.states.borrow()[job.monitor as usize].removed() {
            // Removed by a reload while its check ran: the slot is freed when the core
            // completes the job; nothing follows from the outcome.
            return;
        }
        let generation = job.check_generation();
        debug_assert_eq!(
            self.states.borrow()[job.monitor as usize].generation(),
            generation,
            "one check in flight per monitor"
        );
        let event = match outcome.failure {
            None => Event::CheckSucceeded { generation, warning: outcome.warning },
            // Looked up only on this rare failure, so a routine check reads no cold config.
            Some(FailureKind::Permission)
                if privilege_ignored(&self.monitor(job.monitor).pulse_check.pulse) =>
            {
                // Shown in the recent results (the API says why), but not a failure.
                self.record(job.monitor, outcome, now_ms);
                return;
            }
            Some(kind) => Event::CheckFailed { generation, kind },
        };
        self.record(job.monitor, outcome, now_ms);
        self.apply(job.monitor, event, now_ms, Some(outcome));
    }

    fn reload(&mut self, order: &ShardReload, core: &mut ShardCore, now_ms: u64) {
        Monitors::reload(self, order, core, now_ms);
    }

    fn take_schedule_change(&mut self) -> Option<ScheduleChange> {
        self.schedule_changes.borrow_mut().pop_front()
    }

    fn drain(&mut self, grace_ms: u64) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        let me = self.clone();
        Some(Box::pin(async move {
            let grace = Duration::from_millis(grace_ms);
            // Alerts waiting for a commit are queued once it lands; then what settles while
            // draining is recorded too.
            if let Some(journal) = &me.journal {
                journal.flush(grace).await;
            }
            me.actions.drain(grace).await;
            if let Some(journal) = &me.journal {
                journal.flush(grace).await;
            }
            me.publish();
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_str, LoadOptions};

    #[test]
    fn only_an_icmp_pulse_with_ignore_privilege_ignores_a_missing_privilege() {
        let icmp = |ignore_privilege| {
            Pulse::Icmp(crate::manifest::IcmpPulse { host: "h".into(), count: 1, ignore_privilege })
        };
        assert!(privilege_ignored(&icmp(true)));
        assert!(!privilege_ignored(&icmp(false)));
        let (m, _) = load_str(
            "monitors: [{name: t, pulse_check: {type: tcp, config: {host: h, port: 1}}}]",
            None,
            &LoadOptions::default(),
        );
        assert!(!privilege_ignored(&m[0].pulse_check.pulse));
    }

    #[test]
    fn policy_follows_the_manifest() {
        let yaml = r#"
version: "1"
monitors:
  - name: a
    pulse_check:
      type: tcp
      max_failures: 4
      config: {host: 127.0.0.1, port: 1}
    intervention:
      action: webhook
      target: {url: "http://127.0.0.1:1/restart"}
      max_failures: 2
    codes:
      red: {notify: log}
      green: {notify: log, dispatch: false}
  - name: b
    pulse_check:
      type: tcp
      unhealthy_threshold: 0
      healthy_threshold: 5
      config: {host: 127.0.0.1, port: 1}
"#;
        let (monitors, report) = load_str(yaml, None, &LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        let a = Policy::from(&monitors[0]);
        assert_eq!(
            (a.unhealthy, a.healthy, a.has_intervention, a.recovery_max_attempts),
            (4, 2, true, 2)
        );
        assert!(a.dispatch.contains(Colour::Red));
        assert!(!a.dispatch.contains(Colour::Green), "dispatch: false");
        assert!(!a.dispatch.contains(Colour::Yellow), "no code");
        let b = Policy::from(&monitors[1]);
        assert_eq!((b.unhealthy, b.healthy, b.has_intervention), (1, 5, false));
        assert_eq!(b.dispatch, ColourSet::EMPTY);
    }

    #[test]
    fn each_colours_cooldown_is_its_codes_else_the_monitors_else_the_processes() {
        let yaml = r#"
monitors:
  - name: both
    cooldown: 10m
    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}
    codes:
      red: {notify: log, cooldown: 0s}
      yellow: {notify: log}
  - name: codes-only
    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}
    codes:
      yellow: {notify: log, cooldown: 90s}
  - name: none
    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}
"#;
        let (monitors, report) = load_str(yaml, None, &LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        let cooldowns = |m: &Monitor, process: Option<u32>| {
            let p = policy_of(m, process);
            (p.cooldown_ms[Colour::Red.index()], p.cooldown_ms[Colour::Yellow.index()])
        };
        let default = crate::state::DEFAULT_COOLDOWN_MS;
        // A code's own (0s: none) over the monitor's; the monitor's over `--cooldown`.
        assert_eq!(cooldowns(&monitors[0], Some(60_000)), (0, 600_000));
        assert_eq!(cooldowns(&monitors[1], Some(60_000)), (60_000, 90_000));
        assert_eq!(cooldowns(&monitors[1], None), (default, 90_000));
        assert_eq!(cooldowns(&monitors[2], None), (default, default));
        assert_eq!(cooldowns(&monitors[2], Some(1_000)), (1_000, 1_000));
    }
}

#[cfg(test)]
mod future_sizes {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned_size<A: 'static, B: 'static, R, F: FnOnce(&'static A, B) -> R>(_: F) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every probe task holds one check's future whatever pulse it runs, and a shard can
    /// have `max_in_flight` tasks: at 4096 a shard, each KiB of it is 4 MiB. This bounds it
    /// (debug build; release futures are smaller), so a large inline buffer in any pulse's
    /// check fails here rather than in a 1M-monitor run.
    #[test]
    fn a_check_future_stays_small() {
        let size = returned_size(|m: &'static Monitors, job: &'static Job| m.run_check(job));
        eprintln!("check future: {size} bytes");
        assert!(size <= PROBE_FUTURE_MAX_BYTES, "a check's future is {size} bytes");
    }

    /// A shard keeps a compiled config per monitor that is not plain, once checked (a plain
    /// one keeps none): at a million such monitors each byte of it is a MB. 112 bytes (http's
    /// config with its rare parts apart, its request and statuses owned or borrowed, the larger
    /// pulse types boxed); 296 before.
    #[test]
    fn a_compiled_check_stays_small() {
        assert!(std::mem::size_of::<Compiled>() <= 112);
    }

    /// 5.5 KiB in a debug build today (grpc's, the largest); 94 KiB before its reply buffers
    /// and TLS sessions moved out of the future.
    const PROBE_FUTURE_MAX_BYTES: usize = 8 * 1024;
}

/// What a shard keeps per monitor after its checks, against real loopback servers.
#[cfg(test)]
mod kept_per_monitor {
    use super::*;
    use crate::manifest::{load_str, LoadOptions};
    use crate::shard::TaskQueues;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;

    /// A loopback HTTP server recording each request head, answering `200` with body `ok`.
    /// Its thread ends with the test process (blocked in `accept`), as net's test servers.
    fn recorder() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                seen.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        (addr, heads)
    }

    fn plan_of(yaml: &str) -> Plan {
        let (monitors, report) = load_str(yaml, None, &LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        Plan { monitors, registry: Default::default() }
    }

    /// Runs `test` on a glommio executor with a one-shard `Monitors` over `plan`.
    fn on_shard<F, Fut>(plan: Plan, test: F)
    where
        F: FnOnce(Rc<Monitors>, Arc<Plan>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let resolver = cpra_net::resolver::Resolver::start(Default::default()).unwrap();
        let plan = Arc::new(plan);
        let shard_resolver = resolver.shard_client();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let specs = plan.specs();
                let epoch = Instant::now();
                let info = ShardInfo {
                    shard: 0,
                    shards: 1,
                    monitors: &specs,
                    epoch,
                    queues: TaskQueues::create(),
                };
                let clock: Rc<dyn Clock> = Rc::new(MonotonicClock::new(epoch));
                let monitors = Monitors::new(
                    &info,
                    plan.clone(),
                    Rc::new(shard_resolver),
                    Actions::new(actions::ActionsConfig::new(clock)),
                    FleetStatus::new(1),
                    FleetQueries::new(1),
                    None,
                    None,
                    None,
                    None,
                );
                test(monitors, plan).await;
            })
            .unwrap()
            .join()
            .unwrap();
        drop(resolver);
    }

    /// Checks slot `monitor` (its `generation`th check) within 5 s.
    async fn check(m: &Monitors, monitor: u32, generation: u32) -> Outcome {
        let deadline_ms = m.clock.now_ms() + 5_000;
        let job = Job { monitor, cold: monitor, generation, scheduled_ms: 0, deadline_ms };
        m.run_check(&job).await
    }

    fn kept(m: &Monitors, monitor: u32) -> Option<Rc<Prepared>> {
        m.prepared.borrow().get(&monitor).cloned()
    }

    fn manifest(addr: SocketAddr, path: &str) -> String {
        format!(
            "monitors:\n\
             - {{name: plain, pulse_check: {{type: http, config: {{url: \"http://{addr}{path}\", headers: {{X-A: b}}}}}}}}\n\
             - {{name: asserts, pulse_check: {{type: http, config: {{url: \"http://{addr}/a\", body_contains: ok}}}}}}\n\
             - {{name: connect, pulse_check: {{type: tcp, config: {{host: 127.0.0.1, port: {port}}}}}}}\n",
            port = addr.port()
        )
    }

    #[test]
    fn a_plain_monitor_keeps_nothing_and_one_that_is_not_is_compiled_once() {
        let (addr, heads) = recorder();
        on_shard(plan_of(&manifest(addr, "/v1?x=1")), move |m, _| async move {
            let mut first = None;
            for generation in 1..=2 {
                for monitor in 0..3 {
                    let outcome = check(&m, monitor, generation).await;
                    assert!(outcome.is_success(), "monitor {monitor}: {outcome:?}");
                }
                assert!(kept(&m, 0).is_none(), "a plain http monitor keeps nothing");
                assert!(kept(&m, 2).is_none(), "a tcp monitor keeps nothing");
                let compiled = kept(&m, 1).expect("a monitor with assertions is compiled");
                assert!(matches!(&*compiled, Prepared::Ready { .. }));
                // The same config on its second check: compiled once.
                let first = first.get_or_insert_with(|| compiled.clone());
                assert!(Rc::ptr_eq(first, &compiled), "compiled again");
            }
        });
        let heads = heads.lock().unwrap();
        let plain: Vec<_> = heads.iter().filter(|h| h.starts_with("GET /v1")).collect();
        assert_eq!(plain.len(), 2, "{heads:?}");
        let want = format!(
            "GET /v1?x=1 HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: cpra\r\nX-A: b\r\n\
             Connection: close\r\n\r\n"
        );
        assert_eq!(plain[0], &want);
    }

    /// A plain monitor whose config cannot be built (the loader rules that out; here the plan
    /// is changed after it) is compiled like any other: one error logged, kept as invalid.
    #[test]
    fn a_plain_monitor_that_cannot_be_built_is_kept_as_invalid() {
        let (addr, heads) = recorder();
        let mut plan = plan_of(&manifest(addr, "/"));
        let Pulse::Http(h) = &mut plan.monitors[0].pulse_check.pulse else { unreachable!() };
        h.method = Arc::new("GE T".to_owned());
        on_shard(plan, move |m, _| async move {
            let outcome = check(&m, 0, 1).await;
            assert_eq!(outcome.failure, Some(FailureKind::Unsupported), "{outcome:?}");
            let invalid = kept(&m, 0).expect("kept");
            assert!(matches!(&*invalid, Prepared::Invalid));
            let outcome = check(&m, 0, 2).await;
            assert_eq!(outcome.failure, Some(FailureKind::Unsupported), "{outcome:?}");
            assert!(Rc::ptr_eq(&invalid, &kept(&m, 0).unwrap()), "compiled again");
        });
        assert!(heads.lock().unwrap().is_empty(), "nothing sent");
    }

    /// A reload that changes a plain monitor's URL: its next check requests the new one.
    #[test]
    fn a_reload_of_a_plain_monitors_url_takes_effect_at_its_next_check() {
        let (addr, heads) = recorder();
        let changed = Arc::new(plan_of(&manifest(addr, "/v2")));
        on_shard(plan_of(&manifest(addr, "/v1")), move |m, plan| async move {
            assert!(check(&m, 0, 1).await.is_success());
            let mut core = ShardCore::new(&plan.specs(), 0, 16).unwrap();
            let order = ShardReload {
                plan: changed.clone(),
                removed: Vec::new(),
                changed: vec![(0, changed.spec(0))],
                moved: Vec::new(),
                added: Vec::new(),
            };
            let mut handler = m.clone();
            ResultHandler::reload(&mut handler, &order, &mut core, m.clock.now_ms());
            assert!(check(&m, 0, 2).await.is_success());
            assert!(kept(&m, 0).is_none());
        });
        let heads = heads.lock().unwrap();
        let paths: Vec<_> = heads.iter().map(|h| h.split(' ').nth(1).unwrap_or("")).collect();
        assert_eq!(paths, ["/v1", "/v2"]);
    }
}
