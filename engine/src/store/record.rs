//! The journal's records: what a shard appends when something that must survive happens.
//!
//! Monitors are named by their stable id (the manifest's `id`, else derived from the name),
//! never by a shard-local index, so recovery can route a record to whichever shard owns the
//! monitor now (a changed `--shards`) and drop records of monitors no longer in the manifest.
//! Times are Unix milliseconds: the process's own clock restarts with it.
//!
//! Bodies are encoded with `postcard` (serde, varints): compact and not hand-written. Adding
//! a variant at the end keeps old journals readable; reordering or changing one does not.

use serde::{Deserialize, Serialize};

use crate::colour::Colour;
use crate::state::{Reason, SavedState};

/// One journal record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// An incident opened: `colour` is the colour it reached (red).
    IncidentOpened { monitor: String, incident_seq: u32, at_unix_ms: i64, colour: Colour },
    /// An incident closed: `colour` is what closed it (green; none when closed silently, on
    /// removal).
    IncidentClosed { monitor: String, incident_seq: u32, at_unix_ms: i64, colour: Option<Colour> },
    /// A monitor's state after a transition that changed what must survive (counts in an
    /// episode, flags, attempts, the incident number). `config` is the checksum of the
    /// monitor's check config when it was written, so recovery can tell that it changed.
    MonitorState { monitor: String, config: u32, state: SavedState },
    /// An alert queued for one endpoint (the outbox): durable before its first attempt.
    AlertQueued(SavedAlert),
    /// The alert `id` was delivered: recovery does not send it again.
    AlertDelivered { id: u64 },
    /// The alert `id` was given up (retries exhausted or a final failure): not sent again.
    AlertGivenUp { id: u64 },
    /// A monitor disabled (or enabled again) by an operator through the API.
    Disabled { monitor: String, disabled: bool },
    /// A monitor silenced through the API until a time (0: silence lifted).
    Silenced { monitor: String, until_unix_ms: i64 },
    /// An incident acknowledged by an operator through the API (kept while it is open).
    Acked { monitor: String, incident_seq: u32, by: String },
    /// A monitor a reload removed: recovery forgets its state, its operator controls and its
    /// open incident, but not its incident numbers (an id is never reused, even if the
    /// monitor comes back). Last of the variants: postcard numbers them in order.
    Removed { monitor: String },
}

/// A queued alert as the outbox keeps it: everything needed to render and send it again
/// after a restart, for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAlert {
    /// Unique within the shard's journal: the delivery and give-up records name it.
    pub id: u64,
    pub monitor: String,
    /// Which of the monitor's endpoints for `colour` (`actions::endpoints_for`, in order).
    pub endpoint: u16,
    /// A checksum of that endpoint's config: recovery sends the alert only if the endpoint at
    /// that place is still the same one.
    pub endpoint_check: u32,
    pub colour: Colour,
    pub reason: Reason,
    /// `None` for gray (a maintenance window is not an incident).
    pub incident_seq: Option<u32>,
    pub summary: String,
    pub action: String,
    pub next_steps: Vec<String>,
    /// Earliest send time (the cooldown may have delayed it). After a restart the alert
    /// still waits for it (cooldowns continue: `SavedState::cooldowns_unix_ms`).
    pub not_before_unix_ms: i64,
}

impl Record {
    /// The monitor the record is about, for routing at recovery; `None` for outbox
    /// acknowledgements, which follow their `AlertQueued`.
    pub fn monitor(&self) -> Option<&str> {
        match self {
            Record::IncidentOpened { monitor, .. }
            | Record::IncidentClosed { monitor, .. }
            | Record::MonitorState { monitor, .. }
            | Record::Disabled { monitor, .. }
            | Record::Silenced { monitor, .. }
            | Record::Acked { monitor, .. }
            | Record::Removed { monitor } => Some(monitor),
            Record::AlertQueued(alert) => Some(&alert.monitor),
            Record::AlertDelivered { .. } | Record::AlertGivenUp { .. } => None,
        }
    }
}
