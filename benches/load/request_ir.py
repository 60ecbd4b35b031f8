#!/usr/bin/env python3
"""Instructions per request: sidecar-injector and the null server, each under valgrind's callgrind,
answering the load benchmark's review over one keep-alive TLS connection.

Throughput and CPU time on this VM move by tens of percent between runs (BENCHMARKS.md); an
instruction count does not, so a change to the request path of a percent can be judged. It counts
every thread of the server (the runtime, the log writer, timers) from after a warm-up until after
the last answer, and divides by the requests; the difference between the two servers is what our
code adds to each request, the review included. It counts user space only: the kernel's share (most
of the null server's CPU per request, load.sh shows) and what cache misses under 64 connections
cost are load.sh's to show.

    python3 benches/load/request_ir.py --server-bin IMAGE_BINARY --null-bin NULL_SERVER [--requests N]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from http_support import free_port, insecure_tls, make_certificate, wait_until_answering  # noqa: E402
# The servers as the load benchmark starts them, and its review.
from run import REVIEW, servers  # noqa: E402


def h2load(url, protocol, requests):
    command = ["h2load", *(["--h1"] if protocol == "HTTP/1.1" else []), "-c", "1", "-m", "1", "-n", str(requests),
               "-d", REVIEW, "-H", "content-type: application/json", url]
    out = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not done or int(done.group(2)) != requests:
        raise SystemExit(f"h2load did not get {requests} answers:\n{out}")


def counted(folder, name, command, env, protocol, requests):
    """Instructions per request of the server `command` (taking its port) runs with `env`."""
    port = free_port()
    out = folder / f"{name}.out"
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        url = f"https://127.0.0.1:{port}"
        wait_until_answering(url + "/healthz", server, name, seconds=120, context=insecure_tls())
        # Lazy statics, the TLS session and the allocator's pages, outside the count.
        h2load(url + "/mutate", protocol, 50)
        subprocess.run(["callgrind_control", "--zero", str(server.pid)], check=True, capture_output=True)
        h2load(url + "/mutate", protocol, requests)
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], check=True, capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    # The dump asked for is the first numbered one; the one at exit is not read.
    dump = folder / f"{name}.out.1"
    total = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(errors="replace"), re.M)
    return int(total.group(1)) / requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--null-bin", required=True)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sidecar-injector-request-ir-"))
    cert, key = make_certificate(folder)
    compared = [server for server in servers(args, cert, key) if server[0] in ("sidecar-injector", "null server")]
    print(f"Instructions per request, {args.requests} requests over one connection after 50 more, every thread:")
    print()
    print("| protocol | sidecar-injector | null server | added by our code |")
    print("|---|---:|---:|---:|")
    try:
        for protocol in ["HTTP/1.1", "HTTP/2"]:
            ours, null = (counted(folder, f"{name.split()[0]}-{protocol[-1]}", command, env, protocol, args.requests)
                          for name, command, env, _ in compared)
            print(f"| {protocol} | {ours:,.0f} | {null:,.0f} | {ours - null:,.0f} |", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
