//! The patch checked before it is answered: applied with `json-patch` to an outline of the Pod,
//! and compared with the plan applied directly by separate code.

use std::borrow::Cow;

use json_patch::{AddOperation, PatchOperation};
use serde_json::{Map, Value};

use super::{Add, Added, Pairs, list_entry};
use crate::plan::Plan;
use crate::pod_view::PodView;

/// Apply `ops` to the Pod in `view` and check that the result is `plan` applied directly.
///
/// Both are applied to the Pod's [`outline`]. Each item the plan adds (a container, a volume …)
/// stands in both renderings for a token that names that very item; labels and annotations are
/// themselves. So the check compares where each item went, which is what `operations` decides,
/// without copying a template three times; the items' own content is written from the plan by
/// `serde_json` as it is.
pub(crate) fn verify(view: &PodView, plan: &Plan, ops: &[Add]) -> Result<(), String> {
    let mut pod = outline(view, plan);
    let mut intended = pod.clone();
    apply_directly(&mut intended, plan);
    let patch: Vec<PatchOperation> = ops
        .iter()
        .map(|op| PatchOperation::Add(AddOperation { path: op.path.clone(), value: op.value.token() }))
        .collect();
    // The undo log of `json_patch::patch` is not needed: on failure the outline is thrown away.
    json_patch::patch_unsafe(&mut pod, &patch)
        .map_err(|e| format!("the patch does not apply to the Pod: {e}"))?;
    if pod != intended {
        return Err("the patched Pod is not the intended Pod".into());
    }
    Ok(())
}

/// The Pod as far as a patch can reach it with `add`: its metadata maps with their keys (values
/// do not matter to an `add`), and its lists with as many items as the Pod's, each `null` but
/// for the app containers when the plan adds to them, which have their env and mount lists
/// likewise. Every path our patches use is here as in the Pod; a patch that strays elsewhere fails
/// to apply or to compare.
fn outline(view: &PodView, plan: &Plan) -> Value {
    let keys = |pairs: &[(Cow<str>, Cow<str>)]| -> Value {
        Value::Object(pairs.iter().map(|(k, _)| (k.to_string(), Value::Null)).collect())
    };
    let nulls = |count: usize| Value::Array(vec![Value::Null; count]);
    let mut pod = Map::new();
    if view.has.metadata {
        let mut metadata = Map::new();
        if view.has.labels {
            metadata.insert("labels".into(), keys(view.labels()));
        }
        if view.has.annotations {
            metadata.insert("annotations".into(), keys(view.annotations()));
        }
        pod.insert("metadata".into(), Value::Object(metadata));
    }
    let mut spec = Map::new();
    if view.has.init_containers {
        spec.insert("initContainers".into(), nulls(view.init_container_count()));
    }
    if view.has.containers {
        let containers = view.containers.iter().map(|app| {
            if plan.app_containers.is_empty() {
                return Value::Null;
            }
            let mut container = Map::new();
            for (field, list) in [("env", &app.env), ("volumeMounts", &app.volume_mounts)] {
                if let Some(list) = list {
                    container.insert(field.into(), nulls(list.len()));
                }
            }
            Value::Object(container)
        });
        spec.insert("containers".into(), Value::Array(containers.collect()));
    }
    if view.has.volumes {
        spec.insert("volumes".into(), nulls(view.volume_count()));
    }
    pod.insert("spec".into(), Value::Object(spec));
    Value::Object(pod)
}

/// What stands for `item` in [`verify`]: its address, the same in both renderings.
fn token(item: &Value) -> Value {
    Value::from(std::ptr::from_ref(item) as usize as u64)
}

impl Added<'_> {
    fn token(&self) -> Value {
        let texts = |pairs: &Pairs| -> Map<String, Value> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.to_string()))).collect()
        };
        match self {
            Added::Item(item) => token(item),
            Added::Items(items) => Value::Array(items.iter().map(|item| token(item)).collect()),
            Added::Text(text) => Value::String((*text).to_owned()),
            Added::Texts(pairs) => Value::Object(texts(pairs)),
            Added::Metadata { labels, annotations } => {
                let mut metadata = Map::new();
                for (field, pairs) in [("labels", labels), ("annotations", annotations)] {
                    if !pairs.is_empty() {
                        metadata.insert(field.into(), Value::Object(texts(pairs)));
                    }
                }
                Value::Object(metadata)
            }
        }
    }
}

