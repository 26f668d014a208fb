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
/// confused with the ring's in-flight checks ([`DEFAULT_MAX_IN_FLIGHT`]). `cpra run` lowers it
/// under a low file-descriptor limit (`fd_budget`).
pub const DEFAULT_MAX_DELIVERIES_IN_FLIGHT: usize = 32;

/// Deliveries queued per shard (waiting for a cooldown, a retry pause or an in-flight slot).
/// 4,096 is a few alerts for each of thousands of monitors going down together; past it a new
/// delivery is recorded undelivered ("delivery queue full"), logged and counted, never dropped
/// silently.
pub const DEFAULT_MAX_QUEUED_DELIVERIES: usize = 4096;

/// How often a delivery whose send time has come looks whether the deliveries ordered before
/// it in its lane have had their turn (`actions/lane.rs`). Those are due too and their timers
/// fire within a millisecond, so this wait is about one poll; 1 ms is the timers' resolution.
pub const LANE_ORDER_POLL_MS: u64 = 1;

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
/// Twilio refuses an SMS `Body` longer than 1,600 characters.
pub const TWILIO_MAX_BODY_CHARS: usize = 1_600;
/// Pushover refuses a `message` longer than 1,024 characters.
pub const PUSHOVER_MAX_MESSAGE_CHARS: usize = 1_024;
/// Pushover refuses a `title` longer than 250 characters.
pub const PUSHOVER_MAX_TITLE_CHARS: usize = 250;
/// Datadog's events API takes a `title` of at most 100 characters.
pub const DATADOG_MAX_TITLE_CHARS: usize = 100;
/// Datadog's events API takes a `text` of at most 4,000 characters.
pub const DATADOG_MAX_TEXT_CHARS: usize = 4_000;
/// Recipients of one twilio notifier: each is its own request inside one delivery attempt,
/// so the attempt's time grows with them; an on-call rota is a handful of numbers, and 10
/// requests fit one attempt's timeout. More is refused at load.
pub const MAX_TWILIO_RECIPIENTS: usize = 10;

// ---- interventions ----

/// `intervention.retries`: attempts after a failed one, within one intervention. A failed
/// restart that fails 5 times more is not going to work; more only delays the red. More is a
/// warning at load and gets this many.
pub const MAX_INTERVENTION_RETRIES: u32 = 5;
/// Pause before an intervention is tried again after it failed: long enough for a unit or
/// container that refused to start to settle, short next to a check interval.
pub const INTERVENTION_RETRY_PAUSE_MS: u64 = 1_000;
/// Bytes of an EC2 or instance-metadata answer read: a RebootInstancesResponse or an error
/// document is well under 2 KiB, a metadata token or credentials document under 2 KiB too.
pub const MAX_AWS_RESPONSE_BYTES: usize = 64 * 1024;

const _: () = assert!(DEFAULT_MAX_DELIVERIES_IN_FLIGHT > 0 && DEFAULT_MAX_QUEUED_DELIVERIES > 0);
const _: () = assert!(MAX_DELIVERY_ATTEMPTS >= 1);
const _: () = assert!(DEFAULT_MAX_OPEN_LOG_FILES > 0 && MAX_RECENT_UNDELIVERED > 0);

// ---- scheduling (a shard's wheel, ring and executor) ----

/// The default bound on checks in flight per shard (in the ring or running in a probe). At
/// 4096 a shard can hold 4096 slow checks (e.g. 4 s timeouts at 1000 checks/s) without
/// refusing work. A probe task holds a whole check's future (about 94 KiB, the largest probe's
/// buffers), so tasks are started only as checks need them: memory follows the checks really
/// in flight (4096 of them: about 380 MiB a shard), not this bound. At the
/// bound the dispatcher stops and due monitors wait in the wheel for the next tick. `cpra run`
/// lowers it to what the file-descriptor limit allows (`fd_budget`).
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

// ---- file descriptors (the budget in `fd_budget`) ----
//
// Under `RLIMIT_NOFILE` a shard's sockets compete with everything else the process opens. The
// budget gives each shard what it cannot do without (below), then splits the rest between
// checks and alert deliveries; see `fd_budget::budget`.

