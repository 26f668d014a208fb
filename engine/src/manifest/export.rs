//! A loaded [`Monitor`] written back as manifest JSON (the same field names the loader reads),
//! so every field can be checked to round-trip (the manifest tests, and the direct JSON
//! decoder's tests, which feed it YAML fleets re-exported as JSON), and a tool can show a
//! monitor as the user would write it. Not on any hot path. (`cpra gen` does not use it: it
//! writes its synthetic fleets straight to the output, a million monitors without a `Monitor`.)
//!
//! The output's shape is declared by `#[derive(Serialize)]` views that borrow from the loaded
//! values. They are views, not attributes on the schema types, because the schema is shaped
//! for the runtime, not for the file: durations are milliseconds (written back as Go duration
//! strings), lists and blocks are interned `Arc`s, the http extras are boxed, codes are indexed
//! by colour, a group target carries its load-time number, and a monitor remembers its line.
//! Putting serde attributes on it would tie the runtime's types to the file format.
//!
//! The functions return a [`serde_json::Value`], whose objects keep their keys sorted: the
//! text is the same whatever order the views declare their fields in.

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::duration::format_ms;
use super::load::Registry;
use super::maintenance::MaintenanceWindow;
use super::schema::*;

/// Headers are kept as a list of pairs (file order, Go CPRA's list form included) and written
/// as the manifest's map form.
fn headers_map<S: Serializer>(h: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(h.iter().map(|(k, v)| (k, v)))
}

/// A duration in milliseconds, written as a Go duration string.
fn go_duration<S: Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ms(*ms))
}

fn go_duration_opt<S: Serializer>(ms: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => go_duration(ms, s),
        None => s.serialize_none(),
    }
}

