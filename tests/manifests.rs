//! `inject -f` on real-world manifests, as a platform team runs it, with kubectl as the judge of
//! what a YAML file means.
//!
//! The corpus under `tests/manifests/corpus/` is public manifests copied unchanged, each headed by
//! its repository, commit and path. Every file goes through `inject -f` with three
//! configurations: the built-in one, the README's example (`deploy-incluster/examples/profiles.yaml`,
//! which selects few of these Pods), and that example given to every Pod, so that its
//! `shareVolumeMounts`, `copyEnv` and parameters meet every workload. For each file:
//!
//! - kubectl reads it and its output (`kubectl annotate --local -o json`, which decodes with
//!   `sigs.k8s.io/yaml` and changes nothing but an empty `annotations`), and so does our reader:
//!   the two agree exactly, integers and floats apart;
//! - every original document is contained in its output, with every value of the same type;
//! - a second run changes nothing.
//!
//! With `SIDECAR_INJECTOR_INJECTED_MANIFESTS=DIR`, each file and its outputs are also written to
//! `DIR`, for `tests/e2e_admitted.py` to give to a real API server (`--dry-run=server`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{TempDir, rows};
use serde_json::{Value, json};
use sidecar_injector::engine::manifests::documents;

const CORPUS: &str = "tests/manifests/corpus";
const EXAMPLE: &str = "deploy-incluster/examples/profiles.yaml";

/// The configurations every corpus file is injected with: a name, and the file (none: built-in).
fn configurations(dir: &Path) -> Vec<(&'static str, Option<PathBuf>)> {
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let everywhere = example
        .replace("injectByDefault: false", "injectByDefault: true")
        .replace("defaultProfiles: []", "defaultProfiles: [log-shipper, metrics-agent]");
    assert_ne!(everywhere, example, "the example's defaults are where this test changes them");
    let file = dir.join("everywhere.yaml");
    std::fs::write(&file, everywhere).unwrap();
    vec![("builtin", None), ("example", Some(PathBuf::from(EXAMPLE))), ("example-everywhere", Some(file))]
}

fn inject(config: Option<&Path>, file: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sidecar-injector"));
    command.arg("inject").arg("-f").arg(file);
    if let Some(config) = config {
        command.arg("-c").arg(config);
    }
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The documents of `file` as kubectl reads them, `List`s flattened, as kubectl flattens them.
fn kubectl_reads(file: &Path) -> Vec<Value> {
    // Removing an annotation nobody has is the one edit that leaves every object as it was read
    // (but for an empty `annotations`, which `normalised` drops on both sides).
    let out = Command::new("kubectl")
        .args(["annotate", "--local", "-o", "json", "sidecar-injector.test/none-", "-f"])
        .arg(file)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs: it is needed by the tests, as by any user of this project");
    assert!(out.status.success(), "kubectl reads {}: {}", file.display(), text(&out.stderr));
    let stream = serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>();
    let read: Vec<Value> = stream.map(|doc| doc.expect("kubectl writes JSON")).collect();
    // One object is written alone, several as a List of them.
    match read.as_slice() {
        [list] if list["kind"] == "List" && list["metadata"].is_object() && !is_a_list_in(file) => {
            list["items"].as_array().unwrap().iter().map(normalised).collect()
        }
        _ => read.iter().map(normalised).collect(),
    }
}

/// Whether `file` itself holds a single `List` document (kubectl then writes it as it is).
fn is_a_list_in(file: &Path) -> bool {
    let docs = ours(&std::fs::read_to_string(file).unwrap(), false);
    docs.len() == 1 && docs[0]["kind"] == "List"
}

/// The documents of `text` as our reader reads them, empty ones dropped, `List`s flattened when
/// `flatten`.
fn ours(text: &str, flatten: bool) -> Vec<Value> {
    let docs = documents(text).unwrap_or_else(|e| panic!("our reader reads it: {e}"));
    let mut read = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        match doc["items"].as_array() {
            Some(items) if flatten && doc["kind"] == "List" => read.extend(items.iter().map(normalised)),
            _ => read.push(normalised(&doc)),
        }
    }
    read
}

