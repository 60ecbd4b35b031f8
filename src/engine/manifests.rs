//! Offline injection into manifests, for `sidecar-injector inject`.
//!
//! Each Pod, and each workload's pod template, is wrapped in an AdmissionReview and sent through
//! [`review`](super::review::review), the exact code the webhook runs (as `istioctl kube-inject`
//! does), then the answer's patch is applied to the template. What a manifest shows here is what the
//! cluster would do.

use serde_json::Value;

use super::config::Config;
use super::decision::Decision;
use super::review::review_pod;

/// Manifests with every pod template injected, and a line per document for the user.
#[derive(Debug)]
pub struct Injected {
    /// The documents, as multi-document YAML.
    pub yaml: String,
    /// What was decided for each Pod or template, and the webhook's warnings.
    pub notes: Vec<String>,
}

/// Why the manifests could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("document {index} ({what}): {message}")]
    Document { index: usize, what: String, message: String },
}

/// Where the pod template lives in each workload kind this command understands.
fn template_path(api_version: &str, kind: &str) -> Option<&'static str> {
    Some(match (api_version, kind) {
        ("v1", "Pod") => "",
        ("v1", "PodTemplate") => "/template",
        ("v1", "ReplicationController") => "/spec/template",
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => "/spec/template",
        ("batch/v1", "Job") => "/spec/template",
        ("batch/v1", "CronJob") => "/spec/jobTemplate/spec/template",
        _ => return None,
    })
}

/// Inject into every Pod and pod template in `yaml` (one or more documents). Other documents pass
/// through unchanged. `namespace` is used for objects that do not name theirs.
pub fn inject(yaml: &str, config: &Config, namespace: &str) -> Result<Injected, ManifestError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| ManifestError::Yaml(e.to_string()))?;
    let mut out = String::new();
    let mut notes = Vec::new();
    // Empty documents (as after a trailing `---`) are dropped.
    for (i, mut doc) in documents.into_iter().filter(|d| !d.is_null()).enumerate() {
        inject_object(&mut doc, config, namespace, i + 1, &mut notes)?;
        // serde-saphyr quotes strings that a YAML 1.1 reader, such as kubectl's, would take for
        // something else (`"yes"`, `"on"`, `"1_000"`), so the output means what the input meant.
        let text = serde_saphyr::to_string(&doc).map_err(|e| ManifestError::Yaml(e.to_string()))?;
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&text);
    }
    Ok(Injected { yaml: out, notes })
}

fn inject_object(
    doc: &mut Value,
    config: &Config,
    namespace: &str,
    index: usize,
    notes: &mut Vec<String>,
) -> Result<(), ManifestError> {
    let text = |field: &str| doc.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version == "v1" && kind == "List" {
        for item in doc.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten() {
            inject_object(item, config, namespace, index, notes)?;
        }
        return Ok(());
    }
    let Some(path) = template_path(&api_version, &kind) else {
        return Ok(());
    };
    let metadata = doc.get("metadata");
    let name = metadata.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("(unnamed)");
    let what = format!("{kind} {name}");
    let namespace =
        metadata.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or(namespace).to_owned();
    let fail = |message: String| ManifestError::Document { index, what: what.clone(), message };

    let template = doc.pointer_mut(path).ok_or_else(|| fail(format!("it has no pod template at {path}")))?;
    let reviewed = review_pod(template, &namespace, &format!("offline-{index}"), config)
        .map_err(|e| fail(e.to_string()))?;
    notes.extend(reviewed.warnings.iter().map(|w| format!("{what}: {w}")));
    match (&reviewed.summary.decision, reviewed.operations()) {
        (Decision::Denied { message }, _) => return Err(fail(message.clone())),
        (Decision::Injected { profiles }, Some(patch)) => {
            json_patch::patch(template, &patch)
                .map_err(|e| fail(format!("the webhook's patch does not apply: {e}")))?;
            notes.push(format!("{what}: injected {}", profiles.join(", ")));
        }
        (decision, _) => notes.push(format!("{what}: {decision}")),
    }
    Ok(())
}
