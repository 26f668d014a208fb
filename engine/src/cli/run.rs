//! `cpra run FILE [--shards N] [--duration D] [--log-format human|json] [--grace D]
//! [--data-dir DIR|none] [--fsync interval|never] [--fsync-interval D]`: load and validate the
//! manifest (refusing to start on errors), take the data dir, run the engine until
//! SIGINT/SIGTERM or `--duration`, then drain checks and alerts in flight within the grace
//! period.
//!
//! What it is for: the main job, and the loop `cpra demo` reuses ([`run_plan`]). What it is
//! not for: the engine's parts (see `runtime` and `shard`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::validate::{write_human, UnknownFieldArgs};
use super::{EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE};
use crate::api::{ApiServer, Fleet};
use crate::fd_budget::{FdBudget, Wanted};
use crate::limits::{
    LOAD_ESTIMATE_AFTER_MONITORS, LOAD_ESTIMATE_MARGIN_DIVISOR, LOAD_ESTIMATE_MAX_MONITORS,
};
use crate::manifest::duration::parse_go_duration;
use crate::manifest::{load_path, LoadOptions};
use crate::placement::Node;
use crate::plan::{start_plan, Plan, PlanConfig};
use crate::reload::{ReloadError, Reloader};
use crate::runtime::{ExecutorSettings, RuntimeConfig, DEFAULT_GRACE_MS};
use crate::settings::{
    allowed_cores, format_cores, format_size, pin_current_thread, spread_cores, Effective,
    RuntimeSettings, SetError,
};
use crate::shard::{AlertObserver, StatusSnapshot};
use crate::store::{DataDir, Fsync, JournalConfig, DEFAULT_DATA_DIR, NO_DATA_DIR};

/// How often the status line is printed: often enough to watch, rare enough to read.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);
/// How often the loading progress is redrawn, in monitors.
const PROGRESS_EVERY_MONITORS: usize = 50_000;
/// How often the main thread looks at the stop flag and the clock: bounds how late a
/// `--duration` stop is, at 10 cheap wake-ups a second.
const MAIN_POLL: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `--fsync`: when the journal is made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FsyncMode {
    /// One fdatasync per shard per --fsync-interval at most (group commit).
    #[default]
    Interval,
    /// Never: for tests and throwaway runs (a power loss may lose what was not written back).
    Never,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The manifest: YAML or JSON, optionally gzipped (.gz).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Shards (one pinned executor per core); 0 = as `--config` says, else one per core of
    /// the cpuset (all allowed cores without one).
    #[arg(long, default_value_t = 0)]
    pub shards: usize,
    /// Stop after this long (Go duration: 30s, 5m); default: run until SIGINT/SIGTERM.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// How long checks and alerts in flight may take to finish after a stop.
    #[arg(long, value_name = "D", default_value = "10s")]
    pub grace: String,
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Where incidents, the state to continue them and the alert outbox are kept across
    /// restarts (created if missing; one process at a time); `none` keeps nothing.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: String,
    /// When the journal is made durable.
    #[arg(long, value_enum, default_value = "interval")]
    pub fsync: FsyncMode,
    /// The group commit interval: at most one fdatasync per shard this often (default 10ms).
    #[arg(long, value_name = "D")]
    pub fsync_interval: Option<String>,
    /// Where the control plane (/healthz, /readyz, /metrics, /api/v1/monitors; docs/api.md)
    /// listens: HOST:PORT, or `none`.
    #[arg(long, value_name = "ADDR", default_value = crate::api::DEFAULT_LISTEN)]
    pub listen: String,
    /// A file holding the token API writes must send (`Authorization: Bearer TOKEN`);
    /// default: the CPRA_API_TOKEN environment variable; with neither, writes answer 403.
    #[arg(long, value_name = "PATH")]
    pub api_token_file: Option<PathBuf>,
    /// The alert cooldown of every colour whose code and monitor give no `cooldown`: a colour
    /// queued within it of its last send waits for its end (green bypasses it;
    /// docs/state-machine.md). At most 8h; default 5m.
    #[arg(long, value_name = "D")]
    pub cooldown: Option<String>,
    #[command(flatten)]
    pub fields: UnknownFieldArgs,
    #[command(flatten)]
    pub runtime: super::flags::RuntimeFlags,
    #[command(flatten)]
    pub node: super::placement::NodeArgs,
}

