//! `cpra-bench` as a library: the mock fleet (for end-to-end tests and benchmarks) and the
//! benchmark subcommands, each in its own module with a clap `Args` and a `run`.
//!
//! What it is for: measuring CPRA side by side with a reference in one run, and giving tests
//! real servers to probe. What it is not for: anything shipped in the `cpra` binary.

/// The mock fleet now lives in the engine (the `cpra demo` runs it); re-exported here for the
/// benchmarks and their tests.
pub use cpra_engine::demo::fleet;
/// In the library so the probe benchmark can read it; `cpra-bench`'s `main` installs it.
pub mod counting_alloc;
pub mod probes;
pub mod process_group;
