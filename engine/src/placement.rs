//! Which node of a multi-node deployment checks a monitor: rendezvous (highest-random-weight)
//! hashing of the monitor's stable id over the node indices `0..count`.
//!
//! What it is for: `cpra run --node-index I --node-count N` keeping its slice of a manifest
//! every node loads whole (and validates whole, so an invalid manifest fails on every node
//! the same way), and `cpra placement` telling an operator who checks what. What it is not
//! for: placing a monitor on a shard within a node (`runtime::shard_of`, by `id_hash`), or
//! agreeing on anything at run time: the nodes never talk; the deployment (a StatefulSet's
//! ordinal) hands each node its index.
//!
//! Rendezvous hashing: every monitor scores every node and goes to the highest score. Each
//! score depends on the monitor and that node only, so
//! - the slices partition the fleet (one highest score per monitor, ties to the lowest index);
//! - from N to N+1 nodes a monitor moves only if the new node outscores the old winner, which
//!   happens for about 1/(N+1) of the monitors, and never between two old nodes;
//! - losing the last node moves only that node's monitors, each to its second choice.
//!
//! Why these hashes and why they never change: a node's slice must be the same on every node
//! and across versions, builds and platforms, or two nodes would check a monitor twice (or
//! none would). The monitor's score base is SipHash-1-3 (a specified function with published
//! reference vectors, implemented by the `siphasher` crate) of the id's UTF-8 bytes under the
//! fixed keys [`PLACEMENT_KEYS`]; it is called on the bytes directly, never through `Hash`
//! (whose encoding of integers is native-endian and of strings adds a terminator). Each node's
//! score mixes that base with the node's index by the SplitMix64 finaliser, integer arithmetic
//! that wraps the same on every platform. The values are pinned in the tests below: changing
//! them would move monitors between nodes. The base is a different hash from `id_hash` (which
//! picks the shard), so a node's slice is not skewed towards some of its shards.

use siphasher::sip::SipHasher13;

use crate::limits::{MAX_NODE_COUNT, MAX_REPLICA};

/// SipHash keys of the placement hash: fixed for good (the 16 ASCII bytes "cpra-placement-1"
/// as two little-endian words), since a change moves monitors between nodes.
pub const PLACEMENT_KEYS: (u64, u64) =
    (u64::from_le_bytes(*b"cpra-pla"), u64::from_le_bytes(*b"cement-1"));

/// A node's place in a deployment: its slice (`index` of `count`) and which copy of that
/// slice it is (`replica`, informative: replicas check and alert alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    pub index: u32,
    pub count: u32,
    pub replica: u32,
}

impl Node {
    /// One node holding the whole fleet (no `--node-*` flags).
    pub const SINGLE: Node = Node { index: 0, count: 1, replica: 0 };

    /// A node from the command line's numbers, or a message naming the flag and the bound.
    pub fn new(index: u64, count: u64, replica: u64) -> Result<Node, String> {
        if count == 0 {
            return Err("--node-count 0: there must be at least one node".to_owned());
        }
        if count > u64::from(MAX_NODE_COUNT) {
            return Err(format!(
                "--node-count {count}: more than {MAX_NODE_COUNT}, the most nodes CPRA places \
                 monitors on"
            ));
        }
        if index >= count {
            return Err(format!(
                "--node-index {index}: past the last node of --node-count {count} (indices run \
                 from 0 to {})",
                count - 1
            ));
        }
        if replica > u64::from(MAX_REPLICA) {
            return Err(format!("--replica {replica}: more than {MAX_REPLICA}, the most accepted"));
        }
        Ok(Node { index: index as u32, count: count as u32, replica: replica as u32 })
    }

    /// Whether this node checks the monitor of stable id `id`.
    pub fn owns(&self, id: &str) -> bool {
        self.count == 1 || node_of(id, self.count) == self.index
    }

    /// Whether the node holds the whole fleet.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} of {} (replica {})", self.index, self.count, self.replica)
    }
}

/// The monitor's score base: SipHash-1-3 of the id's bytes under [`PLACEMENT_KEYS`].
pub fn placement_hash(id: &str) -> u64 {
    SipHasher13::new_with_keys(PLACEMENT_KEYS.0, PLACEMENT_KEYS.1).hash(id.as_bytes())
}

