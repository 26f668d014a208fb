//! The `docker` pulse: ask the Docker Engine API, over its unix socket, whether a container is
//! running (`GET /containers/{name}/json`, then `State.Running`).
//!
//! What it is for: monitoring containers on the host CPRA runs on. What it is not for: remote
//! engines over TCP (`DOCKER_HOST=tcp://...` is refused when the manifest is loaded: it would need TLS client
//! certificates and is better checked with an `https` monitor), starting or restarting
//! containers (that is an intervention, not a check), or Swarm services.
//!
//! A running container whose own `HEALTHCHECK` reports `unhealthy` fails too: Docker itself
//! then considers it broken, and a monitor that ignores that would stay green on a dead app.
//!
//! No Docker engine runs on the machines where CPRA's tests run, so the tests start a unix
//! socket server that answers with the Docker API's real response shapes (chunked JSON for
//! inspect, `{"message": ...}` with 404 for a missing container).

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::deadline::{saturating_us, Deadline};
use crate::limits::{
    MAX_CONTAINER_NAME_BYTES, MAX_HEADERS, MAX_HEADER_BLOCK_BYTES, MAX_UNIX_BODY_BYTES,
};
use crate::outcome::{local_resource_errno, Detail, FailureKind, Outcome};
use crate::unix_http::{
    self, UnixHttpError, UnixResponse, BODY_TOO_LARGE, HEAD_TOO_LARGE, TOO_MANY_HEADERS,
};

/// Where the engine listens when `DOCKER_HOST` is not set.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A `docker` monitor.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    /// The engine's unix socket.
    pub socket: PathBuf,
    /// Container name or id.
    pub container: String,
    /// The request, built once at load time.
    request: Box<[u8]>,
}

impl DockerConfig {
    /// A config for `container` on the engine at `socket`. Refuses names Docker itself would
    /// refuse, so nothing odd ends up in the request line.
    pub fn new(socket: impl Into<PathBuf>, container: &str) -> Result<DockerConfig, String> {
        let valid_first = container.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let valid_rest =
            container.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_first || !valid_rest || container.len() > MAX_CONTAINER_NAME_BYTES {
            return Err(format!(
                "invalid container name {container:?}: use the name or id Docker shows \
                 ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most {MAX_CONTAINER_NAME_BYTES} characters)"
            ));
        }
        let request =
            format!("GET /containers/{container}/json HTTP/1.1\r\nHost: docker\r\nUser-Agent: cpra\r\nConnection: close\r\n\r\n");
        Ok(DockerConfig {
            socket: socket.into(),
            container: container.to_owned(),
            request: request.into_bytes().into(),
        })
    }

    /// A config for `container` on the engine named by `docker_host` (the `DOCKER_HOST`
    /// value, if set), else [`DEFAULT_SOCKET`].
    pub fn from_docker_host(
        docker_host: Option<&str>,
        container: &str,
    ) -> Result<DockerConfig, String> {
        Self::new(socket_from_docker_host(docker_host)?, container)
    }
}

/// The unix socket path a `DOCKER_HOST` value names.
pub fn socket_from_docker_host(docker_host: Option<&str>) -> Result<PathBuf, String> {
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
            // The value is not repeated: a tcp:// one may carry credentials.
            Some(_) => Err("DOCKER_HOST: the unix socket path must be absolute".to_owned()),
            None => Err("DOCKER_HOST: only unix:// engines are supported by docker monitors; \
                 check a remote engine with an https monitor on its API"
                .to_owned()),
        },
    }
}

/// Runs one `docker` check within `timeout`.
pub async fn check(cfg: &DockerConfig, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let deadline = Deadline::new(start, timeout).end();
    let result = unix_http::exchange(&cfg.socket, &cfg.request, deadline).await;
    let latency_us = saturating_us(start.elapsed());
    match result {
        Ok(response) => judge(&response, latency_us),
        Err(e) => failure_outcome(&e, latency_us),
    }
}

