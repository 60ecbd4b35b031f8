//! What every answer of the pure function must satisfy, checked by both fuzz targets. The same
//! code runs in `cargo test` over the committed corpus (tests/fuzz_corpus.rs includes this file),
//! so an input that crashed here becomes a regression test by committing it to the corpus.

// A path relative to this file, so that tests/fuzz_corpus.rs can include this file as a module.
#[path = "security.rs"]
pub mod security;
#[path = "shapes.rs"]
pub mod shapes;

use base64::Engine as _;
use serde_json::Value;
use sidecar_injector::{Config, review};

/// Review `body` and check the invariants; panics (the fuzzer's crash) when one fails.
///
/// - a well-formed request gets a valid AdmissionReview response carrying the request's uid;
/// - the patch, if any, applies to the request's object;
/// - the patched object keeps every field of the original, list items in their order, and has no
///   container (init or not) or volume name twice, which the API server would refuse;
/// - the patched object is at no lower Pod Security level than the original;
/// - the patched object, reviewed again, gets no patch;
/// - a refused request has a message naming what was wrong.
pub fn check(body: &[u8], config: &Config) {
    let reviewed = match review(body, config) {
        Ok(reviewed) => reviewed,
        Err(error) => {
            assert!(!error.to_string().is_empty(), "an error without a message");
            return;
        }
    };
    let request: Value = serde_json::from_slice(body).expect("an accepted review is JSON");
    let response: Value = serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
    assert_eq!(response["kind"], "AdmissionReview");
    assert_eq!(response["apiVersion"], request["apiVersion"], "the answer's version is the request's");
    let answer = &response["response"];
    assert_eq!(answer["uid"], request["request"]["uid"], "the answer carries the request's uid");
    assert!(answer["allowed"].is_boolean(), "allowed is a boolean: {answer}");

    let Some(encoded) = answer.get("patch") else {
        assert!(reviewed.patch.is_none(), "a patch was reported but not sent");
        return;
    };
    assert_eq!(answer["allowed"], true, "a patch on a denied request");
    assert_eq!(answer["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str().expect("the patch is a string"))
        .expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("the patch is a JSON Patch");
    let mut object = request["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).unwrap_or_else(|e| panic!("the patch does not apply: {e}"));
    let original = &request["request"]["object"];
    assert!(kept(original, &object), "a field of the Pod was changed or dropped:\n{original}\n{object}");
    if no_name_twice(original).is_ok() {
        no_name_twice(&object).unwrap_or_else(|twice| panic!("the patched Pod has {twice}"));
    }

    let mut again = request.clone();
    again["request"]["object"] = object;
    let body = serde_json::to_vec(&again).expect("serialisable");
    let second = review(&body, config).unwrap_or_else(|e| panic!("the patched Pod is refused: {e}"));
    assert!(second.patch.is_none(), "the patched Pod is patched again");
    // Levels as a configuration that reads every Pod gives them (the one reviewing may skip it).
    let levels = |body: &[u8]| review(body, neutral()).ok().and_then(|r| r.pod_security).map(|s| s.before);
    if let (Some(before), Some(after)) =
        (levels(&serde_json::to_vec(&request).expect("serialisable")), levels(&body))
    {
        assert!(after >= before, "injection lowered the Pod from {before} to {after}");
    }
}

/// [`check`], and what the adapters' HTTP edge and the configuration loader make of the same
/// bytes: a status for every input, and an error with a message for every bad configuration.
pub fn check_bytes(data: &[u8], config: &Config) {
    use sidecar_injector::engine::http_answer as http;
    check(data, config);
    let request =
        http::HttpRequest { method: "POST", content_type: Some("application/json"), body: Some(data) };
    let answer = http::answer(request, config);
    assert!(matches!(answer.status, 200 | 400 | 413), "status {}", answer.status);
    if let Err(error) = Config::from_slice(data) {
        assert!(!error.to_string().is_empty());
    }
}

fn neutral() -> &'static Config {
    static NEUTRAL: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    NEUTRAL.get_or_init(|| Config::from_yaml("skip: {hostNetwork: false, namespaces: []}").expect("valid"))
}

/// Whether every field of `original` is in `patched` with its value: objects by key, list items
/// in their order (the patch may insert between them), other values equal.
fn kept(original: &Value, patched: &Value) -> bool {
    match (original, patched) {
        // A null field is an absent one: the patch may give it a value.
        (Value::Null, _) => true,
        (Value::Object(before), Value::Object(after)) => {
            before.iter().all(|(key, value)| after.get(key).is_some_and(|now| kept(value, now)))
        }
        (Value::Array(before), Value::Array(after)) => {
            let mut rest = after.iter();
            before.iter().all(|item| rest.any(|now| kept(item, now)))
        }
        _ => original == patched,
    }
}

/// Container names are one namespace across `containers` and `initContainers`; volume names
/// another. The first name found twice, if any.
fn no_name_twice(pod: &Value) -> Result<(), String> {
    let names = |fields: &[&str]| -> Vec<String> {
        let lists = fields.iter().filter_map(|field| pod["spec"][field].as_array()).flatten();
        lists.filter_map(|item| item["name"].as_str().map(str::to_owned)).collect()
    };
    for (what, fields) in [("container", &["containers", "initContainers"][..]), ("volume", &["volumes"][..])]
    {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(name) = names(fields).into_iter().find(|name| !seen.insert(name.clone())) {
            return Err(format!("{what} {name:?} twice"));
        }
    }
    Ok(())
}
