"""Standby attempts: the next attempt's supervisor and simulator start while the current route runs.

Starting a supervisor, a simulator and waiting for its port takes a second or two, which a slot would
otherwise spend idle between two routes. So the local backend keeps one *standby*: a supervisor in
``<workdir>/standby-<n>`` that has started a fresh simulator on a reserved port and waits, ready, for
an attempt. A launch of the same track takes it: the folder is renamed ``attempt-<id>`` (the running
processes keep their files, and find the new name through their working directory) and the
attempt's ``spec.json`` is written into it; the supervisor then starts the evaluator at once.

Every standby's simulator is a fresh process used by one attempt only, so no state carries over
between attempts. A standby not taken within :data:`STANDBY_MAX_WAIT_S`, or whose dispatcher went
away, stops by itself; the backend stops its standbys when it closes. Only tracks whose simulator
command needs nothing but ``{port}`` get standbys (other placeholders name the attempt).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from lbcloud.adapters.backends.local_ports import reserve_port
from lbcloud.adapters.backends.local_supervisor import (
    GROUPS_FILE,
    PID_FILE,
    READY_FILE,
    RESULT_FILE,
    SPEC_FILE,
    Supervisor,
    SupervisorSpec,
    pid_alive,
)
from lbcloud.adapters.backends.local_warm import hand_over, matches, warm_command
from lbcloud.domain.errors import LbcloudError
from lbcloud.domain.tracks import Track

STANDBY_FILE = "standby.json"
STANDBY_MAX_WAIT_S = 600.0
TAKE_MARGIN_S = 60.0  # never hand out a standby this close to giving up


@dataclass(frozen=True, slots=True)
class StandbySpec:
    """What a standby supervisor starts before it has an attempt (``standby.json``)."""

    simulator: list[str]
    port: int
    ready_timeout_s: float
    grace_s: float
    env: dict[str, str]
    parent_pid: int
    max_wait_s: float = STANDBY_MAX_WAIT_S
    warm: list[str] | None = None  # a warm evaluator process started with the simulator (see local_warm)


def run_standby(folder: Path) -> int:
    """The standby supervisor (``local_supervisor --standby FOLDER``): start the simulator, wait for
    an attempt's ``spec.json``, then run that attempt like any supervisor."""
    os.chdir(folder)
    (folder / PID_FILE).write_text(f"{os.getpid()}\n")
    standby = StandbySpec(**json.loads((folder / STANDBY_FILE).read_text(encoding="utf-8")))
    waiting = SupervisorSpec(
        simulator=standby.simulator, evaluator=[], port=standby.port, budget_s=0.0, silence_timeout_s=0.0,
        ready_timeout_s=standby.ready_timeout_s, grace_s=standby.grace_s, env=standby.env,
    )  # fmt: skip
    supervisor = Supervisor(folder, spec=waiting)
    supervisor.handle_signals()
    started = time.time()
    try:
        if supervisor.start_simulator(started) is not None:
            return 0  # its result.json tells the backend this standby is unusable
        if standby.warm is not None:
            supervisor.evaluator = supervisor._spawn(standby.warm, "agent.log")
            supervisor._record_groups()
        (folder / READY_FILE).write_text(f"{supervisor.ready_at}\n")
        deadline = time.monotonic() + standby.max_wait_s
        here = Path(".")
        while not (here / SPEC_FILE).exists():
            gone = supervisor.simulator is None or supervisor.simulator.poll() is not None
            if supervisor.cancelled or gone or os.getppid() != standby.parent_pid or time.monotonic() > deadline:
                supervisor.note("standby stopped before an attempt took it")
                return 0
            time.sleep(0.01)
        supervisor.workdir = Path.cwd()  # renamed to the attempt's folder
        supervisor.spec = SupervisorSpec(**json.loads((here / SPEC_FILE).read_text(encoding="utf-8")))
        supervisor.note(f"standby taken by {supervisor.workdir.name}")
        assert supervisor.ready_at is not None
        warm = supervisor.evaluator
        if standby.warm is not None and warm is not None:
            if warm.poll() is None and matches(standby.warm, supervisor.spec.evaluator):
                hand_over(supervisor.workdir, supervisor.spec.evaluator, supervisor.spec.env)
                supervisor.note("the warm evaluator takes the attempt")
                (supervisor.workdir / READY_FILE).write_text(f"{supervisor.ready_at}\n")
                supervisor._watch(started, supervisor.ready_at)
                return 0
            _stop_group(warm)  # not usable for this attempt: start the evaluator the ordinary way
            supervisor.evaluator = None
        supervisor.run_evaluator(started, supervisor.ready_at)
        return 0
    except OSError as err:
        supervisor.note(f"standby failed: {err}")
        return 0
    finally:
        supervisor.stop_all()


@dataclass
class Standby:
    folder: Path
    port: int
    key: tuple[str, ...]
    process: subprocess.Popen[bytes]
    started: float


