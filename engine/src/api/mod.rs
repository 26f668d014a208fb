//! The control plane: an HTTP/1.1 server on one thread of its own (not a shard), serving
//! `/healthz`, `/readyz`, `/metrics`, `/api/v1/monitors`, `POST /api/v1/reload` and the
//! dashboard (`/`, `dashboard`).
//!
//! What it is for: letting an operator and Prometheus watch a running engine. It runs hyper
//! on a current-thread tokio runtime owned by its thread, so a slow or hostile client costs
//! that thread only, never a shard's time; it reads the shards through what they publish
//! without locks (`counters::ShardShared`, `shard::FleetStatus`), or asks them through their
//! bounded query rings (`shard::queries`), and never touches a shard's state. Every client is bounded (connections, header bytes, header time, connection
//! lifetime, body bytes: the `API_*` constants in `limits.rs`). What it is not for: the
//! exposition format's details (`metrics`), or running checks.
//!
//! Paths not listed answer 404, so a client never mistakes a missing endpoint for an answer.

pub mod auth;
pub mod control;
pub mod dashboard;
pub mod metrics;
pub mod monitors;
pub mod reload;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Notify, Semaphore};

use crate::counters::ShardShared;
use crate::limits::{
    API_CONNECTION_MAX_MS, API_HEADER_READ_TIMEOUT_MS, API_MAX_BODY_BYTES, API_MAX_CONNECTIONS,
    API_MAX_HEADER_BYTES, API_SHARD_STALL_MS,
};
use crate::placement::Node;
use crate::runtime::StopHandle;
use crate::shard::queries::FleetQueries;
use crate::shard::FleetStatus;

/// Where `cpra run` listens unless told otherwise: loopback only, since reads are open to
/// anyone who can connect (put a proxy in front to serve more).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9850";

/// The `--listen` value that turns the control plane off.
pub const LISTEN_NONE: &str = "none";

/// How long the accept loop pauses after a failed accept (out of file descriptors): long
/// enough not to spin on EMFILE, short enough that the API comes back at once.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The bounds the server holds every client to: `limits.rs`'s `API_*` constants, apart from
/// tests that need a small one.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub connection_max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: API_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_millis(API_HEADER_READ_TIMEOUT_MS),
            connection_max: Duration::from_millis(API_CONNECTION_MAX_MS),
        }
    }
}

/// What the control plane reads of a running engine, handed over once the manifest is loaded
/// and scheduled (before that, `/readyz` says not ready).
pub struct Fleet {
    /// Each shard's published counters and histogram hand-overs, indexed by shard.
    pub shared: Vec<Arc<ShardShared>>,
    pub status: FleetStatus,
    /// Each shard's ring of questions (the monitor list).
    pub queries: FleetQueries,
    pub stop: StopHandle,
    /// The instant the shards' clocks count from (their heartbeats are ms since then).
    pub epoch: Instant,
    /// Re-reads the manifest (`POST /api/v1/reload`); `None` when the fleet came from no file.
    pub reloader: Option<Arc<crate::reload::Reloader>>,
}

/// What every request handler shares. Read-only once the fleet is set, apart from the
/// histogram cache (the control plane's own, not a shard's).
pub struct ApiState {
    fleet: OnceLock<Fleet>,
    histograms: metrics::HistogramCache,
    /// Turns for lists asking the shards (see `monitors::API_LISTS_IN_FLIGHT`).
    lists: Semaphore,
    /// What writes must present; `None`: writes are refused (403).
    token: Option<auth::ApiToken>,
    /// This process's slice of the fleet (`--node-index/--node-count/--replica`); unset: one
    /// node holding the whole fleet.
    node: OnceLock<Node>,
}

impl ApiState {
    fn fleet(&self) -> Option<&Fleet> {
        self.fleet.get()
    }

    /// This process's place in a deployment of several nodes.
    pub fn node(&self) -> Node {
        self.node.get().copied().unwrap_or(Node::SINGLE)
    }
}

