//! Checks of single manifest values against what the engine accepts when it runs them: the
//! predicates every decoder calls (the general path in `decode`, the JSON fast path in
//! `json_direct`, and any later one), so that a value `cpra run` would refuse is refused at
//! load, at its field's position, by `cpra validate` and `cpra run` alike.
//!
//! What it is for: pure checks of one value (a URL, a duration, a header, a method), which
//! allocate nothing when the value is good, except those that ask the net crate's own
//! constructors (dns and tls names, grpc, udp, docker: they agree with the runtime because
//! they are the runtime's code). What it is not for: reporting (the decoder knows the position
//! and the field path) or checks that read files (the `ca_file` cache in `decode::Interners`).
//!
//! Messages never repeat a value that may hold a secret (a header value, a URL whose path is a
//! Slack or Telegram token): the position and field path say which value is meant.

use crate::limits::{MAX_INTERVAL_MS, MAX_RETRIES, MAX_TIMEOUT_MS, MIN_INTERVAL_MS};

/// What is wrong with a value, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: &'static str,
}

fn problem(message: String, hint: &'static str) -> Problem {
    Problem { message, hint }
}

/// `interval` in ms: what the scheduler's table accepts.
pub fn interval_ms(ms: u64) -> Result<(), Problem> {
    if (u64::from(MIN_INTERVAL_MS)..=u64::from(MAX_INTERVAL_MS)).contains(&ms) {
        return Ok(());
    }
    Err(problem(
        format!(
            "{} is outside what the scheduler runs ({}ms to {})",
            super::duration::format_ms(ms),
            MIN_INTERVAL_MS,
            super::duration::format_ms(u64::from(MAX_INTERVAL_MS))
        ),
        "use an interval within that range",
    ))
}

/// `retries` (in `pulse_check` or its `config`): at most what one check makes.
pub fn retries(retries: u32) -> Result<(), Problem> {
    if retries <= MAX_RETRIES {
        return Ok(());
    }
    Err(problem(
        format!("{retries} retries: CPRA makes at most {MAX_RETRIES} inside one check"),
        "a flapping target is what thresholds are for; the check retries at most that many",
    ))
}

/// `timeout` in ms.
pub fn timeout_ms(ms: u64) -> Result<(), Problem> {
    if ms <= u64::from(MAX_TIMEOUT_MS) {
        return Ok(());
    }
    Err(problem(
        format!(
            "{} is longer than the longest allowed ({})",
            super::duration::format_ms(ms),
            super::duration::format_ms(u64::from(MAX_TIMEOUT_MS))
        ),
        "use a shorter timeout, less than the interval",
    ))
}

