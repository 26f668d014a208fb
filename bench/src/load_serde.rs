//! The `json-serde` reference line of `cpra-bench load`: the same generated JSON fleet decoded
//! by serde_json into `#[derive(Deserialize)]` structs that mirror a manifest monitor, streamed
//! one monitor at a time as the real loader streams, every monitor kept.
//!
//! What it is for: the figure that decides whether the hand-written direct JSON decoder
//! (`cpra_engine::manifest::json_direct`) earns its keep over a typed serde decoder (issue 11:
//! replace it if serde's CPU time is within 1.3x of it). What it is not: a loader. It checks
//! only what the derives check (known fields, value types, durations parse); it does none of
//! the loader's validation, interning, id derivation or diagnostics, all of which a real
//! replacement would add on top, so the figure is a floor for serde's cost, in serde's favour.
//!
//! Streaming: the top-level object is read by a visitor, and the `monitors` array by a
//! `DeserializeSeed` whose sequence visitor hands each typed monitor to a callback as soon as
//! it is decoded: the fleet is never a `Vec` of JSON trees, only of typed monitors, kept in
//! chunks like the real loader's `Monitor`s.

use std::collections::BTreeMap;
use std::fmt;

use cpra_engine::manifest::duration::parse_go_duration;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One monitor as the manifest writes it, typed. Durations are parsed to milliseconds while
/// decoding (with the engine's own parser), as a typed decoder would; everything else is kept
/// as written.
// The fields are read only by the derive: the benchmark keeps the values, it does not use them.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedMonitor {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub pulse_check: TypedPulseCheck,
    #[serde(default)]
    pub codes: TypedCodes,
    /// Boxed as the engine's `Monitor` boxes it: most monitors have none.
    #[serde(default)]
    pub intervention: Option<Box<TypedIntervention>>,
    #[serde(default)]
    pub maintenance: Vec<TypedWindow>,
}

/// The pulse types, decoded from `type` (an enum, not a string: no allocation).
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PulseType {
    Http,
    Tcp,
    Icmp,
    Dns,
    Udp,
    Grpc,
    Tls,
    Docker,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedPulseCheck {
    #[serde(rename = "type")]
    pub kind: PulseType,
    #[serde(default, deserialize_with = "duration_ms")]
    pub interval: Option<u64>,
    #[serde(default, deserialize_with = "duration_ms")]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub unhealthy_threshold: Option<i64>,
    #[serde(default)]
    pub healthy_threshold: Option<i64>,
    #[serde(default)]
    pub max_failures: Option<i64>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub config: PulseConfig,
}

/// Every pulse type's config fields in one struct (strings as `Box<str>`, 16 bytes, and the
/// codes boxed, so the kept fleet is not inflated by the union's unused fields): which apply depends on `type`, a sibling of
/// `config`, and an adjacently tagged enum cannot be flattened into `pulse_check` without
/// serde buffering the whole object first (slower than this, and not what a fast typed decoder
/// would do).
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PulseConfig {
    pub url: Option<Box<str>>,
    pub method: Option<Box<str>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub body: Option<Box<str>>,
    pub expected_status: Option<Vec<u16>>,
    pub insecure_skip_verify: Option<bool>,
    pub retries: Option<u32>,
    pub body_contains: Option<Box<str>>,
    pub body_regex: Option<Box<str>>,
    #[serde(deserialize_with = "duration_ms")]
    pub max_response_time: Option<u64>,
    pub ca_file: Option<Box<str>>,
    pub host: Option<Box<str>>,
    pub port: Option<u16>,
    pub count: Option<u32>,
    pub ignore_privilege: Option<bool>,
    pub server: Option<Box<str>>,
    pub payload: Option<Box<str>>,
    pub service: Option<Box<str>>,
    pub server_name: Option<Box<str>>,
    pub warn_days: Option<u32>,
    pub critical_days: Option<u32>,
    pub container: Option<Box<str>>,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TypedCodes {
    pub red: Option<Box<TypedCode>>,
    pub yellow: Option<Box<TypedCode>>,
    pub green: Option<Box<TypedCode>>,
    pub cyan: Option<Box<TypedCode>>,
    pub gray: Option<Box<TypedCode>>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedCode {
    #[serde(default)]
    pub dispatch: Option<bool>,
    #[serde(default)]
    pub notify: Option<String>,
    #[serde(default)]
    pub notify_group: Option<String>,
    #[serde(default)]
    pub config: Option<Box<NotifyConfig>>,
}

/// Every notifier kind's config fields in one struct (the kind is `notify`, a sibling).
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub file: Option<Box<str>>,
    pub url: Option<Box<str>>,
    pub method: Option<Box<str>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub hook: Option<Box<str>>,
    pub routing_key: Option<Box<str>>,
    pub server: Option<Box<str>>,
    pub from: Option<Box<str>>,
    pub to: Option<Vec<String>>,
    pub subject: Option<Box<str>>,
    pub allow_insecure: Option<bool>,
    pub username: Option<Box<str>>,
    pub password: Option<Box<str>>,
    pub webhook_url: Option<Box<str>>,
    pub bot_token: Option<Box<str>>,
    pub chat_id: Option<Box<str>>,
    pub api_key: Option<Box<str>>,
    pub channel: Option<Box<str>>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedIntervention {
    pub action: String,
    pub target: InterventionTarget,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub max_failures: Option<i64>,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterventionTarget {
    pub container: Option<Box<str>>,
    #[serde(deserialize_with = "duration_ms")]
    pub timeout: Option<u64>,
    pub url: Option<Box<str>>,
    pub method: Option<Box<str>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub body: Option<Box<str>>,
    pub unit: Option<Box<str>>,
    pub mode: Option<Box<str>>,
    pub namespace: Option<Box<str>>,
    pub kind: Option<Box<str>>,
    pub name: Option<Box<str>>,
    pub replicas: Option<u32>,
    pub kubeconfig_path: Option<Box<str>>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedWindow {
    pub cron: String,
    #[serde(deserialize_with = "duration_ms")]
    pub duration: Option<u64>,
    #[serde(default)]
    pub timezone: Option<String>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedEndpoint {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub config: NotifyConfig,
}

/// A Go duration string to whole milliseconds (the parser gives nanoseconds), as the loader
/// keeps it, parsed from serde_json's scratch buffer (no allocation for the string).
/// Not a tunable: the unit conversion.
const NANOS_PER_MILLI: u64 = 1_000_000;

fn duration_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a Go duration string such as \"30s\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
            parse_go_duration(s).map(|ns| ns / NANOS_PER_MILLI).map_err(E::custom)
        }
    }
    d.deserialize_str(V).map(Some)
}

/// What the top level held besides the monitors.
#[derive(Debug, Default)]
pub struct Fleet {
    pub version: Option<String>,
    pub endpoints: BTreeMap<String, TypedEndpoint>,
    pub groups: BTreeMap<String, Vec<String>>,
}

/// The top-level object: the small keys decoded whole, `monitors` streamed into `each`.
pub struct FleetSeed<F>(pub F);

impl<'de, F: FnMut(TypedMonitor)> DeserializeSeed<'de> for FleetSeed<F> {
    type Value = Fleet;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fleet, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(TypedMonitor)> Visitor<'de> for FleetSeed<F> {
    type Value = Fleet;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a manifest object")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Fleet, A::Error> {
        let mut fleet = Fleet::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Version => fleet.version = Some(map.next_value()?),
                Key::Endpoints => fleet.endpoints = map.next_value()?,
                Key::NotificationGroups => fleet.groups = map.next_value()?,
                Key::Monitors => map.next_value_seed(MonitorsSeed(&mut self.0))?,
            }
        }
        Ok(fleet)
    }
}

