//! From a Pod to the workload a user restarts: the Deployment behind its ReplicaSet, the CronJob
//! behind its Job, its StatefulSet or DaemonSet, or the Pod itself. Each ReplicaSet and Job is
//! read once, by name (their controller never changes), and remembered until the watch starts over.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Api, Client};

use crate::audit::{Workload, controller_of};

#[derive(Default)]
pub struct Owners {
    /// (namespace, kind, name) of a ReplicaSet or Job, and its controller.
    known: HashMap<(String, &'static str, String), Option<OwnerReference>>,
}

impl Owners {
    /// The workload of the Pod with `metadata`, in `namespace`.
    pub async fn workload_of(
        &mut self,
        client: &Client,
        metadata: &ObjectMeta,
        namespace: &str,
    ) -> kube::Result<Workload> {
        let workload = |kind: &str, name: &str| Workload {
            namespace: namespace.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        };
        let Some(owner) = controller_of(metadata) else {
            return Ok(workload("Pod", metadata.name.as_deref().unwrap_or_default()));
        };
        let kind: &'static str = match owner.kind.as_str() {
            "ReplicaSet" => "ReplicaSet",
            "Job" => "Job",
            _ => return Ok(workload(&owner.kind, &owner.name)),
        };
        let key = (namespace.to_owned(), kind, owner.name.clone());
        let parent = match self.known.get(&key) {
            Some(parent) => parent.clone(),
            None => {
                let name = &owner.name;
                let parent = match kind {
                    "ReplicaSet" => {
                        Api::<ReplicaSet>::namespaced(client.clone(), namespace)
                            .get_metadata_opt(name)
                            .await?
                    }
                    _ => None,
                }
                .map(|m| m.metadata);
                let parent = match (kind, parent) {
                    ("Job", _) => Api::<Job>::namespaced(client.clone(), namespace)
                        .get_metadata_opt(name)
                        .await?
                        .map(|m| m.metadata),
                    (_, parent) => parent,
                };
                let parent = parent.and_then(|metadata| controller_of(&metadata));
                self.known.insert(key, parent.clone());
                parent
            }
        };
        let owner = parent.unwrap_or(owner);
        Ok(workload(&owner.kind, &owner.name))
    }

    /// The watch starts over: ReplicaSets and Jobs may have come and gone.
    pub fn forget(&mut self) {
        self.known.clear();
    }
}