/// An `http(s)` URL a probe, notifier or intervention sends to, read with the `url` crate as
/// the actions are: a scheme of http or https, a host, no credentials (the runtime refuses
/// them: write them as a header).
pub fn http_url(text: &str) -> Result<(), Problem> {
    if is_plain_http_url(text) {
        return Ok(());
    }
    // A raw space or a character past ASCII is nearly always a paste accident: the `url`
    // crate would quietly escape it and the engine would request a path nobody wrote.
    if text.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(problem(
            "the URL has a space, a control character or a character past ASCII in it".into(),
            "percent-encode it (a space is %20); write an international host name as xn--...",
        ));
    }
    let url = match url::Url::parse(text) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(problem(
                "not a URL: it has no scheme (http:// or https://)".into(),
                "write the whole URL with its scheme, e.g. https://hooks.example.com/path",
            ))
        }
        Err(e) => {
            return Err(problem(
                format!("not a valid URL: {e}"),
                "write a whole URL, e.g. https://hooks.example.com/path",
            ))
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(problem(
            format!("URL scheme '{}' is not http or https", url.scheme()),
            "write an http:// or https:// URL",
        ));
    }
    // The `url` crate reads `http:///x` as host `x`, as the probes would; a third slash is
    // far more likely a mistake (a missing host) than a way to write one.
    let after_scheme = &text[url.scheme().len()..];
    if url.host_str().is_none_or(str::is_empty) || after_scheme.starts_with(":///") {
        return Err(problem("the URL has no host".into(), "write e.g. https://example.com/path"));
    }
    // rustls verifies https hosts by name and refuses names the `url` crate lets through
    // (`a..b`, `my!host`, labels over 63 bytes): found here, not at the first check.
    if let (true, Some(url::Host::Domain(name))) = (url.scheme() == "https", url.host()) {
        if cpra_net::tls::server_name(name).is_err() {
            return Err(problem(
                format!("host '{name}' is not a name TLS can verify"),
                "write the server's DNS name (letters, digits, '-', dots between labels)",
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(problem(
            "credentials in the URL are not supported".into(),
            "send them in a header instead, e.g. `Authorization: Bearer ${TOKEN}`",
        ));
    }
    Ok(())
}

/// Whether `text` is an http(s) URL written the plain way nearly every URL of a big fleet is
/// (lower-case scheme, a lower-case host name or a dotted IPv4 address, an optional port, a path
/// of unreserved characters): those the `url` crate accepts, answered without building a `Url`
/// (which allocates; this runs for every http monitor of a million-monitor load). Anything
/// else, IPv6, percent escapes and odd hosts included, returns false and is read by the `url`
/// crate; `plain_urls_are_urls_the_url_crate_accepts` holds the two together.
fn is_plain_http_url(text: &str) -> bool {
    let b = text.as_bytes();
    let rest = if let Some(r) = b.strip_prefix(b"http://") {
        r
    } else if let Some(r) = b.strip_prefix(b"https://") {
        r
    } else {
        return false;
    };
    // One pass, byte by byte: host, then an optional `:port`, then the path and query.
    let mut i = 0;
    while i < rest.len() && !matches!(rest[i], b':' | b'/' | b'?') {
        i += 1;
    }
    if !(is_plain_host_name(&rest[..i]) || is_plain_ipv4(&rest[..i])) {
        return false;
    }
    if rest.get(i) == Some(&b':') {
        i += 1;
        let digits = i;
        let mut port = 0u32;
        while i < rest.len() && rest[i].is_ascii_digit() && i - digits < 5 {
            port = port * 10 + u32::from(rest[i] - b'0');
            i += 1;
        }
        if i == digits || port > u32::from(u16::MAX) {
            return false;
        }
    }
    // After the authority only `/` or `?` may come (`http://h:80x` is not a port).
    if i < rest.len() && !matches!(rest[i], b'/' | b'?') {
        return false;
    }
    rest[i..].iter().all(|&c| PLAIN_PATH_BYTES[usize::from(c)])
}

/// Path and query bytes the `url` crate keeps as they are: unreserved, sub-delimiters, `/`,
/// `?`, `:`, `@` (no `%`, `#`, `\\`, spaces or bytes past ASCII, which it escapes or reads).
const PLAIN_PATH_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'?'
                    | b'='
                    | b'&'
                    | b'+'
                    | b':'
                    | b'@'
                    | b'!'
                    | b'$'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b','
                    | b';'
            );
        c += 1;
    }
    table
};

/// Lower-case labels of letters, digits and inner `-`, the last one with a letter (a last
/// label of digits makes the `url` crate read the host as an IPv4 address) and not `0x...`
/// (a hexadecimal number to it), no `xn--` label (which it checks as IDNA).
fn is_plain_host_name(host: &[u8]) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let mut start = 0;
    let mut last_ok = false;
    for end in 0..=host.len() {
        let c = host.get(end).copied().unwrap_or(b'.');
        if c != b'.' {
            if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
                return false;
            }
            continue;
        }
        let label = &host[start..end];
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
            || label.starts_with(b"xn--")
        {
            return false;
        }
        last_ok = !label.starts_with(b"0x") && label.iter().any(u8::is_ascii_lowercase);
        start = end + 1;
    }
    last_ok
}

/// Four decimal numbers up to 255 without leading zeros (which the `url` crate reads as
/// octal).
fn is_plain_ipv4(host: &[u8]) -> bool {
    let mut parts = 0;
    for part in host.split(|&c| c == b'.') {
        parts += 1;
        if part.is_empty()
            || part.len() > 3
            || (part.len() > 1 && part[0] == b'0')
            || !part.iter().all(u8::is_ascii_digit)
        {
            return false;
        }
        let n = part.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
        if n > 255 {
            return false;
        }
    }
    parts == 4
}

/// An HTTP token (RFC 9110): what a method or a header name may be made of.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A request method.
pub fn method(m: &str) -> Result<(), Problem> {
    if is_token(m) {
        return Ok(());
    }
    Err(problem(
        format!("method '{m}' is not an HTTP method"),
        "use a method such as GET, HEAD, POST or PUT",
    ))
}