/// `doc` without an empty or null `metadata.annotations`, which kubectl's edit makes `{}`.
fn normalised(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut)
        && metadata
            .get("annotations")
            .is_some_and(|a| a.is_null() || a.as_object().is_some_and(|a| a.is_empty()))
    {
        metadata.remove("annotations");
    }
    doc
}

/// Whether `big` holds all of `small`: every key with a contained value, every list item in the
/// same order (injection adds keys, and list items before or after the app's own: a native
/// sidecar goes first), scalars exactly equal, so that a `256` that became `256.5` or `"256"` is
/// not contained. Names the first difference.
fn contains(big: &Value, small: &Value, at: &str) -> Result<(), String> {
    match (big, small) {
        (Value::Object(big), Value::Object(small)) => small.iter().try_for_each(|(key, value)| {
            let inner = format!("{at}.{key}");
            big.get(key).ok_or(format!("{inner} is gone")).and_then(|b| contains(b, value, &inner))
        }),
        (Value::Array(big), Value::Array(small)) => {
            let mut rest = big.iter();
            small.iter().enumerate().try_for_each(|(i, item)| {
                let inner = format!("{at}[{i}]");
                rest.find(|b| contains(b, item, &inner).is_ok())
                    .map(|_| ())
                    .ok_or(format!("{inner} {item} is gone"))
            })
        }
        _ if big == small => Ok(()),
        _ => Err(format!("{at} was {small}, is {big}")),
    }
}

/// One corpus file through every configuration.
fn corpus_file(name: &str) {
    let file = Path::new(CORPUS).join(name);
    let original = std::fs::read_to_string(&file).unwrap();
    let kubectl = kubectl_reads(&file);
    assert_eq!(ours(&original, true), kubectl, "our reader reads {name} as kubectl does");
    let dir = TempDir::new(&format!("corpus-{}", name.replace('/', "-")));
    let keep = std::env::var_os("SIDECAR_INJECTOR_INJECTED_MANIFESTS").map(PathBuf::from);
    for (config_name, config) in configurations(&dir.0) {
        let out = inject(config.as_deref(), &file);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{name} with {config_name}: {stderr}");
        let output = dir.0.join(format!("{config_name}.yaml"));
        std::fs::write(&output, &out.stdout).unwrap();
        let injected = kubectl_reads(&output);
        assert_eq!(ours(&text(&out.stdout), true), injected, "{name} with {config_name}: read back alike");
        assert_eq!(injected.len(), kubectl.len(), "{name} with {config_name}: every document comes out");
        for (i, (before, after)) in kubectl.iter().zip(&injected).enumerate() {
            contains(after, before, "")
                .unwrap_or_else(|e| panic!("{name} with {config_name}, document {}: {e}", i + 1));
        }
        let again = inject(config.as_deref(), &output);
        assert!(again.status.success(), "{name} with {config_name}, again: {}", text(&again.stderr));
        assert_eq!(
            text(&again.stdout),
            text(&out.stdout),
            "{name} with {config_name}: a second run is a no-op"
        );
        if let Some(keep) = &keep {
            let stem = name.replace('/', "--").trim_end_matches(".yaml").to_owned();
            std::fs::write(keep.join(format!("{stem}.before.yaml")), &original).unwrap();
            std::fs::write(keep.join(format!("{stem}.{config_name}.after.yaml")), &out.stdout).unwrap();
        }
    }
}