/// Node `node`'s score for a monitor of placement hash `hash`: the SplitMix64 finaliser of
/// the hash and the index's own odd multiple of the golden ratio, so each node's scores are
/// a different permutation of the hashes.
pub fn score(hash: u64, node: u32) -> u64 {
    let mut z = hash ^ (u64::from(node) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The node (`0..count`) that checks a monitor of placement hash `hash`: the highest score,
/// the lowest index on a tie (so adding a node never takes a tie from an old one).
pub fn node_of_hash(hash: u64, count: u32) -> u32 {
    debug_assert!(count >= 1);
    let mut best = 0;
    let mut best_score = score(hash, 0);
    for node in 1..count {
        let s = score(hash, node);
        if s > best_score {
            best = node;
            best_score = s;
        }
    }
    best
}

/// The node (`0..count`) that checks the monitor of stable id `id`.
pub fn node_of(id: &str, count: u32) -> u32 {
    node_of_hash(placement_hash(id), count)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("monitor-{i:06}")).collect()
    }

    #[test]
    fn placement_is_pinned() {
        // Pinned values: if these change, monitors move between nodes on an upgrade. Do not
        // update them without a migration note.
        // The hashes were also computed by a separate SipHash-1-3 written from the paper.
        assert_eq!(placement_hash(""), 0xefc2_dc75_bd90_e3a1);
        assert_eq!(placement_hash("web-1"), 0x83af_c9a5_5dff_3ebd);
        assert_eq!(score(placement_hash("web-1"), 2), 0x6cdf_e870_d13b_951e);
        assert_eq!(node_of("monitor-000001", 8), 5);
        let three: Vec<u32> = (0..10).map(|i| node_of(&format!("monitor-{i:06}"), 3)).collect();
        assert_eq!(three, [2, 0, 0, 1, 2, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn the_slices_partition_the_fleet() {
        let fleet = ids(20_000);
        for count in [1u32, 2, 3, 5, 8] {
            let nodes: Vec<Node> =
                (0..count).map(|i| Node::new(i.into(), count.into(), 0).unwrap()).collect();
            for id in &fleet {
                let owners = nodes.iter().filter(|n| n.owns(id)).count();
                assert_eq!(owners, 1, "{id} on {owners} of {count} nodes");
            }
        }
    }

    #[test]
    fn slices_are_balanced_for_a_large_fleet() {
        // 400,000 monitors on 8 nodes: 50,000 expected each; a slice's binomial standard
        // deviation is about 210 (0.4%), so 3% is over seven deviations away.
        let fleet = ids(400_000);
        for count in [2u32, 3, 8] {
            let mut sizes = vec![0u64; count as usize];
            for id in &fleet {
                sizes[node_of(id, count) as usize] += 1;
            }
            let expected = fleet.len() as f64 / f64::from(count);
            for (node, &size) in sizes.iter().enumerate() {
                let off = (size as f64 - expected).abs() / expected;
                assert!(off < 0.03, "node {node} of {count}: {size} monitors, {expected} expected");
            }
        }
    }

    #[test]
    fn growing_moves_only_what_the_new_node_wins() {
        let fleet = ids(100_000);
        for count in [1u32, 2, 3, 7] {
            let mut moved = 0u64;
            for id in &fleet {
                let (before, after) = (node_of(id, count), node_of(id, count + 1));
                if before != after {
                    assert_eq!(after, count, "{id} moved from {before} to {after}, an old node");
                    moved += 1;
                }
            }
            // About 1/(count+1) of the fleet moves: within 5% of that share.
            let expected = fleet.len() as f64 / f64::from(count + 1);
            let off = (moved as f64 - expected).abs() / expected;
            assert!(off < 0.05, "{count}->{}: {moved} moved, {expected} expected", count + 1);
        }
    }

    #[test]
    fn each_bound_is_named() {
        assert_eq!(Node::new(0, 1, 0), Ok(Node::SINGLE));
        assert_eq!(
            Node::new(3, 3, 0).unwrap_err(),
            "--node-index 3: past the last node of --node-count 3 (indices run from 0 to 2)"
        );
        assert!(Node::new(0, 0, 0).unwrap_err().starts_with("--node-count 0:"));
        let e = Node::new(0, u64::from(MAX_NODE_COUNT) + 1, 0).unwrap_err();
        assert!(e.contains("the most nodes"), "{e}");
        let e = Node::new(0, 2, u64::from(MAX_REPLICA) + 1).unwrap_err();
        assert!(e.starts_with("--replica "), "{e}");
        assert_eq!(Node::new(1, 3, 1).unwrap().to_string(), "node 1 of 3 (replica 1)");
    }

    proptest! {
        #[test]
        fn any_id_has_exactly_one_owner_and_keeps_it_when_a_node_is_added(
            id in "[A-Za-z0-9][A-Za-z0-9._:-]{0,40}",
            count in 1u32..64,
        ) {
            let owner = node_of(&id, count);
            prop_assert!(owner < count);
            let owners = (0..count)
                .filter(|&i| Node { index: i, count, replica: 0 }.owns(&id))
                .count();
            prop_assert_eq!(owners, 1);
            let grown = node_of(&id, count + 1);
            prop_assert!(grown == owner || grown == count);
        }
    }
}
