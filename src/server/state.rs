//! What every request handler shares.

use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use super::metrics::Metrics;
use crate::Config;

pub struct AppState {
    /// The configuration in force; a reload swaps it whole, so a review never sees half of one.
    pub config: ArcSwap<Config>,
    ready: AtomicBool,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        AppState {
            config: ArcSwap::from_pointee(config),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}
