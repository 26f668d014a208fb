//! `GET /metrics`: the engine's counters in the Prometheus exposition format, built with
//! `prometheus-client` from what the shards publish, at each scrape.
//!
//! What it is for: fleet-wide gauges (monitors by state, incidents open), counters (checks
//! by result, failures by kind, delayed checks by reason, alerts by colour and outcome,
//! interventions by result), per-shard series where a single shard can be the problem, and
//! two histograms (check duration, schedule lateness) merged from the shards' hdrhistograms.
//! What it is not for: per-monitor series (a million-monitor node must not make a
//! million-series scrape by accident).
//!
//! Format: OpenMetrics when the scraper asks for it (`Accept: application/openmetrics-text`,
//! as Prometheus does), else the classic text format 0.0.4 (what `curl | promtool check
//! metrics` reads). `prometheus-client` writes OpenMetrics; the classic form differs only in
//! naming a counter's family with its `_total` suffix and in having no `# EOF`.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cpra_net::FailureKind;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::ApiState;
use crate::colour::Colour;
use crate::counters::{
    new_duration_histogram, new_lateness_histogram, CountersSnapshot, ShardShared,
};
use crate::limits::API_HISTOGRAM_WAIT_MS;
use crate::shard::StatusSnapshot;

/// How often a scrape looks for the shards' histogram copies while it waits for them.
const HANDOVER_POLL: Duration = Duration::from_millis(1);

/// Histogram bucket bounds, in seconds: from sub-millisecond loopback checks and lateness to
/// a minute-long timeout. Fixed, so series line up across restarts and nodes.
pub const BUCKETS_S: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Reads one delay reason's count from a shard's counters.
type DelayCount = fn(&CountersSnapshot) -> u64;

/// Why a check started later than its slot (`cpra_checks_delayed_total{reason}`), with the
/// shard counter behind it. A new reason adds its row here and its counter to
/// `CountersSnapshot`.
const DELAY_REASONS: [(&str, DelayCount); 3] = [
    // Dispatch rounds that ended with monitors still due because the job ring was full.
    ("ring_full", |c| c.ring_full_delays),
    // Slots skipped (never replayed) because the previous check ran past them.
    ("missed_slot", |c| c.missed_slots),
    // Checks put back to run again shortly because a socket could not be opened for want of a
    // local resource (file descriptors, buffers, memory, local ports): never a failure.
    ("local_resource", |c| c.checks_delayed_local_resource),
];

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The last histogram copies each shard handed over, so a shard that does not answer in time
/// (busy, stalled or stopped) still shows what it last had, and concurrent scrapes share the
/// copies any of them took. The control plane's own: no shard ever locks it.
#[derive(Default)]
pub struct HistogramCache(Mutex<Vec<ShardHistograms>>);

struct ShardHistograms {
    lateness_us: Histogram<u64>,
    duration_us: Histogram<u64>,
    lateness_at: Option<Instant>,
    duration_at: Option<Instant>,
}

impl HistogramCache {
    /// Takes the copies waiting in the shards' hand-over slots; true when every shard has
    /// handed both over since `since`.
    fn collect(&self, shared: &[std::sync::Arc<ShardShared>], since: Instant) -> bool {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while cache.len() < shared.len() {
            cache.push(ShardHistograms {
                lateness_us: new_lateness_histogram(),
                duration_us: new_duration_histogram(),
                lateness_at: None,
                duration_at: None,
            });
        }
        let now = Instant::now();
        let mut fresh = true;
        for (s, c) in shared.iter().zip(cache.iter_mut()) {
            if let Some(h) = s.take_lateness() {
                c.lateness_us = h;
                c.lateness_at = Some(now);
            }
            if let Some(h) = s.take_duration() {
                c.duration_us = h;
                c.duration_at = Some(now);
            }
            fresh &= c.lateness_at.is_some_and(|t| t >= since)
                && c.duration_at.is_some_and(|t| t >= since);
        }
        fresh
    }

    /// All shards' copies merged: (lateness, duration), µs.
    fn merged(&self) -> (Histogram<u64>, Histogram<u64>) {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut lateness = new_lateness_histogram();
        let mut duration = new_duration_histogram();
        for c in cache.iter() {
            lateness.add(&c.lateness_us).expect("same bounds");
            duration.add(&c.duration_us).expect("same bounds");
        }
        (lateness, duration)
    }
}

