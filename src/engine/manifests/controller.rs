//! What a workload's controller adds to the Pods it makes from its template, as far as the
//! webhook's decision reads it, so that offline injection reviews the Pod the webhook will see:
//!
//! - a StatefulSet gives each Pod one volume per `volumeClaimTemplates` entry, of the same name,
//!   in place of any template volume of that name (the StatefulSet controller's `updateStorage`);
//!   a mount of it, the app's or one `shareVolumeMounts` copies, is then no dangling reference;
//! - a Job's Pods carry `job-name` and `batch.kubernetes.io/job-name` with the Job's name (the
//!   API server sets them in the Job's template when it is created), which a selector may read.
//!
//! Other controller labels have values nobody knows offline: `pod-template-hash` (a Deployment's
//! ReplicaSets), `controller-revision-hash` (StatefulSets, DaemonSets), the Pod's own name and
//! index (StatefulSets), `pod-template-generation` (DaemonSets), a Job's `controller-uid`. A
//! profile that reads one is decided as if it were absent, with a note saying so.
//!
//! The template is reviewed with these additions, and they are taken out of the result again, so
//! the output holds exactly the template and what the patch added.

use serde_json::{Map, Value};

/// What the controller of a `kind` adds to its Pods, read from the workload `doc`.
pub(super) struct Additions {
    labels: Vec<(String, String)>,
    volumes: Vec<Value>,
}

/// Labels a kind's controller sets on each Pod with a value offline injection cannot know.
pub(super) fn unknowable_labels(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment" => &["pod-template-hash"],
        "StatefulSet" => &[
            "controller-revision-hash",
            "statefulset.kubernetes.io/pod-name",
            "apps.kubernetes.io/pod-index",
        ],
        "DaemonSet" => &["controller-revision-hash", "pod-template-generation"],
        "Job" => &["controller-uid", "batch.kubernetes.io/controller-uid"],
        "CronJob" => &[
            "controller-uid",
            "batch.kubernetes.io/controller-uid",
            "job-name",
            "batch.kubernetes.io/job-name",
        ],
        _ => &[],
    }
}

impl Additions {
    pub fn of(kind: &str, doc: &Value) -> Self {
        let mut additions = Additions { labels: Vec::new(), volumes: Vec::new() };
        match kind {
            "StatefulSet" => {
                let claims = doc.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array);
                let names =
                    claims.into_iter().flatten().filter_map(|c| c.pointer("/metadata/name")?.as_str());
                additions.volumes = names.map(claim_volume).collect();
            }
            "Job" => {
                let name = doc.pointer("/metadata/name").and_then(Value::as_str);
                for key in ["job-name", "batch.kubernetes.io/job-name"] {
                    additions.labels.extend(name.map(|name| (key.to_owned(), name.to_owned())));
                }
            }
            _ => {}
        }
        additions
    }

    /// The Pod the controller makes of `template`, for the review.
    pub fn pod(&self, template: &Value) -> Value {
        // A part of another shape than Kubernetes gives it is left as it is, for the review to
        // refuse the Pod naming it.
        let mut pod = template.clone();
        let Some(object) = pod.as_object_mut() else { return pod };
        if !self.labels.is_empty()
            && let Some(labels) = map_at(object, "metadata").and_then(|metadata| map_at(metadata, "labels"))
        {
            for (key, value) in &self.labels {
                labels.entry(key.clone()).or_insert_with(|| value.clone().into());
            }
        }
        if !self.volumes.is_empty()
            && let Some(spec) = map_at(object, "spec")
        {
            let own = match spec.remove("volumes") {
                Some(Value::Array(own)) => own,
                Some(Value::Null) | None => Vec::new(),
                Some(other) => {
                    spec.insert("volumes".into(), other);
                    return pod;
                }
            };
            let claimed = |volume: &Value| self.volumes.iter().any(|claim| claim["name"] == volume["name"]);
            let volumes = self.volumes.iter().cloned().chain(own.into_iter().filter(|v| !claimed(v)));
            spec.insert("volumes".into(), volumes.collect());
        }
        pod
    }

    /// `injected`, the patched [`pod`](Self::pod), as a template again: `template` with what the
    /// patch added. The patch only adds, and appends to a list it finds, so what it added to the
    /// volumes is what follows the Pod's own.
    pub fn template_of(&self, template: &Value, pod: &Value, mut injected: Value) -> Value {
        let Some(object) = injected.as_object_mut() else { return injected };
        if !self.labels.is_empty() {
            restore_labels(object, template, &self.labels);
        }
        let count = |v: &Value| v.pointer("/spec/volumes").and_then(Value::as_array).map_or(0, Vec::len);
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { return injected };
        if self.volumes.is_empty() || count(pod) == 0 {
            return injected;
        }
        let patched = match spec.remove("volumes") {
            Some(Value::Array(patched)) => patched,
            _ => Vec::new(),
        };
        let added: Vec<Value> = patched.into_iter().skip(count(pod)).collect();
        let restored = match template.pointer("/spec/volumes") {
            Some(Value::Array(own)) => Some(own.iter().cloned().chain(added).collect()),
            own if added.is_empty() => own.cloned(),
            _ => Some(Value::Array(added)),
        };
        if let Some(volumes) = restored {
            spec.insert("volumes".into(), volumes);
        }
        injected
    }
}

/// Take the labels the review saw and the template does not have out of `object` again, and
/// the maps that held only them.
fn restore_labels(object: &mut Map<String, Value>, template: &Value, added: &[(String, String)]) {
    let own = template.pointer("/metadata/labels").and_then(Value::as_object);
    let Some(Value::Object(metadata)) = object.get_mut("metadata") else { return };
    if let Some(Value::Object(labels)) = metadata.get_mut("labels") {
        for (key, _) in added {
            if !own.is_some_and(|own| own.contains_key(key)) {
                labels.remove(key);
            }
        }
        if labels.is_empty() && own.is_none() {
            metadata.remove("labels");
        }
    }
    if metadata.is_empty() && template.get("metadata").is_none() {
        object.remove("metadata");
    }
}

fn claim_volume(name: &str) -> Value {
    // The claim's own name is the template's, the StatefulSet's and the Pod's ordinal joined; the
    // review reads only the volume's name.
    serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}})
}

/// The map at `key` of `object`, made when absent or `null`; `None` when it is something else.
fn map_at<'m>(object: &'m mut Map<String, Value>, key: &str) -> Option<&'m mut Map<String, Value>> {
    let slot = object.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}
