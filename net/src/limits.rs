//! The bounds every probe respects, as named constants in one place, so a reviewer can see
//! at a glance how much a hostile target can make a shard read, hold or wait for.
//!
//! What it is for: sizes and counts. What it is not for: timeouts (each monitor has its own
//! `timeout`, see `deadline.rs`).

/// Largest HTTP response header block (status line + headers + blank line) we read. 16 KiB is
/// what nginx and Go's net/http accept by default for a request line plus headers; health
/// endpoints send a few hundred bytes. Past it the check fails with `TooLarge` and the
/// connection is closed.
pub const MAX_HEADER_BLOCK_BYTES: usize = 16 * 1024;

/// Most HTTP headers parsed in one response (httparse needs a fixed array). 64 is four times
/// what a busy reverse proxy adds; past it httparse reports an error and the check fails with
/// `TooLarge`.
pub const MAX_HEADERS: usize = 64;

/// Most body bytes read, and only when an assertion (`body_contains`, `body_regex`) needs the
/// body. 64 KiB covers any health payload; a body assertion sees at most this prefix, and the
/// rest is never read (the connection is closed, never reused).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most attempts of one check (the first plus retries), all inside the one deadline. Go CPRA
/// retries up to twice; more would only hide a flapping target.
pub const MAX_ATTEMPTS: u32 = 3;

/// Most idle keep-alive connections a shard keeps, across all targets. One per target is the
/// rule; this caps the total so a manifest with many keep-alive targets cannot pin file
/// descriptors: past it the least recently used connection is closed.
pub const MAX_POOLED_CONNECTIONS: usize = 1024;

/// Largest rendered HTTP request (request line, headers, body) accepted at load. Health checks
/// send small requests; a larger one is a manifest mistake reported at load.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest UDP datagram read for a `udp` or `dns` reply. 4 KiB holds any EDNS answer a health
/// check asks for; a longer datagram is truncated by the kernel and fails the parse.
pub const MAX_DATAGRAM_BYTES: usize = 4 * 1024;

/// Largest `ca_file` read at load (PEM). A bundle of a few hundred CAs is ~200 KiB; 1 MiB
/// leaves room and stops a mistaken path to a huge file.
pub const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

const _: () = assert!(MAX_HEADER_BLOCK_BYTES >= 1024 && MAX_BODY_BYTES >= 1024);
const _: () = assert!(MAX_ATTEMPTS >= 1);
