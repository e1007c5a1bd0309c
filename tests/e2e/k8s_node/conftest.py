"""Fixtures of the ``k8s_node`` tier: lbcloud's images in the node, participant images, a dispatcher.

The helpers live in :mod:`tests.e2e.k8s_node.node_support`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.k8s_node.node_support import AgentImages, NodeDispatcher, load_lbcloud_images, node_track
from tests.services.kube_node import KubeNode


@pytest.fixture(scope="session")
def node_images(kube_node: KubeNode, request: pytest.FixtureRequest) -> KubeNode:
    """The node with lbcloud's images loaded (built and cached on the first session).

    They are built in the suite's own Docker Engine when one runs here (its layer cache survives
    sessions, so a source change rebuilds only the last layers), else in the node's Docker."""
    builder_env = None
    try:
        engine = request.getfixturevalue("docker_engine")
        builder_env = engine.env()
    except pytest.skip.Exception:
        pass  # no engine of the suite's own: the node's Docker builds them
    try:
        load_lbcloud_images(kube_node, builder_env)
    except RuntimeError as err:
        pytest.fail(str(err))
    return kube_node


@pytest.fixture(scope="session")
def agent_images(node_images: KubeNode, tmp_path_factory: pytest.TempPathFactory) -> AgentImages:
    return AgentImages(node_images, tmp_path_factory.mktemp("agent-images"))


@pytest.fixture
def node_dispatcher(
    node_images: KubeNode, kube_node_namespace: str, tmp_path: Path
) -> Iterator[Callable[..., NodeDispatcher]]:
    """Make (not start) a :class:`NodeDispatcher` on the test's namespace; stopped after the test."""
    made: list[NodeDispatcher] = []

    def make(tracks: list[dict[str, Any]] | None = None) -> NodeDispatcher:
        dispatcher = NodeDispatcher(node_images, kube_node_namespace, tmp_path, tracks=tracks or [node_track()])
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()
