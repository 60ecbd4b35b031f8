#!/usr/bin/env python3
"""Load benchmark: sidecar-injector against the null server and the Go and Node.js baselines, in one run.

The null server (benches/baselines/null/main.rs) is our stack without our code: every figure is
also given as a fraction of its throughput, the limit sidecar-injector can approach.

Each server in turn is started on loopback with the same certificate, pinned to CPU 0, and checked
to give the same JSON Patch for the same review. h2load (nghttp2), pinned to CPU 1, then drives it
with the review over keep-alive TLS connections, HTTP/1.1 and HTTP/2, at each connection count.
Latency percentiles come from h2load's per-request log; RSS from /proc/PID/status.

benches/load.sh builds the binaries and calls this; see BENCHMARKS.md for the figures.
"""

import argparse
import base64
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from http_support import free_port, h2load_results, insecure_tls, make_certificate, pinned, post, status_kib, wait_until_answering  # noqa: E402

HERE = Path(__file__).resolve().parent
REVIEW = HERE / "review.json"
BASELINES = HERE.parent / "baselines"
INJECTION = BASELINES / "injection.json"


def servers(args, cert, key):
    """(name, command taking the port, extra environment, speaks HTTP/2)."""
    return [
        ("sidecar-injector", lambda port: [
            args.server_bin, "serve", "--listen", f"127.0.0.1:{port}",
            "--metrics-listen", f"127.0.0.1:{free_port()}", "--tls-cert", cert, "--tls-key", key,
            # One h2load opens every connection: the per-client limit is not what is measured.
            "--max-connections-per-client", "1024"],
         # As in the Dockerfile.
         {"MIMALLOC_ARENA_EAGER_COMMIT": "0"}, True),
        ("null server", lambda port: [args.null_bin, str(port), cert, key, REVIEW],
         {"MIMALLOC_ARENA_EAGER_COMMIT": "0"}, True),
        ("Go net/http", lambda port: [args.go_bin, str(port), cert, key, INJECTION], {}, True),
        ("Node.js https", lambda port: ["node", BASELINES / "node" / "server.js", str(port), cert, key, INJECTION],
         {}, False),
    ]


def decoded_patch(url):
    status, body = post(url, REVIEW.read_bytes(), context=insecure_tls())
    if status != 200:
        raise SystemExit(f"{url}: status {status}: {body[:200]!r}")
    response = json.loads(body)["response"]
    return response["uid"], json.loads(base64.b64decode(response["patch"]))


def h2load(url, protocol, connections, seconds, log):
    command = pinned(1, [
        "h2load", *(["--h1"] if protocol == "HTTP/1.1" else []), "-t", "1", "-c", str(connections), "-m", "1",
        "-D", str(seconds), "-d", REVIEW, "-H", "content-type: application/json", "--log-file", log, url])
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120).stdout
    return out


