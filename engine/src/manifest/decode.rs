//! From one monitor's [`Node`] tree to a typed [`Monitor`], reporting every problem found
//! (not just the first) with its position, field path and a hint.
//!
//! The field lists (`*_FIELDS`) are the single source of what the loader accepts: unknown-field
//! warnings, "did you mean" and the docs test all read them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::check::{self, Problem};
use super::diagnostic::{choices_hint, did_you_mean, Class, Diagnostic, Level, Problems};
use super::duration::parse_go_duration;
use super::env::{expand, Env, ExpandError};
use super::event::Pos;
use super::intern::Interner;
use super::maintenance::MaintenanceWindow;
use super::node::{Entries, Entry, Node, NodeKind, Tree};
use super::schema::*;
use crate::limits::{MAX_INTERVENTION_RETRIES, MAX_LIST_ITEMS, MAX_MONITOR_HEADERS};

pub const TOP_FIELDS: &[&str] = &["version", "monitors", "endpoints", "notification_groups"];
pub const MONITOR_FIELDS: &[&str] = &[
    "id",
    "name",
    "enabled",
    "tags",
    "pulse_check",
    "codes",
    "intervention",
    "maintenance",
    "cooldown",
];
pub const PULSE_CHECK_FIELDS: &[&str] = &[
    "type",
    "interval",
    "timeout",
    "unhealthy_threshold",
    "healthy_threshold",
    "max_failures",
    "retries",
    "groups",
    "config",
];
pub const HTTP_FIELDS: &[&str] = &[
    "url",
    "method",
    "headers",
    "body",
    "expected_status",
    "insecure_skip_verify",
    "retries",
    "body_contains",
    "body_regex",
    "max_response_time",
    "ca_file",
    "expected_headers",
];
pub const TCP_FIELDS: &[&str] = &["host", "port", "retries"];
pub const ICMP_FIELDS: &[&str] = &["host", "count", "ignore_privilege", "retries"];
pub const DNS_FIELDS: &[&str] = &["host", "server", "retries", "record_type", "expect"];
pub const UDP_FIELDS: &[&str] = &["host", "port", "payload", "retries"];
pub const GRPC_FIELDS: &[&str] = &[
    "host",
    "port",
    "service",
    "retries",
    "tls",
    "server_name",
    "ca_file",
    "insecure_skip_verify",
];
pub const TLS_FIELDS: &[&str] = &[
    "host",
    "port",
    "server_name",
    "warn_days",
    "critical_days",
    "insecure_skip_verify",
    "retries",
];
pub const DOCKER_PULSE_FIELDS: &[&str] = &["container", "retries"];
pub const INTERVENTION_FIELDS: &[&str] = &["action", "target", "retries", "max_failures"];
pub const DOCKER_TARGET_FIELDS: &[&str] = &["container", "timeout"];
pub const WEBHOOK_TARGET_FIELDS: &[&str] = &["url", "method", "headers", "body", "timeout"];
pub const SYSTEMD_TARGET_FIELDS: &[&str] = &["unit", "mode", "timeout"];
pub const KUBERNETES_TARGET_FIELDS: &[&str] =
    &["namespace", "kind", "name", "replicas", "kubeconfig_path", "timeout"];
pub const AWS_TARGET_FIELDS: &[&str] =
    &["type", "region", "operation", "instance_id", "endpoint", "timeout"];
pub const CODE_FIELDS: &[&str] = &["dispatch", "notify", "config", "notify_group", "cooldown"];
pub const ENDPOINT_FIELDS: &[&str] = &["type", "config"];
pub const MAINTENANCE_FIELDS: &[&str] = &["cron", "duration", "timezone", "start", "end"];
pub const LOG_FIELDS: &[&str] = &["file"];
pub const WEBHOOK_NOTIFY_FIELDS: &[&str] = &["url", "method", "headers"];
pub const SLACK_FIELDS: &[&str] = &["hook"];
pub const PAGERDUTY_FIELDS: &[&str] = &["routing_key", "url"];
pub const EMAIL_FIELDS: &[&str] =
    &["server", "from", "to", "subject", "allow_insecure", "username", "password"];
pub const DISCORD_FIELDS: &[&str] = &["webhook_url"];
pub const TELEGRAM_FIELDS: &[&str] = &["bot_token", "chat_id", "url"];
pub const OPSGENIE_FIELDS: &[&str] = &["api_key", "url"];
pub const MATTERMOST_FIELDS: &[&str] = &["webhook_url", "channel", "username"];
pub const TEAMS_FIELDS: &[&str] = &["webhook_url"];
pub const ALERTMANAGER_FIELDS: &[&str] = &["url"];
pub const VICTOROPS_FIELDS: &[&str] =
    &["rest_endpoint_key", "routing_key", "message_type", "entity_id", "url"];
pub const PUSHOVER_FIELDS: &[&str] =
    &["app_token", "user_key", "title", "priority", "retry", "expire", "sound", "url"];
pub const DATADOG_FIELDS: &[&str] = &["api_key", "app_key", "site", "tags", "url"];
pub const TWILIO_FIELDS: &[&str] = &["account_sid", "auth_token", "from", "to", "url"];

/// The `record_type`s of a dns pulse, as the docs list them.
pub const DNS_RECORD_TYPES: [&str; 7] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV"];

/// Fields the Go CPRA reads that CPRA does not use: in the field list they belong to, a
/// warning that says why rather than an unknown-field error, so Go manifests load unchanged.
pub const GO_IGNORED_FIELDS: &[(&[&str], &str, &str)] = &[
    (DOCKER_TARGET_FIELDS, "type", GO_TARGET_TYPE),
    (WEBHOOK_TARGET_FIELDS, "type", GO_TARGET_TYPE),
    (SYSTEMD_TARGET_FIELDS, "type", GO_TARGET_TYPE),
    (KUBERNETES_TARGET_FIELDS, "type", GO_TARGET_TYPE),
];

/// Why a target's `type` is ignored. (An aws target lists `type` among its own fields, as
/// the Go CPRA documents it there: it is read without a warning.)
const GO_TARGET_TYPE: &str =
    "the Go CPRA reads it but never uses it; the action is `intervention.action`";

/// Why the Go CPRA's `field` is ignored where `known` are the fields, if it is one of those.
pub fn go_ignored(known: &[&str], field: &str) -> Option<&'static str> {
    GO_IGNORED_FIELDS.iter().find(|(k, f, _)| *k == known && *f == field).map(|(_, _, why)| *why)
}

/// The level of an unknown field (an error unless `lenient`) and its hint: "did you mean"
/// and the fields known there.
pub fn unknown_field_hint(key: &str, known: &[&str], lenient: bool) -> (Level, String) {
    let mut hint = format!("known fields here: {}", known.join(", "));
    if let Some(m) = did_you_mean(key, known) {
        hint = format!("did you mean '{m}'? {hint}");
    }
    if lenient {
        hint.push_str(" (a warning with --lenient: the field is not used)");
        (Level::Warning, hint)
    } else {
        hint.push_str(" (--lenient makes unknown fields warnings)");
        (Level::Error, hint)
    }
}

/// Every field list, for the docs test.
pub const ALL_FIELD_LISTS: &[&[&str]] = &[
    TOP_FIELDS,
    MONITOR_FIELDS,
    PULSE_CHECK_FIELDS,
    HTTP_FIELDS,
    TCP_FIELDS,
    ICMP_FIELDS,
    DNS_FIELDS,
    UDP_FIELDS,
    GRPC_FIELDS,
    TLS_FIELDS,
    DOCKER_PULSE_FIELDS,
    INTERVENTION_FIELDS,
    DOCKER_TARGET_FIELDS,
    WEBHOOK_TARGET_FIELDS,
    SYSTEMD_TARGET_FIELDS,
    KUBERNETES_TARGET_FIELDS,
    AWS_TARGET_FIELDS,
    CODE_FIELDS,
    ENDPOINT_FIELDS,
    MAINTENANCE_FIELDS,
    LOG_FIELDS,
    WEBHOOK_NOTIFY_FIELDS,
    SLACK_FIELDS,
    PAGERDUTY_FIELDS,
    EMAIL_FIELDS,
    DISCORD_FIELDS,
    TELEGRAM_FIELDS,
    OPSGENIE_FIELDS,
    MATTERMOST_FIELDS,
    TEAMS_FIELDS,
    ALERTMANAGER_FIELDS,
    VICTOROPS_FIELDS,
    PUSHOVER_FIELDS,
    DATADOG_FIELDS,
    TWILIO_FIELDS,
];

/// Default interval when `pulse_check.interval` is absent (Go CPRA's default).
pub const DEFAULT_INTERVAL_MS: u64 = 30_000;
/// Default timeout when absent: 10 s, or the interval if shorter.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Notification groups named by monitors, numbered as first seen, with where each was first
/// referenced (to report a group that turns out not to exist).
#[derive(Default)]
pub struct GroupNames {
    pub ids: HashMap<String, u32>,
    pub names: Vec<String>,
    pub first_ref: Vec<RefSite>,
}

#[derive(Clone, Debug)]
pub struct RefSite {
    pub pos: Pos,
    pub monitor: Option<String>,
    pub path: String,
}

