//! The audit's conversation with the cluster, with the user's kubeconfig: the webhook
//! configuration's selectors, the namespaces and Pods they select (page by page, so memory stays
//! flat however many Pods there are), the owners of those Pods, and the restarts.

use std::collections::HashMap;
use std::future::Future;

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{ListParams, ObjectList, PartialObjectMeta, Patch};
use kube::core::{Selector, SelectorExt};
use kube::{Api, Client};
use serde_json::json;

use super::report::{Report, Restarted};
use super::{Class, Scope, Target, Workload, classify};
use crate::Config;
use crate::engine::registration::match_conditions;

/// Why the audit could not read or change the cluster.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot reach the API server: {0}")]
    Unreachable(String),
    #[error(
        "forbidden: cannot {verb} {resource} ({message}); the ClusterRoles in deploy-incluster/90-audit-rbac.yaml list what audit needs"
    )]
    Forbidden { verb: &'static str, resource: String, message: String },
    #[error("{verb} {resource}: {message}")]
    Api { verb: &'static str, resource: String, message: String },
    #[error("{0}")]
    Webhook(String),
}

/// The error of one call, named by what was asked.
fn failed(verb: &'static str, resource: impl Into<String>) -> impl FnOnce(kube::Error) -> AuditError {
    let resource = resource.into();
    move |error| match error {
        kube::Error::Api(status) if status.code == 403 => {
            AuditError::Forbidden { verb, resource, message: status.message }
        }
        kube::Error::Api(status) => AuditError::Api { verb, resource, message: status.message },
        kube::Error::Auth(e) => AuditError::Unreachable(format!("credentials: {e}")),
        other => AuditError::Unreachable(other.to_string()),
    }
}

/// Classify every Pod in scope; `progress` gets a line per namespace (Pods and pages read).
pub async fn survey(
    client: &Client,
    target: &Target,
    config: &Config,
    mut progress: impl FnMut(&str),
) -> Result<Report, AuditError> {
    let (namespace_selector, object_selector, live) = selectors(client, target).await?;
    // Conditions of another configuration than the audited one cannot be evaluated here.
    let ours: Vec<(String, String)> =
        match_conditions(config).conditions.into_iter().map(|c| (c.name.to_owned(), c.expression)).collect();
    let conditions: Vec<String> =
        if live == ours { ours.into_iter().map(|(name, _)| name).collect() } else { Vec::new() };
    let namespaces = namespaces(client, target, &namespace_selector).await?;
    let mut report = Report::new(target, namespaces.iter().filter(|(_, on)| *on).map(|(ns, _)| ns.clone()));
    for (namespace, selected) in namespaces {
        let owners = Owners::read(client, &namespace, target.page_size).await?;
        let api = Api::<Pod>::namespaced(client.clone(), &namespace);
        let (mut pods, mut pages) = (0, 0);
        let mut each = |pod: Pod| {
            let workload = owners.workload_of(&pod.metadata, &namespace);
            let (class, reason) = if !selected {
                (Class::NotSelected, "the webhook's namespaceSelector does not match".into())
            } else {
                match serde_json::to_value(&pod) {
                    Ok(pod) => classify(&pod, &namespace, &object_selector, &conditions, config),
                    Err(e) => (Class::Denied, e.to_string()),
                }
            };
            report.add(workload, class, reason);
            pods += 1;
        };
        let fetch = |params: ListParams| {
            let api = &api;
            async move { api.list(&params).await }
        };
        pages += paged(target.page_size, "pods", fetch, |page| page.into_iter().for_each(&mut each)).await?;
        progress(&format!(
            "namespace {namespace}: {pods} Pods in {pages} pages of at most {}",
            target.page_size
        ));
    }
    templates(client, &mut report, &mut progress).await;
    Ok(report)
}

/// Mark the workloads with stale Pods whose pod template itself carries an injection. One that
/// cannot be read is left as it is, with a line saying so.
async fn templates(client: &Client, report: &mut Report, progress: &mut impl FnMut(&str)) {
    let stale: Vec<Workload> = report
        .workloads()
        .filter(|(w, counts)| w.restartable() && counts.count(Class::Stale) > 0)
        .map(|(w, _)| w.clone())
        .collect();
    for workload in stale {
        match super::workload::observe(client, &workload).await {
            Ok(Some(observed)) if observed.template_injected() => report.template_injected(&workload),
            Ok(_) => {}
            Err(error) => progress(&format!(
                "cannot read {}/{} in {} to check its pod template: {error}",
                workload.kind, workload.name, workload.namespace
            )),
        }
    }
}

/// Every object a list call gives, a page at a time, each page handed to `each` as it comes, so
/// that no more than a page is held; the number of pages.
async fn paged<T: Clone, Fut>(
    page_size: u32,
    resource: &str,
    fetch: impl Fn(ListParams) -> Fut,
    mut each: impl FnMut(Vec<T>),
) -> Result<usize, AuditError>
where
    Fut: Future<Output = kube::Result<ObjectList<T>>>,
{
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = ListParams::default().limit(page_size);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = fetch(params).await.map_err(failed("list", resource))?;
        pages += 1;
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        each(page.items);
        if token.is_none() {
            return Ok(pages);
        }
    }
}

