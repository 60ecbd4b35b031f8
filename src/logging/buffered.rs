//! The server's review lines gathered and written to stdout together.
//!
//! One `write` per review would be a system call per request, a cost the server's throughput
//! under load shows (BENCHMARKS.md, "Ideas tried"). Review lines wait in
//! memory and go out together, at most [`FLUSH_AFTER`] after the first of them, or at once when
//! [`FULL`] bytes wait. Every other line (start, certificates, configuration, warnings, shutdown)
//! is rare and is written at once, after the lines waiting, so the order is kept. What a crash can
//! lose is bounded the same way: a panic flushes first (the hook below), and only a `SIGKILL` or
//! the OOM killer loses up to [`FLUSH_AFTER`] of review lines. Loggers to files commonly do the
//! same, over longer (rsyslog's file output: every second by default).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

/// The longest a review line waits.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// Past this many bytes waiting, they are written at once (about 128 review lines).
pub const FULL: usize = 32 * 1024;

/// Where lines are made (a `MakeWriter`), over `sink` (stdout in the server).
pub struct Buffered<W> {
    shared: Arc<Shared<W>>,
}

struct Shared<W> {
    state: Mutex<State<W>>,
    /// Wakes the flusher when a line starts waiting, and when it is to stop.
    wake: Condvar,
    /// [`FLUSH_AFTER`], but for tests that need the flusher never to come first.
    flush_after: Duration,
}

struct State<W> {
    waiting: Vec<u8>,
    sink: W,
    stop: bool,
}

impl<W> State<W>
where
    W: Write,
{
    fn flush(&mut self) {
        // As tracing-subscriber does with stdout: a line that cannot be written is dropped, not a
        // reason to stop serving.
        if !self.waiting.is_empty() {
            let _ = self.sink.write_all(&self.waiting);
            let _ = self.sink.flush();
            self.waiting.clear();
        }
    }
}

/// Stops the flusher and writes what waits, when dropped: hold it until the process ends.
#[must_use = "lines still waiting are written when this is dropped"]
pub struct FlushOnDrop<W> {
    shared: Arc<Shared<W>>,
    flusher: Option<JoinHandle<()>>,
}

impl<W> Drop for FlushOnDrop<W> {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl<W> Buffered<W>
where
    W: Write + Send + 'static,
{
    /// Lines for `sink`, the review lines gathered; the flusher thread started.
    pub fn start(sink: W) -> (Self, FlushOnDrop<W>) {
        Self::start_flushing_after(sink, FLUSH_AFTER)
    }

    fn start_flushing_after(sink: W, flush_after: Duration) -> (Self, FlushOnDrop<W>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { waiting: Vec::with_capacity(FULL), sink, stop: false }),
            wake: Condvar::new(),
            flush_after,
        });
        let flusher = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn({
                let shared = shared.clone();
                move || flush_while_running(&shared)
            })
            .expect("a thread can be started at start-up");
        let guard = FlushOnDrop { shared: shared.clone(), flusher: Some(flusher) };
        (Buffered { shared }, guard)
    }

    /// Write what waits now (the panic hook's way out).
    pub fn flush_now(&self) {
        self.shared.lock().flush();
    }
}

impl<W> Clone for Buffered<W> {
    fn clone(&self) -> Self {
        Buffered { shared: self.shared.clone() }
    }
}

impl<W> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, State<W>> {
        // A thread that panicked while writing left at worst a partial line: keep logging.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Sleeps until a line waits, then [`FLUSH_AFTER`], then writes all that waits; until stopped.
fn flush_while_running<W: Write>(shared: &Shared<W>) {
    let mut state = shared.lock();
    loop {
        state = shared
            .wake
            .wait_while(state, |s| s.waiting.is_empty() && !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        if !state.stop {
            let woken = shared.wake.wait_timeout_while(state, shared.flush_after, |s| !s.stop);
            state = woken.unwrap_or_else(|p| p.into_inner()).0;
        }
        state.flush();
        if state.stop {
            return;
        }
    }
}

/// One event's line.
pub struct Line<'a, W> {
    shared: &'a Shared<W>,
    waits: bool,
}

impl<W: Write> Write for Line<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        let was_empty = state.waiting.is_empty();
        state.waiting.extend_from_slice(bytes);
        if !self.waits || state.waiting.len() >= FULL {
            state.flush();
        } else if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for Buffered<W> {
    type Writer = Line<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { shared: &self.shared, waits: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line { shared: &self.shared, waits: is_review_line(meta) }
    }
}

/// The review lines, by their target of their own.
fn is_review_line(meta: &Metadata<'_>) -> bool {
    meta.target() == super::REVIEW_TARGET
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Buffered, FULL};
    use crate::engine::wire::Operation;
    use crate::logging::Sink;
    use crate::{Decision, Summary};