impl RunArgs {
    /// The journal settings, `None` for `--data-dir none`.
    fn journal(&self, fsync_interval_ms: u64) -> Option<JournalConfig> {
        if self.data_dir == NO_DATA_DIR {
            return None;
        }
        let fsync = match self.fsync {
            FsyncMode::Never => Fsync::Never,
            FsyncMode::Interval => Fsync::EveryMs(fsync_interval_ms),
        };
        Some(JournalConfig { dir: PathBuf::from(&self.data_dir), fsync })
    }

    /// The runtime settings: `--config`'s file with the flags over it. `Err`: the lines to
    /// print (every problem of the file at its line and column, or the flag refused) and the
    /// exit code.
    pub fn settings(&self) -> Result<RuntimeSettings, (Vec<String>, i32)> {
        let file = match &self.runtime.config {
            None => RuntimeSettings::default(),
            Some(path) => crate::settings::load(path).map_err(|problems| {
                let unreadable = problems.iter().any(|p| p.message.starts_with("cannot read"));
                let mut lines: Vec<String> =
                    problems.iter().map(|p| format!("error: {p}")).collect();
                lines.push(format!(
                    "error: not starting: fix the runtime settings in {} (docs/tuning.md)",
                    path.display()
                ));
                (lines, if unreadable { EXIT_UNREADABLE } else { EXIT_INVALID })
            })?,
        };
        let mut flags = RuntimeSettings::default();
        let shards = self.shards.to_string();
        let mut given = self.runtime.given();
        if self.shards != 0 {
            given.push(("shards", "--shards", &shards));
        }
        if let Some(text) = &self.cooldown {
            given.push(("cooldown", "--cooldown", text));
        }
        if let Some(text) = &self.fsync_interval {
            given.push(("fsync_interval", "--fsync-interval", text));
        }
        for (field, flag, text) in given {
            if let Err(SetError::Invalid(why)) = flags.set(field, text) {
                return Err((vec![format!("error: {flag} {text}: {why}")], EXIT_UNREADABLE));
            }
        }
        Ok(file.overridden_by(flags))
    }
}

/// The cooldown when neither `--cooldown` nor the settings file give one.
const DEFAULT_COOLDOWN_MS: u32 = 5 * 60_000;
/// The journal's group commit interval when neither `--fsync-interval` nor the settings file
/// give one: 10 ms adds at most that to an alert's first send, and one fdatasync per shard
/// per 10 ms is far from any disk's limit.
const DEFAULT_FSYNC_INTERVAL_MS: u64 = 10;

/// Installs the tracing subscriber (stderr). `RUST_LOG` overrides `default_level`.
/// A second call (tests, demo after run) is a no-op.
/// Human lines escape control characters and are coloured only on a terminal without
/// `NO_COLOR` (see `crate::logging`).
pub fn init_logging(format: LogFormat, default_level: &str) {
    crate::logging::init(format == LogFormat::Json, default_level);
}

/// A Go duration option in ms, or a message naming the option.
pub fn duration_ms(option: &str, text: &str) -> Result<u64, String> {
    parse_go_duration(text).map(|ns| ns / 1_000_000).map_err(|e| format!("{option}: {e}"))
}

