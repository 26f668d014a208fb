//! What each HTTP notifier sends: pure functions from a rendered alert to a request (method,
//! URL, headers, JSON body), tested on their exact bytes. Sending is `send.rs`'s job.
//!
//! Every HTTP notifier has a URL it posts to; the ones whose receiver is a fixed public API
//! (Telegram, Opsgenie, PagerDuty) take a `url` override so a test or a proxy can stand in.

use serde_json::{json, Value};

use super::target;
use crate::alert::{RenderedAlert, Severity};
use crate::colour::Colour;
use crate::limits::{
    DISCORD_MAX_CONTENT_CHARS, OPSGENIE_MAX_MESSAGE_CHARS, PAGERDUTY_MAX_SUMMARY_CHARS,
    TELEGRAM_MAX_TEXT_CHARS,
};
use crate::manifest::Notify;

pub const TELEGRAM_API: &str = "https://api.telegram.org";
pub const OPSGENIE_ALERTS_URL: &str = "https://api.opsgenie.com/v2/alerts";
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Alertmanager's alert intake, appended to the configured base URL.
pub const ALERTMANAGER_ALERTS_PATH: &str = "/api/v2/alerts";

/// An HTTP request for one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    /// Extra headers; `Content-Type: application/json` is always sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn post(url: impl Into<String>, body: &Value) -> HttpRequest {
        HttpRequest {
            method: "POST".to_owned(),
            url: url.into(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }
}

/// `s` cut to at most `max` characters (never inside a character).
pub fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// RFC 3339 UTC with milliseconds, as the log line writes it.
pub fn rfc3339(wall_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(wall_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The request for an HTTP notifier; `None` for `log` and `email`, which are not HTTP.
pub fn http_request(notify: &Notify, alert: &RenderedAlert, wall_ms: i64) -> Option<HttpRequest> {
    Some(match notify {
        Notify::Log { .. } | Notify::Email { .. } => return None,
        Notify::Webhook { url, method, headers } => {
            let mut req = HttpRequest::post(url.clone(), &webhook_body(alert, wall_ms));
            req.method =
                if method.is_empty() { "POST".into() } else { method.to_ascii_uppercase() };
            req.headers = headers.as_ref().clone();
            req
        }
        Notify::Slack { hook } => HttpRequest::post(hook.clone(), &json!({ "text": alert.text() })),
        Notify::Discord { webhook_url } => HttpRequest::post(
            webhook_url.clone(),
            &json!({ "content": cut(&alert.text(), DISCORD_MAX_CONTENT_CHARS) }),
        ),
        Notify::Mattermost { webhook_url, channel, username } => {
            HttpRequest::post(webhook_url.clone(), &mattermost_body(alert, channel, username))
        }
        Notify::Teams { webhook_url } => HttpRequest::post(webhook_url.clone(), &teams_body(alert)),
        Notify::Telegram { bot_token, chat_id, url } => {
            let base = url.as_deref().unwrap_or(TELEGRAM_API);
            // A base that already names the method is used as is (a trailing `/` dropped).
            let url = if target::path_ends_with(base, "/sendMessage") {
                target::join(base, &[], None)
            } else {
                target::join(base, &[format!("bot{bot_token}").as_str(), "sendMessage"], None)
            };
            HttpRequest::post(
                url,
                &json!({
                    "chat_id": chat_id,
                    "text": cut(&alert.text(), TELEGRAM_MAX_TEXT_CHARS),
                    "disable_web_page_preview": true,
                }),
            )
        }
        Notify::Opsgenie { api_key, url } => {
            let base = url.as_deref().unwrap_or(OPSGENIE_ALERTS_URL);
            let mut req = match opsgenie_verb(alert.colour) {
                // Green closes and cyan acknowledges the alert the incident opened, found by
                // its alias (as PagerDuty resolves and acknowledges by `dedup_key`).
                Some(verb) => HttpRequest::post(
                    target::join(
                        base,
                        &[dedup_key(alert).as_str(), verb],
                        Some("identifierType=alias"),
                    ),
                    &json!({ "source": "cpra", "user": "cpra", "note": alert.text() }),
                ),
                None => HttpRequest::post(base, &opsgenie_body(alert)),
            };
            req.headers.push(("Authorization".into(), format!("GenieKey {api_key}")));
            req
        }
        Notify::Pagerduty { routing_key, url } => HttpRequest::post(
            url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL),
            &pagerduty_body(alert, routing_key, wall_ms),
        ),
        Notify::Alertmanager { url } => {
            let url = if target::path_ends_with(url, ALERTMANAGER_ALERTS_PATH) {
                target::join(url, &[], None)
            } else {
                let segments: Vec<&str> =
                    ALERTMANAGER_ALERTS_PATH.split('/').filter(|s| !s.is_empty()).collect();
                target::join(url, &segments, None)
            };
            HttpRequest::post(url, &alertmanager_body(alert, wall_ms))
        }
    })
}

/// The generic webhook: Go CPRA's fields plus `monitor_id` and `incident_id`.
pub fn webhook_body(alert: &RenderedAlert, wall_ms: i64) -> Value {
    json!({
        "monitor": alert.monitor,
        "monitor_id": alert.monitor_id,
        "color": alert.colour.as_str(),
        "status": alert.status,
        "severity": alert.severity.as_str(),
        "summary": alert.summary,
        "message": alert.text(),
        "incident_id": alert.incident_id,
        "timestamp": rfc3339(wall_ms),
    })
}

pub fn mattermost_body(
    alert: &RenderedAlert,
    channel: &Option<String>,
    username: &Option<String>,
) -> Value {
    let mut body = json!({ "text": alert.text() });
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    if let Some(u) = username {
        body["username"] = json!(u);
    }
    body
}

/// The colour of a card's edge (Teams `themeColor`), as six hex digits.
pub const fn theme_colour(colour: Colour) -> &'static str {
    match colour {
        Colour::Yellow => "FFC107",
        Colour::Red => "D32F2F",
        Colour::Cyan => "00BCD4",
        Colour::Green => "2E7D32",
        Colour::Gray => "9E9E9E",
    }
}