/// The outcome of an exchange that did not give a response.
fn failure_outcome(e: &UnixHttpError, latency_us: u32) -> Outcome {
    let lost = |e: &io::Error| {
        e.raw_os_error().map_or(Detail::Text("connection to the Docker engine lost"), Detail::Errno)
    };
    let (kind, detail) = match e {
        UnixHttpError::Connect(e) => return connect_outcome(e, latency_us),
        UnixHttpError::Timeout { .. } => {
            (FailureKind::Timeout, Detail::Text("the Docker engine did not answer"))
        }
        UnixHttpError::Write(e) | UnixHttpError::Read(e) => (FailureKind::Connection, lost(e)),
        UnixHttpError::Protocol(text) => (FailureKind::Protocol, Detail::Text(text)),
        UnixHttpError::TooManyHeaders => {
            (FailureKind::TooLarge, Detail::CountText(TOO_MANY_HEADERS, MAX_HEADERS as u32))
        }
        UnixHttpError::HeadTooLarge => {
            (FailureKind::TooLarge, Detail::SizeText(HEAD_TOO_LARGE, MAX_HEADER_BLOCK_BYTES as u32))
        }
        UnixHttpError::BodyTooLarge => {
            (FailureKind::TooLarge, Detail::SizeText(BODY_TOO_LARGE, MAX_UNIX_BODY_BYTES as u32))
        }
    };
    Outcome::failure(kind, latency_us, detail)
}

/// The part of the inspect document the check reads; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Inspect<'a> {
    #[serde(rename = "State")]
    #[serde(borrow)]
    state: State<'a>,
}

#[derive(Deserialize)]
struct State<'a> {
    #[serde(rename = "Running")]
    running: bool,
    #[serde(rename = "Status", default)]
    status: &'a str,
    #[serde(rename = "Health", default)]
    #[serde(borrow)]
    health: Option<Health<'a>>,
}

#[derive(Deserialize)]
struct Health<'a> {
    #[serde(rename = "Status")]
    status: &'a str,
}

/// The outcome an engine response means. Pure.
fn judge(response: &UnixResponse, latency_us: u32) -> Outcome {
    let fail = |kind, text| Outcome::failure(kind, latency_us, Detail::Text(text));
    match response.status {
        200 => {}
        404 => return fail(FailureKind::Status, "no such container"),
        status => {
            return Outcome::failure(FailureKind::Status, latency_us, Detail::HttpStatus(status))
        }
    }
    let Ok(inspect) = serde_json::from_slice::<Inspect>(&response.body) else {
        return fail(FailureKind::Protocol, "the engine's inspect document has no State.Running");
    };
    let state = inspect.state;
    if !state.running {
        let text = match state.status {
            "exited" => "container is not running (exited)",
            "paused" => "container is not running (paused)",
            "restarting" => "container is not running (restarting)",
            "created" => "container is not running (created, never started)",
            "dead" => "container is not running (dead)",
            "removing" => "container is not running (being removed)",
            _ => "container is not running",
        };
        return fail(FailureKind::Status, text);
    }
    if state.health.is_some_and(|h| h.status == "unhealthy") {
        return fail(
            FailureKind::Status,
            "container is running but its HEALTHCHECK reports unhealthy",
        );
    }
    Outcome::success(latency_us)
}

