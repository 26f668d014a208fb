//! The result of one check: what every probe returns and what the state machine consumes.
//!
//! An `Outcome` is plain data with no heap allocation, so a shard can produce millions per
//! second without touching the allocator. The one-line human message is rendered on demand
//! (`Outcome::describe`) only when an alert or a log line needs it.

use std::fmt;

/// Why a check failed. The names are the ones operators see in alerts, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The target's name could not be resolved.
    Dns,
    /// The target actively refused the connection (RST on SYN).
    ConnectRefused,
    /// The connection was not established within the deadline.
    ConnectTimeout,
    /// The TLS handshake failed (protocol error, garbage instead of TLS).
    Tls,
    /// The certificate is invalid, untrusted, or expires within `critical_days`.
    Certificate,
    /// The check as a whole ran past the monitor's timeout after connecting.
    Timeout,
    /// The response status was not the expected one.
    Status,
    /// A body or response-time assertion did not hold.
    Assertion,
    /// The peer broke the protocol (unparsable response, reset mid-response).
    Protocol,
    /// The response exceeded a size bound (header block or body).
    TooLarge,
    /// The process lacks a privilege the probe needs (raw ICMP socket).
    Permission,
    /// Any other transport error (connection reset, broken pipe, unreachable).
    Connection,
    /// The pulse type or a feature of it is not available on this build or host.
    Unsupported,
    /// This host ran out of something a check needs before anything reached the target: file
    /// descriptors (EMFILE, ENFILE), socket buffers or memory (ENOBUFS, ENOMEM), local ports
    /// (EADDRNOTAVAIL). Never the target's failure: the engine retries the check shortly and
    /// never feeds it to the state machine; a notifier retries it as it retries a 5xx (nothing
    /// was sent). See [`is_local_resource_errno`].
    LocalResource,
}

/// Whether `errno`, from opening or connecting a socket, says this host lacks a resource
/// rather than that the target failed. EADDRNOTAVAIL on connect means no free local port (or
/// no source address for the destination's family, e.g. IPv6 on a host without it): a local
/// matter too, which is why it is shown in the warning the engine logs.
pub const fn is_local_resource_errno(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL
    )
}

/// The local-resource errno of `err`, if it is one (see [`is_local_resource_errno`]).
pub fn local_resource_errno(err: &std::io::Error) -> Option<i32> {
    err.raw_os_error().filter(|&e| is_local_resource_errno(e))
}

impl FailureKind {
    pub const ALL: [FailureKind; 14] = [
        FailureKind::Dns,
        FailureKind::ConnectRefused,
        FailureKind::ConnectTimeout,
        FailureKind::Tls,
        FailureKind::Certificate,
        FailureKind::Timeout,
        FailureKind::Status,
        FailureKind::Assertion,
        FailureKind::Protocol,
        FailureKind::TooLarge,
        FailureKind::Permission,
        FailureKind::Connection,
        FailureKind::Unsupported,
        FailureKind::LocalResource,
    ];

    /// The stable snake_case name used in logs, metrics labels and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Dns => "dns",
            FailureKind::ConnectRefused => "connect_refused",
            FailureKind::ConnectTimeout => "connect_timeout",
            FailureKind::Tls => "tls",
            FailureKind::Certificate => "certificate",
            FailureKind::Timeout => "timeout",
            FailureKind::Status => "status",
            FailureKind::Assertion => "assertion",
            FailureKind::Protocol => "protocol",
            FailureKind::TooLarge => "too_large",
            FailureKind::Permission => "permission",
            FailureKind::Connection => "connection",
            FailureKind::Unsupported => "unsupported",
            FailureKind::LocalResource => "local_resource",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition on a successful check that deserves a yellow alert (no red, no intervention).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The certificate expires within `warn_days`.
    CertificateExpiring { days_left: i32 },
    /// The response was slower than `max_response_time` but the monitor treats it as a warning.
    Slow { latency_ms: u32 },
}

