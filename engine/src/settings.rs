//! The runtime settings: how `cpra run` uses the machine (shards and their cores, in-flight
//! checks, io_uring rings, resolver threads, notifier concurrency, cooldown, journal commit
//! interval), read from `--config runtime.yaml` with the command line's flags over it.
//!
//! What it is for: one parser per setting, shared by the file and the flags (so both refuse
//! the same values with the same words); reading the file with every problem at its
//! file:line:column and unknown fields refused, as manifests are; and [`resolve`], the pure
//! rule that turns what was asked into what runs ([`Effective`]), cores included. What it is
//! not for: what a monitor does (the manifest), or the host's limits (`fd_budget`, `tune`).
//!
//! The fields are documented in docs/tuning.md; a test checks every field is there.

use std::fmt;
use std::path::Path;

use crate::limits::{
    DEFAULT_MAX_DELIVERIES_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_RING_DEPTH, IO_MEMORY_BYTES,
    MAX_CPU_INDEX, MAX_FSYNC_INTERVAL_MS, MAX_IN_FLIGHT_LIMIT, MAX_IO_MEMORY_BYTES,
    MAX_NOTIFIER_CONCURRENCY, MAX_RING_DEPTH, MAX_SETTINGS_FILE_BYTES, MAX_SHARDS,
    MAX_SPIN_BEFORE_PARK_US, MIN_CHECKS_IN_FLIGHT_PER_SHARD, MIN_DELIVERIES_IN_FLIGHT_PER_SHARD,
    MIN_IO_MEMORY_BYTES, MIN_RING_DEPTH,
};
use crate::manifest::duration::{format_ms, parse_go_duration};
use crate::state::MAX_COOLDOWN_MS;
use cpra_net::limits::MAX_RESOLVER_THREADS;

/// The fields of a runtime settings file, in the order they are documented and printed,
/// each with the flag that overrides it.
pub const FIELDS: &[(&str, &str)] = &[
    ("shards", "--shards"),
    ("cpuset", "--cpuset"),
    ("in_flight_per_shard", "--in-flight"),
    ("ring_depth", "--ring-depth"),
    ("io_memory", "--io-memory"),
    ("spin_before_park", "--spin-before-park"),
    ("resolver_threads", "--resolver-threads"),
    ("notifier_concurrency", "--notifier-concurrency"),
    ("cooldown", "--cooldown"),
    ("fsync_interval", "--fsync-interval"),
];

/// What a settings file (or the flags) asked for; `None`: not said, the default applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// 0: one per core of the cpuset.
    pub shards: Option<usize>,
    /// The cores the shards run on, in order (shard k on the k-th).
    pub cpuset: Option<Vec<usize>>,
    pub in_flight_per_shard: Option<u32>,
    pub ring_depth: Option<usize>,
    pub io_memory_bytes: Option<usize>,
    pub spin_before_park_us: Option<u64>,
    pub resolver_threads: Option<usize>,
    pub notifier_concurrency: Option<usize>,
    pub cooldown_ms: Option<u32>,
    pub fsync_interval_ms: Option<u64>,
}

impl RuntimeSettings {
    /// Sets `field` from its text, checked against its bound. `Err` says why, without the
    /// field's name (the caller names the file position or the flag).
    pub fn set(&mut self, field: &str, text: &str) -> Result<(), SetError> {
        let text = text.trim();
        let invalid = SetError::Invalid;
        match field {
            "shards" => {
                self.shards = Some(count(text, 0, MAX_SHARDS as u64).map_err(invalid)? as usize)
            }
            "cpuset" => self.cpuset = Some(parse_cpuset(text).map_err(invalid)?),
            "in_flight_per_shard" => {
                let n =
                    count(text, MIN_CHECKS_IN_FLIGHT_PER_SHARD.into(), MAX_IN_FLIGHT_LIMIT.into());
                self.in_flight_per_shard = Some(n.map_err(invalid)? as u32);
            }
            "ring_depth" => {
                let n = count(text, MIN_RING_DEPTH as u64, MAX_RING_DEPTH as u64);
                self.ring_depth = Some(n.map_err(invalid)? as usize);
            }
            "io_memory" => self.io_memory_bytes = Some(parse_io_memory(text).map_err(invalid)?),
            "spin_before_park" => {
                let us = duration_us(text, MAX_SPIN_BEFORE_PARK_US).map_err(invalid)?;
                self.spin_before_park_us = Some(us);
            }
            "resolver_threads" => {
                let n = count(text, 1, MAX_RESOLVER_THREADS as u64);
                self.resolver_threads = Some(n.map_err(invalid)? as usize);
            }
            "notifier_concurrency" => {
                let n = count(
                    text,
                    MIN_DELIVERIES_IN_FLIGHT_PER_SHARD as u64,
                    MAX_NOTIFIER_CONCURRENCY as u64,
                );
                self.notifier_concurrency = Some(n.map_err(invalid)? as usize);
            }
            "cooldown" => {
                let us = duration_us(text, u64::from(MAX_COOLDOWN_MS) * 1000).map_err(invalid)?;
                self.cooldown_ms = Some((us / 1000) as u32);
            }
            "fsync_interval" => {
                let us = duration_us(text, MAX_FSYNC_INTERVAL_MS * 1000).map_err(invalid)?;
                if us < 1000 {
                    return Err(invalid("must be at least 1ms".to_owned()));
                }
                self.fsync_interval_ms = Some(us / 1000);
            }
            _ => return Err(SetError::Unknown),
        }
        Ok(())
    }

