//! The monitor state machine: one pure function, [`transition`], from (state, policy, event,
//! now) to the effects the shard must apply. Semantics: `docs/state-machine.md`,
//! which follows Go CPRA so users switching get the same alerts for the same fleet behaviour.
//!
//! What it is for: deciding, for one monitor, which alerts to queue (and when, given
//! cooldowns), when to start or cancel an intervention, and when an incident opens or closes.
//! What it is not for: I/O, clocks, scheduling checks, rendering messages (`alert.rs`) or
//! delivering them (the actions layer). It never allocates; time is a `u64` of milliseconds
//! passed in, so it runs the same under a virtual clock in tests.
//!
//! How a shard uses it:
//!
//! ```
//! use cpra_engine::colour::Colour;
//! use cpra_engine::state::{transition, Effect, Event, MonitorState, Policy};
//! use cpra_net::FailureKind;
//!
//! let policy = Policy { unhealthy: 1, ..Policy::default() };
//! let mut state = MonitorState::new();
//! // When the check is handed to a probe:
//! let generation = state.begin_check(state.generation().next());
//! // When its outcome comes back (now_ms from the shard's clock):
//! let event = Event::CheckFailed { generation, kind: FailureKind::ConnectRefused };
//! let effects = transition(&mut state, &policy, event, 60_000);
//! // Apply in order: journal, then act.
//! let colours: Vec<Colour> = effects
//!     .iter()
//!     .filter_map(|e| match e {
//!         Effect::Alert { colour, .. } => Some(*colour),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(colours, [Colour::Yellow, Colour::Red]);
//! assert!(state.incident_open());
//! ```
//!
//! Where this module departs from, or makes precise, the text of docs/state-machine.md (each is
//! also commented where it happens, and listed with its reason in the doc's last section):
//! - A stale check (started before the intervention succeeded) counts for nothing while the
//!   monitor is being verified: not toward verification and not toward the recovery streak
//!   (taken literally, the text would let it recover the monitor through the streak when
//!   `healthy == 1`, defeating scenario 10).
//! - Green is only queued if something (yellow, red or cyan) was queued in the same episode:
//!   a recovery notice for a problem nobody was told about (e.g. failures inside a
//!   maintenance window, or a colour without a code) is noise.
//! - Inside a maintenance window a failed verification or a failed intervention does not open
//!   the incident (that would burn the one red of the incident while nothing may be sent);
//!   instead `pulse_failures` is raised to the threshold so the first failure after the window
//!   acts at once, as for plain failures.
//! - An intervention result that arrives when no intervention is pending (it was cancelled) is
//!   ignored.
//! - An outcome-unknown intervention uses up the incident's attempts (never retried).
//! - A green is never given an earlier `not_before_ms` than an alert of the same monitor still
//!   waiting for its cooldown, so it does not overtake the red it resolves: green "bypasses
//!   the cooldown" of its own colour only. Other colours do not wait for each other (a red
//!   must not wait behind a yellow in its cooldown).
//! - A cooldown delays a new incident's alerts but never merges them into an older
//!   incident's: alerts of several incidents may share a `not_before_ms` (the end of one
//!   cooldown), and each is its own alert, told apart by `incident_seq`.
//! - "The first failure of an episode" is `pulse_failures == 1` (the text) and also
//!   `consecutive_failures == 1`: otherwise, after the threshold resets `pulse_failures`
//!   without opening the incident (an intervention was queued), the next failure of the same
//!   run would queue yellow again while the intervention runs.
//! - Disabling keeps the incident state (like a config change); only Removed closes it.
//!
//! Incident ids: every alert and incident effect carries the monitor-local episode number
//! (`incident_seq`, a `u32` in the state, bumped when a run of failures begins or a warning
//! appears on a quiet monitor). The caller makes it global by pairing it with the monitor id
//! (`alert::incident_id`: `"<monitor id>#<seq>"`); it stays stable across restarts when the
//! store snapshots `MonitorState` (plain `Copy` data) or restores the number with
//! `MonitorState::resume`.

mod cooldown;
mod effects;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod scenarios;

pub use cooldown::{MAX_COOLDOWN_MS, MAX_NOW_MS};
pub use effects::{Counter, Counters, Effect, Effects, Reason, MAX_EFFECTS};

use cooldown::Cooldowns;
use cpra_net::{FailureKind, Warning};

