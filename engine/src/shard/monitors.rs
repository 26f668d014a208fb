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
use super::spawn_into;
use super::status::{FleetStatus, StatusSnapshot};
use super::target::{compile, host_of, Check, Compiled};
use crate::actions::{self, Actions, InterventionResult};
use crate::alert::{incident_id, render, MonitorInfo, RenderedAlert};
use crate::clock::{Clock, MonotonicClock};
use crate::colour::{Colour, ColourSet};
use crate::limits::API_LIST_MAX_LIMIT;
use crate::manifest::{Monitor, Notify, Pulse};
use crate::plan::Plan;
use crate::probe::{Probe, ResultHandler, ShardInfo};
use crate::ring::Job;
use crate::state::{transition, Effect, Event, MonitorState, Policy, MAX_COOLDOWN_MS};
use crate::store::{config_check, endpoint_check, Journal, Record, Recovery, SavedAlert};

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
    plan: Arc<Plan>,
    /// Shard-local monitor index -> index in `plan.monitors`.
    cold: Box<[u32]>,
    policies: Box<[Policy]>,
    /// The host and port to resolve per monitor (parsed once), `None` when nothing is resolved.
    hosts: Box<[Option<(String, u16)>]>,
    /// The monitors with maintenance windows (shard-local indexes): the only ones the
    /// housekeeping task looks at, so a big shard without windows costs it nothing.
    with_windows: Box<[u32]>,
    states: RefCell<Vec<MonitorState>>,
    health: RefCell<Vec<Health>>,
    /// Each monitor's last outcome and when it ended (shard ms), for the API (meaningful once
    /// `health` is not `Unknown`): 56 bytes a monitor, outside the hot state.
    last: RefCell<Vec<(u64, Outcome)>>,
    /// Shard-local indexes in monitor id order: the API's lists page through it.
    by_id: Box<[u32]>,
    prepared: RefCell<Vec<Prepared>>,
    tls_cache: RefCell<TlsConfigCache>,
    http: HttpClient,
    icmp: Option<IcmpClient>,
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
    configs: Box<[u32]>,
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
        let cold: Box<[u32]> = info.monitors.iter().map(|s| s.cold).collect();
        let manifest_monitors = || cold.iter().map(|&c| &plan.monitors[c as usize]);
        let policies = manifest_monitors()
            .map(|m| {
                let mut policy = Policy::from(m);
                if let Some(ms) = cooldown_ms {
                    policy.cooldown_ms = [ms; Colour::COUNT];
                }
                policy
            })
            .collect();
        let hosts = manifest_monitors()
            .map(|m| host_of(&m.pulse_check.pulse).ok().flatten())
            .collect::<Box<[_]>>();
        let with_windows = manifest_monitors()
            .enumerate()
            .filter(|(_, m)| !m.maintenance.is_empty())
            .map(|(i, _)| i as u32)
            .collect();
        let has_icmp = manifest_monitors().any(|m| matches!(m.pulse_check.pulse, Pulse::Icmp(_)));
        let disabled = manifest_monitors().filter(|m| !m.enabled).count() as u64;
        let unknown = n as u64 - disabled;
        let mut by_id: Vec<u32> = (0..n as u32).collect();
        by_id.sort_unstable_by(|&a, &b| {
            let id = |l: u32| plan.monitors[cold[l as usize] as usize].id.as_str();
            id(a).cmp(id(b))
        });
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
            None => Box::default(),
            Some(_) => manifest_monitors().map(config_check).collect(),
        };
        let recovery = journal.as_ref().map(|j| j.recovery.clone());
        let monitors = Rc::new(Monitors {
            shard: info.shard,
            policies,
            hosts,
            with_windows,
            states: RefCell::new(states),
            health: RefCell::new(vec![Health::Unknown; n]),
            last: RefCell::new(vec![(0, Outcome::success(0)); n]),
            by_id: by_id.into_boxed_slice(),
            prepared: RefCell::new((0..n).map(|_| Prepared::Empty).collect()),
            tls_cache: RefCell::new(TlsConfigCache::default()),
            http: HttpClient::new(),
            icmp: has_icmp.then(IcmpClient::new),
            resolver,
            actions,
            clock,
            status,
            queries,
            local_status: Cell::new(StatusSnapshot { unknown, disabled, ..Default::default() }),
            observer,
            wall_clock,
            cold,
            plan,
            journal: journal.map(|j| j.journal),
            configs,
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
        for local in 0..self.cold.len() as u32 {
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
        let endpoints = actions::endpoints_for(&monitor.codes, saved.colour, &self.plan.registry);
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
        let target = monitor.shown_target();
        let info = MonitorInfo {
            id: monitor.shown_id(),
            name: monitor.shown_name(),
            target: &target,
            intervention: None,
        };
        // Sent at its old `not_before`, not at once: the cooldowns continue across the
        // restart (the journal keeps them), and a green queued after the restart waits behind
        // an alert of the same episode still waiting, as it would have without a restart.
        let alert = crate::alert::rebuild(
            saved.colour,
            saved.reason,
            &info,
            saved.incident_seq,
            saved.summary.clone(),
            saved.action.clone(),
            saved.next_steps.clone(),
            not_before_ms,
        );
        let mut s = self.local_status.get();
        s.alerts_queued += 1;
        self.local_status.set(s);
        self.outbox.borrow_mut().insert(saved.id, saved.clone());
        self.actions.queue_delivery(local, endpoint.clone(), Rc::new(alert), Some(saved.id));
    }

    fn monitor(&self, local: u32) -> &Monitor {
        &self.plan.monitors[self.cold[local as usize] as usize]
    }

    /// The compiled check for `local`, (re)compiled when its address changed.
    async fn compiled(&self, local: u32, deadline: &Deadline) -> Result<Rc<Compiled>, Outcome> {
        let i = local as usize;
        let addr = match &self.hosts[i] {
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
        self.states.borrow_mut()[job.monitor as usize].begin_check(job.check_generation());
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
            Check::Icmp(c) => match &self.icmp {
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
        let state_ms = now_ms + STATE_CLOCK_ORIGIN_MS;
        let (effects, changed) = {
            let mut states = self.states.borrow_mut();
            let before = states[i];
            let effects = transition(&mut states[i], &self.policies[i], event, state_ms);
            (effects, (!before.same_saved(&states[i])).then_some(states[i]))
        };
        // Journal first, act after: everything a transition records precedes, in the journal,
        // the alerts it queues, and those wait for the commit (`Journal::then`).
        if let Some(journal) = &self.journal {
            let id = || self.monitor(local).id.clone();
            if let Some(state) = changed {
                journal.append(&Record::MonitorState {
                    monitor: id(),
                    config: self.configs[i],
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
                let endpoints = actions::endpoints_for(&monitor.codes, colour, &self.plan.registry);
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
                tracing::info!(monitor = %monitor.shown_name(), incident_seq, silent, "incident closed");
                let mut s = self.local_status.get();
                s.incidents_open = s.incidents_open.saturating_sub(1);
                self.local_status.set(s);
            }
        }
    }

    /// Records `alert` in the outbox, once per endpoint, and queues its deliveries once that
    /// is durable.
    fn queue_durably(
        &self,
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
        let actions = self.actions.clone();
        journal.then(Box::new(move || {
            for (endpoint, id) in endpoints.into_iter().zip(ids) {
                actions.queue_delivery(local, endpoint, alert.clone(), Some(id));
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
            if saved == fresh {
                continue;
            }
            let record = Record::MonitorState {
                monitor: self.monitor(i as u32).id.clone(),
                config: self.configs[i],
                state: saved,
            };
            if let Err(e) = crate::store::encode(&record, &mut bytes) {
                tracing::error!(shard = self.shard, "journal: cannot write {e}");
            }
        }
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
            let target = match &self.hosts[i] {
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
        let start = match &filter.after {
            None => 0,
            Some(after) => {
                self.by_id.partition_point(|&l| self.monitor(l).id.as_str() <= after.as_str())
            }
        };
        let now_unix_ms = self.now_unix_ms();
        let now_ms = self.clock.now_ms();
        let mut rows = Vec::with_capacity(limit.min(self.by_id.len() - start));
        // Matches after the cursor, counted to limit + 1: enough to know whether more remain.
        let mut after_cursor = 0u64;
        for &local in &self.by_id[start..] {
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
            _ if !filter.by_state_only() => self
                .by_id
                .iter()
                .filter(|&&l| {
                    let m = self.monitor(l);
                    filter.matches(&m.name, &m.pulse_check.groups, self.health_of(l))
                })
                .count() as u64,
            None => self.by_id.len() as u64,
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
        for &local in self.with_windows.iter() {
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
