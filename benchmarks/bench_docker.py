"""Docker backend against the local backend: attempt start overhead and simulated/wall ratio.

Runs the same routes once on each backend, one attempt at a time, with the competent sample agent
(an agent file on the local backend, a team image built FROM the SUMO agent base image on Docker),
and prints per attempt and as medians: the ``launch()`` call, launch → agent running (the simulator
listens and the agent starts), launch → ended, and the simulated/wall ratio over the whole attempt
and over the evaluator's own loop (the record's ``duration_game / duration_system``). Usage:

    python benchmarks/bench_docker.py [--routes 0,1,2,3,4] [--track sumo-test] [--docker-host URL]

Without ``--docker-host`` (or ``$DOCKER_HOST``) it starts a dockerd of its own, as the tests do
(root; data root cached under ~/.cache/lbcloud/test-dockerd), and builds lbcloud's images there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lbcloud.domain.results.reader import parse_results  # noqa: E402
from lbcloud.domain.submissions import AgentKind, AgentRef  # noqa: E402
from lbcloud.entrypoints.dispatch_wiring import build_backend  # noqa: E402
from lbcloud.entrypoints.wiring import build_system  # noqa: E402
from lbcloud.services.ports import AttemptBackend, AttemptSpec, BackendEventKind  # noqa: E402
from lbcloud.settings import load_settings  # noqa: E402

AGENT = REPO / "examples" / "agents" / "competent.py"
TEAM_IMAGE = "lbcloud-bench/competent:1"


@dataclass(frozen=True)
class Figures:
    route: str
    launch_s: float
    running_s: float
    total_s: float
    sim_s: float
    evaluator_ratio: float

    @property
    def ratio(self) -> float:
        return self.sim_s / self.total_s if self.total_s else 0.0


def run_attempt(backend: AttemptBackend, spec: AttemptSpec) -> Figures:
    began = time.perf_counter()
    backend.launch(spec)
    launched = time.perf_counter() - began
    running = None
    while True:
        for event in backend.poll():
            now = time.perf_counter() - began
            if event.kind is BackendEventKind.RUNNING and running is None:
                running = now
            if event.kind is BackendEventKind.ENDED:
                if event.record_json is None:
                    raise RuntimeError(f"route {spec.route_id} ended without a record: {event.reason}")
                [record] = parse_results(event.record_json, "record").records
                return Figures(
                    spec.route_id, launched, running if running is not None else now, now,
                    float(record.meta.duration_game), event.sim_ratio or 0.0,
                )  # fmt: skip
        time.sleep(0.02)


def run_backend(settings_overrides: dict[str, object], agent: AgentRef, track: str, routes: list[str]) -> list[Figures]:
    with tempfile.TemporaryDirectory(prefix="lbcloud-bench-") as tmp:
        system = build_system(load_settings(None, data_dir=tmp, **settings_overrides))
        backend = build_backend(system)
        try:
            figures = []
            for number, route in enumerate(routes, start=1):
                spec = AttemptSpec(
                    attempt_id=number, attempt_number=1, submission_id=1, task_id=number, team="bench",
                    track=system.tracks[track], agent=agent, route_id=route, repetition=0, budget_s=600.0, token="t",
                )  # fmt: skip
                figures.append(run_attempt(backend, spec))
            return figures
        finally:
            backend.close()
            system.close()


@contextlib.contextmanager
def engine_url(given: str | None) -> Iterator[str]:
    """The engine to use: the one given, else a private dockerd with lbcloud's images built in."""
    if given:
        yield given
        return
    from tests.services.docker import build_lbcloud_images, private_engine

    with private_engine() as engine:
        build_lbcloud_images(engine)
        yield engine.url


def build_team_image(url: str) -> None:
    import docker

    client = docker.DockerClient(base_url=url)
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(AGENT, Path(context) / "agent.py")
        (Path(context) / "Dockerfile").write_text(
            "FROM lbcloud-sumo-agent:latest\n"
            "COPY --chown=10001:10001 agent.py /home/lbcloud/agent/agent.py\n"
            "ENV TEAM_AGENT=/home/lbcloud/agent/agent.py\n"
        )
        client.images.build(path=context, tag=TEAM_IMAGE, rm=True)
    client.close()


def report(name: str, figures: list[Figures]) -> None:
    print(f"\n{name}")
    print(
        f"{'route':<8}{'launch() s':>12}{'running s':>11}{'ended s':>10}{'sim s':>8}{'sim/wall':>10}{'evaluator':>11}"
    )
    for f in figures:
        print(
            f"{f.route:<8}{f.launch_s:>12.3f}{f.running_s:>11.3f}{f.total_s:>10.2f}{f.sim_s:>8.1f}"
            f"{f.ratio:>10.2f}{f.evaluator_ratio:>11.2f}"
        )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default="0,1,2,3,4", help="route ids, comma-separated")
    parser.add_argument("--track", default="sumo-test")
    parser.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST"))
    args = parser.parse_args()
    routes = [r for r in args.routes.split(",") if r]

    local = run_backend({"backend": "local"}, AgentRef(AgentKind.LOCAL, str(AGENT)), args.track, routes)
    with engine_url(args.docker_host) as url:
        build_team_image(url)
        docker = run_backend(
            {"backend": "docker", "docker": {"base_url": url}},
            AgentRef(AgentKind.IMAGE, TEAM_IMAGE),
            args.track,
            routes,
        )
    print(f"Docker backend vs local backend: {args.track} routes {','.join(routes)}, competent agent, one at a time")
    report("local backend (processes)", local)
    report("docker backend (simulator + evaluator + agent containers)", docker)
    print("\nmedians                   local    docker   docker - local")
    for label, key in (
        ("launch() s", "launch_s"),
        ("launch -> running s", "running_s"),
        ("launch -> ended s", "total_s"),
    ):
        lo, do = median([getattr(f, key) for f in local]), median([getattr(f, key) for f in docker])
        print(f"{label:<22}{lo:>9.3f}{do:>10.3f}{do - lo:>+15.3f}")
    lo, do = median([f.ratio for f in local]), median([f.ratio for f in docker])
    print(f"{'sim/wall (attempt)':<22}{lo:>9.2f}{do:>10.2f}{do / lo if lo else 0:>14.2f}x")
    lo, do = median([f.evaluator_ratio for f in local]), median([f.evaluator_ratio for f in docker])
    print(f"{'sim/wall (evaluator)':<22}{lo:>9.2f}{do:>10.2f}{do / lo if lo else 0:>14.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
