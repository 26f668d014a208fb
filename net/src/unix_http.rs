//! HTTP/1.1 over a unix socket: one request on a new connection, one bounded response, all
//! under a deadline. The one client for servers that listen on a socket path, today the Docker
//! engine: the `docker` pulse (inspect) and the engine's docker intervention (restart).
//!
//! What it is for: a complete request written by the caller (`Connection: close`), answered
//! with a status and a body of at most [`MAX_UNIX_BODY_BYTES`]. What it is not for: TCP or TLS
//! (that is `http.rs`, with pooling and retries), keep-alive, or streaming bodies.
//!
//! The head is parsed and the body de-chunked by `http_response.rs`, the same code the
//! http/https pulse uses.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::UnixStream;

use crate::deadline::until;
use crate::http_response::{dechunk, parse_head, Framing, HeadError};
use crate::limits::{Size, MAX_HEADERS, MAX_HEADER_BLOCK_BYTES, MAX_UNIX_BODY_BYTES};

/// Bytes asked for per socket read: a page-sized step, so a small response needs one read and
/// the buffer grows only as far as the response does. A step, not a bound.
const READ_STEP_BYTES: usize = 8 * 1024;

/// The start of the message for a head over [`MAX_HEADER_BLOCK_BYTES`]; the bound follows.
pub const HEAD_TOO_LARGE: &str = "response head larger than";
/// The start of the message for a body over [`MAX_UNIX_BODY_BYTES`]; the bound follows.
pub const BODY_TOO_LARGE: &str = "response body larger than";
/// The start of the message for more than [`MAX_HEADERS`] headers; the bound follows.
pub const TOO_MANY_HEADERS: &str = "more response headers than";

/// A complete response: status and (de-chunked) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why an exchange failed, and how far it got (whether the server may have acted on it).
#[derive(Debug)]
pub enum UnixHttpError {
    /// Connecting failed: nothing was sent.
    Connect(io::Error),
    /// Writing the request failed: the server did not get all of it.
    Write(io::Error),
    /// Reading the response failed after the request was sent.
    Read(io::Error),
    /// The answer is not a usable HTTP/1.1 response.
    Protocol(&'static str),
    /// The head exceeded [`MAX_HEADER_BLOCK_BYTES`].
    HeadTooLarge,
    /// The body exceeded [`MAX_UNIX_BODY_BYTES`].
    BodyTooLarge,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// The deadline passed; `sent` says whether the request had been written by then.
    Timeout { sent: bool },
}

impl UnixHttpError {
    /// Whether the server may have received the request (and acted on it).
    pub fn request_sent(&self) -> bool {
        match self {
            UnixHttpError::Connect(_) | UnixHttpError::Write(_) => false,
            UnixHttpError::Timeout { sent } => *sent,
            _ => true,
        }
    }
}

impl fmt::Display for UnixHttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixHttpError::Connect(e) => write!(f, "cannot connect: {e}"),
            UnixHttpError::Write(e) => write!(f, "writing the request: {e}"),
            UnixHttpError::Read(e) => write!(f, "reading the response: {e}"),
            UnixHttpError::Protocol(text) => f.write_str(text),
            UnixHttpError::HeadTooLarge => {
                write!(f, "{HEAD_TOO_LARGE} {}", Size::bytes(MAX_HEADER_BLOCK_BYTES))
            }
            UnixHttpError::BodyTooLarge => {
                write!(f, "{BODY_TOO_LARGE} {}", Size::bytes(MAX_UNIX_BODY_BYTES))
            }
            UnixHttpError::TooManyHeaders => write!(f, "{TOO_MANY_HEADERS} {MAX_HEADERS}"),
            UnixHttpError::Timeout { sent: false } => {
                f.write_str("no connection before the deadline (request not sent)")
            }
            UnixHttpError::Timeout { sent: true } => {
                f.write_str("no complete response before the deadline")
            }
        }
    }
}

impl std::error::Error for UnixHttpError {}