rows! { corpus_file;
    aeraki_redis_cluster: ("aeraki/redis-cluster.yaml"),
    calico_etcd: ("calico/calico-etcd.yaml"),
    ingress_nginx_deploy: ("ingress-nginx/deploy.yaml"),
    istio_bookinfo: ("istio/bookinfo.yaml"),
    kube_prometheus_blackbox_exporter: ("kube-prometheus/blackboxExporter-deployment.yaml"),
    kube_prometheus_grafana: ("kube-prometheus/grafana-deployment.yaml"),
    kube_prometheus_kube_state_metrics: ("kube-prometheus/kube-state-metrics-deployment.yaml"),
    kube_prometheus_node_exporter: ("kube-prometheus/nodeExporter-daemonset.yaml"),
    kube_prometheus_prometheus_adapter: ("kube-prometheus/prometheusAdapter-deployment.yaml"),
    kubernetes_cassandra_statefulset: ("kubernetes/cassandra-statefulset.yaml"),
    kubernetes_etcd_statefulset: ("kubernetes/etcd-statefulset.yaml"),
    kubernetes_frontend_controller: ("kubernetes/frontend-controller.yaml"),
    kubernetes_list: ("kubernetes/list.yaml"),
    kubernetes_multi_resource: ("kubernetes/multi-resource-yaml.yaml"),
    kubernetes_pod_with_metadata_and_probes: ("kubernetes/pod-with-metadata-and-probes.yaml"),
    kubernetes_redis_statefulset_apps_v1beta1: ("kubernetes/redis-statefulset-apps-v1beta1.yaml"),
    kubernetes_walkthrough_podtemplate: ("kubernetes/walkthrough-podtemplate.yaml"),
    website_cronjob_batch_v1beta1: ("kubernetes-website/cronjob-batch-v1beta1.yaml"),
    website_daemonset: ("kubernetes-website/daemonset.yaml"),
    website_dapi_volume: ("kubernetes-website/dapi-volume.yaml"),
    website_deployment_with_a_native_sidecar: ("kubernetes-website/deployment-sidecar.yaml"),
    website_fluentd_daemonset: ("kubernetes-website/fluentd-daemonset.yaml"),
    website_frontend_replicaset: ("kubernetes-website/frontend-replicaset.yaml"),
    website_guestbook_frontend: ("kubernetes-website/guestbook-frontend-deployment.yaml"),
    website_guestbook_redis_follower: ("kubernetes-website/guestbook-redis-follower-deployment.yaml"),
    website_guestbook_redis_leader: ("kubernetes-website/guestbook-redis-leader-deployment.yaml"),
    website_indexed_job_in_flow_style: ("kubernetes-website/indexed-job-vol.yaml"),
    website_init_containers: ("kubernetes-website/init-containers.yaml"),
    website_job: ("kubernetes-website/job.yaml"),
    website_job_with_a_native_sidecar: ("kubernetes-website/job-sidecar.yaml"),
    website_mysql_statefulset: ("kubernetes-website/mysql-statefulset.yaml"),
    website_nginx_deployment: ("kubernetes-website/nginx-deployment.yaml"),
    website_pod_projected_svc_token: ("kubernetes-website/pod-projected-svc-token.yaml"),
    website_pod_with_numeric_toleration: ("kubernetes-website/pod-with-numeric-toleration.yaml"),
    website_replication: ("kubernetes-website/replication.yaml"),
    website_secret_pod: ("kubernetes-website/secret-pod.yaml"),
    website_shared_volume: ("kubernetes-website/shared-volume.yaml"),
    website_statefulset: ("kubernetes-website/statefulset.yaml"),
    website_web_statefulset: ("kubernetes-website/web.yaml"),
    website_wordpress: ("kubernetes-website/wordpress-deployment.yaml"),
    website_zookeeper: ("kubernetes-website/zookeeper.yaml"),
    kueue_pod_group: ("kueue/kueue-pod-group.yaml"),
    kueue_statefulset: ("kueue/kueue-statefulset.yaml"),
    kueue_cronjob: ("kueue/sample-cronjob.yaml"),
    kueue_job: ("kueue/sample-job.yaml"),
}

/// The files of the corpus, relative to it, sorted.
fn corpus_files() -> Vec<String> {
    let mut files = Vec::new();
    for project in std::fs::read_dir(CORPUS).unwrap() {
        let project = project.unwrap().path();
        for file in std::fs::read_dir(&project).unwrap() {
            let file = file.unwrap().path();
            files.push(file.strip_prefix(CORPUS).unwrap().to_string_lossy().into_owned());
        }
    }
    files.sort();
    files
}

