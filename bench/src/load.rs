//! `load`: how fast, and in how much memory, the streaming loader reads a big manifest.
//!
//! Method: generate N monitors with the engine's generator (the same as `cpra gen`) into a
//! temporary directory, once as YAML and once as JSON. For each, on one thread: reset the
//! peak RSS, load through `cpra_engine::manifest::load_path` keeping every monitor (in chunks,
//! as a runtime's tables would, so no giant reallocation inflates the peak), then read the
//! steady RSS with the fleet still held. Peak and steady are measured above the RSS before the
//! load, so "peak / kept" is the loader's overhead over the fleet it produces. Reference, same
//! run: the whole-document-tree approach (serde_json::Value for JSON) and, for YAML,
//! saphyr-parser's bare event stream and the loader's own scanner's (`yaml_scan`, events only:
//! the parser floors, no decoding at all). `json-general`, on by default, loads the same JSON
//! with the direct decoder off (every monitor through events, tree and decoder), in its own
//! process like each format, so the direct decoder's gain is a ratio from one run. `json-serde`,
//! also on by default, decodes the same JSON with serde_json into `#[derive(Deserialize)]`
//! structs, streamed and kept the same way (see `load_serde`): the figure that says whether the
//! hand-written direct decoder is worth keeping. `json-serde-slice` (not by default) is the
//! same with the whole file read into memory first, serde_json's fastest input, and
//! `json-serde-discard` (not by default) streams from the file but drops each monitor once
//! decoded: serde's decoding alone, with no kept fleet to fault in.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use cpra_engine::manifest::event::ParseEvent;
use cpra_engine::manifest::gen::{parse_mix, write_manifest, GenOptions};
use cpra_engine::manifest::yaml_scan::YamlScanner;
use cpra_engine::manifest::{load_path, Format, LoadOptions, Monitor};

use crate::load_serde::{self, TypedMonitor};
use crate::rss::{reset_peak, rss_and_peak, thread_cpu_seconds};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Monitors in the generated manifest.
    #[arg(long, default_value_t = 1_000_000)]
    monitors: u64,
    /// Formats to measure: yaml, json, json-general (JSON with the direct decoder off),
    /// json-serde (JSON by serde_json into derived typed structs, streamed from the file),
    /// json-serde-slice (the same from the whole file in memory), json-serde-discard
    /// (streamed, each monitor dropped once decoded).
    #[arg(long, value_delimiter = ',', default_value = "yaml,json,json-general,json-serde")]
    formats: Vec<String>,
    /// Directory for the generated files (default: a new one under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the generated files.
    #[arg(long)]
    keep: bool,
    /// Skip the reference (whole-tree) measurement.
    #[arg(long)]
    no_reference: bool,
}

/// Monitors per storage chunk: big enough that chunk bookkeeping is noise, small enough that
/// growing the store never copies a large block (which would inflate the peak).
const CHUNK_MONITORS: usize = 4096;

/// Issue 11's rule: a typed serde decoder replaces the hand-written direct one if it needs at
/// most this many times the direct decoder's CPU time (simpler code is worth that much).
const SERDE_REPLACES_DIRECT_WITHIN: f64 = 1.3;

/// Below this, a run kept no fleet (only allocator noise): any real fleet is megabytes.
const NOTHING_KEPT_BYTES: u64 = 1 << 20;

/// Where `json-serde` reads from.
#[derive(Clone, Copy)]
enum SerdeInput {
    /// Streamed from the file through a `BufReader`, as the loader reads.
    Reader,
    /// The whole file read into memory first (held for the load: it counts in the peak).
    Slice,
    /// As `Reader`, but each monitor is dropped once decoded: decoding alone.
    Discard,
}

struct Measure {
    format: &'static str,
    monitors: usize,
    /// Monitors JSON's direct decoder took.
    monitors_direct: usize,
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_bytes: u64,
    steady_rss_bytes: u64,
    peak_over_base: u64,
    kept_over_base: u64,
    file_bytes: u64,
    ref_seconds: Option<f64>,
    ref_cpu_seconds: Option<f64>,
    ref_peak_over_base: Option<u64>,
    ref_name: &'static str,
    /// YAML: CPU time of the loader's fast scanner alone (events, no decoding).
    scan_cpu_seconds: Option<f64>,
}

