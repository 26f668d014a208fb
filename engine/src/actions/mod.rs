//! What a shard does with the alerts and interventions the state machine asks for: notifiers
//! (log, webhook, chat, paging, email), their delivery (retries, bounds, dedup, undelivered
//! accounting) and interventions (docker, webhook, systemd, kubernetes, aws).
//!
//! What it is for: one [`Actions`] per shard, created on the shard's thread, used only there
//! (`Rc`, no `Send`). What it is not for: deciding *whether* or *when* an alert goes out
//! (`state.rs` does, including cooldowns: `not_before_ms` arrives already computed) or what it
//! says (`alert.rs`).
//!
//! # API (the seam with the runtime wiring)
//! ```text
//! // at load, per monitor: resolve and check (errors name the endpoint kind and value)
//! actions::endpoints_for(&monitor.codes, colour, &report.registry) -> Vec<Arc<Notify>>
//! actions::check_endpoint(&Notify) -> Result<(), String>
//! actions::check_intervention(&InterventionAction) -> Result<(), String>
//! actions::intervention::describe(&InterventionAction) -> String   // MonitorInfo::intervention
//!
//! // per shard, on the shard thread
//! let mut config = ActionsConfig::new(clock);   // Rc<dyn Clock>: the runtime's clock
//! config.resolver = Some(Rc::new(resolver.shard_client()));  // for non-IP receiver hosts
//! let actions = Actions::new(config);           // Rc<Actions>
//! actions.queue_alert(monitor: u32, endpoints: &[Arc<Notify>], alert: Rc<RenderedAlert>)
//!     // Effect::Alert: one delivery per endpoint, not before alert.not_before_ms (clock ms);
//!     // dropped as a duplicate when (endpoint, monitor, colour, not_before_ms) is queued;
//!     // a monitor's alerts reach an endpoint in queue order (retries included).
//! actions.cancel_alerts(monitor)                // Effect::CancelQueuedAlerts
//! actions.start_intervention(monitor, &Intervention, done: Box<dyn FnOnce(InterventionResult)>)
//!     // Effect::StartIntervention: `done` runs on this shard with the result, never if
//!     // cancelled; a second start for the same monitor replaces (cancels) the first.
//! actions.cancel_intervention(monitor)          // Effect::CancelIntervention
//! actions.counters() -> ActionCounters          // queued, sent, retried, undelivered, ...
//! actions.recent_undelivered() -> Vec<Undelivered>  // the last MAX_RECENT_UNDELIVERED, with reasons
//! actions.pending() -> usize                    // deliveries not finished
//! actions.drain(grace).await                    // at shutdown; what is left is undelivered
//! ```
//! `InterventionResult::{Succeeded, Failed, Unknown}` convert (`From`) to
//! `state::Event::{InterventionSucceeded, InterventionFailed, InterventionUnknown}`.

pub mod aws;
pub mod delivery;
pub mod intervention;
pub mod kubeconfig;
pub mod lane;
pub mod logfile;
pub mod payload;
pub mod retry;
pub mod send;
pub mod smtp;
pub mod target;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use cpra_net::resolver::ShardResolver;
use glommio::sync::Semaphore;
use glommio::task::JoinHandle;

use crate::alert::{self, RenderedAlert};
use crate::clock::{Clock, MonotonicClock};
use crate::colour::Colour;
use crate::limits::{
    DEFAULT_MAX_DELIVERIES_IN_FLIGHT, DEFAULT_MAX_OPEN_LOG_FILES, DEFAULT_MAX_QUEUED_DELIVERIES,
    MAX_RECENT_UNDELIVERED,
};
use crate::manifest::{CodeTarget, Codes, Intervention, InterventionAction, Notify, Registry};

pub use delivery::{DedupKey, Undelivered};
pub use retry::{AttemptResult, RetryPolicy};

