//! `cpra placement FILE --node-count N [--monitor NAME]`: which node of N checks each monitor
//! (or one), and the slice sizes, computed as `cpra run --node-index I --node-count N` does,
//! without running anything. Also the `--node-index/--node-count/--replica` flags `cpra run`
//! takes ([`NodeArgs`]).
//!
//! What it is for: answering "who checks X?" and "how even are the slices?" before and after
//! a resize. What it is not for: the hash itself (`crate::placement`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::validate::{write_human, UnknownFieldArgs};
use super::{EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE};
use crate::manifest::load_path;
use crate::placement::{node_of, Node};

/// `cpra run`'s place in a deployment of several nodes (docs/operations.md, "Running several
/// nodes").
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// This node's index among --node-count nodes, from 0 (on Kubernetes, the StatefulSet pod's
    /// ordinal): it checks only the monitors whose id the rendezvous hash gives it.
    #[arg(long, value_name = "I", default_value_t = 0)]
    pub node_index: u64,
    /// How many nodes share the manifest; each loads and validates all of it and keeps its
    /// slice.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub node_count: u64,
    /// Which copy of this slice this process is (0, 1, ...): replicas check and alert alike,
    /// with identical alert labels and ids, for a de-duplicating receiver (Alertmanager) to
    /// merge. Shown in the start line, /metrics and /api/v1/node.
    #[arg(long, value_name = "R", default_value_t = 0)]
    pub replica: u64,
}

impl NodeArgs {
    /// The node, or a message naming the flag and its bound.
    pub fn node(&self) -> Result<Node, String> {
        Node::new(self.node_index, self.node_count, self.replica)
    }
}

#[derive(Debug, Args)]
pub struct PlacementArgs {
    /// The manifest: YAML or JSON, optionally gzipped (.gz).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// How many nodes the fleet is sliced over (`cpra run --node-count`).
    #[arg(long, value_name = "N")]
    pub node_count: u64,
    /// Only this monitor (its name or its id): print its node.
    #[arg(long, value_name = "NAME")]
    pub monitor: Option<String>,
    #[command(flatten)]
    pub fields: UnknownFieldArgs,
}

/// One monitor's place: (node, id, name).
type Placed = (u32, String, String);

pub fn run(args: &PlacementArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let count = match Node::new(0, args.node_count, 0) {
        Ok(node) => node.count,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let mut sizes = vec![0u64; count as usize];
    let mut placed: Vec<Placed> = Vec::new();
    let wanted = args.monitor.as_deref();
    let result = load_path(&args.file, &args.fields.options(), |m| {
        let node = node_of(&m.id, count);
        sizes[node as usize] += 1;
        if wanted.is_none_or(|w| w == m.name || w == m.id) {
            placed.push((node, m.id.clone(), m.name.clone()));
        }
    });
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let _ = writeln!(err, "error: cannot read {}: {}", e.file, e.error);
            return EXIT_UNREADABLE;
        }
    };
    if !report.is_valid() {
        write_human(&report, err);
        let _ = writeln!(err, "error: no placement: fix the errors above");
        return if report.unreadable { EXIT_UNREADABLE } else { EXIT_INVALID };
    }
    if let Some(wanted) = wanted {
        if placed.is_empty() {
            let _ = writeln!(
                err,
                "error: no monitor named or with the id '{}' in {}",
                wanted.escape_debug(),
                args.file.display()
            );
            return EXIT_INVALID;
        }
        for (node, id, name) in &placed {
            let _ = writeln!(out, "{}\t{id}\tnode {node} of {count}", name.escape_debug());
        }
        return EXIT_OK;
    }
    let _ = writeln!(out, "# node\tid\tname");
    for (node, id, name) in &placed {
        let _ = writeln!(out, "{node}\t{id}\t{}", name.escape_debug());
    }
    write_sizes(&sizes, out);
    EXIT_OK
}

/// `# node 0: 334 monitors (33.4%)`, one line per node, then the largest over the smallest.
fn write_sizes(sizes: &[u64], out: &mut dyn Write) {
    let total: u64 = sizes.iter().sum();
    for (node, &n) in sizes.iter().enumerate() {
        let share = if total == 0 { 0.0 } else { n as f64 * 100.0 / total as f64 };
        let _ = writeln!(out, "# node {node}: {n} monitors ({share:.1}%)");
    }
    let (max, min) = (sizes.iter().max(), sizes.iter().min());
    if let (Some(&max), Some(&min)) = (max, min) {
        if min > 0 {
            let _ = writeln!(out, "# largest/smallest slice: {:.3}", max as f64 / min as f64);
        }
    }
}