/// Each file names where it comes from, and each is a row above: a file added to the corpus and
/// forgotten there would be checked by nothing.
#[test]
fn every_corpus_file_names_its_source_and_is_a_row() {
    let rows = std::fs::read_to_string("tests/manifests.rs").unwrap();
    for name in corpus_files() {
        let first = std::fs::read_to_string(Path::new(CORPUS).join(&name)).unwrap();
        let first = first.lines().next().unwrap_or_default().to_owned();
        let source =
            first.strip_prefix("# Source: ").unwrap_or_else(|| panic!("{name} names its source: {first}"));
        let (repo, rest) = source.split_once('@').unwrap_or_else(|| panic!("{name}: repository@commit"));
        assert!(repo.contains('/'), "{name}: {repo} is owner/name");
        let commit = rest.split(' ').next().unwrap();
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: commit {commit}"
        );
        assert!(first.ends_with("copied unchanged below this header."), "{name}: {first}");
        assert!(rows.contains(&format!("(\"{name}\")")), "{name} is a row of corpus_file");
    }
}

/// The kinds `inject` handles, in the API version it reads them in.
const HANDLED: [(&str, &str); 9] = [
    ("v1", "Pod"),
    ("v1", "PodTemplate"),
    ("v1", "ReplicationController"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
];

/// What the corpus must hold for its verdict to mean something.
#[test]
fn the_corpus_is_large_and_varied_enough() {
    let mut workloads = Vec::new();
    let mut projects = std::collections::BTreeSet::new();
    for name in corpus_files() {
        let text = std::fs::read_to_string(Path::new(CORPUS).join(&name)).unwrap();
        let source = text.lines().next().unwrap().trim_start_matches("# Source: ");
        projects.insert(source.split('@').next().unwrap().to_owned());
        for doc in ours(&text, true) {
            let key = (
                doc["apiVersion"].as_str().unwrap_or("").to_owned(),
                doc["kind"].as_str().unwrap_or("").to_owned(),
            );
            if HANDLED.iter().any(|(version, kind)| key == (version.to_string(), kind.to_string())) {
                workloads.push((name.clone(), doc));
            }
        }
    }
    assert!(workloads.len() >= 50, "{} workloads", workloads.len());
    assert!(projects.len() >= 4, "{projects:?}");
    for (version, kind) in HANDLED {
        let count = workloads.iter().filter(|(_, d)| d["kind"] == kind && d["apiVersion"] == version).count();
        assert!(count > 0, "no {kind} in {version}");
    }
    let claims = |d: &Value| {
        d.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array).is_some_and(|c| !c.is_empty())
    };
    assert!(workloads.iter().filter(|(_, d)| claims(d)).count() >= 3, "StatefulSets with claim templates");
    // An octal mode is one whose value is written in the file as `0` and its octal digits.
    let octal = |source: &str| {
        workloads.iter().any(|(name, doc)| {
            let text = std::fs::read_to_string(Path::new(CORPUS).join(name)).unwrap();
            let volumes = pod_spec(doc).and_then(|s| s["volumes"].as_array()).into_iter().flatten();
            volumes
                .filter_map(|v| v[source]["defaultMode"].as_u64())
                .any(|m| text.contains(&format!("defaultMode: 0{m:o}")))
        })
    };
    assert!(octal("secret"), "a Secret volume with an octal defaultMode");
    assert!(octal("configMap"), "a ConfigMap volume with an octal defaultMode");
}

