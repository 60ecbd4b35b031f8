//! The AdmissionReview as it travels: what we read of a request, and the response we write.
//!
//! The response types are public and deserialise too, so that whoever reads our answers (the
//! tests, an operator's tooling) reads them with the same types we write them with.
//!
//! ```
//! use sidecar_injector_engine::wire::{Operation, PatchType, ReviewResponse};
//! use sidecar_injector_engine::{Config, review};
//!
//! let body = include_bytes!("../../tests/fixtures/pod-create-review.json");
//! let answer = review(body, &Config::builtin()).unwrap();
//! let parsed: ReviewResponse = serde_json::from_slice(&answer.body).unwrap();
//! assert!(parsed.response.allowed);
//! assert_eq!(parsed.response.patch_type, Some(PatchType::JsonPatch));
//! assert_eq!(answer.summary.operation, Operation::Create);
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::skeleton;

/// The AdmissionReview's versions this webhook answers (`v1beta1` in its own version) and kind.
pub(crate) const V1: &str = "admission.k8s.io/v1";
pub(crate) const V1BETA1: &str = "admission.k8s.io/v1beta1";
pub(crate) const KIND: &str = "AdmissionReview";

/// The operation of an admission request. Unlike kube-core's closed enum, an operation this
/// program does not know still parses, as [`Operation::Other`]: a webhook must answer "allowed"
/// for anything it does not handle, never fail to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
#[non_exhaustive]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
    Other(String),
}

impl Operation {
    pub fn as_str(&self) -> &str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
            Operation::Other(other) => other,
        }
    }

    fn known(text: &str) -> Option<Operation> {
        Some(match text {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Operation;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            // A known operation is read without allocating.
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Operation, E> {
                Ok(Operation::known(text).unwrap_or_else(|| Operation::Other(text.to_owned())))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl From<Operation> for String {
    fn from(operation: Operation) -> String {
        match operation {
            Operation::Other(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The only patch type admission webhooks may answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum PatchType {
    #[serde(rename = "JSONPatch")]
    JsonPatch,
}

// Strings are borrowed from the body where it has no escapes: a review reads a dozen of them,
// and an allocation each was a measurable part of its cost.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Incoming<'b> {
    #[serde(default, borrow)]
    pub api_version: Cow<'b, str>,
    #[serde(default, borrow)]
    pub kind: Cow<'b, str>,
    #[serde(borrow)]
    pub request: Option<AdmissionRequest<'b>>,
}

// Only the fields the decision needs; serde still checks that the rest is well-formed JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionRequest<'b> {
    #[serde(borrow)]
    pub uid: Option<Cow<'b, str>>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'b>,
    #[allow(dead_code)] // required by the API; parsed so a review without it is refused
    #[serde(borrow)]
    pub resource: GroupVersionResource<'b>,
    #[serde(default, borrow)]
    pub sub_resource: Cow<'b, str>,
    #[serde(default, borrow)]
    pub name: Cow<'b, str>,
    #[serde(default, borrow)]
    pub namespace: Option<Cow<'b, str>>,
    pub operation: Operation,
    /// Only the parts injection reads: see [`skeleton`](super::skeleton) for why that is enough.
    #[serde(default, borrow, deserialize_with = "skeleton::object")]
    pub object: Option<skeleton::Object<'b>>,
}

/// metav1.GroupVersionKind: every field required, as kube-core's, but borrowed.
#[derive(Deserialize)]
pub(crate) struct GroupVersionKind<'b> {
    #[serde(borrow)]
    pub group: Cow<'b, str>,
    #[allow(dead_code)] // required by the API
    #[serde(borrow)]
    pub version: Cow<'b, str>,
    #[serde(borrow)]
    pub kind: Cow<'b, str>,
}

/// metav1.GroupVersionResource, likewise.
#[allow(dead_code)] // required by the API
#[derive(Deserialize)]
pub(crate) struct GroupVersionResource<'b> {
    #[serde(borrow)]
    pub group: Cow<'b, str>,
    #[serde(borrow)]
    pub version: Cow<'b, str>,
    #[serde(borrow)]
    pub resource: Cow<'b, str>,
}

/// The response AdmissionReview.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse<'a> {
    pub api_version: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub response: AdmissionResponse<'a>,
}

/// The answer to one request: borrowed when we write it, owned when it is read back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse<'a> {
    pub uid: Cow<'a, str>,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<PatchType>,
    /// The JSON Patch, base64-encoded, as the API documents it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(default)]
    pub audit_annotations: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub warnings: Cow<'a, [String]>,
}

/// metav1.Status, as much of it as a denial needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Status<'a> {
    pub status: Cow<'a, str>,
    pub message: Cow<'a, str>,
    pub reason: Cow<'a, str>,
    pub code: u16,
}
