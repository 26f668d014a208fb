//! The JSON manifest loader as `cpra validate` runs it: the direct decoder (monitors written
//! the usual way) with the general path for the rest, against the general path alone. Both
//! must give the same monitors and the same problems, and every problem must say where it is.
#![no_main]

use std::collections::HashMap;

use cpra_engine::manifest::{load_bytes, Format, LoadOptions, LoadReport, Monitor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env: HashMap<String, String> =
        [("TOKEN".to_string(), "s3cret".to_string()), ("PORT".to_string(), "8080".to_string())]
            .into();
    let run = |direct_json: bool| {
        let opts = LoadOptions { env: &env, direct_json, ..LoadOptions::default() };
        let mut monitors: Vec<Monitor> = Vec::new();
        let report =
            load_bytes(data.to_vec(), Some(Format::Json), "f.json", &opts, |m| monitors.push(m));
        check(&report, monitors.len());
        (monitors, report)
    };
    let (direct, with_direct) = run(true);
    let (general, without) = run(false);
    assert_eq!(
        with_direct.problems.kept, without.problems.kept,
        "direct and general paths disagree"
    );
    assert_eq!(with_direct.problems.total(), without.problems.total());
    assert_eq!(direct, general, "direct and general paths give different monitors");
    assert!(with_direct.monitors_direct <= with_direct.monitors_loaded);
    assert_eq!(without.monitors_direct, 0);
});

fn check(report: &LoadReport, handed: usize) {
    for d in &report.problems.kept {
        assert!(d.pos.line >= 1 && d.pos.column >= 1, "a problem without a position: {d:?}");
        assert!(!d.message.is_empty(), "a problem without a message: {d:?}");
    }
    assert!(report.problems.kept.len() <= report.problems.total());
    assert_eq!(report.monitors_loaded, handed);
    assert!(report.monitors_loaded <= report.monitors_seen);
}
