//! The `aws` intervention: EC2 `RebootInstances` through the EC2 Query API, signed with SigV4
//! by the `aws-sigv4` crate, with credentials from the standard chain: the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then the shared
//! credentials file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile
//! `AWS_PROFILE` or `default`), then the instance metadata service (IMDSv2: a token PUT,
//! then the role's credentials GET).
//!
//! Everything here blocks (a file read, name resolution, sockets with timeouts), so
//! [`reboot`] runs on a blocking thread, never on a shard thread. What it is not for: other
//! AWS calls, or caching credentials (an intervention is rare; each one reads the chain anew,
//! so rotated keys and refreshed instance-role credentials are always current).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cpra_net::http_response::{dechunk, parse_head, Framing};

use super::target::Target;
use super::InterventionResult;
use crate::limits::MAX_AWS_RESPONSE_BYTES;

/// The one operation: the Go CPRA's name for it.
pub const REBOOT_INSTANCE: &str = "reboot-instance";
/// The EC2 Query API version the request names (the current one; RebootInstances has not
/// changed in it).
pub const EC2_API_VERSION: &str = "2016-11-15";
/// Where the instance metadata service answers, unless `AWS_EC2_METADATA_SERVICE_ENDPOINT`
/// says otherwise (the variable the AWS SDKs read).
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// How long an IMDSv2 token lives: one intervention needs it for two requests.
const IMDS_TOKEN_TTL_S: u32 = 60;
/// Bound on each metadata request: the service is on the host's link and answers in
/// milliseconds; off EC2 it does not answer at all, and the chain must not hang on it.
const IMDS_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the credential chain looks: the environment (a function, so a test gives its own
/// without touching the process's) and nothing else; file and metadata locations come from
/// the same variables the AWS SDKs read.
#[derive(Clone)]
pub struct Sources {
    pub env: Lookup,
}

/// Reads one environment variable.
pub type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl Default for Sources {
    fn default() -> Self {
        Sources { env: Arc::new(|name| std::env::var(name).ok()) }
    }
}

impl Sources {
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }
}

/// Signing credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Which link of the chain gave them (logs name it, never the values).
    pub source: &'static str,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, nor the token.
        write!(
            f,
            "Credentials {{ access_key_id: {}, source: {} }}",
            self.access_key_id, self.source
        )
    }
}

pub fn check_operation(operation: &str) -> Result<(), String> {
    if operation.eq_ignore_ascii_case(REBOOT_INSTANCE) {
        Ok(())
    } else {
        Err(format!("aws operation `{operation}`: CPRA supports `{REBOOT_INSTANCE}`"))
    }
}

/// A region name as AWS writes them (`us-east-1`, `eu-central-2`, `us-gov-west-1`): it
/// becomes part of a host name and of the signature's scope.
pub fn check_region(region: &str) -> Result<(), String> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("aws region `{region}` is not a region name such as us-east-1"))
    }
}

/// An EC2 instance id: `i-` and 8 or 17 hex digits.
pub fn check_instance_id(id: &str) -> Result<(), String> {
    let hex = id.strip_prefix("i-").unwrap_or("");
    if (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("aws instance_id `{id}` is not an instance id such as i-0123456789abcdef0"))
    }
}

/// The EC2 endpoint of `region`, unless `endpoint` overrides it.
pub fn endpoint_url(region: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(e) => e.to_owned(),
        None => format!("https://ec2.{region}.amazonaws.com/"),
    }
}

/// The Query API form of `RebootInstances`.
pub fn reboot_body(instance_id: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "RebootInstances")
        .append_pair("InstanceId.1", instance_id)
        .append_pair("Version", EC2_API_VERSION)
        .finish()
}

