//! What an operator set on a shard's monitors through the API, and what the API shows of their
//! past: per monitor a small [`MonitorControl`] (disabled, silenced until), a ring of its last
//! results ([`RecentResults`]), and the shard's incidents ([`Incidents`]).
//!
//! What it is for: the shard-side state of the control requests, kept apart from the hot
//! scheduling and state-machine data and made of plain `Copy` records, so the journal can
//! persist it as is. Allocated at start (the recent results) or when an incident opens
//! (the incident list); nothing here allocates per check. What it is not for: deciding
//! (`state.rs`) or scheduling (`shard::core`).

use std::collections::{HashMap, VecDeque};

use cpra_net::{Detail, FailureKind, Outcome};

use rustc_hash::FxHashMap;

use crate::limits::{INCIDENTS_CLOSED_KEPT, RECENT_RESULTS};

/// What the API set on one monitor. `Copy`, 16 bytes: the journal snapshots it as is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorControl {
    /// Disabled through the API (not checked until enabled); `None`: as the manifest says.
    pub disabled: Option<bool>,
    /// Alerts are held back until this Unix ms; 0: not silenced.
    pub silenced_until_unix_ms: i64,
}

impl MonitorControl {
    pub fn silenced_at(&self, now_unix_ms: i64) -> bool {
        self.silenced_until_unix_ms > now_unix_ms
    }
}

/// The [`MonitorControl`] of each of a shard's monitors, kept only for monitors with a setting:
/// nearly every monitor has none, and a table of all of them cost 16 bytes a monitor (16 MB at
/// a million) to say so. At most one entry per monitor; an entry set back to the default is
/// dropped.
#[derive(Default)]
pub struct Controls(FxHashMap<u32, MonitorControl>);

impl Controls {
    /// The monitor's settings (the default when it has none): one length test when no
    /// monitor of the shard has any, the usual case on the check path.
    pub fn get(&self, monitor: u32) -> MonitorControl {
        if self.0.is_empty() {
            return MonitorControl::default();
        }
        self.0.get(&monitor).copied().unwrap_or_default()
    }

    pub fn set(&mut self, monitor: u32, control: MonitorControl) {
        if control == MonitorControl::default() {
            self.0.remove(&monitor);
        } else {
            self.0.insert(monitor, control);
        }
    }

    pub fn update(&mut self, monitor: u32, change: impl FnOnce(&mut MonitorControl)) {
        let mut control = self.get(monitor);
        change(&mut control);
        self.set(monitor, control);
    }

    /// The monitors with a setting, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, MonitorControl)> + '_ {
        self.0.iter().map(|(&m, &c)| (m, c))
    }
}

/// One result of a monitor, what the API shows of a check: 8 bytes (asserted), kept in the
/// ring in 6 ([`Stored`]). At a million monitors the ring is 20 results each, so every byte
/// of a result is 20 MB.
///
/// - `at`: when the check ended, the shard clock's ms modulo 2^32, read back against the
///   clock's now ([`RecentResult::at_ms`]): exact for results younger than 49.7 days (2^32 ms);
///   an older one (a monitor disabled that long) is shown up to that much too late. The ring
///   keeps it exactly for the newest result and within 1/2048 of their age for the others.
/// - `latency`: a 16-bit float (5-bit shift, 11-bit mantissa): exact below 2.048 ms, within
///   0.05 % above (the API shows ms with µs digits; a 1.5 s check may read 1 ms off).
/// - `what`: 4 bits the outcome (0 success, else 1 + the failure kind's index in
///   `FailureKind::ALL`), 2 bits the detail's tag (1 HTTP status, 2 errno, 3 certificate days
///   left, 0 none), 10 bits the code (statuses are 100-599, errnos below 1024, days left
///   -512..511 as two's complement; a detail outside these is not kept here: see
///   [`RecentResult::keeps`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecentResult {
    at: u32,
    latency: u16,
    what: u16,
}

const _: () = assert!(std::mem::size_of::<RecentResult>() == 8);
const _: () = assert!(FailureKind::ALL.len() < 16, "the outcome has 4 bits");

