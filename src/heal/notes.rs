//! What the reconciler says: an Event on each workload it restarts, fails or leaves alone, with
//! the reason or the action a person should take, as `audit` names them.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event as Note, EventType};

use super::reconcile::Reconciler;
use super::workloads::Key;
use crate::audit::workload::Observed;
use crate::audit::{Action, Workload};

/// Why a workload behind is not restarted: the action a person should take instead, in `audit`'s
/// words where it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftAlone {
    /// A bare Pod or a Job: nothing re-creates it the same.
    ByHand,
    /// `sidecar-injector.io/heal: "false"`.
    OptedOut,
    /// The pod template itself carries an injection: a restart brings back the same Pods.
    TemplateInjected,
    /// Its rollout failed under this configuration: it waits for a new template or configuration.
    Failed,
    /// The reconciler's own namespace.
    OwnNamespace,
}

impl LeftAlone {
    pub fn action(self) -> &'static str {
        match self {
            LeftAlone::ByHand => Action::RecreateByHand.as_str(),
            LeftAlone::OptedOut => "none: heal is off for it",
            LeftAlone::TemplateInjected => Action::InjectManifestAgain.as_str(),
            LeftAlone::Failed => "fix the sidecar, or change the pod template",
            LeftAlone::OwnNamespace => "none: the reconciler's own namespace",
        }
    }
}

impl Reconciler {
    pub(super) async fn leave_alone(&mut self, workload: &Arc<Workload>, key: &Key, why: LeftAlone) {
        if !self.reported.insert((workload.clone(), key.annotation())) {
            return;
        }
        self.metrics.left_alone(why.action());
        tracing::info!(workload = %name(workload), action = why.action(), "heal: left alone");
        let message =
            format!("left behind and not restarted by sidecar-injector heal; action: {}", why.action());
        self.note_on(&reference(workload), EventType::Normal, "NotHealed", message).await;
    }

    pub(super) async fn note(&self, observed: &Observed, type_: EventType, reason: &str, message: String) {
        self.note_on(&observed.reference, type_, reason, message).await;
    }

    async fn note_on(&self, regarding: &ObjectReference, type_: EventType, reason: &str, message: String) {
        let note = Note {
            type_,
            reason: reason.into(),
            note: Some(message),
            action: "Heal".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&note, regarding).await {
            tracing::warn!(%error, reason, "heal: could not publish an Event");
        }
    }
}

/// Why a workload is restarted, as its Event and log line say it.
pub(super) fn reason(missed: usize, stale: usize) -> String {
    let pods = |n: usize| if n == 1 { "1 Pod".to_owned() } else { format!("{n} Pods") };
    let mut parts = Vec::new();
    if missed > 0 {
        parts.push(format!("missed: {} created while the webhook was unreachable", pods(missed)));
    }
    if stale > 0 {
        parts.push(format!("stale: {} injected-by-other-config", pods(stale)));
    }
    parts.join("; ")
}

/// A reference to `workload` for an Event, by kind (without a uid, which only a read gives).
fn reference(workload: &Workload) -> ObjectReference {
    let api_version = match workload.kind.as_str() {
        "Pod" => "v1",
        "Job" | "CronJob" => "batch/v1",
        _ => "apps/v1",
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(workload.kind.clone()),
        name: Some(workload.name.clone()),
        namespace: Some(workload.namespace.clone()),
        ..ObjectReference::default()
    }
}

pub(super) fn name(workload: &Workload) -> String {
    format!("{}/{}/{}", workload.namespace, workload.kind, workload.name)
}

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn a_restart_reason_names_each_class_behind_with_its_count() {
        assert_eq!(reason(1, 0), "missed: 1 Pod created while the webhook was unreachable");
        assert_eq!(reason(0, 3), "stale: 3 Pods injected-by-other-config");
        assert_eq!(
            reason(2, 1),
            "missed: 2 Pods created while the webhook was unreachable; stale: 1 Pod injected-by-other-config"
        );
    }
}
