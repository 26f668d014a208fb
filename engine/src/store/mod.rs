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

pub mod frame;
pub mod record;
pub mod segment;

pub use frame::{encode, FrameError, Frames};
pub use record::{Record, SavedAlert};
pub use segment::{read_shard_dir, segment_path, ShardLog, TornTail};