/// The pod spec of a workload of a handled kind.
fn pod_spec(doc: &Value) -> Option<&Value> {
    let pointer = match doc["kind"].as_str()? {
        "Pod" => "/spec",
        "PodTemplate" => "/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    doc.pointer(pointer)
}

/// `yaml` through `inject -f` with `config` (none: built-in): its status, stdout and stderr.
fn inject_text(yaml: &str, config: Option<&str>) -> (bool, String, String) {
    let dir = TempDir::new(&format!(
        "inject-{}",
        std::thread::current().name().unwrap_or("row").replace("::", "-")
    ));
    let file = dir.0.join("in.yaml");
    std::fs::write(&file, yaml).unwrap();
    let config = config.map(|text| {
        let path = dir.0.join("config.yaml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let out = inject(config.as_deref(), &file);
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// What kubectl reads `yaml` as.
fn kubectl_reads_text(yaml: &str) -> Vec<Value> {
    let dir = TempDir::new(&format!(
        "kubectl-{}",
        std::thread::current().name().unwrap_or("row").replace("::", "-")
    ));
    let file = dir.0.join("read.yaml");
    std::fs::write(&file, yaml).unwrap();
    kubectl_reads(&file)
}

/// One row: the plain or quoted scalar `scalar`, as a value in a document `inject` writes out
/// again. kubectl reads it as `value`, in the input and in the output, and we write `written`.
fn yaml_1_1_form(scalar: &str, value: Value, written: &str) {
    let yaml = format!("apiVersion: example.com/v1\nkind: Setting\nmetadata:\n  name: s\nvalue: {scalar}\n");
    assert_eq!(kubectl_reads_text(&yaml)[0]["value"], value, "kubectl reads {scalar} so");
    let (ok, out, err) = inject_text(&yaml, None);
    assert!(ok, "{err}");
    let line = out.lines().find_map(|l| l.strip_prefix("value: ")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line, written, "{scalar} is written so");
    assert_eq!(kubectl_reads_text(&out)[0]["value"], value, "kubectl reads {written} back so");
}

rows! { yaml_1_1_form;
    octal_0400: ("0400", json!(256), "256"),
    octal_0755: ("0755", json!(493), "493"),
    octal_0644: ("0644", json!(420), "420"),
    octal_0o_prefix: ("0o17", json!(15), "15"),
    hex: ("0x1F", json!(31), "31"),
    hex_negative: ("-0x1A", json!(-26), "-26"),
    binary: ("0b101", json!(5), "5"),
    plus_sign: ("+1", json!(1), "1"),
    underscores: ("1_000", json!(1000), "1000"),
    underscores_in_hex: ("0x_FF", json!(255), "255"),
    bool_yes: ("yes", json!(true), "true"),
    bool_yes_title: ("Yes", json!(true), "true"),
    bool_yes_upper: ("YES", json!(true), "true"),
    bool_no: ("no", json!(false), "false"),
    bool_no_title: ("No", json!(false), "false"),
    bool_no_upper: ("NO", json!(false), "false"),
    bool_on: ("on", json!(true), "true"),
    bool_on_upper: ("ON", json!(true), "true"),
    bool_off: ("off", json!(false), "false"),
    bool_off_title: ("Off", json!(false), "false"),
    bool_y: ("y", json!(true), "true"),
    bool_y_upper: ("Y", json!(true), "true"),
    bool_n: ("n", json!(false), "false"),
    bool_n_upper: ("N", json!(false), "false"),
    null_tilde: ("~", Value::Null, "null"),
    float: ("1.5", json!(1.5), "1.5"),
    // kubectl's JSON writes a whole float as an integer, and so do we.
    float_whole: ("1.0", json!(1), "1"),
    float_exponent: ("1e3", json!(1000), "1000"),
    // What kubectl reads as a string stays one: quoted where it would read otherwise.
    quoted_octal: ("\"0400\"", json!("0400"), "\"0400\""),
    quoted_yes: ("'yes'", json!("yes"), "\"yes\""),
    quoted_y: ("'y'", json!("y"), "\"y\""),
    quoted_n: ("\"n\"", json!("n"), "\"n\""),
    quoted_tilde: ("'~'", json!("~"), "\"~\""),
    quoted_hex: ("'0x1F'", json!("0x1F"), "\"0x1F\""),
    quoted_plus: ("'+1'", json!("+1"), "\"+1\""),
    quoted_underscores: ("'1_000'", json!("1_000"), "\"1_000\""),
    quoted_exponent: ("'1e3'", json!("1e3"), "\"1e3\""),
    quoted_null: ("'null'", json!("null"), "\"null\""),
    quoted_empty: ("''", json!(""), "\"\""),
    // Strings in YAML 1.1 whatever their look: a mixed case boolean, a sexagesimal, a date.
    mixed_case_yes: ("yEs", json!("yEs"), "\"yEs\""),
    sexagesimal: ("1:20", json!("1:20"), "\"1:20\""),
    timestamp: ("2001-12-14", json!("2001-12-14"), "\"2001-12-14\""),
}

/// A Deployment's Secret and ConfigMap modes, unquoted octal as real manifests write them, keep
/// their values through an injection: the mode kubectl would apply is the mode we write.
#[test]
fn octal_modes_of_an_injected_deployment_keep_their_values() {
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      \
                containers: [{name: app, image: nginx}]\n      volumes:\n      \
                - {name: key, secret: {secretName: key, defaultMode: 0400}}\n      \
                - {name: scripts, configMap: {name: scripts, defaultMode: 0755, items: [{key: run, path: run.sh, mode: 0700}]}}\n";
    let (ok, out, err) = inject_text(yaml, None);
    assert!(ok, "{err}");
    assert!(err.contains("document 1 (Deployment web): injected example"), "{err}");
    let volumes = &kubectl_reads_text(&out)[0]["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0]["secret"]["defaultMode"], json!(0o400));
    assert_eq!(volumes[1]["configMap"]["defaultMode"], json!(0o755));
    assert_eq!(volumes[1]["configMap"]["items"][0]["mode"], json!(0o700));
    for written in ["defaultMode: 256", "defaultMode: 493", "mode: 448"] {
        assert!(out.contains(written), "{written} in {out}");
    }
}

/// The README's example, given to every Pod: `shareVolumeMounts` and a label selector.
fn example_everywhere() -> String {
    std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace("injectByDefault: false", "injectByDefault: true")
        .replace("defaultProfiles: []", "defaultProfiles: [log-shipper]")
}

/// A StatefulSet's claim template is a volume of every Pod it makes: the app's mount of it is no
/// dangling reference, `shareVolumeMounts` gives it to the sidecar, and the output does not list
/// it as a template volume (the controller adds it).
#[test]
fn a_claim_template_mounted_by_the_app_is_shared_with_the_sidecar() {
    let yaml = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  \
                selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      \
                containers:\n      - name: db\n        image: postgres\n        volumeMounts:\n        \
                - {name: data, mountPath: /var/lib/postgresql}\n        - {name: run, mountPath: /run}\n      \
                volumes: [{name: run, emptyDir: {}}]\n  volumeClaimTemplates:\n  \
                - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";
    let (ok, out, err) = inject_text(yaml, Some(&example_everywhere()));
    assert!(ok, "{err}");
    assert!(err.contains("document 1 (StatefulSet db): injected log-shipper"), "{err}");
    let spec = &kubectl_reads_text(&out)[0]["spec"]["template"]["spec"];
    let shipper = &spec["initContainers"][0];
    assert_eq!(shipper["name"], "log-shipper");
    assert_eq!(
        shipper["volumeMounts"],
        json!([
            {"name": "data", "mountPath": "/var/lib/postgresql", "readOnly": true},
            {"name": "run", "mountPath": "/run", "readOnly": true},
        ])
    );
    assert_eq!(spec["volumes"], json!([{"name": "run", "emptyDir": {}}]), "the claim is no template volume");
    let (ok, again, _) = inject_text(&out, Some(&example_everywhere()));
    assert!(ok && again == out, "a second run changes nothing");
}

/// Every refused document is named in one run, with its index, kind and name; nothing is written
/// to stdout, and the exit status says so.
#[test]
fn three_refused_documents_are_all_named() {
    let clash = "containers: [{name: example-sidecar, image: x}]";
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: a}}\nspec: {{{clash}}}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: b}}\nspec: {{template: {{spec: {{{clash}}}}}}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: fine}}\nspec: {{template: {{spec: {{containers: [{{name: app, image: x}}]}}}}}}\n---\n\
         apiVersion: batch/v1\nkind: Job\nmetadata: {{name: c}}\nspec: {{template: {{spec: {{{clash}}}}}}}\n"
    );
    let (ok, out, err) = inject_text(&yaml, None);
    assert!(!ok, "{err}");
    assert_eq!(out, "", "nothing is written when a document is refused");
    let refused: Vec<&str> = err.lines().filter(|l| l.starts_with("refused: ")).collect();
    let clash =
        "cannot inject: profile \"example\" adds container \"example-sidecar\", which the Pod already has";
    assert_eq!(
        refused,
        [
            format!("refused: document 1 (Pod a): {clash}"),
            format!("refused: document 2 (Deployment b): {clash}"),
            format!("refused: document 5 (Job c): {clash}"),
        ],
        "{err}"
    );
    assert!(err.contains("document 3 (Service s): passed through: not a kind inject injects into"), "{err}");
    assert!(err.contains("document 4 (Deployment fine): injected example"), "{err}");
}