/// The headers of a signed EC2 request: `host`, `content-type`, then what SigV4 adds
/// (`x-amz-date`, `x-amz-security-token` with a session token, `authorization`).
pub fn signed_headers(
    credentials: &Credentials,
    region: &str,
    url: &str,
    host_header: &str,
    body: &[u8],
    at: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        credentials.source,
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ec2")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("SigV4 parameters: {e}"))?
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let mut headers = vec![
        ("host".to_owned(), host_header.to_owned()),
        ("content-type".into(), content_type.into()),
    ];
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("SigV4 request: {e}"))?;
    let (instructions, _signature) =
        sign(request, &params).map_err(|e| format!("SigV4 signing: {e}"))?.into_parts();
    headers.extend(instructions.headers().map(|(n, v)| (n.to_owned(), v.to_owned())));
    Ok(headers)
}

/// The first `<Code>` of an EC2 error document (`<Response><Errors><Error><Code>`), for the
/// log: what EC2 refused and why, without the request id noise.
pub fn error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(&text[start..end])
}

/// Whether an EC2 answer to `RebootInstances` says it was accepted.
pub fn accepted(status: u16, body: &[u8]) -> bool {
    (200..300).contains(&status)
        && std::str::from_utf8(body).is_ok_and(|t| {
            t.contains("RebootInstancesResponse") && !t.contains("<return>false</return>")
        })
}

/// Credentials from the chain, first link that has them.
pub fn credentials(sources: &Sources, deadline: Instant) -> Result<Credentials, String> {
    if let Some(c) = from_env(sources) {
        return Ok(c);
    }
    if let Some(c) = from_shared_file(sources)? {
        return Ok(c);
    }
    if sources.var("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err("no AWS credentials: none in the environment or the shared credentials \
                    file, and the metadata service is disabled (AWS_EC2_METADATA_DISABLED)"
            .into());
    }
    from_imds(sources, deadline).map_err(|e| {
        format!(
            "no AWS credentials: none in the environment or the shared credentials file, and \
             the instance metadata service gave none ({e})"
        )
    })
}

fn from_env(sources: &Sources) -> Option<Credentials> {
    Some(Credentials {
        access_key_id: sources.var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: sources.var("AWS_SECRET_ACCESS_KEY")?,
        session_token: sources.var("AWS_SESSION_TOKEN"),
        source: "environment",
    })
}

fn from_shared_file(sources: &Sources) -> Result<Option<Credentials>, String> {
    let path = match sources.var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => std::path::PathBuf::from(p),
        None => match sources.var("HOME") {
            Some(home) => std::path::Path::new(&home).join(".aws").join("credentials"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let profile = sources.var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    Ok(parse_shared_credentials(&text, &profile))
}

/// The keys of `profile` in a shared credentials file (INI: `[profile]`, then `key = value`
/// lines; `#` and `;` start comments).
pub fn parse_shared_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = value,
                "aws_secret_access_key" => secret = value,
                "aws_session_token" => token = value,
                _ => {}
            }
        }
    }
    Some(Credentials {
        access_key_id: id?,
        secret_access_key: secret?,
        session_token: token,
        source: "shared credentials file",
    })
}

fn from_imds(sources: &Sources, deadline: Instant) -> Result<Credentials, String> {
    let base =
        sources.var("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| IMDS_ENDPOINT.into());
    let base = base.trim_end_matches('/');
    let deadline = deadline.min(Instant::now() + IMDS_TIMEOUT);
    let ttl = IMDS_TOKEN_TTL_S.to_string();
    let token = imds_ok(exchange(
        &format!("{base}/latest/api/token"),
        "PUT",
        &[("X-aws-ec2-metadata-token-ttl-seconds".into(), ttl)],
        b"",
        deadline,
        None,
    ))?;
    let token = String::from_utf8(token).map_err(|_| "the metadata token is not text")?;
    let auth = [("X-aws-ec2-metadata-token".to_owned(), token.trim().to_owned())];
    let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
    let roles = imds_ok(exchange(&roles_url, "GET", &auth, b"", deadline, None))?;
    let role = String::from_utf8_lossy(&roles).lines().next().unwrap_or("").trim().to_owned();
    if role.is_empty() {
        return Err("the instance has no IAM role".into());
    }
    let doc = imds_ok(exchange(&format!("{roles_url}{role}"), "GET", &auth, b"", deadline, None))?;
    let v: serde_json::Value =
        serde_json::from_slice(&doc).map_err(|_| "the metadata credentials are not JSON")?;
    let field = |k: &str| v[k].as_str().map(str::to_owned);
    match (field("AccessKeyId"), field("SecretAccessKey")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: field("Token"),
            source: "instance metadata",
        }),
        _ => Err("the metadata credentials lack AccessKeyId or SecretAccessKey".into()),
    }
}