pub fn run(args: &LoadArgs) -> i32 {
    // Each format in its own process: the allocator keeps freed pages mapped, so a second load
    // in the same process would reuse the first one's memory and its RSS figures would lie.
    if args.formats.len() > 1 {
        return run_children(args);
    }
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cpra-bench-load-{}", std::process::id()))
    });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return 2;
    }
    let mut lines = Vec::new();
    for f in &args.formats {
        let (format, label, direct, serde) = match f.as_str() {
            "yaml" => (Format::Yaml, "yaml", true, None),
            "json" => (Format::Json, "json", true, None),
            "json-general" => (Format::Json, "json-general", false, None),
            "json-serde" => (Format::Json, "json-serde", false, Some(SerdeInput::Reader)),
            "json-serde-slice" => {
                (Format::Json, "json-serde-slice", false, Some(SerdeInput::Slice))
            }
            "json-serde-discard" => {
                (Format::Json, "json-serde-discard", false, Some(SerdeInput::Discard))
            }
            other => {
                eprintln!(
                    "unknown format '{other}' (yaml, json, json-general, json-serde, json-serde-slice, json-serde-discard)"
                );
                return 2;
            }
        };
        let path = dir.join(format!("fleet-{}.{}", args.monitors, format.as_str()));
        let t = Instant::now();
        if let Err(e) = generate(&path, args.monitors, format) {
            eprintln!("cannot write {}: {e}", path.display());
            return 2;
        }
        let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "generated {} monitors as {} ({:.1} MB) in {:.2} s",
            args.monitors,
            format.as_str(),
            file_bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        // The reference is measured once per format, with `json`.
        let reference = !args.no_reference && direct;
        let measured = match serde {
            Some(input) => measure_serde(&path, label, input, file_bytes),
            None => measure(&path, format, label, direct, file_bytes, reference),
        };
        if !args.keep {
            let _ = std::fs::remove_file(&path);
        }
        match measured {
            Ok(m) => lines.push(json_line(&m)),
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        }
    }
    if !args.keep && args.dir.is_none() {
        let _ = std::fs::remove_dir(&dir);
    }
    finish(&lines);
    0
}

/// Run `load` once per format in a child process and combine their JSON lines.
fn run_children(args: &LoadArgs) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot find this executable: {e}");
            return 2;
        }
    };
    let mut lines = Vec::new();
    for f in &args.formats {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["load", "--monitors", &args.monitors.to_string(), "--formats", f]);
        if let Some(d) = &args.dir {
            cmd.arg("--dir").arg(d);
        }
        if args.keep {
            cmd.arg("--keep");
        }
        if args.no_reference {
            cmd.arg("--no-reference");
        }
        let out = match cmd.stderr(std::process::Stdio::inherit()).output() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("cannot run {}: {e}", exe.display());
                return 2;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        // The child's human lines come before its table (after the first blank line), which is
        // redrawn below for all formats; its per-format JSON line is collected.
        let mut in_table = false;
        for l in text.lines() {
            if l.is_empty() {
                in_table = true;
            } else if !in_table {
                println!("{l}");
            } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                if v.get("format").is_some() {
                    lines.push(v);
                }
            }
        }
        if !out.status.success() {
            eprintln!("load --formats {f} failed: {}", out.status);
            return out.status.code().unwrap_or(1);
        }
    }
    finish(&lines);
    0
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
}