/// Bits of the latency's mantissa; the shift takes the other 5.
const LATENCY_MANTISSA_BITS: u32 = 11;
/// Largest code kept in the 10 bits.
const MAX_KEPT_CODE: u16 = (1 << 10) - 1;
/// Certificate days left kept in the 10 bits (two's complement): a year and a half either way,
/// past what a public certificate may last (398 days).
const KEPT_DAYS: std::ops::RangeInclusive<i32> = -512..=511;

/// What the recent results cost a monitor: the ring and its head.
pub const RECENT_BYTES_PER_MONITOR: usize =
    RECENT_RESULTS * std::mem::size_of::<Stored>() + std::mem::size_of::<Head>();

/// A `u32` as a 16-bit float: exact below 2048, within half a step (1/2048) above.
fn encode_f16(us: u32) -> u16 {
    let shift = (32 - us.leading_zeros()).saturating_sub(LATENCY_MANTISSA_BITS);
    ((shift << LATENCY_MANTISSA_BITS) | (us >> shift)) as u16
}

fn decode_f16(v: u16) -> u32 {
    let shift = u32::from(v) >> LATENCY_MANTISSA_BITS;
    let mantissa = u32::from(v) & ((1 << LATENCY_MANTISSA_BITS) - 1);
    // The middle of the range the mantissa stands for, so the error is at most half a step.
    (mantissa << shift) | ((1u32 << shift) >> 1)
}

impl RecentResult {
    pub fn new(at_ms: u64, outcome: &Outcome) -> RecentResult {
        let kind = outcome
            .failure
            .and_then(|k| FailureKind::ALL.iter().position(|&x| x == k))
            .map_or(0, |i| i as u16 + 1);
        let (detail_tag, code) = match outcome.detail {
            Detail::HttpStatus(code) if code <= MAX_KEPT_CODE => (1, code),
            Detail::Errno(errno) if (0..=i32::from(MAX_KEPT_CODE)).contains(&errno) => {
                (2, errno as u16)
            }
            Detail::CertDaysLeft(days) if KEPT_DAYS.contains(&days) => {
                (3, days as u16 & MAX_KEPT_CODE)
            }
            _ => (0, 0),
        };
        RecentResult {
            at: at_ms as u32,
            latency: encode_f16(outcome.latency_us),
            what: kind << 12 | detail_tag << 10 | code,
        }
    }

    /// Whether this result, made from `outcome`, gives back what the API shows of it: a
    /// success's detail is never shown; a failure's fixed text, size, or code out of range is
    /// not kept.
    pub fn keeps(&self, outcome: &Outcome) -> bool {
        outcome.is_success() || self.outcome().detail == outcome.detail
    }

    /// When the check ended, in ms of the shard's clock, given that clock's `now_ms`.
    pub fn at_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(u64::from((now_ms as u32).wrapping_sub(self.at)))
    }

    pub fn latency_us(&self) -> u32 {
        decode_f16(self.latency)
    }

    /// The failure kind, `None` for a success.
    pub fn failure(&self) -> Option<FailureKind> {
        let kind = self.what >> 12;
        (kind != 0).then(|| FailureKind::ALL[usize::from(kind - 1)])
    }

    /// The outcome again, with the detail kept (a status or an errno; fixed texts are not).
    pub fn outcome(&self) -> Outcome {
        let code = self.what & MAX_KEPT_CODE;
        let detail = match (self.what >> 10) & 3 {
            1 => Detail::HttpStatus(code),
            2 => Detail::Errno(i32::from(code)),
            // Sign-extended from 10 bits.
            3 => Detail::CertDaysLeft(i32::from((code << 6) as i16 >> 6)),
            _ => Detail::None,
        };
        let latency_us = self.latency_us();
        match self.failure() {
            None => Outcome::success(latency_us),
            Some(kind) => Outcome::failure(kind, latency_us, detail),
        }
    }
}

/// A result as the ring stores it: 6 bytes. Its time is not stored whole: only the newest
/// result's is (in [`Head`]); each older one keeps `gap`, the ms from it to the next newer
/// result, as a 16-bit float (the latency's encoding: exact below 2.048 s, within 1/2048
/// above). Reading back, the errors of the gaps add up, so an older result's time is within
/// 1/2048 of its age: 0.6 s for a result 20 minutes old, and the newest is exact. Where
/// every result kept its 4-byte time the ring cost 162 bytes a monitor; it costs 128.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stored {
    gap: u16,
    latency: u16,
    what: u16,
}