/// The top-level keys; any other is an error (as in the loader).
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Version,
    Endpoints,
    NotificationGroups,
    Monitors,
}

/// The `monitors` array, one typed monitor at a time into the callback.
struct MonitorsSeed<'f, F>(&'f mut F);

impl<'de, F: FnMut(TypedMonitor)> DeserializeSeed<'de> for MonitorsSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(TypedMonitor)> Visitor<'de> for MonitorsSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of monitors")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(m) = seq.next_element::<TypedMonitor>()? {
            (self.0)(m);
        }
        Ok(())
    }
}

/// Decode a whole manifest from `de`, each monitor into `each`, and check nothing follows it.
pub fn decode<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    each: impl FnMut(TypedMonitor),
) -> Result<Fleet, serde_json::Error> {
    let fleet = FleetSeed(each).deserialize(&mut *de)?;
    de.end()?;
    Ok(fleet)
}

#[cfg(test)]
mod tests {
    use cpra_engine::manifest::gen::{parse_mix, write_manifest, GenOptions};
    use cpra_engine::manifest::Format;

    use super::*;

    #[test]
    fn decodes_every_generated_monitor_type_and_refuses_unknown_fields() {
        let opts = GenOptions {
            monitors: 120,
            format: Format::Json,
            mix: parse_mix("http=50,tcp=10,icmp=10,dns=10,udp=10,tls=10").unwrap(),
            ..Default::default()
        };
        let mut buf = Vec::new();
        write_manifest(&opts, &mut buf).unwrap();
        let mut kept = Vec::new();
        let mut de = serde_json::Deserializer::from_reader(&buf[..]);
        let fleet = decode(&mut de, |m| kept.push(m)).unwrap();
        assert_eq!(kept.len(), 120);
        assert_eq!(fleet.version.as_deref(), Some("1"));
        assert_eq!(fleet.groups["oncall"], ["oncall-webhook", "oncall-pagerduty"]);
        assert_eq!(kept[0].name, "svc-00000000");
        assert_eq!(kept[0].pulse_check.interval, Some(60_000));
        assert!(kept[0].codes.red.as_ref().and_then(|c| c.notify_group.as_ref()).is_some());

        let text = String::from_utf8(buf).unwrap().replacen("\"timeout\"", "\"timeuot\"", 1);
        let mut de = serde_json::Deserializer::from_str(&text);
        let err = decode(&mut de, |_| {}).unwrap_err().to_string();
        assert!(err.contains("timeuot"), "{err}");
    }
}
