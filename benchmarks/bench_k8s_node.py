"""Per-attempt overhead of the Kubernetes backend on a real node, against the local backend.

    python benchmarks/bench_k8s_node.py [--routes sumo-dev|sumo-test] [--node-dir DIR] [--skip-local]

Needs root and kube-test-cluster built with ``--with-node``. Starts a cluster with one real node
(or uses the running one in ``--node-dir``), loads lbcloud's images into it (``scripts/build-images``,
cached), and runs ``lbcloud serve`` with the Kubernetes backend (1.20 layout) and one slot, so the
attempts of one submission of the competent sample agent run one after another. For every attempt:

- Job created: the dispatcher claimed the attempt and created its Job (``attempt.created_at``);
- simulator ready: the reporter's probe found the simulator's port (the ``simulator.ready`` file);
- agent started: the agent container's wrapper started the evaluator;
- record collected: the dispatcher stored the route record (``attempt.ended_at``).

The last two come from the line the wrapper writes to the agent's log. The same routes then run on
the local backend (processes on this machine, one slot); the overhead is the difference of the
per-attempt wall times, route by route. Prints medians and 95th percentiles.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's node and image helpers

from lbcloud.domain.artifact_keys import attempt_log_key
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from lbcloud.entrypoints.wiring import build_system
from lbcloud.settings import load_settings

READY_LINE = re.compile(r"lbcloud: simulator ready at ([\d.]+), evaluator started at ([\d.]+)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def figures(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<44} n=0"
    return f"{name:<44} n={len(values)} median {statistics.median(values):.2f} s, p95 {percentile(values, 0.95):.2f} s"


def _track(route_set: str) -> dict[str, Any]:
    from tests.e2e.k8s_node.node_support import node_track

    from lbcloud.settings import sumo_routes_file

    track = node_track(name=f"bench-{route_set}", routes_file=sumo_routes_file(route_set))
    track.update({"smoke_route": None, "public_routes": []})
    track["pool"]["slots"] = 1
    return track


def run_on_node(node: Any, track: dict[str, Any], workdir: Path) -> dict[str, dict[str, float]]:
    """Per route: the phase boundaries (epoch seconds) of its one attempt on the node."""
    from tests.e2e.k8s_node.node_support import AgentImages, NodeDispatcher, load_lbcloud_images
    from tests.services.kube_node import create_namespace, delete_namespace

    load_lbcloud_images(node)
    image = AgentImages(node, workdir / "images").sample("competent.py")
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    create_namespace(node, namespace)
    dispatcher = NodeDispatcher(node, namespace, workdir, tracks=[track])
    try:
        dispatcher.start()
        sid = dispatcher.submit(image, track=track["name"])
        status = dispatcher.wait_settled(sid, 1800)
        if status is not SubmissionStatus.FINISHED:
            raise SystemExit(f"the submission on the node ended {status.value}:\n{dispatcher.tail()}")
        phases: dict[str, dict[str, float]] = {}
        for task in dispatcher.system.store.route_tasks(sid):
            attempt = _the_record_attempt(dispatcher.system.store.attempts(task_id=task.id))
            log = dispatcher.system.artifacts.get(attempt_log_key(sid, attempt.id, "agent")).decode()
            match = READY_LINE.search(log)
            if match is None or attempt.ended_at is None:
                raise SystemExit(f"route {task.route_id}: no timing line in the agent's log")
            phases[task.route_id] = {
                "created": attempt.created_at.timestamp(),
                "ready": float(match.group(1)),
                "started": float(match.group(2)),
                "collected": attempt.ended_at.timestamp(),
            }
        return phases
    finally:
        dispatcher.close()
        delete_namespace(node, namespace)


def run_locally(track: dict[str, Any], workdir: Path) -> dict[str, float]:
    """Per route: the wall time of its one attempt on the local backend (claimed → record stored)."""
    agent = Path(__file__).resolve().parents[1] / "examples" / "agents" / "competent.py"
    settings = load_settings(None, data_dir=str(workdir / "local"), local={"slots": 1}, tracks=[track])
    system = build_system(settings)
    try:
        sub, _ = system.intake.submit(
            NewSubmission(team="bench", track=track["name"], agent=AgentRef(AgentKind.LOCAL, str(agent)))
        )
        system.dispatcher().run_until_idle(tick_s=0.2, timeout_s=1800)
        walls: dict[str, float] = {}
        for task in system.store.route_tasks(sub.id):
            attempt = _the_record_attempt(system.store.attempts(task_id=task.id))
            assert attempt.ended_at is not None
            walls[task.route_id] = (attempt.ended_at - attempt.created_at).total_seconds()
        return walls
    finally:
        system.close()


def _the_record_attempt(attempts: list[Attempt]) -> Attempt:
    records = [a for a in attempts if a.outcome is AttemptOutcome.RECORD]
    if len(records) != 1:
        raise SystemExit(f"expected one record per route, got {[(a.outcome, a.reason) for a in attempts]}")
    return records[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", default="sumo-dev", choices=["sumo-dev", "sumo-test"], help="route set")
    parser.add_argument("--node-dir", help="a running `kube-test-cluster up --with-node` state folder to use")
    parser.add_argument("--skip-local", action="store_true", help="only the node (no local comparison)")
    args = parser.parse_args()

    from tests.services.kube_node import NodeUnavailable, node_from_dir, start_node, stop_node

    track = _track(args.routes)
    started = time.monotonic()
    try:
        node = node_from_dir(Path(args.node_dir)) if args.node_dir else start_node()
    except NodeUnavailable as err:
        raise SystemExit(
            f"bench_k8s_node: no real node here ({err}); it needs root and kube-test-cluster built with --with-node"
        ) from None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-k8s-node-") as tmp:
            phases = run_on_node(node, track, Path(tmp))
            local = {} if args.skip_local else run_locally(track, Path(tmp))
    finally:
        if not args.node_dir:
            stop_node(node)
    routes = sorted(phases, key=lambda r: int(r) if r.isdigit() else r)
    print(f"Kubernetes backend on a real node (v1.20, 1.20 layout), {args.routes}: {len(routes)} attempts, one slot")
    print(figures("Job created -> simulator ready", [phases[r]["ready"] - phases[r]["created"] for r in routes]))
    print(figures("simulator ready -> agent started", [phases[r]["started"] - phases[r]["ready"] for r in routes]))
    print(figures("agent started -> record collected", [phases[r]["collected"] - phases[r]["started"] for r in routes]))
    node_walls = {r: phases[r]["collected"] - phases[r]["created"] for r in routes}
    print(figures("Job created -> record collected (per attempt)", list(node_walls.values())))
    if local:
        print(figures("local backend: claimed -> record stored", [local[r] for r in routes if r in local]))
        overhead = [node_walls[r] - local[r] for r in routes if r in local]
        print(figures("overhead per attempt (node - local)", overhead))
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
