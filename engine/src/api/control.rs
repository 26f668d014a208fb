//! One monitor (`GET /api/v1/monitors/{id}`), the control requests (`POST
//! /api/v1/monitors/{id}/disable|enable|silence|unsilence|check`,
//! `POST /api/v1/incidents/{id}/ack`) and the incident list (`GET /api/v1/incidents`).
//!
//! What it is for: asking the shard that owns a monitor (`runtime::shard_of` of its id hash)
//! through its bounded query ring, and answering what it says as JSON. A full ring answers 503
//! with `Retry-After` at once: neither the API nor the shard ever waits for room. What it is
//! not for: checking the token (`auth`, before any of this runs) or changing a monitor (the
//! shard does that, in `shard::monitors`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use super::monitors::{json_response, row_json};
use super::{ApiState, Fleet};
use crate::actions::payload::rfc3339;
use crate::limits::API_LIST_MAX_LIMIT;
use crate::limits::{
    API_ACK_BY_MAX_BYTES, API_MAX_BODY_BYTES, API_QUERY_WAIT_MS, API_SILENCE_MAX_MS,
};
use crate::manifest::duration::parse_go_duration;
use crate::runtime::shard_of;
use crate::shard::queries::{
    Answer, Command, IncidentRow, MonitorDetail, Query, Question, Refused, Reply,
};

/// How often a request looks for a shard's answer while it waits.
const ANSWER_POLL: Duration = Duration::from_millis(1);

/// What the client is told to wait before trying a busy shard again, in seconds.
const RETRY_AFTER_S: &str = "1";

type Answered = Response<Full<Bytes>>;

fn error(status: StatusCode, message: &str) -> Answered {
    json_response(status, &json!({ "error": message }))
}

fn busy(message: &str) -> Answered {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
    response
}

fn not_ready() -> Answered {
    error(StatusCode::SERVICE_UNAVAILABLE, "not ready: loading the manifest")
}

/// Puts `question` in `shard`'s ring and waits (at most `API_QUERY_WAIT_MS`) for its answer.
async fn ask(fleet: &Fleet, shard: usize, question: Question) -> Result<Answer, Answered> {
    let reply: Arc<Reply> = Arc::default();
    let query = Query { question, reply: reply.clone() };
    if fleet.queries.shard(shard).ask(query).is_err() {
        return Err(busy(&format!("shard {shard} is busy; try again")));
    }
    let deadline = Instant::now() + Duration::from_millis(API_QUERY_WAIT_MS);
    loop {
        if let Some(answer) = reply.take() {
            return Ok(answer);
        }
        if Instant::now() >= deadline || fleet.stop.is_stopped() {
            return Err(busy(&format!("shard {shard} did not answer in time; try again")));
        }
        tokio::time::sleep(ANSWER_POLL).await;
    }
}

/// The shard that owns monitor `id`.
fn owner(fleet: &Fleet, id: &str) -> usize {
    shard_of(crate::manifest::id_hash(id), fleet.queries.shards())
}

pub fn detail_json(detail: &MonitorDetail) -> Value {
    let mut object = row_json(&detail.row);
    let recent: Vec<Value> = detail
        .recent
        .iter()
        .map(|r| {
            json!({
                "at": rfc3339(r.at_unix_ms),
                "success": r.failure.is_none(),
                "latency_ms": f64::from(r.latency_us) / 1000.0,
                "kind": r.failure.as_ref().map(|(kind, _)| *kind),
                "message": r.failure.as_ref().map(|(_, message)| message.as_str()),
            })
        })
        .collect();
    object["recent"] = Value::Array(recent);
    object
}

fn incident_json(row: &IncidentRow) -> Value {
    json!({
        "id": row.id,
        "monitor": row.monitor,
        "monitor_id": row.monitor_id,
        "opened_at": rfc3339(row.opened_at_unix_ms),
        "closed_at": row.closed_at_unix_ms.map(rfc3339),
        "acknowledged_by": row.acknowledged_by,
    })
}

