//! `sidecar-injector audit`: which Pods the configuration in force has left behind, grouped by
//! the workload that would have to be restarted.
//!
//! Every Pod is put through [`review_pod`], the webhook's own code path, as if it were created
//! now: the engine answers "already injected" for a Pod whose status annotation matches today's
//! configuration (current), "injected by another configuration" for one that carries another hash
//! or profile set (stale), and "injected" for one that carries none (missed). Nothing here decides
//! injection a second time.

mod cluster;
mod report;
pub mod workload;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::{Selector, SelectorExt};
use serde::Serialize;
use serde_json::Value;

pub(crate) use cluster::controller_of;
#[cfg(feature = "heal")]
pub(crate) use cluster::webhook_of;
pub use cluster::{AuditError, restart, survey};
pub use report::{Report, Restarted};

use crate::engine::config::keys;
use crate::engine::registration::keeping_back;
use crate::{Config, Decision, SkipReason, review_pod};

/// What to audit.
#[derive(Debug, Clone)]
pub struct Target {
    /// The MutatingWebhookConfiguration, and the webhook in it, whose selectors say which Pods the
    /// webhook is sent.
    pub configuration: String,
    pub webhook: String,
    pub scope: Scope,
    /// Pods (and ReplicaSets, Jobs, Namespaces) asked for per request.
    pub page_size: u32,
}

#[derive(Debug, Clone)]
pub enum Scope {
    Namespace(String),
    AllNamespaces,
}

/// What the audit says of one Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Class {
    /// Injected with what the configuration gives it today.
    Current,
    /// Injected, with another hash or profile set than today's configuration would give.
    Stale,
    /// The webhook would inject it, and it carries no status annotation.
    Missed,
    /// The webhook never sends it: its namespaceSelector, objectSelector or matchConditions.
    NotSelected,
    /// Its label or annotation says `sidecar-injector.io/inject: "false"`.
    OptedOut,
    /// The configuration leaves it alone: a skipped namespace, hostNetwork, not requested.
    Skipped,
    /// Created now, it would be refused: a clash, or a profile that does not exist.
    Denied,
}

impl Class {
    /// Whether a workload with such a Pod needs a restart to be current.
    pub fn needs_restart(self) -> bool {
        matches!(self, Class::Stale | Class::Missed)
    }
}

/// The class of one Pod of `namespace`, and why, in the webhook's words. `conditions` are the
/// names of the webhook's live `matchConditions` when they are the ones `config` generates (empty
/// otherwise: conditions of another configuration cannot be told from here).
pub fn classify(
    pod: &Value,
    namespace: &str,
    object_selector: &Selector,
    conditions: &[String],
    config: &Config,
) -> (Class, String) {
    let labels: BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .and_then(|labels| serde_json::from_value(labels.clone()).ok())
        .unwrap_or_default();
    if !object_selector.matches(&labels) {
        return (Class::NotSelected, "the webhook's objectSelector does not match".into());
    }
    let reviewed = match review_pod(pod, namespace, "audit", config) {
        Ok(reviewed) => reviewed,
        Err(error) => return (Class::Denied, error.to_string()),
    };
    let decision = reviewed.summary.decision;
    // A whitespace-only annotation is "not requested" to the engine but sent: the condition only
    // asks whether the annotation is there.
    let asks = pod.pointer("/metadata/annotations").and_then(|a| a.get(keys::INJECT)).is_some();
    if let Decision::Skipped(reason) = decision
        && let Some(condition) = keeping_back(reason).filter(|c| conditions.iter().any(|live| live == c))
        && !(reason == SkipReason::NotRequested && asks)
    {
        return (
            Class::NotSelected,
            format!("the webhook's matchConditions keep it back ({condition}): {decision}"),
        );
    }
    let class = match &decision {
        Decision::Injected { .. } => Class::Missed,
        Decision::Skipped(SkipReason::AlreadyInjected) => Class::Current,
        Decision::Skipped(SkipReason::InjectedByOtherConfig) => Class::Stale,
        Decision::Skipped(SkipReason::OptedOut) => Class::OptedOut,
        Decision::Skipped(_) => Class::Skipped,
        Decision::Denied { .. } => Class::Denied,
    };
    (class, decision.to_string())
}

/// The workload a Pod belongs to: the Deployment behind its ReplicaSet, the CronJob behind its
/// Job, its StatefulSet, DaemonSet or other controller, or the Pod itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Workload {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl Workload {
    /// Whether `audit --restart` restarts it the way `kubectl rollout restart` does. Bare Pods and
    /// Jobs are never restarted: a Pod is not re-created by anything, and a Job would run again.
    pub fn restartable(&self) -> bool {
        matches!(self.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
    }

    /// The workload of the Pod with metadata `pod` in `namespace`: its controller, or, for a
    /// ReplicaSet or a Job, that one's own controller as `parent` gives it (a Deployment, a
    /// CronJob); the Pod itself when nothing controls it.
    pub(crate) fn of_pod(
        pod: &ObjectMeta,
        namespace: &str,
        parent: impl FnOnce(&OwnerReference) -> Option<OwnerReference>,
    ) -> Workload {
        let workload = |kind: &str, name: &str| Workload {
            namespace: namespace.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        };
        let Some(owner) = controller_of(pod) else {
            return workload("Pod", pod.name.as_deref().unwrap_or_default());
        };
        let owner = if controlled_in_turn(&owner) { parent(&owner).unwrap_or(owner) } else { owner };
        workload(&owner.kind, &owner.name)
    }
}

/// Whether an owner is itself made by a controller a user restarts instead: a Deployment's
/// ReplicaSet, a CronJob's Job.
pub(crate) fn controlled_in_turn(owner: &OwnerReference) -> bool {
    matches!(owner.kind.as_str(), "ReplicaSet" | "Job")
}

/// What the audit counted for one workload.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub pods: usize,
    pub by_class: BTreeMap<Class, usize>,
    /// The webhook's words for each Pod that is not current, with how many Pods each.
    pub reasons: BTreeMap<String, usize>,
    /// Its pod template itself carries an injection (the manifest went through `inject -f`): a
    /// restart brings back the same stale Pods, so the manifest must be injected again instead.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub template_injected: bool,
}

impl Counts {
    pub fn add(&mut self, class: Class, reason: String) {
        self.pods += 1;
        *self.by_class.entry(class).or_default() += 1;
        if class != Class::Current {
            *self.reasons.entry(reason).or_default() += 1;
        }
    }

    pub fn count(&self, class: Class) -> usize {
        self.by_class.get(&class).copied().unwrap_or_default()
    }

    pub fn needs_restart(&self) -> bool {
        self.by_class.keys().any(|class| class.needs_restart())
    }
}

/// What a person should do about a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Restart,
    /// A bare Pod or a Job: nothing re-creates it the same.
    RecreateByHand,
    /// The pod template carries an injection: restarting brings back the same Pods.
    InjectManifestAgain,
}

impl Action {
    pub fn of(workload: &Workload, counts: &Counts) -> Action {
        match (counts.needs_restart(), workload.restartable(), counts.template_injected) {
            (false, _, _) => Action::None,
            (true, false, _) => Action::RecreateByHand,
            (true, true, true) => Action::InjectManifestAgain,
            (true, true, false) => Action::Restart,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Restart => "restart",
            Action::RecreateByHand => "re-create by hand",
            Action::InjectManifestAgain => "inject the manifest again",
        }
    }
}
