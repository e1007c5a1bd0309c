"""Helpers of the ``k8s_node`` tier (lbcloud's Kubernetes backend on a real node), also used by
``benchmarks/bench_k8s_node.py``.

They put lbcloud's images into the node's Docker (``scripts/build-images``, then a
``docker save`` archive cached by a hash of everything the images are built from, so later sessions
only ``docker load``) and build participant images from sample and hostile agents. Per test,
:class:`NodeDispatcher` runs ``lbcloud serve`` on the host with the Kubernetes backend, listening on
the bridge address only: the reporters in the pods reach it there with their per-attempt tokens.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.settings import default_tracks, load_settings, sumo_routes_file
from tests.services.kube_node import KubeNode

REPO = Path(__file__).resolve().parents[3]
AGENTS = REPO / "examples" / "agents"
HOSTILE = Path(__file__).resolve().parent / "agents"
BUILD_IMAGES = REPO / "scripts" / "build-images"
LBCLOUD_IMAGE = "lbcloud:latest"
AGENT_BASE_IMAGE = "lbcloud-sumo-agent:latest"
IMAGE_INPUTS = ("scripts/build-images", "deploy", "pyproject.toml", "requirements.lock", "README.md", "src")
SERVE_START_TIMEOUT_S = 60


def image_cache_dir() -> Path:
    root = os.environ.get("LBCLOUD_IMAGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lbcloud", "images"
    )
    return Path(root)


def images_key() -> str:
    """A hash of every file lbcloud's images are built from (a change rebuilds them)."""
    digest = hashlib.sha256()
    for item in IMAGE_INPUTS:
        path = REPO / item
        if not path.exists():
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load_lbcloud_images(node: KubeNode, builder_env: dict[str, str] | None = None) -> None:
    """lbcloud's images in the node's Docker: from the cached archive, else built and then cached.

    ``builder_env`` names another Docker daemon (``DOCKER_HOST``) to build in, e.g. the suite's own
    engine whose data root keeps its layer cache between sessions: a change to ``src`` then rebuilds
    only the last layers there, and the images move to the node as a ``docker save`` archive. Without
    it they are built in the node's Docker, which starts empty in every session.

    ``LBCLOUD_TEST_NODE_IMAGES=keep`` uses the images a reused node (``LBCLOUD_TEST_KUBE_NODE_DIR``)
    already holds, whatever they were built from: for iterating on the tests only."""
    if os.environ.get("LBCLOUD_TEST_NODE_IMAGES") == "keep" and node.has_image(LBCLOUD_IMAGE):
        return
    key = images_key()
    marker = f"lbcloud-node-images:{key}"  # a tag saying which sources this node's images come from
    if node.has_image(marker) and node.has_image(AGENT_BASE_IMAGE):
        return
    cache = image_cache_dir()
    archive = cache / f"node-images-{key}.tar"
    if archive.is_file():
        node.docker("load", "-i", str(archive), timeout=900)
        if node.has_image(LBCLOUD_IMAGE) and node.has_image(AGENT_BASE_IMAGE):
            node.docker("tag", LBCLOUD_IMAGE, marker)
            return
    if not BUILD_IMAGES.is_file():
        raise RuntimeError(f"{BUILD_IMAGES} is missing: lbcloud's images cannot be built")
    env = builder_env or node.env()
    built = subprocess.run(
        ["bash", str(BUILD_IMAGES)], env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    if built.returncode != 0:
        raise RuntimeError(f"scripts/build-images failed ({built.returncode}):\n{built.stderr[-4000:]}")
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("node-images-*.tar"):
        old.unlink(missing_ok=True)  # one archive at a time: they are large
    partial = archive.with_suffix(".tar.partial")
    saved = subprocess.run(
        ["docker", "save", "-o", str(partial), LBCLOUD_IMAGE, AGENT_BASE_IMAGE],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if saved.returncode != 0:
        raise RuntimeError(f"docker save of lbcloud's images failed:\n{saved.stderr[-2000:]}")
    partial.rename(archive)
    if builder_env is not None:
        node.docker("load", "-i", str(archive), timeout=900)
    node.docker("tag", LBCLOUD_IMAGE, marker)


@dataclass
class AgentImages:
    """Builds participant images ``team/<name>:1`` FROM the SUMO agent base image (once per session)."""

    node: KubeNode
    workdir: Path
    built: dict[str, str] = field(default_factory=dict)

    def build(self, name: str, agent_file: Path, *, extra_files: tuple[Path, ...] = ()) -> str:
        if name in self.built:
            return self.built[name]
        ref = f"team/{name}:1"
        context = self.workdir / name
        context.mkdir(parents=True, exist_ok=True)
        shutil.copy(agent_file, context / "agent.py")
        for extra in (AGENTS / "competent.py", *extra_files):  # the other agents build on the competent one
            shutil.copy(extra, context / extra.name)
        (context / "Dockerfile").write_text(
            f"FROM {AGENT_BASE_IMAGE}\n"
            "COPY --chown=10001:10001 . /home/lbcloud/agent/\n"
            "ENV TEAM_AGENT=/home/lbcloud/agent/agent.py\n",
            encoding="utf-8",
        )
        self.node.docker("build", "--network", "none", "-t", ref, str(context), timeout=600)
        self.built[name] = ref
        return ref

    def sample(self, file_name: str) -> str:
        """An image of one of ``examples/agents``."""
        return self.build(Path(file_name).stem.replace("_", "-"), AGENTS / file_name)

    def hostile(self, file_name: str, *, extra_files: tuple[Path, ...] = (), tag: str = "") -> str:
        """An image of one of this tier's hostile agents (``agents/``)."""
        name = f"hostile-{Path(file_name).stem.replace('_', '-')}{tag}"
        return self.build(name, HOSTILE / file_name, extra_files=extra_files)


def node_track(**changes: Any) -> dict[str, Any]:
    """The built-in sumo-test track sized for the test node (2 cores shared with the suite)."""
    track = next(t for t in default_tracks() if t.name == "sumo-test")
    data = track.model_dump(mode="json")
    data["pool"].update(
        {"slots": 2, "cpu": "400m", "memory": "768Mi", "simulator_cpu": "400m", "simulator_memory": "768Mi"}
    )
    # the node is shared with the rest of the suite: generous budgets, so only real faults fail
    data.update({"budget_base_s": 240.0, "setup_timeout_s": 60.0, "silence_timeout_s": 60.0})
    data.update(changes)
    return data


def single_route_track(workdir: Path, route_set: str = "sumo-dev", route: str = "0", **changes: Any) -> dict[str, Any]:
    """A track of one route of a shipped set. The file keeps the set's name, so the pods find the
    route in the image's own copy (``routes/<name>``) while the dispatcher plans just this one."""
    source = ET.parse(sumo_routes_file(route_set))
    root = source.getroot()
    for element in list(root):
        if element.tag == "route" and element.get("id") != route:
            root.remove(element)
    folder = workdir / f"routes-{route_set}-{route}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{route_set}.xml"
    source.write(target, encoding="UTF-8", xml_declaration=True)
    changes = {"name": "node-one", "routes_file": str(target), "smoke_route": None, "public_routes": [], **changes}
    return node_track(**changes)


def free_port_on(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


class NodeDispatcher:
    """``lbcloud serve`` with the Kubernetes backend, listening on the bridge address only."""

    def __init__(self, node: KubeNode, namespace: str, workdir: Path, *, tracks: list[dict[str, Any]]) -> None:
        self.node = node
        self.namespace = namespace
        self.workdir = workdir
        self.port = free_port_on(node.bridge_address)
        self.operator_token = secrets.token_urlsafe(24)
        self.config = workdir / "lbcloud.yaml"
        self.log = workdir / "serve.log"
        settings = {
            "data_dir": str(workdir / "data"),
            "backend": "kubernetes",
            "kubernetes": {
                "namespace": namespace,
                "kubeconfig": str(node.kubeconfig),
                "image": LBCLOUD_IMAGE,
                "dispatcher_url": f"http://{node.bridge_address}:{self.port}",
                "compat": "1.20",
                "image_pull_policy": "Never",
            },
            "web": {"host": node.bridge_address, "port": self.port, "operator_token": self.operator_token},
            "dispatcher": {"owner": "node-dispatcher", "tick_s": 0.2, "lease_s": 10},
            "tracks": tracks,
        }
        self.config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None
        self._system: System | None = None

    @property
    def system(self) -> System:
        """An in-process view of the same store and artifacts (reads; submissions)."""
        if self._system is None:
            self._system = build_system(load_settings(self.config))
        return self._system

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lbcloud", "--config", str(self.config), *args],
            capture_output=True, text=True, timeout=timeout, check=False, cwd=self.workdir,
        )  # fmt: skip

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lbcloud", "--config", str(self.config), "serve"],
                stdout=log, stderr=log, start_new_session=True, cwd=self.workdir,
            )  # fmt: skip
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"lbcloud serve exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with socket.create_connection((self.node.bridge_address, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"lbcloud serve did not listen within {SERVE_START_TIMEOUT_S} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group (no chance to clean up)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        if self._system is not None:
            self._system.close()

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def submit(self, image: str, *, team: str = "alpha", track: str = "sumo-test") -> int:
        """``lbcloud submit --image`` as a team runs it; returns the submission id."""
        done = self.cli("submit", "--track", track, "--team", team, "--image", image)
        match = re.search(r"submission (\d+) recorded", done.stdout)
        assert done.returncode == 0 and match, done.stdout + done.stderr
        return int(match.group(1))

    def wait_settled(self, submission_id: int, timeout_s: float) -> SubmissionStatus:
        store = self.system.store
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = store.get_submission(submission_id).status
            if status.terminal:
                return status
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"lbcloud serve died ({self.process.returncode}):\n{self.tail()}")
            time.sleep(0.5)
        raise AssertionError(f"submission {submission_id} not settled within {timeout_s} s:\n{self.tail()}")
