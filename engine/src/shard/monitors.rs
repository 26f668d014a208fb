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
use cpra_net::icmp::IcmpClient;
use cpra_net::resolver::ShardResolver;
use cpra_net::retry::with_retries;
use cpra_net::{Deadline, Detail, FailureKind, Outcome};

use super::queries::{
    Answer, FleetQueries, LastCheck, ListFilter, MonitorHealth, MonitorPage, MonitorRow, Question,
};
use super::reload::ShardReload;
use super::spawn_into;
use super::status::{FleetStatus, StatusSnapshot};
use super::target::{compile, host_of, Check, Compiled};
use super::ShardCore;
use crate::actions::{self, Actions, InterventionResult};
use crate::alert::{incident_id, render, MonitorInfo, RenderedAlert};
use crate::clock::{Clock, MonotonicClock};
use crate::colour::{Colour, ColourSet};
use crate::limits::API_LIST_MAX_LIMIT;
use crate::manifest::{Monitor, Pulse};
use crate::plan::Plan;
use crate::probe::{Probe, ResultHandler, ShardInfo};
use crate::ring::Job;
use crate::state::{transition, Effect, Event, MonitorState, Policy};

/// How often a shard publishes its status and looks at maintenance windows when no window
/// boundary comes sooner: 250 ms keeps the status line fresh at 4 cheap wake-ups a second.
pub const HOUSEKEEPING_MS: u64 = 250;

/// How often a shard looks for questions from the API: an API list waits at most this long
/// for a shard to start answering; an empty look is one atomic load, 100 times a second.
pub const QUERY_POLL_MS: u64 = 10;

// What the API's monitor list costs a monitor: its last outcome and time (here) and its place
// in the id order (4 bytes); docs/api.md states the sum.
const _: () = assert!(std::mem::size_of::<(u64, Outcome)>() <= 56);

/// Called on the shard for every alert as it is queued (the demo prints it; tests record it).
pub type AlertObserver = Arc<dyn Fn(&RenderedAlert) + Send + Sync>;