/// A notifier's `config`: the fields of its kind (the kind itself is a sibling key, `notify` or
/// `type`, so the variant is not tagged here).
#[derive(Serialize)]
#[serde(untagged)]
enum NotifyConfig<'a> {
    Log {
        #[serde(skip_serializing_if = "Option::is_none")]
        file: Option<&'a str>,
    },
    Webhook {
        url: &'a str,
        method: &'a str,
        #[serde(serialize_with = "headers_map")]
        headers: &'a Headers,
    },
    Slack {
        hook: &'a str,
    },
    Pagerduty {
        routing_key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
    Email {
        server: &'a str,
        from: &'a str,
        to: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<&'a str>,
        allow_insecure: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        username: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        password: Option<&'a str>,
    },
    /// Discord and Teams.
    WebhookUrl {
        webhook_url: &'a str,
    },
    Telegram {
        bot_token: &'a str,
        chat_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
    Opsgenie {
        api_key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
    Mattermost {
        webhook_url: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        username: Option<&'a str>,
    },
    Alertmanager {
        url: &'a str,
    },
    Victorops {
        rest_endpoint_key: &'a str,
        routing_key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_type: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        entity_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
    Pushover {
        app_token: &'a str,
        user_key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
        priority: i8,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        expire: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sound: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
    Datadog {
        api_key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        app_key: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        site: Option<&'a str>,
        tags: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
    Twilio {
        account_sid: &'a str,
        auth_token: &'a str,
        from: &'a str,
        to: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
    },
}

impl<'a> From<&'a Notify> for NotifyConfig<'a> {
    fn from(n: &'a Notify) -> Self {
        match n {
            Notify::Log { file } => NotifyConfig::Log { file: file.as_deref() },
            Notify::Webhook { url, method, headers } => {
                NotifyConfig::Webhook { url, method, headers }
            }
            Notify::Slack { hook } => NotifyConfig::Slack { hook },
            Notify::Pagerduty { routing_key, url } => {
                NotifyConfig::Pagerduty { routing_key, url: url.as_deref() }
            }
            Notify::Email { server, from, to, subject, allow_insecure, username, password } => {
                NotifyConfig::Email {
                    server,
                    from,
                    to,
                    subject: subject.as_deref(),
                    allow_insecure: *allow_insecure,
                    username: username.as_deref(),
                    password: password.as_deref(),
                }
            }
            Notify::Discord { webhook_url } | Notify::Teams { webhook_url } => {
                NotifyConfig::WebhookUrl { webhook_url }
            }
            Notify::Telegram { bot_token, chat_id, url } => {
                NotifyConfig::Telegram { bot_token, chat_id, url: url.as_deref() }
            }
            Notify::Opsgenie { api_key, url } => {
                NotifyConfig::Opsgenie { api_key, url: url.as_deref() }
            }
            Notify::Mattermost { webhook_url, channel, username } => NotifyConfig::Mattermost {
                webhook_url,
                channel: channel.as_deref(),
                username: username.as_deref(),
            },
            Notify::Alertmanager { url } => NotifyConfig::Alertmanager { url },
            Notify::Victorops { rest_endpoint_key, routing_key, message_type, entity_id, url } => {
                NotifyConfig::Victorops {
                    rest_endpoint_key,
                    routing_key,
                    message_type: message_type.as_deref(),
                    entity_id: entity_id.as_deref(),
                    url: url.as_deref(),
                }
            }
            Notify::Pushover {
                app_token,
                user_key,
                title,
                priority,
                retry_s,
                expire_s,
                sound,
                url,
            } => NotifyConfig::Pushover {
                app_token,
                user_key,
                title: title.as_deref(),
                priority: *priority,
                retry: *retry_s,
                expire: *expire_s,
                sound: sound.as_deref(),
                url: url.as_deref(),
            },
            Notify::Datadog { api_key, app_key, site, tags, url } => NotifyConfig::Datadog {
                api_key,
                app_key: app_key.as_deref(),
                site: site.as_deref(),
                tags,
                url: url.as_deref(),
            },
            Notify::Twilio { account_sid, auth_token, from, to, url } => {
                NotifyConfig::Twilio { account_sid, auth_token, from, to, url: url.as_deref() }
            }
        }
    }
}

/// A pulse's `config`: the fields of its type (`type` is a sibling key in `pulse_check`).
#[derive(Serialize)]
#[serde(untagged)]
enum PulseConfig<'a> {
    Http {
        url: &'a str,
        method: &'a str,
        #[serde(serialize_with = "headers_map")]
        headers: &'a Headers,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a str>,
        expected_status: &'a [u16],
        insecure_skip_verify: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        body_contains: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        body_regex: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
        max_response_time: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ca_file: Option<&'a str>,
        #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "headers_map")]
        expected_headers: &'a [(String, String)],
    },
    /// Tcp and the fields udp and grpc share with it.
    HostPort {
        host: &'a str,
        port: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        service: Option<&'a str>,
        /// grpc over TLS: `tls: true` and its options.
        #[serde(flatten)]
        tls: Option<GrpcTlsOut<'a>>,
    },
    Icmp {
        host: &'a str,
        count: u32,
        ignore_privilege: bool,
    },
    Dns {
        host: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<&'a str>,
        /// Left out for A, the default.
        #[serde(skip_serializing_if = "Option::is_none")]
        record_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        expect: Option<&'a str>,
    },
    Tls {
        host: &'a str,
        port: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        server_name: Option<&'a str>,
        warn_days: u32,
        critical_days: u32,
        insecure_skip_verify: bool,
    },
    Docker {
        container: &'a str,
    },
}

#[derive(Serialize)]
struct GrpcTlsOut<'a> {
    tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<&'a str>,
    insecure_skip_verify: bool,
}

impl<'a> From<&'a Pulse> for PulseConfig<'a> {
    fn from(p: &'a Pulse) -> Self {
        match p {
            Pulse::Http(h) => PulseConfig::Http {
                url: &h.url,
                method: &h.method,
                headers: &h.headers,
                body: h.body(),
                expected_status: &h.expected_status,
                insecure_skip_verify: h.insecure_skip_verify,
                body_contains: h.body_contains(),
                body_regex: h.body_regex(),
                max_response_time: h.max_response_time_ms(),
                ca_file: h.ca_file(),
                expected_headers: h.expected_headers(),
            },
            Pulse::Tcp(t) => PulseConfig::HostPort {
                host: &t.host,
                port: t.port,
                payload: None,
                service: None,
                tls: None,
            },
            Pulse::Udp(u) => PulseConfig::HostPort {
                host: &u.host,
                port: u.port,
                payload: u.payload.as_deref(),
                service: None,
                tls: None,
            },
            Pulse::Grpc(g) => PulseConfig::HostPort {
                host: &g.host,
                port: g.port,
                payload: None,
                service: g.service.as_deref(),
                tls: g.tls.as_deref().map(|t| GrpcTlsOut {
                    tls: true,
                    server_name: t.server_name.as_deref(),
                    ca_file: t.ca_file.as_deref(),
                    insecure_skip_verify: t.insecure_skip_verify,
                }),
            },
            Pulse::Icmp(i) => PulseConfig::Icmp {
                host: &i.host,
                count: i.count,
                ignore_privilege: i.ignore_privilege,
            },
            Pulse::Dns(d) => PulseConfig::Dns {
                host: &d.host,
                server: d.server.as_deref(),
                record_type: (d.record_type != cpra_net::dns::DnsRecord::A)
                    .then(|| d.record_type.as_str()),
                expect: d.expect.as_deref(),
            },
            Pulse::Tls(t) => PulseConfig::Tls {
                host: &t.host,
                port: t.port,
                server_name: t.server_name.as_deref(),
                warn_days: t.warn_days,
                critical_days: t.critical_days,
                insecure_skip_verify: t.insecure_skip_verify,
            },
            Pulse::Docker(d) => PulseConfig::Docker { container: &d.container },
        }
    }
}

#[derive(Serialize)]
struct PulseCheckOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(serialize_with = "go_duration")]
    interval: u64,
    #[serde(serialize_with = "go_duration")]
    timeout: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    unhealthy_threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthy_threshold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_failures: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u16>,
    groups: &'a [String],
    config: ConfigOut<'a>,
}