/// A running control plane: its thread and how to stop it.
pub struct ApiServer {
    addr: SocketAddr,
    state: Arc<ApiState>,
    shutdown: Arc<Notify>,
    thread: std::thread::JoinHandle<()>,
}

impl ApiServer {
    /// Binds `addr` (in the caller's thread, so an address in use is a start error that names
    /// it) and starts the control-plane thread.
    /// Writes need `token` (none: writes answer 403).
    pub fn start(addr: &str, token: Option<auth::ApiToken>) -> Result<ApiServer, String> {
        Self::start_with(addr, Limits::default(), token)
    }

    /// [`ApiServer::start`] with other bounds (tests).
    pub fn start_with(
        addr: &str,
        limits: Limits,
        token: Option<auth::ApiToken>,
    ) -> Result<ApiServer, String> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                ": another process listens there; choose another address with --listen ADDR, \
                 or turn the API off with --listen none"
            } else {
                ""
            };
            format!("cannot listen on {addr}: {e}{hint}")
        })?;
        let local = listener.local_addr().map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the API's runtime: {e}"))?;
        let state = Arc::new(ApiState {
            fleet: OnceLock::new(),
            histograms: metrics::HistogramCache::default(),
            lists: Semaphore::new(monitors::API_LISTS_IN_FLIGHT),
            token,
            node: OnceLock::new(),
        });
        let shutdown = Arc::new(Notify::new());
        let thread = {
            let state = state.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("cpra-api".into())
                .spawn(move || runtime.block_on(serve(listener, limits, state, shutdown)))
                .map_err(|e| format!("cannot start the API thread: {e}"))?
        };
        Ok(ApiServer { addr: local, state, shutdown, thread })
    }

    /// The address bound (the port chosen by the system for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine is running: from now on `/readyz` is 200 and `/metrics` reads the shards.
    pub fn set_fleet(&self, fleet: Fleet) {
        let _ = self.state.fleet.set(fleet);
    }

    /// This process's slice of the fleet, for `/metrics` (`cpra_node_info`) and
    /// `/api/v1/node`; set once, before the fleet.
    pub fn set_node(&self, node: Node) {
        let _ = self.state.node.set(node);
    }

    /// Stops accepting, drops every open connection and joins the thread.
    pub fn stop(self) {
        // A stored permit: the accept loop sees it even if it is not waiting right now.
        self.shutdown.notify_one();
        if self.thread.join().is_err() {
            tracing::error!("the API thread panicked");
        }
    }
}

/// Accepts connections until `shutdown`, each served on its own task within the limits.
/// Returning drops the runtime and with it every connection still open.
async fn serve(
    listener: std::net::TcpListener,
    limits: Limits,
    state: Arc<ApiState>,
    shutdown: Arc<Notify>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("the API cannot use its socket: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            shutdown.notified().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Err(e)) => {
                tracing::warn!("the API cannot accept a connection: {e}");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
            Some(Ok((stream, peer))) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    let open = limits.max_connections;
                    tracing::debug!(%peer, "API connection closed unread: {open} open already");
                    drop(stream);
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    connection(stream, limits, state).await;
                    drop(slot);
                });
            }
        }
    }
}

/// Serves one connection: HTTP/1.1 only, its head bounded in bytes and time, its life bounded.
async fn connection(stream: tokio::net::TcpStream, limits: Limits, state: Arc<ApiState>) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, request).await) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(API_MAX_HEADER_BYTES);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    // Past its lifetime the connection is dropped (closed), answered or not.
    let _ = tokio::time::timeout(limits.connection_max, conn).await;
}

