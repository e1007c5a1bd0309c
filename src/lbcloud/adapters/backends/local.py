"""The local backend: each attempt is a simulator process + an evaluator process on this machine.

Each attempt gets a folder ``<workdir>/attempt-<id>`` and a supervisor process
(:mod:`.local_supervisor`) in its own session, which starts the simulator, waits for its port,
starts the evaluator and enforces the watchdogs. The backend only reads files the supervisor
writes, so it never blocks, and a restarted dispatcher re-attaches to attempts that kept running
(:meth:`LocalBackend.adopt`). Logs are copied into the artifact store while they grow, each capped
at ``log_limit_bytes``; an attempt's folder is removed once the attempt is collected (its record and
logs live on in the state and artifact stores). Attempt processes get an allowlisted environment and
agents the limits of :class:`~lbcloud.adapters.backends.local_privileges.AgentPolicy`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from lbcloud.adapters.backends.local_carla import JUDGED_ENDINGS, carla_environment, judge_local_carla, keep_recording
from lbcloud.adapters.backends.local_ports import PortReservation, reserve_port
from lbcloud.adapters.backends.local_privileges import (
    AgentPolicy,
    attempt_environment,
    check_free_space,
    read_capped,
)
from lbcloud.adapters.backends.local_standby import Standby, StandbyPool
from lbcloud.adapters.backends.local_supervisor import (
    GROUPS_FILE,
    PID_FILE,
    READY_FILE,
    RESULT_FILE,
    SupervisorSpec,
    exit_handle,
    pid_alive,
    wait_any_exit,
)
from lbcloud.domain.artifact_keys import LogStream, attempt_log_key, attempt_timeline_key
from lbcloud.domain.blame import (
    EXIT_AGENT_HOST_UNAVAILABLE,
    EXIT_AGENT_REJECTED,
    EXIT_FINISHED,
    EXIT_SIMULATION_CRASHED,
    EXIT_SIMULATOR_UNREACHABLE,
    EXIT_USAGE,
    Blame,
)
from lbcloud.domain.errors import InputError, LbcloudError
from lbcloud.domain.results.model import ResultFormat, RouteRecord, route_id_for
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from lbcloud.domain.tracks import SimulatorKind
from lbcloud.services.ports import ArtifactStore, AttemptSpec, BackendEvent, BackendEventKind

log = logging.getLogger(__name__)

TIMELINE_FILE = "checkpoint.timeline.json"
MAX_TIMELINE_BYTES = 4_000_000
LOG_FILES = {LogStream.SIMULATOR: "simulator.log", LogStream.AGENT: "agent.log", LogStream.LBCLOUD: "lbcloud.log"}
LOG_UPLOAD_INTERVAL_S = 1.0


def _write_attempt_info(folder: Path, spec: AttemptSpec) -> None:
    """``attempt.json``: what a restarted dispatcher needs to adopt the attempt."""
    info = {
        "attempt": spec.attempt_id,
        "submission": spec.submission_id,
        "repetition": spec.repetition,
        "simulator": spec.track.simulator.value,
    }
    (folder / "attempt.json").write_text(json.dumps(info), encoding="utf-8")


@dataclass
class _Tracked:
    attempt_id: int
    submission_id: int
    workdir: Path
    repetition: int
    port: int
    process: subprocess.Popen[bytes] | None = None
    carla: bool = False
    running_reported: bool = False
    log_sizes: dict[LogStream, int] = field(default_factory=dict)
    last_log_upload: float = 0.0


class LocalBackend:
    """Implements :class:`lbcloud.services.ports.AttemptBackend` with local processes."""

    name = "local"

    def __init__(
        self,
        workdir: Path,
        artifacts: ArtifactStore,
        *,
        port_range: tuple[int, int] = (21000, 21999),
        cancel_grace_s: float = 1.0,
        python: str = sys.executable,
        ready_timeout_s: float = 60.0,
        policy: AgentPolicy | None = None,
        sandbox_warning: str | None = None,
        port_lock_dir: Path | None = None,
        standby: int = 1,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._artifacts = artifacts
        self._ports = port_range
        self._grace = cancel_grace_s
        self._python = python
        self._ready_timeout = ready_timeout_s
        self._port_lock_dir = port_lock_dir
        self._tracked: dict[int, _Tracked] = {}
        self._policy = policy or AgentPolicy()
        if sandbox_warning:
            log.warning("local backend: %s", sandbox_warning)
        # the next attempt's supervisor and simulator, started while the current route runs
        self._standbys = StandbyPool(
            self.workdir, python=python, port_range=port_range, port_lock_dir=port_lock_dir,
            ready_timeout_s=ready_timeout_s, grace_s=cancel_grace_s, size=standby,
            env=attempt_environment(os.environ),
        )  # fmt: skip

    # ----------------------------------------------------------------------------------- launching
    def _commands(self, spec: AttemptSpec, port: int, folder: Path) -> tuple[list[str], list[str]]:
        track = spec.track
        if track.local is None:
            raise InputError(f"track {track.name} has no local commands; it cannot run on the local backend")
        values = {
            "port": str(port),
            "routes": track.routes_file,
            "route": spec.route_id,
            "repetitions": "1",
            "checkpoint": str(folder / "checkpoint.json"),
            "agent": spec.agent.ref,
            "agent_config": spec.agent.config or "",
            "seed": str(spec.seed),
            "workdir": str(folder),
            "scorer": track.scorer.value,
            "gpu_index": "0",
            "recordings": str(folder / "recordings"),
            **self._policy.placeholders(),
        }

        def fill(argv: Sequence[str]) -> list[str]:
            try:
                return [item.format(**values) for item in argv]
            except (KeyError, IndexError, ValueError) as err:
                raise InputError(f"track {track.name}: bad placeholder in command {list(argv)}: {err}") from None

        return fill(track.local.simulator), fill(track.local.evaluator)

    def launch(self, spec: AttemptSpec) -> str:
        check_free_space(self.workdir, self._policy.min_free_mb)
        folder = self.workdir / f"attempt-{spec.attempt_id}"
        standby = self._standbys.take(spec.track) if self._standbys.size else None
        try:
            if standby is not None:
                return self._start_on_standby(spec, folder, standby)
            return self._start_cold(spec, folder)
        finally:
            if self._standbys.size:
                self._standbys.refill(spec.track)

    def _start_on_standby(self, spec: AttemptSpec, folder: Path, standby: Standby) -> str:
        os.rename(standby.folder, folder)  # its processes keep running, now in the attempt's folder
        simulator, evaluator = self._commands(spec, standby.port, folder)
        _write_attempt_info(folder, spec)
        sup = self._supervisor_spec(spec, simulator, evaluator, standby.port)
        tmp = folder / "spec.json.tmp"
        tmp.write_text(json.dumps(asdict(sup), indent=2), encoding="utf-8")
        os.replace(tmp, folder / "spec.json")  # the standby starts the evaluator once this appears
        self._tracked[spec.attempt_id] = _Tracked(
            spec.attempt_id, spec.submission_id, folder, spec.repetition, standby.port, process=standby.process,
            carla=spec.track.simulator is SimulatorKind.CARLA,
        )  # fmt: skip
        return str(folder)

    def _supervisor_spec(
        self, spec: AttemptSpec, simulator: list[str], evaluator: list[str], port: int
    ) -> SupervisorSpec:
        return SupervisorSpec(
            simulator=simulator,
            evaluator=evaluator,
            port=port,
            budget_s=spec.budget_s,
            silence_timeout_s=spec.track.silence_timeout_s,
            ready_timeout_s=self._ready_timeout,
            grace_s=self._grace,
            env={
                "PYTHONUNBUFFERED": "1",
                "LBCLOUD_ATTEMPT": str(spec.attempt_id),
                **(carla_environment(spec) if spec.track.simulator is SimulatorKind.CARLA else {}),
            },
        )

    def _start_cold(self, spec: AttemptSpec, folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        reservation = reserve_port(*self._ports, self._port_lock_dir)
        try:
            return self._start(spec, folder, reservation)
        finally:
            reservation.release()  # the supervisor holds its own copy for the attempt's whole life

    def _start(self, spec: AttemptSpec, folder: Path, reservation: PortReservation) -> str:
        port = reservation.port
        simulator, evaluator = self._commands(spec, port, folder)
        sup = self._supervisor_spec(spec, simulator, evaluator, port)
        (folder / "spec.json").write_text(json.dumps(asdict(sup), indent=2), encoding="utf-8")
        _write_attempt_info(folder, spec)
        proc = subprocess.Popen(
            [self._python, "-m", "lbcloud.adapters.backends.local_supervisor", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "supervisor.err", "ab"),  # noqa: SIM115
            start_new_session=True,
            close_fds=True,
            env=attempt_environment(os.environ),  # no settings, tokens or credentials below this point
            pass_fds=(reservation.fd,),
        )
        # known before the handle is recorded: a restart that adopts the attempt before the supervisor
        # wrote it itself still finds it alive
        (folder / PID_FILE).write_text(f"{proc.pid}\n")
        self._tracked[spec.attempt_id] = _Tracked(
            spec.attempt_id, spec.submission_id, folder, spec.repetition, port, process=proc,
            carla=spec.track.simulator is SimulatorKind.CARLA,
        )  # fmt: skip
        return str(folder)

    # ------------------------------------------------------------------------------------- polling
    def poll(self) -> list[BackendEvent]:
        events: list[BackendEvent] = []
        now = time.monotonic()
        for attempt_id, tracked in list(self._tracked.items()):
            if tracked.process is not None:
                tracked.process.poll()  # reap
            result_file = tracked.workdir / RESULT_FILE
            if result_file.exists():
                events.append(self._ended(tracked))
                del self._tracked[attempt_id]
                self._remove_folder(tracked.workdir)
                continue
            if not tracked.running_reported and (tracked.workdir / READY_FILE).exists():
                tracked.running_reported = True
                events.append(
                    BackendEvent(
                        attempt_id, BackendEventKind.RUNNING, "simulator ready, agent starting",
                        handle=str(tracked.workdir),
                    )
                )  # fmt: skip
            if now - tracked.last_log_upload >= LOG_UPLOAD_INTERVAL_S:
                self._upload_logs(tracked)
                tracked.last_log_upload = now
            if not self._supervisor_alive(tracked) and not result_file.exists():
                events.append(
                    BackendEvent(
                        attempt_id,
                        BackendEventKind.ENDED,
                        outcome=AttemptOutcome.FAILED,
                        blame=Blame.INFRASTRUCTURE,
                        reason="the attempt's supervisor process died without a result",
                        logs=self._read_logs(tracked),
                    )
                )
                del self._tracked[attempt_id]
                self._remove_folder(tracked.workdir)
        return events

    def wait(self, timeout_s: float) -> None:
        """Sleep up to ``timeout_s``; wake as soon as an attempt's supervisor ends (it has written the
        attempt's result by then), so the dispatcher collects it and refills the slot at once. Returns
        at once when an attempt's simulator got ready since the last poll (a standby's already is)."""
        if any(not t.running_reported and (t.workdir / READY_FILE).exists() for t in self._tracked.values()):
            return
        handles = []
        for tracked in self._tracked.values():
            pid = tracked.process.pid if tracked.process is not None else _pid_from(tracked.workdir / PID_FILE)
            if pid is not None and (handle := exit_handle(pid)) is not None:
                handles.append(handle)
        try:
            wait_any_exit(handles, timeout_s)
        finally:
            for handle in handles:
                os.close(handle)

    def _supervisor_alive(self, tracked: _Tracked) -> bool:
        if tracked.process is not None:
            return tracked.process.poll() is None
        pid = _pid_from(tracked.workdir / PID_FILE)
        return pid is not None and pid_alive(pid)

    def _read_logs(self, tracked: _Tracked) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for stream, name in LOG_FILES.items():
            try:
                out[stream.value] = read_capped(tracked.workdir / name, self._policy.log_limit_bytes)
            except OSError:
                continue
        return out

    def _remove_folder(self, folder: Path) -> None:
        """Remove a collected attempt's folder (its record and logs are in the event)."""
        if folder.parent == self.workdir and folder.name.startswith("attempt-"):
            shutil.rmtree(folder, ignore_errors=True)

    def _upload_logs(self, tracked: _Tracked) -> None:
        for stream, name in LOG_FILES.items():
            path = tracked.workdir / name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            previous, limit = tracked.log_sizes.get(stream), self._policy.log_limit_bytes
            if previous == size or (previous is not None and previous > limit and size > limit):
                continue  # unchanged, or grown only past the cap (the stored copy is already capped)
            try:
                data = read_capped(path, self._policy.log_limit_bytes)
                self._artifacts.put(
                    attempt_log_key(tracked.submission_id, tracked.attempt_id, stream), data, "text/plain"
                )
                tracked.log_sizes[stream] = size
            except OSError:
                continue
            except LbcloudError as err:
                log.warning("log upload failed, will retry: %s", err, extra={"attempt": tracked.attempt_id})

    def _upload_timeline(self, tracked: _Tracked) -> None:
        """The evaluator's route timeline (completion over time, infraction times), when it wrote one."""
        path = tracked.workdir / TIMELINE_FILE
        try:
            data = path.read_bytes()
        except OSError:
            return
        if len(data) > MAX_TIMELINE_BYTES:
            log.warning("timeline of attempt %s is too large (%d bytes); not kept", tracked.attempt_id, len(data))
            return
        try:
            self._artifacts.put(
                attempt_timeline_key(tracked.submission_id, tracked.attempt_id), data, "application/json"
            )
        except LbcloudError as err:
            log.warning("timeline upload failed: %s", err, extra={"attempt": tracked.attempt_id})

    def _ended(self, tracked: _Tracked) -> BackendEvent:
        self._upload_timeline(tracked)
        result = json.loads((tracked.workdir / RESULT_FILE).read_text(encoding="utf-8"))
        ended_by: str = result["ended_by"]
        code: int | None = result["exit_code"]
        logs = self._read_logs(tracked)
        if tracked.carla:
            keep_recording(self._artifacts, tracked.workdir, tracked.submission_id, tracked.attempt_id)
        found = self._record(tracked)
        text, record = found if found is not None else (None, None)
        sim_ratio = None
        if record is not None and float(record.meta.duration_system) > 0:
            sim_ratio = round(float(record.meta.duration_game) / float(record.meta.duration_system), 3)

        def event(outcome: AttemptOutcome, blame: Blame, reason: str, **more: object) -> BackendEvent:
            return BackendEvent(
                tracked.attempt_id, BackendEventKind.ENDED, outcome=outcome, blame=blame, reason=reason,
                exit_code=code, logs=logs, node=socket.gethostname(), sim_ratio=sim_ratio,
                **more,  # type: ignore[arg-type]
            )  # fmt: skip

        if tracked.carla and ended_by in JUDGED_ENDINGS:
            error = last_error_line(logs.get(LogStream.AGENT.value, b""))
            ending = judge_local_carla(result, (found[0], found[1].status) if found else None, error)
            return event(
                ending.outcome, ending.blame, ending.reason, message=ending.message, record_json=ending.record_json
            )
        if ended_by in SUPERVISOR_ENDINGS:
            outcome, blame = SUPERVISOR_ENDINGS[ended_by]
            return event(outcome, blame, result["detail"])
        if result.get("simulator_died_at") is not None and not (code == EXIT_FINISHED and record is not None):
            # the simulator died first: whatever the evaluator did next follows from that
            return event(AttemptOutcome.FAILED, Blame.SIMULATOR, "the simulator died during the route")
        outcome, blame, reason = classify_exit(code, record is not None, result.get("simulator_exit_code"))
        detail = ""
        if outcome is not AttemptOutcome.RECORD or (record is not None and record.status.startswith("Failed")):
            detail = last_error_line(logs.get(LogStream.AGENT.value, b"")) or ""
            if detail and outcome is not AttemptOutcome.RECORD:
                # the evaluator's line often repeats the reason ("the simulation crashed: ..."): say it once
                reason = detail if detail.startswith(reason) else f"{reason}: {detail}"
        keep = outcome is AttemptOutcome.RECORD or code == EXIT_SIMULATION_CRASHED
        return event(outcome, blame, reason, message=detail, record_json=text if keep else None)

    def _record(self, tracked: _Tracked) -> tuple[str, RouteRecord] | None:
        return checkpoint_record(tracked.workdir / "checkpoint.json", tracked.repetition, tracked.attempt_id)

    # ----------------------------------------------------------------------------- cancel / adopt
    def cancel(self, attempt_id: int, handle: str) -> None:
        folder = Path(handle)
        pid = _pid_from(folder / PID_FILE)
        if pid is not None and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self._grace + 0.3
            while time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.02)
        # belt and braces: whatever the supervisor left, end it now
        try:
            groups = json.loads((folder / GROUPS_FILE).read_text())["groups"]
        except (OSError, ValueError, KeyError):
            groups = []
        for group in [*groups, *([pid] if pid else [])]:
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.killpg(int(group), signal.SIGKILL)
        if not (folder / RESULT_FILE).exists():
            (folder / RESULT_FILE).write_text(
                json.dumps(
                    {
                        "ended_by": "cancelled",
                        "exit_code": None,
                        "simulator_exit_code": None,
                        "detail": "cancelled on request",
                        "started_at": 0,
                        "simulator_ready_at": None,
                        "ended_at": time.time(),
                    }
                )
            )

    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        events: list[BackendEvent] = []
        for attempt in attempts:
            if attempt.id in self._tracked:
                continue
            # No handle: the dispatcher stopped between claiming the attempt and recording its handle.
            # The supervisor may have started anyway; its folder name is known, so look there.
            found_late = not attempt.handle
            folder = Path(attempt.handle) if attempt.handle else self.workdir / f"attempt-{attempt.id}"
            if found_late and not (folder / "spec.json").exists():
                with contextlib.suppress(OSError):
                    folder.rmdir()  # created just before the stop, still empty
                events.append(_lost(attempt.id, "the dispatcher stopped before the attempt was started"))
                continue
            try:
                info = json.loads((folder / "attempt.json").read_text())
                spec = json.loads((folder / "spec.json").read_text())
            except (OSError, ValueError):
                events.append(_lost(attempt.id, f"no trace of the attempt in {folder}"))
                continue
            tracked = _Tracked(
                attempt.id, attempt.submission_id, folder, int(info.get("repetition", 0)), spec["port"],
                carla=info.get("simulator") == SimulatorKind.CARLA.value,
            )  # fmt: skip
            # a late find reports running again, so the dispatcher learns its handle
            tracked.running_reported = not found_late and (folder / READY_FILE).exists()
            if (folder / RESULT_FILE).exists() or self._supervisor_alive(tracked):
                self._tracked[attempt.id] = tracked  # collected by the next poll
            else:
                if found_late:  # a supervisor starting right now sees this result and stands down
                    self.cancel(attempt.id, str(folder))
                reason = "the attempt's processes are gone and left no result"
                events.append(_lost(attempt.id, reason, self._read_logs(tracked)))
                if not found_late:  # a late supervisor needs the cancelled result to stand down
                    self._remove_folder(folder)
        return events

    def close(self) -> None:
        self._standbys.close()
        for tracked in self._tracked.values():
            if tracked.process is not None:
                tracked.process.poll()


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def checkpoint_record(path: Path, repetition: int, attempt_id: int) -> tuple[str, RouteRecord] | None:
    """The checkpoint's single record as a one-record document (``route_id`` set to the task's
    repetition) and as a value, or None when the evaluator wrote none (or nothing readable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if not text.strip():
        return None
    try:
        results = parse_results(text, str(path))
    except LbcloudError as err:
        log.warning("unreadable checkpoint: %s", err, extra={"attempt": attempt_id})
        return None
    if not results.records:
        return None
    record = results.records[-1]
    if repetition and results.format is ResultFormat.V2X:
        route, _ = record.route_and_repetition
        record = replace(record, route_id=route_id_for(route, repetition))
        return dumps_results(replace(results, records=(record,))), record
    return text, record


ERROR_LINE = re.compile(r"\bERROR\b|\bCRITICAL\b|Error\b|Exception\b")
LOG_PREFIX = re.compile(r"^\S*\s*(?:ERROR|CRITICAL)\s+[\w.]+:\s*")
INSTANCE_PREFIX = re.compile(r"^RouteScenario_\d+_rep\d+:\s*")


def last_error_line(log: bytes, limit: int = 300) -> str | None:
    """The last error line of an evaluator's log, without timestamp, level and logger: what a person
    needs next to a route's failure status (e.g. why the agent counted as crashed)."""
    for raw in reversed(log.decode("utf-8", "replace").splitlines()[-200:]):
        line = raw.strip()
        if line and ERROR_LINE.search(line):
            line = INSTANCE_PREFIX.sub("", LOG_PREFIX.sub("", line))
            return line[:limit]
    return None


