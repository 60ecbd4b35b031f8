//! The background task that keeps what the server serves fresh: the configuration file and a
//! mounted certificate read again when their content changes (see `watched`), and self-managed
//! certificates renewed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::certs::{CertFiles, CurrentCert, Loaded};
use super::self_managed::Managed;
use super::state::AppState;
use crate::watched::Watched;
use crate::{Config, config_file};

/// What keeps the serving certificate fresh after start.
pub(super) enum Renewal {
    Fixed,
    Files(CertFiles),
    Managed(Box<Managed>),
}

/// Everything the background task checks on each tick.
pub(super) struct Reloads {
    /// The configuration file, when there is one.
    pub config: Option<(PathBuf, Watched)>,
    pub renewal: Renewal,
}

impl Reloads {
    /// Check every `interval`, until the task is aborted.
    pub async fn run(mut self, state: Arc<AppState>, current: Arc<CurrentCert>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let reloaded =
                self.config.as_mut().and_then(|(path, watched)| reload_config(&state, path, watched));
            if let (Some(config), Renewal::Managed(managed)) = (reloaded, &mut self.renewal)
                && let Err(error) = managed.follow_config(&config, OffsetDateTime::now_utc()).await
            {
                tracing::warn!(%error, "the new configuration's matchConditions were not written; the previous ones stay");
            }
            let next = match &mut self.renewal {
                Renewal::Fixed => Ok(None),
                Renewal::Files(files) => files.load_if_changed().map_err(|e| e.to_string()),
                Renewal::Managed(managed) => {
                    managed.tick(OffsetDateTime::now_utc()).await.map_err(|e| e.to_string())
                }
            };
            renew_cert(&state, next, &current);
        }
    }
}

/// Swap in the configuration file's new content, if it changed and is valid, and give it. An
/// invalid file is logged and counted, and the configuration in force keeps serving.
fn reload_config(state: &AppState, path: &Path, watched: &mut Watched) -> Option<Arc<Config>> {
    let bytes = match watched.read_if_changed() {
        Ok(Some(mut contents)) => contents.remove(0),
        // Unchanged; or mid-swap of a ConfigMap symlink, or deleted: try again on the next tick.
        Ok(None) | Err(_) => return None,
    };
    match config_file::parse(path, &bytes) {
        Ok(config) => {
            let config = Arc::new(config);
            state.config.store(config.clone());
            state.metrics.config_reload(true);
            tracing::info!(path = %path.display(), "configuration reloaded");
            Some(config)
        }
        Err(error) => {
            state.metrics.config_reload(false);
            tracing::error!(%error, "new configuration refused; the previous one stays in force");
            None
        }
    }
}

fn renew_cert(state: &AppState, next: Result<Option<Loaded>, String>, current: &CurrentCert) {
    match next {
        Ok(None) => {}
        Ok(Some(loaded)) => {
            current.replace(&loaded);
            state.metrics.cert_reload(true);
            state.metrics.cert_expiry(loaded.not_after);
            tracing::info!(serial = %loaded.serial, not_after = loaded.not_after, "serving certificate replaced");
        }
        Err(error) => {
            state.metrics.cert_reload(false);
            tracing::warn!(%error, "new certificate refused; the previous one stays in use");
        }
    }
}
