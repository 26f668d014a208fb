//! Hot reload: re-read the manifest a run started from, validate it, and hand each shard only
//! what changed for it.
//!
//! What it is for: [`Reloader::reload`], called on SIGHUP (from `cpra run`'s main loop) and
//! by `POST /api/v1/reload` (from the API thread, off its event loop). It loads the file with
//! the same loader pass and options as the start; on errors the running fleet is left as it
//! is and the problems are returned. Otherwise it compares old and new monitors by id
//! ([`diff`]), routes each add, remove and change to its shard by the same hash as at start
//! (`runtime::shard_of`), pushes one order per shard on its reload ring, and waits until
//! every shard has applied it. One reload runs at a time. What it is not for: applying an
//! order (the shards: `shard::reload`, `ShardCore`, `Monitors`) or HTTP.

pub mod diff;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use diff::{diff, Diff};

use crate::counters::ShardShared;
use crate::limits::{RELOAD_APPLY_WAIT_MS, RELOAD_RING};
use crate::manifest::{load_path, Level, LoadOptions};
use crate::placement::Node;
use crate::plan::Plan;
use crate::runtime::shard_of;
use crate::shard::reload::ShardReload;

/// How often a reload looks whether every shard has applied its order.
const APPLIED_POLL: Duration = Duration::from_millis(5);

/// What a reload did, in monitors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// One error in the new manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 0 when the problem has no position (the file cannot be read).
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Why a reload changed nothing (or, for `Stalled`, was not seen through).
#[derive(Debug)]
pub enum ReloadError {
    /// Another reload is running.
    Busy,
    /// The new manifest has errors (or cannot be read): the old fleet runs on.
    Invalid(Vec<Problem>),
    /// A shard did not take its order in time; it applies it when it goes round again.
    Stalled(Vec<usize>),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Busy => write!(f, "a reload is already running; try again when it ends"),
            ReloadError::Invalid(problems) => {
                write!(
                    f,
                    "the manifest has {} errors; still running the one loaded before",
                    problems.len()
                )
            }
            ReloadError::Stalled(shards) => write!(
                f,
                "shards {shards:?} did not apply the reload within {RELOAD_APPLY_WAIT_MS} ms; \
                 they apply it when they go round again"
            ),
        }
    }
}

/// The manifest a run started from, the plan in force, and the shards' reload rings.
pub struct Reloader {
    file: PathBuf,
    /// The start's loader options (`--lenient`; `${NAME}` from the process environment).
    lenient: bool,
    direct_json: bool,
    shared: Vec<Arc<ShardShared>>,
    /// The plan in force: only reloads read or replace it (never a check).
    current: Mutex<Arc<Plan>>,
    busy: AtomicBool,
    /// The run's slice of the fleet: a reload validates the whole file and keeps this slice,
    /// as the start did.
    node: Node,
}

