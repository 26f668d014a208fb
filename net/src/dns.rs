//! The `dns` pulse: ask a DNS server for a name's A or AAAA records over UDP, on the shard's
//! glommio socket, and succeed when the server answers with at least one record.
//!
//! What it is for: checking that a DNS server answers (and that a name exists in it). What it
//! is not for: resolving the targets of other monitors (see `resolver.rs`), DNSSEC validation,
//! TCP fallback on truncation (a truncated answer that carries records is still an answer), or
//! comparing the returned addresses with expected ones.
//!
//! The query is encoded once with hickory-proto when the monitor is loaded; each check only
//! patches the 16-bit id. The reply's 12-byte header is decoded with hickory-proto's
//! `Header::read`, which does not allocate, so a check allocates nothing of its own.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::deadline::{saturating_us, until, Deadline};
use crate::limits::{Size, MAX_DNS_MESSAGE_BYTES, MAX_DNS_STRAY_REPLIES};
use crate::outcome::{Detail, FailureKind, Outcome};
use crate::udp::{bind_for, io_outcome};

/// Where the system resolver configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The record type a `dns` monitor asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsRecord {
    A,
    Aaaa,
}

/// A `dns` monitor: the server (resolved) and the pre-encoded query.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    pub server: SocketAddr,
    pub name: Name,
    pub record: DnsRecord,
    /// The query in wire format, with id 0; each check writes its own id into bytes 0..2.
    query: Box<[u8]>,
}

impl DnsConfig {
    /// Builds a config; `name` is the one to look up (`example.com`, with or without the
    /// trailing dot). Fails with a message naming the bad name.
    pub fn new(server: SocketAddr, name: &str, record: DnsRecord) -> Result<DnsConfig, String> {
        let mut fqdn =
            Name::from_ascii(name).map_err(|e| format!("invalid DNS name {name:?}: {e}"))?;
        fqdn.set_fqdn(true);
        let record_type = match record {
            DnsRecord::A => RecordType::A,
            DnsRecord::Aaaa => RecordType::AAAA,
        };
        let mut message = Message::new();
        message
            .set_id(0)
            .set_message_type(MessageType::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(fqdn.clone(), record_type));
        let query =
            message.to_vec().map_err(|e| format!("cannot encode DNS query for {name:?}: {e}"))?;
        assert!(query.len() >= Header::len());
        if query.len() > MAX_DNS_MESSAGE_BYTES {
            return Err(format!(
                "DNS query for {name:?} is {} bytes; a DNS message over UDP carries at most {}",
                query.len(),
                Size::bytes(MAX_DNS_MESSAGE_BYTES)
            ));
        }
        Ok(DnsConfig { server, name: fqdn, record, query: query.into() })
    }
}

/// The first `nameserver` in resolv.conf-formatted `text`, on port 53.
pub fn parse_resolv_conf(text: &str) -> Option<SocketAddr> {
    text.lines()
        .map(|line| line.split(['#', ';']).next().unwrap_or(""))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        // A scoped IPv6 address (`fe80::1%eth0`) cannot be parsed as an IpAddr; skip it.
        .find_map(|word| word.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
}

/// The system resolver's first nameserver, read from [`RESOLV_CONF`]. Call at load time (it
/// reads a file), never on a shard's check path.
pub fn system_nameserver() -> Result<SocketAddr, String> {
    let text = std::fs::read_to_string(RESOLV_CONF)
        .map_err(|e| format!("cannot read {RESOLV_CONF}: {e}"))?;
    parse_resolv_conf(&text).ok_or_else(|| {
        format!("{RESOLV_CONF} names no nameserver; set `server` on the dns monitor")
    })
}

/// Runs one `dns` check within `timeout`.
pub async fn check(cfg: &DnsConfig, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let deadline = Deadline::new(start, timeout).end();
    let id = next_query_id();
    let mut query = [0u8; MAX_DNS_MESSAGE_BYTES];
    let Some(query) = query.get_mut(..cfg.query.len()) else {
        // `DnsConfig::new` refuses such a query; a config built otherwise fails here, named.
        return Outcome::failure(
            FailureKind::Unsupported,
            0,
            Detail::SizeText("query longer than", MAX_DNS_MESSAGE_BYTES as u32),
        );
    };
    query.copy_from_slice(&cfg.query);
    query[..2].copy_from_slice(&id.to_be_bytes());
    match until(deadline, exchange(cfg.server, query, id)).await {
        None => Outcome::failure(
            FailureKind::Timeout,
            saturating_us(start.elapsed()),
            Detail::Text("no answer from the DNS server"),
        ),
        Some(Err(e)) => io_outcome(&e, saturating_us(start.elapsed())),
        Some(Ok(reply)) => judge(reply, saturating_us(start.elapsed())),
    }
}

/// What the server said, reduced to what decides the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    Answer {
        code: ResponseCode,
        answers: u16,
    },
    /// Too many datagrams that were not our answer (wrong id, not a response, not DNS).
    Strays,
}