/// The summary table, the per-format JSON lines, and last the combined JSON line.
fn finish(lines: &[serde_json::Value]) {
    println!();
    println!(
        "{:<12} {:>9} {:>7} {:>11} {:>12} {:>8} {:>8} {:>9}  reference (its CPU time and peak / ours)",
        "format", "monitors", "secs", "monitors/s", "per CPU-sec", "kept MB", "peak MB", "peak/kept"
    );
    for v in lines {
        let reference = match (
            v.get("reference_cpu_seconds").and_then(serde_json::Value::as_f64),
            v.get("reference_peak_over_base_bytes").and_then(serde_json::Value::as_f64),
        ) {
            (Some(s), Some(p)) => format!(
                "{}: {:.2}x CPU, {:.1}x peak",
                v["reference"].as_str().unwrap_or(""),
                s / num(v, "cpu_seconds").max(1e-9),
                p / num(v, "peak_over_base_bytes").max(1.0)
            ),
            (Some(s), None) => format!(
                "{}: {:.2}x CPU",
                v["reference"].as_str().unwrap_or(""),
                s / num(v, "cpu_seconds").max(1e-9)
            ),
            _ => "-".into(),
        };
        println!(
            "{:<12} {:>9} {:>7.2} {:>11.0} {:>12.0} {:>8.1} {:>8.1} {:>9.2}  {}",
            v["format"].as_str().unwrap_or(""),
            num(v, "monitors"),
            num(v, "seconds"),
            num(v, "monitors_per_sec"),
            num(v, "monitors_per_cpu_sec"),
            num(v, "kept_over_base_bytes") / 1e6,
            num(v, "peak_over_base_bytes") / 1e6,
            num(v, "peak_over_kept"),
            reference
        );
    }
    for v in lines {
        if let Some(ratio) =
            v.get("yaml_scan_events_per_cpu_sec_over_saphyr").and_then(serde_json::Value::as_f64)
        {
            println!(
                "yaml events only: yaml_scan {:.0} monitors per CPU-second, saphyr {:.0}: {ratio:.2}x (target >= 4x)",
                num(v, "monitors") / num(v, "yaml_scan_events_cpu_seconds").max(1e-9),
                num(v, "monitors") / num(v, "reference_cpu_seconds").max(1e-9),
            );
        }
    }
    let cpu_of =
        |name: &str| lines.iter().find(|v| v["format"] == name).map(|v| num(v, "cpu_seconds"));
    if let (Some(direct), Some(general)) = (cpu_of("json"), cpu_of("json-general")) {
        println!(
            "json direct decoder over the general path (same file, CPU time): {:.2}x",
            general / direct.max(1e-9)
        );
    }
    for serde in ["json-serde", "json-serde-slice", "json-serde-discard"] {
        if let (Some(direct), Some(typed)) = (cpu_of("json"), cpu_of(serde)) {
            println!(
                "{serde} (typed serde_json derive) over the json direct decoder (same file, CPU time): {:.2}x (direct is kept unless this is <= {SERDE_REPLACES_DIRECT_WITHIN}x)",
                typed / direct.max(1e-9)
            );
        }
    }
    println!("targets: >= 100000 monitors/s (yaml), >= 500000 monitors/s (json), peak/kept <= 1.5");
    for l in lines {
        println!("{l}");
    }
    // Last: one combined line.
    println!("{}", serde_json::json!({"bench": "load", "results": lines}));
}

fn json_line(m: &Measure) -> serde_json::Value {
    serde_json::json!({
        "bench": "load",
        "format": m.format,
        "monitors": m.monitors,
        "monitors_direct": m.monitors_direct,
        "seconds": m.seconds,
        "monitors_per_sec": m.monitors as f64 / m.seconds,
        "cpu_seconds": m.cpu_seconds,
        "monitors_per_cpu_sec": m.monitors as f64 / m.cpu_seconds.max(1e-9),
        "peak_rss_bytes": m.peak_rss_bytes,
        "steady_rss_bytes": m.steady_rss_bytes,
        // Null when nothing is kept (`json-serde-discard`): a ratio over nothing says nothing.
        "peak_over_kept": (m.kept_over_base >= NOTHING_KEPT_BYTES)
            .then(|| m.peak_over_base as f64 / m.kept_over_base as f64),
        "peak_over_base_bytes": m.peak_over_base,
        "kept_over_base_bytes": m.kept_over_base,
        "file_bytes": m.file_bytes,
        "reference": m.ref_name,
        "reference_seconds": m.ref_seconds,
        "reference_cpu_seconds": m.ref_cpu_seconds,
        "reference_peak_over_base_bytes": m.ref_peak_over_base,
        "yaml_scan_events_cpu_seconds": m.scan_cpu_seconds,
        "yaml_scan_events_per_cpu_sec_over_saphyr": m.scan_cpu_seconds.zip(m.ref_cpu_seconds).map(|(s, r)| r / s.max(1e-9)),
    })
}

fn generate(path: &Path, monitors: u64, format: Format) -> std::io::Result<()> {
    let opts = GenOptions {
        monitors,
        format,
        targets: (0..16).map(|i| format!("127.0.0.1:{}", 18000 + i)).collect(),
        mix: parse_mix("http=80,tcp=10,icmp=10").unwrap_or_default(),
        interval: "60s".into(),
        seed: 42,
        // The same fleet as measured before these were options.
        ..GenOptions::default()
    };
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write_manifest(&opts, &mut w)?;
    w.flush()
}

