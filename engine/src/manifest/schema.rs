//! The typed manifest: what a monitor is once loaded. Names are the manifest's own words, so a
//! user's YAML and the code read alike. Every field here is documented in
//! `docs/configuration.md` (a test checks that every accepted field name appears there).
//!
//! Shared blocks (`codes`, headers) are `Arc`s handed out by the loader's interner: identical
//! blocks are stored once. They are read-only after load.

use std::sync::Arc;

use super::maintenance::MaintenanceWindow;
use crate::limits::MAX_ID_CHARS;
use crate::state::{Policy, DEFAULT_HEALTHY, DEFAULT_UNHEALTHY};

/// Header list in file order (a map, or Go CPRA's list of "Name: value" strings).
pub type Headers = Vec<(String, String)>;

/// The kinds of pulse, in the order the docs list them.
pub const PULSE_TYPES: [&str; 8] = ["http", "tcp", "icmp", "dns", "udp", "grpc", "tls", "docker"];
pub const NOTIFY_KINDS: [&str; 15] = [
    "log",
    "webhook",
    "slack",
    "pagerduty",
    "email",
    "discord",
    "telegram",
    "opsgenie",
    "mattermost",
    "teams",
    "alertmanager",
    "victorops",
    "pushover",
    "datadog",
    "twilio",
];
pub const INTERVENTION_ACTIONS: [&str; 5] = ["docker", "webhook", "systemd", "kubernetes", "aws"];
pub const COLOURS: [&str; 5] = ["red", "yellow", "green", "cyan", "gray"];

#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    /// Given, or derived stably from `name` (see [`derive_id`]).
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// Interned, like the other lists a fleet repeats: one copy per distinct list.
    pub tags: Arc<Vec<String>>,
    pub pulse_check: PulseCheck,
    /// Codes by colour; interned (identical blocks shared).
    pub codes: Arc<Codes>,
    /// Boxed: most monitors have none, and inline it would be a quarter of every `Monitor`.
    pub intervention: Option<Box<Intervention>>,
    /// A boxed slice, not a `Vec`: the capacity word is the room `shown` takes.
    pub maintenance: Box<[MaintenanceWindow]>,
    /// Where the monitor starts in its file (for messages at run time).
    pub line: u32,
    /// How logs and alerts name the monitor when that differs from its values (secrets
    /// masked, see [`Shown::of`]); `None`, one pointer, for nearly every monitor. Read it
    /// through [`Monitor::shown_name`], [`Monitor::shown_target`] and
    /// [`Monitor::shown_intervention`].
    pub shown: Option<Box<Shown>>,
}

/// A monitor as logs, alerts and payloads show it: its name, target and intervention with
/// every value from the environment, URL credentials and query values masked
/// (`crate::redact`). Computed once at load, so an alert reads it and a check never does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// A derived id repeats the name; a given one may come from `${NAME}` too.
    pub id: String,
    pub name: String,
    pub target: String,
    pub intervention: Option<String>,
}