impl GroupNames {
    pub fn reference(&mut self, name: &str, site: impl FnOnce() -> RefSite) -> GroupId {
        if let Some(&id) = self.ids.get(name) {
            return GroupId(id);
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(name.to_string(), id);
        self.names.push(name.to_string());
        self.first_ref.push(site());
        GroupId(id)
    }
}

#[derive(Default)]
pub struct Interners {
    pub codes: Interner<Codes>,
    pub headers: Interner<Headers>,
    pub notify: Interner<Notify>,
    /// `tags` and `groups` lists.
    pub lists: Interner<Vec<String>>,
    pub statuses: Interner<Vec<u16>>,
    pub methods: Interner<String>,
    /// `codes` blocks already decoded without a problem, by their text (see `Node::encode`):
    /// a fleet repeats a few blocks a million times, and decoding one again would only build
    /// the same value to find it in `codes`. At most `MAX_INTERNED` blocks; past it, blocks
    /// are decoded every time.
    codes_by_block: HashMap<Vec<u8>, Arc<Codes>, super::intern::FxBuildHasher>,
    block_key: Vec<u8>,
    block_stack: Vec<(u32, u32)>,
    /// `intervention` blocks already decoded (and checked) without a problem, by their text,
    /// as `codes_by_block`: checking one builds the request or command the actions would.
    interventions_by_block: HashMap<Vec<u8>, Intervention, super::intern::FxBuildHasher>,
    /// `ca_file` paths already read, with the verdict: a fleet names one or two files a
    /// million times, and reading one builds a TLS config. At most `MAX_INTERNED` paths.
    ca_files: HashMap<String, Result<(), String>>,
    /// Interned notifiers already checked by the actions (`actions::check_endpoint`, which
    /// renders a sample alert), by address, with the verdict: checked once per distinct one.
    endpoint_verdicts: HashMap<usize, Option<String>, super::intern::FxBuildHasher>,
}

impl Interners {
    /// Whether the runtime can build a TLS config from the `ca_file` at `path` (it exists, can
    /// be read and holds certificates), checked once per path: `Err` says what is wrong.
    pub fn ca_file(&mut self, path: &str) -> Result<(), String> {
        if let Some(verdict) = self.ca_files.get(path) {
            return verdict.clone();
        }
        let opts =
            cpra_net::tls::TlsOptions { ca_file: Some(path.into()), insecure_skip_verify: false };
        let verdict = cpra_net::tls::client_config(&opts).map(|_| ()).map_err(|e| e.0);
        if self.ca_files.len() < crate::limits::MAX_INTERNED {
            self.ca_files.insert(path.to_owned(), verdict.clone());
        }
        verdict
    }

    /// `actions::check_endpoint` of a notifier just interned, once per distinct one. Only
    /// one the interner holds (for the whole load, so its address names it alone) is
    /// remembered: past `MAX_INTERNED` the interner keeps none, and a freed address could be
    /// reused by another notifier.
    fn endpoint_verdict(&mut self, notify: &Arc<Notify>) -> Option<String> {
        let key = Arc::as_ptr(notify) as usize;
        if let Some(v) = self.endpoint_verdicts.get(&key) {
            return v.clone();
        }
        let verdict = crate::actions::check_endpoint(notify).err().map(|e| redact(e, notify));
        let interned = Arc::strong_count(notify) > 1;
        if interned && self.endpoint_verdicts.len() < crate::limits::MAX_INTERNED {
            self.endpoint_verdicts.insert(key, verdict.clone());
        }
        verdict
    }
}

/// An HTTP request as a manifest gives it (see `Ctx::request`).
struct Request {
    url: String,
    method: String,
    headers: Arc<Headers>,
    body: Option<String>,
}

/// What decoding needs: where to report, and the shared interners.
pub struct Ctx<'a> {
    pub file: &'a str,
    pub monitor: Option<String>,
    pub problems: &'a mut Problems,
    /// Unknown fields are warnings (`--lenient`), not errors.
    pub lenient: bool,
    pub env: &'a dyn Env,
    pub had_error: bool,
    pub interners: &'a mut Interners,
    pub groups: &'a mut GroupNames,
    /// The values `${NAME}` stood for in what this context decoded (one monitor, or the
    /// endpoints), each once: masked in its messages and in how the monitor is shown
    /// (`crate::redact`).
    pub expanded: Vec<String>,
}

/// Where a value sits, e.g. `monitors[12].pulse_check.type`: a chain of borrowed segments on
/// the stack, rendered to a string only when a problem is reported (building the string for
/// every mapping of every monitor cost about a tenth of the load time).
#[derive(Clone, Copy, Debug)]
pub enum FieldPath<'a> {
    /// A top-level field (`""` for the root).
    Top(&'a str),
    /// `monitors[i]`.
    Monitor(usize),
    Key(&'a FieldPath<'a>, &'a str),
    Index(&'a FieldPath<'a>, usize),
}

impl FieldPath<'_> {
    pub fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = *self;
        loop {
            match at {
                FieldPath::Top(t) => {
                    segments.push(t.to_string());
                    break;
                }
                FieldPath::Monitor(i) => {
                    segments.push(format!("monitors[{i}]"));
                    break;
                }
                FieldPath::Key(parent, k) => {
                    segments.push(format!(".{k}"));
                    at = *parent;
                }
                FieldPath::Index(parent, i) => {
                    segments.push(format!("[{i}]"));
                    at = *parent;
                }
            }
        }
        let mut out: String = segments.into_iter().rev().collect();
        if let Some(stripped) = out.strip_prefix('.') {
            out = stripped.to_string();
        }
        out
    }
}

/// A mapping being decoded, with its path for messages.
pub struct Fields<'n> {
    pub entries: Entries<'n>,
    pub pos: Pos,
    pub path: FieldPath<'n>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<Entry<'n>> {
        self.entries.get(key)
    }

    fn sub(&self, key: &str) -> String {
        FieldPath::Key(&self.path, key).render()
    }
}

