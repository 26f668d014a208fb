//! The Kubernetes examples in `deploy/k8s/`: every YAML document parses (with the YAML parser
//! the manifest loader uses), every fleet a ConfigMap carries is a valid CPRA manifest, and
//! the fields that make a node a node agree: the pod ordinal is `--node-index`, `replicas` is
//! `--node-count`, the probes reach `/healthz` and `/readyz` on the port CPRA listens on, the
//! data dir is on a volume claim per pod, the headless Service selects the pods. (No cluster
//! is reachable here; `scripts/k8s-validate.sh` checks the same files against the Kubernetes
//! schemas.)

use std::path::{Path, PathBuf};

use cpra_engine::manifest::{load_str, LoadOptions};
use saphyr_parser::{Event, Parser};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

/// A plain scalar as YAML 1.2's core schema reads it; quoted ones stay strings.
fn scalar(text: &str, plain: bool) -> Value {
    if !plain {
        return Value::String(text.to_owned());
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" | "~" => Value::Null,
        _ => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(text.into())),
    }
}

/// Every document of a YAML stream, as JSON values (the examples use no anchors).
fn documents(text: &str, file: &Path) -> Vec<Value> {
    enum Open {
        Seq(Vec<Value>),
        Map(serde_json::Map<String, Value>, Option<String>),
    }
    let mut docs = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let done = match event {
            Event::Alias(_) => panic!("{}: an alias at {span:?}: not used here", file.display()),
            Event::Scalar(text, style, ..) => {
                Some(scalar(&text, style == saphyr_parser::ScalarStyle::Plain))
            }
            Event::SequenceStart(..) => {
                stack.push(Open::Seq(Vec::new()));
                None
            }
            Event::MappingStart(..) => {
                stack.push(Open::Map(serde_json::Map::new(), None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(items)) => Some(Value::Array(items)),
                Some(Open::Map(map, _)) => Some(Value::Object(map)),
                None => unreachable!("the parser balances its events"),
            },
            _ => None,
        };
        let Some(value) = done else { continue };
        match stack.last_mut() {
            None => docs.push(value),
            Some(Open::Seq(items)) => items.push(value),
            Some(Open::Map(map, key)) => match key.take() {
                None => *key = Some(value.as_str().expect("string keys").to_owned()),
                Some(k) => {
                    assert!(
                        map.insert(k.clone(), value).is_none(),
                        "{}: {k} twice",
                        file.display()
                    );
                }
            },
        }
    }
    docs
}

/// Every document of every `.yaml` under `dir` (one level of subdirectories), with its file.
fn all_documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                files.push(inner.unwrap().path());
            }
        } else {
            files.push(path);
        }
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in documents(&text, &file) {
            docs.push((file.clone(), doc));
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [(PathBuf, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|(_, d)| d["kind"] == kind).map(|(_, d)| d).collect()
}

/// The value following `flag` in a shell command line.
fn flag<'a>(command: &'a str, flag: &str) -> Option<&'a str> {
    let mut words = command.split_whitespace();
    words.find(|w| *w == flag)?;
    words.next()
}

#[test]
fn every_document_parses_and_names_its_kind() {
    let docs = all_documents(&deploy_dir());
    assert!(docs.len() >= 10, "{} documents", docs.len());
    for (file, doc) in &docs {
        assert!(doc["apiVersion"].is_string(), "{}: no apiVersion", file.display());
        assert!(doc["kind"].is_string(), "{}: no kind", file.display());
        assert!(doc["metadata"]["name"].is_string(), "{}: no name", file.display());
    }
}

#[test]
fn every_fleet_in_a_config_map_is_a_valid_manifest() {
    let docs = all_documents(&deploy_dir());
    let mut fleets = 0;
    for map in of_kind(&docs, "ConfigMap") {
        let Some(fleet) = map["data"]["fleet.yaml"].as_str() else { continue };
        let (monitors, report) = load_str(fleet, None, &LoadOptions::default());
        assert!(report.is_valid(), "{}: {:?}", map["metadata"]["name"], report.problems.kept);
        assert!(!monitors.is_empty());
        fleets += 1;
    }
    assert_eq!(fleets, 2);
}

