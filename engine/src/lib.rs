//! `cpra-engine`: the core of CPRA — manifests, the monitor state machine, the thread-per-core
//! runtime (shards, timing wheel, job ring) and the actions it takes.
//!
//! What it is for: turning a manifest of monitors into on-time checks, alerts and
//! interventions. What it is not for: the network client side of a check (that is
//! `cpra-net`) or benchmarks (that is `cpra-bench`).

pub mod actions;
pub mod alert;
pub mod allocator;
pub mod api;
pub mod cli;
pub mod clock;
pub mod colour;
pub mod counters;
pub mod demo;
pub mod fd_budget;
pub mod hangup;
pub mod limits;
pub mod logging;
pub mod manifest;
pub mod placement;
pub mod plan;
pub mod probe;
pub mod redact;
pub mod reload;
pub mod ring;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod shard;
pub mod state;
pub mod store;
pub mod table;
pub mod tune;
pub mod wheel;