/// A pulse's `config`: its type's fields and the `retries` every type may give.
#[derive(Serialize)]
struct ConfigOut<'a> {
    #[serde(flatten)]
    fields: PulseConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u16>,
}

/// One code: an inline notifier (`notify` and `config`) or a group (`notify_group`).
#[derive(Serialize)]
struct CodeOut<'a> {
    dispatch: bool,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
    cooldown: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<NotifyConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_group: Option<&'a str>,
}

impl<'a> From<&'a Code> for CodeOut<'a> {
    fn from(c: &'a Code) -> Self {
        let (notify, config, notify_group) = match &c.target {
            CodeTarget::Notify(n) => (Some(n.kind()), Some(NotifyConfig::from(&**n)), None),
            CodeTarget::Group { name, .. } => (None, None, Some(name.as_str())),
        };
        CodeOut {
            dispatch: c.dispatch,
            cooldown: c.cooldown_ms.map(u64::from),
            notify,
            config,
            notify_group,
        }
    }
}

/// Codes are kept indexed by colour and written as a map keyed by the colour's name.
fn codes_map<S: Serializer>(codes: &Codes, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(
        Colour::ALL
            .into_iter()
            .filter_map(|colour| Some((colour.as_str(), CodeOut::from(codes.get(colour)?)))),
    )
}

/// An intervention's `target`: the fields of its action (`action` is a sibling key).
#[derive(Serialize)]
#[serde(untagged)]
enum InterventionTarget<'a> {
    Docker {
        container: &'a str,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
        timeout: Option<u64>,
    },
    Webhook {
        url: &'a str,
        method: &'a str,
        #[serde(serialize_with = "headers_map")]
        headers: &'a Headers,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
        timeout: Option<u64>,
    },
    Systemd {
        unit: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
        timeout: Option<u64>,
    },
    Kubernetes {
        namespace: &'a str,
        kind: &'a str,
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        replicas: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kubeconfig_path: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
        timeout: Option<u64>,
    },
    Aws {
        region: &'a str,
        operation: &'a str,
        instance_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
        timeout: Option<u64>,
    },
}

impl<'a> From<&'a InterventionAction> for InterventionTarget<'a> {
    fn from(a: &'a InterventionAction) -> Self {
        match a {
            InterventionAction::Docker { container, timeout_ms } => {
                InterventionTarget::Docker { container, timeout: *timeout_ms }
            }
            InterventionAction::Webhook { url, method, headers, body, timeout_ms } => {
                InterventionTarget::Webhook {
                    url,
                    method,
                    headers,
                    body: body.as_deref(),
                    timeout: *timeout_ms,
                }
            }
            InterventionAction::Systemd { unit, mode, timeout_ms } => {
                InterventionTarget::Systemd { unit, mode: mode.as_deref(), timeout: *timeout_ms }
            }
            InterventionAction::Aws { region, operation, instance_id, endpoint, timeout_ms } => {
                InterventionTarget::Aws {
                    region,
                    operation,
                    instance_id,
                    endpoint: endpoint.as_deref(),
                    timeout: *timeout_ms,
                }
            }
            InterventionAction::Kubernetes {
                namespace,
                kind,
                name,
                replicas,
                kubeconfig_path,
                timeout_ms,
            } => InterventionTarget::Kubernetes {
                namespace,
                kind,
                name,
                replicas: *replicas,
                kubeconfig_path: kubeconfig_path.as_deref(),
                timeout: *timeout_ms,
            },
        }
    }
}

