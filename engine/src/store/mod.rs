//! Durability: each shard's journal of what must survive a crash or a restart.
//!
//! What it is for: the records a shard appends (incidents opened and closed, the state a
//! monitor needs to continue an incident, the alert outbox, operator actions), their framing
//! (length-prefixed, CRC-32C checked), the segment files they live in, and reading them back
//! at start, dropping a torn tail. What it is not for: deciding anything (`state.rs`) or
//! delivering alerts (`actions`). Design: docs/architecture.md, "Durability"; what survives
//! what: docs/operations.md.
//!
//! Why per shard and append-only: a shard owns its monitors and nothing else touches them, so
//! it owns their journal too (no lock, no shared file), and an append is the one write a crash
//! can only cut short, never scramble: a record is either whole and checked, or the torn tail
//! that recovery drops.

pub mod datadir;
pub mod frame;
pub mod journal;
pub mod record;
pub mod recovery;
pub mod segment;

pub use datadir::{DataDir, DEFAULT_DATA_DIR, NO_DATA_DIR};
pub use frame::{encode, FrameError, Frames};
pub use journal::Journal;
pub use record::{Record, SavedAlert};
pub use recovery::{config_check, endpoint_check, recover, Recovery, RecoveryReport, ShardStart};
pub use segment::{read_shard_dir, segment_path, ShardLog, TornTail};

use std::path::PathBuf;

/// The group commit interval when `--fsync-interval` is not given: at most one `fdatasync`
/// per shard per 10 ms. An incident or an alert waits at most this long (plus the sync) before
/// it acts, which no receiver notices, and 100 syncs a second per shard is far below what any
/// disk sustains.
pub const DEFAULT_FSYNC_INTERVAL_MS: u64 = 10;

/// When the journal's writes are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Group commit: at most one `fdatasync` per shard per this many ms; what must be durable
    /// before it acts (an incident before its first alert, an alert before its first delivery)
    /// waits for the next one.
    EveryMs(u64),
    /// Never sync: the page cache decides. For tests and throwaway runs; a process crash loses
    /// nothing, a power loss may lose anything not yet written back.
    Never,
}

/// Where and how a run keeps its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    pub dir: PathBuf,
    pub fsync: Fsync,
}