/// A header name: a token, and not one CPRA sets itself.
pub fn header_name(name: &str) -> Result<(), Problem> {
    if !is_token(name) {
        return Err(problem(
            format!("header name '{}' is not an HTTP token", name.escape_debug()),
            "header names are letters, digits and !#$%&'*+-.^_`|~ (no spaces or ':')",
        ));
    }
    if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("content-length") {
        return Err(problem(
            format!("header '{name}' is set by CPRA"),
            "remove it: CPRA writes Connection and Content-Length itself",
        ));
    }
    Ok(())
}

/// A header value: no byte HTTP forbids (CR, LF, NUL and other control characters but tab),
/// which would end the header early and let a value inject others.
pub fn header_value(value: &str) -> Result<(), Problem> {
    match value.bytes().find(|&b| !(b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)) {
        None => Ok(()),
        Some(b'\r' | b'\n') => Err(problem(
            "header value has a line break (CR or LF) in it".into(),
            "write the value on one line; in YAML, a `|` block keeps its line breaks",
        )),
        Some(b) => Err(problem(
            format!("header value has the control byte {b:#04x} in it"),
            "remove control characters from the value",
        )),
    }
}

/// A `cooldown` (a monitor's or a code's): at most what the state machine keeps.
pub fn cooldown_ms(ms: u64) -> Result<u32, Problem> {
    use crate::state::MAX_COOLDOWN_MS;
    match u32::try_from(ms) {
        Ok(ms) if ms <= MAX_COOLDOWN_MS => Ok(ms),
        _ => Err(problem(
            format!(
                "{} is longer than {}, the longest cooldown CPRA keeps",
                super::duration::format_ms(ms),
                super::duration::format_ms(u64::from(MAX_COOLDOWN_MS))
            ),
            "use at most 8h (0s: no cooldown)",
        )),
    }
}

/// One `expected_headers` entry of an http pulse: the runtime's own compiler.
pub fn expected_header(name: &str, value: &str) -> Result<(), Problem> {
    cpra_net::http_response::ExpectedHeader::compile(name, value).map(drop).map_err(|m| {
        problem(m, "give the exact value, or a regular expression between slashes: /^2\\./")
    })
}

/// A `dns` pulse's `server`, as the runtime reads it (`ip` or `ip:port`).
pub fn dns_server(server: &str) -> Result<(), Problem> {
    match crate::shard::target::dns_server(Some(server)) {
        Ok(_) => Ok(()),
        Err(message) => {
            Err(problem(message, "write an IP address, e.g. 10.0.0.53 or 10.0.0.53:53"))
        }
    }
}

/// Where the pulse checks below point the runtime's own constructors: only the value checked
/// matters to them, not the address.
const ANY_ADDR: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 53);

/// A `udp` pulse's `payload`: it must fit in one datagram.
pub fn udp_payload(payload: &str) -> Result<(), Problem> {
    cpra_net::udp::UdpConfig::new(ANY_ADDR, payload.as_bytes())
        .map(|_| ())
        .map_err(|m| problem(m, "send a shorter payload"))
}

/// A `grpc` pulse's `host`, which is also the request's authority.
pub fn grpc_authority(host: &str) -> Result<(), Problem> {
    cpra_net::grpc::GrpcConfig::new(ANY_ADDR, host, "")
        .map(|_| ())
        .map_err(|m| problem(m, "write a host name or IP address, without spaces"))
}

/// A `grpc` pulse's `service`.
pub fn grpc_service(service: &str) -> Result<(), Problem> {
    cpra_net::grpc::GrpcConfig::new(ANY_ADDR, "localhost", service)
        .map(|_| ())
        .map_err(|m| problem(m, "write the service's full name, e.g. grpc.health.v1.Health"))
}

/// A `dns` pulse's `host`: the name the query asks for.
pub fn dns_name(host: &str) -> Result<(), Problem> {
    use cpra_net::dns::{DnsConfig, DnsRecord};
    DnsConfig::new(ANY_ADDR, host, DnsRecord::A)
        .map(|_| ())
        .map_err(|m| problem(m, "write a DNS name, e.g. api.example.com"))
}

