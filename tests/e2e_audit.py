#!/usr/bin/env python3
"""`sidecar-injector audit` against a real API server, inside the control-plane launcher
(docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 tests/e2e_audit.py --server-bin IMAGE_BINARY --cli-bin CLI_BINARY

Workloads are created in a labelled namespace while a replica (run as tests/e2e_cluster.py runs
it) injects them; the configuration changes; Pods are created while no replica runs, under a
`failurePolicy: Ignore` copy of the webhook. The audit must then report exactly the stale, missed
and current workloads, `--restart` must restart only the right ones (their new Pods come back
current), the exit statuses must say what happened, and the RBAC in deploy-incluster/ must be what
audit needs. Last, 5,000 Pods are audited page by page: the time and the peak RSS are printed.
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from e2e_cluster import CONFIGURATION, INJECT, STATUS, Deployed, get, inside_the_cluster, kubectl, namespace, wait_for
from http_support import check, finish

SHOP = "shop"
CLI = None  # the command-line binary, from --cli-bin


def measured(command, env=None):
    """(exit status, stdout, stderr, seconds, peak RSS in KiB) of a command; the peak RSS is the
    kernel's account of that child alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read().decode(), err.read().decode(), seconds, usage.ru_maxrss


def audit(*args, kubeconfig=None):
    """(exit status, stdout, stderr) of one audit run."""
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    return measured([CLI, "audit", *args], env)[:3]


def audit_json(config, *args, kubeconfig=None):
    status, out, err = audit("-c", str(config), "-o", "json", *args, kubeconfig=kubeconfig)
    if status not in (0, 1):
        raise RuntimeError(f"audit exited {status}: {err}")
    return status, json.loads(out), err


def classes(report):
    """{"Kind/name": {class: count}} of a JSON report."""
    return {f"{w['kind']}/{w['name']}": w["byClass"] for w in report["workloads"]}


def deployment(name, replicas=1, labels=None):
    template_labels = {"app": name, **(labels or {})}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            # No kubelet: new Pods never become ready, so a rolling update would keep the old ones.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": template_labels}, "spec": {"containers": [
                {"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"]}]}},
        },
    }


def workloads():
    stateful = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "podManagementPolicy": "Parallel", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                     {"name": "db", "image": "busybox:1.37", "command": ["sleep", "3600"]}]}}},
    }
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "once", "image": "busybox:1.37", "command": ["true"]}]}}},
    }
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"},
            "spec": {"containers": [{"name": "debug", "image": "busybox:1.37", "command": ["sleep", "3600"]}]}}
    return [deployment("web", replicas=2), stateful, job, bare, deployment("optout", labels={INJECT: "false"})]


def pods_of(prefix):
    return [p for p in get("pods", "-n", SHOP)["items"] if p["metadata"]["name"].startswith(prefix)]


def all_injected(prefix, count):
    pods = pods_of(prefix)
    return len(pods) == count and all(STATUS in p["metadata"].get("annotations", {}) for p in pods)


def token_kubeconfig(work, account, binding=None):
    """A kubeconfig for a ServiceAccount, bound to `binding` (a ClusterRole) or to nothing."""
    kubectl("create", "serviceaccount", account, "-n", "default")
    for role in binding or []:
        kubectl("create", "clusterrolebinding", f"{account}-{role}", f"--clusterrole={role}",
                f"--serviceaccount=default:{account}")
    token = kubectl("create", "token", account, "-n", "default").stdout.strip()
    path = work / f"{account}.kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": os.environ["KUBE_API"], "certificate-authority": os.environ["KUBE_CA"]}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": SHOP}}],
    }))
    return path


def left_behind(deployed, work):
    """Workloads injected, the configuration changed, Pods created with no replica: the audit
    must see exactly that. Returns the configuration file in force."""
    replica = deployed.replica().start()
    if not replica.ready():
        raise RuntimeError("the replica did not become ready")
    wait_for("the caBundle", lambda: get("mutatingwebhookconfiguration", CONFIGURATION)["webhooks"][0]["clientConfig"].get("caBundle"), 10)
    namespace(SHOP, labelled=True)
    for manifest in workloads():
        kubectl("create", "-n", SHOP, "-f", "-", stdin=json.dumps(manifest))
    # A manifest injected offline in a pipeline, with the configuration in force now: its pod
    # template carries the injection, so its Pods are stale after the change however often it
    # is restarted.
    initial = work / "initial-config.yaml"
    initial.write_text(get("configmap", "sidecar-injector", "-n", "sidecar-injector")["data"]["config.yaml"])
    baked = subprocess.run([CLI, "inject", "-c", str(initial), "-f", "-", "-n", SHOP], input=json.dumps(deployment("baked")),
                           capture_output=True, text=True, check=True).stdout
    kubectl("create", "-n", SHOP, "-f", "-", stdin=baked)
    injected = wait_for("the workloads' Pods", lambda: all(all_injected(p, n) for p, n in
                                                            [("web-", 2), ("db-", 1), ("once-", 1), ("debug", 1), ("baked-", 1)]), 90)
    check(bool(injected), "the workloads' Pods are injected")

    reloads = replica.metric("sidecar_injector_config_reloads_total")
    text = deployed.change_configuration(lambda t: t.replace("labels:\n  foo: bar\n", "labels:\n  foo: bar\n  audit: two\n", 1))
    if "audit: two" not in text:
        raise RuntimeError("the configuration change did not apply")
    wait_for("the reload", lambda: replica.metric("sidecar_injector_config_reloads_total") > reloads, 30)
    kubectl("create", "-n", SHOP, "-f", "-", stdin=json.dumps(deployment("fresh")))
    check(bool(wait_for("fresh's Pod", lambda: all_injected("fresh-", 1), 60)), "a Deployment created after the change is injected")

    # No replica, and a webhook that fails open: Pods come up without their sidecar.
    replica.stop()
    kubectl("patch", "mutatingwebhookconfiguration", CONFIGURATION, "--type=json",
            "-p", '[{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]')
    kubectl("create", "-n", SHOP, "-f", "-", stdin=json.dumps(deployment("unlucky")))
    created = wait_for("unlucky's Pod", lambda: len(pods_of("unlucky-")) == 1, 60)
    check(bool(created) and not all_injected("unlucky-", 1), "under failurePolicy: Ignore with no replica, a Pod is created without injection")
    config = work / "config.yaml"
    config.write_text(text)
    return config


