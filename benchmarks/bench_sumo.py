"""SUMO track speed: wall time and simulated/wall ratio per route and for the whole sumo-test set.

Runs a simulator server and the evaluator with the competent sample agent, both pinned to one CPU
core, and prints one line per route plus the totals. Usage:

    python benchmarks/bench_sumo.py [--routes sumo-test] [--agent examples/agents/competent.py] [--core 0]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.status == "LISTEN" and c.laddr.port == port for c in psutil.net_connections("tcp")):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the simulator did not listen on {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default="sumo-test")
    parser.add_argument("--agent", default=str(REPO / "examples" / "agents" / "competent.py"))
    parser.add_argument("--core", type=int, default=0, help="CPU core for the simulator and the evaluator")
    args = parser.parse_args()

    port = free_port()
    pin = ["taskset", "-c", str(args.core)] if os.path.exists("/usr/bin/taskset") else []
    lbcloud = [sys.executable, "-m", "lbcloud", "track", "sumo"]
    server = subprocess.Popen([*pin, *lbcloud, "simulator", "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_listening(port)
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / "results.json"
            began = time.perf_counter()
            done = subprocess.run(
                [*pin, *lbcloud, "evaluate", "--agent", args.agent, "--routes", args.routes,
                 "--checkpoint", str(checkpoint), "--port", str(port)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            wall = time.perf_counter() - began
            if done.returncode != 0:
                print(done.stdout + done.stderr)
                return done.returncode
            document = json.loads(checkpoint.read_text())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    records = document["_checkpoint"]["records"]
    pinned = "pinned" if pin else "not pinned"
    print(f"SUMO track benchmark: {args.routes}, agent {Path(args.agent).name}, one core ({pinned})")
    print(f"{'route':<24}{'length m':>10}{'sim s':>9}{'wall s':>9}{'sim/wall':>10}  status")
    for record in records:
        meta = record["meta"]
        ratio = meta["duration_game"] / meta["duration_system"] if meta["duration_system"] else 0.0
        print(
            f"{record['route_id']:<24}{meta['route_length']:>10.1f}{meta['duration_game']:>9.1f}"
            f"{meta['duration_system']:>9.2f}{ratio:>9.1f}x  {record['status']}"
        )
    game = sum(r["meta"]["duration_game"] for r in records)
    system = sum(r["meta"]["duration_system"] for r in records)
    print(f"routes total: {game:.1f} s simulated in {system:.2f} s of route wall time = {game / system:.1f}x")
    print(f"whole set (evaluator process, start to exit): {wall:.2f} s wall = {game / wall:.1f}x real time")
    print(f"mean driving score {document['values'][0]}, entry status {document['entry_status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