fn measure(
    path: &Path,
    format: Format,
    label: &'static str,
    direct_json: bool,
    file_bytes: u64,
    reference: bool,
) -> Result<Measure, String> {
    let resettable = reset_peak();
    let (base, _) = rss_and_peak();
    let mut store: Vec<Vec<Monitor>> = Vec::new();
    let t = Instant::now();
    let cpu0 = thread_cpu_seconds();
    let opts = LoadOptions { direct_json, ..LoadOptions::default() };
    let report = load_path(path, &opts, |m| {
        if store.last().is_none_or(|c| c.len() == CHUNK_MONITORS) {
            store.push(Vec::with_capacity(CHUNK_MONITORS));
        }
        if let Some(chunk) = store.last_mut() {
            chunk.push(m);
        }
    })
    .map_err(|e| e.to_string())?;
    let seconds = t.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds() - cpu0;
    let (steady, peak) = rss_and_peak();
    if !report.is_valid() {
        return Err(format!(
            "the generated manifest is invalid: {:?}",
            report.problems.kept.first()
        ));
    }
    let monitors: usize = store.iter().map(Vec::len).sum();
    println!(
        "{}: loaded {} monitors ({} by the direct decoder) in {:.2} s ({:.0}/s; {:.2} s of CPU: {:.0}/s per core); {} distinct codes blocks; kept {:.1} MB, peak {:.1} MB over a base of {:.1} MB{}",
        label,
        monitors,
        report.monitors_direct,
        seconds,
        monitors as f64 / seconds,
        cpu_seconds,
        monitors as f64 / cpu_seconds.max(1e-9),
        report.distinct_codes,
        steady.saturating_sub(base) as f64 / 1e6,
        peak.saturating_sub(base) as f64 / 1e6,
        base as f64 / 1e6,
        if resettable { "" } else { " (peak not resettable: since process start)" }
    );
    drop(store);
    let (mut ref_seconds, mut ref_peak, mut ref_cpu) = (None, None, None);
    let mut scan_cpu_seconds = None;
    let mut ref_name = "none";
    if reference {
        reset_peak();
        let (rbase, _) = rss_and_peak();
        let t = Instant::now();
        let rcpu0 = thread_cpu_seconds();
        match format {
            Format::Json => {
                ref_name = "serde_json::Value";
                let file = File::open(path).map_err(|e| e.to_string())?;
                let v: serde_json::Value =
                    serde_json::from_reader(BufReader::with_capacity(256 << 10, file))
                        .map_err(|e| e.to_string())?;
                ref_seconds = Some(t.elapsed().as_secs_f64());
                ref_cpu = Some(thread_cpu_seconds() - rcpu0);
                let (_, p) = rss_and_peak();
                ref_peak = Some(p.saturating_sub(rbase));
                let n = v.get("monitors").and_then(|m| m.as_array()).map_or(0, Vec::len);
                println!("json reference: serde_json::Value tree of {n} monitors in {:.2} s, peak {:.1} MB", ref_seconds.unwrap_or(0.0), p.saturating_sub(rbase) as f64 / 1e6);
            }
            Format::Yaml => {
                ref_name = "saphyr events only";
                let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
                let t = Instant::now();
                let rcpu0 = thread_cpu_seconds();
                let mut parser = saphyr_parser::Parser::new_from_str(&text);
                let mut events = 0u64;
                while let Some(ev) = parser.next_event() {
                    ev.map_err(|e| e.to_string())?;
                    events += 1;
                }
                ref_seconds = Some(t.elapsed().as_secs_f64());
                ref_cpu = Some(thread_cpu_seconds() - rcpu0);
                drop(text);
                println!("yaml reference: saphyr-parser bare events ({events} events, no decoding) in {:.2} s ({:.2} s of CPU: {:.0} monitors/s per core)", ref_seconds.unwrap_or(0.0), ref_cpu.unwrap_or(0.0), monitors as f64 / ref_cpu.unwrap_or(0.0).max(1e-9));
                // The loader's own YAML scanner, events only, read from the file as the loader
                // reads it: what replaced saphyr on the fast path.
                let file = File::open(path).map_err(|e| e.to_string())?;
                let t = Instant::now();
                let scpu0 = thread_cpu_seconds();
                let mut scanner = YamlScanner::new(file);
                let mut scanned = 0u64;
                loop {
                    match scanner.next_event() {
                        Ok((ParseEvent::End, _)) => break,
                        Ok(_) => scanned += 1,
                        Err(_) => {
                            return Err("yaml_scan fell back on the generated manifest".into())
                        }
                    }
                }
                let scan_s = t.elapsed().as_secs_f64();
                let scan_cpu = thread_cpu_seconds() - scpu0;
                scan_cpu_seconds = Some(scan_cpu);
                println!(
                    "yaml_scan events only ({scanned} events, no decoding) in {scan_s:.2} s ({scan_cpu:.2} s of CPU: {:.0} monitors/s per core, {:.2}x saphyr's events-only rate)",
                    monitors as f64 / scan_cpu.max(1e-9),
                    ref_cpu.unwrap_or(0.0) / scan_cpu.max(1e-9)
                );
            }
        }
    }
    Ok(Measure {
        format: label,
        monitors,
        monitors_direct: report.monitors_direct,
        seconds,
        cpu_seconds,
        peak_rss_bytes: peak,
        steady_rss_bytes: steady,
        peak_over_base: peak.saturating_sub(base),
        kept_over_base: steady.saturating_sub(base),
        file_bytes,
        ref_seconds,
        ref_cpu_seconds: ref_cpu,
        ref_peak_over_base: ref_peak,
        ref_name,
        scan_cpu_seconds,
    })
}

