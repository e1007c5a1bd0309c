"""The Docker backend: one attempt = a simulator container + a sandboxed agent container.

``launch`` resolves both images (a team's image is pulled once when absent; one that cannot be had
ends the attempt with the team's blame), copies the track's contents out of its contents image
(once per image), cuts the route file to the attempt's route, starts the simulator and creates the
agent container. ``poll`` starts the agent as soon as the simulator listens on its port (read from
the kernel's socket table of the simulator's network namespace: no sleeps, no probe connection),
enforces the watchdogs (wall budget, silence), uploads capped logs and reports the end. Everything
an attempt needs to be found again lives in its folder and in its containers' labels, so a restarted
dispatcher adopts running attempts; an attempt's end is written down before its containers are
removed, and its folder is removed at the next poll, once the dispatcher has stored the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lbcloud.adapters.backends.docker.contents import contents_copies, route_folder
from lbcloud.adapters.backends.docker.engine import AgentImageError, ContainerState, DockerEngine
from lbcloud.adapters.backends.docker.logs import AttemptLogs, AttemptRef, FollowState
from lbcloud.adapters.backends.docker.outcome import Ending, Stop, judge_carla_ended, judge_ended, stopped
from lbcloud.adapters.backends.docker.plans import (
    CHECKPOINT_NAME,
    LINK_NAME,
    RECORDINGS_NAME,
    SCRATCH_NAME,
    DockerConfig,
    HostPaths,
    ImageFacts,
    Role,
    agent_plan,
    container_name,
    evaluator_plan,
    has_agent_protocol,
    images_of,
    simulator_plan,
)
from lbcloud.adapters.backends.local import checkpoint_record, last_error_line
from lbcloud.adapters.backends.local_carla import keep_recording
from lbcloud.domain.artifact_keys import LogStream
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import ConfigError, InputError, LbcloudError, Unavailable
from lbcloud.domain.submissions import AgentKind
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from lbcloud.domain.tracks import SimulatorKind
from lbcloud.services.ports import ArtifactStore, AttemptSpec, BackendEvent, BackendEventKind

log = logging.getLogger(__name__)

ATTEMPT_FILE = "attempt.json"
STOP_FILE = "stop.json"
ENDED_FILE = "ended.json"


@dataclass
class _Tracked:
    attempt_id: int
    submission_id: int
    folder: Path
    repetition: int
    budget_s: float
    silence_s: float
    launched_at: float
    gpus: tuple[str, ...] = ()
    port: int = 0
    agent_digest: str | None = None
    running_reported: bool = False
    agent_started_at: float | None = None
    pending: Ending | None = None
    carla: bool = False
    logs: FollowState = field(default_factory=FollowState)

    @property
    def ref(self) -> AttemptRef:
        return AttemptRef(self.attempt_id, self.submission_id, self.folder)


class DockerBackend:
    """Implements :class:`lbcloud.services.ports.AttemptBackend` with containers on one Docker Engine."""

    name = "docker"

    def __init__(
        self,
        engine: DockerEngine,
        workdir: Path,
        artifacts: ArtifactStore,
        config: DockerConfig,
        *,
        gpus: Sequence[str] = (),
        ready_timeout_s: float = 60.0,
        pull_timeout_s: float = 600.0,
    ) -> None:
        self.engine = engine
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self._artifacts = artifacts
        self._gpus = tuple(gpus)
        self._ready_timeout = ready_timeout_s
        self._pull_timeout = pull_timeout_s
        self._tracked: dict[int, _Tracked] = {}
        self._collected: list[Path] = []
        self._logs = AttemptLogs(engine, config, artifacts)
        self.images: dict[str, ImageFacts] = {}
        """Facts of the images attempts used, by reference (digests for the manifest)."""

    # ----------------------------------------------------------------------------------- launching
    def folder_of(self, attempt_id: int) -> Path:
        return self.workdir / f"attempt-{attempt_id}"

    def launch(self, spec: AttemptSpec) -> str:
        folder = self.folder_of(spec.attempt_id)
        (folder / SCRATCH_NAME).mkdir(parents=True, exist_ok=True)
        (folder / RECORDINGS_NAME).mkdir(exist_ok=True)
        os.chmod(folder / RECORDINGS_NAME, 0o777)  # written by the simulator's user
        # the agent runs as another (unprivileged) user: it may write its folder and scratch only
        os.chmod(folder, 0o777)
        os.chmod(folder / SCRATCH_NAME, 0o777)  # not sticky: its owner removes what agents left
        gpus = self._take_gpus(spec)
        tracked = _Tracked(
            spec.attempt_id, spec.submission_id, folder, spec.repetition, spec.budget_s,
            spec.track.silence_timeout_s, time.time(), gpus, images_of(spec.track).simulator_port,
            carla=spec.track.simulator is SimulatorKind.CARLA,
        )  # fmt: skip
        _write_json(folder / ATTEMPT_FILE, _persisted(tracked))
        self._tracked[spec.attempt_id] = tracked
        try:
            self._start(spec, tracked)
        except (AgentImageError, InputError) as err:
            # the team's image cannot run this track: the team's fault, reported by the next poll
            self._remove_containers(spec.attempt_id)
            _write_json(folder / STOP_FILE, {"stop": Stop.AGENT_IMAGE.value, "detail": str(err)})
            tracked.pending = stopped(Stop.AGENT_IMAGE, str(err))
        except LbcloudError:
            del self._tracked[spec.attempt_id]
            self._remove_containers(spec.attempt_id)
            raise
        return str(folder)

    def _take_gpus(self, spec: AttemptSpec) -> tuple[str, ...]:
        wanted = spec.track.pool.gpus_per_attempt
        if wanted == 0:
            return ()
        if len(self._gpus) < wanted:
            raise ConfigError(
                f"track {spec.track.name} needs {wanted} GPU(s) per attempt; docker.gpus lists {len(self._gpus)}"
            )
        busy = {gpu for t in self._tracked.values() for gpu in t.gpus}
        free = [gpu for gpu in self._gpus if gpu not in busy]
        if len(free) < wanted:
            raise Unavailable(f"all GPUs are busy ({', '.join(self._gpus)}); lower docker.slots to len(docker.gpus)")
        return tuple(free[:wanted])

    def _start(self, spec: AttemptSpec, tracked: _Tracked) -> None:
        if spec.agent.kind is not AgentKind.IMAGE:
            raise InputError("the Docker backend evaluates images: submit one with `lbcloud submit --image`")
        images = images_of(spec.track)
        simulator = self._image(images.simulator, team=False)
        agent = self._image(spec.agent.ref, team=True)
        tracked.agent_digest = agent.digest or agent.id
        _write_json(tracked.folder / ATTEMPT_FILE, _persisted(tracked))
        link = None
        if has_agent_protocol(spec.track):
            link = tracked.folder / LINK_NAME
            link.mkdir(exist_ok=True)
            os.chmod(link, 0o777)
        paths = HostPaths(
            folder=tracked.folder,
            contents=contents_copies(
                self.engine, self.workdir, self._image(images.contents, team=False), images.contents_paths
            ),
            routes=route_folder(spec, tracked.folder),
            link=link,
        )
        gpu = ",".join(tracked.gpus) or None
        plans = [agent_plan(spec, self.config, paths, agent, gpu)]
        if link is not None:
            evaluator = self._image(images.evaluator_image or images.contents, team=False)
            plans.insert(0, evaluator_plan(spec, self.config, paths, evaluator, agent, gpu))
        self.engine.run(simulator_plan(spec, self.config, paths, gpu, image_id=simulator.id))
        for plan in plans:  # started once the simulator listens
            self.engine.create(plan)

    def _image(self, ref: str, *, team: bool) -> ImageFacts:
        facts = self.engine.image(ref, team=team, pull_timeout_s=self._pull_timeout)
        self.images[ref] = facts
        return facts

    # ------------------------------------------------------------------------------------- polling
    def poll(self) -> list[BackendEvent]:
        # the dispatcher stored the ends reported by the previous poll: their folders can go
        for folder in self._collected:
            if folder.parent == self.workdir and folder.name.startswith("attempt-"):
                shutil.rmtree(folder, ignore_errors=True)
        self._collected.clear()
        events: list[BackendEvent] = []
        for attempt_id, tracked in list(self._tracked.items()):
            try:
                event = self._poll_one(tracked)
            except Unavailable as err:
                log.warning("docker engine: %s", err, extra={"attempt": attempt_id})
                continue
            if event is not None:
                events.append(event)
                if event.kind is BackendEventKind.ENDED:
                    del self._tracked[attempt_id]
        return events

    def _states(self, tracked: _Tracked) -> dict[Role, ContainerState]:
        states = {}
        for role in Role:
            state = self.engine.state(container_name(self.config, tracked.attempt_id, role))
            if state is not None:
                states[role] = state
        return states

    def _poll_one(self, tracked: _Tracked) -> BackendEvent | None:
        if tracked.pending is not None:
            return self._end(tracked, tracked.pending)
        stop = _read_json(tracked.folder / STOP_FILE)
        if stop is not None:
            return self._end(tracked, stopped(Stop(stop["stop"]), stop["detail"]))
        states = self._states(tracked)
        # the container whose exit decides: the trusted evaluator, else the agent running the evaluator
        judge = states.get(Role.EVALUATOR) or states.get(Role.AGENT)
        sim = states.get(Role.SIMULATOR)
        if judge is None or (sim is None and judge.status == "created"):
            gone = Ending(AttemptOutcome.LOST, Blame.INFRASTRUCTURE, "the attempt's containers are gone")
            return self._end(tracked, gone)
        if judge.status == "created":
            return self._wait_for_simulator(tracked, states)
        self._logs.follow(tracked.ref, tracked.logs)
        if judge.ended:
            if tracked.carla and judge.role is Role.AGENT:  # the official evaluator's codes (docs/carla.md)
                found = checkpoint_record(tracked.folder / CHECKPOINT_NAME, tracked.repetition, tracked.attempt_id)
                return self._end(tracked, judge_carla_ended(judge, sim, found[1].status if found else None))
            has_record = (tracked.folder / CHECKPOINT_NAME).exists()
            agent = states.get(Role.AGENT) if judge.role is Role.EVALUATOR else None
            return self._end(tracked, judge_ended(judge, sim, has_record, agent))
        if tracked.agent_started_at is None:
            tracked.agent_started_at = judge.started_at or time.time()
        now = time.time()
        if tracked.budget_s > 0 and now - tracked.agent_started_at > tracked.budget_s:  # 0: no wall budget
            return self._stop(tracked, Stop.BUDGET, f"the attempt ran past its budget of {tracked.budget_s:.0f} s")
        last = tracked.logs.last_output_at or tracked.agent_started_at
        if now - last > tracked.silence_s:
            reason = f"the agent printed nothing for {tracked.silence_s:.0f} s (hung)"
            return self._stop(tracked, Stop.SILENCE, reason)
        if not tracked.running_reported:
            tracked.running_reported = True
            return _running(tracked, "agent running")
        return None

    def _wait_for_simulator(self, tracked: _Tracked, states: dict[Role, ContainerState]) -> BackendEvent | None:
        sim = states[Role.SIMULATOR]
        if sim.ended:
            self._logs.follow(tracked.ref, tracked.logs, force=True)
            reason = f"the simulator container exited (code {sim.exit_code}) before its port opened"
            return self._stop(tracked, Stop.SIMULATOR_EXITED_EARLY, reason)
        if sim.running and self.engine.listening(sim, tracked.port):
            if Role.EVALUATOR in states:
                self.engine.start(states[Role.EVALUATOR].name, team=False)
            try:
                self.engine.start(states[Role.AGENT].name, team=True)
            except AgentImageError as err:
                return self._stop(tracked, Stop.AGENT_IMAGE, str(err))
            tracked.agent_started_at = time.time()
            tracked.running_reported = True
            return _running(tracked, "simulator ready, agent starting")
        if time.time() - tracked.launched_at > self._ready_timeout:
            reason = f"the simulator did not listen on port {tracked.port} within {self._ready_timeout:.0f} s"
            return self._stop(tracked, Stop.SIMULATOR_NOT_READY, reason)
        self._logs.follow(tracked.ref, tracked.logs)
        return None

    # ----------------------------------------------------------------------------------- endings
    def _stop(self, tracked: _Tracked, stop: Stop, detail: str) -> BackendEvent:
        """End the attempt now, for a reason of the backend's own (written first: it survives a restart)."""
        _write_json(tracked.folder / STOP_FILE, {"stop": stop.value, "detail": detail})
        self._kill_containers(tracked.attempt_id)
        return self._end(tracked, stopped(stop, detail))

    def _end(self, tracked: _Tracked, ending: Ending) -> BackendEvent:
        """Report the end: logs and record collected, the ending written down, the containers removed."""
        logs = self._logs.final(tracked.ref)
        found = checkpoint_record(tracked.folder / CHECKPOINT_NAME, tracked.repetition, tracked.attempt_id)
        text, record = found if found is not None else (None, None)
        sim_ratio = None
        if record is not None and float(record.meta.duration_system) > 0:
            sim_ratio = round(float(record.meta.duration_game) / float(record.meta.duration_system), 3)
        reason, message = ending.reason, ""
        failed_record = record is not None and record.status.startswith("Failed")
        if ending.outcome is AttemptOutcome.FAILED or failed_record:
            message = last_error_line(logs.get(LogStream.AGENT.value, b"")) or ""
            if message and ending.outcome is AttemptOutcome.FAILED and ending.blame is not Blame.SIMULATOR:
                reason = f"{reason}: {message}"
        keep = ending.keep_record and text is not None
        _write_json(tracked.folder / ENDED_FILE, {**asdict(ending), "reason": reason, "message": message})
        if tracked.carla:  # the server's --record file, kept as the attempt's recording (size-capped)
            keep_recording(self._artifacts, tracked.folder, tracked.submission_id, tracked.attempt_id)
        self._remove_containers(tracked.attempt_id)
        shutil.rmtree(tracked.folder / SCRATCH_NAME, ignore_errors=True)
        self._collected.append(tracked.folder)
        return BackendEvent(
            tracked.attempt_id, BackendEventKind.ENDED, outcome=ending.outcome, blame=ending.blame, reason=reason,
            message=message, exit_code=ending.exit_code, logs=logs, node=socket.gethostname(), sim_ratio=sim_ratio,
            record_json=text if keep else None, handle=str(tracked.folder),
        )  # fmt: skip

    def _kill_containers(self, attempt_id: int) -> None:
        for role in (Role.AGENT, Role.EVALUATOR, Role.SIMULATOR):
            self.engine.kill(container_name(self.config, attempt_id, role))

    def _remove_containers(self, attempt_id: int) -> None:
        for role in (Role.AGENT, Role.EVALUATOR, Role.SIMULATOR):
            with contextlib.suppress(Unavailable):
                self.engine.remove(container_name(self.config, attempt_id, role))

    # ----------------------------------------------------------------------------- cancel / adopt
    def cancel(self, attempt_id: int, handle: str) -> None:
        folder = Path(handle) if handle else self.folder_of(attempt_id)
        if folder.is_dir() and not (folder / STOP_FILE).exists() and not (folder / ENDED_FILE).exists():
            _write_json(folder / STOP_FILE, {"stop": Stop.CANCELLED.value, "detail": "cancelled on request"})
        self._kill_containers(attempt_id)

    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        events: list[BackendEvent] = []
        for attempt in attempts:
            if attempt.id in self._tracked:
                continue
            folder = Path(attempt.handle) if attempt.handle else self.folder_of(attempt.id)
            info = _read_json(folder / ATTEMPT_FILE)
            containers = self.engine.containers(self.config.instance, attempt.id)
            if info is None:
                for state in containers:
                    self.engine.remove(state.name)
                events.append(_lost(attempt.id, "the dispatcher stopped before the attempt was started"))
                continue
            tracked = _Tracked(
                int(info["attempt_id"]), int(info["submission_id"]), folder, int(info["repetition"]),
                float(info["budget_s"]), float(info["silence_s"]), float(info["launched_at"]),
                tuple(info.get("gpus") or ()), int(info.get("port", 0)), info.get("agent_digest"),
                carla=bool(info.get("carla", False)),
            )  # fmt: skip
            tracked.running_reported = bool(attempt.handle)  # a late find reports running, with its handle
            ended = _read_json(folder / ENDED_FILE)
            roles = {state.role for state in containers}
            if ended is not None:  # ended before the restart; the dispatcher never heard of it
                tracked.pending = Ending(
                    AttemptOutcome(ended["outcome"]), Blame(ended["blame"]), ended["reason"],
                    ended.get("exit_code"), bool(ended.get("keep_record")),
                )  # fmt: skip
            elif Role.AGENT not in roles and not (folder / STOP_FILE).exists():
                for state in containers:
                    self.engine.remove(state.name)
                events.append(_lost(attempt.id, "the dispatcher stopped while the attempt's containers were created"))
                continue
            self._tracked[attempt.id] = tracked  # collected by the next poll
        return events

    def image_ids(self, refs: Sequence[str]) -> dict[str, str]:
        """Digest (or image id) of each of lbcloud's images present on the engine, for the manifest."""
        out = {}
        for ref in refs:
            try:
                facts = self.engine.image(ref, team=False, pull_timeout_s=self._pull_timeout)
            except LbcloudError:
                continue
            out[ref] = facts.digest or facts.id
        return out

    def close(self) -> None:
        """Stop watching; running attempts keep running and are adopted by the next dispatcher."""
        self.engine.close()


_PERSISTED = {
    "attempt_id", "submission_id", "repetition", "budget_s", "silence_s", "launched_at", "gpus", "port", "agent_digest",
    "carla",
}  # fmt: skip


def _persisted(tracked: _Tracked) -> dict[str, Any]:
    return {k: v for k, v in asdict(tracked).items() if k in _PERSISTED}


def _running(tracked: _Tracked, message: str) -> BackendEvent:
    return BackendEvent(
        tracked.attempt_id, BackendEventKind.RUNNING, message, handle=str(tracked.folder),
        agent_digest=tracked.agent_digest,
    )  # fmt: skip


def _lost(attempt_id: int, reason: str) -> BackendEvent:
    """An attempt found without a usable trace after a restart: infrastructure, retried."""
    return BackendEvent(
        attempt_id, BackendEventKind.ENDED, outcome=AttemptOutcome.LOST, blame=Blame.INFRASTRUCTURE, reason=reason
    )


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