/// Sends `request` (complete, with `Connection: close`) on a new connection to `socket` and
/// reads the response, all before `deadline`. Must run on a glommio executor.
pub async fn exchange(
    socket: &Path,
    request: &[u8],
    deadline: Instant,
) -> Result<UnixResponse, UnixHttpError> {
    let sent = Cell::new(false);
    match until(deadline, exchange_unbounded(socket, request, &sent)).await {
        Some(result) => result,
        None => Err(UnixHttpError::Timeout { sent: sent.get() }),
    }
}

async fn exchange_unbounded(
    socket: &Path,
    request: &[u8],
    sent: &Cell<bool>,
) -> Result<UnixResponse, UnixHttpError> {
    let mut stream =
        UnixStream::connect(socket).await.map_err(|e| UnixHttpError::Connect(e.into()))?;
    stream.write_all(request).await.map_err(UnixHttpError::Write)?;
    sent.set(true);
    let mut reader = Reader { stream, buf: Vec::with_capacity(READ_STEP_BYTES) };

    // The head: never more than MAX_HEADER_BLOCK_BYTES read while looking for its end.
    let head = loop {
        let n = reader.read_up_to(MAX_HEADER_BLOCK_BYTES).await?;
        match parse_head(&reader.buf, false) {
            Ok(Some(head)) => break head,
            Ok(None) if reader.buf.len() >= MAX_HEADER_BLOCK_BYTES => {
                return Err(UnixHttpError::HeadTooLarge)
            }
            Ok(None) if n == 0 => {
                return Err(UnixHttpError::Protocol("connection closed inside the response head"))
            }
            Ok(None) => {}
            Err(HeadError::TooManyHeaders) => return Err(UnixHttpError::TooManyHeaders),
            Err(HeadError::Invalid(text)) => return Err(UnixHttpError::Protocol(text)),
        }
    };
    debug_assert!(head.len <= MAX_HEADER_BLOCK_BYTES);
    let start = head.len;
    // One byte past the bound is read, so "exactly at the bound" and "over it" differ.
    let most = start + MAX_UNIX_BODY_BYTES + 1;

    let body_len = match head.framing {
        Framing::Empty => 0,
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_UNIX_BODY_BYTES {
                return Err(UnixHttpError::BodyTooLarge);
            }
            while reader.buf.len() < start + n {
                if reader.read_up_to(start + n).await? == 0 {
                    return Err(UnixHttpError::Protocol(
                        "connection closed before the end of the body",
                    ));
                }
            }
            n
        }
        Framing::Chunked => {
            // Chunk framing counts against the bound: a few bytes per chunk.
            let (mut consumed, mut body_len) = (0, 0);
            loop {
                let progress = dechunk(&mut reader.buf[start..], consumed, body_len)
                    .map_err(UnixHttpError::Protocol)?;
                (consumed, body_len) = (progress.consumed, progress.body_len);
                if progress.complete {
                    break body_len;
                }
                if reader.buf.len() - start > MAX_UNIX_BODY_BYTES {
                    return Err(UnixHttpError::BodyTooLarge);
                }
                if reader.read_up_to(most).await? == 0 {
                    return Err(UnixHttpError::Protocol("connection closed inside a chunked body"));
                }
            }
        }
        Framing::UntilClose => {
            while reader.read_up_to(most).await? > 0 {}
            if reader.buf.len() - start > MAX_UNIX_BODY_BYTES {
                return Err(UnixHttpError::BodyTooLarge);
            }
            reader.buf.len() - start
        }
    };
    let mut body = reader.buf;
    body.truncate(start + body_len);
    body.drain(..start);
    Ok(UnixResponse { status: head.status, body })
}

struct Reader {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Reader {
    /// Reads once, growing the buffer by at most a step and never past `limit` bytes in all;
    /// returns the bytes read (0: the server closed, or `limit` is reached).
    async fn read_up_to(&mut self, limit: usize) -> Result<usize, UnixHttpError> {
        let filled = self.buf.len();
        if filled >= limit {
            return Ok(0);
        }
        self.buf.resize(filled + READ_STEP_BYTES.min(limit - filled), 0);
        let n = self.stream.read(&mut self.buf[filled..]).await;
        let n = n.map_err(|e| {
            self.buf.truncate(filled);
            UnixHttpError::Read(e)
        })?;
        self.buf.truncate(filled + n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::time::Duration;

    /// A server on a unix socket in `dir` that reads one request head, then writes `response`
    /// (ignoring a client that hangs up early, as it does at a bound).
    fn server(dir: &Path, response: Vec<u8>) -> (PathBuf, std::thread::JoinHandle<String>) {
        let path = dir.join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let req = crate::test_server::read_head(&mut conn).expect("a request head");
            let _ = conn.write_all(&response);
            String::from_utf8(req).unwrap()
        });
        (path, handle)
    }

