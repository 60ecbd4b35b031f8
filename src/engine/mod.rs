//! The pure core: AdmissionReview bytes and a [`Config`] in, AdmissionReview bytes out.
//!
//! Nothing here does I/O, reads a clock or keeps global state, so the in-cluster server, the Lambda
//! and the command line all give the same answer to the same review. The flow:
//!
//! ```text
//! http_answer::answer  what an HTTP adapter answers: 415, 413, 400 or 200 with the review below
//! review::review       parse the AdmissionReview (the Pod only as far as `skeleton` needs),
//!                      answer what is not a Pod CREATE
//!   inject::decide       opted out? skipped? which profiles? already injected? any clash?
//!     resolve              each profile for this Pod: parameters, built-ins, copyEnv,
//!                          shareVolumeMounts, filled (`template`) and checked (`fields`)
//!     plan::Plan           the additions, and nothing else
//!     patch                the plan as JSON Patch, checked against the plan applied directly
//!   wire                 the request as far as it is read; the response: uid echoed, base64
//!                        patch, warnings, audit annotations
//! manifests::inject    the same review for each Pod and pod template of offline manifests
//! config               a configuration checked once, at load, every error with its field path
//! selection            where a profile applies by itself (selector, namespaces), and which rule
//!                      chose each profile for a Pod
//! registration         the MutatingWebhookConfiguration for a configuration, with the
//!                      matchConditions (CEL, `cel`) that keep Pods it leaves alone from being sent
//! names                Kubernetes' rules for names, label values and keys
//! ```
//!
//! # How purity is enforced
//!
//! This is a crate of its own (`src/engine/Cargo.toml`) whose dependencies are parsers, hashes and
//! Kubernetes types only: no async runtime, HTTP stack or Kubernetes client can be reached from
//! here. `src/engine/clippy.toml` refuses the standard library's clock, environment, file,
//! network, process and thread functions and types, and the lints below make any use an error;
//! CI runs clippy on every change. A function that needs the time or a file takes it as an argument.

#![deny(clippy::disallowed_methods, clippy::disallowed_types, clippy::disallowed_macros)]
#![warn(clippy::too_many_lines)]

mod cel;
pub mod config;
mod decision;
mod error;
mod fields;
pub mod http_answer;
pub mod inject;
pub mod manifests;
mod names;
mod patch;
mod plan;
mod pod_security;
mod pod_view;
pub mod registration;
mod resolve;
pub mod review;
pub mod selection;
mod skeleton;
mod template;
pub mod wire;

pub use config::Config;
pub use decision::{Decision, SkipReason};
pub use error::{ConfigError, ReviewError};
pub use inject::Security;
pub use pod_security::Level;
pub use review::{Reviewed, Summary, pod_review, review, review_pod};
