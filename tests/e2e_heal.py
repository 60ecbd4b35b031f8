#!/usr/bin/env python3
"""`sidecar-injector heal` against a real API server, inside the control-plane launcher
(docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 tests/e2e_heal.py --server-bin IMAGE_BINARY

deploy-incluster/ with the fail-open component (failurePolicy: Ignore, and the reconciler's
Deployment, ServiceAccount and RBAC) is created as a user's overlay builds it. The webhook and two
reconciler replicas run as tests/e2e_cluster.py runs the Deployment's Pods: each with its own
ServiceAccount's token and RBAC. There is no kubelet, so this test plays it: it marks every Pod
Ready through its status subresource, except the Pods of a sidecar named `never-ready`. Shown, one
PASS line each:
1. Deployments created while the webhook is unreachable come up uninjected; once a webhook replica
   is ready, the reconciler re-creates them injected (the time is printed).
2. A configuration change makes 20 Deployments stale: never more than --max-concurrent mid-rollout
   (sampled), all end current. Mid-wave, the leader is killed (the other replica takes over) and
   the API server is paused with SIGSTOP.
3. A sidecar that never becomes Ready stops the waves after --max-failures workloads; the rest are
   untouched; an Event and a metric say why; the next configuration lets the waves go on. Mid-wave,
   the leader is restarted, and a newly selected namespace makes the Pod watch start over.
4. heal: "false", a bare Pod, a Job, a Deployment injected offline and the reconciler's own
   namespace are never restarted, and each is reported with its action.
5. No workload is restarted twice for one change: each Deployment's revision is counted.
6. The reconciler's ServiceAccount can do what it needs and no more (`kubectl auth can-i` rows).
"""

import argparse
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from e2e_cluster import (INJECT, NAMESPACE, ROOT, STATUS, Deployed, get, inside_the_cluster, kubectl,
                         namespace, wait_for)
from http_support import check, finish

HEAL = "sidecar-injector-heal"
ACCOUNT = f"system:serviceaccount:{NAMESPACE}:{HEAL}"
NEVER_READY = "never-ready"
REVISION = "deployment.kubernetes.io/revision"
LEASE_SECONDS = 6
# The reconciler's Deployment, with shorter times so that the test stays short.
OVERRIDES = {"--lease-duration": str(LEASE_SECONDS), "--progress-deadline": "10", "--max-per-minute": "60",
             "--reload-interval": "0.5"}
MAX_CONCURRENT = 3
MAX_FAILURES = 3
WAVE = "heal-waves"
WAVE_SIZE = 20


# --- playing the kubelet ---------------------------------------------------------------------

class PlayKubelet(threading.Thread):
    """Every Pod marked Running and Ready, as a kubelet would once its containers run, except Pods
    with a container named `never-ready`: those stay Pending, as a sidecar that never starts
    leaves them."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            listed = kubectl("get", "pods", "-A", "-o", "json", ok=False)
            for pod in json.loads(listed.stdout)["items"] if listed.returncode == 0 else []:
                if not ready(pod) and not never_ready(pod):
                    mark_ready(pod)
            self.stopping.wait(0.3)

    def stop(self):
        self.stopping.set()
        self.join()


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def never_ready(pod):
    containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
    return any(c["name"] == NEVER_READY for c in containers)


def mark_ready(pod):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [{"type": kind, "status": "True", "lastTransitionTime": now} for kind in ("Ready", "ContainersReady")]
    status = {"status": {"phase": "Running", "conditions": conditions}}
    kubectl("patch", "pod", pod["metadata"]["name"], "-n", pod["metadata"]["namespace"], "--subresource=status",
            "--type=merge", "-p", json.dumps(status), ok=False)


# --- workloads --------------------------------------------------------------------------------

def app(name):
    return {"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"],
            # What the restricted Pod Security level asks, for the reconciler's own namespace.
            "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 1000,
                                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}


def deployment(name, replicas=1, annotations=None):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [app(name)]}}},
    }


def create(ns, *manifests):
    kubectl("create", "-n", ns, "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)}))


def pods_of(ns, name):
    return get("pods", "-n", ns, "-l", f"app={name}")["items"]


def sidecar_image(pod):
    """The injected sidecar's image, or None for a Pod without the status annotation."""
    if STATUS not in pod["metadata"].get("annotations", {}):
        return None
    return next((c["image"] for c in pod["spec"]["containers"] if c["name"] != "app"), None)