EXPECTED = {
    "Deployment/web": {"stale": 2},
    "Deployment/baked": {"stale": 1},
    "StatefulSet/db": {"stale": 1},
    "Job/once": {"stale": 1},
    "Pod/debug": {"stale": 1},
    "Deployment/fresh": {"current": 1},
    "Deployment/unlucky": {"missed": 1},
    "Deployment/optout": {"notSelected": 1},
}


def audits(deployed, work, config):
    status, report, err = audit_json(config, "-n", SHOP)
    found = classes(report)
    check(found == EXPECTED, f"audit reports exactly the stale, missed and current workloads: {found}")
    check(status == 1, f"audit exits 1 when something is stale or missed (got {status})")
    actions = {f"{w['kind']}/{w['name']}": w["action"] for w in report["workloads"]}
    check(actions["Deployment/web"] == "restart" and actions["Pod/debug"] == "re-create by hand"
          and actions["Deployment/fresh"] == "none", f"the advised actions: {actions}")
    check(actions["Deployment/baked"] == "inject the manifest again",
          f"a workload whose template was injected offline is advised to inject the manifest again: {actions['Deployment/baked']}")
    table = audit("-c", str(config), "-n", SHOP)[1]
    print(table)

    before = get("deployment", "web", "-n", SHOP)["spec"]["template"]["metadata"].get("annotations", {})
    status, report, _ = audit_json(config, "-n", SHOP, "--restart", "--dry-run")
    after = get("deployment", "web", "-n", SHOP)["spec"]["template"]["metadata"].get("annotations", {})
    would = {f"{r['kind']}/{r['name']}": r["result"] for r in report["restarted"]}
    check(before == after and would.get("Deployment/web") == "would restart", f"--restart --dry-run restarts nothing and says what it would: {would}")

    # The read-only ClusterRole is enough to audit, not to restart; nothing at all is forbidden.
    nobody = token_kubeconfig(work, "nobody")
    status, _, err = audit("-c", str(config), "-n", SHOP, kubeconfig=nobody)
    check(status == 3 and "forbidden: cannot get mutatingwebhookconfigurations/sidecar-injector" in err,
          f"without RBAC, audit exits 3 naming the verb and resource: {err.strip()}")
    reader = token_kubeconfig(work, "auditor", ["sidecar-injector-audit"])
    status, report, _ = audit_json(config, "-n", SHOP, kubeconfig=reader)
    check(status == 1 and classes(report) == EXPECTED, "the sidecar-injector-audit ClusterRole is all audit needs")
    status, out, err = audit("-c", str(config), "-o", "json", "-n", SHOP, "--restart", kubeconfig=reader)
    refused = {f"{r['kind']}/{r['name']}": r["result"] for r in json.loads(out)["restarted"]} if out.strip() else {}
    check(status == 3 and refused.get("Deployment/web", "").startswith("restart failed: forbidden: cannot patch deployments")
          and refused.get("Pod/debug") == "re-create by hand",
          f"--restart without the restart ClusterRole: exit 3, the report printed, each refused restart marked: {refused}")
    unreachable = work / "unreachable.kubeconfig"
    unreachable.write_text(reader.read_text().replace(os.environ["KUBE_API"], "https://127.0.0.1:1"))
    status, _, err = audit("-c", str(config), "-n", SHOP, kubeconfig=unreachable)
    check(status == 3 and "cannot reach the API server" in err, f"an unreachable API server: exit 3, {err.strip()}")
    status, _, err = audit("-c", str(config), "-n", SHOP, "--webhook-configuration", "no-such-webhook")
    check(status == 3 and "no-such-webhook" in err, f"a webhook configuration that does not exist: exit 3, {err.strip()}")

    # Back to normal: the webhook fails closed again and a replica serves the new configuration.
    kubectl("patch", "mutatingwebhookconfiguration", CONFIGURATION, "--type=json",
            "-p", '[{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Fail"}]')
    replica = deployed.replica().start()
    replica.ready()
    restarter = token_kubeconfig(work, "restarter", ["sidecar-injector-audit", "sidecar-injector-audit-restart"])
    status, report, _ = audit_json(config, "-n", SHOP, "--restart", kubeconfig=restarter)
    done = {f"{r['kind']}/{r['name']}": r["result"] for r in report["restarted"]}
    check(done == {"Deployment/web": "restarted", "StatefulSet/db": "restarted", "Deployment/unlucky": "restarted",
                   "Job/once": "re-create by hand", "Pod/debug": "re-create by hand",
                   "Deployment/baked": "inject the manifest again"},
          f"--restart restarts the Deployments and the StatefulSet, and lists the Job, the bare Pod and the "
          f"offline-injected Deployment: {done}")
    annotated = [name for kind, name in [("deployment", "web"), ("statefulset", "db"), ("deployment", "fresh"), ("job", "once"),
                                         ("deployment", "baked")]
                 if "kubectl.kubernetes.io/restartedAt" in (get(kind, name, "-n", SHOP)["spec"]["template"]["metadata"].get("annotations") or {})]
    check(annotated == ["web", "db"], f"only the restarted workloads' templates carry restartedAt: {annotated}")

    # The workloads' new Pods. (Without a kubelet no Pod is ever ready: the Deployments use
    # Recreate, so that the old Pods go first, and the StatefulSet Parallel, so that it does not
    # wait for a ready Pod before replacing one.)
    def settled():
        found = classes(audit_json(config, "-n", SHOP)[1])
        restarted = [("Deployment/web", 2), ("StatefulSet/db", 1), ("Deployment/unlucky", 1)]
        return found if all(found.get(w) == {"current": n} for w, n in restarted) else None
    found = wait_for("the restarted workloads' new Pods", settled, 90)
    check(found is not None, f"the restarted workloads' new Pods come back current: {found}")
    kubectl("delete", "job", "once", "-n", SHOP, "--cascade=foreground", "--wait=true")
    kubectl("delete", "pod", "debug", "-n", SHOP, "--wait=true")
    kubectl("delete", "statefulset", "db", "-n", SHOP, "--cascade=foreground", "--wait=true")
    kubectl("delete", "deployment", "baked", "-n", SHOP, "--cascade=foreground", "--wait=true")
    status, report, _ = audit_json(config, "-n", SHOP)
    check(status == 0, f"with the rest re-created by hand (here: deleted), audit exits 0: {classes(report)}")
    replica.stop()


