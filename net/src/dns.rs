//! The `dns` pulse: ask a DNS server for a name's records (A, AAAA, CNAME, MX, TXT, NS, SRV)
//! over UDP, on the shard's glommio socket, and succeed when the server answers with at least
//! one record of that type, and, with `expect`, one whose value is the expected one.
//!
//! What it is for: checking that a DNS server answers, that a name exists in it, and that it
//! points where it should. What it is not for: resolving the targets of other monitors (see
//! `resolver.rs`), DNSSEC validation, or TCP fallback on truncation (a truncated answer that
//! carries records is still an answer; the records read before the cut count).
//!
//! The query is encoded once with hickory-proto when the monitor is loaded; each check only
//! patches the 16-bit id. The reply's 12-byte header is decoded with hickory-proto's
//! `Header::read`; the answer section is walked here, in place, because hickory's `Message`
//! decoder allocates every record and name and a check allocates nothing of its own. The walk
//! is bounded by the datagram (every step consumes bytes) and, for the names it reads to
//! compare with `expect`, by `MAX_DNS_NAME_POINTERS` compression pointers and
//! `MAX_DNS_NAME_BYTES` bytes, so a pointer loop ends in a `protocol` failure.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::deadline::{saturating_us, until, Deadline};
use crate::limits::{
    Size, MAX_DNS_MESSAGE_BYTES, MAX_DNS_NAME_BYTES, MAX_DNS_NAME_POINTERS, MAX_DNS_STRAY_REPLIES,
};
use crate::outcome::{Detail, FailureKind, Outcome};
use crate::udp::{bind_for, io_outcome};

/// Where the system resolver configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The record type a `dns` monitor asks for (`record_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnsRecord {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Srv,
}

impl DnsRecord {
    /// In the order the docs list them.
    pub const ALL: [DnsRecord; 7] = [
        DnsRecord::A,
        DnsRecord::Aaaa,
        DnsRecord::Cname,
        DnsRecord::Mx,
        DnsRecord::Txt,
        DnsRecord::Ns,
        DnsRecord::Srv,
    ];

    /// The manifest's word, case-insensitive (`aaaa` or `AAAA`).
    pub fn parse(text: &str) -> Option<DnsRecord> {
        DnsRecord::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(text.trim()))
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            DnsRecord::A => "A",
            DnsRecord::Aaaa => "AAAA",
            DnsRecord::Cname => "CNAME",
            DnsRecord::Mx => "MX",
            DnsRecord::Txt => "TXT",
            DnsRecord::Ns => "NS",
            DnsRecord::Srv => "SRV",
        }
    }

    fn record_type(self) -> RecordType {
        RecordType::from(self.code())
    }

    /// The TYPE value on the wire (RFC 1035 3.2.2, RFC 3596, RFC 2782).
    const fn code(self) -> u16 {
        match self {
            DnsRecord::A => 1,
            DnsRecord::Ns => 2,
            DnsRecord::Cname => 5,
            DnsRecord::Mx => 15,
            DnsRecord::Txt => 16,
            DnsRecord::Aaaa => 28,
            DnsRecord::Srv => 33,
        }
    }

    /// Where the name sits in the RDATA of a record whose value is a name: after MX's
    /// preference, after SRV's priority, weight and port.
    const fn name_offset(self) -> usize {
        match self {
            DnsRecord::Mx => 2,
            DnsRecord::Srv => 6,
            _ => 0,
        }
    }
}

/// What `expect` asks of one record, prepared at load for the record type.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// A and AAAA: the RDATA is exactly this address (4 or 16 bytes).
    Rdata(Box<[u8]>),
    /// CNAME, NS, MX (exchange), SRV (target): this name, in wire form, lower case.
    Name(Box<[u8]>),
    /// TXT: the record's strings, joined, contain these bytes.
    Text(Box<[u8]>),
}

/// A `dns` monitor: the server (resolved) and the pre-encoded query.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    pub server: SocketAddr,
    pub name: Name,
    pub record: DnsRecord,
    expect: Option<Expect>,
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
        let mut message = Message::new();
        message
            .set_id(0)
            .set_message_type(MessageType::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(fqdn.clone(), record.record_type()));
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
        Ok(DnsConfig { server, name: fqdn, record, expect: None, query: query.into() })
    }

    /// Requires an answer record with this value: an address for A and AAAA, a name for
    /// CNAME, NS, MX (the exchange) and SRV (the target), text the record contains for TXT.
    pub fn with_expect(mut self, expect: &str) -> Result<DnsConfig, String> {
        self.expect = Some(parse_expect(self.record, expect)?);
        Ok(self)
    }
}

