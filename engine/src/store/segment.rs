//! Segment files: a shard's journal is the files `NNNNNNNNNNNNNNNNNNNN.log` in its own
//! directory (`shard-N` under the data dir), numbered in the order they were started. A
//! process appends to a segment of its own, started after the highest number it found, so it
//! never writes after a torn tail.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::frame::{FrameError, Frames};
use super::record::Record;

/// The file name suffix of a segment.
pub const SEGMENT_SUFFIX: &str = ".log";

/// The path of segment `number` in `dir`.
pub fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}{SEGMENT_SUFFIX}"))
}

/// A torn tail dropped at recovery: where, and what was wrong with its first record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    pub offset: u64,
    pub error: FrameError,
    /// Bytes dropped.
    pub dropped: u64,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: dropped a torn tail of {} bytes at offset {} ({})",
            self.segment.display(),
            self.dropped,
            self.offset,
            self.error
        )
    }
}

/// What one shard directory holds, read back in order.
#[derive(Debug, Default)]
pub struct ShardLog {
    /// Each segment's number and records, in segment order.
    pub segments: Vec<(u64, Vec<Record>)>,
    /// Torn tails dropped (at most one per segment: each segment was written by one process,
    /// and only its end can be torn).
    pub torn: Vec<TornTail>,
    /// The number the next segment written in this directory must take.
    pub next_segment: u64,
}

/// Every segment number in `dir`, unsorted.
pub fn segment_numbers(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(numbers),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_suffix(SEGMENT_SUFFIX).and_then(|n| n.parse::<u64>().ok()) {
            numbers.push(n);
        }
    }
    Ok(numbers)
}

/// The segments of `dir`, sorted by number. A directory that does not exist holds none.
pub fn segments_in(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut numbers = segment_numbers(dir)?;
    numbers.sort_unstable();
    Ok(numbers.into_iter().map(|n| (n, segment_path(dir, n))).collect())
}

/// Reads one segment, handing each whole record to `each` as it is decoded: a record is
/// handed over only once its frame's length and checksum passed, so nothing of a torn tail
/// is ever applied. The torn tail (the first frame that fails and everything after it) is
/// dropped and the file cut back to its last whole record, so it is reported once, not at
/// every start.
///
/// Why a callback and not a `Vec<Record>`: recovery folds a million records into its maps;
/// collecting them first cost half of its time (growing a buffer of the largest variant's
/// size, and the kernel zeroing its pages).
pub fn read_segment(path: &Path, mut each: impl FnMut(Record)) -> io::Result<Option<TornTail>> {
    let bytes = fs::read(path)?;
    let mut torn = None;
    for frame in Frames::new(&bytes) {
        match frame {
            Ok((_, record)) => each(record),
            Err((offset, error)) => torn = Some((offset, error)),
        }
    }
    let Some((offset, error)) = torn else { return Ok(None) };
    fs::OpenOptions::new().write(true).open(path)?.set_len(offset as u64)?;
    Ok(Some(TornTail {
        segment: path.to_owned(),
        offset: offset as u64,
        error,
        dropped: (bytes.len() - offset) as u64,
    }))
}

/// Reads every segment of `dir` in order into memory (the journal's own tests and tools;
/// recovery streams with [`read_segment`] instead). Torn tails are cut as [`read_segment`]
/// says. A directory that does not exist holds nothing.
pub fn read_shard_dir(dir: &Path) -> io::Result<ShardLog> {
    let segments = segments_in(dir)?;
    let mut log =
        ShardLog { next_segment: segments.last().map_or(0, |(n, _)| n + 1), ..ShardLog::default() };
    for (n, path) in segments {
        let mut records = Vec::new();
        if let Some(torn) = read_segment(&path, |r| records.push(r))? {
            log.torn.push(torn);
        }
        log.segments.push((n, records));
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encode;

    fn opened(seq: u32) -> Record {
        Record::IncidentOpened {
            monitor: "m".into(),
            incident_seq: seq,
            at_unix_ms: 1,
            colour: crate::colour::Colour::Red,
        }
    }

    #[test]
    fn segments_are_read_in_order_and_a_torn_tail_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Vec::new();
        encode(&opened(1), &mut first).unwrap();
        encode(&opened(2), &mut first).unwrap();
        let whole = first.len();
        encode(&opened(3), &mut first).unwrap();
        first.truncate(first.len() - 2);
        let mut second = Vec::new();
        encode(&opened(4), &mut second).unwrap();
        fs::write(segment_path(dir.path(), 9), &second).unwrap();
        fs::write(segment_path(dir.path(), 2), &first).unwrap();
        fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();

        let log = read_shard_dir(dir.path()).unwrap();
        assert_eq!(log.segments, [(2, vec![opened(1), opened(2)]), (9, vec![opened(4)])]);
        assert_eq!(log.next_segment, 10);
        assert_eq!(log.torn.len(), 1);
        assert_eq!(log.torn[0].offset, whole as u64);
        assert_eq!(log.torn[0].error, FrameError::Truncated);

        let again = read_shard_dir(dir.path()).unwrap();
        assert_eq!(again.segments, log.segments);
        assert!(again.torn.is_empty(), "the tail was cut back: {:?}", again.torn);
    }

    #[test]
    fn a_missing_directory_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = read_shard_dir(&dir.path().join("shard-3")).unwrap();
        assert!(log.segments.is_empty() && log.torn.is_empty());
        assert_eq!(log.next_segment, 0);
    }
}
