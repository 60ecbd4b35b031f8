#!/usr/bin/env python3
"""The Lambda's cold start against SSM Parameter Store, emulated by moto on loopback: the function
loads its configuration and token from the parameters, and an invalid configuration parameter
makes its init fail with a line naming the bad field.

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
        port = free_port()
        env = dict(aws, SIDECAR_INJECTOR_CONFIG_PARAMETER="/sidecar-injector/config",
                   SIDECAR_INJECTOR_TOKEN_PARAMETER="/sidecar-injector/token")
        command = ["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--bin", "sidecar-injector-lambda"]
        for key, value in env.items():
            command += ["--env-var", "%s=%s" % (key, value)]
        watch = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        base = "http://127.0.0.1:%d/lambda-url/sidecar-injector-lambda/mutate/" % port
        wait_until_answering(base + "x" * 32, watch, "cargo lambda watch")
        with open(os.path.join(ROOT, "tests", "fixtures", "pod-create-review.json"), "rb") as f:
            review = f.read()
        status, body = post(base + token, review)
        patch = json.loads(base64.b64decode(json.loads(body)["response"]["patch"])) if status == 200 else []
        ok = {"op": "add", "path": "/metadata/labels/source", "value": "ssm"} in patch
        results.append(("the configuration and the token are read from SSM", ok, "status %d, patch %s" % (status, patch)))
        status, _ = post(base + "0" * 32, review)
        results.append(("another token is refused", status == 404, "status %d" % status))

        # 2. An invalid configuration parameter: the init fails, naming the field.
        env = dict(os.environ, **aws, SIDECAR_INJECTOR_CONFIG_PARAMETER="/sidecar-injector/bad-config",
                   SIDECAR_INJECTOR_TOKEN_PARAMETER="/sidecar-injector/token")
        run = subprocess.run([os.path.join(TARGET, "debug", "sidecar-injector-lambda")], env=env,
                             capture_output=True, text=True, timeout=60)
        output = run.stdout + run.stderr
        ok = run.returncode != 0 and "cold start failed" in output and "labels.source" in output
        results.append(("an invalid parameter fails the init, naming the field", ok, output.strip()[-400:]))

        # 3. A parameter that does not exist fails the init too.
        env["SIDECAR_INJECTOR_CONFIG_PARAMETER"] = "/sidecar-injector/missing"
        run = subprocess.run([os.path.join(TARGET, "debug", "sidecar-injector-lambda")], env=env,
                             capture_output=True, text=True, timeout=60)
        output = run.stdout + run.stderr
        ok = run.returncode != 0 and "/sidecar-injector/missing" in output
        results.append(("a missing parameter fails the init", ok, output.strip()[-400:]))
    finally:
        for process in [watch, moto]:
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)

    for name, ok, detail in results:
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    failed = sum(1 for _, ok, _ in results if not ok)
    print("lambda ssm: %d passed, %d failed" % (len(results) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
