//! What a reload changes: the old and new manifests' monitors compared by stable id.
//!
//! What it is for: a pure function ([`diff`]) and its table of tests; nothing here knows about
//! shards, files or sockets. What it is not for: applying the result (`shard::reload` and
//! the shards do) or validating the new manifest (the loader did, before).

use std::collections::HashMap;

use crate::manifest::Monitor;

/// The monitors of two manifests by id: indexes into the old and the new monitor lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// New indexes of monitors whose id is new.
    pub added: Vec<u32>,
    /// Old indexes of monitors whose id is gone.
    pub removed: Vec<u32>,
    /// (old, new) of monitors whose config differs.
    pub changed: Vec<(u32, u32)>,
    /// (old, new) of monitors whose config is the same (their place in the file may differ).
    pub unchanged: Vec<(u32, u32)>,
}

/// Compares `old` and `new` by monitor id. Ids are unique within a manifest (the loader
/// refuses duplicates). A monitor is changed when anything but its line in the file
/// differs: the check, its thresholds and interval, its name, codes, intervention,
/// maintenance windows or `enabled`.
pub fn diff(old: &[Monitor], new: &[Monitor]) -> Diff {
    let by_id: HashMap<&str, u32> =
        old.iter().enumerate().map(|(i, m)| (m.id.as_str(), i as u32)).collect();
    let mut seen = vec![false; old.len()];
    let mut out = Diff::default();
    for (n, monitor) in new.iter().enumerate() {
        let n = n as u32;
        match by_id.get(monitor.id.as_str()) {
            None => out.added.push(n),
            Some(&o) => {
                debug_assert!(!seen[o as usize], "id {} twice in the new manifest", monitor.id);
                seen[o as usize] = true;
                if same_config(&old[o as usize], monitor) {
                    out.unchanged.push((o, n));
                } else {
                    out.changed.push((o, n));
                }
            }
        }
    }
    out.removed = (0..old.len() as u32).filter(|&o| !seen[o as usize]).collect();
    debug_assert_eq!(out.removed.len() + out.changed.len() + out.unchanged.len(), old.len());
    out
}

/// Everything but the position in the file (moving a monitor in its file changes nothing).
fn same_config(a: &Monitor, b: &Monitor) -> bool {
    let Monitor {
        id,
        name,
        enabled,
        tags,
        pulse_check,
        codes,
        intervention,
        maintenance,
        line: _,
        shown,
    } = a;
    *id == b.id
        && *name == b.name
        && *enabled == b.enabled
        && *tags == b.tags
        && *pulse_check == b.pulse_check
        && *codes == b.codes
        && *intervention == b.intervention
        && *maintenance == b.maintenance
        && *shown == b.shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_str, LoadOptions};

    /// One monitor per `(name, port, path)`, in order; `line` is set by where it sits.
    fn fleet(monitors: &[(&str, u16, &str)]) -> Vec<Monitor> {
        let mut yaml = String::from("version: \"1\"\nmonitors:\n");
        for (name, port, path) in monitors {
            yaml.push_str(&format!(
                "  - name: {name}\n    pulse_check:\n      type: http\n      interval: 10s\n      \
                 config: {{url: \"http://127.0.0.1:{port}{path}\"}}\n"
            ));
        }
        let (monitors, report) = load_str(&yaml, None, &LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        monitors
    }

    #[test]
    fn diff_by_id_table() {
        struct Case {
            what: &'static str,
            old: &'static [(&'static str, u16, &'static str)],
            new: &'static [(&'static str, u16, &'static str)],
            want: Diff,
        }
        let cases = [
            Case {
                what: "same manifest",
                old: &[("a", 1, "/"), ("b", 2, "/")],
                new: &[("a", 1, "/"), ("b", 2, "/")],
                want: Diff { unchanged: vec![(0, 0), (1, 1)], ..Diff::default() },
            },
            Case {
                what: "moved in the file: unchanged, new index",
                old: &[("a", 1, "/"), ("b", 2, "/")],
                new: &[("b", 2, "/"), ("a", 1, "/")],
                want: Diff { unchanged: vec![(1, 0), (0, 1)], ..Diff::default() },
            },
            Case {
                what: "one added",
                old: &[("a", 1, "/")],
                new: &[("a", 1, "/"), ("c", 3, "/")],
                want: Diff { added: vec![1], unchanged: vec![(0, 0)], ..Diff::default() },
            },
            Case {
                what: "one removed",
                old: &[("a", 1, "/"), ("b", 2, "/")],
                new: &[("b", 2, "/")],
                want: Diff { removed: vec![0], unchanged: vec![(1, 0)], ..Diff::default() },
            },
            Case {
                what: "check changed (path)",
                old: &[("a", 1, "/"), ("b", 2, "/")],
                new: &[("a", 1, "/v2"), ("b", 2, "/")],
                want: Diff { changed: vec![(0, 0)], unchanged: vec![(1, 1)], ..Diff::default() },
            },
            Case {
                what: "renamed: the derived id changes, so removed and added",
                old: &[("a", 1, "/")],
                new: &[("z", 1, "/")],
                want: Diff { added: vec![0], removed: vec![0], ..Diff::default() },
            },
            Case {
                what: "all at once",
                old: &[("a", 1, "/"), ("b", 2, "/"), ("c", 3, "/")],
                new: &[("d", 4, "/"), ("c", 3, "/x"), ("a", 1, "/")],
                want: Diff {
                    added: vec![0],
                    removed: vec![1],
                    changed: vec![(2, 1)],
                    unchanged: vec![(0, 2)],
                },
            },
            Case {
                what: "empty to some",
                old: &[],
                new: &[("a", 1, "/")],
                want: Diff { added: vec![0], ..Diff::default() },
            },
            Case {
                what: "some to empty",
                old: &[("a", 1, "/")],
                new: &[],
                want: Diff { removed: vec![0], ..Diff::default() },
            },
        ];
        for case in cases {
            let got = diff(&fleet(case.old), &fleet(case.new));
            assert_eq!(got, case.want, "{}", case.what);
        }
    }

    #[test]
    fn enabled_and_interval_are_config() {
        let old = fleet(&[("a", 1, "/")]);
        let mut disabled = old.clone();
        disabled[0].enabled = false;
        assert_eq!(diff(&old, &disabled).changed, vec![(0, 0)]);
        let mut slower = old.clone();
        slower[0].pulse_check.interval_ms *= 2;
        assert_eq!(diff(&old, &slower).changed, vec![(0, 0)]);
        let mut moved = old.clone();
        moved[0].line += 40;
        assert_eq!(diff(&old, &moved).unchanged, vec![(0, 0)]);
    }
}
