//! The `cpra` command line: one module per subcommand. To add one (`run`, `demo`), add a
//! variant to [`Command`] with its args struct and a `run` function in its own module.

use clap::{Parser, Subcommand};

pub mod demo;
pub mod flags;
pub mod gen;
pub mod placement;
pub mod run;
pub mod tune;
pub mod validate;

/// Exit code: everything is fine.
pub const EXIT_OK: i32 = 0;
/// Exit code: the input is invalid (or, for other commands, the run failed).
pub const EXIT_INVALID: i32 = 1;
/// Exit code: a file could not be read (or not to its end: cut short or corrupt) or written,
/// or the command line is wrong.
pub const EXIT_UNREADABLE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "cpra",
    version,
    about = "CPRA: a thread-per-core health-check engine for very large fleets",
    long_about = "CPRA runs health checks (pulses) for very large fleets, runs interventions when they \
fail and sends alerts (codes) by colour. It reads the YAML/JSON manifests of the Go CPRA unchanged.\n\n\
Start with:  cpra demo"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests and report every problem (up to 100 per file) with file, line, column,
    /// monitor, field path and how to fix it: the same checks `run` makes before it starts.
    /// Exit 0 valid, 1 invalid, 2 unreadable (missing, or cut short or corrupt part-way).
    Validate(validate::ValidateArgs),
    /// Write a synthetic manifest (for big-fleet tests and benchmarks) to stdout or --output.
    Gen(gen::GenArgs),
    /// Run the manifest's monitors: checks, alerts and interventions, until SIGINT/SIGTERM or
    /// --duration, then drain what is in flight.
    Run(Box<run::RunArgs>),
    /// Run CPRA on a built-in fleet on 127.0.0.1 (healthy, failing, flapping, slow and hostile
    /// targets, a flaky webhook receiver, an intervention that heals a target) and show the
    /// alerts as they happen. No root, no network needed.
    Demo(demo::DemoArgs),
    /// Check this host for CPRA (limits, sysctls, IRQ affinity, governor, THP, steal,
    /// clocksource, io_uring): `OK|WARN|FAIL  what  (the fix)`, exit 1 on a FAIL; `--apply`
    /// (root) makes the fixes. `cpra tune config` prints tuned runtime settings.
    Tune(tune::TuneArgs),
    /// Print which node of --node-count N checks each monitor (or --monitor NAME), and the
    /// slice sizes: the placement `run --node-index I --node-count N` keeps, without running.
    Placement(placement::PlacementArgs),
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate(args) => validate::run(&args, &mut std::io::stdout().lock()),
        Command::Gen(args) => gen::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Tune(args) => tune::run(&args),
        Command::Placement(args) => {
            placement::run(&args, &mut std::io::stdout().lock(), &mut std::io::stderr())
        }
    }
}
