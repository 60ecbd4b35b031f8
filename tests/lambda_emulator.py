#!/usr/bin/env python3
"""The Lambda, end to end in `cargo lambda watch` (a real Lambda runtime emulator that turns plain
HTTP requests into Function URL events): for every review of the engine's test table and a few
more, the function's response body must be byte for byte what `sidecar-injector review` prints
with the same configuration (the built-in example profile, and a log shipper with parameters
chosen by a selector). That is the proof that the handler was written once.

It also reports what a request with a wrong token costs against a real review, each timed the same
way through the emulator: a figure for docs/lambda.md ("Concurrency"), not a check.

Run by .ci/run, with `cargo lambda` on PATH. Uses only the standard library."""

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import urllib.error
import urllib.request

from http_support import free_port, insecure_tls, post, wait_until_answering

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def review_of(pod, namespace="shop", **changes):
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "9a1f6c2e-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": pod,
            "dryRun": False,
        },
    }
    for key, value in changes.items():
        if key == "apiVersion":
            review["apiVersion"] = value
        else:
            review["request"][key] = value
    return review


# The configuration both are given (JSON is YAML): a default profile as the built-in one has, and a
# profile with parameters, built-ins and shared mounts, chosen by a label.
CONFIG = {
    "labels": {"foo": "bar"},
    "defaultProfiles": ["example"],
    "profiles": {
        "example": {"containers": [{"name": "example-sidecar", "image": "busybox:1.37"}]},
        "shipper": {
            "selector": {"matchLabels": {"logs.example.com/ship": "true"}},
            "parameters": {"path": {"default": "/var/log/app", "annotation": "logs.example.com/path",
                                    "pattern": "/var/log/[a-z0-9._/-]+"}},
            "shareVolumeMounts": {"readOnly": True},
            "sidecars": [{"name": "shipper", "image": "fluent-bit:4.0",
                          "args": ["-p", "path=%{path}/*.log"],
                          "env": [{"name": "NS", "value": "%{pod.namespace}"},
                                  {"name": "APP", "value": "%{pod.appContainer}"}]}],
        },
    },
}


def shipped(pod, path=None):
    """`pod`, labelled for the shipper, with its log path annotation when given."""
    pod = json.loads(json.dumps(pod))
    metadata = pod.setdefault("metadata", {})
    metadata.setdefault("labels", {})["logs.example.com/ship"] = "true"
    if path is not None:
        metadata.setdefault("annotations", {})["logs.example.com/path"] = path
    return pod


def reviews():
    """(name, body bytes) for every case."""
    with open(os.path.join(FIXTURES, "pods.json")) as f:
        pods = json.load(f)
    cases = [(name, review_of(pod)) for name, pod in pods.items()]
    typical = pods["a typical Pod"]
    cases += [
        ("v1beta1", review_of(typical, apiVersion="admission.k8s.io/v1beta1")),
        ("dryRun", review_of(typical, dryRun=True)),
        ("UPDATE", review_of(typical, operation="UPDATE", oldObject=typical)),
        ("subresource", review_of(typical, subResource="ephemeralcontainers")),
        ("a skipped namespace", review_of(typical, namespace="kube-system")),
        ("opted out", review_of({"metadata": {"annotations": {"sidecar-injector.io/inject": "false"}}, "spec": typical["spec"]})),
        ("denied: name clash", review_of({"spec": {"containers": [{"name": "example-sidecar", "image": "x"}]}})),
        ("denied: unknown profile", review_of({"metadata": {"annotations": {"sidecar-injector.io/inject": "nope"}}, "spec": typical["spec"]})),
        ("parameters: from the annotation", review_of(shipped(typical, "/var/log/web"))),
        ("parameters: the default", review_of(shipped(typical))),
        ("parameters: a value failing the pattern", review_of(shipped(typical, "/etc"))),
    ]
    bodies = [(name, json.dumps(review).encode()) for name, review in cases]
    for fixture in ["admission.k8s.io.v1.AdmissionReview.json", "pod-create-review.json"]:
        with open(os.path.join(FIXTURES, fixture), "rb") as f:
            bodies.append((fixture, f.read()))
    return bodies