impl Shown {
    /// How a monitor with these parts is shown, `None` when that is as written. `expanded`:
    /// the values `${NAME}` stood for in its manifest entry.
    pub fn of(
        id: &str,
        name: &str,
        pulse: &Pulse,
        intervention: Option<&Intervention>,
        expanded: &[String],
    ) -> Option<Box<Shown>> {
        use crate::actions::intervention::describe;
        use crate::redact;
        use crate::shard::target::describe_target;
        use std::borrow::Cow;
        // The common case decided without building a text (this runs for every monitor of a
        // load): nothing from the environment, and no URL with a part that is masked.
        let maskable = |url: &str| url.bytes().any(|b| matches!(b, b'@' | b'?' | b'#'));
        let webhook_maskable = |i: &Intervention| match &i.action {
            InterventionAction::Webhook { url, .. } => maskable(url),
            _ => false,
        };
        if expanded.is_empty()
            && !matches!(pulse, Pulse::Http(h) if maskable(&h.url))
            && !intervention.is_some_and(webhook_maskable)
        {
            return None;
        }
        let target = describe_target(pulse);
        let shown_target = match pulse {
            Pulse::Http(_) => redact::url(&target, expanded),
            _ => redact::text(&target, expanded),
        };
        let iv = intervention.map(|i| describe(&i.action));
        let shown_iv = iv.as_deref().zip(intervention).map(|(d, i)| match &i.action {
            InterventionAction::Webhook { .. } => redact::url(d, expanded),
            _ => redact::text(d, expanded),
        });
        let shown_id = redact::text(id, expanded);
        let shown_name = redact::text(name, expanded);
        let changed = |c: &Cow<str>| matches!(c, Cow::Owned(_));
        if !changed(&shown_id)
            && !changed(&shown_name)
            && !changed(&shown_target)
            && !shown_iv.as_ref().is_some_and(changed)
        {
            return None;
        }
        Some(Box::new(Shown {
            id: shown_id.into_owned(),
            name: shown_name.into_owned(),
            target: shown_target.into_owned(),
            intervention: shown_iv.map(Cow::into_owned),
        }))
    }
}

// A million monitors are kept in memory, and the bytes of each are page faults at load and
// cache misses after: rarely used parts are boxed, repeated lists interned. This keeps it so.
const _: () = assert!(std::mem::size_of::<Monitor>() <= 256);

impl Monitor {
    /// The id as logs and alerts show it (see [`Shown`]); placement and duplicates use `id`.
    pub fn shown_id(&self) -> &str {
        self.shown.as_ref().map_or(&self.id, |s| &s.id)
    }

    /// The name as logs and alerts show it (see [`Shown`]).
    pub fn shown_name(&self) -> &str {
        self.shown.as_ref().map_or(&self.name, |s| &s.name)
    }

    /// What the check is aimed at, as logs and alerts show it: a URL or `host:port`.
    pub fn shown_target(&self) -> std::borrow::Cow<'_, str> {
        match &self.shown {
            Some(s) => std::borrow::Cow::Borrowed(&s.target),
            None => crate::shard::target::describe_target(&self.pulse_check.pulse).into(),
        }
    }

    /// A few words on the intervention (`docker restart web-1`), as alerts show them.
    pub fn shown_intervention(&self) -> Option<std::borrow::Cow<'_, str>> {
        let intervention = self.intervention.as_ref()?;
        Some(match self.shown.as_ref().and_then(|s| s.intervention.as_deref()) {
            Some(shown) => shown.into(),
            None => crate::actions::intervention::describe(&intervention.action).into(),
        })
    }

    // The thresholds' defaults and bounds have one source, the state machine's `Policy`.

    /// `pulse_check.unhealthy_threshold`, else legacy `max_failures`, else 1.
    pub fn unhealthy_threshold(&self) -> u16 {
        let pulse = &self.pulse_check;
        Policy::threshold(pulse.unhealthy_threshold, pulse.max_failures, DEFAULT_UNHEALTHY)
    }

    /// `pulse_check.healthy_threshold`, else 2.
    pub fn healthy_threshold(&self) -> u16 {
        Policy::threshold(self.pulse_check.healthy_threshold, None, DEFAULT_HEALTHY)
    }

    /// `intervention.max_failures`, else 1, per incident.
    pub fn recovery_max_attempts(&self) -> u8 {
        Policy::attempts(self.intervention.as_ref().and_then(|i| i.max_failures))
    }

    pub fn interval_ms(&self) -> u64 {
        self.pulse_check.interval_ms
    }

    /// The cooldown of `colour`: its code's `cooldown`, else the monitor's `cooldown`, else
    /// `process_default_ms` (`cpra run --cooldown`, itself 5 minutes by default).
    pub fn cooldown_ms_of(&self, colour: Colour, process_default_ms: u32) -> u32 {
        self.codes
            .get(colour)
            .and_then(|c| c.cooldown_ms)
            .or(self.codes.cooldown_ms)
            .unwrap_or(process_default_ms)
    }

    pub fn timeout_ms(&self) -> u64 {
        self.pulse_check.timeout_ms
    }

    /// The stable 64-bit hash of the id: the runtime routes a monitor to shard
    /// `id_hash % shards` and spreads first checks by `id_hash % interval`. See [`id_hash`].
    pub fn id_hash(&self) -> u64 {
        id_hash(&self.id)
    }

    /// The maintenance window that contains `after_unix_ms`, else the next one to start, as
    /// `(start_ms, end_ms)` (end exclusive). `None` when the monitor has no windows.
    pub fn next_maintenance_window(&self, after_unix_ms: i64) -> Option<(i64, i64)> {
        self.maintenance
            .iter()
            .filter_map(|w| w.next_window(after_unix_ms))
            .min_by_key(|&(start, _)| start)
    }
}

