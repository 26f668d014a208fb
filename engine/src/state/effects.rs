//! What one call of [`transition`](super::transition) asks the shard to do: a fixed-capacity
//! inline list of [`Effect`]s plus a few [`Counters`] for metrics, so the hot path never
//! allocates.

use std::fmt;

use crate::colour::Colour;

/// The most effects one event can produce. Counted by hand over every event (the worst cases):
/// - check failed at `unhealthy = 1`: yellow, incident opened, red;
/// - check succeeded that recovers: incident closed, intervention cancelled, green;
/// - removed: incident closed, queued alerts cancelled, intervention cancelled.
///
/// `Effects::push` asserts the bound, and the property tests drive every event through it.
pub const MAX_EFFECTS: usize = 3;

/// Why an alert was queued. Rendered into the alert's summary by `alert.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Yellow: the first failed check of an episode.
    FirstFailure,
    /// Red: `unhealthy` consecutive failures and no intervention to try.
    ThresholdReached,
    /// Red: a check started after a successful intervention failed.
    VerificationFailed,
    /// Red: the intervention reported failure.
    InterventionFailed,
    /// Red: the intervention's outcome is unknown (e.g. the connection broke after the request).
    InterventionOutcomeUnknown,
    /// Cyan: the intervention reported success; verification started.
    InterventionSucceeded,
    /// Green: `healthy` consecutive successes (or a completed verification).
    Recovered,
    /// Yellow: a successful check carried a warning that was not there before.
    WarningRaised,
    /// Green: the warning cleared and nothing else is wrong.
    WarningCleared,
    /// Gray: a maintenance window started.
    MaintenanceStarted,
    /// Cyan: an operator acknowledged the incident through the API. Never an effect of the
    /// state machine: the shard sends it to the cyan code's notifiers itself.
    Acknowledged,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::FirstFailure => "first_failure",
            Reason::ThresholdReached => "threshold_reached",
            Reason::VerificationFailed => "verification_failed",
            Reason::InterventionFailed => "intervention_failed",
            Reason::InterventionOutcomeUnknown => "intervention_outcome_unknown",
            Reason::InterventionSucceeded => "intervention_succeeded",
            Reason::Recovered => "recovered",
            Reason::WarningRaised => "warning_raised",
            Reason::WarningCleared => "warning_cleared",
            Reason::MaintenanceStarted => "maintenance_started",
            Reason::Acknowledged => "acknowledged",
        }
    }
}

/// One thing the shard must do, in the order given (journal first, then act).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Queue an alert of `colour` for every endpoint of the monitor's code for that colour.
    ///
    /// `not_before_ms` is when it may be sent: `now_ms` normally, later when the colour is in
    /// its cooldown (or must not overtake an earlier alert of the same monitor that is still
    /// waiting). A colour already queued for an endpoint is not queued twice: that is the
    /// delivery layer's job; the state machine gives a coalesced alert the same
    /// `not_before_ms` as the one it joins, so the delivery layer drops an alert whose
    /// (monitor, colour, `incident_seq`, `not_before_ms`) is already queued for the endpoint.
    /// It must not drop on (monitor, colour) alone (two greens of two episodes can both be
    /// waiting), nor without `incident_seq`: a cooldown delays a new incident's alerts to the
    /// moment an older incident's are waiting for, and each incident's must still be sent
    /// (docs/state-machine.md).
    Alert {
        colour: Colour,
        reason: Reason,
        /// The monitor-local episode number (see `MonitorState::incident_seq`); `None` for
        /// gray, which is about a maintenance window rather than an incident.
        incident_seq: Option<u32>,
        /// `consecutive_failures` when the alert was queued (for the summary line).
        consecutive_failures: u16,
        not_before_ms: u64,
    },
    /// Run the monitor's intervention; `attempt` counts from 1 within the incident.
    StartIntervention { attempt: u8 },
    /// Cancel the monitor's queued or running intervention; drop its result if it comes.
    CancelIntervention,
    /// Drop every alert of this monitor not yet sent.
    CancelQueuedAlerts,
    /// The incident (red) opened: journal it.
    IncidentOpened { incident_seq: u32 },
    /// The incident closed. `silent` when the monitor was removed (no green is sent).
    IncidentClosed { incident_seq: u32, silent: bool },
}