fn refused(refusal: &Refused, what: &str) -> Answered {
    match refusal {
        Refused::NotFound => error(StatusCode::NOT_FOUND, &format!("no {what}")),
        Refused::Conflict(why) => error(StatusCode::CONFLICT, why),
        Refused::Busy => busy("the shard's scheduling queue is full; try again"),
    }
}

/// `GET /api/v1/monitors/{id}`, and the answer to every monitor command.
async fn monitor_question(state: &ApiState, id: &str, question: Question) -> Answered {
    let Some(fleet) = state.fleet() else { return not_ready() };
    match ask(fleet, owner(fleet, id), question).await {
        Ok(Answer::Monitor(Ok(detail))) => json_response(StatusCode::OK, &detail_json(&detail)),
        Ok(Answer::Monitor(Err(e))) => refused(&e, &format!("monitor with id `{id}`")),
        Ok(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(response) => response,
    }
}

pub async fn monitor(state: &ApiState, id: &str) -> Answered {
    monitor_question(state, id, Question::Monitor(id.to_owned())).await
}

/// The request's body as JSON (an empty body is `{}`), bounded by `API_MAX_BODY_BYTES`.
async fn body_json(request: Request<Incoming>) -> Result<Value, Answered> {
    let limit = usize::try_from(API_MAX_BODY_BYTES).unwrap_or(usize::MAX);
    let bytes = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let message = format!("request body unreadable or larger than {limit} bytes");
            return Err(error(StatusCode::BAD_REQUEST, &message));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(error(StatusCode::BAD_REQUEST, "the body must be a JSON object")),
    }
}

/// `POST /api/v1/monitors/{id}/{action}`.
pub async fn command(
    state: &ApiState,
    id: &str,
    action: &str,
    request: Request<Incoming>,
) -> Answered {
    let command = match action {
        "disable" => Command::Disable,
        "enable" => Command::Enable,
        "unsilence" => Command::Unsilence,
        "check" => Command::CheckNow,
        "silence" => {
            let body = match body_json(request).await {
                Ok(b) => b,
                Err(response) => return response,
            };
            match silence_until(&body, chrono::Utc::now().timestamp_millis()) {
                Ok(until_unix_ms) => Command::Silence { until_unix_ms },
                Err(e) => return error(StatusCode::BAD_REQUEST, &e),
            }
        }
        _ => return error(StatusCode::NOT_FOUND, "not found"),
    };
    monitor_question(state, id, Question::Control(id.to_owned(), command)).await
}

/// When a silence asked with `{"for": "1h"}` at `now_unix_ms` ends.
pub fn silence_until(body: &Value, now_unix_ms: i64) -> Result<i64, String> {
    let text = body.get("for").and_then(Value::as_str).ok_or_else(|| {
        "silence: the body must say how long, as a Go duration: {\"for\": \"1h\"}".to_string()
    })?;
    let ns = parse_go_duration(text).map_err(|e| format!("for: {e}"))?;
    let ms = ns / 1_000_000;
    if ms == 0 || ms > API_SILENCE_MAX_MS {
        return Err(format!(
            "for: `{text}` must be more than 0 and at most {} h",
            API_SILENCE_MAX_MS / 3_600_000
        ));
    }
    Ok(now_unix_ms.saturating_add(ms as i64))
}

/// Who acknowledges, from `{"by": "alice"}` (default `api`).
pub fn acknowledger(body: &Value) -> Result<String, String> {
    match body.get("by") {
        None | Some(Value::Null) => Ok("api".to_string()),
        Some(Value::String(by))
            if !by.trim().is_empty()
                && by.len() <= API_ACK_BY_MAX_BYTES
                && !by.chars().any(char::is_control) =>
        {
            Ok(by.trim().to_string())
        }
        Some(_) => Err(format!(
            "by: a name of 1 to {API_ACK_BY_MAX_BYTES} bytes without control characters"
        )),
    }
}