/// Asks every shard for its histograms and waits for them, at most [`API_HISTOGRAM_WAIT_MS`]
/// (on the control plane's runtime: other requests go on meanwhile).
async fn fetch_histograms(state: &ApiState, shared: &[std::sync::Arc<ShardShared>]) {
    let since = Instant::now();
    for s in shared {
        s.request_lateness();
        s.request_duration();
    }
    let deadline = since + Duration::from_millis(API_HISTOGRAM_WAIT_MS);
    while !state.histograms.collect(shared, since) && Instant::now() < deadline {
        tokio::time::sleep(HANDOVER_POLL).await;
    }
}

/// A histogram read from an hdrhistogram of µs, in seconds over [`BUCKETS_S`].
#[derive(Debug)]
struct HdrSeconds {
    sum_s: f64,
    count: u64,
    /// (upper bound in seconds, count in this bucket alone); the last bound is `f64::MAX`,
    /// which `prometheus-client` writes as `+Inf`.
    buckets: Vec<(f64, u64)>,
}

impl HdrSeconds {
    fn from_us(h: &Histogram<u64>) -> HdrSeconds {
        let count = h.len();
        let mut buckets = Vec::with_capacity(BUCKETS_S.len() + 1);
        let mut below = 0;
        for bound_s in BUCKETS_S {
            let bound_us = (bound_s * 1e6) as u64;
            let cumulative = if count == 0 { 0 } else { h.count_between(0, bound_us) };
            let cumulative = cumulative.max(below).min(count);
            buckets.push((bound_s, cumulative - below));
            below = cumulative;
        }
        buckets.push((f64::MAX, count - below));
        // hdrhistogram keeps no exact sum: the mean is exact to its 0.1% resolution.
        let sum_s = if count == 0 { 0.0 } else { h.mean() * count as f64 / 1e6 };
        HdrSeconds { sum_s, count, buckets }
    }
}

