//! `cpra-bench`: benchmarks that run CPRA side by side with a reference in one run, print a
//! human summary and, last, one JSON line. Subcommands: `load` (manifest loading). Others
//! (`scheduler`, `probes`) are added as variants of [`Bench`] with their own module.

use clap::{Parser, Subcommand};

mod load;
mod rss;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cpra-bench",
    about = "CPRA benchmarks (each prints a summary, then one JSON line)"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Generate a manifest (YAML and JSON, same generator as `cpra gen`), load it through the
    /// real streaming loader, and compare with whole-document-tree parsing.
    Load(load::LoadArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.bench {
        Bench::Load(args) => load::run(&args),
    };
    std::process::exit(code);
}
