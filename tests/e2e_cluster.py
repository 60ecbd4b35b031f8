#!/usr/bin/env python3
"""The in-cluster deployment and the Lambda's registration, end to end against a real API server.

Run inside the control-plane launcher (kube-apiserver, kube-controller-manager and etcd in a
private network namespace with only loopback; docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 tests/e2e_cluster.py --server-bin BINARY

It does what a user does and checks what a user sees, one PASS or FAIL line per check:
- `kubectl create -f deploy-incluster/` with the API server's own validation;
- replicas run as the Deployment's Pods would (see `Replica`): its own args, its ServiceAccount's
  token and RBAC (no admin credentials), its ConfigMap mounted where the Deployment mounts it,
  listening on the Service's ClusterIP and port, where the API server calls the webhook;
- the article's Deployment comes up injected; direct creations, `--dry-run=server`, opt-outs that
  are never sent, an unlabelled namespace;
- two replicas starting together share one CA, a restart keeps the caBundle, `apply -k` and
  `apply --server-side` keep it, and with no replica Pod creation fails closed where it should;
- a configuration change is picked up and the API server accepts the Pods it makes;
- the Lambda (`cargo lambda watch` behind a local TLS terminator) registered with
  deploy-lambda's configuration gives byte for byte the Pod the in-cluster server gives.

The API server's own view of the webhook's latency is printed at the end.
"""

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from http_support import FAILED, check, finish, free_port, insecure_tls, post, wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy-incluster"
# The Dockerfile's `ENV KEY=VALUE` lines: what the image gives every container of it.
IMAGE_ENV = dict(re.findall(r"^ENV (\w+)=(\S*)$", (ROOT / "Dockerfile").read_text(), re.M))
NAMESPACE = "sidecar-injector"
SERVICE = "sidecar-injector"
CONFIGURATION = "sidecar-injector"
WEBHOOK = "inject.sidecar-injector.io"
INJECT = "sidecar-injector.io/inject"
STATUS = "sidecar-injector.io/status"
LOGS = Path(tempfile.mkdtemp(prefix="e2e-cluster-"))


# --- kubectl -----------------------------------------------------------------------------------

def kubectl(*args, stdin=None, ok=True):
    """Run kubectl; with ok=True a failure stops the test with kubectl's own message."""
    done = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)
    if ok and done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
    return done