/// A Teams connector `MessageCard` (what incoming webhooks accept).
pub fn teams_body(alert: &RenderedAlert) -> Value {
    let mut facts = vec![
        json!({ "name": "Status", "value": alert.status }),
        json!({ "name": "Severity", "value": alert.severity.as_str() }),
        json!({ "name": "Monitor id", "value": alert.monitor_id }),
    ];
    if let Some(id) = &alert.incident_id {
        facts.push(json!({ "name": "Incident", "value": id }));
    }
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": theme_colour(alert.colour),
        "summary": alert.headline(),
        "title": format!("{}: {}", alert.title, alert.monitor),
        "sections": [{
            "activityTitle": alert.summary,
            "facts": facts,
            "text": format!("Action: {}", alert.action),
        }],
    })
}

/// Opsgenie priority by severity.
const fn opsgenie_priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "P1",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    }
}

/// The Alert API's action on an existing alert, by colour: `None` creates one.
pub const fn opsgenie_verb(colour: Colour) -> Option<&'static str> {
    match colour {
        Colour::Green => Some("close"),
        Colour::Cyan => Some("acknowledge"),
        Colour::Red | Colour::Yellow | Colour::Gray => None,
    }
}

/// The Alert API's create request. `alias` groups the alerts of one incident.
pub fn opsgenie_body(alert: &RenderedAlert) -> Value {
    json!({
        "message": cut(&alert.headline(), OPSGENIE_MAX_MESSAGE_CHARS),
        "alias": dedup_key(alert),
        "description": alert.text(),
        "priority": opsgenie_priority(alert.severity),
        "source": "cpra",
        "tags": ["cpra", alert.colour.as_str()],
        "details": {
            "monitor": alert.monitor,
            "monitor_id": alert.monitor_id,
            "color": alert.colour.as_str(),
            "status": alert.status,
        },
    })
}