impl EncodeMetric for HdrSeconds {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum_s, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

type Labels = Vec<(&'static str, String)>;

/// A label value as the exposition formats quote it (`\\`, `\"`, `\n`). `prometheus-client`
/// 0.23 writes label values as they are, so a value from a manifest (a monitor's name, a
/// group) must go through this, or a quote in it would break the scrape or forge a series.
pub fn label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn counter_family() -> Family<Labels, Counter> {
    Family::default()
}

fn gauge_family() -> Family<Labels, Gauge> {
    Family::default()
}

fn set(family: &Family<Labels, Gauge>, labels: Labels, value: u64) {
    family.get_or_create(&labels).set(i64::try_from(value).unwrap_or(i64::MAX));
}

fn add(family: &Family<Labels, Counter>, labels: Labels, value: u64) {
    family.get_or_create(&labels).inc_by(value);
}

/// What one scrape reads: every shard's counters and running flag, the fleet's status, the
/// merged histograms (µs).
pub struct Snapshot {
    pub shards: Vec<(CountersSnapshot, bool)>,
    pub status: StatusSnapshot,
    pub lateness_us: Histogram<u64>,
    pub duration_us: Histogram<u64>,
}

/// The registry for one scrape (built afresh: scrapes are rare, and every value is a
/// snapshot of what the shards published, not a metric the API owns).
pub fn registry(snapshot: &Snapshot) -> Registry {
    let mut registry = Registry::default();
    let build = gauge_family();
    set(&build, vec![("version", env!("CARGO_PKG_VERSION").to_string())], 1);
    registry.register("cpra_build_info", "The running build (always 1)", build);

    let s = &snapshot.status;
    let monitors = gauge_family();
    for (state, n) in
        [("up", s.up), ("down", s.down), ("unknown", s.unknown), ("disabled", s.disabled)]
    {
        set(&monitors, vec![("state", state.to_string())], n);
    }
    registry.register(
        "cpra_monitors",
        "Monitors by the result of their last check (unknown: not checked yet; disabled: \
         never checked)",
        monitors,
    );
    let incidents = Gauge::<i64>::default();
    incidents.set(i64::try_from(s.incidents_open).unwrap_or(i64::MAX));
    registry.register("cpra_incidents_open", "Incidents opened and not closed yet", incidents);

    let alerts = counter_family();
    for colour in Colour::ALL {
        let i = colour.index();
        for (outcome, n) in [
            ("sent", s.alerts_sent_by_colour[i]),
            ("undelivered", s.alerts_undelivered_by_colour[i]),
            ("silenced", s.alerts_silenced_by_colour[i]),
        ] {
            add(&alerts, vec![("colour", colour.as_str().into()), ("outcome", outcome.into())], n);
        }
    }
    registry.register(
        "cpra_alerts",
        "Alert deliveries (one per alert and notifier) by colour: sent, given up on, or held \
         back by a silence",
        alerts,
    );
    let interventions = counter_family();
    for (result, n) in [
        ("succeeded", s.interventions_succeeded),
        ("failed", s.interventions_failed),
        ("unknown", s.interventions_unknown),
    ] {
        add(&interventions, vec![("result", result.into())], n);
    }
    registry.register(
        "cpra_interventions",
        "Interventions that ended, by result (unknown: sent, no answer)",
        interventions,
    );

    let checks = counter_family();
    let failures = counter_family();
    let delayed = counter_family();
    let in_flight = gauge_family();
    let running = gauge_family();
    for (shard, (c, up)) in snapshot.shards.iter().enumerate() {
        let shard = shard.to_string();
        let succeeded = c.checks_completed.saturating_sub(c.checks_failed);
        add(&checks, vec![("shard", shard.clone()), ("result", "success".into())], succeeded);
        add(&checks, vec![("shard", shard.clone()), ("result", "failure".into())], c.checks_failed);
        for kind in FailureKind::ALL {
            let labels = vec![("shard", shard.clone()), ("kind", kind.as_str().into())];
            add(&failures, labels, c.failures_of(kind));
        }
        for (reason, count) in DELAY_REASONS {
            add(&delayed, vec![("shard", shard.clone()), ("reason", reason.into())], count(c));
        }
        set(&in_flight, vec![("shard", shard.clone())], c.in_flight);
        set(&running, vec![("shard", shard)], u64::from(*up));
    }
    registry.register("cpra_checks", "Completed checks by shard and result", checks);
    registry.register("cpra_check_failures", "Failed checks by shard and failure kind", failures);
    registry.register(
        "cpra_checks_delayed",
        "Checks started late, by shard and reason (ring_full counts dispatch rounds that \
         left monitors due; missed_slot counts slots skipped; local_resource counts checks \
         put back for want of a file descriptor, buffer or local port)",
        delayed,
    );
    registry.register("cpra_checks_in_flight", "Checks running now, by shard", in_flight);
    registry.register("cpra_shard_running", "1 while the shard runs, else 0", running);

    registry.register(
        "cpra_check_duration_seconds",
        "How long checks took, from start to outcome (all shards)",
        HdrSeconds::from_us(&snapshot.duration_us),
    );
    registry.register(
        "cpra_schedule_lateness_seconds",
        "How long after its slot each check started (all shards)",
        HdrSeconds::from_us(&snapshot.lateness_us),
    );
    registry
}

/// `cpra_node_info{index,count,replica} 1`: which slice of the fleet this process checks, so
/// dashboards can sum nodes and tell replicas apart (0 of 1 on a single node).
pub fn register_node(registry: &mut Registry, node: crate::placement::Node) {
    let info = gauge_family();
    let labels = vec![
        ("index", node.index.to_string()),
        ("count", node.count.to_string()),
        ("replica", node.replica.to_string()),
    ];
    set(&info, labels, 1);
    registry.register(
        "cpra_node_info",
        "This node's slice of the fleet: node index of count (rendezvous hashing by monitor \
         id), and which replica of that slice it is (always 1)",
        info,
    );
}

/// OpenMetrics text as `prometheus-client` writes it, in the classic format 0.0.4: a counter
/// family is named with its `_total` suffix (as its samples are), and there is no `# EOF`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let head = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
        if let Some(prefix) = head {
            let rest = &line[prefix.len()..];
            let name = rest.split(' ').next().unwrap_or("");
            if counters.contains(name) {
                out.push_str(prefix);
                out.push_str(name);
                out.push_str("_total");
                out.push_str(&rest[name.len()..]);
                out.push('\n');
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether the scraper accepts OpenMetrics (Prometheus says so in `Accept`).
pub fn wants_openmetrics(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")))
}

/// Reads what the shards published, now.
async fn snapshot(state: &ApiState) -> Snapshot {
    let Some(fleet) = state.fleet() else {
        // Loading: no shards yet, every count zero.
        return Snapshot {
            shards: Vec::new(),
            status: StatusSnapshot::default(),
            lateness_us: new_lateness_histogram(),
            duration_us: new_duration_histogram(),
        };
    };
    fetch_histograms(state, &fleet.shared).await;
    let (lateness_us, duration_us) = state.histograms.merged();
    Snapshot {
        shards: fleet.shared.iter().map(|s| (s.read(), s.is_running())).collect(),
        status: fleet.status.read(),
        lateness_us,
        duration_us,
    }
}

/// The answer to `GET /metrics`.
pub async fn answer(state: &ApiState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut registry = registry(&snapshot(state).await);
    register_node(&mut registry, state.node());
    exposition(&registry, wants_openmetrics(request))
}

/// `registry` in the format the scraper asked for.
pub fn exposition(registry: &Registry, openmetrics: bool) -> Response<Full<Bytes>> {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, registry) {
        tracing::error!("cannot encode metrics: {e}");
        let mut response = Response::new(Full::new(Bytes::from_static(b"cannot encode\n")));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    }
    let (content_type, body) = if openmetrics {
        (OPENMETRICS, body)
    } else {
        (PROMETHEUS_TEXT, to_prometheus_text(&body))
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_come_from_the_hdr_counts_in_seconds() {
        let mut h = new_duration_histogram();
        h.record(300).unwrap(); // 0.3 ms
        h.record(2_000).unwrap(); // 2 ms
        h.record(120_000_000).unwrap(); // 2 min: past the last bound
        let m = HdrSeconds::from_us(&h);
        assert_eq!(m.count, 3);
        assert_eq!(m.buckets.len(), BUCKETS_S.len() + 1);
        assert_eq!(m.buckets[0], (0.0005, 1));
        assert_eq!(m.buckets[2], (0.0025, 1), "2 ms is in the 2.5 ms bucket");
        assert_eq!(m.buckets.last(), Some(&(f64::MAX, 1)));
        assert_eq!(m.buckets.iter().map(|b| b.1).sum::<u64>(), 3);
        assert!((m.sum_s - 120.0023).abs() < 0.2, "{}", m.sum_s);
        let empty = HdrSeconds::from_us(&new_lateness_histogram());
        assert_eq!((empty.count, empty.sum_s), (0, 0.0));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("plain"), "plain");
        assert_eq!(label_value("say \"hi\"\\\n"), "say \\\"hi\\\"\\\\\\n");
    }

    #[test]
    fn the_classic_format_names_counter_families_with_total_and_has_no_eof() {
        let om = "# HELP cpra_checks Checks.\n# TYPE cpra_checks counter\n\
                  cpra_checks_total{result=\"success\"} 3\n# HELP cpra_monitors M.\n\
                  # TYPE cpra_monitors gauge\ncpra_monitors{state=\"up\"} 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP cpra_checks_total Checks.\n# TYPE cpra_checks_total counter\n\
             cpra_checks_total{result=\"success\"} 3\n# HELP cpra_monitors M.\n\
             # TYPE cpra_monitors gauge\ncpra_monitors{state=\"up\"} 1\n"
        );
    }

    #[test]
    fn every_family_is_in_a_scrape_even_with_no_shards() {
        let snapshot = Snapshot {
            shards: vec![(CountersSnapshot::default(), true)],
            status: StatusSnapshot::default(),
            lateness_us: new_lateness_histogram(),
            duration_us: new_duration_histogram(),
        };
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry(&snapshot)).unwrap();
        let text = to_prometheus_text(&text);
        for family in [
            "cpra_build_info",
            "cpra_monitors",
            "cpra_incidents_open",
            "cpra_alerts_total",
            "cpra_interventions_total",
            "cpra_checks_total",
            "cpra_check_failures_total",
            "cpra_checks_delayed_total",
            "cpra_check_duration_seconds",
            "cpra_schedule_lateness_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{family} missing:\n{text}");
        }
        assert!(text.contains("cpra_check_failures_total{shard=\"0\",kind=\"connect_refused\"} 0"));
        assert!(text.contains("cpra_checks_delayed_total{shard=\"0\",reason=\"ring_full\"} 0"));
    }

    #[test]
    fn the_node_info_names_the_slice_and_replica() {
        let mut registry = Registry::default();
        let node = crate::placement::Node::new(1, 3, 1).unwrap();
        register_node(&mut registry, node);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("cpra_node_info{index=\"1\",count=\"3\",replica=\"1\"} 1"), "{text}");
    }
}