def exchange(url, body, content_type, method, context=None):
    """(status, Allow header, body) of one request, for comparing two servers' answers."""
    request = urllib.request.Request(url, data=body if method in ("POST", "PUT") else None, method=method)
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, response.headers.get("Allow"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Allow"), error.read()


def report_wrong_token_cost(base, token, requests=300):
    """Median round trip through the emulator of a wrong-token request and of a review, alternated
    so that both see the same machine."""
    with open(os.path.join(FIXTURES, "pod-create-review.json"), "rb") as f:
        review = f.read()
    wrong, right = [], []
    for _ in range(requests):
        for url, times in ((base + "/mutate/" + "0" * len(token), wrong), (base + "/mutate/" + token, right)):
            started = time.perf_counter()
            post(url, review)
            times.append(time.perf_counter() - started)
    w, r = statistics.median(wrong) * 1000, statistics.median(right) * 1000
    print("cost of a wrong token: median %.2f ms a request, a review %.2f ms (%.2f of a review), "
          "%d each through cargo lambda watch" % (w, r, w / r, requests))


def main():
    subprocess.run(["cargo", "build", "--quiet", "--bin", "sidecar-injector", "--bin", "sidecar-injector-lambda"], cwd=ROOT, check=True)
    cli = os.path.join(TARGET, "debug", "sidecar-injector")
    token = secrets.token_hex(16)
    port = free_port()
    config = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(CONFIG, config)
    config.close()
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--bin", "sidecar-injector-lambda",
         "--env-var", "SIDECAR_INJECTOR_TOKEN=" + token, "--env-var", "SIDECAR_INJECTOR_CONFIG_FILE=" + config.name],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    base = "http://127.0.0.1:%d/lambda-url/sidecar-injector-lambda" % port
    passed, failed = 0, []
    try:
        # Ready once the emulator answers at all (it builds the function on start).
        wait_until_answering(base + "/mutate/" + token, watch, "cargo lambda watch")

        with tempfile.TemporaryDirectory() as tmp:
            for name, body in reviews():
                path = os.path.join(tmp, "review.json")
                with open(path, "wb") as f:
                    f.write(body)
                expected = subprocess.run([cli, "review", "-c", config.name, path], capture_output=True, check=True).stdout
                status, got = post(base + "/mutate/" + token, body)
                # The parameter cases must be what they say: two injected, one denied.
                allowed = json.loads(expected)["response"]["allowed"] if name.startswith("parameters") else None
                if allowed is not None and allowed != ("failing" not in name):
                    failed.append("%s: allowed is %s" % (name, allowed))
                elif status == 200 and got + b"\n" == expected:
                    passed += 1
                else:
                    failed.append("%s: status %d, %d bytes, expected %d bytes" % (name, status, len(got), len(expected) - 1))

        checks = [
            ("a wrong token answers 404", post(base + "/mutate/" + token[:-1] + "x", b"{not json")[0], 404),
            ("no token answers 404", post(base + "/mutate/", b"{}")[0], 404),
            ("a malformed body with the right token answers 400", post(base + "/mutate/" + token, b"{not json")[0], 400),
            ("GET answers 405", post(base + "/mutate/" + token, b"", method="GET")[0], 405),
            ("text/plain answers 415", post(base + "/mutate/" + token, b"{}", content_type="text/plain")[0], 415),
        ]
        for name, status, expected in checks:
            if status == expected:
                passed += 1
            else:
                failed.append("%s: got %d" % (name, status))

        report_wrong_token_cost(base, token)

        # One HTTP edge: the server answers what is not a review exactly as the Lambda does.
        with tempfile.TemporaryDirectory() as tmp:
            server_port, metrics_port = free_port(), free_port()
            server = subprocess.Popen(
                [cli, "serve", "--listen", "127.0.0.1:%d" % server_port, "--metrics-listen", "127.0.0.1:%d" % metrics_port,
                 "--ca-out", os.path.join(tmp, "ca.pem")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                served = "https://127.0.0.1:%d/mutate" % server_port
                wait_until_answering(served, server, "sidecar-injector serve", context=insecure_tls())
                oversized = b"{" + b" " * (3 * 1024 * 1024) + b"}"
                for name, body, content_type, method in [
                    ("an oversized body", oversized, "application/json", "POST"),
                    ("an oversized text/plain body", oversized, "text/plain", "POST"),
                    ("a text/plain body", b"{}", "text/plain", "POST"),
                    ("GET", b"", "application/json", "GET"),
                    ("PUT", b"{}", "application/json", "PUT"),
                    ("a malformed body", b"{not json", "application/json", "POST"),
                ]:
                    lambda_answer = exchange(base + "/mutate/" + token, body, content_type, method)
                    server_answer = exchange(served, body, content_type, method, insecure_tls())
                    if lambda_answer == server_answer:
                        passed += 1
                    else:
                        failed.append("%s: the Lambda answered %r, the server %r" % (name, lambda_answer, server_answer))
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait(timeout=30)
        os.unlink(config.name)

    for failure in failed:
        print("FAIL " + failure)
    print("lambda emulator: %d passed, %d failed" % (passed, len(failed)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
