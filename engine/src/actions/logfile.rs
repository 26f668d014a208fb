//! The `log` notifier: one JSON line per alert appended to a file.

/// Log files a shard keeps open. A manifest names few log files (usually one); 16 covers any
/// real one while bounding descriptors. Past it the least recently used file is closed and
/// reopened when next needed.
pub const DEFAULT_MAX_OPEN_FILES: usize = 16;