use crate::colour::{Colour, ColourSet};

/// The largest `unhealthy` / `healthy` threshold honoured; larger values are clamped. Ten
/// thousand consecutive checks is hours even at a one-second interval, far beyond any sane
/// threshold, and it keeps every check of a verification within half the `u16` generation
/// space, so [`Generation::is_after`] stays exact.
pub const MAX_THRESHOLD: u16 = 10_000;

/// `healthy` when the manifest gives none (docs/state-machine.md).
pub const DEFAULT_HEALTHY: u16 = 2;
/// `unhealthy` when the manifest gives neither `unhealthy_threshold` nor `max_failures`.
pub const DEFAULT_UNHEALTHY: u16 = 1;
/// `recovery_max_attempts` when `intervention.max_failures` is not given.
pub const DEFAULT_RECOVERY_MAX_ATTEMPTS: u8 = 1;
/// The per-colour cooldown when the manifest gives none: five minutes.
pub const DEFAULT_COOLDOWN_MS: u32 = 5 * 60 * 1000;

/// The sequence number of a check, taken when the check STARTS (see
/// [`MonitorState::begin_check`]). A `u16` compared by serial-number arithmetic (RFC 1982):
/// exact as long as the two numbers compared are less than 32 768 checks apart, which holds
/// because one check is in flight per monitor and a verification lasts at most
/// [`MAX_THRESHOLD`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Generation(u16);

impl Generation {
    pub const fn new(raw: u16) -> Generation {
        Generation(raw)
    }

    pub const fn raw(self) -> u16 {
        self.0
    }

    /// The generation after this one (what the shard assigns a monitor's next check).
    pub const fn next(self) -> Generation {
        Generation(self.0.wrapping_add(1))
    }

    /// Whether `self` was taken after `other`.
    pub const fn is_after(self, other: Generation) -> bool {
        let d = self.0.wrapping_sub(other.0);
        d != 0 && d < 0x8000
    }
}

/// What the state machine needs from a monitor's configuration. Built once per monitor at load
/// (or reload) from the manifest; plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Failed checks that reach the threshold (intervention or red). Values < 1 count as 1.
    pub unhealthy: u16,
    /// Successful checks that recover the monitor (and that verify an intervention).
    pub healthy: u16,
    /// Whether the monitor has an intervention configured.
    pub has_intervention: bool,
    /// Interventions allowed per incident (`intervention.max_failures`). 0 counts as 1.
    pub recovery_max_attempts: u8,
    /// Per colour, by `Colour::index`. Clamped to [`MAX_COOLDOWN_MS`]; 0 means no cooldown.
    pub cooldown_ms: [u32; Colour::COUNT],
    /// Green is sent at once even within its cooldown (default true).
    pub green_bypasses_cooldown: bool,
    /// The colours for which the monitor has a code with `dispatch` not false.
    pub dispatch: ColourSet,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            unhealthy: DEFAULT_UNHEALTHY,
            healthy: DEFAULT_HEALTHY,
            has_intervention: false,
            recovery_max_attempts: DEFAULT_RECOVERY_MAX_ATTEMPTS,
            cooldown_ms: [DEFAULT_COOLDOWN_MS; Colour::COUNT],
            green_bypasses_cooldown: true,
            dispatch: ColourSet::ALL,
        }
    }
}

impl Policy {
    /// A threshold from the manifest: the first value given of `primary` (e.g.
    /// `pulse_check.unhealthy_threshold`) and `legacy` (e.g. `max_failures`), else `default`;
    /// values < 1 count as 1; values above [`MAX_THRESHOLD`] are clamped (the manifest
    /// validator should warn about them).
    pub fn threshold(primary: Option<i64>, legacy: Option<i64>, default: u16) -> u16 {
        let value = primary.or(legacy).unwrap_or(i64::from(default));
        value.clamp(1, i64::from(MAX_THRESHOLD)) as u16
    }

    /// `recovery_max_attempts` from `intervention.max_failures`: default 1, at least 1, at
    /// most 255 (more automatic retries of one intervention in one incident make no sense).
    pub fn attempts(max_failures: Option<i64>) -> u8 {
        max_failures
            .unwrap_or(i64::from(DEFAULT_RECOVERY_MAX_ATTEMPTS))
            .clamp(1, i64::from(u8::MAX)) as u8
    }

