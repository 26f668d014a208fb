//! A shard's journal writer: appends records to the shard's segment through glommio's
//! io_uring file API, on the shard's background task queue, with group commit.
//!
//! How a shard uses it: [`Journal::append`] frames a record into a buffer (no I/O, nothing
//! awaited: the probe path never waits for the disk); [`Journal::then`] runs a closure once
//! everything appended so far is durable (an alert is queued for delivery only then). The
//! writer task takes the whole buffer at once, writes it, and syncs it with one `fdatasync`;
//! a sync starts at most once per commit interval, and what is appended meanwhile waits for
//! the next one (group commit).
//!
//! Why `BufferedFile`: records are small and appended at unaligned offsets; DMA files want
//! aligned, block-sized writes (padding or rewriting the last block). The page cache plus
//! `fdatasync` is what the commit needs.
//!
//! A write or sync that fails is logged and the closures still run: an alert that could not
//! be made durable is still sent (at-least-once needs the journal; delivery must not wait for
//! a broken disk).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use glommio::io::{BufferedFile, OpenOptions};

use super::recovery::ShardStart;
use super::segment::segment_path;
use crate::limits::JOURNAL_COMPACT_BYTES;
use glommio::TaskQueueHandle;

use super::frame::encode;
use super::record::Record;
use crate::shard::spawn_into;

/// How often a stopping shard looks whether its journal is written: shutdown only.
const FLUSH_POLL: Duration = Duration::from_millis(2);

/// Something to run once the records appended before it are durable.
type After = Box<dyn FnOnce()>;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    after: Vec<After>,
    /// Appends (and `then`s) so far, and how many of them are durable.
    queued: u64,
    durable: u64,
    /// `bytes` starts with a snapshot of the shard's live state: they go to a new segment,
    /// and the old one is removed once they are durable.
    rotate: bool,
}

/// What the writer takes at once.
struct Batch {
    bytes: Vec<u8>,
    after: Vec<After>,
    upto: u64,
    rotate: bool,
}

/// One shard's journal. Created on the shard's thread.
pub struct Journal {
    shard: usize,
    dir: PathBuf,
    /// The segment appended to and its number; a rotation moves to `number + stride`, so
    /// shards (numbered apart at start) never take the same number.
    path: RefCell<PathBuf>,
    number: Cell<u64>,
    stride: u64,
    /// Bytes appended since the last snapshot, and that snapshot's size.
    since_snapshot: Cell<u64>,
    snapshot_bytes: Cell<u64>,
    /// Where the next write goes.
    position: Cell<u64>,
    /// `None`: never sync.
    fsync: Option<Duration>,
    pending: RefCell<Pending>,
    writer: RefCell<Option<Waker>>,
    next_alert_id: Cell<u64>,
    /// Bytes written since start (for the benchmark and the log).
    written: Cell<u64>,
    syncs: Cell<u64>,
}

impl Journal {
    /// A journal appending to the segment recovery left for it (`start`), and its writer
    /// task in `queue`. `stride` is the number of shards.
    pub fn start(
        shard: usize,
        start: &ShardStart,
        stride: usize,
        fsync_ms: Option<u64>,
        queue: TaskQueueHandle,
    ) -> Rc<Journal> {
        let dir = start.segment.parent().map(PathBuf::from).unwrap_or_default();
        let journal = Rc::new(Journal {
            shard,
            dir,
            path: RefCell::new(start.segment.clone()),
            number: Cell::new(start.segment_number),
            stride: stride.max(1) as u64,
            since_snapshot: Cell::new(0),
            snapshot_bytes: Cell::new(start.segment_len),
            position: Cell::new(start.segment_len),
            fsync: fsync_ms.map(Duration::from_millis),
            pending: RefCell::new(Pending::default()),
            writer: RefCell::new(None),
            next_alert_id: Cell::new(start.next_alert_id),
            written: Cell::new(0),
            syncs: Cell::new(0),
        });
        spawn_into(write_loop(Rc::downgrade(&journal)), queue).detach();
        journal
    }

    /// Frames `record` into the buffer the writer takes next. A record too large to frame
    /// (only a bug could make one) is logged and skipped.
    pub fn append(&self, record: &Record) {
        let mut p = self.pending.borrow_mut();
        let before = p.bytes.len();
        if let Err(e) = encode(record, &mut p.bytes) {
            tracing::error!(shard = self.shard, "journal: cannot write {e}");
            return;
        }
        p.queued += 1;
        let grown = (p.bytes.len() - before) as u64;
        drop(p);
        self.since_snapshot.set(self.since_snapshot.get() + grown);
        self.wake_writer();
    }

    /// Whether the segment has grown enough since the last snapshot to compact it
    /// ([`JOURNAL_COMPACT_BYTES`]).
    pub fn wants_snapshot(&self) -> bool {
        self.since_snapshot.get() >= JOURNAL_COMPACT_BYTES.max(2 * self.snapshot_bytes.get())
    }