def get(*args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def wait_for(what, predicate, seconds=60):
    """Poll `predicate` until it returns something true; that value, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    print(f"  (gave up waiting for {what} after {seconds} s)")
    return None


def namespace(name, labelled):
    """A namespace, opted in or not, whose default ServiceAccount exists (Pods need it)."""
    labels = {INJECT: "enabled"} if labelled else {}
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    kubectl("create", "-f", "-", stdin=json.dumps(manifest))
    wait_for(f"the default ServiceAccount in {name}",
             lambda: kubectl("get", "serviceaccount", "default", "-n", name, ok=False).returncode == 0)
    return name


def pod(name, labels=None, annotations=None, containers=None):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}, "annotations": annotations or {}},
        "spec": {
            "containers": containers or [{"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"]}],
        },
    }


def create_pod(ns, manifest, *flags):
    """`kubectl create` of one Pod: (the created Pod or None, kubectl's stderr)."""
    done = kubectl("create", "-n", ns, "-f", "-", "-o", "json", *flags, stdin=json.dumps(manifest), ok=False)
    return (json.loads(done.stdout) if done.returncode == 0 else None), done.stderr


def said(stderr):
    """kubectl's stderr for a check's line, when it said anything."""
    return f" (kubectl: {stderr.strip()})" if stderr.strip() else ""


def container_names(pod_object, field="containers"):
    return [c["name"] for c in pod_object["spec"].get(field, [])]


def injected(pod_object):
    """The Pod carries what the deploy's configuration adds: foo=bar, the sidecar, the status."""
    return (pod_object is not None
            and pod_object["metadata"].get("labels", {}).get("foo") == "bar"
            and "example-sidecar" in container_names(pod_object)
            and STATUS in pod_object["metadata"].get("annotations", {}))


def injected_demo_pod():
    """An injected Pod of the article's demo Deployment (deploy-incluster/test.yaml), or None."""
    pods = get("pods", "-n", "sidecar-injector-test")["items"]
    return next((p for p in pods if injected(p)), None)


def untouched(pod_object, manifest):
    return (pod_object is not None
            and container_names(pod_object) == container_names(manifest)
            and "foo" not in pod_object["metadata"].get("labels", {})
            and STATUS not in pod_object["metadata"].get("annotations", {}))


def ca_bundle():
    configuration = get("mutatingwebhookconfiguration", CONFIGURATION)
    hook = next(h for h in configuration["webhooks"] if h["name"] == WEBHOOK)
    return hook["clientConfig"].get("caBundle", "")


# --- replicas --------------------------------------------------------------------------------

# What a container runtime and the kubelet give the container, done with this machine's tools in a
# mount namespace of the replica's own: the ServiceAccount's token, the cluster CA and the
# namespace at the standard path (tmpfs over /run, as /var/run is /run), the ConfigMap volume at
# the Deployment's mountPath (tmpfs over /etc: the image has nothing there the binary reads; it is
# statically linked), unprivileged ports (runtimes set ip_unprivileged_port_start=0), and the
# securityContext's user and group.
CONTAINER = r"""
set -e
token=$1 mounts=$2 uid=$3 gid=$4; shift 4
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
cp "$token"/* /run/secrets/kubernetes.io/serviceaccount/
mount -t tmpfs -o mode=0755 tmpfs /etc
while read -r source target; do
  mkdir -p "$target" && mount --bind "$source" "$target" && mount -o remount,bind,ro "$target"
done < "$mounts"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs -- "$@"
"""


class Replica:
    """One of the Deployment's Pods: its container's args and env read from the created object,
    with only the addresses changed (there is no kube-proxy: the API server dials the Service's
    ClusterIP and port, so that is where the replica listens)."""

    count = 0

    def __init__(self, binary, token_dir, volumes, listen, deployment=SERVICE, overrides=None):
        Replica.count += 1
        self.overrides = overrides or {}
        self.name = f"replica-{Replica.count}"
        self.binary, self.token_dir, self.volumes, self.listen = binary, token_dir, volumes, listen
        deployment = get("deployment", deployment, "-n", NAMESPACE)
        self.spec = deployment["spec"]["template"]["spec"]
        self.container = self.spec["containers"][0]
        self.metrics = f"127.0.0.1:{free_port()}"
        self.log = LOGS / f"{self.name}.log"
        self.process = None

    def args(self):
        """The container's args, with the addresses (and any `overrides`) replaced; overrides
        the container does not have are added."""
        replaced = {"--listen": self.listen, "--metrics-listen": self.metrics, **self.overrides}
        args = []
        for arg in self.container["args"]:
            flag = arg.split("=", 1)[0]
            args.append(f"{flag}={replaced.pop(flag)}" if flag in replaced else arg)
        return args + [f"{flag}={value}" for flag, value in replaced.items() if flag in self.overrides]

    def env(self):
        # Nothing of this process's environment: above all no KUBECONFIG, which the kube client
        # would prefer to the in-cluster configuration. The image's own ENV, as a runtime gives
        # it, then the container's env over it.
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
               "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", **IMAGE_ENV}
        for var in self.container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[var["name"]] = NAMESPACE
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[var["name"]] = self.name
            else:
                raise RuntimeError(f"the test does not know how to give env var {var['name']}")
        return env

    def start(self, wrapper=()):
        """Started as the kubelet would; `wrapper` runs it (valgrind, for benches/hot_functions.sh)."""
        security = {**self.spec.get("securityContext", {}), **self.container.get("securityContext", {})}
        mounts = LOGS / f"{self.name}.mounts"
        paths = {m["name"]: m["mountPath"] for m in self.container.get("volumeMounts", [])}
        mounts.write_text("".join(f"{self.volumes[name]} {path}\n" for name, path in paths.items()))
        command = ["unshare", "-m", "--propagation", "private", "--", "sh", "-c", CONTAINER, "container",
                   str(self.token_dir), str(mounts), str(security["runAsUser"]),
                   str(security.get("runAsGroup", security["runAsUser"])), *wrapper, self.binary, *self.args()]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, env=self.env(), stdout=self.log.open("ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def probe_url(self, probe):
        """The URL the kubelet would probe: the Deployment's probe, on the address where this
        replica listens for the port the probe names."""
        get_ = self.container[probe]["httpGet"]
        port = {p["name"]: p["containerPort"] for p in self.container["ports"]}.get(get_["port"], get_["port"])
        flag = next(a.split("=", 1)[0] for a in self.container["args"] if a.endswith(f":{port}"))
        address = dict(a.split("=", 1) for a in self.args() if "=" in a)[flag]
        return f"{get_['scheme'].lower()}://{address}{get_['path']}"

    def ready(self, seconds=60):
        """The readiness probe, as the kubelet runs it (an HTTPS certificate is not verified)."""
        url = self.probe_url("readinessProbe")
        def probe():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                return post(url, b"", method="GET", context=insecure_tls())[0] == 200
            except OSError:
                return False
        return wait_for(f"{self.name} to be ready", probe, seconds)

    def stop(self):
        """SIGTERM, as the kubelet sends it; the grace period is the Deployment's."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=self.spec.get("terminationGracePeriodSeconds", 30))
        return self.process.returncode

    def lines(self):
        """The replica's JSON log lines."""
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def metric(self, name, labels=None):
        """The sum of `name`'s series, or of the one with exactly `labels` (as `protocol="h2"`)."""
        _, text = post(f"http://{self.metrics}/metrics", b"", method="GET")
        series = rf"{{{re.escape(labels)}}}" if labels else r"(?:{[^}]*})?"
        return sum(float(v) for v in re.findall(rf"^{name}{series} (\S+)$", text.decode(), re.M))


def serves_for_the_service(address, bundle_b64):
    """A TLS handshake as the API server makes it: the caBundle as the only root, the Service's
    DNS name; then the health check."""
    context = ssl.create_default_context(cadata=base64.b64decode(bundle_b64).decode())
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=f"{SERVICE}.{NAMESPACE}.svc") as tls:
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return tls.recv(100).startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError) as error:
        print(f"  ({address}: {error})")
        return False


