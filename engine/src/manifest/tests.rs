//! Loader tests across modules: every field round-trips, every error class gives its
//! message, Go CPRA manifests load, gzip works, and the loader never panics.

use std::collections::HashMap;
use std::io::Write;

use proptest::prelude::*;

use super::decode::ALL_FIELD_LISTS;
use super::export::manifest_json;
use super::gen::{parse_mix, write_manifest, GenOptions};
use super::*;
use crate::limits::MAX_PROBLEMS;

const FLEET_YAML: &str = include_str!("../../../docs/examples/fleet.yaml");

/// Every field the loader accepts, with a non-default value (a test checks the coverage).
pub(crate) const ALL_FIELDS_YAML: &str = r#"
version: "2"
endpoints:
  hook: {type: webhook, config: {url: "http://127.0.0.1:1/a", method: put, headers: {X-A: "1"}}}
  mail:
    type: email
    config: {server: "smtp:25", from: a@b, to: [c@d], subject: s, allow_insecure: true, username: u, password: p}
  vo: {type: victorops, config: {rest_endpoint_key: k, routing_key: r, message_type: warning, entity_id: e, url: "http://127.0.0.1:1/vo"}}
  po:
    type: pushover
    config: {app_token: t, user_key: u, title: T, priority: 2, retry: 30, expire: 600, sound: siren, url: "http://127.0.0.1:1/po"}
  dd: {type: datadog, config: {api_key: k, app_key: a, site: datadoghq.eu, tags: [x], url: "http://127.0.0.1:1/dd"}}
  tw: {type: twilio, config: {account_sid: AC1, auth_token: t, from: "+1", to: ["+2", "+3"], url: "http://127.0.0.1:1/tw"}}
notification_groups:
  team: [hook, mail]
  paging: [vo, po, dd, tw]
monitors:
  - id: "all.fields:1"
    name: All fields
    enabled: false
    tags: [a, b]
    pulse_check:
      type: http
      interval: 1m30s
      timeout: 1500ms
      unhealthy_threshold: 4
      healthy_threshold: 3
      max_failures: 9
      retries: 2
      groups: g1
      config:
        url: "https://127.0.0.1:8443/x"
        method: post
        headers: ["Content-Type: application/json", "X-Token: a:b"]
        body: '{"q": 1}'
        expected_status: [200, 201]
        insecure_skip_verify: true
        retries: 1
        body_contains: ok
        body_regex: "^o.$"
        max_response_time: 250ms
        ca_file: tests/fixtures/ca.pem
        expected_headers: {Content-Type: application/json, X-Version: "/^2\\./"}
    intervention:
      action: webhook
      target: {url: "http://127.0.0.1:1/fix", method: put, headers: {A: b}, body: x, timeout: 3s}
      retries: 2
      max_failures: 3
    maintenance:
      - {cron: "30 1 * * 1", duration: 45m, timezone: America/New_York}
      - {start: "2026-03-01T02:00:00+01:00", end: "2026-03-01T04:00:00Z"}
    cooldown: 10m
    codes:
      red: {dispatch: false, cooldown: 1m, notify: slack, config: {hook: "http://127.0.0.1:1/s"}}
      yellow: {notify: log, config: {file: /tmp/x.log}}
      green: {notify_group: team}
      cyan: {notify: discord, config: {webhook_url: "http://127.0.0.1:1/d"}}
      gray: {notify: telegram, config: {bot_token: t, chat_id: "1", url: "http://127.0.0.1:1/t"}}
  - name: tcp
    pulse_check: {type: tcp, config: {host: h, port: 1}}
    intervention: {action: docker, target: {container: c, timeout: 5s}}
    codes:
      red: {notify: pagerduty, config: {routing_key: k, url: "http://127.0.0.1:1/p"}}
      yellow: {notify: opsgenie, config: {api_key: k, url: "http://127.0.0.1:1/o"}}
      green: {notify: mattermost, config: {webhook_url: "http://127.0.0.1:1/m", channel: c, username: u}}
      cyan: {notify: teams, config: {webhook_url: "http://127.0.0.1:1/t"}}
      gray: {notify: alertmanager, config: {url: "http://127.0.0.1:1/am"}}
  - name: icmp
    pulse_check: {type: icmp, config: {host: h, count: 3, ignore_privilege: true}}
    intervention: {action: systemd, target: {unit: u.service, mode: restart, timeout: 20s}}
  - name: dns
    pulse_check: {type: dns, config: {host: h, server: "127.0.0.1:53", record_type: mx, expect: mx.example.com}}
    intervention:
      action: kubernetes
      target: {namespace: n, kind: statefulset, name: s, replicas: 2, kubeconfig_path: /k, timeout: 1m}
  - name: udp
    pulse_check: {type: udp, config: {host: h, port: 2, payload: p}}
    intervention:
      action: aws
      target: {type: ec2, region: eu-west-1, operation: reboot-instance, instance_id: i-1234abcd, endpoint: "http://127.0.0.1:1/ec2", timeout: 40s}
    codes: {red: {notify_group: paging}}
  - name: grpc
    pulse_check: {type: grpc, config: {host: h, port: 3, service: s, tls: true, server_name: sn, ca_file: tests/fixtures/ca.pem, insecure_skip_verify: true}}
  - name: tls
    pulse_check: {type: tls, config: {host: h, port: 4, server_name: sn, warn_days: 20, critical_days: 5, insecure_skip_verify: true}}
  - name: docker
    pulse_check: {type: docker, config: {container: c}}
"#;

fn load(text: &str) -> (Vec<Monitor>, LoadReport) {
    load_str(text, None, &LoadOptions::default())
}

fn load_ok(text: &str) -> (Vec<Monitor>, LoadReport) {
    let (m, r) = load(text);
    assert!(r.is_valid() && r.problems.warnings == 0, "{:#?}", r.problems.kept);
    (m, r)
}

#[test]
fn the_all_fields_manifest_uses_every_field() {
    for list in ALL_FIELD_LISTS {
        for field in *list {
            assert!(
                ALL_FIELDS_YAML.contains(&format!("{field}:")),
                "field '{field}' is not exercised"
            );
        }
    }
}

