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
    DATADOG_MAX_TEXT_CHARS, DATADOG_MAX_TITLE_CHARS, DISCORD_MAX_CONTENT_CHARS,
    OPSGENIE_MAX_MESSAGE_CHARS, PAGERDUTY_MAX_SUMMARY_CHARS, PUSHOVER_MAX_MESSAGE_CHARS,
    PUSHOVER_MAX_TITLE_CHARS, TELEGRAM_MAX_TEXT_CHARS, TWILIO_MAX_BODY_CHARS,
};
use crate::manifest::Notify;

pub const TELEGRAM_API: &str = "https://api.telegram.org";
pub const OPSGENIE_ALERTS_URL: &str = "https://api.opsgenie.com/v2/alerts";
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Alertmanager's alert intake, appended to the configured base URL.
pub const ALERTMANAGER_ALERTS_PATH: &str = "/api/v2/alerts";
/// Splunk On-Call's generic REST integration; `/<rest_endpoint_key>/<routing_key>` follows.
pub const VICTOROPS_ALERT_URL: &str =
    "https://alert.victorops.com/integrations/generic/20131114/alert";
/// The `message_type`s Splunk On-Call's REST endpoint takes.
pub const VICTOROPS_MESSAGE_TYPES: [&str; 5] =
    ["CRITICAL", "WARNING", "ACKNOWLEDGEMENT", "INFO", "RECOVERY"];
pub const PUSHOVER_MESSAGES_URL: &str = "https://api.pushover.net/1/messages.json";
/// An emergency (priority 2) message repeats every `retry` seconds for `expire` seconds
/// until acknowledged; Pushover requires both, so these stand in when the manifest gives none.
pub const PUSHOVER_DEFAULT_RETRY_S: u32 = 60;
pub const PUSHOVER_DEFAULT_EXPIRE_S: u32 = 1_800;
pub const DATADOG_DEFAULT_SITE: &str = "datadoghq.com";
/// Datadog's events intake, under `https://api.<site>`.
pub const DATADOG_EVENTS_PATH: &str = "/api/v1/events";
pub const TWILIO_API: &str = "https://api.twilio.com";
const FORM: &str = "application/x-www-form-urlencoded";

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

    /// A form POST (`application/x-www-form-urlencoded`), pairs in the order given.
    fn form<'a>(
        url: impl Into<String>,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> HttpRequest {
        let body =
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        HttpRequest {
            method: "POST".to_owned(),
            url: url.into(),
            headers: vec![("Content-Type".into(), FORM.into())],
            body: body.into_bytes(),
        }
    }
}

/// The requests of one notification: one, or one per recipient (twilio); none for `log` and
/// `email`, which are not HTTP. A delivery sends them in order and, on a retry, only those
/// not yet accepted (a recipient never gets the same SMS twice).
pub fn http_requests(notify: &Notify, alert: &RenderedAlert, wall_ms: i64) -> Vec<HttpRequest> {
    match notify {
        Notify::Twilio { account_sid, auth_token, from, to, url } => to
            .iter()
            .map(|to| twilio_request(account_sid, auth_token, from, to, url, alert))
            .collect(),
        _ => http_request(notify, alert, wall_ms).into_iter().collect(),
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
        Notify::Victorops { rest_endpoint_key, routing_key, message_type, entity_id, url } => {
            let base = url.as_deref().unwrap_or(VICTOROPS_ALERT_URL);
            HttpRequest::post(
                target::join(base, &[rest_endpoint_key.as_str(), routing_key.as_str()], None),
                &victorops_body(alert, message_type.as_deref(), entity_id.as_deref(), wall_ms),
            )
        }
        Notify::Pushover { url, .. } => {
            let pairs = pushover_form(notify, alert);
            HttpRequest::form(
                url.as_deref().unwrap_or(PUSHOVER_MESSAGES_URL),
                pairs.iter().map(|(k, v)| (*k, v.as_str())),
            )
        }
        Notify::Datadog { api_key, app_key, site, tags, url } => {
            let url = match url {
                Some(u) => u.clone(),
                None => format!(
                    "https://api.{}{DATADOG_EVENTS_PATH}",
                    site.as_deref().unwrap_or(DATADOG_DEFAULT_SITE)
                ),
            };
            let mut req = HttpRequest::post(url, &datadog_body(alert, tags, wall_ms));
            req.headers.push(("DD-API-KEY".into(), api_key.clone()));
            if let Some(k) = app_key {
                req.headers.push(("DD-APPLICATION-KEY".into(), k.clone()));
            }
            req
        }
        Notify::Twilio { account_sid, auth_token, from, to, url } => {
            // The first recipient's request (the load-time check of the URL); a delivery
            // sends one per recipient (`http_requests`).
            let first = to.first().map_or("", String::as_str);
            twilio_request(account_sid, auth_token, from, first, url, alert)
        }
    })
}