#[derive(Serialize)]
struct InterventionOut<'a> {
    action: &'static str,
    target: InterventionTarget<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_failures: Option<i64>,
}

/// A window: `cron`, `duration` and `timezone`, or a one-off's `start` and `end`.
#[derive(Serialize)]
#[serde(untagged)]
enum WindowOut<'a> {
    Cron {
        cron: &'a str,
        #[serde(serialize_with = "go_duration")]
        duration: u64,
        timezone: &'a str,
    },
    Once {
        start: String,
        end: String,
    },
}

impl<'a> From<&'a MaintenanceWindow> for WindowOut<'a> {
    fn from(w: &'a MaintenanceWindow) -> Self {
        use super::maintenance::format_rfc3339_ms;
        match w.once_bounds() {
            Some((start, end)) => {
                WindowOut::Once { start: format_rfc3339_ms(start), end: format_rfc3339_ms(end) }
            }
            None => WindowOut::Cron {
                cron: &w.cron,
                duration: w.duration_ms,
                timezone: w.timezone.name(),
            },
        }
    }
}

/// One monitor, in the manifest's words. Its `line` is where it was read, not part of it.
#[derive(Serialize)]
struct MonitorOut<'a> {
    id: &'a str,
    name: &'a str,
    enabled: bool,
    tags: &'a [String],
    pulse_check: PulseCheckOut<'a>,
    #[serde(serialize_with = "codes_map")]
    codes: &'a Codes,
    #[serde(skip_serializing_if = "Option::is_none")]
    intervention: Option<InterventionOut<'a>>,
    maintenance: Vec<WindowOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration_opt")]
    cooldown: Option<u64>,
}

impl<'a> From<&'a Monitor> for MonitorOut<'a> {
    fn from(m: &'a Monitor) -> Self {
        let p = &m.pulse_check;
        MonitorOut {
            id: &m.id,
            name: &m.name,
            enabled: m.enabled,
            tags: &m.tags,
            pulse_check: PulseCheckOut {
                kind: p.pulse.type_name(),
                interval: p.interval_ms,
                timeout: p.timeout_ms,
                unhealthy_threshold: p.unhealthy_threshold,
                healthy_threshold: p.healthy_threshold,
                max_failures: p.max_failures,
                retries: p.retries,
                groups: &p.groups,
                config: ConfigOut {
                    fields: PulseConfig::from(&p.pulse),
                    retries: p.config_retries,
                },
            },
            codes: &m.codes,
            intervention: m.intervention.as_deref().map(|i| InterventionOut {
                action: i.action.action_name(),
                target: InterventionTarget::from(&i.action),
                retries: i.retries,
                max_failures: i.max_failures,
            }),
            maintenance: m.maintenance.iter().map(WindowOut::from).collect(),
            cooldown: m.codes.cooldown_ms.map(u64::from),
        }
    }
}

#[derive(Serialize)]
struct EndpointOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    config: NotifyConfig<'a>,
}

/// The registry's endpoints, by name.
fn endpoints_map<S: Serializer>(r: &Registry, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(
        r.endpoints.iter().map(|(name, n)| {
            (name, EndpointOut { kind: n.kind(), config: NotifyConfig::from(&**n) })
        }),
    )
}

/// The registry's groups, by name, each as its endpoints' names (groups are kept as indexes
/// into the endpoints).
fn groups_map<S: Serializer>(r: &Registry, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(r.groups.iter().map(|(name, idx)| {
        let names: Vec<&str> =
            idx.iter().filter_map(|&i| r.endpoints.get(i)).map(|(n, _)| n.as_str()).collect();
        (name, names)
    }))
}

/// Monitors written one by one, without collecting their views first.
fn monitors_seq<S: Serializer>(monitors: &[Monitor], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(monitors.iter().map(MonitorOut::from))
}