/// Bound on one notification attempt (connect, TLS, request, response): receivers answer in
/// well under a second; 10 s tolerates a slow one without holding a slot for long.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Intervention timeout when the manifest gives none: long enough for a container restart
/// (Docker waits up to 10 s before killing), short enough to alert on a hung call.
pub const DEFAULT_INTERVENTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The endpoints an alert of `colour` goes to: the code's own `notify`, or the endpoints of
/// its `notify_group`; empty when the monitor has no code for `colour` with `dispatch` on.
/// Allocates: call it at load and keep the result per monitor and colour.
pub fn endpoints_for(codes: &Codes, colour: Colour, registry: &Registry) -> Vec<Arc<Notify>> {
    match codes.get(colour) {
        Some(code) if code.dispatch => match &code.target {
            CodeTarget::Notify(n) => vec![n.clone()],
            CodeTarget::Group { id, .. } => {
                registry.group_endpoints(*id).map(|(_, n)| n.clone()).collect()
            }
        },
        _ => Vec::new(),
    }
}

/// Checks an endpoint's config before the engine starts, so a typo in a URL is reported at
/// load (with the file, line and monitor the caller knows) rather than as an undelivered
/// alert at 3 a.m. The message says what is wrong and with which value.
pub fn check_endpoint(endpoint: &Notify) -> Result<(), String> {
    match endpoint {
        Notify::Log { file } => match file {
            Some(f) if f.trim().is_empty() => Err("log: `file` is empty".into()),
            _ => Ok(()),
        },
        Notify::Email { .. } => smtp::check(endpoint),
        _ => {
            // Any alert renders the same request shape; a sample shows the URL is usable.
            let sample = alert::render(
                &crate::state::Effect::Alert {
                    colour: Colour::Red,
                    reason: crate::state::Reason::ThresholdReached,
                    incident_seq: Some(1),
                    consecutive_failures: 1,
                    not_before_ms: 0,
                },
                &alert::MonitorInfo { id: "m", name: "m", target: "t", intervention: None },
                None,
            )
            .expect("an Alert effect renders");
            let req = payload::http_request(endpoint, &sample, 0)
                .expect("every other kind is an HTTP notifier");
            target::Target::parse(&req.url)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", endpoint.kind()))
        }
    }
}

/// Checks an intervention's config before the engine starts (see [`check_endpoint`]).
pub fn check_intervention(action: &InterventionAction) -> Result<(), String> {
    match action {
        InterventionAction::Docker { container, .. } => {
            intervention::docker_restart_request(container, 0).map(|_| ())
        }
        InterventionAction::Webhook { url, .. } => target::Target::parse(url).map(|_| ()),
        InterventionAction::Systemd { unit, mode, .. } => {
            intervention::systemctl_args(unit, mode.as_deref()).map(|_| ())
        }
        InterventionAction::Aws { region, operation, instance_id, endpoint, .. } => {
            aws::check_operation(operation)?;
            aws::check_region(region)?;
            aws::check_instance_id(instance_id)?;
            target::Target::parse(&aws::endpoint_url(region, endpoint.as_deref())).map(|_| ())
        }
        InterventionAction::Kubernetes { namespace, kind, name, replicas, .. } => {
            intervention::kubernetes_patch(kind, namespace, name, *replicas, "").map(|_| ())
        }
    }
}

