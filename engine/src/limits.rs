//! The engine's size and count bounds, as named constants in one place, so a reviewer can see
//! at a glance how much a burst of alerts, a misbehaving receiver or a mistaken manifest can
//! make a shard queue, hold or read. Each says why its number and what happens at the bound;
//! messages that mention a bound format it from the constant (sizes with [`Size`]).
//!
//! Why one file for the crate rather than one per module: the bounds are read together (what
//! can one shard hold?), and a per-module file would scatter them again. The bounds of the
//! network side of a check are in `cpra_net::limits`.
//!
//! What it is for: sizes and counts. What it is not for: timeouts and pauses (they sit next to
//! the code that waits, e.g. `actions::DEFAULT_ATTEMPT_TIMEOUT`).
//!
//! Sections: alert delivery (actions), scheduling (a shard's ring and executor), reading
//! manifests, the demo's loopback servers. The state machine's own bounds (`MAX_THRESHOLD`,
//! `MAX_COOLDOWN_MS`, `MAX_EFFECTS`) stay in `state`: they are facts of its compact
//! representation (u16 counters, fixed-size effect lists), proved there by const assertions,
//! not settings.

pub use cpra_net::limits::Size;

// ---- alert delivery (actions) ----

/// Notifications being sent at once by one shard (connections open to receivers). 32 keeps a
/// burst of alerts moving (a receiver answers in tens of ms) while bounding sockets and memory
/// per shard to a few MiB; at the bound, deliveries wait their turn in the queue. Not to be
/// confused with the ring's in-flight checks ([`DEFAULT_MAX_IN_FLIGHT`]).
pub const DEFAULT_MAX_DELIVERIES_IN_FLIGHT: usize = 32;

/// Deliveries queued per shard (waiting for a cooldown, a retry pause or an in-flight slot).
/// 4,096 is a few alerts for each of thousands of monitors going down together; past it a new
/// delivery is recorded undelivered ("delivery queue full"), logged and counted, never dropped
/// silently.
pub const DEFAULT_MAX_QUEUED_DELIVERIES: usize = 4096;

/// Attempts per delivery to one endpoint, first included. 3: enough to ride out a receiver's
/// restart or a rate-limit window, few enough that a dead receiver does not hold a slot for
/// long; after the last, the delivery is recorded undelivered.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 3;

/// Undelivered records kept per shard for the API. Older ones are only in the log and the
/// counter.
pub const MAX_RECENT_UNDELIVERED: usize = 64;

/// Log-notifier files a shard keeps open. A manifest names few log files (usually one); 16
/// covers any real one while bounding descriptors. Past it the least recently used file is
/// closed and reopened when next needed.
pub const DEFAULT_MAX_OPEN_LOG_FILES: usize = 16;

// ---- email (SMTP) ----

/// Longest SMTP reply accepted (all lines of a multi-line reply). RFC 5321 limits a reply line
/// to 512 octets; EHLO lists a dozen extensions. 16 KiB is ample; past it the attempt fails as
/// a protocol error instead of buffering a misbehaving server's output.
pub const MAX_SMTP_REPLY_BYTES: usize = 16 * 1024;

/// Recipients per email: a notifier mails a team, not a list; bounds the RCPT loop. More is
/// refused at load.
pub const MAX_EMAIL_RECIPIENTS: usize = 100;

/// Longest mail address accepted: RFC 5321's 256-octet path minus the angle brackets. Longer
/// is refused at load.
pub const MAX_MAIL_ADDRESS_BYTES: usize = 254;

// ---- kubernetes interventions ----

/// Largest kubeconfig read: real ones are a few KiB; a bigger file is not a kubeconfig, and is
/// refused before it is parsed.
pub const MAX_KUBECONFIG_BYTES: u64 = 1024 * 1024;

/// Longest Kubernetes namespace or object name (a DNS subdomain, RFC 1123). Longer is refused
/// at load.
pub const MAX_KUBERNETES_NAME_BYTES: usize = 253;

// ---- what receivers accept (longer text is cut, on a character, before sending) ----

