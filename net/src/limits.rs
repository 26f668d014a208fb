//! Every size and count bound of `cpra-net`, as named constants in one place, so a reviewer can
//! see at a glance how much a hostile target (or a mistaken manifest) can make a shard read,
//! hold or wait for. Each says why its number and what happens at the bound; messages that
//! mention a bound format it from the constant with [`Size`], so they cannot drift from it.
//!
//! What it is for: sizes and counts. What it is not for: timeouts and pauses (each monitor has
//! its own `timeout`, see `deadline.rs`; short internal pauses sit next to the loop that waits),
//! and fixed facts of a wire format that are not bounds (header lengths, frame type codes).

use std::fmt;

// ---- HTTP responses (http/https pulse, the unix-socket client, gRPC header blocks) ----

/// Largest response header block (HTTP/1.1 status line + headers + blank line, or one HTTP/2
/// header block: HEADERS plus CONTINUATIONs) we read. 16 KiB is what nginx and Go's net/http
/// accept by default for a request line plus headers; health endpoints and the Docker engine
/// send a few hundred bytes. Past it the check fails with `too_large` and the connection is
/// closed.
pub const MAX_HEADER_BLOCK_BYTES: usize = 16 * 1024;

/// Most HTTP/1.1 headers parsed in one response (httparse needs a fixed array). 64 is four
/// times what a busy reverse proxy adds; past it httparse reports an error and the check fails
/// with `protocol` ("too many response headers").
pub const MAX_HEADERS: usize = 64;

/// Header names a process keeps for the life of the process so that a failed
/// `expected_headers` assertion can name its header in an `Outcome` (which holds only
/// `&'static str`, so it never allocates). A fleet asserts on a handful of distinct names
/// (`Content-Type`, `Cache-Control`, a version header); 4096 covers any real one, and reloads
/// of the same names reuse them. Past it, an assertion's message names no header ("one of
/// expected_headers") instead of growing the process's memory; it still checks its own header.
pub const MAX_ASSERTED_HEADER_NAMES: usize = 4096;

/// Regular expressions of `expected_headers` are compiled to at most this many bytes each
/// (the regex crate's `size_limit`). A header value is at most the 16 KiB head, so a pattern
/// needing more than 1 MiB compiled is a mistake; refusing it at load keeps a fleet's memory
/// bounded by its monitors rather than by its patterns.
pub const MAX_HEADER_REGEX_BYTES: usize = 1024 * 1024;

/// Most body bytes an http/https check reads, and only when an assertion (`body_contains`,
/// `body_regex`) needs the body. 64 KiB covers any health payload; a body assertion sees at
/// most this prefix, and the rest is never read (the connection is closed, never reused).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest body read from a server on a unix socket (the Docker engine). A container's inspect
/// document is usually 5 to 30 KiB (env, labels, mounts, networks); 256 KiB leaves room for
/// very large ones. Past it the exchange fails with `too_large` instead of buffering without
/// limit.
pub const MAX_UNIX_BODY_BYTES: usize = 256 * 1024;

/// Most attempts of one check of any pulse type (the first plus `retries`), all inside the one
/// deadline. `retries` defaults to 0 (one attempt, as in the Go CPRA); a manifest asking for
/// more than 2 retries gets 2 (with a warning at load): more would only hide a flapping
/// target, and the pauses between attempts must leave each attempt time to run.
pub const MAX_ATTEMPTS: u32 = 3;

/// Most idle keep-alive connections a shard keeps, across all targets. One per target is the
/// rule; this caps the total so a manifest with many keep-alive targets cannot pin file
/// descriptors: past it the least recently used connection is closed.
pub const MAX_POOLED_CONNECTIONS: usize = 1024;

/// Most spare http check buffers (each `MAX_HEADER_BLOCK_BYTES + MAX_BODY_BYTES`, 80 KiB) a
/// shard keeps for reuse: 4096, a shard's default in-flight limit, so every http check in
/// flight reuses one and none allocates (or zeroes 80 KiB) per check. What a spare costs is
/// the pages responses wrote into it: a fresh zeroed allocation is not resident until written
/// and a spare is never zeroed again, so a typical health reply (under 4 KiB) keeps one or two
/// pages of it resident; only full-size bodies make it 80 KiB. With 512, each check past the
/// 512th allocated and zeroed a whole buffer: 18 % of a 1M-monitor run's page faults.
pub const MAX_SPARE_BUFFERS: usize = 4096;

/// Largest rendered HTTP request (request line, headers, body) accepted at load. Health checks
/// send small requests; a larger one is a manifest mistake reported at load.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// First capacity of a request buffer a plain http check renders into
/// (`HttpClient::check_plain`): a health check's request is a request line, `Host`,
/// `User-Agent`, `Connection` and a few headers, 150 to 300 bytes.
pub const REQUEST_BUFFER_BYTES: usize = 512;