/// Each document that passes through untouched is named, with why: a kind inject does not
/// handle, an API version it does not read, opted out, or skipped.
#[test]
fn documents_passed_through_are_named_with_the_reason() {
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}{extra}}}\nspec: {{containers: [{{name: a, image: x}}]}}\n"
        )
    };
    let yaml = [
        "apiVersion: example.com/v1\nkind: Setting\nmetadata: {name: s}\n".to_owned(),
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\nspec: {template: {spec: {containers: [{name: a, image: x}]}}}\n".to_owned(),
        "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly}\nspec: {}\n".to_owned(),
        pod("out", ", annotations: {sidecar-injector.io/inject: \"false\"}"),
        pod("system", ", namespace: kube-system"),
        pod("web", ""),
    ]
    .join("---\n");
    let (ok, out, err) = inject_text(&yaml, None);
    assert!(ok, "{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "document 1 (Setting s): passed through: not a kind inject injects into",
            "document 2 (Deployment old): passed through: Deployment in \"extensions/v1beta1\" is not a version inject reads (apps/v1)",
            "document 3 (CronJob nightly): passed through: CronJob in \"batch/v1beta1\" is not a version inject reads (batch/v1)",
            "document 4 (Pod out): passed through: not injected: the Pod has sidecar-injector.io/inject=false",
            "document 5 (Pod system): passed through: not injected: namespace kube-system is skipped",
            "document 6 (Pod web): injected example",
        ]
    );
    let read = kubectl_reads_text(&out);
    assert_eq!(read.len(), 6);
    assert_eq!(read[1], kubectl_reads_text(&yaml)[1], "the old Deployment is written as it came");
}

