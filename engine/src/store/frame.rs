//! Framing: each record is `[body length: u32 LE][CRC-32C of the body: u32 LE][body]`.
//!
//! Why a checksum per record: a crash (or a power loss after an unsynced write) can leave the
//! end of a segment cut short or filled with garbage; the length and the checksum tell a whole
//! record from that torn tail, which recovery drops. CRC-32C because it is what storage
//! engines use for this and it runs in hardware on x86-64 and aarch64.

use std::fmt;

use super::record::Record;
use crate::limits::MAX_RECORD_BYTES;

/// Bytes before each body: its length and its checksum.
pub const HEADER_BYTES: usize = 8;

/// Why a frame could not be read: the record there and everything after it is a torn tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes left than the header or the length says.
    Truncated,
    /// A length of zero or above [`MAX_RECORD_BYTES`].
    BadLength(u32),
    /// The body does not match its checksum.
    Checksum,
    /// The checksum matches but the body is not a record this version knows.
    Body,
    /// (When writing) the record's body is larger than [`MAX_RECORD_BYTES`].
    TooLarge,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("a record cut short"),
            FrameError::BadLength(n) => write!(f, "a record length of {n} bytes"),
            FrameError::Checksum => f.write_str("a record whose checksum does not match"),
            FrameError::Body => f.write_str("a record this version cannot read"),
            FrameError::TooLarge => write!(f, "a record over {MAX_RECORD_BYTES} bytes"),
        }
    }
}

/// Appends `record`, framed, to `buf`. Allocates nothing when `buf` has room. On error `buf`
/// is left as it was.
pub fn encode(record: &Record, buf: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_BYTES]);
    let body = match postcard::to_extend(record, std::mem::take(buf)) {
        Ok(b) => b,
        Err(_) => return Err(FrameError::Body),
    };
    *buf = body;
    let len = buf.len() - start - HEADER_BYTES;
    if len > MAX_RECORD_BYTES {
        buf.truncate(start);
        return Err(FrameError::TooLarge);
    }
    let crc = crc32c::crc32c(&buf[start + HEADER_BYTES..]);
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The records of a byte slice, in order. Yields `Err` once, at the first frame that cannot
/// be read (with its offset), and nothing after it.
pub struct Frames<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    pub fn new(bytes: &'a [u8]) -> Frames<'a> {
        Frames { bytes, offset: 0, done: false }
    }

    /// The offset just past the last record read.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn next_frame(&mut self) -> Result<Record, FrameError> {
        let rest = &self.bytes[self.offset..];
        let Some(header) = rest.get(..HEADER_BYTES) else { return Err(FrameError::Truncated) };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len == 0 || len as usize > MAX_RECORD_BYTES {
            return Err(FrameError::BadLength(len));
        }
        let Some(body) = rest.get(HEADER_BYTES..HEADER_BYTES + len as usize) else {
            return Err(FrameError::Truncated);
        };
        if crc32c::crc32c(body) != crc {
            return Err(FrameError::Checksum);
        }
        let record = postcard::from_bytes(body).map_err(|_| FrameError::Body)?;
        self.offset += HEADER_BYTES + len as usize;
        Ok(record)
    }
}

