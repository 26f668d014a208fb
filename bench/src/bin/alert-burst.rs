//! `alert-burst`: how fast one shard's notifier delivers a burst of alerts (one per monitor, as
//! when a shared dependency fails) to a webhook receiver on loopback, with CPRA's in-flight
//! bound versus the reference: one delivery at a time, as a notifier that posts each alert and
//! waits for the answer before the next. Prints a human summary and, last, one JSON line.
//!
//! ```sh
//! cargo run --release -p cpra-bench --bin alert-burst -- --alerts 2000 --in-flight 32 --latency-ms 2
//! ```
//!
//! Method: a receiver thread on 127.0.0.1 answers each POST with 200 after `--latency-ms` (a
//! real receiver's processing time; Slack and PagerDuty answer in tens of ms), one thread per
//! connection. Both phases queue `--alerts` alerts for distinct monitors on one glommio shard
//! and time until every one is delivered (`Actions::drain`). The phases run one after the other.
//! Bounded: at most `MAX_ALERTS` alerts, each phase at most `MAX_SECONDS`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use cpra_engine::actions::{Actions, ActionsConfig};
use cpra_engine::alert::{render, MonitorInfo};
use cpra_engine::colour::Colour;
use cpra_engine::manifest::Notify;
use cpra_engine::state::{Effect, Reason};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Most alerts per phase: a burst larger than a shard's queue bound measures the bound.
const MAX_ALERTS: usize = 4096;
/// Longest phase, so a typo cannot tie up the shared machine.
const MAX_SECONDS: u64 = 120;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 2000)]
    alerts: usize,
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// The receiver's time to answer each request.
    #[arg(long, default_value_t = 2)]
    latency_ms: u64,
}

/// The receiver: answers every request with 200 after `latency`, one thread per connection.
fn receiver(latency: Duration) -> (u16, Arc<AtomicU64>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let served = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (served2, stop2) = (served.clone(), stop.clone());
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            };
            let served = served2.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(&stream);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((n, v)) = line.split_once(':') {
                        if n.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                std::thread::sleep(latency);
                served.fetch_add(1, Ordering::Relaxed);
                let _ = (&stream).write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    (port, served, stop)
}

#[derive(Debug, Clone, Copy)]
struct Phase {
    delivered: u64,
    undelivered: u64,
    seconds: f64,
}

impl Phase {
    fn per_sec(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }
}

fn phase(port: u16, alerts: usize, in_flight: usize) -> Phase {
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let mut config = ActionsConfig::with_monotonic_clock();
            config.max_in_flight = in_flight;
            config.max_queued = MAX_ALERTS;
            let actions = Actions::new(config);
            let endpoint = Arc::new(Notify::Webhook {
                url: format!("http://127.0.0.1:{port}/hook"),
                method: "POST".into(),
                headers: Arc::new(Vec::new()),
            });
            let effect = Effect::Alert {
                colour: Colour::Red,
                reason: Reason::ThresholdReached,
                incident_seq: Some(1),
                consecutive_failures: 3,
                not_before_ms: 0,
            };
            let rendered: Vec<_> = (0..alerts)
                .map(|i| {
                    let id = format!("monitor-{i:05}");
                    let info =
                        MonitorInfo { id: &id, name: &id, target: "db:5432", intervention: None };
                    Rc::new(render(&effect, &info, None).expect("an alert renders"))
                })
                .collect();
            let start = Instant::now();
            for (i, alert) in rendered.into_iter().enumerate() {
                actions.queue_alert(i as u32, std::slice::from_ref(&endpoint), alert);
            }
            actions.drain(Duration::from_secs(MAX_SECONDS)).await;
            let c = actions.counters();
            Phase {
                delivered: c.sent,
                undelivered: c.undelivered,
                seconds: start.elapsed().as_secs_f64(),
            }
        })
        .expect("shard thread")
        .join()
        .expect("phase")
}

fn main() {
    cpra_engine::allocator::set_policy();
    let args = Args::parse();
    let alerts = args.alerts.clamp(1, MAX_ALERTS);
    let in_flight = args.in_flight.clamp(1, 1024);
    let (port, served, stop) = receiver(Duration::from_millis(args.latency_ms));
    let cpra = phase(port, alerts, in_flight);
    let reference = phase(port, alerts, 1);
    stop.store(true, Ordering::Relaxed);
    let ratio = cpra.per_sec() / reference.per_sec().max(1e-9);
    println!("alert burst: {alerts} alerts, receiver latency {} ms, on loopback", args.latency_ms);
    println!(
        "  cpra (in flight {in_flight:>4}): {:>9.1} alerts/s, {:.3} s, {} undelivered",
        cpra.per_sec(),
        cpra.seconds,
        cpra.undelivered
    );
    println!(
        "  one at a time (reference):  {:>9.1} alerts/s, {:.3} s, {} undelivered",
        reference.per_sec(),
        reference.seconds,
        reference.undelivered
    );
    println!("  ratio: {ratio:.1}x; receiver served {}", served.load(Ordering::Relaxed));
    println!(
        "{{\"bench\":\"alert-burst\",\"alerts\":{alerts},\"latency_ms\":{},\"in_flight\":{in_flight},\"cpra_alerts_per_sec\":{:.1},\"cpra_undelivered\":{},\"reference_alerts_per_sec\":{:.1},\"reference_undelivered\":{},\"ratio\":{ratio:.2}}}",
        args.latency_ms,
        cpra.per_sec(),
        cpra.undelivered,
        reference.per_sec(),
        reference.undelivered
    );
}
