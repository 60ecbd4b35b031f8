//! sidecar-injector: a Kubernetes mutating admission webhook that adds sidecars, init containers,
//! volumes, env vars, labels and annotations to Pods, driven by a small configuration.
//!
//! The [`engine`] (its own crate, `src/engine/`) is one pure function, [`review()`]; the adapters
//! only move bytes to and from it:
//! - the in-cluster HTTPS [`server`] (feature `server`), with its certificates and reloads;
//! - the AWS [`lambda`] behind a Function URL (feature `lambda`);
//! - the [`audit`] of a cluster's Pods against the configuration (feature `audit`), and the
//!   reconciler that acts on it, [`heal`] (feature `heal`);
//! - the command line, `src/bin/sidecar-injector/` (feature `cli`), which also starts the server;
//!   the Lambda's binary is `src/bin/sidecar-injector-lambda.rs`.
//!
//! What more than one adapter needs and is not pure lives here: [`config_file`], [`logging`] and
//! [`watched`].

#![warn(clippy::too_many_lines)]

pub use sidecar_injector_engine as engine;

#[cfg(feature = "audit")]
pub mod audit;
#[cfg(any(feature = "cli", feature = "server", feature = "lambda"))]
pub mod config_file;
#[cfg(feature = "heal")]
pub mod heal;
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(any(feature = "server", feature = "lambda"))]
pub mod logging;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod watched;

pub use engine::{
    Config, ConfigError, Decision, Level, ReviewError, Reviewed, Security, SkipReason, Summary, review,
    review_pod,
};