#[test]
fn each_stateful_set_maps_ordinal_and_replicas_to_its_node_and_serves_its_probes() {
    let docs = all_documents(&deploy_dir());
    let sets: Vec<&Value> = of_kind(&docs, "StatefulSet")
        .into_iter()
        .filter(|s| s["metadata"]["name"] != "alertmanager")
        .collect();
    assert_eq!(sets.len(), 3, "cpra, cpra-a, cpra-b");
    let mut replicas_seen = Vec::new();
    for set in sets {
        let name = set["metadata"]["name"].as_str().unwrap();
        let spec = &set["spec"];
        let pod = &spec["template"]["spec"];
        let container = &pod["containers"][0];
        let command = container["args"][0].as_str().unwrap();
        assert_eq!(flag(command, "--node-index"), Some("\"${POD_NAME##*-}\""), "{name}");
        let env = &container["env"][0];
        assert_eq!(env["name"], "POD_NAME", "{name}");
        assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name", "{name}");
        let count: i64 = flag(command, "--node-count").unwrap().parse().unwrap();
        assert_eq!(spec["replicas"], count, "{name}: replicas is the node count");
        replicas_seen.push(flag(command, "--replica").unwrap_or("0").to_owned());
        // The probes reach the control plane on the port it listens on, from outside the pod.
        assert_eq!(flag(command, "--listen"), Some("0.0.0.0:9850"), "{name}");
        assert_eq!(
            container["ports"][0],
            serde_json::json!({"name": "http", "containerPort": 9850})
        );
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(container[probe]["httpGet"]["port"], "http", "{name}");
        }
        assert!(container["resources"]["requests"]["cpu"].is_string(), "{name}");
        // --shards matches the cores requested (CPRA pins one shard per core).
        assert_eq!(
            Some(container["resources"]["requests"]["cpu"].as_str().unwrap()),
            flag(command, "--shards"),
            "{name}"
        );
        // The data dir is on the pod's own volume claim.
        let data_dir = flag(command, "--data-dir").unwrap();
        let claim = spec["volumeClaimTemplates"][0]["metadata"]["name"].as_str().unwrap();
        let mounts = container["volumeMounts"].as_array().unwrap();
        assert!(
            mounts.iter().any(|m| m["name"] == claim && m["mountPath"] == data_dir),
            "{name}: --data-dir {data_dir} not on claim {claim}"
        );
        // The manifest comes from a ConfigMap in the examples.
        let manifest = command.split_whitespace().nth(3).unwrap();
        let fleet = pod["volumes"].as_array().unwrap().iter().find(|v| v["configMap"].is_object());
        let fleet = fleet.unwrap_or_else(|| panic!("{name}: no ConfigMap volume"));
        let mount = mounts.iter().find(|m| m["name"] == fleet["name"]).unwrap();
        let path = format!("{}/fleet.yaml", mount["mountPath"].as_str().unwrap());
        assert_eq!(manifest, path, "{name}");
        let map_name = &fleet["configMap"]["name"];
        assert!(
            of_kind(&docs, "ConfigMap").iter().any(|m| &m["metadata"]["name"] == map_name),
            "{name}: no ConfigMap {map_name}"
        );
        // A headless Service of that name selects the pods.
        let service = of_kind(&docs, "Service")
            .into_iter()
            .find(|s| s["metadata"]["name"] == spec["serviceName"])
            .unwrap_or_else(|| panic!("{name}: no Service {}", spec["serviceName"]));
        assert_eq!(service["spec"]["clusterIP"], "None", "{name}");
        let labels = spec["template"]["metadata"]["labels"].as_object().unwrap();
        for (k, v) in service["spec"]["selector"].as_object().unwrap() {
            assert_eq!(labels.get(k), Some(v), "{name}: the Service does not select the pods");
        }
        for (k, v) in spec["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(labels.get(k), Some(v), "{name}: the selector does not match the pods");
        }
    }
    replicas_seen.sort();
    assert_eq!(replicas_seen, ["0", "0", "1"], "cpra, then the two copies 0 and 1");
}

#[test]
fn the_ha_example_sends_every_code_to_every_member_of_a_clustered_alertmanager() {
    let docs = all_documents(&deploy_dir().join("ha"));
    let am = of_kind(&docs, "StatefulSet")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "alertmanager")
        .unwrap();
    let members = am["spec"]["replicas"].as_i64().unwrap();
    assert_eq!(members, 2);
    let args: Vec<&str> = am["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for i in 0..members {
        let peer = format!("--cluster.peer=alertmanager-{i}.alertmanager:9094");
        assert!(args.contains(&peer.as_str()), "{peer} missing: {args:?}");
    }
    let fleet = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find_map(|m| m["data"]["fleet.yaml"].as_str())
        .unwrap();
    let fleet = &documents(fleet, Path::new("fleet.yaml"))[0];
    let group = fleet["notification_groups"]["alertmanagers"].as_array().unwrap();
    let mut urls: Vec<String> = group
        .iter()
        .map(|e| {
            let endpoint = &fleet["endpoints"][e.as_str().unwrap()];
            assert_eq!(endpoint["type"], "alertmanager");
            endpoint["config"]["url"].as_str().unwrap().to_owned()
        })
        .collect();
    urls.sort();
    let wanted: Vec<String> =
        (0..members).map(|i| format!("http://alertmanager-{i}.alertmanager:9093")).collect();
    assert_eq!(urls, wanted);
    for monitor in fleet["monitors"].as_array().unwrap() {
        for (colour, code) in monitor["codes"].as_object().unwrap() {
            assert_eq!(code["notify_group"], "alertmanagers", "{colour}");
        }
    }
}
