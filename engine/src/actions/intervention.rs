//! Interventions: one attempt at bringing a target back, bounded by its timeout, ending in
//! [`InterventionResult`]: succeeded, failed (it certainly did not work), or unknown (the
//! request went out and no answer came: it may have run, so it is not retried).
//!
//! - docker: `POST /containers/{name}/restart?t=` on the engine's unix socket;
//! - webhook: the request in `target`; 2xx succeeded, other statuses failed;
//! - systemd: `systemctl restart|reload-or-restart|try-restart [--job-mode=M] UNIT` on a blocking thread (never on the
//!   shard thread), its exit status the outcome;
//! - aws: EC2 `RebootInstances`, SigV4-signed (`aws.rs`), on a blocking thread;
//! - kubernetes: a PATCH of the workload's pod template annotation (rollout restart) or of its
//!   `scale` subresource, against the kubeconfig's server or the in-cluster one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpra_net::unix_http::{self, UnixHttpError, UnixResponse};

use super::kubeconfig::{self, Cluster};
use super::send::{HttpResult, Request, Sender};
use super::target::Target;
use super::{ActionsConfig, InterventionResult, DEFAULT_INTERVENTION_TIMEOUT};
use crate::limits::{MAX_INTERVENTION_RETRIES, MAX_KUBERNETES_NAME_BYTES};
use crate::manifest::InterventionAction;

/// How long Docker waits for the container to stop before killing it (`t=`), when the
/// manifest gives no timeout: Docker's own default.
pub const DOCKER_DEFAULT_STOP_SECS: u64 = 10;

/// Extra time given to a docker restart beyond its stop timeout: the start itself.
pub const DOCKER_START_MARGIN: Duration = Duration::from_secs(20);

/// Time an aws attempt gets beyond its timeout before the shard stops waiting for it: the
/// attempt ends by its deadline on its own unless a name lookup hangs, and a second covers
/// the hand-back from the blocking thread.
pub const AWS_RACE_MARGIN: Duration = Duration::from_secs(1);

/// How often a blocking thread looks at a running `systemctl`: cheap, and short next to any
/// unit's restart time.
const CHILD_POLL: Duration = Duration::from_millis(10);

/// A few words on `action` for alerts and logs (`MonitorInfo::intervention`), e.g.
/// `docker restart web-1`.
pub fn describe(action: &InterventionAction) -> String {
    match action {
        InterventionAction::Docker { container, .. } => format!("docker restart {container}"),
        InterventionAction::Webhook { url, method, .. } => {
            let method = if method.is_empty() { "POST" } else { method.as_str() };
            format!("webhook {} {url}", method.to_ascii_uppercase())
        }
        InterventionAction::Systemd { unit, mode, .. } => {
            let args = systemctl_args(unit, mode.as_deref())
                .unwrap_or_else(|_| vec!["restart".to_owned(), unit.clone()]);
            format!("systemctl {}", args.join(" "))
        }
        InterventionAction::Aws { region, instance_id, .. } => {
            format!("aws ec2 reboot-instances {instance_id} ({region})")
        }
        InterventionAction::Kubernetes { namespace, kind, name, replicas, .. } => match replicas {
            Some(n) => format!("kubernetes scale {kind} {namespace}/{name} to {n}"),
            None => format!("kubernetes rollout restart {kind} {namespace}/{name}"),
        },
    }
}