impl Ctx<'_> {
    pub fn report(
        &mut self,
        level: Level,
        class: Class,
        pos: Pos,
        path: String,
        message: String,
        hint: String,
    ) {
        if level == Level::Error {
            self.had_error = true;
        }
        // A message may quote a value (`'...' is not a duration`): never one from the
        // environment, which is where secrets are kept.
        let (message, hint) = if self.expanded.is_empty() {
            (message, hint)
        } else {
            let mask = |t: String| match crate::redact::text(&t, &self.expanded) {
                Cow::Borrowed(_) => t,
                Cow::Owned(masked) => masked,
            };
            (mask(message), mask(hint))
        };
        self.problems.push(Diagnostic {
            level,
            class,
            file: self.file.to_string(),
            pos,
            monitor: self.monitor.clone(),
            path,
            message,
            hint,
        });
    }

    pub fn error(
        &mut self,
        class: Class,
        pos: Pos,
        path: String,
        message: String,
        hint: impl Into<String>,
    ) {
        self.report(Level::Error, class, pos, path, message, hint.into());
    }

    /// Reports `p` about the value of `key` in `f` (at `f` itself when absent).
    fn refuse(&mut self, f: &Fields, key: &str, p: Problem) {
        let pos = f.get(key).map(|e| e.value.pos).unwrap_or(f.pos);
        self.error(Class::BadValue, pos, f.sub(key), format!("{key}: {}", p.message), p.hint);
    }

    /// Checks the URL in `key` of `f` (when given: a missing one is reported by `req_str`).
    fn check_url(&mut self, f: &Fields, key: &str, url: &str) {
        if url.is_empty() {
            return;
        }
        if let Err(p) = check::http_url(url) {
            self.refuse(f, key, p);
        }
    }

    /// Checks a request method given in `key` of `f`.
    fn check_method(&mut self, f: &Fields, key: &str, method: &str) {
        if f.get(key).is_some() {
            if let Err(p) = check::method(method) {
                self.refuse(f, key, p);
            }
        }
    }

    /// The request an http pulse or a webhook intervention sends (`url`, `method`, `headers`,
    /// `body` in `f`), each checked, and the whole checked against the runtime's request bound.
    fn request(&mut self, f: &Fields, example_url: &str, default_method: &str) -> Request {
        let url = self.req_str(f, "url", example_url);
        self.check_url(f, "url", &url);
        let method = self
            .opt_str(f, "method")
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_else(|| default_method.into());
        self.check_method(f, "method", &method);
        let headers = self.headers(f, "headers");
        let body = self.opt_str(f, "body");
        if let Err(p) = check::request_size(&url, &method, body.as_deref(), &headers) {
            self.refuse(f, "body", p);
        }
        Request { url, method, headers, body }
    }

    /// Reports every key given twice in a mapping of `tree` (noted while it was built).
    pub fn duplicate_keys(&mut self, tree: &Tree) {
        for d in tree.duplicate_keys() {
            self.error(
                Class::DuplicateKey,
                d.pos,
                String::new(),
                format!(
                    "key '{}' is given twice in one mapping (first at line {}, column {})",
                    d.key, d.first.line, d.first.column
                ),
                "keep one of them",
            );
        }
    }

    /// View `node` as a mapping with the given known fields; unknown keys are errors (with
    /// "did you mean"), warnings with `--lenient`, and the Go CPRA's fields CPRA ignores are
    /// warnings that say why. Keys given twice are reported from the tree (see
    /// [`Self::duplicate_keys`]). `None` (reported) when it is not a mapping.
    pub fn fields<'n>(
        &mut self,
        node: &Node<'n>,
        path: FieldPath<'n>,
        known: &[&str],
    ) -> Option<Fields<'n>> {
        let NodeKind::Map(entries) = node.kind else {
            if !node.is_null() {
                self.error(
                    Class::WrongType,
                    node.pos,
                    path.render(),
                    format!("expected a mapping, found {}", node.type_name()),
                    "write `key: value` pairs here",
                );
            }
            return None;
        };
        for e in entries.unknown_keys(known) {
            let p = FieldPath::Key(&path, e.key).render();
            if let Some(why) = go_ignored(known, e.key) {
                self.report(
                    Level::Warning,
                    Class::IgnoredField,
                    e.key_pos,
                    p,
                    format!("field '{}' is ignored", e.key),
                    why.to_string(),
                );
                continue;
            }
            let (level, hint) = unknown_field_hint(e.key, known, self.lenient);
            self.report(
                level,
                Class::UnknownField,
                e.key_pos,
                p,
                format!("unknown field '{}'", e.key),
                hint,
            );
        }
        Some(Fields { entries, pos: node.pos, path })
    }

    /// The entry for `key` if present and not null.
    fn entry<'n>(&self, f: &Fields<'n>, key: &str) -> Option<Entry<'n>> {
        f.get(key).filter(|e| !e.value.is_null())
    }

    /// A scalar's text, `${NAME}` expanded (borrowed from the tree unless expanded, so most
    /// values are only copied if they are kept). Reports a non-scalar.
    fn scalar_text<'n>(
        &mut self,
        node: &Node<'n>,
        path: &dyn Fn() -> String,
        what: &str,
    ) -> Option<(Cow<'n, str>, bool)> {
        match node.kind {
            NodeKind::Scalar { value, quoted } => {
                match expand(value, self.env, &mut self.expanded) {
                    Ok(None) => Some((Cow::Borrowed(value), quoted)),
                    Ok(Some(v)) => Some((Cow::Owned(v), true)),
                    Err(e) => {
                        let (msg, hint) = match e {
                        ExpandError::Unset(name) => (
                            format!("environment variable '{name}' is not set"),
                            format!("export {name}=... before starting cpra, or write the value here"),
                        ),
                        ExpandError::BadName(name) => (
                            format!("'${{{name}}}' is not a valid variable reference"),
                            "names are letters, digits and '_'; write '$${' for a literal '${'".to_string(),
                        ),
                        ExpandError::Unclosed => {
                            ("unclosed '${'".to_string(), "close it with '}', or write '$${' for a literal".to_string())
                        }
                    };
                        self.error(Class::UnsetVariable, node.pos, path(), msg, hint);
                        None
                    }
                }
            }
            _ => {
                self.error(
                    Class::WrongType,
                    node.pos,
                    path(),
                    format!("expected {what}, found {}", node.type_name()),
                    format!("write {what} here"),
                );
                None
            }
        }
    }

    pub fn opt_str(&mut self, f: &Fields, key: &str) -> Option<String> {
        let e = self.entry(f, key)?;
        self.scalar_text(&e.value, &|| f.sub(key), "a string").map(|(s, _)| s.into_owned())
    }

    pub fn req_str(&mut self, f: &Fields, key: &str, example: &str) -> String {
        let Some(e) = self.entry(f, key) else {
            self.error(
                Class::Missing,
                f.pos,
                f.sub(key),
                format!("missing required field '{key}'"),
                format!("add `{key}: {example}`"),
            );
            return String::new();
        };
        let v = self
            .scalar_text(&e.value, &|| f.sub(key), "a string")
            .map(|(s, _)| s.into_owned())
            .unwrap_or_default();
        if v.is_empty() {
            if let Some(e) = f.get(key).filter(|e| e.value.scalar() == Some("")) {
                self.error(
                    Class::BadValue,
                    e.value.pos,
                    f.sub(key),
                    format!("'{key}' is empty"),
                    format!("e.g. `{key}: {example}`"),
                );
            }
        }
        v
    }

    pub fn bool_or(&mut self, f: &Fields, key: &str, default: bool) -> bool {
        let Some(e) = self.entry(f, key) else { return default };
        let Some((text, _)) = self.scalar_text(&e.value, &|| f.sub(key), "true or false") else {
            return default;
        };
        let is = |word: &str| text.eq_ignore_ascii_case(word);
        match () {
            _ if is("true") || is("yes") || is("on") => true,
            _ if is("false") || is("no") || is("off") => false,
            _ => {
                self.error(
                    Class::WrongType,
                    e.value.pos,
                    f.sub(key),
                    format!("'{text}' is not a boolean"),
                    "write true or false",
                );
                default
            }
        }
    }

    pub fn opt_int(&mut self, f: &Fields, key: &str, min: i64, max: i64) -> Option<i64> {
        let e = self.entry(f, key)?;
        let (text, _) = self.scalar_text(&e.value, &|| f.sub(key), "a whole number")?;
        match text.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            Ok(v) => {
                self.error(
                    Class::BadValue,
                    e.value.pos,
                    f.sub(key),
                    format!("{v} is out of range"),
                    format!("use a value from {min} to {max}"),
                );
                None
            }
            Err(_) => {
                self.error(
                    Class::WrongType,
                    e.value.pos,
                    f.sub(key),
                    format!("'{text}' is not a whole number"),
                    "write a number without quotes or units",
                );
                None
            }
        }
    }

    pub fn port(&mut self, f: &Fields, key: &str, default: Option<u16>) -> u16 {
        match self.opt_int(f, key, 1, 65535) {
            Some(v) => v as u16,
            None => match default {
                Some(d) => d,
                None => {
                    if self.entry(f, key).is_none() {
                        self.error(
                            Class::Missing,
                            f.pos,
                            f.sub(key),
                            format!("missing required field '{key}'"),
                            format!("add `{key}: 443` (1-65535)"),
                        );
                    }
                    0
                }
            },
        }
    }

    /// A Go duration, in whole milliseconds (at least 1 ms when `positive`).
    pub fn opt_duration_ms(&mut self, f: &Fields, key: &str, positive: bool) -> Option<u64> {
        let e = self.entry(f, key)?;
        let (text, _) = self.scalar_text(&e.value, &|| f.sub(key), "a duration such as 30s")?;
        match parse_go_duration(&text) {
            Ok(ns) => {
                let ms = ns / 1_000_000;
                if positive && ms == 0 {
                    self.error(
                        Class::BadDuration,
                        e.value.pos,
                        f.sub(key),
                        format!("'{key}' must be greater than 0 (got '{text}')"),
                        "use at least 1ms, e.g. 30s",
                    );
                    None
                } else {
                    Some(ms)
                }
            }
            Err(msg) => {
                self.error(
                    Class::BadDuration,
                    e.value.pos,
                    f.sub(key),
                    format!("bad duration: {msg}"),
                    "write a Go duration such as 30s, 1m30s or 500ms",
                );
                None
            }
        }
    }

    /// A string or a list of strings.
    pub fn str_list(&mut self, f: &Fields, key: &str) -> Vec<String> {
        let Some(e) = self.entry(f, key) else { return Vec::new() };
        match e.value.kind {
            NodeKind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len().min(MAX_LIST_ITEMS));
                for (i, item) in items.iter().enumerate() {
                    if i >= MAX_LIST_ITEMS {
                        self.error(
                            Class::BadValue,
                            item.pos,
                            f.sub(key),
                            format!("more than {MAX_LIST_ITEMS} items"),
                            "split the list",
                        );
                        break;
                    }
                    if let Some((s, _)) =
                        self.scalar_text(&item, &|| format!("{}[{i}]", f.sub(key)), "a string")
                    {
                        out.push(s.into_owned());
                    }
                }
                out
            }
            NodeKind::Map(entries) if key == "tags" => {
                // Tags written as a map become "key=value".
                let mut out = Vec::with_capacity(entries.len());
                for en in entries.iter().take(MAX_LIST_ITEMS) {
                    let sub = format!("{}.{}", f.sub(key), en.key);
                    if let Some((v, _)) = self.scalar_text(&en.value, &|| sub.clone(), "a string") {
                        out.push(format!("{}={v}", en.key));
                    }
                }
                out
            }
            _ => self
                .scalar_text(&e.value, &|| f.sub(key), "a string or a list of strings")
                .map(|(s, _)| vec![s.into_owned()])
                .unwrap_or_default(),
        }
    }

    /// Headers: a map, or Go CPRA's list of "Name: value" strings. Interned.
    pub fn headers(&mut self, f: &Fields, key: &str) -> Arc<Headers> {
        let mut out: Headers = Vec::new();
        if let Some(e) = self.entry(f, key) {
            match e.value.kind {
                NodeKind::Map(entries) => {
                    for en in entries.iter().take(MAX_MONITOR_HEADERS) {
                        let sub = || format!("{}.{}", f.sub(key), en.key);
                        if let Some((v, _)) = self.scalar_text(&en.value, &sub, "a header value") {
                            self.check_header(en.key, en.key_pos, &v, en.value.pos, &sub);
                            out.push((en.key.to_string(), v.into_owned()));
                        }
                    }
                    if entries.len() > MAX_MONITOR_HEADERS {
                        self.error(
                            Class::BadValue,
                            e.value.pos,
                            f.sub(key),
                            format!("more than {MAX_MONITOR_HEADERS} headers"),
                            "send fewer headers",
                        );
                    }
                }
                NodeKind::Seq(items) => {
                    for (i, item) in items.iter().enumerate().take(MAX_MONITOR_HEADERS) {
                        let sub = || format!("{}[{i}]", f.sub(key));
                        let Some((line, _)) =
                            self.scalar_text(&item, &sub, "a \"Name: value\" string")
                        else {
                            continue;
                        };
                        match line.split_once(':') {
                            Some((n, v)) if !n.trim().is_empty() => {
                                let (n, v) = (n.trim(), v.trim());
                                self.check_header(n, item.pos, v, item.pos, &sub);
                                out.push((n.to_string(), v.to_string()))
                            }
                            _ => self.error(
                                Class::BadValue,
                                item.pos,
                                sub(),
                                // The line is not repeated: it may hold a `${TOKEN}`'s value.
                                "the header has no ':' between its name and value".to_owned(),
                                "write e.g. \"Authorization: Bearer ${TOKEN}\"",
                            ),
                        }
                    }
                    if items.len() > MAX_MONITOR_HEADERS {
                        self.error(
                            Class::BadValue,
                            e.value.pos,
                            f.sub(key),
                            format!("more than {MAX_MONITOR_HEADERS} headers"),
                            "send fewer headers",
                        );
                    }
                }
                _ => self.error(
                    Class::WrongType,
                    e.value.pos,
                    f.sub(key),
                    format!(
                        "expected a mapping or a list of \"Name: value\" strings, found {}",
                        e.value.type_name()
                    ),
                    "write `Name: value` pairs",
                ),
            }
        }
        self.interners.headers.intern(out)
    }

    /// `cooldown` in `f` (a monitor or a code): a duration from 0 (no cooldown) to the
    /// longest the state machine keeps.
    fn cooldown_ms(&mut self, f: &Fields) -> Option<u32> {
        let ms = self.opt_duration_ms(f, "cooldown", false)?;
        match check::cooldown_ms(ms) {
            Ok(ms) => Some(ms),
            Err(p) => {
                self.refuse(f, "cooldown", p);
                None
            }
        }
    }

    /// `expected_headers`: a map from header name to its exact value or a `/regex/`, each
    /// checked by the runtime's own compiler (`cpra_net::http_response::ExpectedHeader`).
    fn expected_headers(&mut self, f: &Fields) -> Headers {
        let key = "expected_headers";
        let mut out = Headers::new();
        let Some(e) = self.entry(f, key) else { return out };
        let NodeKind::Map(entries) = e.value.kind else {
            self.error(
                Class::WrongType,
                e.value.pos,
                f.sub(key),
                format!(
                    "expected a mapping of header names to values, found {}",
                    e.value.type_name()
                ),
                "write e.g. `expected_headers: {Content-Type: application/json}`",
            );
            return out;
        };
        for en in entries.iter().take(MAX_MONITOR_HEADERS) {
            let sub = || format!("{}.{}", f.sub(key), en.key);
            let Some((v, _)) = self.scalar_text(&en.value, &sub, "a header value or /regex/")
            else {
                continue;
            };
            if let Err(p) = check::expected_header(en.key, &v) {
                self.error(Class::BadValue, en.value.pos, sub(), p.message, p.hint);
            }
            out.push((en.key.to_string(), v.into_owned()));
        }
        if entries.len() > MAX_MONITOR_HEADERS {
            self.error(
                Class::BadValue,
                e.value.pos,
                f.sub(key),
                format!("more than {MAX_MONITOR_HEADERS} headers"),
                "assert on fewer headers",
            );
        }
        out
    }

    /// Reports a header name or value HTTP forbids (or CPRA sets itself), at its position.
    fn check_header(
        &mut self,
        name: &str,
        name_pos: Pos,
        value: &str,
        value_pos: Pos,
        path: &dyn Fn() -> String,
    ) {
        if let Err(p) = check::header_name(name) {
            self.error(Class::BadValue, name_pos, path(), p.message, p.hint);
        }
        if let Err(p) = check::header_value(value) {
            let message = format!("header '{}': {}", name.escape_debug(), p.message);
            self.error(Class::BadValue, value_pos, path(), message, p.hint);
        }
    }

    /// An enum value (case-insensitive), with "did you mean".
    fn choice(
        &mut self,
        f: &Fields,
        key: &str,
        choices: &[&'static str],
        class: Class,
        what: &str,
    ) -> Option<&'static str> {
        let Some(e) = self.entry(f, key) else {
            self.error(
                Class::Missing,
                f.pos,
                f.sub(key),
                format!("missing required field '{key}'"),
                format!("add `{key}: ...`; expected one of {}", choices.join(", ")),
            );
            return None;
        };
        let (text, _) = self.scalar_text(&e.value, &|| f.sub(key), "a string")?;
        // The choices are lower case: the match is the lower-cased text, without building it.
        if let Some(&c) = choices.iter().find(|c| c.eq_ignore_ascii_case(&text)) {
            Some(c)
        } else {
            self.error(
                class,
                e.value.pos,
                f.sub(key),
                format!("unknown {what} '{text}'"),
                choices_hint(&text, choices),
            );
            None
        }
    }

    /// `retries` in `f` (`pulse_check` or its `config`): more than the engine makes is a
    /// warning, and the engine makes its most.
    fn retries(&mut self, f: &Fields) -> Option<u16> {
        let retries = self.opt_int(f, "retries", 0, i64::from(u32::MAX)).map(|v| v as u32);
        if let Some(Err(p)) = retries.map(check::retries) {
            let pos = f.get("retries").map(|e| e.value.pos).unwrap_or(f.pos);
            let path = f.sub("retries");
            self.report(Level::Warning, Class::BadValue, pos, path, p.message, p.hint.into());
        }
        retries.map(|r| u16::try_from(r).unwrap_or(u16::MAX))
    }

    fn config<'a>(&mut self, f: &'a Fields<'a>, key: &'a str, known: &[&str]) -> Fields<'a> {
        let path = FieldPath::Key(&f.path, key);
        match f.get(key) {
            Some(e) => match self.fields(&e.value, path, known) {
                Some(c) => c,
                None => Fields { entries: Entries::empty(), pos: e.value.pos, path },
            },
            None => Fields { entries: Entries::empty(), pos: f.pos, path },
        }
    }
}

