//! The `grpc` pulse: a real `grpc.health.v1.Health/Check` call over HTTP/2, cleartext (h2c
//! with prior knowledge) or over TLS (ALPN `h2`, the peer verified as for https), success when
//! the server says `SERVING` for the monitor's `service`.
//!
//! What it is for: gRPC services that implement the standard health protocol (every major gRPC
//! framework ships it). The Go CPRA only opened a TCP connection; this makes the call.
//! What it is not for: client certificates (mTLS), the streaming `Watch` method, or any other
//! RPC.
//!
//! The HTTP/2 client here is deliberately minimal and hand-written: one connection, one
//! stream, a request of a few hundred bytes that fits the default flow-control window, and a
//! reply of a few frames. A general HTTP/2 crate (`h2`) needs tokio; what we need is ~200
//! lines. HPACK is not hand-written: `fluke-hpack` (no runtime dependency) encodes the request
//! once at load time and decodes the response headers, Huffman and dynamic table included.
//! The request bytes (preface, SETTINGS, HEADERS, DATA) are built once per monitor; a check
//! writes them in one call.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::deadline::{saturating_us, until, Deadline};
use crate::limits::{
    MAX_GRPC_AUTHORITY_BYTES, MAX_GRPC_FRAMES, MAX_GRPC_MESSAGE_BYTES, MAX_GRPC_SERVICE_NAME_BYTES,
    MAX_H2_FRAME_BYTES, MAX_HEADER_BLOCK_BYTES, MAX_SPARE_GRPC_BUFFERS,
};
use crate::outcome::{is_local_resource_errno, Detail, FailureKind, Outcome, Warning};
use crate::tls;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const STREAM_ID: u32 = 1;

mod frame {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const CONTINUATION: u8 = 0x9;
}

mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS_ENABLE_PUSH (RFC 9113 6.5.2): we set it to 0, so no PUSH_PROMISE may arrive.
const SETTINGS_ENABLE_PUSH: u16 = 0x2;

/// ALPN protocol id of HTTP/2 over TLS (RFC 9113 3.2): gRPC servers require it.
pub const ALPN_H2: &[u8] = b"h2";

/// A `grpc` monitor.
#[derive(Clone, Debug)]
pub struct GrpcConfig {
    pub addr: SocketAddr,
    /// The service to ask about; empty asks about the server as a whole.
    pub service: String,
    /// Preface, SETTINGS, HEADERS and DATA, ready to write.
    request: Box<[u8]>,
    /// `tls: true`: the call goes over TLS (h2), else h2c.
    tls: Option<GrpcTls>,
}

/// How a `grpc` monitor with `tls: true` reaches its server.
#[derive(Clone, Debug)]
struct GrpcTls {
    /// Offers ALPN `h2` (see [`h2_client_config`]).
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    /// Days left at or under which a healthy server's certificate is a warning, as for https.
    cert_warn_days: Option<i32>,
}

/// `config` offering ALPN `h2` only, built once per TLS option set at load (a copy: the
/// https checks share the original, which offers no ALPN and so gets HTTP/1.1).
pub fn h2_client_config(config: &ClientConfig) -> Arc<ClientConfig> {
    let mut h2 = config.clone();
    h2.alpn_protocols = vec![ALPN_H2.to_vec()];
    Arc::new(h2)
}

impl GrpcConfig {
    /// `authority` is the `:authority` the server sees (the `host:port` of the monitor).
    pub fn new(addr: SocketAddr, authority: &str, service: &str) -> Result<GrpcConfig, String> {
        if service.len() > MAX_GRPC_SERVICE_NAME_BYTES {
            return Err(format!(
                "grpc service name is {} bytes; at most {MAX_GRPC_SERVICE_NAME_BYTES}",
                service.len()
            ));
        }
        if authority.is_empty()
            || authority.len() > MAX_GRPC_AUTHORITY_BYTES
            || authority.bytes().any(|b| b <= b' ' || b == 0x7f)
        {
            return Err(format!("invalid grpc authority {authority:?}: expected host:port"));
        }
        Ok(GrpcConfig {
            addr,
            service: service.to_owned(),
            request: build_request(authority, service, "http").into(),
            tls: None,
        })
    }

    /// Makes the call over TLS: `config` must offer ALPN `h2` (see [`h2_client_config`]);
    /// `server_name` is sent as SNI and verified (unless the config skips verification);
    /// `authority` is the same as given to [`GrpcConfig::new`]. A certificate with at most
    /// `cert_warn_days` left makes a healthy check a warning.
    pub fn with_tls(
        mut self,
        authority: &str,
        config: Arc<ClientConfig>,
        server_name: &str,
        cert_warn_days: Option<i32>,
    ) -> Result<GrpcConfig, String> {
        if !config.alpn_protocols.iter().any(|p| p == ALPN_H2) {
            return Err("grpc over TLS needs a client config offering ALPN h2".to_owned());
        }
        let name = tls::server_name(server_name).map_err(|e| e.0)?;
        self.request = build_request(authority, &self.service, "https").into();
        self.tls = Some(GrpcTls { config, name, cert_warn_days });
        Ok(self)
    }
}

fn frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_H2_FRAME_BYTES);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