#[test]
fn every_field_is_read() {
    let (m, r) = load_ok(ALL_FIELDS_YAML);
    assert_eq!(m.len(), 8);
    assert_eq!(r.version.as_deref(), Some("2"));
    let a = &m[0];
    assert_eq!(a.id, "all.fields:1");
    assert_eq!(a.name, "All fields");
    assert!(!a.enabled);
    assert_eq!(*a.tags, ["a", "b"]);
    let p = &a.pulse_check;
    assert_eq!((p.interval_ms, p.timeout_ms), (90_000, 1_500));
    assert_eq!(
        (p.unhealthy_threshold, p.healthy_threshold, p.max_failures),
        (Some(4), Some(3), Some(9))
    );
    assert_eq!(p.retries, Some(2));
    assert_eq!(*p.groups, ["g1"]);
    let Pulse::Http(h) = &p.pulse else { panic!("http") };
    assert_eq!(h.url, "https://127.0.0.1:8443/x");
    assert_eq!(h.method.as_str(), "POST");
    assert_eq!(
        *h.headers,
        vec![("Content-Type".into(), "application/json".into()), ("X-Token".into(), "a:b".into())]
    );
    assert_eq!(h.body(), Some("{\"q\": 1}"));
    assert_eq!(*h.expected_status, [200, 201]);
    assert!(h.insecure_skip_verify);
    assert_eq!((p.config_retries, p.retries_per_check()), (Some(1), 1));
    assert_eq!(h.body_contains(), Some("ok"));
    assert_eq!(h.body_regex(), Some("^o.$"));
    assert_eq!(h.max_response_time_ms(), Some(250));
    assert_eq!(h.ca_file(), Some("tests/fixtures/ca.pem"));
    // Policy inputs.
    assert_eq!(
        (a.unhealthy_threshold(), a.healthy_threshold(), a.recovery_max_attempts()),
        (4, 3, 3)
    );
    let i = a.intervention.as_ref().unwrap();
    assert_eq!(i.retries, Some(2));
    assert!(
        matches!(&i.action, InterventionAction::Webhook { method, timeout_ms: Some(3000), body: Some(b), .. } if method == "PUT" && b == "x")
    );
    assert_eq!(a.maintenance[0].cron, "30 1 * * 1");
    assert_eq!(a.maintenance[0].duration_ms, 45 * 60_000);
    assert_eq!(a.maintenance[0].timezone, chrono_tz::America::New_York);
    let red = a.codes.get(Colour::Red).unwrap();
    assert!(!red.dispatch && !a.codes.dispatches(Colour::Red));
    assert!(
        matches!(&red.target, CodeTarget::Notify(n) if matches!(&**n, Notify::Slack { hook } if hook == "http://127.0.0.1:1/s"))
    );
    let green = a.codes.get(Colour::Green).unwrap();
    let CodeTarget::Group { name, id } = &green.target else { panic!("group") };
    assert_eq!(name, "team");
    let kinds: Vec<&str> = r.registry.group_endpoints(*id).map(|(_, n)| n.kind()).collect();
    assert_eq!(kinds, ["webhook", "email"]);
    let kinds: Vec<&str> = r.registry.destinations(green).map(|n| n.kind()).collect();
    assert_eq!(kinds, ["webhook", "email"]);
    let kinds: Vec<&str> = r.registry.destinations(red).map(|n| n.kind()).collect();
    assert_eq!(kinds, ["slack"]);
    // Defaults on the others.
    let tcp = &m[1];
    assert!(tcp.enabled);
    assert_eq!((tcp.interval_ms(), tcp.timeout_ms()), (30_000, 10_000));
    assert_eq!(
        (tcp.unhealthy_threshold(), tcp.healthy_threshold(), tcp.recovery_max_attempts()),
        (1, 2, 1)
    );
    assert_eq!(tcp.id, "tcp");
    let Pulse::Tls(t) = &m[6].pulse_check.pulse else { panic!("tls") };
    assert_eq!(
        (t.port, t.warn_days, t.critical_days, t.server_name.as_deref()),
        (4, 20, 5, Some("sn"))
    );
    let Pulse::Icmp(ic) = &m[2].pulse_check.pulse else { panic!("icmp") };
    assert_eq!((ic.count, ic.ignore_privilege), (3, true));
    // The fields added for issue 18.
    assert_eq!(
        h.expected_headers(),
        [
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Version".to_owned(), "/^2\\./".to_owned())
        ]
    );
    let Pulse::Dns(d) = &m[3].pulse_check.pulse else { panic!("dns") };
    assert_eq!(
        (d.record_type, d.expect.as_deref()),
        (cpra_net::dns::DnsRecord::Mx, Some("mx.example.com"))
    );
    let Pulse::Grpc(g) = &m[5].pulse_check.pulse else { panic!("grpc") };
    let t = g.tls.as_deref().expect("tls: true");
    assert_eq!(
        (t.server_name.as_deref(), t.ca_file.as_deref(), t.insecure_skip_verify),
        (Some("sn"), Some("tests/fixtures/ca.pem"), true)
    );
    // 02:00+01:00 is 01:00Z; the window lasts three hours.
    assert_eq!(a.maintenance[1].once_bounds(), Some((1_772_326_800_000, 1_772_337_600_000)));
    // Cooldowns: the code's, else the monitor's, else the process's.
    assert_eq!(a.cooldown_ms_of(Colour::Red, 300_000), 60_000);
    assert_eq!(a.cooldown_ms_of(Colour::Yellow, 300_000), 600_000);
    assert_eq!(tcp.cooldown_ms_of(Colour::Red, 300_000), 300_000);
}