/// Things worth a metric that are not visible in the list of effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// An alert was given a `not_before_ms` later than now by its colour's cooldown.
    AlertDelayed,
    /// An alert joined the send moment of one of the same colour still waiting for its
    /// cooldown (the same alert if of the same incident; each incident's is still sent).
    AlertCoalesced,
    /// An alert other than gray was not queued because of a maintenance window.
    SuppressedByMaintenance,
    /// An alert was not queued because the monitor has no dispatching code for its colour.
    SuppressedNoCode,
    /// A green was not queued because nothing was announced in the episode it would close.
    SuppressedUnannounced,
    /// A red was not queued because the incident is already open (red once per incident).
    RedAlreadySent,
    /// The monitor recovered.
    Recovered,
    /// A check started before the intervention succeeded did not count toward verification.
    StaleCheck,
    /// The threshold was reached (or an intervention failed) inside a maintenance window.
    ThresholdHeldByMaintenance,
    /// An event for a disabled monitor was ignored.
    IgnoredWhileDisabled,
    /// An event for a removed monitor was ignored.
    IgnoredAfterRemoval,
    /// An intervention result arrived with no intervention pending (cancelled earlier).
    IgnoredInterventionResult,
}

impl Counter {
    pub const ALL: [Counter; 12] = [
        Counter::AlertDelayed,
        Counter::AlertCoalesced,
        Counter::SuppressedByMaintenance,
        Counter::SuppressedNoCode,
        Counter::SuppressedUnannounced,
        Counter::RedAlreadySent,
        Counter::Recovered,
        Counter::StaleCheck,
        Counter::ThresholdHeldByMaintenance,
        Counter::IgnoredWhileDisabled,
        Counter::IgnoredAfterRemoval,
        Counter::IgnoredInterventionResult,
    ];
    pub const COUNT: usize = Counter::ALL.len();

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Counter::AlertDelayed => "alert_delayed",
            Counter::AlertCoalesced => "alert_coalesced",
            Counter::SuppressedByMaintenance => "suppressed_by_maintenance",
            Counter::SuppressedNoCode => "suppressed_no_code",
            Counter::SuppressedUnannounced => "suppressed_unannounced",
            Counter::RedAlreadySent => "red_already_sent",
            Counter::Recovered => "recovered",
            Counter::StaleCheck => "stale_check",
            Counter::ThresholdHeldByMaintenance => "threshold_held_by_maintenance",
            Counter::IgnoredWhileDisabled => "ignored_while_disabled",
            Counter::IgnoredAfterRemoval => "ignored_after_removal",
            Counter::IgnoredInterventionResult => "ignored_intervention_result",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// How many times each [`Counter`] moved during one event (at most a few: an event queues at
/// most [`MAX_EFFECTS`] things, so a `u8` cannot overflow).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters([u8; Counter::COUNT]);

impl Counters {
    pub fn get(&self, counter: Counter) -> u8 {
        self.0[counter.index()]
    }

    /// The counters that moved, with how much.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u8)> + '_ {
        Counter::ALL.into_iter().map(|c| (c, self.get(c))).filter(|&(_, n)| n > 0)
    }

    pub(super) fn bump(&mut self, counter: Counter) {
        let slot = &mut self.0[counter.index()];
        debug_assert!(usize::from(*slot) < MAX_EFFECTS + 1, "{counter:?} moved too often");
        *slot = slot.saturating_add(1);
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter().map(|(c, n)| (c.as_str(), n))).finish()
    }
}

/// The effects of one event, inline (no heap), in the order the shard must apply them.
#[derive(Clone, Copy)]
pub struct Effects {
    items: [Effect; MAX_EFFECTS],
    len: u8,
    pub counters: Counters,
}

impl Effects {
    pub(super) const fn new() -> Effects {
        // The filler is never read: `as_slice` stops at `len`.
        Effects {
            items: [Effect::CancelQueuedAlerts; MAX_EFFECTS],
            len: 0,
            counters: Counters([0; Counter::COUNT]),
        }
    }

    pub(super) fn push(&mut self, effect: Effect) {
        let len = usize::from(self.len);
        assert!(
            len < MAX_EFFECTS,
            "more than MAX_EFFECTS effects: {:?} + {effect:?}",
            self.as_slice()
        );
        self.items[len] = effect;
        self.len += 1;
    }

    pub fn as_slice(&self) -> &[Effect] {
        &self.items[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Effect> {
        self.as_slice().iter()
    }
}

impl PartialEq for Effects {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice() && self.counters == other.counters
    }
}

impl Eq for Effects {}

impl fmt::Debug for Effects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Effects")
            .field("effects", &self.as_slice())
            .field("counters", &self.counters)
            .finish()
    }
}

impl<'a> IntoIterator for &'a Effects {
    type Item = &'a Effect;
    type IntoIter = std::slice::Iter<'a, Effect>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
