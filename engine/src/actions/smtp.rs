//! The `email` notifier: a minimal SMTP submission client (RFC 5321 and 3207): EHLO,
//! STARTTLS, EHLO again, AUTH PLAIN when `username` is set, MAIL, RCPT, DATA, QUIT.
//!
//! STARTTLS is required unless `allow_insecure` (then it is still used when offered), and
//! credentials are never sent over a connection without TLS unless `allow_insecure`. Written
//! here rather than taken from a crate (lettre) because lettre brings its own runtime
//! (tokio/async-std) and TLS stack, while this runs on glommio's sockets and the rustls
//! config the HTTP notifiers already use; the part of SMTP a notifier needs is small.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use cpra_net::conn::Conn;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::payload::rfc3339;
use super::retry::AttemptResult;
use super::target;
use crate::alert::RenderedAlert;
use crate::limits::{MAX_EMAIL_RECIPIENTS, MAX_MAIL_ADDRESS_BYTES, MAX_SMTP_REPLY_BYTES};
use crate::manifest::Notify;

/// The submission port, used when `server` names no port.
pub const DEFAULT_PORT: u16 = 587;

/// What one attempt needs from the shard that sends it, prepared by the caller: the server's
/// resolved address, the TLS client config for STARTTLS, and the time left for the attempt.
/// A value, so this module depends on nothing of the sender's.
pub struct Transport {
    /// The server's host name as written (`server` without the port): SNI and the name the
    /// certificate must match.
    pub host: String,
    pub addr: SocketAddr,
    /// The config for STARTTLS, or why none could be built (reported only if STARTTLS is used).
    pub tls: Result<Arc<rustls::ClientConfig>, String>,
    /// Time left for the whole session.
    pub timeout: Duration,
}

/// A mailbox as it goes into `MAIL FROM:<...>` / `RCPT TO:<...>`: no spaces, brackets or
/// line breaks (which would let a manifest value inject SMTP commands), one `@`.
pub fn valid_address(addr: &str) -> bool {
    !addr.is_empty()
        && addr.len() <= MAX_MAIL_ADDRESS_BYTES
        && addr.matches('@').count() == 1
        && !addr.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'))
}

/// `host[:port]` of `server` (the port defaults to [`DEFAULT_PORT`]).
pub fn split_server(server: &str) -> Result<(String, u16), String> {
    target::host_port(server, DEFAULT_PORT)
}

/// Checks an `email` endpoint's config: the server, the addresses and the recipient count.
/// Used at load and before each attempt, so both say the same.
pub fn check(endpoint: &Notify) -> Result<(), String> {
    let Notify::Email { server, from, to, .. } = endpoint else {
        return Err("not an email endpoint".into());
    };
    if server.trim().is_empty() {
        return Err("email: `server` is empty (use host:port)".into());
    }
    split_server(server).map_err(|e| format!("email: `server`: {e}"))?;
    if let Some(bad) = std::iter::once(from).chain(to.iter()).find(|a| !valid_address(a)) {
        return Err(format!(
            "email: `{bad}` is not a mail address (one `@`, no spaces or `<>`, at most \
             {MAX_MAIL_ADDRESS_BYTES} bytes)"
        ));
    }
    if to.is_empty() || to.len() > MAX_EMAIL_RECIPIENTS {
        return Err(format!(
            "email: `to` needs 1 to {MAX_EMAIL_RECIPIENTS} addresses, not {}",
            to.len()
        ));
    }
    Ok(())
}

/// The message: headers and the plain-text body, CRLF line ends, dot-stuffed, ending with the
/// `.` line that closes DATA.
pub fn message(
    from: &str,
    to: &[String],
    subject: Option<&str>,
    alert: &RenderedAlert,
    wall_ms: i64,
    message_id: &str,
) -> String {
    let subject = match subject {
        Some(s) => format!("{s}: {}: {}", alert.title, alert.monitor),
        None => format!("[CPRA] {}: {}", alert.title, alert.monitor),
    };
    let date = chrono::DateTime::from_timestamp_millis(wall_ms).unwrap_or_default().to_rfc2822();
    let mut out = String::with_capacity(1024);
    let header = |out: &mut String, name: &str, value: &str| {
        // Header values come from the manifest and the alert: no line breaks may sneak in.
        let value: String =
            value.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&value);
        out.push_str("\r\n");
    };
    header(&mut out, "From", from);
    header(&mut out, "To", &to.join(", "));
    header(&mut out, "Subject", &subject);
    header(&mut out, "Date", &date);
    header(&mut out, "Message-ID", &format!("<{message_id}>"));
    header(&mut out, "MIME-Version", "1.0");
    header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    header(&mut out, "Content-Transfer-Encoding", "8bit");
    header(&mut out, "X-CPRA-Color", alert.colour.as_str());
    out.push_str("\r\n");
    let body = format!("{}Time: {}\n", alert.text(), rfc3339(wall_ms));
    for line in body.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// The `AUTH PLAIN` initial response: base64 of `\0user\0password`.