/// Checks and prepares an `expect` value for `record` (also used by the manifest checks, so
/// `validate` says what `run` would).
pub fn check_expect(record: DnsRecord, expect: &str) -> Result<(), String> {
    parse_expect(record, expect).map(drop)
}

fn parse_expect(record: DnsRecord, expect: &str) -> Result<Expect, String> {
    let kind = record.as_str();
    match record {
        DnsRecord::A => expect
            .trim()
            .parse::<Ipv4Addr>()
            .map(|ip| Expect::Rdata(ip.octets().into()))
            .map_err(|_| format!("`{expect}` is not an IPv4 address (record_type {kind})")),
        DnsRecord::Aaaa => expect
            .trim()
            .parse::<Ipv6Addr>()
            .map(|ip| Expect::Rdata(ip.octets().into()))
            .map_err(|_| format!("`{expect}` is not an IPv6 address (record_type {kind})")),
        DnsRecord::Cname | DnsRecord::Ns | DnsRecord::Mx | DnsRecord::Srv => {
            let name = Name::from_ascii(expect.trim())
                .map_err(|e| format!("`{expect}` is not a DNS name (record_type {kind}): {e}"))?;
            let mut wire = Vec::with_capacity(MAX_DNS_NAME_BYTES);
            for label in name.iter() {
                wire.push(label.len() as u8);
                wire.extend(label.iter().map(u8::to_ascii_lowercase));
            }
            wire.push(0);
            if wire.len() > MAX_DNS_NAME_BYTES {
                return Err(format!("`{expect}` is longer than a DNS name can be"));
            }
            Ok(Expect::Name(wire.into()))
        }
        DnsRecord::Txt if expect.is_empty() => Err("an empty TXT expect matches any record; \
             leave it out instead"
            .to_owned()),
        DnsRecord::Txt if expect.len() > MAX_DNS_MESSAGE_BYTES => Err(format!(
            "TXT expect is {} bytes; a DNS answer over UDP carries at most {}",
            expect.len(),
            Size::bytes(MAX_DNS_MESSAGE_BYTES)
        )),
        DnsRecord::Txt => Ok(Expect::Text(expect.as_bytes().into())),
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
    match until(deadline, exchange(cfg, query, id)).await {
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
        /// Records of the asked type in the answer section.
        answers: u16,
        /// With `expect`: whether one of them has the expected value.
        expected: Option<bool>,
    },
    /// The answer section does not parse (and the reply is not marked truncated).
    Malformed(&'static str),
    /// Too many datagrams that were not our answer (wrong id, not a response, not DNS).
    Strays,
}

async fn exchange(cfg: &DnsConfig, query: &[u8], id: u16) -> io::Result<Reply> {
    let socket = bind_for(cfg.server)?;
    socket.connect(cfg.server).await.map_err(io::Error::from)?;
    socket.send(query).await.map_err(io::Error::from)?;
    let mut buf = [0u8; MAX_DNS_MESSAGE_BYTES];
    for _ in 0..=MAX_DNS_STRAY_REPLIES {
        let n = socket.recv(&mut buf).await.map_err(io::Error::from)?;
        if let Some(reply) = answer(cfg, &buf[..n], id) {
            return Ok(reply);
        }
    }
    // A flood of strays with no valid answer: say so rather than wait out the deadline.
    Ok(Reply::Strays)
}

/// The answer a datagram carries, or `None` for a stray (not DNS, another id, not a response).
fn answer(cfg: &DnsConfig, datagram: &[u8], id: u16) -> Option<Reply> {
    let header = Header::read(&mut BinDecoder::new(datagram)).ok()?;
    if header.id() != id || header.message_type() != MessageType::Response {
        return None;
    }
    let code = header.response_code();
    if code != ResponseCode::NoError {
        return Some(Reply::Answer { code, answers: 0, expected: None });
    }
    let scan = scan_answers(
        datagram,
        header.query_count(),
        header.answer_count(),
        cfg.record,
        cfg.expect.as_ref(),
    );
    Some(match scan {
        Ok(scan) => scan.reply(code, cfg.expect.is_some()),
        // A truncated reply is cut where the datagram ended: what was read before counts.
        Err((partial, _)) if header.truncated() => partial.reply(code, cfg.expect.is_some()),
        Err((_, why)) => Reply::Malformed(why),
    })
}

/// What a walk of the answer section found so far.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    answers: u16,
    matched: bool,
}

impl Scan {
    fn reply(self, code: ResponseCode, expecting: bool) -> Reply {
        Reply::Answer { code, answers: self.answers, expected: expecting.then_some(self.matched) }
    }
}

const MALFORMED_NAME: &str = "malformed name in the DNS reply";
const TRUNCATED_RECORD: &str = "DNS reply ends inside a record";

/// Walks the question and answer sections of `msg`, counting the answers of type `record`
/// and whether one matches `expect`. Every step consumes bytes of `msg`, so the walk ends
/// within its length whatever the counts say. On an error, the scan up to it as well.
fn scan_answers(
    msg: &[u8],
    questions: u16,
    answers: u16,
    record: DnsRecord,
    expect: Option<&Expect>,
) -> Result<Scan, (Scan, &'static str)> {
    let mut scan = Scan::default();
    let mut pos = Header::len();
    for _ in 0..questions {
        pos = skip_name(msg, pos).ok_or((scan, MALFORMED_NAME))? + 4;
        if pos > msg.len() {
            return Err((scan, TRUNCATED_RECORD));
        }
    }
    let mut name = [0u8; MAX_DNS_NAME_BYTES];
    for _ in 0..answers {
        pos = skip_name(msg, pos).ok_or((scan, MALFORMED_NAME))?;
        let fixed = msg.get(pos..pos + 10).ok_or((scan, TRUNCATED_RECORD))?;
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let start = pos + 10;
        let rdata = msg.get(start..start + rdlen).ok_or((scan, TRUNCATED_RECORD))?;
        pos = start + rdlen;
        if kind != record.code() {
            continue;
        }
        scan.answers = scan.answers.saturating_add(1);
        let hit = match expect {
            None => false,
            Some(Expect::Rdata(want)) => rdata == &want[..],
            Some(Expect::Name(want)) => {
                let at = start + record.name_offset();
                if rdlen < record.name_offset() {
                    return Err((scan, TRUNCATED_RECORD));
                }
                let len = read_name(msg, at, &mut name).ok_or((scan, MALFORMED_NAME))?;
                name[..len] == want[..]
            }
            Some(Expect::Text(want)) => txt_contains(rdata, want),
        };
        scan.matched |= hit;
    }
    Ok(scan)
}

/// The offset after the name at `pos`, without following compression pointers.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0xc0 => return (pos + 2 <= msg.len()).then_some(pos + 2),
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            // 0x40 and 0x80: extended and reserved label types (RFC 6891 dropped the one use).
            _ => return None,
        }
    }
}

