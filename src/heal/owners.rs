//! From a Pod to the workload a user restarts: the Deployment behind its ReplicaSet, the CronJob
//! behind its Job, its StatefulSet or DaemonSet, or the Pod itself. Each ReplicaSet and Job is
//! read once, by name (their controller never changes), and remembered until the watch starts over.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Api, Client};

use crate::audit::{Workload, controlled_in_turn, controller_of};

#[derive(Default)]
pub struct Owners {
    /// (namespace, kind, name) of a ReplicaSet or Job, and its controller.
    known: HashMap<(String, String, String), Option<OwnerReference>>,
}

impl Owners {
    /// The workload of the Pod with `metadata`, in `namespace`.
    pub async fn workload_of(
        &mut self,
        client: &Client,
        metadata: &ObjectMeta,
        namespace: &str,
    ) -> kube::Result<Workload> {
        let parent = match controller_of(metadata) {
            Some(owner) if controlled_in_turn(&owner) => self.controller(client, namespace, owner).await?,
            _ => None,
        };
        Ok(Workload::of_pod(metadata, namespace, |_| parent))
    }

    /// The controller of the ReplicaSet or Job `owner`, read once.
    async fn controller(
        &mut self,
        client: &Client,
        namespace: &str,
        owner: OwnerReference,
    ) -> kube::Result<Option<OwnerReference>> {
        let key = (namespace.to_owned(), owner.kind, owner.name);
        if let Some(known) = self.known.get(&key) {
            return Ok(known.clone());
        }
        let name = &key.2;
        let metadata = if key.1 == "ReplicaSet" {
            Api::<ReplicaSet>::namespaced(client.clone(), namespace)
                .get_metadata_opt(name)
                .await?
                .map(|m| m.metadata)
        } else {
            Api::<Job>::namespaced(client.clone(), namespace)
                .get_metadata_opt(name)
                .await?
                .map(|m| m.metadata)
        };
        let controller = metadata.and_then(|metadata| controller_of(&metadata));
        self.known.insert(key, controller.clone());
        Ok(controller)
    }

    /// The watch starts over: ReplicaSets and Jobs may have come and gone.
    pub fn forget(&mut self) {
        self.known.clear();
    }
}