/// The webhook's namespaceSelector and objectSelector (absent ones select everything), and its
/// matchConditions, each as (name, expression).
async fn selectors(
    client: &Client,
    target: &Target,
) -> Result<(Selector, Selector, Vec<(String, String)>), AuditError> {
    let api = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let resource = format!("mutatingwebhookconfigurations/{}", target.configuration);
    let configuration = api.get(&target.configuration).await.map_err(failed("get", resource))?;
    let (hook, namespaces, objects) =
        webhook_of(&configuration, &target.webhook).map_err(AuditError::Webhook)?;
    let live = hook.match_conditions.iter().flatten();
    let live = live.map(|c| (c.name.clone(), c.expression.clone())).collect();
    Ok((namespaces, objects, live))
}

/// The webhook named `webhook` of `configuration`, with its namespaceSelector and objectSelector
/// (absent ones select everything); or why it cannot be read.
pub(crate) fn webhook_of<'c>(
    configuration: &'c MutatingWebhookConfiguration,
    webhook: &str,
) -> Result<(&'c MutatingWebhook, Selector, Selector), String> {
    let name = configuration.metadata.name.as_deref().unwrap_or_default();
    let hook = configuration.webhooks.iter().flatten().find(|h| h.name == webhook);
    let hook = hook.ok_or_else(|| format!("{name} has no webhook named {webhook}"))?;
    let selector = |s: &Option<LabelSelector>, what: &str| {
        Selector::try_from(s.clone().unwrap_or_default())
            .map_err(|e| format!("{webhook}: the {what} cannot be read: {e}"))
    };
    let namespaces = selector(&hook.namespace_selector, "namespaceSelector")?;
    Ok((hook, namespaces, selector(&hook.object_selector, "objectSelector")?))
}

/// The namespaces in scope, and whether the webhook is sent their Pods. With all namespaces, only
/// the selected ones are read at all.
async fn namespaces(
    client: &Client,
    target: &Target,
    selector: &Selector,
) -> Result<Vec<(String, bool)>, AuditError> {
    let api = Api::<Namespace>::all(client.clone());
    let labels = |ns: &Namespace| ns.metadata.labels.clone().unwrap_or_default();
    match &target.scope {
        Scope::Namespace(name) => {
            let namespace = api.get(name).await.map_err(failed("get", format!("namespaces/{name}")))?;
            Ok(vec![(name.clone(), selector.matches(&labels(&namespace)))])
        }
        Scope::AllNamespaces => {
            let mut selected = Vec::new();
            let fetch = |params: ListParams| {
                let api = &api;
                async move { api.list(&params).await }
            };
            paged(target.page_size, "namespaces", fetch, |page: Vec<Namespace>| {
                let names = page.iter().filter(|ns| selector.matches(&labels(ns)));
                selected.extend(names.map(|ns| (ns.metadata.name.clone().unwrap_or_default(), true)));
            })
            .await?;
            Ok(selected)
        }
    }
}

/// The controllers of the ReplicaSets and Jobs of one namespace, to go from a Pod to the workload
/// a user restarts.
struct Owners {
    replica_sets: HashMap<String, Option<OwnerReference>>,
    jobs: HashMap<String, Option<OwnerReference>>,
}

impl Owners {
    async fn read(client: &Client, namespace: &str, page_size: u32) -> Result<Owners, AuditError> {
        let mut owners = Owners { replica_sets: HashMap::new(), jobs: HashMap::new() };
        let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace);
        let fetch = |params: ListParams| {
            let api = &replica_sets;
            async move { api.list_metadata(&params).await }
        };
        paged(page_size, "replicasets", fetch, |page| controllers(page, &mut owners.replica_sets)).await?;
        let jobs = Api::<Job>::namespaced(client.clone(), namespace);
        let fetch = |params: ListParams| {
            let api = &jobs;
            async move { api.list_metadata(&params).await }
        };
        paged(page_size, "jobs", fetch, |page| controllers(page, &mut owners.jobs)).await?;
        Ok(owners)
    }

    fn workload_of(&self, pod: &ObjectMeta, namespace: &str) -> Workload {
        Workload::of_pod(pod, namespace, |owner| {
            let read = if owner.kind == "ReplicaSet" { &self.replica_sets } else { &self.jobs };
            read.get(&owner.name).cloned().flatten()
        })
    }
}

/// Each object's name and controller, from a page of metadata.
fn controllers<K>(page: Vec<PartialObjectMeta<K>>, into: &mut HashMap<String, Option<OwnerReference>>) {
    for meta in page.into_iter().map(|object| object.metadata) {
        into.insert(meta.name.clone().unwrap_or_default(), controller_of(&meta));
    }
}

/// The owner reference that is the object's controller.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<OwnerReference> {
    meta.owner_references.iter().flatten().find(|o| o.controller == Some(true)).cloned()
}

/// Restart every workload of `report` whose action is `restart`, as `kubectl rollout restart`
/// does: the pod template's `kubectl.kubernetes.io/restartedAt` annotation set to `now`. Bare
/// Pods, Jobs and workloads whose template carries an injection are listed, never touched. A
/// refused restart is marked, and the others are still tried.
pub async fn restart(client: &Client, report: &Report, now: &str, dry_run: bool) -> Vec<Restarted> {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
    let mut done = Vec::new();
    for (workload, counts) in report.workloads() {
        if !counts.needs_restart() {
            continue;
        }
        let mut planned = Restarted::planned(workload, counts, dry_run);
        if dry_run || super::Action::of(workload, counts) != super::Action::Restart {
            done.push(planned);
            continue;
        }
        let resource = format!("{}s", workload.kind.to_lowercase());
        let result = super::workload::patch(client, workload, &Patch::Strategic(&patch)).await;
        if let Err(error) = result.map_err(failed("patch", resource)) {
            planned.result = format!("restart failed: {error}");
        }
        done.push(planned);
    }
    done
}
