//! One (endpoint, monitor)'s deliveries, in the order they must reach the receiver.
//!
//! A monitor's alerts to one endpoint go one at a time (retries included), in the order of
//! their send time (`not_before_ms`) and, for the same send time, of their queueing. The same
//! send time is common: alerts a cooldown held are all due at its end, and a green is given the
//! send time of the red it resolves so as not to overtake it (docs/state-machine.md). Each
//! delivery sleeps on its own timer, computed from the clock's whole milliseconds when it was
//! queued, so two deliveries due at the same moment can wake in either order; first come at a
//! plain semaphore, a green could then reach PagerDuty before its own red, and the incident
//! would stay open there. So a delivery whose timer fired also waits until no delivery ordered
//! before it is still waiting for its turn.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use glommio::sync::{Permit, Semaphore};

use crate::limits::LANE_ORDER_POLL_MS;

/// Where a delivery stands in its lane: its send time, then its job id (queue order).
type Place = (u64, u64);

pub struct Lane {
    /// One delivery at a time.
    turn: Semaphore,
    /// Deliveries queued and not yet given their turn.
    waiting: RefCell<BTreeSet<Place>>,
}

impl Default for Lane {
    fn default() -> Self {
        Lane { turn: Semaphore::new(1), waiting: RefCell::new(BTreeSet::new()) }
    }
}

impl Lane {
    /// Puts a delivery in line; call it when the delivery is queued (queue order is job
    /// order), not when its task first runs.
    pub fn join(self: &Rc<Self>, not_before_ms: u64, job: u64) -> Ticket {
        let place = (not_before_ms, job);
        let fresh = self.waiting.borrow_mut().insert(place);
        debug_assert!(fresh, "job {job} joined its lane twice");
        Ticket { lane: self.clone(), place }
    }

    fn first(&self) -> Option<Place> {
        self.waiting.borrow().first().copied()
    }

    fn leave(&self, place: Place) {
        self.waiting.borrow_mut().remove(&place);
    }
}

/// A delivery's place in its lane; dropping it (a delivery finished or cancelled) leaves the
/// line, so a cancelled delivery never holds up the ones after it.
pub struct Ticket {
    lane: Rc<Lane>,
    place: Place,
}

impl Ticket {
    /// Waits until every delivery ordered before this one has had its turn, then for the lane
    /// to be free. Call it once this delivery's send time has come: the ones before it are
    /// then due too (their send time is not later), so the wait is for their timers to fire,
    /// under a millisecond, not for their send times.
    pub async fn turn(&self) -> glommio::Result<Permit<'_>, ()> {
        while self.lane.first() != Some(self.place) {
            glommio::timer::sleep(Duration::from_millis(LANE_ORDER_POLL_MS)).await;
        }
        let permit = self.lane.turn.acquire_permit(1).await;
        // The next in line may take its place in the semaphore's (first come) queue now: it
        // gets the lane after this delivery, retries included.
        self.lane.leave(self.place);
        permit
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.lane.leave(self.place);
    }
}