/// Load, write back as JSON, load again: the same monitors and registry.
fn round_trip(text: &str) {
    let (first, r1) = load_ok(text);
    let json = manifest_json(&first, &r1.registry, r1.version.as_deref()).to_string();
    let (second, r2) = load_str(&json, Some(Format::Json), &LoadOptions::default());
    assert!(r2.is_valid() && r2.problems.warnings == 0, "{:#?}\n{json}", r2.problems.kept);
    // Lines differ (one line of JSON); everything else is equal.
    let unline =
        |v: Vec<Monitor>| v.into_iter().map(|m| Monitor { line: 0, ..m }).collect::<Vec<_>>();
    assert_eq!(unline(first), unline(second));
    assert_eq!(r1.version, r2.version);
    let names = |r: &LoadReport| -> Vec<(String, Vec<String>)> {
        r.registry
            .groups
            .iter()
            .map(|(n, _)| {
                (
                    n.clone(),
                    r.registry
                        .group_endpoints(r.registry.group_by_name(n).unwrap())
                        .map(|(e, _)| e.clone())
                        .collect(),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect()
    };
    assert_eq!(names(&r1), names(&r2));
    let eps = |r: &LoadReport| {
        r.registry
            .endpoints
            .iter()
            .map(|(n, e)| (n.clone(), (**e).clone()))
            .collect::<HashMap<_, _>>()
    };
    assert_eq!(eps(&r1), eps(&r2));
}

#[test]
fn every_field_round_trips_through_json() {
    round_trip(ALL_FIELDS_YAML);
    round_trip(FLEET_YAML);
}

#[test]
fn the_example_fleet_is_valid_and_covers_every_type_and_kind() {
    let (m, r) = load_ok(FLEET_YAML);
    let types: std::collections::HashSet<&str> =
        m.iter().map(|m| m.pulse_check.pulse.type_name()).collect();
    assert_eq!(types.len(), PULSE_TYPES.len());
    let mut kinds: std::collections::HashSet<&str> =
        r.registry.endpoints.iter().map(|(_, n)| n.kind()).collect();
    for mon in &m {
        for c in mon.codes.by_colour.iter().flatten() {
            if let CodeTarget::Notify(n) = &c.target {
                kinds.insert(n.kind());
            }
        }
    }
    assert_eq!(kinds.len(), NOTIFY_KINDS.len(), "{kinds:?}");
    let actions: std::collections::HashSet<&str> =
        m.iter().filter_map(|m| m.intervention.as_ref()).map(|i| i.action.action_name()).collect();
    assert_eq!(actions.len(), INTERVENTION_ACTIONS.len());
}

#[test]
fn go_cpra_manifests_load() {
    let go = r#"
monitors:
  - name: legacy web
    pulse_check:
      type: HTTP
      interval: 1m
      max_failures: 3
      config:
        url: http://127.0.0.1:8080/
        headers:
          - "Authorization: Bearer abc"
          - "Accept: */*"
    intervention:
      action: docker
      target: {container: web}
    codes:
      RED: {notify: log}
      Yellow: {dispatch: false, notify: log}
      GREY: {notify: log}
"#;
    let (m, _) = load_ok(go);
    let w = &m[0];
    assert_eq!(w.unhealthy_threshold(), 3);
    assert_eq!(w.id, derive_id("legacy web"));
    assert!(is_valid_id(&w.id));
    let Pulse::Http(h) = &w.pulse_check.pulse else { panic!() };
    assert_eq!(h.headers[0], ("Authorization".into(), "Bearer abc".into()));
    assert_eq!(h.method.as_str(), "GET");
    assert!(h.expected_status.is_empty());
    assert!(w.codes.dispatches(Colour::Red));
    assert!(!w.codes.dispatches(Colour::Yellow));
    assert!(w.codes.dispatches(Colour::Gray));
    // Anchors and merge keys share blocks, as Go's YAML library allows.
    let shared = r#"
x-defaults: &defaults
  pulse_check: &pc {type: tcp, interval: 10s, config: {host: h, port: 1}}
  codes: {red: {notify: log}}
monitors:
  - <<: *defaults
    name: one
  - <<: *defaults
    name: two
    pulse_check: {<<: *pc, interval: 20s}
"#;
    let (m, r) = load(shared);
    assert!(r.is_valid(), "{:#?}", r.problems.kept);
    assert_eq!(r.problems.warnings, 1, "x-defaults is not read: {:#?}", r.problems.kept);
    assert_eq!(r.problems.kept[0].class, Class::IgnoredField);
    assert_eq!((m[0].interval_ms(), m[1].interval_ms()), (10_000, 20_000));
    assert!(m[1].codes.dispatches(Colour::Red));
    // A bare list of monitors at the top level, as some Go CPRA files are written.
    let (m, _) = load_ok("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n");
    assert_eq!(m.len(), 1);
}

#[test]
fn references_resolve_when_defined_after_the_monitors() {
    let text = "monitors:\n  - name: a\n    pulse_check: {type: tcp, config: {host: h, port: 1}}\n    codes: {red: {notify_group: g}}\nnotification_groups: {g: [e]}\nendpoints: {e: {type: slack, config: {hook: \"http://127.0.0.1:1/s\"}}}\n";
    let (m, r) = load_ok(text);
    let CodeTarget::Group { id, .. } = &m[0].codes.get(Colour::Red).unwrap().target else {
        panic!()
    };
    assert_eq!(r.registry.group_endpoints(*id).count(), 1);
}

#[test]
fn identical_blocks_are_stored_once() {
    let text = "monitors:\n".to_string()
        + &(0..10)
            .map(|i| format!("  - name: m{i}\n    pulse_check: {{type: http, config: {{url: \"http://h/\", headers: {{A: b}}}}}}\n    codes: {{red: {{notify: log}}}}\n"))
            .collect::<String>();
    let (m, r) = load_ok(&text);
    assert!(std::sync::Arc::ptr_eq(&m[0].codes, &m[9].codes));
    let (Pulse::Http(a), Pulse::Http(b)) = (&m[0].pulse_check.pulse, &m[9].pulse_check.pulse)
    else {
        panic!()
    };
    assert!(std::sync::Arc::ptr_eq(&a.headers, &b.headers));
    assert_eq!(r.distinct_codes, 1);
}

/// A repeated `codes` block is decoded once; but one with a problem is reported at every
/// monitor that repeats it, and one naming an environment variable is expanded each time.
#[test]
fn repeated_codes_blocks_report_their_problems_every_time() {
    let monitor = |i: usize, codes: &str| {
        format!("  - name: m{i}\n    pulse_check: {{type: tcp, config: {{host: h, port: 1}}}}\n    codes: {codes}\n")
    };
    let mut text = "monitors:\n".to_string();
    for i in 0..3 {
        text += &monitor(i, "{red: {notify_group: g}, purple: {notify: log}}");
    }
    for i in 3..6 {
        text += &monitor(i, "{red: {notify_group: g}}");
    }
    text += "notification_groups: {g: []}\n";
    let (m, r) = load(&text);
    let unknown: Vec<_> = r.problems.kept.iter().filter(|d| d.message.contains("purple")).collect();
    assert_eq!(unknown.len(), 3, "{:#?}", r.problems.kept);
    assert_eq!(unknown[2].monitor.as_deref(), Some("m2"));
    assert_eq!(unknown[2].pos.line, 10);
    assert_eq!(m.len(), 3);
    assert!(std::sync::Arc::ptr_eq(&m[0].codes, &m[2].codes));

    let text = "monitors:\n".to_string()
        + &monitor(0, "{red: {notify: slack, config: {hook: '${HOOK_A}'}}}")
        + &monitor(1, "{red: {notify: slack, config: {hook: '${HOOK_A}'}}}");
    let env: HashMap<String, String> = HashMap::new();
    let (_, r) = load_str(&text, None, &LoadOptions { env: &env, ..LoadOptions::default() });
    assert_eq!(r.problems.errors, 2, "{:#?}", r.problems.kept);
}

#[test]
fn env_variables_are_expanded() {
    let mut env = HashMap::new();
    env.insert("CPRA_TEST_HOST".to_string(), "db.internal".to_string());
    let opts = LoadOptions { env: &env, ..LoadOptions::default() };
    let (m, r) = load_str("monitors:\n  - name: a\n    pulse_check: {type: tcp, config: {host: \"${CPRA_TEST_HOST}\", port: 1}}\n", None, &opts);
    assert!(r.is_valid());
    let Pulse::Tcp(t) = &m[0].pulse_check.pulse else { panic!() };
    assert_eq!(t.host, "db.internal");
}

/// A value from the environment is a secret's place: a problem with it is reported without
/// repeating it, in every kind of message that quotes a value.
#[test]
fn problems_with_an_env_value_do_not_repeat_it() {
    let mut env = HashMap::new();
    env.insert("CPRA_SECRET".to_string(), "hunter2-s3cret".to_string());
    let opts = LoadOptions { env: &env, ..LoadOptions::default() };
    let text = "monitors:\n  - name: a\n    enabled: \"${CPRA_SECRET}\"\n    pulse_check:\n      type: http\n      interval: \"x${CPRA_SECRET}\"\n      retries: \"${CPRA_SECRET}\"\n      config:\n        url: \"http://h:99999/?token=${CPRA_SECRET}\"\n        method: \"G ${CPRA_SECRET}\"\n        headers: {\"X-A\": \"${CPRA_SECRET}\\u0001\"}\n    codes:\n      red: {notify: email, config: {server: \"s:25\", from: \"${CPRA_SECRET}\", to: [\"${CPRA_SECRET} x\"]}}\n";
    let (_, r) = load_str(text, None, &opts);
    assert!(r.problems.errors >= 6, "{:#?}", r.problems.kept);
    for d in &r.problems.kept {
        let shown = format!("{d} {}", d.to_json());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    // The literal part of a value is still shown, the secret part masked.
    assert!(r.problems.kept.iter().any(|d| d.message.contains("'x***'")), "{:#?}", r.problems.kept);
}

/// Logs and alerts show a monitor with its secrets masked, computed at load; the values the
/// checks send stay as written.
#[test]
fn monitors_are_shown_with_their_secrets_masked() {
    let mut env = HashMap::new();
    env.insert("CPRA_TOKEN".to_string(), "t0ken".to_string());
    env.insert("CPRA_DB".to_string(), "db.internal".to_string());
    let opts = LoadOptions { env: &env, ..LoadOptions::default() };
    let text = "monitors:\n\
        - name: plain\n  pulse_check: {type: http, config: {url: \"http://127.0.0.1:8080/health\"}}\n\
        - name: query\n  pulse_check: {type: http, config: {url: \"http://127.0.0.1:8080/health?token=${CPRA_TOKEN}\"}}\n\
        - name: db ${CPRA_DB}\n  pulse_check: {type: tcp, config: {host: \"${CPRA_DB}\", port: 5432}}\n  intervention: {action: webhook, target: {url: \"http://ops/restart/${CPRA_TOKEN}?k=1\"}}\n";
    let (m, r) = load_str(text, None, &opts);
    assert!(r.is_valid(), "{:#?}", r.problems.kept);
    assert_eq!(m[0].shown, None, "nothing to mask costs nothing");
    assert_eq!(m[0].shown_target(), "http://127.0.0.1:8080/health");
    assert_eq!(m[1].shown_target(), "http://127.0.0.1:8080/health?token=***");
    let Pulse::Http(h) = &m[1].pulse_check.pulse else { panic!() };
    assert_eq!(h.url, "http://127.0.0.1:8080/health?token=t0ken", "sent as written");
    assert_eq!(m[2].shown_name(), "db ***");
    assert!(m[2].id.contains("db.internal"), "placement reads the real id: {}", m[2].id);
    assert!(m[2].shown_id().starts_with("db-***-"), "{}", m[2].shown_id());
    assert_eq!(m[2].shown_target(), "***:5432");
    assert_eq!(m[2].shown_intervention().unwrap(), "webhook POST http://ops/restart/***?k=***");
    // The JSON loader's own decoder shows the same.
    let json = r#"{"monitors":[{"name":"q","pulse_check":{"type":"http","config":{"url":"http://h/x?key=v"}}}]}"#;
    let (m, r) = load_str(json, None, &LoadOptions::default());
    assert!(r.is_valid());
    assert_eq!(m[0].shown_target(), "http://h/x?key=***");
}

/// (manifest monitors block, expected class, text expected in message or hint)
const BAD: &[(&str, Class, &str)] = &[
    ("- name: a\n  pulse_check: {type: htp, config: {url: x}}", Class::UnknownType, "did you mean 'http'?"),
    ("- name: a\n  pulse_check: {type: tcp, config: {port: 1}}", Class::Missing, "missing required field 'host'"),
    ("- pulse_check: {type: tcp, config: {host: h, port: 1}}", Class::Missing, "missing required field 'name'"),
    ("- name: a", Class::Missing, "missing required field 'pulse_check'"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: abc}}", Class::WrongType, "not a whole number"),
    ("- name: a\n  enabled: maybe\n  pulse_check: {type: tcp, config: {host: h, port: 1}}", Class::WrongType, "not a boolean"),
    ("- name: a\n  pulse_check: {type: tcp, config: [1]}", Class::WrongType, "expected a mapping"),
    ("- name: a\n  pulse_check: {type: tcp, interval: 30, config: {host: h, port: 1}}", Class::BadDuration, "without a unit"),
    ("- name: a\n  pulse_check: {type: tcp, interval: 0s, config: {host: h, port: 1}}", Class::BadDuration, "greater than 0"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {red: {notify: slak}}", Class::UnknownKind, "did you mean 'slack'?"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {purple: {notify: log}}", Class::UnknownType, "unknown colour"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  intervention: {action: reboot}", Class::UnknownKind, "unknown intervention action"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 2}}", Class::DuplicateId, "duplicate id 'a'"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {red: {notify_group: nope}}", Class::UnknownReference, "notify_group 'nope' does not exist"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  maintenance: [{cron: \"0 2 * *\", duration: 1h}]", Class::BadCron, "expected 5"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  maintenance: [{cron: \"0 2 * * *\", duration: 1h, timezone: Mars/Base}]", Class::BadTimezone, "unknown timezone 'Mars/Base'"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: \"${CPRA_SURELY_UNSET_VAR}\", port: 1}}", Class::UnsetVariable, "'CPRA_SURELY_UNSET_VAR' is not set"),
    ("- name: a\n  id: \"-bad\"\n  pulse_check: {type: tcp, config: {host: h, port: 1}}", Class::BadValue, "does not match"),
    ("- name: a\n  pulse_check: {type: http, config: {url: \"http://h/\", body_regex: \"(\"}}", Class::BadValue, "bad regular expression"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}\n", Class::Syntax, "YAML syntax error"),
    ("- name: a\n  pulse_check: {type: tcp, interval: 745h, config: {host: h, port: 1}}", Class::BadValue, "interval: 745h is outside"),
    ("- name: a\n  pulse_check: {type: tcp, interval: 1s, timeout: 745h, config: {host: h, port: 1}}", Class::BadValue, "timeout: 745h is longer"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {red: {notify: slack, config: {hook: hooks.slack.com/services/T0/B0/x}}}", Class::BadValue, "hook: not a URL: it has no scheme"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {red: {notify: webhook, config: {url: \"http://h/\", headers: {X-A: \"a\\r\\nX-B: b\"}}}}", Class::BadValue, "line break (CR or LF)"),
    ("- name: a\n  pulse_check: {type: http, config: {url: \"https://h/\", ca_file: /surely/not/here.pem}}", Class::BadValue, "ca_file: cannot use it"),
    ("- name: a\n  pulse_check: {type: http, config: {url: \"https://h/\", headers: [\"Bad Name: 1\"]}}", Class::BadValue, "not an HTTP token"),
    ("- name: a\n  pulse_check: {type: dns, config: {host: h, server: ns.example}}", Class::BadValue, "must be an IP address"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  intervention: {action: systemd, target: {unit: \"-x\"}}", Class::BadValue, "unit: systemd unit"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  intervention: {action: kubernetes, target: {name: Web_1}}", Class::BadValue, "is not a valid object name"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {red: {notify: email, config: {server: \"s:25\", from: a@b, to: [\"x y\"]}}}", Class::BadValue, "is not a mail address"),
    ("- name: a\n  pulse_check: {type: tcp, intervall: 5s, config: {host: h, port: 1}}", Class::UnknownField, "did you mean 'interval'?"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1, host: g}}", Class::DuplicateKey, "key 'host' is given twice"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {red: {notify: webhook, config: {url: \"http://h/\", headers: {A: 1, A: 2}}}}", Class::DuplicateKey, "key 'A' is given twice"),
    ("- name: a\n  pulse_check: {type: docker, config: {container: \"web 1\"}}", Class::BadValue, "container: invalid container name"),
    ("- name: a\n  pulse_check: {type: tls, config: {host: h, warn_days: 5, critical_days: 10}}", Class::BadValue, "critical_days (10) is more than warn_days (5)"),
    ("- name: a\n  pulse_check: {type: tls, config: {host: h, server_name: \"bad name\"}}", Class::BadValue, "server_name: TLS: `bad name` is not a valid server name"),
    ("- name: a\n  pulse_check: {type: dns, config: {host: \"a..b\"}}", Class::BadValue, "host: invalid DNS name"),
    ("- name: a\n  pulse_check: {type: grpc, config: {host: \"a b\", port: 1}}", Class::BadValue, "host: invalid grpc authority"),
    ("- name: a\n  pulse_check: {type: grpc, config: {host: h, port: 1, server_name: x}}", Class::BadValue, "server_name: only used over TLS"),
    ("- name: a\n  pulse_check: {type: grpc, config: {host: h, port: 1, tls: true, server_name: \"bad name\"}}", Class::BadValue, "server_name: TLS: `bad name` is not a valid server name"),
    ("- name: a\n  pulse_check: {type: grpc, config: {host: h, port: 1, tls: true, ca_file: /surely/not/here.pem}}", Class::BadValue, "ca_file: cannot use it"),
    ("- name: a\n  pulse_check: {type: dns, config: {host: h, server: 127.0.0.1, record_type: PTR}}", Class::BadValue, "unknown DNS record type 'PTR'"),
    ("- name: a\n  pulse_check: {type: dns, config: {host: h, server: 127.0.0.1, record_type: AAAA, expect: 10.0.0.1}}", Class::BadValue, "expect: `10.0.0.1` is not an IPv6 address"),
    ("- name: a\n  pulse_check: {type: http, config: {url: \"http://h/\", expected_headers: {X-A: \"/(/\"}}}", Class::BadValue, "bad regular expression"),
    ("- name: a\n  pulse_check: {type: http, config: {url: \"http://h/\", expected_headers: [\"X-A: 1\"]}}", Class::WrongType, "expected a mapping of header names"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  cooldown: 9h", Class::BadValue, "cooldown: 9h is longer than 8h"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  codes: {red: {notify: log, cooldown: soon}}", Class::BadDuration, "bad duration"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  maintenance: [{start: \"2026-03-01 02:00\", end: \"2026-03-01T03:00:00Z\"}]", Class::BadValue, "start: '2026-03-01 02:00' is not an RFC 3339 time"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  maintenance: [{start: \"2026-03-01T04:00:00Z\", end: \"2026-03-01T03:00:00Z\"}]", Class::BadValue, "end: the window ends"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  maintenance: [{start: \"2026-03-01T02:00:00Z\", end: \"2026-03-01T03:00:00Z\", timezone: UTC}]", Class::BadValue, "timezone: a window with start and end has no timezone"),
    ("- name: a\n  pulse_check: {type: tcp, config: {host: h, port: 1}}\n  maintenance: [{start: \"2026-03-01T02:00:00Z\"}]", Class::Missing, "missing required field 'end'"),
];

#[test]
fn every_error_class_gives_its_message() {
    for (block, class, text) in BAD {
        let manifest = format!(
            "monitors:\n{}\n",
            block.lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        let (_, r) = load(&manifest);
        assert!(!r.is_valid(), "{block}");
        let d = r
            .problems
            .kept
            .iter()
            .find(|d| d.class == *class)
            .unwrap_or_else(|| panic!("no {class:?} for {block}: {:#?}", r.problems.kept));
        let all = format!("{d}");
        assert!(all.contains(text), "'{text}' not in: {all}");
        assert!(d.pos.line >= 1 && d.pos.column >= 1, "{d:?}");
    }
}

/// A colour given twice is one mistake and one message: as a key given twice when written
/// the same, as a colour given twice when written in two cases.
#[test]
fn a_colour_given_twice_is_reported_once() {
    let codes = |a: &str, b: &str| {
        format!(
            "monitors:\n  - name: a\n    pulse_check: {{type: tcp, config: {{host: h, port: 1}}}}\n    codes: {{{a}: {{notify: log}}, {b}: {{notify: log}}}}\n"
        )
    };
    for (a, b, class, text) in [
        ("red", "red", Class::DuplicateKey, "key 'red' is given twice in one mapping"),
        ("red", "RED", Class::BadValue, "colour 'red' is given twice"),
    ] {
        let (_, r) = load(&codes(a, b));
        assert_eq!(r.problems.kept.len(), 1, "{:#?}", r.problems.kept);
        let d = &r.problems.kept[0];
        assert_eq!(d.class, class);
        assert!(d.message.starts_with(text), "{d}");
        assert_eq!((d.pos.line, d.pos.column), (4, 33));
    }
}

/// A JSON key given twice, at any level, is the same error on the direct path and the
/// general one, at the second key, with the monitor's name.
#[test]
fn json_keys_given_twice_are_errors_on_both_paths() {
    let cases = [
        (
            "{\"name\": \"web\", \"name\": \"db\", \"pulse_check\": {\"type\": \"tcp\", \"config\": {\"host\": \"h\", \"port\": 1}}}",
            "name",
        ),
        (
            "{\"name\": \"web\", \"pulse_check\": {\"type\": \"tcp\", \"type\": \"tcp\", \"config\": {\"host\": \"h\", \"port\": 1}}}",
            "type",
        ),
        (
            "{\"name\": \"web\", \"pulse_check\": {\"type\": \"tcp\", \"config\": {\"host\": \"h\", \"port\": 1, \"host\": \"g\"}}}",
            "host",
        ),
        (
            "{\"name\": \"web\", \"pulse_check\": {\"type\": \"http\", \"config\": {\"url\": \"http://h/\", \"headers\": {\"A\": \"1\", \"A\": \"2\"}}}}",
            "A",
        ),
        (
            "{\"name\": \"web\", \"pulse_check\": {\"type\": \"tcp\", \"config\": {\"host\": \"h\", \"port\": 1}}, \"codes\": {\"red\": {\"notify\": \"log\", \"notify\": \"log\"}}}",
            "notify",
        ),
    ];
    for (monitor, key) in cases {
        // A clean monitor first, so the direct decoder is warm (its caches filled).
        let text = format!(
            "{{\"monitors\": [{{\"name\": \"ok\", \"pulse_check\": {{\"type\": \"tcp\", \"config\": {{\"host\": \"h\", \"port\": 1}}}}}},\n{monitor}]}}"
        );
        let second = monitor.rfind(&format!("\"{key}\"")).unwrap() + 1;
        let mut seen = Vec::new();
        for direct_json in [true, false] {
            let opts = LoadOptions { direct_json, ..LoadOptions::default() };
            let (monitors, r) = load_str(&text, None, &opts);
            assert_eq!(monitors.len(), 1, "{key}");
            assert_eq!(r.problems.errors, 1, "{key}: {:#?}", r.problems.kept);
            let d = &r.problems.kept[0];
            assert_eq!(d.class, Class::DuplicateKey, "{key}");
            assert!(d.message.starts_with(&format!("key '{key}' is given twice")), "{d}");
            assert_eq!((d.pos.line, d.pos.column as usize), (2, second), "{key}");
            assert_eq!(d.monitor.as_deref(), Some("web"), "{key}");
            seen.push(d.to_string());
        }
        assert_eq!(seen[0], seen[1], "{key}");
    }
}

#[test]
fn messages_name_the_position_monitor_and_path() {
    let (_, r) = load(
        "monitors:\n  - name: web\n    pulse_check:\n      type: htp\n      config: {url: x}\n",
    );
    let d = &r.problems.kept[0];
    assert_eq!((d.pos.line, d.pos.column), (4, 13));
    assert_eq!(d.monitor.as_deref(), Some("web"));
    assert_eq!(d.path, "monitors[0].pulse_check.type");
    assert_eq!(
        d.to_string(),
        "error: <input>:4:13: monitor 'web': unknown pulse type 'htp' at monitors[0].pulse_check.type; expected one of http, tcp, icmp, dns, udp, grpc, tls, docker; did you mean 'http'?"
    );
}

#[test]
fn unknown_fields_are_errors_unless_lenient_and_timeout_over_interval_is_a_warning() {
    let text = "monitors:\n  - name: a\n    colour: red\n    pulse_check: {type: tcp, interval: 5s, timeout: 10s, config: {host: h, port: 1, hots: x}}\n";
    let (m, r) = load(text);
    assert!(!r.is_valid());
    assert!(m.is_empty());
    assert_eq!((r.problems.errors, r.problems.warnings), (2, 1), "{:#?}", r.problems.kept);
    let d = r.problems.kept.iter().find(|d| d.message == "unknown field 'hots'").unwrap();
    assert_eq!((d.level, d.pos.line, d.pos.column), (Level::Error, 4, 85));
    assert!(d.hint.starts_with("did you mean 'host'?"), "{d}");
    let (m, r) = load_str(text, None, &LoadOptions { lenient: true, ..LoadOptions::default() });
    assert!(r.is_valid());
    assert_eq!(m.len(), 1);
    assert_eq!(r.problems.warnings, 3, "{:#?}", r.problems.kept);
    assert!(r.problems.kept.iter().any(|d| d.class == Class::TimeoutOverInterval));
    assert!(r.problems.kept.iter().any(|d| d.to_string().contains("did you mean 'host'?")));
}

#[test]
fn fields_the_go_cpra_reads_and_cpra_ignores_are_warnings_that_say_why() {
    let monitor = |name: &str, intervention: &str| {
        format!(
            "  - name: {name}\n    pulse_check: {{type: tcp, config: {{host: h, port: 1}}}}\n    \
             intervention: {intervention}\n"
        )
    };
    let text = String::from("monitors:\n")
        + &monitor("a", "{action: docker, target: {type: docker, container: web}}")
        + &monitor("b", "{action: webhook, target: {type: webhook, url: \"http://h/\"}}")
        + &monitor("c", "{action: systemd, target: {type: systemd, unit: u.service}}")
        + &monitor("d", "{action: kubernetes, target: {type: kubernetes, name: web}}")
        // An aws target's `type` is one of its fields: no warning.
        + &monitor(
            "e",
            "{action: aws, target: {type: ec2, region: us-east-1, instance_id: i-1234abcd}}",
        );
    let (m, r) = load(&text);
    assert!(r.is_valid(), "{:#?}", r.problems.kept);
    assert_eq!((m.len(), r.problems.warnings), (5, 4), "{:#?}", r.problems.kept);
    for d in &r.problems.kept {
        assert_eq!(d.class, Class::IgnoredField);
        assert!(d.hint.contains("Go CPRA"), "{d}");
    }
}

#[test]
fn intervention_retries_past_the_bound_are_a_warning_and_get_the_bound() {
    let text =
        "monitors:\n  - name: a\n    pulse_check: {type: tcp, config: {host: h, port: 1}}\n    \
                intervention: {action: docker, retries: 9, target: {container: web}}\n";
    let (m, r) = load(text);
    assert!(r.is_valid(), "{:#?}", r.problems.kept);
    assert_eq!(r.problems.warnings, 1);
    assert!(r.problems.kept[0].to_string().contains("9 retries"), "{}", r.problems.kept[0]);
    let max = crate::limits::MAX_INTERVENTION_RETRIES;
    assert_eq!(m[0].intervention.as_ref().unwrap().retries, Some(max));
}

/// `retries` is read in `pulse_check` and in `config` for every type, with the Go CPRA's
/// precedence (`applyDefaultRetries`): `config.retries` above 0 wins, else `pulse_check.retries`,
/// else none (one attempt). The JSON fast path agrees with the general one.
#[test]
fn retries_are_read_for_every_pulse_type_with_the_go_precedence() {
    let configs = [
        ("http", "url: http://127.0.0.1/"),
        ("tcp", "host: h, port: 1"),
        ("icmp", "host: 127.0.0.1"),
        ("dns", "host: example.com, server: 127.0.0.1"),
        ("udp", "host: h, port: 1"),
        ("grpc", "host: h, port: 1"),
        ("tls", "host: example.com"),
        ("docker", "container: web"),
    ];
    // (pulse_check.retries, config.retries) -> retries per check.
    let cases = [
        (None, None, 0),
        (Some(1), None, 1),
        (None, Some(2), 2),
        (Some(1), Some(2), 2),
        (Some(2), Some(0), 2),
        (Some(0), Some(1), 1),
    ];
    for (kind, fields) in configs {
        for (top, inner, want) in cases {
            let top = top.map_or(String::new(), |r| format!("retries: {r}, "));
            let inner = inner.map_or(String::new(), |r| format!(", retries: {r}"));
            let yaml = format!(
                "monitors:\n  - name: a\n    pulse_check: {{type: {kind}, {top}config: {{{fields}{inner}}}}}\n"
            );
            let (m, r) = load(&yaml);
            assert!(r.is_valid() && r.problems.kept.is_empty(), "{yaml}: {:#?}", r.problems.kept);
            assert_eq!(m[0].pulse_check.retries_per_check(), want, "{yaml}");
            // Written back as JSON and read again: the same monitor.
            let json = manifest_json(&m, &r.registry, None).to_string();
            let (again, r) = load_str(&json, Some(Format::Json), &LoadOptions::default());
            assert!(r.is_valid(), "{json}");
            assert_eq!(again[0].pulse_check, m[0].pulse_check, "{json}");
        }
    }
}

#[test]
fn retries_past_what_a_check_makes_are_a_warning_and_capped() {
    let text = "monitors:\n  - name: a\n    pulse_check: {type: tcp, retries: 7, config: {host: h, port: 1, retries: 100000}}\n";
    let (m, r) = load(text);
    assert!(r.is_valid(), "{:#?}", r.problems.kept);
    assert_eq!(r.problems.warnings, 2, "{:#?}", r.problems.kept);
    for d in &r.problems.kept {
        assert!(d.path.ends_with("retries") && d.message.contains("at most 2"), "{d}");
    }
    assert_eq!(m[0].pulse_check.retries_per_check().min(crate::limits::MAX_RETRIES), 2);
}

#[test]
fn values_past_the_runtime_bounds_are_refused_at_load() {
    let big = "x".repeat(cpra_net::limits::MAX_REQUEST_BYTES + 1);
    let (_, r) = load(&format!(
        "monitors:\n  - name: a\n    pulse_check: {{type: http, config: {{url: \"http://h/\", body: {big}}}}}\n"
    ));
    assert!(
        r.problems.kept.iter().any(|d| d.path.ends_with("config.body")
            && d.message.contains("more than the 64 KiB a request may take")),
        "{:#?}",
        r.problems.kept
    );
    // Just under the bound with the body alone: the request line and CPRA's own headers
    // would take it over, so the loader refuses it rather than the first check.
    let near = "x".repeat(cpra_net::limits::MAX_REQUEST_BYTES - 40);
    let (_, r) = load(&format!(
        "monitors:\n  - name: a\n    pulse_check: {{type: http, config: {{url: \"http://h/\", body: {near}}}}}\n"
    ));
    assert!(!r.is_valid(), "a request the runtime would refuse was accepted");
    let (_, r) = load(&format!(
        "monitors:\n  - name: a\n    pulse_check: {{type: udp, config: {{host: h, port: 1, payload: {big}}}}}\n"
    ));
    assert!(
        r.problems.kept.iter().any(|d| d.message.starts_with("payload: udp payload is")),
        "{:#?}",
        r.problems.kept
    );
}

#[test]
fn many_problems_are_all_counted_and_the_first_kept_up_to_the_bound() {
    // One error and one warning per monitor: more of each than the bound keeps.
    let n = MAX_PROBLEMS + 50;
    let text = "monitors:\n".to_string()
        + &(0..n)
            .map(|i| {
                format!(
                    "  - name: m{i}\n    pulse_check: {{type: tcp, interval: 1s, timeout: 2s, config: {{host: h, port: 0}}}}\n"
                )
            })
            .collect::<String>();
    let (m, r) = load(&text);
    assert!(m.is_empty());
    assert_eq!((r.problems.errors, r.problems.warnings), (n, n));
    assert_eq!(r.problems.kept.len(), MAX_PROBLEMS);
    // Kept in file order: the first half of the bound's monitors, each with both problems.
    let last = &r.problems.kept[MAX_PROBLEMS - 1];
    assert_eq!(last.monitor.as_deref(), Some(format!("m{}", MAX_PROBLEMS / 2 - 1).as_str()));
    assert_eq!(r.monitors_seen, n);

    // A syntax error after them ends the read and is kept anyway: it says why the rest of
    // the file was not checked.
    let (_, r) = load(&(text + "  - name: [unclosed\n"));
    assert_eq!(r.problems.kept.len(), MAX_PROBLEMS + 1);
    assert_eq!(r.problems.kept[MAX_PROBLEMS].class, Class::Syntax);
    assert_eq!(r.problems.kept[MAX_PROBLEMS].pos.line, 2 * n as u32 + 3);
}

#[test]
fn json_errors_have_positions() {
    let (_, r) = load_str("{\"monitors\": [\n  {\"name\": \"a\", \"pulse_check\": {\"type\": \"tcpp\", \"config\": {\"host\": \"h\", \"port\": 1}}}]}", None, &LoadOptions::default());
    let d = &r.problems.kept[0];
    assert_eq!(d.class, Class::UnknownType);
    assert_eq!((d.pos.line, d.pos.column), (2, 41));
}

fn write_gz(path: &std::path::Path, bytes: &[u8], level: flate2::Compression) {
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), level);
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap();
}

#[test]
fn gzip_files_load() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("fleet.yaml.gz", FLEET_YAML.to_string()),
        ("fleet.json.gz", {
            let (m, r) = load_ok(FLEET_YAML);
            manifest_json(&m, &r.registry, None).to_string()
        }),
    ] {
        let path = dir.path().join(name);
        write_gz(&path, text.as_bytes(), flate2::Compression::default());
        let mut n = 0;
        let r = load_path(&path, &LoadOptions::default(), |_| n += 1).unwrap();
        assert!(r.is_valid(), "{name}: {:#?}", r.problems.kept);
        assert_eq!(n, 8, "{name}");
    }
    // A gzipped file without a telling extension is sniffed.
    let path = dir.path().join("fleet.dat");
    write_gz(&path, FLEET_YAML.as_bytes(), flate2::Compression::fast());
    assert!(load_path(&path, &LoadOptions::default(), |_| {}).unwrap().is_valid());
    // Truncated gzip: an error, not a panic.
    let bytes = std::fs::read(&path).unwrap();
    let r = load_bytes(
        bytes[..bytes.len() / 2].to_vec(),
        None,
        "cut.gz",
        &LoadOptions::default(),
        |_| {},
    );
    assert!(!r.is_valid());
}

#[test]
fn a_load_counts_the_bytes_it_reads_from_the_file() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("fleet.yaml");
    std::fs::write(&plain, FLEET_YAML).unwrap();
    let gz = dir.path().join("fleet.yaml.gz");
    write_gz(&gz, FLEET_YAML.as_bytes(), flate2::Compression::default());
    for path in [plain, gz] {
        let read = Arc::new(AtomicU64::new(0));
        let opts = LoadOptions { read_bytes: Some(Arc::clone(&read)), ..LoadOptions::default() };
        let (mut n, mut seen_before_end) = (0, Vec::new());
        let r = load_path(&path, &opts, |_| {
            n += 1;
            seen_before_end.push(read.load(Ordering::Relaxed));
        })
        .unwrap();
        assert!(r.is_valid());
        assert_eq!(n, 8);
        // The whole file (its compressed bytes for the .gz), and no byte twice.
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(read.load(Ordering::Relaxed), size, "{}", path.display());
        assert!(seen_before_end.iter().all(|&b| b > 0 && b <= size));
    }
}

#[test]
fn unreadable_files_are_load_errors() {
    assert!(load_path(
        std::path::Path::new("/nonexistent/cpra.yaml"),
        &LoadOptions::default(),
        |_| {}
    )
    .is_err());
    let dir = tempfile::tempdir().unwrap();
    assert!(load_path(dir.path(), &LoadOptions::default(), |_| {}).is_err());
}

#[test]
fn maintenance_window_on_the_monitor() {
    let (m, _) = load_ok(FLEET_YAML);
    let w = m.iter().find(|m| !m.maintenance.is_empty()).unwrap();
    // 2026-01-04 is a Sunday; 02:00 Paris = 01:00 UTC.
    let sat = chrono::NaiveDate::from_ymd_opt(2026, 1, 3)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let (start, end) = w.next_maintenance_window(sat).unwrap();
    let want = chrono::NaiveDate::from_ymd_opt(2026, 1, 4)
        .unwrap()
        .and_hms_opt(1, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    assert_eq!((start, end), (want, want + 2 * 3_600_000));
}

fn generated(monitors: u64, format: Format, seed: u64, mix: &str) -> Vec<u8> {
    let opts = GenOptions {
        monitors,
        format,
        targets: vec!["127.0.0.1:9000".into(), "127.0.0.1:9001".into()],
        mix: parse_mix(mix).unwrap(),
        interval: "15s".into(),
        seed,
        ..GenOptions::default()
    };
    let mut out = Vec::new();
    write_manifest(&opts, &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn generated_manifests_load(n in 0u64..40, seed in any::<u64>(), json in any::<bool>(), w in proptest::collection::vec(0u32..5, 6)) {
        let format = if json { Format::Json } else { Format::Yaml };
        let names = ["http", "tcp", "icmp", "dns", "udp", "tls"];
        let mut mix: Vec<String> = names.iter().zip(&w).map(|(n, w)| format!("{n}={w}")).collect();
        mix.push("http=1".into());
        let bytes = generated(n, format, seed, &mix.join(","));
        let mut count = 0;
        let r = load_bytes(bytes, None, "gen", &LoadOptions::default(), |_| count += 1);
        prop_assert!(r.is_valid(), "{:#?}", r.problems.kept);
        prop_assert_eq!(count as u64, n);
    }

    #[test]
    fn byte_mutations_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        which in 0usize..3,
    ) {
        let mut bytes = match which {
            0 => FLEET_YAML.as_bytes().to_vec(),
            1 => ALL_FIELDS_YAML.as_bytes().to_vec(),
            _ => generated(5, Format::Json, 7, "http=1,tcp=1,tls=1"),
        };
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        let r = load_bytes(bytes, None, "mutated", &LoadOptions::default(), |_| {});
        // Every problem is counted, and the first ones up to the bound are kept.
        prop_assert_eq!(r.problems.kept.len(), r.problems.total().min(MAX_PROBLEMS));
// Past the bound nothing more is kept, so a kept warning count above the total is a
        // miscount.
        prop_assert!(
            r.problems.kept.iter().filter(|d| d.level == Level::Warning).count()
                <= r.problems.warnings
        );
    }
}

use super::decode::{
    ALERTMANAGER_FIELDS, AWS_TARGET_FIELDS, CODE_FIELDS, DATADOG_FIELDS, DISCORD_FIELDS,
    DNS_FIELDS, DNS_RECORD_TYPES, DOCKER_PULSE_FIELDS, DOCKER_TARGET_FIELDS, EMAIL_FIELDS,
    ENDPOINT_FIELDS, GRPC_FIELDS, HTTP_FIELDS, ICMP_FIELDS, INTERVENTION_FIELDS,
    KUBERNETES_TARGET_FIELDS, LOG_FIELDS, MAINTENANCE_FIELDS, MATTERMOST_FIELDS, MONITOR_FIELDS,
    OPSGENIE_FIELDS, PAGERDUTY_FIELDS, PULSE_CHECK_FIELDS, PUSHOVER_FIELDS, SLACK_FIELDS,
    SYSTEMD_TARGET_FIELDS, TCP_FIELDS, TEAMS_FIELDS, TELEGRAM_FIELDS, TLS_FIELDS, TOP_FIELDS,
    TWILIO_FIELDS, UDP_FIELDS, VICTOROPS_FIELDS, WEBHOOK_NOTIFY_FIELDS, WEBHOOK_TARGET_FIELDS,
};

/// Where a field list is documented in docs/configuration.md: all the text under a heading
/// (to the next heading of any level), or one row of a table in it (a notify kind, an action).
enum DocPlace {
    Section(&'static str),
    Row(&'static str, &'static str),
}

/// Every field list and its place in the docs: a field mentioned only in another section (an
/// http field in the tls table) is not documented where a reader looks for it.
const FIELD_DOCS: &[(&[&str], DocPlace)] = &[
    (TOP_FIELDS, DocPlace::Section("## Top level")),
    (ENDPOINT_FIELDS, DocPlace::Section("### Endpoint")),
    (MONITOR_FIELDS, DocPlace::Section("## Monitor")),
    (PULSE_CHECK_FIELDS, DocPlace::Section("### `pulse_check`")),
    (HTTP_FIELDS, DocPlace::Section("#### `http`")),
    (TCP_FIELDS, DocPlace::Section("#### `tcp`")),
    (ICMP_FIELDS, DocPlace::Section("#### `icmp`")),
    (DNS_FIELDS, DocPlace::Section("#### `dns`")),
    (UDP_FIELDS, DocPlace::Section("#### `udp`")),
    (GRPC_FIELDS, DocPlace::Section("#### `grpc`")),
    (TLS_FIELDS, DocPlace::Section("#### `tls`")),
    (DOCKER_PULSE_FIELDS, DocPlace::Section("#### `docker`")),
    (CODE_FIELDS, DocPlace::Section("### `codes`")),
    (INTERVENTION_FIELDS, DocPlace::Section("### `intervention`")),
    (DOCKER_TARGET_FIELDS, DocPlace::Row("### `intervention`", "docker")),
    (WEBHOOK_TARGET_FIELDS, DocPlace::Row("### `intervention`", "webhook")),
    (SYSTEMD_TARGET_FIELDS, DocPlace::Row("### `intervention`", "systemd")),
    (KUBERNETES_TARGET_FIELDS, DocPlace::Row("### `intervention`", "kubernetes")),
    (AWS_TARGET_FIELDS, DocPlace::Row("### `intervention`", "aws")),
    (MAINTENANCE_FIELDS, DocPlace::Section("### `maintenance`")),
    (LOG_FIELDS, DocPlace::Row("#### Notify kinds", "log")),
    (WEBHOOK_NOTIFY_FIELDS, DocPlace::Row("#### Notify kinds", "webhook")),
    (SLACK_FIELDS, DocPlace::Row("#### Notify kinds", "slack")),
    (PAGERDUTY_FIELDS, DocPlace::Row("#### Notify kinds", "pagerduty")),
    (EMAIL_FIELDS, DocPlace::Row("#### Notify kinds", "email")),
    (DISCORD_FIELDS, DocPlace::Row("#### Notify kinds", "discord")),
    (TELEGRAM_FIELDS, DocPlace::Row("#### Notify kinds", "telegram")),
    (OPSGENIE_FIELDS, DocPlace::Row("#### Notify kinds", "opsgenie")),
    (MATTERMOST_FIELDS, DocPlace::Row("#### Notify kinds", "mattermost")),
    (TEAMS_FIELDS, DocPlace::Row("#### Notify kinds", "teams")),
    (ALERTMANAGER_FIELDS, DocPlace::Row("#### Notify kinds", "alertmanager")),
    (VICTOROPS_FIELDS, DocPlace::Row("#### Notify kinds", "victorops")),
    (PUSHOVER_FIELDS, DocPlace::Row("#### Notify kinds", "pushover")),
    (DATADOG_FIELDS, DocPlace::Row("#### Notify kinds", "datadog")),
    (TWILIO_FIELDS, DocPlace::Row("#### Notify kinds", "twilio")),
];

/// The text under `heading` (its own line excluded) up to the next heading.
fn doc_section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .lines()
        .position(|l| l.trim_end() == heading)
        .unwrap_or_else(|| panic!("docs/configuration.md has no heading `{heading}`"));
    let mut offset = 0;
    let mut lines = doc.split_inclusive('\n').enumerate();
    for (_, l) in lines.by_ref().take(start + 1) {
        offset += l.len();
    }
    let mut end = offset;
    for (_, l) in lines {
        if l.starts_with('#') {
            break;
        }
        end += l.len();
    }
    &doc[offset..end]
}

#[test]
fn every_accepted_field_is_documented_in_its_section() {
    let doc = include_str!("../../../docs/configuration.md");
    for list in ALL_FIELD_LISTS {
        assert!(
            FIELD_DOCS.iter().any(|(l, _)| l == list),
            "{list:?} has no place in FIELD_DOCS: add the section of docs/configuration.md \
             that documents it"
        );
    }
    assert_eq!(FIELD_DOCS.len(), ALL_FIELD_LISTS.len());
    for (list, place) in FIELD_DOCS {
        let (text, where_) = match place {
            DocPlace::Section(h) => (doc_section(doc, h), (*h).to_owned()),
            DocPlace::Row(h, kind) => {
                let row = doc_section(doc, h)
                    .lines()
                    .find(|l| l.starts_with(&format!("| `{kind}` |")))
                    .unwrap_or_else(|| panic!("no row for `{kind}` under `{h}`"));
                (row, format!("{h}, row `{kind}`"))
            }
        };
        for field in *list {
            assert!(
                text.contains(&format!("`{field}`")),
                "docs/configuration.md does not document `{field}` under {where_}"
            );
        }
    }
    for word in PULSE_TYPES
        .iter()
        .chain(NOTIFY_KINDS.iter())
        .chain(INTERVENTION_ACTIONS.iter())
        .chain(COLOURS.iter())
        .chain(DNS_RECORD_TYPES.iter())
    {
        assert!(
            doc.contains(&format!("`{word}`")),
            "docs/configuration.md does not mention `{word}`"
        );
    }
}

#[test]
fn a_bad_block_shared_by_monitors_is_reported_for_each_and_a_good_one_checked_once() {
    let fleet = |intervention: &str, codes: &str| {
        "monitors:\n".to_string()
            + &(0..3)
                .map(|i| {
                    format!(
                        "  - name: m{i}\n    pulse_check: {{type: tcp, config: {{host: h, port: 1}}}}\n    intervention: {intervention}\n    codes: {codes}\n"
                    )
                })
                .collect::<String>()
    };
    let bad = fleet(
        "{action: systemd, target: {unit: \"-x\"}}",
        "{red: {notify: slack, config: {hook: hooks.slack.com/x}}}",
    );
    let (m, r) = load(&bad);
    assert!(m.is_empty());
    assert_eq!(r.problems.errors, 6, "{:#?}", r.problems.kept);
    for (i, pair) in r.problems.kept.chunks(2).enumerate() {
        let name = format!("m{i}");
        assert!(pair.iter().all(|d| d.monitor.as_deref() == Some(name.as_str())), "{pair:#?}");
        assert_eq!(pair[0].path, format!("monitors[{i}].codes.red.config.hook"));
        assert_eq!(pair[1].path, format!("monitors[{i}].intervention.target.unit"));
    }
    let good = fleet(
        "{action: systemd, target: {unit: web.service}}",
        "{red: {notify: slack, config: {hook: \"https://hooks.slack.com/x\"}}}",
    );
    let (m, _) = load_ok(&good);
    assert!(std::sync::Arc::ptr_eq(&m[0].codes, &m[2].codes));
    assert_eq!(m[0].intervention, m[2].intervention);
}

/// One nesting bound for YAML and JSON alike: [`crate::limits::MAX_NODE_DEPTH`] levels in a
/// block (the monitor's own mapping is the first), as docs/configuration.md says.
#[test]
fn json_and_yaml_share_one_nesting_bound() {
    use crate::limits::MAX_NODE_DEPTH;
    let lenient = LoadOptions { lenient: true, ..LoadOptions::default() };
    for arrays in [MAX_NODE_DEPTH - 1, MAX_NODE_DEPTH] {
        let deep = format!("{}{}", "[".repeat(arrays), "]".repeat(arrays));
        let json = format!(
            r#"{{"monitors":[{{"name":"a","pulse_check":{{"type":"tcp","config":{{"host":"h","port":1}}}},"x":{deep}}}]}}"#
        );
        let yaml = format!(
            "monitors:\n  - name: a\n    x: {deep}\n    pulse_check: {{type: tcp, config: {{host: h, port: 1}}}}\n"
        );
        for (text, format) in [(json, Format::Json), (yaml, Format::Yaml)] {
            let (_, r) = load_str(&text, Some(format), &lenient);
            let too_deep = r
                .problems
                .kept
                .iter()
                .any(|d| d.message == format!("nesting deeper than {MAX_NODE_DEPTH} levels"));
            assert_eq!(
                too_deep,
                arrays == MAX_NODE_DEPTH,
                "{format:?}, {arrays}: {:#?}",
                r.problems.kept
            );
            assert_eq!(r.is_valid(), arrays < MAX_NODE_DEPTH, "{format:?}, {arrays}");
        }
    }
}