fn imds_ok(r: Result<(u16, Vec<u8>), Exchange>) -> Result<Vec<u8>, String> {
    match r {
        Ok((200, body)) => Ok(body),
        Ok((status, _)) => Err(format!("metadata service answered HTTP {status}")),
        Err(Exchange::NotSent(e) | Exchange::Unknown(e)) => Err(e),
    }
}

/// Why an exchange ended without an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Exchange {
    /// The request did not go out: the call certainly did not run.
    NotSent(String),
    /// It went out and no whole answer came: it may have run.
    Unknown(String),
}

/// One HTTP/1.1 request with `Connection: close`, blocking, bounded by `deadline`: the
/// status and the body (at most [`MAX_AWS_RESPONSE_BYTES`]). Over TLS for `https`, with the
/// web PKI roots plus `ca_file`.
pub fn exchange(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
    deadline: Instant,
    ca_file: Option<&Path>,
) -> Result<(u16, Vec<u8>), Exchange> {
    let target = Target::parse(url).map_err(Exchange::NotSent)?;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    // A numeric address (an IP `endpoint`, the metadata service) is parsed, not looked up;
    // a host name goes through getaddrinfo, which takes no deadline: the caller's race
    // against the attempt's timeout (intervention.rs) bounds that wait instead.
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| Exchange::NotSent(format!("cannot resolve {}: {e}", target.host)))?
        .next()
        .ok_or_else(|| Exchange::NotSent(format!("cannot resolve {}", target.host)))?;
    // Queued behind other blocking work, or a slow lookup: too late to start the call.
    if Instant::now() >= deadline {
        return Err(Exchange::NotSent("timed out before connecting".into()));
    }
    let tcp = TcpStream::connect_timeout(&addr, left())
        .map_err(|e| Exchange::NotSent(format!("connect to {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let mut socket = Deadlined { tcp, deadline };
    let mut request = format!("{method} {} HTTP/1.1\r\n", target.path);
    let has_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
    if !has_host {
        request.push_str(&format!("Host: {}\r\n", host_header(&target)));
    }
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\nUser-Agent: cpra\r\n\r\n",
        body.len()
    ));
    let mut wire = request.into_bytes();
    wire.extend_from_slice(body);
    if target.tls {
        let options = cpra_net::tls::TlsOptions {
            ca_file: ca_file.map(Path::to_path_buf),
            insecure_skip_verify: false,
        };
        let config =
            cpra_net::tls::client_config(&options).map_err(|e| Exchange::NotSent(e.to_string()))?;
        let name = rustls_pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| Exchange::NotSent(format!("TLS name {}: {e}", target.host)))?;
        let mut conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| Exchange::NotSent(format!("TLS: {e}")))?;
        // The handshake on its own, before any request byte is handed to TLS: whatever ends
        // it (an untrusted certificate, a peer that never answers the ClientHello, the
        // deadline) left the request unsent, so the attempt failed and may be retried.
        while conn.is_handshaking() {
            conn.complete_io(&mut socket)
                .map_err(|e| Exchange::NotSent(format!("TLS handshake with {addr}: {e}")))?;
        }
        talk(rustls::StreamOwned::new(conn, socket), &wire, deadline)
    } else {
        talk(socket, &wire, deadline)
    }
}

/// A socket whose every read and write ends by `deadline`, and none starts after it. TLS
/// makes several per call (a handshake's flights, a record arriving in pieces), so a timeout
/// set once would let a peer answering a byte at a time run far past the attempt's bound.
struct Deadlined {
    tcp: TcpStream,
    deadline: Instant,
}

