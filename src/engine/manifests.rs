//! Offline injection into manifests, for `sidecar-injector inject`.
//!
//! The manifests are read as kubectl reads them (`yaml`: YAML 1.1's scalars, so `0400` is the
//! octal 256), and each Pod, and each workload's pod template as its controller will make it a
//! Pod (`controller`), is wrapped in an AdmissionReview and sent through
//! [`review`](super::review::review), the exact code the webhook runs (as `istioctl kube-inject`
//! does); the answer's patch is applied to the template. What a manifest shows here is what the
//! cluster would do. Every document is written out again so that kubectl reads back the same
//! values, and each is read back to check it before anything is printed.
//!
//! Every document that cannot be injected is named, with its index, kind and name, in one run;
//! every document passed through untouched is said to be, and why.

use serde_json::Value;

use super::config::Config;
use super::decision::Decision;
use super::review::review_pod;

mod controller;
mod yaml;

pub use yaml::{YamlError, documents};

use controller::{Additions, unknowable_labels};

/// Manifests with every pod template injected, and a line per document for the user.
#[derive(Debug)]
pub struct Injected {
    /// The documents, as multi-document YAML.
    pub yaml: String,
    /// What was done with each document and why, and the webhook's warnings.
    pub notes: Vec<String>,
}

/// Why the manifests could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not valid YAML: {0}")]
    Yaml(#[from] YamlError),
    /// Every document refused, in order, and what was said of the others.
    #[error("{} refused: {}", plural(refused.len()), refused.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused { refused: Vec<Refused>, notes: Vec<String> },
}

/// One document that could not be injected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct Refused {
    /// `document 3 (Deployment web)`, or `document 3, item 2 (…)` in a `List`.
    pub at: String,
    pub message: String,
}

/// A message of the webhook's without the product name it starts with for kubectl's users: on
/// this command's own output, it goes without saying.
fn unprefixed(message: &str) -> String {
    message.strip_prefix("sidecar-injector: ").unwrap_or(message).to_owned()
}

fn plural(count: usize) -> String {
    if count == 1 { "1 document".into() } else { format!("{count} documents") }
}

/// Where the pod template lives in each workload kind this command injects, by API version.
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

/// The API version this command reads a workload kind in.
fn handled_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Pod" | "PodTemplate" | "ReplicationController" => "v1",
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        _ => return None,
    })
}

/// Inject into every Pod and pod template in `text` (one or more YAML or JSON documents). Other
/// documents pass through unchanged. `namespace` is used for objects that do not name theirs.
pub fn inject(text: &str, config: &Config, namespace: &str) -> Result<Injected, ManifestError> {
    let mut run = Run { config, namespace, notes: Vec::new(), refused: Vec::new() };
    let mut out = String::new();
    // Empty documents (as after a trailing `---`) are dropped.
    for (i, mut doc) in documents(text)?.into_iter().filter(|d| !d.is_null()).enumerate() {
        let at = format!("document {}", i + 1);
        run.object(&mut doc, &at);
        let written = write(&doc).map_err(|message| Refused { at: run.named(&at, &doc), message });
        match written {
            Ok(text) if run.refused.is_empty() => {
                if !out.is_empty() {
                    out.push_str("---\n");
                }
                out.push_str(&text);
            }
            Ok(_) => {}
            Err(refused) => run.refused.push(refused),
        }
    }
    if !run.refused.is_empty() {
        return Err(ManifestError::Refused { refused: run.refused, notes: run.notes });
    }
    Ok(Injected { yaml: out, notes: run.notes })
}

/// One document as YAML, checked to read back, as kubectl reads it, to the same value.
fn write(doc: &Value) -> Result<String, String> {
    let text = serde_saphyr::to_string(doc).map_err(|e| format!("cannot be written as YAML: {e}"))?;
    match documents(&text) {
        Ok(read) if read.len() == 1 && read[0] == *doc => Ok(text),
        _ => Err("written as YAML, it would not read back as the same values: please report it".into()),
    }
}

/// The state of one `inject` run: what is said, and what was refused.
struct Run<'c> {
    config: &'c Config,
    namespace: &'c str,
    notes: Vec<String>,
    refused: Vec<Refused>,
}

impl Run<'_> {
    /// `at` with the object's kind and name: `document 2 (Deployment web)`.
    fn named(&self, at: &str, doc: &Value) -> String {
        let text = |pointer| doc.pointer(pointer).and_then(Value::as_str);
        let kind = text("/kind").unwrap_or("(no kind)");
        format!("{at} ({kind} {})", text("/metadata/name").unwrap_or("(unnamed)"))
    }

    fn object(&mut self, doc: &mut Value, at: &str) {
        let text = |field: &str| doc.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        if api_version == "v1" && kind == "List" {
            let items = doc.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten();
            for (i, item) in items.enumerate() {
                self.object(item, &format!("{at}, item {}", i + 1));
            }
            return;
        }
        let named = self.named(at, doc);
        let Some(path) = template_path(&api_version, &kind) else {
            let why = match handled_version(&kind) {
                Some(handled) => {
                    format!("{kind} in {api_version:?} is not a version inject reads ({handled})")
                }
                None => "not a kind inject injects into".to_owned(),
            };
            self.notes.push(format!("{named}: passed through: {why}"));
            return;
        };
        if let Err(message) = self.template(doc, &kind, path, &named) {
            self.refused.push(Refused { at: named, message });
        }
    }

    /// Review the template at `path` of `doc`, as its controller makes it a Pod, and apply the
    /// patch.
    fn template(&mut self, doc: &mut Value, kind: &str, path: &str, named: &str) -> Result<(), String> {
        let metadata = doc.get("metadata");
        let namespace =
            metadata.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or(self.namespace);
        let namespace = namespace.to_owned();
        let additions = Additions::of(kind, doc);
        for label in unknowable_labels(kind) {
            for profile in self.config.profiles_reading_label(label) {
                self.notes.push(format!(
                    "{named}: profile {profile} reads the label {label}, which the {kind} controller sets on each Pod with a value not known offline; it is read as absent"
                ));
            }
        }
        let template = doc.pointer_mut(path).ok_or_else(|| format!("it has no pod template at {path}"))?;
        let pod = additions.pod(template);
        let reviewed =
            review_pod(&pod, &namespace, "offline", self.config).map_err(|e| unprefixed(&e.to_string()))?;
        let said = |before: &'static str| {
            reviewed.warnings.iter().map(move |w| format!("{named}: {before}{}", unprefixed(w)))
        };
        match (&reviewed.summary.decision, reviewed.operations()) {
            (Decision::Denied { message }, _) => return Err(unprefixed(message)),
            (Decision::Injected { profiles }, Some(patch)) => {
                let mut injected = pod.clone();
                json_patch::patch(&mut injected, &patch)
                    .map_err(|e| format!("the webhook's patch does not apply: {e}"))?;
                *template = additions.template_of(template, &pod, injected);
                self.notes.push(format!("{named}: injected {}", profiles.join(", ")));
                self.notes.extend(said(""));
            }
            // A skip the webhook explains (`not injected: the Pod uses hostNetwork`) is said once,
            // in its words.
            (decision, _) if reviewed.warnings.is_empty() => {
                self.notes.push(format!("{named}: passed through: {decision}"))
            }
            _ => self.notes.extend(said("passed through: ")),
        }
        Ok(())
    }
}
