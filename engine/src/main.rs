//! The `cpra` command line.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    eprintln!("cpra: no commands yet");
    std::process::exit(2);
}