/// `json-serde`: the same file decoded by serde_json into the typed structs of
/// [`crate::load_serde`], streamed one monitor at a time, every monitor kept in chunks like
/// `measure` keeps the loader's. Measured the same way (CPU time of this thread, RSS above the
/// base), in its own process.
fn measure_serde(
    path: &Path,
    label: &'static str,
    input: SerdeInput,
    file_bytes: u64,
) -> Result<Measure, String> {
    let resettable = reset_peak();
    let (base, _) = rss_and_peak();
    let mut store: Vec<Vec<TypedMonitor>> = Vec::new();
    let discard = matches!(input, SerdeInput::Discard);
    let mut discarded = 0usize;
    let mut keep = |m: TypedMonitor| {
        if discard {
            discarded += 1;
            return;
        }
        if store.last().is_none_or(|c| c.len() == CHUNK_MONITORS) {
            store.push(Vec::with_capacity(CHUNK_MONITORS));
        }
        if let Some(chunk) = store.last_mut() {
            chunk.push(m);
        }
    };
    let t = Instant::now();
    let cpu0 = thread_cpu_seconds();
    let fleet = match input {
        SerdeInput::Reader | SerdeInput::Discard => {
            let file = File::open(path).map_err(|e| e.to_string())?;
            let mut de =
                serde_json::Deserializer::from_reader(BufReader::with_capacity(256 << 10, file));
            load_serde::decode(&mut de, &mut keep)
        }
        SerdeInput::Slice => {
            let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            load_serde::decode(&mut de, &mut keep)
        }
    }
    .map_err(|e| format!("{label}: the typed serde decoder refused the generated manifest: {e}"))?;
    let seconds = t.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds() - cpu0;
    let (steady, peak) = rss_and_peak();
    let monitors: usize = store.iter().map(Vec::len).sum::<usize>() + discarded;
    println!(
        "{}: decoded {} typed monitors ({} bytes inline each{}; {} endpoints, {} groups) in {:.2} s ({:.0}/s; {:.2} s of CPU: {:.0}/s per core); kept {:.1} MB, peak {:.1} MB over a base of {:.1} MB{}",
        label,
        monitors,
        std::mem::size_of::<TypedMonitor>(),
        if discard { ", dropped once decoded" } else { "" },
        fleet.endpoints.len(),
        fleet.groups.len(),
        seconds,
        monitors as f64 / seconds,
        cpu_seconds,
        monitors as f64 / cpu_seconds.max(1e-9),
        steady.saturating_sub(base) as f64 / 1e6,
        peak.saturating_sub(base) as f64 / 1e6,
        base as f64 / 1e6,
        if resettable { "" } else { " (peak not resettable: since process start)" }
    );
    drop(store);
    Ok(Measure {
        format: label,
        monitors,
        monitors_direct: 0,
        seconds,
        cpu_seconds,
        peak_rss_bytes: peak,
        steady_rss_bytes: steady,
        peak_over_base: peak.saturating_sub(base),
        kept_over_base: steady.saturating_sub(base),
        file_bytes,
        ref_seconds: None,
        ref_cpu_seconds: None,
        ref_peak_over_base: None,
        ref_name: "none",
        scan_cpu_seconds: None,
    })
}