pub fn run(args: &RunArgs) -> i32 {
    init_logging(args.log_format, "info");
    // What run prints as plain lines goes through the logger in JSON, so every line parses.
    let mut out: Box<dyn Write> = match args.log_format {
        LogFormat::Human => Box::new(std::io::stderr()),
        LogFormat::Json => Box::new(crate::logging::LogLines::default()),
    };
    // Before the load: a hangup while a big manifest loads must not end the process either.
    if let Err(e) = crate::hangup::catch() {
        tracing::warn!("{e}");
    }
    let (grace_ms, duration) = match super::flags::run_numbers(args) {
        Ok(numbers) => numbers,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err((lines, code)) => {
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            return code;
        }
    };
    let journal = args.journal(settings.fsync_interval_ms.unwrap_or(DEFAULT_FSYNC_INTERVAL_MS));
    let api_token = match crate::api::auth::load_token(args.api_token_file.as_deref()) {
        Ok(token) => token,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let node = match args.node.node() {
        Ok(node) => node,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let plan = match load_node(&args.file, &args.fields.options(), node, &mut out) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let cooldown_ms = settings.cooldown_ms.unwrap_or(DEFAULT_COOLDOWN_MS);
    let listen = (args.listen != crate::api::LISTEN_NONE).then(|| args.listen.clone());
    let reload_from = Some(ReloadFrom { file: args.file.clone(), lenient: args.fields.lenient });
    let config = RunConfig {
        shards: settings.shards.unwrap_or(0),
        duration,
        grace_ms,
        observer: None,
        listen,
        api_token,
        journal,
        reload_from,
        cooldown_ms: Some(cooldown_ms),
        settings,
        node,
    };
    run_plan(Arc::new(plan), &config, &mut out)
}

/// How far through a file a load is, in whole percent: at most 99 until the load has
/// returned (the reader reads ahead of the monitors handed on).
fn percent_read(read: u64, total: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    (read.saturating_mul(100) / total).min(99)
}

/// Loads and validates `file` (the same pass as `cpra validate`: nothing is checked after
/// it), showing progress on a terminal. `Err` carries the exit code after the problems were
/// printed to `out`.
pub fn load(
    file: &std::path::Path,
    options: &LoadOptions,
    out: &mut dyn Write,
) -> Result<Plan, i32> {
    load_node(file, options, Node::SINGLE, out)
}

/// [`load`], keeping only `node`'s slice: every monitor is read and validated (an invalid
/// manifest fails on every node alike), and only those the placement gives `node` are kept,
/// so a node holds its slice in memory, never the whole fleet.
pub fn load_node(
    file: &std::path::Path,
    options: &LoadOptions,
    node: Node,
    out: &mut dyn Write,
) -> Result<Plan, i32> {
    let read_bytes = Arc::new(AtomicU64::new(0));
    let opts = LoadOptions {
        lenient: options.lenient,
        env: options.env,
        direct_json: options.direct_json,
        read_bytes: Some(Arc::clone(&read_bytes)),
    };
    let progress = std::io::stderr().is_terminal() && !crate::logging::is_json();
    let file_bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let started = Instant::now();
    let mut monitors = Vec::new();
    let mut seen = 0usize;
    let result = load_path(file, &opts, |m| {
        seen += 1;
        if node.owns(&m.id) {
            monitors.push(m);
            if monitors.len() == LOAD_ESTIMATE_AFTER_MONITORS {
                reserve_for_the_rest(&mut monitors, read_bytes.load(Ordering::Relaxed), file_bytes);
            }
        }
        if progress && seen.is_multiple_of(PROGRESS_EVERY_MONITORS) {
            eprint!(
                "\rloading {}: {} monitors, {}% of the file",
                file.display(),
                seen,
                percent_read(read_bytes.load(Ordering::Relaxed), file_bytes)
            );
        }
    });
    if progress && seen >= PROGRESS_EVERY_MONITORS {
        eprintln!();
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let _ = writeln!(out, "error: cannot read {}: {}", e.file, e.error);
            return Err(EXIT_UNREADABLE);
        }
    };
    if !report.is_valid() {
        write_human(&report, out);
        let _ = writeln!(
            out,
            "error: not starting: fix the errors above (`cpra validate` shows them too)"
        );
        return Err(if report.unreadable { EXIT_UNREADABLE } else { EXIT_INVALID });
    }
    for d in &report.problems.kept {
        tracing::warn!("{d}");
    }
    tracing::info!(
        file = %report.file,
        monitors = monitors.len(),
        load_ms = started.elapsed().as_millis() as u64,
        "manifest loaded"
    );
    if !node.is_whole() {
        tracing::info!(
            kept = monitors.len(),
            of = seen,
            "{node}: keeping the monitors the placement gives it (rendezvous hashing by id)"
        );
    }
    Ok(Plan { monitors, registry: report.registry })
}

/// Reserves room for every monitor the file holds, estimated from the share of it read so
/// far: left to double, the list's last growth would hold the old and the new copy at once
/// (1.5 times the fleet's list, 400 MB at a million monitors) and leave up to half of it
/// unused. An estimate too high costs address space only (pages never written are not
/// resident); too low, the list grows as before.
fn reserve_for_the_rest(
    monitors: &mut Vec<crate::manifest::Monitor>,
    read_bytes: u64,
    file_bytes: u64,
) {
    if read_bytes == 0 || file_bytes <= read_bytes {
        return;
    }
    let estimate = monitors.len() as u128 * u128::from(file_bytes) / u128::from(read_bytes);
    let estimate = estimate + estimate / LOAD_ESTIMATE_MARGIN_DIVISOR as u128;
    let estimate = usize::try_from(estimate).unwrap_or(usize::MAX).min(LOAD_ESTIMATE_MAX_MONITORS);
    monitors.reserve_exact(estimate.saturating_sub(monitors.len()));
}

/// How to run a loaded plan.
#[derive(Clone)]
pub struct RunConfig {
    pub shards: usize,
    pub duration: Option<Duration>,
    pub grace_ms: u64,
    pub observer: Option<AlertObserver>,
    /// `None`: nothing is kept across restarts (`--data-dir none`, and `cpra demo`).
    pub journal: Option<JournalConfig>,
    /// Where the control plane listens; `None`: no control plane.
    pub listen: Option<String>,
    /// The cooldown of colours the manifest gives none (`--cooldown`); `None`: the state
    /// machine's default.
    pub cooldown_ms: Option<u32>,
    /// The manifest file a reload (SIGHUP, `POST /api/v1/reload`) reads again; `None`: the
    /// plan did not come from a file (`cpra demo`) and cannot be reloaded.
    pub reload_from: Option<ReloadFrom>,
    /// The token API writes need; `None`: writes are refused.
    pub api_token: Option<crate::api::auth::ApiToken>,
    /// The runtime settings (`--config` and the flags over it); `shards` and `cooldown_ms`
    /// above are the ones in force.
    pub settings: RuntimeSettings,
    /// This node's slice of the fleet (`--node-index/--node-count/--replica`); the plan holds
    /// that slice already, a reload keeps it.
    pub node: Node,
}

/// Where a reload reads the manifest, with the loader options the run started with.
#[derive(Clone, Debug)]
pub struct ReloadFrom {
    pub file: PathBuf,
    pub lenient: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            shards: 0,
            duration: None,
            grace_ms: DEFAULT_GRACE_MS,
            observer: None,
            journal: None,
            listen: None,
            reload_from: None,
            api_token: None,
            cooldown_ms: None,
            settings: RuntimeSettings::default(),
            node: Node::SINGLE,
        }
    }
}