/// Decode one monitor. `Err` when it has an error (the problems are in `ctx`), with the id it
/// would have had (to detect duplicates among invalid monitors too).
pub fn decode_monitor(ctx: &mut Ctx, node: &Node, index: usize) -> Result<Monitor, Option<String>> {
    let mut id = None;
    match decode_monitor_inner(ctx, node, index, &mut id) {
        Some(m) => Ok(m),
        None => Err(id),
    }
}

fn decode_monitor_inner(
    ctx: &mut Ctx,
    node: &Node,
    index: usize,
    id_out: &mut Option<String>,
) -> Option<Monitor> {
    ctx.had_error = false;
    let base = FieldPath::Monitor(index);
    // The label first, so every message about this monitor names it.
    ctx.monitor = Some(
        node.get("name")
            .and_then(|e| e.value.scalar())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{index}")),
    );
    if let Some(tree) = node.tree() {
        ctx.duplicate_keys(tree);
    }
    let f = ctx.fields(node, base, MONITOR_FIELDS)?;
    let name = ctx.req_str(&f, "name", "api-gateway");
    let id = match ctx.opt_str(&f, "id") {
        Some(id) => {
            if !is_valid_id(&id) {
                let pos = f.get("id").map(|e| e.value.pos).unwrap_or(f.pos);
                ctx.error(
                    Class::BadValue,
                    pos,
                    f.sub("id"),
                    format!("id '{id}' does not match [A-Za-z0-9][A-Za-z0-9._:-]{{0,127}}"),
                    format!("use letters, digits, '.', '_', ':', '-', e.g. '{}'", derive_id(&id)),
                );
            }
            id
        }
        None => derive_id(&name),
    };
    let has_id = !name.is_empty() || f.get("id").is_some();
    let enabled = ctx.bool_or(&f, "enabled", true);
    let tags = ctx.str_list(&f, "tags");
    let pulse_check = match f.get("pulse_check") {
        Some(e) => {
            let path = FieldPath::Key(&f.path, "pulse_check");
            match ctx.fields(&e.value, path, PULSE_CHECK_FIELDS) {
                Some(pf) => decode_pulse_check(ctx, &pf),
                None => {
                    if e.value.is_null() {
                        ctx.error(
                            Class::Missing,
                            e.value.pos,
                            path.render(),
                            "'pulse_check' is empty".into(),
                            "add `type:` and `config:`",
                        );
                    }
                    None
                }
            }
        }
        None => {
            ctx.error(
                Class::Missing,
                f.pos,
                f.sub("pulse_check"),
                "missing required field 'pulse_check'".into(),
                "add `pulse_check: {type: http, interval: 30s, config: {url: ...}}`",
            );
            None
        }
    };
    let codes = decode_codes(ctx, &f);
    let intervention = match f.get("intervention").filter(|e| !e.value.is_null()) {
        Some(e) => {
            decode_intervention_block(ctx, &e.value, FieldPath::Key(&f.path, "intervention"))
        }
        None => None,
    };
    let maintenance = decode_maintenance(ctx, &f);
    let codes = match ctx.cooldown_ms(&f) {
        // Rare: the codes block is interned again with the monitor's default in it.
        Some(ms) => ctx.interners.codes.intern(Codes { cooldown_ms: Some(ms), ..(*codes).clone() }),
        None => codes,
    };
    let pulse_check = match pulse_check {
        Some(p) if !ctx.had_error => p,
        _ => {
            if has_id {
                *id_out = Some(id);
            }
            return None;
        }
    };
    let shown = Shown::of(&id, &name, &pulse_check.pulse, intervention.as_ref(), &ctx.expanded);
    Some(Monitor {
        id,
        name,
        enabled,
        tags: ctx.interners.lists.intern(tags),
        pulse_check,
        codes,
        intervention: intervention.map(Box::new),
        maintenance: maintenance.into(),
        line: node.pos.line,
        shown,
    })
}

fn decode_pulse_check(ctx: &mut Ctx, f: &Fields) -> Option<PulseCheck> {
    let kind = ctx.choice(f, "type", &PULSE_TYPES, Class::UnknownType, "pulse type");
    let interval_ms = ctx.opt_duration_ms(f, "interval", true).unwrap_or(DEFAULT_INTERVAL_MS);
    if let Err(p) = check::interval_ms(interval_ms) {
        ctx.refuse(f, "interval", p);
    }
    let timeout_ms =
        ctx.opt_duration_ms(f, "timeout", true).unwrap_or(DEFAULT_TIMEOUT_MS.min(interval_ms));
    if let Err(p) = check::timeout_ms(timeout_ms) {
        ctx.refuse(f, "timeout", p);
    }
    if timeout_ms > interval_ms {
        let pos = f.get("timeout").map(|e| e.value.pos).unwrap_or(f.pos);
        ctx.report(
            Level::Warning,
            Class::TimeoutOverInterval,
            pos,
            f.sub("timeout"),
            format!(
                "timeout ({}) is longer than interval ({})",
                super::duration::format_ms(timeout_ms),
                super::duration::format_ms(interval_ms)
            ),
            "checks cannot overlap, so slots will be missed; make the timeout shorter than the interval".into(),
        );
    }
    let unhealthy_threshold = ctx.opt_int(f, "unhealthy_threshold", i64::MIN, i64::MAX);
    let healthy_threshold = ctx.opt_int(f, "healthy_threshold", i64::MIN, i64::MAX);
    let max_failures = ctx.opt_int(f, "max_failures", i64::MIN, i64::MAX);
    let retries = ctx.retries(f);
    let groups = ctx.str_list(f, "groups");
    let (pulse, config_retries) = match kind {
        Some(k) => decode_pulse(ctx, f, k)?,
        None => return None,
    };
    Some(PulseCheck {
        pulse,
        interval_ms,
        timeout_ms,
        unhealthy_threshold,
        healthy_threshold,
        max_failures,
        retries,
        config_retries,
        groups: ctx.interners.lists.intern(groups),
    })
}

fn require_config(ctx: &mut Ctx, f: &Fields) {
    if f.get("config").is_none_or(|e| e.value.is_null()) {
        ctx.error(
            Class::Missing,
            f.pos,
            f.sub("config"),
            "missing required field 'config'".into(),
            "add `config:` with the target (url, host, ...)",
        );
    }
}

