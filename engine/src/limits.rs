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
//! Today it holds the bounds of the actions (notifiers, interventions); the scheduling core's
//! (ring, wheel) and the manifest's are still declared next to their code.

pub use cpra_net::limits::Size;

// ---- alert delivery (actions) ----

/// Notifications being sent at once by one shard (connections open to receivers). 32 keeps a
/// burst of alerts moving (a receiver answers in tens of ms) while bounding sockets and memory
/// per shard to a few MiB; at the bound, deliveries wait their turn in the queue. Not to be
/// confused with the ring's in-flight checks (`ring::DEFAULT_MAX_IN_FLIGHT`).
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