/// `POST /api/v1/incidents/{id}/ack`.
pub async fn ack(state: &ApiState, incident: &str, request: Request<Incoming>) -> Answered {
    let by = match body_json(request).await.map(|b| acknowledger(&b)) {
        Ok(Ok(by)) => by,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, &e),
        Err(response) => return response,
    };
    let Some(fleet) = state.fleet() else { return not_ready() };
    let Some((monitor_id, _)) = incident.rsplit_once('#') else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no incident `{incident}` (ids are MONITOR#N, sent as MONITOR%23N)"),
        );
    };
    let question = Question::Ack { incident: incident.to_owned(), by };
    match ask(fleet, owner(fleet, monitor_id), question).await {
        Ok(Answer::Incident(Ok(row))) => json_response(StatusCode::OK, &incident_json(&row)),
        Ok(Answer::Incident(Err(e))) => refused(&e, &format!("incident `{incident}`")),
        Ok(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(response) => response,
    }
}

/// `GET /api/v1/incidents?open=true|false&limit=N&monitor=ID`: every shard's (or, with
/// `monitor`, the owning shard's for that monitor), newest opened first, at most `limit`
/// (default and most: `API_LIST_MAX_LIMIT`), with how many matched in all.
pub async fn incidents(state: &ApiState, query: Option<&str>) -> Answered {
    let mut open = None;
    let mut limit = API_LIST_MAX_LIMIT;
    let mut monitor: Option<String> = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("open", "true") => open = Some(true),
            ("open", "false") => open = Some(false),
            ("open", other) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("open: `{other}` is not true or false"),
                )
            }
            ("limit", n) => match n.parse::<usize>() {
                Ok(n) if n >= 1 => limit = n.min(API_LIST_MAX_LIMIT),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("limit: `{n}` is not a whole number from 1"),
                    )
                }
            },
            ("monitor", id) if !id.is_empty() => monitor = Some(id.to_owned()),
            (other, _) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown parameter `{other}` (known: open, limit, monitor)"),
                )
            }
        }
    }
    let Some(fleet) = state.fleet() else { return not_ready() };
    let mut rows = Vec::new();
    let mut total = 0;
    // A monitor's incidents are on its shard only.
    let shards = match &monitor {
        Some(id) => owner(fleet, id)..owner(fleet, id) + 1,
        None => 0..fleet.queries.shards(),
    };
    for shard in shards {
        match ask(fleet, shard, Question::Incidents(open, limit, monitor.clone())).await {
            Ok(Answer::Incidents(mut some, matched)) => {
                rows.append(&mut some);
                total += matched;
            }
            Ok(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
            Err(response) => return response,
        }
    }
    rows.sort_by(|a, b| b.opened_at_unix_ms.cmp(&a.opened_at_unix_ms).then(a.id.cmp(&b.id)));
    rows.truncate(limit);
    let body = json!({
        "incidents": rows.iter().map(incident_json).collect::<Vec<_>>(),
        "total": total,
    });
    json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_is_a_go_duration_within_bounds() {
        assert_eq!(silence_until(&json!({"for": "1h"}), 1_000), Ok(1_000 + 3_600_000));
        assert_eq!(silence_until(&json!({"for": "90s"}), 0), Ok(90_000));
        assert!(silence_until(&json!({}), 0).unwrap_err().contains("\"for\""));
        assert!(silence_until(&json!({"for": "soon"}), 0).unwrap_err().starts_with("for:"));
        assert!(silence_until(&json!({"for": "0s"}), 0).is_err());
        assert!(silence_until(&json!({"for": "8000h"}), 0).unwrap_err().contains("720 h"));
    }

    #[test]
    fn an_acknowledger_is_a_short_printable_name() {
        assert_eq!(acknowledger(&json!({})), Ok("api".into()));
        assert_eq!(acknowledger(&json!({"by": " alice "})), Ok("alice".into()));
        assert!(acknowledger(&json!({"by": "a\nb"})).is_err());
        assert!(acknowledger(&json!({"by": 7})).is_err());
        assert!(acknowledger(&json!({"by": "x".repeat(API_ACK_BY_MAX_BYTES + 1)})).is_err());
    }
}