class Kubelet:
    """The ConfigMap volume as the kubelet writes it: files in a timestamped folder, `..data`
    pointing at it, and each key a symlink through `..data`, swapped atomically on a change."""

    def __init__(self, folder):
        self.folder = folder
        folder.mkdir(mode=0o755)
        self.version = 0

    def sync(self, config_map):
        self.version += 1
        data = self.folder / f"..v{self.version}"
        data.mkdir(mode=0o755)
        for key, value in config_map["data"].items():
            (data / key).write_text(value)
            (data / key).chmod(0o644)
            link = self.folder / key
            if not link.is_symlink():
                link.symlink_to(Path("..data") / key)
        swap = self.folder / "..data_tmp"
        swap.symlink_to(data.name)
        swap.rename(self.folder / "..data")


# --- the test ----------------------------------------------------------------------------------

def dry_run_pod(ns, manifest):
    """The Pod the API server would store: created with --dry-run=server."""
    created, error = create_pod(ns, manifest, "--dry-run=server")
    if created is None:
        raise RuntimeError(f"dry run of {manifest['metadata']['name']} refused:\n{error}")
    return created


def same_pod():
    """The Pod both webhooks are given. No token volume: its name is random per request."""
    manifest = pod("same", annotations={INJECT: "example,agent"})
    manifest["spec"]["automountServiceAccountToken"] = False
    return manifest


def comparable(pod_object):
    """A dry-run Pod without what differs between two requests for the same manifest."""
    pod_object = json.loads(json.dumps(pod_object))
    for field in ["uid", "creationTimestamp", "managedFields", "resourceVersion"]:
        pod_object["metadata"].pop(field, None)
    return json.dumps(pod_object, sort_keys=True).encode()


def webhook_latency_seen_by_the_api_server():
    text = kubectl("get", "--raw", "/metrics").stdout
    found = {}
    for suffix in ["sum", "count"]:
        pattern = rf'^apiserver_admission_webhook_admission_duration_seconds_{suffix}{{[^}}]*name="{WEBHOOK}"[^}}]*}} (\S+)$'
        found[suffix] = sum(float(v) for v in re.findall(pattern, text, re.M))
    return found


def report_latency(what, latency):
    print(f"API server's view of {WEBHOOK} {what}: apiserver_admission_webhook_admission_duration_seconds "
          f"sum {latency['sum']:.4f} s, count {latency['count']:.0f}"
          + (f", mean {1000 * latency['sum'] / latency['count']:.2f} ms" if latency["count"] else ""))