    /// `over` laid on `self`: each field `over` says wins (the flags over the file).
    pub fn overridden_by(self, over: RuntimeSettings) -> RuntimeSettings {
        RuntimeSettings {
            shards: over.shards.or(self.shards),
            cpuset: over.cpuset.or(self.cpuset),
            in_flight_per_shard: over.in_flight_per_shard.or(self.in_flight_per_shard),
            ring_depth: over.ring_depth.or(self.ring_depth),
            io_memory_bytes: over.io_memory_bytes.or(self.io_memory_bytes),
            spin_before_park_us: over.spin_before_park_us.or(self.spin_before_park_us),
            resolver_threads: over.resolver_threads.or(self.resolver_threads),
            notifier_concurrency: over.notifier_concurrency.or(self.notifier_concurrency),
            cooldown_ms: over.cooldown_ms.or(self.cooldown_ms),
            fsync_interval_ms: over.fsync_interval_ms.or(self.fsync_interval_ms),
        }
    }
}

/// Why a field could not be set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetError {
    Unknown,
    Invalid(String),
}

/// A problem in a settings file, at its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// Reads the settings file at `path`: every problem, or the settings.
pub fn load(path: &Path) -> Result<RuntimeSettings, Vec<Problem>> {
    let file = path.display().to_string();
    let whole = |message: String| vec![Problem { file: file.clone(), line: 1, column: 1, message }];
    let size = std::fs::metadata(path).map_err(|e| whole(format!("cannot read it: {e}")))?.len();
    if size > MAX_SETTINGS_FILE_BYTES {
        return Err(whole(format!(
            "{size} bytes: a runtime settings file is a dozen lines; more than {MAX_SETTINGS_FILE_BYTES} bytes is not one"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read it: {e}")))?;
    parse(&file, &text)
}

/// Parses a settings file's text: one YAML mapping of field to single value. Every problem
/// is reported, each at its line and column (1-based).
pub fn parse(file: &str, text: &str) -> Result<RuntimeSettings, Vec<Problem>> {
    use saphyr_parser::{Event, Parser};
    let mut problems = Vec::new();
    let mut settings = RuntimeSettings::default();
    let at = |span: &saphyr_parser::Span, message: String| Problem {
        file: file.to_owned(),
        line: span.start.line(),
        column: span.start.col() + 1,
        message,
    };
    let mut seen: Vec<&str> = Vec::new();
    // Where the mapping is: 0 before it, 1 in it (expecting a key), 2 after it.
    let mut state = 0u8;
    // Nesting under a refused (non-scalar) value, skipped.
    let mut skip_depth = 0usize;
    let mut key: Option<(String, saphyr_parser::Span)> = None;
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem {
                    file: file.to_owned(),
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    message: format!("not valid YAML: {}", e.info()),
                });
                return Err(problems);
            }
        };
        if skip_depth > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => skip_depth += 1,
                Event::MappingEnd | Event::SequenceEnd => skip_depth -= 1,
                _ => {}
            }
            continue;
        }
        match (state, event) {
            (_, Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing) => {}
            (0, Event::DocumentStart(_)) => {}
            (0, Event::MappingStart(..)) => state = 1,
            (0, _) => {
                problems
                    .push(at(&span, "expected a mapping of settings (`shards: 4`, ...)".into()));
                return Err(problems);
            }
            (1, Event::MappingEnd) => state = 2,
            (1, Event::Scalar(text, ..)) => match key.take() {
                None => key = Some((text.into_owned(), span)),
                Some((name, key_span)) => {
                    if seen.contains(&name.as_str()) {
                        problems.push(at(&key_span, format!("`{name}` is given twice")));
                        continue;
                    }
                    if let Some(&(known, _)) = FIELDS.iter().find(|(f, _)| *f == name) {
                        seen.push(known);
                    }
                    match settings.set(&name, &text) {
                        Ok(()) => {}
                        Err(SetError::Unknown) => problems.push(at(&key_span, unknown(&name))),
                        Err(SetError::Invalid(why)) => {
                            problems.push(at(&span, format!("{name}: {text}: {why}")))
                        }
                    }
                }
            },
            (1, Event::MappingStart(..) | Event::SequenceStart(..)) => {
                skip_depth = 1;
                match key.take() {
                    Some((name, key_span)) if !FIELDS.iter().any(|(f, _)| *f == name) => {
                        problems.push(at(&key_span, unknown(&name)))
                    }
                    Some((name, _)) => problems.push(at(
                        &span,
                        format!("{name}: expected one value (a number, a duration, a size or a core list like 0-3,8)"),
                    )),
                    None => problems.push(at(&span, "a key must be a plain word".into())),
                }
            }
            (1, _) => {
                problems.push(at(&span, "aliases are not accepted in runtime settings".into()))
            }
            (2, Event::DocumentStart(_)) => {
                problems.push(at(&span, "one document only: the settings are one mapping".into()));
                return Err(problems);
            }
            (_, _) => problems.push(at(&span, "unexpected content after the settings".into())),
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

fn unknown(name: &str) -> String {
    let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
    format!("unknown field `{name}`; the fields are: {}", known.join(", "))
}

/// A whole number in `min..=max`.
fn count(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 =
        text.parse().map_err(|_| format!("not a whole number (expected {min} to {max})"))?;
    if n < min || n > max {
        return Err(format!("out of range: {min} to {max}"));
    }
    Ok(n)
}

/// A Go duration (`10ms`, `5m`) in µs, at most `max_us`.
fn duration_us(text: &str, max_us: u64) -> Result<u64, String> {
    let ns = parse_go_duration(text)?;
    let us = ns / 1000;
    if us > max_us {
        return Err(format!("longer than {}, the longest accepted", format_us(max_us)));
    }
    Ok(us)
}

fn format_us(us: u64) -> String {
    if us.is_multiple_of(1000) {
        format_ms(us / 1000)
    } else {
        format!("{us}µs")
    }
}

/// A size in bytes: `65536`, `64KiB`, `1 MiB`, `2GiB` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 =
        digits.parse().map_err(|_| "expected a size such as 65536, 64KiB or 1MiB".to_owned())?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` (use KiB, MiB or GiB)")),
    };
    n.checked_mul(scale).ok_or_else(|| "too large".to_owned())
}

/// A size as the settings file writes it (`64KiB`).
pub fn format_size(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= KIB && b % KIB == 0 => format!("{}KiB", b >> 10),
        b => b.to_string(),
    }
}

fn parse_io_memory(text: &str) -> Result<usize, String> {
    let bytes = parse_size(text)?;
    if bytes < MIN_IO_MEMORY_BYTES as u64 || bytes > MAX_IO_MEMORY_BYTES as u64 {
        return Err(format!(
            "out of range: {} to {}",
            format_size(MIN_IO_MEMORY_BYTES as u64),
            format_size(MAX_IO_MEMORY_BYTES as u64)
        ));
    }
    Ok(bytes as usize)
}

/// A core list as `taskset -c` writes it: `0-3,8,10-11`. Order kept (shard k on the k-th
/// core), each core at most once.
pub fn parse_cpuset(text: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    let core = |t: &str| -> Result<usize, String> {
        let n: usize = t
            .trim()
            .parse()
            .map_err(|_| format!("`{t}` is not a core number (expected a list such as 0-3,8)"))?;
        if n > MAX_CPU_INDEX {
            return Err(format!(
                "core {n}: past {MAX_CPU_INDEX}, the highest CPU number Linux can pin to"
            ));
        }
        Ok(n)
    };
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (core(a)?, core(b)?),
            None => {
                let c = core(part)?;
                (c, c)
            }
        };
        if first > last {
            return Err(format!("`{}`: a range runs from low to high", part.trim()));
        }
        for c in first..=last {
            if cores.contains(&c) {
                return Err(format!("core {c} is listed twice"));
            }
            cores.push(c);
        }
    }
    Ok(cores)
}

/// Cores as a `taskset -c` list, ranges joined (`0-3,8`).
pub fn format_cores(cores: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j == i {
            out.push_str(&cores[i].to_string());
        } else {
            out.push_str(&format!("{}-{}", cores[i], cores[j]));
        }
        i = j + 1;
    }
    out
}

/// What runs: every setting decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub shards: usize,
    /// The core of each shard (shard k on `cores[k]`).
    pub cores: Vec<usize>,
    /// The cores the control plane and resolver threads run on: the allowed cores the shards
    /// do not use; empty when the shards use them all (they then share).
    pub other_cores: Vec<usize>,
    /// Asked for; `fd_budget` may give less under a low descriptor limit.
    pub in_flight_per_shard: u32,
    pub ring_depth: usize,
    pub io_memory_bytes: usize,
    pub spin_before_park_us: u64,
    pub resolver_threads: usize,
    pub notifier_concurrency: usize,
    /// `None`: the state machine's default.
    pub cooldown_ms: Option<u32>,
    pub fsync_interval_ms: Option<u64>,
}

/// The resolver threads when nothing says otherwise: `cpra_net`'s default.
pub fn default_resolver_threads() -> usize {
    cpra_net::resolver::ResolverConfig::default().threads
}

/// Decides what runs from what was asked and the cores this process may use (`allowed`,
/// ascending). Shards default to one per core of the cpuset (all allowed cores without
/// one). With a cpuset, shard k runs on its k-th core; without one, `spread` picks the
/// shards' cores among the allowed ones (`spread_cores` in `cpra run`: spread over the
/// topology, in no fixed order, so that several processes on one host do not all take the
/// first cores; tests pass a fixed rule).
pub fn resolve(
    asked: &RuntimeSettings,
    allowed: &[usize],
    spread: &dyn Fn(usize, &[usize]) -> Vec<usize>,
) -> Result<Effective, String> {
    let pool: Vec<usize> = match &asked.cpuset {
        Some(set) => {
            if let Some(c) = set.iter().find(|c| !allowed.contains(c)) {
                return Err(format!(
                    "cpuset: core {c} is not one this process may run on (online and allowed: {})",
                    format_cores(allowed)
                ));
            }
            set.clone()
        }
        None => allowed.to_vec(),
    };
    if pool.is_empty() {
        return Err("cpuset: no core to run on".to_owned());
    }
    let shards = match asked.shards.unwrap_or(0) {
        0 => pool.len().min(MAX_SHARDS),
        n if n > pool.len() => {
            return Err(format!(
                "{n} shards but only {} cores to pin them to ({}): one shard per core; \
                 leave shards out for one per core",
                pool.len(),
                format_cores(&pool)
            ))
        }
        n => n,
    };
    let cores: Vec<usize> = match &asked.cpuset {
        Some(_) => pool[..shards].to_vec(),
        None => {
            let picked = spread(shards, &pool);
            let valid = picked.len() == shards
                && picked.iter().all(|c| pool.contains(c))
                && (1..picked.len()).all(|i| !picked[..i].contains(&picked[i]));
            if valid {
                picked
            } else {
                pool[..shards].to_vec()
            }
        }
    };
    let other_cores: Vec<usize> = allowed.iter().copied().filter(|c| !cores.contains(c)).collect();
    Ok(Effective {
        shards,
        cores,
        other_cores,
        in_flight_per_shard: asked.in_flight_per_shard.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
        ring_depth: asked.ring_depth.unwrap_or(DEFAULT_RING_DEPTH),
        io_memory_bytes: asked.io_memory_bytes.unwrap_or(IO_MEMORY_BYTES),
        spin_before_park_us: asked.spin_before_park_us.unwrap_or(0),
        resolver_threads: asked.resolver_threads.unwrap_or_else(default_resolver_threads),
        notifier_concurrency: asked
            .notifier_concurrency
            .unwrap_or(DEFAULT_MAX_DELIVERIES_IN_FLIGHT),
        cooldown_ms: asked.cooldown_ms,
        fsync_interval_ms: asked.fsync_interval_ms,
    })
}

/// `shards` cores among `allowed`, spread over the machine's topology (different physical
/// cores and packages first) by glommio's `MaxSpread` placement, which picks in no fixed
/// order; ascending. The first ones if the topology cannot be read.
pub fn spread_cores(shards: usize, allowed: &[usize]) -> Vec<usize> {
    let set = glommio::CpuSet::online().map(|s| s.filter(|l| allowed.contains(&l.cpu)));
    let generator =
        set.and_then(|set| glommio::PoolPlacement::MaxSpread(shards, Some(set)).generate_cpu_set());
    let Ok(mut generator) = generator else {
        return allowed.iter().copied().take(shards).collect();
    };
    let mut cores: Vec<usize> =
        (0..shards).filter_map(|_| generator.next().next()).map(|l| l.cpu).collect();
    cores.sort_unstable();
    cores
}

/// The first `shards` of `allowed`: a fixed rule for tests.
pub fn first_cores(shards: usize, allowed: &[usize]) -> Vec<usize> {
    allowed.iter().copied().take(shards).collect()
}

/// The cores this process may run on: online and in its affinity mask, ascending.
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain bits; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most `size_of::<cpu_set_t>()` bytes into `set`,
    // a live local of that size.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return (0..crate::runtime::online_cores()).collect();
    }
    (0..=MAX_CPU_INDEX)
        // SAFETY: CPU_ISSET reads bit `c` of a live set; c < CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cores` (threads it starts afterwards inherit them): the main
/// thread before it starts the control plane and the resolver, so they keep off the shards'
/// cores. An empty list changes nothing.
pub fn pin_current_thread(cores: &[usize]) -> std::io::Result<()> {
    if cores.is_empty() {
        return Ok(());
    }
    // SAFETY: as in allowed_cores.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cores {
        // SAFETY: CPU_SET writes bit `c` of a live set; cores are at most MAX_CPU_INDEX.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: sched_setaffinity reads one cpu_set_t from a live local.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        parse("rt.yaml", text).unwrap_err().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_file_sets_every_field() {
        let text = "# tuned\nshards: 2\ncpuset: 0-1\nin_flight_per_shard: 1024\nring_depth: 256\n\
                    io_memory: 1MiB\nspin_before_park: 50us\nresolver_threads: 8\n\
                    notifier_concurrency: 64\ncooldown: 1m\nfsync_interval: 20ms\n";
        let s = parse("rt.yaml", text).unwrap();
        assert_eq!(
            s,
            RuntimeSettings {
                shards: Some(2),
                cpuset: Some(vec![0, 1]),
                in_flight_per_shard: Some(1024),
                ring_depth: Some(256),
                io_memory_bytes: Some(1 << 20),
                spin_before_park_us: Some(50),
                resolver_threads: Some(8),
                notifier_concurrency: Some(64),
                cooldown_ms: Some(60_000),
                fsync_interval_ms: Some(20),
            }
        );
        // An empty file, or only comments: every default.
        assert_eq!(parse("rt.yaml", "").unwrap(), RuntimeSettings::default());
        assert_eq!(parse("rt.yaml", "# nothing\n").unwrap(), RuntimeSettings::default());
    }

    #[test]
    fn every_problem_is_at_its_line_and_column() {
        assert_eq!(
            problems("shards: 2\nring_dept: 64\nring_depth: 0\ncpuset: [0, 1]\nshards: 3\n"),
            vec![
                "rt.yaml:2:1: unknown field `ring_dept`; the fields are: shards, cpuset, \
                 in_flight_per_shard, ring_depth, io_memory, spin_before_park, resolver_threads, \
                 notifier_concurrency, cooldown, fsync_interval",
                "rt.yaml:3:13: ring_depth: 0: out of range: 8 to 32768",
                "rt.yaml:4:9: cpuset: expected one value (a number, a duration, a size or a core list like 0-3,8)",
                "rt.yaml:5:1: `shards` is given twice",
            ]
        );
        assert_eq!(
            problems("- 1\n"),
            vec!["rt.yaml:1:1: expected a mapping of settings (`shards: 4`, ...)"]
        );
        assert_eq!(
            problems("io_memory: 64QB\n"),
            vec!["rt.yaml:1:12: io_memory: 64QB: unknown unit `QB` (use KiB, MiB or GiB)"]
        );
        assert_eq!(
            problems("cooldown: 9h\n"),
            vec!["rt.yaml:1:11: cooldown: 9h: longer than 8h, the longest accepted"]
        );
        assert!(
            problems("shards: [\n")[0].starts_with("rt.yaml:"),
            "{:?}",
            problems("shards: [\n")
        );
        assert_eq!(
            problems("shards: 1\n---\nshards: 2\n"),
            vec!["rt.yaml:2:1: one document only: the settings are one mapping"]
        );
    }

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(parse_cpuset("0-3,8"), Ok(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpuset("5,1"), Ok(vec![5, 1]));
        assert!(parse_cpuset("3-1").unwrap_err().contains("low to high"));
        assert!(parse_cpuset("1,1").unwrap_err().contains("twice"));
        assert!(parse_cpuset("4096").unwrap_err().contains("1023"));
        assert!(parse_cpuset("a").is_err());
        assert_eq!(format_cores(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cores(&[]), "");
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert_eq!(format_size(65536), "64KiB");
        assert_eq!(format_size(3 << 20), "3MiB");
        assert_eq!(format_size(1000), "1000");
        let mut s = RuntimeSettings::default();
        assert_eq!(
            s.set("in_flight_per_shard", "8"),
            Err(SetError::Invalid("out of range: 16 to 1048576".into()))
        );
        assert_eq!(
            s.set("fsync_interval", "100us"),
            Err(SetError::Invalid("must be at least 1ms".into()))
        );
        assert_eq!(s.set("nope", "1"), Err(SetError::Unknown));
    }

    #[test]
    fn flags_override_the_file_field_by_field() {
        let file = RuntimeSettings { shards: Some(2), ring_depth: Some(64), ..Default::default() };
        let flags = RuntimeSettings { shards: Some(1), ..Default::default() };
        let merged = file.overridden_by(flags);
        assert_eq!(merged.shards, Some(1));
        assert_eq!(merged.ring_depth, Some(64));
    }

    #[test]
    fn resolve_pins_shards_to_the_cpuset_and_keeps_the_rest_for_the_control_plane() {
        let allowed: Vec<usize> = (0..8).collect();
        let e = resolve(&RuntimeSettings::default(), &allowed, &first_cores).unwrap();
        assert_eq!(
            (e.shards, e.cores.clone(), e.other_cores.clone()),
            (8, allowed.clone(), vec![])
        );
        assert_eq!(e.in_flight_per_shard, DEFAULT_MAX_IN_FLIGHT);
        let asked = RuntimeSettings { cpuset: Some(vec![2, 3, 4]), ..Default::default() };
        let e = resolve(&asked, &allowed, &first_cores).unwrap();
        assert_eq!((e.shards, e.cores.clone()), (3, vec![2, 3, 4]));
        assert_eq!(e.other_cores, vec![0, 1, 5, 6, 7]);
        let asked = RuntimeSettings { shards: Some(2), ..Default::default() };
        assert_eq!(resolve(&asked, &allowed, &first_cores).unwrap().cores, vec![0, 1]);
        let asked =
            RuntimeSettings { shards: Some(4), cpuset: Some(vec![1, 2]), ..Default::default() };
        assert!(resolve(&asked, &allowed, &first_cores).unwrap_err().contains("only 2 cores"));
        // Without a cpuset the spread rule picks; a rule picking wrong cores is not trusted.
        let asked = RuntimeSettings { shards: Some(2), ..Default::default() };
        let last = |n: usize, a: &[usize]| a[a.len() - n..].to_vec();
        assert_eq!(resolve(&asked, &allowed, &last).unwrap().cores, vec![6, 7]);
        assert_eq!(resolve(&asked, &allowed, &|_, _| vec![9, 9]).unwrap().cores, vec![0, 1]);
        let spread = spread_cores(1, &allowed_cores());
        assert_eq!(spread.len(), 1);
        assert!(allowed_cores().contains(&spread[0]));
        let asked = RuntimeSettings { cpuset: Some(vec![9]), ..Default::default() };
        assert!(resolve(&asked, &allowed, &first_cores).unwrap_err().contains("core 9 is not one"));
    }

    #[test]
    fn docs_describe_every_field() {
        let doc = include_str!("../../docs/tuning.md");
        for (field, flag) in FIELDS {
            assert!(
                doc.contains(&format!("`{field}`")),
                "docs/tuning.md does not describe `{field}`"
            );
            assert!(doc.contains(flag), "docs/tuning.md does not name {flag}");
        }
    }
}
