//! `GET /api/v1/monitors`: the fleet's monitors, filtered and cursor-paged in id order; and
//! `GET /metrics/monitors?group=G`: one group's monitors as Prometheus series.
//!
//! What it is for: asking every shard for its page through its query ring
//! (`shard::queries`), merging the pages and answering JSON. At most [`API_LISTS_IN_FLIGHT`]
//! lists are asked at once (the rest wait their turn here, on the API's thread), so the
//! shards' rings never overflow under a crowd of clients. What it is not for: reading a
//! shard's state (only the shard does that, when it answers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};

use super::metrics::label_value;
use super::{ApiState, Fleet};
use crate::actions::payload::rfc3339;
use crate::limits::{
    API_LIST_DEFAULT_LIMIT, API_LIST_MAX_LIMIT, API_MONITOR_SERIES_MAX, API_QUERY_WAIT_MS,
};
use crate::shard::queries::{
    merge_pages, Answer, ListFilter, MonitorHealth, MonitorPage, MonitorRow, Query, Question, Reply,
};

/// Lists asked of the shards at once. Each puts one question in every shard's ring, so this
/// stays below the ring's capacity (`API_QUERY_RING`, 64), leaving room for other questions.
pub const API_LISTS_IN_FLIGHT: usize = 32;

/// How often a list looks for the shards' answers while it waits.
const ANSWER_POLL: Duration = Duration::from_millis(1);

/// A JSON answer.
pub fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn bad_request(message: &str) -> Response<Full<Bytes>> {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": message }))
}

/// The cursor a client sends back: the last id of the previous page, opaque to it.
fn encode_cursor(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

/// The order of a list: by id (the default), or by state, down monitors first (`order=state`,
/// what the dashboard shows), then by id within a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Id,
    State,
}

/// The states in the order `order=state` lists them: what needs a look first.
pub const STATE_ORDER: [MonitorHealth; 4] =
    [MonitorHealth::Down, MonitorHealth::Unknown, MonitorHealth::Up, MonitorHealth::Disabled];

/// The cursor of a list by state: the state and the last id shown in it.
fn encode_state_cursor(health: MonitorHealth, id: &str) -> String {
    encode_cursor(&format!("{}:{id}", health.as_str()))
}

/// A list asked for: which monitors, in which order, and where to start. In state order the
/// cursor's state is the first state to look in (its id the last one shown there).
#[derive(Debug)]
pub struct ListRequest {
    pub filter: ListFilter,
    pub order: Order,
    pub start_state: usize,
}

/// The list's filter from the query string, or what is wrong with it.
pub fn parse_filter(query: Option<&str>) -> Result<ListFilter, String> {
    parse_list(query).map(|l| l.filter)
}