/// The Docker engine request for a restart.
pub fn docker_restart_request(container: &str, stop_secs: u64) -> Result<Vec<u8>, String> {
    // The same rule as the docker pulse: nothing odd may reach the request line.
    cpra_net::docker::DockerConfig::new("/", container)?;
    Ok(format!(
        "POST /containers/{container}/restart?t={stop_secs} HTTP/1.1\r\nHost: docker\r\n\
         User-Agent: cpra\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .into_bytes())
}

/// Docker answers 204 when restarted, 404 for no such container, 500 on an engine error. An
/// exchange that failed before the request was sent failed; after, it may have restarted.
pub fn docker_result(result: &Result<UnixResponse, UnixHttpError>) -> InterventionResult {
    match result {
        Ok(r) if (200..300).contains(&r.status) => InterventionResult::Succeeded,
        Ok(_) => InterventionResult::Failed,
        Err(e) if !e.request_sent() => InterventionResult::Failed,
        Err(_) => InterventionResult::Unknown,
    }
}

/// A webhook's HTTP result as an intervention outcome.
pub fn http_result(result: &HttpResult) -> InterventionResult {
    match result {
        HttpResult::Status(s) if (200..300).contains(s) => InterventionResult::Succeeded,
        HttpResult::Status(_) | HttpResult::NotSent(_) | HttpResult::Invalid(_) => {
            InterventionResult::Failed
        }
        HttpResult::Unknown(_) => InterventionResult::Unknown,
    }
}

/// systemd job modes (`systemctl --job-mode=`), the `mode` that systemd's D-Bus
/// `RestartUnit(unit, mode)` takes. Manifests written for the Go CPRA say `mode: replace`, so
/// such a mode means "restart, queued with this job mode".
const SYSTEMD_JOB_MODES: [&str; 6] =
    ["replace", "fail", "isolate", "ignore-dependencies", "ignore-requirements", "flush"];

/// `systemctl` arguments for `mode`: a verb (`restart`, the default; `reload` or
/// `reload-or-restart`; `try-restart`) or, as the Go CPRA wrote it, a job mode
/// (`replace`, `fail`, ...), which restarts with `--job-mode=MODE`.
pub fn systemctl_args(unit: &str, mode: Option<&str>) -> Result<Vec<String>, String> {
    let mode = mode.unwrap_or("restart").to_ascii_lowercase();
    let mut args = match mode.as_str() {
        "restart" => vec!["restart".to_owned()],
        "reload" | "reload-or-restart" => vec!["reload-or-restart".to_owned()],
        "try-restart" => vec!["try-restart".to_owned()],
        job if SYSTEMD_JOB_MODES.contains(&job) => {
            vec!["restart".to_owned(), format!("--job-mode={job}")]
        }
        other => {
            return Err(format!(
                "systemd mode `{other}`: use restart, reload-or-restart or try-restart, or a job \
                 mode ({})",
                SYSTEMD_JOB_MODES.join(", ")
            ))
        }
    };
    if unit.is_empty() || unit.starts_with('-') || unit.chars().any(char::is_whitespace) {
        return Err(format!("systemd unit `{unit}` is not a unit name"));
    }
    args.push(unit.to_owned());
    Ok(args)
}

/// Runs `program args` on the calling (blocking) thread, at most `timeout`; killed past it.
pub fn run_bounded(program: &Path, args: &[String], timeout: Duration) -> InterventionResult {
    let start = Instant::now();
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(program = %program.display(), error = %e, "intervention: cannot run");
            return InterventionResult::Failed;
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return InterventionResult::Succeeded,
            Ok(Some(status)) => {
                tracing::warn!(program = %program.display(), %status, "intervention: failed");
                return InterventionResult::Failed;
            }
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(program = %program.display(), "intervention: timed out, killed");
                // It may have restarted the unit before hanging.
                return InterventionResult::Unknown;
            }
            Ok(None) => std::thread::sleep(CHILD_POLL),
            Err(_) => return InterventionResult::Unknown,
        }
    }
}

