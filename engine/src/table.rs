//! A shard's monitors: compact hot scheduling data by index, cold config by reference.
//!
//! What it is for: the per-monitor data the shard touches on every check, kept small so a
//! million monitors stay in a few tens of MiB. The budget is 64 bytes per monitor
//! (`HOT_BYTES_PER_MONITOR`, asserted in a test): 16 in the wheel's links and expiry, 16 in
//! `Sched` here, and 32 reserved for the state machine's hot state, which the result handler
//! owns (`STATE_RESERVED_BYTES`). The data is struct-of-arrays by access group: fields that
//! every check reads and writes together share one 16-byte record (one cache line touched,
//! not four), and each group is its own array. Cold config (URLs, headers, codes) lives
//! elsewhere, interned by the loader, and is reached through `cold`.
//! What it is not for: deciding slots (`schedule`) or holding the monitor state itself.

use crate::limits::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
use crate::wheel;

/// What the runtime needs to know of a monitor: the seam between the manifest loader and the
/// shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorSpec {
    /// A stable hash of the monitor's id: routes it to shard `id_hash % shards` and sets the
    /// phase of its first check (`id_hash % interval_ms`).
    pub id_hash: u64,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    /// Disabled monitors are loaded and kept, never scheduled.
    pub enabled: bool,
    /// The index of the monitor's cold config, handed back to probes and result handlers in
    /// every `Job` (e.g. the monitor's position in the manifest).
    pub cold: u32,
}

/// Bytes per monitor reserved for the state machine's hot state (counters in u16, flags in a
/// bit set, generation, cooldown stamps), held by the result handler.
pub const STATE_RESERVED_BYTES: usize = 32;

/// The hot bytes per monitor: wheel node + scheduling record + the state reserve.
pub const HOT_BYTES_PER_MONITOR: usize =
    wheel::BYTES_PER_ENTRY + std::mem::size_of::<Sched>() + STATE_RESERVED_BYTES;

// The budget: at most 64 hot bytes per monitor, so 10M monitors fit in 640 MB.
const _: () = assert!(HOT_BYTES_PER_MONITOR <= 64);

/// The per-check scheduling record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sched {
    /// 0 marks a disabled monitor (never scheduled); otherwise in
    /// `MIN_INTERVAL_MS..=MAX_INTERVAL_MS`.
    pub interval_ms: u32,
    pub timeout_ms: u32,
    /// The generation of the last check started.
    pub generation: u32,
    pub cold: u32,
}

/// Why a spec was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableError {
    Interval { cold: u32, interval_ms: u32 },
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::Interval { cold, interval_ms } => write!(
                f,
                "monitor #{cold}: interval {interval_ms} ms is outside {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} ms"
            ),
        }
    }
}

impl std::error::Error for TableError {}

/// `Sched::cold` of a slot whose monitor a reload removed: the slot is free (or freed as
/// soon as the check in flight on it ends) and taken again by the next monitor added.
pub const REMOVED: u32 = u32::MAX;

/// The scheduling records of one shard's monitors, by shard-local index.
pub struct Table {
    sched: Vec<Sched>,
    /// Slots free for reuse (removed, nothing in flight on them): a reload that removes as many
    /// monitors as it adds leaves the table the size it was.
    free: Vec<u32>,
    /// Slots holding a monitor (kept, not counted, so asserting it costs nothing).
    live: usize,
}