/// Largest request buffer kept for reuse (one spare per check in flight, so at most 16 MiB at
/// 4096 in flight, 2 MiB while requests stay under 512 bytes). Room for a bearer token or a
/// cookie of a kilobyte or two; a monitor whose request is larger grows a buffer per check.
pub const MAX_KEPT_REQUEST_BYTES: usize = 4 * 1024;

// ---- TLS ----

/// Largest `ca_file` read at load (PEM). A bundle of a few hundred CAs is ~200 KiB; 1 MiB
/// leaves room and stops a mistaken path to a huge file; a larger file is refused at load.
pub const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// Hosts whose TLS sessions a shard remembers for resumption, per set of TLS options (most
/// manifests have one). rustls's default remembers 32; a shard checking more https hosts than
/// this resumes with some and makes full handshakes with the rest (correct, only slower). Each
/// host holds up to 8 tickets and the certificate chain, a few KiB, so at most about 6 MiB a
/// shard, and only for hosts actually checked.
pub const TLS_SESSION_HOSTS: usize = 256;

// ---- docker ----

/// Longest container name or id accepted (Docker's own ids are 64 hex digits; names are
/// short). Longer input is refused at load time, so nothing long reaches the request line.
pub const MAX_CONTAINER_NAME_BYTES: usize = 128;

// ---- grpc (HTTP/2) ----

/// Largest HTTP/2 frame payload we accept: 16 KiB is HTTP/2's default SETTINGS_MAX_FRAME_SIZE
/// (RFC 9113 4.2), which we never raise, so a server sending more breaks the protocol; such a
/// frame fails the check with `protocol` before it is read. A protocol fact, not a choice: it
/// is equal to [`MAX_HEADER_BLOCK_BYTES`] by coincidence.
pub const MAX_H2_FRAME_BYTES: usize = 16 * 1024;

/// Spare grpc reply buffers (33 KiB each) a shard keeps for its next checks: 256 covers a
/// fleet's grpc checks in flight at once in steady state (they are a small share of a mix),
/// so none allocates; beyond it a check allocates one and frees it after. At most 8.4 MiB a
/// shard, and only once that many grpc checks ran at once.
pub const MAX_SPARE_GRPC_BUFFERS: usize = 256;

/// Bytes of gRPC message accepted. `HealthCheckResponse` is 2 bytes on the wire; 1 KiB leaves
/// room for servers that add unknown fields, and stops an endless body at once (`too_large`).
pub const MAX_GRPC_MESSAGE_BYTES: usize = 1024;

/// Frames read per gRPC check before giving up with `protocol`. The health reply is 4 to 8
/// frames (SETTINGS, SETTINGS ACK, WINDOW_UPDATE, HEADERS, DATA, trailers, maybe PING); 64
/// bounds the work a hostile server can cause with a stream of empty frames before the
/// deadline.
pub const MAX_GRPC_FRAMES: usize = 64;

/// Longest gRPC `service` name accepted (service names are package-qualified identifiers, far
/// shorter). Longer is refused at load.
pub const MAX_GRPC_SERVICE_NAME_BYTES: usize = 256;

/// Longest `:authority` (`host:port`) sent to a gRPC server: the longest host name
/// ([`MAX_HOST_NAME_BYTES`]) plus `:` and a five-digit port. Longer is refused at load.
pub const MAX_GRPC_AUTHORITY_BYTES: usize = MAX_HOST_NAME_BYTES + 6;

// ---- dns and udp ----

/// Largest DNS message over UDP, the query we send and the reply we read. We send no EDNS OPT
/// record, so a conforming server answers in at most 512 bytes (RFC 1035 4.2.1) and sets TC
/// beyond; only the reply's header is decoded anyway, and the kernel drops whatever does not
/// fit. A query that would not fit is refused at load.
pub const MAX_DNS_MESSAGE_BYTES: usize = 512;

/// Datagrams that are not the answer to our DNS query (wrong id, not a response) tolerated per
/// check before it fails with `protocol`. A connected socket only sees the server's datagrams,
/// so strays are late answers to an earlier, timed-out check; 8 is plenty for those, and the
/// bound stops a hostile server from keeping a check spinning until its deadline.
pub const MAX_DNS_STRAY_REPLIES: usize = 8;

/// Compression pointers followed while reading one name of a DNS answer (for `expect`). A
/// name has at most 127 labels, and a server compresses each suffix once, so an honest answer
/// needs a handful; 32 leaves room for odd encoders and stops a pointer loop (a pointer to
/// itself or to a name that points back) after 32 steps instead of never.
pub const MAX_DNS_NAME_POINTERS: usize = 32;

/// Longest DNS name in wire form, length bytes and the root label included (RFC 1035 2.3.4).
/// A name read from an answer that grows past it is malformed, and the answer is refused.
pub const MAX_DNS_NAME_BYTES: usize = 255;

/// Largest payload a `udp` monitor may send: 1232 bytes fits in one datagram on any path
/// without fragmentation (the figure DNS flag day 2020 settled on: 1280-byte IPv6 minimum MTU
/// minus headers). Larger payloads are refused when the config is built, never truncated.
pub const MAX_UDP_PAYLOAD_BYTES: usize = 1232;

