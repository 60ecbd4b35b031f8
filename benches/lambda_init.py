#!/usr/bin/env python3
"""The Lambda's init time: from the process's start to its first request for an event.

The function is started as Lambda starts it, with AWS_LAMBDA_RUNTIME_API pointing at a stand-in
Runtime API on loopback; its first `GET /2018-06-01/runtime/invocation/next` is the moment it is
ready for the first event (the configuration and token loaded, logging up). Each run is a fresh
process; the median and the fastest of the runs are printed per binary, so that two binaries
(before and after a change) are compared in one run on the same machine:

    python3 benches/lambda_init.py --runs 30 before=OLD/bootstrap after=NEW/bootstrap
    # the same, the configuration and the token read from SSM (moto_server on loopback):
    PATH=VENV_AWS/bin:$PATH VENV_AWS/bin/python benches/lambda_init.py --ssm before=... after=...
"""

import argparse
import http.server
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from http_support import free_port, wait_until_answering  # noqa: E402

NEXT = "/2018-06-01/runtime/invocation/next"


class RuntimeApi(http.server.ThreadingHTTPServer):
    """Notes when the function first asks for an event, and then keeps it waiting."""

    def __init__(self):
        self.asked = threading.Event()
        self.asked_at = None
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == NEXT and not self.server.asked.is_set():
            self.server.asked_at = time.perf_counter()
            self.server.asked.set()
        time.sleep(30)  # no event: the run is over, the process is killed

    def log_message(self, *args):
        pass


def one_run(binary, env):
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server_address[1]}")
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        if not api.asked.wait(30):
            raise SystemExit(f"{binary} never asked for an event (exit {process.poll()})")
        return (api.asked_at - started) * 1000
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        api.shutdown()


def ssm_environment():
    """moto_server on loopback with the two parameters; the environment that reads them."""
    import boto3

    port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    wait_until_answering(endpoint + "/moto-api/", moto, "moto_server", seconds=60)
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ssm.put_parameter(Name="/bench/config", Value="labels: {foo: bar}\n", Type="String")
    ssm.put_parameter(Name="/bench/token", Value=secrets.token_hex(16), Type="SecureString")
    return moto, dict(aws, SIDECAR_INJECTOR_CONFIG_PARAMETER="/bench/config",
                      SIDECAR_INJECTOR_TOKEN_PARAMETER="/bench/token")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+", help="NAME=PATH of a bootstrap binary")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--ssm", action="store_true", help="read the configuration and token from SSM (moto)")
    args = parser.parse_args()
    env = {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_NAME": "sidecar-injector",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_LAMBDA_LOG_GROUP_NAME": "bench"}
    moto = None
    if args.ssm:
        moto, ssm_env = ssm_environment()
        env.update(ssm_env)
    else:
        env["SIDECAR_INJECTOR_TOKEN"] = secrets.token_hex(16)
    try:
        times = {name: [] for name, _ in (b.split("=", 1) for b in args.binaries)}
        for _ in range(args.runs):
            # In turn, so that the machine's drift touches every binary alike.
            for name, path in (b.split("=", 1) for b in args.binaries):
                times[name].append(one_run(path, env))
    finally:
        if moto:
            os.killpg(moto.pid, signal.SIGTERM)
    source = "SSM (moto on loopback)" if args.ssm else "the environment"
    print(f"Init, process start to the first request for an event, configuration and token from {source}, "
          f"{args.runs} runs each:")
    for name, values in times.items():
        size = os.path.getsize(dict(b.split("=", 1) for b in args.binaries)[name])
        print(f"- {name}: median {statistics.median(values):.1f} ms, fastest {min(values):.1f} ms "
              f"(binary {size:,} bytes)")


if __name__ == "__main__":
    main()
