//! `cpra-bench`: benchmarks that run CPRA side by side with a reference in one run.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    eprintln!("cpra-bench: no benchmarks yet");
    std::process::exit(2);
}