/// A configuration whose one profile selects Pods by the label `key: value`.
fn selecting(key: &str, value: &str) -> String {
    format!(
        "injectByDefault: false\nprofiles:\n  by-label:\n    selector:\n      matchLabels: {{{key}: {value}}}\n    \
         containers:\n      - {{name: agent, image: agent:1}}\n"
    )
}

/// A Job's Pods carry its name as a label, which the API server sets: a profile that selects
/// on it is applied offline as in the cluster, and the label is not written into the template.
#[test]
fn a_job_is_reviewed_with_the_job_name_labels_its_pods_get() {
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: nightly}\nspec:\n  template:\n    \
               spec: {restartPolicy: Never, containers: [{name: app, image: x}]}\n";
    for key in ["job-name", "batch.kubernetes.io/job-name"] {
        let (ok, out, err) = inject_text(job, Some(&selecting(key, "nightly")));
        assert!(ok, "{err}");
        assert!(err.contains("document 1 (Job nightly): injected by-label"), "{key}: {err}");
        let template = &kubectl_reads_text(&out)[0]["spec"]["template"];
        assert_eq!(template["spec"]["containers"][1]["name"], "agent", "{key}");
        assert!(template["metadata"]["labels"].get(key).is_none(), "{key} is the API server's to set: {out}");
    }
}

