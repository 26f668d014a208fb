//! A scripted HTTP/1.1 server on loopback: each path answers from its own script, and every
//! request is recorded. It plays the targets, the notification receivers and the
//! intervention endpoints of `cpra demo` and of the end-to-end tests.
//!
//! Plain std threads (one listener, one thread per connection, `Connection: close` on every
//! answer), so it shares nothing with the engine's shards. A `Mutex` guards the scripts: this
//! is a test and demo server, not the engine's hot path. Not for production use.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::limits::{DEMO_MAX_REQUEST_BYTES, MAX_RECORDED};

/// How long a connection may take to send its request before it is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One recorded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
}

impl Recorded {
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

/// Decides a request's status; may change the other scripts (see [`Route::Hook`]).
pub type HookFn = Box<dyn FnMut(&Recorded, &mut Scripts) -> u16 + Send>;

/// What a path answers.
pub enum Route {
    /// The statuses in order, one per request, then `then` for ever.
    Statuses { next: VecDeque<u16>, then: u16 },
    /// `status` after `delay` (a slow target).
    Slow { delay: Duration, status: u16 },
    /// Decided per request by a function of the request and the shared scripts (e.g. an
    /// intervention endpoint that heals a target).
    Hook(HookFn),
}

/// The routes by path (without query).
#[derive(Default)]
pub struct Scripts {
    routes: HashMap<String, Route>,
}

impl Scripts {
    pub fn set(&mut self, path: &str, route: Route) {
        self.routes.insert(path.to_string(), route);
    }

    /// `path` answers `statuses` in order, then `then`.
    pub fn statuses(&mut self, path: &str, statuses: &[u16], then: u16) {
        self.set(path, Route::Statuses { next: statuses.iter().copied().collect(), then });
    }
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<(Scripts, VecDeque<Recorded>, u64)>,
    changed: Condvar,
}

/// A running scripted server; stops when dropped.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    /// Binds 127.0.0.1 on an ephemeral port. Paths without a route answer 404.
    pub fn start() -> std::io::Result<ScriptedServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new().name("scripted-http".into()).spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("scripted-conn".into())
                        .spawn(move || serve(stream, &shared));
                }
            })?
        };
        Ok(ScriptedServer { addr, shared, stop, thread: Some(thread) })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the scripts.
    pub fn script(&self, f: impl FnOnce(&mut Scripts)) {
        f(&mut self.shared.scripts.lock().expect("scripts lock").0);
    }

    /// Every request recorded so far to `path` (all paths when `None`).
    pub fn requests(&self, path: Option<&str>) -> Vec<Recorded> {
        let guard = self.shared.scripts.lock().expect("scripts lock");
        guard.1.iter().filter(|r| path.is_none_or(|p| r.path == p)).cloned().collect()
    }

    /// Waits until `pred` holds over the requests to `path`, at most `timeout`; returns them.
    /// A bound for a test that went wrong, not a timing assertion.
    pub fn wait_for(
        &self,
        path: Option<&str>,
        timeout: Duration,
        pred: impl Fn(&[Recorded]) -> bool,
    ) -> Vec<Recorded> {
        let end = Instant::now() + timeout;
        let mut guard = self.shared.scripts.lock().expect("scripts lock");
        loop {
            let seen: Vec<Recorded> =
                guard.1.iter().filter(|r| path.is_none_or(|p| r.path == p)).cloned().collect();
            let now = Instant::now();
            if pred(&seen) || now >= end {
                return seen;
            }
            guard = self.shared.changed.wait_timeout(guard, end - now).expect("scripts lock").0;
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request: head, then `Content-Length` bytes of body.
fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).ok()?.to_string();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_string();
            let target = first.next()?;
            let path = target.split('?').next().unwrap_or("/").to_string();
            let length = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0)
                .min(DEMO_MAX_REQUEST_BYTES);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < length {
                let n = stream.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(length);
            return Some((method, path, body));
        }
        if buf.len() > DEMO_MAX_REQUEST_BYTES {
            return None;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Some((method, path, body)) = read_request(&mut stream) else { return };
    let mut record = Recorded { method, path, body, status: 404 };
    let mut delay = Duration::ZERO;
    {
        let mut guard = shared.scripts.lock().expect("scripts lock");
        let (scripts, _, _) = &mut *guard;
        // Take the route out while it runs, so a hook may change the other scripts.
        if let Some(mut route) = scripts.routes.remove(&record.path) {
            record.status = match &mut route {
                Route::Statuses { next, then } => next.pop_front().unwrap_or(*then),
                Route::Slow { delay: d, status } => {
                    delay = *d;
                    *status
                }
                Route::Hook(f) => f(&record, scripts),
            };
            scripts.routes.entry(record.path.clone()).or_insert(route);
        }
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let status = record.status;
    {
        let mut guard = shared.scripts.lock().expect("scripts lock");
        if guard.1.len() == MAX_RECORDED {
            guard.1.pop_front();
            guard.2 += 1;
        }
        guard.1.push_back(record);
    }
    shared.changed.notify_all();
    let body = if (200..300).contains(&status) { "ok" } else { "no" };
    let answer = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> u16 {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out[9..12].parse().unwrap()
    }

    #[test]
    fn paths_follow_their_scripts_and_requests_are_recorded() {
        let server = ScriptedServer::start().unwrap();
        server.script(|s| {
            s.statuses("/a", &[503, 503], 200);
            s.set(
                "/heal",
                Route::Hook(Box::new(|_, scripts| {
                    scripts.statuses("/a", &[], 204);
                    200
                })),
            );
        });
        assert_eq!(get(server.addr, "/a"), 503);
        assert_eq!(get(server.addr, "/a?x=1"), 503);
        assert_eq!(get(server.addr, "/a"), 200);
        assert_eq!(get(server.addr, "/heal"), 200);
        assert_eq!(get(server.addr, "/a"), 204);
        assert_eq!(get(server.addr, "/nope"), 404);
        let seen = server.requests(Some("/a"));
        assert_eq!(seen.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 503, 200, 204]);
    }
}