/// Unix time in ms, for maintenance windows (cron in a timezone is wall-clock time).
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The compiled check of one monitor, for the address it was compiled against.
enum Prepared {
    Empty,
    Ready(Option<SocketAddr>, Rc<Compiled>),
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
    policies: RefCell<Vec<Policy>>,
    /// The host and port to resolve per monitor (parsed once), `None` when nothing is resolved.
    /// `Rc<str>`: a check takes its own handle to the host without allocating.
    hosts: RefCell<Vec<Host>>,
    /// The monitors with maintenance windows (shard-local indexes): the only ones the
    /// housekeeping task looks at, so a big shard without windows costs it nothing.
    with_windows: RefCell<Vec<u32>>,
    states: RefCell<Vec<MonitorState>>,
    health: RefCell<Vec<Health>>,
    /// Each monitor's last outcome and when it ended (shard ms), for the API (meaningful once
    /// `health` is not `Unknown`): 56 bytes a monitor, outside the hot state.
    last: RefCell<Vec<(u64, Outcome)>>,
    /// Shard-local indexes in monitor id order: the API's lists page through it.
    by_id: RefCell<Vec<u32>>,
    prepared: RefCell<Vec<Prepared>>,
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
    ) -> Rc<Monitors> {
        let n = info.monitors.len();
        let cold: Vec<u32> = info.monitors.iter().map(|s| s.cold).collect();
        let manifest_monitors = || cold.iter().map(|&c| &plan.monitors[c as usize]);
        let policies = manifest_monitors().map(Policy::from).collect();
        let hosts = manifest_monitors().map(host_handle).collect();
        let has_icmp = manifest_monitors().any(is_icmp);
        let disabled = manifest_monitors().filter(|m| !m.enabled).count() as u64;
        let unknown = n as u64 - disabled;
        let (by_id, with_windows) = indexes(&plan, &cold);
        let monitors = Rc::new(Monitors {
            shard: info.shard,
            policies: RefCell::new(policies),
            hosts: RefCell::new(hosts),
            with_windows: RefCell::new(with_windows),
            states: RefCell::new(vec![MonitorState::new(); n]),
            health: RefCell::new(vec![Health::Unknown; n]),
            last: RefCell::new(vec![(0, Outcome::success(0)); n]),
            by_id: RefCell::new(by_id),
            prepared: RefCell::new((0..n).map(|_| Prepared::Empty).collect()),
            tls_cache: RefCell::new(TlsConfigCache::default()),
            http: HttpClient::new(),
            icmp: RefCell::new(has_icmp.then(|| Rc::new(IcmpClient::new()))),
            resolver,
            actions,
            clock: MonotonicClock::new(info.epoch),
            status,
            queries,
            local_status: Cell::new(StatusSnapshot { unknown, disabled, ..Default::default() }),
            observer,
            wall_clock,
            cold: RefCell::new(cold),
            plan: RefCell::new(Rc::new(ShardPlan(plan))),
        });
        spawn_into(housekeeping(Rc::downgrade(&monitors)), info.queues.background).detach();
        spawn_into(answer_queries(Rc::downgrade(&monitors)), info.queues.background).detach();
        monitors
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

    /// The compiled check for `local`, (re)compiled when its address changed.
    async fn compiled(&self, local: u32, deadline: &Deadline) -> Result<Rc<Compiled>, Outcome> {
        let i = local as usize;
        let host = self.hosts.borrow()[i].clone();
        let addr = match &host {
            None => None,
            Some((host, port)) => {
                match self.resolver.resolve_socket_addr(host, *port, deadline.remaining()).await {
                    Ok(addr) => Some(addr),
                    Err(e) => return Err(e.to_outcome(deadline.elapsed_us())),
                }
            }
        };
        match &self.prepared.borrow()[i] {
            Prepared::Ready(a, c) if *a == addr => return Ok(c.clone()),
            Prepared::Invalid => return Err(invalid_config()),
            _ => {}
        }
        let monitor = self.monitor(local);
        let compiled = compile(
            &monitor.pulse_check.pulse,
            addr,
            monitor.pulse_check.retries_per_check(),
            &mut self.tls_cache.borrow_mut(),
        );
        let mut prepared = self.prepared.borrow_mut();
        match compiled {
            Ok(c) => {
                let c = Rc::new(c);
                prepared[i] = Prepared::Ready(addr, c.clone());
                Ok(c)
            }
            Err(e) => {
                tracing::error!(monitor = %monitor.shown_name(), line = monitor.line, "cannot check: {e}");
                prepared[i] = Prepared::Invalid;
                Err(invalid_config())
            }
        }
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
        let compiled = match self.compiled(job.monitor, &deadline).await {
            Ok(c) => c,
            Err(outcome) => return outcome,
        };
        let left = deadline.remaining();
        let retries = compiled.retries;
        match &compiled.check {
            Check::Http(c) => self.http.check(c, left).await,
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
        self.last.borrow_mut()[i] = (now_ms, *outcome);
        let now = if outcome.is_success() { Health::Up } else { Health::Down };
        let before = std::mem::replace(&mut self.health.borrow_mut()[i], now);
        if before != now {
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
        let effects = {
            let mut states = self.states.borrow_mut();
            transition(&mut states[i], &self.policies.borrow()[i], event, now_ms)
        };
        for effect in &effects {
            self.apply_effect(local, effect, outcome);
        }
    }

    fn apply_effect(self: &Rc<Self>, local: u32, effect: &Effect, outcome: Option<&Outcome>) {
        let monitor = self.monitor(local);
        match *effect {
            Effect::Alert { colour, .. } => {
                let target = monitor.shown_target();
                let intervention = monitor.shown_intervention();
                let info = MonitorInfo {
                    id: monitor.shown_id(),
                    name: monitor.shown_name(),
                    target: &target,
                    intervention: intervention.as_deref(),
                };
                let Some(alert) = render(effect, &info, outcome) else { return };
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
                self.actions.queue_alert(local, &endpoints, Rc::new(alert));
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
                self.actions.start_intervention(local, &intervention.action, done);
            }
            Effect::CancelIntervention => self.actions.cancel_intervention(local),
            Effect::CancelQueuedAlerts => self.actions.cancel_alerts(local),
            Effect::IncidentOpened { incident_seq } => {
                tracing::info!(monitor = %monitor.shown_name(), incident_seq, "incident opened");
                let mut s = self.local_status.get();
                s.incidents_open += 1;
                self.local_status.set(s);
            }
            Effect::IncidentClosed { incident_seq, silent } => {
                let what = if silent { "incident closed silently" } else { "incident closed" };
                tracing::info!(monitor = %monitor.shown_name(), incident_seq, silent, "{what}");
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
    fn reload(self: &Rc<Self>, order: &ShardReload, core: &mut ShardCore, now_ms: u64) {
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
            let enabled = self.monitor(local).enabled;
            // Per monitor at debug: a reload may remove a million; the summary is at info.
            tracing::debug!(
                shard = self.shard,
                monitor = %self.monitor(local).shown_name(),
                "removed by a reload"
            );
            self.apply(local, Event::Removed, now_ms, None);
            self.adjust(|s| self.uncount(s, local, enabled));
            core.remove_monitor(local);
            self.cold.borrow_mut()[local as usize] = REMOVED;
            self.prepared.borrow_mut()[local as usize] = Prepared::Empty;
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
                let was_enabled = self.monitor(local).enabled;
                if let Err(e) = core.update_monitor(local, spec, now_ms) {
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
            self.policies.borrow_mut()[i] = Policy::from(&*monitor);
            self.hosts.borrow_mut()[i] = host_handle(&monitor);
            self.prepared.borrow_mut()[i] = Prepared::Empty;
            tracing::debug!(shard = self.shard, monitor = %monitor.shown_name(), "changed by a reload");
            self.apply(local, Event::ConfigChanged, now_ms, None);
            if was_enabled != monitor.enabled {
                self.adjust(|s| {
                    self.uncount(s, local, was_enabled);
                    if monitor.enabled {
                        s.unknown += 1;
                    } else {
                        s.disabled += 1;
                    }
                });
                self.health.borrow_mut()[i] = Health::Unknown;
                let event = if monitor.enabled { Event::Enabled } else { Event::Disabled };
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
            self.place(local, (spec.cold, Policy::from(&*monitor), host_handle(&monitor)));
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

    /// Fills slot `local` (new at the end, or one a removed monitor left) for a new monitor.
    fn place(&self, local: u32, (cold, policy, host): (u32, Policy, Host)) {
        let i = local as usize;
        let mut cold_v = self.cold.borrow_mut();
        if i == cold_v.len() {
            cold_v.push(cold);
            self.policies.borrow_mut().push(policy);
            self.hosts.borrow_mut().push(host);
            self.states.borrow_mut().push(MonitorState::new());
            self.health.borrow_mut().push(Health::Unknown);
            self.last.borrow_mut().push((0, Outcome::success(0)));
            self.prepared.borrow_mut().push(Prepared::Empty);
            return;
        }
        assert!(i < cold_v.len() && cold_v[i] == REMOVED, "slot {local} given while in use");
        cold_v[i] = cold;
        self.policies.borrow_mut()[i] = policy;
        self.hosts.borrow_mut()[i] = host;
        self.states.borrow_mut()[i] = MonitorState::new();
        self.health.borrow_mut()[i] = Health::Unknown;
        self.last.borrow_mut()[i] = (0, Outcome::success(0));
        self.prepared.borrow_mut()[i] = Prepared::Empty;
    }

    /// A monitor's state as the API names it.
    fn health_of(&self, local: u32) -> MonitorHealth {
        if !self.monitor(local).enabled {
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
        let last_check = matches!(health, MonitorHealth::Up | MonitorHealth::Down).then(|| {
            let (at_ms, outcome) = self.last.borrow()[i];
            // Named by host and port, never by URL: a URL may carry credentials.
            let target = match &self.hosts.borrow()[i] {
                Some((host, port)) => format!("{host}:{port}"),
                None => monitor.pulse_check.pulse.type_name().to_string(),
            };
            LastCheck {
                at_unix_ms: now_unix_ms - now_ms.saturating_sub(at_ms) as i64,
                latency_us: outcome.latency_us,
                failure: outcome.failure.map(|k| (k.as_str(), outcome.describe(&target))),
            }
        });
        MonitorRow {
            id: monitor.id.clone(),
            name: monitor.shown_name().to_owned(),
            kind: monitor.pulse_check.pulse.type_name(),
            health,
            incident_id: incident,
            groups: monitor.pulse_check.groups.clone(),
            last_check,
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

/// A monitor's host and port to resolve, `None` when nothing is resolved.
type Host = Option<(Rc<str>, u16)>;

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

fn host_handle(m: &Monitor) -> Host {
    host_of(&m.pulse_check.pulse).ok().flatten().map(|(host, port)| (Rc::from(host), port))
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
            me.queries.shard(me.shard).drain(|question| match question {
                Question::ListMonitors(filter) => Answer::Monitors(me.list(filter)),
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
            Some(kind) => Event::CheckFailed { generation, kind },
        };
        self.record(job.monitor, outcome, now_ms);
        self.apply(job.monitor, event, now_ms, Some(outcome));
    }

    fn reload(&mut self, order: &ShardReload, core: &mut ShardCore, now_ms: u64) {
        Monitors::reload(self, order, core, now_ms);
    }

    fn drain(&mut self, grace_ms: u64) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        let me = self.clone();
        Some(Box::pin(async move {
            me.actions.drain(Duration::from_millis(grace_ms)).await;
            me.publish();
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_str, LoadOptions};

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
}
