#!/usr/bin/env python3
"""Idle memory of server binaries: each started with certificate files and given one review, its
/proc/PID/status read; the binaries in turn for each round, the median printed. For
benches/idle_rss.sh.

    python3 benches/idle_rss.py [--rounds N] NAME=BINARY ...
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from http_support import Served, free_port, insecure_tls, make_certificate, post, status_kib  # noqa: E402

REVIEW = (Path(__file__).resolve().parent / "load" / "review.json").read_bytes()
FIELDS = ["VmRSS", "RssFile", "RssAnon"]


def idle(binary, folder, cert, key):
    """{field: kB} of one start of `binary`, after one review."""
    port = free_port()
    command = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{free_port()}",
               "--tls-cert", cert, "--tls-key", key]
    with Served(command, folder / "server.log", f"https://127.0.0.1:{port}/healthz") as process:
        status, _ = post(f"https://127.0.0.1:{port}/mutate", REVIEW, context=insecure_tls())
        assert status == 200, status
        time.sleep(1)  # let start-up allocations settle, as run.py does
        return {field: status_kib(process.pid, field) for field in FIELDS}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("binaries", nargs="+", metavar="NAME=BINARY")
    args = parser.parse_args()
    binaries = [item.split("=", 1) for item in args.binaries]
    folder = Path(tempfile.mkdtemp(prefix="idle-rss-"))
    cert, key = make_certificate(folder)
    figures = {name: [] for name, _ in binaries}
    for _ in range(args.rounds):
        for name, binary in binaries:
            figures[name].append(idle(binary, folder, cert, key))
    print("| binary | VmRSS KiB | RssFile KiB | RssAnon KiB | bytes |")
    print("|---|---:|---:|---:|---:|")
    for name, binary in binaries:
        medians = [statistics.median(run[field] for run in figures[name]) for field in FIELDS]
        size = Path(binary).stat().st_size
        print(f"| {name} | " + " | ".join(f"{m:,.0f}" for m in medians) + f" | {size:,} |")


if __name__ == "__main__":
    main()