class Deployed:
    """deploy-incluster/ created with `kubectl create -f`, and what its Pods would be given: the
    ServiceAccount's credentials as the kubelet projects them, the ConfigMap volume, and the
    Service's ClusterIP and port to listen on."""

    def __init__(self, binary, work, manifests=DEPLOY):
        kubectl("create", "-f", str(manifests))
        service = get("service", SERVICE, "-n", NAMESPACE)["spec"]
        self.listen = f"{service['clusterIP']}:{service['ports'][0]['port']}"
        self.binary, self.work = binary, work
        self.token_dir = self.account(SERVICE)
        self.kubelet = Kubelet(work / "config")
        self.kubelet.sync(get("configmap", SERVICE, "-n", NAMESPACE))

    def account(self, name):
        """The projected credentials of the ServiceAccount `name`, as the kubelet writes them."""
        folder = self.work / f"serviceaccount-{name}"
        folder.mkdir(mode=0o755)
        token = kubectl("create", "token", name, "-n", NAMESPACE, "--duration=2h").stdout.strip()
        (folder / "token").write_text(token)
        (folder / "ca.crt").write_text(Path(os.environ["KUBE_CA"]).read_text())
        (folder / "namespace").write_text(NAMESPACE)
        for f in folder.iterdir():
            f.chmod(0o644)
        return folder

    def replica(self, address=None, deployment=SERVICE, token_dir=None, overrides=None):
        """A replica of `deployment`, listening on the Service's address unless told otherwise."""
        volumes = {"config": self.kubelet.folder}
        return Replica(self.binary, token_dir or self.token_dir, volumes, address or self.listen, deployment, overrides)

    def change_configuration(self, change):
        """`change` applied to the ConfigMap's configuration text, the ConfigMap replaced, and the
        kubelet's symlink swap done; the new text."""
        config_map = get("configmap", SERVICE, "-n", NAMESPACE)
        config_map["data"]["config.yaml"] = change(config_map["data"]["config.yaml"])
        kubectl("replace", "-f", "-", stdin=json.dumps(config_map))
        self.kubelet.sync(get("configmap", SERVICE, "-n", NAMESPACE))
        return config_map["data"]["config.yaml"]


