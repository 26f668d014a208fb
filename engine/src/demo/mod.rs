//! Loopback servers for `cpra demo` and the end-to-end tests: the mock fleet of healthy and
//! hostile targets ([`fleet`], also used by the benchmarks) and a scripted HTTP server
//! ([`scripted`]) that plays targets, notification receivers and intervention endpoints.
//!
//! What it is for: showing and testing CPRA on a machine with no network. What it is not
//! for: production (these servers are plain threads, bounded but not hardened).

pub mod fleet;
pub mod scripted;
