//! The command line, run as a user runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;

use common::TempDir;
use serde_json::Value;
use sidecar_injector::engine::wire::ReviewResponse;

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn review_answers_the_custom_resource_fixture_untouched() {
    let out = run(&["review", "tests/fixtures/admission.k8s.io.v1.AdmissionReview.json"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let response: ReviewResponse = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response.response.uid, "uidValue");
    assert!(response.response.allowed);
    assert!(response.response.patch.is_none());
}

#[test]
fn review_reads_stdin_and_explains_on_stderr() {
    let review = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
        "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
        "operation":"CREATE","namespace":"shop","object":{"metadata":{"name":"web"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}}}"#;
    let out = run(&["review", "--explain", "-"], review.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let response: ReviewResponse = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response.response.uid, "u1");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("CREATE Pod shop/web: injected: example"), "{stderr}");
    // No securityContext: baseline, and the example sidecar keeps it so.
    assert!(stderr.contains("pod security: baseline before, baseline injected"), "{stderr}");
    assert!(stderr.contains("\"path\": \"/spec/containers/-\""), "{stderr}");
}

/// The README's `config check --require restricted` block, run: its command gives its output.
#[test]
fn the_readme_pod_security_config_check() {
    let readme = include_str!("../README.md");
    let block = readme.split("$ sidecar-injector ").nth(1).and_then(|b| b.split("```").next()).unwrap();
    let (command, printed) = block.split_once('\n').unwrap();
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args[..2], ["config", "check"], "the block found is the config check one: {command}");
    let out = run(&args, b"");
    assert_eq!(out.status.code(), Some(1), "a profile below restricted fails the check");
    assert_eq!(text(&out.stdout) + &text(&out.stderr), printed);
}

#[test]
fn review_of_a_denied_pod_exits_zero_and_of_garbage_non_zero() {
    let clash = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2",
        "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
        "operation":"CREATE","namespace":"shop","object":{"spec":{"containers":[{"name":"example-sidecar","image":"x"}]}}}}"#;
    let out = run(&["review"], clash.as_bytes());
    assert!(out.status.success());
    let response: ReviewResponse = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!response.response.allowed);

    let out = run(&["review"], b"{\"apiVersion\": ");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("malformed AdmissionReview"), "{}", text(&out.stderr));
}

const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: job
              image: busybox:1.37
---
"#;