    fn unhealthy(&self) -> u16 {
        self.unhealthy.clamp(1, MAX_THRESHOLD)
    }

    fn healthy(&self) -> u16 {
        self.healthy.clamp(1, MAX_THRESHOLD)
    }

    fn max_attempts(&self) -> u8 {
        self.recovery_max_attempts.max(1)
    }

    fn cooldown_of(&self, colour: Colour) -> u32 {
        self.cooldown_ms[colour.index()].min(MAX_COOLDOWN_MS)
    }

    /// The cooldown to apply to `colour`, `None` when it bypasses it.
    fn effective_cooldown(&self, colour: Colour) -> Option<u32> {
        if colour == Colour::Green && self.green_bypasses_cooldown {
            None
        } else {
            Some(self.cooldown_of(colour))
        }
    }
}

/// Something that happened to a monitor. Plain data, no heap: the message of a failed check is
/// rendered later, from its `Outcome`, only if an alert needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A check succeeded; `generation` is the one given to `begin_check` when it started.
    CheckSucceeded {
        generation: Generation,
        warning: Option<Warning>,
    },
    /// A check failed (any kind, timeout included).
    CheckFailed {
        generation: Generation,
        kind: FailureKind,
    },
    InterventionSucceeded,
    InterventionFailed,
    /// The intervention's outcome is unknown (e.g. the connection broke after the request was
    /// sent). Treated as a failure and never retried automatically.
    InterventionUnknown,
    MaintenanceStarted,
    MaintenanceEnded,
    Disabled,
    Enabled,
    /// The monitor's check config changed on reload: it keeps its incident state; its queued
    /// actions are cancelled; the runtime uses the new config from its next check.
    ConfigChanged,
    /// The monitor was removed on reload: its incident closes silently.
    Removed,
}

/// Flag bits of [`MonitorState`].
mod flag {
    pub const INCIDENT_OPEN: u8 = 1 << 0;
    /// Failures were seen and the monitor has not recovered yet.
    pub const RECOVERING: u8 = 1 << 1;
    /// The last successful check carried a warning.
    pub const WARNING: u8 = 1 << 2;
    /// An intervention was queued and its result has not come.
    pub const INTERVENTION_PENDING: u8 = 1 << 3;
    pub const MAINTENANCE: u8 = 1 << 4;
    pub const DISABLED: u8 = 1 << 5;
    pub const REMOVED: u8 = 1 << 6;
    /// A yellow, red or cyan was queued in the current episode (so a green may close it).
    pub const ANNOUNCED: u8 = 1 << 7;
}

/// The hot state of one monitor: 32 bytes (asserted in tests), so it fits with the
/// scheduling fields in a 64-byte per-monitor budget. Plain `Copy` data: the store snapshots
/// it as is, which also keeps `incident_seq` (and so incident ids) stable across restarts.
///
/// Layout: four `u16` counters (saturating: a long maintenance window may pin
/// `pulse_failures` at its maximum, which still reads as "past the threshold"), two `u16`
/// generations, `u8` attempts, `u8` flags, the `u32` episode number, and 14 bytes of
/// per-colour cooldown times (a `u32` base in seconds plus a `u16` offset per colour, see
/// `cooldown.rs`) = 32 bytes, no padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorState {
    consecutive_failures: u16,
    /// Failures in the current episode since the threshold last acted.
    pulse_failures: u16,
    recovery_streak: u16,
    verify_remaining: u16,
    /// The generation of the last check started (`begin_check`).
    generation: Generation,
    /// The generation current when the intervention succeeded; only later checks verify it.
    verification_after: Generation,
    intervention_attempts: u8,
    flags: u8,
    /// Monitor-local episode counter: bumped when a run of failures begins (the monitor was
    /// not recovering) or a warning appears on a quiet monitor. Each number names at most one
    /// incident; every alert of the episode carries it, so receivers can tie the yellow, red
    /// and green of one problem together. The incident id is this combined with the monitor
    /// id (see `alert::incident_id`).
    incident_seq: u32,
    cooldowns: Cooldowns,
}