    /// Compacts: `snapshot` (framed records of the shard's whole live state, taken now)
    /// replaces everything appended and not yet written, and goes to a new segment; the old
    /// one is removed once the new one is durable. What waits for a commit still waits for
    /// this one (the snapshot holds what it waited for).
    pub fn snapshot(&self, snapshot: Vec<u8>) {
        let mut p = self.pending.borrow_mut();
        self.snapshot_bytes.set(snapshot.len() as u64);
        self.since_snapshot.set(0);
        p.bytes = snapshot;
        p.rotate = true;
        p.queued += 1;
        drop(p);
        self.wake_writer();
    }

    /// Runs `f` once everything appended so far is durable.
    pub fn then(&self, f: After) {
        let mut p = self.pending.borrow_mut();
        p.after.push(f);
        p.queued += 1;
        drop(p);
        self.wake_writer();
    }

    /// A new outbox id.
    pub fn next_alert_id(&self) -> u64 {
        let id = self.next_alert_id.get();
        self.next_alert_id.set(id + 1);
        id
    }

    /// Waits until everything appended so far is durable, or `limit` passed.
    pub async fn flush(&self, limit: Duration) {
        let target = self.pending.borrow().queued;
        let start = Instant::now();
        while self.pending.borrow().durable < target && start.elapsed() < limit {
            glommio::timer::sleep(FLUSH_POLL).await;
        }
    }

    pub fn bytes_written(&self) -> u64 {
        self.written.get()
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.get()
    }

    fn wake_writer(&self) {
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits for something to write; `None` when the journal is gone.
    async fn next_batch(me: &Weak<Journal>) -> Option<Batch> {
        poll_fn(|cx| {
            let Some(j) = me.upgrade() else { return Poll::Ready(None) };
            let mut p = j.pending.borrow_mut();
            if p.queued == p.durable {
                *j.writer.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Some(Batch {
                bytes: std::mem::take(&mut p.bytes),
                after: std::mem::take(&mut p.after),
                upto: p.queued,
                rotate: std::mem::take(&mut p.rotate),
            }))
        })
        .await
    }

    /// Writes `bytes` at the end. A short write on a regular file means the disk is full:
    /// it is reported as an error (the next batch is written after the short one).
    async fn write_batch(&self, file: &BufferedFile, bytes: Vec<u8>) -> Result<(), String> {
        let len = bytes.len();
        let n = file.write_at(bytes, self.position.get()).await.map_err(|e| e.to_string())?;
        self.position.set(self.position.get() + n as u64);
        self.written.set(self.written.get() + n as u64);
        if n < len {
            return Err(format!("wrote {n} of {len} bytes (is the disk full?)"));
        }
        Ok(())
    }
}

async fn open(path: &std::path::Path) -> glommio::Result<BufferedFile, ()> {
    OpenOptions::new().write(true).create(true).buffered_open(path).await
}

/// The writer task: batch, write, sync at most once per interval, then run what waited.
async fn write_loop(me: Weak<Journal>) {
    let Some(path) = me.upgrade().map(|j| j.path.borrow().clone()) else { return };
    let mut file = match open(&path).await {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!("journal: cannot open {}: {e}; nothing will be kept", path.display());
            None
        }
    };
    let mut last_sync: Option<Instant> = None;
    loop {
        // Group commit: the sync interval runs from the last sync, so a lone record is
        // written at once and a burst waits at most one interval.
        if let (Some(interval), Some(at)) = (me.upgrade().and_then(|j| j.fsync), last_sync) {
            let since = at.elapsed();
            if since < interval {
                glommio::timer::sleep(interval - since).await;
            }
        }
        let Some(batch) = Journal::next_batch(&me).await else { break };
        let Some(j) = me.upgrade() else { break };
        if batch.rotate {
            // Kept in case the new segment cannot be written: then the snapshot is appended
            // to the old one (a snapshot is records like any other).
            let copy = batch.bytes.clone();
            match j.rotate(file.take(), batch.bytes).await {
                Ok(new) => file = Some(new),
                Err(e) => {
                    tracing::error!(
                        shard = j.shard,
                        "journal: cannot start a new segment: {e}; appending to the old one"
                    );
                    let old = j.path.borrow().clone();
                    file = open(&old).await.ok();
                    let result = match &file {
                        Some(f) => j.write_batch(f, copy).await,
                        None => Err("cannot reopen it".to_owned()),
                    };
                    if let Err(e) = result {
                        tracing::error!(
                            shard = j.shard,
                            "journal: cannot write {}: {e}; what follows is sent but may not \
                             survive a crash",
                            old.display()
                        );
                    }
                }
            }
            last_sync = Some(Instant::now());
        } else if let Some(file) = &file {
            let mut result = if batch.bytes.is_empty() {
                Ok(())
            } else {
                j.write_batch(file, batch.bytes).await
            };
            if result.is_ok() && j.fsync.is_some() {
                result = file.fdatasync().await.map_err(|e| e.to_string());
                j.syncs.set(j.syncs.get() + 1);
                last_sync = Some(Instant::now());
            }
            if let Err(e) = result {
                tracing::error!(
                    shard = j.shard,
                    "journal: cannot write {}: {e}; what follows is sent but may not survive a \
                     crash",
                    j.path.borrow().display()
                );
            }
        }
        j.pending.borrow_mut().durable = batch.upto;
        drop(j);
        for f in batch.after {
            f();
        }
    }
    if let Some(file) = file {
        let _ = file.close().await;
    }
}