/// A plain-text answer.
fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The body length a request declares, if it declares one that parses.
fn declared_body_bytes(request: &Request<Incoming>) -> Option<u64> {
    request.headers().get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

async fn handle(state: &ApiState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if declared_body_bytes(&request).is_some_and(|n| n > API_MAX_BODY_BYTES) {
        // Not read: closing is the only way not to read it.
        let mut response = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {API_MAX_BODY_BYTES} bytes\n"),
        );
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let Some(route) = Route::parse(request.uri().path()) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut response = answer(state, route, request).await;
    // No answer is to be read as another type than it says (a JSON error as HTML).
    response.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn answer(
    state: &ApiState,
    route: Route,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let write = route.is_write();
    let (allowed, name) = if write { (Method::POST, "POST") } else { (Method::GET, "GET") };
    if request.method() != allowed {
        let mut response =
            text(StatusCode::METHOD_NOT_ALLOWED, format!("only {name} is allowed here\n"));
        response.headers_mut().insert(ALLOW, HeaderValue::from_static(name));
        return response;
    }
    if write {
        let presented = request.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if let Err(refusal) = auth::authorize(state.token.as_ref(), presented) {
            let status = match refusal {
                auth::Refusal::NoToken => StatusCode::FORBIDDEN,
                auth::Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            };
            let body = serde_json::json!({ "error": refusal.message() });
            let mut response = monitors::json_response(status, &body);
            if status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"cpra\""));
            }
            return response;
        }
    }
    match route {
        Route::Health => health(state),
        Route::Ready => ready(state),
        Route::Monitors => monitors::list(state, request.uri().query()).await,
        Route::MetricsMonitors => monitors::metrics(state, &request).await,
        Route::Metrics => metrics::answer(state, &request).await,
        Route::Monitor(id) => control::monitor(state, &id).await,
        Route::MonitorCommand(id, action) => control::command(state, &id, action, request).await,
        Route::Incidents => control::incidents(state, request.uri().query()).await,
        Route::Ack(id) => control::ack(state, &id, request).await,
        Route::Reload => reload::answer(state).await,
        Route::Node => node(state),
        Route::Summary => monitors::summary(state).await,
        Route::Dashboard(file) => dashboard::answer(file),
    }
}

/// What a request's path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Health,
    Ready,
    Metrics,
    MetricsMonitors,
    Monitors,
    Monitor(String),
    /// A monitor and one of the commands (`disable`, `enable`, `silence`, `unsilence`,
    /// `check`).
    MonitorCommand(String, &'static str),
    Incidents,
    Ack(String),
    /// Re-read the manifest and apply the difference (`POST /api/v1/reload`).
    Reload,
    /// This process's slice of the fleet (`GET /api/v1/node`).
    Node,
    /// The fleet's counts by state (`GET /api/v1/summary`).
    Summary,
    /// A file of the dashboard (its page for `/` and `/monitors/{id}`).
    Dashboard(dashboard::File),
}

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let fixed = match path {
            "/healthz" => Some(Route::Health),
            "/readyz" => Some(Route::Ready),
            "/metrics" => Some(Route::Metrics),
            "/metrics/monitors" => Some(Route::MetricsMonitors),
            "/api/v1/monitors" => Some(Route::Monitors),
            "/api/v1/incidents" => Some(Route::Incidents),
            "/api/v1/reload" => Some(Route::Reload),
            "/api/v1/node" => Some(Route::Node),
            "/api/v1/summary" => Some(Route::Summary),
            _ => dashboard::File::at(path).map(Route::Dashboard),
        };
        if fixed.is_some() {
            return fixed;
        }
        let segments: Vec<&str> = path.strip_prefix("/api/v1/")?.split('/').collect();
        let decoded = |segment: &str| -> Option<String> {
            let text = percent_decode(segment)?;
            (!text.is_empty()).then_some(text)
        };
        match segments.as_slice() {
            ["monitors", id] => Some(Route::Monitor(decoded(id)?)),
            ["monitors", id, action] => {
                let action = ["disable", "enable", "silence", "unsilence", "check"]
                    .into_iter()
                    .find(|a| a == action)?;
                Some(Route::MonitorCommand(decoded(id)?, action))
            }
            ["incidents", id, "ack"] => Some(Route::Ack(decoded(id)?)),
            _ => None,
        }
    }

    fn is_write(&self) -> bool {
        matches!(self, Route::MonitorCommand(..) | Route::Ack(_) | Route::Reload)
    }
}

