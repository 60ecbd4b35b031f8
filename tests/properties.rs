//! Generated Pods and profiles: the patch always applies, every injected item appears exactly once,
//! nothing else changes, and a second review gives no patch.

mod common;

use common::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sidecar_injector::Config;
use sidecar_injector::engine::http_answer::{HttpRequest, answer};
use sidecar_injector::engine::wire::ReviewResponse;

// Small name pools, so that generated Pods and profiles collide often enough to exercise the
// "app wins" and onError paths. Keys include `/` to exercise pointer escaping.
const LABEL_KEYS: &[&str] = &["app", "tier", "example.com/team", "a.b/c", "foo"];
const ENV_NAMES: &[&str] = &["A", "B", "LOG_LEVEL"];
const MOUNT_PATHS: &[&str] = &["/data", "/certs", "/var/log"];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(pool).prop_map(str::to_owned)
}

fn string_map() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(pick(LABEL_KEYS), "[a-z]{1,3}", 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn env_list() -> impl Strategy<Value = Vec<Value>> {
    vec(pick(ENV_NAMES), 0..3).prop_map(|names| {
        let mut seen = Vec::new();
        names
            .into_iter()
            .filter(|n| {
                !seen.contains(n) && {
                    seen.push(n.clone());
                    true
                }
            })
            .map(|n| json!({"name": n, "value": "v"}))
            .collect()
    })
}

fn mount_list(volume: &'static str) -> impl Strategy<Value = Vec<Value>> {
    proptest::sample::subsequence(MOUNT_PATHS, 0..3)
        .prop_map(move |paths| paths.into_iter().map(|p| json!({"name": volume, "mountPath": p})).collect())
}

fn app_container(index: usize) -> impl Strategy<Value = Value> {
    (option::of(env_list()), option::of(mount_list("data")), any::<bool>()).prop_map(
        move |(env, mounts, future)| {
            let mut c = json!({"name": format!("app{index}"), "image": "app:1"});
            if let Some(env) = env {
                c["env"] = Value::Array(env);
            }
            if let Some(mounts) = mounts {
                c["volumeMounts"] = Value::Array(mounts);
            }
            if future {
                c["fieldFromTheFuture"] = json!({"kept": true});
            }
            c
        },
    )
}

fn pod() -> impl Strategy<Value = Value> {
    let containers = (1..4usize).prop_flat_map(|n| (0..n).map(app_container).collect::<Vec<_>>());
    let init = option::of(vec(Just(()), 0..3).prop_map(|v| {
        (0..v.len()).map(|i| json!({"name": format!("init-app{i}"), "image": "i"})).collect::<Vec<_>>()
    }));
    let volumes = option::of(vec(Just(()), 0..3).prop_map(|v| {
        (0..v.len()).map(|i| json!({"name": format!("vol{i}"), "emptyDir": {}})).collect::<Vec<_>>()
    }));
    (option::of(string_map()), option::of(string_map()), any::<bool>(), containers, init, volumes).prop_map(
        |(labels, annotations, has_metadata, containers, init, volumes)| {
            let mut metadata = Map::new();
            if let Some(l) = labels {
                metadata.insert("labels".into(), Value::Object(l));
            }
            if let Some(a) = annotations {
                metadata.insert("annotations".into(), Value::Object(a));
            }
            let mut spec = json!({"containers": containers});
            if let Some(init) = init {
                spec["initContainers"] = Value::Array(init);
            }
            let mut volumes = volumes;
            // The volume the app containers mount is the Pod's own: a Pod valid before the patch.
            let mounts = |c: &Value| c.get("volumeMounts").is_some_and(|m| !m.as_array().unwrap().is_empty());
            if spec["containers"].as_array().unwrap().iter().any(mounts) {
                volumes.get_or_insert_with(Vec::new).push(json!({"name": "data", "emptyDir": {}}));
            }
            if let Some(volumes) = volumes {
                spec["volumes"] = Value::Array(volumes);
            }
            let mut pod = json!({"spec": spec});
            if has_metadata || !metadata.is_empty() {
                pod["metadata"] = Value::Object(metadata);
            }
            pod
        },
    )
}

/// A configuration with one profile. Container names are drawn so that they sometimes clash with
/// the Pod's (`app0`), which must then be refused.
fn config_value() -> impl Strategy<Value = Value> {
    let names = |prefix: &'static str| {
        vec(any::<bool>(), 0..3)
            .prop_map(move |v| v.iter().enumerate().map(|(i, _)| format!("{prefix}{i}")).collect::<Vec<_>>())
    };
    (
        string_map(),
        names("side"),
        names("sc"),
        names("pinit"),
        names("pv"),
        env_list(),
        mount_list("pv0"),
        // Names the Pod may have too: a container, an init container, a volume.
        (prop::bool::weighted(0.1), prop::bool::weighted(0.1), prop::bool::weighted(0.1)),
    )
        .prop_map(|(labels, containers, sidecars, init, volumes, env, mounts, clashes)| {
            let (clash, init_clash, volume_clash) = clashes;
            let mut containers: Vec<Value> =
                containers.iter().map(|n| json!({"name": n, "image": "s"})).collect();
            if clash {
                containers.push(json!({"name": "app0", "image": "s"}));
            }
            let mut init = init;
            if init_clash {
                init.push("init-app0".to_owned());
            }
            let mut volumes = volumes;
            if volume_clash {
                volumes.push("vol0".to_owned());
            }
            let list =
                |names: &[String]| names.iter().map(|n| json!({"name": n, "image": "s"})).collect::<Vec<_>>();
            let volumes: Vec<Value> = volumes.iter().map(|n| json!({"name": n, "emptyDir": {}})).collect();
            json!({
                "labels": labels,
                "defaultProfiles": ["p"],
                "profiles": {"p": {
                    "containers": containers,
                    "sidecars": list(&sidecars),
                    "initContainers": list(&init),
                    "volumes": volumes,
                    "appContainers": {"env": env, "volumeMounts": mounts}
                }}
            })
        })
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array().map(|l| l.iter().map(|c| c["name"].as_str().unwrap()).collect()).unwrap_or_default()
}

