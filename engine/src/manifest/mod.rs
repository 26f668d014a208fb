//! CPRA manifests: the Go CPRA's YAML/JSON files (optionally gzipped), loaded as a stream
//! into typed [`Monitor`]s with diagnostics a person can act on.
//!
//! What it is for: reading and checking manifests, one monitor at a time, so a fleet of
//! millions never sits in memory as a document tree; generating synthetic manifests
//! ([`gen`]). What it is not for: running monitors (the runtime takes the `Monitor`s).
//!
//! Entry point: [`load_path`] with a callback that receives each valid monitor; the
//! [`LoadReport`] it returns has the problems and the resolved endpoints/groups.

pub mod check;
pub mod decode;
pub mod diagnostic;
pub mod duration;
pub mod env;
pub mod event;
pub mod export;
pub mod gen;
pub mod intern;
pub mod json;
pub mod json_direct;
pub mod load;
pub mod maintenance;
pub mod node;
pub mod schema;
pub mod source;
pub mod yaml;
pub mod yaml_scan;

pub use diagnostic::{Class, Diagnostic, Level, Problems};
pub use load::{
    load_bytes, load_path, load_reader, load_str, LoadError, LoadOptions, LoadReport, Registry,
};
pub use maintenance::MaintenanceWindow;
pub use schema::*;
pub use source::Format;

#[cfg(test)]
pub(crate) mod tests;