/// The status line: `monitors 12 up 9 down 2 unknown 1 | 48.0 checks/s | alerts sent 5, undelivered 0`.
pub fn status_line(s: &StatusSnapshot, checks_per_s: f64) -> String {
    format!(
        "monitors {} up {} down {} unknown {} | {checks_per_s:.1} checks/s | alerts sent {}, undelivered {}",
        s.monitors(),
        s.up,
        s.down,
        s.unknown,
        s.alerts_sent,
        s.alerts_undelivered
    )
}

/// Runs `plan` until a signal or `config.duration`, printing the status line to `out` every
/// [`STATUS_EVERY`]; then drains. Returns the exit code.
pub fn run_plan(plan: Arc<Plan>, config: &RunConfig, out: &mut dyn Write) -> i32 {
    run_plan_status(plan, config, out, &mut None)
}

/// [`run_plan`], leaving the fleet's status at the end in `last_status` (`cpra demo` sums
/// it up).
pub fn run_plan_status(
    plan: Arc<Plan>,
    config: &RunConfig,
    out: &mut dyn Write,
    last_status: &mut Option<StatusSnapshot>,
) -> i32 {
    let monitors = plan.monitors.len();
    let first_checks = first_checks_note(&plan.monitors);
    let asked = RuntimeSettings { shards: Some(config.shards), ..config.settings.clone() };
    let effective = match crate::settings::resolve(&asked, &allowed_cores(), &spread_cores) {
        Ok(effective) => effective,
        Err(e) => {
            let _ = writeln!(out, "error: not starting: {e}");
            return EXIT_INVALID;
        }
    };
    let wanted = Wanted {
        checks_per_shard: effective.in_flight_per_shard,
        deliveries_per_shard: effective.notifier_concurrency,
    };
    let fds =
        match crate::fd_budget::prepare_for(effective.shards, effective.resolver_threads, wanted) {
            Ok(budget) => budget,
            Err(e) => {
                let _ = writeln!(out, "error: not starting: {e}");
                return EXIT_INVALID;
            }
        };
    // Held (locked) until the run ends.
    let data_dir = match &config.journal {
        None => {
            tracing::info!(
                "no data dir (--data-dir none): incidents and queued alerts are not kept across \
                 restarts"
            );
            None
        }
        Some(journal) => match DataDir::open(&journal.dir, fds.shards as usize) {
            Ok(dir) => {
                let fsync = match journal.fsync {
                    Fsync::EveryMs(ms) => format!("fdatasync at most every {ms} ms"),
                    Fsync::Never => "never synced (--fsync never)".to_owned(),
                };
                tracing::info!("data dir {}: {fsync}", dir.path().display());
                Some(dir)
            }
            Err(e) => {
                let _ = writeln!(out, "error: not starting: {e}");
                return EXIT_INVALID;
            }
        },
    };
    // Recovery reads every shard's journal before any executor starts.
    let recovery = match (&data_dir, &config.journal) {
        (Some(dir), Some(journal)) => {
            match crate::store::recover(dir, &plan, fds.shards as usize, journal.fsync) {
                Ok((recovery, _)) => Some(Arc::new(recovery)),
                Err(e) => {
                    let _ = writeln!(out, "error: not starting: {e}");
                    return EXIT_INVALID;
                }
            }
        }
        _ => None,
    };
    let plan_config = PlanConfig {
        runtime: RuntimeConfig {
            shards: config.shards,
            grace_ms: config.grace_ms,
            handle_signals: true,
            max_in_flight: fds.checks_per_shard,
            cores: effective.cores.clone(),
            executor: ExecutorSettings {
                ring_depth: effective.ring_depth,
                io_memory_bytes: effective.io_memory_bytes,
                spin_before_park_us: effective.spin_before_park_us,
            },
            resolver_threads: effective.resolver_threads,
        },
        actions: Some(fds.actions_tweak()),
        observer: config.observer.clone(),
        wall_clock: None,
        journal: recovery,
        cooldown_ms: config.cooldown_ms,
    };
    // The control plane and the resolver threads, started from here, inherit this thread's
    // cores: kept off the shards' when there are others.
    if let Err(e) = pin_current_thread(&effective.other_cores) {
        tracing::warn!(
            "cannot move the control plane to cores {}: {e}",
            format_cores(&effective.other_cores)
        );
    }
    let api_token = config.api_token.clone();
    let api = match config.listen.as_deref().map(|a| ApiServer::start(a, api_token)).transpose() {
        Ok(api) => {
            if let Some(api) = &api {
                api.set_node(config.node);
            }
            api
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_INVALID;
        }
    };
    let listening = api.as_ref().map(|api| api.addr().to_string());
    let data_path = data_dir.as_ref().map(|d| d.path().display().to_string());
    let _ = writeln!(
        out,
        "{}",
        start_line(&effective, &fds, data_path.as_deref(), listening.as_deref())
    );
    if let Some(api) = &api {
        // A plain line (not a log record) so a script or test can read the port of `:0`.
        let _ = writeln!(out, "control plane: listening on http://{}", api.addr());
    }
    let running = match start_plan(plan.clone(), plan_config) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            if let Some(api) = api {
                api.stop();
            }
            return EXIT_INVALID;
        }
    };
    let reloader = config.reload_from.as_ref().map(|from| {
        let options = LoadOptions { lenient: from.lenient, ..LoadOptions::default() };
        Arc::new(
            Reloader::new(
                from.file.clone(),
                &options,
                plan.clone(),
                running.runtime.shared().to_vec(),
            )
            .with_node(config.node),
        )
    });
    // The reloader holds the plan in force; this one would keep the first alive for good.
    drop(plan);
    if let Some(api) = &api {
        api.set_fleet(Fleet {
            reloader: reloader.clone(),
            shared: running.runtime.shared().to_vec(),
            status: running.status.clone(),
            queries: running.queries.clone(),
            stop: running.runtime.stop_handle(),
            epoch: running.runtime.epoch(),
        });
    }
    let node = config.node;
    tracing::info!(
        monitors,
        shards = running.runtime.shards(),
        node = %format_args!("{}/{}", node.index, node.count),
        replica = node.replica,
        "running; {first_checks}"
    );
    crate::allocator::release_freed_memory();
    if let Err(e) = crate::hangup::catch() {
        tracing::warn!("{e}");
    }
    let stop = running.runtime.stop_handle();
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut last_checks = 0u64;
    let mut hangup_pending = false;
    while !stop.is_stopped() {
        std::thread::sleep(MAIN_POLL);
        if config.duration.is_some_and(|d| started.elapsed() >= d) {
            stop.stop();
        }
        if crate::hangup::take() {
            match &reloader {
                Some(_) => {
                    tracing::info!("SIGHUP received: reloading the manifest");
                    hangup_pending = true;
                }
                None => tracing::warn!("{}", crate::hangup::NOT_SUPPORTED),
            }
        }
        if let (true, Some(reloader)) = (hangup_pending, &reloader) {
            // A reload by POST running now: this one goes when it ends (next round).
            hangup_pending = !reload_on_hangup(reloader);
        }
        if running.runtime.shard_exited() {
            tracing::error!("a shard stopped unexpectedly; stopping the others");
            stop.stop();
        }
        if last_print.elapsed() >= STATUS_EVERY {
            let checks = running.runtime.counters().checks_completed;
            let rate = (checks - last_checks) as f64 / last_print.elapsed().as_secs_f64();
            let _ = writeln!(out, "{}", status_line(&running.status.read(), rate));
            last_checks = checks;
            last_print = Instant::now();
        }
    }
    let _ = writeln!(
        out,
        "stopping: draining checks and alerts in flight (up to {} ms)",
        config.grace_ms
    );
    if let Some(api) = api {
        api.stop();
    }
    let status = running.status.clone();
    match running.runtime.join() {
        Ok(report) => {
            let abandoned: u32 = report.shards.iter().map(|s| s.abandoned).sum();
            let s = status.read();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let _ = writeln!(
                out,
                "{}",
                status_line(&s, report.counters.checks_completed as f64 / secs)
            );
            let _ = writeln!(
                out,
                "{}",
                stopped_line(
                    &s,
                    report.counters.checks_completed,
                    abandoned,
                    report.counters.checks_delayed_local_resource
                )
            );
            *last_status = Some(s);
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            EXIT_INVALID
        }
    }
}