async fn exchange(server: SocketAddr, query: &[u8], id: u16) -> io::Result<Reply> {
    let socket = bind_for(server)?;
    socket.connect(server).await.map_err(io::Error::from)?;
    socket.send(query).await.map_err(io::Error::from)?;
    let mut buf = [0u8; MAX_DNS_MESSAGE_BYTES];
    for _ in 0..=MAX_DNS_STRAY_REPLIES {
        let n = socket.recv(&mut buf).await.map_err(io::Error::from)?;
        if let Some(reply) = answer(&buf[..n], id) {
            return Ok(reply);
        }
    }
    // A flood of strays with no valid answer: say so rather than wait out the deadline.
    Ok(Reply::Strays)
}

/// The answer a datagram carries, or `None` for a stray (not DNS, another id, not a response).
fn answer(datagram: &[u8], id: u16) -> Option<Reply> {
    let header = Header::read(&mut BinDecoder::new(datagram)).ok()?;
    if header.id() != id || header.message_type() != MessageType::Response {
        return None;
    }
    Some(Reply::Answer { code: header.response_code(), answers: header.answer_count() })
}

/// The outcome one datagram means for a query with `id` (`None`: a stray, skipped), judged
/// as `check` judges it: the reply parser without a socket, for the fuzz target.
#[doc(hidden)]
pub fn judge_datagram(datagram: &[u8], id: u16) -> Option<Outcome> {
    answer(datagram, id).map(|reply| judge(reply, 0))
}

/// The outcome a reply means. Pure: the table of cases is tested directly.
fn judge(reply: Reply, latency_us: u32) -> Outcome {
    let fail = |text| Outcome::failure(FailureKind::Dns, latency_us, Detail::Text(text));
    match reply {
        Reply::Answer { code: ResponseCode::NoError, answers } if answers > 0 => {
            Outcome::success(latency_us)
        }
        Reply::Answer { code: ResponseCode::NoError, .. } => {
            fail("no records of that type (NODATA)")
        }
        Reply::Answer { code: ResponseCode::NXDomain, .. } => {
            fail("NXDOMAIN: the name does not exist")
        }
        Reply::Answer { code: ResponseCode::ServFail, .. } => {
            fail("SERVFAIL: the server failed to answer")
        }
        Reply::Answer { code: ResponseCode::Refused, .. } => {
            fail("REFUSED: the server refused the query")
        }
        Reply::Answer { code: ResponseCode::FormErr, .. } => {
            fail("FORMERR: the server rejected the query")
        }
        Reply::Answer { .. } => fail("the server answered with an error code"),
        Reply::Strays => Outcome::failure(
            FailureKind::Protocol,
            latency_us,
            Detail::Text("replies did not match the query id"),
        ),
    }
}

thread_local! {
    /// Per-shard xorshift state for query ids: unpredictable enough that an off-path spoofer
    /// must guess, cheap, and no shared state between shards.
    static ID_STATE: Cell<u32> = Cell::new(seed());
}

fn seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9e37_79b9, |d| d.subsec_nanos());
    let local = &nanos as *const u32 as usize as u32;
    (nanos ^ local.rotate_left(16)) | 1
}

