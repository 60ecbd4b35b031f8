//! The AdmissionReview in and out: the one function every adapter calls.
//!
//! ```
//! use sidecar_injector_engine::{Config, review};
//!
//! let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
//!     "uid":"705ab4f5","kind":{"group":"","version":"v1","kind":"Pod"},
//!     "resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",
//!     "namespace":"shop","object":{"metadata":{"name":"web"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}}}"#;
//! let reviewed = review(body, &Config::builtin()).unwrap();
//! let answer: serde_json::Value = serde_json::from_slice(&reviewed.body).unwrap();
//! assert_eq!(answer["response"]["uid"], "705ab4f5");
//! assert_eq!(answer["response"]["patchType"], "JSONPatch");
//! assert_eq!(reviewed.summary.decision.as_str(), "injected");
//! ```
//!
//! # Why not kube-core's `AdmissionReview`
//!
//! We use kube-core's `GroupVersionKind` and `GroupVersionResource`, but not its
//! `AdmissionRequest`/`AdmissionResponse`, for three reasons a user would feel:
//! - its `Operation` is a closed enum, so a review with an operation it does not know fails to
//!   parse, where a webhook must answer "allowed" for anything it does not handle;
//! - it parses `object` whole into a `DynamicObject`, where we read only the few parts injection
//!   needs (see `skeleton`), which makes a review several times cheaper;
//! - it serialises `patch` as a JSON array of numbers, where the API documents a base64 string.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::config::Config;
use super::decision::{Decision, SkipReason};
use super::error::ReviewError;
use super::inject::{self, Security};
use super::selection::Chosen;
use super::skeleton::{MetadataSkeleton, Object};
use super::wire::{
    AdmissionResponse, Incoming, KIND, Operation, PatchType, ReviewResponse, Status, V1, V1BETA1,
};

/// The answer to one review, and what the adapters need to log it without reading the body again.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The response AdmissionReview, serialised.
    pub body: Vec<u8>,
    /// The JSON Patch as JSON (the body carries it in base64), when the Pod is changed.
    pub patch: Option<Vec<u8>>,
    /// The warnings sent back to the user, as in the body.
    pub warnings: Vec<String>,
    /// The profiles injected, with the rule that chose each (for `review --explain`).
    pub chosen: Vec<Chosen>,
    /// The Pod's Pod Security level before and after injection, for a Pod CREATE that could be read.
    pub pod_security: Option<Security>,
    pub summary: Summary,
}

impl Reviewed {
    /// The patch's operations, for callers that apply it themselves (offline manifests).
    pub fn operations(&self) -> Option<json_patch::Patch> {
        let json = self.patch.as_deref()?;
        Some(serde_json::from_slice(json).expect("our patches are JSON Patches"))
    }
}

/// The fields of a review that may be logged: never the object, which can carry secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: Operation,
    pub decision: Decision,
}

/// Answer one AdmissionReview.
///
/// Pure: the same body and configuration always give the same bytes. `dryRun` changes nothing,
/// since answering has no side effects.
pub fn review(body: &[u8], config: &Config) -> Result<Reviewed, ReviewError> {
    let incoming = parse(body)?;
    if !(incoming.api_version == V1 || incoming.api_version == V1BETA1) || incoming.kind != KIND {
        return Err(ReviewError::NotAnAdmissionReview {
            api_version: incoming.api_version.into_owned(),
            kind: incoming.kind.into_owned(),
        });
    }
    let request = incoming.request.ok_or(ReviewError::MissingRequest)?;
    let uid = request.uid.filter(|uid| !uid.is_empty()).ok_or(ReviewError::MissingUid)?;
    let is_create = request.operation == Operation::Create;
    if is_create && request.object.is_none() {
        return Err(ReviewError::MissingObject { operation: request.operation });
    }

    let is_pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    let namespace = request
        .namespace
        .filter(|ns| !ns.is_empty())
        .map(Cow::into_owned)
        .or_else(|| object_str(&request.object, |m| &m.namespace))
        .unwrap_or_default();
    let name = Some(request.name)
        .filter(|name| !name.is_empty())
        .map(Cow::into_owned)
        .or_else(|| object_str(&request.object, |m| &m.name))
        .or_else(|| object_str(&request.object, |m| &m.generate_name))
        .unwrap_or_default();

    let outcome = match request.object {
        _ if !is_pod => inject::Outcome::skipped(SkipReason::NotAPod),
        _ if !request.sub_resource.is_empty() => inject::Outcome::skipped(SkipReason::Subresource),
        _ if !is_create => inject::Outcome::skipped(SkipReason::NotCreate),
        Some(Object::Pod(pod)) => inject::decide(&pod, body, &namespace, config)?,
        Some(Object::NotAnObject) | None => return Err(ReviewError::ObjectNotAnObject),
    };

    let body = response_body(&incoming.api_version, &uid, &outcome);
    Ok(Reviewed {
        body,
        patch: outcome.patch,
        warnings: outcome.warnings,
        chosen: outcome.chosen,
        pod_security: outcome.security,
        summary: Summary {
            uid: uid.into_owned(),
            kind: request.kind.kind.into_owned(),
            namespace,
            name,
            operation: request.operation,
            decision: outcome.decision,
        },
    })
}