/// The part of a [`MonitorState`] that survives a restart (a journal record): counts, flags,
/// attempts, the incident number and the cooldowns (as Unix times, [`MonitorState::saved_at`]).
/// Not the check generations (they restart with the process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedState {
    pub consecutive_failures: u16,
    pub pulse_failures: u16,
    pub recovery_streak: u16,
    pub verify_remaining: u16,
    pub intervention_attempts: u8,
    /// The flag bits of `MonitorState` (incident open, recovering, warning, ...).
    pub flags: u8,
    pub incident_seq: u32,
    /// Per colour (by `Colour::index`), the last send (or the time a waiting alert goes) in
    /// Unix ms: the process's own clock restarts with it, so the journal keeps wall-clock time
    /// and a restarted process converts it back ([`MonitorState::restore_cooldowns`]).
    /// `None`: no send within the longest cooldown. Empty in [`MonitorState::saved`].
    pub cooldowns_unix_ms: [Option<i64>; Colour::COUNT],
}

impl Default for MonitorState {
    fn default() -> Self {
        MonitorState::new()
    }
}

impl MonitorState {
    pub const fn new() -> MonitorState {
        MonitorState::resume(0)
    }

    /// A fresh state for a monitor placed in a slot another monitor had (a reload): the
    /// slot's check numbers go on from `generation`, the last one the shard gave it, so a
    /// stale job never passes for one of the new monitor's; the new monitor's first check is
    /// the one after.
    pub const fn in_reused_slot(generation: Generation) -> MonitorState {
        let mut s = MonitorState::new();
        s.generation = generation;
        s.verification_after = generation;
        s
    }

    /// This state with its episode counter continued from `incident_seq`: a monitor a reload
    /// removed and a later one added back, so its incident ids are not used twice.
    pub const fn continuing(mut self, incident_seq: u32) -> MonitorState {
        self.incident_seq = incident_seq;
        self
    }

    /// A fresh state whose episode counter continues from `incident_seq` (e.g. restored from
    /// the journal when the rest of the state was not), so incident ids are not reused.
    pub const fn resume(incident_seq: u32) -> MonitorState {
        MonitorState {
            consecutive_failures: 0,
            pulse_failures: 0,
            recovery_streak: 0,
            verify_remaining: 0,
            generation: Generation(0),
            verification_after: Generation(0),
            intervention_attempts: 0,
            flags: 0,
            incident_seq,
            cooldowns: Cooldowns::new(),
        }
    }

    /// Records that the check numbered `generation` is starting now and returns it. The shard
    /// numbers checks (the job's generation is the one source) and calls this when it hands
    /// the check to a probe; the check's event carries the same number back. Checks start
    /// one at a time, each the next number.
    pub fn begin_check(&mut self, generation: Generation) -> Generation {
        debug_assert_eq!(generation, self.generation.next(), "checks start one at a time");
        self.generation = generation;
        generation
    }

    pub fn consecutive_failures(&self) -> u16 {
        self.consecutive_failures
    }
    pub fn pulse_failures(&self) -> u16 {
        self.pulse_failures
    }
    pub fn recovery_streak(&self) -> u16 {
        self.recovery_streak
    }
    pub fn verify_remaining(&self) -> u16 {
        self.verify_remaining
    }
    pub fn intervention_attempts(&self) -> u8 {
        self.intervention_attempts
    }
    pub fn incident_seq(&self) -> u32 {
        self.incident_seq
    }
    pub fn generation(&self) -> Generation {
        self.generation
    }
    pub fn incident_open(&self) -> bool {
        self.has(flag::INCIDENT_OPEN)
    }
    pub fn recovering(&self) -> bool {
        self.has(flag::RECOVERING)
    }
    pub fn warning(&self) -> bool {
        self.has(flag::WARNING)
    }
    pub fn intervention_pending(&self) -> bool {
        self.has(flag::INTERVENTION_PENDING)
    }
    pub fn in_maintenance(&self) -> bool {
        self.has(flag::MAINTENANCE)
    }
    pub fn disabled(&self) -> bool {
        self.has(flag::DISABLED)
    }
    pub fn removed(&self) -> bool {
        self.has(flag::REMOVED)
    }

    fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// In an episode: from the first failure or warning to recovery or the warning clearing.
    fn in_episode(&self) -> bool {
        self.has(flag::RECOVERING) || self.has(flag::WARNING)
    }

    /// A new episode number: alerts and the incident from here on carry it.
    fn begin_episode(&mut self) {
        self.incident_seq = self.incident_seq.wrapping_add(1);
        self.set(flag::ANNOUNCED, false);
    }

