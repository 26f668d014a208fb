//! One delivery attempt of an alert to one endpoint, classified for the retry schedule; and
//! the one-request HTTP path that notifiers and HTTP interventions share (cpra-net's
//! [`HttpClient`], TLS included).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use cpra_net::http::{HttpClient, HttpConfig, HttpSpec, TlsConfigCache};
use cpra_net::resolver::ShardResolver;
use cpra_net::tls::TlsOptions;
use cpra_net::{Detail, FailureKind, Outcome};

use super::logfile::LogFiles;
use super::payload;
use super::retry::AttemptResult;
use super::smtp;
use super::target::Target;
use super::ActionsConfig;
use crate::alert::RenderedAlert;
use crate::manifest::Notify;

/// What one HTTP request came to, from the point of view of "did the receiver get it".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpResult {
    /// A response arrived with this status (2xx or not).
    Status(u16),
    /// Nothing reached the receiver: resolution, connect or TLS failed, or the request could
    /// not be written. Safe to repeat.
    NotSent(String),
    /// The request was sent but no usable answer came: it may have been acted on.
    Unknown(String),
    /// The request itself is wrong (bad URL or header): repeating cannot help.
    Invalid(String),
}

/// Classifies a net-crate outcome of a request sent with `expected_status` empty.
pub fn classify(outcome: &Outcome) -> HttpResult {
    let Some(kind) = outcome.failure else {
        // Success means some 2xx; the client does not say which, and no caller needs it.
        return HttpResult::Status(200);
    };
    let what = match outcome.detail {
        Detail::Text(t) => format!("{kind}: {t}"),
        Detail::Errno(e) => format!("{kind}: {}", std::io::Error::from_raw_os_error(e)),
        _ => kind.to_string(),
    };
    match (kind, outcome.detail) {
        (FailureKind::Status, Detail::HttpStatus(status)) => HttpResult::Status(status),
        (
            FailureKind::Dns
            | FailureKind::ConnectRefused
            | FailureKind::ConnectTimeout
            | FailureKind::Tls
            | FailureKind::Certificate
            | FailureKind::Permission
            | FailureKind::Unsupported
            // No socket could be opened (descriptors, buffers, local ports): nothing left.
            | FailureKind::LocalResource,
            _,
        ) => HttpResult::NotSent(what),
        // The client marks a failed write of the request with this text: not sent.
        (FailureKind::Connection, Detail::Text("request write failed")) => {
            HttpResult::NotSent(what)
        }
        _ => HttpResult::Unknown(what),
    }
}

/// A notification's HTTP result as a delivery attempt: retry transport errors before the
/// request was sent, 429 and 5xx; everything else is final.
pub fn attempt_result(result: HttpResult) -> AttemptResult {
    match result {
        HttpResult::Status(s) if (200..300).contains(&s) => AttemptResult::Delivered,
        HttpResult::Status(s) if s == 429 || (500..600).contains(&s) => {
            AttemptResult::Retryable(format!("receiver answered HTTP {s}"))
        }
        HttpResult::Status(s) => AttemptResult::Permanent(format!("receiver answered HTTP {s}")),
        HttpResult::NotSent(why) => AttemptResult::Retryable(why),
        HttpResult::Unknown(why) => AttemptResult::Permanent(format!(
            "{why} after the request was sent (not retried: it may have been delivered)"
        )),
        HttpResult::Invalid(why) => AttemptResult::Permanent(why),
    }
}

/// A shard's senders: the HTTP client and its TLS configs, the name resolver, log files.
pub struct Sender {
    client: HttpClient,
    tls: RefCell<TlsConfigCache>,
    resolver: Option<Rc<ShardResolver>>,
    attempt_timeout: Duration,
    logs: RefCell<LogFiles>,
    extra_ca_file: Option<PathBuf>,
}

