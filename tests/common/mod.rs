//! Helpers shared by the integration tests. They read answers the way the API server does: from
//! the response bytes, base64-decoding the patch, never from the library's internal values.
#![allow(dead_code, unused_macros, unused_imports)] // each test binary uses a different subset

#[cfg(feature = "server")]
pub mod tls;

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Value, json};
use sidecar_injector::engine::wire::{PatchType, ReviewResponse};
use sidecar_injector::{Config, review};

/// An AdmissionReview v1 for a Pod CREATE in `namespace`.
pub fn pod_review(pod: &Value, namespace: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3b5c1f2e-6a55-4d4f-a1b2-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"].as_str().unwrap_or(""),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

/// The response AdmissionReview for `request`, parsed with the engine's own wire types.
pub fn answer(request: &Value, config: &Config) -> ReviewResponse<'static> {
    let body = serde_json::to_vec(request).unwrap();
    let reviewed = review(&body, config).unwrap_or_else(|e| panic!("review failed: {e}"));
    serde_json::from_slice(&reviewed.body).expect("the response is a response AdmissionReview")
}

/// The JSON Patch in a response, base64-decoded, if there is one.
pub fn patch_of(response: &ReviewResponse) -> Option<json_patch::Patch> {
    let encoded = response.response.patch.as_ref()?;
    assert_eq!(response.response.patch_type, Some(PatchType::JsonPatch));
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).expect("the patch is base64");
    Some(serde_json::from_slice(&bytes).expect("the patch is a JSON Patch"))
}

/// Review `pod` and apply the answer's patch, as the API server would. Returns the response and
/// the resulting Pod (the original when there is no patch).
///
/// With `SIDECAR_INJECTOR_ADMITTED_PODS` set to a folder, each patched Pod is also written there,
/// named after the test, for `tests/e2e_admitted.py` to give to a real API server's validation
/// (CI does this: a patch that only our own tests accept is no patch).
pub fn admit(pod: &Value, namespace: &str, config: &Config) -> (ReviewResponse<'static>, Value) {
    let response = answer(&pod_review(pod, namespace), config);
    let mut result = pod.clone();
    if let Some(patch) = patch_of(&response) {
        json_patch::patch(&mut result, &patch).expect("the patch applies to the Pod it was made for");
        keep_for_the_api_server(pod, &result);
    }
    (response, result)
}

fn keep_for_the_api_server(original: &Value, patched: &Value) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let Some(folder) = std::env::var_os("SIDECAR_INJECTOR_ADMITTED_PODS") else { return };
    let test = std::thread::current().name().unwrap_or("unnamed").replace("::", "-");
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let file = PathBuf::from(folder).join(format!("{test}-{}-{n}.json", std::process::id()));
    let both = json!({"original": original, "patched": patched});
    std::fs::write(&file, serde_json::to_vec_pretty(&both).unwrap())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
}

/// A small Pod, as the API server sends it after defaulting.
pub fn small_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}],
            "restartPolicy": "Always"
        }
    })
}

/// The built-in example sidecar, read from the configuration file itself rather than from the
/// program, so that a test compares the program's output with what the user wrote.
pub fn example_sidecar() -> Value {
    let text = include_str!("../../src/engine/default-config.yaml");
    let config: Value = serde_saphyr::from_str(text).unwrap();
    config["profiles"]["example"]["containers"][0].clone()
}

pub fn config(yaml: &str) -> Config {
    Config::from_yaml(yaml).unwrap_or_else(|e| panic!("test configuration is invalid: {e}"))
}

/// A table test whose rows are each a test case of their own, so that a failing row does not hide
/// the rows after it and `cargo test` names the one that failed:
///
/// ```ignore
/// rows! { check;
///     a_row_name: ("an input", "what it must give"),
/// }
/// ```
///
/// makes `#[test] fn a_row_name() { check("an input", "what it must give") }`.
macro_rules! rows {
    ($check:path; $($name:ident: ($($arg:expr),* $(,)?)),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $check($($arg),*)
            }
        )*
    };
}
pub(crate) use rows;

/// A folder of the test's own, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sidecar-injector-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The runtime the async tests run on: two workers, as the machine has two cores.
#[cfg(any(feature = "server", feature = "lambda"))]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}
