//! One table of hostile and broken inputs, each answered without a panic and with the status a
//! user would expect from the server or the Lambda (`engine::http_answer::answer` is what both
//! return). Each row is a test case of its own.

mod common;

use common::*;
use serde_json::{Value, json};
use sidecar_injector::Config;
use sidecar_injector::engine::http_answer::{HttpRequest, MAX_BODY, answer};
use sidecar_injector::engine::wire::ReviewResponse;

enum Expect {
    /// Refused with this status, the body naming the problem.
    Refused(u16, &'static str),
    /// Answered 200 with this decision; an injected Pod's patch applies to the Pod.
    Decided(&'static str),
    /// Answered 200, refused as an admission decision, the message naming the problem.
    Denied(&'static str),
}
use Expect::*;

fn body(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).unwrap()
}

/// The review of the small Pod, as bytes.
fn good() -> Vec<u8> {
    body(&pod_review(&small_pod(), "shop"))
}

/// The good review with its first `from` replaced by `to`.
fn good_with(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(good()).unwrap();
    assert!(text.contains(from), "the row's text {from:?} is not in the review");
    text.replacen(from, to, 1).into_bytes()
}

fn pod_with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut pod = small_pod();
    f(&mut pod);
    body(&pod_review(&pod, "shop"))
}

fn review_with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review = pod_review(&small_pod(), "shop");
    f(&mut review);
    body(&review)
}

/// The field `from` replaced with `to` nested 10,000 lists deep.
fn deep(from: &str, to: &str) -> Vec<u8> {
    let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    good_with(from, &format!("\"{to}\":{nested}"))
}

/// The Pod's restartPolicy (a field the skeleton skips) written with a JSON escape in it.
fn escaped(value: &str) -> Vec<u8> {
    good_with("\"Always\"", &format!("\"{value}\""))
}

fn invalid_utf8() -> Vec<u8> {
    let mut bytes = good();
    let at = bytes.windows(5).position(|w| w == b"nginx").unwrap();
    bytes[at] = 0xff;
    bytes
}

/// A Pod of about 2.9 MiB: one env var with a large value, under the API server's 3 MiB.
fn big_pod() -> Vec<u8> {
    let big = pod_with(|pod| {
        pod["spec"]["containers"][0]["env"] = json!([{"name": "BIG", "value": "x".repeat(2_900 * 1024)}])
    });
    assert!(big.len() > 2_900 * 1024 && big.len() < MAX_BODY);
    big
}

fn padded_to(size: usize) -> Vec<u8> {
    let mut bytes = good();
    bytes.resize(size, b' ');
    bytes
}

fn check(body: Vec<u8>, expect: Expect) {
    let request = HttpRequest { method: "POST", content_type: Some("application/json"), body: Some(&body) };
    let answered = answer(request, &Config::builtin());
    let text = String::from_utf8_lossy(answered.body()).into_owned();
    match expect {
        Refused(status, message) => {
            assert_eq!(answered.status, status, "{text}");
            assert!(text.contains(message), "{text:?} should name {message:?}");
        }
        Decided(decision) => {
            assert_eq!(answered.status, 200, "{text}");
            let reviewed = answered.reviewed().unwrap();
            assert_eq!(reviewed.summary.decision.as_str(), decision);
            // The patch must apply to the Pod. (serde_json's Value cannot hold the 10,000-deep
            // list; there the engine's own check on the parts it reads is what holds.)
            let patch = patch_of(&serde_json::from_slice(answered.body()).unwrap())
                .expect("an injected Pod has a patch");
            if let Ok(request) = serde_json::from_slice::<Value>(&body) {
                let mut pod = request["request"]["object"].clone();
                json_patch::patch(&mut pod, &patch).unwrap_or_else(|e| panic!("the patch applies: {e}"));
            }
        }
        Denied(message) => {
            assert_eq!(answered.status, 200, "{text}");
            let response: ReviewResponse = serde_json::from_slice(answered.body()).unwrap();
            assert!(!response.response.allowed);
            let got = response.response.status.as_ref().unwrap().message.as_ref();
            assert!(got.contains(message), "{got:?} should name {message:?}");
        }
    }
}

