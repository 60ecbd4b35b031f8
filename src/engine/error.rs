//! The engine's two errors: a configuration refused when it is loaded, and a body that cannot be
//! answered as an AdmissionReview. Every module that reports one names it from here.

use super::wire::{KIND, Operation, V1, V1BETA1};

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is neither YAML nor JSON.
    #[error("configuration is not valid YAML or JSON: {0}")]
    Syntax(String),
    /// A field is wrong; `path` says which, as in `profiles.proxy.containers[0].image`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConfigError {
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { path: path.into(), message: message.into() }
    }
}

/// Why a body could not be answered as an AdmissionReview. Adapters answer HTTP 400 with this text;
/// the CLI exits non-zero with it.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or JSON of the wrong shape; `path` is where the problem is.
    #[error("malformed AdmissionReview at {path}: {message}")]
    Malformed { path: String, message: String },
    /// Valid JSON, but another kind of object or version.
    #[error(
        "not an AdmissionReview: expected apiVersion {V1} or {V1BETA1} and kind {KIND}, got apiVersion {api_version:?} and kind {kind:?}"
    )]
    NotAnAdmissionReview { api_version: String, kind: String },
    /// An AdmissionReview with no `request` (a response, perhaps).
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    /// The request has no `uid`, so no answer could be matched to it.
    #[error("the AdmissionReview request has no uid")]
    MissingUid,
    /// A CREATE must carry the object being created.
    #[error("the {operation} request has no object")]
    MissingObject { operation: Operation },
    /// The object to inject into is not a JSON object.
    #[error("the request's object is not a JSON object")]
    ObjectNotAnObject,
    /// The patch we built does not turn the Pod into the one we intended: a bug in this program.
    /// It is answered as an error so that no wrong patch ever reaches a cluster.
    #[error("internal error, please report it: {0}")]
    PatchMismatch(String),
}