/// Review `pod` as the webhook would review its creation in `namespace`: the Pod wrapped in an
/// AdmissionReview ([`pod_review`]) and answered by [`review`] itself, for callers that hold a Pod
/// rather than a review (offline manifests, the audit of a cluster), so that they can never decide
/// otherwise.
pub fn review_pod(pod: &Value, namespace: &str, uid: &str, config: &Config) -> Result<Reviewed, ReviewError> {
    review(&pod_review(pod, namespace, uid), config)
}

/// The AdmissionReview the API server sends for the creation of `pod` in `namespace`, serialised.
pub fn pod_review(pod: &Value, namespace: &str, uid: &str) -> Vec<u8> {
    let request = serde_json::json!({
        "apiVersion": V1,
        "kind": KIND,
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "object": pod,
        }
    });
    serde_json::to_vec(&request).expect("values always serialize")
}

/// The object's `metadata.name`, `generateName` or `namespace`, for the log when the request has
/// none.
fn object_str<'b>(
    object: &'b Option<Object>,
    field: fn(&'b MetadataSkeleton) -> &'b Option<Cow<'b, str>>,
) -> Option<String> {
    let value = field(object.as_ref()?.metadata()?).as_deref()?;
    Some(value.to_owned()).filter(|v| !v.is_empty())
}

/// Parse quickly; only when that fails, parse again to say where.
fn parse(body: &[u8]) -> Result<Incoming<'_>, ReviewError> {
    let whole = |message: String| ReviewError::Malformed { path: "(top level)".into(), message };
    // serde would read a top-level list as a struct's fields in order, and complain about them.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(whole("expected a JSON object".into()));
    }
    // JSON is UTF-8 (RFC 8259). serde_json checks the strings it reads, not those it skips; check
    // them all, so that no review is answered whose bytes the API server could not have sent.
    // Checked once here, the body is read as text, and serde_json does not check each string
    // again. simdutf8 does not say where a body fails, so that is asked again of the standard
    // library.
    let text = simdutf8::basic::from_utf8(body).map_err(|_| {
        let at = std::str::from_utf8(body).err().map_or(0, |e| e.valid_up_to());
        whole(format!("not UTF-8 at byte {at}"))
    })?;
    if let Some(at) = lone_surrogate(body) {
        return Err(whole(format!("an unpaired UTF-16 surrogate escape at byte {at}")));
    }
    serde_json::from_str(text).map_err(|first| {
        let mut de = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, Incoming>(&mut de) {
            // serde_path_to_error says "." at the top, and "?" where it lost track.
            Err(e) if !matches!(e.path().to_string().as_str(), "." | "?") => {
                ReviewError::Malformed { path: e.path().to_string(), message: e.into_inner().to_string() }
            }
            _ => whole(first.to_string()),
        }
    })
}

