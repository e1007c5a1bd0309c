"""Ports owned, not guessed: host-wide reservations, readiness only from our own simulator, and a
simulator that dies judged before anything else. Real processes and sockets on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lbcloud.adapters.artifacts import FilesystemArtifactStore
from lbcloud.adapters.backends.local import LocalBackend
from lbcloud.adapters.backends.local_ports import listener_owned_by, reserve_port
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import LbcloudError
from lbcloud.domain.submissions import AgentKind, AgentRef
from lbcloud.domain.tasks import AttemptOutcome
from lbcloud.domain.tracks import LocalCommands, Pool, ScorerVersion, SimulatorKind, Track
from lbcloud.services.ports import AttemptSpec, BackendEvent, BackendEventKind
from tests.services.postgres import free_port

RESERVE = (
    "import sys, time; from pathlib import Path; from lbcloud.adapters.backends.local_ports import reserve_port;"
    "r = reserve_port(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])); print(r.port, flush=True); time.sleep(30)"
)


def _port_block(n: int) -> int:
    """The first of ``n`` consecutive ports nobody listens on (a random high block)."""
    while True:
        start = free_port()
        if start + n < 65535 and all(_free(p) for p in range(start, start + n)):
            return start


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_reserved_port_is_never_handed_out_twice_on_the_host_until_its_holder_exits(tmp_path: Path) -> None:
    lo = _port_block(3)
    # another install (another process) holds the first port of the range
    other = subprocess.Popen(
        [sys.executable, "-c", RESERVE, str(lo), str(lo + 2), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        assert int(other.stdout.readline()) == lo
        mine = reserve_port(lo, lo + 2, tmp_path)
        assert mine.port == lo + 1
        second = reserve_port(lo, lo + 2, tmp_path)
        assert second.port == lo + 2
        with pytest.raises(LbcloudError, match="no free TCP port"):
            reserve_port(lo, lo + 2, tmp_path)
        mine.release()
        assert reserve_port(lo, lo + 2, tmp_path).port == lo + 1
    finally:
        other.kill()
        other.wait()
    assert reserve_port(lo, lo, tmp_path).port == lo, "the holder's exit released its reservation"


def test_a_port_something_else_listens_on_is_skipped(tmp_path: Path) -> None:
    lo = _port_block(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", lo))
        squatter.listen()
        assert reserve_port(lo, lo + 1, tmp_path).port == lo + 1


def test_listener_ownership_tells_our_simulator_from_a_foreign_listener() -> None:
    port = free_port()
    assert listener_owned_by(port, os.getpgid(0)) is None
    listener = subprocess.Popen(
        [sys.executable, "-c", f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); "
         "print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "up"
        assert listener_owned_by(port, listener.pid) is True
        assert listener_owned_by(port, os.getpgid(0)) is False
    finally:
        listener.kill()
        listener.wait()


# ----------------------------------------------------------------------- the backend, end to end
SIMULATOR_LISTENS = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
    "time.sleep(float(sys.argv[2])); sys.exit(int(sys.argv[3]))"
)
EVALUATOR_WAITS = "import time; time.sleep(30)"


def _track(tmp: Path, simulator: tuple[str, ...], evaluator: tuple[str, ...]) -> Track:
    routes = tmp / "routes.xml"
    routes.write_text(
        '<routes><route id="0" town="T"><waypoints><position x="0" y="0" z="0"/></waypoints></route></routes>'
    )
    return Track(
        name="fake", simulator=SimulatorKind.SUMO, scorer=ScorerVersion.LB20, routes_file=str(routes),
        local=LocalCommands(simulator, evaluator), pool=Pool(slots=1), silence_timeout_s=60,
    )  # fmt: skip


def _spec(track: Track, attempt_id: int = 1) -> AttemptSpec:
    return AttemptSpec(
        attempt_id=attempt_id, attempt_number=1, submission_id=1, task_id=1, team="t", track=track,
        agent=AgentRef(AgentKind.LOCAL, "/agent.py"), route_id="0", repetition=0, budget_s=60, token="x",
    )  # fmt: skip


def _wait_end(backend: LocalBackend, timeout_s: float = 20) -> BackendEvent:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in backend.poll():
            if event.kind is BackendEventKind.ENDED:
                return event
        time.sleep(0.05)
    raise AssertionError("the attempt did not end")


def test_a_simulator_that_dies_during_the_route_is_a_simulator_fault_not_a_hung_agent(tmp_path: Path) -> None:
    lo = _port_block(2)
    track = _track(
        tmp_path,
        (sys.executable, "-c", SIMULATOR_LISTENS, "{port}", "0.5", "3"),  # listens, then dies with exit 3
        (sys.executable, "-c", EVALUATOR_WAITS),  # never notices: without the check it would hang
    )
    backend = LocalBackend(
        tmp_path / "work", FilesystemArtifactStore(tmp_path / "art"), port_range=(lo, lo + 1),
        port_lock_dir=tmp_path / "locks",
    )  # fmt: skip
    backend.launch(_spec(track))
    started = time.monotonic()
    event = _wait_end(backend)
    assert (event.outcome, event.blame) == (AttemptOutcome.FAILED, Blame.SIMULATOR)
    assert "simulator died" in (event.reason or "")
    assert time.monotonic() - started < 10, "judged at once, not after the silence timeout"


def test_a_foreign_listener_on_the_port_is_not_taken_for_our_simulator(tmp_path: Path) -> None:
    lo = _port_block(1)
    track = _track(
        tmp_path,
        (sys.executable, "-c", "import time; time.sleep(30)"),  # our simulator never listens
        (sys.executable, "-c", "import sys; sys.exit(0)"),
    )
    backend = LocalBackend(
        tmp_path / "work", FilesystemArtifactStore(tmp_path / "art"), port_range=(lo, lo),
        port_lock_dir=tmp_path / "locks", ready_timeout_s=1.5,
    )  # fmt: skip
    backend.launch(_spec(track))
    with socket.socket() as squatter:  # a process outside the attempt grabs the port after the launch
        squatter.bind(("127.0.0.1", lo))
        squatter.listen()
        event = _wait_end(backend)
    assert (event.outcome, event.blame) == (AttemptOutcome.FAILED, Blame.SIMULATOR)
    assert "did not listen" in (event.reason or "")
    log = event.logs["lbcloud"].decode()
    assert "held by a process outside this attempt" in log
    assert "simulator ready" not in log, "never declared ready"
    assert "ended (simulator_not_ready)" in log
