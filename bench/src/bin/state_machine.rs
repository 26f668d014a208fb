//! How much one check result costs in the state machine, next to the floor of touching the
//! same 32 bytes of hot state per monitor.
//!
//! A shard sweeps `--monitors` monitor states (one `MonitorState` each, 32 bytes) for
//! `--rounds` rounds; every monitor gets one check result per round from a fixed
//! pseudo-random script (`--failure-percent` of them failures, a few with a certificate
//! warning). "floor" runs the same sweep over 32-byte structs doing only a counter update, so
//! the ratio says what the state machine adds to the memory traffic a shard pays anyway.
//!
//! Prints a human summary, then one JSON line (last).
//! Run: `cargo run --release -p cpra-bench --bin state_machine -- --monitors 1000000 --rounds 10`

use std::hint::black_box;
use std::time::Instant;

use clap::Parser;
use cpra_engine::state::{transition, Effect, Event, MonitorState, Policy};
use cpra_net::{FailureKind, Warning};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Monitors swept per run, at most: 10 M states are 320 MB, well inside the machine, and a
/// sweep still ends in seconds.
const MAX_MONITORS: usize = 10_000_000;
/// Rounds per run, at most: bounds the run's time.
const MAX_ROUNDS: u32 = 1_000;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    monitors: usize,
    #[arg(long, default_value_t = 10)]
    rounds: u32,
    #[arg(long, default_value_t = 5)]
    failure_percent: u32,
}

/// The floor: 32 bytes per monitor, one counter update per check.
#[derive(Clone, Copy, Default)]
struct Floor {
    failures: u16,
    _rest: [u16; 15],
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn main() {
    cpra_engine::allocator::set_policy();
    let args = Args::parse();
    let monitors = args.monitors.clamp(1, MAX_MONITORS);
    let rounds = args.rounds.clamp(1, MAX_ROUNDS);
    let fail_below = u64::from(args.failure_percent.min(100)) * (u64::MAX / 100);
    let policy = Policy { unhealthy: 2, healthy: 2, has_intervention: false, ..Policy::default() };
    let checks = monitors as u64 * u64::from(rounds);

    // The state machine.
    let mut states = vec![MonitorState::new(); monitors];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut alerts = 0u64;
    let mut now_ms = 1_700_000_000_000u64;
    let start = Instant::now();
    for _ in 0..rounds {
        for state in states.iter_mut() {
            let r = xorshift(&mut rng);
            let generation = state.begin_check(state.generation().next());
            let event = if r < fail_below {
                Event::CheckFailed { generation, kind: FailureKind::Timeout }
            } else {
                let warning =
                    (r & 0xff == 0).then_some(Warning::CertificateExpiring { days_left: 9 });
                Event::CheckSucceeded { generation, warning }
            };
            let fx = transition(state, &policy, event, now_ms);
            alerts += fx.iter().filter(|e| matches!(e, Effect::Alert { .. })).count() as u64;
        }
        now_ms += 30_000;
    }
    let machine_s = start.elapsed().as_secs_f64();
    black_box(&states);

    // The floor.
    let mut floors = vec![Floor::default(); monitors];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let start = Instant::now();
    for _ in 0..rounds {
        for f in floors.iter_mut() {
            let r = xorshift(&mut rng);
            f.failures = if r < fail_below { f.failures.saturating_add(1) } else { 0 };
        }
        black_box(&floors);
    }
    let floor_s = start.elapsed().as_secs_f64();

    let machine_ns = machine_s * 1e9 / checks as f64;
    let floor_ns = floor_s * 1e9 / checks as f64;
    let state_bytes = std::mem::size_of::<MonitorState>();
    println!("state machine: {monitors} monitors x {rounds} rounds = {checks} check results");
    println!(
        "  state per monitor: {state_bytes} bytes ({} MB in all)",
        (state_bytes * monitors) >> 20
    );
    println!(
        "  transition: {machine_ns:.1} ns per check result ({:.1} M/s), {alerts} alerts queued",
        1e3 / machine_ns
    );
    println!("  floor (counter update on 32 bytes): {floor_ns:.1} ns per check result");
    println!("  ratio transition/floor: {:.2}", machine_ns / floor_ns);
    println!(
        "{}",
        serde_json::json!({
            "bench": "state_machine",
            "monitors": monitors,
            "rounds": rounds,
            "checks": checks,
            "failure_percent": args.failure_percent.min(100),
            "state_bytes": state_bytes,
            "alerts": alerts,
            "transition_ns_per_check": machine_ns,
            "floor_ns_per_check": floor_ns,
            "ratio": machine_ns / floor_ns,
        })
    );
}