def current(ns, name, image, replicas=1):
    """The Deployment's Pods are all there is of it, and all carry the sidecar of `image`."""
    pods = pods_of(ns, name)
    return len(pods) == replicas and all(sidecar_image(p) == image for p in pods)


def revisions(ns=None):
    """{Deployment: its revision}, of `ns` or of all namespaces ("namespace/name"): one more for
    each restart (each new pod template)."""
    listed = get("deployments", "-n", ns) if ns else get("deployments", "-A")
    return {(d["metadata"]["name"] if ns else f"{d['metadata']['namespace']}/{d['metadata']['name']}"):
            int(d["metadata"]["annotations"].get(REVISION, 0)) for d in listed["items"]}


def mid_rollout(d):
    """As `kubectl rollout status` reads a Deployment: not all its replicas are updated and
    available, or old ones remain."""
    want, status = d["spec"]["replicas"], d.get("status", {})
    return (status.get("observedGeneration", 0) < d["metadata"]["generation"]
            or status.get("updatedReplicas", 0) < want or status.get("availableReplicas", 0) < want
            or status.get("replicas", 0) > want)


class Sampler(threading.Thread):
    """How many Deployments of a namespace are mid-rollout, sampled until stopped: the most seen."""

    def __init__(self, ns):
        super().__init__(daemon=True)
        self.ns, self.most, self.samples, self.at_most = ns, 0, 0, []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            listed = kubectl("get", "deployments", "-n", self.ns, "-o", "json", ok=False)
            if listed.returncode == 0:
                rolling = [d["metadata"]["name"] for d in json.loads(listed.stdout)["items"] if mid_rollout(d)]
                if len(rolling) > self.most:
                    self.most, self.at_most = len(rolling), rolling
                self.samples += 1
            self.stopping.wait(0.2)

    def stop(self):
        self.stopping.set()
        self.join()
        return self.most


def events(ns, reason, kind=None, name=None):
    """The Events of `ns` (of all namespaces when None) with `reason`, about `kind`/`name` when
    given."""
    found = []
    for event in (get("events", "-n", ns) if ns else get("events", "-A"))["items"]:
        about = event.get("involvedObject", {})
        if event.get("reason") == reason and kind in (None, about.get("kind")) and name in (None, about.get("name")):
            found.append(event)
    return found


# --- the reconciler's replicas ------------------------------------------------------------------

class Reconcilers:
    """The reconciler's replicas, as the Deployment runs them, each a Pod of its own."""

    def __init__(self, deployed):
        self.deployed = deployed
        self.token_dir = deployed.account(HEAL)
        self.running = []

    def start(self):
        replica = self.deployed.replica(deployment=HEAL, token_dir=self.token_dir, overrides=OVERRIDES).start()
        if not replica.ready():
            raise RuntimeError(f"{replica.name} did not become ready:\n{replica.log.read_text()}")
        self.running.append(replica)
        return replica

    def leader(self):
        """The replica the Lease names, once one holds it."""
        def holder():
            done = kubectl("get", "lease", HEAL, "-n", NAMESPACE, "-o", "json", ok=False)
            name = json.loads(done.stdout)["spec"].get("holderIdentity") if done.returncode == 0 else None
            return next((r for r in self.running if r.name == name), None)
        return wait_for("a reconciler to hold the Lease", holder, 3 * LEASE_SECONDS)

    def kill(self, replica):
        os.killpg(replica.process.pid, signal.SIGKILL)
        replica.process.wait()
        self.running.remove(replica)

    def stop(self, replica):
        replica.stop()
        self.running.remove(replica)

    def metric(self, name, labels=None):
        return sum(r.metric(f"sidecar_injector_heal_{name}", labels) for r in self.running)

    def stop_all(self):
        for replica in list(self.running):
            self.stop(replica)


