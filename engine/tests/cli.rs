//! End-to-end: the `cpra` binary on real files (validate's exit codes and outputs, gen's
//! output validating cleanly).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cpra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpra")).args(args).output().expect("run cpra")
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_example_fleet_validates() {
    let fleet = repo_file("docs/examples/fleet.yaml");
    let o = cpra(&["validate", fleet.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("valid: 8 monitors, 0 errors, 0 warnings"), "{}", stdout(&o));
}

#[test]
fn invalid_manifest_exits_1_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "monitors:\n  - name: web\n    pulse_check:\n      type: htp\n      config: {url: x}\n  - name: db\n    pulse_check: {type: tcp, interval: 5, config: {host: h, port: 1}}\n",
    )
    .unwrap();
    let o = cpra(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(
            "bad.yaml:4:13: monitor 'web': unknown pulse type 'htp' at monitors[0].pulse_check.type"
        ),
        "{out}"
    );
    assert!(out.contains("did you mean 'http'?"), "{out}");
    assert!(out.contains("monitor 'db'"), "{out}");
    assert!(out.contains("2 errors"), "{out}");

    // --json: one object per problem, then a summary.
    let o = cpra(&["validate", "--json", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["class"], "unknown_type");
    assert_eq!(lines[0]["line"], 4);
    assert_eq!(lines[0]["column"], 13);
    assert_eq!(lines[0]["monitor"], "web");
    assert_eq!(lines[0]["path"], "monitors[0].pulse_check.type");
    assert_eq!(lines[1]["class"], "bad_duration");
    assert_eq!(lines[2]["summary"], true);
    assert_eq!(lines[2]["errors"], 2);
}

#[test]
fn unknown_fields_are_errors_unless_lenient() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    std::fs::write(
        &path,
        r#"{"monitors": [{"name": "a", "colour": "red", "pulse_check": {"type": "tcp", "config": {"host": "h", "port": 1}}}]}"#,
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let o = cpra(&["validate", file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(":1:29: monitor 'a': unknown field 'colour'"), "{}", stdout(&o));
    let o = cpra(&["validate", "--lenient", file]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("warning: "), "{}", stdout(&o));
    // The old flag still parses, as a no-op, and is not advertised.
    assert_eq!(cpra(&["validate", "--strict", file]).status.code(), Some(1));
    let help = stdout(&cpra(&["validate", "--help"]));
    assert!(help.contains("--lenient"), "{help}");
    assert!(!help.contains("  --strict"), "listed as an option: {help}");
    assert!(help.contains("--strict is still accepted and does nothing"), "{help}");
}

#[test]
fn unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let fleet = repo_file("docs/examples/fleet.yaml");
    let o = cpra(&["validate", fleet.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("cannot read"), "{}", stdout(&o));
    // Garbage bytes are a syntax problem (exit 1), not a crash.
    let junk = dir.path().join("junk.yaml");
    std::fs::write(&junk, [0xffu8, 0x00, b'{', b'[', b':', 0x80]).unwrap();
    assert_eq!(cpra(&["validate", junk.to_str().unwrap()]).status.code(), Some(1));
}

#[test]
fn gen_output_validates_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["yaml", "json"] {
        let path = dir.path().join(format!("gen.{format}"));
        let o = cpra(&[
            "gen",
            "--monitors",
            "500",
            "--format",
            format,
            "--target",
            "127.0.0.1:8080",
            "--target",
            "127.0.0.1:9090",
            "--mix",
            "http=80,tcp=10,icmp=10",
            "--interval",
            "30s",
            "--seed",
            "7",
            "--output",
            path.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let v = cpra(&["validate", path.to_str().unwrap()]);
        assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
        assert!(stdout(&v).contains("500 monitors, 0 errors, 0 warnings"), "{}", stdout(&v));
    }
    // Same seed, same output; to stdout when no --output.
    let a = cpra(&["gen", "--monitors", "20", "--seed", "3"]);
    let b = cpra(&["gen", "--monitors", "20", "--seed", "3"]);
    assert_eq!(a.stdout, b.stdout);
    assert!(stdout(&a).contains("svc-00000019"));
    // Bad options are usage errors.
    assert_eq!(cpra(&["gen", "--monitors", "1", "--mix", "htp=1"]).status.code(), Some(2));
    assert_eq!(cpra(&["gen", "--monitors", "1", "--target", "nohost"]).status.code(), Some(2));
    assert_eq!(cpra(&["gen", "--monitors", "1", "--interval", "5"]).status.code(), Some(2));
}

#[test]
fn help_lists_the_commands() {
    let o = cpra(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("validate") && out.contains("gen"), "{out}");
    assert_eq!(cpra(&[]).status.code(), Some(2));
}