/// The plan applied by plain mutation, each item as its [`token`]: the reference the patch is
/// checked against.
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
    let tokens = |items: &[Cow<Value>]| items.iter().map(|item| token(item)).collect::<Vec<_>>();
    if !plan.init_containers.is_empty() {
        let list = list_entry(spec, "initContainers");
        list.splice(0..0, tokens(&plan.init_containers));
    }
    for (field, items) in [("containers", &plan.containers), ("volumes", &plan.volumes)] {
        if !items.is_empty() {
            list_entry(spec, field).extend(tokens(items));
        }
    }
    if plan.app_containers.is_empty() {
        return;
    }
    let containers = list_entry(spec, "containers");
    for (container, added) in containers.iter_mut().zip(&plan.app_containers) {
        let container = container.as_object_mut().expect("the outline has app containers as objects");
        for (field, items) in [("env", &added.env), ("volumeMounts", &added.volume_mounts)] {
            if !items.is_empty() {
                list_entry(container, field).extend(tokens(items));
            }
        }
    }
}

fn object_entry<'m>(map: &'m mut Map<String, Value>, field: &str) -> &'m mut Map<String, Value> {
    let slot = map.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("the outline's maps are objects")
}

#[cfg(test)]
mod tests {
    use super::super::{Added, child, operations, to_json};
    use super::*;
    use json_patch::jsonptr::PointerBuf;
    use serde_json::json;

    #[test]
    fn pointer_tokens_are_escaped_per_rfc_6901() {
        let at = child(&PointerBuf::from_tokens(["metadata", "annotations"]), "example.com/a~b");
        assert_eq!(at.as_str(), "/metadata/annotations/example.com~1a~0b");
    }

    fn sidecar() -> Value {
        json!({"name": "sidecar", "image": "busybox"})
    }

    fn plan<'a>(container: &'a Value, volume: &'a Value) -> Plan<'a> {
        Plan {
            labels: vec![("foo", Cow::Borrowed("bar"))],
            containers: vec![Cow::Borrowed(container)],
            volumes: vec![Cow::Borrowed(volume)],
            ..Plan::default()
        }
    }

    fn pod() -> crate::skeleton::Pod<'static> {
        crate::skeleton::skeleton(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app"}], "volumes": [{"name": "data"}]}
        }))
    }

    #[test]
    fn the_patch_that_operations_writes_passes_its_check_and_says_what_the_plan_says() {
        let (container, volume) = (sidecar(), json!({"name": "scratch", "emptyDir": {}}));
        let plan = plan(&container, &volume);
        let pod = pod();
        let view = PodView::read(&pod).ok().unwrap();
        let ops = operations(&plan, &view);
        verify(&view, &plan, &ops).unwrap();
        let written: Value = serde_json::from_slice(&to_json(&ops)).unwrap();
        assert_eq!(
            written,
            json!([
                {"op": "add", "path": "/metadata/labels/foo", "value": "bar"},
                {"op": "add", "path": "/spec/containers/-", "value": container},
                {"op": "add", "path": "/spec/volumes/-", "value": volume},
            ])
        );
    }

    #[test]
    fn an_item_sent_to_the_wrong_list_fails_the_check() {
        let (container, volume) = (sidecar(), json!({"name": "scratch", "emptyDir": {}}));
        let plan = plan(&container, &volume);
        let pod = pod();
        let view = PodView::read(&pod).ok().unwrap();
        let mut ops = operations(&plan, &view);
        // The container and the volume swapped: both lists still grow by one item.
        let (a, b) = ops.split_at_mut(2);
        std::mem::swap(&mut a[1].value, &mut b[0].value);
        let error = verify(&view, &plan, &ops).unwrap_err();
        assert_eq!(error, "the patched Pod is not the intended Pod");
    }

    #[test]
    fn a_patch_that_replaces_the_pods_labels_fails_the_check() {
        let (container, volume) = (sidecar(), json!({"name": "scratch", "emptyDir": {}}));
        let plan = plan(&container, &volume);
        let pod = pod();
        let view = PodView::read(&pod).ok().unwrap();
        let mut ops = operations(&plan, &view);
        ops[0] =
            Add { path: PointerBuf::from_tokens(["metadata", "labels"]), value: Added::Texts(&plan.labels) };
        let error = verify(&view, &plan, &ops).unwrap_err();
        assert_eq!(error, "the patched Pod is not the intended Pod");
    }

    #[test]
    fn a_patch_into_a_list_the_pod_lacks_fails_to_apply() {
        let (container, volume) = (sidecar(), json!({"name": "scratch", "emptyDir": {}}));
        let plan = plan(&container, &volume);
        let pod = pod();
        let view = PodView::read(&pod).ok().unwrap();
        let mut ops = operations(&plan, &view);
        ops[1].path = PointerBuf::from_tokens(["spec", "initContainers", "-"]);
        let error = verify(&view, &plan, &ops).unwrap_err();
        assert!(error.starts_with("the patch does not apply to the Pod"), "{error}");
    }
}
