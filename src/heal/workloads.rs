//! A workload as the reconciler reads and changes it: its rollout, its annotations, and the
//! restart, which carries what it was for so that no replica, and no later process, restarts it
//! twice for the same change.
//!
//! Three annotations (named in `audit/workload.rs`) keep the reconciler's state in the cluster,
//! where it outlives the process:
//! - `sidecar-injector.io/heal: "false"` on a workload: leave it alone (the user's);
//! - `sidecar-injector.io/healed` on the pod template, set by the restart itself: the configuration
//!   and the revisions whose Pods were behind ([`Key`]);
//! - `sidecar-injector.io/heal-failed` on a workload: its rollout failed under this configuration
//!   and generation; it waits for a new pod template or configuration.

use std::collections::BTreeSet;

use kube::Client;
use kube::api::Patch;
use serde_json::json;

use crate::audit::Workload;
use crate::audit::workload::{HEAL_FAILED, HEALED, Observed, RESTARTED_AT, failed_mark};

pub use crate::audit::workload::observe;

/// What a restart is for: the configuration in force, and the revisions whose Pods were behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub config: String,
    pub revisions: BTreeSet<String>,
}

impl Key {
    /// As the annotation holds it: `CONFIG:REV,REV`.
    pub fn annotation(&self) -> String {
        format!("{}:{}", self.config, self.revisions.iter().cloned().collect::<Vec<_>>().join(","))
    }

    pub fn parse(text: &str) -> Option<Key> {
        let (config, revisions) = text.split_once(':')?;
        let revisions = revisions.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect();
        Some(Key { config: config.to_owned(), revisions })
    }

    /// Whether a restart for `self` was for `other` too: the same configuration, and every
    /// revision behind now was behind then (as the old Pods of a rollout go, fewer are).
    pub fn covers(&self, other: &Key) -> bool {
        self.config == other.config && other.revisions.is_subset(&self.revisions)
    }
}

/// What `heal`'s last restart of `observed` was for.
pub fn healed(observed: &Observed) -> Option<Key> {
    observed.healed().and_then(Key::parse)
}

/// Restart `workload` as `kubectl rollout restart` does, recording `key` in the same change; only
/// if it is still as `observed` (a precondition on its resourceVersion), so that of two replicas,
/// or a replica and a person, only one restarts it. `Ok(false)` when it had changed.
pub async fn restart(
    client: &Client,
    workload: &Workload,
    observed: &Observed,
    key: &Key,
    now: &str,
) -> kube::Result<bool> {
    let patch = json!({
        "metadata": {"resourceVersion": observed.resource_version},
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now, HEALED: key.annotation()}}}},
    });
    match crate::audit::workload::patch(client, workload, &Patch::Merge(&patch)).await {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Mark `workload`'s rollout failed under `config`, at the generation the restart gave it.
pub async fn mark_failed(
    client: &Client,
    workload: &Workload,
    config: &str,
    generation: i64,
) -> kube::Result<()> {
    let patch = json!({"metadata": {"annotations": {HEAL_FAILED: failed_mark(config, generation)}}});
    crate::audit::workload::patch(client, workload, &Patch::Merge(&patch)).await
}

#[cfg(test)]
mod tests {
    use super::Key;

    #[test]
    fn a_key_reads_back_and_covers_what_is_left_of_its_revisions() {
        let key = Key::parse("abc123:r1,r2").unwrap();
        assert_eq!(key.annotation(), "abc123:r1,r2");
        assert!(key.covers(&Key::parse("abc123:r2").unwrap()), "the old Pods of a rollout go");
        assert!(!key.covers(&Key::parse("abc123:r3").unwrap()), "a new revision behind is a new change");
        assert!(!key.covers(&Key::parse("def456:r1").unwrap()), "a new configuration is a new change");
        assert_eq!(Key::parse("no colon"), None);
    }
}
