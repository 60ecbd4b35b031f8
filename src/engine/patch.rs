//! A [`Plan`] rendered as JSON Patch, and checked.
//!
//! The patch is built from the few additions the plan lists, never by diffing whole Pods (a diff
//! of a Pod with 1,500 env vars took Istio 15 s, istio/istio#34799), so its cost grows with what we
//! add, not with the Pod. Every operation is an `add`:
//! - a missing (or `null`) parent is created whole, with everything that goes in it;
//! - an existing map gains keys, an existing list gains items; nothing is replaced wholesale;
//! - every path is built from tokens, so `/` and `~` in keys are escaped per RFC 6901.
//!
//! [`verify`] applies the patch to the original Pod (its skeleton: see `skeleton` for why that is
//! the same for these operations) with `json-patch`, and compares the result with the same plan
//! applied directly by separate code. The two renderings must agree; if they ever do
//! not, it is a bug, and the review fails instead of answering a wrong patch.

use std::borrow::Cow;

use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::{Map, Value};

use super::plan::Plan;

/// The JSON Patch for `plan`, against the Pod it was planned for.
pub(crate) fn operations(plan: &Plan, pod: &Value) -> Patch {
    let mut ops = Vec::new();
    let labels = || pairs(plan.labels.iter().map(|(k, v)| (*k, v.as_ref())));
    let annotations = || pairs(plan.annotations.iter().map(|(k, v)| (*k, v.as_ref())));

    match present(pod, "metadata") {
        None => {
            let mut metadata = Map::new();
            if !plan.labels.is_empty() {
                metadata.insert("labels".into(), Value::Object(labels()));
            }
            if !plan.annotations.is_empty() {
                metadata.insert("annotations".into(), Value::Object(annotations()));
            }
            if !metadata.is_empty() {
                add(&mut ops, PointerBuf::from_tokens(["metadata"]), Value::Object(metadata));
            }
        }
        Some(metadata) => {
            for (field, entries) in [("labels", labels()), ("annotations", annotations())] {
                if entries.is_empty() {
                    continue;
                }
                let at = PointerBuf::from_tokens(["metadata", field]);
                if present(metadata, field).is_none() {
                    add(&mut ops, at, Value::Object(entries));
                } else {
                    for (key, value) in entries {
                        add(&mut ops, child(&at, key.as_str()), value);
                    }
                }
            }
        }
    }

    let spec = &pod["spec"];
    let spec_at = PointerBuf::from_tokens(["spec"]);
    add_items(&mut ops, spec, &spec_at, "initContainers", &plan.init_containers, Where::Front);
    add_items(&mut ops, spec, &spec_at, "containers", &plan.containers, Where::End);
    add_items(&mut ops, spec, &spec_at, "volumes", &plan.volumes, Where::End);
    for (index, added) in plan.app_containers.iter().enumerate() {
        let container = &spec["containers"][index];
        let at =
            PointerBuf::from_tokens([Token::from("spec"), Token::from("containers"), Token::from(index)]);
        add_items(&mut ops, container, &at, "env", &added.env, Where::End);
        add_items(&mut ops, container, &at, "volumeMounts", &added.volume_mounts, Where::End);
    }
    Patch(ops)
}

/// Apply `patch` to `pod` and check that the result is `plan` applied directly. Leaves `pod`
/// patched.
pub(crate) fn verify(pod: &mut Value, plan: &Plan, patch: &Patch) -> Result<(), String> {
    let mut intended = pod.clone();
    apply_directly(&mut intended, plan);
    // The undo log of `json_patch::patch` is not needed: on failure the Pod is thrown away.
    json_patch::patch_unsafe(pod, patch).map_err(|e| format!("the patch does not apply to the Pod: {e}"))?;
    if *pod != intended {
        return Err("the patched Pod is not the intended Pod".into());
    }
    Ok(())
}