#[test]
fn inject_handles_a_deployment_and_a_cronjob_in_one_file() {
    let out = run(&["inject", "-f", "-"], WORKLOADS.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text(&out.stdout)).unwrap();
    assert_eq!(docs.len(), 3, "every document comes out, the empty trailing one excepted");

    let names = |template: &Value| -> Vec<String> {
        template["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let deployment = &docs[0]["spec"]["template"];
    assert_eq!(names(deployment), ["app", "example-sidecar"]);
    assert_eq!(deployment["metadata"]["labels"]["foo"], "bar");
    assert_eq!(deployment["metadata"]["labels"]["app"], "web");
    assert_eq!(docs[1]["kind"], "Service");
    assert_eq!(docs[1]["spec"]["ports"][0]["port"], 80);
    let cron = &docs[2]["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(names(cron), ["job", "example-sidecar"]);
    assert_eq!(cron["metadata"]["labels"]["foo"], "bar", "a template without metadata gains it");
    assert!(cron["metadata"]["annotations"]["sidecar-injector.io/status"].is_string());

    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("document 1 (Deployment web): injected example")
            && stderr.contains("document 2 (Service web): passed through: not a kind inject injects into")
            && stderr.contains("document 3 (CronJob nightly): injected example"),
        "{stderr}"
    );

    // Injecting the output again changes nothing: the status annotation is recognised.
    let again = run(&["inject", "-f", "-"], &out.stdout);
    assert!(again.status.success());
    assert_eq!(text(&again.stdout), text(&out.stdout));
    assert!(text(&again.stderr).contains("not injected (already-injected)"));
}

/// A Deployment whose template sets the example configuration's parameters.
const PARAMETERISED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: shop}
spec:
  selector: {matchLabels: {app: checkout}}
  template:
    metadata:
      labels: {app: checkout, tier: web, logs.example.com/ship: "true"}
      annotations: {logs.example.com/path: /var/log/checkout, logs.example.com/format: logfmt}
    spec:
      serviceAccountName: checkout
      containers:
        - name: checkout
          image: shop/checkout:2
          env: [{name: OTEL_SERVICE_NAME, value: checkout}]
          volumeMounts: [{name: logs, mountPath: /var/log/checkout}]
      volumes: [{name: logs, emptyDir: {}}]
"#;

/// `inject -f` and `review` are one code path: the template `inject` writes is exactly the Pod
/// `review`'s patch makes of it, parameters, built-ins and app values included.
#[test]
fn inject_with_parameters_gives_what_review_gives() {
    let example = "deploy-incluster/examples/profiles.yaml";
    let out = run(&["inject", "-c", example, "-f", "-"], PARAMETERISED.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let injected: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    let injected = &injected["spec"]["template"];
    assert_eq!(injected["spec"]["initContainers"][0]["args"][3], "path=/var/log/checkout/*.log");

    let deployment: Value = serde_saphyr::from_str(PARAMETERISED).unwrap();
    let template = &deployment["spec"]["template"];
    let review = serde_json::to_vec(&common::pod_review(template, "shop")).unwrap();
    let out = run(&["review", "-c", example, "-"], &review);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let response: ReviewResponse = serde_json::from_slice(&out.stdout).unwrap();
    let mut reviewed = template.clone();
    json_patch::patch(&mut reviewed, &common::patch_of(&response).unwrap()).unwrap();
    assert_eq!(injected, &reviewed);
}

#[test]
fn inject_respects_namespace_skips_and_reports_denials() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}]}\n";
    let out = run(&["inject", "-f", "-", "--namespace", "kube-system"], pod.as_bytes());
    assert!(out.status.success());
    assert!(!text(&out.stdout).contains("example-sidecar"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("document 1 (Pod p): passed through: not injected: namespace kube-system is skipped"),
        "{stderr}"
    );

    let clash = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: example-sidecar, image: x}]}\n";
    let out = run(&["inject", "-f", "-"], clash.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused: document 1 (Pod p): cannot inject"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["inject", "-f", "-"], b"kind: [unclosed");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not valid YAML"), "{}", text(&out.stderr));
}

#[test]
fn config_check_and_default() {
    let out = run(&["config", "default"], b"");
    assert!(out.status.success());
    let printed = text(&out.stdout);
    assert!(printed.contains("foo: bar"));

    let dir = TempDir::new("cli");
    let dir = &dir.0;
    let good = dir.join("good.yaml");
    std::fs::write(&good, &printed).unwrap();
    let out = run(&["config", "check", good.to_str().unwrap()], b"");
    assert!(out.status.success(), "the printed default passes its own check: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid; profiles: example"));

    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "profiles:\n  proxy:\n    containers:\n      - {name: envoy, image: envoy, imagePullPolcy: Always}\n",
    )
    .unwrap();
    let out = run(&["config", "check", bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("profiles.proxy.containers[0].imagePullPolcy: unknown field"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &["review", "-c", bad.to_str().unwrap(), "tests/fixtures/admission.k8s.io.v1.AdmissionReview.json"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "a bad configuration is never used");
}

/// One row: the command's help is printed, and it exits 0.
fn has_help(args: &[&str]) {
    let out = run(args, b"");
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("Usage:"));
}

common::rows! { has_help;
    help: (&["--help"]),
    review_help: (&["review", "--help"]),
    inject_help: (&["inject", "--help"]),
    config_check_help: (&["config", "check", "--help"]),
    config_default_help: (&["config", "default", "--help"]),
    audit_help: (&["audit", "--help"]),
    heal_help: (&["heal", "--help"]),
    serve_help: (&["serve", "--help"]),
    certs_help: (&["certs", "--help"]),
}

/// The README's first command: the article's test Pod gains `foo=bar` and the example sidecar.
#[test]
fn the_readme_quick_start_review() {
    let out = run(&["review", "--explain", "tests/fixtures/pod-create-review.json"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let response: ReviewResponse = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response.response.uid, "d5a2c8e4-1b3f-4a6e-9c7d-2f8e0a1b3c5d");
    assert!(response.response.allowed);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"path\": \"/metadata/labels/foo\"")
            && stderr.contains("\"name\": \"example-sidecar\""),
        "{stderr}"
    );
}

