#!/usr/bin/env python3
"""Pods per second and reviews per Pod through the real API server: bursts of Pod creations with
the webhook and without, under the registration as it was (reinvocationPolicy: IfNeeded, no
matchConditions) and as it is (Never, the generated matchConditions), in one run. Inside the
control-plane launcher (docs/testing.md):

    $SIDECAR_INJECTOR_KUBE_CLUSTER run -- python3 benches/burst.py --server-bin BINARY

deploy-incluster/ is created and one replica started as tests/e2e_cluster.py starts them. Each
burst creates --pods bare Pods from --clients threads, each over its own keep-alive connection to
the API server with the admin credentials; reviews are the replica's own count. Figures go to
BENCHMARKS.md ("Calls the API server makes").
"""
import argparse
import base64
import http.client
import json
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import e2e_cluster as e2e  # noqa: E402


def admin_tls(folder):
    """A TLS context with the kubeconfig's client certificate and the cluster's CA."""
    view = json.loads(subprocess.run(["kubectl", "config", "view", "--raw", "-o", "json"],
                                     capture_output=True, text=True, check=True).stdout)
    user = view["users"][0]["user"]
    cert, key = folder / "admin.crt", folder / "admin.key"
    for field, path in (("client-certificate", cert), ("client-key", key)):
        if f"{field}-data" in user:
            path.write_bytes(base64.b64decode(user[f"{field}-data"]))
        else:
            path.write_bytes(Path(user[field]).read_bytes())
    context = ssl.create_default_context(cafile=e2e.os.environ["KUBE_CA"])
    context.load_cert_chain(cert, key)
    return context


def burst(tls, namespace, name, count, clients, make):
    """`count` Pods created in `namespace` by `clients` threads: (Pods per second, p50 ms, failures)."""
    host = e2e.os.environ["KUBE_API"].removeprefix("https://")
    latencies, failures, lock = [], [], threading.Lock()
    per_client = [list(range(i, count, clients)) for i in range(clients)]

    def client(indexes):
        connection = http.client.HTTPSConnection(host, context=tls)
        for i in indexes:
            body = json.dumps(make(f"{name}-{i}"))
            started = time.monotonic()
            connection.request("POST", f"/api/v1/namespaces/{namespace}/pods", body,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            with lock:
                latencies.append(time.monotonic() - started)
                if response.status != 201:
                    failures.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client, args=(indexes,)) for indexes in per_client]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return count / elapsed, statistics.median(latencies) * 1000, failures


def bare(name, labels=None):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}


def registration(binary, work, config_text, before):
    """The webhook as it was (`before`) or as `webhook-config` makes it, keeping the caBundle."""
    path = work / "burst-config.yaml"
    path.write_text(config_text)
    generated = json.loads(subprocess.run([binary, "webhook-config", "-c", str(path), "-o", "json"],
                                          capture_output=True, text=True, check=True).stdout)["webhooks"][0]
    ops = [{"op": "replace", "path": "/webhooks/0/reinvocationPolicy", "value": "IfNeeded" if before else "Never"},
           {"op": "add", "path": "/webhooks/0/matchConditions", "value": [] if before else generated["matchConditions"]}]
    e2e.kubectl("patch", "mutatingwebhookconfiguration", e2e.CONFIGURATION, "--type=json", "-p", json.dumps(ops))


def until(what, predicate, seconds=30):
    if not e2e.wait_for(what, predicate, seconds):
        sys.exit(f"not reached: {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True, help="the sidecar-injector binary")
    parser.add_argument("--pods", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with e2e.inside_the_cluster(args.server_bin) as (work, binary):
        deployed = e2e.Deployed(binary, work)
        replica = deployed.replica().start()
        if not replica.ready():
            sys.exit(f"the replica did not become ready:\n{replica.log.read_text()}")
        until("the caBundle", e2e.ca_bundle)
        off, on = e2e.namespace("burst-off", labelled=False), e2e.namespace("burst-on", labelled=True)
        tls = admin_tls(work)
        builtin = e2e.get("configmap", e2e.SERVICE, "-n", e2e.NAMESPACE)["data"]["config.yaml"]
        example = (e2e.DEPLOY / "examples" / "profiles.yaml").read_text()
        rows = []

        def reviews():
            return replica.metric("sidecar_injector_reviews_total")

        def measure(label, namespace, make, round_name):
            burst(tls, namespace, f"warm-{round_name}", args.clients, args.clients, make)
            before = reviews()
            rate, p50, failures = burst(tls, namespace, round_name, args.pods, args.clients, make)
            if failures:
                sys.exit(f"{label}: {len(failures)} Pods refused: {failures[:5]}")
            rows.append((label, rate, p50, (reviews() - before) / args.pods))

        measure("namespace not selected", off, bare, "off")
        # Each registration is in force once the API server's own behaviour shows it: a Pod
        # labelled for no profile is sent (as it was) or not (as it is).
        registration(binary, work, builtin, before=True)
        probes = iter(range(10**6))

        def sent():
            """Whether a Pod opted out by annotation reaches the webhook: yes as it was, no as it is."""
            count = reviews()
            e2e.create_pod(on, e2e.pod(f"probe-{next(probes)}", annotations={e2e.INJECT: "false"}))
            return reviews() > count

        until("the registration as it was", sent)
        measure("selected, injected: as it was (IfNeeded, no matchConditions)", on, bare, "before")
        registration(binary, work, builtin, before=False)
        until("the registration as it is", lambda: not sent())
        measure("selected, injected: as it is (Never, matchConditions)", on, bare, "after")
        e2e.check(abs(rows[-1][3] - 1) < 0.01, f"one review per injected Pod: {rows[-1][3]:.2f}")

        deployed.change_configuration(lambda _: example)
        until("the example configuration's conditions", lambda: any(
            c["name"] == "requested" for c in e2e.live_conditions()), 30)
        measure("selected namespace, no profile selects the Pod (example configuration)", on, bare, "unselected")
        e2e.check(rows[-1][3] == 0, f"a burst of Pods no profile selects costs no reviews: {rows[-1][3]:.2f} per Pod")
        replica.stop()

    baseline = rows[0][1]
    print(f"\n{args.pods} Pods a burst, {args.clients} clients, one replica")
    print("| burst | Pods/s | against no webhook | p50 ms | reviews per Pod |")
    print("|---|---:|---:|---:|---:|")
    for label, rate, p50, per_pod in rows:
        print(f"| {label} | {rate:.0f} | {rate / baseline:.2f} | {p50:.0f} | {per_pod:.2f} |")
    e2e.finish()


if __name__ == "__main__":
    main()