/// The pulse and its `config.retries`.
fn decode_pulse(ctx: &mut Ctx, f: &Fields, kind: &str) -> Option<(Pulse, Option<u16>)> {
    require_config(ctx, f);
    if ctx.had_error && f.get("config").is_none() {
        return None;
    }
    let retries;
    let pulse = match kind {
        "http" => {
            let c = ctx.config(f, "config", HTTP_FIELDS);
            let Request { url, method, headers, body } =
                ctx.request(&c, "https://example.com/health", "GET");
            let expected_status = decode_statuses(ctx, &c);
            let insecure_skip_verify = ctx.bool_or(&c, "insecure_skip_verify", false);
            retries = ctx.retries(&c);
            let body_contains = ctx.opt_str(&c, "body_contains");
            if let Some(Err(p)) = body_contains.as_deref().map(check::body_contains) {
                ctx.refuse(&c, "body_contains", p);
            }
            let body_regex = ctx.opt_str(&c, "body_regex");
            if let Some(re) = &body_regex {
                if let Err(e) = regex::Regex::new(re) {
                    let pos = c.get("body_regex").map(|e| e.value.pos).unwrap_or(c.pos);
                    let first = e.to_string().lines().last().unwrap_or("").to_string();
                    ctx.error(
                        Class::BadValue,
                        pos,
                        c.sub("body_regex"),
                        format!("bad regular expression: {first}"),
                        "see https://docs.rs/regex for the syntax",
                    );
                }
            }
            let max_response_time_ms = ctx.opt_duration_ms(&c, "max_response_time", true);
            let ca_file = ctx.opt_str(&c, "ca_file");
            if let Some(Err(e)) = ca_file.as_deref().map(|p| ctx.interners.ca_file(p)) {
                let problem = Problem {
                    message: format!("cannot use it: {e}"),
                    hint: "name a readable PEM file of CA certificates (a relative path is from \
                           the directory cpra starts in)",
                };
                ctx.refuse(&c, "ca_file", problem);
            }
            let expected_headers = ctx.expected_headers(&c);
            Pulse::Http(HttpPulse {
                url,
                method: ctx.interners.methods.intern(method),
                headers,
                expected_status: ctx.interners.statuses.intern(expected_status),
                insecure_skip_verify,
                extra: HttpExtra {
                    body,
                    body_contains,
                    body_regex,
                    max_response_time_ms,
                    ca_file,
                    expected_headers,
                }
                .boxed(),
            })
        }
        "tcp" => {
            let c = ctx.config(f, "config", TCP_FIELDS);
            retries = ctx.retries(&c);
            Pulse::Tcp(TcpPulse {
                host: ctx.req_str(&c, "host", "db.internal"),
                port: ctx.port(&c, "port", None),
            })
        }
        "icmp" => {
            let c = ctx.config(f, "config", ICMP_FIELDS);
            retries = ctx.retries(&c);
            Pulse::Icmp(IcmpPulse {
                host: ctx.req_str(&c, "host", "10.0.0.1"),
                count: ctx
                    .opt_int(&c, "count", 1, i64::from(cpra_net::limits::MAX_ICMP_COUNT))
                    .map(|v| v as u32)
                    .unwrap_or(1),
                ignore_privilege: ctx.bool_or(&c, "ignore_privilege", false),
            })
        }
        "dns" => {
            let c = ctx.config(f, "config", DNS_FIELDS);
            retries = ctx.retries(&c);
            let host = ctx.req_str(&c, "host", "example.com");
            if let (false, Err(p)) = (host.is_empty(), check::dns_name(&host)) {
                ctx.refuse(&c, "host", p);
            }
            let server = ctx.opt_str(&c, "server");
            match server.as_deref() {
                Some(s) => {
                    if let Err(p) = check::dns_server(s) {
                        ctx.refuse(&c, "server", p);
                    }
                }
                None => {
                    if let Err(p) = check::dns_system_server() {
                        ctx.refuse(&c, "host", p);
                    }
                }
            }
            let record_text = ctx.opt_str(&c, "record_type");
            let known_type =
                record_text.as_deref().is_none_or(|t| cpra_net::dns::DnsRecord::parse(t).is_some());
            let record_type = match record_text {
                None => cpra_net::dns::DnsRecord::A,
                Some(text) => cpra_net::dns::DnsRecord::parse(&text).unwrap_or_else(|| {
                    let pos = c.get("record_type").map(|e| e.value.pos).unwrap_or(c.pos);
                    ctx.error(
                        Class::BadValue,
                        pos,
                        c.sub("record_type"),
                        format!("unknown DNS record type '{text}'"),
                        choices_hint(&text, &DNS_RECORD_TYPES),
                    );
                    cpra_net::dns::DnsRecord::A
                }),
            };
            let expect = ctx.opt_str(&c, "expect");
            // Against an unknown type, `expect` has no form to check: one error, not two.
            let checked = expect.as_deref().filter(|_| known_type);
            if let Some(Err(p)) = checked.map(|e| check::dns_expect(record_type, e)) {
                ctx.refuse(&c, "expect", p);
            }
            Pulse::Dns(DnsPulse { host, server, record_type, expect: expect.map(Into::into) })
        }
        "udp" => {
            let c = ctx.config(f, "config", UDP_FIELDS);
            retries = ctx.retries(&c);
            let host = ctx.req_str(&c, "host", "ntp.internal");
            let port = ctx.port(&c, "port", None);
            let payload = ctx.opt_str(&c, "payload");
            if let Some(Err(p)) = payload.as_deref().map(check::udp_payload) {
                ctx.refuse(&c, "payload", p);
            }
            Pulse::Udp(UdpPulse { host, port, payload })
        }
        "grpc" => {
            let c = ctx.config(f, "config", GRPC_FIELDS);
            retries = ctx.retries(&c);
            let host = ctx.req_str(&c, "host", "api.internal");
            if let (false, Err(p)) = (host.is_empty(), check::grpc_authority(&host)) {
                ctx.refuse(&c, "host", p);
            }
            let port = ctx.port(&c, "port", None);
            let service = ctx.opt_str(&c, "service");
            if let Some(Err(p)) = service.as_deref().map(check::grpc_service) {
                ctx.refuse(&c, "service", p);
            }
            let tls = ctx.bool_or(&c, "tls", false);
            let server_name = ctx.opt_str(&c, "server_name");
            let ca_file = ctx.opt_str(&c, "ca_file");
            let insecure_skip_verify = ctx.bool_or(&c, "insecure_skip_verify", false);
            if !tls {
                // Said rather than ignored: a monitor that looks verified must be.
                for key in ["server_name", "ca_file", "insecure_skip_verify"] {
                    if c.get(key).is_some() {
                        let problem = Problem {
                            message: "only used over TLS, and this grpc pulse is h2c".into(),
                            hint: "add `tls: true`, or remove it",
                        };
                        ctx.refuse(&c, key, problem);
                    }
                }
            }
            let name_key = if server_name.is_some() { "server_name" } else { "host" };
            let name = server_name.as_deref().unwrap_or(&host);
            if let (true, false, Err(p)) = (tls, name.is_empty(), check::tls_server_name(name)) {
                ctx.refuse(&c, name_key, p);
            }
            if let Some(Err(e)) = ca_file.as_deref().map(|p| ctx.interners.ca_file(p)) {
                let problem = Problem {
                    message: format!("cannot use it: {e}"),
                    hint: "name a readable PEM file of CA certificates (a relative path is from \
                           the directory cpra starts in)",
                };
                ctx.refuse(&c, "ca_file", problem);
            }
            let tls = tls.then(|| Box::new(GrpcTls { server_name, ca_file, insecure_skip_verify }));
            Pulse::Grpc(GrpcPulse { host, port, service, tls })
        }
        "tls" => {
            let c = ctx.config(f, "config", TLS_FIELDS);
            retries = ctx.retries(&c);
            let host = ctx.req_str(&c, "host", "example.com");
            let port = ctx.port(&c, "port", Some(443));
            let server_name = ctx.opt_str(&c, "server_name");
            let warn_days = ctx
                .opt_int(&c, "warn_days", 0, 3650)
                .map(|v| v as u32)
                .unwrap_or(DEFAULT_TLS_WARN_DAYS);
            let critical_days = ctx
                .opt_int(&c, "critical_days", 0, 3650)
                .map(|v| v as u32)
                .unwrap_or(DEFAULT_TLS_CRITICAL_DAYS);
            if critical_days > warn_days {
                // The runtime refuses it (the warning would never be seen).
                let pos = c.get("critical_days").map(|e| e.value.pos).unwrap_or(c.pos);
                ctx.error(
                    Class::BadValue,
                    pos,
                    c.sub("critical_days"),
                    format!("critical_days ({critical_days}) is more than warn_days ({warn_days})"),
                    "the warning would never be seen; make warn_days at least critical_days",
                );
            }
            let name_key = if server_name.is_some() { "server_name" } else { "host" };
            let name = server_name.as_deref().unwrap_or(&host);
            if let (false, Err(p)) = (name.is_empty(), check::tls_server_name(name)) {
                ctx.refuse(&c, name_key, p);
            }
            let insecure_skip_verify = ctx.bool_or(&c, "insecure_skip_verify", false);
            Pulse::Tls(TlsPulse {
                host,
                port,
                server_name,
                warn_days,
                critical_days,
                insecure_skip_verify,
            })
        }
        "docker" => {
            let c = ctx.config(f, "config", DOCKER_PULSE_FIELDS);
            retries = ctx.retries(&c);
            let container = ctx.req_str(&c, "container", "web-1");
            if let (false, Err(p)) = (container.is_empty(), check::docker_container(&container)) {
                ctx.refuse(&c, "container", p);
            }
            Pulse::Docker(DockerPulse { container })
        }
        _ => return None,
    };
    Some((pulse, retries))
}