/// How a shard's actions are bounded and where they reach the outside world.
#[derive(Clone)]
pub struct ActionsConfig {
    /// The runtime's clock: `not_before_ms` is in its milliseconds.
    pub clock: Rc<dyn Clock>,
    pub max_in_flight: usize,
    pub max_queued: usize,
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    /// Resolves receiver host names; `None`: only IP-literal hosts can be reached (tests).
    pub resolver: Option<Rc<ShardResolver>>,
    /// The Docker engine's unix socket (interventions).
    pub docker_socket: PathBuf,
    /// The `systemctl` program (interventions); a stand-in script in tests.
    pub systemctl: PathBuf,
    /// Extra trusted roots (PEM) for notifiers' TLS: a mail relay or webhook receiver with
    /// an internal CA. Added to the web PKI roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Open log-notifier files per shard.
    pub max_log_files: usize,
    /// Where in-cluster Kubernetes credentials live (the service-account mount).
    pub kube_service_account_dir: PathBuf,
    /// Unix ms now: the `timestamp` of payloads. A function so tests can pin it.
    pub wall_clock_ms: fn() -> i64,
    /// Where the aws intervention finds credentials (the environment, by default).
    pub aws: aws::Sources,
    /// Pause before a failed intervention is tried again (`intervention.retries`).
    pub intervention_retry_pause: Duration,
    /// The shard's actions task queue, so deliveries and interventions never run in the
    /// probes' queue; `None` spawns into the current queue (tests of actions alone).
    pub task_queue: Option<glommio::TaskQueueHandle>,
}

impl ActionsConfig {
    /// Production defaults on `clock`.
    pub fn new(clock: Rc<dyn Clock>) -> ActionsConfig {
        ActionsConfig {
            clock,
            max_in_flight: DEFAULT_MAX_DELIVERIES_IN_FLIGHT,
            max_queued: DEFAULT_MAX_QUEUED_DELIVERIES,
            retry: RetryPolicy::default(),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            resolver: None,
            // The same engine the docker pulse talks to: DOCKER_HOST=unix://... or the default.
            docker_socket: cpra_net::docker::socket_from_docker_host(
                std::env::var("DOCKER_HOST").ok().as_deref(),
            )
            .unwrap_or_else(|_| PathBuf::from(cpra_net::docker::DEFAULT_SOCKET)),
            systemctl: PathBuf::from("systemctl"),
            extra_ca_file: None,
            max_log_files: DEFAULT_MAX_OPEN_LOG_FILES,
            kube_service_account_dir: PathBuf::from(kubeconfig::SERVICE_ACCOUNT_DIR),
            wall_clock_ms: || chrono::Utc::now().timestamp_millis(),
            aws: aws::Sources::default(),
            intervention_retry_pause: Duration::from_millis(
                crate::limits::INTERVENTION_RETRY_PAUSE_MS,
            ),
            task_queue: None,
        }
    }

    /// Defaults on a fresh monotonic clock (tests, tools).
    pub fn with_monotonic_clock() -> ActionsConfig {
        ActionsConfig::new(Rc::new(MonotonicClock::new(std::time::Instant::now())))
    }
}

/// The outcome of an intervention, fed back to the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterventionResult {
    Succeeded,
    Failed,
    /// The request went out but no answer came (broken connection, timeout): it may have run.
    Unknown,
}

impl ActionCounters {
    /// Adds `other` (another shard's counts) into `self`, for a process-wide total.
    pub fn add(&mut self, other: &ActionCounters) {
        self.queued += other.queued;
        self.sent += other.sent;
        self.retried += other.retried;
        self.undelivered += other.undelivered;
        for i in 0..Colour::COUNT {
            self.sent_by_colour[i] += other.sent_by_colour[i];
            self.undelivered_by_colour[i] += other.undelivered_by_colour[i];
        }
        self.deduplicated += other.deduplicated;
        self.cancelled += other.cancelled;
        self.interventions_started += other.interventions_started;
        self.interventions_succeeded += other.interventions_succeeded;
        self.interventions_failed += other.interventions_failed;
        self.interventions_unknown += other.interventions_unknown;
    }
}

impl From<InterventionResult> for crate::state::Event {
    fn from(result: InterventionResult) -> Self {
        match result {
            InterventionResult::Succeeded => crate::state::Event::InterventionSucceeded,
            InterventionResult::Failed => crate::state::Event::InterventionFailed,
            InterventionResult::Unknown => crate::state::Event::InterventionUnknown,
        }
    }
}