/// The complete workloads from the Kubernetes round-trip data (JSON is YAML): every field of
/// their pod templates survives offline injection.
#[test]
fn inject_keeps_every_field_of_complete_workloads() {
    let dir = TempDir::new("workloads");
    let dir = &dir.0;
    // The fixtures use hostNetwork: true, which the built-in configuration skips.
    let config = dir.join("config.yaml");
    std::fs::write(&config, "labels: {foo: bar}\ndefaultProfiles: [p]\nprofiles: {p: {containers: [{name: agent, image: agent}]}}\nskip: {hostNetwork: false}\n").unwrap();
    for fixture in ["tests/fixtures/apps.v1.Deployment.json", "tests/fixtures/apps.v1.StatefulSet.json"] {
        let original: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        let out = run(&["inject", "-c", config.to_str().unwrap(), "-f", fixture], b"");
        assert!(out.status.success(), "{fixture}: {}", text(&out.stderr));
        let mut injected: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();

        let template = &mut injected["spec"]["template"];
        assert_eq!(template["metadata"]["labels"]["foo"], "bar", "{fixture}");
        template["metadata"]["labels"].as_object_mut().unwrap().remove("foo");
        template["metadata"]["annotations"].as_object_mut().unwrap().remove("sidecar-injector.io/status");
        let added = template["spec"]["containers"].as_array_mut().unwrap().pop().unwrap();
        assert_eq!(added, serde_json::json!({"name": "agent", "image": "agent"}), "{fixture}");
        assert_eq!(injected, original, "{fixture}: everything else is as it was");
    }
}

/// kubectl reads YAML 1.1, where a bare `yes`, `on` or `1_000` is not a string: such strings must
/// come out quoted, or `kubectl apply` of the output would fail or change them.
#[test]
fn inject_output_keeps_yaml_1_1_lookalikes_strings() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {a: \"yes\", b: \"on\", c: \"n\", d: \"1_000\", e: \"1:20\", f: \"012\"}\nspec: {containers: [{name: a, image: x}]}\n";
    let out = run(&["inject", "-f", "-"], pod.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    for (key, value) in [("a", "yes"), ("b", "on"), ("c", "n"), ("d", "1_000"), ("e", "1:20"), ("f", "012")] {
        let quoted = [format!("{key}: \"{value}\""), format!("{key}: '{value}'")];
        assert!(
            quoted.iter().any(|q| yaml.contains(q.as_str())),
            "{key}: {value} must be quoted in:\n{yaml}"
        );
    }
}

/// One row: hostile YAML is refused with a message rather than exhausting the stack or the memory.
fn hostile_yaml_refused(yaml: String, expected: &str) {
    let out = run(&["inject", "-f", "-"], yaml.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(expected), "{}", text(&out.stderr));
}

/// An alias bomb that would expand to 10^9 nodes.
fn alias_bomb() -> String {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, previous) in
        ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{previous}"); 10].join(", ")));
    }
    bomb
}

common::rows! { hostile_yaml_refused;
    yaml_nested_10000_deep: (format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)), "recursion limit"),
    yaml_alias_bomb: (alias_bomb(), "aliases expand it past"),
}