/// Splunk On-Call's `message_type` for `colour`: CRITICAL opens an incident, RECOVERY
/// resolves the one with the same `entity_id`.
pub const fn victorops_message_type(colour: Colour) -> &'static str {
    match colour {
        Colour::Red => "CRITICAL",
        Colour::Yellow => "WARNING",
        Colour::Green => "RECOVERY",
        Colour::Cyan | Colour::Gray => "INFO",
    }
}

/// The generic REST endpoint's alert. `entity_id` groups an incident's alerts (the
/// recovery resolves the critical), as PagerDuty's `dedup_key` does.
pub fn victorops_body(
    alert: &RenderedAlert,
    message_type: Option<&str>,
    entity_id: Option<&str>,
    wall_ms: i64,
) -> Value {
    json!({
        "message_type": message_type.unwrap_or(victorops_message_type(alert.colour)),
        "entity_id": entity_id.map_or_else(|| dedup_key(alert), str::to_owned),
        "entity_display_name": alert.headline(),
        "state_message": alert.text(),
        "state_start_time": wall_ms.div_euclid(1000),
        "monitoring_tool": "cpra",
        "monitor_id": alert.monitor_id,
        "incident_id": alert.incident_id,
    })
}

/// Pushover's message parameters, in the order sent.
pub fn pushover_form(notify: &Notify, alert: &RenderedAlert) -> Vec<(&'static str, String)> {
    let Notify::Pushover { app_token, user_key, title, priority, retry_s, expire_s, sound, .. } =
        notify
    else {
        return Vec::new();
    };
    let title = match title {
        Some(t) => cut(t, PUSHOVER_MAX_TITLE_CHARS).to_owned(),
        None => {
            cut(&format!("{}: {}", alert.title, alert.monitor), PUSHOVER_MAX_TITLE_CHARS).to_owned()
        }
    };
    let mut form = vec![
        ("token", app_token.clone()),
        ("user", user_key.clone()),
        ("title", title),
        ("message", cut(&alert.text(), PUSHOVER_MAX_MESSAGE_CHARS).to_owned()),
        ("priority", priority.to_string()),
    ];
    if *priority == 2 {
        form.push(("retry", retry_s.unwrap_or(PUSHOVER_DEFAULT_RETRY_S).to_string()));
        form.push(("expire", expire_s.unwrap_or(PUSHOVER_DEFAULT_EXPIRE_S).to_string()));
    }
    if let Some(s) = sound {
        form.push(("sound", s.clone()));
    }
    form
}

/// Datadog's `alert_type` for `colour`.
pub const fn datadog_alert_type(colour: Colour) -> &'static str {
    match colour {
        Colour::Red => "error",
        Colour::Yellow => "warning",
        Colour::Green => "success",
        Colour::Cyan | Colour::Gray => "info",
    }
}

/// A Datadog event; `aggregation_key` rolls an incident's events up into one.
pub fn datadog_body(alert: &RenderedAlert, tags: &[String], wall_ms: i64) -> Value {
    let mut all: Vec<String> = tags.to_vec();
    all.push(format!("monitor:{}", alert.monitor));
    json!({
        "title": cut(&alert.headline(), DATADOG_MAX_TITLE_CHARS),
        "text": cut(&alert.text(), DATADOG_MAX_TEXT_CHARS),
        "alert_type": datadog_alert_type(alert.colour),
        "tags": all,
        "aggregation_key": alert
            .incident_id
            .clone()
            .unwrap_or_else(|| format!("{}#maintenance", alert.monitor_id)),
        "source_type_name": "cpra",
        "date_happened": wall_ms.div_euclid(1000),
    })
}

/// One SMS through Twilio's Messages API: basic auth `account_sid:auth_token`, a form.
pub fn twilio_request(
    account_sid: &str,
    auth_token: &str,
    from: &str,
    to: &str,
    url: &Option<String>,
    alert: &RenderedAlert,
) -> HttpRequest {
    use base64::Engine as _;
    let base = url.as_deref().unwrap_or(TWILIO_API);
    let url = target::join(base, &["2010-04-01", "Accounts", account_sid, "Messages.json"], None);
    let text = alert.text();
    let mut req = HttpRequest::form(
        url,
        [("From", from), ("To", to), ("Body", cut(text.trim_end(), TWILIO_MAX_BODY_CHARS))],
    );
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"));
    req.headers.push(("Authorization".into(), format!("Basic {credentials}")));
    req
}