/// Counts since the shard started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ActionCounters {
    /// Deliveries accepted (one per alert and endpoint).
    pub queued: u64,
    /// Deliveries that reached their receiver.
    pub sent: u64,
    /// Attempts after the first (retries).
    pub retried: u64,
    /// Deliveries given up on (see [`Undelivered`]).
    pub undelivered: u64,
    /// `sent` by the alert's colour, indexed `Colour::index`.
    pub sent_by_colour: [u64; Colour::COUNT],
    /// `undelivered` by the alert's colour, indexed `Colour::index`.
    pub undelivered_by_colour: [u64; Colour::COUNT],
    /// Deliveries not queued because the same one was already queued.
    pub deduplicated: u64,
    /// Deliveries dropped by `cancel_alerts` before they were sent.
    pub cancelled: u64,
    pub interventions_started: u64,
    pub interventions_succeeded: u64,
    pub interventions_failed: u64,
    pub interventions_unknown: u64,
}

#[derive(Default)]
struct CounterCells {
    queued: Cell<u64>,
    sent: Cell<u64>,
    retried: Cell<u64>,
    undelivered: Cell<u64>,
    sent_by_colour: [Cell<u64>; Colour::COUNT],
    undelivered_by_colour: [Cell<u64>; Colour::COUNT],
    deduplicated: Cell<u64>,
    cancelled: Cell<u64>,
    interventions_started: Cell<u64>,
    interventions_succeeded: Cell<u64>,
    interventions_failed: Cell<u64>,
    interventions_unknown: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// What the shard keeps per queued delivery: the alert (for the undelivered record if the
/// shard shuts down first) and the task running the delivery.
struct QueuedDelivery {
    alert: Rc<RenderedAlert>,
    /// Its journal id, if the journal keeps it.
    outbox: Option<u64>,
    task: Option<JoinHandle<()>>,
}

/// A running intervention: its job id (so a stale completion is recognised) and task.
type RunningIntervention = (u64, Option<JoinHandle<()>>);

/// One shard's notifiers and interventions.
pub struct Actions {
    config: ActionsConfig,
    in_flight: Semaphore,
    next_job: Cell<u64>,
    /// Deliveries not finished, by job id.
    queue: RefCell<delivery::Queue<QueuedDelivery>>,
    interventions: RefCell<HashMap<u32, RunningIntervention>>,
    /// One lane per (endpoint, monitor): a monitor's alerts reach an endpoint in the order
    /// they were queued (yellow before red), retries included. A lane is dropped when idle.
    lanes: RefCell<HashMap<(usize, u32), Rc<lane::Lane>>>,
    counters: CounterCells,
    recent_undelivered: RefCell<VecDeque<Undelivered>>,
    sender: send::Sender,
    /// Told when a journaled alert (its outbox id) is delivered (`true`) or given up
    /// (`false`), so the journal stops keeping it. Not told when a shutdown leaves it unsent:
    /// it is sent after the restart.
    outbox_settled: RefCell<Option<OutboxSettled>>,
}

/// See [`Actions::on_outbox_settled`].
pub type OutboxSettled = Box<dyn Fn(u64, bool)>;

impl Actions {
    pub fn new(config: ActionsConfig) -> Rc<Actions> {
        assert!(config.max_in_flight > 0 && config.max_queued > 0);
        let sender = send::Sender::new(&config);
        Rc::new(Actions {
            in_flight: Semaphore::new(config.max_in_flight as u64),
            next_job: Cell::new(1),
            queue: RefCell::new(delivery::Queue::default()),
            interventions: RefCell::new(HashMap::new()),
            lanes: RefCell::new(HashMap::new()),
            counters: CounterCells::default(),
            recent_undelivered: RefCell::new(VecDeque::with_capacity(MAX_RECENT_UNDELIVERED)),
            sender,
            config,
            outbox_settled: RefCell::new(None),
        })
    }

    /// Sets what is told when a delivery queued with an outbox id settles.
    pub fn on_outbox_settled(&self, settled: OutboxSettled) {
        *self.outbox_settled.borrow_mut() = Some(settled);
    }

