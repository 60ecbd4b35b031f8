//! `deploy-incluster/` agrees with itself and with the program: the webhook points at the Service,
//! the Service at the container's port, the port at the server's listener, the path at its route,
//! and the certificate the server makes carries the name the API server will call.
#![cfg(feature = "server")]

use std::path::Path;

use serde_json::Value;
use sidecar_injector::Config;
use sidecar_injector::engine::config::keys;
use sidecar_injector::server::MUTATE_PATH;
use sidecar_injector::server::certs::service_names;

const DIR: &str = "deploy-incluster";

/// Every document of every `.yaml` file, in the order `kubectl create -f deploy-incluster/`
/// reads them (file names in lexical order), with the file each came from.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(Path::new(DIR).join(&file)).unwrap();
        for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{file}: {e}")) {
            assert!(
                doc["apiVersion"].is_string() && doc["kind"].is_string(),
                "{file}: every document is an object"
            );
            docs.push((file.clone(), doc));
        }
    }
    docs
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn position(docs: &[(String, Value)], kind: &str) -> usize {
    docs.iter().position(|(_, d)| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

fn arg<'a>(args: &'a [Value], flag: &str) -> Option<&'a str> {
    args.iter().filter_map(Value::as_str).find_map(|a| a.strip_prefix(&format!("--{flag}=")))
}

#[test]
fn files_are_created_in_a_working_order_and_kustomize_sees_the_same_set() {
    let docs = documents();
    assert_eq!(docs[0].1["kind"], "Namespace", "the namespace comes first");
    assert!(position(&docs, "ServiceAccount") < position(&docs, "Deployment"));
    assert!(position(&docs, "Role") < position(&docs, "Deployment"));
    assert!(position(&docs, "ConfigMap") < position(&docs, "Deployment"));
    assert!(position(&docs, "Service") < position(&docs, "MutatingWebhookConfiguration"));
    assert!(position(&docs, "Deployment") < position(&docs, "MutatingWebhookConfiguration"));
    assert_eq!(docs.last().unwrap().0, "test.yaml", "the test workload comes last");

    let kustomization: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(Path::new(DIR).join("Kustomization")).unwrap())
            .unwrap();
    let mut listed: Vec<&str> =
        kustomization["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    listed.sort();
    let mut files: Vec<&str> = docs.iter().map(|(f, _)| f.as_str()).collect();
    files.dedup();
    assert_eq!(listed, files, "kubectl apply -k and kubectl create -f deploy the same files");
}

#[test]
fn the_webhook_service_port_path_and_certificate_agree() {
    let docs = documents();
    let webhook_configuration = find(&docs, "MutatingWebhookConfiguration", "sidecar-injector");
    let webhook = &webhook_configuration["webhooks"][0];
    let target = &webhook["clientConfig"]["service"];
    let (service_name, namespace) = (target["name"].as_str().unwrap(), target["namespace"].as_str().unwrap());
    assert_eq!(target["path"], MUTATE_PATH, "the server's route");
    assert!(webhook["clientConfig"].get("caBundle").is_none(), "the server writes the caBundle itself");

    let service = find(&docs, "Service", service_name);
    assert_eq!(service["metadata"]["namespace"], namespace);
    let port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == target["port"])
        .expect("the Service has the webhook's port");

    let deployment = find(&docs, "Deployment", "sidecar-injector");
    assert_eq!(deployment["metadata"]["namespace"], namespace);
    assert_eq!(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let container_port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port["targetPort"])
        .expect("the targetPort names a container port");
    let args = container["args"].as_array().unwrap();
    let listen = arg(args, "listen").unwrap();
    assert_eq!(
        listen.rsplit(':').next().unwrap(),
        container_port["containerPort"].to_string(),
        "the server listens on the container port"
    );

    // The certificate the server makes is for the name the API server calls.
    assert_eq!(arg(args, "service"), Some(service_name));
    let env = &container["env"][0];
    assert_eq!(
        (env["name"].as_str(), env["valueFrom"]["fieldRef"]["fieldPath"].as_str()),
        (Some("POD_NAMESPACE"), Some("metadata.namespace"))
    );
    assert!(service_names(service_name, namespace).contains(&format!("{service_name}.{namespace}.svc")));

    // The names the server writes to are the ones RBAC allows, and the ones that exist.
    assert_eq!(arg(args, "webhook-configuration"), webhook_configuration["metadata"]["name"].as_str());
    assert_eq!(arg(args, "webhook"), webhook["name"].as_str());
    let role = find(&docs, "Role", "sidecar-injector");
    assert_eq!(role["rules"][0]["resourceNames"][0].as_str(), arg(args, "ca-secret"));
    let cluster_role = find(&docs, "ClusterRole", "sidecar-injector");
    assert_eq!(cluster_role["rules"][0]["resourceNames"][0], webhook_configuration["metadata"]["name"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        find(&docs, "RoleBinding", "sidecar-injector")["subjects"][0]["name"]
    );

    // The probes hit the probe thread's plain-HTTP listener, on the port --metrics-listen names.
    let probe_port = container["ports"].as_array().unwrap().iter().find(|p| p["name"] == "metrics").unwrap();
    let listen = arg(args, "metrics-listen").unwrap();
    assert!(listen.ends_with(&format!(":{}", probe_port["containerPort"])), "{listen}");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTP");
        assert_eq!(container[probe]["httpGet"]["port"], "metrics");
        assert!(["/healthz", "/readyz"].contains(&container[probe]["httpGet"]["path"].as_str().unwrap()));
    }
}

