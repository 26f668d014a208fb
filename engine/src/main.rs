//! The `cpra` command line.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cpra_engine::cli::Cli::parse();
    std::process::exit(cpra_engine::cli::run(cli));
}