/// The list asked for by the query string, or what is wrong with it.
pub fn parse_list(query: Option<&str>) -> Result<ListRequest, String> {
    let mut filter = ListFilter { limit: API_LIST_DEFAULT_LIMIT, ..ListFilter::default() };
    let mut order = Order::Id;
    let mut cursor = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "state" => {
                filter.state = Some(MonitorHealth::parse(&value).ok_or_else(|| {
                    format!("state: `{value}` is not one of up, down, unknown, disabled")
                })?);
            }
            "q" => filter.name_contains = Some(value.into_owned()),
            "group" => filter.group = Some(value.into_owned()),
            "limit" => {
                let n: usize = value.parse().map_err(|_| {
                    format!("limit: `{value}` is not a number from 1 to {API_LIST_MAX_LIMIT}")
                })?;
                if n == 0 {
                    return Err(format!("limit: must be from 1 to {API_LIST_MAX_LIMIT}"));
                }
                filter.limit = n.min(API_LIST_MAX_LIMIT);
            }
            "cursor" => {
                cursor = Some(decode_cursor(&value).ok_or_else(|| {
                    "cursor: not a cursor this API gave (pass `next` back as it is)".to_string()
                })?);
            }
            "order" => {
                order = match value.as_ref() {
                    "id" => Order::Id,
                    "state" => Order::State,
                    _ => return Err(format!("order: `{value}` is not one of id, state")),
                };
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}` (known: state, q, group, limit, cursor, order)"
                ))
            }
        }
    }
    let mut start_state = 0;
    match (order, cursor) {
        (_, None) => {}
        (Order::Id, Some(after)) => filter.after = Some(after),
        (Order::State, Some(cursor)) => {
            let bad = || "cursor: not a cursor of order=state (pass `next` back as it is)";
            let (state, after) = cursor.split_once(':').ok_or_else(bad)?;
            let health = MonitorHealth::parse(state).ok_or_else(bad)?;
            start_state = STATE_ORDER.iter().position(|&h| h == health).ok_or_else(bad)?;
            filter.after = Some(after.to_owned());
        }
    }
    Ok(ListRequest { filter, order, start_state })
}

pub fn row_json(row: &MonitorRow) -> Value {
    let last = row.last_check.as_ref();
    json!({
        "id": row.id,
        "name": row.name,
        "type": row.kind,
        "state": row.health.as_str(),
        "incident_id": row.incident_id,
        "last_check": last.map(|l| rfc3339(l.at_unix_ms)),
        "latency_ms": last.map(|l| f64::from(l.latency_us) / 1000.0),
        "failure": last
            .and_then(|l| l.failure.as_ref())
            .map(|(kind, message)| json!({ "kind": kind, "message": message })),
        "silenced_until": row.silenced_until_unix_ms.map(rfc3339),
        "state_since": rfc3339(row.state_since_unix_ms),
        "groups": row.groups.as_slice(),
    })
}

/// Asks every shard for its page, waiting at most `API_QUERY_WAIT_MS`; the shard that did
/// not answer in time is named.
async fn ask_shards(fleet: &Fleet, filter: &ListFilter) -> Result<Vec<MonitorPage>, String> {
    let shards = fleet.queries.shards();
    let replies: Vec<Arc<Reply>> = (0..shards).map(|_| Arc::default()).collect();
    for (shard, reply) in replies.iter().enumerate() {
        let query =
            Query { question: Question::ListMonitors(filter.clone()), reply: reply.clone() };
        if fleet.queries.shard(shard).ask(query).is_err() {
            return Err(format!("shard {shard} is busy; try again"));
        }
    }
    let deadline = Instant::now() + Duration::from_millis(API_QUERY_WAIT_MS);
    let mut pages: Vec<Option<MonitorPage>> = vec![None; shards];
    loop {
        for (page, reply) in pages.iter_mut().zip(&replies) {
            if page.is_none() {
                if let Some(Answer::Monitors(p)) = reply.take() {
                    *page = Some(p);
                }
            }
        }
        if let Some(missing) = pages.iter().position(Option::is_none) {
            if Instant::now() >= deadline || fleet.stop.is_stopped() {
                return Err(format!("shard {missing} did not answer in time; try again"));
            }
            tokio::time::sleep(ANSWER_POLL).await;
        } else {
            return Ok(pages.into_iter().flatten().collect());
        }
    }
}

/// The answer to `GET /api/v1/monitors?state=&q=&group=&limit=&cursor=&order=`.
pub async fn list(state: &ApiState, query: Option<&str>) -> Response<Full<Bytes>> {
    let request = match parse_list(query) {
        Ok(r) => r,
        Err(e) => return bad_request(&e),
    };
    if request.order == Order::State {
        return list_by_state(state, request).await;
    }
    let filter = request.filter;
    let Some(fleet) = state.fleet() else {
        let body = json!({ "error": "not ready: loading the manifest" });
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    };
    let Ok(_turn) = state.lists.acquire().await else {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "stopping" }));
    };
    let pages = match ask_shards(fleet, &filter).await {
        Ok(pages) => pages,
        Err(e) => return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": e })),
    };
    let (rows, next, total) = merge_pages(pages, filter.limit);
    let body = json!({
        "monitors": rows.iter().map(row_json).collect::<Vec<_>>(),
        "next": next.as_deref().map(encode_cursor),
        "total": total,
    });
    json_response(StatusCode::OK, &body)
}

/// A list in state order: one question per state (down, unknown, up, disabled) to every shard,
/// all asked at once (so a page waits for one round of the shards, not four), each for a
/// page and its total; the pages are joined in state order and cut. States before the
/// cursor's are asked for their totals only.
async fn list_by_state(state: &ApiState, request: ListRequest) -> Response<Full<Bytes>> {
    let Some(fleet) = state.fleet() else {
        let body = json!({ "error": "not ready: loading the manifest" });
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    };
    // One turn per state: the states are asked at once, one question each in every ring.
    let Ok(_turns) = state.lists.acquire_many(STATE_ORDER.len() as u32).await else {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": "stopping" }));
    };
    let limit = request.filter.limit.min(API_LIST_MAX_LIMIT);
    // One more than the page: whether it exists says if a next page does.
    let wanted = limit + 1;
    let rounds = STATE_ORDER.map(|health| {
        let rank = STATE_ORDER.iter().position(|&h| h == health).unwrap_or(0);
        let asked = request.filter.state.is_none_or(|s| s == health);
        let mut filter = request.filter.clone();
        filter.state = Some(health);
        // States before the cursor's: their totals only.
        filter.limit = if rank < request.start_state { 0 } else { wanted };
        if rank != request.start_state {
            filter.after = None;
        }
        async move {
            if !asked {
                return Ok((Vec::new(), 0));
            }
            let pages = ask_shards(fleet, &filter).await?;
            let (rows, _, matched) = merge_pages(pages, filter.limit);
            Ok::<_, String>((rows, matched))
        }
    });
    let [down, unknown, up, disabled] = rounds;
    let answers = futures_lite::future::zip(
        futures_lite::future::zip(down, unknown),
        futures_lite::future::zip(up, disabled),
    )
    .await;
    let ((down, unknown), (up, disabled)) = answers;
    let mut rows: Vec<MonitorRow> = Vec::with_capacity(wanted);
    let mut total = 0;
    for answer in [down, unknown, up, disabled] {
        match answer {
            Ok((some, matched)) => {
                rows.extend(some.into_iter().take(wanted - rows.len()));
                total += matched;
            }
            Err(e) => {
                return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": e }))
            }
        }
    }
    let next = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last().map(|r| encode_state_cursor(r.health, &r.id))
    });
    let body = json!({
        "monitors": rows.iter().map(row_json).collect::<Vec<_>>(),
        "next": next.flatten(),
        "total": total,
    });
    json_response(StatusCode::OK, &body)
}

/// The answer to `GET /api/v1/summary`: the fleet's size, its monitors by state and its open
/// incidents, for the dashboard's header. The counts are what the shards publish (read without
/// asking them); `silenced` is asked of each shard (a scan of its 16-byte control records).
pub async fn summary(state: &ApiState) -> Response<Full<Bytes>> {
    let Some(fleet) = state.fleet() else {
        let body = json!({ "error": "not ready: loading the manifest" });
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    };
    let silenced = match count_silenced(fleet).await {
        Ok(n) => n,
        Err(e) => return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": e })),
    };
    let s = fleet.status.read();
    let body = json!({
        "monitors": s.monitors(),
        "up": s.up,
        "down": s.down,
        "unknown": s.unknown,
        "disabled": s.disabled,
        "silenced": silenced,
        "incidents_open": s.incidents_open,
    });
    json_response(StatusCode::OK, &body)
}

/// How many monitors are silenced now, over every shard: the question is put in every ring
/// first, then the answers are waited for together (at most `API_QUERY_WAIT_MS`).
async fn count_silenced(fleet: &Fleet) -> Result<u64, String> {
    let shards = fleet.queries.shards();
    let replies: Vec<Arc<Reply>> = (0..shards).map(|_| Arc::default()).collect();
    for (shard, reply) in replies.iter().enumerate() {
        let query = Query { question: Question::CountSilenced, reply: reply.clone() };
        if fleet.queries.shard(shard).ask(query).is_err() {
            return Err(format!("shard {shard} is busy; try again"));
        }
    }
    let deadline = Instant::now() + Duration::from_millis(API_QUERY_WAIT_MS);
    let mut counts: Vec<Option<u64>> = vec![None; shards];
    loop {
        for (count, reply) in counts.iter_mut().zip(&replies) {
            if let (None, Some(Answer::Count(n))) = (&count, reply.take()) {
                *count = Some(n);
            }
        }
        match counts.iter().position(Option::is_none) {
            None => return Ok(counts.into_iter().flatten().sum()),
            Some(missing) if Instant::now() >= deadline || fleet.stop.is_stopped() => {
                return Err(format!("shard {missing} did not answer in time; try again"))
            }
            Some(_) => tokio::time::sleep(ANSWER_POLL).await,
        }
    }
}

/// The `group` of `/metrics/monitors`, required: without it the scrape would be the whole
/// fleet, which is what keeping per-monitor series out of `/metrics` avoids.
fn parse_group(query: Option<&str>) -> Result<String, String> {
    let mut group = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "group" => group = Some(value.into_owned()),
            other => return Err(format!("unknown parameter `{other}` (known: group)")),
        }
    }
    group.ok_or_else(|| {
        "group: required (per-monitor series are served one group at a time)".to_string()
    })
}

type MonitorLabels = Vec<(&'static str, String)>;

/// The answer to `GET /metrics/monitors?group=G`: `cpra_monitor_up` (1 up, 0 down) and
/// `cpra_monitor_latency_seconds` (the last check's) for each checked monitor of the group,
/// at most [`API_MONITOR_SERIES_MAX`] monitors, first by id.
pub async fn metrics(state: &ApiState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let group = match parse_group(request.uri().query()) {
        Ok(g) => g,
        Err(e) => return super::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let Some(fleet) = state.fleet() else {
        return super::text(StatusCode::SERVICE_UNAVAILABLE, "not ready: loading the manifest\n");
    };
    let mut filter = ListFilter {
        group: Some(group.clone()),
        limit: API_LIST_MAX_LIMIT,
        ..ListFilter::default()
    };
    let mut rows = Vec::new();
    let total = loop {
        let pages = {
            let Ok(_turn) = state.lists.acquire().await else {
                return super::text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n");
            };
            match ask_shards(fleet, &filter).await {
                Ok(pages) => pages,
                Err(e) => return super::text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
            }
        };
        let room = API_MONITOR_SERIES_MAX - rows.len();
        let (page, next, matching) = merge_pages(pages, filter.limit.min(room));
        rows.extend(page);
        match next {
            Some(after) if rows.len() < API_MONITOR_SERIES_MAX => filter.after = Some(after),
            _ => break matching,
        }
    };
    let mut registry = Registry::default();
    let up: Family<MonitorLabels, Gauge> = Family::default();
    let latency: Family<MonitorLabels, Gauge<f64, std::sync::atomic::AtomicU64>> =
        Family::default();
    for row in &rows {
        let Some(last) = &row.last_check else { continue };
        let labels = vec![
            ("monitor", label_value(&row.name)),
            ("monitor_id", label_value(&row.id)),
            ("group", label_value(&group)),
        ];
        up.get_or_create(&labels).set(i64::from(row.health == MonitorHealth::Up));
        latency.get_or_create(&labels).set(f64::from(last.latency_us) / 1e6);
    }
    registry.register("cpra_monitor_up", "1 if the monitor's last check succeeded, else 0", up);
    registry.register(
        "cpra_monitor_latency_seconds",
        "How long the monitor's last check took",
        latency,
    );
    let matching: Gauge = Gauge::default();
    matching.set(i64::try_from(total).unwrap_or(i64::MAX));
    registry.register("cpra_monitor_series_matching", "Monitors in the group", matching);
    let truncated: Gauge = Gauge::default();
    truncated.set(i64::from(total > rows.len() as u64));
    registry.register(
        "cpra_monitor_series_truncated",
        "1 if the group has more monitors than one scrape shows (API_MONITOR_SERIES_MAX)",
        truncated,
    );
    super::metrics::exposition(&registry, super::metrics::wants_openmetrics(request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_becomes_a_filter_or_a_clear_error() {
        let f = parse_filter(Some("state=down&q=web%20eu&group=eu&limit=5000")).unwrap();
        assert_eq!(f.state, Some(MonitorHealth::Down));
        assert_eq!(f.name_contains.as_deref(), Some("web eu"));
        assert_eq!(f.group.as_deref(), Some("eu"));
        assert_eq!(f.limit, API_LIST_MAX_LIMIT, "cut to the maximum");
        assert_eq!(parse_filter(None).unwrap().limit, API_LIST_DEFAULT_LIMIT);
        let cursor = encode_cursor("web/1?x");
        let f = parse_filter(Some(&format!("cursor={cursor}"))).unwrap();
        assert_eq!(f.after.as_deref(), Some("web/1?x"));
        assert!(parse_filter(Some("state=sideways")).unwrap_err().contains("state"));
        assert!(parse_filter(Some("limit=0")).unwrap_err().contains("limit"));
        assert!(parse_filter(Some("limit=ten")).unwrap_err().contains("limit"));
        assert!(parse_filter(Some("cursor=%%%")).unwrap_err().contains("cursor"));
        assert!(parse_filter(Some("colour=red")).unwrap_err().contains("unknown parameter"));
        let by_state = encode_state_cursor(MonitorHealth::Up, "web:1");
        let l = parse_list(Some(&format!("cursor={by_state}&order=state"))).unwrap();
        assert_eq!((l.order, l.start_state), (Order::State, 2));
        assert_eq!(l.filter.after.as_deref(), Some("web:1"), "split at the first colon");
        assert!(parse_list(Some(&format!("order=state&cursor={cursor}"))).is_err());
        assert!(parse_list(Some("order=name")).unwrap_err().contains("order"));
        assert_eq!(parse_group(Some("group=eu%20west")).unwrap(), "eu west");
        assert!(parse_group(None).unwrap_err().contains("required"));
        assert!(parse_group(Some("group=a&state=up")).unwrap_err().contains("unknown"));
    }
}