/// The line `cpra run` starts with: the configuration in force, so what a settings file or a
/// flag changed is seen before the first check.
pub fn start_line(
    e: &Effective,
    fds: &FdBudget,
    data_dir: Option<&str>,
    listen: Option<&str>,
) -> String {
    let others = if e.other_cores.is_empty() {
        "on the shards' cores (no core left over)".to_owned()
    } else {
        format!("on cores {}", format_cores(&e.other_cores))
    };
    format!(
        "starting: {} shard(s) on cores {} | control plane and {} resolver thread(s) {others} | \
         {} checks in flight per shard ({} asked), {} alert deliveries | fd limit {} | ring depth \
         {}, io_memory {}, spin before park {} µs | data dir {} | listen {}",
        e.shards,
        format_cores(&e.cores),
        e.resolver_threads,
        fds.checks_per_shard,
        e.in_flight_per_shard,
        fds.deliveries_per_shard,
        fds.limit,
        e.ring_depth,
        format_size(e.io_memory_bytes as u64),
        e.spin_before_park_us,
        data_dir.unwrap_or("none"),
        listen.unwrap_or("none"),
    )
}

/// When the first checks come, for the start line: each monitor's first check is spread over
/// its interval by its id hash (`schedule::first_slot_ms`), so with a long interval the first
/// result can be minutes away, and a user watching should know why nothing happens yet.
fn first_checks_note(monitors: &[crate::manifest::Monitor]) -> String {
    use crate::manifest::duration::format_ms;
    let enabled = || monitors.iter().filter(|m| m.enabled);
    let (Some(shortest), Some(longest)) =
        (enabled().map(|m| m.interval_ms()).min(), enabled().map(|m| m.interval_ms()).max())
    else {
        return "no enabled monitor: nothing to check".to_owned();
    };
    if shortest == longest {
        format!("first checks spread over {}, then every {0}", format_ms(longest))
    } else {
        format!(
            "first checks spread over each monitor's interval ({} to {}), so all within {1}",
            format_ms(shortest),
            format_ms(longest)
        )
    }
}

