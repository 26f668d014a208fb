//! The bounded job ring between a shard's wheel and its probe tasks.
//!
//! What it is for: holding checks that are due and started but not yet picked up by a probe
//! task, in FIFO order, in a buffer allocated once. What it is not for: crossing threads. The
//! producer (the shard's dispatcher) and the consumers (its probe tasks) are tasks of one
//! single-threaded glommio executor, so the ring needs neither locks nor atomics; it is
//! hand-written rather than `crossbeam_queue::ArrayQueue` because on this hot path (one push
//! and one pop per check) the atomic read-modify-writes of a multi-thread queue would be pure
//! cost.

use crate::limits::MAX_IN_FLIGHT_LIMIT;
use crate::state::Generation;

/// One check to run: what a probe needs to find the monitor and bound its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// The monitor's index in its shard's table.
    pub monitor: u32,
    /// The index of the monitor's cold config (URL, headers, codes), as given in its spec.
    pub cold: u32,
    /// The check's sequence number for this monitor, assigned when it starts (the state
    /// machine uses it to ignore results of checks started before an intervention).
    pub generation: u32,
    /// The slot this check was scheduled for, in ms of the shard's clock.
    pub scheduled_ms: u64,
    /// The check must end by then (start + the monitor's timeout), in ms of the shard's clock.
    pub deadline_ms: u64,
}

impl Job {
    /// The state machine's view of `generation`: its low 16 bits, compared by serial-number
    /// arithmetic (see [`Generation`]), which is exact because one check per monitor is in
    /// flight. The job is the one source of a check's generation.
    pub fn check_generation(&self) -> Generation {
        Generation::new(self.generation as u16)
    }
}

/// A fixed-capacity FIFO of jobs.
pub struct JobRing {
    slots: Box<[Job]>,
    head: usize,
    len: usize,
}

impl JobRing {
    pub fn new(capacity: u32) -> JobRing {
        assert!((1..=MAX_IN_FLIGHT_LIMIT).contains(&capacity), "ring capacity {capacity}");
        let empty = Job { monitor: 0, cold: 0, generation: 0, scheduled_ms: 0, deadline_ms: 0 };
        JobRing { slots: vec![empty; capacity as usize].into_boxed_slice(), head: 0, len: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.slots.len()
    }

    /// Appends a job; a full ring gives it back.
    pub fn push(&mut self, job: Job) -> Result<(), Job> {
        if self.is_full() {
            return Err(job);
        }
        let mut tail = self.head + self.len;
        if tail >= self.slots.len() {
            tail -= self.slots.len();
        }
        self.slots[tail] = job;
        self.len += 1;
        Ok(())
    }

    /// The job `ahead` places behind the head, if the ring holds that many.
    pub fn peek(&self, ahead: usize) -> Option<&Job> {
        if ahead >= self.len {
            return None;
        }
        let mut i = self.head + ahead;
        if i >= self.slots.len() {
            i -= self.slots.len();
        }
        Some(&self.slots[i])
    }

    pub fn pop(&mut self) -> Option<Job> {
        if self.len == 0 {
            return None;
        }
        let job = self.slots[self.head];
        self.head += 1;
        if self.head == self.slots.len() {
            self.head = 0;
        }
        self.len -= 1;
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(monitor: u32) -> Job {
        Job { monitor, cold: monitor, generation: 1, scheduled_ms: 0, deadline_ms: 10 }
    }

    #[test]
    fn fifo_with_wraparound_and_a_hard_bound() {
        let mut ring = JobRing::new(3);
        for round in 0..5u32 {
            ring.push(job(round * 10)).unwrap();
            ring.push(job(round * 10 + 1)).unwrap();
            ring.push(job(round * 10 + 2)).unwrap();
            assert!(ring.is_full());
            assert_eq!(ring.push(job(99)), Err(job(99)));
            assert_eq!(ring.peek(2).unwrap().monitor, round * 10 + 2);
            assert_eq!(ring.peek(3), None);
            assert_eq!(ring.pop().unwrap().monitor, round * 10);
            assert_eq!(ring.pop().unwrap().monitor, round * 10 + 1);
            assert_eq!(ring.pop().unwrap().monitor, round * 10 + 2);
            assert_eq!(ring.pop(), None);
        }
    }
}