    fn end_episode_if_quiet(&mut self) {
        if !self.in_episode() {
            self.set(flag::ANNOUNCED, false);
        }
    }

    /// What of this state the journal keeps ([`SavedState`]).
    pub fn saved(&self) -> SavedState {
        SavedState {
            consecutive_failures: self.consecutive_failures,
            pulse_failures: self.pulse_failures,
            recovery_streak: self.recovery_streak,
            verify_remaining: self.verify_remaining,
            intervention_attempts: self.intervention_attempts,
            flags: self.flags & !flag::REMOVED,
            incident_seq: self.incident_seq,
            cooldowns_unix_ms: [None; Colour::COUNT],
        }
    }

    /// Whether the journal would keep the same of both states (cheaper than comparing
    /// [`Self::saved_at`], which reads the wall clock).
    pub fn same_saved(&self, other: &MonitorState) -> bool {
        self.saved() == other.saved() && self.cooldowns == other.cooldowns
    }

    /// [`Self::saved`] with the cooldowns, for the journal: `now_ms` (the clock `transition`
    /// gets) and `now_unix_ms` read the same instant, so each send time converts to Unix ms.
    /// A send older than the longest cooldown can delay nothing and is left out.
    pub fn saved_at(&self, now_ms: u64, now_unix_ms: i64) -> SavedState {
        let mut saved = self.saved();
        saved.cooldowns_unix_ms = self.cooldowns.marks_ms().map(|mark| {
            let at_ms = mark?;
            if at_ms.saturating_add(u64::from(MAX_COOLDOWN_MS)) < now_ms {
                return None;
            }
            let ago_ms = now_ms as i64 - at_ms as i64;
            Some(now_unix_ms.saturating_sub(ago_ms))
        });
        saved
    }

    /// Continues the cooldowns `saved` kept (from [`Self::saved_at`] in another process):
    /// `now_ms` (the clock `transition` will get) and `now_unix_ms` read the same instant.
    /// A send that would fall before this clock's zero is past every cooldown only if the
    /// caller's clock starts at least [`MAX_COOLDOWN_MS`] in (the shard offsets it so);
    /// otherwise it is dropped, which only lets an alert go sooner, never later.
    pub fn restore_cooldowns(&mut self, saved: &SavedState, now_ms: u64, now_unix_ms: i64) {
        let marks = saved.cooldowns_unix_ms.map(|unix_ms| {
            let ago_ms = now_unix_ms.saturating_sub(unix_ms?);
            let at_ms = (now_ms as i64).saturating_sub(ago_ms);
            (at_ms >= 0).then_some(at_ms as u64)
        });
        self.cooldowns = Cooldowns::restored(marks, now_ms);
    }

    /// The state to continue from after a restart, given what the journal kept. When the
    /// monitor's check config changed meanwhile, it keeps its incident (open, announced, its
    /// number, attempts used) but its counts start again, as a reload does
    /// (docs/state-machine.md). Check generations restart with the process, so a verification
    /// in progress counts every check from now on; cooldowns are restored separately
    /// ([`Self::restore_cooldowns`]: they need both clocks). A pending intervention is kept pending: its result died with the old
    /// process, and the shard reports it as unknown (`Event::InterventionUnknown`) at start.
    /// A saved state that breaks the invariants (only a bug could write one) keeps only its
    /// incident number.
    pub fn restore(saved: SavedState, config_changed: bool) -> MonitorState {
        let mut s = MonitorState::resume(saved.incident_seq);
        s.flags = saved.flags & !flag::REMOVED;
        s.intervention_attempts = saved.intervention_attempts;
        if config_changed {
            s.set(flag::INTERVENTION_PENDING, false);
        } else {
            s.consecutive_failures = saved.consecutive_failures;
            s.pulse_failures = saved.pulse_failures;
            s.recovery_streak = saved.recovery_streak;
            s.verify_remaining = saved.verify_remaining;
        }
        if s.consistent() {
            s
        } else {
            MonitorState::resume(saved.incident_seq)
        }
    }

