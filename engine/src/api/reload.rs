//! `POST /api/v1/reload`: the HTTP face of [`Reloader::reload`](crate::reload::Reloader).
//!
//! What it is for: running a reload off the API's event loop (a big manifest takes seconds to
//! load) and answering with its counts (200), the manifest's problems (400), 409 while
//! another reload runs, 404 when the fleet came from no file. What it is not for: the reload
//! itself (`crate::reload`).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::monitors::json_response;
use super::ApiState;
use crate::reload::ReloadError;

pub async fn answer(state: &ApiState) -> Response<Full<Bytes>> {
    let Some(fleet) = state.fleet() else {
        let body = json!({ "error": "not ready: loading the manifest" });
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    };
    let Some(reloader) = fleet.reloader.clone() else {
        let body = json!({ "error": "this fleet was not loaded from a manifest file" });
        return json_response(StatusCode::NOT_FOUND, &body);
    };
    let done = tokio::task::spawn_blocking(move || reloader.reload()).await;
    let result = match done {
        Ok(result) => result,
        Err(e) => {
            tracing::error!("the reload task failed: {e}");
            let body = json!({ "error": "the reload failed; see the log" });
            return json_response(StatusCode::INTERNAL_SERVER_ERROR, &body);
        }
    };
    match result {
        Ok(c) => json_response(
            StatusCode::OK,
            &json!({
                "added": c.added,
                "removed": c.removed,
                "changed": c.changed,
                "unchanged": c.unchanged,
            }),
        ),
        Err(ReloadError::Invalid(problems)) => {
            let problems: Vec<_> = problems
                .iter()
                .map(|p| {
                    json!({"file": p.file, "line": p.line, "column": p.column, "message": p.message})
                })
                .collect();
            json_response(StatusCode::BAD_REQUEST, &json!({ "problems": problems }))
        }
        Err(e @ ReloadError::Busy) => {
            json_response(StatusCode::CONFLICT, &json!({ "error": e.to_string() }))
        }
        Err(e @ ReloadError::Stalled(_)) => {
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": e.to_string() }))
        }
    }
}
