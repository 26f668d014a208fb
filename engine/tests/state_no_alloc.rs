//! `transition` must not allocate: it runs for every check on the shard's hot path. A
//! counting global allocator (this test binary only) watches the calling thread while a long
//! run of events of every kind goes through it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cpra_engine::colour::ColourSet;
use cpra_engine::state::{transition, Event, MonitorState, Policy};
use cpra_net::{FailureKind, Warning};

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards its arguments unchanged to the system allocator, which keeps
// GlobalAlloc's contract; the counting around it only touches thread-locals (`try_with`, so it
// neither allocates nor panics while a thread is torn down).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the thread-locals may be gone while a thread is torn down.
        let _ = WATCHING.try_with(|w| {
            if w.get() {
                let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
            }
        });
        // SAFETY: our caller keeps `alloc`'s contract (non-zero size); passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from `System`, with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn transition_never_allocates() {
    let policies = [
        Policy { unhealthy: 1, healthy: 1, has_intervention: true, ..Policy::default() },
        Policy { unhealthy: 3, healthy: 2, ..Policy::default() },
        Policy { green_bypasses_cooldown: false, dispatch: ColourSet::ALL, ..Policy::default() },
    ];
    // A fixed script that visits every rule: failures to the threshold, interventions that
    // succeed, fail and are unknown, verification, warnings, maintenance, disable, config
    // change, removal; times spread over hours so cooldowns delay, coalesce and rebase.
    let script: Vec<u8> =
        (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    let mut total_effects = 0usize;

    WATCHING.with(|w| w.set(true));
    for policy in &policies {
        let mut state = MonitorState::new();
        let mut now_ms = 1_700_000_000_000u64;
        for &b in &script {
            now_ms += u64::from(b) * 1_337;
            let event = match b % 16 {
                0..=4 => Event::CheckFailed {
                    generation: state.begin_check(state.generation().next()),
                    kind: FailureKind::ConnectRefused,
                },
                5..=8 => Event::CheckSucceeded {
                    generation: state.begin_check(state.generation().next()),
                    warning: None,
                },
                9 => Event::CheckSucceeded {
                    generation: state.begin_check(state.generation().next()),
                    warning: Some(Warning::CertificateExpiring { days_left: 5 }),
                },
                10 => Event::InterventionSucceeded,
                11 => Event::InterventionFailed,
                12 => Event::InterventionUnknown,
                13 if b & 0x40 != 0 => Event::MaintenanceStarted,
                13 => Event::MaintenanceEnded,
                14 if b & 0x40 != 0 => Event::Disabled,
                14 => Event::Enabled,
                _ => Event::ConfigChanged,
            };
            total_effects += transition(&mut state, policy, event, now_ms).len();
        }
        total_effects += transition(&mut state, policy, Event::Removed, now_ms).len();
    }
    WATCHING.with(|w| w.set(false));

    let allocations = ALLOCATIONS.with(Cell::get);
    assert_eq!(allocations, 0, "transition allocated {allocations} times");
    assert!(total_effects > 100, "the script must exercise the machine: {total_effects}");
}
