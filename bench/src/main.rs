//! `cpra-bench`: benchmarks that run CPRA side by side with a reference in one run, print a
//! human summary and, last, one JSON line.

mod api;
mod journal;
mod journal_onoff;
mod load;
mod load_serde;
mod placement;
mod rss;
mod scheduler;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: cpra_bench::counting_alloc::Counting = cpra_bench::counting_alloc::Counting;

#[derive(Parser)]
#[command(
    name = "cpra-bench",
    about = "CPRA benchmarks, each side by side with a reference (a summary, then one JSON line)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a manifest (YAML and JSON, same generator as `cpra gen`), load it through the
    /// real streaming loader, and compare with whole-document-tree parsing.
    Load(load::LoadArgs),
    /// The thread-per-core scheduler against a binary-heap, task-per-check baseline.
    Scheduler(scheduler::Args),
    /// Probe throughput and CPU per check against wrk and blackbox_exporter.
    Probes(cpra_bench::probes::ProbesArgs),
    /// The journal: bytes per incident, recovery time of a big fleet with open incidents.
    Journal(journal::JournalArgs),
    /// Schedule lateness of a real `cpra run` on a big fleet with and without API traffic.
    Api(api::ApiArgs),
    /// Rendezvous placement of a big fleet over nodes: slice balance, monitors moved when a
    /// node is added or lost, ns per monitor.
    Placement(placement::PlacementArgs),
}

fn main() {
    cpra_engine::allocator::set_policy();
    let code = match Cli::parse().command {
        Command::Load(args) => load::run(&args),
        Command::Scheduler(args) => scheduler::run(args),
        Command::Journal(args) => journal::run(&args),
        Command::Api(args) => api::run(&args),
        Command::Placement(args) => placement::run(&args),
        Command::Probes(args) => match cpra_bench::probes::run(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cpra-bench: {e}");
                2
            }
        },
    };
    std::process::exit(code);
}
