//! The `cpra` command line.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    cpra_engine::allocator::set_policy();
    let cli = cpra_engine::cli::Cli::parse();
    std::process::exit(cpra_engine::cli::run(cli));
}