    fn settle(&self, outbox: Option<u64>, delivered: bool) {
        if let (Some(id), Some(settled)) = (outbox, self.outbox_settled.borrow().as_ref()) {
            settled(id, delivered);
        }
    }

    /// Spawns a delivery or an intervention into the shard's actions queue (see
    /// [`ActionsConfig::task_queue`]).
    fn spawn<T: 'static>(
        &self,
        work: impl std::future::Future<Output = T> + 'static,
    ) -> glommio::Task<T> {
        match self.config.task_queue {
            Some(queue) => crate::shard::spawn_into(work, queue),
            None => glommio::spawn_local(work),
        }
    }

    pub fn config(&self) -> &ActionsConfig {
        &self.config
    }

    /// Queues `alert` to every endpoint, not before `alert.not_before_ms`.
    pub fn queue_alert(
        self: &Rc<Self>,
        monitor: u32,
        endpoints: &[Arc<Notify>],
        alert: Rc<RenderedAlert>,
    ) {
        for endpoint in endpoints {
            self.queue_delivery(monitor, endpoint.clone(), alert.clone(), None);
        }
    }

    /// Queues `alert` to one endpoint; `outbox` is its journal id, if the journal keeps it
    /// (see [`Self::on_outbox_settled`]).
    pub fn queue_delivery(
        self: &Rc<Self>,
        monitor: u32,
        endpoint: Arc<Notify>,
        alert: Rc<RenderedAlert>,
        outbox: Option<u64>,
    ) {
        let key = DedupKey::new(&endpoint, monitor, &alert);
        let mut queue = self.queue.borrow_mut();
        if queue.contains(&key) {
            bump(&self.counters.deduplicated);
            drop(queue);
            // The same alert is on its way: this copy needs no keeping.
            self.settle(outbox, true);
            return;
        }
        bump(&self.counters.queued);
        let job = self.next_job.get();
        self.next_job.set(job + 1);
        if queue.len() >= self.config.max_queued {
            drop(queue);
            self.record_undelivered(job, monitor, &endpoint, &alert, "delivery queue full");
            self.settle(outbox, false);
            return;
        }
        // Registered before the task is spawned: glommio may poll a new task at once, and a
        // delivery with nothing to wait for finishes (and unregisters) in its first poll.
        queue.insert(job, key, QueuedDelivery { alert: alert.clone(), outbox, task: None });
        drop(queue);
        // In line now, in queue order: the task may first run after a later delivery's.
        let lane_key = (key.endpoint, monitor);
        let ticket =
            self.lanes.borrow_mut().entry(lane_key).or_default().join(alert.not_before_ms, job);
        let me = self.clone();
        let handle = self
            .spawn(async move {
                me.deliver(job, monitor, endpoint, alert, &ticket, outbox).await;
                drop(ticket);
                me.release_lane(lane_key);
                me.finish_job(job);
            })
            .detach();
        if let Some(q) = self.queue.borrow_mut().get_mut(job) {
            q.task = Some(handle);
        }
    }

    /// Forgets the lane of `key` if no delivery holds it any more.
    fn release_lane(&self, key: (usize, u32)) {
        let mut lanes = self.lanes.borrow_mut();
        if lanes.get(&key).is_some_and(|l| Rc::strong_count(l) == 1) {
            lanes.remove(&key);
        }
    }

    fn finish_job(&self, job: u64) {
        self.queue.borrow_mut().remove(job);
    }

