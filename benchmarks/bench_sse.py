"""Live-feed benchmark: N concurrent server-sent-event clients on loopback while a submission runs.

Starts a real ``lbcloud serve`` (web + dispatcher, SQLite, the local backend running SUMO) in a
child process, submits the slow sample agent to ``sumo-test`` and connects ``--clients`` subscribers
to ``/api/v1/submissions/<id>/live`` for ``--duration`` seconds. When a submission ends its
subscribers receive ``end`` and reconnect to the next one the benchmark submits, so the load lasts
the whole window.

Prints: connections, frames and errors (must be none), event latency (store event time → frame
received by a client), and the CPU the server process used (its own threads: web and dispatcher;
the SUMO simulator and agent processes it starts are not counted).

Run:  python benchmarks/bench_sse.py [--clients 200] [--duration 60] [--slots 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-operator"
AGENT = REPO / "examples" / "agents" / "slow.py"


@dataclass
class Stats:
    connections: int = 0
    reconnects: int = 0
    progress_frames: int = 0
    event_frames: int = 0
    bytes_received: int = 0
    latencies_s: list[float] = field(default_factory=list)
    arrivals: list[tuple[int, float, float]] = field(default_factory=list)  # (event id, event time, received)
    first_frame_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0

    def add(self, other: Stats) -> None:
        self.connections += other.connections
        self.reconnects += other.reconnects
        self.progress_frames += other.progress_frames
        self.event_frames += other.event_frames
        self.bytes_received += other.bytes_received
        self.latencies_s += other.latencies_s
        self.arrivals += other.arrivals
        self.first_frame_s += other.first_frame_s
        self.errors += other.errors
        self.cpu_s += other.cpu_s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, port: int, slots: int) -> Path:
    config = folder / "lbcloud.yaml"
    config.write_text(
        f"data_dir: {json.dumps(str(folder / 'data'))}\n"
        f"local:\n  slots: {slots}\n"
        f"web:\n  host: 127.0.0.1\n  port: {port}\n  operator_token: {TOKEN}\n",
        encoding="utf-8",
    )
    return config


class Feed:
    """The submission the clients watch. When it ends the next one is submitted; ``external_id``
    ``bench-<generation>`` makes that idempotent, so every client process lands on the same one."""

    def __init__(self, client: httpx.AsyncClient, track: str) -> None:
        self.client = client
        self.track = track
        self.generation = 0
        self.current: int | None = None
        self._lock = asyncio.Lock()

    async def submission(self, ended: int | None = None) -> int:
        async with self._lock:
            if self.current is None or self.current == ended:
                if self.current is not None:
                    self.generation += 1
                body = {
                    "track": self.track,
                    "agent": str(AGENT),
                    "kind": "local",
                    "team": "bench",
                    "external_id": f"bench-{self.generation}",
                }
                self.current = await self._submit(body)
            return self.current

    async def _submit(self, body: dict[str, str]) -> int:
        # a fresh connection: a pooled one may have been idle past the server's keep-alive
        async with httpx.AsyncClient(base_url=self.client.base_url, headers=self.client.headers) as fresh:
            for _ in range(50):
                response = await fresh.post("/api/v1/submissions", json=body)
                if response.status_code in (200, 201):
                    return int(response.json()["id"])
                if response.status_code != 409:
                    break
                # another client process is creating the same generation right now: ask again
                await asyncio.sleep(0.1)
        raise RuntimeError(f"submit failed: {response.status_code} {response.text}")


async def subscriber(client: httpx.AsyncClient, feed: Feed, stats: Stats) -> None:
    """Watch the current submission; on ``end`` move to the next one (cancelled when the window closes)."""
    ended: int | None = None
    while True:
        submission = await feed.submission(ended)
        started = time.monotonic()
        got_end = False
        try:
            async with client.stream("GET", f"/api/v1/submissions/{submission}/live") as response:
                if response.status_code != 200:
                    stats.errors.append(f"HTTP {response.status_code} on connect")
                    return
                stats.connections += 1
                event = ""
                first = True
                async for line in response.aiter_lines():
                    stats.bytes_received += len(line) + 1
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        now = time.time()  # wall clock, comparable with the server's event time
                        if first:
                            stats.first_frame_s.append(time.monotonic() - started)
                            first = False
                        if event == "progress":
                            stats.progress_frames += 1
                        elif event == "event":
                            stats.event_frames += 1
                            event_json = json.loads(line[6:])
                            at = datetime.fromisoformat(event_json["at"]).timestamp()
                            stats.latencies_s.append(now - at)
                            stats.arrivals.append((int(event_json["id"]), at, now))
                        elif event == "end":
                            got_end = True
        except (httpx.HTTPError, json.JSONDecodeError, KeyError, RuntimeError) as err:
            stats.errors.append(f"{type(err).__name__}: {err}")
            return
        if not got_end:
            stats.errors.append("stream closed without an end event")
            return
        ended = submission
        stats.reconnects += 1


def sse_clients_left(base: str, patience_s: float = 15.0) -> tuple[int, float]:
    """The server's ``lbcloud_sse_clients`` gauge once it reaches 0 (or after ``patience_s``)."""
    started = time.monotonic()
    value = -1
    while time.monotonic() - started < patience_s:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        line = next((ln for ln in text.splitlines() if ln.startswith("lbcloud_sse_clients ")), "x 0")
        value = int(float(line.split()[1]))
        if value == 0:
            break
        time.sleep(0.2)
    return value, time.monotonic() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def clients(base: str, count: int, duration: float, track: str) -> Stats:
    """One process's share of the subscribers, for ``duration`` seconds."""
    # idle pooled connections expire before the server's keep-alive timeout (uvicorn: 5 s), so a
    # reconnect never races the server closing an idle connection
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10, keepalive_expiry=2.0)
    timeout = httpx.Timeout(30.0, read=60.0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    stats = Stats()
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=timeout) as client:
        feed = Feed(client, track)
        tasks = [asyncio.create_task(subscriber(client, feed, stats)) for _ in range(count)]
        _, pending = await asyncio.wait(tasks, timeout=duration)
        live = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if live != count:
            stats.errors.append(f"{count - live} subscribers stopped before the window closed")
    stats.cpu_s = sum(os.times()[:2])
    return stats


