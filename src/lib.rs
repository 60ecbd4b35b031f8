//! sidecar-injector: a Kubernetes mutating admission webhook that adds sidecars, init containers,
//! volumes, env vars, labels and annotations to Pods, driven by a small configuration.
//!
//! The [`engine`] is one pure function, [`review`]; the adapters only move bytes to and from it:
//! the command line (`src/main.rs`), the in-cluster HTTPS [`server`] (feature `server`, with
//! [`certs`]).

pub mod engine;

#[cfg(feature = "server")]
pub mod certs;
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(any(feature = "server", feature = "lambda"))]
pub mod logging;
#[cfg(feature = "server")]
pub mod server;

pub use engine::config::{Config, ConfigError};
pub use engine::inject::{Decision, SkipReason};
pub use engine::review::{ReviewError, Reviewed, Summary, review};
