//! Recovery at start: read every shard's journal (before the executors take traffic), fold it
//! into each monitor's last state and the alerts not yet delivered, route them by stable
//! monitor id to the shard that owns the monitor now, and checkpoint: write what survives into
//! one new segment per shard, then remove every older segment.
//!
//! Why checkpoint at start: records may sit in the directory of a shard that no longer runs
//! that monitor (a changed `--shards`), or of no shard at all (fewer shards). Writing the live
//! state anew, where it now belongs, makes every directory self-contained again, drops what
//! is dead (closed incidents, delivered alerts, removed monitors) and keeps the data dir from
//! growing with restarts. Old segments are removed only once the new ones are durable, so a
//! crash during recovery loses nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::datadir::DataDir;
use super::frame::encode;
use super::record::{Record, SavedAlert};
use super::segment::{read_segment, segment_numbers, segment_path, segments_in};
use super::Fsync;
use crate::manifest::{Monitor, Notify};
use crate::plan::Plan;
use crate::runtime::shard_of;
use crate::state::{MonitorState, SavedState};

/// Monitor ids named in the "dropped" log line; the rest are counted.
const DROPPED_NAMED: usize = 10;

/// A checksum of a monitor's check config: when it differs from the one in the journal, the
/// monitor keeps its incident but restarts its counts.
pub fn config_check(monitor: &Monitor) -> u32 {
    config_check_in(monitor, &mut String::new())
}

/// [`config_check`] with the text built in `buf`, so a caller checking many monitors (recovery)
/// allocates once. (Feeding each piece `Debug` writes to the checksum as it comes was slower:
/// it writes many tiny pieces.)
fn config_check_in(monitor: &Monitor, buf: &mut String) -> u32 {
    buf.clear();
    // Writing to a String cannot fail.
    let _ = write!(buf, "{:?}", monitor.pulse_check);
    crc32c::crc32c(buf.as_bytes())
}

/// A checksum of an endpoint's config, to tell that an outbox alert's endpoint is still the
/// same one after a restart.
pub fn endpoint_check(endpoint: &Notify) -> u32 {
    crc32c::crc32c(format!("{endpoint:?}").as_bytes())
}

/// What one shard starts from.
#[derive(Debug, Default)]
pub struct ShardStart {
    /// The segment the shard appends to (its checkpoint), and its number.
    pub segment: PathBuf,
    pub segment_number: u64,
    /// Its length (where appends start).
    pub segment_len: u64,
    /// The first outbox id the shard may give a new alert.
    pub next_alert_id: u64,
}

/// What the journal held, routed, for the run about to start.
#[derive(Debug, Default)]
pub struct Recovery {
    /// By stable monitor id: the state to continue from (already adjusted for a changed
    /// check config).
    pub states: HashMap<String, SavedState>,
    /// By stable monitor id: alerts queued and neither delivered nor given up.
    pub outbox: HashMap<String, Vec<SavedAlert>>,
    /// By stable monitor id: what an operator set through the API and what still holds
    /// (a silence not yet over, the acknowledgement of the incident still open).
    pub controls: HashMap<String, SavedControl>,
    /// By stable monitor id: when its open incident opened (number, Unix ms), for the API.
    pub opened_at: HashMap<String, (u32, i64)>,
    /// Per shard of this run.
    pub shards: Vec<ShardStart>,
    pub fsync: Option<u64>,
}

/// An operator's settings on one monitor, as the journal's control records left them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedControl {
    /// `None`: as the manifest says.
    pub disabled: Option<bool>,
    /// 0: not silenced.
    pub silenced_until_unix_ms: i64,
    /// The open incident's number and who acknowledged it.
    pub acked: Option<(u32, String)>,
}

impl SavedControl {
    /// What still holds at `now_unix_ms` when the monitor's open incident is `open`: a
    /// silence until it ends, an acknowledgement while its incident is open. `None`: nothing.
    fn holding(&self, open: Option<u32>, now_unix_ms: i64) -> Option<SavedControl> {
        let mut control = self.clone();
        if control.silenced_until_unix_ms <= now_unix_ms {
            control.silenced_until_unix_ms = 0;
        }
        if control.acked.as_ref().is_some_and(|(seq, _)| Some(*seq) != open) {
            control.acked = None;
        }
        (control != SavedControl::default()).then_some(control)
    }

