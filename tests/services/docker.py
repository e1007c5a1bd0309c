"""pytest fixtures for a real Docker Engine (``dockerd``) started by the suite, and lbcloud's images in it.

The engine runs as its own daemon beside any other on the machine: its own ``--data-root``,
``--exec-root``, unix socket, pidfile and containerd namespace, the ``overlay2`` storage driver
where it works and ``vfs`` (works everywhere, cgroup v1 included) where it does not, no default
bridge and no iptables rules (attempts use no bridge network: agents live in their simulator's
loopback-only network namespace). The data root is kept
under ``~/.cache/lbcloud/test-dockerd`` so the images built once (``scripts/build-images``, whose
base root file system is itself cached) are there for the next run; one test session uses it at a
time (a lock file), others wait for it.

Tests are skipped, with the reason, only when no engine can run: ``dockerd`` not installed, not
root, or the daemon does not come up.

Fixtures:

- ``docker_engine`` (session): a :class:`DockerTestEngine` (``.url`` for ``DOCKER_HOST``, ``.client``).
- ``lbcloud_images`` (session): runs ``scripts/build-images`` against that engine; the image names.
- ``team_image`` (session): builds a team's image FROM the SUMO agent base image around one agent file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import docker
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lbcloud"
EXAMPLES = REPO_ROOT / "examples" / "agents"
HOSTILE = REPO_ROOT / "tests" / "adapters" / "backends" / "docker" / "agents"
TEAM_DOCKERFILE = """FROM lbcloud-sumo-agent:latest
COPY --chown=10001:10001 . /home/lbcloud/agent/
ENV TEAM_AGENT=/home/lbcloud/agent/{agent}
{extra}
"""
LOCK_WAIT_S = 1800.0
START_TIMEOUT_S = 60.0
# overlay2 where the kernel and file system allow it (fast), else vfs (works everywhere, copies layers)
STORAGE_DRIVERS = ("overlay2", "vfs")


@dataclass(frozen=True)
class DockerTestEngine:
    __test__ = False

    url: str
    client: docker.DockerClient
    root: Path

    def env(self) -> dict[str, str]:
        """The environment of a process that should talk to this engine."""
        return {**os.environ, "DOCKER_HOST": self.url}


class EngineUnavailable(Exception):
    """No Docker Engine can run here (the reason is the message)."""


def _take_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise EngineUnavailable(f"another session holds {path} for longer than {LOCK_WAIT_S:.0f} s") from None
            time.sleep(1.0)


def _start_dockerd(
    dockerd: str, data_root: Path, run: Path, url: str, driver: str, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            dockerd,
            "--data-root",
            str(data_root),
            "--exec-root",
            str(run / "exec"),
            "-H",
            url,
            "--pidfile",
            str(run / "docker.pid"),
            "--storage-driver",
            driver,
            "--bridge",
            "none",
            "--iptables=false",
            "--ip-masq=false",
            "--containerd-namespace",
            "lbcloud-test",
            "--containerd-plugins-namespace",
            "lbcloud-test-plugins",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(proc: subprocess.Popen[bytes], url: str) -> docker.DockerClient | None:
    """A client of the daemon once it answers; None when it exited (e.g. the storage driver cannot work)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            client = docker.DockerClient(base_url=url, timeout=60)
            client.ping()
            return client
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return None


@contextlib.contextmanager
def private_engine() -> Iterator[DockerTestEngine]:
    """A dockerd of our own (see the module docstring) for the duration of the block; raises
    EngineUnavailable when none can run here. Used by the tests and by benchmarks/bench_docker.py."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineUnavailable("dockerd is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd needs root to run here")
    lock = _take_lock(CACHE / "test-dockerd.lock")
    data_root = CACHE / "test-dockerd"
    run = Path(tempfile.mkdtemp(prefix="lbcloud-dockerd-", dir="/tmp"))  # short: unix socket paths are short
    url = f"unix://{run}/docker.sock"
    log = open(run / "dockerd.log", "wb")  # noqa: SIM115
    proc: subprocess.Popen[bytes] | None = None
    client = None
    try:
        for driver in STORAGE_DRIVERS:
            proc = _start_dockerd(dockerd, data_root, run, url, driver, log)
            client = _wait_for(proc, url)
            if client is not None:
                break
        if client is None:
            tail = (run / "dockerd.log").read_text(errors="replace")[-800:]
            raise EngineUnavailable(f"dockerd cannot run here (tried {', '.join(STORAGE_DRIVERS)}): {tail}")
        # leftovers of an interrupted earlier session
        for container in client.containers.list(all=True, filters={"label": "io.lbcloud.backend=docker"}):
            container.remove(force=True)
        yield DockerTestEngine(url, client, run)
    finally:
        if client is not None:
            client.close()
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(run, ignore_errors=True)
        os.close(lock)


def build_lbcloud_images(engine: DockerTestEngine) -> list[str]:
    """``scripts/build-images`` into ``engine`` (quick when nothing changed); the image names.
    Raises RuntimeError with the script's last output when it fails."""
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-images")],
        check=False,
        env=engine.env(),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/build-images failed:\n{done.stderr[-3000:]}")
    return done.stdout.split()


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerTestEngine]:
    try:
        with private_engine() as engine:
            yield engine
    except EngineUnavailable as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def lbcloud_images(docker_engine: DockerTestEngine) -> list[str]:
    """lbcloud's images, built into the test engine (quick when nothing changed)."""
    try:
        names = build_lbcloud_images(docker_engine)
    except RuntimeError as err:
        pytest.fail(str(err))
    # the cached data root keeps only what is tagged: images a rebuild replaced go
    docker_engine.client.images.prune(filters={"dangling": True})
    return names


@pytest.fixture(scope="session")
def team_image(
    docker_engine: DockerTestEngine, lbcloud_images: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., str]:
    """Builds a team's image FROM the SUMO agent base image with one agent file (and competent.py,
    which the sample agents build on); returns its tag. ``env`` adds ENV lines."""
    built: dict[str, str] = {}

    def build(agent: str, *, env: dict[str, str] | None = None, tag: str | None = None) -> str:
        tag = tag or f"lbcloud-test/{Path(agent).stem}:v1"
        if tag in built:
            return tag
        context = tmp_path_factory.mktemp("team-image")
        source = EXAMPLES / agent if (EXAMPLES / agent).exists() else HOSTILE / agent
        shutil.copy(source, context / source.name)
        shutil.copy(EXAMPLES / "competent.py", context / "competent.py")
        extra = "\n".join(f"ENV {k}={v}" for k, v in (env or {}).items())
        (context / "Dockerfile").write_text(TEAM_DOCKERFILE.format(agent=source.name, extra=extra))
        docker_engine.client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        built[tag] = tag
        return tag

    return build