impl Iterator for Frames<'_> {
    type Item = Result<(usize, Record), (usize, FrameError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset == self.bytes.len() {
            return None;
        }
        let at = self.offset;
        match self.next_frame() {
            Ok(record) => Some(Ok((at, record))),
            Err(e) => {
                self.done = true;
                Some(Err((at, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour::Colour;
    use crate::state::{MonitorState, Reason};
    use crate::store::SavedAlert;

    fn every_record() -> Vec<Record> {
        let monitor = || "api-eu#weird id ✓".to_owned();
        vec![
            Record::IncidentOpened {
                monitor: monitor(),
                incident_seq: 7,
                at_unix_ms: 1_780_000_000_123,
                colour: Colour::Red,
            },
            Record::IncidentClosed {
                monitor: monitor(),
                incident_seq: u32::MAX,
                at_unix_ms: -1,
                colour: Some(Colour::Green),
            },
            Record::IncidentClosed {
                monitor: monitor(),
                incident_seq: 1,
                at_unix_ms: 0,
                colour: None,
            },
            Record::MonitorState {
                monitor: monitor(),
                config: 0xdead_beef,
                state: MonitorState::resume(41).saved(),
            },
            Record::AlertQueued(SavedAlert {
                id: u64::MAX,
                monitor: monitor(),
                endpoint: 2,
                endpoint_check: 0x1234_5678,
                colour: Colour::Red,
                reason: Reason::ThresholdReached,
                incident_seq: Some(3),
                summary: "3 checks failed: connection refused".into(),
                action: "look at it".into(),
                next_steps: vec!["one".into(), String::new()],
                not_before_unix_ms: 1_780_000_300_000,
            }),
            Record::AlertDelivered { id: 0 },
            Record::AlertGivenUp { id: 12345 },
            Record::Disabled { monitor: monitor(), disabled: true },
            Record::Silenced { monitor: monitor(), until_unix_ms: i64::MAX },
            Record::Acked { monitor: monitor(), incident_seq: 2, by: "alice".into() },
        ]
    }

    #[test]
    fn every_record_type_round_trips() {
        let records = every_record();
        let mut buf = Vec::new();
        for r in &records {
            encode(r, &mut buf).unwrap();
        }
        let read: Vec<Record> = Frames::new(&buf).map(|f| f.unwrap().1).collect();
        assert_eq!(read, records);
    }

    #[test]
    fn a_saved_monitor_state_restores_what_it_kept() {
        use crate::state::{transition, Event, Generation, Policy};
        let policy = Policy { unhealthy: 2, ..Policy::default() };
        let mut s = MonitorState::resume(9);
        for g in 1..=3 {
            let generation = s.begin_check(Generation::new(g));
            let kind = cpra_net::FailureKind::ConnectRefused;
            transition(&mut s, &policy, Event::CheckFailed { generation, kind }, 1000);
        }
        assert!(s.incident_open());
        let mut buf = Vec::new();
        let record = Record::MonitorState { monitor: "m".into(), config: 1, state: s.saved() };
        encode(&record, &mut buf).unwrap();
        let Some(Ok((_, Record::MonitorState { state, .. }))) = Frames::new(&buf).next() else {
            panic!("one record")
        };
        let same = MonitorState::restore(state, false);
        assert!(same.incident_open());
        assert_eq!(
            (same.incident_seq(), same.consecutive_failures(), same.pulse_failures()),
            (10, 3, s.pulse_failures())
        );
        let changed = MonitorState::restore(state, true);
        assert!(changed.incident_open() && changed.recovering());
        assert_eq!((changed.incident_seq(), changed.consecutive_failures()), (10, 0));
    }

    /// A red's cooldown goes through the journal from one process's clock to another's (each
    /// a virtual reading paired with Unix time): a new incident's red right after the restart
    /// waits for the end of the old red's cooldown, to the second, not sooner and not later.
    #[test]
    fn cooldowns_continue_across_processes_with_different_clocks() {
        use crate::colour::Colour;
        use crate::state::{transition, Effect, Event, Policy};
        const MIN: u64 = 60_000;
        // The old process: its clock reads 9 h when Unix time is T.
        let (old_ms, unix) = (9 * 3600 * 1000, 1_780_000_000_000_i64);
        let policy = Policy { unhealthy: 1, healthy: 1, ..Policy::default() };
        let mut s = MonitorState::new();
        let check = |s: &mut MonitorState, ok: bool, now_ms: u64| {
            let generation = s.begin_check(s.generation().next());
            let event = if ok {
                Event::CheckSucceeded { generation, warning: None }
            } else {
                Event::CheckFailed { generation, kind: cpra_net::FailureKind::ConnectRefused }
            };
            transition(s, &policy, event, now_ms)
        };
        let red_at = |fx: &crate::state::Effects| {
            fx.as_slice().iter().find_map(|e| match *e {
                Effect::Alert { colour: Colour::Red, not_before_ms, .. } => Some(not_before_ms),
                _ => None,
            })
        };
        assert_eq!(red_at(&check(&mut s, false, old_ms)), Some(old_ms), "the first red goes");
        check(&mut s, true, old_ms + MIN); // green: the incident closes
        let saved = s.saved_at(old_ms + 2 * MIN, unix + 2 * MIN as i64);
        let mut buf = Vec::new();
        encode(&Record::MonitorState { monitor: "m".into(), config: 1, state: saved }, &mut buf)
            .unwrap();
        let Some(Ok((_, Record::MonitorState { state, .. }))) = Frames::new(&buf).next() else {
            panic!("one record")
        };
        assert_eq!(state, saved);
        assert_eq!(state.cooldowns_unix_ms[Colour::Red.index()], Some(unix));

        // The new process starts 1 min later by Unix time; its clock reads 8 h 0.5 s.
        let new_ms = 8 * 3600 * 1000 + 500;
        let restart_unix = unix + 3 * MIN as i64;
        let mut r = MonitorState::restore(state, false);
        r.restore_cooldowns(&state, new_ms, restart_unix);
        // Its red is due 2 min after the restart (5 min after the old one), on the new clock.
        let due = new_ms + 2 * MIN;
        let fx = check(&mut r, false, new_ms);
        assert_eq!(r.incident_seq(), 2);
        assert_eq!(red_at(&fx), Some(due.div_ceil(1000) * 1000), "held to the old red's cooldown");

        // Without the cooldowns (as before they were kept) it would have gone at once.
        let mut fresh = MonitorState::restore(state, false);
        assert_eq!(red_at(&check(&mut fresh, false, new_ms)), Some(new_ms));

        // A send older than the longest cooldown is not kept.
        let later = s.saved_at(old_ms + 9 * 3600 * 1000, unix + 9 * 3600 * 1000);
        assert_eq!(later.cooldowns_unix_ms, [None; Colour::COUNT]);
    }

    #[test]
    fn a_torn_tail_is_dropped_and_the_records_before_it_kept() {
        let records = every_record();
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for r in &records {
            encode(r, &mut buf).unwrap();
            ends.push(buf.len());
        }
        let last_start = ends[ends.len() - 2];
        let whole = &records[..records.len() - 1];
        let read_until_error = |bytes: &[u8]| {
            let mut ok = Vec::new();
            let mut errors = Vec::new();
            for f in Frames::new(bytes) {
                match f {
                    Ok((_, r)) => ok.push(r),
                    Err(e) => errors.push(e),
                }
            }
            (ok, errors)
        };
        // Cut anywhere inside the last record: header or body.
        for cut in last_start + 1..buf.len() {
            let (ok, errors) = read_until_error(&buf[..cut]);
            assert_eq!(ok, whole, "cut at {cut}");
            assert_eq!(errors, [(last_start, FrameError::Truncated)], "cut at {cut}");
        }
        // Flip each bit of the last record's body: the checksum catches it.
        for byte in last_start + HEADER_BYTES..buf.len() {
            for bit in 0..8 {
                let mut flipped = buf.clone();
                flipped[byte] ^= 1 << bit;
                let (ok, errors) = read_until_error(&flipped);
                assert_eq!(ok, whole);
                assert_eq!(errors, [(last_start, FrameError::Checksum)]);
            }
        }
        // A garbage length (zeroed tail, as a preallocated block leaves it).
        let mut zeroed = buf[..last_start].to_vec();
        zeroed.extend_from_slice(&[0; 64]);
        let (ok, errors) = read_until_error(&zeroed);
        assert_eq!(ok, whole);
        assert_eq!(errors, [(last_start, FrameError::BadLength(0))]);
    }

    #[test]
    fn a_record_over_the_bound_is_refused_and_leaves_the_buffer_alone() {
        let mut buf = vec![1, 2, 3];
        let huge = Record::Acked { monitor: "m".into(), incident_seq: 1, by: "x".repeat(70_000) };
        assert_eq!(encode(&huge, &mut buf), Err(FrameError::TooLarge));
        assert_eq!(buf, [1, 2, 3]);
    }
}
