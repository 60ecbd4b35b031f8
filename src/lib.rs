//! sidecar-injector: a Kubernetes mutating admission webhook that adds sidecars, init containers,
//! volumes, env vars, labels and annotations to Pods, driven by a small configuration.
//!
//! The [`engine`] is one pure function, [`review`]; the adapters (the command line, and the
//! servers) only move bytes to and from it.

pub mod engine;

pub use engine::config::{Config, ConfigError};
pub use engine::inject::{Decision, SkipReason};
pub use engine::review::{ReviewError, Reviewed, Summary, review};
