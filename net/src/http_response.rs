//! Pure decisions about an HTTP/1.1 response: parsing the head with httparse, the body's
//! framing, in-place chunked decoding, the success rule for the status code, and the
//! `expected_headers` assertions.
//!
//! Nothing here touches a socket, so every rule is tested with byte strings.

use crate::limits::{MAX_HEADERS, MAX_HEADER_REGEX_BYTES};
use crate::outcome::static_name;

/// How the body that follows the head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD request, 1xx, 204, 304).
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the server closes.
    UntilClose,
}

/// What the head says, once parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, blank line included; the body starts right after.
    pub len: usize,
    pub framing: Framing,
    /// The server will close after this response (`Connection: close` or HTTP/1.0).
    pub closes: bool,
}

/// Why a head could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// More than `MAX_HEADERS` headers.
    TooManyHeaders,
    /// Not an HTTP/1.x response head, or a bad Content-Length.
    Invalid(&'static str),
}

/// Parses `buf` as a response head. `Ok(None)` means it is not complete yet.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(_) => return Err(HeadError::Invalid("unparsable HTTP response head")),
    };
    let status = response.code.ok_or(HeadError::Invalid("no status code"))?;
    let mut closes = response.version == Some(0);
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(HeadError::Invalid("bad Content-Length"))?;
            if content_length.is_some_and(|prev| prev != value) {
                return Err(HeadError::Invalid("conflicting Content-Length headers"));
            }
            content_length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= header_has_token(header.value, b"chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            if header_has_token(header.value, b"close") {
                closes = true;
            } else if header_has_token(header.value, b"keep-alive") {
                closes = false;
            }
        }
    }
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        // RFC 9112 6.3: chunked wins over Content-Length.
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head { status, len, framing, closes }))
}

fn header_has_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// The success rule: the status is in `expected` or, when `expected` is empty, any 2xx.
pub fn status_ok(status: u16, expected: &[u16]) -> bool {
    if expected.is_empty() {
        (200..300).contains(&status)
    } else {
        expected.contains(&status)
    }
}

/// A status worth retrying (Go CPRA): 429 or any 5xx.
pub fn status_retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// What an `expected_headers` value means: `/.../` is a regular expression searched in the
/// header's value (anchor it with `^` and `$` for a whole match); anything else is the exact
/// value, compared byte for byte after the surrounding spaces HTTP allows are trimmed.
#[derive(Clone, Debug)]
pub struct ExpectedHeader {
    /// For messages; kept for the life of the process (see [`static_name`]), or a stand-in
    /// past its bound.
    pub name: &'static str,
    /// What response headers are matched against: always the real name, so an assertion
    /// holds or fails by its own header whatever `name` says.
    match_name: Box<str>,
    /// Exact values are compiled as `^escaped$`, so every assertion is one regex match.
    value: regex::bytes::Regex,
}

/// Named when more distinct header names are asserted on than the process keeps.
const UNNAMED_HEADER: &str = "(one of expected_headers)";

impl ExpectedHeader {
    /// Compiles one entry; the error says what is wrong with it (never repeating the value,
    /// which may be a credential, unless it is a pattern that does not compile).
    pub fn compile(name: &str, value: &str) -> Result<ExpectedHeader, String> {
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(format!("header name '{}' is not an HTTP token", name.escape_debug()));
        }
        let pattern = match value.strip_prefix('/').and_then(|v| v.strip_suffix('/')) {
            Some(re) if value.len() >= 2 => re.to_owned(),
            _ => format!("^{}$", regex::escape(value.trim_matches([' ', '\t']))),
        };
        let value = regex::bytes::RegexBuilder::new(&pattern)
            .size_limit(MAX_HEADER_REGEX_BYTES)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or("");
                let first = last.strip_prefix("error: ").unwrap_or(last).to_owned();
                format!("expected value of header '{name}' is a bad regular expression: {first}")
            })?;
        Ok(ExpectedHeader {
            name: static_name(name).unwrap_or(UNNAMED_HEADER),
            match_name: name.into(),
            value,
        })
    }
}

/// The first of `expected` that the response head `head` does not satisfy, as its name and
/// whether it was missing (`Ok` when all hold). A header given several times holds when one
/// of its values matches. `head` is a whole head that `parse_head` accepted.
pub fn check_headers(head: &[u8], expected: &[ExpectedHeader]) -> Result<(), (&'static str, bool)> {
    if expected.is_empty() {
        return Ok(());
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    if !matches!(response.parse(head), Ok(httparse::Status::Complete(_))) {
        // `parse_head` accepted these bytes; a head that does not parse twice is no header.
        return Err((expected[0].name, true));
    }
    for want in expected {
        let (mut present, mut matched) = (false, false);
        for h in response.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(&want.match_name)) {
            present = true;
            if want.value.is_match(h.value.trim_ascii()) {
                matched = true;
                break;
            }
        }
        if !matched {
            return Err((want.name, !present));
        }
    }
    Ok(())
}

/// Progress of an in-place chunked decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dechunked {
    /// Decoded body bytes now at the front of the buffer.
    pub body_len: usize,
    /// Raw bytes consumed (decoding can resume from here when more arrive).
    pub consumed: usize,
    /// The last (zero-size) chunk and its trailer were seen.
    pub complete: bool,
}