def cpu_seconds(pid):
    """The CPU time a process has used, user and system, its exited threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(url, protocol, connections, seconds, folder, pid):
    # A short run first: connections, TLS sessions and the servers' JITs warm up outside the figures.
    h2load(url, protocol, connections, 1, folder / "warm.tsv")
    log = folder / "log.tsv"
    if log.exists():
        log.unlink()
    cpu, wall = cpu_seconds(pid), time.monotonic()
    out = h2load(url, protocol, connections, seconds, log)
    cpu, wall = cpu_seconds(pid) - cpu, time.monotonic() - wall
    negotiated = re.search(r"Application protocol: (\S+)", out)
    if not negotiated or (negotiated.group(1) == "h2") != (protocol == "HTTP/2"):
        return None
    results = h2load_results(out, log)
    latencies = sorted(v for values in results["latencies_ms"].values() for v in values)
    if not latencies:
        raise SystemExit(f"h2load logged no request:\n{out}")

    def percentile(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))]

    errors = results["lost"] + sum(n for status, n in results["statuses"].items() if not status.startswith("2"))
    return {"rps": results["rate"], "p50": percentile(0.50), "p99": percentile(0.99), "max": latencies[-1],
            "errors": errors, "done": len(latencies),
            # The server's CPU per request: a server that keeps its core busy is measured by its
            # throughput too, but one that does not (h2load, on one core, cannot load the null
            # server fully) only by this.
            "cpu_us": cpu / len(latencies) * 1e6, "busy": cpu / wall}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--null-bin", required=True)
    parser.add_argument("--go-bin", required=True)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each cell reports its median round")
    parser.add_argument("--connections", default="1,16,64,256")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    counts = [int(c) for c in args.connections.split(",")]

    folder = Path(tempfile.mkdtemp(prefix="sidecar-injector-load-"))
    cert, key = make_certificate(folder)
    # All run at once, idle but for the one under load, so that the servers of one cell
    # are measured within seconds of each other: this VM's speed drifts by tens of percent.
    running, reference = [], None
    try:
        for name, command, env, speaks_h2 in servers(args, cert, key):
            port = free_port()
            process = subprocess.Popen(pinned(0, command(port)), env={**os.environ, **env},
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            running.append((name, process, f"https://127.0.0.1:{port}", speaks_h2))
            base = running[-1][2]
            wait_until_answering(base + "/healthz", process, name, seconds=60, context=insecure_tls())
            uid, patch = decoded_patch(base + "/mutate")
            if reference is None:
                reference = (uid, patch)
            elif (uid, patch) != reference:
                raise SystemExit(f"{name} does not give the same answer as sidecar-injector:\n{patch}")
        time.sleep(1)  # let start-up allocations settle before reading the idle figures
        idle = {name: status_kib(process.pid, "VmRSS") for name, process, _, _ in running}
        rounds = {}
        for _ in range(args.repeat):
            for protocol in ["HTTP/1.1", "HTTP/2"]:
                for connections in counts:
                    for name, process, base, speaks_h2 in running:
                        if protocol == "HTTP/2" and not speaks_h2:
                            continue
                        figures = run_one(base + "/mutate", protocol, connections, args.seconds, folder, process.pid)
                        rounds.setdefault((name, protocol, connections), []).append(figures)
                        print(json.dumps({"server": name, "protocol": protocol, "connections": connections,
                                          **(figures or {})}), file=sys.stderr, flush=True)
        results = []
        for name, process, _, speaks_h2 in running:
            peak = status_kib(process.pid, "VmHWM")
            for protocol in ["HTTP/1.1", "HTTP/2"]:
                for connections in counts:
                    row = {"server": name, "protocol": protocol, "connections": connections,
                           "idle_kib": idle[name], "peak_kib": peak}
                    in_turn = rounds.get((name, protocol, connections), [])
                    measured = sorted((f for f in in_turn if f), key=lambda f: f["rps"])
                    if measured:
                        row.update(measured[len(measured) // 2])
                        row["errors"] = sum(f["errors"] for f in measured)
                        row["rounds_rps"] = [f["rps"] if f else None for f in in_turn]
                        row["rounds_cpu_us"] = [f["cpu_us"] if f else None for f in in_turn]
                    results.append(row)
    finally:
        for _, process, _, _ in running:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(report(results, args))


def report(results, args):
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}; "
        f"{tool_versions()}.",
        f"Each run: {args.seconds} s after a 1 s warm-up, servers on CPU 0, h2load (one thread) on CPU 1; "
        f"{args.repeat} rounds, the servers in turn for each cell; each row is the cell's median round "
        f"by throughput, its errors the sum over all rounds; peak RSS is over the whole run; "
        f"'of null' is the median over rounds of the row's throughput as a fraction of the null server's "
        f"in the same round (this VM's speed drifts between rounds more than between servers in turn). "
        f"'CPU us/req' is the server's CPU time (user and system) per request in that round, 'busy' the "
        f"share of its core it used, and 'of null by CPU' the median over rounds of the null server's CPU "
        f"per request as a fraction of the row's: the throughput fraction were both servers to keep their "
        f"core busy, which h2load on one core cannot make the null server do.",
        "",
        "| server | protocol | conns | req/s | of null | CPU us/req | busy | of null by CPU | p50 ms | p99 ms "
        "| max ms | errors | idle RSS MiB | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r["server"], r["protocol"], r["connections"]): r for r in results}
    for r in results:
        if "rps" not in r:
            lines.append(f"| {r['server']} | {r['protocol']} | {r['connections']} | n/a (no HTTP/2) |" + " |" * 10)
            continue
        null = by.get(("null server", r["protocol"], r["connections"]), {})
        fractions = [paired_ratio(r, null, figure) for figure in ["rounds_rps", "rounds_cpu_us"]]
        throughput, by_cpu = (f"{f:.2f}" if f else "n/a" for f in fractions)
        lines.append(
            f"| {r['server']} | {r['protocol']} | {r['connections']} | {r['rps']:,.0f} | {throughput} | "
            f"{r['cpu_us']:.1f} | {r['busy']:.0%} | {by_cpu} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | "
            f"{r['errors']} | {r['idle_kib'] / 1024:.1f} | {r['peak_kib'] / 1024:.1f} |")
    lines += ["", "Each round, req/s (the spread is this VM's), then CPU per request:", ""]
    for r in results:
        if "rounds_rps" not in r:
            continue
        null = by.get(("null server", r["protocol"], r["connections"]), {})
        line = f"- {r['server']}, {r['protocol']}, {r['connections']}: " + ", ".join(
            f"{x:,.0f}" if x else "failed" for x in r["rounds_rps"])
        line += "; CPU us/req: " + ", ".join(f"{x:.1f}" if x else "failed" for x in r["rounds_cpu_us"])
        if r["server"] != "null server" and "rounds_rps" in null:
            line += " (of null: " + ", ".join(f"{x:.2f}" for x in paired(r, null)) + "; by CPU: " + ", ".join(
                f"{x:.2f}" for x in paired(r, null, "rounds_cpu_us")) + ")"
        lines.append(line)
    lines += ["", "Ratios at 64 connections (goals: >= 0.75 of the null server, >= 1.5x Go, >= 10x Node.js; "
              "p99 < 5 ms):", ""]
    for protocol in ["HTTP/1.1", "HTTP/2"]:
        ours = by.get(("sidecar-injector", protocol, 64), {})
        if "rps" not in ours:
            continue
        parts = [f"p99 {ours['p99']:.2f} ms"]
        for peer in ["null server", "Go net/http", "Node.js https"]:
            ratio = paired_ratio(ours, by.get((peer, protocol, 64), {}))
            if ratio:
                parts.append(f"{ratio:.2f}x {peer}")
        by_cpu = paired_ratio(ours, by.get(("null server", protocol, 64), {}), "rounds_cpu_us")
        if by_cpu:
            parts.append(f"{by_cpu:.2f}x null server by CPU per request")
        lines.append(f"- {protocol}: " + ", ".join(parts))
    peak = max(r["peak_kib"] for r in results if r["server"] == "sidecar-injector") / 1024
    idle = next(r["idle_kib"] for r in results if r["server"] == "sidecar-injector") / 1024
    null_idle = next(r["idle_kib"] for r in results if r["server"] == "null server") / 1024
    lines.append(f"- sidecar-injector RSS: idle {idle:.1f} MiB (goal <= 8; the null server {null_idle:.1f}), "
                 f"peak {peak:.1f} MiB (goal < 30)")
    return "\n".join(lines)


def paired(row, peer, figure="rounds_rps"):
    """Round by round (they ran in turn): the row's throughput as a fraction of the peer's, or for
    CPU per request the peer's as a fraction of the row's, so that more is better in both."""
    pairs = zip(row.get(figure, []), peer.get(figure, []))
    return [ours / theirs if figure == "rounds_rps" else theirs / ours for ours, theirs in pairs if ours and theirs]


def paired_ratio(row, peer, figure="rounds_rps"):
    """The median of `paired`; None when no round has both."""
    ratios = sorted(paired(row, peer, figure))
    if not ratios:
        return None
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def tool_versions():
    def first_line(command):
        try:
            return subprocess.run(command, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"
    return "; ".join([first_line(["h2load", "--version"]), first_line(["go", "version"]),
                      "node " + first_line(["node", "--version"])])


if __name__ == "__main__":
    main()
