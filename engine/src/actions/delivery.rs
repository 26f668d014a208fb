//! The identity of a queued delivery (for dedup and cancel) and the record of one that was
//! given up on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::alert::RenderedAlert;
use crate::colour::Colour;
use crate::manifest::Notify;

/// What makes two queued deliveries the same (docs/state-machine.md, Alerts): the endpoint, the
/// monitor, the colour, the incident and `not_before_ms`. Alerts of one incident that a
/// cooldown coalesced share all of these. The incident is part of it because alerts of two
/// incidents can be due at the same moment (the end of one cooldown) and each must be sent:
/// without it, a later incident's yellow, red and green were dropped as copies of an
/// earlier one's, and its id never reached the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    /// The endpoint's identity: its address. Endpoints are interned by the manifest loader,
    /// so the same endpoint block is the same `Arc` for every monitor that names it.
    pub endpoint: usize,
    pub monitor: u32,
    pub colour: Colour,
    /// `None` for gray (not about an incident).
    pub incident_seq: Option<u32>,
    pub not_before_ms: u64,
    /// The endpoint's kind, for logs.
    pub notifier: &'static str,
}

impl DedupKey {
    pub fn new(endpoint: &Arc<Notify>, monitor: u32, alert: &RenderedAlert) -> Self {
        DedupKey {
            endpoint: Arc::as_ptr(endpoint) as usize,
            monitor,
            colour: alert.colour,
            incident_seq: alert.incident_seq,
            not_before_ms: alert.not_before_ms,
            notifier: endpoint.kind(),
        }
    }
}

/// A delivery given up on: logged, counted, and kept (the last few) for the API.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Undelivered {
    /// The delivery's job id (the `job_id` of log lines).
    pub job: u64,
    /// The monitor's index on its shard.
    pub monitor: u32,
    pub monitor_id: String,
    pub colour: Colour,
    pub notifier: &'static str,
    pub reason: String,
}

/// The deliveries of one shard not yet finished, by job id, with their dedup keys indexed so
/// "already queued?" costs one hash lookup. `T` is the handle of the task running a delivery.
#[derive(Debug)]
pub struct Queue<T> {
    jobs: HashMap<u64, (DedupKey, T)>,
    keys: HashSet<DedupKey>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue { jobs: HashMap::new(), keys: HashSet::new() }
    }
}

impl<T> Queue<T> {
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.jobs.len(), self.keys.len());
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn contains(&self, key: &DedupKey) -> bool {
        self.keys.contains(key)
    }

    pub fn insert(&mut self, job: u64, key: DedupKey, value: T) {
        let fresh = self.keys.insert(key);
        assert!(fresh, "a duplicate delivery reached the queue");
        let old = self.jobs.insert(job, (key, value));
        assert!(old.is_none(), "job ids are unique");
    }

    /// The value of `job`, if it is still queued.
    pub fn get_mut(&mut self, job: u64) -> Option<&mut T> {
        self.jobs.get_mut(&job).map(|(_, v)| v)
    }

    pub fn remove(&mut self, job: u64) -> Option<(DedupKey, T)> {
        let entry = self.jobs.remove(&job)?;
        self.keys.remove(&entry.0);
        Some(entry)
    }

    /// Removes every delivery of `monitor`.
    pub fn remove_monitor(&mut self, monitor: u32) -> Vec<(DedupKey, T)> {
        let jobs: Vec<u64> =
            self.jobs.iter().filter(|(_, (k, _))| k.monitor == monitor).map(|(&j, _)| j).collect();
        jobs.into_iter().filter_map(|j| self.remove(j)).collect()
    }

    /// Removes everything.
    pub fn take_all(&mut self) -> Vec<(u64, DedupKey, T)> {
        self.keys.clear();
        self.jobs.drain().map(|(j, (k, t))| (j, k, t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(monitor: u32, not_before_ms: u64) -> DedupKey {
        let endpoint = Arc::new(Notify::Log { file: None });
        let mut alert = crate::actions::payload::tests::alert(Colour::Red);
        alert.not_before_ms = not_before_ms;
        let mut k = DedupKey::new(&endpoint, monitor, &alert);
        k.endpoint = 1;
        k
    }

    #[test]
    fn keys_follow_jobs() {
        let mut q: Queue<()> = Queue::default();
        q.insert(1, key(1, 10), ());
        q.insert(2, key(1, 20), ());
        q.insert(3, key(2, 10), ());
        assert!(q.contains(&key(1, 10)) && !q.contains(&key(3, 10)));
        assert_eq!(q.remove_monitor(1).len(), 2);
        assert!(!q.contains(&key(1, 10)));
        assert_eq!(q.len(), 1);
        assert!(q.remove(3).is_some() && q.remove(3).is_none());
        assert!(q.is_empty());
    }
}
