//! `cpra-bench placement --monitors 10000000 --nodes 8`: the slices of a big fleet under the
//! engine's rendezvous placement (`cpra_engine::placement`), the same ids `cpra gen` writes
//! (`svc-00000000`, ...).
//!
//! Measures: each slice's size and the largest over the smallest; the monitors that move
//! when a node is added (N to N+1: all should go to the new node, about 1/(N+1)) and when the
//! last node is lost (N to N-1: exactly that node's, each to its second choice); and the time
//! per monitor to place it (hash its id, score every node), the cost each node pays at load
//! for every monitor of the manifest. The reference is the ideal: an even split, and moving
//! only what must move; the modulo placement (`hash % N`) is shown beside it for how much it
//! would move.

use std::time::Instant;

use clap::Args;
use cpra_engine::placement::{node_of_hash, placement_hash};

#[derive(Args)]
pub struct PlacementArgs {
    #[arg(long, default_value_t = 10_000_000)]
    pub monitors: u64,
    #[arg(long, default_value_t = 8)]
    pub nodes: u32,
}

pub fn run(args: &PlacementArgs) -> i32 {
    let (n, nodes) = (args.monitors, args.nodes);
    if nodes < 2 || n == 0 {
        eprintln!("cpra-bench placement: needs --nodes 2 or more and --monitors 1 or more");
        return 2;
    }
    let mut id = String::with_capacity(16);
    let mut owner = Vec::with_capacity(n as usize);
    let mut hashes = Vec::with_capacity(n as usize);
    // Timed: what a node does per monitor of the manifest (the id is already decoded).
    let mut place_ns = 0u128;
    for i in 0..n {
        id.clear();
        use std::fmt::Write;
        let _ = write!(id, "svc-{i:08}");
        let started = Instant::now();
        let h = placement_hash(&id);
        let node = node_of_hash(h, nodes);
        place_ns += started.elapsed().as_nanos();
        hashes.push(h);
        owner.push(node as u16);
    }
    // The same, in one timed loop over the ids (no clock read per monitor).
    let started = Instant::now();
    let mut check = 0u64;
    for i in 0..n {
        id.clear();
        use std::fmt::Write;
        let _ = write!(id, "svc-{i:08}");
        check = check.wrapping_add(u64::from(node_of_hash(placement_hash(&id), nodes)));
    }
    let loop_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let started = Instant::now();
    for i in 0..n {
        id.clear();
        use std::fmt::Write;
        let _ = write!(id, "svc-{i:08}");
        check = check.wrapping_add(id.len() as u64);
    }
    let ids_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let per_monitor_ns = (loop_ns - ids_ns).max(0.0);

    let mut sizes = vec![0u64; nodes as usize];
    for &o in &owner {
        sizes[o as usize] += 1;
    }
    let max = *sizes.iter().max().unwrap_or(&0);
    let min = *sizes.iter().min().unwrap_or(&0);
    let ratio = max as f64 / min.max(1) as f64;

    let (mut grown_moved, mut grown_to_old, mut lost_moved, mut lost_wrong) = (0u64, 0u64, 0, 0);
    let (mut modulo_grown, mut modulo_lost) = (0u64, 0u64);
    for (&h, &o) in hashes.iter().zip(&owner) {
        let o = u32::from(o);
        let grown = node_of_hash(h, nodes + 1);
        if grown != o {
            grown_moved += 1;
            grown_to_old += u64::from(grown != nodes);
        }
        let shrunk = node_of_hash(h, nodes - 1);
        if shrunk != o {
            lost_moved += 1;
            lost_wrong += u64::from(o != nodes - 1);
        }
        let m = h % u64::from(nodes);
        modulo_grown += u64::from(h % u64::from(nodes + 1) != m);
        modulo_lost += u64::from(h % u64::from(nodes - 1) != m);
    }
    let pct = |x: u64| x as f64 * 100.0 / n as f64;
    println!("placement of {n} monitors on {nodes} nodes (rendezvous hashing by id)");
    println!("  slices: {sizes:?}");
    println!("  largest/smallest slice: {ratio:.4} (ideal 1; even share {})", n / u64::from(nodes));
    println!(
        "  {nodes}->{} nodes: {grown_moved} moved ({:.2}%; ideal {:.2}%), {grown_to_old} to an \
         old node; modulo placement would move {:.2}%",
        nodes + 1,
        pct(grown_moved),
        100.0 / f64::from(nodes + 1),
        pct(modulo_grown)
    );
    println!(
        "  {nodes}->{} nodes (last lost): {lost_moved} moved ({:.2}%; ideal {:.2}%), {lost_wrong} \
         not from the lost node; modulo placement would move {:.2}%",
        nodes - 1,
        pct(lost_moved),
        pct(sizes[nodes as usize - 1]),
        pct(modulo_lost)
    );
    println!(
        "  placing one monitor: {per_monitor_ns:.1} ns (hash the id, score {nodes} nodes); timed \
         one by one: {:.1} ns; {:.2} s for the fleet",
        place_ns as f64 / n as f64,
        per_monitor_ns * n as f64 / 1e9
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "placement",
            "monitors": n,
            "nodes": nodes,
            "slices": sizes,
            "max_min_ratio": ratio,
            "grown_moved": grown_moved,
            "grown_moved_to_old_nodes": grown_to_old,
            "lost_moved": lost_moved,
            "lost_moved_not_from_lost_node": lost_wrong,
            "modulo_grown_moved": modulo_grown,
            "modulo_lost_moved": modulo_lost,
            "ns_per_monitor": per_monitor_ns,
            "ns_per_monitor_timed_singly": place_ns as f64 / n as f64,
            "check": check,
        })
    );
    i32::from(grown_to_old != 0 || lost_wrong != 0)
}