pub fn auth_plain(username: &str, password: &str) -> String {
    let raw = format!("\0{username}\0{password}");
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Why a session ended early, and whether the message may have been accepted.
#[derive(Debug)]
enum Failure {
    /// Before the end of DATA: safe to retry if `transient`.
    Before { reason: String, transient: bool },
    /// After the final `.` was sent: the server may have taken the message.
    AfterData(String),
}

fn before(reason: impl Into<String>, transient: bool) -> Failure {
    Failure::Before { reason: reason.into(), transient }
}

struct Session {
    conn: Option<Conn>,
    buf: Vec<u8>,
}

impl Session {
    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("connection present between steps")
    }

    /// Reads one reply (all its lines); returns the code and the text.
    async fn reply(&mut self) -> std::io::Result<(u16, String)> {
        let conn = self.conn.as_mut().expect("connection present between steps");
        read_reply(conn, &mut self.buf).await
    }

    async fn write(&mut self, data: &str) -> std::io::Result<()> {
        let conn = self.conn();
        conn.write_all(data.as_bytes()).await?;
        conn.flush().await
    }

    /// Sends `command` and expects a reply in `want` (e.g. 2xx); 4xx is transient, 5xx not.
    async fn command(&mut self, command: &str, what: &str, want: u16) -> Result<String, Failure> {
        self.write(command).await.map_err(|e| before(format!("{what}: {e}"), true))?;
        self.expect(what, want).await
    }

    async fn expect(&mut self, what: &str, want: u16) -> Result<String, Failure> {
        let (code, text) = self.reply().await.map_err(|e| before(format!("{what}: {e}"), true))?;
        if code / 100 == want / 100 {
            return Ok(text);
        }
        let text = text.trim_end().replace('\n', " ");
        Err(before(format!("{what}: server answered {code} {text}"), code / 100 == 4))
    }
}

/// Reads one reply (all its lines) from `reader`, `buf` holding what was read past the last
/// reply; returns the code and the text. Generic over the reader so that the fuzz target
/// runs it on bytes.
#[doc(hidden)]
pub async fn read_reply<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let line = read_line(reader, buf).await?;
        if line.len() < 3 || !line.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not an SMTP reply"));
        }
        let code: u16 = line[..3].parse().unwrap_or(0);
        text.push_str(line.get(4..).unwrap_or(""));
        text.push('\n');
        // The bound is on the whole reply: a server sending continuation lines forever
        // would otherwise grow `text` without end, each line being short.
        if text.len() > MAX_SMTP_REPLY_BYTES {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "reply too long"));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
}

async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<String> {
    loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            return Ok(line);
        }
        if buf.len() >= MAX_SMTP_REPLY_BYTES {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "reply too long"));
        }
        let mut chunk = [0u8; 1024];
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn has_extension(ehlo: &str, ext: &str) -> bool {
    ehlo.lines().any(|l| l.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case(ext)))
}

/// One attempt to mail `alert` through the endpoint's server, over `transport`.
pub async fn send(
    transport: &Transport,
    endpoint: &Notify,
    alert: &RenderedAlert,
    wall_ms: i64,
) -> AttemptResult {
    if let Err(e) = check(endpoint) {
        return AttemptResult::Permanent(e);
    }
    let Notify::Email { from, to, subject, allow_insecure, username, password, .. } = endpoint
    else {
        unreachable!("check() accepts only email endpoints")
    };
    let id = format!("{}.{wall_ms}@cpra", alert.monitor_id);
    let msg = message(from, to, subject.as_deref(), alert, wall_ms, &id);
    let opts = Opts {
        host: &transport.host,
        from,
        to,
        allow_insecure: *allow_insecure,
        credentials: username.as_deref().map(|u| (u, password.as_deref().unwrap_or(""))),
        message: &msg,
    };
    let work = session(transport, &opts);
    let timer = async {
        glommio::timer::sleep(transport.timeout).await;
        Err(before(format!("no answer within {} ms", transport.timeout.as_millis()), true))
    };
    match futures_lite::future::or(work, timer).await {
        Ok(()) => AttemptResult::Delivered,
        Err(Failure::Before { reason, transient: true }) => AttemptResult::Retryable(reason),
        Err(Failure::Before { reason, transient: false }) => AttemptResult::Permanent(reason),
        Err(Failure::AfterData(reason)) => AttemptResult::Permanent(format!(
            "{reason} after the message was sent (not retried: it may have been delivered)"
        )),
    }
}

struct Opts<'a> {
    host: &'a str,
    from: &'a str,
    to: &'a [String],
    allow_insecure: bool,
    credentials: Option<(&'a str, &'a str)>,
    message: &'a str,
}