/// Clears the busy flag however a reload ends.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Reloader {
    pub fn new(
        file: PathBuf,
        options: &LoadOptions,
        plan: Arc<Plan>,
        shared: Vec<Arc<ShardShared>>,
    ) -> Reloader {
        Reloader {
            file,
            lenient: options.lenient,
            direct_json: options.direct_json,
            shared,
            current: Mutex::new(plan),
            busy: AtomicBool::new(false),
            node: Node::SINGLE,
        }
    }

    /// Keeps `node`'s slice of every manifest reloaded (`cpra run --node-index/--node-count`).
    pub fn with_node(mut self, node: Node) -> Reloader {
        self.node = node;
        self
    }

    /// Reloads the manifest (see the module doc). Blocks for the load and until every shard
    /// has applied its order: call it off any event loop.
    pub fn reload(&self) -> Result<Counts, ReloadError> {
        if self.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(ReloadError::Busy);
        }
        let _running = Running(&self.busy);
        let started = Instant::now();
        let new = Arc::new(self.load()?);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let d = diff(&current.monitors, &new.monitors);
        let counts = Counts {
            added: d.added.len(),
            removed: d.removed.len(),
            changed: d.changed.len(),
            unchanged: d.unchanged.len(),
        };
        let orders = route(&current, &new, &d, self.shared.len());
        // Reloads run one at a time and each waits for its orders, so every ring has room;
        // checked before any push so that no shard gets an order the others do not.
        let full: Vec<usize> = (0..self.shared.len())
            .filter(|&k| self.shared[k].reload.len() >= RELOAD_RING)
            .collect();
        if !full.is_empty() {
            return Err(ReloadError::Stalled(full));
        }
        let before: Vec<u64> = self.shared.iter().map(|s| s.reload.applied()).collect();
        for (k, order) in orders.into_iter().enumerate() {
            let pushed = self.shared[k].reload.push(order);
            assert!(pushed.is_ok(), "shard {k}'s reload ring filled during a reload");
        }
        *current = new;
        drop(current);
        let wait_until = Instant::now() + Duration::from_millis(RELOAD_APPLY_WAIT_MS);
        loop {
            let behind: Vec<usize> = (0..self.shared.len())
                .filter(|&k| self.shared[k].reload.applied() <= before[k])
                .collect();
            if behind.is_empty() {
                break;
            }
            if Instant::now() >= wait_until {
                return Err(ReloadError::Stalled(behind));
            }
            std::thread::sleep(APPLIED_POLL);
        }
        tracing::info!(
            file = %self.file.display(),
            added = counts.added,
            removed = counts.removed,
            changed = counts.changed,
            unchanged = counts.unchanged,
            reload_ms = started.elapsed().as_millis() as u64,
            "manifest reloaded"
        );
        Ok(counts)
    }

    /// The same loader pass as at start; every error becomes a [`Problem`].
    fn load(&self) -> Result<Plan, ReloadError> {
        let options = LoadOptions {
            lenient: self.lenient,
            direct_json: self.direct_json,
            ..LoadOptions::default()
        };
        let mut monitors = Vec::new();
        let node = self.node;
        let keep = |m: crate::manifest::Monitor| {
            if node.owns(&m.id) {
                monitors.push(m);
            }
        };
        let report = match load_path(&self.file, &options, keep) {
            Ok(report) => report,
            Err(e) => {
                return Err(ReloadError::Invalid(vec![Problem {
                    file: e.file.clone(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read {}: {}", e.file, e.error),
                }]))
            }
        };
        if !report.is_valid() {
            let problems = report
                .problems
                .kept
                .iter()
                .filter(|d| d.level == Level::Error)
                .map(|d| Problem {
                    file: d.file.clone(),
                    line: d.pos.line,
                    column: d.pos.column,
                    message: match (&d.monitor, d.hint.is_empty()) {
                        (Some(m), true) => format!("monitor '{m}': {}", d.message),
                        (Some(m), false) => format!("monitor '{m}': {}; {}", d.message, d.hint),
                        (None, true) => d.message.clone(),
                        (None, false) => format!("{}; {}", d.message, d.hint),
                    },
                })
                .collect();
            return Err(ReloadError::Invalid(problems));
        }
        for d in &report.problems.kept {
            tracing::warn!("{d}");
        }
        Ok(Plan { monitors, registry: report.registry })
    }
}