/// The last line of a run: checks, and every alert queued accounted for (sent, undelivered,
/// de-duplicated, cancelled add up to queued once the run has drained).
fn stopped_line(s: &StatusSnapshot, checks: u64, abandoned: u32, delayed: u64) -> String {
    let mut alerts = format!(
        "{} alerts queued, {} sent, {} undelivered",
        s.alerts_queued, s.alerts_sent, s.alerts_undelivered
    );
    if s.alerts_deduplicated > 0 {
        let n = s.alerts_deduplicated;
        alerts.push_str(&format!(", {n} de-duplicated (the same alert was already on its way)"));
    }
    if s.alerts_cancelled > 0 {
        alerts.push_str(&format!(", {} cancelled", s.alerts_cancelled));
    }
    format!(
        "stopped: {checks} checks, {alerts}, {abandoned} checks abandoned, {delayed} delayed for \
         want of a local resource"
    )
}

/// A SIGHUP's reload, on the main thread (the shards run on meanwhile); what it did or the
/// manifest's problems go to the log. False when another reload was running (try again).
fn reload_on_hangup(reloader: &Reloader) -> bool {
    match reloader.reload() {
        // `reload` logs what it did.
        Ok(_) => {}
        // A reload by POST is running: this one follows when it ends (no line per retry).
        Err(ReloadError::Busy) => return false,
        Err(ReloadError::Invalid(problems)) => {
            for p in &problems {
                tracing::error!(file = %p.file, line = p.line, column = p.column, "{}", p.message);
            }
            tracing::error!(
                "reload refused: the manifest has {} errors; still running the one loaded before",
                problems.len()
            );
        }
        Err(e) => tracing::error!("reload: {e}"),
    }
    true
}