/// One row: `audit` with these arguments exits with `status`, naming `what` on stderr.
#[cfg(feature = "audit")]
fn audit_refuses(args: &[&str], status: i32, what: &str) {
    refuses_without_a_cluster(&[&["audit"], args].concat(), status, what);
}

/// The command exits with `status`, naming `what` on stderr, on a machine with no cluster to
/// reach: no kubeconfig, not in a Pod.
#[cfg(feature = "audit")]
fn refuses_without_a_cluster(args: &[&str], status: i32, what: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(status), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(what), "{:?} should name {what:?}", text(&out.stderr));
}

#[cfg(feature = "audit")]
common::rows! { audit_refuses;
    audit_dry_run_without_restart: (&["--dry-run"], 2, "--restart"),
    audit_page_size_zero: (&["--page-size", "0"], 2, "--page-size"),
    audit_namespace_and_all_namespaces: (&["-n", "a", "-A"], 2, "--all-namespaces"),
    audit_bad_configuration: (&["-c", "tests/fixtures/seed-test.yaml"], 2, "seed-test.yaml"),
    audit_without_a_cluster: (&[], 3, "cannot reach the API server"),
}

/// One row: `heal` with these arguments exits with `status`, naming `what` on stderr, before it
/// touches a cluster.
#[cfg(feature = "heal")]
fn heal_refuses(args: &[&str], status: i32, what: &str) {
    let named = ["heal", "--namespace", "sidecar-injector", "--identity", "heal-0"];
    refuses_without_a_cluster(&[&named[..], args].concat(), status, what);
}

#[cfg(feature = "heal")]
common::rows! { heal_refuses;
    heal_max_concurrent_zero: (&["--max-concurrent", "0"], 2, "--max-concurrent"),
    heal_max_per_minute_zero: (&["--max-per-minute", "0"], 2, "--max-per-minute"),
    heal_max_failures_zero: (&["--max-failures", "0"], 2, "--max-failures"),
    heal_progress_deadline_negative: (&["--progress-deadline=-5"], 2, "--progress-deadline"),
    heal_progress_deadline_not_a_number: (&["--progress-deadline", "ten"], 2, "\"ten\" is not a number of seconds"),
    heal_reload_interval_zero: (&["--reload-interval", "0"], 2, "a number of seconds above 0"),
    heal_lease_duration_too_short: (&["--lease-duration", "2"], 1, "--lease-duration: at least 3 s"),
    heal_page_size_zero: (&["--page-size", "0"], 2, "--page-size"),
    heal_metrics_listen_not_an_address: (&["--metrics-listen", "localhost"], 2, "--metrics-listen"),
    heal_bad_configuration: (&["-c", "tests/fixtures/seed-test.yaml"], 1, "seed-test.yaml"),
    heal_without_a_cluster: (&[], 1, "cannot reach the API server"),
}

/// Without a namespace (`POD_NAMESPACE` in the Deployment), `heal` does not know what never to
/// touch, and says so.
#[cfg(feature = "heal")]
#[test]
fn heal_without_its_namespace_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
        .args(["heal", "--identity", "heal-0"])
        .env_remove("POD_NAMESPACE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--namespace"), "{}", text(&out.stderr));
}

/// deploy.sh registers the Lambda under its own NAME, and Terraform under var.name.
#[test]
fn webhook_config_names_the_object_and_calls_the_url() {
    let out = run(
        &["webhook-config", "--name", "team-a", "--url", "https://h.example/mutate/t0k3n", "-o", "json"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let object: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(object["metadata"]["name"], "team-a");
    assert_eq!(
        object["webhooks"][0]["clientConfig"],
        serde_json::json!({"url": "https://h.example/mutate/t0k3n"})
    );
    let default = run(&["webhook-config", "-o", "json"], b"");
    let object: Value = serde_json::from_slice(&default.stdout).unwrap();
    assert_eq!(object["metadata"]["name"], "sidecar-injector", "the in-cluster name by default");
}