def in_cluster(binary, work):
    deployed = Deployed(binary, work)
    made = {(o["kind"], o["metadata"]["name"]) for o in get("all,configmap,serviceaccount,role,rolebinding,networkpolicy,"
                                                            "poddisruptionbudget", "-n", NAMESPACE)["items"]}
    wanted = {("Deployment", SERVICE), ("Service", SERVICE), ("ConfigMap", SERVICE), ("ServiceAccount", SERVICE),
              ("NetworkPolicy", SERVICE), ("PodDisruptionBudget", SERVICE)}
    check(wanted <= made and bool(get("mutatingwebhookconfiguration", CONFIGURATION)),
          f"kubectl create -f deploy-incluster/ succeeds with the API server's validation (missing: {wanted - made or 'none'})")
    listen = deployed.listen
    replica = deployed.replica

    # Two replicas starting together: one creates the CA Secret, the other loses the race or reads it.
    first = replica(listen).start()
    second = replica("127.0.0.2:8443").start()
    started = first.started
    both = first.ready() and second.ready()
    check(bool(both), "two replicas become ready with the ServiceAccount's own RBAC")
    if not both:
        return
    bundle = wait_for("the caBundle", ca_bundle, 10)
    check(bool(bundle), "the caBundle is written into the MutatingWebhookConfiguration")
    creators = [r.name for r in (first, second) if any(line.get("message") == "CA created" for line in r.lines())]
    secret = get("secret", "sidecar-injector-ca", "-n", NAMESPACE)
    check(len(creators) == 1 and base64.b64decode(bundle) == base64.b64decode(secret["data"]["ca.crt"]),
          f"two replicas starting together share one CA: one Secret, created by {creators}")
    check(serves_for_the_service(first.listen, bundle) and serves_for_the_service(second.listen, bundle),
          "both replicas' certificates verify with the caBundle for sidecar-injector.sidecar-injector.svc")
    owners = [m for m in get("mutatingwebhookconfiguration", CONFIGURATION, "--show-managed-fields")["metadata"]["managedFields"]
              if m["manager"] == "sidecar-injector"]
    hook_key = 'k:{"name":"%s"}' % WEBHOOK
    generated = generated_conditions(binary, get("configmap", SERVICE, "-n", NAMESPACE)["data"]["config.yaml"], work)
    conditions = {'k:{"name":"%s"}' % c["name"]: {".": {}, "f:expression": {}, "f:name": {}} for c in generated}
    ours = {"f:webhooks": {hook_key: {".": {}, "f:clientConfig": {"f:caBundle": {}},
                                      "f:matchConditions": conditions, "f:name": {}}}}
    check(len(owners) == 1 and owners[0]["operation"] == "Apply" and owners[0]["fieldsV1"] == ours,
          "server-side apply under field manager sidecar-injector owns the caBundle and the matchConditions, "
          "nothing else")
    check(live_conditions() == generated,
          f"the live matchConditions are what `webhook-config` generates for the ConfigMap ({len(generated)})")

    # The article's test: the demo Deployment's ReplicaSet keeps retrying until the webhook answers.
    test_pod = wait_for("an injected Pod of the demo Deployment", injected_demo_pod, 120)
    check(test_pod is not None, "the article's Deployment (test.yaml) comes up with injected Pods: "
          f"{time.monotonic() - started:.1f} s after the first replica started")

    on = namespace("e2e-on", labelled=True)
    off = namespace("e2e-off", labelled=False)
    created, _ = create_pod(on, pod("direct"))
    check(injected(created), "a Pod created directly in a labelled namespace is injected")
    stored = get("pod", "direct", "-n", on)
    check(injected(stored), "the stored Pod is the injected one")

    dry, _ = create_pod(on, pod("dry"), "--dry-run=server")
    stored = kubectl("get", "pod", "dry", "-n", on, ok=False)
    check(injected(dry) and stored.returncode != 0 and "NotFound" in stored.stderr,
          "--dry-run=server shows the injection and stores nothing")

    manifest = pod("label-opt-out", labels={"app": "x", INJECT: "false"})
    before = reviews_counted(first, second)
    created, _ = create_pod(on, manifest)
    check(untouched(created, manifest) and reviews_counted(first, second) == before,
          "opt-out by label: untouched, and never sent (the objectSelector)")
    manifest = pod("annotation-opt-out", annotations={INJECT: " False "})
    before = reviews_counted(first, second)
    created, _ = create_pod(on, manifest)
    check(untouched(created, manifest) and reviews_counted(first, second) == before,
          "opt-out by annotation, in any case and spacing: untouched, and never sent (the matchConditions)")
    manifest = pod("elsewhere")
    before = reviews_counted(first, second)
    created, _ = create_pod(off, manifest)
    check(untouched(created, manifest) and reviews_counted(first, second) == before,
          "a Pod in an unlabelled namespace is untouched and the webhook is never called for it")

    # A restart keeps the caBundle; so do what a GitOps tool does afterwards.
    first.stop()
    first = replica(listen).start()
    check(bool(first.ready()) and ca_bundle() == bundle
          and not any(line.get("message") == "CA created" for line in first.lines()),
          "a restarted replica reuses the CA Secret and the caBundle stays the same")
    kubectl("apply", "-k", str(DEPLOY))
    check(ca_bundle() == bundle, "kubectl apply -k deploy-incluster/ keeps the caBundle")
    kubectl("apply", "--server-side", "-f", str(DEPLOY))
    check(ca_bundle() == bundle, "kubectl apply --server-side -f deploy-incluster/ keeps the caBundle")
    created, error = create_pod(on, pod("after-apply"))
    check(injected(created), f"Pods are still injected after both applies{said(error)}")

    # A configuration change: the ConfigMap updated, the kubelet's symlink swap, the reload.
    reloads = first.metric("sidecar_injector_config_reloads_total")
    deployed.change_configuration(with_profile(NATIVE_SIDECAR))
    check(bool(wait_for("the reload", lambda: first.metric("sidecar_injector_config_reloads_total") > reloads, 30)),
          "a configuration change written to the mounted ConfigMap is reloaded")
    manifest = pod("with-agent", annotations={INJECT: "example,agent"})
    created, error = create_pod(on, manifest)
    sidecar = next((c for c in (created or {"spec": {}})["spec"].get("initContainers", []) if c["name"] == "log-agent"), {})
    check(injected(created) and sidecar.get("restartPolicy") == "Always"
          and {"name": "agent-data", "emptyDir": {}} in created["spec"]["volumes"],
          f"the API server accepts the new configuration's Pod, with a native sidecar{said(error)}")

    pod_security(deployed, (first, second))
    conditions_follow_reloads(deployed, (first, second), on, binary, work)

    # The API server keeps its connection to the webhook between Pods. Two Pods 6 s apart, longer
    # than the header read timeout (5 s), which in hyper also closes idle HTTP/1.1 connections
    # (src/server/idle.rs): the second Pod comes over the first one's connection. (This test's
    # own connections offer no protocol by ALPN and are counted apart.)
    def connections():
        return {p: sum(r.metric("sidecar_injector_connections_total", f'protocol="{p}"') for r in (first, second))
                for p in ("h2", "http/1.1")}
    created, error = create_pod(on, pod("before-a-pause"))
    before = connections()
    time.sleep(6)  # the idleness under test
    again, again_error = create_pod(on, pod("after-a-pause"))
    after = connections()
    check(injected(created) and injected(again) and before == after and sum(after.values()) >= 1,
          f"a Pod 6 s after another is reviewed over the same connection: TLS connections by protocol "
          f"agreed {before} -> {after}{said(error or again_error)}")

    # The in-cluster answer for the Lambda comparison, while the replicas run.
    reference = dry_run_pod(on, same_pod())

    report_latency("served by the in-cluster replicas", webhook_latency_seen_by_the_api_server())
    report_memory(first, second)

    # Every replica stopped: opted-in namespaces fail closed, others are unaffected.
    for r in (first, second):
        r.stop()
    created, error = create_pod(on, pod("no-replica"))
    check(created is None and "failed calling webhook" in error,
          "with every replica stopped, Pod creation in an opted-in namespace fails closed")
    manifest = pod("no-replica-host-network")
    manifest["spec"]["hostNetwork"] = True
    created, error = create_pod(on, manifest)
    check(untouched(created, manifest),
          f"with every replica stopped, a Pod no profile would change is still created there (the "
          f"matchConditions){said(error)}")
    manifest = pod("no-replica")
    created, _ = create_pod(off, manifest)
    check(untouched(created, manifest), "with every replica stopped, other namespaces are unaffected")
    return on, reference, get("configmap", SERVICE, "-n", NAMESPACE)["data"]["config.yaml"]