/// Remove from `patched` what the configuration says was added, then drop containers the original
/// did not have (maps and lists created to hold the additions).
fn strip(patched: &Value, original: &Value, config: &Value) -> Value {
    let profile = &config["profiles"]["p"];
    let mut pod = patched.clone();
    if let Some(labels) = pod["metadata"].get_mut("labels").and_then(Value::as_object_mut) {
        for key in config["labels"].as_object().unwrap().keys() {
            if original["metadata"]["labels"].get(key).is_none() {
                labels.remove(key);
            }
        }
    }
    pod["metadata"]["annotations"].as_object_mut().unwrap().remove("sidecar-injector.io/status");
    let injected: Vec<&str> =
        ["containers", "sidecars", "initContainers"].iter().flat_map(|f| names(&profile[f])).collect();
    for field in ["containers", "initContainers"] {
        if let Some(list) = pod["spec"].get_mut(field).and_then(Value::as_array_mut) {
            list.retain(|c| !injected.contains(&c["name"].as_str().unwrap()));
        }
    }
    let volumes = names(&profile["volumes"]);
    if let Some(list) = pod["spec"].get_mut("volumes").and_then(Value::as_array_mut) {
        list.retain(|v| !volumes.contains(&v["name"].as_str().unwrap()));
    }
    for (i, container) in pod["spec"]["containers"].as_array_mut().unwrap().iter_mut().enumerate() {
        let before = &original["spec"]["containers"][i];
        if let Some(env) = container.get_mut("env").and_then(Value::as_array_mut) {
            env.retain(|e| names(&before["env"]).contains(&e["name"].as_str().unwrap()));
        }
        if let Some(mounts) = container.get_mut("volumeMounts").and_then(Value::as_array_mut) {
            let own: Vec<&Value> = before["volumeMounts"]
                .as_array()
                .map(|m| m.iter().map(|m| &m["mountPath"]).collect())
                .unwrap_or_default();
            mounts.retain(|m| own.contains(&&m["mountPath"]));
        }
        for field in ["env", "volumeMounts"] {
            drop_if_new_and_empty(container, before, field);
        }
    }
    for field in ["initContainers", "volumes"] {
        let spec_before = original["spec"].clone();
        drop_if_new_and_empty(&mut pod["spec"], &spec_before, field);
    }
    let meta_before = original.get("metadata").cloned().unwrap_or(Value::Null);
    for field in ["labels", "annotations"] {
        drop_if_new_and_empty(&mut pod["metadata"], &meta_before, field);
    }
    drop_if_new_and_empty(&mut pod, original, "metadata");
    pod
}