rows! { check;
    truncated_json: (good()[..good().len() / 2].to_vec(), Refused(400, "EOF while parsing")),
    invalid_utf8_text: (invalid_utf8(), Refused(400, "not UTF-8 at byte")),
    // Found by the review_bytes fuzz target: serde_json skips these where the skeleton skips.
    unpaired_high_surrogate_where_the_pod_is_skipped: (
        escaped(r#"Al\ud800ways"#),
        Refused(400, "unpaired UTF-16 surrogate escape"),
    ),
    unpaired_low_surrogate: (escaped(r#"Al\udc00ways"#), Refused(400, "unpaired UTF-16 surrogate escape")),
    surrogate_pair_is_text: (escaped(r#"Al\ud83d\ude00ways"#), Decided("injected")),
    escaped_backslash_before_u_is_no_escape: (escaped(r#"Al\\ud800ways"#), Decided("injected")),
    // Read through without recursion (serde_json skips iteratively), and refused for its shape.
    nested_10000_deep_where_a_map_belongs: (
        deep("\"labels\":{\"app\":\"web\"}", "labels"),
        Denied("metadata.labels is not an object"),
    ),
    nested_10000_deep_where_it_is_skipped: (deep("\"restartPolicy\":\"Always\"", "tolerations"), Decided("injected")),
    // A key of the Pod the skeleton matches and skips; JSON forbids raw control characters in any
    // string (the review_bytes fuzz target found a reader that let them through in keys).
    control_character_in_a_pod_key: (
        good_with("\"restartPolicy\":", "\"restart\u{1}Policy\":"),
        Refused(400, "control character"),
    ),
    duplicate_keys: (good_with("\"uid\":", "\"uid\":\"a\",\"uid\":"), Refused(400, "duplicate field `uid`")),
    wrong_api_version: (good_with("admission.k8s.io/v1", "v1"), Refused(400, "not an AdmissionReview")),
    wrong_kind: (
        good_with("\"kind\":\"AdmissionReview\"", "\"kind\":\"Pod\""),
        Refused(400, "not an AdmissionReview"),
    ),
    missing_uid: (
        review_with(|r| {
            r["request"].as_object_mut().unwrap().remove("uid");
        }),
        Refused(400, "has no uid"),
    ),
    null_object_on_create: (
        review_with(|r| r["request"]["object"] = Value::Null),
        Refused(400, "CREATE request has no object"),
    ),
    pod_of_2_9_mib: (big_pod(), Decided("injected")),
    body_of_3_1_mib: (padded_to(3_100 * 1024), Refused(413, "over")),
    label_value_of_64_kb: (
        pod_with(|pod| pod["metadata"]["labels"]["big"] = json!("v".repeat(64 * 1024))),
        Decided("injected"),
    ),
    ten_thousand_containers: (
        pod_with(|pod| {
            pod["spec"]["containers"] =
                (0..10_000).map(|i| json!({"name": format!("c{i}"), "image": "x"})).collect()
        }),
        Decided("injected"),
    ),
    non_string_annotation_values: (
        pod_with(|pod| pod["metadata"]["annotations"] = json!({"a": 1, "b": true})),
        Denied("metadata.annotations.a is not a string"),
    ),
    same_named_sidecar_already_in_the_pod: (
        pod_with(|pod| pod["spec"]["containers"][0]["name"] = json!("example-sidecar")),
        Denied("adds container \"example-sidecar\", which the Pod already has"),
    ),
    empty_body: (Vec::new(), Refused(400, "expected a JSON object")),
    json_list: (b"[]".to_vec(), Refused(400, "expected a JSON object")),
}

/// The byte named is the first that is not UTF-8, also when the body has more of them further on
/// (the check that finds a bad body does not say where; the message is made by a second one).
#[test]
fn invalid_utf8_names_its_first_bad_byte() {
    let mut body = invalid_utf8();
    let first = body.iter().position(|&b| b == 0xff).expect("invalid_utf8 puts one in");
    body.extend_from_slice(b"\xe2\x82");
    let request = HttpRequest { method: "POST", content_type: Some("application/json"), body: Some(&body) };
    let answered = answer(request, &Config::builtin());
    let text = String::from_utf8_lossy(answered.body());
    assert_eq!(answered.status, 400, "{text}");
    assert!(text.ends_with(&format!(": not UTF-8 at byte {first}\n")), "{text:?}");
}