def restricted_pod(name, labels=None, annotations=None):
    """A Pod the restricted Pod Security level admits as it is."""
    manifest = pod(name, labels, annotations)
    manifest["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000,
                                           "seccompProfile": {"type": "RuntimeDefault"}}
    manifest["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False,
                                                             "capabilities": {"drop": ["ALL"]}}
    return manifest


# A profile whose sidecar says outright what restricted forbids; `%s` is its onError.
LOOSE = """
  loose:
    onError: %s
    sidecars:
      - name: loose-agent
        image: busybox:1.37
        securityContext: {allowPrivilegeEscalation: true}
"""


def pod_security(deployed, replicas):
    """In a namespace that enforces restricted: the built-in and the README's example
    configurations inject a restricted Pod and the API server admits it; a profile that would lower
    it is denied by the webhook itself, or with onError: allow the Pod is admitted unchanged with
    the warning. The configuration is put back afterwards."""
    strict = namespace("strict", labelled=True)
    kubectl("label", "namespace", strict, "pod-security.kubernetes.io/enforce=restricted")
    original = get("configmap", SERVICE, "-n", NAMESPACE)["data"]["config.yaml"]

    def reconfigure(text, what):
        reconfigured(deployed, replicas, text, what)

    def restricted_sidecars(created):
        return [c for c in created["spec"].get("initContainers", []) + created["spec"]["containers"]
                if c["name"] != "app"] if created else []

    created, error = create_pod(strict, restricted_pod("strict-builtin"))
    check(injected(created), f"the built-in configuration injects a restricted Pod and the API server admits it "
                             f"in an enforce=restricted namespace{said(error)}")
    example = (DEPLOY / "examples" / "profiles.yaml").read_text()
    reconfigure(example, "the README's example configuration")
    labels = {"app": "shop", "logs.example.com/ship": "true", "tier": "web"}
    created, error = create_pod(strict, restricted_pod("strict-example", labels))
    names = sorted(c["name"] for c in restricted_sidecars(created))
    check(names == ["log-shipper", "otel-collector"],
          f"the README's example configuration injects a restricted Pod and the API server admits it: "
          f"{names}{said(error)}")

    for on_error in ("deny", "allow"):
        reconfigure(example.replace("\nprofiles:\n", "\nprofiles:\n" + LOOSE % on_error, 1),
                    f"a profile that breaks restricted, onError: {on_error}")
        manifest = restricted_pod(f"strict-loose-{on_error}", annotations={INJECT: "loose"})
        created, error = create_pod(strict, manifest)
        lowered = 'sidecar "loose-agent" would lower the Pod from restricted to baseline: allowPrivilegeEscalation is not false'
        if on_error == "deny":
            check(created is None and f'admission webhook "{WEBHOOK}" denied the request' in error
                  and lowered in error and "violates PodSecurity" not in error,
                  f"a profile that would lower a restricted Pod is denied by the webhook, naming the sidecar "
                  f"and the check{said(error)}")
        else:
            check(untouched(created, manifest) and lowered in error and "admitted unchanged" in error,
                  f"with onError: allow that Pod is admitted unchanged, with the warning{said(error)}")
    reconfigure(original, "the configuration as it was")