const _: () = assert!(std::mem::size_of::<Stored>() == 6);

/// Per monitor: the newest result's time (as [`RecentResult::at`]), where the next result
/// goes, and how many are kept (both < 256).
#[derive(Clone, Copy, Debug, Default)]
struct Head {
    newest_at: u32,
    next: u8,
    len: u8,
}

const _: () = assert!(std::mem::size_of::<Head>() == 8);

/// Every monitor's last [`RECENT_RESULTS`] results, in one allocation made at start (a
/// reload adding monitors grows it).
pub struct RecentResults {
    slots: Vec<Stored>,
    heads: Vec<Head>,
}

const _: () = assert!(RECENT_RESULTS < 256);

impl RecentResults {
    pub fn new(monitors: usize) -> RecentResults {
        RecentResults {
            slots: vec![Stored::default(); monitors * RECENT_RESULTS],
            heads: vec![Head::default(); monitors],
        }
    }

    /// Room for one more monitor, at the end (a reload added it in a new slot).
    pub fn grow(&mut self) {
        self.slots.resize(self.slots.len() + RECENT_RESULTS, Stored::default());
        self.heads.push(Head::default());
    }

    /// Forgets a monitor's results (its slot goes to another monitor).
    pub fn clear(&mut self, monitor: u32) {
        self.heads[monitor as usize] = Head::default();
    }

    pub fn push(&mut self, monitor: u32, result: RecentResult) {
        let head = &mut self.heads[monitor as usize];
        let base = monitor as usize * RECENT_RESULTS;
        if head.len > 0 {
            // The result that was newest learns how long before this one it ended.
            let newest = (usize::from(head.next) + RECENT_RESULTS - 1) % RECENT_RESULTS;
            self.slots[base + newest].gap = encode_f16(result.at.wrapping_sub(head.newest_at));
        }
        self.slots[base + usize::from(head.next)] =
            Stored { gap: 0, latency: result.latency, what: result.what };
        head.newest_at = result.at;
        head.next = ((usize::from(head.next) + 1) % RECENT_RESULTS) as u8;
        head.len = (head.len + 1).min(RECENT_RESULTS as u8);
    }

    /// The monitor's results, newest first.
    pub fn newest_first(&self, monitor: u32) -> impl Iterator<Item = RecentResult> + '_ {
        let head = self.heads[monitor as usize];
        let base = monitor as usize * RECENT_RESULTS;
        let mut at = head.newest_at;
        (1..=usize::from(head.len)).map(move |back| {
            let i = (usize::from(head.next) + RECENT_RESULTS - back) % RECENT_RESULTS;
            let stored = self.slots[base + i];
            if back > 1 {
                at = at.wrapping_sub(decode_f16(stored.gap));
            }
            RecentResult { at, latency: stored.latency, what: stored.what }
        })
    }
}

/// One incident as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRecord {
    /// The shard-local monitor index.
    pub monitor: u32,
    pub seq: u32,
    pub opened_at_unix_ms: i64,
    pub closed_at_unix_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
}

/// A shard's incidents: every open one (at most one per monitor) and the most recent
/// [`INCIDENTS_CLOSED_KEPT`] closed ones.
#[derive(Default)]
pub struct Incidents {
    open: HashMap<u32, IncidentRecord>,
    closed: VecDeque<IncidentRecord>,
}

impl Incidents {
    pub fn opened(&mut self, monitor: u32, seq: u32, now_unix_ms: i64) {
        let record = IncidentRecord {
            monitor,
            seq,
            opened_at_unix_ms: now_unix_ms,
            closed_at_unix_ms: None,
            acknowledged_by: None,
        };
        self.open.insert(monitor, record);
    }

    pub fn closed(&mut self, monitor: u32, now_unix_ms: i64) {
        let Some(mut record) = self.open.remove(&monitor) else { return };
        record.closed_at_unix_ms = Some(now_unix_ms);
        if self.closed.len() == INCIDENTS_CLOSED_KEPT {
            self.closed.pop_front();
        }
        self.closed.push_back(record);
    }