/// A path segment with its `%XX` escapes decoded (`web%231` is `web#1`); `None` when an
/// escape is malformed or the result is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// 200 `ok` while every shard runs and goes round; 503 saying which does not (ended, or no
/// dispatch round for [`API_SHARD_STALL_MS`]), or that the engine stops.
/// Before the shards start (the manifest still loading) the process is alive and working:
/// 200 too, so a liveness probe does not kill a long load (`/readyz` says it is not ready).
fn health(state: &ApiState) -> Response<Full<Bytes>> {
    let Some(fleet) = state.fleet() else {
        return text(StatusCode::OK, "ok: starting\n");
    };
    if fleet.stop.is_stopped() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n");
    }
    let shards = fleet.shared.len();
    let down: Vec<String> = fleet
        .shared
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_running())
        .map(|(i, _)| i.to_string())
        .collect();
    if !down.is_empty() {
        let down = down.join(", ");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not running: shard {down} of {shards}\n"),
        );
    }
    let now_ms = fleet.epoch.elapsed().as_millis() as u64;
    let stalled: Vec<String> = fleet
        .shared
        .iter()
        .enumerate()
        .filter(|(_, s)| now_ms.saturating_sub(s.heartbeat_ms()) > API_SHARD_STALL_MS)
        .map(|(i, s)| format!("shard {i} ({} s)", now_ms.saturating_sub(s.heartbeat_ms()) / 1000))
        .collect();
    if stalled.is_empty() {
        text(StatusCode::OK, "ok\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stalled: no dispatch round in {} of {shards}\n", stalled.join(", ")),
        )
    }
}

/// `GET /api/v1/node`: `{"index":1,"count":3,"replica":0,"monitors":334}`, this process's
/// slice (monitors: those it holds, `null` while the manifest loads).
fn node(state: &ApiState) -> Response<Full<Bytes>> {
    let node = state.node();
    let monitors = state.fleet().map(|f| f.status.read().monitors());
    let body = serde_json::json!({
        "index": node.index,
        "count": node.count,
        "replica": node.replica,
        "monitors": monitors,
    });
    monitors::json_response(StatusCode::OK, &body)
}