fn decode_statuses(ctx: &mut Ctx, c: &Fields) -> Vec<u16> {
    let Some(e) = c.get("expected_status").filter(|e| !e.value.is_null()) else {
        return Vec::new();
    };
    // A list, or one status written alone (no list collected: this runs per http monitor).
    let (list, single) = match e.value.kind {
        NodeKind::Seq(items) => (Some(items), None),
        _ => (None, Some(e.value)),
    };
    let mut out = Vec::with_capacity(list.map_or(1, |l| l.len().min(MAX_LIST_ITEMS)));
    let items = list.into_iter().flat_map(|l| l.iter().take(MAX_LIST_ITEMS)).chain(single);
    for (i, item) in items.enumerate() {
        let path = || format!("{}[{i}]", c.sub("expected_status"));
        let Some((text, _)) = ctx.scalar_text(&item, &path, "an HTTP status code") else {
            continue;
        };
        match text.trim().parse::<u16>() {
            Ok(v) if (100..=599).contains(&v) => out.push(v),
            _ => ctx.error(
                Class::BadValue,
                item.pos,
                path(),
                format!("'{text}' is not an HTTP status code"),
                "use 100-599, e.g. [200, 204]",
            ),
        }
    }
    out
}

/// An `intervention` block, from the cache when the same text decoded without a problem before.
fn decode_intervention_block(ctx: &mut Ctx, node: &Node, path: FieldPath) -> Option<Intervention> {
    let i = &mut *ctx.interners;
    i.block_key.clear();
    let cacheable = node.encode(&mut i.block_stack, &mut i.block_key);
    if cacheable {
        if let Some(iv) = i.interventions_by_block.get(i.block_key.as_slice()) {
            return Some(iv.clone());
        }
    }
    let problems_before = ctx.problems.total();
    let iv = ctx.fields(node, path, INTERVENTION_FIELDS).and_then(|f| decode_intervention(ctx, &f));
    let i = &mut *ctx.interners;
    if let Some(iv) = &iv {
        if cacheable
            && ctx.problems.total() == problems_before
            && i.interventions_by_block.len() < crate::limits::MAX_INTERNED
        {
            i.interventions_by_block.insert(i.block_key.clone(), iv.clone());
        }
    }
    iv
}

fn decode_intervention(ctx: &mut Ctx, f: &Fields) -> Option<Intervention> {
    use crate::actions::aws;
    use crate::actions::intervention::{docker_restart_request, kubernetes_patch, systemctl_args};
    let action =
        ctx.choice(f, "action", &INTERVENTION_ACTIONS, Class::UnknownKind, "intervention action");
    let mut retries = ctx.opt_int(f, "retries", 0, i64::from(u32::MAX)).map(|v| v as u32);
    if let Some(r) = retries.filter(|&r| r > MAX_INTERVENTION_RETRIES) {
        let pos = f.get("retries").map(|e| e.value.pos).unwrap_or(f.pos);
        ctx.report(
            Level::Warning,
            Class::BadValue,
            pos,
            f.sub("retries"),
            format!("{r} retries: CPRA retries a failed intervention at most {MAX_INTERVENTION_RETRIES} times"),
            "a target that fails to restart that often needs a person; the red says so".into(),
        );
        retries = Some(MAX_INTERVENTION_RETRIES);
    }
    let max_failures = ctx.opt_int(f, "max_failures", i64::MIN, i64::MAX);
    let errors_before = ctx.problems.errors;
    // Each field is checked alone with the actions' own functions (the others set to values
    // they accept), so a refusal names its field.
    let refused = |r: Result<(), String>| {
        r.err().map(|message| Problem { message, hint: "see docs/configuration.md, intervention" })
    };
    let (action, t) = match action? {
        "docker" => {
            let t = ctx.config(f, "target", DOCKER_TARGET_FIELDS);
            let container = ctx.req_str(&t, "container", "web-1");
            if !container.is_empty() {
                if let Some(p) = refused(docker_restart_request(&container, 0).map(|_| ())) {
                    ctx.refuse(&t, "container", p);
                }
            }
            let timeout_ms = ctx.opt_duration_ms(&t, "timeout", true);
            (InterventionAction::Docker { container, timeout_ms }, t)
        }
        "webhook" => {
            let t = ctx.config(f, "target", WEBHOOK_TARGET_FIELDS);
            let Request { url, method, headers, body } =
                ctx.request(&t, "https://ops.example.com/restart", "POST");
            let timeout_ms = ctx.opt_duration_ms(&t, "timeout", true);
            let action = InterventionAction::Webhook { url, method, headers, body, timeout_ms };
            (action, t)
        }
        "systemd" => {
            let t = ctx.config(f, "target", SYSTEMD_TARGET_FIELDS);
            let unit = ctx.req_str(&t, "unit", "nginx.service");
            let mode = ctx.opt_str(&t, "mode");
            if let Some(p) = refused(systemctl_args("cpra.service", mode.as_deref()).map(|_| ())) {
                ctx.refuse(&t, "mode", p);
            }
            if !unit.is_empty() {
                if let Some(p) = refused(systemctl_args(&unit, None).map(|_| ())) {
                    ctx.refuse(&t, "unit", p);
                }
            }
            let timeout_ms = ctx.opt_duration_ms(&t, "timeout", true);
            (InterventionAction::Systemd { unit, mode, timeout_ms }, t)
        }
        "kubernetes" => {
            let t = ctx.config(f, "target", KUBERNETES_TARGET_FIELDS);
            let namespace = ctx.opt_str(&t, "namespace").unwrap_or_else(|| "default".into());
            let kind = ctx.opt_str(&t, "kind").unwrap_or_else(|| "deployment".into());
            let name = ctx.req_str(&t, "name", "web");
            let replicas = ctx.opt_int(&t, "replicas", 0, 100_000).map(|v| v as u32);
            let patch = |kind: &str, namespace: &str, name: &str| {
                refused(kubernetes_patch(kind, namespace, name, replicas, "").map(|_| ()))
            };
            if let Some(p) = patch(&kind, "default", "cpra") {
                ctx.refuse(&t, "kind", p);
            }
            if let Some(p) = patch("deployment", &namespace, "cpra") {
                ctx.refuse(&t, "namespace", p);
            }
            if !name.is_empty() {
                if let Some(p) = patch("deployment", "default", &name) {
                    ctx.refuse(&t, "name", p);
                }
            }
            let action = InterventionAction::Kubernetes {
                namespace,
                kind,
                name,
                replicas,
                kubeconfig_path: ctx.opt_str(&t, "kubeconfig_path"),
                timeout_ms: ctx.opt_duration_ms(&t, "timeout", true),
            };
            (action, t)
        }
        "aws" => {
            let t = ctx.config(f, "target", AWS_TARGET_FIELDS);
            // `type` is the Go CPRA's label for the target; nothing reads it there either.
            let _ = ctx.opt_str(&t, "type");
            let region = ctx.req_str(&t, "region", "us-east-1");
            let operation =
                ctx.opt_str(&t, "operation").unwrap_or_else(|| aws::REBOOT_INSTANCE.into());
            let instance_id = ctx.req_str(&t, "instance_id", "i-0123456789abcdef0");
            let endpoint = opt_url(ctx, &t, "endpoint");
            let timeout_ms = ctx.opt_duration_ms(&t, "timeout", true);
            if let Some(p) = refused(aws::check_operation(&operation)) {
                ctx.refuse(&t, "operation", p);
            }
            if !region.is_empty() {
                if let Some(p) = refused(aws::check_region(&region)) {
                    ctx.refuse(&t, "region", p);
                }
            }
            if !instance_id.is_empty() {
                if let Some(p) = refused(aws::check_instance_id(&instance_id)) {
                    ctx.refuse(&t, "instance_id", p);
                }
            }
            let action = InterventionAction::Aws {
                region,
                operation: operation.to_ascii_lowercase(),
                instance_id,
                endpoint,
                timeout_ms,
            };
            (action, t)
        }
        _ => return None,
    };
    // The actions' whole check, for anything the field checks above did not single out.
    if ctx.problems.errors == errors_before {
        if let Err(e) = crate::actions::check_intervention(&action) {
            ctx.error(
                Class::BadValue,
                t.pos,
                t.path.render(),
                format!("the intervention cannot run: {e}"),
                "fix this intervention's target",
            );
        }
    }
    Some(Intervention { action, retries, max_failures })
}

/// The `config` fields of notify kind `kind` (one of [`NOTIFY_KINDS`]).
pub fn notify_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "log" => LOG_FIELDS,
        "webhook" => WEBHOOK_NOTIFY_FIELDS,
        "slack" => SLACK_FIELDS,
        "pagerduty" => PAGERDUTY_FIELDS,
        "email" => EMAIL_FIELDS,
        "discord" => DISCORD_FIELDS,
        "telegram" => TELEGRAM_FIELDS,
        "opsgenie" => OPSGENIE_FIELDS,
        "mattermost" => MATTERMOST_FIELDS,
        "teams" => TEAMS_FIELDS,
        "victorops" => VICTOROPS_FIELDS,
        "pushover" => PUSHOVER_FIELDS,
        "datadog" => DATADOG_FIELDS,
        "twilio" => TWILIO_FIELDS,
        _ => ALERTMANAGER_FIELDS,
    }
}

/// The `target` fields of intervention action `action` (one of [`INTERVENTION_ACTIONS`]).
pub fn intervention_target_fields(action: &str) -> &'static [&'static str] {
    match action {
        "docker" => DOCKER_TARGET_FIELDS,
        "webhook" => WEBHOOK_TARGET_FIELDS,
        "systemd" => SYSTEMD_TARGET_FIELDS,
        "kubernetes" => KUBERNETES_TARGET_FIELDS,
        _ => AWS_TARGET_FIELDS,
    }
}