    /// The records that set it again (the checkpoint's and a snapshot's).
    pub fn records(&self, monitor: &str) -> Vec<Record> {
        let mut records = Vec::new();
        if let Some(disabled) = self.disabled {
            records.push(Record::Disabled { monitor: monitor.to_owned(), disabled });
        }
        if self.silenced_until_unix_ms != 0 {
            let until_unix_ms = self.silenced_until_unix_ms;
            records.push(Record::Silenced { monitor: monitor.to_owned(), until_unix_ms });
        }
        if let Some((incident_seq, by)) = &self.acked {
            let (incident_seq, by) = (*incident_seq, by.clone());
            records.push(Record::Acked { monitor: monitor.to_owned(), incident_seq, by });
        }
        records
    }
}

/// What recovery found, for the log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub records: usize,
    pub monitors: usize,
    pub open_incidents: usize,
    pub alerts: usize,
    pub config_changed: usize,
    /// Monitors with an operator's setting that still holds.
    pub controls: usize,
    pub dropped: Vec<String>,
    pub torn: Vec<String>,
}

/// Reads `dir`, routes what survives to `shards` shards by `plan`, checkpoints it. The error
/// is a sentence for the terminal.
pub fn recover(
    dir: &DataDir,
    plan: &Plan,
    shards: usize,
    fsync: Fsync,
) -> Result<(Recovery, RecoveryReport), String> {
    recover_at(dir, plan, shards, fsync, chrono::Utc::now().timestamp_millis())
}