def five_thousand(config):
    """5,000 Pods created directly (no webhook sees them: the namespace is labelled afterwards),
    then audited page by page and in one page."""
    big = namespace("big", labelled=False)
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:04}", "labels": {"app": "big"}},
             "spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]}} for i in range(5000)]
    started = time.monotonic()
    procs = []
    for part in range(4):
        items = {"apiVersion": "v1", "kind": "List", "items": pods[part::4]}
        procs.append(subprocess.Popen(["kubectl", "create", "-n", big, "-f", "-", "-o", "name"], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        procs[-1].stdin.write(json.dumps(items))
        procs[-1].stdin.close()
    for proc in procs:
        proc.wait()
    print(f"created 5,000 Pods in {time.monotonic() - started:.1f} s")
    kubectl("label", "namespace", big, f"{INJECT}=enabled")
    peaks = {}
    for page_size in ["500", "5000"]:
        status, out, err, seconds, peaks[page_size] = measured(
            [CLI, "audit", "-c", str(config), "-n", big, "-o", "json", "--page-size", page_size])
        report = json.loads(out)
        print(f"audit of 5,000 Pods, pages of {page_size}: {seconds:.2f} s, peak RSS {peaks[page_size] / 1024:.1f} MiB; {err.strip()}")
        if page_size == "500":
            check(status == 1 and report["totals"]["byClass"] == {"missed": 5000} and "5000 Pods in 10 pages" in err,
                  "5,000 Pods are read in 10 pages of 500 and all reported missed")
    # A figure, not a check (BENCHMARKS.md keeps it): memory is measured by benchmarks.
    print(f"peak RSS: {peaks['500'] / 1024:.1f} MiB in pages of 500, {peaks['5000'] / 1024:.1f} MiB in one page")


def main():
    global CLI
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-bin", required=True, help="the image's sidecar-injector binary")
    parser.add_argument("--cli-bin", required=True, help="a sidecar-injector binary with the audit command")
    args = parser.parse_args()
    CLI = str(Path(args.cli_bin).resolve())
    with inside_the_cluster(args.server_bin) as (work, binary):
        try:
            deployed = Deployed(binary, work)
            config = left_behind(deployed, work)
            audits(deployed, work, config)
            five_thousand(config)
        except RuntimeError as error:
            check(False, f"the test could not go on: {error}")
    finish()


if __name__ == "__main__":
    main()
