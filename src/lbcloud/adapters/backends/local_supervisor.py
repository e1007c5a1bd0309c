"""The per-attempt supervisor of the local backend (runs as its own process and session).

``python -m lbcloud.adapters.backends.local_supervisor <workdir>`` reads ``<workdir>/spec.json``,
starts the simulator, waits until its port listens (no fixed sleeps), starts the evaluator, and
watches both: the attempt's wall-clock budget (none when it is 0), silent output (no log or
checkpoint growth) and simulator death. It ends with ``<workdir>/result.json`` (written atomically), which is what the
dispatcher reads. Because it lives in its own session with its output in files, a dispatcher that
dies (even SIGKILL) loses nothing: the attempt finishes and is collected after a restart.

SIGTERM (cancel) stops both process groups: SIGTERM, then SIGKILL after a short grace.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from lbcloud.adapters.backends.local_ports import listener_owned_by

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
PID_FILE = "supervisor.pid"
READY_FILE = "simulator.ready"
GROUPS_FILE = "groups.json"
SIMULATOR_DEATH_GRACE_S = 1.0  # after the simulator dies, the evaluator's chance to exit on its own


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """What the backend asks the supervisor to run (serialised as ``spec.json``)."""

    simulator: list[str]
    evaluator: list[str]
    port: int
    budget_s: float
    silence_timeout_s: float
    ready_timeout_s: float = 60.0
    grace_s: float = 1.0
    env: dict[str, str] = field(default_factory=dict)
    checkpoint: str = "checkpoint.json"


@dataclass(frozen=True, slots=True)
class SupervisorResult:
    """How the attempt ended, as seen from outside the evaluator.

    ``ended_by`` is ``exit`` (the evaluator exited on its own), ``budget``, ``silence``,
    ``simulator_not_ready``, ``simulator_died``, ``cancelled`` or ``spawn_error``.
    ``simulator_died_at`` is when the simulator exited with an error while the evaluator still ran."""

    ended_by: str
    exit_code: int | None
    simulator_exit_code: int | None
    detail: str
    started_at: float
    simulator_ready_at: float | None
    ended_at: float
    simulator_died_at: float | None = None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def port_listening(port: int, netns_pid: int | None = None) -> bool:
    """Whether something listens on TCP ``port`` on this host (or in the network namespace of process
    ``netns_pid``, e.g. a container's), without connecting to it.

    A probe connection would use up the simulator's single client session, so on Linux the kernel's
    socket table is read instead; elsewhere a connect probe is the fallback (this host only)."""
    hex_port = f":{port:04X}"
    found_table = False
    proc = "/proc" if netns_pid is None else f"/proc/{netns_pid}"
    for table in (f"{proc}/net/tcp", f"{proc}/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                found_table = True
                next(fh, None)
                for line in fh:
                    parts = line.split()
                    if len(parts) > 3 and parts[1].endswith(hex_port) and parts[3] == "0A":
                        return True
        except OSError:
            continue
    if found_table or netns_pid is not None:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # pragma: no cover - non-Linux
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def exit_handle(pid: int) -> int | None:
    """A file descriptor that becomes readable when process ``pid`` ends (Linux pidfd), or None
    where there is none (an old kernel, another system, a process already gone)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def wait_any_exit(handles: list[int], timeout_s: float) -> None:
    """Sleep up to ``timeout_s``, waking as soon as a process behind one of ``handles`` ends."""
    if timeout_s <= 0:
        return
    if not handles:
        time.sleep(timeout_s)
        return
    with contextlib.suppress(OSError, ValueError):
        select.select(handles, [], [], timeout_s)


def _close_handles(handles: list[int]) -> None:
    for handle in handles:
        with contextlib.suppress(OSError):
            os.close(handle)


def _kill_group(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


class Supervisor:
    """Runs one attempt (see the module docstring)."""

    def __init__(self, workdir: Path, spec: SupervisorSpec | None = None) -> None:
        self.workdir = workdir
        if spec is None:
            spec = SupervisorSpec(**json.loads((workdir / SPEC_FILE).read_text(encoding="utf-8")))
        self.spec = spec
        self.ready_at: float | None = None
        self.simulator: subprocess.Popen[bytes] | None = None
        self.evaluator: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        self._logs: list[IO[bytes]] = []
        self._own_log = open(workdir / "lbcloud.log", "ab", buffering=0)  # noqa: SIM115

    def note(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        self._own_log.write(f"{stamp} supervisor: {message}\n".encode())

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self._cancelled = True

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        out = open(self.workdir / log_name, "ab", buffering=0)  # noqa: SIM115
        self._logs.append(out)
        env = {**os.environ, **self.spec.env}
        return subprocess.Popen(
            argv,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    @staticmethod
    def _wait_for_an_exit(procs: Sequence[subprocess.Popen[bytes] | None], timeout_s: float) -> None:
        """Sleep up to ``timeout_s``, waking as soon as one of ``procs`` still running ends (polling
        every 20 ms where a process has no exit handle)."""
        running = [p for p in procs if p is not None and p.poll() is None]
        handles = [h for h in (exit_handle(p.pid) for p in running) if h is not None]
        try:
            wait_any_exit(handles, timeout_s if len(handles) == len(running) else min(timeout_s, 0.02))
        finally:
            _close_handles(handles)

    def _record_groups(self) -> None:
        groups = [p.pid for p in (self.simulator, self.evaluator) if p is not None]
        _write_json_atomic(self.workdir / GROUPS_FILE, {"groups": groups})

    def stop_all(self) -> None:
        procs = [self.evaluator, self.simulator]
        for proc in procs:
            _kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.spec.grace_s
        while (left := deadline - time.monotonic()) > 0 and any(p is not None and p.poll() is None for p in procs):
            self._wait_for_an_exit(procs, left)
        for proc in procs:
            _kill_group(proc, signal.SIGKILL)
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
        # anything else left in the groups (grandchildren)
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)

    def run(self) -> SupervisorResult:
        self.handle_signals()
        started = time.time()
        try:
            failed = self.start_simulator(started)
            if failed is not None:
                return failed
            assert self.ready_at is not None
            return self.run_evaluator(started, self.ready_at)
        except OSError as err:
            return self._end("spawn_error", None, f"could not start a process: {err}", started, self.ready_at)
        finally:
            self.stop_all()

    def handle_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def start_simulator(self, started: float) -> SupervisorResult | None:
        """Start the simulator and wait until it listens; its failure as a result, None when ready."""
        self.simulator = self._spawn(self.spec.simulator, "simulator.log")
        self._record_groups()
        self.note(f"simulator started (pid {self.simulator.pid}), waiting for port {self.spec.port}")
        ready_deadline = time.monotonic() + self.spec.ready_timeout_s
        foreign_noted = False
        # ready means *our* simulator listens: a foreign listener on the port is not readiness
        while (owned := listener_owned_by(self.spec.port, self.simulator.pid)) is not True:
            if owned is False and not foreign_noted:
                foreign_noted = True
                self.note(f"port {self.spec.port} is held by a process outside this attempt; still waiting")
            if self._cancelled:
                return self._end("cancelled", None, "cancelled before the simulator was ready", started, None)
            if self.simulator.poll() is not None:
                return self._end(
                    "simulator_not_ready",
                    None,
                    f"the simulator exited with code {self.simulator.returncode} before it was ready",
                    started,
                    None,
                )
            if time.monotonic() > ready_deadline:
                return self._end(
                    "simulator_not_ready",
                    None,
                    f"the simulator did not listen on port {self.spec.port} within {self.spec.ready_timeout_s:g} s",
                    started,
                    None,
                )
            time.sleep(0.01)
        self.ready_at = time.time()
        return None

    def run_evaluator(self, started: float, ready_at: float) -> SupervisorResult:
        """With the simulator ready: start the evaluator and watch the attempt to its end."""
        (self.workdir / READY_FILE).write_text(f"{ready_at}\n")
        self.note("simulator ready; starting the evaluator")
        self.evaluator = self._spawn(self.spec.evaluator, "agent.log")
        self._record_groups()
        return self._watch(started, ready_at)

    def _watch(self, started: float, ready_at: float) -> SupervisorResult:
        assert self.evaluator is not None
        # budget_s 0: no wall-clock budget (the official CARLA system has none, see docs/carla.md)
        budget_deadline = time.monotonic() + self.spec.budget_s if self.spec.budget_s > 0 else float("inf")
        watched = [self.workdir / "agent.log", self.workdir / self.spec.checkpoint]
        last_sizes = [_size(p) for p in watched]
        last_growth = time.monotonic()
        died_at: float | None = None
        while True:
            code = self.evaluator.poll()
            if code is not None:
                return self._end(
                    "exit", code, f"the evaluator exited with code {code}", started, ready_at, died_at=died_at
                )
            sim_code = self.simulator.poll() if self.simulator is not None else None
            if died_at is None and sim_code is not None and sim_code != 0:
                died_at = time.time()
                self.note(f"the simulator died (exit {sim_code}) while the evaluator ran")
            if died_at is not None and time.time() - died_at > SIMULATOR_DEATH_GRACE_S:
                return self._end(
                    "simulator_died", None, f"the simulator died during the route (exit code {sim_code})",
                    started, ready_at, died_at=died_at,
                )  # fmt: skip
            if self._cancelled:
                return self._end("cancelled", None, "cancelled on request", started, ready_at)
            now = time.monotonic()
            if now > budget_deadline:
                return self._end(
                    "budget", None, f"the attempt exceeded its wall-clock budget of {self.spec.budget_s:.0f} s",
                    started, ready_at,
                )  # fmt: skip
            sizes = [_size(p) for p in watched]
            if sizes != last_sizes:
                last_sizes, last_growth = sizes, now
            elif now - last_growth > self.spec.silence_timeout_s:
                return self._end(
                    "silence", None,
                    f"the agent produced no output and no progress for {self.spec.silence_timeout_s:.0f} s (hung)",
                    started, ready_at,
                )  # fmt: skip
            # wakes at once when the evaluator or the simulator ends
            self._wait_for_an_exit([self.evaluator, self.simulator], 0.05)

    def _end(
        self,
        ended_by: str,
        exit_code: int | None,
        detail: str,
        started: float,
        ready_at: float | None,
        *,
        died_at: float | None = None,
    ) -> SupervisorResult:
        self.stop_all()  # the slot is free only once every process of the attempt is gone
        sim_code = self.simulator.poll() if self.simulator is not None else None
        result = SupervisorResult(
            ended_by=ended_by,
            exit_code=exit_code,
            simulator_exit_code=sim_code,
            detail=detail,
            started_at=started,
            simulator_ready_at=ready_at,
            ended_at=time.time(),
            simulator_died_at=died_at,
        )
        self.note(f"ended ({ended_by}): {detail}")
        _write_json_atomic(self.workdir / RESULT_FILE, asdict(result))
        return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--standby":
        from lbcloud.adapters.backends.local_standby import run_standby

        return run_standby(Path(args[1]))
    if len(args) != 1:
        print("usage: python -m lbcloud.adapters.backends.local_supervisor WORKDIR", file=sys.stderr)
        return 2
    workdir = Path(args[0])
    (workdir / PID_FILE).write_text(f"{os.getpid()}\n")
    if (workdir / RESULT_FILE).exists():
        return 0  # the attempt was ended before this supervisor got going (abandoned after a restart)
    Supervisor(workdir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
