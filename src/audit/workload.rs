//! A workload as read from the cluster: its rollout, its annotations, and whether its pod template
//! itself carries an injection. `audit` reads it to advise, `heal` to act.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use super::Workload;
use crate::engine::config::keys::STATUS;

/// `"false"` on a workload: `heal` leaves it alone.
pub const HEAL: &str = "sidecar-injector.io/heal";
/// On a pod template, set by `heal`'s restart: what the restart was for.
pub const HEALED: &str = "sidecar-injector.io/healed";
/// On a workload, set by `heal`: its rollout failed under a configuration, at a generation.
pub const HEAL_FAILED: &str = "sidecar-injector.io/heal-failed";
/// What `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// A Deployment, StatefulSet or DaemonSet, as read.
#[derive(Debug, Clone)]
pub struct Observed {
    pub reference: ObjectReference,
    pub resource_version: String,
    pub generation: i64,
    /// The rollout is finished: the controller has seen the latest spec, and every replica is of
    /// the latest template and available.
    pub rolled_out: bool,
    annotations: BTreeMap<String, String>,
    template: PodTemplateSpec,
}

impl Observed {
    /// `sidecar-injector.io/heal: "false"`.
    pub fn opted_out(&self) -> bool {
        self.annotations.get(HEAL).is_some_and(|v| v == "false")
    }

    /// The pod template itself carries an injection (the manifest went through `inject -f`):
    /// a restart brings back the same Pods.
    pub fn template_injected(&self) -> bool {
        self.template_annotation(STATUS).is_some()
    }

    /// What `heal`'s last restart was for, as the annotation has it.
    pub fn healed(&self) -> Option<&str> {
        self.template_annotation(HEALED)
    }

    /// When the last restart was made, as `kubectl rollout restart` writes it.
    pub fn restarted_at(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.template_annotation(RESTARTED_AT)?.parse().ok()
    }

    /// A Pod as its controller would create it now, from the pod template.
    pub fn pod(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self.template.metadata.as_ref().map_or_else(|| serde_json::json!({}), |m| serde_json::json!(m)),
            "spec": self.template.spec.as_ref().map_or_else(|| serde_json::json!({}), |s| serde_json::json!(s)),
        })
    }

    fn template_annotation(&self, key: &str) -> Option<&str> {
        let annotations = self.template.metadata.as_ref()?.annotations.as_ref()?;
        annotations.get(key).map(String::as_str)
    }

    /// Whether its rollout failed under `config` at its present generation.
    pub fn failed_under(&self, config: &str) -> bool {
        self.annotations.get(HEAL_FAILED).is_some_and(|v| *v == failed_mark(config, self.generation))
    }
}

/// The value of [`HEAL_FAILED`] for a configuration and generation.
pub fn failed_mark(config: &str, generation: i64) -> String {
    format!("{config}/{generation}")
}

/// The workload, or `None` when it is gone or not of a kind the reconciler restarts.
pub async fn observe(client: &Client, workload: &Workload) -> kube::Result<Option<Observed>> {
    Ok(match workload.kind.as_str() {
        "Deployment" => get::<Deployment>(client, workload).await?.map(|d| {
            let (spec, status) = (d.spec, d.status.unwrap_or_default());
            let want = spec.replicas.unwrap_or(1);
            let rolled = status.updated_replicas == Some(want)
                && status.available_replicas.unwrap_or(0) == want
                && status.replicas.unwrap_or(0) == want;
            observed(workload, d.metadata, spec.template, status.observed_generation, rolled)
        }),
        "StatefulSet" => get::<StatefulSet>(client, workload).await?.map(|s| {
            let (spec, status) = (s.spec, s.status.unwrap_or_default());
            let want = spec.replicas.unwrap_or(1);
            let rolled = status.updated_replicas == Some(want)
                && status.ready_replicas.unwrap_or(0) == want
                && status.current_revision == status.update_revision;
            observed(workload, s.metadata, spec.template, status.observed_generation, rolled)
        }),
        "DaemonSet" => get::<DaemonSet>(client, workload).await?.map(|d| {
            let (spec, status) = (d.spec, d.status.unwrap_or_default());
            let want = status.desired_number_scheduled;
            let rolled = status.updated_number_scheduled.unwrap_or(0) == want
                && status.number_available.unwrap_or(0) == want;
            observed(workload, d.metadata, spec.template, status.observed_generation, rolled)
        }),
        _ => None,
    })
}

fn observed(
    workload: &Workload,
    metadata: ObjectMeta,
    template: PodTemplateSpec,
    observed_generation: Option<i64>,
    rolled_out: bool,
) -> Observed {
    let generation = metadata.generation.unwrap_or(0);
    Observed {
        reference: ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(workload.kind.clone()),
            name: Some(workload.name.clone()),
            namespace: Some(workload.namespace.clone()),
            uid: metadata.uid.clone(),
            ..ObjectReference::default()
        },
        resource_version: metadata.resource_version.unwrap_or_default(),
        generation,
        rolled_out: rolled_out && observed_generation.is_some_and(|seen| seen >= generation),
        annotations: metadata.annotations.unwrap_or_default(),
        template,
    }
}

/// `patch` applied to `workload`, a Deployment, StatefulSet or DaemonSet.
pub async fn patch(
    client: &Client,
    workload: &Workload,
    patch: &Patch<&serde_json::Value>,
) -> kube::Result<()> {
    let (namespace, name, params) = (&workload.namespace, &workload.name, &PatchParams::default());
    match workload.kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), namespace)
            .patch(name, params, patch)
            .await
            .map(drop),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .patch(name, params, patch)
            .await
            .map(drop),
        _ => {
            Api::<DaemonSet>::namespaced(client.clone(), namespace).patch(name, params, patch).await.map(drop)
        }
    }
}

async fn get<K>(client: &Client, workload: &Workload) -> kube::Result<Option<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), &workload.namespace).get_opt(&workload.name).await
}