impl Deadlined {
    fn left(&self) -> std::io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out")),
        }
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// Whether a socket error is the deadline's (a read or write timeout shows as `WouldBlock`
/// on Unix, `TimedOut` elsewhere and from [`Deadlined`]).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// `Host` as HTTP writes it: the port only when it is not the scheme's.
pub fn host_header(target: &Target) -> String {
    let host =
        if target.host.contains(':') { format!("[{}]", target.host) } else { target.host.clone() };
    match (target.tls, target.port) {
        (true, 443) | (false, 80) => host,
        (_, port) => format!("{host}:{port}"),
    }
}

fn talk<S: Read + Write>(
    mut stream: S,
    wire: &[u8],
    deadline: Instant,
) -> Result<(u16, Vec<u8>), Exchange> {
    // A failed write may still have delivered the request (TLS flushes in pieces): only a
    // failure before any byte went out is certain, and a write error here cannot tell.
    if let Err(e) = stream.write_all(wire).and_then(|()| stream.flush()) {
        return Err(Exchange::Unknown(format!("request write: {e}")));
    }
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(done) = complete(&mut buf) {
            return done;
        }
        // A peer trickling its answer gets no more than the time left.
        if Instant::now() >= deadline {
            return Err(Exchange::Unknown("timed out".into()));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if buf.len() + n > MAX_AWS_RESPONSE_BYTES => {
                return Err(Exchange::Unknown("answer larger than its bound".into()))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A TLS peer closing without close_notify after the whole answer: judged below.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) if timed_out(&e) => return Err(Exchange::Unknown("timed out".into())),
            Err(e) => return Err(Exchange::Unknown(format!("reading the answer: {e}"))),
        }
    }
    // The peer closed: a body delimited by the close ends here.
    match parse_head(&buf, false) {
        Ok(Some(head)) if head.framing == Framing::UntilClose => {
            Ok((head.status, buf[head.len..].to_vec()))
        }
        _ => complete(&mut buf).unwrap_or_else(|| {
            Err(Exchange::Unknown("the connection closed before a whole answer".into()))
        }),
    }
}

/// The status and body once `buf` holds a whole answer (not for a body delimited by close).
fn complete(buf: &mut [u8]) -> Option<Result<(u16, Vec<u8>), Exchange>> {
    let head = match parse_head(buf, false) {
        Ok(Some(h)) => h,
        Ok(None) => return None,
        Err(_) => return Some(Err(Exchange::Unknown("an unparsable answer".into()))),
    };
    let body = &mut buf[head.len..];
    match head.framing {
        Framing::Empty => Some(Ok((head.status, Vec::new()))),
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            (body.len() >= n).then(|| Ok((head.status, body[..n].to_vec())))
        }
        Framing::Chunked => match dechunk(body, 0, 0) {
            Ok(d) if d.complete => Some(Ok((head.status, body[..d.body_len].to_vec()))),
            Ok(_) => None,
            Err(e) => Some(Err(Exchange::Unknown(e.into()))),
        },
        Framing::UntilClose => None,
    }
}