    /// Drops the monitor's incidents, open and closed (a reload removed it, and its slot may
    /// go to another monitor, which must not be shown them). Closing the open one is the
    /// state machine's (silently, on removal); this is only the API's memory of it.
    pub fn forget(&mut self, monitor: u32) {
        self.open.remove(&monitor);
        self.closed.retain(|r| r.monitor != monitor);
    }

    /// The monitor's open incident, if it is number `seq`.
    pub fn open_mut(&mut self, monitor: u32, seq: u32) -> Option<&mut IncidentRecord> {
        self.open.get_mut(&monitor).filter(|r| r.seq == seq)
    }

    pub fn open_of(&self, monitor: u32) -> Option<&IncidentRecord> {
        self.open.get(&monitor)
    }

    /// Open ones (`Some(true)`), closed ones (`Some(false)`) or both, in no set order.
    pub fn list(&self, open: Option<bool>) -> impl Iterator<Item = &IncidentRecord> {
        let open_ones = self.open.values().filter(move |_| open != Some(false));
        let closed_ones = self.closed.iter().rev().filter(move |_| open != Some(true));
        open_ones.chain(closed_ones)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_results_newest_first() {
        let mut recent = RecentResults::new(2);
        for i in 0..(RECENT_RESULTS as u64 + 5) {
            recent.push(1, RecentResult::new(i, &Outcome::success(i as u32)));
        }
        let at: Vec<u64> =
            recent.newest_first(1).map(|r| r.at_ms(RECENT_RESULTS as u64 + 4)).collect();
        assert_eq!(at.len(), RECENT_RESULTS);
        assert_eq!(at[0], RECENT_RESULTS as u64 + 4);
        assert_eq!(*at.last().unwrap(), 5);
        assert_eq!(recent.newest_first(0).count(), 0);
        let failed = Outcome::failure(FailureKind::Status, 7, Detail::HttpStatus(503));
        recent.push(0, RecentResult::new(9, &failed));
        let r = recent.newest_first(0).next().unwrap();
        assert_eq!((r.failure(), r.outcome()), (Some(FailureKind::Status), failed));
    }

    #[test]
    fn a_result_keeps_its_time_across_the_clock_wrapping_and_its_latency_within_a_step() {
        let wrap = 1u64 << 32;
        let r = RecentResult::new(wrap - 5, &Outcome::success(1));
        assert_eq!(r.at_ms(wrap + 10), wrap - 5, "2^32 ms of uptime");
        assert_eq!(
            r.at_ms(3 * wrap + 7),
            3 * wrap - 5,
            "older than 2^32 ms: the latest it could be"
        );
        for us in [0, 1, 2047, 2048, 2049, 123_456, 1_500_000, 60_000_000, u32::MAX] {
            let back = RecentResult::new(0, &Outcome::success(us)).latency_us();
            let error = u64::from(back.abs_diff(us));
            assert!(error * 2048 <= u64::from(us), "{us} us read back as {back}");
        }
        let refused = Outcome::failure(FailureKind::ConnectRefused, 9, Detail::Errno(111));
        assert_eq!(RecentResult::new(0, &refused).outcome(), refused);
        let odd = Outcome::failure(FailureKind::Status, 9, Detail::HttpStatus(4000));
        assert_eq!(RecentResult::new(0, &odd).outcome().detail, Detail::None);
    }

    #[test]
    fn older_results_keep_their_time_within_a_2048th_of_their_age() {
        let mut recent = RecentResults::new(1);
        // Gaps from 1 ms to a day, a 60 s interval with jitter among them.
        let gaps = [1u64, 2047, 2048, 60_003, 59_998, 61_234, 86_400_000, 5, 300_017, 60_000];
        let mut at = (1u64 << 32) - 100_000; // the clock wraps on the way
        let mut times = Vec::new();
        for (n, gap) in gaps.iter().cycle().take(RECENT_RESULTS + 7).enumerate() {
            at += gap;
            times.push(at);
            recent.push(0, RecentResult::new(at, &Outcome::success(n as u32)));
        }
        let now = at + 1;
        let back: Vec<(u64, u32)> =
            recent.newest_first(0).map(|r| (r.at_ms(now), r.latency_us())).collect();
        assert_eq!(back.len(), RECENT_RESULTS);
        assert_eq!(back[0].0, at, "the newest is exact");
        for (k, &(got, latency)) in back.iter().enumerate() {
            let want = times[times.len() - 1 - k];
            let age = at - want;
            assert!(got.abs_diff(want) * 2048 <= age.max(1), "{k}: {got} for {want}, age {age}");
            assert_eq!(latency as usize, times.len() - 1 - k, "results stay in order");
        }
        recent.clear(0);
        assert_eq!(recent.newest_first(0).count(), 0);
        assert_eq!(RECENT_BYTES_PER_MONITOR, 128);
    }

    #[test]
    fn certificate_days_are_kept_within_a_year_and_a_half_either_way() {
        let expiring =
            |days| Outcome::failure(FailureKind::Protocol, 5, Detail::CertDaysLeft(days));
        for days in [-512, -1, 0, 1, 30, 397, 511] {
            let r = RecentResult::new(0, &expiring(days));
            assert!(r.keeps(&expiring(days)), "{days}");
            assert_eq!(r.outcome(), expiring(days));
        }
        for days in [-513, 512, 3650] {
            assert!(!RecentResult::new(0, &expiring(days)).keeps(&expiring(days)), "{days}");
        }
        let text = Outcome::failure(FailureKind::Protocol, 3, Detail::Text("bad head"));
        assert!(!RecentResult::new(0, &text).keeps(&text));
        let ok = Outcome { detail: Detail::Text("served"), ..Outcome::success(5) };
        assert!(RecentResult::new(0, &ok).keeps(&ok), "a success's detail is not shown");
    }

    #[test]
    fn controls_keep_only_monitors_with_a_setting() {
        let mut controls = Controls::default();
        assert_eq!(controls.get(3), MonitorControl::default());
        controls.update(3, |c| c.disabled = Some(true));
        controls.update(4, |c| c.silenced_until_unix_ms = 99);
        assert_eq!(controls.get(3).disabled, Some(true));
        assert!(controls.get(4).silenced_at(98));
        assert_eq!(controls.iter().count(), 2);
        controls.update(3, |c| c.disabled = None);
        controls.set(4, MonitorControl::default());
        assert_eq!(controls.iter().count(), 0, "a setting back to the default drops its entry");
    }

    #[test]
    fn closed_incidents_are_bounded_and_acks_find_the_open_one() {
        let mut incidents = Incidents::default();
        for m in 0..(INCIDENTS_CLOSED_KEPT as u32 + 3) {
            incidents.opened(m, 1, 10);
            incidents.closed(m, 20);
        }
        incidents.opened(7, 2, 30);
        assert!(incidents.open_mut(7, 1).is_none());
        incidents.open_mut(7, 2).unwrap().acknowledged_by = Some("ops".into());
        assert_eq!(incidents.list(Some(true)).count(), 1);
        assert_eq!(incidents.list(Some(false)).count(), INCIDENTS_CLOSED_KEPT);
        assert_eq!(incidents.list(None).count(), INCIDENTS_CLOSED_KEPT + 1);
    }

    #[test]
    fn a_slot_given_to_another_monitor_shows_none_of_the_old_ones_results_or_incidents() {
        let mut recent = RecentResults::new(1);
        recent.push(0, RecentResult::new(1, &Outcome::success(1)));
        recent.grow();
        assert_eq!(recent.newest_first(1).count(), 0, "a new slot starts empty");
        recent.push(1, RecentResult::new(2, &Outcome::success(2)));
        recent.clear(0);
        assert_eq!(recent.newest_first(0).count(), 0);
        assert_eq!(recent.newest_first(1).map(|r| r.at_ms(2)).collect::<Vec<_>>(), [2]);

        let mut incidents = Incidents::default();
        incidents.opened(0, 1, 10);
        incidents.closed(0, 20);
        incidents.opened(0, 2, 30);
        incidents.opened(1, 1, 40);
        incidents.forget(0);
        let left: Vec<u32> = incidents.list(None).map(|r| r.monitor).collect();
        assert_eq!(left, [1]);
    }
}