#[derive(Serialize)]
struct ManifestOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(serialize_with = "endpoints_map")]
    endpoints: &'a Registry,
    #[serde(serialize_with = "groups_map")]
    notification_groups: &'a Registry,
    #[serde(serialize_with = "monitors_seq")]
    monitors: &'a [Monitor],
}

/// Into a `Value`. The views hold only strings, whole numbers, booleans and maps with string
/// keys, none of which `serde_json` can refuse.
fn value(v: impl Serialize) -> Value {
    serde_json::to_value(v).expect("an export view has only strings, numbers and string keys")
}

/// A notifier as its kind and its manifest `config`.
pub fn notify_json(n: &Notify) -> (String, Value) {
    (n.kind().to_string(), value(NotifyConfig::from(n)))
}

/// One monitor as manifest JSON.
pub fn monitor_json(m: &Monitor) -> Value {
    value(MonitorOut::from(m))
}

/// A whole manifest: the monitors plus the registry's endpoints and groups.
pub fn manifest_json(monitors: &[Monitor], registry: &Registry, version: Option<&str>) -> Value {
    value(ManifestOut { version, endpoints: registry, notification_groups: registry, monitors })
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::gen::{parse_mix, write_manifest, GenOptions};
    use super::super::{load_str, Format, LoadOptions, Monitor};
    use super::*;

    fn load(text: &str, format: Format) -> (Vec<Monitor>, super::super::LoadReport) {
        let (monitors, report) = load_str(text, Some(format), &LoadOptions::default());
        assert!(report.is_valid() && report.problems.warnings == 0, "{:#?}", report.problems.kept);
        (monitors, report)
    }

    /// A generated fleet of every generated pulse type, exported and loaded again, gives the
    /// same monitors (the every-field manifest and the example fleet are round-tripped in
    /// `manifest::tests`).
    #[test]
    fn export_then_load_gives_the_same_monitors() {
        let opts = GenOptions {
            monitors: 60,
            format: Format::Json,
            mix: parse_mix("http=10,tcp=10,icmp=10,dns=10,udp=10,tls=10").unwrap(),
            ..GenOptions::default()
        };
        let mut buf = Vec::new();
        write_manifest(&opts, &mut buf).unwrap();
        let (first, r1) = load(std::str::from_utf8(&buf).unwrap(), Format::Json);
        let text = manifest_json(&first, &r1.registry, r1.version.as_deref()).to_string();
        let (second, r2) = load(&text, Format::Json);
        let unline = |v: Vec<Monitor>| v.into_iter().map(|m| Monitor { line: 0, ..m }).collect();
        let (first, second): (Vec<_>, Vec<_>) = (unline(first), unline(second));
        assert_eq!(first, second);
        assert_eq!(r1.version, r2.version);
        // Endpoints come back sorted by name (JSON objects are written with sorted keys).
        let mut endpoints = r1.registry.endpoints.clone();
        endpoints.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(endpoints, r2.registry.endpoints);
    }

    /// The exact shape of one monitor: durations as Go strings, defaults written out, absent
    /// options left out, a group code as `notify_group` and an inline one as `notify` and
    /// `config`.
    #[test]
    fn a_monitor_is_written_in_the_manifest_words() {
        let yaml = r#"
monitors:
  - name: web
    pulse_check:
      type: tcp
      interval: 90s
      config: {host: 127.0.0.1, port: 8080}
    codes:
      red: {notify: log}
      green: {notify: webhook, dispatch: false, config: {url: "http://127.0.0.1:9/h", headers: {X-A: b}}}
    maintenance:
      - {cron: "0 3 * * *", duration: 1h30m}
"#;
        let (m, _) = load(yaml, Format::Yaml);
        assert_eq!(
            monitor_json(&m[0]),
            json!({
                "id": "web",
                "name": "web",
                "enabled": true,
                "tags": [],
                "pulse_check": {
                    "type": "tcp",
                    "interval": "1m30s",
                    "timeout": "10s",
                    "groups": [],
                    "config": {"host": "127.0.0.1", "port": 8080},
                },
                "codes": {
                    "red": {"dispatch": true, "notify": "log", "config": {}},
                    "green": {
                        "dispatch": false,
                        "notify": "webhook",
                        "config": {"url": "http://127.0.0.1:9/h", "method": "POST", "headers": {"X-A": "b"}},
                    },
                },
                "maintenance": [{"cron": "0 3 * * *", "duration": "1h30m", "timezone": "UTC"}],
            })
        );
    }
}
