//! What every request handler shares.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::metrics::Metrics;
use crate::Config;

pub struct AppState {
    /// The configuration in force; a reload swaps it whole, so a review never sees half of one.
    pub config: ArcSwap<Config>,
    ready: AtomicBool,
    pub metrics: Metrics,
    pub heartbeat: Heartbeat,
    /// How old the heartbeat may be before liveness fails.
    pub liveness_window: Duration,
}

impl AppState {
    pub fn new(config: Config, liveness_window: Duration) -> Self {
        AppState {
            config: ArcSwap::from_pointee(config),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
            heartbeat: Heartbeat::default(),
            liveness_window,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// When the review runtime last ran a task of its own.
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat { origin: Instant::now(), last_ms: AtomicU64::new(0) }
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        self.last_ms.store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long ago the last beat was.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}
