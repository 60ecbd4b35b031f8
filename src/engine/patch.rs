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
use json_patch::{AddOperation, PatchOperation};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use super::plan::Plan;
use super::pod_view::PodView;

/// One `add` operation, its value borrowed from the plan: the patch is written straight from the
/// configuration's templates, never copied on the way.
#[derive(Debug)]
pub(crate) struct Add<'p> {
    path: PointerBuf,
    value: Added<'p>,
}

type Pairs<'p> = [(&'p str, Cow<'p, str>)];

/// What an [`Add`] adds.
#[derive(Debug)]
enum Added<'p> {
    /// One item of a list.
    Item(&'p Value),
    /// A whole list, where the Pod has none.
    Items(&'p [Cow<'p, Value>]),
    /// One label or annotation.
    Text(&'p str),
    /// A whole labels or annotations map, where the Pod has none.
    Texts(&'p Pairs<'p>),
    /// `metadata`, where the Pod has none: its labels and annotations.
    Metadata { labels: &'p Pairs<'p>, annotations: &'p Pairs<'p> },
}

/// The JSON Patch for `plan`, against the Pod it was planned for.
pub(crate) fn operations<'p>(plan: &'p Plan, view: &PodView) -> Vec<Add<'p>> {
    let mut ops = Vec::new();
    let (labels, annotations) = (&plan.labels[..], &plan.annotations[..]);
    if !view.has.metadata {
        if !labels.is_empty() || !annotations.is_empty() {
            add(&mut ops, PointerBuf::from_tokens(["metadata"]), Added::Metadata { labels, annotations });
        }
    } else {
        for (field, entries, has) in
            [("labels", labels, view.has.labels), ("annotations", annotations, view.has.annotations)]
        {
            if entries.is_empty() {
                continue;
            }
            let at = PointerBuf::from_tokens(["metadata", field]);
            if has {
                for (key, value) in entries {
                    add(&mut ops, child(&at, key), Added::Text(value));
                }
            } else {
                add(&mut ops, at, Added::Texts(entries));
            }
        }
    }

    let spec_at = PointerBuf::from_tokens(["spec"]);
    let has = view.has;
    add_items(&mut ops, has.init_containers, &spec_at, "initContainers", &plan.init_containers, Where::Front);
    add_items(&mut ops, has.containers, &spec_at, "containers", &plan.containers, Where::End);
    add_items(&mut ops, has.volumes, &spec_at, "volumes", &plan.volumes, Where::End);
    for (index, (added, app)) in plan.app_containers.iter().zip(view.containers).enumerate() {
        let at =
            PointerBuf::from_tokens([Token::from("spec"), Token::from("containers"), Token::from(index)]);
        add_items(&mut ops, app.env.is_some(), &at, "env", &added.env, Where::End);
        add_items(
            &mut ops,
            app.volume_mounts.is_some(),
            &at,
            "volumeMounts",
            &added.volume_mounts,
            Where::End,
        );
    }
    ops
}

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

/// `ops` as a JSON Patch document.
pub(crate) fn to_json(ops: &[Add]) -> Vec<u8> {
    let mut json = Vec::with_capacity(1024);
    serde_json::to_writer(&mut json, ops).expect("patches always serialize");
    json
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

impl Serialize for Add<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut op = serializer.serialize_map(Some(3))?;
        op.serialize_entry("op", "add")?;
        op.serialize_entry("path", self.path.as_str())?;
        op.serialize_entry("value", &self.value)?;
        op.end()
    }
}

impl Serialize for Added<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Texts<'a>(&'a Pairs<'a>);
        impl Serialize for Texts<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
            }
        }
        match self {
            Added::Item(item) => item.serialize(serializer),
            Added::Items(items) => {
                let mut list = serializer.serialize_seq(Some(items.len()))?;
                for item in *items {
                    list.serialize_element(item.as_ref())?;
                }
                list.end()
            }
            Added::Text(text) => serializer.serialize_str(text),
            Added::Texts(pairs) => Texts(pairs).serialize(serializer),
            Added::Metadata { labels, annotations } => {
                let mut metadata = serializer.serialize_map(None)?;
                for (field, pairs) in [("labels", labels), ("annotations", annotations)] {
                    if !pairs.is_empty() {
                        metadata.serialize_entry(field, &Texts(pairs))?;
                    }
                }
                metadata.end()
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

#[derive(Clone, Copy)]
enum Where {
    Front,
    End,
}

fn add_items<'p>(
    ops: &mut Vec<Add<'p>>,
    present: bool,
    parent_at: &PointerBuf,
    field: &str,
    items: &'p [Cow<'p, Value>],
    at: Where,
) {
    if items.is_empty() {
        return;
    }
    let list_at = child(parent_at, field);
    if !present {
        add(ops, list_at, Added::Items(items));
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
        add(ops, path, Added::Item(item));
    }
}

fn add<'p>(ops: &mut Vec<Add<'p>>, path: PointerBuf, value: Added<'p>) {
    ops.push(Add { path, value });
}

fn child(parent: &PointerBuf, token: &str) -> PointerBuf {
    let mut path = parent.clone();
    path.push_back(token);
    path
}

fn object_entry<'m>(map: &'m mut Map<String, Value>, field: &str) -> &'m mut Map<String, Value> {
    let slot = map.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("the outline's maps are objects")
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