fn build_request(authority: &str, service: &str, scheme: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + service.len());
    out.extend_from_slice(PREFACE);
    // SETTINGS: disable push; all else default.
    frame_header(&mut out, 6, frame::SETTINGS, 0, 0);
    out.extend_from_slice(&SETTINGS_ENABLE_PUSH.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    // HEADERS, HPACK-encoded by a fresh encoder: the server's decoder for this connection is
    // fresh too, so the same bytes are valid on every connection.
    let headers: [(&[u8], &[u8]); 7] = [
        (b":method", b"POST"),
        (b":scheme", scheme.as_bytes()),
        (b":path", b"/grpc.health.v1.Health/Check"),
        (b":authority", authority.as_bytes()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"user-agent", b"cpra"),
    ];
    let block = fluke_hpack::Encoder::new().encode(headers);
    frame_header(&mut out, block.len(), frame::HEADERS, flag::END_HEADERS, STREAM_ID);
    out.extend_from_slice(&block);
    // DATA: the 5-byte gRPC prefix (uncompressed, length), then HealthCheckRequest { service
    // = 1 (string) }; an empty service is encoded as no field at all, as protobuf does.
    let mut message = Vec::with_capacity(service.len() + 3);
    if !service.is_empty() {
        message.push(0x0a); // field 1, wire type 2 (length-delimited)
        push_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    frame_header(&mut out, 5 + message.len(), frame::DATA, flag::END_STREAM, STREAM_ID);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(&message);
    out
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Runs one `grpc` check within `timeout`.
pub async fn check(cfg: &GrpcConfig, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let deadline = Deadline::new(start, timeout);
    let connected = Cell::new(false);
    let cert_days = Cell::new(None);
    let result = until(deadline.end(), call(cfg, &deadline, &connected, &cert_days)).await;
    let latency_us = saturating_us(start.elapsed());
    let mut outcome = match result {
        None if connected.get() => Outcome::failure(
            FailureKind::Timeout,
            latency_us,
            Detail::Text("no complete health reply"),
        ),
        None => Outcome::failure(FailureKind::ConnectTimeout, latency_us, Detail::None),
        Some(Ok(reply)) => judge(&reply, latency_us),
        Some(Err(Failure::Connect(e))) => {
            let kind = match e.raw_os_error() {
                Some(errno) if is_local_resource_errno(errno) => FailureKind::LocalResource,
                Some(libc::ECONNREFUSED) => FailureKind::ConnectRefused,
                _ => FailureKind::Connection,
            };
            Outcome::failure(kind, latency_us, e.raw_os_error().map_or(Detail::None, Detail::Errno))
        }
        Some(Err(Failure::Handshake(kind, detail))) => Outcome::failure(kind, latency_us, detail),
        Some(Err(Failure::Io(e))) => Outcome::failure(
            FailureKind::Connection,
            latency_us,
            e.raw_os_error().map_or(
                Detail::Text("connection closed before the reply was complete"),
                Detail::Errno,
            ),
        ),
        Some(Err(Failure::Protocol(text))) => {
            Outcome::failure(FailureKind::Protocol, latency_us, Detail::Text(text))
        }
        Some(Err(Failure::Bound(kind, text, bound))) => Outcome::failure(
            kind,
            latency_us,
            Detail::SizeText(text, u32::try_from(bound).unwrap_or(u32::MAX)),
        ),
    };
    // As for https: the days left are reported, and a healthy check close to expiry warns.
    outcome.cert_days_left = cert_days.get();
    let warn_days = cfg.tls.as_ref().and_then(|t| t.cert_warn_days);
    if let (Some(days), Some(warn)) = (outcome.cert_days_left, warn_days) {
        if outcome.is_success() && days <= warn {
            outcome.warning = Some(Warning::CertificateExpiring { days_left: days });
        }
    }
    outcome
}

/// The outcome `check` gives for a server that sends `stream`'s bytes after our request,
/// judged at latency 0: the whole frame reader without a socket, for the fuzz target.
#[doc(hidden)]
pub async fn judge_stream<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Outcome {
    match read_reply(stream).await {
        Ok(reply) => judge(&reply, 0),
        Err(Failure::Connect(_) | Failure::Io(_)) => {
            Outcome::failure(FailureKind::Connection, 0, Detail::None)
        }
        Err(Failure::Handshake(kind, detail)) => Outcome::failure(kind, 0, detail),
        Err(Failure::Protocol(text)) => {
            Outcome::failure(FailureKind::Protocol, 0, Detail::Text(text))
        }
        Err(Failure::Bound(kind, text, bound)) => Outcome::failure(
            kind,
            0,
            Detail::SizeText(text, u32::try_from(bound).unwrap_or(u32::MAX)),
        ),
    }
}

#[derive(Debug)]
enum Failure {
    Connect(io::Error),
    /// The TLS handshake failed: how (`tls` or `certificate`) and why.
    Handshake(FailureKind, Detail),
    Io(io::Error),
    Protocol(&'static str),
    /// A bound crossed: how the check fails, the message start, and the bound in bytes.
    Bound(FailureKind, &'static str, usize),
}

/// Message starts for the bounds; the bound itself follows, formatted from its constant.
const FRAME_TOO_LARGE: &str = "not an HTTP/2 server? a frame is over the default maximum of";
const HEADER_BLOCK_TOO_LARGE: &str = "response header block larger than";
const MESSAGE_TOO_LARGE: &str = "gRPC message larger than";

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// What the server answered on our stream.
#[derive(Debug, Default, PartialEq, Eq)]
struct Reply {
    http_status: Option<u16>,
    grpc_status: Option<u32>,
    /// The `status` field of `HealthCheckResponse` (0 when absent, as proto3 defaults).
    serving_status: Option<u64>,
}

async fn call(
    cfg: &GrpcConfig,
    deadline: &Deadline,
    connected: &Cell<bool>,
    cert_days: &Cell<Option<i32>>,
) -> Result<Reply, Failure> {
    let mut stream = TcpStream::connect(cfg.addr).await.map_err(|e| Failure::Connect(e.into()))?;
    connected.set(true);
    // The check closes first once the reply is in: a reset, not a TIME_WAIT per check.
    crate::tcp::reset_on_close(&stream);
    stream.set_nodelay(true).map_err(|e| Failure::Io(e.into()))?;
    let Some(t) = &cfg.tls else {
        stream.write_all(&cfg.request).await?;
        return read_reply(&mut stream).await;
    };
    let hs = tls::handshake(stream, &t.config, &t.name, deadline)
        .await
        .map_err(|(kind, detail)| Failure::Handshake(kind, detail))?;
    cert_days.set(hs.cert_days_left);
    if hs.stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
        return Err(Failure::Protocol(
            "the server did not agree to HTTP/2 (ALPN h2): not a gRPC server over TLS?",
        ));
    }
    // Boxed, as https boxes its own: the TLS session's state inline would grow every probe
    // task's future (a TLS handshake allocates anyway, so this adds no allocation class).
    let mut stream = Box::new(hs.stream);
    stream.write_all(&cfg.request).await?;
    stream.flush().await?;
    read_reply(&mut *stream).await
}

/// Bytes of one check's reply buffers: a frame's payload, a header block, a gRPC message.
const REPLY_BUFFER_BYTES: usize =
    MAX_H2_FRAME_BYTES + MAX_HEADER_BLOCK_BYTES + MAX_GRPC_MESSAGE_BYTES + 5;

thread_local! {
    /// The shard's spare reply buffers (a shard is a thread): taken and given back per check,
    /// so steady checking allocates nothing.
    static SPARE_REPLY_BUFFERS: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// One check's reply buffers, given back to the shard's spares when dropped (a check cut off
/// by its deadline included).
struct ReplyBuffers(Box<[u8]>);

impl ReplyBuffers {
    fn take() -> ReplyBuffers {
        let spare = SPARE_REPLY_BUFFERS.with(|s| s.borrow_mut().pop());
        // Not zeroed on reuse: every byte read is written first (the frame reader reads a
        // payload before it looks at it).
        ReplyBuffers(spare.unwrap_or_else(|| vec![0u8; REPLY_BUFFER_BYTES].into_boxed_slice()))
    }
}

impl Drop for ReplyBuffers {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        SPARE_REPLY_BUFFERS.with(|s| {
            let mut spare = s.borrow_mut();
            if spare.len() < MAX_SPARE_GRPC_BUFFERS {
                spare.push(buf);
            }
        });
    }
}

/// Reads the server's frames, answering SETTINGS and PING, until our stream's reply is
/// complete. Generic over the stream so that the frame reader runs on bytes in the fuzz target.
async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<Reply, Failure> {
    let mut decoder = fluke_hpack::Decoder::new();
    // On the heap, from the shard's spares: inline, these 33 KiB made every probe task's
    // future (any check's, since a task can run any pulse) 94 KiB instead of a few.
    let mut buffers = ReplyBuffers::take();
    let (payload, rest) = buffers.0.split_at_mut(MAX_H2_FRAME_BYTES);
    let (block, message) = rest.split_at_mut(MAX_HEADER_BLOCK_BYTES);
    let mut block_len = 0usize;
    let mut message_len = 0usize;
    let mut reply = Reply::default();
    let mut stream_ends = false;
    for index in 0..MAX_GRPC_FRAMES {
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).await?;
        if index == 0 && header.starts_with(b"HTTP/1.") {
            return Err(Failure::Protocol("the server speaks HTTP/1.x, not HTTP/2 (h2c)"));
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let (kind, flags) = (header[3], header[4]);
        let stream_id =
            u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        if len > MAX_H2_FRAME_BYTES {
            return Err(Failure::Bound(FailureKind::Protocol, FRAME_TOO_LARGE, MAX_H2_FRAME_BYTES));
        }
        if index == 0 && kind != frame::SETTINGS {
            return Err(Failure::Protocol(
                "the server's first frame is not SETTINGS (not HTTP/2?)",
            ));
        }
        let body = &mut payload[..len];
        stream.read_exact(body).await?;
        match kind {
            frame::SETTINGS if flags & flag::ACK == 0 => {
                if !len.is_multiple_of(6) || stream_id != 0 {
                    return Err(Failure::Protocol("malformed SETTINGS frame"));
                }
                let mut ack = [0u8; 9];
                ack[3] = frame::SETTINGS;
                ack[4] = flag::ACK;
                stream.write_all(&ack).await?;
                // Over TLS the bytes wait in the session's buffer until flushed.
                stream.flush().await?;
            }
            frame::PING if flags & flag::ACK == 0 && len == 8 => {
                let mut pong = [0u8; 17];
                pong[2] = 8;
                pong[3] = frame::PING;
                pong[4] = flag::ACK;
                pong[9..].copy_from_slice(body);
                stream.write_all(&pong).await?;
                stream.flush().await?;
            }
            frame::GOAWAY if len >= 8 => {
                let last = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff;
                if last < STREAM_ID {
                    return Err(Failure::Protocol("the server refused the call (GOAWAY)"));
                }
            }
            frame::PUSH_PROMISE => {
                return Err(Failure::Protocol("PUSH_PROMISE although push is disabled"))
            }
            frame::RST_STREAM if stream_id == STREAM_ID => {
                return Err(Failure::Protocol(
                    "the server reset the health-check stream (RST_STREAM)",
                ));
            }
            frame::HEADERS | frame::CONTINUATION if stream_id == STREAM_ID => {
                let fragment =
                    if kind == frame::HEADERS { headers_fragment(body, flags)? } else { &body[..] };
                let end = block_len + fragment.len();
                if end > MAX_HEADER_BLOCK_BYTES {
                    return Err(Failure::Bound(
                        FailureKind::TooLarge,
                        HEADER_BLOCK_TOO_LARGE,
                        MAX_HEADER_BLOCK_BYTES,
                    ));
                }
                block[block_len..end].copy_from_slice(fragment);
                block_len = end;
                if kind == frame::HEADERS {
                    // END_STREAM may sit on a HEADERS frame whose block continues in
                    // CONTINUATION frames; the stream ends once the block is complete.
                    stream_ends = flags & flag::END_STREAM != 0;
                }
                if flags & flag::END_HEADERS != 0 {
                    if !hpack_walks(&block[..block_len]) {
                        return Err(Failure::Protocol("undecodable HPACK header block"));
                    }
                    decoder
                        .decode_with_cb(&block[..block_len], |name, value| {
                            read_header(&mut reply, &name, &value)
                        })
                        .map_err(|_| Failure::Protocol("undecodable HPACK header block"))?;
                    block_len = 0;
                    if stream_ends {
                        return finish(reply, &message[..message_len]);
                    }
                }
            }
            frame::DATA if stream_id == STREAM_ID => {
                let data = data_payload(body, flags)?;
                let end = message_len + data.len();
                if end > message.len() {
                    return Err(Failure::Bound(
                        FailureKind::TooLarge,
                        MESSAGE_TOO_LARGE,
                        MAX_GRPC_MESSAGE_BYTES,
                    ));
                }
                message[message_len..end].copy_from_slice(data);
                message_len = end;
                if flags & flag::END_STREAM != 0 {
                    return finish(reply, &message[..message_len]);
                }
            }
            // SETTINGS ACK, WINDOW_UPDATE, PRIORITY, frames on other streams, unknown types:
            // nothing to do for a one-stream client whose request fits the default window.
            _ => {}
        }
    }
    Err(Failure::Protocol("too many frames without a complete reply"))
}

/// The header block fragment of a HEADERS frame, without padding and priority fields.
fn headers_fragment(body: &[u8], flags: u8) -> Result<&[u8], Failure> {
    let body = strip_padding(body, flags)?;
    if flags & flag::PRIORITY != 0 {
        return body.get(5..).ok_or(Failure::Protocol("HEADERS frame too short for its priority"));
    }
    Ok(body)
}

fn data_payload(body: &[u8], flags: u8) -> Result<&[u8], Failure> {
    strip_padding(body, flags)
}

fn strip_padding(body: &[u8], flags: u8) -> Result<&[u8], Failure> {
    if flags & flag::PADDED == 0 {
        return Ok(body);
    }
    let pad =
        usize::from(*body.first().ok_or(Failure::Protocol("padded frame without a pad length"))?);
    if pad + 1 > body.len() {
        return Err(Failure::Protocol("padding longer than the frame"));
    }
    Ok(&body[1..body.len() - pad])
}

/// Whether an HPACK header block is a sequence of whole representations (RFC 7541 6: their
/// integers and string lengths only; no Huffman, no table). fluke-hpack 0.3.1 panics (an
/// `unwrap` in `update_max_dynamic_size`) on a dynamic table size update whose integer is
/// truncated or too long, where it should return its error, so a block is walked before the
/// decoder sees it; a block that does not walk to its end is refused as undecodable.
fn hpack_walks(mut block: &[u8]) -> bool {
    while let Some(&first) = block.first() {
        let whole = match first {
            // Indexed field.
            0x80..=0xff => hpack_int(&mut block, 7).is_some(),
            // Literal with incremental indexing: index, then a name if the index is 0, a value.
            0x40..=0x7f => hpack_literal(&mut block, 6),
            // Dynamic table size update.
            0x20..=0x3f => hpack_int(&mut block, 5).is_some(),
            // Literal without indexing or never indexed.
            _ => hpack_literal(&mut block, 4),
        };
        if !whole {
            return false;
        }
    }
    true
}

fn hpack_literal(block: &mut &[u8], prefix: u32) -> bool {
    let Some(index) = hpack_int(block, prefix) else { return false };
    (index != 0 || hpack_string(block)) && hpack_string(block)
}

fn hpack_string(block: &mut &[u8]) -> bool {
    let Some(len) = hpack_int(block, 7) else { return false };
    match block.get(len..) {
        Some(rest) => {
            *block = rest;
            true
        }
        None => false,
    }
}

/// An HPACK integer with a `prefix`-bit prefix, held to the 5 octets fluke-hpack accepts.
fn hpack_int(block: &mut &[u8], prefix: u32) -> Option<usize> {
    let mask = (1u8 << prefix) - 1;
    let (&first, rest) = block.split_first()?;
    *block = rest;
    let mut value = usize::from(first & mask);
    if value < usize::from(mask) {
        return Some(value);
    }
    for shift in [0, 7, 14, 21] {
        let (&byte, rest) = block.split_first()?;
        *block = rest;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn read_header(reply: &mut Reply, name: &[u8], value: &[u8]) {
    let number = || std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<u32>().ok());
    match name {
        b":status" => reply.http_status = number().and_then(|n| u16::try_from(n).ok()),
        b"grpc-status" => reply.grpc_status = number(),
        _ => {}
    }
}

/// The stream has ended: parse the one gRPC message, if any.
fn finish(mut reply: Reply, message: &[u8]) -> Result<Reply, Failure> {
    if message.is_empty() {
        return Ok(reply);
    }
    let (prefix, rest) = message.split_at(message.len().min(5));
    if prefix.len() < 5 {
        return Err(Failure::Protocol("truncated gRPC message prefix"));
    }
    if prefix[0] != 0 {
        return Err(Failure::Protocol("compressed gRPC message (we asked for none)"));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    let body = rest.get(..len).ok_or(Failure::Protocol("truncated gRPC message"))?;
    reply.serving_status = Some(serving_status(body)?);
    Ok(reply)
}

/// The `status` (field 1, varint) of a `HealthCheckResponse`, skipping unknown fields.
fn serving_status(mut msg: &[u8]) -> Result<u64, Failure> {
    const BAD: &str = "malformed HealthCheckResponse";
    let bad = || Failure::Protocol(BAD);
    let mut status = 0;
    while !msg.is_empty() {
        let key = read_varint(&mut msg).ok_or_else(bad)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = read_varint(&mut msg).ok_or_else(bad)?,
            (_, 0) => {
                read_varint(&mut msg).ok_or_else(bad)?;
            }
            (_, 1) => msg = msg.get(8..).ok_or_else(bad)?,
            (_, 5) => msg = msg.get(4..).ok_or_else(bad)?,
            (_, 2) => {
                let n = read_varint(&mut msg).ok_or_else(bad)?;
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                msg = msg.get(n..).ok_or_else(bad)?;
            }
            _ => return Err(bad()),
        }
    }
    Ok(status)
}

fn read_varint(msg: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = msg.split_first()?;
        *msg = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The outcome a complete reply means. Pure.
fn judge(reply: &Reply, latency_us: u32) -> Outcome {
    let fail = |text| Outcome::failure(FailureKind::Status, latency_us, Detail::Text(text));
    match reply.http_status {
        Some(200) => {}
        Some(code) => {
            return Outcome::failure(FailureKind::Status, latency_us, Detail::HttpStatus(code))
        }
        None => {
            return Outcome::failure(
                FailureKind::Protocol,
                latency_us,
                Detail::Text("reply without :status"),
            )
        }
    }
    match reply.grpc_status {
        Some(0) => {}
        Some(code) => return fail(grpc_status_text(code)),
        None => {
            return Outcome::failure(
                FailureKind::Protocol,
                latency_us,
                Detail::Text("reply without grpc-status"),
            )
        }
    }
    match reply.serving_status {
        Some(1) => Outcome::success(latency_us),
        Some(2) => fail("health: NOT_SERVING"),
        Some(3) => fail("health: SERVICE_UNKNOWN"),
        Some(0) => fail("health: UNKNOWN"),
        Some(_) => fail("health: unrecognised status value"),
        None => Outcome::failure(
            FailureKind::Protocol,
            latency_us,
            Detail::Text("grpc-status OK without a message"),
        ),
    }
}

fn grpc_status_text(code: u32) -> &'static str {
    match code {
        1 => "grpc-status 1 CANCELLED",
        2 => "grpc-status 2 UNKNOWN",
        3 => "grpc-status 3 INVALID_ARGUMENT",
        4 => "grpc-status 4 DEADLINE_EXCEEDED",
        5 => "grpc-status 5 NOT_FOUND: the server does not know this service",
        7 => "grpc-status 7 PERMISSION_DENIED",
        8 => "grpc-status 8 RESOURCE_EXHAUSTED",
        12 => "grpc-status 12 UNIMPLEMENTED: the server has no grpc.health.v1.Health service",
        13 => "grpc-status 13 INTERNAL",
        14 => "grpc-status 14 UNAVAILABLE",
        16 => "grpc-status 16 UNAUTHENTICATED",
        _ => "grpc-status not OK",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn write_frame(out: &mut impl Write, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut buf = Vec::new();
        frame_header(&mut buf, payload.len(), kind, flags, stream);
        buf.extend_from_slice(payload);
        out.write_all(&buf).unwrap();
    }

    fn read_frame(conn: &mut impl Read) -> (u8, u8, u32, Vec<u8>) {
        let mut h = [0u8; 9];
        conn.read_exact(&mut h).unwrap();
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let mut p = vec![0u8; len];
        conn.read_exact(&mut p).unwrap();
        (h[3], h[4], u32::from_be_bytes([h[5], h[6], h[7], h[8]]), p)
    }

    /// A minimal h2c gRPC health server for tests: one connection per check, behaviour chosen
    /// by the requested service name.
    /// `svc.Flaky` is NOT_SERVING on the first connection and SERVING after.
    fn health_server(
        connections: usize,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<(String, String)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for i in 0..connections {
                let (mut conn, _) = listener.accept().unwrap();
                seen.push(serve_one(&mut conn, i == 0));
            }
            seen
        });
        (addr, handle)
    }

    fn serve_one<S: Read + Write>(conn: &mut S, first: bool) -> (String, String) {
        let mut preface = [0u8; 24];
        conn.read_exact(&mut preface).unwrap();
        assert_eq!(&preface, PREFACE);
        // Our SETTINGS (with a real setting, max concurrent streams = 100), then a PING to
        // make the client answer it.
        write_frame(conn, frame::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
        write_frame(conn, frame::PING, 0, 0, b"12345678");
        let mut decoder = fluke_hpack::Decoder::new();
        let mut path = String::new();
        let mut message = Vec::new();
        loop {
            let (kind, flags, stream, payload) = read_frame(conn);
            match kind {
                frame::HEADERS => {
                    assert_eq!(stream, 1);
                    for (n, v) in decoder.decode(&payload).unwrap() {
                        if n == b":path" {
                            path = String::from_utf8(v).unwrap();
                        }
                    }
                }
                frame::DATA => {
                    message.extend_from_slice(&payload);
                    if flags & flag::END_STREAM != 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        let len = u32::from_be_bytes([message[1], message[2], message[3], message[4]]) as usize;
        let body = &message[5..5 + len];
        let service = if body.is_empty() {
            String::new()
        } else {
            String::from_utf8(body[2..].to_vec()).unwrap()
        };
        let mut enc = fluke_hpack::Encoder::new();
        let response_headers = |enc: &mut fluke_hpack::Encoder, status: &[u8]| {
            enc.encode([(&b":status"[..], status), (b"content-type", b"application/grpc")])
        };
        let trailers =
            |enc: &mut fluke_hpack::Encoder, code: &[u8]| enc.encode([(&b"grpc-status"[..], code)]);
        let reply_status = |conn: &mut S, enc: &mut fluke_hpack::Encoder, status: u8| {
            let block = response_headers(enc, b"200");
            write_frame(conn, frame::HEADERS, flag::END_HEADERS, 1, &block);
            // Padded DATA frame, to exercise the padding rules.
            let mut data = vec![3u8, 0, 0, 0, 0, 2, 0x08, status];
            data.extend_from_slice(&[0, 0, 0]);
            write_frame(conn, frame::DATA, flag::PADDED, 1, &data);
            let block = trailers(enc, b"0");
            write_frame(conn, frame::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block);
        };
        match service.as_str() {
            "svc.Flaky" if first => reply_status(conn, &mut enc, 2),
            "" | "svc.Ok" | "svc.Flaky" => reply_status(conn, &mut enc, 1),
            "svc.Down" => reply_status(conn, &mut enc, 2),
            "svc.Unknown" => {
                // Trailers-only response, as grpc-go sends for NOT_FOUND.
                let block = enc.encode([
                    (&b":status"[..], &b"200"[..]),
                    (b"content-type", b"application/grpc"),
                    (b"grpc-status", b"5"),
                    (b"grpc-message", b"unknown service"),
                ]);
                // Split across HEADERS + CONTINUATION.
                let (a, b) = block.split_at(block.len() / 2);
                write_frame(conn, frame::HEADERS, flag::END_STREAM, 1, a);
                write_frame(conn, frame::CONTINUATION, flag::END_HEADERS, 1, b);
            }
            "svc.Http503" => {
                let block = response_headers(&mut enc, b"503");
                write_frame(conn, frame::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block);
            }
            "svc.Reset" => write_frame(conn, frame::RST_STREAM, 0, 1, &[0, 0, 0, 2]),
            "svc.Huge" => {
                let block = response_headers(&mut enc, b"200");
                write_frame(conn, frame::HEADERS, flag::END_HEADERS, 1, &block);
                let mut data = vec![0u8, 0, 1, 0, 0];
                data.resize(5 + 65536, 0);
                // The client gives up part-way and closes: stop writing at the first error.
                for chunk in data.chunks(MAX_H2_FRAME_BYTES - 9) {
                    let mut buf = Vec::new();
                    frame_header(&mut buf, chunk.len(), frame::DATA, 0, 1);
                    buf.extend_from_slice(chunk);
                    if conn.write_all(&buf).is_err() {
                        break;
                    }
                }
            }
            other => panic!("unexpected service {other}"),
        }
        // Let the client finish reading before closing.
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
        (path, service)
    }

    fn run_checks(cfgs: Vec<GrpcConfig>, timeout: Duration) -> Vec<Outcome> {
        crate::test_executor::run(move || async move {
            let mut out = Vec::new();
            for cfg in &cfgs {
                out.push(check(cfg, timeout).await);
            }
            out
        })
    }

    #[test]
    fn health_check_against_a_local_h2c_server() {
        let cases = [
            ("", None, ""),
            ("svc.Ok", None, ""),
            ("svc.Down", Some(FailureKind::Status), "NOT_SERVING"),
            ("svc.Unknown", Some(FailureKind::Status), "NOT_FOUND"),
            ("svc.Http503", Some(FailureKind::Status), "HTTP 503"),
            ("svc.Reset", Some(FailureKind::Protocol), "RST_STREAM"),
            ("svc.Huge", Some(FailureKind::TooLarge), ""),
        ];
        let (addr, server) = health_server(cases.len());
        let authority = addr.to_string();
        let cfgs = cases
            .iter()
            .map(|(svc, _, _)| GrpcConfig::new(addr, &authority, svc).unwrap())
            .collect();
        let outcomes = run_checks(cfgs, Duration::from_secs(10));
        let seen = server.join().unwrap();
        assert_eq!(seen[1], ("/grpc.health.v1.Health/Check".to_owned(), "svc.Ok".to_owned()));
        for ((svc, kind, text), o) in cases.iter().zip(&outcomes) {
            assert_eq!(o.failure, *kind, "{svc:?}: {o:?}");
            assert!(o.describe(svc).contains(text), "{svc}: {}", o.describe(svc));
        }
    }

    /// A gRPC health server over TLS (rustls, a test certificate for `localhost`), serving
    /// `connections` connections in turn; `alpn` is what it agrees to (gRPC servers: `h2`).
    fn tls_health_server(
        cert: &crate::test_server::TestCert,
        alpn: &[&[u8]],
        connections: usize,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<(String, String)>>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls_pki_types::CertificateDer::from(cert.cert_der.clone())],
                rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for i in 0..connections {
                let (tcp, _) = listener.accept().unwrap();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                // A client that refuses the handshake (or the ALPN) ends it here: no reply.
                let mut preface = [0u8; 24];
                if tls.read_exact(&mut preface).is_err() {
                    seen.push((String::new(), String::new()));
                    continue;
                }
                assert_eq!(&preface, PREFACE);
                seen.push(serve_one(&mut PrefaceRead(Some(()), &mut tls), i == 0));
            }
            seen
        });
        (addr, handle)
    }

    /// Replays the preface already read off `1`, then reads and writes `1` itself.
    struct PrefaceRead<'a, S>(Option<()>, &'a mut S);

    impl<S: Read> Read for PrefaceRead<'_, S> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.take().is_some() {
                buf[..PREFACE.len()].copy_from_slice(PREFACE);
                return Ok(PREFACE.len());
            }
            self.1.read(buf)
        }
    }

    impl<S: Write> Write for PrefaceRead<'_, S> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.1.flush()
        }
    }

    fn tls_config(cert: &crate::test_server::TestCert, dir: &std::path::Path) -> Arc<ClientConfig> {
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &cert.cert_pem).unwrap();
        let opts = tls::TlsOptions { ca_file: Some(ca), insecure_skip_verify: false };
        h2_client_config(&tls::client_config(&opts).unwrap())
    }

    #[test]
    fn health_check_over_tls_with_alpn_h2_and_days_left() {
        let cert = crate::test_server::cert_expiring_in(20);
        let dir = tempfile::tempdir().unwrap();
        let client = tls_config(&cert, dir.path());
        let cases = [("svc.Ok", Some(30), None), ("svc.Down", None, Some(FailureKind::Status))];
        let (addr, server) = tls_health_server(&cert, &[b"h2"], cases.len());
        let cfgs: Vec<_> = cases
            .iter()
            .map(|(svc, warn, _)| {
                GrpcConfig::new(addr, "localhost:50051", svc)
                    .unwrap()
                    .with_tls("localhost:50051", client.clone(), "localhost", *warn)
                    .unwrap()
            })
            .collect();
        let outcomes = run_checks(cfgs, Duration::from_secs(10));
        let seen = server.join().unwrap();
        assert_eq!(seen[0], ("/grpc.health.v1.Health/Check".to_owned(), "svc.Ok".to_owned()));
        for ((svc, _, kind), o) in cases.iter().zip(&outcomes) {
            assert_eq!(o.failure, *kind, "{svc}: {o:?}");
            let days = o.cert_days_left.expect("days left");
            assert!((19..=20).contains(&days), "{days}");
        }
        assert!(
            matches!(
                outcomes[0].warning,
                Some(Warning::CertificateExpiring { days_left: 19..=20 })
            ),
            "{:?}",
            outcomes[0]
        );
        assert_eq!(outcomes[1].warning, None);
    }

    #[test]
    fn tls_failures_name_their_cause() {
        let cert = crate::test_server::cert_expiring_in(90);
        let dir = tempfile::tempdir().unwrap();
        let client = tls_config(&cert, dir.path());
        // A TLS server that negotiates no ALPN (a plain TLS service on the port), one that
        // knows only HTTP/1.1 (rustls refuses the handshake with an alert), the wrong name for
        // the certificate, and a server that does not speak TLS at all.
        let (no_alpn, no_alpn_server) = tls_health_server(&cert, &[], 1);
        let (http1, http1_server) = tls_health_server(&cert, &[b"http/1.1"], 1);
        let (wrong, wrong_server) = tls_health_server(&cert, &[b"h2"], 1);
        let garbage = crate::test_server::garbage();
        let make = |addr, name| {
            GrpcConfig::new(addr, "localhost:1", "")
                .unwrap()
                .with_tls("localhost:1", client.clone(), name, None)
                .unwrap()
        };
        let cfgs = vec![
            make(no_alpn, "localhost"),
            make(http1, "localhost"),
            make(wrong, "other.example"),
            make(garbage, "localhost"),
        ];
        let o = run_checks(cfgs, Duration::from_secs(10));
        for server in [no_alpn_server, http1_server, wrong_server] {
            server.join().unwrap();
        }
        assert_eq!(o[0].failure, Some(FailureKind::Protocol), "{:?}", o[0]);
        assert!(o[0].describe("x").contains("ALPN h2"), "{}", o[0].describe("x"));
        assert_eq!(o[1].failure, Some(FailureKind::Tls), "{:?}", o[1]);
        assert_eq!(o[2].failure, Some(FailureKind::Certificate), "{:?}", o[2]);
        assert!(o[2].describe("x").contains("not valid for this name"), "{:?}", o[2]);
        assert_eq!(o[3].failure, Some(FailureKind::Tls), "{:?}", o[3]);
        // A config without ALPN h2 is refused when the monitor is built.
        let plain_config = tls::client_config(&tls::TlsOptions::default()).unwrap();
        let err =
            GrpcConfig::new(no_alpn, "h:1", "").unwrap().with_tls("h:1", plain_config, "h", None);
        assert!(err.unwrap_err().contains("ALPN h2"));
    }

    #[test]
    fn a_target_failing_once_fails_the_check_unless_retries_allow_one_more() {
        for (retries, connections, failure) in [(0, 1, Some(FailureKind::Status)), (1, 2, None)] {
            let (addr, server) = health_server(connections);
            let cfg = GrpcConfig::new(addr, &addr.to_string(), "svc.Flaky").unwrap();
            let o = crate::test_executor::run(move || async move {
                let timeout = Duration::from_secs(10);
                crate::retry::with_retries(retries, timeout, |t| check(&cfg, t)).await
            });
            server.join().unwrap();
            assert_eq!(o.failure, failure, "retries {retries}: {o:?}");
        }
    }

    #[test]
    fn hostile_and_absent_servers() {
        // HTTP/1.1 instead of h2c.
        let http1 = TcpListener::bind("127.0.0.1:0").unwrap();
        let http1_addr = http1.local_addr().unwrap();
        let http1_thread = std::thread::spawn(move || {
            let (mut c, _) = http1.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = c.read(&mut buf);
            c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").unwrap();
        });
        // Sends one byte every 50 ms: never a whole frame within the timeout. Bounded to 40
        // bytes so the thread ends on its own.
        let trickle = TcpListener::bind("127.0.0.1:0").unwrap();
        let trickle_addr = trickle.local_addr().unwrap();
        let trickle_thread = std::thread::spawn(move || {
            let (mut c, _) = trickle.accept().unwrap();
            for _ in 0..40 {
                if c.write_all(&[0]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // Accepts (kernel backlog) and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let (closed, _held) = crate::test_server::refused();
        let cfgs = vec![
            GrpcConfig::new(http1_addr, "x:1", "").unwrap(),
            GrpcConfig::new(silent.local_addr().unwrap(), "x:1", "").unwrap(),
            GrpcConfig::new(closed, "x:1", "").unwrap(),
            GrpcConfig::new(trickle_addr, "x:1", "").unwrap(),
        ];
        let o = run_checks(cfgs, Duration::from_millis(300));
        http1_thread.join().unwrap();
        assert_eq!(o[0].failure, Some(FailureKind::Protocol), "{:?}", o[0]);
        assert!(o[0].describe("x").contains("HTTP/1.x"), "{}", o[0].describe("x"));
        assert_eq!(o[1].failure, Some(FailureKind::Timeout), "{:?}", o[1]);
        assert_eq!(o[2].failure, Some(FailureKind::ConnectRefused), "{:?}", o[2]);
        assert_eq!(o[3].failure, Some(FailureKind::Timeout), "{:?}", o[3]);
        trickle_thread.join().unwrap();
        drop(silent);
    }

    /// Reads one client's request of `request_len` bytes, answers `reply`, then closes.
    fn replay_server(
        request_len: usize,
        reply: &'static [u8],
    ) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // The whole request is read first: closing on unread bytes would send a reset.
            let mut request = vec![0u8; request_len];
            conn.read_exact(&mut request).unwrap();
            conn.write_all(reply).unwrap();
        });
        (addr, handle)
    }

    /// Found by the grpc_frames fuzz target: a header block that is a truncated dynamic table
    /// size update (0x3f wants more octets) panicked inside fluke-hpack.
    #[test]
    fn truncated_hpack_size_update_is_a_protocol_error() {
        const REPLY: &[u8] = &[
            0, 0, 0, 4, 1, 0, 0, 0, 0, // SETTINGS ACK
            0, 0, 1, 1, 5, 0, 0, 0, 1, 0x3f, // HEADERS, END_STREAM | END_HEADERS, stream 1
        ];
        let (addr, server) = replay_server(build_request("x:1", "", "http").len(), REPLY);
        let cfg = GrpcConfig::new(addr, "x:1", "").unwrap();
        let o = run_checks(vec![cfg], Duration::from_secs(10));
        server.join().unwrap();
        assert_eq!(o[0].failure, Some(FailureKind::Protocol), "{:?}", o[0]);
        assert!(o[0].describe("x").contains("HPACK"), "{}", o[0].describe("x"));
    }

    #[test]
    fn hpack_blocks_are_walked_before_decoding() {
        // :status 200 (indexed), a literal with a new name, a size update to 4096 (0x3f e1 1f).
        assert!(hpack_walks(&[0x88, 0x00, 1, b'a', 1, b'b', 0x3f, 0xe1, 0x1f]));
        assert!(hpack_walks(&[]));
        assert!(!hpack_walks(&[0x3f]));
        assert!(!hpack_walks(&[0x3f, 0xff, 0xff, 0xff, 0xff, 0x01]));
        assert!(!hpack_walks(&[0x00, 3, b'a']));
        assert!(!hpack_walks(&[0x40]));
    }

    #[test]
    fn request_bytes_are_a_valid_h2_request() {
        let req = build_request("api:50051", "pkg.Svc", "http");
        assert!(req.starts_with(PREFACE));
        let rest = &req[PREFACE.len()..];
        // SETTINGS(6) + HEADERS + DATA with the protobuf for service "pkg.Svc".
        assert_eq!(&rest[..9], &[0, 0, 6, frame::SETTINGS, 0, 0, 0, 0, 0]);
        let tail = &req[req.len() - 14..];
        assert_eq!(tail, &[0, 0, 0, 0, 9, 0x0a, 7, b'p', b'k', b'g', b'.', b'S', b'v', b'c']);
        assert!(GrpcConfig::new("127.0.0.1:1".parse().unwrap(), "bad host", "").is_err());
        assert!(GrpcConfig::new("127.0.0.1:1".parse().unwrap(), "h:1", &"s".repeat(300)).is_err());
    }

    #[test]
    fn protobuf_status_parsing() {
        assert_eq!(serving_status(&[0x08, 0x01]).ok(), Some(1));
        assert_eq!(serving_status(&[]).ok(), Some(0));
        // Unknown fields of every wire type are skipped.
        let msg = [
            0x12, 2, b'h', b'i', 0x18, 0x96, 0x01, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0x2d, 0, 0, 0, 0,
            0x08, 2,
        ];
        assert_eq!(serving_status(&msg).ok(), Some(2));
        assert!(serving_status(&[0x08]).is_err());
        assert!(serving_status(&[0x12, 5, 1]).is_err());
        assert!(serving_status(&[0x0b]).is_err());
    }
}
