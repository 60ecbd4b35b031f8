//! What every request handler shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::metrics::Metrics;
use super::probes::Heartbeat;
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