impl Table {
    pub fn new(specs: &[MonitorSpec]) -> Result<Table, TableError> {
        let mut sched = Vec::with_capacity(specs.len());
        for spec in specs {
            let enabled_interval = if spec.enabled { spec.interval_ms } else { 0 };
            if spec.enabled && !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&spec.interval_ms) {
                return Err(TableError::Interval {
                    cold: spec.cold,
                    interval_ms: spec.interval_ms,
                });
            }
            sched.push(Sched {
                interval_ms: enabled_interval,
                timeout_ms: spec.timeout_ms,
                generation: 0,
                cold: spec.cold,
            });
        }
        let live = sched.len();
        Ok(Table { sched, free: Vec::new(), live })
    }

    /// Checks a spec added at run time the way [`Table::new`] checks one at start.
    pub fn check(spec: &MonitorSpec) -> Result<(), TableError> {
        if spec.enabled && !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&spec.interval_ms) {
            return Err(TableError::Interval { cold: spec.cold, interval_ms: spec.interval_ms });
        }
        Ok(())
    }

    /// Puts `spec` in a free slot, or a new one at the end when none is free; returns the
    /// slot. The generation carries on from the slot's last monitor, so a stale job can never
    /// pass for one of the new monitor's.
    pub fn add(&mut self, spec: &MonitorSpec) -> Result<u32, TableError> {
        Table::check(spec)?;
        let interval_ms = if spec.enabled { spec.interval_ms } else { 0 };
        let slot = match self.free.pop() {
            Some(slot) => {
                assert!(self.is_removed(slot), "free slot {slot} in use");
                slot
            }
            None => {
                self.sched.push(Sched::default());
                (self.sched.len() - 1) as u32
            }
        };
        self.live += 1;
        let sched = &mut self.sched[slot as usize];
        *sched = Sched {
            interval_ms,
            timeout_ms: spec.timeout_ms,
            generation: sched.generation,
            cold: spec.cold,
        };
        Ok(slot)
    }

    /// Marks `monitor`'s slot removed: nothing schedules it again. The slot is reusable once
    /// [`Table::release`] is called (at once, or when its check in flight ends).
    pub fn remove(&mut self, monitor: u32) {
        let sched = &mut self.sched[monitor as usize];
        assert_ne!(sched.cold, REMOVED, "monitor {monitor} removed twice");
        sched.interval_ms = 0;
        sched.cold = REMOVED;
        self.live -= 1;
    }

    /// Whether `monitor`'s slot holds no monitor (removed).
    pub fn is_removed(&self, monitor: u32) -> bool {
        self.sched[monitor as usize].cold == REMOVED
    }

    /// Makes a removed slot reusable.
    pub fn release(&mut self, monitor: u32) {
        assert!(self.is_removed(monitor), "slot {monitor} released while in use");
        // A slot released twice would make free + live exceed the slots.
        assert!(self.live + self.free.len() < self.sched.len(), "slot {monitor} released twice");
        self.free.push(monitor);
    }

    /// Slots holding a monitor.
    pub fn live(&self) -> usize {
        debug_assert!(self.live + self.free.len() <= self.sched.len());
        self.live
    }

    /// Free slots waiting for reuse.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Changes a live monitor's interval, timeout and enabled flag (a reload changed its
    /// config); the generation stays, so its check in flight completes as usual.
    pub fn update(&mut self, monitor: u32, spec: &MonitorSpec) -> Result<(), TableError> {
        Table::check(spec)?;
        let sched = &mut self.sched[monitor as usize];
        assert_ne!(sched.cold, REMOVED, "update of removed slot {monitor}");
        sched.interval_ms = if spec.enabled { spec.interval_ms } else { 0 };
        sched.timeout_ms = spec.timeout_ms;
        sched.cold = spec.cold;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.sched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sched.is_empty()
    }

    pub fn get(&self, monitor: u32) -> &Sched {
        &self.sched[monitor as usize]
    }

    pub fn get_mut(&mut self, monitor: u32) -> &mut Sched {
        &mut self.sched[monitor as usize]
    }

    /// Starts loading `monitor`'s record into the cache (a hint; see `Wheel::upcoming`).
    pub fn prefetch(&self, monitor: u32) {
        if let Some(sched) = self.sched.get(monitor as usize) {
            prefetch_line(sched);
        }
    }

    pub fn is_enabled(&self, monitor: u32) -> bool {
        self.sched[monitor as usize].interval_ms != 0
    }

    /// Stops scheduling a monitor: its in-flight check, if any, completes but is not
    /// rescheduled.
    pub fn disable(&mut self, monitor: u32) {
        self.sched[monitor as usize].interval_ms = 0;
    }

    /// Schedules a monitor again at `interval_ms` (the caller checked its range).
    pub fn enable(&mut self, monitor: u32, interval_ms: u32) {
        debug_assert!((MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms));
        self.sched[monitor as usize].interval_ms = interval_ms;
    }
}

/// Asks the CPU to start loading `value`'s cache line. Hand-written (no crate) because it is
/// one intrinsic on the hottest path.
pub fn prefetch_line<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(
            value as *const T as *const i8,
            std::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_data_fits_64_bytes_per_monitor() {
        assert_eq!(std::mem::size_of::<Sched>(), 16);
        assert_eq!(wheel::BYTES_PER_ENTRY, 16);
        // Checked at compile time too (below `HOT_BYTES_PER_MONITOR`); here it is the figure.
        assert_eq!(HOT_BYTES_PER_MONITOR, 64);
    }

    #[test]
    fn out_of_range_interval_names_the_monitor() {
        let spec =
            MonitorSpec { id_hash: 1, interval_ms: 0, timeout_ms: 5, enabled: true, cold: 42 };
        let err = Table::new(&[spec]).err().unwrap();
        assert_eq!(err.to_string(), "monitor #42: interval 0 ms is outside 1..=2678400000 ms");
        // A disabled monitor is not checked, so its interval does not matter.
        let disabled = MonitorSpec { enabled: false, ..spec };
        assert!(!Table::new(&[disabled]).unwrap().is_enabled(0));
    }
}