def steps_later(reconcilers, count):
    """Wait until the leader has taken `count` more wave steps."""
    leader = reconcilers.leader()
    start = leader.metric("sidecar_injector_heal_steps_total")
    return wait_for(f"{count} wave steps", lambda: leader.metric("sidecar_injector_heal_steps_total") >= start + count, 60)


def paused_api_server(seconds):
    """The API server stopped with SIGSTOP for `seconds`, then continued: the path to it cut."""
    pid = int(subprocess.run(["pgrep", "-x", "kube-apiserver"], capture_output=True, text=True, check=True).stdout.split()[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)  # the outage under test
    finally:
        os.kill(pid, signal.SIGCONT)


# --- the test ------------------------------------------------------------------------------------

def sidecar(image, name="example-sidecar"):
    """A change for `Deployed.change_configuration`: the example profile's sidecar (the first
    container of the deploy's configuration) given `image` and `name`."""
    def change(text):
        text = re.sub(r"- name: \S+(\n\s+)image: \S+", rf"- name: {name}\g<1>image: {image}", text, count=1)
        if f"image: {image}" not in text:
            raise RuntimeError("the ConfigMap's configuration has no sidecar image to change")
        return text
    return change


def fail_open_overlay(work):
    """deploy-incluster/ with the fail-open component, built as a user's overlay builds it."""
    overlay = ROOT / f".e2e-heal-overlay-{os.getpid()}"
    overlay.mkdir()
    try:
        (overlay / "kustomization.yaml").write_text(
            "resources: [../deploy-incluster]\ncomponents: [../deploy-incluster/components/fail-open]\n")
        built = kubectl("kustomize", str(overlay)).stdout
    finally:
        (overlay / "kustomization.yaml").unlink()
        overlay.rmdir()
    path = work / "fail-open.yaml"
    path.write_text(built)
    return path


def permissions():
    """6: what the reconciler's ServiceAccount may do, row by row."""
    rows = [
        ("yes", ["list", "pods", "-A"]), ("yes", ["watch", "pods", "-A"]),
        ("yes", ["patch", "deployments.apps", "-n", "any"]), ("yes", ["patch", "statefulsets.apps", "-n", "any"]),
        ("yes", ["patch", "daemonsets.apps", "-n", "any"]), ("yes", ["create", "events.events.k8s.io", "-n", "any"]),
        ("yes", ["update", f"leases.coordination.k8s.io/{HEAL}", "-n", NAMESPACE]),
        ("no", ["get", "secrets", "-A"]), ("no", ["list", "secrets", "-A"]), ("no", ["get", "secrets", "-n", NAMESPACE]),
        ("no", ["patch", "pods", "-n", "any"]), ("no", ["delete", "pods", "-n", "any"]), ("no", ["create", "pods", "-n", "any"]),
        ("no", ["patch", "replicasets.apps", "-n", "any"]), ("no", ["patch", "jobs.batch", "-n", "any"]),
        ("no", ["patch", "cronjobs.batch", "-n", "any"]), ("no", ["patch", "configmaps", "-n", NAMESPACE]),
        ("no", ["patch", "services", "-n", NAMESPACE]), ("no", ["patch", "namespaces"]),
        ("no", ["patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io"]),
        ("no", ["delete", "deployments.apps", "-n", "any"]), ("no", ["update", "deployments.apps", "--subresource=scale", "-n", "any"]),
        ("no", ["update", "leases.coordination.k8s.io/kube-controller-manager", "-n", "kube-system"]),
        ("no", ["update", "leases.coordination.k8s.io/other", "-n", NAMESPACE]),
    ]
    for want, args in rows:
        said = kubectl("auth", "can-i", f"--as={ACCOUNT}", *args, ok=False).stdout.strip()
        check(said == want, f"can-i {' '.join(args)}: {said} (wanted {want})")
    webhook = f"system:serviceaccount:{NAMESPACE}:sidecar-injector"
    said = kubectl("auth", "can-i", f"--as={webhook}", "patch", "deployments.apps", "-n", "any", ok=False).stdout.strip()
    check(said == "no", f"the webhook's ServiceAccount gains no right to restart workloads (can-i patch deployments: {said})")


def missed_then_healed(deployed, reconcilers, cli):
    """1 and 4: workloads created while the webhook is unreachable, under failurePolicy: Ignore."""
    ns = namespace("heal-missed", labelled=True)
    kubectl("label", "namespace", NAMESPACE, f"{INJECT}=enabled")
    older = Path(tempfile.mkdtemp()) / "older.yaml"
    older.write_text(sidecar("busybox:1.34")(get("configmap", "sidecar-injector", "-n", NAMESPACE)["data"]["config.yaml"]))
    baked = subprocess.run([cli, "inject", "-c", str(older), "-f", "-"], check=True, text=True,
                           capture_output=True, input=json.dumps(deployment("baked"))).stdout
    opted_out = deployment("opted-out", annotations={"sidecar-injector.io/heal": "false"})
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "labels": {"app": "bare"}},
            "spec": {"containers": [app("bare")]}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
           "spec": {"template": {"metadata": {"labels": {"app": "once"}},
                                 "spec": {"restartPolicy": "Never", "containers": [app("once")]}}}}
    missed = {"d1": 1, "d2": 1, "d3": 2}
    create(ns, *[deployment(name, replicas) for name, replicas in missed.items()], opted_out, bare, job)
    kubectl("create", "-n", ns, "-f", "-", stdin=baked)
    create(NAMESPACE, deployment("own"))
    everyone = {**missed, "baked": 1, "opted-out": 1, "bare": 1, "once": 1}
    came_up = wait_for("the Pods, uninjected", lambda: all(
        len(pods_of(ns, name)) == count and all(STATUS not in p["metadata"].get("annotations", {}) or name == "baked"
                                                for p in pods_of(ns, name)) for name, count in everyone.items()), 60)
    check(bool(came_up), "with the webhook unreachable under failurePolicy: Ignore, Pods come up uninjected")

    leader = reconcilers.leader()
    seen = wait_for("the reconciler to count them missed", lambda: leader.metric(
        "sidecar_injector_heal_pods", f'namespace="{ns}",class="missed"') >= 5, 30)
    probed = wait_for("the reconciler to find the webhook down", lambda: leader.metric(
        "sidecar_injector_heal_webhook_ready") == 0 and leader.metric("sidecar_injector_heal_steps_total") >= 3, 30)
    check(bool(seen) and bool(probed) and set(revisions(ns).values()) == {1},
          "the reconciler counts the missed Pods by namespace, and restarts nothing while the webhook is down")

    webhook = deployed.replica().start()
    if not webhook.ready():
        raise RuntimeError("the webhook replica did not become ready")
    ready_at = time.monotonic()
    image = "busybox:1.37"
    healed = wait_for("the missed Deployments re-created injected", lambda: all(
        current(ns, name, image, count) for name, count in missed.items()), 120)
    took = time.monotonic() - ready_at
    check(bool(healed), f"once a webhook replica is ready, the reconciler re-creates the missed Deployments injected: "
          f"the last Pod current {took:.1f} s after the webhook was ready")
    restarted = events(ns, "Restarted", "Deployment", "d3")
    check(any("missed: 2 Pods created while the webhook was unreachable" in e.get("message", "") for e in restarted),
          f"an Event on each restarted workload says why: {[e.get('message') for e in restarted]}")
    # Its Pods current, a workload is found rolled out on the reconciler's next step.
    counted = wait_for("the time to current counted", lambda: reconcilers.metric("time_to_current_seconds_count") >= len(missed), 10)
    check(bool(counted),
          "sidecar_injector_heal_time_to_current_seconds counts each workload made current")

    # 4: each left alone, reported once with its action, never restarted.
    alone = [("Deployment", "opted-out", ns, "none: heal is off for it"),
             ("Deployment", "baked", ns, "inject the manifest again"),
             ("Pod", "bare", ns, "re-create by hand"),
             ("Job", "once", ns, "re-create by hand"),
             ("Deployment", "own", NAMESPACE, "none: the reconciler's own namespace")]
    uids = {name: [p["metadata"]["uid"] for p in pods_of(space, name)] for _, name, space, _ in alone}
    for kind, name, space, action in alone:
        reported = wait_for(f"the report on {name}", lambda: [
            e for e in events(space, "NotHealed", kind, name) if f"action: {action}" in e.get("message", "")], 30)
        still = [p["metadata"]["uid"] for p in pods_of(space, name)] == uids[name]
        if kind == "Deployment":
            still = still and revisions(space)[name] == 1
        check(bool(reported) and still, f"{kind} {name} is never restarted, and reported with the action \"{action}\"")
    check(reconcilers.metric("left_alone_total", 'action="re-create by hand"') >= 2,
          "sidecar_injector_heal_left_alone_total counts them by action")
    return webhook