def client_process(base: str, count: int, duration: float, track: str, start_at: float, out: Any) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    out.put(asyncio.run(clients(base, count, duration, track)))


def wait_until_running(base: str, track: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"track": track, "agent": str(AGENT), "kind": "local", "team": "bench", "external_id": "bench-0"}
    submission = httpx.post(f"{base}/api/v1/submissions", json=body, headers=headers, timeout=30).json()["id"]
    for _ in range(600):
        status = httpx.get(f"{base}/api/v1/submissions/{submission}", headers=headers, timeout=30).json()
        if status["submission"]["status"] in ("running", "partially_evaluated"):
            return
        time.sleep(0.1)
    raise RuntimeError("the submission did not start within a minute")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--slots", type=int, default=2, help="local backend slots")
    parser.add_argument("--track", default="sumo-test")
    parser.add_argument("--processes", type=int, default=4, help="client processes sharing the clients")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lbcloud-bench-sse-") as tmp:
        port = free_port()
        config = write_config(Path(tmp), port, args.slots)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "lbcloud", "--config", str(config), "serve", "--role", "all"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "server.log", "wb"),  # noqa: SIM115
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    print((Path(tmp) / "server.log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.1)
            server = psutil.Process(proc.pid)
            wait_until_running(base, args.track)
            context = multiprocessing.get_context("spawn")
            out = context.Queue()
            base_share, extra = divmod(args.clients, args.processes)
            shares = [base_share + (i < extra) for i in range(args.processes)]
            start_at = time.time() + 3.0  # let the client processes import before the window opens
            workers = [
                context.Process(target=client_process, args=(base, n, args.duration, args.track, start_at, out))
                for n in shares
                if n
            ]
            for worker in workers:
                worker.start()
            time.sleep(max(0.0, start_at - time.time()))
            cpu_before = server.cpu_times()
            wall_before = time.monotonic()
            time.sleep(args.duration)
            cpu_after = server.cpu_times()
            wall = time.monotonic() - wall_before
            stats = Stats()
            for _ in workers:
                stats.add(out.get(timeout=120))
            for worker in workers:
                worker.join(timeout=10)
            cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
            submissions = httpx.get(
                f"{base}/api/v1/submissions", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ).json()
            left, settle_s = sse_clients_left(base)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    print(f"SSE benchmark: {args.clients} clients on loopback for {wall:.1f} s ({args.track}, {args.slots} slots)")
    ids = ", ".join(str(s["id"]) for s in reversed(submissions))
    print(f"  client processes         {args.processes}")
    print(f"  submissions watched      {len(submissions)} (ids {ids})")
    print(f"  connections              {stats.connections} (re-subscribed after an end: {stats.reconnects})")
    print(f"  frames                   {stats.progress_frames} progress, {stats.event_frames} events, "
          f"{stats.bytes_received / 1e6:.1f} MB")  # fmt: skip
    print(f"  errors                   {len(stats.errors)}")
    for err in sorted(set(stats.errors))[:10]:
        print(f"    {stats.errors.count(err)} × {err}")
    if stats.latencies_s:
        lat = stats.latencies_s
        print(f"  event latency (s)        p50 {pct(lat, 0.5):.3f}  p95 {pct(lat, 0.95):.3f}  "
              f"p99 {pct(lat, 0.99):.3f}  max {max(lat):.3f}  mean {statistics.fmean(lat):.3f}")  # fmt: skip
    if stats.arrivals:
        by_event: dict[int, list[float]] = {}
        stamped: dict[int, float] = {}
        for event_id, at, received in stats.arrivals:
            by_event.setdefault(event_id, []).append(received)
            stamped[event_id] = at
        first_in = [min(times) - stamped[e] for e, times in by_event.items()]
        spread = [max(times) - min(times) for times in by_event.values()]
        print(f"    first client (s)       p50 {pct(first_in, 0.5):.3f}  p95 {pct(first_in, 0.95):.3f}  "
              "(store event → the first subscriber)")  # fmt: skip
        print(f"    fan-out spread (s)     p50 {pct(spread, 0.5):.3f}  p95 {pct(spread, 0.95):.3f}  "
              "(first → last subscriber of the same event)")  # fmt: skip
    if stats.first_frame_s:
        first = stats.first_frame_s
        print(f"  first frame (s)          p50 {pct(first, 0.5):.3f}  p95 {pct(first, 0.95):.3f}  max {max(first):.3f}")
    print(f"  server CPU               {cpu:.1f} s over {wall:.1f} s = {100 * cpu / wall:.0f} % of one core "
          "(web + dispatcher threads)")  # fmt: skip
    print(f"  client CPU               {stats.cpu_s:.1f} s (all client processes)")
    released = "all" if left == 0 else f"{left} still open"
    print(f"  subscriptions released   {released} {settle_s:.1f} s after the clients left")
    if left:
        stats.errors.append(f"{left} subscriptions still open on the server")
    if stats.errors:
        print(f"  errors (incl. server)    {len(stats.errors)}")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
