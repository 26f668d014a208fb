//! The scheduling rules as pure slot arithmetic (docs/state-machine.md, "Scheduling rules").
//!
//! What it is for: deciding *when* a monitor's checks run: the first slot spread over one
//! interval by a hash of the id, fixed-rate slots after it, slots missed while a check ran
//! (or while the shard was busy) counted and skipped, never replayed. What it is not for:
//! keeping time (callers pass `now_ms`) or storing timers (that is the wheel).

use crate::limits::MIN_INTERVAL_MS;

/// The first slot of a monitor loaded at `load_ms`: `load_ms + (id_hash mod interval_ms)`.
///
/// Spreading first checks over one interval by the id's hash means a fleet of a million
/// monitors loaded at once does not all fire in the first millisecond, and a given monitor
/// always gets the same phase within its interval (predictable for operators).
pub fn first_slot_ms(load_ms: u64, id_hash: u64, interval_ms: u32) -> u64 {
    debug_assert!(interval_ms >= MIN_INTERVAL_MS);
    load_ms + id_hash % u64::from(interval_ms.max(MIN_INTERVAL_MS))
}

/// The next slot after a check scheduled for `scheduled_ms` finished at `now_ms`, and how many
/// slots were missed on the way.
///
/// Fixed rate: the next slot is `scheduled_ms + interval_ms`. A slot that came while the check
/// ran (or while the shard was too busy to start it) is rolled over: the result is the first
/// slot `scheduled_ms + k * interval_ms` (k >= 1) that is not before `now_ms`, and `k - 1`
/// slots were missed. Missed slots are counted and skipped, never replayed in a burst.
pub fn next_slot_ms(scheduled_ms: u64, interval_ms: u32, now_ms: u64) -> (u64, u64) {
    debug_assert!(interval_ms >= MIN_INTERVAL_MS);
    let interval_ms = u64::from(interval_ms.max(MIN_INTERVAL_MS));
    let next_ms = scheduled_ms + interval_ms;
    if next_ms >= now_ms {
        return (next_ms, 0);
    }
    // ceil((now - next) / interval) more intervals bring the slot to now or just after it.
    let missed = (now_ms - next_ms).div_ceil(interval_ms);
    let rolled_ms = next_ms + missed * interval_ms;
    debug_assert!(rolled_ms >= now_ms && rolled_ms - now_ms < interval_ms);
    (rolled_ms, missed)
}

/// A check's deadline: its start plus the monitor's timeout.
pub fn deadline_ms(start_ms: u64, timeout_ms: u32) -> u64 {
    start_ms + u64::from(timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_INTERVAL_MS;
    use proptest::prelude::*;

    #[test]
    fn first_slots_are_spread_over_one_interval() {
        assert_eq!(first_slot_ms(1_000, 0, 500), 1_000);
        assert_eq!(first_slot_ms(1_000, 7, 500), 1_007);
        assert_eq!(first_slot_ms(1_000, 1_234, 500), 1_234);
        // A thousand consecutive hashes over a 100 ms interval land on every ms, 10 each.
        let mut per_ms = [0u32; 100];
        for id_hash in 0..1_000u64 {
            per_ms[(first_slot_ms(0, id_hash, 100)) as usize] += 1;
        }
        assert!(per_ms.iter().all(|&n| n == 10));
    }

    #[test]
    fn on_time_check_takes_the_next_fixed_slot() {
        assert_eq!(next_slot_ms(1_000, 1_000, 1_005), (2_000, 0));
        // Finishing exactly at the next slot is not a miss: that slot runs now.
        assert_eq!(next_slot_ms(1_000, 1_000, 2_000), (2_000, 0));
    }

    #[test]
    fn slots_passed_while_running_are_counted_not_replayed() {
        // Scheduled at 1000, every 100 ms, finished at 1350: 1100, 1200, 1300 passed.
        // 1100..1300 missed: 3 slots; the next runs at 1400, once.
        assert_eq!(next_slot_ms(1_000, 100, 1_350), (1_400, 3));
        // Finishing exactly on a later slot: that slot is taken, the ones before are missed.
        assert_eq!(next_slot_ms(1_000, 100, 1_300), (1_300, 2));
        assert_eq!(next_slot_ms(1_000, 100, 1_301), (1_400, 3));
    }

    #[test]
    fn one_ms_interval_never_stalls() {
        assert_eq!(next_slot_ms(5, 1, 5), (6, 0));
        assert_eq!(next_slot_ms(5, 1, 9), (9, 3));
    }

    proptest! {
        #[test]
        fn next_slot_is_on_the_grid_and_not_before_now(
            scheduled in 0u64..1 << 40,
            interval in 1u32..MAX_INTERVAL_MS,
            late in 0u64..1 << 34,
        ) {
            let now = scheduled + late;
            let (next, missed) = next_slot_ms(scheduled, interval, now);
            prop_assert!(next > scheduled);
            prop_assert!(next >= now);
            prop_assert_eq!((next - scheduled) % u64::from(interval), 0);
            prop_assert_eq!((next - scheduled) / u64::from(interval), missed + 1);
            // Never more than one interval ahead of now: nothing skipped that could run.
            prop_assert!(next - now <= u64::from(interval));
        }
    }
}
