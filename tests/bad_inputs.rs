//! One table of hostile and broken inputs, each answered without a panic and with the status a
//! user would expect from the server or the Lambda (`engine::http_answer::answer` is what both return).

mod common;

use common::*;
use serde_json::{Value, json};
use sidecar_injector::engine::wire::ReviewResponse;
use sidecar_injector::Config;
use sidecar_injector::engine::http_answer::{MAX_BODY, answer};

enum Expect {
    /// Refused with this status, the body naming the problem.
    Refused(u16, &'static str),
    /// Answered 200 with this decision; an injected Pod's patch applies to the Pod.
    Decided(&'static str),
    /// Answered 200, refused as an admission decision, the message naming the problem.
    Denied(&'static str),
}

fn body(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).unwrap()
}

fn pod_with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut pod = small_pod();
    f(&mut pod);
    body(&pod_review(&pod, "shop"))
}

#[test]
fn bad_inputs() {
    let config = Config::builtin();
    let good = body(&pod_review(&small_pod(), "shop"));
    let mut invalid_utf8 = good.clone();
    let at = invalid_utf8.windows(5).position(|w| w == b"nginx").unwrap();
    invalid_utf8[at] = 0xff;
    // Replace the field `from` with `to` nested 10,000 lists deep.
    let deep = |from: &str, to: &str| {
        let text = String::from_utf8(good.clone()).unwrap();
        let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(text.contains(from));
        text.replacen(from, &format!("\"{to}\":{nested}"), 1).into_bytes()
    };
    // The Pod's restartPolicy (a field the skeleton skips) written with a JSON escape in it.
    let escaped = |value: &str| {
        let text = String::from_utf8(good.clone()).unwrap();
        assert!(text.contains("\"Always\""));
        text.replacen("\"Always\"", &format!("\"{value}\""), 1).into_bytes()
    };
    // A Pod of about 2.9 MiB: one env var with a large value, under the API server's 3 MiB.
    let big_pod = pod_with(|pod| {
        pod["spec"]["containers"][0]["env"] = json!([{"name": "BIG", "value": "x".repeat(2_900 * 1024)}])
    });
    assert!(big_pod.len() > 2_900 * 1024 && big_pod.len() < MAX_BODY);

    let rows: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("truncated JSON", good[..good.len() / 2].to_vec(), Expect::Refused(400, "EOF while parsing")),
        ("invalid UTF-8", invalid_utf8, Expect::Refused(400, "not UTF-8 at byte")),
        // Found by the review_bytes fuzz target: serde_json skips these where the skeleton skips.
        (
            "an unpaired high surrogate escape where the Pod is skipped",
            escaped(r#"Al\ud800ways"#),
            Expect::Refused(400, "unpaired UTF-16 surrogate escape"),
        ),
        (
            "an unpaired low surrogate escape",
            escaped(r#"Al\udc00ways"#),
            Expect::Refused(400, "unpaired UTF-16 surrogate escape"),
        ),
        (
            "a surrogate pair (an emoji) is text",
            escaped(r#"Al\ud83d\ude00ways"#),
            Expect::Decided("injected"),
        ),
        (
            "an escaped backslash before u is no escape",
            escaped(r#"Al\\ud800ways"#),
            Expect::Decided("injected"),
        ),
        (
            "nested 10,000 deep where the review is read",
            deep("\"labels\":{\"app\":\"web\"}", "labels"),
            Expect::Refused(400, "recursion limit exceeded"),
        ),
        (
            "nested 10,000 deep where it is skipped",
            deep("\"restartPolicy\":\"Always\"", "tolerations"),
            Expect::Decided("injected"),
        ),
        (
            "duplicate keys",
            String::from_utf8(good.clone())
                .unwrap()
                .replacen("\"uid\":", "\"uid\":\"a\",\"uid\":", 1)
                .into_bytes(),
            Expect::Refused(400, "duplicate field `uid`"),
        ),
        (
            "wrong apiVersion",
            String::from_utf8(good.clone()).unwrap().replacen("admission.k8s.io/v1", "v1", 1).into_bytes(),
            Expect::Refused(400, "not an AdmissionReview"),
        ),
        (
            "wrong kind",
            String::from_utf8(good.clone())
                .unwrap()
                .replacen("\"kind\":\"AdmissionReview\"", "\"kind\":\"Pod\"", 1)
                .into_bytes(),
            Expect::Refused(400, "not an AdmissionReview"),
        ),
        (
            "missing uid",
            {
                let mut r = pod_review(&small_pod(), "shop");
                r["request"].as_object_mut().unwrap().remove("uid");
                body(&r)
            },
            Expect::Refused(400, "has no uid"),
        ),
        (
            "object: null on CREATE",
            {
                let mut r = pod_review(&small_pod(), "shop");
                r["request"]["object"] = Value::Null;
                body(&r)
            },
            Expect::Refused(400, "CREATE request has no object"),
        ),
        ("a 2.9 MiB Pod", big_pod, Expect::Decided("injected")),
        (
            "a 3.1 MiB body",
            {
                let mut b = good.clone();
                b.resize(3_100 * 1024, b' ');
                b
            },
            Expect::Refused(413, "over"),
        ),
        (
            "a label value of 64 KB",
            pod_with(|pod| pod["metadata"]["labels"]["big"] = json!("v".repeat(64 * 1024))),
            Expect::Decided("injected"),
        ),
        (
            "10,000 containers",
            pod_with(|pod| {
                pod["spec"]["containers"] =
                    (0..10_000).map(|i| json!({"name": format!("c{i}"), "image": "x"})).collect()
            }),
            Expect::Decided("injected"),
        ),
        (
            "non-string annotation values",
            pod_with(|pod| pod["metadata"]["annotations"] = json!({"a": 1, "b": true})),
            Expect::Denied("metadata.annotations.a is not a string"),
        ),
        (
            "a same-named sidecar already in the Pod",
            pod_with(|pod| pod["spec"]["containers"][0]["name"] = json!("example-sidecar")),
            Expect::Denied("adds container \"example-sidecar\", which the Pod already has"),
        ),
        ("an empty body", Vec::new(), Expect::Refused(400, "expected a JSON object")),
        ("a JSON list", b"[]".to_vec(), Expect::Refused(400, "expected a JSON object")),
    ];

    for (name, body, expect) in rows {
        let answered = answer(Some("application/json"), &body, &config);
        let text = String::from_utf8_lossy(&answered.body).into_owned();
        match expect {
            Expect::Refused(status, message) => {
                assert_eq!(answered.status, status, "{name}: {text}");
                assert!(text.contains(message), "{name}: {text:?} should name {message:?}");
            }
            Expect::Decided(decision) => {
                assert_eq!(answered.status, 200, "{name}: {text}");
                let reviewed = answered.reviewed.unwrap();
                assert_eq!(reviewed.summary.decision.as_str(), decision, "{name}");
                // The patch must apply to the Pod. (serde_json's Value cannot hold the 10,000-deep
                // list; there the engine's own check on the parts it reads is what holds.)
                let patch = patch_of(&serde_json::from_slice(&answered.body).unwrap())
                    .expect("an injected Pod has a patch");
                if let Ok(request) = serde_json::from_slice::<Value>(&body) {
                    let mut pod = request["request"]["object"].clone();
                    json_patch::patch(&mut pod, &patch)
                        .unwrap_or_else(|e| panic!("{name}: the patch applies: {e}"));
                }
            }
            Expect::Denied(message) => {
                assert_eq!(answered.status, 200, "{name}: {text}");
                let response: ReviewResponse = serde_json::from_slice(&answered.body).unwrap();
                assert!(!response.response.allowed, "{name}");
                let got = response.response.status.as_ref().unwrap().message.as_ref();
                assert!(got.contains(message), "{name}: {got:?} should name {message:?}");
            }
        }
    }
}
