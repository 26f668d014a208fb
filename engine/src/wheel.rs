//! A hierarchical timing wheel with 1 ms resolution whose entries are monitor indices.
//!
//! What it is for: holding each idle monitor of a shard until its next slot, with O(1) insert
//! and cancel and no allocation per timer: the lists are intrusive (`next`/`prev` u32 arrays
//! indexed by monitor), allocated once for the shard's monitors. What it is not for: knowing
//! the time (callers pass `now_ms`), or deciding slots (that is `schedule`).
//!
//! Layout (the scheme of tokio's and the Linux kernel's wheels, with wider levels): `LEVELS`
//! levels of `SLOTS` slots; a level `l` slot covers `4096^l` ms. An entry goes to the level of the highest
//! bit in which its expiry differs from `elapsed_ms` (the last time processed), so everything
//! in level 0 precedes everything in level 1, and so on. When time reaches a higher-level
//! slot, its entries cascade down; a level-0 slot is one exact millisecond and is spliced into
//! the `due` list in O(1). Levels are 4096 slots wide (not 64) because every cascade walks a
//! linked list, one cache miss per entry: with 4096 slots an interval up to 4 s usually lands
//! in its exact millisecond at once, and a 1 s monitor cascades 0.25 times per check on
//! average instead of 1.25 (measured: the cascade walk was the on-time hot spot). Each list is circular with a sentinel node stored after the monitor
//! nodes, so unlinking needs no knowledge of which list a node is on. A two-tier bitmap per
//! level (64 words and a summary word) finds the next occupied slot with two
//! `trailing_zeros`, which is how an idle shard knows how long it may sleep.

/// Bits of time per level above 0: a level-`l` slot covers `4096^l` ms.
const LEVEL_BITS: u32 = 12;
/// Slots per level above 0.
pub const SLOTS: usize = 1 << LEVEL_BITS;
/// Slots of level 0: a rolling window of two pages (8192 ms). The second page is what lets
/// the level-1 slot of the next page move down during the current one, a bounded number of
/// entries per poll (`EARLY_CASCADE_PER_POLL`), instead of all at once when time reaches it.
pub const LEVEL0_SLOTS: usize = 2 * SLOTS;
/// Entries moved from the next page's level-1 slot into level 0 at the end of each poll
/// round that found nothing more due. A 1 M-monitor shard with a 60 s interval has ~68 k
/// entries in a page (4096 ms): at one round per ms they move within the first ~270 ms of
/// the page before, and a round spends at most ~256 cache misses (~15 us) on it. Entries
/// left when time reaches the page (a shard polled rarely, or bigger pages) cascade at
/// once, as before.
const EARLY_CASCADE_PER_POLL: usize = 256;
/// Three levels span 2^36 ms (about 2.2 years): far beyond the longest interval
/// (`limits::MAX_INTERVAL_MS`, 31 days), so no expiry ever wraps the top level.
pub const LEVELS: usize = 3;
/// Slots of all levels (level 0 first, then each higher level's `SLOTS`).
const ALL_SLOTS: usize = LEVEL0_SLOTS + (LEVELS - 1) * SLOTS;
/// Sentinel nodes: one per lane of every slot, then one per due lane.
const SLOT_SENTINELS: usize = ALL_SLOTS * LANES;
const SENTINELS: usize = SLOT_SENTINELS + LANES;

/// The furthest ahead of `elapsed_ms` an expiry may be.
pub const MAX_SPAN_MS: u64 = 1 << (LEVEL_BITS as usize * LEVELS);

/// Each slot (and the due list) is `LANES` independent lists; a monitor goes to lane
/// `idx % LANES`, and lists are walked round-robin across lanes. Walking one linked list is
/// a chain of dependent cache misses (a monitor due every second is cold when it comes
/// due); with four chains interleaved, the store that relinks one lane's next node acts as
/// its prefetch while the other three lanes are served, so misses overlap.
const LANES: usize = 4;

/// Marks a node that is on no list (not in the wheel).
const UNLINKED: u32 = u32::MAX;

/// One node of the intrusive lists: 16 bytes per monitor.
#[derive(Clone, Copy, Debug)]
struct Node {
    next: u32,
    prev: u32,
    /// The expiry: the monitor's scheduled slot, in ms of the shard's clock.
    when_ms: u64,
}