/// [`recover`] at `now_unix_ms` (the wall clock: silences end at a wall-clock time).
pub fn recover_at(
    dir: &DataDir,
    plan: &Plan,
    shards: usize,
    fsync: Fsync,
    now_unix_ms: i64,
) -> Result<(Recovery, RecoveryReport), String> {
    let started = Instant::now();
    let ctx = |what: &str, path: &Path, e: io::Error| format!("{what} {}: {e}", path.display());
    let dirs = dir.existing_shard_dirs().map_err(|e| ctx("cannot read", dir.path(), e))?;
    let mut report = RecoveryReport::default();
    let mut segments = Vec::new();
    for (_, shard_dir) in &dirs {
        segments.extend(segments_in(shard_dir).map_err(|e| ctx("cannot read", shard_dir, e))?);
    }
    // A monitor's records are in the order its shards wrote them: segment numbers grow
    // across runs and every run starts new ones, so reading in number order orders them.
    segments.sort_by_key(|(n, _)| *n);
    let next_segment = segments.last().map_or(0, |(n, _)| n + 1);

    let mut fold = Fold::default();
    for (_, path) in &segments {
        let torn = read_segment(path, |record| fold.apply(record))
            .map_err(|e| ctx("cannot read", path, e))?;
        if let Some(torn) = torn {
            tracing::warn!("journal: {torn}");
            report.torn.push(torn.to_string());
        }
    }
    report.records = fold.records;

    // Each monitor the journal knows, paired with its monitor in the manifest. One pass over
    // the manifest with look-ups into the (smaller) fold, rather than a map of the whole
    // manifest built for the look-ups the other way.
    for monitor in &plan.monitors {
        if let Some(folded) = fold.monitors.get_mut(monitor.id.as_str()) {
            folded.now = Some(monitor);
        }
    }
    let mut recovery = Recovery {
        fsync: match fsync {
            Fsync::EveryMs(ms) => Some(ms),
            Fsync::Never => None,
        },
        ..Recovery::default()
    };
    // What the checkpoint writes per monitor: its shard now, its config checksum, its state.
    let mut kept: Vec<(&str, usize, u32, SavedState)> = Vec::with_capacity(fold.monitors.len());
    let mut text = String::new();
    for (id, folded) in &fold.monitors {
        let Some(monitor) = folded.now else {
            if folded.max_seq.is_some() || folded.control.is_some() {
                report.dropped.push(id.clone());
            }
            continue;
        };
        let mut open = None;
        if let Some(seq) = folded.max_seq {
            let config = config_check_in(monitor, &mut text);
            let state = match folded.state {
                Some((saved_config, saved)) => {
                    let changed = saved_config != config;
                    report.config_changed += usize::from(changed);
                    let cooldowns_unix_ms = saved.cooldowns_unix_ms;
                    let mut saved = MonitorState::restore(saved, changed).saved();
                    saved.incident_seq = saved.incident_seq.max(seq);
                    // Cooldowns are per colour, not per check config: they continue either way.
                    saved.cooldowns_unix_ms = cooldowns_unix_ms;
                    saved
                }
                None => MonitorState::resume(seq).saved(),
            };
            open = open_incident(&state);
            if let Some(open) = open {
                report.open_incidents += 1;
                // When it opened, for the API, if the journal still says so.
                if let Some(opened) = folded.opened_at.filter(|(s, _)| *s == open) {
                    recovery.opened_at.insert(id.clone(), opened);
                }
            }
            recovery.states.insert(id.clone(), state);
            kept.push((id, shard_of(monitor.id_hash(), shards), config, state));
        }
        if let Some(control) = folded.control.as_ref().and_then(|c| c.holding(open, now_unix_ms)) {
            recovery.controls.insert(id.clone(), control);
        }
    }
    report.controls = recovery.controls.len();
    let mut alerts: Vec<SavedAlert> = fold.outbox.drain().map(|(_, a)| a).collect();
    alerts.sort_by_key(|a| a.id);
    let shard_by_id = |id: &str| {
        let monitor = fold.monitors.get(id)?.now?;
        Some(shard_of(monitor.id_hash(), shards))
    };
    for alert in alerts {
        match shard_by_id(&alert.monitor) {
            Some(_) => recovery.outbox.entry(alert.monitor.clone()).or_default().push(alert),
            None => report.dropped.push(alert.monitor.clone()),
        }
    }
    report.dropped.sort_unstable();
    report.dropped.dedup();
    report.monitors = recovery.states.len();

    // Checkpoint: one new segment per shard of this run, durable before the old go.
    let mut per_shard: Vec<Vec<u8>> = vec![Vec::new(); shards];
    let mut alert_ids: Vec<u64> =
        (0..shards).map(|s| alert_id_base(next_segment + s as u64)).collect();
    for &(id, shard, config, state) in &kept {
        let record = Record::MonitorState { monitor: id.to_owned(), config, state };
        encode(&record, &mut per_shard[shard]).map_err(|e| format!("journal: {e}"))?;
        if let Some(&(incident_seq, at_unix_ms)) = recovery.opened_at.get(id) {
            let record = Record::IncidentOpened {
                monitor: id.to_owned(),
                incident_seq,
                at_unix_ms,
                colour: crate::colour::Colour::Red,
            };
            encode(&record, &mut per_shard[shard]).map_err(|e| format!("journal: {e}"))?;
        }
    }
    for (id, control) in &recovery.controls {
        let shard = shard_by_id(id).expect("controls are kept for monitors in the manifest");
        for record in control.records(id) {
            encode(&record, &mut per_shard[shard]).map_err(|e| format!("journal: {e}"))?;
        }
    }
    for (id, alerts) in &mut recovery.outbox {
        let shard = shard_by_id(id).expect("alerts are kept for monitors in the manifest");
        for alert in alerts {
            alert.id = alert_ids[shard];
            alert_ids[shard] += 1;
            report.alerts += 1;
            encode(&Record::AlertQueued(alert.clone()), &mut per_shard[shard])
                .map_err(|e| format!("journal: {e}"))?;
        }
    }
    for (shard, bytes) in per_shard.iter().enumerate() {
        let shard_dir = dir.shard_dir(shard);
        fs::create_dir_all(&shard_dir).map_err(|e| ctx("cannot create", &shard_dir, e))?;
        let path = segment_path(&shard_dir, next_segment + shard as u64);
        write_durably(&path, bytes, fsync).map_err(|e| ctx("cannot write", &path, e))?;
        recovery.shards.push(ShardStart {
            segment: path,
            segment_number: next_segment + shard as u64,
            segment_len: bytes.len() as u64,
            next_alert_id: alert_ids[shard],
        });
    }
    for (_, shard_dir) in
        dir.existing_shard_dirs().map_err(|e| ctx("cannot read", dir.path(), e))?
    {
        let numbers = segment_numbers(&shard_dir).map_err(|e| ctx("cannot read", &shard_dir, e))?;
        for n in numbers.into_iter().filter(|&n| n < next_segment) {
            let path = segment_path(&shard_dir, n);
            fs::remove_file(&path).map_err(|e| ctx("cannot remove", &path, e))?;
        }
        if fsync != Fsync::Never {
            sync_dir(&shard_dir).map_err(|e| ctx("cannot sync", &shard_dir, e))?;
        }
    }
    if !report.dropped.is_empty() {
        let named: Vec<&str> =
            report.dropped.iter().take(DROPPED_NAMED).map(String::as_str).collect();
        let more = report.dropped.len().saturating_sub(DROPPED_NAMED);
        tracing::info!(
            "journal: dropped the state of {} monitor(s) no longer in the manifest: {}{}",
            report.dropped.len(),
            named.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
    tracing::info!(
        records = report.records,
        monitors = report.monitors,
        open_incidents = report.open_incidents,
        alerts = report.alerts,
        config_changed = report.config_changed,
        controls = report.controls,
        recover_ms = started.elapsed().as_millis() as u64,
        "journal: recovered {} monitor(s), {} open incident(s), {} alert(s) to deliver",
        report.monitors,
        report.open_incidents,
        report.alerts
    );
    Ok((recovery, report))
}

/// Outbox ids of a run's shard start at its segment number shifted past any count of alerts a
/// run can queue, so they never collide across shards or runs.
fn alert_id_base(segment: u64) -> u64 {
    segment << 32
}

/// The number of the incident `state` has open, if any.
fn open_incident(state: &SavedState) -> Option<u32> {
    let state = MonitorState::restore(*state, false);
    state.incident_open().then(|| state.incident_seq())
}

/// What the journal says about one monitor, folded record by record.
#[derive(Debug, Default)]
struct Folded<'p> {
    /// Its last saved state, with the check config checksum it was saved under.
    state: Option<(u32, SavedState)>,
    /// The highest incident number any record named: kept after a removal, so a number is
    /// never used twice. `None`: no record named one (nothing to continue).
    max_seq: Option<u32>,
    /// The last incident opened (number, Unix ms).
    opened_at: Option<(u32, i64)>,
    /// What an operator set, if any control record was seen.
    control: Option<SavedControl>,
    /// The monitor in this run's manifest, once matched (`None`: no longer in it).
    now: Option<&'p Monitor>,
}

impl Folded<'_> {
    fn saw_seq(&mut self, seq: u32) {
        self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
    }
}

