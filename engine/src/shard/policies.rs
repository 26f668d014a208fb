//! The state machine's [`Policy`] of each of a shard's monitors, each distinct policy kept once.
//!
//! What it is for: a fleet's monitors share a handful of policies (thresholds, cooldowns and
//! colours come from a few templates), and a policy is 28 bytes: kept per monitor it was 28 MB
//! at a million monitors, kept once and named by a 4-byte number it is 4 MB. What it is not
//! for: building a policy from a monitor (`monitors::policy_of`) or deciding (`state.rs`).

use rustc_hash::FxHashMap;

use crate::state::Policy;

/// Each monitor's policy (by shard-local index) as an index into the distinct ones.
#[derive(Default)]
pub struct Policies {
    of: Vec<u32>,
    distinct: Vec<Policy>,
    index: FxHashMap<Policy, u32>,
}

impl Policies {
    pub fn new(policies: impl Iterator<Item = Policy>) -> Policies {
        let mut table = Policies::default();
        for policy in policies {
            table.push(policy);
        }
        table
    }

    pub fn get(&self, monitor: u32) -> &Policy {
        &self.distinct[self.of[monitor as usize] as usize]
    }

    /// Sets the policy of an existing monitor (a reload changed it, or gave its slot to
    /// another).
    pub fn set(&mut self, monitor: u32, policy: Policy) {
        let id = self.intern(policy);
        self.of[monitor as usize] = id;
        self.compact_if_sparse();
    }

    /// Adds a monitor at the next index.
    pub fn push(&mut self, policy: Policy) {
        let id = self.intern(policy);
        self.of.push(id);
    }

    fn intern(&mut self, policy: Policy) -> u32 {
        if let Some(&id) = self.index.get(&policy) {
            return id;
        }
        let id = u32::try_from(self.distinct.len()).expect("fewer policies than monitors");
        self.distinct.push(policy);
        self.index.insert(policy, id);
        id
    }

    /// Reloads that change policies leave ones no monitor uses; past twice as many policies as
    /// monitors (and a floor, so small shards do not rebuild often) the table is rebuilt from
    /// the policies in use. This bounds it at twice the monitors.
    fn compact_if_sparse(&mut self) {
        const FLOOR: usize = 64;
        if self.distinct.len() <= (2 * self.of.len()).max(FLOOR) {
            return;
        }
        let old = std::mem::take(&mut self.distinct);
        self.index.clear();
        for i in 0..self.of.len() {
            self.of[i] = self.intern(old[self.of[i] as usize]);
        }
    }

    /// How many distinct policies are kept.
    pub fn distinct(&self) -> usize {
        self.distinct.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_with_the_same_policy_share_it_and_unused_ones_are_dropped() {
        let strict = Policy { unhealthy: 7, ..Policy::default() };
        let mut policies =
            Policies::new([Policy::default(), strict, Policy::default()].into_iter());
        assert_eq!(policies.distinct(), 2);
        assert_eq!(*policies.get(1), strict);
        assert_eq!(*policies.get(2), Policy::default());
        // Reloads giving monitor 0 ever new thresholds: the table stays bounded.
        for unhealthy in 100..1000 {
            policies.set(0, Policy { unhealthy, ..Policy::default() });
            assert!(policies.distinct() <= 64 + 1, "{}", policies.distinct());
        }
        assert_eq!(policies.get(0).unhealthy, 999);
        assert_eq!(*policies.get(1), strict);
        assert_eq!(*policies.get(2), Policy::default());
    }
}