/// The timing wheel of one shard.
pub struct Wheel {
    /// Monitor nodes `[0, capacity)`, then `LEVELS * SLOTS * LANES` slot sentinels, then
    /// `LANES` due sentinels.
    nodes: Vec<Node>,
    occupied: [Occupancy; LEVELS],
    capacity: u32,
    /// Every expiry `<= elapsed_ms` has been moved to the due list.
    elapsed_ms: u64,
    /// Entries moved by whole-slot cascades when time reached their slot (not spread ahead
    /// by `drain_next_page`): a measure of the stalls left.
    cascaded_at_once: u64,
    len: u32,
    /// The due lane `poll` serves next.
    next_lane: usize,
    /// The monitor behind the one `poll` last returned in its lane (UNLINKED if none): it
    /// comes out `LANES` polls later, so callers can prefetch its data now.
    successor: u32,
}

/// Bytes per monitor the wheel adds to the hot table.
pub const BYTES_PER_ENTRY: usize = std::mem::size_of::<Node>();

impl Wheel {
    /// A wheel for monitor indices `0..capacity`, with time starting at `start_ms`.
    /// Allocates once, here.
    pub fn new(capacity: u32, start_ms: u64) -> Wheel {
        assert!(
            (capacity as usize) + SENTINELS < UNLINKED as usize,
            "too many monitors for one shard: {capacity}"
        );
        let mut nodes = Vec::with_capacity(capacity as usize + SENTINELS);
        nodes.resize(capacity as usize, Node { next: UNLINKED, prev: UNLINKED, when_ms: 0 });
        for s in 0..SENTINELS {
            let me = capacity + s as u32;
            nodes.push(Node { next: me, prev: me, when_ms: 0 });
        }
        let occupied = [Occupancy::EMPTY; LEVELS];
        Wheel {
            nodes,
            occupied,
            capacity,
            elapsed_ms: start_ms,
            cascaded_at_once: 0,
            len: 0,
            next_lane: 0,
            successor: UNLINKED,
        }
    }

    /// Makes room for monitor indices `0..capacity` (a reload added monitors): every entry
    /// keeps its expiry and `elapsed_ms` stays, so nothing is due earlier or later than it
    /// was. O(entries): the sentinels sit after the monitor nodes, so the lists are rebuilt;
    /// it happens once per reload that adds past the free slots, never per check.
    pub fn grow(&mut self, capacity: u32) {
        if capacity <= self.capacity {
            return;
        }
        let mut grown = Wheel::new(capacity, self.elapsed_ms);
        for idx in 0..self.capacity {
            if self.contains(idx) {
                grown.insert(idx, self.when_ms(idx));
            }
        }
        grown.cascaded_at_once = self.cascaded_at_once;
        grown.next_lane = self.next_lane;
        debug_assert_eq!(grown.len, self.len);
        *self = grown;
    }

    /// The monitor indices this wheel can hold.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Monitors currently in the wheel (waiting or due).
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The time up to which all expiries have been collected.
    pub fn elapsed_ms(&self) -> u64 {
        self.elapsed_ms
    }

    /// Whether `idx` is in the wheel.
    pub fn contains(&self, idx: u32) -> bool {
        self.nodes[idx as usize].next != UNLINKED
    }

    /// The expiry `idx` was last inserted with.
    pub fn when_ms(&self, idx: u32) -> u64 {
        self.nodes[idx as usize].when_ms
    }

    fn slot_sentinel(&self, level: usize, slot: usize, lane: usize) -> u32 {
        debug_assert!(slot < level_slots(level));
        self.capacity + ((level_base(level) + slot) * LANES + lane) as u32
    }

    fn due_sentinel(&self, lane: usize) -> u32 {
        self.capacity + (SLOT_SENTINELS + lane) as u32
    }

    fn list_is_empty(&self, sentinel: u32) -> bool {
        self.nodes[sentinel as usize].next == sentinel
    }

    fn due_is_empty(&self) -> bool {
        (0..LANES).all(|lane| self.list_is_empty(self.due_sentinel(lane)))
    }

    /// Inserts `idx` to expire at `when_ms`. An expiry at or before `elapsed_ms` is due at
    /// once. O(1).
    pub fn insert(&mut self, idx: u32, when_ms: u64) {
        assert!(idx < self.capacity, "monitor index {idx} out of range");
        debug_assert!(!self.contains(idx), "monitor {idx} inserted twice");
        assert!(
            when_ms < self.elapsed_ms + MAX_SPAN_MS,
            "expiry {when_ms} ms beyond the wheel's span from {}",
            self.elapsed_ms
        );
        self.nodes[idx as usize].when_ms = when_ms;
        self.len += 1;
        self.place(idx);
    }