/// Opsgenie refuses a `message` longer than 130 characters.
pub const OPSGENIE_MAX_MESSAGE_CHARS: usize = 130;
/// Discord refuses `content` longer than 2,000 characters.
pub const DISCORD_MAX_CONTENT_CHARS: usize = 2_000;
/// PagerDuty truncates `payload.summary` at 1,024 characters; cut it ourselves, on a char.
pub const PAGERDUTY_MAX_SUMMARY_CHARS: usize = 1_024;
/// Telegram refuses messages longer than 4,096 characters.
pub const TELEGRAM_MAX_TEXT_CHARS: usize = 4_096;

const _: () = assert!(DEFAULT_MAX_DELIVERIES_IN_FLIGHT > 0 && DEFAULT_MAX_QUEUED_DELIVERIES > 0);
const _: () = assert!(MAX_DELIVERY_ATTEMPTS >= 1);
const _: () = assert!(DEFAULT_MAX_OPEN_LOG_FILES > 0 && MAX_RECENT_UNDELIVERED > 0);

// ---- scheduling (a shard's wheel, ring and executor) ----

/// The default bound on checks in flight per shard (in the ring or running in a probe). At
/// 4096 a shard can hold 4096 slow checks (e.g. 4 s timeouts at 1000 checks/s) without
/// refusing work, while a probe task per slot costs only a few hundred bytes each. At the
/// bound the dispatcher stops and due monitors wait in the wheel for the next tick.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4096;

/// The largest `max_in_flight` accepted: each slot has a probe task, and a million tasks per
/// shard would be a misconfiguration, not a workload.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 1 << 20;

/// The shortest interval a monitor may have: the wheel's resolution.
pub const MIN_INTERVAL_MS: u32 = 1;

/// The longest interval accepted: 31 days. Monitors are checked at least monthly in any sane
/// fleet, and the bound keeps every slot inside the wheel's horizon (2^36 ms, about 2 years)
/// with room to spare.
pub const MAX_INTERVAL_MS: u32 = 31 * 24 * 3600 * 1000;

/// The longest `timeout`: the table stores it as `u32` ms next to the interval. A check that
/// may run longer than the longest interval is never what was meant, so the same bound.
pub const MAX_TIMEOUT_MS: u32 = MAX_INTERVAL_MS;

/// io_uring memory per executor. glommio's default (10 MiB) exceeds the usual 8 MiB
/// `RLIMIT_MEMLOCK` of a non-root user on its own; 64 KiB is plenty for sockets (CPRA does no
/// registered-buffer file I/O) and lets dozens of shards start under that limit.
pub const IO_MEMORY_BYTES: usize = 64 << 10;

/// The longest lateness the histogram resolves: one hour, in µs. Later starts are recorded
/// as one hour (saturated) rather than dropped, so they still show in the maximum.
pub const LATENESS_MAX_US: u64 = 3_600_000_000;

// ---- reading manifests ----

/// Unknown top-level keys remembered to find a repeated one: a file with more is hostile or
/// broken, and its unknown keys are each reported anyway.
pub const MAX_UNKNOWN_TOP_KEYS: usize = 64;

/// How much of a manifest is read at a time (the source's peek and decompression buffer, the
/// JSON and YAML readers' buffers): large enough that `read` syscalls are amortised over many
/// monitors, small enough to be irrelevant to the load's memory. A refill happens when it is
/// drained.
pub const READ_BUFFER_BYTES: usize = 256 << 10;

/// Most problems kept per load: enough to fix a file in one pass, few enough to read. Past it,
/// problems are still counted (so the exit code and the totals stay right) but not stored.
pub const MAX_PROBLEMS: usize = 100;

/// Deepest nesting inside one block. A monitor needs about 6 levels; past this: an error.
pub const MAX_NODE_DEPTH: usize = 64;

/// Most nodes in one block (one monitor, the endpoints block ...). A large monitor has a few
/// hundred; the bound stops YAML alias bombs ("billion laughs") and absurd inputs. Past it:
/// an error naming the block.
pub const MAX_BLOCK_NODES: usize = 1 << 20;

/// Most text in one tree, in bytes: offsets are `u32`, so a tree holds under 4 GiB of text.
/// A block is far smaller (a scalar is at most 1 MiB, see [`MAX_SCALAR_BYTES`]); past it:
/// an error naming the block.
pub const MAX_TREE_TEXT_BYTES: usize = 1 << 31;

/// Most anchors remembered: each holds a copy of its node. Past it, new anchors are not
/// remembered (a file with an anchor on every one of a million monitors still loads), and an
/// alias to one of them is an error that names this bound.
pub const MAX_ANCHORS: usize = 4096;

