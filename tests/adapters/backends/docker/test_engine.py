"""The engine adapter: readiness from a container's socket table, seen from here or from inside."""

from __future__ import annotations

import dataclasses
import time

import pytest

from lbcloud.adapters.backends.docker.engine import DockerEngine, listening_in_table
from tests.services.docker import DockerTestEngine

TABLE = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:226D 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001        0 1 1
   1: 0100007F:226E 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 10001        0 2 1
"""


def test_a_socket_table_says_which_ports_listen() -> None:
    assert listening_in_table(TABLE, 8813)  # 0x226D, state 0A (LISTEN)
    assert not listening_in_table(TABLE, 8814)  # connected, not listening
    assert not listening_in_table("", 8813)


@pytest.mark.docker
def test_a_listener_in_a_loopback_only_container_is_seen_without_connecting(
    docker_engine: DockerTestEngine, lbcloud_images: list[str]
) -> None:
    container = docker_engine.client.containers.run(
        "lbcloud:latest", ["-m", "http.server", "8123", "--bind", "127.0.0.1"], entrypoint=["python3"],
        network_mode="none", detach=True, labels={"io.lbcloud.test": "engine"},
    )  # fmt: skip
    engine = DockerEngine(docker_engine.url)
    try:
        state = engine.state(container.name)
        assert state is not None and state.id
        deadline = time.monotonic() + 30
        while not engine.listening(state, 8123):
            assert time.monotonic() < deadline, "the listener never appeared"
            time.sleep(0.1)
        assert not engine.listening(state, 8124)
        # an engine elsewhere (its processes not visible here): read from inside the container
        remote = dataclasses.replace(state, id="0" * 64)
        assert engine.listening(remote, 8123) and not engine.listening(remote, 8124)
    finally:
        container.remove(force=True)
        engine.close()