fn connect_outcome(e: &io::Error, latency_us: u32) -> Outcome {
    if let Some(errno) = local_resource_errno(e) {
        return Outcome::failure(FailureKind::LocalResource, latency_us, Detail::Errno(errno));
    }
    let (kind, text) = match e.raw_os_error() {
        Some(libc::ENOENT) => (
            FailureKind::Connection,
            "Docker socket not found: is the engine running? (set DOCKER_HOST=unix:///path/to/docker.sock)",
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => (
            FailureKind::Permission,
            "no permission on the Docker socket: run as root or add the user to the docker group",
        ),
        Some(libc::ECONNREFUSED) => {
            (FailureKind::ConnectRefused, "the Docker socket exists but nothing listens on it (engine stopped?)")
        }
        _ => (FailureKind::Connection, "cannot connect to the Docker socket"),
    };
    Outcome::failure(kind, latency_us, Detail::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn no_local_resource_to_reach_the_engine_is_not_the_targets_failure() {
        for errno in crate::outcome::tests::LOCAL_ERRNOS {
            let o = connect_outcome(&io::Error::from_raw_os_error(errno), 5);
            assert_eq!(o.failure, Some(FailureKind::LocalResource), "{errno}");
        }
    }
    use std::os::unix::net::UnixListener;
    use std::path::Path;

    /// Real shapes of the engine's answers (abridged from Docker Engine API v1.43 output).
    fn inspect_json(running: bool, status: &str, health: Option<&str>) -> String {
        let health = health.map_or(String::new(), |h| {
            format!(r#","Health":{{"Status":"{h}","FailingStreak":0,"Log":[]}}"#)
        });
        format!(
            r#"{{"Id":"4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2","Created":"2026-11-28T10:00:00.000000000Z","Path":"nginx","Args":["-g","daemon off;"],"State":{{"Status":"{status}","Running":{running},"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":4242,"ExitCode":0,"Error":"","StartedAt":"2026-11-28T10:00:01Z","FinishedAt":"0001-01-01T00:00:00Z"{health}}},"Name":"/web","RestartCount":0,"Config":{{"Hostname":"4fa6e0f0c678","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Labels":{{"com.example.team":"web"}}}}}}"#
        )
    }

    fn chunked(status_line: &str, body: &str) -> Vec<u8> {
        let mut out = format!(
            "{status_line}\r\nApi-Version: 1.43\r\nContent-Type: application/json\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/24.0.7 (linux)\r\nDate: Sat, 28 Nov 2026 15:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        // Split into uneven chunks, as a Go server flushing its buffer would.
        for part in body.as_bytes().chunks(100) {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    fn with_length(status_line: &str, body: &str) -> Vec<u8> {
        format!(
            "{status_line}\r\nApi-Version: 1.43\r\nContent-Type: application/json\r\nServer: Docker/24.0.7 (linux)\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// A fake engine on a unix socket in `dir`: serves one canned response per container name.
    fn fake_engine(dir: &Path, requests: usize) -> (PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let path = dir.join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for i in 0..requests {
                let (mut conn, _) = listener.accept().unwrap();
                let req = crate::test_server::read_head(&mut conn).expect("a request head");
                let req = String::from_utf8(req).unwrap();
                let path = req.split_whitespace().nth(1).unwrap().to_owned();
                let response = match path.as_str() {
                    // Restarting when first asked, running after.
                    "/containers/flaky/json" if i == 0 => {
                        with_length("HTTP/1.1 200 OK", &inspect_json(false, "restarting", None))
                    }
                    "/containers/web/json" | "/containers/flaky/json" => {
                        chunked("HTTP/1.1 200 OK", &inspect_json(true, "running", None))
                    }
                    "/containers/healthy/json" => {
                        chunked("HTTP/1.1 200 OK", &inspect_json(true, "running", Some("healthy")))
                    }
                    "/containers/sick/json" => chunked(
                        "HTTP/1.1 200 OK",
                        &inspect_json(true, "running", Some("unhealthy")),
                    ),
                    "/containers/stopped/json" => {
                        with_length("HTTP/1.1 200 OK", &inspect_json(false, "exited", None))
                    }
                    "/containers/garbage/json" => b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
                    _ => with_length(
                        "HTTP/1.1 404 Not Found",
                        &format!(
                            r#"{{"message":"No such container: {}"}}"#,
                            &path[12..path.len() - 5]
                        ),
                    ),
                };
                conn.write_all(&response).unwrap();
                seen.push(path);
            }
            seen
        });
        (path, handle)
    }

    fn run_checks(cfgs: Vec<DockerConfig>) -> Vec<Outcome> {
        crate::test_executor::run(move || async move {
            let mut out = Vec::new();
            for cfg in &cfgs {
                out.push(check(cfg, Duration::from_secs(10)).await);
            }
            out
        })
    }

    #[test]
    fn engine_answers_decide_the_check() {
        let cases = [
            ("web", None, ""),
            ("healthy", None, ""),
            ("sick", Some(FailureKind::Status), "unhealthy"),
            ("stopped", Some(FailureKind::Status), "not running (exited)"),
            ("ghost", Some(FailureKind::Status), "no such container"),
            ("garbage", Some(FailureKind::Protocol), "unparsable HTTP response head"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (socket, engine) = fake_engine(dir.path(), cases.len());
        let cfgs =
            cases.iter().map(|(name, _, _)| DockerConfig::new(&socket, name).unwrap()).collect();
        let outcomes = run_checks(cfgs);
        let seen = engine.join().unwrap();
        assert_eq!(seen[0], "/containers/web/json");
        for ((name, kind, text), o) in cases.iter().zip(&outcomes) {
            assert_eq!(o.failure, *kind, "{name}: {o:?}");
            assert!(o.describe(name).contains(text), "{name}: {}", o.describe(name));
        }
    }

    #[test]
    fn a_target_failing_once_fails_the_check_unless_retries_allow_one_more() {
        for (retries, requests, failure) in [(0, 1, Some(FailureKind::Status)), (1, 2, None)] {
            let dir = tempfile::tempdir().unwrap();
            let (socket, engine) = fake_engine(dir.path(), requests);
            let cfg = DockerConfig::new(&socket, "flaky").unwrap();
            let o = crate::test_executor::run(move || async move {
                let timeout = Duration::from_secs(10);
                crate::retry::with_retries(retries, timeout, |t| check(&cfg, t)).await
            });
            engine.join().unwrap();
            assert_eq!(o.failure, failure, "retries {retries}: {o:?}");
        }
    }

    #[test]
    fn missing_socket_is_a_connection_failure_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::new(dir.path().join("nope.sock"), "web").unwrap();
        let o = &run_checks(vec![cfg])[0];
        assert_eq!(o.failure, Some(FailureKind::Connection), "{o:?}");
        assert!(
            o.describe("docker:web").contains("Docker socket not found"),
            "{}",
            o.describe("docker:web")
        );
    }

    #[test]
    fn silent_engine_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let _listener = UnixListener::bind(&path).unwrap(); // accepts (backlog) but never answers
        let cfg = DockerConfig::new(&path, "web").unwrap();
        let o = crate::test_executor::run(move || async move {
            check(&cfg, Duration::from_millis(200)).await
        });
        assert_eq!(o.failure, Some(FailureKind::Timeout), "{o:?}");
    }

    #[test]
    fn docker_host_and_names_are_checked_at_load_time() {
        assert_eq!(socket_from_docker_host(None).unwrap(), PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(socket_from_docker_host(Some("")).unwrap(), PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(
            socket_from_docker_host(Some("unix:///run/user/1000/docker.sock")).unwrap(),
            PathBuf::from("/run/user/1000/docker.sock")
        );
        assert!(socket_from_docker_host(Some("tcp://10.0.0.1:2376"))
            .unwrap_err()
            .contains("only unix://"));
        assert!(socket_from_docker_host(Some("unix://relative")).is_err());
        assert!(DockerConfig::new("/x", "web/../../info")
            .unwrap_err()
            .contains("invalid container name"));
        assert!(DockerConfig::new("/x", "").is_err());
        assert!(DockerConfig::new("/x", "-web").is_err());
        assert!(DockerConfig::new("/x", "my_app.web-1").is_ok());
    }
}
