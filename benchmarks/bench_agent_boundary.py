"""The cost of the agent boundary: per-step overhead and per-attempt start overhead of the agent host.

Drives the same routes on one SUMO server with the competent sample agent, interleaved route by
route so every way sees the same machine:

- ``before``: the agent called in-process and two TraCI round trips per step (the evaluator as it
  was before the boundary);
- ``agent host`` / ``agent host, bwrap``: the evaluator as it is (agent host without / with the
  bubblewrap sandbox, one TraCI round trip per step);
- ``in-process, 1 RT``: the agent called in-process with one TraCI round trip per step (what the
  boundary alone costs).

Prints ms per simulation step and the sim/wall ratio of each, the loss of sim/wall against
``before``, whether every record is identical to ``before``'s (apart from wall-clock durations), and
the time from "start an agent" to "its setup() answered" (the per-attempt start). Usage:

    python benchmarks/bench_agent_boundary.py [--routes sumo-test] [--subset 0-9] [--starts 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_sumo import free_port, wait_listening  # noqa: E402
from lbcloud.tracks.sumo.agent_api import VehicleControl  # noqa: E402
from lbcloud.tracks.sumo.agent_host import find_agent_class  # noqa: E402
from lbcloud.tracks.sumo.agent_link import AgentFault, AgentLink, LogBudget, spawn_host  # noqa: E402
from lbcloud.tracks.sumo.agent_protocol import control_message, parse_control  # noqa: E402
from lbcloud.tracks.sumo.agent_sandbox import AgentLimits, SandboxMode, sandbox_status  # noqa: E402
from lbcloud.tracks.sumo.evaluator import Evaluator, EvaluatorOptions, load_instances  # noqa: E402
from lbcloud.tracks.sumo.route_sets import PRESETS, shipped_route_file  # noqa: E402
from lbcloud.tracks.sumo.scenario import STEP_LENGTH_S  # noqa: E402
from lbcloud.tracks.sumo.session import SumoSession  # noqa: E402


class InProcessLink:
    """The agent called directly, as the evaluator did before the boundary (same interface as AgentLink)."""

    def __init__(self, agent_ref: str) -> None:
        self._class = find_agent_class(agent_ref)
        self._agent: Any = None

    def setup(self, route_id: str, plan: Sequence[tuple[float, float, float]], config: str, timeout_s: float) -> Any:
        self._agent = self._class("127.0.0.1", 0, False)
        self._agent.set_global_plan(list(plan))
        self._agent.setup(config)
        return self._agent.sensors()

    def step(self, frame: int, timestamp: float, readings: Mapping[str, Any], timeout_s: float) -> VehicleControl:
        data = {key: (frame, value) for key, value in readings.items()}
        try:  # the same checks the old evaluator made on an answer
            return parse_control(control_message(self._agent.run_step(data, timestamp)))
        except TypeError as err:
            raise AgentFault("run_step", str(err)) from None

    def destroy(self, timeout_s: float) -> str | None:
        self._agent.destroy()
        return None

    def close(self) -> None:
        self._agent = None


class BenchEvaluator(Evaluator):
    def __init__(self, *args: Any, connect: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connector = connect

    def _connect(self, while_starting: Callable[[], None]) -> AgentLink:
        while_starting()  # the route's files, as the real evaluator writes them while its agent host starts
        link: AgentLink = self._connector()
        return link


BEFORE = "before"
IN_PROCESS = "in-process, 1 RT"


def _modes(agent: str) -> dict[str, SandboxMode | None]:
    modes: dict[str, SandboxMode | None] = {BEFORE: None, "agent host": SandboxMode.NONE}
    status = sandbox_status(SandboxMode.BWRAP)
    if status.sandboxed:
        modes["agent host, bwrap"] = SandboxMode.BWRAP
    else:
        print(f"(no bubblewrap sandbox here: {status.detail})")
    modes[IN_PROCESS] = None
    return modes


def _comparable(record: Any) -> Any:
    return replace(record, meta=replace(record.meta, duration_system=0))


def _connector(agent: str, mode: SandboxMode | None, sink: LogBudget) -> Callable[[], Any]:
    if mode is None:
        return lambda: InProcessLink(agent)
    return lambda: spawn_host(agent, timeout_s=30, mode=mode, limits=AgentLimits(), output=sink)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default="sumo-test")
    parser.add_argument("--subset", default="0-9")
    parser.add_argument("--starts", type=int, default=10, help="agent starts timed per mode")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each route per mode (the fastest counts)")
    parser.add_argument("--agent", default=str(REPO / "examples" / "agents" / "competent.py"))
    args = parser.parse_args()
    routes = shipped_route_file(args.routes) if args.routes in PRESETS else Path(args.routes)
    instances = load_instances(routes, args.subset, 1)
    modes = _modes(args.agent)
    sink = LogBudget(io.BytesIO(), 1 << 20)

    import subprocess

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lbcloud", "track", "sumo", "simulator", "--port", str(port)], stdout=subprocess.DEVNULL
    )
    try:
        wait_listening(port)
        session = SumoSession.connect(port)
        game: dict[str, float] = dict.fromkeys(modes, 0.0)
        wall: dict[str, float] = dict.fromkeys(modes, 0.0)
        with tempfile.TemporaryDirectory() as tmp:
            options = EvaluatorOptions(agent=args.agent, routes=routes, checkpoint=Path(tmp) / "x.json", port=port)
            evaluators = {
                name: BenchEvaluator(options, session, Path(tmp), sink, connect=_connector(args.agent, mode, sink))
                for name, mode in modes.items()
            }
            print(f"{'route':<24} " + "  ".join(f"{name:>22}" for name in modes))
            identical = True
            for instance in instances:
                cells = []
                reference = None
                best: dict[str, float] = {}
                for _ in range(args.repeats):  # the fastest of a few runs: what the code costs, not the neighbours
                    for name, evaluator in evaluators.items():
                        session.batch_commands = name != BEFORE
                        record = evaluator.run_instance(instance).record
                        if reference is None:
                            reference = _comparable(record)
                        identical = identical and _comparable(record) == reference
                        best[name] = min(best.get(name, float("inf")), float(record.meta.duration_system))
                assert reference is not None
                steps = max(float(reference.meta.duration_game) / STEP_LENGTH_S, 1.0)
                for name in evaluators:
                    game[name] += float(reference.meta.duration_game)
                    wall[name] += best[name]
                    cells.append(f"{1000 * best[name] / steps:8.3f} ms/step {reference.status[:6]:>6}")
                print(f"{instance.route_id:<24} " + "  ".join(f"{c:>22}" for c in cells), flush=True)
        session.close()
    finally:
        server.terminate()
        server.wait(timeout=20)

    base_ratio = game[BEFORE] / wall[BEFORE]
    print(f"\nevery record identical to before's (apart from duration_system): {'yes' if identical else 'NO'}")
    for name in modes:
        ratio = game[name] / wall[name]
        steps = game[name] / STEP_LENGTH_S
        extra = 1000 * (wall[name] - wall[BEFORE]) / steps
        print(
            f"{name:<20} sim/wall {ratio:7.1f}x   {1000 * wall[name] / steps:6.3f} ms/step   "
            f"vs before {extra:+6.3f} ms/step   sim/wall loss {100 * (1 - ratio / base_ratio):5.1f} %"
        )
    print()
    for name, mode in modes.items():
        times = []
        for _ in range(args.starts):
            began = time.perf_counter()
            link = _connector(args.agent, mode, sink)()
            link.setup("RouteScenario_0_rep0", [(0.0, 0.0, 0.0)], "", 30)
            times.append(time.perf_counter() - began)
            link.destroy(30)
            link.close()
        print(
            f"agent start to setup() answered, {name:<18} median {1000 * statistics.median(times):7.1f} ms   "
            f"max {1000 * max(times):7.1f} ms   (n={len(times)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