/// `notify` kind + `config` (or an endpoint's `type` + `config`), interned.
pub fn decode_notify(ctx: &mut Ctx, f: &Fields, kind_key: &str) -> Option<Arc<Notify>> {
    let kind = ctx.choice(f, kind_key, &NOTIFY_KINDS, Class::UnknownKind, "notify kind")?;
    let c = ctx.config(f, "config", notify_fields(kind));
    let errors_before = ctx.problems.errors;
    let notify = match kind {
        "log" => Notify::Log { file: ctx.opt_str(&c, "file") },
        "webhook" => {
            let url = ctx.req_str(&c, "url", "https://hooks.example.com/cpra");
            ctx.check_url(&c, "url", &url);
            let method = ctx
                .opt_str(&c, "method")
                .map(|m| m.to_ascii_uppercase())
                .unwrap_or_else(|| "POST".into());
            ctx.check_method(&c, "method", &method);
            Notify::Webhook { url, method, headers: ctx.headers(&c, "headers") }
        }
        "slack" => {
            let hook = ctx.req_str(&c, "hook", "https://hooks.slack.com/services/...");
            ctx.check_url(&c, "hook", &hook);
            Notify::Slack { hook }
        }
        "pagerduty" => Notify::Pagerduty {
            routing_key: ctx.req_str(&c, "routing_key", "${PAGERDUTY_KEY}"),
            url: opt_url(ctx, &c, "url"),
        },
        "email" => Notify::Email {
            server: ctx.req_str(&c, "server", "smtp.example.com:587"),
            from: {
                let from = ctx.req_str(&c, "from", "cpra@example.com");
                check_addresses(ctx, &c, "from", std::slice::from_ref(&from));
                from
            },
            to: {
                let to = ctx.str_list(&c, "to");
                if to.is_empty() && c.get("to").is_none() {
                    ctx.error(
                        Class::Missing,
                        c.pos,
                        c.sub("to"),
                        "missing required field 'to'".into(),
                        "add `to: [oncall@example.com]`",
                    );
                }
                check_addresses(ctx, &c, "to", &to);
                to
            },
            subject: ctx.opt_str(&c, "subject"),
            allow_insecure: ctx.bool_or(&c, "allow_insecure", false),
            username: ctx.opt_str(&c, "username"),
            password: ctx.opt_str(&c, "password"),
        },
        "discord" => Notify::Discord {
            webhook_url: req_url(ctx, &c, "webhook_url", "https://discord.com/api/webhooks/..."),
        },
        "telegram" => Notify::Telegram {
            bot_token: ctx.req_str(&c, "bot_token", "${TELEGRAM_TOKEN}"),
            chat_id: ctx.req_str(&c, "chat_id", "-100123456"),
            url: opt_url(ctx, &c, "url"),
        },
        "opsgenie" => {
            let api_key = ctx.req_str(&c, "api_key", "${OPSGENIE_KEY}");
            // Sent in the Authorization header.
            if let Err(p) = check::header_value(&api_key) {
                ctx.refuse(&c, "api_key", p);
            }
            Notify::Opsgenie { api_key, url: opt_url(ctx, &c, "url") }
        }
        "mattermost" => Notify::Mattermost {
            webhook_url: req_url(
                ctx,
                &c,
                "webhook_url",
                "https://mattermost.example.com/hooks/...",
            ),
            channel: ctx.opt_str(&c, "channel"),
            username: ctx.opt_str(&c, "username"),
        },
        "teams" => Notify::Teams {
            webhook_url: req_url(ctx, &c, "webhook_url", "https://example.webhook.office.com/..."),
        },
        "victorops" => {
            let message_type = ctx.opt_str(&c, "message_type").map(|t| t.to_ascii_uppercase());
            if let Some(t) = &message_type {
                if !crate::actions::payload::VICTOROPS_MESSAGE_TYPES.contains(&t.as_str()) {
                    ctx.refuse(
                        &c,
                        "message_type",
                        Problem {
                            message: format!("'{t}' is not a VictorOps message type"),
                            hint: "use CRITICAL, WARNING, ACKNOWLEDGEMENT, INFO or RECOVERY, or \
                                   leave it out to follow the alert's colour",
                        },
                    );
                }
            }
            Notify::Victorops {
                rest_endpoint_key: ctx.req_str(&c, "rest_endpoint_key", "${VICTOROPS_KEY}"),
                routing_key: ctx.req_str(&c, "routing_key", "ops"),
                message_type,
                entity_id: ctx.opt_str(&c, "entity_id"),
                url: opt_url(ctx, &c, "url"),
            }
        }
        "pushover" => {
            let priority = ctx.opt_int(&c, "priority", -2, 2).unwrap_or(0) as i8;
            // Pushover's own bounds on an emergency's repeat: at least 30 s apart, at most
            // 10,800 s (3 h) in all.
            let retry_s = ctx.opt_int(&c, "retry", 30, 10_800).map(|v| v as u32);
            let expire_s = ctx.opt_int(&c, "expire", 1, 10_800).map(|v| v as u32);
            Notify::Pushover {
                app_token: ctx.req_str(&c, "app_token", "${PUSHOVER_TOKEN}"),
                user_key: ctx.req_str(&c, "user_key", "${PUSHOVER_USER}"),
                title: ctx.opt_str(&c, "title"),
                priority,
                retry_s,
                expire_s,
                sound: ctx.opt_str(&c, "sound"),
                url: opt_url(ctx, &c, "url"),
            }
        }
        "datadog" => {
            let api_key = ctx.req_str(&c, "api_key", "${DD_API_KEY}");
            let app_key = ctx.opt_str(&c, "app_key");
            // Both travel in headers.
            if let Err(p) = check::header_value(&api_key) {
                ctx.refuse(&c, "api_key", p);
            }
            if let Some(Err(p)) = app_key.as_deref().map(check::header_value) {
                ctx.refuse(&c, "app_key", p);
            }
            let site = ctx.opt_str(&c, "site");
            if let Some(site) = &site {
                if let Err(p) = check::http_url(&format!("https://api.{site}/")) {
                    ctx.refuse(&c, "site", p);
                }
            }
            Notify::Datadog {
                api_key,
                app_key,
                site,
                tags: ctx.str_list(&c, "tags"),
                url: opt_url(ctx, &c, "url"),
            }
        }
        "twilio" => {
            let to = ctx.str_list(&c, "to");
            if to.is_empty() {
                let pos = c.get("to").map_or(c.pos, |e| e.value.pos);
                ctx.error(
                    Class::Missing,
                    pos,
                    c.sub("to"),
                    "no recipient in 'to'".into(),
                    "add `to: \"+15555550100\"` (a number or a list of numbers)",
                );
            }
            if to.len() > crate::limits::MAX_TWILIO_RECIPIENTS {
                ctx.refuse(
                    &c,
                    "to",
                    Problem {
                        message: format!(
                            "{} recipients: at most {} (one message each)",
                            to.len(),
                            crate::limits::MAX_TWILIO_RECIPIENTS
                        ),
                        hint: "send to a group number, or split the code into endpoints",
                    },
                );
            }
            Notify::Twilio {
                account_sid: ctx.req_str(&c, "account_sid", "${TWILIO_SID}"),
                auth_token: ctx.req_str(&c, "auth_token", "${TWILIO_TOKEN}"),
                from: ctx.req_str(&c, "from", "\"+15555550100\""),
                to,
                url: opt_url(ctx, &c, "url"),
            }
        }
        _ => Notify::Alertmanager { url: req_url(ctx, &c, "url", "http://alertmanager:9093") },
    };
    let notify = ctx.interners.notify.intern(notify);
    // The actions' whole check (it renders a sample alert), once per distinct notifier, for
    // anything the field checks above did not single out.
    if ctx.problems.errors == errors_before {
        if let Some(e) = ctx.interners.endpoint_verdict(&notify) {
            ctx.error(
                Class::BadValue,
                c.pos,
                c.path.render(),
                format!("alerts cannot be sent: {e}"),
                "fix this notifier's config",
            );
        }
    }
    Some(notify)
}

/// `message` without the notifier's secrets (tokens and keys, which the actions' messages may
/// quote inside a URL they built).
fn redact(message: String, notify: &Notify) -> String {
    let secrets: &[&str] = match notify {
        Notify::Telegram { bot_token, .. } => &[bot_token],
        Notify::Opsgenie { api_key, .. } => &[api_key],
        Notify::Pagerduty { routing_key, .. } => &[routing_key],
        Notify::Email { password: Some(p), .. } => &[p],
        Notify::Victorops { rest_endpoint_key, .. } => &[rest_endpoint_key],
        Notify::Pushover { app_token, user_key, .. } => &[app_token, user_key],
        Notify::Datadog { api_key, app_key: Some(a), .. } => &[api_key, a],
        Notify::Datadog { api_key, .. } => &[api_key],
        Notify::Twilio { auth_token, .. } => &[auth_token],
        _ => &[],
    };
    secrets.iter().filter(|s| !s.is_empty()).fold(message, |m, s| m.replace(s, "<redacted>"))
}

/// A required URL field, checked.
fn req_url(ctx: &mut Ctx, c: &Fields, key: &str, example: &str) -> String {
    let url = ctx.req_str(c, key, example);
    ctx.check_url(c, key, &url);
    url
}

/// An optional URL field (an API override), checked when given.
fn opt_url(ctx: &mut Ctx, c: &Fields, key: &str) -> Option<String> {
    let url = ctx.opt_str(c, key);
    if let Some(u) = &url {
        ctx.check_url(c, key, u);
    }
    url
}

/// Mail addresses as the SMTP sender accepts them, and at most as many recipients.
fn check_addresses(ctx: &mut Ctx, c: &Fields, key: &str, addresses: &[String]) {
    use crate::actions::smtp::valid_address;
    use crate::limits::MAX_EMAIL_RECIPIENTS;
    for a in addresses.iter().filter(|a| !a.is_empty() && !valid_address(a)) {
        let problem = Problem {
            message: format!("'{a}' is not a mail address"),
            hint: "write one address without name or brackets, e.g. oncall@example.com",
        };
        ctx.refuse(c, key, problem);
    }
    if addresses.len() > MAX_EMAIL_RECIPIENTS {
        let problem = Problem {
            message: format!(
                "{} recipients, more than the {MAX_EMAIL_RECIPIENTS} allowed",
                addresses.len()
            ),
            hint: "send to a mailing list instead",
        };
        ctx.refuse(c, key, problem);
    }
}

