//! A loaded [`Monitor`] written back as manifest JSON (the same field names the loader reads),
//! so every field can be checked to round-trip, and tools (the API, `cpra gen`) can show a
//! monitor as the user would write it. Not on any hot path.

use serde_json::{json, Map, Value};

use super::duration::format_ms;
use super::load::Registry;
use super::schema::*;

fn put<T: Into<Value>>(m: &mut Map<String, Value>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(key.to_string(), v.into());
    }
}

fn headers(h: &Headers) -> Value {
    Value::Object(h.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn ms(v: Option<u64>) -> Option<String> {
    v.map(format_ms)
}

pub fn notify_json(n: &Notify) -> (String, Value) {
    let mut c = Map::new();
    match n {
        Notify::Log { file } => put(&mut c, "file", file.clone()),
        Notify::Webhook { url, method, headers: h } => {
            c.insert("url".into(), url.clone().into());
            c.insert("method".into(), method.clone().into());
            c.insert("headers".into(), headers(h));
        }
        Notify::Slack { hook } => put(&mut c, "hook", Some(hook.clone())),
        Notify::Pagerduty { routing_key, url } => {
            put(&mut c, "routing_key", Some(routing_key.clone()));
            put(&mut c, "url", url.clone());
        }
        Notify::Email { server, from, to, subject, allow_insecure, username, password } => {
            put(&mut c, "server", Some(server.clone()));
            put(&mut c, "from", Some(from.clone()));
            c.insert("to".into(), json!(to));
            put(&mut c, "subject", subject.clone());
            c.insert("allow_insecure".into(), (*allow_insecure).into());
            put(&mut c, "username", username.clone());
            put(&mut c, "password", password.clone());
        }
        Notify::Discord { webhook_url } | Notify::Teams { webhook_url } => {
            put(&mut c, "webhook_url", Some(webhook_url.clone()))
        }
        Notify::Telegram { bot_token, chat_id, url } => {
            put(&mut c, "bot_token", Some(bot_token.clone()));
            put(&mut c, "chat_id", Some(chat_id.clone()));
            put(&mut c, "url", url.clone());
        }
        Notify::Opsgenie { api_key, url } => {
            put(&mut c, "api_key", Some(api_key.clone()));
            put(&mut c, "url", url.clone());
        }
        Notify::Mattermost { webhook_url, channel, username } => {
            put(&mut c, "webhook_url", Some(webhook_url.clone()));
            put(&mut c, "channel", channel.clone());
            put(&mut c, "username", username.clone());
        }
        Notify::Alertmanager { url } => put(&mut c, "url", Some(url.clone())),
    }
    (n.kind().to_string(), Value::Object(c))
}

fn pulse_config(p: &Pulse) -> Value {
    let mut c = Map::new();
    match p {
        Pulse::Http(h) => {
            c.insert("url".into(), h.url.clone().into());
            c.insert("method".into(), h.method.as_str().into());
            c.insert("headers".into(), headers(&h.headers));
            put(&mut c, "body", h.body());
            c.insert("expected_status".into(), json!(h.expected_status.as_slice()));
            c.insert("insecure_skip_verify".into(), h.insecure_skip_verify.into());
            put(&mut c, "retries", h.retries());
            put(&mut c, "body_contains", h.body_contains());
            put(&mut c, "body_regex", h.body_regex());
            put(&mut c, "max_response_time", ms(h.max_response_time_ms()));
            put(&mut c, "ca_file", h.ca_file());
        }
        Pulse::Tcp(t) => {
            c.insert("host".into(), t.host.clone().into());
            c.insert("port".into(), t.port.into());
        }
        Pulse::Icmp(i) => {
            c.insert("host".into(), i.host.clone().into());
            c.insert("count".into(), i.count.into());
            c.insert("ignore_privilege".into(), i.ignore_privilege.into());
        }
        Pulse::Dns(d) => {
            c.insert("host".into(), d.host.clone().into());
            put(&mut c, "server", d.server.clone());
        }
        Pulse::Udp(u) => {
            c.insert("host".into(), u.host.clone().into());
            c.insert("port".into(), u.port.into());
            put(&mut c, "payload", u.payload.clone());
        }
        Pulse::Grpc(g) => {
            c.insert("host".into(), g.host.clone().into());
            c.insert("port".into(), g.port.into());
            put(&mut c, "service", g.service.clone());
        }
        Pulse::Tls(t) => {
            c.insert("host".into(), t.host.clone().into());
            c.insert("port".into(), t.port.into());
            put(&mut c, "server_name", t.server_name.clone());
            c.insert("warn_days".into(), t.warn_days.into());
            c.insert("critical_days".into(), t.critical_days.into());
            c.insert("insecure_skip_verify".into(), t.insecure_skip_verify.into());
        }
        Pulse::Docker(d) => {
            c.insert("container".into(), d.container.clone().into());
        }
    }
    Value::Object(c)
}

fn intervention(i: &Intervention) -> Value {
    let mut t = Map::new();
    match &i.action {
        InterventionAction::Docker { container, timeout_ms } => {
            put(&mut t, "container", Some(container.clone()));
            put(&mut t, "timeout", ms(*timeout_ms));
        }
        InterventionAction::Webhook { url, method, headers: h, body, timeout_ms } => {
            put(&mut t, "url", Some(url.clone()));
            put(&mut t, "method", Some(method.clone()));
            t.insert("headers".into(), headers(h));
            put(&mut t, "body", body.clone());
            put(&mut t, "timeout", ms(*timeout_ms));
        }
        InterventionAction::Systemd { unit, mode } => {
            put(&mut t, "unit", Some(unit.clone()));
            put(&mut t, "mode", mode.clone());
        }
        InterventionAction::Kubernetes {
            namespace,
            kind,
            name,
            replicas,
            kubeconfig_path,
            timeout_ms,
        } => {
            put(&mut t, "namespace", Some(namespace.clone()));
            put(&mut t, "kind", Some(kind.clone()));
            put(&mut t, "name", Some(name.clone()));
            put(&mut t, "replicas", *replicas);
            put(&mut t, "kubeconfig_path", kubeconfig_path.clone());
            put(&mut t, "timeout", ms(*timeout_ms));
        }
    }
    let mut m = Map::new();
    m.insert("action".into(), i.action.action_name().into());
    m.insert("target".into(), Value::Object(t));
    put(&mut m, "retries", i.retries);
    put(&mut m, "max_failures", i.max_failures);
    Value::Object(m)
}

/// One monitor as manifest JSON.
pub fn monitor_json(m: &Monitor) -> Value {
    let p = &m.pulse_check;
    let mut pc = Map::new();
    pc.insert("type".into(), p.pulse.type_name().into());
    pc.insert("interval".into(), format_ms(p.interval_ms).into());
    pc.insert("timeout".into(), format_ms(p.timeout_ms).into());
    put(&mut pc, "unhealthy_threshold", p.unhealthy_threshold);
    put(&mut pc, "healthy_threshold", p.healthy_threshold);
    put(&mut pc, "max_failures", p.max_failures);
    put(&mut pc, "retries", p.retries);
    pc.insert("groups".into(), json!(p.groups.as_slice()));
    pc.insert("config".into(), pulse_config(&p.pulse));
    let mut codes = Map::new();
    for colour in Colour::ALL {
        let Some(code) = m.codes.get(colour) else { continue };
        let mut c = Map::new();
        c.insert("dispatch".into(), code.dispatch.into());
        match &code.target {
            CodeTarget::Notify(n) => {
                let (kind, config) = notify_json(n);
                c.insert("notify".into(), kind.into());
                c.insert("config".into(), config);
            }
            CodeTarget::Group { name, .. } => {
                c.insert("notify_group".into(), name.clone().into());
            }
        }
        codes.insert(colour.as_str().into(), Value::Object(c));
    }
    let mut out = Map::new();
    out.insert("id".into(), m.id.clone().into());
    out.insert("name".into(), m.name.clone().into());
    out.insert("enabled".into(), m.enabled.into());
    out.insert("tags".into(), json!(m.tags.as_slice()));
    out.insert("pulse_check".into(), Value::Object(pc));
    out.insert("codes".into(), Value::Object(codes));
    if let Some(i) = &m.intervention {
        out.insert("intervention".into(), intervention(i));
    }
    let windows: Vec<Value> = m
        .maintenance
        .iter()
        .map(|w| json!({"cron": w.cron, "duration": format_ms(w.duration_ms), "timezone": w.timezone.name()}))
        .collect();
    out.insert("maintenance".into(), Value::Array(windows));
    Value::Object(out)
}

/// A whole manifest: the monitors plus the registry's endpoints and groups.
pub fn manifest_json(monitors: &[Monitor], registry: &Registry, version: Option<&str>) -> Value {
    let endpoints: Map<String, Value> = registry
        .endpoints
        .iter()
        .map(|(name, n)| {
            let (kind, config) = notify_json(n);
            (name.clone(), json!({"type": kind, "config": config}))
        })
        .collect();
    let groups: Map<String, Value> = registry
        .groups
        .iter()
        .map(|(name, idx)| {
            let names: Vec<&str> = idx
                .iter()
                .filter_map(|&i| registry.endpoints.get(i))
                .map(|(n, _)| n.as_str())
                .collect();
            (name.clone(), json!(names))
        })
        .collect();
    let mut out = Map::new();
    put(&mut out, "version", version.map(str::to_string));
    out.insert("endpoints".into(), Value::Object(endpoints));
    out.insert("notification_groups".into(), Value::Object(groups));
    out.insert("monitors".into(), Value::Array(monitors.iter().map(monitor_json).collect()));
    Value::Object(out)
}
