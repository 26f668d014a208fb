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
}

/// One shard's journal. Created on the shard's thread.
pub struct Journal {
    shard: usize,
    path: PathBuf,
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
    /// A journal appending to `path` from `position`, and its writer task in `queue`.
    pub fn start(
        shard: usize,
        path: PathBuf,
        position: u64,
        fsync_ms: Option<u64>,
        next_alert_id: u64,
        queue: TaskQueueHandle,
    ) -> Rc<Journal> {
        let journal = Rc::new(Journal {
            shard,
            path,
            position: Cell::new(position),
            fsync: fsync_ms.map(Duration::from_millis),
            pending: RefCell::new(Pending::default()),
            writer: RefCell::new(None),
            next_alert_id: Cell::new(next_alert_id),
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
        if let Err(e) = encode(record, &mut p.bytes) {
            tracing::error!(shard = self.shard, "journal: cannot write {e}");
            return;
        }
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
    async fn next_batch(me: &Weak<Journal>) -> Option<(Vec<u8>, Vec<After>, u64)> {
        poll_fn(|cx| {
            let Some(j) = me.upgrade() else { return Poll::Ready(None) };
            let mut p = j.pending.borrow_mut();
            if p.queued == p.durable {
                *j.writer.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let bytes = std::mem::take(&mut p.bytes);
            let after = std::mem::take(&mut p.after);
            Poll::Ready(Some((bytes, after, p.queued)))
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
    let Some(path) = me.upgrade().map(|j| j.path.clone()) else { return };
    let file = match open(&path).await {
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
        let Some((bytes, after, upto)) = Journal::next_batch(&me).await else { break };
        let Some(j) = me.upgrade() else { break };
        if let Some(file) = &file {
            let mut result =
                if bytes.is_empty() { Ok(()) } else { j.write_batch(file, bytes).await };
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
                    path.display()
                );
            }
        }
        j.pending.borrow_mut().durable = upto;
        drop(j);
        for f in after {
            f();
        }
    }
    if let Some(file) = file {
        let _ = file.close().await;
    }
}