/// The fold over every record of every segment, in order: each record is applied as it is
/// decoded (`read_segment`), so the journal is never held as a list of records.
#[derive(Debug, Default)]
struct Fold<'p> {
    monitors: FxHashMap<String, Folded<'p>>,
    /// Alerts queued and not (yet) delivered or given up, by outbox id.
    outbox: FxHashMap<u64, SavedAlert>,
    records: usize,
}

impl<'p> Fold<'p> {
    fn monitor(&mut self, id: String) -> &mut Folded<'p> {
        self.monitors.entry(id).or_default()
    }

    fn apply(&mut self, record: Record) {
        self.records += 1;
        match record {
            Record::MonitorState { monitor, config, state } => {
                let f = self.monitor(monitor);
                f.saw_seq(state.incident_seq);
                f.state = Some((config, state));
            }
            Record::IncidentOpened { monitor, incident_seq, at_unix_ms, .. } => {
                let f = self.monitor(monitor);
                f.saw_seq(incident_seq);
                f.opened_at = Some((incident_seq, at_unix_ms));
            }
            Record::IncidentClosed { monitor, incident_seq, .. } => {
                self.monitor(monitor).saw_seq(incident_seq)
            }
            Record::AlertQueued(alert) => {
                self.outbox.insert(alert.id, alert);
            }
            Record::AlertDelivered { id } | Record::AlertGivenUp { id } => {
                self.outbox.remove(&id);
            }
            Record::Disabled { monitor, disabled } => {
                self.monitor(monitor).control.get_or_insert_default().disabled = Some(disabled)
            }
            Record::Silenced { monitor, until_unix_ms } => {
                let control = self.monitor(monitor).control.get_or_insert_default();
                control.silenced_until_unix_ms = until_unix_ms;
            }
            Record::Acked { monitor, incident_seq, by } => {
                self.monitor(monitor).control.get_or_insert_default().acked =
                    Some((incident_seq, by))
            }
            Record::Removed { monitor } => {
                let f = self.monitor(monitor);
                f.state = None;
                f.control = None;
                f.opened_at = None;
            }
        }
    }
}

