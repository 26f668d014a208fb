//! `cpra-bench`: benchmarks that run CPRA side by side with a reference in one run.

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cpra-bench", about = "CPRA benchmarks, each side by side with a reference")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Probe throughput and CPU per check against wrk and blackbox_exporter.
    Probes(cpra_bench::probes::ProbesArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probes(args) => cpra_bench::probes::run(&args),
    };
    if let Err(e) = result {
        eprintln!("cpra-bench: {e}");
        std::process::exit(2);
    }
}