#[test]
fn the_webhook_is_registered_as_the_design_says() {
    let docs = documents();
    let webhook = &find(&docs, "MutatingWebhookConfiguration", "sidecar-injector")["webhooks"][0];
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(webhook["admissionReviewVersions"], serde_json::json!(["v1"]));
    assert_eq!(webhook["failurePolicy"], "Fail");
    assert_eq!(webhook["timeoutSeconds"], 5);
    assert_eq!(webhook["reinvocationPolicy"], "Never");
    assert_eq!(webhook["rules"][0]["operations"], serde_json::json!(["CREATE"]));
    assert_eq!(webhook["rules"][0]["resources"], serde_json::json!(["pods"]));
    assert_eq!(webhook["namespaceSelector"]["matchLabels"][keys::INJECT], "enabled");
    let opt_out = &webhook["objectSelector"]["matchExpressions"][0];
    assert_eq!((opt_out["key"].as_str(), opt_out["operator"].as_str()), (Some(keys::INJECT), Some("NotIn")));
    assert_eq!(opt_out["values"], serde_json::json!(["false"]));

    // The injector's own namespace is never sent to it: no deadlock on its own Pods.
    let namespace = find(&docs, "Namespace", "sidecar-injector");
    assert_ne!(namespace["metadata"]["labels"][keys::INJECT], "enabled");
    assert_eq!(
        find(&docs, "Namespace", "sidecar-injector-test")["metadata"]["labels"][keys::INJECT],
        "enabled"
    );
}

#[test]
fn the_configmap_is_the_built_in_configuration_and_the_pod_is_restricted() {
    let docs = documents();
    let config =
        find(&docs, "ConfigMap", "sidecar-injector")["data"]["config.yaml"].as_str().unwrap().to_owned();
    assert!(Config::from_yaml(&config).is_ok());
    let shipped: Value = serde_saphyr::from_str(&config).unwrap();
    let builtin: Value = serde_saphyr::from_str(include_str!("../src/engine/default-config.yaml")).unwrap();
    assert_eq!(shipped, builtin);

    let deployment = find(&docs, "Deployment", "sidecar-injector");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let security = &pod["containers"][0]["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(pod["containers"][0]["resources"]["limits"]["memory"].is_string());
}

/// The autoscaler never goes below the Deployment's replicas, which leave the PodDisruptionBudget
/// a replica to spare, and scales on a CPU request the container has.
#[test]
fn the_autoscaler_and_the_disruption_budget_agree() {
    let docs = documents();
    let deployment = find(&docs, "Deployment", "sidecar-injector");
    let hpa = &find(&docs, "HorizontalPodAutoscaler", "sidecar-injector")["spec"];
    let pdb = &find(&docs, "PodDisruptionBudget", "sidecar-injector")["spec"];
    assert_eq!(hpa["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["scaleTargetRef"]["name"], deployment["metadata"]["name"]);
    let (min, max) = (hpa["minReplicas"].as_i64().unwrap(), hpa["maxReplicas"].as_i64().unwrap());
    assert_eq!(
        deployment["spec"]["replicas"].as_i64(),
        Some(min),
        "the Deployment starts at the autoscaler's minimum"
    );
    assert!(min >= 2 && max > min);
    assert!(pdb["minAvailable"].as_i64().unwrap() < min, "a drain can always evict one replica");
    assert_eq!(pdb["selector"], deployment["spec"]["selector"]);
    assert_eq!(hpa["metrics"][0]["resource"]["name"], "cpu");
    let requests = &deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"];
    assert!(requests["cpu"].is_string(), "CPU utilization is a share of the request");
}