/// Descriptors the process holds apart from its shards and resolver: stdio (3), the manifest
/// while it loads (1), the signal handlers' pipe (1), a log file and the API's listen socket
/// to come (2), the data dir's lock file (1), and what libraries open on their own for a
/// moment (glibc's NSS and `/etc/resolv.conf` reads, the CA bundle, a systemctl child's
/// pipes: 9).
pub const FD_RESERVE_PROCESS: u64 = 17;

/// Descriptors one resolver thread may hold in a lookup: `getaddrinfo` opens a UDP socket
/// (and a TCP one on a truncated answer) and reads `/etc/hosts`.
pub const FDS_PER_RESOLVER_THREAD: u64 = 3;

/// Descriptors one shard's executor holds: glommio 0.9 opens 3 io_uring rings (main,
/// latency, poll) and an eventfd (4, counted in `/proc/PID/fd`); 2 more for what it opens
/// later (a blocking-thread pool's pipe).
pub const FDS_PER_EXECUTOR: u64 = 6;

/// Descriptors kept per shard for interventions (a socket each: docker, webhook, kubernetes;
/// pipes for a systemctl child). They run one per failing monitor, rarely many at once and
/// not bounded by count; one that finds no descriptor fails as a 5xx would (nothing was
/// sent) and the state machine's recovery attempts apply.
pub const FD_RESERVE_INTERVENTIONS_PER_SHARD: u64 = 8;

/// Descriptors a shard's ICMP client holds: one IPv4 and one IPv6 socket.
pub const FDS_ICMP_PER_SHARD: u64 = 2;

/// Descriptors a shard's journal holds: the segment it appends to, and one more while it
/// reads its files at start or writes a snapshot beside the segment.
pub const FDS_JOURNAL_PER_SHARD: u64 = 2;

/// The fewest checks in flight per shard CPRA starts with. Below 16 a handful of targets that
/// time out would hold every slot and delay all other checks by their timeout; a limit that
/// low is a mistake to fix, not a way to run (CPRA refuses to start and says how to raise it).
pub const MIN_CHECKS_IN_FLIGHT_PER_SHARD: u32 = 16;

/// The fewest alert deliveries in flight per shard under a low limit: a burst still moves,
/// 4 receivers at a time.
pub const MIN_DELIVERIES_IN_FLIGHT_PER_SHARD: usize = 4;

/// Alert deliveries get at most 1/4 of a shard's budget left after its fixed needs (and
/// never more than [`DEFAULT_MAX_DELIVERIES_IN_FLIGHT`]): checks are the steady work,
/// deliveries come in bursts and can wait in their queue.
pub const DELIVERY_SHARE_DIVISOR: u64 = 4;

const _: () = assert!(MIN_CHECKS_IN_FLIGHT_PER_SHARD as u64 <= DEFAULT_MAX_IN_FLIGHT as u64);
const _: () = assert!(MIN_DELIVERIES_IN_FLIGHT_PER_SHARD <= DEFAULT_MAX_DELIVERIES_IN_FLIGHT);

/// Monitors removed by reloads whose last incident number a shard remembers, so one added
/// back in the same run goes on numbering instead of reusing `id#1` (a paging service may
/// still hold it). 100,000 per shard: an id and a number each, a few MiB at most; past it a
/// removed monitor is not remembered and one added back starts at 1 (across a restart the
/// journal keeps the numbers either way).
pub const REMOVED_INCIDENT_SEQS_KEPT: usize = 100_000;

/// Retries inside one check (`pulse_check.retries`, `config.retries`): what the probes make,
/// `cpra_net::limits::MAX_ATTEMPTS` less the first attempt. A manifest asking for more loads
/// with a warning and gets this many.
pub const MAX_RETRIES: u32 = cpra_net::limits::MAX_ATTEMPTS - 1;

// ---- the command line (checked before anything is sized or started by them) ----

/// `--shards`: the most shards CPRA runs on any machine. Above the hardware threads of the
/// largest servers CPRA targets (2 sockets of 192 cores, 768 threads); past it the number is a
/// typo, refused before the per-shard status slots, tables and threads are sized by it. Below
/// it, more shards than online cores are refused too (shards are pinned one per core).
pub const MAX_SHARDS: usize = 1024;

/// `--grace`: the longest drain after a stop. An hour covers alert retries (seconds apart)
/// and interventions with long timeouts; a longer wait is a stuck stop, not a drain.
pub const MAX_GRACE_MS: u64 = 3_600_000;