/// Bytes read of a `udp` reply. Only "non-empty" decides the check, so a small buffer
/// suffices; the kernel truncates a longer datagram to this size (and discards the rest), so a
/// peer cannot make the shard read more.
pub const UDP_REPLY_READ_BYTES: usize = 512;

// ---- icmp ----

/// Echo requests in flight at once per shard (one slot each, indexed by sequence number). A
/// check waits for one echo at a time, so a shard has at most its checks in flight (4096 by
/// default, `max_in_flight`) waiting; twice that leaves room for slots skipped while a slow
/// echo holds them, and divides the 16-bit sequence space. At the bound a check fails with
/// `connection` "too many ICMP checks in flight" rather than reuse a slot still waited on.
pub const MAX_ICMP_IN_FLIGHT: usize = 8192;
const _: () = assert!(65_536 % MAX_ICMP_IN_FLIGHT == 0, "slots must tile the sequence space");

/// Echoes a monitor may ask for per check. More says nothing more about "is it up", but
/// manifests written for the Go CPRA use counts up to 100, so that is what the loader accepts
/// and the runtime runs (the monitor's timeout is shared by the echoes, so a large count
/// shortens each wait, never lengthens the check); a larger `count` is refused at load.
pub const MAX_ICMP_COUNT: u8 = 100;

/// Bytes read of each received ICMP packet: up to 60 bytes of IPv4 header (raw sockets include
/// it) plus the 8-byte ICMP header is all we parse; the kernel truncates the rest.
pub const ICMP_RECV_READ_BYTES: usize = 128;

// ---- the resolver ----

/// Requests waiting for the resolver threads, across all shards. 1024 covers a reload that
/// introduces hundreds of new names at once while one slow upstream lookup is in progress; at
/// the bound a shard gets `ResolveError::Overloaded` at once (the check fails with `dns`,
/// "resolver overloaded") instead of blocking or growing memory without limit.
pub const RESOLVER_QUEUE_CAPACITY: usize = 1024;

/// Names cached per shard. A shard with more distinct names than this is unusual (monitors are
/// hash-partitioned by id, and most fleets have far fewer hosts than monitors); at the bound
/// the cache drops expired entries, then, if still full, the entry closest to expiry, so memory
/// stays bounded and the worst case is an extra lookup.
pub const RESOLVER_CACHE_CAPACITY_PER_SHARD: usize = 16_384;

/// Longest host name accepted (RFC 1035 limit on a full name). Longer input is rejected
/// before it reaches the resolver queue, so a bad manifest cannot make the resolver thread
/// chew on megabytes.
pub const MAX_HOST_NAME_BYTES: usize = 253;

/// Most resolver threads: they only block in getaddrinfo, so a few cover many slow names;
/// more would just be idle stacks. A larger `threads` setting is refused.
pub const MAX_RESOLVER_THREADS: usize = 16;

/// Checks on one shard that may wait for the same lookup. Beyond it (a lookup stuck for
/// seconds while thousands of checks of the same host come due) a check fails at once with
/// "resolver overloaded" instead of growing the waiter list without bound. 4096 is the default
/// number of checks a shard has in flight, so with the defaults every check of a shard can wait
/// on one lookup and only a shard run with a larger `max_in_flight` can reach the bound.
pub const MAX_WAITERS_PER_LOOKUP: usize = 4096;

const _: () = assert!(MAX_HEADER_BLOCK_BYTES >= 1024 && MAX_BODY_BYTES >= 1024);
const _: () = assert!(MAX_UNIX_BODY_BYTES >= 1024);
const _: () = assert!(MAX_ATTEMPTS >= 1);
// A DNS header is 12 bytes; the reply buffer must hold at least that.
const _: () = assert!(MAX_DNS_MESSAGE_BYTES >= 12);
// The packet buffer must hold the longest IPv4 header (60) and the ICMP header (8).
const _: () = assert!(ICMP_RECV_READ_BYTES >= 68);
// Sizes are reported in `Detail::SizeText` as u32.
const _: () = assert!(MAX_UNIX_BODY_BYTES <= u32::MAX as usize);

/// A byte count as people read it in a message: `16 KiB`, `1 MiB`, `512 bytes`. Used to build
/// every message that names a bound from the bound itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub const fn bytes(n: usize) -> Size {
        Size(n as u64)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= KIB && n % KIB == 0 => write!(f, "{} KiB", n / KIB),
            1 => f.write_str("1 byte"),
            n => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(Size::bytes(MAX_HEADER_BLOCK_BYTES).to_string(), "16 KiB");
        assert_eq!(Size(MAX_CA_FILE_BYTES).to_string(), "1 MiB");
        assert_eq!(Size::bytes(MAX_DNS_MESSAGE_BYTES).to_string(), "512 bytes");
        assert_eq!(Size::bytes(1536).to_string(), "1536 bytes");
        assert_eq!(Size::bytes(1).to_string(), "1 byte");
    }
}