/// Stable per monitor and incident, so a receiver groups an incident's alerts (PagerDuty
/// resolves the trigger with the same key). Gray is about a window, not an incident.
pub fn dedup_key(alert: &RenderedAlert) -> String {
    match &alert.incident_id {
        Some(id) => format!("cpra:{id}"),
        None => format!("cpra:{}#maintenance", alert.monitor_id),
    }
}

/// Events API v2 action: `trigger` for red and yellow (and gray, an info event), `resolve`
/// for green, `acknowledge` for cyan (an intervention is handling it).
pub const fn pagerduty_action(colour: Colour) -> &'static str {
    match colour {
        Colour::Red | Colour::Yellow | Colour::Gray => "trigger",
        Colour::Green => "resolve",
        Colour::Cyan => "acknowledge",
    }
}

pub fn pagerduty_body(alert: &RenderedAlert, routing_key: &str, wall_ms: i64) -> Value {
    let action = pagerduty_action(alert.colour);
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(alert),
    });
    if action == "trigger" {
        body["payload"] = json!({
            "summary": cut(&alert.headline(), PAGERDUTY_MAX_SUMMARY_CHARS),
            "source": alert.monitor_id,
            "severity": alert.severity.as_str(),
            "timestamp": rfc3339(wall_ms),
            "component": alert.monitor,
            "custom_details": {
                "color": alert.colour.as_str(),
                "status": alert.status,
                "action": alert.action,
                "next_steps": alert.next_steps,
                "incident_id": alert.incident_id,
            },
        });
    }
    body
}

/// Alertmanager labels: the identity of an alert. Green resolves by re-posting the firing
/// label sets (red and yellow) with `endsAt`, since Alertmanager matches on every label.
fn alertmanager_labels(alert: &RenderedAlert, colour: Colour, severity: Severity) -> Value {
    json!({
        "alertname": "CPRAMonitor",
        "monitor": alert.monitor,
        "monitor_id": alert.monitor_id,
        "severity": severity.as_str(),
        "color": colour.as_str(),
    })
}