/// FNV-1a 64 over the id's UTF-8 bytes, then the SplitMix64 finaliser (so the low bits used
/// by `% shards` are well mixed). Written out here, not taken from a crate, because it must
/// never change between versions: changing it would move monitors between shards and nodes.
pub fn id_hash(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `[A-Za-z0-9][A-Za-z0-9._:-]{0,127}`.
pub fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ID_CHARS
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// The id of a monitor without one: its name if the name is a valid id; otherwise the name
/// with every other character replaced by `-`, cut to fit, plus `-` and 16 hex digits of the
/// name's hash, so two names that differ only in replaced characters get different ids.
pub fn derive_id(name: &str) -> String {
    if is_valid_id(name) {
        return name.to_string();
    }
    let mut slug: String =
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(MAX_ID_CHARS - 17)
            .collect();
    if !slug.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric()) {
        slug.insert(0, 'm');
        slug.truncate(MAX_ID_CHARS - 17);
    }
    let id = format!("{slug}-{:016x}", id_hash(name));
    debug_assert!(is_valid_id(&id), "{id}");
    id
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PulseCheck {
    pub pulse: Pulse,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub unhealthy_threshold: Option<i64>,
    pub healthy_threshold: Option<i64>,
    /// Legacy (Go CPRA): the unhealthy threshold when `unhealthy_threshold` is absent.
    pub max_failures: Option<i64>,
    /// `pulse_check.retries`, as written (saturating at `u16::MAX`: the engine makes at most
    /// `limits::MAX_RETRIES`, and two `u16`s keep `Monitor` within its size bound).
    pub retries: Option<u16>,
    /// `pulse_check.config.retries` (any pulse type), as written, saturating the same way.
    pub config_retries: Option<u16>,
    /// Interned.
    pub groups: Arc<Vec<String>>,
}

impl PulseCheck {
    /// Retries inside one check, the Go CPRA's rule (`applyDefaultRetries`): `config.retries`
    /// when above 0 (0 there means unset), else `pulse_check.retries`, else 0 (one attempt).
    /// The probes make at most `limits::MAX_RETRIES` of them.
    pub fn retries_per_check(&self) -> u32 {
        let retries = match self.config_retries {
            Some(r) if r > 0 => r,
            _ => self.retries.unwrap_or(0),
        };
        u32::from(retries)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pulse {
    Http(HttpPulse),
    Tcp(TcpPulse),
    Icmp(IcmpPulse),
    Dns(DnsPulse),
    Udp(UdpPulse),
    Grpc(GrpcPulse),
    Tls(TlsPulse),
    Docker(DockerPulse),
}

impl Pulse {
    pub fn type_name(&self) -> &'static str {
        match self {
            Pulse::Http(_) => "http",
            Pulse::Tcp(_) => "tcp",
            Pulse::Icmp(_) => "icmp",
            Pulse::Dns(_) => "dns",
            Pulse::Udp(_) => "udp",
            Pulse::Grpc(_) => "grpc",
            Pulse::Tls(_) => "tls",
            Pulse::Docker(_) => "docker",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpPulse {
    pub url: String,
    /// Default GET. Interned (a fleet has a handful of methods).
    pub method: Arc<String>,
    pub headers: Arc<Headers>,
    /// Empty: any 2xx. Interned.
    pub expected_status: Arc<Vec<u16>>,
    pub insecure_skip_verify: bool,
    /// The fields most http checks leave out, boxed so that they cost one pointer when absent:
    /// `None` when all of them are (see [`HttpExtra::boxed`]). Read them with the accessors.
    pub extra: Option<Box<HttpExtra>>,
}

/// `HttpPulse`'s rarely given fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpExtra {
    pub body: Option<String>,
    pub body_contains: Option<String>,
    /// Checked to compile at load.
    pub body_regex: Option<String>,
    pub max_response_time_ms: Option<u64>,
    pub ca_file: Option<String>,
    /// `expected_headers`, in file order: name, and exact value or `/regex/` (checked at
    /// load). Empty when absent.
    pub expected_headers: Headers,
}

impl HttpExtra {
    /// `None` when every field is absent, so one monitor's `extra` equals another's exactly
    /// when their fields do.
    pub fn boxed(self) -> Option<Box<HttpExtra>> {
        (self != HttpExtra::default()).then(|| Box::new(self))
    }
}

impl HttpPulse {
    fn extra(&self) -> Option<&HttpExtra> {
        self.extra.as_deref()
    }

    pub fn body(&self) -> Option<&str> {
        self.extra()?.body.as_deref()
    }

    pub fn body_contains(&self) -> Option<&str> {
        self.extra()?.body_contains.as_deref()
    }

    pub fn body_regex(&self) -> Option<&str> {
        self.extra()?.body_regex.as_deref()
    }

    pub fn max_response_time_ms(&self) -> Option<u64> {
        self.extra()?.max_response_time_ms
    }

    pub fn ca_file(&self) -> Option<&str> {
        self.extra()?.ca_file.as_deref()
    }

    pub fn expected_headers(&self) -> &[(String, String)] {
        self.extra().map_or(&[], |e| &e.expected_headers)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpPulse {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IcmpPulse {
    pub host: String,
    /// Default 1.
    pub count: u32,
    pub ignore_privilege: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsPulse {
    pub host: String,
    pub server: Option<String>,
    /// Default A.
    pub record_type: cpra_net::dns::DnsRecord,
    /// An answer record of `record_type` must have this value (checked at load). Boxed `str`:
    /// two words, so a dns pulse stays no larger than an http one.
    pub expect: Option<Box<str>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UdpPulse {
    pub host: String,
    pub port: u16,
    pub payload: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GrpcPulse {
    pub host: String,
    pub port: u16,
    pub service: Option<String>,
    /// `tls: true` and its options; `None` for h2c. Boxed: most grpc monitors have none.
    pub tls: Option<Box<GrpcTls>>,
}

/// How a grpc pulse with `tls: true` verifies its server: the https options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GrpcTls {
    /// SNI and the name verified; default `host`.
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub insecure_skip_verify: bool,
}

/// Default `warn_days`: a month's notice is the usual renewal window.
pub const DEFAULT_TLS_WARN_DAYS: u32 = 30;
/// Default `critical_days`: a week left is an outage in the making.
pub const DEFAULT_TLS_CRITICAL_DAYS: u32 = 7;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsPulse {
    pub host: String,
    /// Default 443.
    pub port: u16,
    pub server_name: Option<String>,
    pub warn_days: u32,
    pub critical_days: u32,
    pub insecure_skip_verify: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DockerPulse {
    pub container: String,
}

/// The alert colour is the engine-wide one, so a code's colour and a queued alert's colour are
/// the same type and index the same per-colour tables.
pub use crate::colour::Colour;

/// A monitor's codes: at most one per colour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Codes {
    /// Indexed by [`Colour::index`].
    pub by_colour: [Option<Code>; Colour::COUNT],
    /// The monitor's `cooldown`, the default of its codes: kept with them (interned) rather
    /// than on `Monitor`, whose every byte counts a million times.
    pub cooldown_ms: Option<u32>,
}

impl Codes {
    pub fn get(&self, colour: Colour) -> Option<&Code> {
        self.by_colour[colour.index()].as_ref()
    }

    /// A colour is sent only if the monitor has a code for it with `dispatch` not false.
    pub fn dispatches(&self, colour: Colour) -> bool {
        self.get(colour).is_some_and(|c| c.dispatch)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    /// Default true.
    pub dispatch: bool,
    /// `cooldown`: this colour's, over the monitor's and the process's (see
    /// [`Monitor::cooldown_ms_of`]). At most `state::MAX_COOLDOWN_MS`, checked at load.
    pub cooldown_ms: Option<u32>,
    pub target: CodeTarget,
}

/// Where a code's alerts go. Two group targets are equal when they name the same group (the
/// id is only that name's number within one load).
#[derive(Clone, Debug)]
pub enum CodeTarget {
    /// `notify` + `config` written in the code itself.
    Notify(Arc<Notify>),
    /// `notify_group`: the endpoints of a group in `notification_groups`, resolved after the
    /// whole file is read (the group may come after the monitors). Look it up with
    /// [`super::Registry::group_endpoints`].
    Group { name: String, id: GroupId },
}

impl PartialEq for CodeTarget {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CodeTarget::Notify(a), CodeTarget::Notify(b)) => a == b,
            (CodeTarget::Group { name: a, .. }, CodeTarget::Group { name: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for CodeTarget {}

impl std::hash::Hash for CodeTarget {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            CodeTarget::Notify(n) => {
                0u8.hash(state);
                n.hash(state);
            }
            CodeTarget::Group { name, .. } => {
                1u8.hash(state);
                name.hash(state);
            }
        }
    }
}

/// Index of a notification group in [`super::Registry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupId(pub u32);

/// A notification destination: a kind and its config.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Notify {
    Log {
        file: Option<String>,
    },
    Webhook {
        url: String,
        method: String,
        headers: Arc<Headers>,
    },
    Slack {
        hook: String,
    },
    Pagerduty {
        routing_key: String,
        url: Option<String>,
    },
    Email {
        server: String,
        from: String,
        to: Vec<String>,
        subject: Option<String>,
        allow_insecure: bool,
        username: Option<String>,
        password: Option<String>,
    },
    Discord {
        webhook_url: String,
    },
    Telegram {
        bot_token: String,
        chat_id: String,
        url: Option<String>,
    },
    Opsgenie {
        api_key: String,
        url: Option<String>,
    },
    Mattermost {
        webhook_url: String,
        channel: Option<String>,
        username: Option<String>,
    },
    Teams {
        webhook_url: String,
    },
    Alertmanager {
        url: String,
    },
    /// Splunk On-Call's generic REST endpoint.
    Victorops {
        rest_endpoint_key: String,
        routing_key: String,
        /// Overrides the colour's `message_type` (CRITICAL, WARNING, ...).
        message_type: Option<String>,
        /// Overrides `cpra:<incident id>`.
        entity_id: Option<String>,
        url: Option<String>,
    },
    Pushover {
        app_token: String,
        user_key: String,
        title: Option<String>,
        /// -2..=2; 2 (emergency) repeats every `retry_s` for `expire_s`.
        priority: i8,
        retry_s: Option<u32>,
        expire_s: Option<u32>,
        sound: Option<String>,
        url: Option<String>,
    },
    Datadog {
        api_key: String,
        app_key: Option<String>,
        /// `datadoghq.com` unless given (`datadoghq.eu`, `us3.datadoghq.com`, ...).
        site: Option<String>,
        tags: Vec<String>,
        url: Option<String>,
    },
    /// SMS through Twilio's Messages API, one message per recipient.
    Twilio {
        account_sid: String,
        auth_token: String,
        from: String,
        to: Vec<String>,
        url: Option<String>,
    },
}

impl Notify {
    pub fn kind(&self) -> &'static str {
        match self {
            Notify::Log { .. } => "log",
            Notify::Webhook { .. } => "webhook",
            Notify::Slack { .. } => "slack",
            Notify::Pagerduty { .. } => "pagerduty",
            Notify::Email { .. } => "email",
            Notify::Discord { .. } => "discord",
            Notify::Telegram { .. } => "telegram",
            Notify::Opsgenie { .. } => "opsgenie",
            Notify::Mattermost { .. } => "mattermost",
            Notify::Teams { .. } => "teams",
            Notify::Alertmanager { .. } => "alertmanager",
            Notify::Victorops { .. } => "victorops",
            Notify::Pushover { .. } => "pushover",
            Notify::Datadog { .. } => "datadog",
            Notify::Twilio { .. } => "twilio",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Intervention {
    pub action: InterventionAction,
    pub retries: Option<u32>,
    /// Attempts per incident (`recovery_max_attempts`); default 1.
    pub max_failures: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InterventionAction {
    Docker {
        container: String,
        timeout_ms: Option<u64>,
    },
    Webhook {
        url: String,
        method: String,
        headers: Arc<Headers>,
        body: Option<String>,
        timeout_ms: Option<u64>,
    },
    Systemd {
        unit: String,
        mode: Option<String>,
        timeout_ms: Option<u64>,
    },
    Kubernetes {
        namespace: String,
        kind: String,
        name: String,
        replicas: Option<u32>,
        kubeconfig_path: Option<String>,
        timeout_ms: Option<u64>,
    },
    /// EC2 `RebootInstances` through the EC2 Query API, signed with SigV4.
    Aws {
        region: String,
        /// `reboot-instance`, the one operation.
        operation: String,
        instance_id: String,
        /// The EC2 endpoint (tests, private clouds); `https://ec2.<region>.amazonaws.com`.
        endpoint: Option<String>,
        timeout_ms: Option<u64>,
    },
}

impl InterventionAction {
    pub fn action_name(&self) -> &'static str {
        match self {
            InterventionAction::Docker { .. } => "docker",
            InterventionAction::Webhook { .. } => "webhook",
            InterventionAction::Systemd { .. } => "systemd",
            InterventionAction::Kubernetes { .. } => "kubernetes",
            InterventionAction::Aws { .. } => "aws",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("web-1.prod:8080_x"));
        assert!(!is_valid_id("-x"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id(&"a".repeat(129)));
        assert_eq!(derive_id("api-gateway"), "api-gateway");
        let a = derive_id("API gateway (EU)");
        let b = derive_id("API gateway [EU]");
        assert!(is_valid_id(&a) && is_valid_id(&b));
        assert_ne!(a, b);
        assert_eq!(a, derive_id("API gateway (EU)"));
        assert!(is_valid_id(&derive_id("  ")));
        assert!(is_valid_id(&derive_id(&"é".repeat(300))));
    }

    #[test]
    fn id_hash_is_stable() {
        // Pinned values: if these change, monitors move between shards. Do not update them
        // without a migration note.
        assert_eq!(id_hash(""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(id_hash("web-1"), 0xf576_b188_329f_7edd);
        assert_eq!(id_hash("monitor-000001"), 0x9c22_1849_5b00_1a4c);
        assert_ne!(id_hash("a"), id_hash("b"));
    }

    #[test]
    fn colours_case_insensitive() {
        assert_eq!(Colour::parse("RED"), Some(Colour::Red));
        assert_eq!(Colour::parse("Grey"), Some(Colour::Gray));
        assert_eq!(Colour::parse("purple"), None);
    }
}