fn write_durably(path: &Path, bytes: &[u8], fsync: Fsync) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    if fsync != Fsync::Never {
        file.sync_data()?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour::Colour;
    use crate::manifest::{load_str, LoadOptions};
    use crate::state::{transition, Event, Generation, Policy, Reason};
    use crate::store::{read_shard_dir, DataDir};

    fn plan(yaml: &str) -> Plan {
        let (monitors, report) = load_str(yaml, None, &LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        Plan { monitors, registry: report.registry }
    }

    const TWO: &str = "monitors:\n  - name: a\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 1}}\n  - name: b\n    pulse_check: {type: tcp, config: {host: 127.0.0.1, port: 2}}\n";

    /// A state with an open incident (3 failures under unhealthy 2), numbered `seq + 1`.
    fn down(seq: u32) -> SavedState {
        let policy = Policy { unhealthy: 2, ..Policy::default() };
        let mut s = MonitorState::resume(seq);
        for g in 1..=3 {
            let generation = s.begin_check(Generation::new(g));
            let kind = cpra_net::FailureKind::ConnectRefused;
            transition(&mut s, &policy, Event::CheckFailed { generation, kind }, 1000);
        }
        assert!(s.incident_open());
        s.saved()
    }

    fn write_segment(dir: &Path, number: u64, records: &[Record]) {
        let mut bytes = Vec::new();
        for r in records {
            encode(r, &mut bytes).unwrap();
        }
        fs::create_dir_all(dir).unwrap();
        fs::write(segment_path(dir, number), bytes).unwrap();
    }

    fn alert(id: u64, monitor: &str) -> SavedAlert {
        SavedAlert {
            id,
            monitor: monitor.into(),
            endpoint: 0,
            endpoint_check: 0,
            colour: Colour::Red,
            reason: Reason::ThresholdReached,
            incident_seq: Some(1),
            summary: "down".into(),
            action: "look".into(),
            next_steps: vec![],
            not_before_unix_ms: 0,
        }
    }

    /// The checksum is the CRC-32C of the check config's `Debug` text, as journals already on
    /// disk were written with (streamed into the checksum, not built as a string first).
    #[test]
    fn config_check_is_the_checksum_of_the_configs_text() {
        for monitor in &plan(TWO).monitors {
            let text = format!("{:?}", monitor.pulse_check);
            assert_eq!(config_check(monitor), crc32c::crc32c(text.as_bytes()));
        }
    }

    #[test]
    fn state_is_routed_by_id_checked_against_the_config_and_checkpointed() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = plan(TWO);
        let a = &plan.monitors[0];
        let (a_id, b_id) = (a.id.clone(), plan.monitors[1].id.clone());
        // Last run had 3 shards; 'a' lived on shard 2, 'gone' on shard 1; 'b' changed its
        // check config since.
        let state = |monitor: &str, config: u32, state: SavedState| Record::MonitorState {
            monitor: monitor.into(),
            config,
            state,
        };
        write_segment(
            &tmp.path().join("shard-2"),
            4,
            &[
                state(&a_id, config_check(a), down(0)),
                Record::AlertQueued(alert(7, &a_id)),
                Record::AlertQueued(alert(8, &a_id)),
                Record::AlertDelivered { id: 7 },
            ],
        );
        write_segment(
            &tmp.path().join("shard-1"),
            3,
            &[
                state("gone", 1, down(0)),
                state(&b_id, 12345, down(4)),
                Record::IncidentOpened {
                    monitor: b_id.clone(),
                    incident_seq: 9,
                    at_unix_ms: 0,
                    colour: Colour::Red,
                },
            ],
        );
        let dir = DataDir::open(tmp.path(), 1).unwrap();
        let (recovery, report) = recover(&dir, &plan, 1, Fsync::Never).unwrap();

        assert_eq!(report.dropped, ["gone"]);
        assert_eq!((report.monitors, report.open_incidents, report.alerts), (2, 2, 1));
        assert_eq!(report.config_changed, 1);
        let a_state = MonitorState::restore(recovery.states[&a_id], false);
        assert!(a_state.incident_open());
        assert_eq!((a_state.incident_seq(), a_state.consecutive_failures()), (1, 3));
        // 'b' keeps its incident, restarts its counts, and its number continues past the
        // highest the journal saw.
        let b_state = MonitorState::restore(recovery.states[&b_id], false);
        assert!(b_state.incident_open());
        assert_eq!((b_state.incident_seq(), b_state.consecutive_failures()), (9, 0));
        // Only the alert not delivered is kept, renumbered for this run.
        let kept = &recovery.outbox[&a_id];
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].summary, "down");

        // The checkpoint: one segment for the one shard, the old ones gone.
        assert_eq!(recovery.shards.len(), 1);
        for old in [1, 2] {
            let left = segment_numbers(&tmp.path().join(format!("shard-{old}"))).unwrap();
            assert!(left.is_empty(), "shard-{old}: {left:?}");
        }
        let log = read_shard_dir(&tmp.path().join("shard-0")).unwrap();
        assert_eq!(log.segments.len(), 1);
        assert_eq!(log.segments[0].0, 5, "numbered after every segment seen");
        assert_eq!(log.segments[0].1.len(), 4, "two states, b's incident opening, one alert");

        // Recovering again from the checkpoint finds the same.
        drop(dir);
        let dir = DataDir::open(tmp.path(), 1).unwrap();
        let (again, report) = recover(&dir, &plan, 1, Fsync::Never).unwrap();
        assert_eq!(again.states, recovery.states);
        assert!(report.dropped.is_empty());
        assert_eq!(report.config_changed, 0);
    }

    /// Recovers `records` (one old segment) for the plan `TWO` at Unix ms 1000.
    fn recover_records(records: &[Record]) -> (tempfile::TempDir, Plan, Recovery, RecoveryReport) {
        let tmp = tempfile::tempdir().unwrap();
        let plan = plan(TWO);
        write_segment(&tmp.path().join("shard-0"), 1, records);
        let dir = DataDir::open(tmp.path(), 1).unwrap();
        let (recovery, report) = recover_at(&dir, &plan, 1, Fsync::Never, 1000).unwrap();
        drop(dir);
        (tmp, plan, recovery, report)
    }

    /// Recovers the checkpoint `recover_records` left, at the same time.
    fn recover_again(tmp: &tempfile::TempDir, plan: &Plan) -> Recovery {
        let dir = DataDir::open(tmp.path(), 1).unwrap();
        recover_at(&dir, plan, 1, Fsync::Never, 1000).unwrap().0
    }

    /// A monitor a reload removed comes back fresh (no state, silence or disable) but its
    /// incident numbers go on: the id of its old incident is never used again.
    #[test]
    fn a_removed_monitor_comes_back_fresh_with_its_incident_numbers_kept() {
        let (tmp, plan, recovery, _) = recover_records(&[
            Record::MonitorState { monitor: "a".into(), config: 0, state: down(3) },
            Record::Silenced { monitor: "a".into(), until_unix_ms: 5_000 },
            Record::Disabled { monitor: "a".into(), disabled: true },
            Record::Removed { monitor: "a".into() },
        ]);
        assert!(!recovery.controls.contains_key("a"), "{:?}", recovery.controls);
        let state = MonitorState::restore(recovery.states["a"], false);
        assert!(!state.incident_open());
        assert_eq!(state.incident_seq(), down(3).incident_seq, "numbers go on");
        assert_eq!(recover_again(&tmp, &plan).states, recovery.states, "checkpointed");
    }

    #[test]
    fn a_disable_survives_by_its_last_record_and_is_dropped_with_its_monitor() {
        let disabled =
            |monitor: &str, disabled: bool| Record::Disabled { monitor: monitor.into(), disabled };
        let (tmp, plan, recovery, report) = recover_records(&[
            disabled("a", true),
            disabled("b", true),
            disabled("b", false),
            disabled("gone", true),
        ]);
        assert_eq!(recovery.controls["a"].disabled, Some(true));
        assert_eq!(recovery.controls["b"].disabled, Some(false), "enabled again");
        assert!(!recovery.controls.contains_key("gone"));
        assert_eq!(report.dropped, ["gone"]);
        assert_eq!(report.controls, 2);
        assert_eq!(recover_again(&tmp, &plan).controls, recovery.controls, "checkpointed");
    }

    #[test]
    fn a_silence_survives_until_it_ends_and_a_lifted_or_expired_one_is_dropped() {
        let silenced = |monitor: &str, until_unix_ms: i64| Record::Silenced {
            monitor: monitor.into(),
            until_unix_ms,
        };
        // Recovered at 1000: 'a' silenced until 5000; 'b' until 900 (over), then lifted
        // and silenced again until 1000 (over at that very ms).
        let (tmp, plan, recovery, _) = recover_records(&[
            silenced("b", 900),
            silenced("a", 5000),
            silenced("b", 0),
            silenced("b", 1000),
        ]);
        assert_eq!(recovery.controls["a"].silenced_until_unix_ms, 5000);
        assert!(!recovery.controls.contains_key("b"), "{:?}", recovery.controls);
        assert_eq!(recover_again(&tmp, &plan).controls, recovery.controls);
        let (_, _, lifted, _) = recover_records(&[silenced("a", 5000), silenced("a", 0)]);
        assert!(lifted.controls.is_empty());
    }

    #[test]
    fn an_ack_survives_while_its_incident_is_open_and_with_when_it_opened() {
        let state = |monitor: &str, state: SavedState| Record::MonitorState {
            monitor: monitor.into(),
            config: 0,
            state,
        };
        let opened = |monitor: &str, incident_seq: u32, at_unix_ms: i64| Record::IncidentOpened {
            monitor: monitor.into(),
            incident_seq,
            at_unix_ms,
            colour: Colour::Red,
        };
        let acked = |monitor: &str, incident_seq: u32| Record::Acked {
            monitor: monitor.into(),
            incident_seq,
            by: "alice".into(),
        };
        // 'a' is down in incident 1, acknowledged; 'b' had incident 1 acknowledged, and is
        // healthy again (its state says no incident is open).
        let (tmp, plan, recovery, _) = recover_records(&[
            opened("a", 1, 700),
            state("a", down(0)),
            acked("a", 1),
            opened("b", 1, 600),
            acked("b", 1),
            state("b", MonitorState::resume(1).saved()),
        ]);
        assert_eq!(recovery.controls["a"].acked, Some((1, "alice".to_owned())));
        assert_eq!(recovery.opened_at["a"], (1, 700));
        assert!(!recovery.controls.contains_key("b"), "its incident closed");
        assert!(!recovery.opened_at.contains_key("b"));
        let again = recover_again(&tmp, &plan);
        assert_eq!((again.controls, again.opened_at), (recovery.controls, recovery.opened_at));

        // An ack of an older incident does not carry over to the one open now.
        let (_, _, later, _) =
            recover_records(&[acked("a", 1), opened("a", 2, 900), state("a", down(1))]);
        assert!(later.controls.is_empty(), "{:?}", later.controls);
        assert_eq!(later.opened_at["a"], (2, 900));
    }
}