/// Where `body` has a `\uXXXX` escape of half a UTF-16 surrogate pair with no other half: JSON
/// syntax, but no text, as invalid UTF-8 is none. serde_json refuses it in the strings it reads
/// but not in the subtrees the skeleton skips (found by the `review_bytes` fuzz target), so it is
/// looked for here, in the whole body. Outside strings a backslash is a syntax error the parser
/// reports, so scanning escapes from left to right is enough.
fn lone_surrogate(body: &[u8]) -> Option<usize> {
    let hex = |at: usize| {
        let digits = std::str::from_utf8(body.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'\\', &body[i..]) {
        let at = i + offset;
        if body.get(at + 1) != Some(&b'u') {
            i = (at + 2).min(body.len()); // any other escape, `\\` included
            continue;
        }
        // A malformed escape is left for the parser to report.
        let unit = hex(at + 2)?;
        i = at + 6;
        match unit {
            0xD800..=0xDBFF => match (body.get(at + 6..at + 8), hex(at + 8)) {
                (Some(b"\\u"), Some(0xDC00..=0xDFFF)) => i = at + 12,
                _ => return Some(at),
            },
            0xDC00..=0xDFFF => return Some(at),
            _ => {}
        }
    }
    None
}

/// The response AdmissionReview to a request with `uid`, carrying out `outcome`, serialised.
fn response_body(api_version: &str, uid: &str, outcome: &inject::Outcome) -> Vec<u8> {
    let mut audit = BTreeMap::from([("decision".into(), outcome.decision.as_str().into())]);
    let status = match &outcome.decision {
        Decision::Injected { profiles } => {
            audit.insert("profiles".into(), profiles.join(",").into());
            None
        }
        Decision::Skipped(_) => {
            audit.insert("reason".into(), outcome.decision.reason().into());
            None
        }
        Decision::Denied { message } => Some(Status {
            status: "Failure".into(),
            message: message.into(),
            reason: "Forbidden".into(),
            code: 403,
        }),
    };
    let response = AdmissionResponse {
        uid: uid.into(),
        allowed: status.is_none(),
        status,
        patch_type: outcome.patch.as_ref().map(|_| PatchType::JsonPatch),
        patch: None, // written below
        audit_annotations: audit,
        warnings: Cow::Borrowed(&outcome.warnings),
    };
    let answer = ReviewResponse { api_version: api_version.into(), kind: KIND.into(), response };
    let base64 = base64_simd::STANDARD;
    let encoded_len = |json: &Vec<u8>| base64.encoded_length(json.len());
    let mut body = Vec::with_capacity(512 + outcome.patch.as_ref().map_or(0, encoded_len));
    serde_json::to_writer(&mut body, &answer).expect("responses always serialize");
    if let Some(json) = &outcome.patch {
        // The patch goes in last, encoded in place: through serde it would be encoded into a
        // string, copied, and scanned byte by byte for characters to escape, which base64 has
        // none of. It goes before the braces that close `response` and the review, which serde
        // writes last because `response` is the review's last field and the response's own last
        // field is always written (`the_patch_is_spliced_into_the_response` holds that).
        body.truncate(body.len() - 2);
        body.extend_from_slice(br#","patch":""#);
        let at = body.len();
        body.resize(at + encoded_len(json), 0);
        let written = base64.encode(json, base64_simd::Out::from_slice(&mut body[at..])).len();
        debug_assert_eq!(at + written, body.len());
        body.extend_from_slice(br#""}}"#);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spliced body is the response serde would write with the patch in it: this fails if
    /// `response` stops being the review's last field, or the response's fields change so that the
    /// splice lands elsewhere.
    #[test]
    fn the_patch_is_spliced_into_the_response() {
        let body = include_bytes!("../../tests/fixtures/pod-create-review.json");
        let reviewed = review(body, &Config::builtin()).unwrap();
        let patch = reviewed.patch.clone().expect("the built-in configuration injects");
        let spliced: Value = serde_json::from_slice(&reviewed.body).expect("the body is JSON");
        let mut expected: ReviewResponse = serde_json::from_slice(&reviewed.body).unwrap();
        expected.response.patch = None;
        let mut expected = serde_json::to_value(&expected).unwrap();
        expected["response"]["patch"] = base64_simd::STANDARD.encode_to_string(&patch).into();
        assert_eq!(spliced, expected);
        assert!(reviewed.body.ends_with(b"\"}}"), "the patch is the last thing written");
    }
}