impl Journal {
    /// Writes `snapshot` as the next segment, makes it durable (when syncing), then closes
    /// and removes the segment it replaces (`old`); returns the new segment's file. At most two
    /// descriptors at once (`FDS_JOURNAL_PER_SHARD`): the old file is closed before the
    /// directory is opened to sync it.
    async fn rotate(
        &self,
        old: Option<BufferedFile>,
        snapshot: Vec<u8>,
    ) -> Result<BufferedFile, String> {
        let number = self.number.get() + self.stride;
        let path = segment_path(&self.dir, number);
        let new = match self.write_snapshot(&path, old, snapshot).await {
            Ok(new) => new,
            Err(e) => {
                // A half-written newer segment would be read after the old one, which goes
                // on taking appends: it must not stay.
                let _ = glommio::io::remove(&path).await;
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut *self.path.borrow_mut(), path);
        self.number.set(number);
        if let Err(e) = glommio::io::remove(&old).await {
            // Harmless for recovery (the snapshot, numbered after it, supersedes it); only
            // space is lost until the next start removes it.
            tracing::warn!(shard = self.shard, "journal: cannot remove {}: {e}", old.display());
        }
        Ok(new)
    }

    async fn write_snapshot(
        &self,
        path: &std::path::Path,
        old: Option<BufferedFile>,
        snapshot: Vec<u8>,
    ) -> Result<BufferedFile, String> {
        let new = open(path).await.map_err(|e| e.to_string())?;
        let len = snapshot.len();
        let n = if len == 0 {
            0
        } else {
            new.write_at(snapshot, 0).await.map_err(|e| e.to_string())?
        };
        if n < len {
            return Err(format!("wrote {n} of {len} bytes (is the disk full?)"));
        }
        if let Some(old) = old {
            let _ = old.close().await;
        }
        if self.fsync.is_some() {
            new.fdatasync().await.map_err(|e| e.to_string())?;
            // The new name must be durable before the old file goes.
            sync_dir(&self.dir).await?;
            self.syncs.set(self.syncs.get() + 1);
        }
        self.position.set(n as u64);
        self.written.set(self.written.get() + n as u64);
        Ok(new)
    }
}

async fn sync_dir(dir: &std::path::Path) -> Result<(), String> {
    let d = glommio::io::Directory::open(dir).await.map_err(|e| e.to_string())?;
    let r = d.sync().await.map_err(|e| e.to_string());
    let _ = d.close().await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::TaskQueues;
    use crate::store::{read_shard_dir, segment::segment_numbers};

    fn opened(seq: u32) -> Record {
        Record::IncidentOpened {
            monitor: "m".into(),
            incident_seq: seq,
            at_unix_ms: 1,
            colour: crate::colour::Colour::Red,
        }
    }

    fn on_executor<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default().spawn(f).unwrap().join().unwrap();
    }

    #[test]
    fn appends_are_durable_before_what_waits_for_them_and_a_snapshot_replaces_the_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let start = ShardStart {
            segment: segment_path(&dir, 3),
            segment_number: 3,
            segment_len: 0,
            next_alert_id: 7 << 32,
        };
        std::fs::write(&start.segment, b"").unwrap();
        let d = dir.clone();
        on_executor(move || {
            async move {
                let queues = TaskQueues::create();
                // Two shards: this one rotates from 3 to 5.
                let journal = Journal::start(1, &start, 2, Some(1), queues.background);
                assert_eq!(journal.next_alert_id(), 7 << 32);
                journal.append(&opened(1));
                journal.append(&opened(2));
                let seen = Rc::new(Cell::new(None));
                let s = seen.clone();
                let path = start.segment.clone();
                journal.then(Box::new(move || {
                    // Run only once both records are on disk.
                    s.set(Some(std::fs::read(&path).unwrap().len()));
                }));
                journal.flush(Duration::from_secs(10)).await;
                assert!(seen.get().is_some_and(|len| len > 0), "{:?}", seen.get());
                assert!(journal.syncs() >= 1);

                assert!(!journal.wants_snapshot());
                let mut snapshot = Vec::new();
                encode(&opened(9), &mut snapshot).unwrap();
                journal.append(&opened(3)); // superseded by the snapshot
                journal.snapshot(snapshot);
                journal.append(&opened(10));
                journal.flush(Duration::from_secs(10)).await;
                let numbers = segment_numbers(&d).unwrap();
                assert_eq!(numbers, [5], "the old segment is removed");
            }
        });
        let log = read_shard_dir(&dir).unwrap();
        assert_eq!(log.segments, [(5, vec![opened(9), opened(10)])]);
    }
}
