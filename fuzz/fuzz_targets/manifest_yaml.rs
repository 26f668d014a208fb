//! The YAML manifest loader as `cpra validate` runs it (the fast scanner with its saphyr
//! fallback), against saphyr alone: both must give the same monitors and the same problems
//! (on invalid UTF-8, the same syntax error), and every problem must say where it is.
#![no_main]

use std::collections::HashMap;
use std::io::Cursor;

use cpra_engine::manifest::{
    load_bytes, load_reader, Class, Format, LoadOptions, LoadReport, Monitor,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env: HashMap<String, String> =
        [("TOKEN".to_string(), "s3cret".to_string()), ("PORT".to_string(), "8080".to_string())]
            .into();
    let opts = LoadOptions { env: &env, ..LoadOptions::default() };

    let mut fast: Vec<Monitor> = Vec::new();
    let report = load_bytes(data.to_vec(), Some(Format::Yaml), "f.yaml", &opts, |m| fast.push(m));
    check(&report, fast.len());

    // saphyr alone (no way to re-read the input, so no fast path).
    let mut plain: Vec<Monitor> = Vec::new();
    let again =
        load_reader(Box::new(Cursor::new(data.to_vec())), Format::Yaml, "f.yaml", &opts, |m| {
            plain.push(m)
        });
    check(&again, plain.len());
    if std::str::from_utf8(data).is_ok() {
        assert_eq!(report.problems.kept, again.problems.kept, "fast scanner and saphyr disagree");
        assert_eq!(report.problems.total(), again.problems.total());
        assert_eq!(fast, plain, "fast scanner and saphyr disagree on monitors");
    } else {
        // Invalid UTF-8: saphyr reads ahead and stops a few characters before the bad bytes,
        // so the fast scanner may have handed out (and the loader judged) a few more events
        // before its fallback meets the same error. Both must end in that one syntax error.
        let syntax = |r: &LoadReport| -> Vec<_> {
            r.problems.kept.iter().filter(|d| d.class == Class::Syntax).cloned().collect()
        };
        assert_eq!(syntax(&report), syntax(&again), "fast scanner and saphyr disagree");
    }
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