/// One order per shard: its removes, changes and adds, and its unchanged monitors whose index
/// moved. Every shard gets one, empty or not, since every shard reads the new plan from then.
fn route(old: &Plan, new: &Arc<Plan>, d: &Diff, shards: usize) -> Vec<ShardReload> {
    let mut orders: Vec<ShardReload> = (0..shards)
        .map(|_| ShardReload {
            plan: new.clone(),
            removed: Vec::new(),
            changed: Vec::new(),
            moved: Vec::new(),
            added: Vec::new(),
        })
        .collect();
    let shard = |id_hash: u64| shard_of(id_hash, shards);
    for &o in &d.removed {
        orders[shard(old.monitors[o as usize].id_hash())].removed.push(o);
    }
    for &(o, n) in &d.changed {
        let spec = new.spec(n as usize);
        orders[shard(spec.id_hash)].changed.push((o, spec));
    }
    for &(o, n) in d.unchanged.iter().filter(|(o, n)| o != n) {
        orders[shard(new.monitors[n as usize].id_hash())].moved.push((o, n));
    }
    for &n in &d.added {
        let spec = new.spec(n as usize);
        orders[shard(spec.id_hash)].added.push(spec);
    }
    orders
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_str;

    fn plan(yaml_monitors: &[(&str, &str)]) -> Arc<Plan> {
        let mut yaml = String::from("version: \"1\"\nmonitors:\n");
        for (name, port) in yaml_monitors {
            yaml.push_str(&format!(
                "  - name: {name}\n    pulse_check: {{type: tcp, config: {{host: 127.0.0.1, port: {port}}}}}\n"
            ));
        }
        let (monitors, report) = load_str(&yaml, None, &LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        Arc::new(Plan { monitors, registry: report.registry })
    }

    fn reloader(dir: &tempfile::TempDir, text: &str, shards: usize) -> Reloader {
        let file = dir.path().join("fleet.yaml");
        std::fs::write(&file, text).unwrap();
        let shared = (0..shards).map(|_| Arc::new(ShardShared::new())).collect();
        Reloader::new(file, &LoadOptions::default(), plan(&[("a", "1")]), shared)
    }

    #[test]
    fn a_second_reload_while_one_runs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = reloader(&dir, "version: \"1\"\nmonitors: []\n", 1);
        r.busy.store(true, Ordering::Release);
        assert!(matches!(r.reload(), Err(ReloadError::Busy)));
        // Nothing was sent, nothing replaced.
        assert!(r.shared[0].reload.is_empty());
        assert_eq!(r.current.lock().unwrap().monitors.len(), 1);
    }

    #[test]
    fn a_node_reloads_only_its_slice_but_validates_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = String::from("version: \"1\"\nmonitors:\n");
        for i in 0..40 {
            yaml.push_str(&format!(
                "  - name: m{i}\n    pulse_check: {{type: tcp, config: {{host: 127.0.0.1, port: 1}}}}\n"
            ));
        }
        let node = Node::new(1, 3, 0).unwrap();
        let r = reloader(&dir, &yaml, 1).with_node(node);
        let kept = r.load().unwrap().monitors;
        let owned = (0..40).filter(|i| node.owns(&format!("m{i}"))).count();
        assert_eq!(kept.len(), owned);
        assert!(!kept.is_empty() && kept.len() < 40, "{} kept", kept.len());
        assert!(kept.iter().all(|m| node.owns(&m.id)));
        // An error in a monitor of another node's slice refuses the reload here too.
        let other = (0..40).find(|i| !node.owns(&format!("m{i}"))).unwrap();
        let bad = yaml.replace(
            &format!("name: m{other}\n    pulse_check: {{type: tcp"),
            &format!("name: m{other}\n    pulse_check: {{type: nope"),
        );
        std::fs::write(dir.path().join("fleet.yaml"), bad).unwrap();
        assert!(matches!(r.load(), Err(ReloadError::Invalid(_))));
    }

    #[test]
    fn problems_name_file_line_and_column_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bad = "version: \"1\"\nmonitors:\n  - name: x\n    pulse_check: {type: nope}\n";
        let r = reloader(&dir, bad, 2);
        let Err(ReloadError::Invalid(problems)) = r.reload() else { panic!("accepted") };
        assert!(problems.iter().all(|p| p.file.ends_with("fleet.yaml") && p.line > 0));
        assert!(problems.iter().any(|p| p.line == 4), "{problems:?}");
        assert!(r.shared.iter().all(|s| s.reload.is_empty()));
        assert!(!r.busy.load(Ordering::Acquire), "the busy flag is cleared on refusal");
        // A missing file: one problem without a position.
        std::fs::remove_file(dir.path().join("fleet.yaml")).unwrap();
        let Err(ReloadError::Invalid(problems)) = r.reload() else { panic!("accepted") };
        assert_eq!((problems.len(), problems[0].line), (1, 0));
    }

    #[test]
    fn each_shard_gets_only_its_own_monitors_and_every_shard_the_new_plan() {
        let old = plan(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        let new = plan(&[("e", "5"), ("a", "1"), ("b", "22"), ("d", "4")]);
        let d = diff(&old.monitors, &new.monitors);
        let shards = 3;
        let orders = route(&old, &new, &d, shards);
        assert_eq!(orders.len(), shards);
        let home = |p: &Plan, i: u32| shard_of(p.monitors[i as usize].id_hash(), shards);
        for (k, order) in orders.iter().enumerate() {
            assert!(Arc::ptr_eq(&order.plan, &new));
            assert!(order.removed.iter().all(|&o| home(&old, o) == k));
            assert!(order
                .changed
                .iter()
                .all(|(o, s)| home(&old, *o) == k && home(&new, s.cold) == k));
            assert!(order.moved.iter().all(|&(o, _)| home(&old, o) == k));
            assert!(order.added.iter().all(|s| home(&new, s.cold) == k));
        }
        let all = |f: fn(&ShardReload) -> usize| orders.iter().map(f).sum::<usize>();
        assert_eq!(all(|o| o.removed.len()), 1, "c");
        assert_eq!(all(|o| o.changed.len()), 1, "b");
        assert_eq!(all(|o| o.added.len()), 1, "e");
        // a moved one place down; d stayed at 3, and an unchanged monitor in place is not sent.
        assert_eq!(all(|o| o.moved.len()), 1);
    }
}