fn next_query_id() -> u16 {
    ID_STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state.set(x);
        (x >> 8) as u16
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA};
    use hickory_proto::rr::{RData, Record};
    use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket as StdUdp};

    /// A tiny authoritative server for the zone `test.`, on a std thread, answering `count`
    /// queries: `ok.test` has A and AAAA records, `empty.test` exists with no records,
    /// `broken.test` gets SERVFAIL, anything else NXDOMAIN. `stray.test` first gets an answer
    /// with the wrong id, then the right one. `flaky.test` gets SERVFAIL the first time it is
    /// asked, then the answer of `ok.test`.
    fn dns_server(count: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = StdUdp::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut flaky_asked = false;
            for _ in 0..count {
                let (n, from) = socket.recv_from(&mut buf).unwrap();
                let query = Message::from_vec(&buf[..n]).unwrap();
                let q = query.query().unwrap().clone();
                let mut reply = Message::new();
                reply
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_recursion_desired(query.recursion_desired())
                    .add_query(q.clone());
                let name = q.name().to_ascii();
                let flaky_fails =
                    name == "flaky.test." && !std::mem::replace(&mut flaky_asked, true);
                match name.as_str() {
                    "flaky.test." if flaky_fails => {
                        reply.set_response_code(ResponseCode::ServFail);
                    }
                    "ok.test." | "stray.test." | "flaky.test." => {
                        let rdata = match q.query_type() {
                            RecordType::AAAA => RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
                            _ => RData::A(A(Ipv4Addr::LOCALHOST)),
                        };
                        reply.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
                    }
                    "empty.test." => {}
                    "broken.test." => {
                        reply.set_response_code(ResponseCode::ServFail);
                    }
                    _ => {
                        reply.set_response_code(ResponseCode::NXDomain);
                    }
                }
                if name == "stray.test." {
                    let mut wrong = reply.clone();
                    wrong.set_id(query.id().wrapping_add(1));
                    socket.send_to(&wrong.to_vec().unwrap(), from).unwrap();
                    socket.send_to(b"\x01garbage", from).unwrap();
                }
                socket.send_to(&reply.to_vec().unwrap(), from).unwrap();
            }
        });
        (addr, handle)
    }

    fn run_checks(cfgs: Vec<DnsConfig>) -> Vec<Outcome> {
        crate::test_executor::run(move || async move {
            let mut out = Vec::new();
            for cfg in &cfgs {
                out.push(check(cfg, Duration::from_secs(10)).await);
            }
            out
        })
    }

    #[test]
    fn answers_and_errors_from_a_local_server() {
        let cases = [
            ("ok.test", DnsRecord::A, None, ""),
            ("ok.test.", DnsRecord::Aaaa, None, ""),
            ("stray.test", DnsRecord::A, None, ""),
            ("missing.test", DnsRecord::A, Some(FailureKind::Dns), "NXDOMAIN"),
            ("broken.test", DnsRecord::A, Some(FailureKind::Dns), "SERVFAIL"),
            ("empty.test", DnsRecord::A, Some(FailureKind::Dns), "NODATA"),
        ];
        let (server, handle) = dns_server(cases.len());
        let cfgs = cases
            .iter()
            .map(|(name, rec, _, _)| DnsConfig::new(server, name, *rec).unwrap())
            .collect();
        let outcomes = run_checks(cfgs);
        handle.join().unwrap();
        for ((name, _, kind, text), o) in cases.iter().zip(&outcomes) {
            assert_eq!(o.failure, *kind, "{name}: {o:?}");
            if !text.is_empty() {
                assert!(o.describe(name).contains(text), "{name}: {}", o.describe(name));
            }
        }
    }

    #[test]
    fn a_target_failing_once_fails_the_check_unless_retries_allow_one_more() {
        for (retries, queries, failure) in [(0, 1, Some(FailureKind::Dns)), (1, 2, None)] {
            let (server, handle) = dns_server(queries);
            let cfg = DnsConfig::new(server, "flaky.test", DnsRecord::A).unwrap();
            let o = crate::test_executor::run(move || async move {
                let timeout = Duration::from_secs(10);
                crate::retry::with_retries(retries, timeout, |t| check(&cfg, t)).await
            });
            handle.join().unwrap();
            assert_eq!(o.failure, failure, "retries {retries}: {o:?}");
        }
    }

    #[test]
    fn silent_server_is_a_timeout_and_closed_port_is_refused() {
        let silent = StdUdp::bind("127.0.0.1:0").unwrap();
        let closed = StdUdp::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let cfg_silent =
            DnsConfig::new(silent.local_addr().unwrap(), "ok.test", DnsRecord::A).unwrap();
        let cfg_closed = DnsConfig::new(closed, "ok.test", DnsRecord::A).unwrap();
        let outcomes = crate::test_executor::run(move || async move {
            (
                check(&cfg_silent, Duration::from_millis(200)).await,
                check(&cfg_closed, Duration::from_secs(10)).await,
            )
        });
        assert_eq!(outcomes.0.failure, Some(FailureKind::Timeout), "{:?}", outcomes.0);
        assert_eq!(outcomes.1.failure, Some(FailureKind::ConnectRefused), "{:?}", outcomes.1);
    }

    #[test]
    fn bad_names_fail_at_config_time() {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let long_label = "a".repeat(64);
        let err = DnsConfig::new(server, &long_label, DnsRecord::A).unwrap_err();
        assert!(err.contains("invalid DNS name"), "{err}");
    }

    #[test]
    fn resolv_conf_first_usable_nameserver() {
        let text = "# generated\nsearch example\nnameserver fe80::1%eth0\nnameserver 10.0.0.2 # main\nnameserver 10.0.0.3\n";
        assert_eq!(parse_resolv_conf(text), Some("10.0.0.2:53".parse().unwrap()));
        assert_eq!(parse_resolv_conf("nameserver ::1\n"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_resolv_conf("search x\n"), None);
    }

    #[test]
    fn query_ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..100).map(|_| next_query_id()).collect();
        assert!(ids.len() > 90, "{}", ids.len());
    }
}
