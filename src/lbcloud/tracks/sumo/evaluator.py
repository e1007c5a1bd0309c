"""The SUMO track's evaluator: the CARLA leaderboard evaluator's contract on a SUMO server.

:func:`evaluate` loads each selected route instance into the server (TraCI ``load``), sets the agent
up, steps simulator and agent in lock-step, scores the route with the results engine and rewrites the
2.x checkpoint after every route. Route statuses, entry statuses and resume follow
``leaderboard-results.md`` §4–§5; :class:`ExitCode` tells the caller how the run ended.

The agent never runs in this process: each route gets a fresh agent host (a sandboxed process,
:mod:`lbcloud.tracks.sumo.agent_link`), or, with ``agent_socket``, one host that connects from
outside (a container). Whatever the agent does, this side decides the route's status.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from lbcloud.domain.errors import InputError, LbcloudError, Unavailable
from lbcloud.domain.results.model import ResultFormat, ResultsFile, RouteRecord, route_id_for
from lbcloud.domain.results.routes import parse_route_file, select_routes
from lbcloud.domain.results.scoring import FailureReason, build_route_record
from lbcloud.domain.results.statistics import finalize_results
from lbcloud.domain.tracks import ScorerVersion
from lbcloud.tracks.sumo.agent_api import SensorConfig, validate_sensors
from lbcloud.tracks.sumo.agent_link import AgentFault, AgentLink, LogBudget, accept_host, listen, spawn_host
from lbcloud.tracks.sumo.agent_sandbox import AgentLimits, SandboxMode
from lbcloud.tracks.sumo.checkpoint import read_checkpoint, resume_point, write_checkpoint
from lbcloud.tracks.sumo.criteria import CriteriaConfig, RouteCriteria
from lbcloud.tracks.sumo.network import Town, road_network
from lbcloud.tracks.sumo.scenario import (
    RouteDefinition,
    ScenarioFiles,
    build_scenario,
    ego_edges,
    load_arguments,
    timeout_budget_s,
)
from lbcloud.tracks.sumo.session import SimulationCrashed, SumoSession

log = logging.getLogger(__name__)


class ExitCode(IntEnum):
    """How an evaluator run ended (the dispatcher relies on these numbers)."""

    FINISHED = 0
    """Every instance ran; entry status ``Finished`` (routes may still have failed for agent reasons)."""
    USAGE = 2
    """Bad route file, subset, agent path or option; nothing was run."""
    REJECTED = 3
    """The agent's sensors broke the track's rules; entry status ``Rejected``."""
    CRASHED = 4
    """The simulator died, stopped answering or failed to load a route; entry status ``Crashed``."""
    NO_SIMULATOR = 5
    """The simulator could not be reached at start; nothing was run."""
    NO_AGENT_HOST = 6
    """The agent host could not be started here (sandbox missing or broken, no process); nothing counted."""


@dataclass(frozen=True, slots=True)
class EvaluatorOptions:
    """Everything one evaluator run needs (the CLI's options)."""

    agent: str
    routes: Path
    checkpoint: Path
    port: int
    agent_config: str = ""
    routes_subset: str = ""
    repetitions: int = 1
    resume: bool = False
    scorer: ScorerVersion = ScorerVersion.LB20
    seed: int = 0
    setup_timeout_s: float = 20.0
    step_timeout_s: float = 5.0
    simulator_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    blocked_s: float = 90.0
    sandbox: SandboxMode = SandboxMode.AUTO
    limits: AgentLimits = field(default_factory=AgentLimits)
    agent_socket: Path | None = None
    """Wait for one agent host to connect here (a container's) instead of starting one per route."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One (route, repetition) pair at its position in the run."""

    position: int
    route: RouteDefinition
    repetition: int
    edges: tuple[str, ...]

    @property
    def route_id(self) -> str:
        return route_id_for(self.route.route_id, self.repetition)


@dataclass(frozen=True, slots=True)
class InstanceResult:
    record: RouteRecord
    sensors: tuple[SensorConfig, ...] | None = None
    crashed: bool = False
    rejected: bool = False
    timeline: dict[str, Any] | None = None


class RouteTimeline:
    """What happened when on one route: route completion sampled every ``SAMPLE_S`` simulated seconds,
    and each infraction with its simulation time (written next to the checkpoint for the route page)."""

    SAMPLE_S = 1.0

    def __init__(self, game_start: float) -> None:
        self.game_start = game_start
        self.samples: list[tuple[float, float]] = []
        self.events: list[dict[str, Any]] = []
        self._seen = 0

    def observe(self, time_s: float, criteria: RouteCriteria) -> None:
        t = round(time_s - self.game_start, 2)
        if not self.samples or t - self.samples[-1][0] >= self.SAMPLE_S:
            self.samples.append((t, round(float(criteria.route_completion), 2)))
        for event in criteria.events[self._seen :]:
            self.events.append({"t": t, "kind": event.kind, "message": event.message})
        self._seen = len(criteria.events)

    def finish(self, time_s: float, criteria: RouteCriteria) -> dict[str, Any]:
        self.samples.append((round(time_s - self.game_start, 2), round(float(criteria.route_completion), 2)))
        return {"samples": self.samples, "events": self.events}


def _extra_attributes(data: bytes) -> dict[str, dict[str, str]]:
    root = ET.fromstring(data)
    return {route.attrib.get("id", ""): dict(route.attrib) for route in root.iter("route")}


def load_instances(routes: Path, subset: str, repetitions: int) -> list[Instance]:
    """The run's instances in order, with each route's roads checked; raises InputError."""
    if repetitions < 1:
        raise InputError(f"--repetitions must be at least 1, got {repetitions}")
    try:
        data = routes.read_bytes()
    except OSError as err:
        raise InputError(f"--routes: cannot read {routes}: {err.strerror}") from err
    route_file = parse_route_file(data, str(routes))
    if route_file.format is not ResultFormat.V2X:
        raise InputError(f"{routes}: the SUMO track reads leaderboard 2.x route files (<waypoints><position/>)")
    attributes = _extra_attributes(data)
    instances: list[Instance] = []
    for route in select_routes(route_file, subset):
        extra = attributes.get(route.route_id, {})
        where = f"{routes}: route id {route.route_id!r}"
        try:
            definition = RouteDefinition(
                route_id=route.route_id,
                town=Town.parse(route.town),
                waypoints=tuple((p.x, p.y, p.z) for p in route.keypoints),
                seed=int(extra.get("seed", "0")),
                traffic_per_min=int(extra.get("traffic", "24")),
            )
            edges = ego_edges(road_network(definition.town), definition.waypoints)
        except (InputError, ValueError) as err:
            raise InputError(f"{where}: {err}") from err
        for repetition in range(repetitions):
            instances.append(Instance(len(instances), definition, repetition, edges))
    return instances


def _failed_record(
    instance: Instance, failure: FailureReason, scorer: ScorerVersion, length: float = 0.0
) -> RouteRecord:
    return build_route_record(
        index=instance.position, route_id=instance.route_id, route_completion=0, events=[], route_length=length,
        duration_game=0.0, duration_system=0.0, scorer=scorer, failure=failure.value,
    )  # fmt: skip


class AgentHostUnavailable(LbcloudError):
    """The agent host could not be started: the platform's fault, never the agent's."""


class Evaluator:
    """One run over a list of instances on one simulator session."""

    def __init__(self, options: EvaluatorOptions, session: SumoSession, workdir: Path, output: LogBudget) -> None:
        self.options = options
        self.session = session
        self.workdir = workdir
        self.output = output
        self.sensors: tuple[SensorConfig, ...] | None = None
        self._listener = listen(options.agent_socket) if options.agent_socket is not None else None
        self._external: AgentLink | None = None

    def close(self) -> None:
        if self._external is not None:
            self._external.close()
        if self._listener is not None:
            self._listener.close()

    def _connect(self, while_starting: Callable[[], None]) -> AgentLink:
        opts = self.options
        if self._listener is None:
            try:
                return spawn_host(
                    opts.agent, timeout_s=opts.setup_timeout_s, mode=opts.sandbox, limits=opts.limits,
                    output=self.output, files=[opts.agent_config], while_starting=while_starting,
                )  # fmt: skip
            except RuntimeError as err:
                raise AgentHostUnavailable(str(err)) from err
        while_starting()
        if self._external is None:
            self._external = accept_host(self._listener, opts.setup_timeout_s)
        return self._external

    def run_instance(self, instance: Instance) -> InstanceResult:
        """Set up the agent, load the instance, drive and score it."""
        built: list[ScenarioFiles] = []

        def build() -> None:  # the route's files are written while the agent host starts
            built.append(build_scenario(instance.route, instance.repetition, self.options.seed, self.workdir))

        try:
            link = self._connect(build)
        except AgentFault as err:
            log.error("%s: the agent could not be set up: %s", instance.route_id, err.message)
            return InstanceResult(_failed_record(instance, FailureReason.AGENT_SETUP_FAILED, self.options.scorer))
        try:
            return self._run(instance, link, built[0])
        finally:
            if link is not self._external:
                link.close()

    def _run(self, instance: Instance, link: AgentLink, files: ScenarioFiles) -> InstanceResult:
        opts = self.options
        try:
            answer = link.setup(instance.route_id, instance.route.waypoints, opts.agent_config, opts.setup_timeout_s)
        except AgentFault as err:
            if err.stage == "sensors":
                log.error("%s: the agent's sensors are invalid: %s", instance.route_id, err.message)
                self._destroy(link)
                return InstanceResult(
                    _failed_record(instance, FailureReason.SENSORS_INVALID, opts.scorer), rejected=True
                )
            log.error("%s: the agent could not be set up: %s", instance.route_id, err.message)
            return InstanceResult(_failed_record(instance, FailureReason.AGENT_SETUP_FAILED, opts.scorer))
        newly_validated = False
        if self.sensors is None:
            try:
                self.sensors = validate_sensors(answer)
                newly_validated = True
            except ValueError as err:
                log.error("%s: the agent's sensors are invalid: %s", instance.route_id, err)
                self._destroy(link)
                record = _failed_record(instance, FailureReason.SENSORS_INVALID, opts.scorer)
                return InstanceResult(record, rejected=True)
        sensors = self.sensors
        try:
            reach = max((sensor.range for sensor in sensors if sensor.type == "sumo.radar"), default=0.0)
            start = self.session.load(load_arguments(files), files.edges, instance.route.waypoints, reach)
        except SimulationCrashed as err:
            log.error("%s: the simulator failed to load the route: %s", instance.route_id, err)
            self._destroy(link)
            record = _failed_record(instance, FailureReason.SIMULATION_CRASHED, opts.scorer)
            return InstanceResult(record, sensors if newly_validated else None, crashed=True)
        length = start.route_length_m
        criteria = RouteCriteria(CriteriaConfig(length, timeout_budget_s(length), blocked_s=opts.blocked_s))
        failure: FailureReason | None = None
        crashed = False
        began = time.monotonic()
        game_start = 0.0
        timeline = RouteTimeline(0.0)
        try:
            game_start = self.session.simulation_time()
            timeline = RouteTimeline(game_start)
            obs, raw = self.session.observe()
            criteria.update(obs)
            timeline.observe(obs.time, criteria)
            frame = 0
            while True:
                readings = self.session.readings(sensors, obs, raw)
                try:
                    control = link.step(frame, obs.time, readings, opts.step_timeout_s)
                except AgentFault as err:
                    what = "hung in run_step" if err.timed_out else "crashed"
                    log.error("%s: the agent %s: %s", instance.route_id, what, err.message)
                    failure = FailureReason.AGENT_CRASHED
                    break
                self.session.apply(control, obs.speed, obs.road_id)
                self.session.step()
                frame += 1
                obs, raw = self.session.observe()
                ended = criteria.update(obs)
                timeline.observe(obs.time, criteria)
                if ended is not None:
                    break
        except SimulationCrashed as err:
            log.error("%s: the simulation crashed: %s", instance.route_id, err)
            failure, crashed = FailureReason.SIMULATION_CRASHED, True
        duration_system = time.monotonic() - began
        last = criteria.last
        duration_game = (last.time - game_start) if last is not None else 0.0
        self._destroy(link)
        record = build_route_record(
            index=instance.position, route_id=instance.route_id, route_completion=criteria.route_completion,
            events=list(criteria.events), route_length=length, duration_game=max(duration_game, 0.0),
            duration_system=duration_system, scorer=opts.scorer, failure=failure.value if failure else None,
        )  # fmt: skip
        route_timeline = timeline.finish(last.time if last is not None else game_start, criteria)
        return InstanceResult(record, sensors if newly_validated else None, crashed=crashed, timeline=route_timeline)

    def _destroy(self, link: AgentLink) -> None:
        problem = link.destroy(self.options.setup_timeout_s)
        if problem is not None:  # a failing destroy does not change the route's result
            log.warning("the agent's destroy() failed: %s", problem)


def _document(
    records: Sequence[RouteRecord], done: int, total: int, sensors: Sequence[str], entry_status: str
) -> ResultsFile:
    return ResultsFile(
        format=ResultFormat.V2X, records=tuple(records), progress=(done, total), entry_status=entry_status,
        eligible=False, sensors=tuple(sensors),
    )  # fmt: skip


@contextlib.contextmanager
def _closing(evaluator: Evaluator) -> Iterator[Evaluator]:
    try:
        yield evaluator
    finally:
        evaluator.close()


def _check_agent_reference(options: EvaluatorOptions) -> None:
    """The operator's ``--agent`` names something (its content is the agent's business); raises InputError."""
    if options.agent_socket is not None:
        return
    location = options.agent.rpartition(":")[0] if ":" in options.agent else options.agent
    if location.endswith(".py") and not Path(location).is_file():
        raise InputError(f"--agent: no such file {location}")


def evaluate(options: EvaluatorOptions, *, echo: Callable[[str], None] = print) -> ExitCode:
    """Run the evaluator; returns the exit code. Raises InputError (exit 2) for bad input."""
    instances = load_instances(options.routes, options.routes_subset, options.repetitions)
    _check_agent_reference(options)
    expected = [instance.route_id for instance in instances]
    folder = options.checkpoint.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--checkpoint: cannot create {folder}: {err.strerror}") from err
    if not os.access(folder, os.W_OK) or options.checkpoint.is_dir():
        raise InputError(f"--checkpoint: {options.checkpoint} is not a writable file path")
    try:
        session = SumoSession.connect(
            options.port, connect_timeout_s=options.connect_timeout_s, step_timeout_s=options.simulator_timeout_s
        )
    except Unavailable as err:
        echo(f"error: {err}")
        return ExitCode.NO_SIMULATOR
    try:
        return _run(options, instances, expected, session, echo)
    finally:
        session.close()


def _run(
    options: EvaluatorOptions,
    instances: Sequence[Instance],
    expected: Sequence[str],
    session: SumoSession,
    echo: Callable[[str], None],
) -> ExitCode:
    total = len(instances)
    records: list[RouteRecord] = []
    icons: tuple[str, ...] = ()
    start = 0
    if options.resume:
        point = resume_point(read_checkpoint(options.checkpoint), expected)
        start, records, icons = point.start, list(point.records), point.sensors
        echo(f"resume: starting at instance {start} of {total} ({point.reason})")
    if start == 0 and not records:
        options.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        options.checkpoint.write_bytes(b"")
    sensors_set_up = False
    timelines: dict[str, Any] = {}
    timeline_path = options.checkpoint.with_name(f"{options.checkpoint.stem}.timeline.json")
    output = LogBudget(sys.stdout.buffer, options.limits.log_bytes)
    with (
        tempfile.TemporaryDirectory(prefix="lbcloud-sumo-") as workdir,
        _closing(Evaluator(options, session, Path(workdir), output)) as evaluator,
    ):
        for instance in instances[start:]:
            echo(f"[{instance.position + 1}/{total}] {instance.route_id}")
            result = evaluator.run_instance(instance)
            if result.sensors is not None:
                icons = tuple(sensor.icon for sensor in result.sensors)
                sensors_set_up = True
            if instance.position < len(records):
                records[instance.position] = result.record
            else:
                records.append(result.record)
            entry = "Crashed" if result.crashed else "Rejected" if result.rejected else "Started"
            write_checkpoint(options.checkpoint, _document(records, instance.position + 1, total, icons, entry))
            if result.timeline is not None:
                timelines[instance.route_id] = result.timeline
                timeline_path.write_text(json.dumps(timelines), encoding="utf-8")
            echo(f"    {result.record.status} (driving score {result.record.scores.score_composed})")
            for kind, messages in result.record.infractions.items():
                for message in messages:
                    echo(f"      {kind}: {message}")
            if result.crashed:
                return ExitCode.CRASHED
            if result.rejected:
                return ExitCode.REJECTED
    document = _document(records, total, total, icons, "Started")
    finalized = finalize_results(document, sensors_set_up=sensors_set_up)
    for line in finalized.messages:
        echo(line)
    write_checkpoint(options.checkpoint, finalized.results)
    final = finalized.results
    echo(f"entry status {final.entry_status}: {final.values[0] if final.values else '-'} driving score")
    return ExitCode.FINISHED


def run_with_errors(options: EvaluatorOptions, echo: Callable[[str], None] = print) -> int:
    """:func:`evaluate` with project errors turned into an exit code and one line (for the CLI)."""
    try:
        return int(evaluate(options, echo=echo))
    except InputError as err:
        echo(f"error: {err}")
        return int(ExitCode.USAGE)
    except AgentHostUnavailable as err:
        echo(f"error: {err}")
        return int(ExitCode.NO_AGENT_HOST)
    except LbcloudError as err:
        echo(f"error: {err}")
        return int(ExitCode.CRASHED)
