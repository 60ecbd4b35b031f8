//! The pure core: AdmissionReview bytes and a [`Config`] in, AdmissionReview bytes out.
//!
//! Nothing here does I/O, reads a clock or keeps global state, so the in-cluster server, the Lambda
//! and the command line all give the same answer to the same review. The flow:
//!
//! ```text
//! review::review   parse the AdmissionReview (the Pod only as far as `skeleton` needs),
//!                  answer what is not a Pod CREATE
//!   inject::decide   opted out? skipped? which profiles? already injected? any clash?
//!     inject::Plan     the additions, and nothing else
//!     patch            the plan as JSON Patch, checked against the plan applied directly
//!   review::Response uid echoed, base64 patch, warnings, audit annotations
//! ```

pub mod config;
pub mod http;
pub mod inject;
pub mod manifests;
mod names;
mod patch;
pub mod review;
mod skeleton;