/// The name at `pos`, decompressed into `out` in wire form and lower case; its length, or
/// `None` when it is malformed, longer than `MAX_DNS_NAME_BYTES`, or follows more than
/// `MAX_DNS_NAME_POINTERS` pointers (a loop).
fn read_name(msg: &[u8], mut pos: usize, out: &mut [u8; MAX_DNS_NAME_BYTES]) -> Option<usize> {
    let mut len = 0usize;
    let mut pointers = 0usize;
    loop {
        let first = *msg.get(pos)?;
        match first & 0xc0 {
            0xc0 => {
                pointers += 1;
                if pointers > MAX_DNS_NAME_POINTERS {
                    return None;
                }
                let low = *msg.get(pos + 1)?;
                pos = (usize::from(first & 0x3f) << 8) | usize::from(low);
            }
            0x00 => {
                let n = usize::from(first);
                let label = msg.get(pos + 1..pos + 1 + n)?;
                let end = len + 1 + n;
                if end > MAX_DNS_NAME_BYTES {
                    return None;
                }
                out[len] = first;
                for (o, b) in out[len + 1..end].iter_mut().zip(label) {
                    *o = b.to_ascii_lowercase();
                }
                len = end;
                if n == 0 {
                    return Some(len);
                }
                pos += 1 + n;
            }
            _ => return None,
        }
    }
}

/// Whether the character-strings of a TXT record's RDATA, joined, contain `want`.
fn txt_contains(rdata: &[u8], want: &[u8]) -> bool {
    let mut text = [0u8; MAX_DNS_MESSAGE_BYTES];
    let (mut len, mut rest) = (0usize, rdata);
    while let Some((&n, tail)) = rest.split_first() {
        let Some(part) = tail.get(..usize::from(n)) else { return false };
        // RDATA is inside a datagram of at most MAX_DNS_MESSAGE_BYTES, so it fits.
        text[len..len + part.len()].copy_from_slice(part);
        len += part.len();
        rest = &tail[part.len()..];
    }
    !want.is_empty() && text[..len].windows(want.len()).any(|w| w == want)
}