# how the supervisor's own endings map to outcome and blame (an evaluator's exit is classify_exit's)
SUPERVISOR_ENDINGS: dict[str, tuple[AttemptOutcome, Blame]] = {
    "cancelled": (AttemptOutcome.CANCELLED, Blame.NONE),
    "budget": (AttemptOutcome.FAILED, Blame.AGENT),
    "silence": (AttemptOutcome.FAILED, Blame.AGENT),
    "simulator_not_ready": (AttemptOutcome.FAILED, Blame.SIMULATOR),
    "simulator_died": (AttemptOutcome.FAILED, Blame.SIMULATOR),
    "spawn_error": (AttemptOutcome.FAILED, Blame.INFRASTRUCTURE),
}


def _lost(attempt_id: int, reason: str, logs: dict[str, bytes] | None = None) -> BackendEvent:
    """An attempt found without a trace after a restart: infrastructure, retried without counting."""
    return BackendEvent(
        attempt_id,
        BackendEventKind.ENDED,
        outcome=AttemptOutcome.LOST,
        blame=Blame.INFRASTRUCTURE,
        reason=reason,
        logs=logs or {},
    )


def classify_exit(code: int | None, has_record: bool, simulator_code: int | None) -> tuple[AttemptOutcome, Blame, str]:
    """Outcome and blame of an evaluator that exited with ``code`` (see ``lbcloud.domain.blame``)."""
    if code == EXIT_FINISHED and has_record:
        return AttemptOutcome.RECORD, Blame.NONE, "route evaluated"
    if code == EXIT_AGENT_REJECTED and has_record:
        return AttemptOutcome.RECORD, Blame.AGENT, "the agent's sensors were invalid"
    if code == EXIT_SIMULATION_CRASHED:
        return AttemptOutcome.FAILED, Blame.SIMULATOR, "the simulation crashed"
    if code == EXIT_SIMULATOR_UNREACHABLE:
        return AttemptOutcome.FAILED, Blame.SIMULATOR, "the evaluator could not connect to the simulator"
    if code == EXIT_AGENT_HOST_UNAVAILABLE:
        return AttemptOutcome.FAILED, Blame.INFRASTRUCTURE, "the agent host could not be started on this machine"
    if code == EXIT_USAGE:
        return AttemptOutcome.FAILED, Blame.INFRASTRUCTURE, "the evaluator rejected its arguments (exit 2)"
    if code == EXIT_FINISHED:
        return AttemptOutcome.FAILED, Blame.INFRASTRUCTURE, "the evaluator exited without writing a route record"
    if code is not None and code < 0:
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGFPE, signal.SIGILL, signal.SIGBUS):
            return AttemptOutcome.FAILED, Blame.AGENT, f"the agent process died from {name}"
        return AttemptOutcome.FAILED, Blame.INFRASTRUCTURE, f"the evaluator was killed by {name}"
    if has_record:
        return AttemptOutcome.RECORD, Blame.NONE, f"route evaluated (evaluator exit {code})"
    return (
        AttemptOutcome.FAILED,
        Blame.AGENT,
        f"the evaluator exited with code {code} without writing a route record (see the agent log)",
    )