/// A `dns` pulse's `expect`, for its `record_type`: the runtime's own parser.
pub fn dns_expect(record: cpra_net::dns::DnsRecord, expect: &str) -> Result<(), Problem> {
    cpra_net::dns::check_expect(record, expect).map_err(|m| {
        problem(m, "an address for A and AAAA, a name for CNAME, NS, MX and SRV, text for TXT")
    })
}

/// The name a `tls` pulse verifies (`server_name`, else `host`).
pub fn tls_server_name(name: &str) -> Result<(), Problem> {
    cpra_net::tls::server_name(name)
        .map(|_| ())
        .map_err(|e| problem(e.0, "write a DNS name or an IP address"))
}

/// A docker pulse's container name or id, and the engine it is asked of: the runtime's own
/// constructor, with the `DOCKER_HOST` the runtime will read.
pub fn docker_container(container: &str) -> Result<(), Problem> {
    let docker_host = std::env::var("DOCKER_HOST").ok();
    cpra_net::docker::DockerConfig::from_docker_host(docker_host.as_deref(), container)
        .map(|_| ())
        .map_err(|m| problem(m, "use the name or id `docker ps` shows, on a unix:// engine"))
}

/// The system's DNS server, which a `dns` pulse without `server` asks: read once per process
/// (a fleet of DNS monitors reads `/etc/resolv.conf` once), as the runtime reads it.
pub fn dns_system_server() -> Result<(), Problem> {
    static SYSTEM: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    SYSTEM
        .get_or_init(|| cpra_net::dns::system_nameserver().map(|_| ()))
        .clone()
        .map_err(|m| problem(m, "give the pulse a `server` (an IP address, e.g. 10.0.0.53)"))
}

/// What a request line and CPRA's own headers can add to a request beyond the URL twice
/// (the path in the request line, the host in `Host`) and the method: " HTTP/1.1\r\n", the
/// port, `User-Agent: cpra`, `Connection: keep-alive`, `Content-Length: <20 digits>` and the
/// blank line come to 96 bytes; 128 leaves room.
const REQUEST_OVERHEAD_BYTES: usize = 128;

/// An http request as the runtime writes it must fit its bound on a request
/// (`cpra_net::limits::MAX_REQUEST_BYTES`). Counted from above: the URL as if every byte were
/// percent-escaped, and [`REQUEST_OVERHEAD_BYTES`], so a request accepted here is never
/// refused when sent (one just under the bound may be refused here and not there).
pub fn request_size(
    url: &str,
    method: &str,
    body: Option<&str>,
    headers: &[(String, String)],
) -> Result<(), Problem> {
    let headers: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let line = method.len() + 2 * 3 * url.len() + REQUEST_OVERHEAD_BYTES;
    let bytes = body.map_or(0, str::len) + headers + line;
    let max = cpra_net::limits::MAX_REQUEST_BYTES;
    if bytes <= max {
        return Ok(());
    }
    Err(problem(
        format!(
            "the request could be {bytes} bytes with its URL, headers and body, more than the {} \
             a request may take",
            cpra_net::limits::Size::bytes(max)
        ),
        "send a shorter body or fewer headers",
    ))
}