/// The generic webhook: Go CPRA's fields plus `monitor_id` and `incident_id`, and what the
/// log line has beside them (`type`, `action`, `next_steps`).
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
        "type": "code",
        "action": alert.action,
        "next_steps": alert.next_steps,
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
                "{{\"action\":\"Investigate\",\"color\":\"red\",\"incident_id\":\"checkout-api#3\",\
                 \"message\":{message},\
                 \"monitor\":\"Checkout API\",\"monitor_id\":\"checkout-api\",\"next_steps\":[\"Look\"],\
                 \"severity\":\"critical\",\
                 \"status\":\"FAILED\",\"summary\":\"3 consecutive failures: connect refused to 10.0.0.5:443\",\
                 \"timestamp\":\"2023-11-14T22:13:20.123Z\",\"type\":\"code\"}}"
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

    fn victorops(message_type: Option<&str>, url: Option<&str>) -> Notify {
        Notify::Victorops {
            rest_endpoint_key: "rest-key".into(),
            routing_key: "ops team".into(),
            message_type: message_type.map(str::to_owned),
            entity_id: None,
            url: url.map(str::to_owned),
        }
    }

    #[test]
    fn victorops_url_message_types_and_exact_body() {
        let a = alert(Colour::Red);
        let req = http_request(&victorops(None, None), &a, T).unwrap();
        assert_eq!(
            req.url,
            "https://alert.victorops.com/integrations/generic/20131114/alert/rest-key/ops%20team"
        );
        let text = serde_json::to_string(&a.text()).unwrap();
        let headline = serde_json::to_string(&a.headline()).unwrap();
        assert_eq!(
            body(&req),
            format!(
                "{{\"entity_display_name\":{headline},\"entity_id\":\"cpra:checkout-api#3\",\
                 \"incident_id\":\"checkout-api#3\",\"message_type\":\"CRITICAL\",\
                 \"monitor_id\":\"checkout-api\",\"monitoring_tool\":\"cpra\",\
                 \"state_message\":{text},\"state_start_time\":1700000000}}"
            )
        );
        let kind = |n: &Notify, c| {
            let v: Value =
                serde_json::from_slice(&http_request(n, &alert(c), T).unwrap().body).unwrap();
            (v["message_type"].as_str().unwrap().to_owned(), v["entity_id"].to_string())
        };
        let plain = victorops(None, Some("http://127.0.0.1:9/alert/"));
        assert_eq!(kind(&plain, Colour::Yellow).0, "WARNING");
        assert_eq!(kind(&plain, Colour::Cyan).0, "INFO");
        assert_eq!(kind(&plain, Colour::Gray).0, "INFO");
        // Green resolves the incident the red opened: same entity id.
        assert_eq!(kind(&plain, Colour::Green), ("RECOVERY".into(), kind(&plain, Colour::Red).1));
        assert_eq!(
            kind(&victorops(Some("ACKNOWLEDGEMENT"), None), Colour::Red).0,
            "ACKNOWLEDGEMENT"
        );
        assert_eq!(
            http_request(&plain, &a, T).unwrap().url,
            "http://127.0.0.1:9/alert/rest-key/ops%20team"
        );
    }

    fn pushover(priority: i8, sound: Option<&str>) -> Notify {
        Notify::Pushover {
            app_token: "app-tok".into(),
            user_key: "user key".into(),
            title: None,
            priority,
            retry_s: None,
            expire_s: None,
            sound: sound.map(str::to_owned),
            url: None,
        }
    }

    #[test]
    fn pushover_form_exact_bytes_and_emergency_defaults() {
        let mut a = alert(Colour::Red);
        a.next_steps.clear();
        let req = http_request(&pushover(1, Some("siren")), &a, T).unwrap();
        assert_eq!(req.url, "https://api.pushover.net/1/messages.json");
        assert_eq!(
            req.headers,
            [("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())]
        );
        assert_eq!(
            body(&req),
            "token=app-tok&user=user+key&title=CRITICAL+ALERT%3A+Checkout+API&message=CRITICAL+\
             ALERT%3A+Checkout+API%0AStatus%3A+FAILED+%7C+Severity%3A+critical+%7C+Monitor+id%3A+\
             checkout-api+%7C+Incident%3A+checkout-api%233%0A3+consecutive+failures%3A+connect+\
             refused+to+10.0.0.5%3A443%0AAction%3A+Investigate%0A&priority=1&sound=siren"
        );
        let form =
            |n: &Notify| pushover_form(n, &a).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(form(&pushover(0, None)), ["token", "user", "title", "message", "priority"]);
        let emergency = pushover_form(&pushover(2, None), &a);
        assert_eq!(emergency[5..], [("retry", "60".to_owned()), ("expire", "1800".to_owned())]);
        let long = RenderedAlert { summary: "x".repeat(3_000), ..a.clone() };
        let sent = pushover_form(&pushover(0, None), &long);
        assert_eq!(sent[3].1.chars().count(), crate::limits::PUSHOVER_MAX_MESSAGE_CHARS);
    }

    #[test]
    fn datadog_site_headers_tags_and_exact_body() {
        let n = Notify::Datadog {
            api_key: "dd-key".into(),
            app_key: Some("dd-app".into()),
            site: Some("datadoghq.eu".into()),
            tags: vec!["env:prod".into()],
            url: None,
        };
        let a = alert(Colour::Yellow);
        let req = http_request(&n, &a, T).unwrap();
        assert_eq!(req.url, "https://api.datadoghq.eu/api/v1/events");
        assert_eq!(
            req.headers,
            [
                ("DD-API-KEY".to_owned(), "dd-key".to_owned()),
                ("DD-APPLICATION-KEY".to_owned(), "dd-app".to_owned())
            ]
        );
        let text = serde_json::to_string(&a.text()).unwrap();
        assert_eq!(
            body(&req),
            format!(
                "{{\"aggregation_key\":\"checkout-api#3\",\"alert_type\":\"warning\",\
                 \"date_happened\":1700000000,\"source_type_name\":\"cpra\",\
                 \"tags\":[\"env:prod\",\"monitor:Checkout API\"],\"text\":{text},\
                 \"title\":\"DEGRADED ALERT: Checkout API: 3 consecutive failures: connect refused to \
                 10.0.0.5:443\"}}"
            )
        );
        let plain = Notify::Datadog {
            api_key: "k".into(),
            app_key: None,
            site: None,
            tags: vec![],
            url: Some("http://127.0.0.1:9/api/v1/events".into()),
        };
        let req = http_request(&plain, &alert(Colour::Green), T).unwrap();
        assert_eq!(req.url, "http://127.0.0.1:9/api/v1/events");
        assert_eq!(req.headers.len(), 1);
        let v: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(v["alert_type"], "success");
        let default = Notify::Datadog {
            api_key: "k".into(),
            app_key: None,
            site: None,
            tags: vec![],
            url: None,
        };
        assert_eq!(
            http_request(&default, &a, T).unwrap().url,
            "https://api.datadoghq.com/api/v1/events"
        );
        let gray: Value =
            serde_json::from_slice(&http_request(&default, &alert(Colour::Gray), T).unwrap().body)
                .unwrap();
        assert_eq!(
            (gray["alert_type"].as_str(), gray["aggregation_key"].as_str()),
            (Some("info"), Some("checkout-api#maintenance"))
        );
    }

    #[test]
    fn twilio_one_form_per_recipient_with_basic_auth() {
        let n = Notify::Twilio {
            account_sid: "AC123".into(),
            auth_token: "tw-secret".into(),
            from: "+15550000000".into(),
            to: vec!["+15551111111".into(), "+15552222222".into()],
            url: None,
        };
        let mut a = alert(Colour::Red);
        a.next_steps.clear();
        let reqs = http_requests(&n, &a, T);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].url, "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json");
        // base64("AC123:tw-secret")
        assert_eq!(
            reqs[0].headers,
            [
                ("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
                ("Authorization".to_owned(), "Basic QUMxMjM6dHctc2VjcmV0".to_owned())
            ]
        );
        assert_eq!(
            body(&reqs[0]),
            "From=%2B15550000000&To=%2B15551111111&Body=CRITICAL+ALERT%3A+Checkout+API%0AStatus\
             %3A+FAILED+%7C+Severity%3A+critical+%7C+Monitor+id%3A+checkout-api+%7C+Incident%3A+\
             checkout-api%233%0A3+consecutive+failures%3A+connect+refused+to+10.0.0.5%3A443%0A\
             Action%3A+Investigate"
        );
        assert!(body(&reqs[1]).contains("To=%2B15552222222"));
        let long = RenderedAlert { summary: "é".repeat(3_000), ..a };
        let sent = http_requests(&n, &long, T);
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(&sent[0].body).into_owned().collect();
        assert_eq!(form[2].1.chars().count(), crate::limits::TWILIO_MAX_BODY_CHARS);
        let moved = Notify::Twilio {
            account_sid: "AC123".into(),
            auth_token: "tw-secret".into(),
            from: "+15550000000".into(),
            to: vec!["+15551111111".into()],
            url: Some("http://127.0.0.1:9".into()),
        };
        assert_eq!(
            http_request(&moved, &alert(Colour::Red), T).unwrap().url,
            "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages.json"
        );
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("hi", 5), "hi");
    }
}