/// Most nodes held by all remembered anchors together (the copies live for the whole load).
/// Real manifests anchor a few small blocks; past it, new anchors are not remembered, as past
/// [`MAX_ANCHORS`].
pub const MAX_ANCHORED_NODES: usize = 1 << 22;

/// Most headers in one block: real requests carry a dozen; the bound keeps a request small.
pub const MAX_MONITOR_HEADERS: usize = 64;

/// Most tags / groups / statuses / windows per monitor: generous for real use, bounded so one
/// monitor cannot hold an unbounded list.
pub const MAX_LIST_ITEMS: usize = 256;

/// Most distinct blocks of one kind remembered. Past it, new blocks are still loaded but no
/// longer deduplicated, so memory stays bounded even for a fleet where every block differs.
pub const MAX_INTERNED: usize = 1 << 16;

/// Distinct blocks of each kind remembered by their bytes. A fleet repeats a few blocks; past
/// this many, monitors with a new block take the general path (correct, only slower), so a
/// fleet where every block differs does not grow a cache without end.
pub const MAX_CACHED_BLOCKS: usize = 4096;

/// Longest block remembered, in bytes (a `codes` block is a few hundred). Longer ones take
/// the general path. With `MAX_CACHED_BLOCKS`, this bounds each cache to 16 MiB of keys.
pub const MAX_CACHED_BLOCK_BYTES: usize = 4096;

/// Deepest nesting skipped over inside a cached block; deeper: the general path (which
/// reports JSON past its own bound of 128).
pub const MAX_SKIP_DEPTH: usize = 64;

/// Deepest nesting accepted. A manifest needs about 8 levels; the bound stops a hostile
/// input (`[[[[...`) from growing the container stack without end. Past it: a syntax error.
pub const MAX_DEPTH: usize = 128;

/// Longest string or number accepted, in bytes. A manifest value (a URL, a body, a token)
/// is far shorter; past it: a syntax error rather than unbounded growth.
pub const MAX_SCALAR_BYTES: usize = 1 << 20;

/// Largest monitor lent whole to the direct decoder (`raw_item`); the buffer grows to hold
/// one up to this. A bigger one (a huge `body`, say) is read by events, which stream it.
pub const MAX_RAW_ITEM_BYTES: usize = 1 << 20;

/// The longest id the pattern allows.
pub const MAX_ID_CHARS: usize = 128;

/// Bytes read from the input at a time, and the longest line the scanner handles: a manifest
/// line is well under a kilobyte; a longer line than this is "unsupported" (saphyr reads it).
/// 1 MiB keeps the reads few and big without holding a large file in memory.
pub const SCAN_BUFFER_BYTES: usize = 1 << 20;

/// Deepest block or flow nesting the scanner follows (a monitor needs about 6); deeper input
/// is "unsupported", and saphyr (and the loader's own depth bound) deal with it.
pub const MAX_SCAN_DEPTH: usize = 64;

/// Distinct anchor names remembered. Past it: "unsupported" (saphyr numbers them), so a file
/// with an anchor on every one of a million monitors does not grow this table without bound.
pub const MAX_SCAN_ANCHORS: usize = 4096;

/// Longest implicit key saphyr accepts is 1024 characters; keys near it are left to saphyr.
pub const MAX_KEY_BYTES: usize = 1000;

/// Longest block scalar (`|`, `>`) text the scanner gathers; a longer one is left to saphyr.
/// A manifest's longest text (a script, a template) is kilobytes; 16 MiB bounds the buffer.
pub const MAX_BLOCK_SCALAR_BYTES: usize = 16 << 20;

// ---- the demo's loopback servers ----