/// `--duration` (run, demo): a year and a day. To run longer, leave `--duration` out and stop
/// with a signal; the bound keeps every deadline computed from it far from overflow.
pub const MAX_RUN_DURATION_MS: u64 = 366 * 24 * 3_600_000;

/// `gen --monitors`: 100 million, 100 times the largest fleet benchmarked (about 40 GB of
/// YAML). Past it the output would only fill a disk.
pub const MAX_GEN_MONITORS: u64 = 100_000_000;

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
/// problems are still counted (so the exit code and the totals stay right) but not stored,
/// except a syntax error: it ends the read, so there is at most one, and it says why the rest
/// of the file was not checked.
pub const MAX_PROBLEMS: usize = 100;

/// Longest line `cpra run --log-format json` holds before logging it (a line of its own
/// output: a status line or a manifest problem, under a kilobyte); a longer one is logged in
/// pieces, so a line without an end cannot grow memory.
pub const MAX_LOG_LINE_BYTES: usize = 64 << 10;

/// Deepest nesting inside one block. A monitor needs about 6 levels; past this: an error.
pub const MAX_NODE_DEPTH: usize = 64;

/// Most nodes in one block (one monitor, the endpoints block ...). A large monitor has a few
/// hundred; the bound stops absurd inputs. Past it: an error naming the block. (Aliases have
/// their own, tighter budget: [`MAX_ALIAS_NODES`], [`ALIAS_BUDGET_BASE_NODES`].)
pub const MAX_BLOCK_NODES: usize = 1 << 20;

/// Most nodes one YAML alias (`*name`) may stand for. An alias repeats a shared block (a
/// monitor template merged with `<<: *defaults`, a `codes` block): tens to a few hundred
/// nodes. 65,536 is far above that, and caps what one alias can cost (a few ms); past it: an
/// error at the alias naming this bound.
pub const MAX_ALIAS_NODES: usize = 1 << 16;

/// The per-file budget on alias expansion: all aliases of a file together may produce this
/// many nodes, plus [`ALIAS_BUDGET_PER_NODE`] for each node written in the file up to that
/// point. A fixed total would either refuse a big fleet whose every monitor merges a template
/// or let a small file cost seconds (a 190 KB file of aliases cost 20 s of CPU): scaled with
/// the file, expansion costs at most a constant multiple of reading it. 1,048,576 nodes
/// (tens of milliseconds) covers any small file; past the budget: an error at the alias,
/// naming the bound.
pub const ALIAS_BUDGET_BASE_NODES: usize = 1 << 20;

/// See [`ALIAS_BUDGET_BASE_NODES`]: nodes alias expansion may add per node written in the
/// file. A monitor written as `- {<<: *template, name: web-1}` has 5 nodes of its own; 64 per
/// node lets it merge a template of 320 nodes, a large one.
pub const ALIAS_BUDGET_PER_NODE: usize = 64;

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
/// reports nesting past [`MAX_NODE_DEPTH`]).
pub const MAX_SKIP_DEPTH: usize = 64;

/// Deepest nesting the streaming JSON reader follows, counted from the document's top: a
/// backstop that keeps its container stack bounded (`[[[[...`) whatever reads its events.
/// The loader meets [`MAX_NODE_DEPTH`] (64, inside every block) first, so 64 is the bound a
/// manifest meets, in JSON as in YAML; past either: a syntax error.
pub const MAX_DEPTH: usize = 128;

/// Longest value (string or number, YAML or JSON, in any style: plain, quoted, block; after
/// escapes are decoded) accepted, in bytes. A manifest value (a URL, a body, a token) is far
/// shorter; exactly this many bytes are accepted, one more is a syntax error at the value
/// rather than unbounded growth.
pub const MAX_SCALAR_BYTES: usize = 1 << 20;

/// Most YAML input read between two values when saphyr reads the file (one value as written,
/// with its indentation, escapes, line breaks and the comments and blank lines before it).
/// saphyr gathers a scalar whole before handing it over, so [`MAX_SCALAR_BYTES`] alone would
/// be checked only after a 200 MB scalar had been held (and copied) whole; this stops the
/// read first, with at most this much buffered. 8x the value bound leaves room for a value
/// at the bound written with escapes throughout (`\x41`, `\u0041`) or deep indentation;
/// past it (give or take saphyr's 16-character lookahead): a syntax error naming both bounds.
pub const MAX_SCALAR_SOURCE_BYTES: usize = 8 * MAX_SCALAR_BYTES;