/// One HTTP request to send.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub target: &'a Target,
    pub method: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl Sender {
    pub fn new(config: &ActionsConfig) -> Sender {
        Sender {
            client: HttpClient::new(),
            tls: RefCell::new(TlsConfigCache::default()),
            resolver: config.resolver.clone(),
            attempt_timeout: config.attempt_timeout,
            logs: RefCell::new(LogFiles::new(config.max_log_files)),
            extra_ca_file: config.extra_ca_file.clone(),
        }
    }

    /// Log files open now (bounded by `max_log_files`).
    pub fn open_log_files(&self) -> usize {
        self.logs.borrow().open()
    }

    async fn resolve(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<SocketAddr, String> {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        match &self.resolver {
            Some(r) => r
                .resolve_socket_addr(host, port, timeout)
                .await
                .map_err(|e| format!("cannot resolve {host}: {e:?}")),
            None => Err(format!("cannot resolve {host}: no resolver on this shard")),
        }
    }

    /// Sends one request within `timeout` (resolution included), no retries.
    pub async fn http(&self, req: Request<'_>, timeout: Duration) -> HttpResult {
        let started = std::time::Instant::now();
        let addr = match self.resolve(&req.target.host, req.target.port, timeout).await {
            Ok(a) => a,
            Err(e) => return HttpResult::NotSent(e),
        };
        let mut headers = req.headers;
        if req.body.is_some()
            && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let spec = HttpSpec {
            addr,
            host: req.target.host.clone(),
            tls: req.target.tls,
            method: req.method.to_owned(),
            path: req.target.path.clone(),
            headers,
            body: req.body,
            expected_status: Vec::new(),
            body_contains: None,
            body_regex: None,
            expected_headers: Vec::new(),
            max_response_time: None,
            keep_alive: false,
            cert_warn_days: None,
            tls_options: TlsOptions {
                ca_file: req.ca_file,
                insecure_skip_verify: req.insecure_skip_verify,
            },
            // Retries are the delivery layer's (with its own pauses), never the client's.
            retries: 0,
        };
        let config = match HttpConfig::compile(&spec, &mut self.tls.borrow_mut()) {
            Ok(c) => c,
            Err(e) => return HttpResult::Invalid(e.to_string()),
        };
        let left = timeout.saturating_sub(started.elapsed());
        classify(&self.client.check(&config, left).await)
    }

    /// One attempt; `job` is the delivery's id, `wall_ms` the Unix time of the payload.
    /// `parts_done` counts the requests of this delivery already accepted (a twilio notifier
    /// sends one per recipient): the attempt starts after them and moves it on, so a retry
    /// never sends a recipient the same message twice.
    pub async fn send(
        &self,
        job: u64,
        endpoint: &Notify,
        alert: &Rc<RenderedAlert>,
        wall_ms: i64,
        parts_done: &mut usize,
    ) -> AttemptResult {
        match endpoint {
            Notify::Log { file } => {
                let line = alert.log_line(wall_ms, &job.to_string());
                match file {
                    Some(path) => match self.logs.borrow_mut().append(path.as_ref(), &line) {
                        Ok(()) => AttemptResult::Delivered,
                        Err(e) => AttemptResult::Permanent(format!("log file {path}: {e}")),
                    },
                    None => {
                        crate::logging::alert_line(&line);
                        AttemptResult::Delivered
                    }
                }
            }
            Notify::Email { .. } => self.email(endpoint, alert, wall_ms).await,
            _ => {
                let requests = payload::http_requests(endpoint, alert, wall_ms);
                if requests.is_empty() {
                    return AttemptResult::Permanent("no request to send".into());
                }
                let started = std::time::Instant::now();
                for req in requests.into_iter().skip(*parts_done) {
                    let target = match Target::parse(&req.url) {
                        Ok(t) => t,
                        Err(e) => return AttemptResult::Permanent(e),
                    };
                    let request = Request {
                        target: &target,
                        method: &req.method,
                        headers: req.headers,
                        body: Some(req.body),
                        ca_file: self.extra_ca_file.clone(),
                        insecure_skip_verify: false,
                    };
                    // The requests of one attempt share its timeout.
                    let left = self.attempt_timeout.saturating_sub(started.elapsed());
                    match attempt_result(self.http(request, left).await) {
                        AttemptResult::Delivered => *parts_done += 1,
                        other => return other,
                    }
                }
                AttemptResult::Delivered
            }
        }
    }

    /// One email attempt: the server resolved and the TLS config chosen here, the SMTP
    /// session in `smtp.rs`.
    async fn email(&self, endpoint: &Notify, alert: &RenderedAlert, wall_ms: i64) -> AttemptResult {
        if let Err(e) = smtp::check(endpoint) {
            return AttemptResult::Permanent(e);
        }
        let Notify::Email { server, allow_insecure, .. } = endpoint else {
            unreachable!("smtp::check accepts only email endpoints")
        };
        let start = std::time::Instant::now();
        let (host, port) = match smtp::split_server(server) {
            Ok(hp) => hp,
            Err(e) => return AttemptResult::Permanent(e),
        };
        let addr = match self.resolve(&host, port, self.attempt_timeout).await {
            Ok(a) => a,
            Err(e) => return AttemptResult::Retryable(e),
        };
        let tls = self
            .tls
            .borrow_mut()
            .get(&TlsOptions {
                ca_file: self.extra_ca_file.clone(),
                insecure_skip_verify: *allow_insecure,
            })
            .map_err(|e| e.to_string());
        let transport = smtp::Transport {
            host,
            addr,
            tls,
            timeout: self.attempt_timeout.saturating_sub(start.elapsed()),
        };
        smtp::send(&transport, endpoint, alert, wall_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_of_outcomes() {
        let f = |k, d| Outcome::failure(k, 1, d);
        assert_eq!(classify(&Outcome::success(1)), HttpResult::Status(200));
        assert_eq!(
            classify(&f(FailureKind::Status, Detail::HttpStatus(503))),
            HttpResult::Status(503)
        );
        assert!(matches!(
            classify(&f(FailureKind::ConnectRefused, Detail::None)),
            HttpResult::NotSent(_)
        ));
        assert!(matches!(
            classify(&f(FailureKind::Connection, Detail::Text("request write failed"))),
            HttpResult::NotSent(_)
        ));
        assert!(matches!(classify(&f(FailureKind::Timeout, Detail::None)), HttpResult::Unknown(_)));
        // Out of file descriptors: nothing was sent, so it is retried like a 5xx (it was
        // "failed after the request was sent (not retried)" when it looked like a broken
        // connection).
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM, libc::EADDRNOTAVAIL]
        {
            let local = classify(&f(FailureKind::LocalResource, Detail::Errno(errno)));
            assert!(matches!(local, HttpResult::NotSent(_)), "{local:?}");
            assert!(matches!(attempt_result(local), AttemptResult::Retryable(_)));
        }
        assert!(matches!(
            classify(&f(FailureKind::Protocol, Detail::Text("reset"))),
            HttpResult::Unknown(_)
        ));
    }

    #[test]
    fn what_is_retried() {
        assert_eq!(attempt_result(HttpResult::Status(204)), AttemptResult::Delivered);
        for s in [429, 500, 503] {
            assert!(matches!(attempt_result(HttpResult::Status(s)), AttemptResult::Retryable(_)));
        }
        for s in [400, 401, 404] {
            assert!(matches!(attempt_result(HttpResult::Status(s)), AttemptResult::Permanent(_)));
        }
        assert!(matches!(
            attempt_result(HttpResult::NotSent("refused".into())),
            AttemptResult::Retryable(_)
        ));
        assert!(matches!(
            attempt_result(HttpResult::Unknown("reset".into())),
            AttemptResult::Permanent(_)
        ));
    }
}
