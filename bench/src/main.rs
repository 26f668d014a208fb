//! `cpra-bench`: benchmarks that run CPRA side by side with a reference in one run.

mod counting_alloc;
mod scheduler;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[derive(Parser)]
#[command(
    name = "cpra-bench",
    about = "CPRA benchmarks (each prints a summary, then one JSON line)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The thread-per-core scheduler against a binary-heap, task-per-check baseline.
    Scheduler(scheduler::Args),
}

fn main() {
    let code = match Cli::parse().command {
        Command::Scheduler(args) => scheduler::run(args),
    };
    std::process::exit(code);
}