/// Largest monitor lent whole to the direct decoder (`raw_item`); the buffer grows to hold
/// one up to this. A bigger one (a huge `body`, say) is read by events, which stream it.
pub const MAX_RAW_ITEM_BYTES: usize = 1 << 20;

/// The longest id the pattern allows.
pub const MAX_ID_CHARS: usize = 128;

/// Bytes read from the input at a time, and the longest line the scanner handles: a manifest
/// line is well under a kilobyte; a longer line than this is "unsupported" (saphyr reads it).
/// 1 MiB keeps the reads few and big without holding a large file in memory. No larger than
/// [`MAX_SCALAR_BYTES`], so a value on one line is within the value bound by construction.
pub const SCAN_BUFFER_BYTES: usize = 1 << 20;
const _: () = assert!(SCAN_BUFFER_BYTES <= MAX_SCALAR_BYTES);

/// Deepest block or flow nesting the scanner follows (a monitor needs about 6); deeper input
/// is "unsupported", and saphyr (and the loader's own depth bound) deal with it.
pub const MAX_SCAN_DEPTH: usize = 64;

/// Distinct anchor names remembered. Past it: "unsupported" (saphyr numbers them), so a file
/// with an anchor on every one of a million monitors does not grow this table without bound.
pub const MAX_SCAN_ANCHORS: usize = 4096;

/// Longest implicit key saphyr accepts is 1024 characters; keys near it are left to saphyr.
pub const MAX_KEY_BYTES: usize = 1000;

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

// ---- the journal (store/) ----

/// Largest journal record body. The biggest record is a queued alert (its summary, action and
/// next steps, each a line, and ids of at most a few hundred bytes): a few KiB. 64 KiB leaves
/// room, and a length field above it is read as a torn or corrupt record, not an allocation.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// A shard's journal segment is compacted (its live state written to a new segment, the old
/// one removed) once it has grown by this much, or by twice its last snapshot if that is
/// more: 4 MiB is 100 000 small records, a few seconds of writing a snapshot of it at
/// most, and the doubling keeps compaction's cost in proportion to what was appended
/// (amortised O(1) per record) for a shard whose live state is itself large.
pub const JOURNAL_COMPACT_BYTES: u64 = 4 << 20;
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

/// Reload orders a shard's reload ring holds. Reloads run one at a time and the control
/// plane waits for every shard to apply its order before the next, so one is in a ring at
/// most; two leaves room for an order pushed while a shard is still taking the last.
pub const RELOAD_RING: usize = 2;

/// How long a reload waits for every shard to apply its order before answering: shards take
/// orders between dispatch rounds (at most `shard::IDLE_POLL_MS` apart), so only a wedged
/// shard reaches it; the reload is then reported as still being applied.
pub const RELOAD_APPLY_WAIT_MS: u64 = 10_000;

/// Results kept per monitor for `GET /api/v1/monitors/{id}` (`recent`): 20, what the issue
/// asks, enough to see a flap or the run of failures behind an incident. Each is 6 bytes in
/// the ring (`shard::control::RecentResult`: a 16-bit float latency, the outcome, and the time
/// as a 16-bit float gap to the next newer result; the newest's time whole in the head), so the
/// ring costs 128 bytes a monitor (`RECENT_BYTES_PER_MONITOR`), allocated at start, outside the
/// 64-byte hot state: 128 MB for a million monitors.
pub const RECENT_RESULTS: usize = 20;

/// Closed incidents a shard keeps for `GET /api/v1/incidents` besides the open ones (at most
/// one per monitor): the last 256 per shard are what an operator looks back at; older ones
/// are in the alerts already sent and the log.
pub const INCIDENTS_CLOSED_KEPT: usize = 256;

/// Who acknowledged an incident (`{"by": ...}`), at most this many bytes: a name or an email.
pub const API_ACK_BY_MAX_BYTES: usize = 128;