/// Decodes as many whole chunks of `buf[from..]` as are present, moving chunk data down to
/// `buf[body_len..]`. Resumable: call again with the returned `consumed` and `body_len` after
/// appending bytes. Err on a malformed chunk header.
pub fn dechunk(
    buf: &mut [u8],
    mut consumed: usize,
    mut body_len: usize,
) -> Result<Dechunked, &'static str> {
    debug_assert!(body_len <= consumed && consumed <= buf.len());
    loop {
        let rest = &buf[consumed..];
        let (header_len, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => {
                return Ok(Dechunked { body_len, consumed, complete: false })
            }
            Err(_) => return Err("malformed chunk size"),
        };
        if size == 0 {
            // Last chunk: then optional trailers and a blank line. We accept only no trailers
            // (what health endpoints send); with trailers the body is still complete for the
            // assertion, but the connection is not reused.
            let after = &rest[header_len..];
            if after.starts_with(b"\r\n") {
                consumed += header_len + 2;
                return Ok(Dechunked { body_len, consumed, complete: true });
            }
            if after.len() < 2 {
                return Ok(Dechunked { body_len, consumed, complete: false });
            }
            return Err("chunked trailers are not supported");
        }
        let size = usize::try_from(size).map_err(|_| "chunk too large")?;
        let need =
            header_len.checked_add(size).and_then(|n| n.checked_add(2)).ok_or("chunk too large")?;
        if rest.len() < need {
            return Ok(Dechunked { body_len, consumed, complete: false });
        }
        if &rest[header_len + size..need] != b"\r\n" {
            return Err("chunk not followed by CRLF");
        }
        let start = consumed + header_len;
        buf.copy_within(start..start + size, body_len);
        body_len += size;
        consumed += need;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_framings() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.framing, h.closes), (200, Framing::Length(5), false));
        assert_eq!(h.len, 38);
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((h.framing, h.closes), (Framing::UntilClose, true));
        let h = parse_head(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.closes), (Framing::Empty, true));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Empty);
    }

    #[test]
    fn partial_and_bad_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false), Ok(None));
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", false),
            Err(HeadError::Invalid(_))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false),
            Err(HeadError::Invalid("bad Content-Length"))
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..(MAX_HEADERS + 1) {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many, false), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn status_rules() {
        assert!(status_ok(204, &[]));
        assert!(!status_ok(301, &[]));
        assert!(status_ok(301, &[301, 302]));
        assert!(!status_ok(200, &[301]));
        assert!(status_retryable(429) && status_retryable(503) && !status_retryable(404));
    }

    #[test]
    fn dechunk_whole_and_resumed() {
        let mut raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec();
        let d = dechunk(&mut raw, 0, 0).unwrap();
        assert!(d.complete);
        assert_eq!(&raw[..d.body_len], b"hello world");
        assert_eq!(d.consumed, raw.len());

        // Split mid-chunk: decode what is whole, resume after more bytes arrive.
        let full = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let mut buf = full[..12].to_vec();
        let d = dechunk(&mut buf, 0, 0).unwrap();
        assert_eq!((d.body_len, d.complete), (5, false));
        buf.extend_from_slice(&full[12..]);
        let d = dechunk(&mut buf, d.consumed, d.body_len).unwrap();
        assert!(d.complete);
        assert_eq!(&buf[..d.body_len], b"hello world");
    }

    #[test]
    fn expected_headers_exact_and_regex() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
            X-Version:  2.4.1 \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n";
        let e = |n: &str, v: &str| ExpectedHeader::compile(n, v).unwrap();
        assert_eq!(check_headers(head, &[e("x-version", "2.4.1")]), Ok(()));
        assert_eq!(check_headers(head, &[e("X-Version", "2.4")]), Err(("X-Version", false)));
        assert_eq!(check_headers(head, &[e("Content-Type", "/^application/json/")]), Ok(()));
        assert_eq!(
            check_headers(head, &[e("Content-Type", "/xml/")]),
            Err(("Content-Type", false))
        );
        // Either of two values of a repeated header.
        assert_eq!(check_headers(head, &[e("Set-Cookie", "b=2")]), Ok(()));
        assert_eq!(
            check_headers(head, &[e("X-Version", "/2/"), e("X-Missing", "1")]),
            Err(("X-Missing", true))
        );
        // A regex metacharacter in an exact value is literal.
        assert!(ExpectedHeader::compile("A", "1.2").unwrap().value.is_match(b"1.2"));
        assert!(!ExpectedHeader::compile("A", "1.2").unwrap().value.is_match(b"132"));
        assert!(ExpectedHeader::compile("A", "/(/").unwrap_err().contains("regular expression"));
        assert!(ExpectedHeader::compile("Bad Name", "1").unwrap_err().contains("token"));
        assert!(ExpectedHeader::compile("A", "/a{1000}{1000}/").is_err());
    }

    #[test]
    fn an_assertion_past_the_kept_names_still_matches_its_own_header() {
        // Past MAX_ASSERTED_HEADER_NAMES the message names no header; the header matched is
        // still the real one (it was the stand-in name once, and every check failed).
        let head = b"HTTP/1.1 200 OK\r\nX-Version: 2\r\n\r\n";
        let past_bound = |value: &str| ExpectedHeader {
            name: UNNAMED_HEADER,
            ..ExpectedHeader::compile("X-Version", value).unwrap()
        };
        assert_eq!(check_headers(head, &[past_bound("2")]), Ok(()));
        assert_eq!(check_headers(head, &[past_bound("3")]), Err((UNNAMED_HEADER, false)));
    }

    #[test]
    fn dechunk_rejects_garbage() {
        assert!(dechunk(&mut b"zz\r\nhello\r\n".to_vec(), 0, 0).is_err());
        assert!(dechunk(&mut b"5\r\nhelloXX0\r\n\r\n".to_vec(), 0, 0).is_err());
    }
}