async fn session(transport: &Transport, opts: &Opts<'_>) -> Result<(), Failure> {
    let addr = transport.addr;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| before(format!("connect to {addr}: {e}"), true))?;
    let mut s = Session { conn: Some(Conn::Plain(tcp)), buf: Vec::with_capacity(1024) };
    s.expect("greeting", 220).await?;
    let mut ehlo = s.command("EHLO cpra\r\n", "EHLO", 250).await?;
    let mut tls = false;
    if has_extension(&ehlo, "STARTTLS") {
        s.command("STARTTLS\r\n", "STARTTLS", 220).await?;
        let Some(Conn::Plain(tcp)) = s.conn.take() else {
            unreachable!("STARTTLS on a plain connection")
        };
        let config =
            transport.tls.clone().map_err(|e| before(format!("TLS config: {e}"), false))?;
        let name = cpra_net::tls::server_name(opts.host)
            .map_err(|e| before(format!("TLS server name: {e}"), false))?;
        let stream = futures_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| before(format!("TLS handshake with {}: {e}", opts.host), true))?;
        s.conn = Some(Conn::Tls(Box::new(stream)));
        s.buf.clear();
        tls = true;
        ehlo = s.command("EHLO cpra\r\n", "EHLO after STARTTLS", 250).await?;
    } else if !opts.allow_insecure {
        return Err(before(
            format!("{} does not offer STARTTLS (set allow_insecure to send in clear)", opts.host),
            false,
        ));
    }
    if let Some((user, password)) = opts.credentials {
        if !tls && !opts.allow_insecure {
            return Err(before("refusing to send credentials without TLS", false));
        }
        if !has_extension(&ehlo, "AUTH") {
            return Err(before(format!("{} does not offer AUTH", opts.host), false));
        }
        let cmd = format!("AUTH PLAIN {}\r\n", auth_plain(user, password));
        s.command(&cmd, "AUTH", 235).await?;
    }
    s.command(&format!("MAIL FROM:<{}>\r\n", opts.from), "MAIL FROM", 250).await?;
    for rcpt in opts.to {
        s.command(&format!("RCPT TO:<{rcpt}>\r\n"), "RCPT TO", 250).await?;
    }
    s.command("DATA\r\n", "DATA", 354).await?;
    s.write(opts.message).await.map_err(|e| before(format!("DATA: {e}"), true))?;
    match s.reply().await {
        Ok((code, _)) if code / 100 == 2 => {}
        Ok((code, text)) => {
            return Err(before(
                format!("message refused: {code} {}", text.trim_end()),
                code / 100 == 4,
            ))
        }
        Err(e) => return Err(Failure::AfterData(format!("end of DATA: {e}"))),
    }
    // The message is accepted; a failed QUIT changes nothing.
    let _ = s.command("QUIT\r\n", "QUIT", 221).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour::Colour;

    #[test]
    fn server_host_and_port() {
        assert_eq!(split_server("smtp.example.com").unwrap(), ("smtp.example.com".into(), 587));
        assert_eq!(split_server("127.0.0.1:2525").unwrap(), ("127.0.0.1".into(), 2525));
        assert_eq!(split_server("[::1]:25").unwrap(), ("::1".into(), 25));
        assert!(split_server("smtp.example.com:notaport").is_err());
        assert!(split_server("smtp.example.com:587/path").is_err());
    }

    #[test]
    fn addresses() {
        assert!(valid_address("ops@example.com"));
        assert!(!valid_address("a@x>\r\nRCPT TO:<b@y"));
        assert!(!valid_address("no-at-sign"));
        assert!(!valid_address("a b@x"));
    }

    #[test]
    fn replies_are_read_whole_and_bounded() {
        let read = |bytes: &[u8]| {
            let (mut reader, mut buf) = (bytes, Vec::new());
            futures_lite::future::block_on(read_reply(&mut reader, &mut buf))
        };
        let (code, text) = read(b"250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n").unwrap();
        assert_eq!((code, text.as_str()), (250, "mx\nSTARTTLS\n8BITMIME\n"));
        assert!(read(b"25\r\n").is_err());
        assert!(read(b"250-no end").is_err());
        // Short continuation lines past the reply bound: refused, not buffered forever.
        let endless = b"250-0123456789\r\n".repeat(MAX_SMTP_REPLY_BYTES / 10);
        let e = read(&endless).unwrap_err();
        assert_eq!(e.to_string(), "reply too long");
    }

    #[test]
    fn auth_plain_encoding() {
        assert_eq!(auth_plain("user", "pass"), "AHVzZXIAcGFzcw==");
    }

    #[test]
    fn message_bytes() {
        let mut a = super::super::payload::tests::alert(Colour::Red);
        a.summary = ".starts with a dot".into();
        let m = message(
            "cpra@x",
            &["a@x".into(), "b@x".into()],
            None,
            &a,
            1_700_000_000_123,
            "id@cpra",
        );
        let want_head = "From: cpra@x\r\nTo: a@x, b@x\r\nSubject: [CPRA] CRITICAL ALERT: Checkout API\r\n\
            Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <id@cpra>\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nX-CPRA-Color: red\r\n\r\n\
            CRITICAL ALERT: Checkout API\r\n";
        assert!(m.starts_with(want_head), "{m}");
        assert!(m.contains("\r\n..starts with a dot\r\n"), "{m}");
        assert!(m.ends_with("Time: 2023-11-14T22:13:20.123Z\r\n.\r\n"), "{m}");
        assert!(!m.replace("\r\n", "").contains('\n'));
    }
}