def waves(deployed, reconcilers):
    """2, 3 and 5: configuration changes rolled out in health-gated waves."""
    ns = namespace(WAVE, labelled=True)
    names = [f"w{i:02}" for i in range(1, WAVE_SIZE + 1)]
    create(ns, *[deployment(name) for name in names])
    up = wait_for("20 current Deployments, rolled out", lambda: all(current(ns, n, "busybox:1.37") for n in names)
                  and not any(mid_rollout(d) for d in get("deployments", "-n", ns)["items"]), 120)
    if not up:
        raise RuntimeError("the 20 Deployments did not come up injected")
    before = revisions(ns)

    # 2: a change of image; mid-wave the leader is killed, then the API server paused.
    sampler = Sampler(ns)
    sampler.start()
    deployed.change_configuration(sidecar("busybox:1.36"))
    wait_for("the first restarts", lambda: sum(r > before[n] for n, r in revisions(ns).items()) >= MAX_CONCURRENT, 60)
    leader = reconcilers.leader()
    killed_at = time.monotonic()
    reconcilers.kill(leader)
    follower = reconcilers.leader()
    handover = time.monotonic() - killed_at
    # The Lease expires at most its duration after the kill; the other replica tries every sixth
    # of it; this test's own reads of the Lease take up to a second or two on a loaded machine.
    check(follower is not None and handover <= LEASE_SECONDS * 7 / 6 + 2,
          f"killing the leader mid-wave hands over to the other replica in {handover:.1f} s "
          f"(Lease {LEASE_SECONDS} s, retried every {LEASE_SECONDS / 6:.0f} s)")
    reconcilers.start()
    wait_for("more restarts", lambda: sum(r > before[n] for n, r in revisions(ns).items()) >= 2 * MAX_CONCURRENT + 2, 60)
    paused_api_server(5)
    done = wait_for("all 20 current", lambda: all(current(ns, n, "busybox:1.36") for n in names), 240)
    most = sampler.stop()
    check(bool(done) and 0 < most <= MAX_CONCURRENT,
          f"a configuration change rolls out to 20 Deployments with at most {MAX_CONCURRENT} mid-rollout at once: "
          f"{most} at most in {sampler.samples} samples ({', '.join(sampler.at_most)})")
    check(reconcilers.metric("restarts_total", 'result="failed"') == 0,
          "no restart failed: each waited until the webhook answered as the new configuration would")
    after = revisions(ns)
    check(all(after[n] == before[n] + 1 for n in names),
          "across the leader's death and the API server's pause, each Deployment is restarted exactly once "
          f"(revisions {sorted(set(after[n] - before[n] for n in names))} up)")
    restarted = events(ns, "Restarted", "Deployment", "w01")
    check(any("stale: 1 Pod injected-by-other-config" in e.get("message", "") for e in restarted),
          f"the Event names a stale Pod's reason: {[e.get('message') for e in restarted][:1]}")

    # 3: a sidecar that never becomes Ready stops the waves, wherever the first failures are.
    before = revisions()
    deployed.change_configuration(sidecar("busybox:1.36", NEVER_READY))
    halted = wait_for("the waves to stop", lambda: events(None, "HealHalted"), 120)
    tried = sorted(n for n, r in revisions().items() if r > before[n])
    check(bool(halted) and len(tried) == MAX_FAILURES,
          f"a sidecar that never becomes Ready stops the waves after {MAX_FAILURES} failed workloads ({tried}): "
          f"{halted[0]['message'] if halted else 'no HealHalted Event'}")
    leader = reconcilers.leader()
    check(leader.metric("sidecar_injector_heal_halted") == 1
          and leader.metric("sidecar_injector_heal_restarts_total", 'result="failed"') >= MAX_FAILURES,
          "sidecar_injector_heal_halted is 1 and the failed restarts are counted")
    check(all(events(n.split("/")[0], "HealFailed", "Deployment", n.split("/")[1]) for n in tried),
          "each failed workload has a HealFailed Event")
    steps_later(reconcilers, 5)
    check(sorted(n for n, r in revisions().items() if r > before[n]) == tried,
          f"the other {len(before) - len(tried)} Deployments stay untouched over 5 more wave steps")
    before = {n.split("/")[1]: r for n, r in before.items() if n.startswith(f"{ns}/")}
    tried = {n.split("/")[1] for n in tried if n.startswith(f"{ns}/")}

    # The next configuration: the waves go on. Mid-wave the leader restarts, and a new namespace
    # selected makes the Pod watch start over with a full list.
    deployed.change_configuration(sidecar("busybox:1.35"))
    wait_for("the first restarts", lambda: sum(r > before[n] + (n in tried) for n, r in revisions(ns).items()) >= 2, 60)
    leader = reconcilers.leader()
    reconcilers.stop(leader)
    reconcilers.start()
    namespace("heal-later", labelled=True)
    relisted = wait_for("a fresh list", lambda: reconcilers.metric("relists_total") >= 1, 30)
    done = wait_for("all 20 current again", lambda: all(current(ns, n, "busybox:1.35") for n in names), 240)
    check(bool(done) and bool(relisted),
          "fixing the configuration lets the waves go on: all 20 end current, across a restart of the leader "
          "and a Pod watch started over with a full list")
    after = revisions(ns)
    check(all(after[n] == before[n] + 1 + (n in tried) for n in names),
          "each Deployment restarted exactly once for each configuration it was behind for")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-bin", required=True, help="the image's sidecar-injector binary")
    args = parser.parse_args()
    with inside_the_cluster(args.server_bin) as (work, binary):
        kubelet = PlayKubelet()
        kubelet.start()
        deployed = reconcilers = webhook = None
        try:
            deployed = Deployed(binary, work, manifests=fail_open_overlay(work))
            permissions()
            reconcilers = Reconcilers(deployed)
            reconcilers.start()
            reconcilers.start()
            webhook = missed_then_healed(deployed, reconcilers, binary)
            waves(deployed, reconcilers)
        except RuntimeError as error:
            check(False, f"the test could not go on: {error}")
        finally:
            kubelet.stop()
            if reconcilers:
                reconcilers.stop_all()
            if webhook:
                webhook.stop()
    finish()


if __name__ == "__main__":
    main()
