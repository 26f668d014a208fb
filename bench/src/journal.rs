//! `cpra-bench journal`: what the journal costs and how fast it recovers.
//!
//! Measures, on a generated fleet: the bytes one incident writes (yellow, red and green to one
//! endpoint, each delivered: the records `Monitors` appends for it, through the real state
//! machine and the real framing), and the time `store::recover` takes to read, route and
//! checkpoint a data dir holding `--incidents` open incidents among `--monitors` monitors
//! (the goal: 1M monitors with 100k open incidents under 1 s, data dir under 64 MiB).
//! `--mode onoff` (also in `all`, the default) compares checks per second of the real engine
//! with the journal off and on, on a fleet where 1% of monitors flap (`journal_onoff`).

use std::fs;
use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use clap::{Args, ValueEnum};
use cpra_engine::colour::Colour;
use cpra_engine::manifest::gen::{write_manifest, GenOptions};
use cpra_engine::manifest::{load_path, LoadOptions};
use cpra_engine::plan::Plan;
use cpra_engine::runtime::shard_of;
use cpra_engine::state::{transition, Effect, Event, MonitorState, Policy};
use cpra_engine::store::{
    config_check, encode, recover, segment_path, DataDir, Fsync, Record, SavedAlert, SavedControl,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Bytes per incident, recovery time and data dir size.
    Recovery,
    /// Checks per second, journal off vs on, 1% of monitors flapping.
    Onoff,
    /// Both.
    All,
}

#[derive(Args)]
pub struct JournalArgs {
    #[arg(long, value_enum, default_value = "all")]
    pub mode: Mode,
    /// On/off: monitors in the loopback fleet (1% flap).
    #[arg(long, default_value_t = 2_000)]
    pub onoff_monitors: usize,
    /// On/off: each monitor's interval, short enough that the shards are the limit.
    #[arg(long, default_value_t = 20)]
    pub onoff_interval_ms: u64,
    /// On/off: shards of the engine under test.
    #[arg(long, default_value_t = 1)]
    pub onoff_shards: usize,
    /// On/off: rounds (each one run off and one on, order alternating).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// On/off: seconds each run is counted (after a 1 s warm-up).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    #[arg(long, default_value_t = 1_000_000)]
    pub monitors: u64,
    #[arg(long, default_value_t = 100_000)]
    pub incidents: u64,
    /// The shards the data dir was written by (recovery reads them all).
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
}

/// The records one transition appends, as `Monitors::apply` and `queue_durably` do, plus the
/// delivered record of each alert.
fn journal_transition(
    id: &str,
    config: u32,
    state: &mut MonitorState,
    policy: &Policy,
    event: Event,
    next_alert: &mut u64,
    out: &mut Vec<u8>,
) {
    // As `Monitors::apply`: the saved state with its cooldowns, as Unix ms.
    let before = state.saved_at(1_000, 1_780_000_000_000);
    let effects = transition(state, policy, event, 1_000);
    let after = state.saved_at(1_000, 1_780_000_000_000);
    if before != after {
        encode(&Record::MonitorState { monitor: id.into(), config, state: after }, out).unwrap();
    }
    for e in &effects {
        match *e {
            Effect::IncidentOpened { incident_seq } => encode(
                &Record::IncidentOpened {
                    monitor: id.into(),
                    incident_seq,
                    at_unix_ms: 1_780_000_000_000,
                    colour: Colour::Red,
                },
                out,
            )
            .unwrap(),
            Effect::IncidentClosed { incident_seq, .. } => encode(
                &Record::IncidentClosed {
                    monitor: id.into(),
                    incident_seq,
                    at_unix_ms: 1_780_000_000_000,
                    colour: Some(Colour::Green),
                },
                out,
            )
            .unwrap(),
            Effect::Alert { colour, reason, incident_seq, .. } => {
                *next_alert += 1;
                let alert = SavedAlert {
                    id: *next_alert,
                    monitor: id.into(),
                    endpoint: 0,
                    endpoint_check: 0,
                    colour,
                    reason,
                    incident_seq,
                    summary: "2 consecutive failures: connection refused (127.0.0.1:8080)".into(),
                    action: "Check the service and its host.".into(),
                    next_steps: vec!["Look at the service's logs.".into()],
                    not_before_unix_ms: 1_780_000_000_000,
                };
                encode(&Record::AlertQueued(alert), out).unwrap();
                encode(&Record::AlertDelivered { id: *next_alert }, out).unwrap();
            }
            _ => {}
        }
    }
}

fn check(state: &mut MonitorState, ok: bool) -> Event {
    let generation = state.begin_check(state.generation().next());
    if ok {
        Event::CheckSucceeded { generation, warning: None }
    } else {
        Event::CheckFailed { generation, kind: cpra_net::FailureKind::ConnectRefused }
    }
}

pub fn run(args: &JournalArgs) -> i32 {
    let policy = Policy { unhealthy: 2, healthy: 2, ..Policy::default() };
    let work = std::env::temp_dir().join(format!("cpra-bench-journal-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let mut result = Ok(());
    if args.mode != Mode::Onoff {
        result = run_in(args, &policy, &work);
    }
    if result.is_ok() && args.mode != Mode::Recovery {
        let onoff = crate::journal_onoff::OnOff {
            monitors: args.onoff_monitors,
            rounds: args.rounds,
            seconds: args.seconds,
            shards: args.onoff_shards,
            interval_ms: args.onoff_interval_ms,
        };
        result = crate::journal_onoff::run(&onoff, &work).map(|figures| {
            println!("{}", serde_json::json!({ "bench": "journal-onoff", "onoff": figures }));
        });
    }
    let _ = fs::remove_dir_all(&work);
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cpra-bench journal: {e}");
            2
        }
    }
}

