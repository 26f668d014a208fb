//! `cpra run --config runtime.yaml`: the real binary with a settings file, the flags over it,
//! and the start line that shows what is in force.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");

const MANIFEST: &str = "version: \"1\"\nmonitors:\n  - name: one\n    pulse_check:\n      type: tcp\n      interval: 1h\n      timeout: 1s\n      config: {host: 127.0.0.1, port: 9}\n";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `cpra run` on the one-monitor manifest for 100 ms with `extra` flags.
fn run(dir: &tempfile::TempDir, extra: &[&str]) -> Output {
    let manifest = write(dir, "fleet.yaml", MANIFEST);
    Command::new(CPRA)
        .args(["run", &manifest, "--duration", "100ms", "--listen", "none", "--data-dir", "none"])
        .args(extra)
        .output()
        .unwrap()
}

fn start_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr.lines().find(|l| l.starts_with("starting: ")).expect("a start line").to_owned()
}

/// The cores this test may use, as the kernel lists them (`0-1`, `0,2`).
fn allowed_cores() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
    cpra_engine::settings::parse_cpuset(list.trim()).unwrap()
}

#[test]
fn a_settings_file_changes_what_the_start_line_prints() {
    let dir = tempfile::tempdir().unwrap();
    let core = *allowed_cores().last().unwrap();
    let config = write(
        &dir,
        "runtime.yaml",
        &format!(
            "# one shard on the last core\nshards: 1\ncpuset: {core}\nin_flight_per_shard: 512\n\
             ring_depth: 64\nio_memory: 128KiB\nresolver_threads: 2\nnotifier_concurrency: 8\n"
        ),
    );
    let default = start_line(&run(&dir, &[]));
    assert!(default.contains("4096 asked"), "{default}");
    assert!(default.contains("ring depth 128, io_memory 64KiB"), "{default}");
    let line = start_line(&run(&dir, &["--config", &config]));
    assert!(line.starts_with(&format!("starting: 1 shard(s) on cores {core} |")), "{line}");
    assert!(line.contains("2 resolver thread(s)"), "{line}");
    assert!(
        line.contains("512 checks in flight per shard (512 asked), 8 alert deliveries"),
        "{line}"
    );
    assert!(line.contains("ring depth 64, io_memory 128KiB"), "{line}");
    assert!(line.contains("data dir none | listen none"), "{line}");
}

#[test]
fn a_flag_overrides_the_same_field_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        write(&dir, "runtime.yaml", "shards: 1\nring_depth: 64\nin_flight_per_shard: 512\n");
    let line =
        start_line(&run(&dir, &["--config", &config, "--ring-depth", "32", "--in-flight", "100"]));
    assert!(line.contains("ring depth 32,"), "{line}");
    assert!(line.contains("(100 asked)"), "{line}");
    // What no flag overrides stays as the file says.
    assert!(line.starts_with("starting: 1 shard(s)"), "{line}");
}

#[test]
fn a_bad_field_is_refused_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(&dir, "runtime.yaml", "shards: 1\nring_dept: 64\nin_flight_per_shard: 2\n");
    let out = run(&dir, &["--config", &config]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{config}:2:1: unknown field `ring_dept`")), "{stderr}");
    assert!(
        stderr.contains(&format!("{config}:3:22: in_flight_per_shard: 2: out of range: 16 to")),
        "{stderr}"
    );
    assert!(!stderr.lines().any(|l| l.starts_with("starting: ")), "{stderr}");
    // A bad flag value is named as the flag.
    let out = run(&dir, &["--ring-depth", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: --ring-depth 0: out of range: 8 to 32768"), "{stderr}");
}

/// Kills and reaps the child on drop, also when an assertion fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_shard_runs_on_the_core_the_cpuset_names_and_the_resolver_off_it() {
    let cores = allowed_cores();
    if cores.len() < 2 {
        eprintln!("skipped: one core only, nothing to keep the control plane off");
        return;
    }
    let core = *cores.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(&dir, "fleet.yaml", MANIFEST);
    let mut child = Command::new(CPRA)
        .args(["run", &manifest, "--listen", "none", "--data-dir", "none"])
        .args(["--cpuset", &core.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = Guard(child);
    // Read until the shards run (the line after the start line's).
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains("running") {
            break;
        }
    }
    let mut seen = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", guard.0.id())).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        let Some(list) = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) else {
            continue;
        };
        seen.push((comm.trim().to_owned(), list.trim().to_owned()));
    }
    let on = |prefix: &str| seen.iter().filter(|(c, _)| c.starts_with(prefix)).collect::<Vec<_>>();
    // The executor thread and the helper threads glommio names after it.
    let shards = on("cpra-shard");
    assert!(!shards.is_empty(), "{seen:?}");
    assert!(shards.iter().all(|(_, list)| *list == core.to_string()), "{seen:?}");
    let resolvers = on("cpra-resolver");
    assert!(!resolvers.is_empty(), "{seen:?}");
    for (_, list) in resolvers {
        let list = cpra_engine::settings::parse_cpuset(list).unwrap();
        assert!(!list.contains(&core), "a resolver thread may run on the shard's core: {seen:?}");
    }
}