fn decode_codes(ctx: &mut Ctx, f: &Fields) -> Arc<Codes> {
    let Some(e) = f.get("codes").filter(|e| !e.value.is_null()) else {
        return decode_codes_block(ctx, f);
    };
    let i = &mut *ctx.interners;
    i.block_key.clear();
    let cacheable = e.value.encode(&mut i.block_stack, &mut i.block_key);
    if cacheable {
        if let Some(codes) = i.codes_by_block.get(i.block_key.as_slice()) {
            return Arc::clone(codes);
        }
    }
    let problems_before = ctx.problems.total();
    let codes = decode_codes_block(ctx, f);
    // Only a block that decoded without a word said: decoding it again would say nothing
    // either, and its notify groups are already referenced.
    let i = &mut *ctx.interners;
    if cacheable
        && ctx.problems.total() == problems_before
        && i.codes_by_block.len() < crate::limits::MAX_INTERNED
    {
        i.codes_by_block.insert(i.block_key.clone(), Arc::clone(&codes));
    }
    codes
}

fn decode_codes_block(ctx: &mut Ctx, f: &Fields) -> Arc<Codes> {
    let mut codes = Codes::default();
    if let Some(e) = f.get("codes").filter(|e| !e.value.is_null()) {
        let path = FieldPath::Key(&f.path, "codes");
        match e.value.kind {
            NodeKind::Map(entries) => {
                for (i, en) in entries.iter().enumerate() {
                    let cpath = FieldPath::Key(&path, en.key);
                    if entries.iter().take(i).any(|p| p.key == en.key) {
                        // The same key again: reported once, as a key given twice.
                        continue;
                    }
                    let Some(colour) = Colour::parse(en.key) else {
                        ctx.error(
                            Class::UnknownType,
                            en.key_pos,
                            cpath.render(),
                            format!("unknown colour '{}'", en.key),
                            choices_hint(en.key, &COLOURS),
                        );
                        continue;
                    };
                    if codes.by_colour[colour.index()].is_some() {
                        ctx.error(
                            Class::BadValue,
                            en.key_pos,
                            cpath.render(),
                            format!("colour '{}' is given twice", colour.as_str()),
                            "keep one code per colour",
                        );
                        continue;
                    }
                    let Some(cf) = ctx.fields(&en.value, cpath, CODE_FIELDS) else {
                        if en.value.is_null() {
                            ctx.error(
                                Class::Missing,
                                en.value.pos,
                                cpath.render(),
                                "empty code".into(),
                                "add `notify:` and `config:`, or `notify_group:`",
                            );
                        }
                        continue;
                    };
                    let dispatch = ctx.bool_or(&cf, "dispatch", true);
                    let cooldown_ms = ctx.cooldown_ms(&cf);
                    let target = if let Some(group) = ctx.opt_str(&cf, "notify_group") {
                        if cf.get("notify").is_some() {
                            let pos = cf.get("notify").map(|e| e.key_pos).unwrap_or(cf.pos);
                            ctx.error(
                                Class::BadValue,
                                pos,
                                cf.sub("notify"),
                                "both 'notify' and 'notify_group' are given".into(),
                                "keep one of them",
                            );
                        }
                        let pos = cf.get("notify_group").map(|e| e.value.pos).unwrap_or(cf.pos);
                        // The site is only built for a group's first reference.
                        let monitor = &ctx.monitor;
                        let id = ctx.groups.reference(&group, || RefSite {
                            pos,
                            monitor: monitor.clone(),
                            path: cf.sub("notify_group"),
                        });
                        Some(CodeTarget::Group { name: group, id })
                    } else if cf.get("notify").is_some() {
                        decode_notify(ctx, &cf, "notify").map(CodeTarget::Notify)
                    } else {
                        ctx.error(
                            Class::Missing,
                            cf.pos,
                            cf.sub("notify"),
                            "missing 'notify' (or 'notify_group')".into(),
                            "add `notify: webhook` with `config:`, or `notify_group: oncall`",
                        );
                        None
                    };
                    if let Some(target) = target {
                        codes.by_colour[colour.index()] =
                            Some(Code { dispatch, cooldown_ms, target });
                    }
                }
            }
            _ => ctx.error(
                Class::WrongType,
                e.value.pos,
                path.render(),
                format!("expected a mapping of colours, found {}", e.value.type_name()),
                "write e.g. `codes: {red: {notify: log}}`",
            ),
        }
    }
    ctx.interners.codes.intern(codes)
}

fn decode_maintenance(ctx: &mut Ctx, f: &Fields) -> Vec<MaintenanceWindow> {
    let Some(e) = f.get("maintenance").filter(|e| !e.value.is_null()) else { return Vec::new() };
    let path = FieldPath::Key(&f.path, "maintenance");
    let items: Vec<Node> = match e.value.kind {
        NodeKind::Seq(items) => items.iter().take(MAX_LIST_ITEMS).collect(),
        NodeKind::Map(_) => vec![e.value],
        _ => {
            ctx.error(
                Class::WrongType,
                e.value.pos,
                path.render(),
                format!("expected a list of windows, found {}", e.value.type_name()),
                "write `- {cron: \"0 2 * * *\", duration: 1h}`",
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(w) = ctx.fields(&item, FieldPath::Index(&path, i), MAINTENANCE_FIELDS) else {
            continue;
        };
        if w.get("start").is_some() || w.get("end").is_some() {
            if let Some(win) = decode_one_off_window(ctx, &w) {
                out.push(win);
            }
            continue;
        }
        let cron = ctx.req_str(&w, "cron", "\"0 2 * * *\"");
        let duration_ms = match ctx.opt_duration_ms(&w, "duration", true) {
            Some(d) => d,
            None => {
                if w.get("duration").is_none() {
                    ctx.error(
                        Class::Missing,
                        w.pos,
                        w.sub("duration"),
                        "missing required field 'duration'".into(),
                        "add `duration: 1h`",
                    );
                }
                continue;
            }
        };
        let tz = ctx.opt_str(&w, "timezone").unwrap_or_else(|| "UTC".into());
        if cron.is_empty() {
            continue;
        }
        match MaintenanceWindow::new(&cron, duration_ms, &tz) {
            Ok(win) => out.push(win),
            Err((true, msg)) => {
                let pos = w.get("cron").map(|e| e.value.pos).unwrap_or(w.pos);
                ctx.error(
                    Class::BadCron,
                    pos,
                    w.sub("cron"),
                    msg,
                    "5 fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * 0\"",
                );
            }
            Err((false, msg)) => {
                let pos = w.get("timezone").map(|e| e.value.pos).unwrap_or(w.pos);
                ctx.error(
                    Class::BadTimezone,
                    pos,
                    w.sub("timezone"),
                    msg,
                    "use an IANA name such as UTC, Europe/Paris, America/New_York",
                );
            }
        }
    }
    out
}

/// A one-off window (`start` and `end`, RFC 3339): neither `cron`, `duration` nor
/// `timezone` goes with it, so a window is never half one kind and half the other.
fn decode_one_off_window(ctx: &mut Ctx, w: &Fields) -> Option<MaintenanceWindow> {
    use super::maintenance::parse_rfc3339_ms;
    for key in ["cron", "duration", "timezone"] {
        if w.get(key).is_some() {
            let problem = Problem {
                message: format!("a window with start and end has no {key}"),
                hint: "a window is either cron + duration (+ timezone) or start + end; \
                       start and end carry their own UTC offset",
            };
            ctx.refuse(w, key, problem);
        }
    }
    let at = |ctx: &mut Ctx, key: &str| -> Option<i64> {
        let text = ctx.req_str(w, key, "2026-03-01T02:00:00Z");
        if text.is_empty() {
            return None;
        }
        match parse_rfc3339_ms(&text) {
            Ok(ms) => Some(ms),
            Err(message) => {
                let problem =
                    Problem { message, hint: "RFC 3339: date, T, time and Z or an offset" };
                ctx.refuse(w, key, problem);
                None
            }
        }
    };
    let (start, end) = (at(ctx, "start"), at(ctx, "end"));
    let (start, end) = (start?, end?);
    match MaintenanceWindow::once(start, end) {
        Ok(win) => Some(win),
        Err(message) => {
            let problem = Problem { message, hint: "make end later than start" };
            ctx.refuse(w, "end", problem);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{redact, FieldPath, Notify};

    #[test]
    fn the_actions_messages_lose_the_notifiers_secrets() {
        let telegram =
            Notify::Telegram { bot_token: "123:s3cret".into(), chat_id: "1".into(), url: None };
        let m = redact(
            "invalid URL `https://api.telegram.org/bot123:s3cret/sendMessage`".into(),
            &telegram,
        );
        assert_eq!(m, "invalid URL `https://api.telegram.org/bot<redacted>/sendMessage`");
        let cases = [
            Notify::Victorops {
                rest_endpoint_key: "s3cret".into(),
                routing_key: "ops".into(),
                message_type: None,
                entity_id: None,
                url: None,
            },
            Notify::Pushover {
                app_token: "s3cret".into(),
                user_key: "s3cret".into(),
                title: None,
                priority: 0,
                retry_s: None,
                expire_s: None,
                sound: None,
                url: None,
            },
            Notify::Datadog {
                api_key: "s3cret".into(),
                app_key: Some("s3cret".into()),
                site: None,
                tags: vec![],
                url: None,
            },
            Notify::Twilio {
                account_sid: "AC1".into(),
                auth_token: "s3cret".into(),
                from: "+1".into(),
                to: vec!["+2".into()],
                url: None,
            },
        ];
        for n in &cases {
            let m = redact("key `s3cret` refused".into(), n);
            assert_eq!(m, "key `<redacted>` refused", "{}", n.kind());
        }
    }

    #[test]
    fn paths_render_as_written() {
        let m = FieldPath::Monitor(12);
        let pc = FieldPath::Key(&m, "pulse_check");
        assert_eq!(FieldPath::Key(&pc, "type").render(), "monitors[12].pulse_check.type");
        let w = FieldPath::Key(&m, "maintenance");
        assert_eq!(
            FieldPath::Key(&FieldPath::Index(&w, 2), "cron").render(),
            "monitors[12].maintenance[2].cron"
        );
        let top = FieldPath::Top("endpoints");
        assert_eq!(FieldPath::Key(&top, "hook").render(), "endpoints.hook");
        assert_eq!(FieldPath::Key(&FieldPath::Top(""), "colour").render(), "colour");
    }
}
