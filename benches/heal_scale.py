#!/usr/bin/env python3
"""The reconciler's memory and its time to classify every Pod after a configuration change, at a
given fleet size. Inside the control-plane launcher (docs/testing.md), with a release build:

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 benches/heal_scale.py --server-bin BIN --workloads 500 --replicas 10

deploy-incluster/ and deploy-incluster/heal/ are created; WORKLOADS Deployments of REPLICAS Pods
each are created in a namespace the webhook does not select (so no webhook is needed), and the
controllers make their Pods. One reconciler replica runs as the Deployment runs it (its own
ServiceAccount, the ConfigMap volume). The namespace is then labelled: every Pod is missed. No
webhook answers, so nothing is restarted, and the reconciler only watches and classifies.

Printed: the time from the configuration change (the ConfigMap's new content, swapped in as the
kubelet swaps it) to the reconciler's log line saying all Pods were listed and classified again,
and the reconciler's peak RSS (VmHWM) over the whole run.
"""
import argparse
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import e2e_cluster as e2e  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEAL = "sidecar-injector-heal"


def deployments(count, replicas):
    return {"apiVersion": "v1", "kind": "List", "items": [{
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"w{i:04}"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": f"w{i:04}"}},
                 "template": {"metadata": {"labels": {"app": f"w{i:04}"}}, "spec": {"containers": [
                     {"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"]}]}}},
    } for i in range(count)]}


def pod_count(ns):
    out = e2e.kubectl("get", "pods", "-n", ns, "--no-headers", "-o", "name").stdout
    return len(out.splitlines())


def listed_after(replica, since):
    """The reconciler's first "Pods listed" line logged after `since` (a datetime), as
    (its time, the Pods it counted)."""
    for line in replica.lines():
        if line.get("message") == "heal: Pods listed":
            at = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
            if at > since:
                return at, line["pods"]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True, help="a release build of sidecar-injector (feature heal)")
    parser.add_argument("--workloads", type=int, default=500)
    parser.add_argument("--replicas", type=int, default=10)
    args = parser.parse_args()
    total = args.workloads * args.replicas
    with e2e.inside_the_cluster(args.server_bin) as (work, binary):
        deployed = e2e.Deployed(binary, work)
        e2e.kubectl("create", "-f", str(ROOT / "deploy-incluster" / "heal"))
        fleet = e2e.namespace("fleet", labelled=False)
        started = time.monotonic()
        e2e.kubectl("create", "-n", fleet, "-f", "-", stdin=json.dumps(deployments(args.workloads, args.replicas)))
        if not e2e.wait_for(f"{total} Pods", lambda: pod_count(fleet) >= total, 1800):
            sys.exit(f"the controllers did not make {total} Pods")
        print(f"{total} Pods in {args.workloads} Deployments made by the controllers in {time.monotonic() - started:.0f} s")
        replica = deployed.replica(deployment=HEAL, token_dir=deployed.account(HEAL)).start()
        if not replica.ready(120):
            sys.exit("the reconciler did not become ready")
        e2e.kubectl("label", "namespace", fleet, f"{e2e.INJECT}=enabled")
        if not e2e.wait_for("every Pod counted missed", lambda: replica.metric(
                "sidecar_injector_heal_pods", f'namespace="{fleet}",class="missed"') >= total, 300):
            sys.exit("the reconciler did not count every Pod missed")
        changed_at = datetime.now().astimezone()
        deployed.change_configuration(lambda text: re.sub(r"image: busybox:\S+", "image: busybox:1.36", text, count=1))
        found = e2e.wait_for("the Pods listed again", lambda: listed_after(replica, changed_at), 600)
        if not found:
            sys.exit("the reconciler did not list the Pods again after the change")
        at, pods = found
        status = Path(f"/proc/{replica.process.pid}/status").read_text()
        kib = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB$", status, re.M))
        print(f"{pods} Pods classified again {(at - changed_at).total_seconds():.2f} s after the configuration change "
              f"(its reload interval included); reconciler VmRSS {int(kib['VmRSS']) / 1024:.1f} MiB, "
              f"peak {int(kib['VmHWM']) / 1024:.1f} MiB")
        replica.stop()


if __name__ == "__main__":
    main()