#[cfg(test)]
mod first_checks_tests {
    use super::first_checks_note;
    use crate::manifest::{load_str, LoadOptions};

    #[test]
    fn the_start_line_says_when_first_checks_come() {
        let fleet = |intervals: &[&str]| {
            let mut text = String::from("monitors:\n");
            for (i, iv) in intervals.iter().enumerate() {
                text.push_str(&format!(
                    "  - name: m{i}\n    pulse_check: {{type: tcp, interval: {iv}, config: {{host: h, port: 1}}}}\n"
                ));
            }
            load_str(&text, None, &LoadOptions::default()).0
        };
        assert_eq!(
            first_checks_note(&fleet(&["30s", "30s"])),
            "first checks spread over 30s, then every 30s"
        );
        assert_eq!(
            first_checks_note(&fleet(&["10s", "5m"])),
            "first checks spread over each monitor's interval (10s to 5m), so all within 5m"
        );
        assert_eq!(first_checks_note(&[]), "no enabled monitor: nothing to check");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_shows_the_configuration_in_force() {
        let asked = RuntimeSettings { cpuset: Some(vec![2, 3]), ..Default::default() };
        let e =
            crate::settings::resolve(&asked, &[0, 1, 2, 3], &crate::settings::first_cores).unwrap();
        let fds = crate::fd_budget::budget(1 << 20, 2, 4).unwrap();
        assert_eq!(
            start_line(&e, &fds, Some("cpra-data"), Some("127.0.0.1:9850")),
            "starting: 2 shard(s) on cores 2-3 | control plane and 4 resolver thread(s) on cores \
             0-1 | 4096 checks in flight per shard (4096 asked), 32 alert deliveries | fd limit \
             1048576 | ring depth 128, io_memory 64KiB, spin before park 0 µs | data dir cpra-data \
             | listen 127.0.0.1:9850"
        );
    }

    #[test]
    fn load_progress_is_a_percentage_short_of_100_until_done() {
        assert_eq!(percent_read(0, 1000), 0);
        assert_eq!(percent_read(505, 1000), 50);
        // The reader runs ahead of the monitors handed on: never 100 before the end.
        assert_eq!(percent_read(1000, 1000), 99);
        assert_eq!(percent_read(u64::MAX, 1000), 99);
        // An unknown size (0): no percentage to give.
        assert_eq!(percent_read(10, 0), 0);
    }
}