/// A label whose value only the controller knows is read as absent, and the user is told.
#[test]
fn a_selector_on_a_label_nobody_knows_offline_is_named() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    \
                      spec: {containers: [{name: app, image: x}]}\n";
    let (ok, _, err) = inject_text(deployment, Some(&selecting("pod-template-hash", "abc")));
    assert!(ok, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        "document 1 (Deployment web): profile by-label reads the label pod-template-hash, which the Deployment \
         controller sets on each Pod with a value not known offline; it is read as absent"
    );
    assert!(lines[1].starts_with("document 1 (Deployment web): passed through: not injected"), "{err}");
}

/// The pod template of one workload of `kind`, named `name`: a template its controller's Pods
/// are made from, with one app container.
fn workload_yaml(version: &str, kind: &str, name: &str) -> String {
    let template = "{metadata: {labels: {app: w}}, spec: {containers: [{name: app, image: busybox}]}}";
    let spec = match kind {
        "Pod" => "spec: {containers: [{name: app, image: busybox}]}".to_owned(),
        "PodTemplate" => format!("template: {template}"),
        "CronJob" => format!("spec: {{schedule: '@daily', jobTemplate: {{spec: {{template: {template}}}}}}}"),
        "Job" => format!("spec: {{template: {template}}}"),
        _ => format!("spec: {{selector: {{matchLabels: {{app: w}}}}, template: {template}}}"),
    };
    format!("apiVersion: {version}\nkind: {kind}\nmetadata: {{name: {name}}}\n{spec}\n")
}

/// One row: a workload of `kind` alone in a file, or inside a v1 List, gets the built-in
/// injection in its pod template (the sidecar, the status annotation), and its line says so.
fn each_kind_is_injected(version: &str, kind: &str, in_a_list: bool) {
    let one = workload_yaml(version, kind, "w");
    let yaml = if in_a_list {
        let item = kubectl_reads_text(&one).remove(0);
        serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": [item]})).unwrap()
    } else {
        one
    };
    let (ok, out, err) = inject_text(&yaml, None);
    assert!(ok, "{err}");
    let docs = ours(&out, true);
    assert_eq!(docs.len(), 1, "{out}");
    let spec = pod_spec(&docs[0]).unwrap_or_else(|| panic!("no pod spec in {out}"));
    let names: Vec<_> = spec["containers"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("app"), json!("example-sidecar")], "{out}");
    let template_metadata = match kind {
        "Pod" => &docs[0]["metadata"],
        "PodTemplate" => &docs[0]["template"]["metadata"],
        "CronJob" => &docs[0]["spec"]["jobTemplate"]["spec"]["template"]["metadata"],
        _ => &docs[0]["spec"]["template"]["metadata"],
    };
    assert!(template_metadata["annotations"]["sidecar-injector.io/status"].is_string(), "{out}");
    assert!(err.contains(&format!("({kind} w): injected example")), "{err}");
}

rows! { each_kind_is_injected;
    a_pod: ("v1", "Pod", false),
    a_pod_template: ("v1", "PodTemplate", false),
    a_replication_controller: ("v1", "ReplicationController", false),
    a_deployment: ("apps/v1", "Deployment", false),
    a_stateful_set: ("apps/v1", "StatefulSet", false),
    a_daemon_set: ("apps/v1", "DaemonSet", false),
    a_replica_set: ("apps/v1", "ReplicaSet", false),
    a_job: ("batch/v1", "Job", false),
    a_cron_job: ("batch/v1", "CronJob", false),
    a_pod_in_a_list: ("v1", "Pod", true),
    a_daemon_set_in_a_list: ("apps/v1", "DaemonSet", true),
    a_job_in_a_list: ("batch/v1", "Job", true),
}

/// Every kind `inject` handles has its row above.
#[test]
fn every_handled_kind_has_an_injection_row() {
    let source = std::fs::read_to_string(file!()).unwrap();
    for (version, kind) in HANDLED {
        assert!(source.contains(&format!("(\"{version}\", \"{kind}\", false)")), "no row for {kind}");
    }
}
