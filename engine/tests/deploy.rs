//! What `deploy/` ships: the tuned runtime settings per core count (equal to what `cpra tune
//! config` writes, and loadable by `cpra run --config`), the systemd unit (verified by
//! `systemd-analyze verify` where it is installed) and the Dockerfile (which cannot be built
//! here: its binary and copied files must exist).

use std::path::{Path, PathBuf};
use std::process::Command;

use cpra_engine::tune::generate::{shipped, to_yaml, tune, SHIPPED_CORES, UNIT_NOFILE};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn tuned(cores: usize) -> PathBuf {
    repo().join(format!("deploy/tuned/cores-{cores}.yaml"))
}

#[test]
fn the_shipped_configs_are_what_tune_config_writes() {
    for &cores in SHIPPED_CORES {
        let shipped_text = std::fs::read_to_string(tuned(cores)).unwrap();
        let m = shipped(cores);
        assert_eq!(shipped_text, to_yaml(m, &tune(m)), "deploy/tuned/cores-{cores}.yaml");
        // And the command its header names writes it too.
        let out = Command::new(CPRA)
            .args(["tune", "config", "--cores", &cores.to_string()])
            .args(["--memory", &format!("{}GiB", cores * 4), "--nofile", &UNIT_NOFILE.to_string()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), shipped_text, "cores {cores}");
        assert!(
            shipped_text.contains(&format!("--cores {cores} ")),
            "the header names its command"
        );
    }
}

/// Each file is a valid settings file for `cpra run --config`: on this machine the ones
/// whose cpuset fits start (and say so), the others are refused for their cores alone.
#[test]
fn each_shipped_config_loads_with_run_config() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("fleet.yaml");
    std::fs::write(
        &manifest,
        "version: \"1\"\nmonitors:\n  - name: one\n    pulse_check:\n      type: tcp\n      interval: 1h\n      timeout: 1s\n      config: {host: 127.0.0.1, port: 9}\n",
    )
    .unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for &n in SHIPPED_CORES {
        let out = Command::new(CPRA)
            .args(["run", manifest.to_str().unwrap(), "--duration", "100ms"])
            .args(["--listen", "none", "--data-dir", "none", "--config"])
            .arg(tuned(n))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let settings = cpra_engine::settings::load(&tuned(n)).unwrap();
        let fits = settings.cpuset.as_ref().unwrap().iter().all(|&c| c < cores);
        if fits {
            assert_eq!(out.status.code(), Some(0), "cores-{n}: {stderr}");
            let shards = settings.shards.unwrap();
            assert!(
                stderr.contains(&format!("starting: {shards} shard(s)")),
                "cores-{n}: {stderr}"
            );
        } else {
            assert_eq!(out.status.code(), Some(1), "cores-{n}: {stderr}");
            assert!(stderr.contains("cpuset: core"), "cores-{n}: {stderr}");
            assert!(!stderr.contains(".yaml:"), "cores-{n} has problems: {stderr}");
        }
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/cpra.service")).unwrap();
    for setting in [
        "LimitMEMLOCK=",
        "LimitNOFILE=",
        "AmbientCapabilities=CAP_NET_RAW",
        "CPUAffinity=",
        "DynamicUser=yes",
        "StateDirectory=cpra",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "--data-dir /var/lib/cpra",
    ] {
        assert!(unit.contains(setting), "the unit lacks {setting}");
    }
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if !analyze.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    // Verified with ExecStart on the binary just built (verify wants it to exist).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpra.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/cpra", CPRA)).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    // An unknown or misspelt setting is only a warning to systemd: none allowed.
    assert!(!said.contains("cpra.service"), "{said}");
}

#[test]
fn the_dockerfile_builds_the_binary_from_files_that_exist() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(repo().join("engine/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"cpra\""), "the binary target is named cpra");
    assert!(text.contains("cargo build --release --locked -p cpra-engine --bin cpra"));
    assert!(text.contains("COPY --from=build /src/target/release/cpra /usr/local/bin/cpra"));
    assert!(text.contains("\nUSER 10001\n"), "runs as a non-root user");
    let mut copied = 0;
    for line in text.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        for source in &words[..words.len() - 1] {
            assert!(
                repo().join(source).exists(),
                "the Dockerfile copies {source}, which does not exist"
            );
            copied += 1;
        }
    }
    assert!(copied >= 5, "{copied} sources copied");
    // Every workspace member is copied (cargo needs them all to build one).
    for member in ["engine", "net", "bench"] {
        assert!(text.contains(&format!("COPY {member} {member}")), "{member} is not copied");
    }
}