    /// Whether the invariants of [`Self::assert_invariants`] hold.
    fn consistent(&self) -> bool {
        let pending = self.has(flag::INTERVENTION_PENDING);
        let idle_ok = self.has(flag::RECOVERING)
            || (!self.has(flag::INCIDENT_OPEN) && !pending && self.verify_remaining == 0);
        let announced_ok = !self.has(flag::ANNOUNCED) || self.in_episode();
        let pending_ok =
            !pending || (self.intervention_attempts >= 1 && self.verify_remaining == 0);
        idle_ok && announced_ok && pending_ok
    }

    /// Invariants that hold between events. Checked after every transition.
    fn assert_invariants(&self) {
        let recovering = self.has(flag::RECOVERING);
        debug_assert!(!self.has(flag::INCIDENT_OPEN) || recovering, "incident without failures");
        debug_assert!(!self.has(flag::INTERVENTION_PENDING) || recovering, "intervention idle");
        debug_assert!(self.verify_remaining == 0 || recovering, "verifying a healthy monitor");
        debug_assert!(!self.has(flag::ANNOUNCED) || self.in_episode(), "announced outside episode");
        debug_assert!(
            !self.has(flag::INTERVENTION_PENDING) || self.intervention_attempts >= 1,
            "pending intervention without an attempt"
        );
        debug_assert!(!self.has(flag::INTERVENTION_PENDING) || self.verify_remaining == 0);
    }
}

/// Applies `event` to `state` under `policy` at `now_ms` and returns what the shard must do.
///
/// Pure apart from updating `state`: no I/O, no clock, no allocation. Never panics on any
/// sequence of events (property-tested). `now_ms` must not go backwards between calls for the
/// same monitor (cooldowns assume it); it is clamped to [`MAX_NOW_MS`].
pub fn transition(state: &mut MonitorState, policy: &Policy, event: Event, now_ms: u64) -> Effects {
    let mut step = Step { s: state, p: policy, now_ms, fx: Effects::new() };
    step.apply(event);
    step.s.assert_invariants();
    step.fx
}

/// One transition in progress: the pieces every rule needs, so each rule is a small method.
struct Step<'a> {
    s: &'a mut MonitorState,
    p: &'a Policy,
    now_ms: u64,
    fx: Effects,
}