/// The API path, content type and body of a Kubernetes intervention: a rollout restart
/// (Deployment, StatefulSet, DaemonSet) or a scale to `replicas`.
pub fn kubernetes_patch(
    kind: &str,
    namespace: &str,
    name: &str,
    replicas: Option<u32>,
    now_rfc3339: &str,
) -> Result<(String, &'static str, String), String> {
    let plural = match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => "deployments",
        "statefulset" | "statefulsets" | "sts" => "statefulsets",
        "daemonset" | "daemonsets" | "ds" => "daemonsets",
        other => {
            return Err(format!(
                "kubernetes kind `{other}`: use deployment, statefulset or daemonset"
            ))
        }
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_KUBERNETES_NAME_BYTES
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !valid(namespace) || !valid(name) {
        return Err(format!(
            "kubernetes name `{namespace}/{name}` is not a valid object name (lowercase \
             letters, digits, `-` and `.`, at most {MAX_KUBERNETES_NAME_BYTES} characters)"
        ));
    }
    let path = format!("/apis/apps/v1/namespaces/{namespace}/{plural}/{name}");
    Ok(match replicas {
        Some(n) if plural == "daemonsets" => {
            return Err(format!("a daemonset cannot be scaled (replicas: {n})"))
        }
        Some(n) => (
            format!("{path}/scale"),
            "application/merge-patch+json",
            serde_json::json!({ "spec": { "replicas": n } }).to_string(),
        ),
        None => (
            path,
            "application/strategic-merge-patch+json",
            serde_json::json!({ "spec": { "template": { "metadata": { "annotations": {
                "kubectl.kubernetes.io/restartedAt": now_rfc3339 } } } } })
            .to_string(),
        ),
    })
}