fn run_in(args: &JournalArgs, policy: &Policy, work: &std::path::Path) -> Result<(), String> {
    // One incident's bytes: F, F (yellow, red), S, S (green).
    let mut one = Vec::new();
    let mut state = MonitorState::new();
    let mut ids = 0;
    for ok in [false, false, true, true] {
        let event = check(&mut state, ok);
        journal_transition("web-frontend-0042", 1, &mut state, policy, event, &mut ids, &mut one);
    }

    // The fleet.
    let manifest = work.join("fleet.yaml");
    let opts = GenOptions { monitors: args.monitors, ..GenOptions::default() };
    let mut out = BufWriter::new(fs::File::create(&manifest).map_err(|e| e.to_string())?);
    write_manifest(&opts, &mut out).map_err(|e| e.to_string())?;
    drop(out);
    let mut monitors = Vec::new();
    let report = load_path(&manifest, &LoadOptions::default(), |m| monitors.push(m))
        .map_err(|e| e.error.to_string())?;
    let plan = Plan { monitors, registry: report.registry };

    // A data dir as a crash leaves it: per shard, the journal of `incidents` monitors that
    // went down (F, F: open incidents, their yellow and red delivered).
    let data = work.join("data");
    let mut per_shard: Vec<Vec<u8>> = vec![Vec::new(); args.shards];
    for m in plan.monitors.iter().take(args.incidents as usize) {
        let mut state = MonitorState::new();
        let shard = shard_of(m.id_hash(), args.shards);
        let config = config_check(m);
        for _ in 0..2 {
            let event = check(&mut state, false);
            let mut bytes = Vec::new();
            journal_transition(&m.id, config, &mut state, policy, event, &mut ids, &mut bytes);
            per_shard[shard].extend_from_slice(&bytes);
        }
    }
    let written: usize = per_shard.iter().map(Vec::len).sum();
    for (shard, bytes) in per_shard.iter().enumerate() {
        let dir = data.join(format!("shard-{shard}"));
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        fs::write(segment_path(&dir, shard as u64), bytes).map_err(|e| e.to_string())?;
    }

    let started = Instant::now();
    let dir = DataDir::open(&data, args.shards)?;
    let (_recovery, report) = recover(&dir, &plan, args.shards, Fsync::EveryMs(10))?;
    let recover_ms = started.elapsed().as_secs_f64() * 1000.0;
    let after = dir_bytes(&data);
    // A snapshot of one shard holding half the fleet, a tenth of it down.
    let snap_monitors = (args.monitors / 2) as usize;
    let (snapshot_ms, snapshot_bytes) = snapshot_like(snap_monitors, snap_monitors / 10, policy);

    println!(
        "journal: one incident (yellow, red, green, each delivered) writes {} bytes",
        one.len()
    );
    println!(
        "journal: recovered {} monitors with {} open incidents ({} records, {:.1} MiB written) \
         in {recover_ms:.0} ms (goal < 1000 ms); data dir after the checkpoint {:.1} MiB \
         (goal < 64 MiB)",
        args.monitors,
        report.open_incidents,
        report.records,
        written as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64
    );
    println!(
        "journal: a snapshot of a shard of {snap_monitors} monitors ({} down) built in \
         {snapshot_ms:.1} ms ({:.1} MiB), on the shard's thread",
        snap_monitors / 10,
        snapshot_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "journal",
            "snapshot_monitors": snap_monitors,
            "snapshot_ms": snapshot_ms,
            "snapshot_bytes": snapshot_bytes,
            "monitors": args.monitors,
            "open_incidents": report.open_incidents,
            "bytes_per_incident": one.len(),
            "journal_bytes_before": written,
            "recover_ms": recover_ms,
            "data_dir_bytes_after": after,
        })
    );
    Ok(())
}

/// What `Monitors::snapshot` does on the shard's thread, over a shard of `monitors` of which
/// `incidents` are down (an open incident each): every monitor's saved state at now (with its
/// cooldowns as Unix ms), compared with a fresh one, those not fresh encoded, then the control
/// and open-incident records. The same calls in the same loop (the method itself needs a
/// running shard). Returns the milliseconds taken and the bytes it built.
fn snapshot_like(monitors: usize, incidents: usize, policy: &Policy) -> (f64, usize) {
    let ids: Vec<String> = (0..monitors).map(|i| format!("web-frontend-{i:07}")).collect();
    let mut states = vec![MonitorState::new(); monitors];
    for state in states.iter_mut().take(incidents) {
        for _ in 0..2 {
            let event = check(state, false);
            transition(state, policy, event, 1_000);
        }
    }
    let configs = vec![0x1234_5678_u32; monitors];
    let started = Instant::now();
    let fresh = MonitorState::new().saved();
    let mut bytes = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let saved = state.saved_at(2_000, 1_780_000_000_000);
        if saved == fresh {
            continue;
        }
        let record =
            Record::MonitorState { monitor: ids[i].clone(), config: configs[i], state: saved };
        encode(&record, &mut bytes).unwrap();
    }
    for (i, state) in states.iter().enumerate() {
        let mut records = SavedControl::default().records(&ids[i]);
        if state.incident_open() {
            records.push(Record::IncidentOpened {
                monitor: ids[i].clone(),
                incident_seq: state.incident_seq(),
                at_unix_ms: 1_780_000_000_000,
                colour: Colour::Red,
            });
        }
        for record in records {
            encode(&record, &mut bytes).unwrap();
        }
    }
    (started.elapsed().as_secs_f64() * 1000.0, bytes.len())
}

pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { dir_bytes(&entry.path()) } else { meta.len() };
    }
    total
}
