//! The check refuses a patch that puts an item, a map or a path where the plan does not.

use super::super::{Added, operations, pointer, to_json};
use super::*;
use serde_json::{Value, json};

/// The path of `tokens`, each escaped.
fn path(tokens: &[&str]) -> String {
    pointer(&tokens.iter().map(|t| Token::new(*t)).collect::<Vec<_>>())
}

#[test]
fn pointer_tokens_are_escaped_per_rfc_6901() {
    assert_eq!(
        path(&["metadata", "annotations", "example.com/a~b"]),
        "/metadata/annotations/example.com~1a~0b"
    );
    assert_eq!(path(&["spec", "containers", "-"]), "/spec/containers/-");
    assert_eq!(path(&[]), "");
}

/// A plan item as a profile filled for the Pod.
fn item(value: &Value) -> Rendered<'static> {
    Rendered::Filled(value.clone())
}

fn sidecar() -> Value {
    json!({"name": "sidecar", "image": "busybox"})
}

fn scratch() -> Value {
    json!({"name": "scratch", "emptyDir": {}})
}

/// A label, a container and a volume to add.
fn plan() -> Plan<'static> {
    Plan {
        labels: vec![("foo", Cow::Borrowed("bar"))],
        containers: vec![item(&sidecar())],
        volumes: vec![item(&scratch())],
        ..Plan::default()
    }
}

fn pod() -> crate::skeleton::PodSkeleton<'static> {
    crate::skeleton::skeleton(json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app"}], "volumes": [{"name": "data"}]}
    }))
}

/// The check's verdict on the sample plan's patch for the sample Pod, after `change` to its
/// operations.
fn checked_after(change: impl for<'p> FnOnce(&'p Plan<'static>, &mut Vec<Add<'p>>)) -> Result<(), String> {
    let plan = plan();
    let pod = pod();
    let view = PodView::read(&pod, true).ok().unwrap();
    let mut ops = operations(&plan, &view);
    change(&plan, &mut ops);
    verify(&view, &plan, &ops)
}

#[test]
fn the_patch_that_operations_writes_passes_its_check_and_says_what_the_plan_says() {
    let plan = plan();
    let pod = pod();
    let view = PodView::read(&pod, true).ok().unwrap();
    let ops = operations(&plan, &view);
    verify(&view, &plan, &ops).unwrap();
    let written: Value = serde_json::from_slice(&to_json(&ops)).unwrap();
    assert_eq!(
        written,
        json!([
            {"op": "add", "path": "/metadata/labels/foo", "value": "bar"},
            {"op": "add", "path": "/spec/containers/-", "value": sidecar()},
            {"op": "add", "path": "/spec/volumes/-", "value": scratch()},
        ])
    );
}

#[test]
fn an_item_sent_to_the_wrong_list_fails_the_check() {
    // The container and the volume swapped: both lists still grow by one item.
    let checked = checked_after(|_, ops| {
        let (a, b) = ops.split_at_mut(2);
        std::mem::swap(&mut a[1].value, &mut b[0].value);
    });
    assert_eq!(checked.unwrap_err(), "the patched Pod is not the intended Pod");
}

#[test]
fn a_patch_that_replaces_the_pods_labels_fails_the_check() {
    let checked = checked_after(|plan, ops| {
        ops[0] = Add { path: path(&["metadata", "labels"]), value: Added::Entries(&plan.labels) };
    });
    assert_eq!(checked.unwrap_err(), "the patched Pod is not the intended Pod");
}

#[test]
fn a_patch_into_a_list_the_pod_lacks_fails_to_apply() {
    let error = checked_after(|_, ops| ops[1].path = path(&["spec", "initContainers", "-"])).unwrap_err();
    assert!(error.starts_with("the patch does not apply to the Pod"), "{error}");
}

#[test]
fn a_label_key_with_a_slash_and_a_tilde_is_read_back_as_the_plan_wrote_it() {
    let mut plan = plan();
    plan.labels = vec![("example.com/a~b", Cow::Borrowed("on"))];
    let pod = pod();
    let view = PodView::read(&pod, true).ok().unwrap();
    let mut ops = operations(&plan, &view);
    verify(&view, &plan, &ops).unwrap();
    // Escaped twice, the path names another key: the one a patch's reader would set.
    ops[0].path = path(&["metadata", "labels", "example.com~1a~0b"]);
    assert_eq!(ops[0].path, "/metadata/labels/example.com~01a~00b");
    let error = verify(&view, &plan, &ops).unwrap_err();
    assert_eq!(error, "the patched Pod is not the intended Pod");
}

#[test]
fn init_containers_out_of_order_fail_the_check() {
    let (first, second) = (sidecar(), json!({"name": "second", "image": "busybox"}));
    let plan = Plan { init_containers: vec![item(&first), item(&second)], ..Plan::default() };
    let pod = crate::skeleton::skeleton(json!({
        "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]}
    }));
    let view = PodView::read(&pod, true).ok().unwrap();
    let mut ops = operations(&plan, &view);
    verify(&view, &plan, &ops).unwrap();
    ops.swap(0, 1);
    let error = verify(&view, &plan, &ops).unwrap_err();
    assert_eq!(error, "the patched Pod is not the intended Pod");
}

#[test]
fn an_index_past_the_end_of_a_list_fails_to_apply() {
    for path in ["/spec/volumes/2", "/spec/volumes/01", "/spec/volumes/x"] {
        let error = checked_after(|_, ops| ops[2].path = path.into()).unwrap_err();
        assert!(error.starts_with("the patch does not apply to the Pod: /spec/volumes/"), "{path}: {error}");
    }
}

#[test]
fn an_env_var_for_a_container_the_pod_lacks_fails_to_apply() {
    let var = json!({"name": "MODE", "value": "on"});
    let plan = Plan {
        app_containers: vec![crate::plan::AppAdditions { env: vec![item(&var)], ..Default::default() }],
        ..Plan::default()
    };
    let pod = pod();
    let view = PodView::read(&pod, true).ok().unwrap();
    let mut ops = operations(&plan, &view);
    verify(&view, &plan, &ops).unwrap();
    assert_eq!(ops[0].path, "/spec/containers/0/env");
    ops[0].path = "/spec/containers/1/env".into();
    let error = verify(&view, &plan, &ops).unwrap_err();
    assert!(error.starts_with("the patch does not apply to the Pod"), "{error}");
}

#[test]
fn a_path_deeper_than_our_patches_write_is_refused() {
    for path in ["/spec/containers/0/env/0/name", "/spec/containers/0/env/0/valueFrom/fieldRef"] {
        let error = checked_after(|_, ops| ops[1].path = path.into()).unwrap_err();
        assert_eq!(
            error,
            format!("the patch does not apply to the Pod: {path} is not a place our patches add an item to")
        );
    }
}

/// A path as a patch's reader reads it: not a JSON Pointer, and nothing is added.
fn refused_as_no_pointer(path: &str) {
    let error = checked_after(|_, ops| ops[2].path = path.into()).unwrap_err();
    let expected = format!("the patch does not apply to the Pod: {path} is not a JSON Pointer: ");
    assert!(error.starts_with(&expected), "{error}");
}

#[test]
fn a_path_without_its_leading_slash_is_refused() {
    refused_as_no_pointer("spec/volumes/-");
}

#[test]
fn a_path_with_a_tilde_escaping_nothing_is_refused() {
    refused_as_no_pointer("/spec/volumes~2/-");
}