class StandbyPool:
    """The backend's side: keeps up to ``size`` standbys and hands one out per launch."""

    def __init__(
        self,
        workdir: Path,
        *,
        python: str,
        port_range: tuple[int, int],
        port_lock_dir: Path | None,
        ready_timeout_s: float,
        grace_s: float,
        size: int = 1,
        env: Mapping[str, str] | None = None,
        warm: bool = True,
    ) -> None:
        self.workdir = workdir
        self._python = python
        self._ports = port_range
        self._lock_dir = port_lock_dir
        self._ready_timeout = ready_timeout_s
        self._grace = grace_s
        self.size = size
        self.warm = warm  # also start the evaluator's Python (see local_warm)
        self._env = dict(env) if env is not None else None  # the supervisors' environment
        self._standbys: list[Standby] = []
        self._serial = 0
        self._clear_leftovers()

    @staticmethod
    def simulator_command(track: Track, port: int) -> list[str] | None:
        """The track's simulator argv for ``port``, or None when it needs more than the port."""
        if track.local is None:
            return None
        try:
            return [item.format(port=port) for item in track.local.simulator]
        except (KeyError, IndexError, ValueError):
            return None

    def take(self, track: Track) -> Standby | None:
        """A ready standby for ``track``'s simulator, now owned by the caller (None: none ready)."""
        key = tuple(track.local.simulator) if track.local else ()
        now = time.monotonic()
        for standby in list(self._standbys):
            usable = (
                standby.key == key
                and standby.process.poll() is None
                and (standby.folder / READY_FILE).exists()
                and not (standby.folder / RESULT_FILE).exists()
                and now - standby.started < STANDBY_MAX_WAIT_S - TAKE_MARGIN_S
            )
            if usable:
                self._standbys.remove(standby)
                return standby
        return None

    def refill(self, track: Track) -> None:
        """Start standbys for ``track`` up to the pool's size; drop dead or stale ones."""
        for standby in list(self._standbys):
            if standby.process.poll() is not None or (standby.folder / RESULT_FILE).exists():
                self._standbys.remove(standby)
                self._stop(standby)
        key = tuple(track.local.simulator) if track.local else ()
        for standby in [s for s in self._standbys if s.key != key]:  # another track's: not needed now
            self._standbys.remove(standby)
            self._stop(standby)
        while len(self._standbys) < self.size:
            started = self._start(track, key)
            if started is None:
                return
            self._standbys.append(started)

    def close(self) -> None:
        for standby in self._standbys:
            self._stop(standby)
        self._standbys.clear()

    def _start(self, track: Track, key: tuple[str, ...]) -> Standby | None:
        try:
            reservation = reserve_port(*self._ports, self._lock_dir)
        except LbcloudError:
            return None  # every port is in use: launches go the cold way
        try:
            command = self.simulator_command(track, reservation.port)
            if command is None:
                return None
            self._serial += 1
            folder = self.workdir / f"standby-{os.getpid()}-{self._serial}"
            folder.mkdir(parents=True, exist_ok=True)
            spec = StandbySpec(
                simulator=command, port=reservation.port, ready_timeout_s=self._ready_timeout, grace_s=self._grace,
                env={"PYTHONUNBUFFERED": "1"}, parent_pid=os.getpid(),
                warm=warm_command(track.local.evaluator) if track.local is not None and self.warm else None,
            )  # fmt: skip
            (folder / STANDBY_FILE).write_text(json.dumps(asdict(spec)), encoding="utf-8")
            process = subprocess.Popen(
                [self._python, "-m", "lbcloud.adapters.backends.local_supervisor", "--standby", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=open(folder / "supervisor.err", "ab"),  # noqa: SIM115
                start_new_session=True,
                close_fds=True,
                env=self._env,
                pass_fds=(reservation.fd,),
            )
            return Standby(folder, reservation.port, key, process, time.monotonic())
        except OSError:
            return None
        finally:
            reservation.release()

    def _stop(self, standby: Standby) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(standby.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            standby.process.wait(timeout=self._grace + 2)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(standby.process.pid, signal.SIGKILL)
        _remove_folder(standby.folder)

    def _clear_leftovers(self) -> None:
        """Standby folders whose dispatcher is gone (it stopped or crashed): stop what is left, remove them."""
        for folder in self.workdir.glob("standby-*"):
            try:
                parent = int(json.loads((folder / STANDBY_FILE).read_text(encoding="utf-8"))["parent_pid"])
            except (OSError, ValueError, KeyError, TypeError):
                parent = -1
            if parent > 0 and pid_alive(parent):
                continue  # another dispatcher's on this workdir
            try:
                groups = json.loads((folder / GROUPS_FILE).read_text())["groups"]
            except (OSError, ValueError, KeyError):
                groups = []
            try:
                groups.append(int((folder / PID_FILE).read_text().strip()))
            except (OSError, ValueError):
                pass
            for group in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    os.killpg(int(group), signal.SIGKILL)
            _remove_folder(folder)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2)


def _remove_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()