    const REQUEST: &[u8] = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n";

    fn run(response: Vec<u8>) -> Result<UnixResponse, UnixHttpError> {
        let dir = tempfile::tempdir().unwrap();
        let (socket, srv) = server(dir.path(), response);
        let result = crate::test_executor::run(move || async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            exchange(&socket, REQUEST, deadline).await
        });
        assert!(srv.join().unwrap().starts_with("GET /_ping HTTP/1.1\r\n"));
        result
    }

    fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in body.chunks(chunk) {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[test]
    fn every_framing_gives_the_body() {
        let body = br#"{"Running":true}"#;
        let with_length =
            [format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(), body]
                .concat();
        let until_close = [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), body].concat();
        for response in [with_length, until_close, chunked(body, 5)] {
            let r = run(response).unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, body.as_slice()));
        }
        let r = run(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()).unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
        // A body close to the bound, in many chunks (framing counts against it), is accepted.
        let r = run(chunked(&vec![b'a'; MAX_UNIX_BODY_BYTES - 4096], 4096)).unwrap();
        assert_eq!(r.body.len(), MAX_UNIX_BODY_BYTES - 4096);
    }

    #[test]
    fn oversized_head_is_refused_naming_the_bound() {
        // One long header: this test is about bytes, not the header count.
        let mut head = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        head.resize(MAX_HEADER_BLOCK_BYTES + 10, b'b');
        head.extend_from_slice(b"\r\n\r\n");
        let e = run(head).unwrap_err();
        assert!(matches!(e, UnixHttpError::HeadTooLarge), "{e:?}");
        let bound = Size::bytes(MAX_HEADER_BLOCK_BYTES).to_string();
        assert_eq!(e.to_string(), format!("response head larger than {bound}"));
        assert!(e.request_sent());
    }

    #[test]
    fn oversized_body_is_refused_naming_the_bound() {
        let bound = Size::bytes(MAX_UNIX_BODY_BYTES).to_string();
        let declared = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
            MAX_UNIX_BODY_BYTES + 1,
            "a".repeat(MAX_UNIX_BODY_BYTES + 1)
        );
        let streamed = chunked(&vec![b'a'; MAX_UNIX_BODY_BYTES + 1], 16 * 1024);
        let until_close =
            [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &vec![b'a'; MAX_UNIX_BODY_BYTES + 1]].concat();
        for response in [declared.into_bytes(), streamed, until_close] {
            let e = run(response).unwrap_err();
            assert!(matches!(e, UnixHttpError::BodyTooLarge), "{e:?}");
            assert_eq!(e.to_string(), format!("response body larger than {bound}"));
        }
    }

    #[test]
    fn too_many_headers_is_refused_naming_the_bound() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            head.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let e = run(head).unwrap_err();
        assert!(matches!(e, UnixHttpError::TooManyHeaders), "{e:?}");
        assert_eq!(e.to_string(), format!("more response headers than {MAX_HEADERS}"));
    }

    #[test]
    fn broken_answers_are_protocol_errors() {
        let e = run(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()).unwrap_err();
        assert!(matches!(e, UnixHttpError::Protocol(_)), "{e:?}");
        let e = run(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()).unwrap_err();
        assert_eq!(e.to_string(), "connection closed before the end of the body");
        let e = run(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab".to_vec())
            .unwrap_err();
        assert_eq!(e.to_string(), "connection closed inside a chunked body");
    }

    #[test]
    fn nobody_listening_is_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let e = crate::test_executor::run(move || async move {
            exchange(&socket, REQUEST, Instant::now() + Duration::from_secs(10)).await
        })
        .unwrap_err();
        assert!(matches!(e, UnixHttpError::Connect(_)), "{e:?}");
        assert!(!e.request_sent());
    }
}