/// The plan applied by plain mutation: the reference the patch is checked against.
fn apply_directly(pod: &mut Value, plan: &Plan) {
    let pod = pod.as_object_mut().expect("decide() only plans for JSON objects");
    if !plan.labels.is_empty() || !plan.annotations.is_empty() {
        let metadata = object_entry(pod, "metadata");
        if !plan.labels.is_empty() {
            let labels = object_entry(metadata, "labels");
            for (key, value) in &plan.labels {
                labels.insert((*key).to_owned(), Value::String(value.to_string()));
            }
        }
        if !plan.annotations.is_empty() {
            let annotations = object_entry(metadata, "annotations");
            for (key, value) in &plan.annotations {
                annotations.insert((*key).to_owned(), Value::String(value.to_string()));
            }
        }
    }
    let spec = object_entry(pod, "spec");
    if !plan.init_containers.is_empty() {
        let list = list_entry(spec, "initContainers");
        list.splice(0..0, plan.init_containers.iter().map(|c| c.as_ref().clone()));
    }
    for (field, items) in [("containers", &plan.containers), ("volumes", &plan.volumes)] {
        if !items.is_empty() {
            list_entry(spec, field).extend(items.iter().map(|c| c.as_ref().clone()));
        }
    }
    if plan.app_containers.is_empty() {
        return;
    }
    let containers = list_entry(spec, "containers");
    for (container, added) in containers.iter_mut().zip(&plan.app_containers) {
        let container = container.as_object_mut().expect("PodView checked containers are objects");
        for (field, items) in [("env", &added.env), ("volumeMounts", &added.volume_mounts)] {
            if !items.is_empty() {
                list_entry(container, field).extend(items.iter().map(|v| v.as_ref().clone()));
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Where {
    Front,
    End,
}

fn add_items(
    ops: &mut Vec<PatchOperation>,
    parent: &Value,
    parent_at: &PointerBuf,
    field: &str,
    items: &[Cow<Value>],
    at: Where,
) {
    if items.is_empty() {
        return;
    }
    let list_at = child(parent_at, field);
    if present(parent, field).is_none() {
        add(ops, list_at, Value::Array(items.iter().map(|v| v.as_ref().clone()).collect()));
        return;
    }
    for (i, item) in items.iter().enumerate() {
        // Inserting at 0, 1, 2 … keeps our items in order, ahead of the Pod's own.
        let token = match at {
            Where::Front => Token::from(i),
            Where::End => Token::from("-"),
        };
        let mut path = list_at.clone();
        path.push_back(token);
        add(ops, path, item.as_ref().clone());
    }
}

fn add(ops: &mut Vec<PatchOperation>, path: PointerBuf, value: Value) {
    ops.push(PatchOperation::Add(AddOperation { path, value }));
}

fn child(parent: &PointerBuf, token: &str) -> PointerBuf {
    let mut path = parent.clone();
    path.push_back(token);
    path
}

fn pairs<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    entries.map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect()
}

/// The field's value, unless it is absent or `null`.
fn present<'v>(parent: &'v Value, field: &str) -> Option<&'v Value> {
    parent.get(field).filter(|v| !v.is_null())
}

fn object_entry<'m>(map: &'m mut Map<String, Value>, field: &str) -> &'m mut Map<String, Value> {
    let slot = map.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("PodView checked this is an object")
}

/// The list at `field`, made when absent or `null`: a Pod's (which PodView checked) or a
/// template's (which the typed round trip at load checked).
pub(crate) fn list_entry<'m>(map: &'m mut Map<String, Value>, field: &str) -> &'m mut Vec<Value> {
    let slot = map.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().expect("checked to be a list")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_are_escaped_per_rfc_6901() {
        let at = child(&PointerBuf::from_tokens(["metadata", "annotations"]), "example.com/a~b");
        assert_eq!(at.as_str(), "/metadata/annotations/example.com~1a~0b");
    }
}