/// The outcome one datagram means for `cfg`'s query with `id` (`None`: a stray, skipped),
/// judged as `check` judges it: the reply parser without a socket, for the fuzz target.
#[doc(hidden)]
pub fn judge_datagram(cfg: &DnsConfig, datagram: &[u8], id: u16) -> Option<Outcome> {
    answer(cfg, datagram, id).map(|reply| judge(reply, 0))
}

/// The outcome a reply means. Pure: the table of cases is tested directly.
fn judge(reply: Reply, latency_us: u32) -> Outcome {
    let fail = |text| Outcome::failure(FailureKind::Dns, latency_us, Detail::Text(text));
    match reply {
        Reply::Answer { code: ResponseCode::NoError, answers, expected: Some(false) }
            if answers > 0 =>
        {
            Outcome::failure(
                FailureKind::Assertion,
                latency_us,
                Detail::Text("no record of that type has the expected value"),
            )
        }
        Reply::Answer { code: ResponseCode::NoError, answers, .. } if answers > 0 => {
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
        Reply::Malformed(why) => {
            Outcome::failure(FailureKind::Protocol, latency_us, Detail::Text(why))
        }
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

    /// A server for `zone.test.` with one record set of every type, answering `count`
    /// queries with what a real authoritative server sends (hickory's encoder compresses the
    /// names, so `expect` is compared across compression pointers).
    fn zone_server(count: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        use hickory_proto::rr::rdata::{CNAME, MX, NS, SRV, TXT};
        let socket = StdUdp::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let n = |s: &str| Name::from_ascii(s).unwrap();
            for _ in 0..count {
                let (len, from) = socket.recv_from(&mut buf).unwrap();
                let query = Message::from_vec(&buf[..len]).unwrap();
                let q = query.query().unwrap().clone();
                let mut reply = Message::new();
                reply
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .add_query(q.clone());
                let rdata: Vec<RData> = match q.query_type() {
                    RecordType::A => vec![
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 2))),
                    ],
                    RecordType::AAAA => vec![RData::AAAA(AAAA("2001:db8::1".parse().unwrap()))],
                    RecordType::CNAME => vec![RData::CNAME(CNAME(n("Target.Zone.Test.")))],
                    RecordType::MX => vec![
                        RData::MX(MX::new(10, n("mx1.zone.test."))),
                        RData::MX(MX::new(20, n("mx2.zone.test."))),
                    ],
                    RecordType::TXT => vec![RData::TXT(TXT::new(vec![
                        "v=spf1 ".to_owned(),
                        "include:mail.example -all".to_owned(),
                    ]))],
                    RecordType::NS => vec![RData::NS(NS(n("ns1.zone.test.")))],
                    RecordType::SRV => {
                        vec![RData::SRV(SRV::new(0, 5, 5060, n("sip.zone.test.")))]
                    }
                    _ => vec![],
                };
                for r in rdata {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 60, r));
                }
                socket.send_to(&reply.to_vec().unwrap(), from).unwrap();
            }
        });
        (addr, handle)
    }

    #[test]
    fn every_record_type_and_expect_against_a_local_server() {
        use DnsRecord::*;
        let cases: &[(DnsRecord, Option<&str>, Option<FailureKind>)] = &[
            (A, None, None),
            (A, Some("192.0.2.2"), None),
            (A, Some("192.0.2.9"), Some(FailureKind::Assertion)),
            (Aaaa, Some("2001:db8::1"), None),
            (Aaaa, Some("2001:db8::2"), Some(FailureKind::Assertion)),
            (Cname, Some("target.zone.test"), None),
            (Cname, Some("other.zone.test."), Some(FailureKind::Assertion)),
            (Mx, Some("MX2.zone.test"), None),
            (Mx, Some("mx3.zone.test"), Some(FailureKind::Assertion)),
            (Txt, Some("include:mail.example"), None),
            (Txt, Some("spf1 include"), None),
            (Txt, Some("v=spf2"), Some(FailureKind::Assertion)),
            (Ns, Some("ns1.zone.test"), None),
            (Ns, None, None),
            (Srv, Some("sip.zone.test"), None),
            (Srv, Some("ns1.zone.test"), Some(FailureKind::Assertion)),
        ];
        let (server, handle) = zone_server(cases.len());
        let cfgs = cases
            .iter()
            .map(|(record, expect, _)| {
                let cfg = DnsConfig::new(server, "www.zone.test", *record).unwrap();
                match expect {
                    Some(e) => cfg.with_expect(e).unwrap(),
                    None => cfg,
                }
            })
            .collect();
        let outcomes = run_checks(cfgs);
        handle.join().unwrap();
        for ((record, expect, kind), o) in cases.iter().zip(&outcomes) {
            assert_eq!(o.failure, *kind, "{record:?} {expect:?}: {o:?}");
            if kind.is_some() {
                assert!(o.describe("x").contains("expected value"), "{}", o.describe("x"));
            }
        }
    }

    #[test]
    fn expect_values_are_checked_for_the_record_type() {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let cfg = |r| DnsConfig::new(server, "x.test", r).unwrap();
        assert!(cfg(DnsRecord::A).with_expect("2001:db8::1").unwrap_err().contains("IPv4"));
        assert!(cfg(DnsRecord::Aaaa).with_expect("10.0.0.1").unwrap_err().contains("IPv6"));
        assert!(cfg(DnsRecord::Cname).with_expect(&"a".repeat(64)).is_err());
        assert!(cfg(DnsRecord::Txt).with_expect("").is_err());
        assert_eq!(DnsRecord::parse("aaaa"), Some(DnsRecord::Aaaa));
        assert_eq!(DnsRecord::parse("SRV"), Some(DnsRecord::Srv));
        assert_eq!(DnsRecord::parse("PTR"), None);
    }

    /// A reply to id 7 for `x.` with one answer whose RDATA (CNAME) is `rdata`.
    fn crafted_reply(answer_name: &[u8], rdata: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'x', 0, 0, 5, 0, 1]); // question x. CNAME IN, at offset 12
        m.extend_from_slice(answer_name);
        m.extend_from_slice(&[0, 5, 0, 1, 0, 0, 0, 60]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
        m
    }

    #[test]
    fn hostile_answers_end_in_a_protocol_failure() {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let cfg = DnsConfig::new(server, "x", DnsRecord::Cname).unwrap().with_expect("y").unwrap();
        let judge = |m: &[u8]| judge_datagram(&cfg, m, 7).expect("not a stray");
        // A well-formed answer pointing back at the question's name: `x.` is not `y.`.
        let o = judge(&crafted_reply(&[0xc0, 12], &[0xc0, 12]));
        assert_eq!(o.failure, Some(FailureKind::Assertion), "{o:?}");
        // RDATA that points at itself (offset 31 = 12 + 7 + 2 + 10): a loop, cut by the bound.
        let o = judge(&crafted_reply(&[0xc0, 12], &[0xc0, 31]));
        assert_eq!(o.failure, Some(FailureKind::Protocol), "{o:?}");
        assert!(o.describe("x").contains("malformed name"), "{}", o.describe("x"));
        // A pointer past the end, a reserved label type, RDATA longer than the datagram.
        for rdata in [&[0xc0, 0xff][..], &[0x40, 0]] {
            let o = judge(&crafted_reply(&[0xc0, 12], rdata));
            assert_eq!(o.failure, Some(FailureKind::Protocol), "{rdata:?}: {o:?}");
        }
        let mut cut = crafted_reply(&[0xc0, 12], &[1, b'y', 0]);
        cut.truncate(cut.len() - 2);
        assert_eq!(judge(&cut).failure, Some(FailureKind::Protocol));
        // The same cut with TC set: truncated, no record read, so NODATA.
        cut[2] |= 0x02;
        assert_eq!(judge(&cut).failure, Some(FailureKind::Dns));
        // A name of 128 one-byte labels (257 bytes in wire form) is longer than a name can be.
        let mut long = Vec::new();
        for _ in 0..128 {
            long.extend_from_slice(&[1, b'a']);
        }
        long.push(0);
        let o = judge(&crafted_reply(&[0xc0, 12], &long));
        assert_eq!(o.failure, Some(FailureKind::Protocol), "{o:?}");
        // The right value, compressed: a match.
        let o = judge(&crafted_reply(&[0xc0, 12], &[1, b'Y', 0]));
        assert!(o.is_success(), "{o:?}");
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
