"""A hostile team image on the Docker backend: what it can reach from inside its agent container.

The probing agent (agents/probe.py) tries, before driving: connections to listeners this test opens
on the host (every address of the host, loopback included) and to the simulator's port, the Docker
socket, other attempts' folders, writes to its root file system; it reports its user, capabilities,
network interfaces and environment. Another attempt runs beside it.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from lbcloud.adapters.backends.docker.backend import DockerBackend
from lbcloud.adapters.backends.docker.plans import ATTEMPT_DIR
from lbcloud.domain.artifact_keys import LogStream
from lbcloud.domain.tasks import AttemptOutcome
from lbcloud.services.ports import BackendEvent, BackendEventKind
from tests.adapters.backends.docker.conftest import spec

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A TCP listener on every address of this host; the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def _host_addresses() -> list[str]:
    return sorted({a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET})


def _run_all(backend: DockerBackend, count: int, timeout_s: float = 180) -> dict[int, BackendEvent]:
    ends: dict[int, BackendEvent] = {}
    deadline = time.monotonic() + timeout_s
    while len(ends) < count and time.monotonic() < deadline:
        for event in backend.poll():
            if event.kind is BackendEventKind.ENDED:
                ends[event.attempt_id] = event
        time.sleep(0.1)
    assert len(ends) == count, ends
    return ends


def test_a_hostile_agent_reaches_nothing_outside_its_attempt(
    host_listener: int, team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    targets = [f"{address}:{host_listener}" for address in _host_addresses()] + ["127.0.0.1:8813"]
    neighbour = backend.folder_of(2)
    forbidden = [str(backend.workdir), str(neighbour), ATTEMPT_DIR, "/var/lib/docker"]
    image = team_image(
        "probe.py",
        env={"PROBE_TARGETS": ",".join(targets), "PROBE_FORBIDDEN": ",".join(forbidden)},
        tag=f"lbcloud-test/probe:{host_listener}",
    )
    backend.launch(spec(team_image("competent.py"), attempt_id=2))
    backend.launch(spec(image, attempt_id=1))
    ends = _run_all(backend, 2)
    assert ends[2].outcome is AttemptOutcome.RECORD, ends[2].reason
    assert ends[1].outcome is AttemptOutcome.RECORD, ends[1].reason  # it drove after probing
    log = ends[1].logs[LogStream.AGENT.value].decode()
    line = next(line for line in log.splitlines() if line.startswith("PROBE-RESULT "))
    found = json.loads(line.removeprefix("PROBE-RESULT "))
    assert set(found["connections"]) == set(targets)
    assert all(result.startswith("refused") for result in found["connections"].values()), found["connections"]
    assert found["interfaces"] == ["lo"]
    assert found["docker_socket"] == []
    assert found["forbidden_visible"] == []
    assert found["write_root"].startswith("refused") and found["write_opt"].startswith("refused")
    assert found["uid"] != 0
    assert int(found["cap_eff"], 16) == 0
    secrets = [name for name in found["env"] if any(word in name for word in ("TOKEN", "SECRET", "PASSWORD", "KEY"))]
    assert secrets == []
    assert not any(name.startswith("DOCKER") for name in found["env"])