fn drop_if_new_and_empty(parent: &mut Value, before: &Value, field: &str) {
    let empty = match parent.get(field) {
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    if empty && before.get(field).is_none() {
        parent.as_object_mut().unwrap().remove(field);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn injection_adds_exactly_the_profile(pod in pod(), config_json in config_value()) {
        let config = Config::from_value(config_json.clone()).expect("generated configurations are valid");
        let (response, patched) = admit(&pod, "shop", &config);
        let profile = &config_json["profiles"]["p"];
        // A clash of names, or an app-container mount of a volume neither the Pod nor the profile
        // has (the API server would refuse that Pod): refused, never patched.
        let dangling = !profile["appContainers"]["volumeMounts"].as_array().unwrap().is_empty()
            && !names(&profile["volumes"]).contains(&"pv0");
        let has = |field: &str, list: &Value, name: &str| names(&list[field]).contains(&name);
        let clash = has("containers", profile, "app0")
            || (has("initContainers", profile, "init-app0") && has("initContainers", &pod["spec"], "init-app0"))
            || (has("volumes", profile, "vol0") && has("volumes", &pod["spec"], "vol0"))
            || dangling;

        if clash {
            prop_assert!(!response.response.allowed);
            prop_assert_eq!(&patched, &pod);
            return Ok(());
        }
        prop_assert!(response.response.allowed);

        // Every injected container and volume appears exactly once.
        let spec = &patched["spec"];
        let all: Vec<&str> = names(&spec["containers"]).into_iter().chain(names(&spec["initContainers"])).collect();
        for field in ["containers", "sidecars", "initContainers"] {
            for name in names(&profile[field]) {
                prop_assert_eq!(all.iter().filter(|n| **n == name).count(), 1, "{} {}", field, name);
            }
        }
        for name in names(&profile["volumes"]) {
            prop_assert_eq!(names(&spec["volumes"]).iter().filter(|n| **n == name).count(), 1);
        }
        // Sidecars are native sidecars, ahead of the Pod's own init containers.
        for name in names(&profile["sidecars"]) {
            let sidecar = spec["initContainers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
            prop_assert_eq!(&sidecar["restartPolicy"], "Always");
        }
        let own_init = names(&pod["spec"]["initContainers"]);
        let init_after = names(&spec["initContainers"]);
        prop_assert_eq!(&init_after[init_after.len() - own_init.len()..], &own_init[..]);

        // Each app container has each env name and mount path once; the Pod's own values won.
        for (i, container) in spec["containers"].as_array().unwrap().iter().enumerate().take(pod["spec"]["containers"].as_array().unwrap().len()) {
            for var in profile["appContainers"]["env"].as_array().unwrap() {
                let same: Vec<&Value> = container["env"].as_array().unwrap().iter().filter(|e| e["name"] == var["name"]).collect();
                prop_assert_eq!(same.len(), 1);
                let own = pod["spec"]["containers"][i]["env"].as_array().and_then(|env| env.iter().find(|e| e["name"] == var["name"]));
                prop_assert_eq!(same[0], own.unwrap_or(var));
            }
            for mount in profile["appContainers"]["volumeMounts"].as_array().unwrap() {
                let count = container["volumeMounts"].as_array().unwrap().iter().filter(|m| m["mountPath"] == mount["mountPath"]).count();
                prop_assert_eq!(count, 1);
            }
        }
        // Labels: ours where the Pod had none, the Pod's own otherwise.
        for (key, value) in config_json["labels"].as_object().unwrap() {
            let expected = pod["metadata"]["labels"].get(key).unwrap_or(value);
            prop_assert_eq!(&patched["metadata"]["labels"][key], expected);
        }

        // Nothing else changed.
        prop_assert_eq!(strip(&patched, &pod, &config_json), pod);

        // And a second review leaves it alone.
        let (again, twice) = admit(&patched, "shop", &config);
        prop_assert!(patch_of(&again).is_none());
        prop_assert_eq!(twice, patched);
    }

    /// A parameter set from an annotation (any text: placeholders, `$`, `%`, quotes), under a
    /// pattern or not, and a second profile chosen by a selector: the value lands verbatim in every
    /// place the template reads it (`$` doubled where Kubernetes expands), or the Pod is refused
    /// untouched; the selected profile comes exactly when the labels match; re-review gives no patch.
    #[test]
    fn parameters_land_verbatim_or_the_pod_is_refused(
        value in option::of("[a-z%{}$() /.-]{0,12}"),
        pattern in option::of(proptest::sample::select(&["[a-z]+", "[a-z/.-]*", ".*"][..])),
        tier in option::of(proptest::sample::select(&["web", "db"][..])),
    ) {
        let pattern_line = pattern.map(|p| format!(", pattern: '{p}'")).unwrap_or_default();
        let config = config(&format!(
            "defaultProfiles: [p]\nprofiles:\n  p:\n    parameters: {{v: {{default: d, annotation: example.com/v{pattern_line}}}}}\n    sidecars: [{{name: s, image: s, args: ['x=%{{v}}'], env: [{{name: V, value: '%{{v}}'}}, {{name: NS, value: '%{{pod.namespace}}'}}]}}]\n    annotations: {{example.com/seen: '%{{v}}'}}\n  metrics:\n    selector: {{matchLabels: {{tier: web}}}}\n    containers: [{{name: m, image: m}}]\n"
        ));
        let mut pod = json!({"metadata": {"annotations": {}, "labels": {}}, "spec": {"containers": [{"name": "app", "image": "a"}]}});
        if let Some(value) = &value {
            pod["metadata"]["annotations"]["example.com/v"] = json!(value);
        }
        if let Some(tier) = tier {
            pod["metadata"]["labels"]["tier"] = json!(tier);
        }
        let (response, patched) = admit(&pod, "shop", &config);
        let given = value.clone().unwrap_or_else(|| "d".into());
        let allowed = pattern.is_none_or(|p| regex_lite::Regex::new(&format!("^(?:{p})$")).unwrap().is_match(&given));
        if !allowed {
            prop_assert!(!response.response.allowed);
            prop_assert_eq!(&patched, &pod);
            return Ok(());
        }
        prop_assert!(response.response.allowed, "{:?}", response.response.status);
        let sidecar = &patched["spec"]["initContainers"][0];
        let expanded = given.replace('$', "$$");
        prop_assert_eq!(&sidecar["args"], &json!([format!("x={expanded}")]));
        prop_assert_eq!(&sidecar["env"], &json!([{"name": "V", "value": expanded}, {"name": "NS", "value": "shop"}]));
        prop_assert_eq!(&patched["metadata"]["annotations"]["example.com/seen"], &json!(given));
        let has_metrics = names(&patched["spec"]["containers"]).contains(&"m");
        prop_assert_eq!(has_metrics, tier == Some("web"));
        let (again, twice) = admit(&patched, "shop", &config);
        prop_assert!(patch_of(&again).is_none());
        prop_assert_eq!(twice, patched);
    }

    /// Arbitrary bytes never panic: they are answered 200 with a response AdmissionReview, or
    /// refused 400 with one of the reasons a review can be refused for.
    #[test]
    fn arbitrary_bodies_are_answered_or_refused_with_a_reason(body in vec(any::<u8>(), 0..512)) {
        let request = HttpRequest { method: "POST", content_type: Some("application/json"), body: Some(&body) };
        let answered = answer(request, &Config::builtin());
        match answered.status {
            200 => {
                let parsed = serde_json::from_slice::<ReviewResponse>(answered.body());
                prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
            }
            400 => {
                let reason = String::from_utf8(answered.into_body()).expect("reasons are text");
                prop_assert!(REASONS.iter().any(|k| reason.starts_with(k)), "{}", reason);
            }
            other => prop_assert!(false, "status {} for a body under the size limit", other),
        }
    }

    /// A generated Pod's review, broken in one way, is refused for that way: a broken review 400
    /// with its reason, a Pod that cannot be read denied with a message saying where.
    #[test]
    fn a_broken_review_is_refused_naming_what_is_broken(pod in pod(), broken in 0..BREAKAGES.len(), cut in 0.0..1.0f64) {
        let (breakage, expected) = BREAKAGES[broken];
        let body = breakage(pod_review(&pod, "shop"), cut);
        let request = HttpRequest { method: "POST", content_type: Some("application/json"), body: Some(&body) };
        let answered = answer(request, &Config::builtin());
        match expected {
            Refused(reason_start) => {
                prop_assert_eq!(answered.status, 400);
                let reason = String::from_utf8(answered.into_body()).expect("reasons are text");
                prop_assert!(reason.starts_with(reason_start), "{}: {}", reason_start, reason);
            }
            Denied(message_end) => {
                prop_assert_eq!(answered.status, 200);
                let response: ReviewResponse = serde_json::from_slice(answered.body()).unwrap();
                prop_assert!(!response.response.allowed);
                let message = response.response.status.unwrap().message.to_string();
                prop_assert!(message.ends_with(message_end), "{}: {}", message_end, message);
            }
        }
    }
}

/// Every reason a review is refused for begins with one of these.
const REASONS: &[&str] = &[
    "malformed AdmissionReview at ",
    "not an AdmissionReview: ",
    "the AdmissionReview has no request",
    "the AdmissionReview request has no uid",
    "the CREATE request has no object",
    "the UPDATE request has no object",
    "the DELETE request has no object",
    "the CONNECT request has no object",
    "the request's object is not a JSON object",
];

type Breakage = fn(Value, f64) -> Vec<u8>;

/// What a broken review gets.
#[derive(Clone, Copy)]
enum Expected {
    /// 400, the reason starting so: the review itself is broken.
    Refused(&'static str),
    /// 200, not allowed, the message ending so: the review is whole, the Pod in it is not.
    Denied(&'static str),
}
use Expected::{Denied, Refused};

fn without(mut review: Value, pointer: &str) -> Vec<u8> {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    review.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
    serde_json::to_vec(&review).unwrap()
}

fn with(mut review: Value, pointer: &str, value: Value) -> Vec<u8> {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    review.pointer_mut(parent).unwrap()[key] = value;
    serde_json::to_vec(&review).unwrap()
}

/// Ways to break a review, each with what it must get.
const BREAKAGES: &[(Breakage, Expected)] = &[
    (|r, _| without(r, "/request"), Refused("the AdmissionReview has no request")),
    (|r, _| without(r, "/request/uid"), Refused("the AdmissionReview request has no uid")),
    (|r, _| without(r, "/request/object"), Refused("the CREATE request has no object")),
    (
        |r, _| with(r, "/request/object", json!(["a", "list"])),
        Refused("the request's object is not a JSON object"),
    ),
    (|r, _| with(r, "/apiVersion", json!("admission.k8s.io/v2")), Refused("not an AdmissionReview: ")),
    (|r, _| with(r, "/kind", json!("Pod")), Refused("not an AdmissionReview: ")),
    (|r, _| with(r, "/request/uid", json!(7)), Refused("malformed AdmissionReview at ")),
    // The JSON cut short somewhere inside.
    (
        |r, cut| {
            let bytes = serde_json::to_vec(&r).unwrap();
            bytes[..1 + (cut * (bytes.len() - 2) as f64) as usize].to_vec()
        },
        Refused("malformed AdmissionReview at "),
    ),
    (
        |r, _| with(r, "/request/object/spec/containers", json!("app")),
        Denied("the Pod cannot be read: spec.containers is not a list"),
    ),
    (
        |r, _| with(r, "/request/object/metadata", json!({"labels": ["app"]})),
        Denied("the Pod cannot be read: metadata.labels is not an object"),
    ),
];
