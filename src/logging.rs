//! The adapters' log lines: JSON, one per review, never the body (Pods carry secrets in env vars,
//! and the Lambda's path carries its token).

use std::time::Duration;

use crate::Summary;

#[cfg(feature = "server")]
mod buffered;
mod line;

#[cfg(test)]
use sink::Sink;

/// The target of the review lines, and of no other: the server writes these together (see
/// `logging/buffered.rs`), and a pipeline can select them by it.
pub const REVIEW_TARGET: &str = "sidecar_injector::review";

/// JSON lines on stdout, each written as it is logged (the Lambda's: its environment is frozen
/// between invocations, so nothing may wait). Levels from `RUST_LOG` (default `info`): a level
/// (`debug`), targets with levels (`info,sidecar_injector=debug`). Parsed by `filter::Targets`, not
/// `EnvFilter`, whose span and field matching bring the whole `regex` crate into every binary, the
/// Lambda's included.
pub fn init() {
    install(std::io::stdout);
}

/// As [`init`], but the review lines wait up to 100 ms to be written together (see
/// `logging/buffered.rs`); a panic writes them first. Hold what this returns until the end: lines
/// still waiting are written when it is dropped.
#[cfg(feature = "server")]
#[must_use = "lines still waiting are written when this is dropped"]
pub fn init_buffered() -> impl Drop {
    let (writer, flush) = buffered::Buffered::start(std::io::stdout());
    let on_panic = writer.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        on_panic.flush_now();
        previous(info);
    }));
    install(writer);
    flush
}

fn install<W>(writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let levels = std::env::var("RUST_LOG").ok().and_then(|directives| directives.parse().ok());
    let levels = levels
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    let json = tracing_subscriber::fmt::layer()
        .event_format(line::JsonLine { timer: line::Utc })
        .with_writer(writer);
    tracing_subscriber::registry().with(json).with(levels).init();
}

/// The line for an answered review. Fields as `&str`, not `%` (Display): each is then written as
/// it is, where Display formats it into a new string first.
pub fn review(summary: &Summary, latency: Duration) {
    tracing::info!(
        target: REVIEW_TARGET,
        uid = summary.uid.as_str(),
        kind = summary.kind.as_str(),
        namespace = summary.namespace.as_str(),
        name = summary.name.as_str(),
        operation = summary.operation.as_str(),
        decision = summary.decision.as_str(),
        reason = summary.decision.reason(),
        latency_us = latency.as_micros() as u64,
        "review"
    );
}

/// The line for a refused request: its status and the start of the reason.
pub fn refused(status: u16, reason: &[u8]) {
    let reason = String::from_utf8_lossy(&reason[..reason.len().min(300)]);
    tracing::warn!(status, decision = "error", reason = %reason.trim_end(), "request refused");
}

/// The line for one answer of the review route: the review's, or the refusal's.
pub fn answered(answer: &crate::engine::http_answer::HttpAnswer, latency: Duration) {
    match answer.reviewed() {
        Some(reviewed) => review(&reviewed.summary, latency),
        None => refused(answer.status, answer.body()),
    }
}

/// What a test's subscriber wrote, shared with the test.
#[cfg(test)]
mod sink {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Sink {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
