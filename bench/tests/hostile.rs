//! End to end: CPRA's probes on one glommio shard against the mock fleet's hostile servers.
//! Each hostile check must end with the right failure kind within its timeout (plus a generous
//! margin: the machine is shared and noisy, so no tight timing threshold), while checks of
//! healthy targets on the same shard keep completing; their lateness is measured and printed.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cpra_bench::fleet::{Fleet, HEALTHY_BODY};
use cpra_net::http::{HttpClient, HttpConfig, HttpSpec, TlsConfigCache};
use cpra_net::tcp::{self, TcpConfig};
use cpra_net::tls::{client_config, TlsOptions};
use cpra_net::tlscheck::{self, TlsCheckConfig};
use cpra_net::{FailureKind, Outcome};

/// Every hostile check's timeout.
const HOSTILE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Slack allowed past the timeout before we call it a hang (noisy shared machine).
const MARGIN: Duration = Duration::from_secs(1);
/// How often the healthy checks are scheduled while the hostile ones run.
const HEALTHY_INTERVAL: Duration = Duration::from_millis(20);

fn run_on_shard<G, F, T>(make: G) -> T
where
    G: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .io_memory(64 << 10)
        .spawn(make)
        .expect("start shard")
        .join()
        .expect("join shard")
}

struct Case {
    name: &'static str,
    expected: Option<FailureKind>,
    probe: Probe,
}