/// `body_contains`: the runtime refuses an empty one (it would match every body).
pub fn body_contains(text: &str) -> Result<(), Problem> {
    if text.is_empty() {
        return Err(problem(
            "'body_contains' is empty".into(),
            "remove it, or give the text the body must contain",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_the_actions_read_them() {
        assert!(http_url("https://hooks.slack.com/services/T0/B0/x").is_ok());
        assert!(http_url("http://127.0.0.1:8080").is_ok());
        assert!(http_url("http://[::1]:9/a?b#c").is_ok());
        let e = http_url("hooks.slack.com/services/T0/B0/secret").unwrap_err();
        assert!(e.message.contains("no scheme"), "{e:?}");
        assert!(!e.message.contains("secret"));
        assert!(http_url("ftp://x/y").unwrap_err().message.contains("'ftp'"));
        assert!(http_url("http:///x").unwrap_err().message.contains("no host"));
        assert!(http_url("http://h:99999/").unwrap_err().message.contains("not a valid URL"));
        for bad_tls_name in ["https://a..b/", "https://my!host/"] {
            let e = http_url(bad_tls_name).unwrap_err();
            assert!(e.message.contains("TLS"), "{bad_tls_name}: {}", e.message);
        }
        assert!(http_url("https://[::1]:8443/").is_ok(), "an IP is verified as an IP");
        assert!(http_url("https://u:p@h/").unwrap_err().message.contains("credentials"));
        assert!(http_url("not a url").is_err());
        assert!(http_url("http://h/a b").unwrap_err().message.contains("a space"));
        assert!(http_url("http://bücher.example/").is_err());
        assert!(http_url("HTTP://example.com/").is_ok(), "the scheme's case does not matter");
    }

    #[test]
    fn urls_this_accepts_the_runtime_accepts() {
        for url in [
            "https://hooks.slack.com/services/T0/B0/x",
            "http://127.0.0.1:8080",
            "http://[::1]:9/a?b#c",
            "HTTPS://Example.COM/",
            "http://h?q",
            "http://h:0/",
        ] {
            assert!(http_url(url).is_ok(), "{url}");
            let pulse = crate::manifest::Pulse::Http(crate::manifest::HttpPulse {
                url: url.into(),
                method: std::sync::Arc::new("GET".into()),
                headers: std::sync::Arc::default(),
                expected_status: std::sync::Arc::default(),
                insecure_skip_verify: false,
                extra: None,
            });
            if url.starts_with("http") {
                assert!(crate::shard::target::host_of(&pulse).is_ok(), "{url}");
            }
            assert!(crate::actions::target::Target::parse(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn plain_urls_are_urls_the_url_crate_accepts() {
        let mut rng = crate::manifest::gen::Rng(0x0c1a);
        let pieces = [
            "http://", "https://", "HTTP://", "a", "z9", "-", ".", "..", "xn--", "0x", "1", "255",
            "256", "01", "0", ":", "8080", "65535", "65536", "/", "?", "=", "&", "%41", " ", "[",
            "]", "::1", "#", "@", "é", "\\", "com", "example", "_",
        ];
        let mut plain = 0;
        for _ in 0..20_000 {
            let n = 1 + rng.next() % 8;
            let mut url =
                String::from(if rng.next().is_multiple_of(2) { "http://" } else { "https://" });
            for _ in 0..n {
                url.push_str(pieces[(rng.next() % pieces.len() as u64) as usize]);
            }
            if is_plain_http_url(&url) {
                plain += 1;
                let parsed = url::Url::parse(&url);
                assert!(parsed.is_ok(), "{url}: {parsed:?}");
                assert!(parsed.unwrap().host_str().is_some_and(|h| !h.is_empty()), "{url}");
            }
        }
        // The test is only worth something if many URLs took the plain way.
        assert!(plain > 500, "{plain}");
        for url in ["http://10.0.0.1:8080/health", "https://api.example.com/v1/x?a=b&c=d"] {
            assert!(is_plain_http_url(url), "{url}");
        }
        for url in ["http://10.0.0.256/", "http://010.0.0.1/", "http://h:99999/", "http://1.2.3/"] {
            assert!(!is_plain_http_url(url), "{url}");
        }
    }

    #[test]
    fn intervals_and_timeouts_stay_within_the_scheduler_bounds() {
        assert!(interval_ms(1).is_ok());
        assert!(interval_ms(744 * 3_600_000).is_ok());
        let e = interval_ms(745 * 3_600_000).unwrap_err();
        assert!(e.message.contains("745h") && e.message.contains("744h"), "{e:?}");
        assert!(interval_ms(0).is_err());
        assert!(timeout_ms(u64::from(MAX_TIMEOUT_MS)).is_ok());
        assert!(timeout_ms(u64::from(MAX_TIMEOUT_MS) + 1).is_err());
    }

    #[test]
    fn headers_refuse_what_http_forbids() {
        assert!(header_name("X-Token").is_ok());
        assert!(header_name("X Token").is_err());
        assert!(header_name("").is_err());
        assert!(header_name("content-length").unwrap_err().message.contains("set by CPRA"));
        assert!(header_value("Bearer abc\tdef é").is_ok());
        let e = header_value("Bearer s3cret\r\nX-Evil: 1").unwrap_err();
        assert!(e.message.contains("CR or LF") && !e.message.contains("s3cret"), "{e:?}");
        assert!(header_value("a\0b").unwrap_err().message.contains("0x00"));
        assert!(method("GET").is_ok());
        assert!(method("GE T").is_err());
    }
}