def reconfigured(deployed, replicas, text, what):
    """The ConfigMap's configuration replaced by `text`, once every replica has reloaded it."""
    counts = [r.metric("sidecar_injector_config_reloads_total") for r in replicas]
    deployed.change_configuration(lambda _: text)
    reloaded = wait_for(what, lambda: all(r.metric("sidecar_injector_config_reloads_total") > n
                                          for r, n in zip(replicas, counts)), 30)
    if not reloaded:
        raise RuntimeError(f"the replicas did not reload {what}")


def generated_conditions(binary, config_text, work):
    """The matchConditions `webhook-config` generates for a configuration."""
    path = work / "conditions-config.yaml"
    path.write_text(config_text)
    printed = subprocess.run([binary, "webhook-config", "-c", str(path), "-o", "json"], capture_output=True,
                             text=True, check=True).stdout
    return json.loads(printed)["webhooks"][0].get("matchConditions", [])


def live_conditions():
    return get("mutatingwebhookconfiguration", CONFIGURATION)["webhooks"][0].get("matchConditions", [])


def conditions_follow_reloads(deployed, replicas, on, binary, work):
    """A reload that changes the generated matchConditions (the README's example configuration:
    injectByDefault: false and selectors) changes the live ones within seconds; then a Pod it
    selects is injected, and one it does not is never sent. The configuration is put back."""
    original = get("configmap", SERVICE, "-n", NAMESPACE)["data"]["config.yaml"]
    example = (DEPLOY / "examples" / "profiles.yaml").read_text()
    wanted = generated_conditions(binary, example, work)
    started = time.monotonic()
    reconfigured(deployed, replicas, example, "the README's example configuration")
    followed = wait_for("the new matchConditions", lambda: live_conditions() == wanted, 10)
    check(bool(followed), f"a reload changes the live matchConditions to the new configuration's "
                          f"({time.monotonic() - started:.1f} s, {[c['name'] for c in wanted]})")
    created, error = create_pod(on, pod("selected-after-reload", labels={"logs.example.com/ship": "true"}))
    spec = (created or {"spec": {}})["spec"]
    names = [c["name"] for c in spec.get("initContainers", []) + spec.get("containers", [])]
    check("log-shipper" in names, f"then a Pod the new configuration selects is injected: {names}{said(error)}")
    before = reviews_counted(*replicas)
    manifest = pod("unselected-after-reload")
    created, _ = create_pod(on, manifest)
    check(untouched(created, manifest) and reviews_counted(*replicas) == before,
          "and a Pod it does not select is never sent")
    reconfigured(deployed, replicas, original, "the configuration as it was")
    wait_for("the original matchConditions", lambda: live_conditions() == generated_conditions(binary, original, work), 10)


def with_profile(profile):
    """A change for `Deployed.change_configuration`: `profile` added to the configuration's
    profiles (the deploy's configuration ends with its `skip:` section)."""
    def change(text):
        if "\nskip:" not in text:
            raise RuntimeError("the ConfigMap's configuration has no skip: section to add a profile before")
        return text.replace("\nskip:", profile + "\nskip:", 1)
    return change


# A second profile for the ConfigMap's configuration: a native sidecar (restartPolicy: Always, which
# the API server accepts only in initContainers) with a volume of its own.
NATIVE_SIDECAR = """
  agent:
    sidecars:
      - name: log-agent
        image: busybox:1.37
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
        volumeMounts:
          - {name: agent-data, mountPath: /data}
    volumes:
      - {name: agent-data, emptyDir: {}}
"""