/// Largest request (head and body) read; notifications and health checks are a few KiB.
pub const DEMO_MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Requests kept in the record; past it the oldest are dropped (a long demo must not grow
/// without bound), and `dropped` counts them.
pub const MAX_RECORDED: usize = 10_000;

/// Largest request head a fleet server reads; a probe's request is a few hundred bytes.
pub const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// The header block the `HugeHeader` server sends: 1 MiB, 64 times the client's bound.
pub const HUGE_HEADER_BYTES: usize = 1024 * 1024;

// ---- the control plane (engine/src/api) ----

/// Connections the API serves at once. Each holds a task and a read buffer of at most
/// [`API_MAX_HEADER_BYTES`], so 256 bound the control plane to a few MiB; that is room for
/// several scrapers, dashboards and operators (200 concurrent requests are tested) and far
/// below the process's file descriptors, which the checks need. A connection past it is
/// accepted and closed at once, unread (the client sees a reset or EOF, and retries).
pub const API_MAX_CONNECTIONS: usize = 256;

/// Largest request head (request line and headers) the API reads: hyper's `max_buf_size`,
/// whose floor is 8 KiB. A real request is a few hundred bytes; 16 KiB leaves room for long
/// query strings and proxies' headers. Past it hyper answers 431 (Request Header Fields Too
/// Large) and closes the connection, having buffered no more than this.
pub const API_MAX_HEADER_BYTES: usize = 16 << 10;

/// How long a client may take to send a request's head, from its first byte: hyper's
/// `header_read_timeout`. A real client sends it in one packet; 5 s covers a slow link. A
/// slowloris client (a byte now and then) is closed when it runs out, holding one connection
/// slot at most that long.
pub const API_HEADER_READ_TIMEOUT_MS: u64 = 5_000;

/// The longest one connection lives, keep-alive included: an idle or trickling client cannot
/// hold one of the [`API_MAX_CONNECTIONS`] slots for ever. A minute is many scrapes and API
/// calls; past it the connection is closed (a client reconnects).
pub const API_CONNECTION_MAX_MS: u64 = 60_000;

/// Largest request body the API accepts, by its `Content-Length`: the control requests to
/// come (`{"for":"1h"}`) are a few bytes; 64 KiB is generous. A larger declared body is
/// answered 413 without being read, and the connection is closed.
pub const API_MAX_BODY_BYTES: u64 = 64 << 10;

/// How long a running shard may go without a dispatch round before `/healthz` calls it
/// stalled. An idle shard goes round every 50 ms (`IDLE_POLL_MS`) and a busy one far more
/// often; 10 s is far past any legitimate pause (a loaded host, a long GC-free burst of work)
/// and well inside a liveness probe's patience, so a wedged shard gets the process restarted.
pub const API_SHARD_STALL_MS: u64 = 10_000;

/// How long a scrape waits for the shards to hand over their histograms. A running shard
/// answers within a dispatch round (at most `IDLE_POLL_MS`, 50 ms, apart); a shard that has
/// not answered by then is shown with the last copy it handed over, so a stalled shard never
/// stalls a scrape.
pub const API_HISTOGRAM_WAIT_MS: u64 = 200;

/// The longest check duration the histogram resolves, in µs: an `Outcome` carries its latency
/// as `u32` µs (saturating at about 71 minutes), so nothing longer can be recorded anyway.
pub const CHECK_DURATION_MAX_US: u64 = u32::MAX as u64;

/// Questions waiting per shard from the API (`shard::queries`): a shard answers them in one
/// bounded batch per drain. The API asks at most 32 lists at a time (`API_LISTS_IN_FLIGHT`),
/// so lists never fill it; the rest is room for the questions to come. Past it the API
/// answers 503 at once instead of queueing.
pub const API_QUERY_RING: usize = 64;

/// Monitors in one page of `GET /api/v1/monitors` when the client does not say (`limit`).
pub const API_LIST_DEFAULT_LIMIT: usize = 100;

/// Most monitors in one page (`limit` above it is cut to it): a page is built by each shard
/// in one go, so this bounds the time a list takes from a shard and the answer's size
/// (about 300 bytes of JSON a monitor).
pub const API_LIST_MAX_LIMIT: usize = 1000;

/// How long a list waits for every shard's answer. A shard looks for questions every 10 ms
/// and answers a page in well under a millisecond; a shard that takes 5 s is stalled or
/// stopping, and the client gets 503 naming it rather than a request that hangs.
pub const API_QUERY_WAIT_MS: u64 = 5_000;

/// Most monitors in one scrape of `GET /metrics/monitors?group=G` (two series each): a group
/// is a team's or a site's monitors, hundreds or thousands; 10 000 keeps a scrape to a few
/// MB and a Prometheus target's usual sample limit. Past it the scrape holds the first 10 000
/// by id and says so (`cpra_monitor_series_truncated 1`), so a group grown too big is seen,
/// not silently cut.
pub const API_MONITOR_SERIES_MAX: usize = 10_000;