/// Extra facts about an outcome, kept as plain values so that an `Outcome` never allocates.
/// `Outcome::describe` turns them into the one-line message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Detail {
    #[default]
    None,
    /// An HTTP status code (the one received).
    HttpStatus(u16),
    /// An OS error number (`errno`) from a socket call.
    Errno(i32),
    /// Days until the certificate expires (negative when already expired).
    CertDaysLeft(i32),
    /// A size in bytes that crossed a bound.
    Bytes(u32),
    /// A fixed explanation written where the failure was found.
    Text(&'static str),
    /// A fixed explanation that ends with a size, usually a bound from `limits.rs`:
    /// `SizeText("body_contains not found in the first", 65536)` reads "... first 64 KiB".
    /// The size is kept apart so the message is built from the constant, never restated.
    SizeText(&'static str, u32),
    /// A fixed explanation that ends with a count, usually a bound from `limits.rs`:
    /// `CountText("more response headers than", 64)`.
    CountText(&'static str, u32),
    /// An `expected_headers` assertion that failed: the header's name (kept for the process's
    /// life by [`static_name`]) and whether it was missing rather than different.
    Header { name: &'static str, missing: bool },
}

/// `name`, kept for the life of the process (one copy per distinct name) so that an
/// `Outcome` can point at it without allocating. Called at load, never per check; at most
/// `MAX_ASSERTED_HEADER_NAMES` names are kept, and past that `None`.
pub fn static_name(name: &str) -> Option<&'static str> {
    use crate::limits::MAX_ASSERTED_HEADER_NAMES;
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    // Load-time only (the shard threads compile their checks): never on the check path.
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&kept) = names.get(name) {
        return Some(kept);
    }
    if names.len() >= MAX_ASSERTED_HEADER_NAMES {
        return None;
    }
    let kept: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(kept);
    Some(kept)
}

/// The result of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `None` when the check succeeded.
    pub failure: Option<FailureKind>,
    /// Wall time from the start of the check to its end, in microseconds (saturating).
    pub latency_us: u32,
    /// A warning on a successful check.
    pub warning: Option<Warning>,
    pub detail: Detail,
    /// Days until the peer's certificate expires, when the check saw one (https, tls).
    pub cert_days_left: Option<i32>,
}

impl Outcome {
    pub const fn success(latency_us: u32) -> Self {
        Outcome {
            failure: None,
            latency_us,
            warning: None,
            detail: Detail::None,
            cert_days_left: None,
        }
    }

    pub const fn failure(kind: FailureKind, latency_us: u32, detail: Detail) -> Self {
        Outcome { failure: Some(kind), latency_us, warning: None, detail, cert_days_left: None }
    }

    pub const fn is_success(&self) -> bool {
        self.failure.is_none()
    }

    /// Whether the check could not run for want of a local resource (not a verdict on the
    /// target): see [`FailureKind::LocalResource`].
    pub const fn is_local_resource(&self) -> bool {
        matches!(self.failure, Some(FailureKind::LocalResource))
    }

