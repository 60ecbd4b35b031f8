#!/usr/bin/env python3
"""The Lambda's cold start against SSM Parameter Store, emulated by moto on loopback: the function
loads its configuration and token from the parameters, and an invalid configuration parameter
makes its init fail with a line naming the bad field. Then what Terraform and deploy.sh do, with
parameter names pinned to versions (docs/lambda.md): a function pinned to an older configuration
keeps it though a newer one exists, and the next environment, pinned to the newer, serves it; a
token parameter holding two tokens accepts both, and the version that retires the old one refuses
it.

Run by .ci/run, with `moto_server` and `cargo lambda` on PATH (boto3 comes with moto)."""

import base64
import json
import os
import secrets
import signal
import subprocess
import sys

import boto3

from http_support import free_port, post, wait_until_answering

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CONFIG = "labels: {source: ssm}\ndefaultProfiles: []\n"
NEWER_CONFIG = "labels: {source: ssm-v2}\ndefaultProfiles: []\n"







def start_watch(aws, config_parameter, token_parameter):
    """The function in `cargo lambda watch`, with these parameter names; (process, route prefix)."""
    port = free_port()
    env = dict(aws, SIDECAR_INJECTOR_CONFIG_PARAMETER=config_parameter, SIDECAR_INJECTOR_TOKEN_PARAMETER=token_parameter)
    command = ["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--bin", "sidecar-injector-lambda"]
    for key, value in env.items():
        command += ["--env-var", "%s=%s" % (key, value)]
    watch = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = "http://127.0.0.1:%d/lambda-url/sidecar-injector-lambda/mutate/" % port
    wait_until_answering(base + "x" * 32, watch, "cargo lambda watch")
    return watch, base


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def labelled(url):
    """(status, the `source` label the review adds, or None) for the fixture's review at `url`."""
    with open(os.path.join(ROOT, "tests", "fixtures", "pod-create-review.json"), "rb") as f:
        status, body = post(url, f.read())
    if status != 200:
        return status, None
    patch = json.loads(base64.b64decode(json.loads(body)["response"]["patch"]))
    return status, next((op["value"] for op in patch if op["path"] == "/metadata/labels/source"), None)


def main():
    subprocess.run(["cargo", "build", "--quiet", "--bin", "sidecar-injector-lambda"], cwd=ROOT, check=True)
    moto_port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = "http://127.0.0.1:%d" % moto_port
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    token = secrets.token_hex(16)
    results = []
    watch = None
    try:
        wait_until_answering(endpoint + "/moto-api/", moto, "moto_server", seconds=60)
        ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        ssm.put_parameter(Name="/sidecar-injector/config", Value=CONFIG, Type="String")
        ssm.put_parameter(Name="/sidecar-injector/token", Value=token, Type="SecureString")
        ssm.put_parameter(Name="/sidecar-injector/bad-config", Value="labels: {source: [not, a, string]}\n", Type="String")

        # 1. In the emulator, with both parameters: the configuration and the token come from SSM.
        watch, base = start_watch(aws, "/sidecar-injector/config", "/sidecar-injector/token")
        status, source = labelled(base + token)
        results.append(("the configuration and the token are read from SSM", source == "ssm", "status %d, label %s" % (status, source)))
        status, _ = labelled(base + "0" * 32)
        results.append(("another token is refused", status == 404, "status %d" % status))
        stop(watch)

        # 2. Versions, as Terraform and deploy.sh pin them. Config v1 and v2 exist; token v2 holds
        # the new token and the old one, v3 the new one alone.
        ssm.put_parameter(Name="/sidecar-injector/config", Value=NEWER_CONFIG, Type="String", Overwrite=True)
        new = secrets.token_hex(16)
        ssm.put_parameter(Name="/sidecar-injector/token", Value=new + "\n" + token, Type="SecureString", Overwrite=True)
        ssm.put_parameter(Name="/sidecar-injector/token", Value=new, Type="SecureString", Overwrite=True)
        watch, base = start_watch(aws, "/sidecar-injector/config:1", "/sidecar-injector/token:2")
        status, source = labelled(base + new)
        results.append(("pinned to config:1, a cold start keeps it though v2 exists", source == "ssm", "status %d, label %s" % (status, source)))
        statuses = [labelled(base + t)[0] for t in (new, token)]
        results.append(("token:2 (new, old): both tokens are accepted during the overlap", statuses == [200, 200], statuses))
        stop(watch)
        watch, base = start_watch(aws, "/sidecar-injector/config:2", "/sidecar-injector/token:3")
        status, source = labelled(base + new)
        results.append(("the next environment, config:2, serves the newer configuration", source == "ssm-v2", "status %d, label %s" % (status, source)))
        statuses = [labelled(base + t)[0] for t in (new, token)]
        results.append(("token:3 retires the old token: it is refused, the new one accepted", statuses == [200, 404], statuses))
        stop(watch)
        watch = None

        # 3. An invalid configuration parameter: the init fails, naming the field.
        env = dict(os.environ, **aws, SIDECAR_INJECTOR_CONFIG_PARAMETER="/sidecar-injector/bad-config",
                   SIDECAR_INJECTOR_TOKEN_PARAMETER="/sidecar-injector/token")
        run = subprocess.run([os.path.join(TARGET, "debug", "sidecar-injector-lambda")], env=env,
                             capture_output=True, text=True, timeout=60)
        output = run.stdout + run.stderr
        ok = run.returncode != 0 and "cold start failed" in output and "labels.source" in output
        results.append(("an invalid parameter fails the init, naming the field", ok, output.strip()[-400:]))

        # 4. A parameter that does not exist fails the init too.
        env["SIDECAR_INJECTOR_CONFIG_PARAMETER"] = "/sidecar-injector/missing"
        run = subprocess.run([os.path.join(TARGET, "debug", "sidecar-injector-lambda")], env=env,
                             capture_output=True, text=True, timeout=60)
        output = run.stdout + run.stderr
        ok = run.returncode != 0 and "/sidecar-injector/missing" in output
        results.append(("a missing parameter fails the init", ok, output.strip()[-400:]))
    finally:
        for process in [watch, moto]:
            if process is not None and process.poll() is None:
                stop(process)

    for name, ok, detail in results:
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": %s" % (detail,)))
    failed = sum(1 for _, ok, _ in results if not ok)
    print("lambda ssm: %d passed, %d failed" % (len(results) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