impl Step<'_> {
    fn apply(&mut self, event: Event) {
        if self.s.has(flag::REMOVED) {
            self.fx.counters.bump(Counter::IgnoredAfterRemoval);
            return;
        }
        if self.s.has(flag::DISABLED) {
            // Disabled monitors send nothing; only these events still matter. Maintenance is
            // tracked so that the flag is right when the monitor is enabled again.
            match event {
                Event::Enabled => self.s.set(flag::DISABLED, false),
                Event::Removed => self.removed(),
                Event::MaintenanceStarted => self.s.set(flag::MAINTENANCE, true),
                Event::MaintenanceEnded => self.s.set(flag::MAINTENANCE, false),
                _ => self.fx.counters.bump(Counter::IgnoredWhileDisabled),
            }
            return;
        }
        match event {
            // The kind matters for the message (rendered later from the Outcome) and metrics,
            // not for the state: every failure kind counts the same (timeout included).
            Event::CheckFailed { generation, kind: _ } => self.check_failed(generation),
            Event::CheckSucceeded { generation, warning } => {
                self.check_succeeded(generation, warning)
            }
            Event::InterventionSucceeded => self.intervention_succeeded(),
            Event::InterventionFailed => self.intervention_failed(Reason::InterventionFailed),
            Event::InterventionUnknown => {
                self.intervention_failed(Reason::InterventionOutcomeUnknown)
            }
            Event::MaintenanceStarted => {
                if !self.s.has(flag::MAINTENANCE) {
                    self.s.set(flag::MAINTENANCE, true);
                    self.alert(Colour::Gray, Reason::MaintenanceStarted);
                }
            }
            Event::MaintenanceEnded => self.s.set(flag::MAINTENANCE, false),
            Event::Disabled => {
                self.s.set(flag::DISABLED, true);
                self.cancel_actions();
            }
            Event::Enabled => {}
            Event::ConfigChanged => self.cancel_actions(),
            Event::Removed => self.removed(),
        }
    }

    fn check_failed(&mut self, generation: Generation) {
        let s = &mut *self.s;
        if !s.has(flag::RECOVERING) {
            // Every run of failures gets its own number, even when it starts while a warning
            // episode is open: so one number never names two incidents.
            s.begin_episode();
        }
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.pulse_failures = s.pulse_failures.saturating_add(1);
        s.recovery_streak = 0;
        s.set(flag::RECOVERING, true);
        s.set(flag::WARNING, false);

        if s.verify_remaining > 0 {
            if generation.is_after(s.verification_after) {
                s.verify_remaining = 0;
                if s.has(flag::MAINTENANCE) {
                    self.hold_threshold();
                } else {
                    self.open_incident(Reason::VerificationFailed);
                }
            } else {
                // Started before the intervention succeeded: says nothing about whether it
                // worked (scenario 10).
                self.fx.counters.bump(Counter::StaleCheck);
            }
            return;
        }

        if s.pulse_failures == 1 && s.consecutive_failures == 1 && !s.has(flag::INCIDENT_OPEN) {
            self.alert(Colour::Yellow, Reason::FirstFailure);
        }
        let s = &mut *self.s;
        if s.pulse_failures >= self.p.unhealthy() {
            if s.has(flag::MAINTENANCE) {
                // pulse_failures keeps growing, so the first failure after the window acts.
                self.fx.counters.bump(Counter::ThresholdHeldByMaintenance);
                return;
            }
            let pending = s.has(flag::INTERVENTION_PENDING);
            if self.p.has_intervention
                && !pending
                && s.intervention_attempts < self.p.max_attempts()
            {
                s.intervention_attempts += 1;
                s.set(flag::INTERVENTION_PENDING, true);
                self.fx.push(Effect::StartIntervention { attempt: s.intervention_attempts });
            } else if !pending {
                self.open_incident(Reason::ThresholdReached);
            }
            self.s.pulse_failures = 0;
        }
    }

    fn check_succeeded(&mut self, generation: Generation, warning: Option<Warning>) {
        let s = &mut *self.s;
        s.consecutive_failures = 0;
        s.pulse_failures = 0;

        match (warning.is_some(), s.has(flag::WARNING)) {
            (true, false) => {
                if !s.in_episode() {
                    s.begin_episode();
                }
                s.set(flag::WARNING, true);
                self.alert(Colour::Yellow, Reason::WarningRaised);
            }
            (false, true) => {
                s.set(flag::WARNING, false);
                if !s.has(flag::INCIDENT_OPEN) && !s.has(flag::RECOVERING) {
                    self.alert(Colour::Green, Reason::WarningCleared);
                    self.s.end_episode_if_quiet();
                }
            }
            _ => {}
        }

        let s = &mut *self.s;
        if s.verify_remaining > 0 {
            if generation.is_after(s.verification_after) {
                s.verify_remaining -= 1;
                if s.verify_remaining == 0 {
                    self.recovered();
                }
            } else {
                // Neither verification nor the streak: the text of docs/state-machine.md would
                // fall through to the streak here, which with healthy == 1 would recover the
                // monitor on a check that predates the intervention.
                self.fx.counters.bump(Counter::StaleCheck);
            }
        } else if s.has(flag::RECOVERING) && !s.has(flag::INTERVENTION_PENDING) {
            s.recovery_streak = s.recovery_streak.saturating_add(1);
            if s.recovery_streak >= self.p.healthy() {
                self.recovered();
            }
        }
    }

    fn recovered(&mut self) {
        self.fx.counters.bump(Counter::Recovered);
        let s = &mut *self.s;
        if s.has(flag::INCIDENT_OPEN) {
            s.set(flag::INCIDENT_OPEN, false);
            self.fx.push(Effect::IncidentClosed { incident_seq: s.incident_seq, silent: false });
        }
        s.set(flag::RECOVERING, false);
        s.recovery_streak = 0;
        s.verify_remaining = 0;
        s.intervention_attempts = 0;
        if s.has(flag::INTERVENTION_PENDING) {
            // Unreachable through the rules today (recovery waits for a pending intervention),
            // kept because docs/state-machine.md asks for it and a cheap guard beats a stuck
            // action.
            s.set(flag::INTERVENTION_PENDING, false);
            self.fx.push(Effect::CancelIntervention);
        }
        if !self.s.has(flag::WARNING) {
            self.alert(Colour::Green, Reason::Recovered);
        }
        self.s.end_episode_if_quiet();
    }

    fn intervention_succeeded(&mut self) {
        let s = &mut *self.s;
        if !s.has(flag::INTERVENTION_PENDING) {
            self.fx.counters.bump(Counter::IgnoredInterventionResult);
            return;
        }
        s.set(flag::INTERVENTION_PENDING, false);
        s.verify_remaining = self.p.healthy();
        s.verification_after = s.generation;
        s.recovery_streak = 0;
        self.alert(Colour::Cyan, Reason::InterventionSucceeded);
    }

    fn intervention_failed(&mut self, reason: Reason) {
        let s = &mut *self.s;
        if !s.has(flag::INTERVENTION_PENDING) {
            self.fx.counters.bump(Counter::IgnoredInterventionResult);
            return;
        }
        s.set(flag::INTERVENTION_PENDING, false);
        if reason == Reason::InterventionOutcomeUnknown {
            // The request may have been applied: never run it again automatically.
            s.intervention_attempts = self.p.max_attempts().max(s.intervention_attempts);
        }
        if s.has(flag::MAINTENANCE) {
            self.hold_threshold();
        } else {
            self.open_incident(reason);
        }
    }

    /// Inside a maintenance window nothing but gray may be sent, so a red would be lost along
    /// with the incident's one chance to page. Keep the failure count at the threshold instead:
    /// the first failed check after the window acts at once.
    fn hold_threshold(&mut self) {
        self.fx.counters.bump(Counter::ThresholdHeldByMaintenance);
        self.s.pulse_failures = self.s.pulse_failures.max(self.p.unhealthy());
    }

    /// Opens the incident with its red, once per incident.
    fn open_incident(&mut self, reason: Reason) {
        if self.s.has(flag::INCIDENT_OPEN) {
            self.fx.counters.bump(Counter::RedAlreadySent);
            return;
        }
        self.s.set(flag::INCIDENT_OPEN, true);
        self.fx.push(Effect::IncidentOpened { incident_seq: self.s.incident_seq });
        self.alert(Colour::Red, reason);
    }

    /// Drops the monitor's queued alerts and its intervention (disable, config change).
    fn cancel_actions(&mut self) {
        self.fx.push(Effect::CancelQueuedAlerts);
        let p = self.p;
        self.s.cooldowns.cancel_waiting(self.now_ms, |c| p.cooldown_of(c));
        if self.s.has(flag::INTERVENTION_PENDING) {
            self.s.set(flag::INTERVENTION_PENDING, false);
            self.fx.push(Effect::CancelIntervention);
        }
    }

    fn removed(&mut self) {
        if self.s.has(flag::INCIDENT_OPEN) {
            self.s.set(flag::INCIDENT_OPEN, false);
            self.fx
                .push(Effect::IncidentClosed { incident_seq: self.s.incident_seq, silent: true });
        }
        self.cancel_actions();
        self.s.set(flag::REMOVED, true);
    }

    /// Queues an alert of `colour` if the monitor may send it now; applies the cooldown.
    fn alert(&mut self, colour: Colour, reason: Reason) {
        let s = &mut *self.s;
        if s.has(flag::MAINTENANCE) && colour != Colour::Gray {
            self.fx.counters.bump(Counter::SuppressedByMaintenance);
            return;
        }
        if !self.p.dispatch.contains(colour) {
            self.fx.counters.bump(Counter::SuppressedNoCode);
            return;
        }
        if colour == Colour::Green && !s.has(flag::ANNOUNCED) {
            self.fx.counters.bump(Counter::SuppressedUnannounced);
            return;
        }
        let after_waiting = colour == Colour::Green;
        let cooldown_ms = self.p.effective_cooldown(colour);
        let slot = s.cooldowns.schedule(colour, cooldown_ms, after_waiting, self.now_ms);
        if slot.delayed {
            self.fx.counters.bump(Counter::AlertDelayed);
        }
        if slot.coalesced {
            self.fx.counters.bump(Counter::AlertCoalesced);
        }
        if matches!(colour, Colour::Yellow | Colour::Red | Colour::Cyan) {
            debug_assert!(s.in_episode(), "{colour} outside an episode");
            s.set(flag::ANNOUNCED, true);
        }
        self.fx.push(Effect::Alert {
            colour,
            reason,
            incident_seq: if colour == Colour::Gray { None } else { Some(s.incident_seq) },
            consecutive_failures: s.consecutive_failures,
            not_before_ms: slot.not_before_ms,
        });
    }
}