/// 200 once the manifest is loaded and every monitor scheduled; 503 before, and when stopping.
fn ready(state: &ApiState) -> Response<Full<Bytes>> {
    match state.fleet() {
        None => text(StatusCode::SERVICE_UNAVAILABLE, "not ready: loading the manifest\n"),
        Some(fleet) if fleet.stop.is_stopped() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready: stopping\n")
        }
        Some(_) => text(StatusCode::OK, "ready\n"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    use super::*;

    /// A bound for a test gone wrong, not a timing assertion.
    const BOUND: Duration = Duration::from_secs(30);

    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(BOUND)).unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: cpra\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    #[test]
    fn paths_route_to_reads_and_writes() {
        assert_eq!(Route::parse("/api/v1/monitors/web-1"), Some(Route::Monitor("web-1".into())));
        assert_eq!(
            Route::parse("/api/v1/monitors/web-1/disable"),
            Some(Route::MonitorCommand("web-1".into(), "disable"))
        );
        assert_eq!(Route::parse("/api/v1/incidents/web%231/ack"), Some(Route::Ack("web#1".into())));
        assert_eq!(Route::parse("/api/v1/monitors/web/explode"), None);
        assert_eq!(Route::parse("/api/v1/monitors//disable"), None);
        assert_eq!(Route::parse("/api/v1/monitors/a%zz"), None);
        assert!(Route::parse("/api/v1/incidents/x%231/ack").unwrap().is_write());
        assert!(Route::parse("/api/v1/reload").unwrap().is_write());
        assert!(!Route::parse("/api/v1/incidents").unwrap().is_write());
        assert_eq!(Route::parse("/"), Some(Route::Dashboard(dashboard::File::Page)));
        assert_eq!(
            Route::parse("/monitors/web%231"),
            Some(Route::Dashboard(dashboard::File::Page))
        );
        assert_eq!(Route::parse("/monitors/"), None);
        assert_eq!(Route::parse("/ui/app.js"), Some(Route::Dashboard(dashboard::File::Script)));
        assert_eq!(Route::parse("/ui/other.js"), None);
        assert!(!Route::parse("/").unwrap().is_write());
    }

    #[test]
    fn ready_once_the_fleet_is_set_and_healthy_while_every_shard_runs() {
        let api = ApiServer::start("127.0.0.1:0", None).unwrap();
        let addr = api.addr();
        assert_eq!(get(addr, "/readyz").0, 503);
        assert_eq!(get(addr, "/healthz"), (200, "ok: starting\n".into()));
        let shared: Vec<_> = (0..2).map(|_| Arc::new(ShardShared::new())).collect();
        let running = crate::counters::RunningGuard::new(shared[0].clone());
        let stop = StopHandle::default();
        api.set_fleet(Fleet {
            shared: shared.clone(),
            status: FleetStatus::new(2),
            queries: FleetQueries::new(2),
            stop: stop.clone(),
            epoch: Instant::now(),
            reloader: None,
        });
        assert_eq!(get(addr, "/readyz"), (200, "ready\n".into()));
        assert_eq!(get(addr, "/healthz"), (503, "not running: shard 1 of 2\n".into()));
        let _also = crate::counters::RunningGuard::new(shared[1].clone());
        assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
        drop(running);
        assert_eq!(get(addr, "/healthz"), (503, "not running: shard 0 of 2\n".into()));
        let _again = crate::counters::RunningGuard::new(shared[0].clone());
        stop.stop();
        assert_eq!(get(addr, "/healthz"), (503, "stopping\n".into()));
        assert_eq!(get(addr, "/readyz"), (503, "not ready: stopping\n".into()));
        api.stop();
        assert!(TcpStream::connect(addr).is_err(), "still listening after stop");
    }

    #[test]
    fn a_shard_that_stops_going_round_is_unhealthy() {
        let api = ApiServer::start("127.0.0.1:0", None).unwrap();
        let shared: Vec<_> = (0..2).map(|_| Arc::new(ShardShared::new())).collect();
        let _running: Vec<_> =
            shared.iter().map(|s| crate::counters::RunningGuard::new(s.clone())).collect();
        // The shards' clocks started 60 s ago; shard 1 last went round at 20 s.
        let epoch = Instant::now() - Duration::from_secs(60);
        shared[0].beat(60_000);
        shared[1].beat(20_000);
        api.set_fleet(Fleet {
            shared: shared.clone(),
            status: FleetStatus::new(2),
            queries: FleetQueries::new(2),
            stop: StopHandle::default(),
            epoch,
            reloader: None,
        });
        let (status, body) = get(api.addr(), "/healthz");
        assert_eq!(status, 503);
        assert!(body.starts_with("stalled: no dispatch round in shard 1 (4"), "{body}");
        shared[1].beat(60_000);
        assert_eq!(get(api.addr(), "/healthz"), (200, "ok\n".into()));
        api.stop();
    }

    #[test]
    fn a_connection_past_the_limit_is_closed_unanswered() {
        let limits =
            Limits { max_connections: 2, header_read_timeout: BOUND, connection_max: BOUND };
        let api = ApiServer::start_with("127.0.0.1:0", limits, None).unwrap();
        let addr = api.addr();
        // Two clients hold both slots with a request head they never finish.
        let mut holders: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        assert_eq!(get(addr, "/healthz"), (0, String::new()), "closed without an answer");
        // A freed slot serves again.
        holders.pop();
        let end = Instant::now() + BOUND;
        while get(addr, "/healthz").0 != 200 {
            assert!(Instant::now() < end, "a freed slot never served");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(holders);
        api.stop();
    }
}