def lambda_registration(work, binary, ns, reference, config_text):
    """The function in `cargo lambda watch`, behind a TLS terminator on loopback, registered with
    deploy-lambda's configuration rendered as deploy.sh renders it. A real Function URL has AWS's
    public certificate and needs no caBundle; this one is signed by the test's own CA, so the test
    adds that CA as the caBundle."""
    config = work / "lambda-config.yaml"
    config.write_text(config_text)
    token = secrets.token_hex(16)
    port = free_port()
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--bin", "sidecar-injector-lambda",
         "--env-var", "SIDECAR_INJECTOR_TOKEN=" + token, "--env-var", f"SIDECAR_INJECTOR_CONFIG_FILE={config}"],
        cwd=ROOT, stdout=(LOGS / "lambda.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    tls_port = free_port()
    ca, cert, key = work / "ca.crt", work / "tls.crt", work / "tls.key"
    openssl = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=e2e test CA", "-keyout", str(work / "ca.key"), "-out", str(ca))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(key), "-out", str(work / "tls.csr"))
    (work / "tls.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(work / "tls.csr"), "-CA", str(ca), "-CAkey", str(work / "ca.key"),
            "-CAcreateserial", "-days", "1", "-extfile", str(work / "tls.ext"), "-out", str(cert))
    terminator = subprocess.Popen(
        ["socat", f"OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={cert},key={key},verify=0",
         f"TCP:127.0.0.1:{port}"], stdout=(LOGS / "socat.log").open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        function_url = f"https://127.0.0.1:{tls_port}/lambda-url/sidecar-injector-lambda/"
        wait_until_answering(function_url + "mutate/" + token, watch, "cargo lambda watch", context=insecure_tls())
        # What deploy.sh registers, rendered by deploy.sh itself.
        rendered = subprocess.run([str(ROOT / "deploy-lambda" / "deploy.sh"), "--render-webhook", function_url, str(config)],
                                  env={**os.environ, "TOKEN": token, "SIDECAR_INJECTOR": binary},
                                  capture_output=True, text=True, check=True).stdout
        kubectl("delete", "mutatingwebhookconfiguration", CONFIGURATION)
        created = kubectl("create", "-f", "-", stdin=rendered, ok=False)
        registered = get("mutatingwebhookconfiguration", CONFIGURATION) if created.returncode == 0 else None
        url = registered["webhooks"][0]["clientConfig"].get("url") if registered else None
        check(url == function_url.rstrip("/") + "/mutate/" + token,
              f"deploy-lambda's MutatingWebhookConfiguration, rendered by deploy.sh, is accepted with the "
              f"Function URL and token{said(created.stderr)}")
        if registered is None:
            return
        registered["webhooks"][0]["clientConfig"]["caBundle"] = base64.b64encode(ca.read_bytes()).decode()
        kubectl("replace", "-f", "-", stdin=json.dumps(registered))

        created, error = create_pod(ns, pod("through-lambda"))
        check(injected(created), f"a Pod created in a labelled namespace is injected by the Lambda{said(error)}")
        through_lambda = dry_run_pod(ns, same_pod())
        same = comparable(through_lambda) == comparable(reference)
        check(same, "the Lambda's Pod is byte for byte the in-cluster server's Pod")
        if not same:
            print(comparable(reference).decode())
            print(comparable(through_lambda).decode())
    finally:
        for process in (terminator, watch):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def reviews_counted(*replicas):
    """The reviews the replicas have answered, by their own metrics. A review is counted before it
    is answered, so once the API server has stored a Pod, its review, if there was one, is in this
    count: a check that no review happened reads it before and after."""
    return sum(r.metric("sidecar_injector_reviews_total") for r in replicas)


def report_memory(*replicas):
    """What each replica holds in memory, running as the Deployment runs it (`--self-managed`: the
    kube client at start and on renewal) after the reviews above; a figure for BENCHMARKS.md, which
    otherwise measures `serve` with a certificate from files. Not a check: memory is measured, not
    asserted."""
    for r in replicas:
        status = Path(f"/proc/{r.process.pid}/status").read_text()
        kib = dict(re.findall(r"^(VmRSS|RssAnon|RssFile|VmHWM):\s+(\d+) kB$", status, re.M))
        reviews = f"{reviews_counted(r):.0f}"
        print(f"{r.name}, after {reviews} reviews: VmRSS {kib['VmRSS']} kB (RssFile {kib['RssFile']}, "
              f"RssAnon {kib['RssAnon']}), peak {kib['VmHWM']} kB")


@contextlib.contextmanager
def inside_the_cluster(server_bin):
    """A work folder, and the server binary copied where the Deployment's user can run it (the
    build's folder may not be reachable for it); only inside `cluster run`."""
    if "KUBE_CA" not in os.environ:
        sys.exit("run me inside the control-plane launcher: $SIDECAR_INJECTOR_KUBE_CLUSTER run -- ... (docs/testing.md)")
    # Runtimes let containers bind any port; the Service's port here is 443. Per network
    # namespace: this changes the cluster script's private one only.
    Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").write_text("0")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        binary = work / "sidecar-injector"
        binary.write_bytes(Path(server_bin).read_bytes())
        binary.chmod(0o755)
        yield work, str(binary)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-bin", required=True, help="the image's sidecar-injector binary")
    args = parser.parse_args()
    with inside_the_cluster(args.server_bin) as (work, binary):
        try:
            result = in_cluster(binary, work)
            if result:
                lambda_registration(work, binary, *result)
        except RuntimeError as error:
            check(False, f"the test could not go on: {error}")
        report_latency("in total", webhook_latency_seen_by_the_api_server())
    if FAILED:
        print(f"logs of the replicas, the Lambda and the terminator: {LOGS}")
    finish()


if __name__ == "__main__":
    main()