    /// Links `idx` (already counted in `len`) into the list its expiry belongs to.
    fn place(&mut self, idx: u32) {
        let when_ms = self.nodes[idx as usize].when_ms;
        let lane = idx as usize % LANES;
        if when_ms <= self.elapsed_ms {
            let due = self.due_sentinel(lane);
            self.link_tail(due, idx);
            return;
        }
        let level = level_for(self.elapsed_ms, when_ms);
        let slot = slot_for(when_ms, level);
        let sentinel = self.slot_sentinel(level, slot, lane);
        self.link_tail(sentinel, idx);
        self.occupied[level].set(slot);
    }

    /// Removes `idx` from the wheel if it is in it. O(1). Returns whether it was.
    pub fn cancel(&mut self, idx: u32) -> bool {
        assert!(idx < self.capacity, "monitor index {idx} out of range");
        if !self.contains(idx) {
            return false;
        }
        self.unlink(idx);
        self.len -= 1;
        true
    }

    fn link_tail(&mut self, sentinel: u32, idx: u32) {
        let tail = self.nodes[sentinel as usize].prev;
        self.nodes[idx as usize].prev = tail;
        self.nodes[idx as usize].next = sentinel;
        self.nodes[tail as usize].next = idx;
        self.nodes[sentinel as usize].prev = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let Node { next, prev, .. } = self.nodes[idx as usize];
        debug_assert!(next != UNLINKED && prev != UNLINKED);
        self.nodes[prev as usize].next = next;
        self.nodes[next as usize].prev = prev;
        self.nodes[idx as usize].next = UNLINKED;
        self.nodes[idx as usize].prev = UNLINKED;
        // A list became empty (only its sentinel is left, pointing at itself): if it was a
        // slot's last non-empty lane, the slot is free.
        if next == prev
            && next >= self.capacity
            && ((next - self.capacity) as usize) < SLOT_SENTINELS
        {
            let slot_id = (next - self.capacity) as usize / LANES;
            let (level, slot) = if slot_id < LEVEL0_SLOTS {
                (0, slot_id)
            } else {
                (1 + (slot_id - LEVEL0_SLOTS) / SLOTS, (slot_id - LEVEL0_SLOTS) % SLOTS)
            };
            if (0..LANES).all(|lane| self.list_is_empty(self.slot_sentinel(level, slot, lane))) {
                self.occupied[level].clear(slot);
            }
        }
    }

