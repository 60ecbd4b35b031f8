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

use kube_core::{GroupVersionKind, GroupVersionResource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::skeleton;

/// The operation of an admission request. Unlike kube-core's closed enum, an operation this
/// program does not know still parses, as [`Operation::Other`]: a webhook must answer "allowed"
/// for anything it does not handle, never fail to read it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
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
}

impl From<String> for Operation {
    fn from(text: String) -> Self {
        match text.as_str() {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            _ => Operation::Other(text),
        }
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Incoming {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub request: Option<Request>,
}

// Only the fields the decision needs; serde still checks that the rest is well-formed JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Request {
    pub uid: Option<String>,
    pub kind: GroupVersionKind,
    #[allow(dead_code)] // required by the API; parsed so a review without it is refused
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    /// Only the parts injection reads: see [`skeleton`](super::skeleton) for why that is enough.
    #[serde(default, deserialize_with = "skeleton::pod_skeleton")]
    pub object: Option<Value>,
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
    pub audit_annotations: BTreeMap<Cow<'a, str>, String>,
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