    /// Waits for `not_before_ms`, then for its turn in its lane, then sends with retries.
    async fn deliver(
        &self,
        job: u64,
        monitor: u32,
        endpoint: Arc<Notify>,
        alert: Rc<RenderedAlert>,
        ticket: &lane::Ticket,
        outbox: Option<u64>,
    ) {
        let now_ms = self.config.clock.now_ms();
        if alert.not_before_ms > now_ms {
            glommio::timer::sleep(Duration::from_millis(alert.not_before_ms - now_ms)).await;
        }
        // Held across retry pauses: the next alert of this monitor to this endpoint must not
        // overtake this one. The in-flight slot, by contrast, is released during pauses.
        let _turn = ticket.turn().await;
        let mut schedule = retry::Schedule::new(self.config.retry, job);
        let mut parts_done = 0;
        loop {
            let result = {
                let _slot = self.in_flight.acquire_permit(1).await;
                let wall_ms = (self.config.wall_clock_ms)();
                self.sender.send(job, &endpoint, &alert, wall_ms, &mut parts_done).await
            };
            match schedule.next(&result, self.config.clock.now_ms()) {
                retry::Next::Delivered => {
                    bump(&self.counters.sent);
                    self.settle(outbox, true);
                    bump(&self.counters.sent_by_colour[alert.colour.index()]);
                    tracing::debug!(
                        job,
                        monitor_id = %alert.monitor_id,
                        color = %alert.colour,
                        notifier = endpoint.kind(),
                        attempts = schedule.attempts(),
                        "alert delivered"
                    );
                    return;
                }
                retry::Next::GiveUp(reason) => {
                    self.record_undelivered(job, monitor, &endpoint, &alert, &reason);
                    self.settle(outbox, false);
                    return;
                }
                retry::Next::RetryAt(at_ms) => {
                    bump(&self.counters.retried);
                    let now_ms = self.config.clock.now_ms();
                    glommio::timer::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms)))
                        .await;
                }
            }
        }
    }

    fn record_undelivered(
        &self,
        job: u64,
        monitor: u32,
        endpoint: &Notify,
        alert: &RenderedAlert,
        reason: &str,
    ) {
        bump(&self.counters.undelivered);
        bump(&self.counters.undelivered_by_colour[alert.colour.index()]);
        tracing::warn!(
            job,
            monitor = %alert.monitor,
            monitor_id = %alert.monitor_id,
            color = %alert.colour,
            notifier = endpoint.kind(),
            reason,
            "alert undelivered"
        );
        let mut recent = self.recent_undelivered.borrow_mut();
        if recent.len() == MAX_RECENT_UNDELIVERED {
            recent.pop_front();
        }
        recent.push_back(Undelivered {
            job,
            monitor,
            monitor_id: alert.monitor_id.clone(),
            colour: alert.colour,
            notifier: endpoint.kind(),
            reason: reason.to_owned(),
        });
    }

    /// Drops every delivery of `monitor` not yet sent (an attempt under way is abandoned).
    pub fn cancel_alerts(&self, monitor: u32) {
        let cancelled = self.queue.borrow_mut().remove_monitor(monitor);
        for (_, q) in cancelled {
            bump(&self.counters.cancelled);
            // Cancelled by the state machine (disabled, config changed, removed): not to be
            // sent after a restart either.
            self.settle(q.outbox, false);
            if let Some(task) = q.task {
                task.cancel();
            }
        }
        // A cancelled task drops its lane handle without `release_lane`: forget idle lanes of
        // this monitor now (the task's future is dropped when glommio next runs it).
        self.lanes.borrow_mut().retain(|&(_, m), lane| m != monitor || Rc::strong_count(lane) > 1);
    }

    /// Runs `action` for `monitor`; `done` gets the result on this shard unless cancelled.
    pub fn start_intervention(
        self: &Rc<Self>,
        monitor: u32,
        intervention: &Intervention,
        done: Box<dyn FnOnce(InterventionResult)>,
    ) {
        let action = &intervention.action;
        let retries = intervention.retries.unwrap_or(0);
        self.cancel_intervention(monitor);
        bump(&self.counters.interventions_started);
        let job = self.next_job.get();
        self.next_job.set(job + 1);
        // Registered before the task is spawned (see `queue_one`).
        self.interventions.borrow_mut().insert(monitor, (job, None));
        let me = self.clone();
        let action = action.clone();
        let handle = self
            .spawn(async move {
                let result =
                    intervention::run_with_retries(&me.config, &me.sender, &action, retries).await;
                let still_wanted = {
                    let mut running = me.interventions.borrow_mut();
                    match running.get(&monitor) {
                        Some((j, _)) if *j == job => {
                            running.remove(&monitor);
                            true
                        }
                        _ => false,
                    }
                };
                if still_wanted {
                    match result {
                        InterventionResult::Succeeded => bump(&me.counters.interventions_succeeded),
                        InterventionResult::Failed => bump(&me.counters.interventions_failed),
                        InterventionResult::Unknown => bump(&me.counters.interventions_unknown),
                    }
                    tracing::info!(monitor, action = action.action_name(), ?result, "intervention");
                    done(result);
                }
            })
            .detach();
        if let Some(running) = self.interventions.borrow_mut().get_mut(&monitor) {
            if running.0 == job {
                running.1 = Some(handle);
            }
        }
    }

    /// Cancels `monitor`'s running intervention: its result, if it comes, is dropped.
    pub fn cancel_intervention(&self, monitor: u32) {
        let removed = self.interventions.borrow_mut().remove(&monitor);
        if let Some((_, Some(task))) = removed {
            task.cancel();
        }
    }

    pub fn counters(&self) -> ActionCounters {
        let c = &self.counters;
        ActionCounters {
            queued: c.queued.get(),
            sent: c.sent.get(),
            retried: c.retried.get(),
            undelivered: c.undelivered.get(),
            sent_by_colour: std::array::from_fn(|i| c.sent_by_colour[i].get()),
            undelivered_by_colour: std::array::from_fn(|i| c.undelivered_by_colour[i].get()),
            deduplicated: c.deduplicated.get(),
            cancelled: c.cancelled.get(),
            interventions_started: c.interventions_started.get(),
            interventions_succeeded: c.interventions_succeeded.get(),
            interventions_failed: c.interventions_failed.get(),
            interventions_unknown: c.interventions_unknown.get(),
        }
    }

    /// The last [`MAX_RECENT_UNDELIVERED`] undelivered records, oldest first.
    pub fn recent_undelivered(&self) -> Vec<Undelivered> {
        self.recent_undelivered.borrow().iter().cloned().collect()
    }

    /// Deliveries queued and not finished.
    pub fn pending(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Waits until every queued alert is delivered or recorded undelivered, at most `grace`;
    /// what is still queued then is recorded undelivered ("shut down before delivery").
    pub async fn drain(&self, grace: Duration) {
        /// How often the queue is looked at while draining: shutdown only, so a short poll
        /// is simpler than a wake-up per finished delivery and costs nothing measurable.
        const DRAIN_POLL: Duration = Duration::from_millis(5);
        let start = std::time::Instant::now();
        while self.pending() > 0 && start.elapsed() < grace {
            glommio::timer::sleep(DRAIN_POLL.min(grace.saturating_sub(start.elapsed()))).await;
        }
        let left = self.queue.borrow_mut().take_all();
        for (job, key, q) in left {
            if let Some(task) = q.task {
                task.cancel();
            }
            bump(&self.counters.undelivered);
            bump(&self.counters.undelivered_by_colour[key.colour.index()]);
            tracing::warn!(
                job,
                monitor = %q.alert.monitor,
                monitor_id = %q.alert.monitor_id,
                color = %key.colour,
                notifier = key.notifier,
                "alert undelivered: shut down before delivery"
            );
            let mut recent = self.recent_undelivered.borrow_mut();
            if recent.len() == MAX_RECENT_UNDELIVERED {
                recent.pop_front();
            }
            recent.push_back(Undelivered {
                job,
                monitor: key.monitor,
                monitor_id: q.alert.monitor_id.clone(),
                colour: key.colour,
                notifier: key.notifier,
                reason: "shut down before delivery".to_owned(),
            });
        }
    }
}