pub fn alertmanager_body(alert: &RenderedAlert, wall_ms: i64) -> Value {
    let at = rfc3339(wall_ms);
    let annotations = json!({
        "summary": alert.headline(),
        "description": alert.text(),
        "incident_id": alert.incident_id,
    });
    if alert.colour == Colour::Green {
        let resolved = |colour: Colour, severity: Severity| {
            json!({
                "labels": alertmanager_labels(alert, colour, severity),
                "annotations": annotations,
                "endsAt": at,
            })
        };
        return json!([
            resolved(Colour::Red, Severity::Critical),
            resolved(Colour::Yellow, Severity::Warning)
        ]);
    }
    json!([{
        "labels": alertmanager_labels(alert, alert.colour, alert.severity),
        "annotations": annotations,
        "startsAt": at,
    }])
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::Reason;

    pub(crate) fn alert(colour: Colour) -> RenderedAlert {
        let words = crate::alert::words(colour);
        RenderedAlert {
            colour,
            title: words.title,
            status: words.status,
            severity: words.severity,
            reason: Reason::ThresholdReached,
            monitor: "Checkout API".into(),
            monitor_id: "checkout-api".into(),
            incident_id: (colour != Colour::Gray).then(|| "checkout-api#3".into()),
            incident_seq: (colour != Colour::Gray).then_some(3),
            summary: "3 consecutive failures: connect refused to 10.0.0.5:443".into(),
            action: "Investigate".into(),
            next_steps: vec!["Look".into()],
            not_before_ms: 0,
        }
    }

    const T: i64 = 1_700_000_000_123;

    fn body(req: &HttpRequest) -> String {
        String::from_utf8(req.body.clone()).unwrap()
    }

    #[test]
    fn webhook_exact_json_method_and_headers() {
        let n = Notify::Webhook {
            url: "http://127.0.0.1:1/hook".into(),
            method: "put".into(),
            headers: Arc::new(vec![("X-Token".into(), "t".into())]),
        };
        let a = alert(Colour::Red);
        let req = http_request(&n, &a, T).unwrap();
        assert_eq!(req.method, "PUT");
        assert_eq!(req.url, "http://127.0.0.1:1/hook");
        assert_eq!(req.headers, [("X-Token".to_owned(), "t".to_owned())]);
        let message = serde_json::to_string(&a.text()).unwrap();
        assert_eq!(
            body(&req),
            format!(
                "{{\"color\":\"red\",\"incident_id\":\"checkout-api#3\",\"message\":{message},\
                 \"monitor\":\"Checkout API\",\"monitor_id\":\"checkout-api\",\"severity\":\"critical\",\
                 \"status\":\"FAILED\",\"summary\":\"3 consecutive failures: connect refused to 10.0.0.5:443\",\
                 \"timestamp\":\"2023-11-14T22:13:20.123Z\"}}"
            )
        );
    }

    #[test]
    fn chat_bodies() {
        let a = alert(Colour::Yellow);
        let text = serde_json::to_string(&a.text()).unwrap();
        let slack = http_request(&Notify::Slack { hook: "http://h/s".into() }, &a, T).unwrap();
        assert_eq!(body(&slack), format!("{{\"text\":{text}}}"));
        let discord =
            http_request(&Notify::Discord { webhook_url: "http://h/d".into() }, &a, T).unwrap();
        assert_eq!(body(&discord), format!("{{\"content\":{text}}}"));
        let mm = Notify::Mattermost {
            webhook_url: "http://h/m".into(),
            channel: Some("ops".into()),
            username: None,
        };
        assert_eq!(
            body(&http_request(&mm, &a, T).unwrap()),
            format!("{{\"channel\":\"ops\",\"text\":{text}}}")
        );
        let teams: Value = serde_json::from_slice(
            &http_request(&Notify::Teams { webhook_url: "http://h/t".into() }, &a, T).unwrap().body,
        )
        .unwrap();
        assert_eq!(teams["@type"], "MessageCard");
        assert_eq!(teams["themeColor"], "FFC107");
        assert_eq!(teams["title"], "DEGRADED ALERT: Checkout API");
        assert_eq!(teams["sections"][0]["facts"][3]["value"], "checkout-api#3");
    }

    #[test]
    fn telegram_url_and_body() {
        let a = alert(Colour::Green);
        let n = Notify::Telegram { bot_token: "123:abc".into(), chat_id: "-100".into(), url: None };
        let req = http_request(&n, &a, T).unwrap();
        assert_eq!(req.url, "https://api.telegram.org/bot123:abc/sendMessage");
        let text = serde_json::to_string(&a.text()).unwrap();
        assert_eq!(
            body(&req),
            format!("{{\"chat_id\":\"-100\",\"disable_web_page_preview\":true,\"text\":{text}}}")
        );
        let n = Notify::Telegram {
            bot_token: "123:abc".into(),
            chat_id: "-100".into(),
            url: Some("http://127.0.0.1:9/".into()),
        };
        assert_eq!(
            http_request(&n, &a, T).unwrap().url,
            "http://127.0.0.1:9/bot123:abc/sendMessage"
        );
    }

    #[test]
    fn opsgenie_cuts_message_to_130_chars() {
        let mut a = alert(Colour::Red);
        a.summary = "é".repeat(300);
        let n = Notify::Opsgenie { api_key: "k".into(), url: None };
        let req = http_request(&n, &a, T).unwrap();
        assert_eq!(req.url, OPSGENIE_ALERTS_URL);
        assert_eq!(req.headers, [("Authorization".to_owned(), "GenieKey k".to_owned())]);
        let v: Value = serde_json::from_slice(&req.body).unwrap();
        let message = v["message"].as_str().unwrap();
        assert_eq!(message.chars().count(), 130);
        assert!(message.starts_with("CRITICAL ALERT: Checkout API: éé"));
        assert_eq!(v["alias"], "cpra:checkout-api#3");
        assert_eq!(v["priority"], "P1");
    }

    #[test]
    fn opsgenie_green_closes_and_cyan_acknowledges_the_incident_alert_by_alias() {
        let n = Notify::Opsgenie {
            api_key: "k".into(),
            url: Some("http://127.0.0.1:9/v2/alerts/".into()),
        };
        for (colour, verb) in [(Colour::Green, "close"), (Colour::Cyan, "acknowledge")] {
            let req = http_request(&n, &alert(colour), T).unwrap();
            assert_eq!(req.method, "POST");
            assert_eq!(
                req.url,
                format!("http://127.0.0.1:9/v2/alerts/cpra:checkout-api%233/{verb}?identifierType=alias")
            );
            assert_eq!(req.headers, [("Authorization".to_owned(), "GenieKey k".to_owned())]);
            let v: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!((v["source"].as_str(), v["user"].as_str()), (Some("cpra"), Some("cpra")));
            assert!(v["note"].as_str().unwrap().contains("Checkout API"));
        }
        // Red, yellow and gray create alerts; the alias of red's is the one green closes.
        for colour in [Colour::Red, Colour::Yellow, Colour::Gray] {
            let req = http_request(&n, &alert(colour), T).unwrap();
            assert_eq!(req.url, "http://127.0.0.1:9/v2/alerts/");
        }
    }

    #[test]
    fn pagerduty_trigger_and_resolve_share_a_dedup_key() {
        let n = Notify::Pagerduty { routing_key: "R".into(), url: None };
        let red = http_request(&n, &alert(Colour::Red), T).unwrap();
        assert_eq!(red.url, PAGERDUTY_EVENTS_URL);
        let red: Value = serde_json::from_slice(&red.body).unwrap();
        assert_eq!(red["event_action"], "trigger");
        assert_eq!(red["routing_key"], "R");
        assert_eq!(red["payload"]["severity"], "critical");
        assert_eq!(red["payload"]["source"], "checkout-api");
        assert_eq!(red["payload"]["timestamp"], "2023-11-14T22:13:20.123Z");
        let yellow = pagerduty_body(&alert(Colour::Yellow), "R", T);
        assert_eq!(
            (yellow["event_action"].as_str(), yellow["payload"]["severity"].as_str()),
            (Some("trigger"), Some("warning"))
        );
        let green = pagerduty_body(&alert(Colour::Green), "R", T);
        assert_eq!(
            green.to_string(),
            "{\"dedup_key\":\"cpra:checkout-api#3\",\"event_action\":\"resolve\",\"routing_key\":\"R\"}"
        );
        assert_eq!(red["dedup_key"], green["dedup_key"]);
    }

    #[test]
    fn alertmanager_fires_and_resolves_with_ends_at() {
        let n = Notify::Alertmanager { url: "http://127.0.0.1:9093/".into() };
        let req = http_request(&n, &alert(Colour::Red), T).unwrap();
        assert_eq!(req.url, "http://127.0.0.1:9093/api/v2/alerts");
        let v: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            v[0]["labels"].to_string(),
            "{\"alertname\":\"CPRAMonitor\",\"color\":\"red\",\"monitor\":\"Checkout API\",\
             \"monitor_id\":\"checkout-api\",\"severity\":\"critical\"}"
        );
        assert_eq!(v[0]["startsAt"], "2023-11-14T22:13:20.123Z");
        assert!(v[0].get("endsAt").is_none());
        let green = alertmanager_body(&alert(Colour::Green), T);
        let resolved = green.as_array().unwrap();
        assert_eq!(resolved.len(), 2);
        assert_eq!(resolved[0]["labels"], v[0]["labels"]);
        assert!(resolved.iter().all(|a| a["endsAt"] == "2023-11-14T22:13:20.123Z"));
    }

    #[test]
    fn log_and_email_are_not_http() {
        let a = alert(Colour::Red);
        assert!(http_request(&Notify::Log { file: None }, &a, T).is_none());
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("hi", 5), "hi");
    }
}