    /// The earliest non-empty slot over all levels: (level, slot, the time it starts).
    ///
    /// Level 0 is a rolling window (see `level_for`), so its earliest slot may lie in the next
    /// rotation, after a level-1 slot that must cascade first: take the minimum over levels.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        let mut earliest: Option<(usize, usize, u64)> = None;
        for level in 0..LEVELS {
            let shift = LEVEL_BITS * level as u32;
            let slots = level_slots(level);
            let pos = ((self.elapsed_ms >> shift) as usize) % slots;
            let Some(slot) = self.occupied[level].next_at_or_after(pos) else {
                continue;
            };
            let slot_range_ms = 1u64 << shift;
            let level_range_ms = slot_range_ms * slots as u64;
            let level_start_ms = self.elapsed_ms & !(level_range_ms - 1);
            let mut deadline_ms = level_start_ms + slot as u64 * slot_range_ms;
            // A slot behind `elapsed` belongs to the next rotation: level 0's slots behind
            // its position hold the next 8192 ms; only the top level otherwise wraps. Level
            // 0's own slot at `pos` is due now (`deadline == elapsed`), not a rotation away.
            let behind = if level == 0 {
                deadline_ms < self.elapsed_ms
            } else {
                deadline_ms <= self.elapsed_ms
            };
            if behind {
                debug_assert!(level == 0 || level == LEVELS - 1);
                deadline_ms += level_range_ms;
            }
            // On a tie the higher level wins: its slot must cascade before `elapsed` reaches
            // its start through a level-0 splice, or it would look a rotation away.
            if earliest.is_none_or(|(_, _, best_ms)| deadline_ms <= best_ms) {
                earliest = Some((level, slot, deadline_ms));
            }
        }
        earliest
    }

    /// When the wheel next has something due: `Some(t)` with `t <= elapsed` if monitors are
    /// due now, else the start of the earliest occupied slot (possibly a higher-level slot
    /// that will cascade), `None` when empty. An idle shard sleeps until then.
    pub fn next_due_ms(&self) -> Option<u64> {
        if !self.due_is_empty() {
            return Some(self.elapsed_ms);
        }
        self.next_expiration().map(|(_, _, t)| t)
    }

    /// A monitor that `poll` will return soon (see `successor`), for prefetching.
    pub fn upcoming(&self) -> Option<u32> {
        (self.successor != UNLINKED).then_some(self.successor)
    }

    /// Entries cascaded all at once when time reached their slot, since the wheel was made.
    pub fn cascaded_at_once(&self) -> u64 {
        self.cascaded_at_once
    }

    /// Whether some monitor is due at `now_ms`.
    pub fn has_due(&self, now_ms: u64) -> bool {
        self.next_due_ms().is_some_and(|t| t <= now_ms)
    }

    /// Removes and returns one monitor whose expiry is `<= now_ms`, earliest slot first.
    /// Amortised O(1): each entry cascades at most `LEVELS - 1` times.
    pub fn poll(&mut self, now_ms: u64) -> Option<u32> {
        loop {
            for i in 0..LANES {
                let lane = (self.next_lane + i) % LANES;
                let due = self.due_sentinel(lane);
                let head = self.nodes[due as usize].next;
                if head != due {
                    let next = self.nodes[head as usize].next;
                    self.successor = if next < self.capacity { next } else { UNLINKED };
                    self.unlink(head);
                    self.len -= 1;
                    self.next_lane = (lane + 1) % LANES;
                    return Some(head);
                }
            }
            let Some((level, slot, deadline_ms)) = self.next_expiration() else {
                self.elapsed_ms = self.elapsed_ms.max(now_ms);
                return None;
            };
            if deadline_ms > now_ms {
                // Nothing expires before `deadline_ms`, so time may jump to `now_ms`.
                self.elapsed_ms = self.elapsed_ms.max(now_ms);
                self.drain_next_page(EARLY_CASCADE_PER_POLL);
                return None;
            }
            self.elapsed_ms = deadline_ms;
            self.occupied[level].clear(slot);
            if level == 0 {
                self.splice_into_due(slot);
            } else {
                self.cascade(level, slot);
            }
        }
    }

    /// Moves a whole level-0 slot (one millisecond) onto the empty due lists in O(1).
    fn splice_into_due(&mut self, slot: usize) {
        for lane in 0..LANES {
            let sentinel = self.slot_sentinel(0, slot, lane);
            if self.list_is_empty(sentinel) {
                continue;
            }
            let due = self.due_sentinel(lane);
            debug_assert!(self.list_is_empty(due));
            let Node { next: first, prev: last, .. } = self.nodes[sentinel as usize];
            self.nodes[due as usize].next = first;
            self.nodes[due as usize].prev = last;
            self.nodes[first as usize].prev = due;
            self.nodes[last as usize].next = due;
            self.nodes[sentinel as usize].next = sentinel;
            self.nodes[sentinel as usize].prev = sentinel;
        }
    }

    /// Moves up to `budget` entries of the next page's level-1 slot into level 0, where the
    /// rolling two-page window has room for them (they expire within 8192 ms of now). Done a
    /// little at every poll round, this spreads over the page before what a cascade at the
    /// page's start would do in one stall (measured: 1 M monitors at a 10 s interval moved
    /// ~200 k entries per shard at once every 4.096 s, a 10-25 ms stall).
    fn drain_next_page(&mut self, budget: usize) {
        let page_ms = SLOTS as u64;
        let next_page_ms = (self.elapsed_ms / page_ms + 1) * page_ms;
        // Across a level-2 boundary the next page's entries wait in level 2 (placement by
        // the highest differing bit), and cascade when time reaches them: once in 4.66 h.
        if (next_page_ms ^ self.elapsed_ms) >> (2 * LEVEL_BITS) != 0 {
            return;
        }
        let slot = slot_for(next_page_ms, 1);
        if !self.occupied[1].is_set(slot) {
            return;
        }
        let mut moved = 0;
        'drain: while moved < budget {
            let mut any = false;
            for lane in 0..LANES {
                let Some(idx) = self.take_head(self.slot_sentinel(1, slot, lane)) else {
                    continue;
                };
                let when_ms = self.nodes[idx as usize].when_ms;
                debug_assert!(when_ms >= next_page_ms && when_ms < next_page_ms + page_ms);
                debug_assert_eq!(level_for(self.elapsed_ms, when_ms), 0);
                self.place(idx);
                any = true;
                moved += 1;
            }
            if !any {
                break 'drain;
            }
        }
        if (0..LANES).all(|lane| self.list_is_empty(self.slot_sentinel(1, slot, lane))) {
            self.occupied[1].clear(slot);
        }
    }

    /// Unlinks the first entry of the list at `sentinel`, without the occupancy bookkeeping
    /// (callers moving a slot's entries clear its bit themselves). `place` relinks it.
    fn take_head(&mut self, sentinel: u32) -> Option<u32> {
        let idx = self.nodes[sentinel as usize].next;
        if idx == sentinel {
            return None;
        }
        let next = self.nodes[idx as usize].next;
        self.nodes[sentinel as usize].next = next;
        self.nodes[next as usize].prev = sentinel;
        Some(idx)
    }

    /// Re-places every entry of a higher-level slot relative to the new `elapsed_ms`, one
    /// entry per lane in turn.
    fn cascade(&mut self, level: usize, slot: usize) {
        loop {
            let mut moved = false;
            for lane in 0..LANES {
                // The slot's bit is already clear, and `place` sets bits of the (lower-level)
                // slots it fills.
                let Some(idx) = self.take_head(self.slot_sentinel(level, slot, lane)) else {
                    continue;
                };
                debug_assert!(self.nodes[idx as usize].when_ms >= self.elapsed_ms);
                self.place(idx);
                self.cascaded_at_once += 1;
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }
}

/// Which of a level's slots hold entries: up to 128 words and a summary word whose bit `w`
/// says word `w` is non-zero (levels above 0 use the first 64 words only).
#[derive(Clone, Copy)]
struct Occupancy {
    words: [u64; OCCUPANCY_WORDS],
    summary: u128,
}

const OCCUPANCY_WORDS: usize = 128;
const _: () = assert!(LEVEL0_SLOTS == OCCUPANCY_WORDS * 64 && SLOTS <= LEVEL0_SLOTS);

impl Occupancy {
    const EMPTY: Occupancy = Occupancy { words: [0; OCCUPANCY_WORDS], summary: 0 };

    fn is_set(&self, slot: usize) -> bool {
        self.words[slot / 64] & (1 << (slot % 64)) != 0
    }

    fn set(&mut self, slot: usize) {
        self.words[slot / 64] |= 1 << (slot % 64);
        self.summary |= 1u128 << (slot / 64);
    }

    fn clear(&mut self, slot: usize) {
        let w = slot / 64;
        self.words[w] &= !(1 << (slot % 64));
        if self.words[w] == 0 {
            self.summary &= !(1u128 << w);
        }
    }

    /// The first occupied slot at or after `pos`, wrapping around.
    fn next_at_or_after(&self, pos: usize) -> Option<usize> {
        if self.summary == 0 {
            return None;
        }
        let (w, b) = (pos / 64, pos % 64);
        let here = self.words[w] & (!0u64 << b);
        if here != 0 {
            return Some(w * 64 + here.trailing_zeros() as usize);
        }
        let later = if w == OCCUPANCY_WORDS - 1 { 0 } else { self.summary & (!0u128 << (w + 1)) };
        // Nothing after `pos`: wrap to the lowest occupied word (possibly `w`, below `b`).
        let w2 = if later != 0 { later.trailing_zeros() } else { self.summary.trailing_zeros() }
            as usize;
        debug_assert!(self.words[w2] != 0);
        Some(w2 * 64 + self.words[w2].trailing_zeros() as usize)
    }
}

/// The level an expiry belongs to. Less than `LEVEL0_SLOTS` ms ahead: level 0, a rolling
/// window whose slots behind the current position hold the next rotation. This is what keeps the
/// on-time path free of cascades: with placement by the highest differing bit alone, every
/// expiry that crossed a 4096 ms boundary went to level 1, and at each boundary a quarter of
/// a 1 s fleet (250k monitors per million) cascaded at once: one cache miss each, a stall of
/// 10-40 ms every 4 s that made the scheduler's p99 lateness. Further ahead: the level of the
/// highest bit in which it differs from `elapsed`.
fn level_for(elapsed_ms: u64, when_ms: u64) -> usize {
    if when_ms.saturating_sub(elapsed_ms) < LEVEL0_SLOTS as u64 {
        return 0;
    }
    let masked = (elapsed_ms ^ when_ms) | (SLOTS as u64 - 1);
    let masked = masked.min(MAX_SPAN_MS - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / LEVEL_BITS) as usize
}

fn slot_for(when_ms: u64, level: usize) -> usize {
    ((when_ms >> (LEVEL_BITS * level as u32)) as usize) % level_slots(level)
}

/// Slots in `level`.
const fn level_slots(level: usize) -> usize {
    if level == 0 {
        LEVEL0_SLOTS
    } else {
        SLOTS
    }
}

/// The index of `level`'s first slot among all levels' slots.
const fn level_base(level: usize) -> usize {
    if level == 0 {
        0
    } else {
        LEVEL0_SLOTS + (level - 1) * SLOTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Polls every millisecond from the wheel's time to `until_ms` and returns (idx, fired_at).
    fn run_ms_by_ms(wheel: &mut Wheel, until_ms: u64) -> Vec<(u32, u64)> {
        let mut fired = Vec::new();
        let mut now = wheel.elapsed_ms();
        while now <= until_ms {
            while let Some(idx) = wheel.poll(now) {
                fired.push((idx, now));
            }
            now += 1;
        }
        fired
    }

    #[test]
    fn expiries_under_8192_ms_ahead_stay_in_level_0_across_a_page_boundary() {
        // A 1 s monitor whose next slot crosses a 4096 ms page must not go to level 1: that
        // is what made a quarter of a 1 s fleet cascade at once at every page boundary.
        assert_eq!(level_for(4_000, 5_000), 0);
        assert_eq!(level_for(8_191, 8_192 + 4_000), 0);
        assert_eq!(level_for(4_000, 4_000 + 4_096), 0);
        assert_eq!(level_for(4_000, 4_000 + 8_192), 1);
        assert_eq!(level_for(0, 1 << 24), 2);
        let mut wheel = Wheel::new(1, 4_000);
        wheel.insert(0, 5_000);
        assert!(wheel.occupied[0].summary != 0 && wheel.occupied[1].summary == 0);
        assert_eq!(wheel.next_due_ms(), Some(5_000));
        assert_eq!(wheel.poll(4_999), None);
        assert_eq!(wheel.poll(5_000), Some(0));
    }

    #[test]
    fn occupancy_finds_the_next_slot_wrapping() {
        let mut o = Occupancy::EMPTY;
        assert_eq!(o.next_at_or_after(5), None);
        o.set(70);
        o.set(4_000);
        assert_eq!(o.next_at_or_after(0), Some(70));
        assert_eq!(o.next_at_or_after(70), Some(70));
        assert_eq!(o.next_at_or_after(71), Some(4_000));
        assert_eq!(o.next_at_or_after(4_001), Some(70));
        o.set(4_095);
        assert_eq!(o.next_at_or_after(4_001), Some(4_095));
        o.clear(70);
        o.clear(4_000);
        assert_eq!(o.next_at_or_after(0), Some(4_095));
        o.clear(4_095);
        assert_eq!(o.next_at_or_after(0), None);
        // Level 0's second page.
        o.set(8_000);
        o.set(5);
        assert_eq!(o.next_at_or_after(6), Some(8_000));
        assert_eq!(o.next_at_or_after(8_001), Some(5));
        assert!(o.is_set(8_000) && !o.is_set(7_999));
    }

    #[test]
    fn a_10_s_fleet_polled_every_ms_moves_pages_down_ahead_of_time() {
        // 3000 monitors every 10 s: each 4096 ms page of level 1 holds ~1200 of them. They
        // must move to level 0 during the page before (bounded work per poll), never all at
        // once when time reaches the page, and still fire exactly on time.
        let (n, interval) = (3_000u32, 10_000u64);
        let mut wheel = Wheel::new(n, 0);
        let mut next: Vec<u64> = (0..n as u64).map(|i| 1 + (i * 7_919) % interval).collect();
        for (i, &t) in next.iter().enumerate() {
            wheel.insert(i as u32, t);
        }
        let mut at_once_after_warm_up = None;
        for now in 0..=120_000u64 {
            while let Some(idx) = wheel.poll(now) {
                let i = idx as usize;
                assert_eq!(now, next[i], "monitor {i} fired at the wrong ms");
                next[i] += interval;
                wheel.insert(idx, next[i]);
            }
            if now == 2 * interval {
                at_once_after_warm_up = Some(wheel.cascaded_at_once());
            }
        }
        assert!(next.iter().all(|&t| t > 120_000), "a monitor missed its slot");
        assert_eq!(Some(wheel.cascaded_at_once()), at_once_after_warm_up);
    }

    #[test]
    fn fires_each_entry_exactly_at_its_millisecond() {
        let mut wheel = Wheel::new(10, 0);
        let whens = [1u64, 2, 63, 64, 65, 4_095, 4_096, 300_000, 16_777_216, 16_777_217];
        for (i, &w) in whens.iter().enumerate() {
            wheel.insert(i as u32, w);
        }
        let fired = run_ms_by_ms(&mut wheel, 16_777_218);
        assert_eq!(fired.len(), whens.len());
        for (idx, at) in fired {
            assert_eq!(at, whens[idx as usize], "monitor {idx}");
        }
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_due_ms(), None);
    }

    #[test]
    fn a_day_long_interval_fires_on_time_after_big_jumps() {
        let day_ms = 24 * 3600 * 1000;
        let mut wheel = Wheel::new(2, 5);
        wheel.insert(0, 5 + day_ms);
        wheel.insert(1, 5 + 31 * day_ms);
        assert_eq!(wheel.poll(5 + day_ms - 1), None);
        // The idle shard learns when to wake; following those hints never overshoots.
        let mut now = 5 + day_ms - 1;
        let mut fired = Vec::new();
        while let Some(t) = wheel.next_due_ms() {
            now = now.max(t);
            while let Some(idx) = wheel.poll(now) {
                fired.push((idx, now));
            }
        }
        assert_eq!(fired, vec![(0, 5 + day_ms), (1, 5 + 31 * day_ms)]);
    }

    #[test]
    fn cancel_removes_and_clears_the_slot() {
        let mut wheel = Wheel::new(3, 0);
        wheel.insert(0, 10);
        wheel.insert(1, 10);
        wheel.insert(2, 5_000);
        assert!(wheel.cancel(0));
        assert!(!wheel.cancel(0));
        assert!(wheel.cancel(2));
        assert_eq!(wheel.next_due_ms(), Some(10));
        assert!(wheel.cancel(1));
        assert_eq!(wheel.next_due_ms(), None);
        assert_eq!(wheel.len(), 0);
        assert_eq!(run_ms_by_ms(&mut wheel, 6_000), vec![]);
    }

    #[test]
    fn late_poll_returns_everything_overdue_in_slot_order() {
        let mut wheel = Wheel::new(4, 0);
        wheel.insert(0, 900);
        wheel.insert(1, 3);
        wheel.insert(2, 70);
        wheel.insert(3, 2_000);
        let mut got = Vec::new();
        while let Some(idx) = wheel.poll(1_000) {
            got.push(idx);
        }
        assert_eq!(got, vec![1, 2, 0]);
        assert_eq!(wheel.elapsed_ms(), 1_000);
        // Inserting at or before elapsed is due at once.
        wheel.insert(0, 1_000);
        assert_eq!(wheel.poll(1_000), Some(0));
    }

    /// Polls at irregular steps (a busy shard) until `end_ms`; checks each entry fires once,
    /// never early, and only if not cancelled.
    fn check_fires_once_never_early(
        whens: &[u64],
        cancel_every: usize,
        end_ms: u64,
        max_step_ms: u64,
    ) {
        let mut wheel = Wheel::new(whens.len() as u32, 0);
        for (i, &w) in whens.iter().enumerate() {
            wheel.insert(i as u32, w);
        }
        let mut cancelled = vec![false; whens.len()];
        for i in (0..whens.len()).step_by(cancel_every) {
            assert!(wheel.cancel(i as u32));
            cancelled[i] = true;
        }
        let mut fired = vec![None; whens.len()];
        let mut now = 0u64;
        while now <= end_ms {
            while let Some(idx) = wheel.poll(now) {
                assert!(fired[idx as usize].is_none(), "fired twice");
                fired[idx as usize] = Some(now);
            }
            if now == end_ms {
                break;
            }
            now = (now + 1 + (now.wrapping_mul(0x9e37_79b9) % max_step_ms)).min(end_ms);
        }
        for i in 0..whens.len() {
            match fired[i] {
                Some(at) => assert!(!cancelled[i] && at >= whens[i]),
                None => assert!(cancelled[i], "monitor {i} (due {}) never fired", whens[i]),
            }
        }
        assert!(wheel.is_empty());
    }

    /// Monitors with `intervals`, first due at spread phases, put back at `slot + interval`
    /// each time they fire, polled every ms up to `end_ms`: every slot fires exactly on time.
    fn check_periodic_polled_every_ms(
        intervals: &[u64],
        end_ms: u64,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut wheel = Wheel::new(intervals.len() as u32, 0);
        let mut next: Vec<u64> =
            intervals.iter().enumerate().map(|(i, &iv)| 1 + (i as u64 * 7919) % iv).collect();
        for (i, &t) in next.iter().enumerate() {
            wheel.insert(i as u32, t);
        }
        for now in 0..=end_ms {
            while let Some(idx) = wheel.poll(now) {
                let i = idx as usize;
                prop_assert_eq!(now, next[i], "monitor {} fired at the wrong ms", i);
                next[i] += intervals[i];
                wheel.insert(idx, next[i]);
            }
        }
        for (i, &t) in next.iter().enumerate() {
            prop_assert!(t > end_ms, "monitor {} missed its slot at {}", i, t);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn every_entry_fires_once_never_early(
            whens in proptest::collection::vec(0u64..20_000, 1..200),
            cancel_every in 2usize..9,
        ) {
            check_fires_once_never_early(&whens, cancel_every, 20_100, 37);
        }

        #[test]
        fn long_expiries_cascade_through_every_level(
            whens in proptest::collection::vec(0u64..1 << 27, 1..200),
            cancel_every in 2usize..9,
        ) {
            check_fires_once_never_early(&whens, cancel_every, (1 << 27) + 1, 1 << 16);
        }

        /// The scheduler's own pattern: each monitor is put back at `slot + interval` when it
        /// fires, so entries are inserted at every point of a rotation (level 0's slots behind
        /// the current position hold the next rotation).
        #[test]
        fn periodic_reinsertion_fires_every_slot_exactly_on_time(
            intervals in proptest::collection::vec(1u64..9_000, 1..48),
        ) {
            check_periodic_polled_every_ms(&intervals, 30_000)?;
        }

        /// Periodic re-insertion across every level, polled at uneven steps: each slot fires
        /// at the first poll at or after it, never early and never skipped.
        #[test]
        fn periodic_reinsertion_with_uneven_polls_fires_at_the_first_poll_after(
            intervals in proptest::collection::vec(1u64..(1 << 25), 1..48),
            steps in proptest::collection::vec(1u64..70_000, 64..256),
        ) {
            let mut wheel = Wheel::new(intervals.len() as u32, 0);
            let mut next: Vec<u64> =
                intervals.iter().enumerate().map(|(i, &iv)| 1 + (i as u64 * 7919) % iv).collect();
            for (i, &t) in next.iter().enumerate() {
                wheel.insert(i as u32, t);
            }
            let (mut prev_ms, mut now) = (0u64, 0u64);
            for step in steps.iter().cycle().take(2_000) {
                now += step * (1 + now % 97);
                while let Some(idx) = wheel.poll(now) {
                    let i = idx as usize;
                    prop_assert!(next[i] <= now && next[i] > prev_ms, "monitor {} due {} fired at {} (previous poll {})", i, next[i], now, prev_ms);
                    next[i] += intervals[i];
                    wheel.insert(idx, next[i]);
                }
                for (i, &t) in next.iter().enumerate() {
                    prop_assert!(t > now, "monitor {} due {} not fired by {}", i, t, now);
                }
                prev_ms = now;
            }
        }

        #[test]
        fn polled_every_ms_fires_exactly_on_time(
            whens in proptest::collection::vec(1u64..10_000, 1..100),
        ) {
            let mut wheel = Wheel::new(whens.len() as u32, 0);
            for (i, &w) in whens.iter().enumerate() {
                wheel.insert(i as u32, w);
            }
            for (idx, at) in run_ms_by_ms(&mut wheel, 10_000) {
                prop_assert_eq!(at, whens[idx as usize]);
            }
        }
    }

    proptest! {
        // Each case polls 90 000 times: fewer cases keep the suite quick in debug builds.
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Intervals longer than level 0's window, re-inserted when they fire and polled
        /// every ms: pages drain into level 0 ahead of time and every slot fires exactly.
        #[test]
        fn periodic_reinsertion_past_level_0_fires_every_slot_exactly_on_time(
            intervals in proptest::collection::vec(1u64..40_000, 1..64),
        ) {
            check_periodic_polled_every_ms(&intervals, 90_000)?;
        }
    }
}
