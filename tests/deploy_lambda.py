#!/usr/bin/env python3
"""deploy-lambda/deploy.sh against moto's server mode (Lambda, IAM, STS, SSM and CloudWatch Logs on
loopback), with a fault-injecting proxy in front of it, and a kubectl that records what it is given.
One PASS line per case:

- a first run creates everything as docs/lambda.md says; a second, with other settings and another
  configuration, updates every one of them and adds no duplicate permission;
- --rotate-token leaves one new token, after a version that held the new and the old;
- a failing add-permission, an SSM throttle, a missing region and an in-cluster registration each
  stop the script with a message naming the cause, and a throttle never replaces the token;
- no token appears in any process's argv: /proc/*/cmdline is sampled during every run.

Where moto differs from AWS: it does not refuse a repeated statement id with ResourceConflictException
(deploy.sh reads the policy first, so a duplicate would show here); it ignores UpdateFunctionCode's
Architectures (the request is read instead); it does not run the zip.

    PATH=$VENV_AWS/bin:$PATH $VENV_AWS/bin/python tests/deploy_lambda.py

Needs `moto_server` and the aws CLI on PATH (.ci/run installs both in a venv of their own)."""

import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import boto3

from http_support import free_port, wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DEPLOY = ROOT / "deploy-lambda" / "deploy.sh"
results = []


def check(ok, what, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else f": {detail}"), flush=True)


# --- moto, behind a proxy that can fail one operation ---------------------------------------------

FAULTS = {}  # operation name -> (status, AWS error code, message)
REQUESTS = []  # (operation name, body) of every request, for what moto accepts and ignores


def operation(handler):
    """The AWS operation of a request: from X-Amz-Target (JSON protocols) or Lambda's REST path."""
    target = handler.headers.get("X-Amz-Target", "")
    if target:
        return target.split(".")[-1]
    if handler.command == "POST" and handler.path.rstrip("/").endswith("/policy"):
        return "AddPermission"
    if handler.command == "PUT" and handler.path.rstrip("/").endswith("/code"):
        return "UpdateFunctionCode"
    return handler.command + " " + handler.path


class Proxy(http.server.BaseHTTPRequestHandler):
    moto_port = 0

    def log_message(self, *args):
        pass

    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        REQUESTS.append((operation(self), body))
        fault = FAULTS.get(operation(self))
        if fault:
            status, code, message = fault
            payload = json.dumps({"__type": code, "message": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("x-amzn-ErrorType", code)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = handle_one


# --- argv, sampled --------------------------------------------------------------------------------

class ArgvSampler(threading.Thread):
    """Every command line seen in /proc while it runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen, self.running = set(), True

    def run(self):
        while self.running:
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        self.seen.add(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "))
                    except OSError:
                        pass

    def stop(self):
        self.running = False
        self.join()
        return self.seen


# --- the script, run ------------------------------------------------------------------------------

def fake_kubectl(bin_dir, log_dir):
    """A kubectl that appends what `apply -f -` reads to log_dir/applied-N.yaml, and answers `get`
    with log_dir/existing (empty: no such object)."""
    script = bin_dir / "kubectl"
    script.write_text(f"""#!/usr/bin/env bash
case "$1" in
  apply) n=$(ls {log_dir} | grep -c '^applied-' || true); cat > {log_dir}/applied-$n.yaml ;;
  get) if [ -s {log_dir}/existing ]; then cat {log_dir}/existing; else echo 'NotFound' >&2; exit 1; fi ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac
""")
    script.chmod(0o755)


def deploy(env, *args):
    """(exit status, stdout + stderr, argv seen meanwhile) of one run."""
    sampler = ArgvSampler()
    sampler.start()
    run = subprocess.run(["bash", str(DEPLOY), *args], env=env, capture_output=True, text=True, timeout=300)
    return run.returncode, run.stdout + run.stderr, sampler.stop()


def applied(log_dir):
    """The registrations kubectl was given, oldest first."""
    import yaml
    files = sorted(log_dir.glob("applied-*.yaml"), key=lambda p: int(p.stem.split("-")[1]))
    return [yaml.safe_load(p.read_text()) for p in files]


def main():
    subprocess.run(["cargo", "build", "--quiet", "--bin", "sidecar-injector"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp())
    moto_port, proxy_port = free_port(), free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    Proxy.moto_port = moto_port
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", proxy_port), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_until_answering(f"http://127.0.0.1:{moto_port}/moto-api/", moto, "moto_server", seconds=60)
        run_cases(work, endpoint)
    finally:
        proxy.shutdown()
        moto.terminate()
        moto.wait(timeout=30)
    failed = results.count(False)
    print(f"deploy.sh against moto: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def environment(work, endpoint, **extra):
    bin_dir, log_dir = work / "bin", work / "kubectl"
    bin_dir.mkdir(exist_ok=True)
    log_dir.mkdir(exist_ok=True)
    fake_kubectl(bin_dir, log_dir)
    zip_path = work / "bootstrap.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    home = work / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home), "AWS_ENDPOINT_URL": endpoint,
           "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_MAX_ATTEMPTS": "2", "ZIP": str(zip_path),
           "SIDECAR_INJECTOR": str(TARGET / "debug" / "sidecar-injector"), "OVERLAP_SECONDS": "0"}
    env.update(extra)
    return env, log_dir


def run_cases(work, endpoint):
    aws = dict(endpoint_url=endpoint, region_name="eu-west-3", aws_access_key_id="testing",
               aws_secret_access_key="testing")
    ssm, lam, iam = boto3.client("ssm", **aws), boto3.client("lambda", **aws), boto3.client("iam", **aws)
    config = work / "config.yaml"
    config.write_text("labels: {foo: bar}\ndefaultProfiles: []\ninjectByDefault: false\n"
                      "profiles:\n  logs:\n    selector: {matchLabels: {ship: logs}}\n"
                      "    containers: [{name: shipper, image: fluent-bit:4.0}]\n")
    env, log_dir = environment(work, endpoint)
    every_argv = set()

    def tier():
        found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": ["/sidecar-injector/config"]}])
        return found["Parameters"][0]["Tier"]

    def tokens(name="sidecar-injector"):
        value = ssm.get_parameter(Name=f"/{name}/token", WithDecryption=True)["Parameter"]["Value"]
        return [t for t in value.splitlines() if t]

    # 1: the first run.
    status, output, argv = deploy(env, str(config))
    every_argv |= argv
    function = lam.get_function_configuration(FunctionName="sidecar-injector") if status == 0 else {}
    variables = function.get("Environment", {}).get("Variables", {})
    token = tokens()[0] if status == 0 else ""
    config_version = ssm.get_parameter(Name="/sidecar-injector/config")["Parameter"]["Version"] if status == 0 else 0
    check(status == 0 and "done:" in output, "a first run succeeds", output[-1500:])
    check(function.get("MemorySize") == 256 and function.get("Timeout") == 4 and function.get("Runtime") == "provided.al2023"
          and function.get("Architectures") == ["x86_64"]
          and variables == {"SIDECAR_INJECTOR_CONFIG_PARAMETER": f"/sidecar-injector/config:{config_version}",
                            "SIDECAR_INJECTOR_TOKEN_PARAMETER": "/sidecar-injector/token:1"},
          "the function has its settings, and its environment pins each parameter's version", function)
    stored = ssm.get_parameter(Name="/sidecar-injector/config")["Parameter"] if status == 0 else {}
    check(len(token) == 40 and stored.get("Value") == config.read_text() and status == 0 and tier() == "Standard",
          "the token is new and 40 characters; the configuration parameter is the file, in the Standard tier", stored)
    policy = iam.get_role_policy(RoleName="sidecar-injector", PolicyName="sidecar-injector")["PolicyDocument"]
    resources = json.dumps(policy)
    check("arn:aws:ssm:eu-west-3:123456789012:parameter/sidecar-injector/token" in resources
          and "arn:aws:logs:eu-west-3:" in resources and "us-east-1" not in resources,
          "the role's policy names the CLI's region (AWS_REGION) and the caller's partition", resources)
    statements = json.loads(lam.get_policy(FunctionName="sidecar-injector")["Policy"])["Statement"]
    check(sorted(s["Sid"] for s in statements) == ["FunctionUrlInvoke", "FunctionUrlPublic"],
          "the Function URL has both permissions", statements)
    registrations = applied(log_dir)
    url = lam.get_function_url_config(FunctionName="sidecar-injector")["FunctionUrl"]
    webhook = registrations[-1]["webhooks"][0] if registrations else {}
    conditions = [c["name"] for c in webhook.get("matchConditions", [])]
    check(webhook.get("clientConfig", {}).get("url") == url.rstrip("/") + "/mutate/" + token and "requested" in conditions,
          "kubectl is given the registration with the token in its url and the configuration's matchConditions",
          (webhook.get("clientConfig"), conditions))
    reserved = lam.get_function_concurrency(FunctionName="sidecar-injector").get("ReservedConcurrentExecutions")
    check(reserved is None, "no concurrency is reserved unless asked (a new account cannot reserve any)", reserved)

    # 2: a second run with other settings and another configuration.
    config.write_text(config.read_text().replace("foo: bar", "foo: baz"))
    second, log_dir = environment(work, endpoint, MEMORY="512", TIMEOUT="8", RESERVED_CONCURRENCY="5", ARCH="arm64")
    REQUESTS.clear()
    status, output, argv = deploy(second, str(config))
    every_argv |= argv
    function = lam.get_function_configuration(FunctionName="sidecar-injector")
    variables = function.get("Environment", {}).get("Variables", {})
    # moto ignores UpdateFunctionCode's Architectures: what was asked for is read from the request.
    code = [json.loads(body) for op, body in REQUESTS if op == "UpdateFunctionCode"]
    check(status == 0 and function["MemorySize"] == 512 and function["Timeout"] == 7
          and [c.get("Architectures") for c in code] == [["arm64"]]
          and variables["SIDECAR_INJECTOR_CONFIG_PARAMETER"] == f"/sidecar-injector/config:{config_version + 1}"
          and lam.get_function_concurrency(FunctionName="sidecar-injector").get("ReservedConcurrentExecutions") == 5,
          "a second run updates every setting: memory, timeout, architecture, reserved concurrency, and the "
          "configuration's version in the environment", (status, output[-800:], function))
    statements = json.loads(lam.get_policy(FunctionName="sidecar-injector")["Policy"])["Statement"]
    check(tokens() == [token] and len(statements) == 2,
          "the second run keeps the token and adds no permission twice", (len(statements)))

    # The tier: Standard for a small configuration, Advanced over 4 KB, and Advanced kept after.
    tiers = []
    for text in [config.read_text() + "# " + "x" * 4100 + "\n", config.read_text()]:
        sized = work / "sized.yaml"
        sized.write_text(text)
        status, output, argv = deploy(second, str(sized))
        every_argv |= argv
        tiers.append((status, tier(), "billed" in output))
    check(tiers == [(0, "Advanced", True), (0, "Advanced", True)],
          "a configuration over 4 KB moves the parameter to the billed Advanced tier, saying so, and it stays there "
          "(SSM cannot move it back)", tiers)

    # 3: a rotation.
    status, output, argv = deploy(env, "--rotate-token", str(config))
    every_argv |= argv
    history = [p["Value"].split("\n") for p in ssm.get_parameter_history(Name="/sidecar-injector/token",
                                                                         WithDecryption=True)["Parameters"]]
    new = tokens()
    url_now = applied(log_dir)[-1]["webhooks"][0]["clientConfig"]["url"] if status == 0 else ""
    variables = lam.get_function_configuration(FunctionName="sidecar-injector")["Environment"]["Variables"]
    check(status == 0 and len(new) == 1 and new[0] != token and [new[0], token] in history
          and url_now.endswith("/mutate/" + new[0])
          and variables["SIDECAR_INJECTOR_TOKEN_PARAMETER"] == f"/sidecar-injector/token:{len(history)}",
          "--rotate-token: a version holding the new and the old token, the new one in the webhook, then the "
          "new one alone, pinned in the environment", (status, output[-800:], history, variables))
    wrong = [line for line in every_argv if any(t.encode() in line for t in [token, new[0]])]
    saw_aws = any(b"put-parameter" in line for line in every_argv)
    check(saw_aws and not wrong, "no token in any process's argv, over every run so far "
          f"({len(every_argv)} command lines sampled, the aws CLI's among them)", wrong[:2])

    # 4: failures, each on its own.
    failures = [
        ("a failing add-permission", "failing", {}, ("AddPermission", (400, "InvalidParameterValueException", "InvokedViaFunctionUrl is not supported")),
         ["aws lambda add-permission failed", "InvokedViaFunctionUrl is not supported"]),
        ("an SSM throttle", "sidecar-injector", {}, ("GetParameter", (400, "ThrottlingException", "Rate exceeded")),
         ["aws ssm get-parameter failed", "Rate exceeded"]),
        ("a missing region", "sidecar-injector", {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, None,
         ["no AWS region"]),
    ]
    for what, name, extra, fault, said in failures:
        env_case, _ = environment(work, endpoint, NAME=name, **extra)
        for key in [k for k, v in extra.items() if v == ""]:
            del env_case[key]
        before = tokens()
        FAULTS.clear()
        if fault:
            FAULTS[fault[0]] = fault[1]
        status, output, _ = deploy(env_case, str(config))
        FAULTS.clear()
        check(status != 0 and all(s in output for s in said) and "done:" not in output and tokens() == before,
              f"{what} stops the script with a message naming it, and the token is unchanged",
              (status, output[-1200:]))

    (log_dir / "existing").write_text("sidecar-injectorLS0tLS1CRUdJTi==")
    status, output, _ = deploy(env, str(config))
    (log_dir / "existing").unlink()
    check(status != 0 and "is the in-cluster injector's" in output,
          "an in-cluster registration of the same name (Service and caBundle) is never applied over", output[-600:])


if __name__ == "__main__":
    main()