/// The longest silence `POST /api/v1/monitors/{id}/silence` accepts: 30 days. A longer one is
/// a monitor nobody wants alerts from, which is what disabling it (or removing it) says.
pub const API_SILENCE_MAX_MS: u64 = 30 * 24 * 3_600_000;

// ---- runtime settings (`cpra run --config runtime.yaml`, engine/src/settings.rs) ----

/// io_uring submission ring depth of each of a shard's three rings, by default: glommio's
/// own default (128). A shard submits a batch per loop turn; 128 entries already take
/// thousands of socket operations a second per ring, and a deeper ring only costs memory.
pub const DEFAULT_RING_DEPTH: usize = 128;

/// The deepest ring accepted: the kernel's own bound (`IORING_MAX_ENTRIES`, 32,768); the
/// kernel refuses more.
pub const MAX_RING_DEPTH: usize = 32_768;

/// The shallowest ring accepted: below 8 a shard submits more often than it loops.
pub const MIN_RING_DEPTH: usize = 8;

/// The least io_memory glommio takes (it rounds smaller values up to 64 KiB).
pub const MIN_IO_MEMORY_BYTES: usize = 64 << 10;

/// The most io_memory accepted per shard: 1 GiB is locked memory on every shard; CPRA does
/// no registered-buffer file I/O, so anything near it is a typo (a missing unit).
pub const MAX_IO_MEMORY_BYTES: usize = 1 << 30;

/// The longest a shard may spin before it sleeps in the kernel: spinning trades a core's
/// idle time for wake-up latency; past 100 ms a shard never sleeps on a busy fleet at all,
/// which is `isolcpus` territory, not a setting.
pub const MAX_SPIN_BEFORE_PARK_US: u64 = 100_000;

/// The most alert deliveries in flight per shard accepted (`notifier_concurrency`): each
/// holds a socket and a task; 1,024 is far past what any set of receivers takes at once.
pub const MAX_NOTIFIER_CONCURRENCY: usize = 1024;

/// The longest journal commit interval (`fsync_interval`): a minute of alerts and incident
/// changes could be lost on a power cut past it, and a longer one saves nothing measurable.
pub const MAX_FSYNC_INTERVAL_MS: u64 = 60_000;

/// The highest CPU number a `cpuset` may name: glibc's `CPU_SETSIZE` (1,024), the size of
/// the mask `sched_setaffinity` takes.
pub const MAX_CPU_INDEX: usize = 1023;

/// Largest runtime settings file read: a real one is a dozen lines; a bigger file is not
/// one, and is refused before it is parsed.
pub const MAX_SETTINGS_FILE_BYTES: u64 = 64 << 10;
/// `--node-count`: the most nodes a fleet is sliced over. Placing a monitor scores every node
/// (about 2 ns each, docs/benchmarks/placement.md), so 1,024 nodes cost about 2.5 µs per
/// monitor at load, half of loading it from YAML; the 100M-monitor fleets CPRA is sized for
/// need tens of nodes, and a fleet needing more than this is past what one manifest file that
/// every node reads whole can serve anyway.
pub const MAX_NODE_COUNT: u32 = 1_024;

/// `--replica`: the highest replica number. Every replica checks every target of its slice,
/// so past a handful the targets see a multiple of their checks for no added safety; 15 is
/// far past what high availability needs (two or three) and catches a typo.
pub const MAX_REPLICA: u32 = 15;

/// Monitors `cpra run` loads before it reserves room for the whole file's, estimated from the
/// bytes read so far (`cli::run`): 65,536 is a few MB of manifest, so the reader's buffering
/// (and a header of endpoints and groups) skews the estimate by a few percent at most, and
/// the list's growth up to there costs at most 16 MB of copies.
pub const LOAD_ESTIMATE_AFTER_MONITORS: usize = 65_536;

/// The estimate is raised by 1/8 (12.5 %): a file whose later monitors are shorter than its
/// first ones still fits without a last doubling; the room left over is address space only.
pub const LOAD_ESTIMATE_MARGIN_DIVISOR: usize = 8;

/// Most monitors reserved for from an estimate: 16 Mi (4 GiB of address space at 256 bytes
/// each, within what the kernel's default overcommit grants a small server), so an estimate
/// cannot ask for more than a real fleet; past it the list grows by doubling.
pub const LOAD_ESTIMATE_MAX_MONITORS: usize = 16 << 20;