enum Probe {
    Http(Box<HttpConfig<'static>>),
    Tcp(TcpConfig),
    Tls(TlsCheckConfig),
}

fn http(addr: SocketAddr, tls: bool, tune: impl FnOnce(&mut HttpSpec)) -> Probe {
    let mut spec = HttpSpec::get(addr, "localhost", "/health");
    spec.tls = tls;
    spec.tls_options.insecure_skip_verify = tls;
    tune(&mut spec);
    Probe::Http(Box::new(
        HttpConfig::compile(&spec, &mut TlsConfigCache::default()).expect("compile"),
    ))
}

fn cases(fleet: &Fleet) -> Vec<Case> {
    let insecure =
        client_config(&TlsOptions { ca_file: None, insecure_skip_verify: true }).unwrap();
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    vec![
        Case {
            name: "accepts and never answers",
            expected: Some(FailureKind::Timeout),
            probe: http(fleet.silent.addr, false, |_| {}),
        },
        Case {
            name: "one byte per second",
            expected: Some(FailureKind::Timeout),
            probe: http(fleet.drip.addr, false, |_| {}),
        },
        Case {
            name: "1 MiB header block",
            expected: Some(FailureKind::TooLarge),
            probe: http(fleet.huge_header.addr, false, |_| {}),
        },
        Case {
            name: "endless body, body assertion",
            expected: Some(FailureKind::Assertion),
            probe: http(fleet.endless_body.addr, false, |s| {
                s.body_contains = Some("never-there".into())
            }),
        },
        Case {
            // No assertion needs the body: the probe stops reading after the head.
            name: "endless body, status only",
            expected: None,
            probe: http(fleet.endless_body.addr, false, |_| {}),
        },
        Case {
            name: "reset mid-response",
            expected: Some(FailureKind::Protocol),
            probe: http(fleet.reset_mid_response.addr, false, |_| {}),
        },
        Case {
            name: "garbage instead of TLS (https)",
            expected: Some(FailureKind::Tls),
            probe: http(fleet.garbage_tls.addr, true, |_| {}),
        },
        Case {
            name: "garbage instead of TLS (tls pulse)",
            expected: Some(FailureKind::Tls),
            probe: Probe::Tls(
                TlsCheckConfig::new(fleet.garbage_tls.addr, "localhost", insecure, 30, 7).unwrap(),
            ),
        },
        Case {
            name: "closed port",
            expected: Some(FailureKind::ConnectRefused),
            probe: Probe::Tcp(TcpConfig { addr: refused }),
        },
        Case {
            name: "tcp connect to the silent server",
            expected: None,
            probe: Probe::Tcp(TcpConfig { addr: fleet.silent.addr }),
        },
    ]
}

async fn run_probe(client: &HttpClient, probe: &Probe, timeout: Duration) -> Outcome {
    match probe {
        Probe::Http(cfg) => client.check(cfg, timeout).await,
        Probe::Tcp(cfg) => tcp::check(cfg, timeout).await,
        Probe::Tls(cfg) => tlscheck::check(cfg, timeout).await,
    }
}

#[derive(Default)]
struct Healthy {
    ok: u32,
    failed: Vec<Outcome>,
    max_lateness: Duration,
}

#[test]
fn hostile_targets_end_on_time_and_healthy_checks_keep_going() {
    let fleet = Fleet::start();
    let cases = cases(&fleet);
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ca_dir.path().join("fleet.pem");
    std::fs::write(&ca, &fleet.cert.cert_pem).unwrap();
    let mut tls_cache = TlsConfigCache::default();
    let healthy_http = {
        let mut spec = HttpSpec::get(fleet.healthy_http.addr, "localhost", "/");
        spec.body_contains = Some(String::from_utf8(HEALTHY_BODY.to_vec()).unwrap());
        HttpConfig::compile(&spec, &mut tls_cache).unwrap()
    };
    let healthy_https = {
        let mut spec = HttpSpec::get(fleet.healthy_https.addr, "localhost", "/");
        spec.tls = true;
        spec.tls_options.ca_file = Some(ca.clone());
        HttpConfig::compile(&spec, &mut tls_cache).unwrap()
    };

    let (results, healthy) = run_on_shard(move || async move {
        let client = Rc::new(HttpClient::new());
        let done = Rc::new(std::cell::Cell::new(false));
        let healthy = Rc::new(RefCell::new(Healthy::default()));

        // The healthy loop: on a fixed schedule, measure how late each tick starts.
        let healthy_task = {
            let (client, done, healthy) = (client.clone(), done.clone(), healthy.clone());
            glommio::spawn_local(async move {
                let start = Instant::now();
                let mut tick = 0u32;
                while !done.get() {
                    let scheduled = start + HEALTHY_INTERVAL * tick;
                    let now = Instant::now();
                    if scheduled > now {
                        glommio::timer::Timer::new(scheduled - now).await;
                    }
                    let lateness = Instant::now().saturating_duration_since(scheduled);
                    for cfg in [&healthy_http, &healthy_https] {
                        let o = client.check(cfg, Duration::from_secs(5)).await;
                        let mut h = healthy.borrow_mut();
                        if o.is_success() {
                            h.ok += 1;
                        } else {
                            h.failed.push(o);
                        }
                    }
                    let mut h = healthy.borrow_mut();
                    h.max_lateness = h.max_lateness.max(lateness);
                    tick += 1;
                }
            })
        };

        let tasks: Vec<_> = cases
            .into_iter()
            .map(|case| {
                let client = client.clone();
                glommio::spawn_local(async move {
                    let started = Instant::now();
                    let o = run_probe(&client, &case.probe, HOSTILE_TIMEOUT).await;
                    (case.name, case.expected, o, started.elapsed())
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await);
        }
        done.set(true);
        healthy_task.await;
        let h = healthy.take();
        (results, h)
    });

    for (name, expected, outcome, wall) in &results {
        let over_ms = wall.as_secs_f64() * 1e3 - HOSTILE_TIMEOUT.as_secs_f64() * 1e3;
        println!(
            "{name:<36} {:<16} wall {:>7.1} ms (past timeout: {over_ms:+.1} ms)",
            outcome.failure.map_or("success", |k| k.as_str()),
            wall.as_secs_f64() * 1e3
        );
        assert_eq!(outcome.failure, *expected, "{name}: {outcome:?}");
        assert!(*wall < HOSTILE_TIMEOUT + MARGIN, "{name} ran {wall:?}");
    }
    println!(
        "healthy checks on the same shard: {} ok, {} failed, max tick lateness {:.1} ms",
        healthy.ok,
        healthy.failed.len(),
        healthy.max_lateness.as_secs_f64() * 1e3
    );
    assert!(healthy.failed.is_empty(), "healthy checks failed: {:?}", healthy.failed);
    // The hostile checks last about a second; at a 20 ms schedule the healthy loop must have
    // completed many rounds meanwhile. 10 checks is a floor a stalled shard could not reach.
    assert!(healthy.ok >= 10, "only {} healthy checks completed", healthy.ok);
    assert!(healthy.max_lateness < MARGIN, "healthy tick late by {:?}", healthy.max_lateness);
}