/// A PEM written where rustls can read it as a `ca_file` (`certificate-authority-data`).
fn ca_pem_file(pem: &[u8]) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pem.hash(&mut h);
    let path = std::env::temp_dir().join(format!("cpra-kube-ca-{:016x}.pem", h.finish()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(pem).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

async fn kubernetes(
    config: &ActionsConfig,
    sender: &Sender,
    action: &InterventionAction,
    timeout: Duration,
) -> Result<InterventionResult, String> {
    let InterventionAction::Kubernetes { namespace, kind, name, replicas, kubeconfig_path, .. } =
        action
    else {
        unreachable!("kubernetes() is called for kubernetes actions")
    };
    let cluster: Cluster = match kubeconfig_path {
        Some(p) => kubeconfig::load(Path::new(p))?,
        None => kubeconfig::in_cluster(
            &config.kube_service_account_dir,
            std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
        )?,
    };
    let now = super::payload::rfc3339((config.wall_clock_ms)());
    let (path, content_type, body) = kubernetes_patch(kind, namespace, name, *replicas, &now)?;
    let target = Target::parse(&cluster.server)?.with_path(&path);
    let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
    if let Some(token) = &cluster.token {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    let ca_file = match (&cluster.ca_pem, &cluster.ca_file) {
        (Some(pem), _) => Some(ca_pem_file(pem)?),
        (None, f) => f.clone(),
    };
    let request = Request {
        target: &target,
        method: "PATCH",
        headers,
        body: Some(body.into_bytes()),
        ca_file,
        insecure_skip_verify: cluster.insecure_skip_verify,
    };
    let result = sender.http(request, timeout).await;
    if !matches!(result, HttpResult::Status(200..=299)) {
        tracing::warn!(?result, "kubernetes intervention");
    }
    Ok(http_result(&result))
}

fn timeout_of(ms: Option<u64>) -> Duration {
    ms.map_or(DEFAULT_INTERVENTION_TIMEOUT, Duration::from_millis)
}

/// Runs `action`, and again after a failure while `retries` allow (at most
/// [`MAX_INTERVENTION_RETRIES`]), `pause` apart. An unknown outcome is never retried: the
/// first attempt may have worked, and a second restart on top of it is not harmless
/// (docs/state-machine.md). Each attempt is bounded by the action's timeout.
pub async fn run_with_retries(
    config: &ActionsConfig,
    sender: &Sender,
    action: &InterventionAction,
    retries: u32,
) -> InterventionResult {
    let attempts = 1 + retries.min(MAX_INTERVENTION_RETRIES);
    let mut result = InterventionResult::Failed;
    for attempt in 1..=attempts {
        result = run(config, sender, action).await;
        if result != InterventionResult::Failed || attempt == attempts {
            break;
        }
        tracing::info!(
            action = action.action_name(),
            attempt,
            attempts,
            "intervention failed; trying again"
        );
        glommio::timer::sleep(config.intervention_retry_pause).await;
    }
    result
}

/// Runs `action` once, bounded by its timeout.
pub async fn run(
    config: &ActionsConfig,
    sender: &Sender,
    action: &InterventionAction,
) -> InterventionResult {
    match action {
        InterventionAction::Docker { container, timeout_ms } => {
            let stop_secs = timeout_ms.map_or(DOCKER_DEFAULT_STOP_SECS, |ms| ms.div_ceil(1000));
            let request = match docker_restart_request(container, stop_secs) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "docker intervention");
                    return InterventionResult::Failed;
                }
            };
            let deadline = Instant::now() + Duration::from_secs(stop_secs) + DOCKER_START_MARGIN;
            let result = unix_http::exchange(&config.docker_socket, &request, deadline).await;
            match &result {
                Ok(r) if !(200..300).contains(&r.status) => {
                    // The engine explains a refusal in `{"message": ...}`.
                    let message = serde_json::from_slice::<serde_json::Value>(&r.body)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    tracing::warn!(status = r.status, %message, "docker intervention");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(socket = %config.docker_socket.display(), error = %e, "docker intervention")
                }
            }
            docker_result(&result)
        }
        InterventionAction::Webhook { url, method, headers, body, timeout_ms } => {
            let target = match Target::parse(url) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook intervention");
                    return InterventionResult::Failed;
                }
            };
            let method =
                if method.is_empty() { "POST".to_owned() } else { method.to_ascii_uppercase() };
            let request = Request {
                target: &target,
                method: &method,
                headers: headers.as_ref().clone(),
                body: body.as_ref().map(|b| b.clone().into_bytes()),
                ca_file: None,
                insecure_skip_verify: false,
            };
            http_result(&sender.http(request, timeout_of(*timeout_ms)).await)
        }
        InterventionAction::Systemd { unit, mode, timeout_ms } => {
            let args = match systemctl_args(unit, mode.as_deref()) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "systemd intervention");
                    return InterventionResult::Failed;
                }
            };
            let program: Arc<Path> = config.systemctl.clone().into();
            let timeout = timeout_of(*timeout_ms);
            glommio::executor().spawn_blocking(move || run_bounded(&program, &args, timeout)).await
        }
        InterventionAction::Aws { region, instance_id, endpoint, timeout_ms, .. } => {
            let (sources, region, instance_id, endpoint) =
                (config.aws.clone(), region.clone(), instance_id.clone(), endpoint.clone());
            let ca_file = config.extra_ca_file.clone();
            let timeout = timeout_of(*timeout_ms);
            // From now, not from when the blocking thread gets to it: the race below starts
            // now too, and the call must not start after the shard stopped waiting.
            let deadline = Instant::now() + timeout;
            // Files, name resolution and blocking sockets: never on the shard thread.
            let attempt = glommio::executor().spawn_blocking(move || {
                super::aws::reboot(
                    &sources,
                    &region,
                    &instance_id,
                    endpoint.as_deref(),
                    deadline,
                    ca_file.as_deref(),
                )
            });
            // The attempt keeps its own deadline on every socket wait; this race bounds what
            // it cannot: resolving a host-name endpoint (getaddrinfo takes no timeout). If the
            // race is lost the outcome is unknown, and the blocking thread may stay in that
            // lookup until the resolver gives up; glommio has one blocking thread per
            // executor, so the journal's file removals and systemd interventions queue behind
            // it until then.
            let bound = timeout + AWS_RACE_MARGIN;
            match glommio::timer::timeout(bound, async { Ok(attempt.await) }).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        ?bound,
                        "aws intervention: no outcome in time (it may have run)"
                    );
                    InterventionResult::Unknown
                }
            }
        }
        InterventionAction::Kubernetes { timeout_ms, .. } => {
            let timeout = timeout_of(*timeout_ms);
            match kubernetes(config, sender, action, timeout).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "kubernetes intervention");
                    InterventionResult::Failed
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions() {
        let d = |a| describe(&a);
        assert_eq!(
            d(InterventionAction::Docker { container: "web-1".into(), timeout_ms: None }),
            "docker restart web-1"
        );
        assert_eq!(
            d(InterventionAction::Systemd {
                unit: "nginx".into(),
                mode: Some("reload".into()),
                timeout_ms: None
            }),
            "systemctl reload-or-restart nginx"
        );
        assert_eq!(
            d(InterventionAction::Kubernetes {
                namespace: "shop".into(),
                kind: "deployment".into(),
                name: "web".into(),
                replicas: Some(3),
                kubeconfig_path: None,
                timeout_ms: None,
            }),
            "kubernetes scale deployment shop/web to 3"
        );
    }

    #[test]
    fn docker_request_bytes() {
        let r = docker_restart_request("web-1", 10).unwrap();
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /containers/web-1/restart?t=10 HTTP/1.1\r\nHost: docker\r\nUser-Agent: cpra\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert!(docker_restart_request("a b", 1).is_err());
        assert!(docker_restart_request("../x", 1).is_err());
    }

    #[test]
    fn outcomes() {
        let status = |status| Ok(UnixResponse { status, body: Vec::new() });
        let io = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(docker_result(&status(204)), InterventionResult::Succeeded);
        assert_eq!(docker_result(&status(404)), InterventionResult::Failed);
        assert_eq!(docker_result(&Err(UnixHttpError::Connect(io()))), InterventionResult::Failed);
        assert_eq!(docker_result(&Err(UnixHttpError::Write(io()))), InterventionResult::Failed);
        assert_eq!(
            docker_result(&Err(UnixHttpError::Timeout { sent: false })),
            InterventionResult::Failed
        );
        assert_eq!(docker_result(&Err(UnixHttpError::Read(io()))), InterventionResult::Unknown);
        assert_eq!(
            docker_result(&Err(UnixHttpError::Timeout { sent: true })),
            InterventionResult::Unknown
        );
        assert_eq!(docker_result(&Err(UnixHttpError::BodyTooLarge)), InterventionResult::Unknown);
        assert_eq!(http_result(&HttpResult::Status(202)), InterventionResult::Succeeded);
        assert_eq!(http_result(&HttpResult::Status(500)), InterventionResult::Failed);
        assert_eq!(http_result(&HttpResult::Unknown("reset".into())), InterventionResult::Unknown);
    }

    #[test]
    fn systemctl_arguments() {
        assert_eq!(systemctl_args("nginx.service", None).unwrap(), ["restart", "nginx.service"]);
        assert_eq!(
            systemctl_args("nginx", Some("reload")).unwrap(),
            ["reload-or-restart", "nginx"]
        );
        assert_eq!(
            systemctl_args("unbound.service", Some("replace")).unwrap(),
            ["restart", "--job-mode=replace", "unbound.service"]
        );
        assert!(systemctl_args("nginx", Some("stop")).is_err());
        assert!(systemctl_args("--now", None).is_err());
    }

    #[test]
    fn kubernetes_patches() {
        let (path, ct, body) =
            kubernetes_patch("Deployment", "shop", "web", None, "2026-01-01T00:00:00.000Z")
                .unwrap();
        assert_eq!(path, "/apis/apps/v1/namespaces/shop/deployments/web");
        assert_eq!(ct, "application/strategic-merge-patch+json");
        assert_eq!(
            body,
            "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"2026-01-01T00:00:00.000Z\"}}}}}"
        );
        let (path, ct, body) = kubernetes_patch("statefulset", "db", "pg", Some(3), "t").unwrap();
        assert_eq!(path, "/apis/apps/v1/namespaces/db/statefulsets/pg/scale");
        assert_eq!(
            (ct, body.as_str()),
            ("application/merge-patch+json", "{\"spec\":{\"replicas\":3}}")
        );
        assert!(kubernetes_patch("pod", "a", "b", None, "t").is_err());
        assert!(kubernetes_patch("deployment", "A/../b", "b", None, "t").is_err());
    }

    #[test]
    fn bounded_command() {
        assert_eq!(
            run_bounded(Path::new("true"), &[], Duration::from_secs(5)),
            InterventionResult::Succeeded
        );
        assert_eq!(
            run_bounded(Path::new("false"), &[], Duration::from_secs(5)),
            InterventionResult::Failed
        );
        assert_eq!(
            run_bounded(Path::new("/nonexistent/systemctl"), &[], Duration::from_secs(5)),
            InterventionResult::Failed
        );
    }
}