    /// Longer than any test: the flusher never writes first, so what is written, was written by
    /// what the test checks.
    const NEVER: Duration = Duration::from_secs(3600);

    /// The sink's text once it has `lines` lines; a bound against hanging, not a timing check.
    fn text_once(sink: &Sink, lines: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while sink.text().lines().count() < lines {
            assert!(Instant::now() < deadline, "only {:?} reached the sink", sink.text());
            std::thread::yield_now();
        }
        sink.text()
    }

    fn summary() -> Summary {
        Summary {
            uid: "u1".into(),
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "web".into(),
            operation: Operation::Create,
            decision: Decision::Injected { profiles: vec!["logs".into()] },
        }
    }

    /// `emit` run with the server's logging over a test sink, its flusher waiting `flush_after`.
    fn logged(flush_after: Duration, emit: impl FnOnce(&Sink)) -> Sink {
        let sink = Sink::default();
        let (writer, _flush) = Buffered::start_flushing_after(sink.clone(), flush_after);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .event_format(super::super::line::JsonLine { timer: super::super::line::Utc })
            .finish();
        tracing::subscriber::with_default(subscriber, || emit(&sink));
        sink
    }

    #[test]
    fn a_review_line_waits_for_the_flusher() {
        logged(NEVER, |sink| {
            crate::logging::review(&summary(), Duration::from_micros(41));
            assert_eq!(sink.text(), "", "a review line is not written at once");
        });
    }

    #[test]
    fn a_review_line_is_written_by_the_flusher_soon_after() {
        logged(super::FLUSH_AFTER, |sink| {
            crate::logging::review(&summary(), Duration::from_micros(41));
            let text = text_once(sink, 1);
            assert!(text.contains(r#""message":"review","uid":"u1""#), "{text}");
        });
    }

    #[test]
    fn other_lines_are_written_at_once_after_the_review_lines_waiting() {
        logged(NEVER, |sink| {
            crate::logging::review(&summary(), Duration::from_micros(41));
            crate::logging::refused(415, b"expected application/json");
            tracing::info!("ready");
            let text = sink.text();
            let messages: Vec<_> = text.lines().map(|l| l.split(r#""message":"#).nth(1).unwrap()).collect();
            assert_eq!(messages.len(), 3, "{text}");
            assert!(messages[0].starts_with(r#""review""#), "{text}");
            assert!(messages[1].starts_with(r#""request refused""#), "{text}");
            assert!(messages[2].starts_with(r#""ready""#), "{text}");
        });
    }

    #[test]
    fn lines_waiting_past_the_limit_are_written_at_once() {
        logged(NEVER, |sink| {
            let mut count = 0;
            while sink.text().is_empty() {
                crate::logging::review(&summary(), Duration::from_micros(41));
                count += 1;
                assert!(count * 200 < 2 * FULL, "nothing written after {count} lines");
            }
            assert!(sink.text().len() >= FULL, "written before the limit: {} bytes", sink.text().len());
            assert_eq!(sink.text().lines().count(), count);
        });
    }

    #[test]
    fn what_waits_is_written_when_the_guard_is_dropped() {
        let sink = Sink::default();
        let (writer, flush) = Buffered::start_flushing_after(sink.clone(), NEVER);
        let subscriber = tracing_subscriber::fmt().with_writer(writer).finish();
        tracing::subscriber::with_default(subscriber, || {
            crate::logging::review(&summary(), Duration::from_micros(41))
        });
        assert_eq!(sink.text(), "", "the line waits");
        drop(flush);
        assert_eq!(sink.text().lines().count(), 1, "{}", sink.text());
    }
}