/// Reboots `instance_id` once: credentials, the signed call, EC2's answer judged, all by
/// `deadline` (set when the attempt was queued: a blocking thread busy with other work must
/// not start the call late, after the shard stopped waiting). Blocks: call it on a blocking
/// thread. `ca_file`: extra trusted roots for an `endpoint` behind an
/// internal CA (the actions' `extra_ca_file`).
pub fn reboot(
    sources: &Sources,
    region: &str,
    instance_id: &str,
    endpoint: Option<&str>,
    deadline: Instant,
    ca_file: Option<&Path>,
) -> InterventionResult {
    let credentials = match credentials(sources, deadline) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "aws intervention");
            return InterventionResult::Failed;
        }
    };
    let url = endpoint_url(region, endpoint);
    let target = match Target::parse(&url) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "aws intervention: endpoint");
            return InterventionResult::Failed;
        }
    };
    let body = reboot_body(instance_id);
    let headers = match signed_headers(
        &credentials,
        region,
        &url,
        &host_header(&target),
        body.as_bytes(),
        SystemTime::now(),
    ) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "aws intervention");
            return InterventionResult::Failed;
        }
    };
    match exchange(&url, "POST", &headers, body.as_bytes(), deadline, ca_file) {
        Ok((status, body)) if accepted(status, &body) => InterventionResult::Succeeded,
        Ok((status, body)) => {
            let code = error_code(&body).unwrap_or("");
            tracing::warn!(
                status,
                code,
                instance_id,
                credentials = credentials.source,
                "aws intervention: EC2 refused RebootInstances"
            );
            InterventionResult::Failed
        }
        Err(Exchange::NotSent(e)) => {
            tracing::warn!(error = %e, "aws intervention: not sent");
            InterventionResult::Failed
        }
        Err(Exchange::Unknown(e)) => {
            tracing::warn!(error = %e, "aws intervention: no answer (it may have run)");
            InterventionResult::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_operation("reboot-instance").is_ok());
        assert!(check_operation("Reboot-Instance").is_ok());
        assert!(check_operation("terminate-instance").is_err());
        assert!(check_region("us-east-1").is_ok() && check_region("us-gov-west-1").is_ok());
        for bad in ["", "US-EAST-1", "us east", "-x", "a.b", "us-east-1/"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
        assert!(check_instance_id("i-0123456789abcdef0").is_ok());
        assert!(check_instance_id("i-1234abcd").is_ok());
        for bad in ["", "i-", "0123456789abcdef0", "i-0123456789abcdefg", "i-123"] {
            assert!(check_instance_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_bytes() {
        assert_eq!(
            reboot_body("i-0123456789abcdef0"),
            "Action=RebootInstances&InstanceId.1=i-0123456789abcdef0&Version=2016-11-15"
        );
        assert_eq!(endpoint_url("eu-west-3", None), "https://ec2.eu-west-3.amazonaws.com/");
        assert_eq!(endpoint_url("x", Some("http://127.0.0.1:9/")), "http://127.0.0.1:9/");
    }

    /// The signature of a fixed request at a fixed time, as AWS's own test suite computes it
    /// for these inputs: the crate signs, this pins what reaches the wire.
    #[test]
    fn signature_shape() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("SESSION".into()),
            source: "test",
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let body = reboot_body("i-1234abcd");
        let headers = signed_headers(
            &creds,
            "eu-west-1",
            "https://ec2.eu-west-1.amazonaws.com/",
            "ec2.eu-west-1.amazonaws.com",
            body.as_bytes(),
            at,
        )
        .unwrap();
        let get =
            |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).unwrap().1.clone();
        assert_eq!(get("x-amz-date"), "20231114T221320Z");
        assert_eq!(get("x-amz-security-token"), "SESSION");
        let auth = get("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/ec2/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        assert!(!format!("{creds:?}").contains("wJalr"), "Debug hides the secret");
    }

    #[test]
    fn shared_credentials_profiles() {
        let text = "# keys\n[default]\naws_access_key_id = AKIADEF\naws_secret_access_key=s1\n\n\
                    [ops]\n; the ops role\naws_access_key_id=AKIAOPS\naws_secret_access_key = s2\n\
                    aws_session_token = t2\n";
        let d = parse_shared_credentials(text, "default").unwrap();
        assert_eq!((d.access_key_id.as_str(), d.session_token), ("AKIADEF", None));
        let o = parse_shared_credentials(text, "ops").unwrap();
        assert_eq!(
            (o.access_key_id.as_str(), o.secret_access_key.as_str(), o.session_token.as_deref()),
            ("AKIAOPS", "s2", Some("t2"))
        );
        assert!(parse_shared_credentials(text, "nope").is_none());
    }

    #[test]
    fn ec2_answers() {
        let ok = b"<RebootInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
                   <requestId>r</requestId><return>true</return></RebootInstancesResponse>";
        assert!(accepted(200, ok));
        assert!(!accepted(500, ok));
        let err = b"<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>\
                    <Message>The instance ID 'i-1' does not exist</Message></Error></Errors>\
                    <RequestID>r</RequestID></Response>";
        assert!(!accepted(400, err));
        assert_eq!(error_code(err), Some("InvalidInstanceID.NotFound"));
    }
}