    /// One line a person can act on, e.g. `connect refused to 10.0.0.5:443`. `target` is what
    /// the check was aimed at (a URL or `host:port`). Allocates: call it only when reporting.
    pub fn describe(&self, target: &str) -> String {
        let detail = match self.detail {
            Detail::None => String::new(),
            Detail::HttpStatus(code) => format!(" (HTTP {code})"),
            Detail::Errno(errno) => format!(" ({})", std::io::Error::from_raw_os_error(errno)),
            Detail::CertDaysLeft(days) if days < 0 => {
                format!(" (certificate expired {} days ago)", -days)
            }
            Detail::CertDaysLeft(days) => format!(" (certificate expires in {days} days)"),
            Detail::Bytes(n) => format!(" ({n} bytes)"),
            Detail::Text(text) => format!(": {text}"),
            Detail::SizeText(text, bytes) => {
                format!(": {text} {}", crate::limits::Size(u64::from(bytes)))
            }
            Detail::CountText(text, n) => format!(": {text} {n}"),
            Detail::Header { name, missing: true } => format!(": header {name} is missing"),
            Detail::Header { name, missing: false } => {
                format!(": header {name} does not have the expected value")
            }
        };
        let what = match self.failure {
            None => match self.warning {
                Some(Warning::CertificateExpiring { days_left }) => {
                    return format!("certificate for {target} expires in {days_left} days");
                }
                Some(Warning::Slow { latency_ms }) => {
                    return format!("{target} answered slowly ({latency_ms} ms)");
                }
                None => return format!("{target} is healthy ({} ms)", self.latency_us / 1000),
            },
            Some(FailureKind::Dns) => "DNS lookup failed for",
            Some(FailureKind::ConnectRefused) => "connect refused to",
            Some(FailureKind::ConnectTimeout) => "connect timed out to",
            Some(FailureKind::Tls) => "TLS handshake failed with",
            Some(FailureKind::Certificate) => "TLS: certificate rejected for",
            Some(FailureKind::Timeout) => "no complete answer within the timeout from",
            Some(FailureKind::Status) => "unexpected status from",
            Some(FailureKind::Assertion) => "response assertion failed for",
            Some(FailureKind::Protocol) => "protocol error from",
            Some(FailureKind::TooLarge) => "response too large from",
            Some(FailureKind::Permission) => "permission denied probing",
            Some(FailureKind::Connection) => "connection error with",
            Some(FailureKind::Unsupported) => "check not supported for",
            Some(FailureKind::LocalResource) => {
                "no local resource (descriptor, buffer, port) to check"
            }
        };
        format!("{what} {target}{detail}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn outcome_is_small_and_copy() {
        // Outcomes cross the probe -> state boundary millions of times a second. 48 bytes:
        // `Detail::Text` holds a fat `&'static str` (16 bytes), still Copy and heap-free.
        assert!(std::mem::size_of::<Outcome>() <= 48, "{}", std::mem::size_of::<Outcome>());
    }

    #[test]
    fn describe_reads_like_an_operator_message() {
        let o = Outcome::failure(FailureKind::ConnectRefused, 120, Detail::None);
        assert_eq!(o.describe("10.0.0.5:443"), "connect refused to 10.0.0.5:443");
        let o = Outcome::failure(FailureKind::Certificate, 0, Detail::CertDaysLeft(-3));
        assert_eq!(
            o.describe("api.example.com"),
            "TLS: certificate rejected for api.example.com (certificate expired 3 days ago)"
        );
        let o = Outcome::failure(FailureKind::Status, 0, Detail::HttpStatus(503));
        assert_eq!(
            o.describe("http://x/health"),
            "unexpected status from http://x/health (HTTP 503)"
        );
        let o = Outcome::failure(
            FailureKind::Assertion,
            0,
            Detail::SizeText("body_contains not found in the first", 64 * 1024),
        );
        assert_eq!(
            o.describe("http://x/health"),
            "response assertion failed for http://x/health: body_contains not found in the first 64 KiB"
        );
    }

    /// The local-resource errnos, and neighbours that are the target's (or the path's) doing.
    pub(crate) const LOCAL_ERRNOS: [i32; 5] =
        [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM, libc::EADDRNOTAVAIL];

    #[test]
    fn local_resource_errnos_are_this_hosts_not_the_targets() {
        for errno in LOCAL_ERRNOS {
            assert!(is_local_resource_errno(errno), "{errno}");
            let err = std::io::Error::from_raw_os_error(errno);
            assert_eq!(local_resource_errno(&err), Some(errno));
        }
        for errno in [
            libc::ECONNREFUSED,
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
            libc::ECONNRESET,
            libc::EACCES,
        ] {
            assert!(!is_local_resource_errno(errno), "{errno}");
        }
        let o = Outcome::failure(FailureKind::LocalResource, 0, Detail::Errno(libc::EMFILE));
        assert!(o.is_local_resource() && !o.is_success());
        assert!(o.describe("127.0.0.1:80").contains("Too many open files"), "{}", o.describe("x"));
    }

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<_> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FailureKind::ALL.len());
    }
}
