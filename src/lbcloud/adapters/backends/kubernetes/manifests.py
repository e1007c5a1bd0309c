"""Pure builders of the Kubernetes objects of one attempt (no I/O, no client).

One attempt is one ``batch/v1`` Job whose pod holds:

- init ``contents`` (the track's contents image): copies the trusted evaluator code and the route
  files into a staging ``emptyDir``;
- init ``prepare`` (lbcloud image): moves them into the ``contents`` volume, cutting a CARLA route
  file down to the attempt's one route, so the agent only ever sees its own route;
- ``reporter`` (lbcloud image, ``lbcloud reporter``): streams logs, heartbeats and the route record
  to the dispatcher with the attempt's token;
- ``simulator``: the simulator server with a ``startupProbe`` on its RPC port;
- ``agent`` (the participant's image): the evaluator on exactly one route.

Two layouts exist. ``sidecar`` (default): reporter and simulator are native sidecars (init containers
with ``restartPolicy: Always``), so the agent starts only once the simulator's startup probe passed.
``co-container``: reporter and simulator are ordinary containers and the agent's wrapper waits for a
readiness file the reporter writes after probing the simulator port. It is used for the GPU device
hand-off (the agent holds the GPU and publishes its UUID, so the simulator cannot start first) and
for ``compat="1.20"`` servers, which know neither native sidecars nor ``podFailurePolicy``.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from lbcloud.adapters.backends.kubernetes import carla_wrapper
from lbcloud.domain.blame import (
    EXIT_AGENT_REJECTED,
    EXIT_SIMULATION_CRASHED,
    EXIT_SIMULATOR_UNREACHABLE,
    EXIT_USAGE,
    Blame,
)
from lbcloud.domain.carla import CARLA_EXIT_CRASHED
from lbcloud.domain.errors import ConfigError
from lbcloud.domain.submissions import AgentKind
from lbcloud.domain.tracks import SimulatorKind, Track
from lbcloud.services.ports import AttemptSpec

Manifest = dict[str, Any]
"""A Kubernetes object as JSON-ready data (what the API server accepts)."""

GpuSharing = Literal["device-handoff", "dra"]
Compat = Literal["current", "1.20"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]

# label keys ---------------------------------------------------------------------------------------
LABEL_SUBMISSION = "lbcloud.io/submission"
LABEL_TEAM = "lbcloud.io/team"
LABEL_TRACK = "lbcloud.io/track"
LABEL_ROUTE = "lbcloud.io/route"
LABEL_ATTEMPT = "lbcloud.io/attempt"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
COMPONENT_EVALUATION = "evaluation"
MANAGED_BY = "lbcloud"
EVALUATION_SELECTOR = f"{LABEL_COMPONENT}={COMPONENT_EVALUATION},{LABEL_MANAGED_BY}={MANAGED_BY}"
"""Label selector of every object the backend owns (watch, reconcile and cleanup use it)."""

# container names and in-pod paths ------------------------------------------------------------------
AGENT = "agent"
SIMULATOR = "simulator"
REPORTER = "reporter"
CONTENTS = "contents"
PREPARE = "prepare"
OUR_CONTAINERS = frozenset({SIMULATOR, REPORTER, CONTENTS, PREPARE})
"""Containers running images lbcloud's operator controls (their faults are never the team's)."""

CONTENTS_DIR = "/lbcloud/contents"
STAGING_DIR = "/lbcloud/staging"
RESULTS_DIR = "/lbcloud/results"
LOGS_DIR = "/lbcloud/logs"
RUN_DIR = "/lbcloud/run"
CHECKPOINT_PATH = f"{RESULTS_DIR}/checkpoint.json"
AGENT_EXIT_FILE = f"{RUN_DIR}/agent.exit"
SIMULATOR_READY_FILE = f"{RUN_DIR}/simulator.ready"
GPU_UUID_FILE = f"{RUN_DIR}/gpu-uuid"
AGENT_SILENT_FILE = f"{RUN_DIR}/agent.silent"
SIMSTATE_DIR = "/lbcloud/simstate"
"""Written by the simulator's wrapper only (read-only for the agent): it cannot be forged."""
SIMULATOR_STARTED_FILE = f"{SIMSTATE_DIR}/simulator.started"
SIMULATOR_DIED_FILE = f"{SIMSTATE_DIR}/simulator.exit"
EVALUATOR_STARTED_FILE = f"{RUN_DIR}/evaluator.started"
RECORDINGS_DIR = "/lbcloud/recordings"
"""Where CARLA writes ``--record`` files (the server writes them, so the simulator mounts it)."""
SIMULATOR_KIND_ANNOTATION = "lbcloud.io/simulator"
IMAGE_WAIT_S = 3600
"""How long the agent waits for the simulator container to start at all (its image being pulled):
the simulator's readiness wait only counts from then (the official cloud waits up to an hour)."""
EXIT_AGENT_SILENT = 124
"""The agent wrapper's exit code when it stopped an agent that printed nothing for too long."""
TOKEN_ENV = "LBCLOUD_REPORTER_TOKEN"

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class FailureRule:
    """One ``podFailurePolicy`` rule and the blame it stands for (rules are matched in order)."""

    blame: Blame
    reason: str
    exit_codes: tuple[int, ...] = ()
    disruption: bool = False


POD_FAILURE_RULES: tuple[FailureRule, ...] = (
    FailureRule(Blame.AGENT, "the agent was rejected by the evaluator", exit_codes=(EXIT_AGENT_REJECTED,)),
    FailureRule(
        Blame.SIMULATOR,
        "the simulation crashed or the simulator was unreachable",
        exit_codes=(EXIT_SIMULATION_CRASHED, EXIT_SIMULATOR_UNREACHABLE),
    ),
    FailureRule(Blame.INFRASTRUCTURE, "the evaluator was started with a wrong command line", exit_codes=(EXIT_USAGE,)),
    FailureRule(Blame.INFRASTRUCTURE, "the pod was evicted or preempted", disruption=True),
    # appended last, so the indices of Jobs created before it still mean what they meant
    FailureRule(
        Blame.SIMULATOR,
        "the CARLA evaluator reported a crash (exit 255; a rejected agent's record, if any, decides)",
        exit_codes=(CARLA_EXIT_CRASHED,),
    ),
)
"""Index ``i`` here is rule ``i`` of every Job's ``podFailurePolicy`` (blame.py reads it back)."""


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    """How attempts are rendered for one cluster (built from ``settings.kubernetes``).

    ``dispatcher_url`` is what reporters call; the NetworkPolicy lets evaluation pods reach only
    pods labelled ``dispatcher_pod_labels`` in ``dispatcher_namespace`` on the URL's port (plus DNS).
    ``kube_version`` picks the DRA API flavour; ``compat="1.20"`` renders for servers without
    native sidecars or ``podFailurePolicy``.
    """

    namespace: str = "lbcloud"
    image: str = "lbcloud:latest"
    dispatcher_url: str = "http://lbcloud-dispatcher.lbcloud.svc:8080"
    dispatcher_namespace: str | None = None
    dispatcher_pod_labels: tuple[tuple[str, str], ...] = (
        ("app.kubernetes.io/name", "lbcloud"),
        ("app.kubernetes.io/component", "dispatcher"),
    )
    job_ttl_s: int = 3600
    gpu_sharing: GpuSharing = "device-handoff"
    dra_device_class: str = "gpu.nvidia.com"
    image_pull_secrets: tuple[str, ...] = ()
    kube_version: str = "1.32"
    compat: Compat = "current"
    reporter_interval_s: float = 2.0
    dns_namespace: str = "kube-system"
    dns_pod_labels: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)
    image_pull_policy: PullPolicy | None = None
    """``None``: the cluster's default (``Always`` for ``:latest`` tags); ``Never`` where images are
    loaded onto nodes by hand (no registry)."""

    def __post_init__(self) -> None:
        if not DNS_LABEL.match(self.namespace):
            raise ConfigError(f"kubernetes.namespace {self.namespace!r} is not a valid namespace name")
        if urlsplit(self.dispatcher_url).scheme not in ("http", "https"):
            raise ConfigError(f"kubernetes.dispatcher_url {self.dispatcher_url!r} must be an http(s) URL")
        if self.gpu_sharing not in ("device-handoff", "dra"):
            raise ConfigError(f"kubernetes.gpu_sharing must be 'device-handoff' or 'dra', not {self.gpu_sharing!r}")
        if self.compat not in ("current", "1.20"):
            raise ConfigError(f"kubernetes compat must be 'current' or '1.20', not {self.compat!r}")
        if self.image_pull_policy not in (None, "Always", "IfNotPresent", "Never"):
            raise ConfigError(
                f"kubernetes.image_pull_policy must be Always, IfNotPresent or Never, not {self.image_pull_policy!r}"
            )

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> KubernetesConfig:
        """From a ``KubernetesSettings``-like object (duck-typed: adapters never import settings)."""
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if hasattr(settings, name):
                value = getattr(settings, name)
                if isinstance(value, Mapping):
                    value = tuple(sorted(value.items()))
                elif isinstance(value, list):
                    value = tuple(value)
                values[name] = value
        values.update(overrides)
        return cls(**values)

    @property
    def dispatcher_port(self) -> int:
        parts = urlsplit(self.dispatcher_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def kube_minor(self) -> int:
        match = re.match(r"^v?1\.(\d+)", self.kube_version)
        if not match:
            raise ConfigError(f"kubernetes.kube_version {self.kube_version!r} is not like '1.32'")
        return int(match.group(1))


# ------------------------------------------------------------------------------------------ names


def label_value(text: str) -> str:
    """``text`` as a valid label value: at most 63 of ``[A-Za-z0-9-_.]``, alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text.strip())
    cleaned = cleaned[:63].strip("-_.")
    if len(text) > 63 or cleaned != text:
        # keep distinct inputs distinct once characters were replaced or cut
        digest = hashlib.sha256(text.encode()).hexdigest()[:6]
        cleaned = f"{cleaned[:56].strip('-_.')}-{digest}" if cleaned else digest
    return cleaned


def _dns_part(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def job_name(spec: AttemptSpec) -> str:
    """A DNS-1123 label (<= 63 chars) unique per attempt: ``lb-<track>-s<sub>-r<route>-a<attempt>``.

    The attempt id is always kept whole; the readable middle is cut (with a hash) when too long.
    """
    tail = f"-a{spec.attempt_id}"
    middle = f"{_dns_part(spec.track.name)}-s{spec.submission_id}-r{_dns_part(spec.route_id)}"
    middle = _dns_part(middle)
    room = 63 - len("lb-") - len(tail)
    if len(middle) > room:
        digest = hashlib.sha256(middle.encode()).hexdigest()[:6]
        middle = f"{middle[: room - 7].strip('-')}-{digest}"
    name = f"lb-{middle}{tail}" if middle else f"lb{tail}"
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    return name


def network_policy_name() -> str:
    return "lbcloud-evaluation-egress"


def claim_template_name(spec: AttemptSpec) -> str:
    return f"{job_name(spec)[:57]}-gpu".replace("--", "-")


def attempt_labels(spec: AttemptSpec) -> dict[str, str]:
    """Labels on the Job and its pod; the backend reconciles by them after a restart."""
    labels = {
        LABEL_SUBMISSION: str(spec.submission_id),
        LABEL_TEAM: label_value(spec.team),
        LABEL_TRACK: label_value(spec.track.name),
        LABEL_ROUTE: label_value(spec.route_id),
        LABEL_ATTEMPT: str(spec.attempt_id),
        LABEL_COMPONENT: COMPONENT_EVALUATION,
        LABEL_MANAGED_BY: MANAGED_BY,
        "app.kubernetes.io/name": "lbcloud",
    }
    if spec.track.pool.kueue_queue:
        labels[LABEL_KUEUE_QUEUE] = label_value(spec.track.pool.kueue_queue)
    return labels


def route_instance_id(spec: AttemptSpec) -> str:
    """The ``route_id`` the evaluator writes for this attempt (1.0 ids have no repetition)."""
    if spec.track.scorer.value == "lb1.0":
        return f"RouteScenario_{spec.route_id}"
    return f"RouteScenario_{spec.route_id}_rep{spec.repetition}"


# ---------------------------------------------------------------------------------- commands


def routes_path(track: Track) -> str:
    """Where the agent finds the route file: ``<contents>/routes/<basename of the track's file>``."""
    return f"{CONTENTS_DIR}/routes/{PurePosixPath(track.routes_file).name}"


class _Placeholders(dict[str, str]):
    """Placeholder values; ``{env_NAME}`` becomes the container's ``$NAME`` at run time."""

    def __missing__(self, key: str) -> str:
        if key.startswith("env_") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key[4:]):
            return f"\0?{key[4:]}\0"  # '?': may be unset
        raise KeyError(key)


def _placeholders(spec: AttemptSpec, port: int) -> dict[str, str]:
    # `?`: TEAM_CONFIG is optional (the leaderboard's convention), so an unset one is empty, not a
    # `set -u` failure that would look like our command line's fault (exit 2)
    agent_config = spec.agent.config if spec.agent.kind is AgentKind.IMAGE and spec.agent.config else "\0?TEAM_CONFIG\0"
    return _Placeholders(
        {
            "port": str(port),
            "routes": routes_path(spec.track),
            "route": spec.route_id,
            # one repetition per attempt; the reporter names the record after the task's repetition
            "repetitions": "1",
            "repetition": str(spec.repetition),
            "checkpoint": CHECKPOINT_PATH,
            # participant images name their agent in $TEAM_AGENT / $TEAM_CONFIG (the leaderboard's convention)
            "agent": "\0TEAM_AGENT\0",
            "agent_config": agent_config,
            "seed": str(spec.seed),
            "workdir": RESULTS_DIR,
            "scorer": spec.track.scorer.value,
            "contents": CONTENTS_DIR,
            "gpu_index": f"\0?{carla_wrapper.GPU_INDEX_ENV}\0",
            "recordings": RECORDINGS_DIR,
        }
    )


def _shell_word(text: str) -> str:
    """Quote ``text`` for sh, leaving ``\\0NAME\\0`` markers as ``"${NAME}"`` expansions
    (``\\0?NAME\\0``: ``"${NAME:-}"``, for variables that may be unset)."""
    parts = text.split("\0")
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1:
            lenient = part.startswith("?")
            out.append('"${' + part.lstrip("?") + (":-" if lenient else "") + '}"')
        elif part:
            out.append(shlex.quote(part))
    return "".join(out) or "''"


def render_command(template: Sequence[str], values: Mapping[str, str]) -> str:
    """An argv template with ``{placeholders}`` as one sh command line (unknown names fail loudly)."""
    words = []
    for item in template:
        try:
            words.append(_shell_word(item.format_map(values)))
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"command item {item!r}: unknown or malformed placeholder ({err})") from None
    return " ".join(words)


def agent_script(spec: AttemptSpec, *, co_container: bool, gpu_handoff: bool) -> str:
    """The agent container's sh wrapper: publish the GPU, wait for the simulator, run the evaluator
    with its output in the shared log, stop it when silent too long or when the simulator died,
    record the exit code. CARLA tracks get the official start-up around it (:mod:`.carla_wrapper`)."""
    images = _images(spec.track)
    command = render_command(images.evaluator_command, _placeholders(spec, images.simulator_port))
    carla = spec.track.simulator is SimulatorKind.CARLA
    log = f"{LOGS_DIR}/agent.log"
    lines = ["set -u", f"mkdir -p {LOGS_DIR} {RESULTS_DIR}", f"touch {log}"]
    if carla:
        lines += carla_wrapper.agent_prelude(
            spec.track, contents=CONTENTS_DIR, routes=routes_path(spec.track), route=spec.route_id,
            log=log, exit_file=AGENT_EXIT_FILE,
        )  # fmt: skip
        command = carla_wrapper.wrap_evaluator(command)
    if gpu_handoff:
        lines += [
            "# device hand-off: this container holds the GPU; the simulator reads its UUID",
            f"nvidia-smi --query-gpu=uuid --format=csv,noheader | head -n 1 > {GPU_UUID_FILE}.tmp"
            f" && mv {GPU_UUID_FILE}.tmp {GPU_UUID_FILE}"
            f" || {{ echo 'lbcloud: cannot read the GPU UUID' >&2; echo 2 > {AGENT_EXIT_FILE}; exit 2; }}",
        ]
    if not carla and "TEAM_AGENT" in command:  # CARLA's prelude checks it, with the official hints
        lines += [
            "# the participant's image names its agent in $TEAM_AGENT: without it nothing can run (agent's fault)",
            'if [ -z "${TEAM_AGENT:-}" ]; then',
            f"  echo 'lbcloud: the agent image does not set TEAM_AGENT (the path of its agent)' | tee -a {log} >&2",
            f"  echo {EXIT_AGENT_REJECTED} > {AGENT_EXIT_FILE}; exit {EXIT_AGENT_REJECTED}",
            "fi",
        ]
    if co_container:
        waits = max(1, math.ceil(spec.track.setup_timeout_s))
        lines += [
            "# the readiness wait counts from the simulator container's start, not from its image pull",
            "n=0",
            f"while [ ! -f {SIMULATOR_STARTED_FILE} ]; do",
            f"  n=$((n+1)); if [ $n -gt {IMAGE_WAIT_S} ]; then",
            f"    echo 'lbcloud: the simulator container did not start within {IMAGE_WAIT_S} s' >&2;"
            f" echo 5 > {AGENT_EXIT_FILE}; exit 5",
            "  fi; sleep 1",
            "done",
            "started=$(date +%s)",
            f"while [ ! -f {SIMULATOR_READY_FILE} ]; do",
            f"  if [ -f {SIMULATOR_DIED_FILE} ]; then",
            f"    echo 'lbcloud: the simulator died before it was ready' >&2; echo 5 > {AGENT_EXIT_FILE}; exit 5",
            "  fi",
            f'  if [ $(($(date +%s) - started)) -ge {waits} ]; then',
            f"    echo 'lbcloud: simulator not ready after {waits} s' >&2; echo 5 > {AGENT_EXIT_FILE}; exit 5",
            "  fi; sleep 0.2 2>/dev/null || sleep 1",
            "done",
        ]
    lines += [
        "# when the evaluator started (and the simulator became ready): participants and benchmarks read it",
        f"ready=$(date -r {SIMULATOR_READY_FILE} +%s.%N 2>/dev/null || echo -)",
        "now=$(date +%s.%N 2>/dev/null || date +%s)",
        f'echo "lbcloud: simulator ready at $ready, evaluator started at $now" >> {log}',
    ]
    silence = max(1, math.ceil(spec.track.silence_timeout_s))
    lines += [
        f"touch {EVALUATOR_STARTED_FILE}  # a simulator death older than this did not hit this evaluator",
        f"{command} >> {log} 2>&1 &",
        "pid=$!",
        f"tail -n +1 -f {log} 2>/dev/null &  # mirror to the container's stdout (kubectl logs)",
        "mirror=$!",
        "stop_evaluator() {",
        '  kill "$pid" 2>/dev/null; n=0',
        '  while kill -0 "$pid" 2>/dev/null && [ $n -lt 10 ]; do sleep 1; n=$((n+1)); done',
        '  kill -9 "$pid" 2>/dev/null',
        "}",
        "# an agent silent for the track's silence timeout is hung: stop it (the reference's watchdog)",
        "quiet=0; last=-1; simdied=0",
        'while kill -0 "$pid" 2>/dev/null; do',
        f"  if [ -f {SIMULATOR_DIED_FILE} ] && [ {SIMULATOR_DIED_FILE} -nt {EVALUATOR_STARTED_FILE} ]; then",
        "    # the evaluator would block on every call for its client timeout: stop it now",
        f'    echo "lbcloud: the simulator died (exit $(cat {SIMULATOR_DIED_FILE})); stopping the evaluator" >> {log}',
        "    simdied=1; stop_evaluator; break",
        "  fi",
        f"  size=$(wc -c < {log})",
        '  if [ "$size" = "$last" ]; then quiet=$((quiet+1)); else quiet=0; last=$size; fi',
        f"  if [ $quiet -ge {silence} ]; then",
        f"    echo 'lbcloud: the agent printed nothing for {silence} s; stopping it' >> {log}",
        f"    touch {AGENT_SILENT_FILE}; stop_evaluator; break",
        "  fi",
        "  sleep 1",
        "done",
        'wait "$pid"; code=$?',
        f"if [ -f {AGENT_SILENT_FILE} ]; then code={EXIT_AGENT_SILENT}; fi",
        f"if [ $simdied = 1 ]; then code={EXIT_SIMULATION_CRASHED}; fi",
        'kill "$mirror" 2>/dev/null',
        f"echo $code > {AGENT_EXIT_FILE}.tmp && mv {AGENT_EXIT_FILE}.tmp {AGENT_EXIT_FILE}",
        "exit $code",
    ]
    return "\n".join(lines)


def simulator_script(spec: AttemptSpec, *, co_container: bool, gpu_handoff: bool) -> str:
    """The simulator's sh wrapper: log to the shared folder, tell the agent when it started and
    when it died; as a co-container, stop with the agent.

    It exits 0 whenever it was stopped (the agent ended, or the kubelet stopped the pod) and with the
    server's code (1 if that was 0) when the server ended on its own: a non-zero end or a restart
    is how :mod:`.blame` sees a simulator that died during the route."""
    images = _images(spec.track)
    command = render_command(images.simulator_command, _placeholders(spec, images.simulator_port))
    log = f"{LOGS_DIR}/simulator.log"
    lines = ["set -u", f"mkdir -p {LOGS_DIR}", f"touch {SIMULATOR_STARTED_FILE}"]
    # {gpu_index}: 0 unless the hand-off finds the agent's GPU among the node's (DRA: the only one seen)
    lines.append(f'{carla_wrapper.GPU_INDEX_ENV}="${{{carla_wrapper.GPU_INDEX_ENV}:-0}}"')
    if gpu_handoff:
        waits = max(1, math.ceil(spec.track.setup_timeout_s))
        lines += [
            "n=0",
            f"while [ ! -s {GPU_UUID_FILE} ]; do",
            f"  if [ -f {AGENT_EXIT_FILE} ]; then exit 0; fi  # the agent ended before handing the GPU over",
            f"  n=$((n+1)); if [ $n -gt {waits} ]; then echo 'lbcloud: no GPU UUID from the agent' >&2; exit 1; fi",
            "  sleep 1",
            "done",
            *carla_wrapper.gpu_index_lines(GPU_UUID_FILE),
        ]
    lines += [
        "stopping=0",
        f"{command} >> {log} 2>&1 &",
        "pid=$!",
        "trap 'stopping=1; kill $pid 2>/dev/null' TERM INT",
        'while kill -0 "$pid" 2>/dev/null; do',
    ]
    if co_container:
        lines.append(
            f'  if [ -f {AGENT_EXIT_FILE} ]; then stopping=1; kill "$pid" 2>/dev/null; wait "$pid"; exit 0; fi'
        )
    lines += [
        "  sleep 1",
        "done",
        'wait "$pid"; code=$?',
        'if [ "$stopping" = 1 ]; then exit 0; fi',
        f"if [ -f {AGENT_EXIT_FILE} ]; then exit 0; fi",
        'if [ "$code" = 0 ]; then code=1; fi',
        f'echo "lbcloud: the simulator exited with code $code while the route ran" >> {log}',
        f"echo $code > {SIMULATOR_DIED_FILE}",
        "exit $code",
    ]
    return "\n".join(lines)


def prepare_command(spec: AttemptSpec) -> list[str]:
    """The ``prepare`` init step: staging → contents, CARLA route files cut to the attempt's route."""
    argv = [
        "lbcloud",
        "k8s",
        "prepare-contents",
        "--staging",
        STAGING_DIR,
        "--contents",
        CONTENTS_DIR,
        "--routes-file",
        f"routes/{PurePosixPath(spec.track.routes_file).name}",
    ]
    if spec.track.simulator is SimulatorKind.CARLA:
        argv += ["--only-route", spec.route_id]
    return argv


def reporter_command(spec: AttemptSpec, config: KubernetesConfig, *, co_container: bool) -> list[str]:
    argv = [
        "lbcloud",
        "reporter",
        "--dispatcher-url",
        config.dispatcher_url,
        "--attempt-id",
        str(spec.attempt_id),
        "--route-id",
        route_instance_id(spec),
        "--checkpoint",
        CHECKPOINT_PATH,
        "--logs-dir",
        LOGS_DIR,
        "--run-dir",
        RUN_DIR,
        "--interval",
        f"{config.reporter_interval_s:g}",
    ]
    if spec.track.simulator is SimulatorKind.CARLA:
        argv += ["--recordings-dir", RECORDINGS_DIR]
    if co_container:
        # ordinary container: it must end for the pod to end, and it tells the agent when to start
        argv += ["--exit-when-done", "--probe-port", str(_images(spec.track).simulator_port)]
    return argv


# --------------------------------------------------------------------------------------- objects


def _images(track: Track) -> Any:
    if track.images is None:
        raise ConfigError(f"track {track.name} has no container images; it cannot run on Kubernetes")
    return track.images


def _mount(name: str, path: str, *, read_only: bool = False) -> Manifest:
    out: Manifest = {"name": name, "mountPath": path}
    if read_only:
        out["readOnly"] = True
    return out


def _restricted(*, read_only_root: bool) -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
    }


def _resources(cpu: str, memory: str, extra_limits: Mapping[str, str] | None = None) -> Manifest:
    limits: dict[str, str] = {"cpu": cpu, "memory": memory}
    limits.update(extra_limits or {})
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


def uses_dra(spec: AttemptSpec, config: KubernetesConfig) -> bool:
    return spec.track.pool.gpus_per_attempt > 0 and config.gpu_sharing == "dra"


def layout_is_co_container(spec: AttemptSpec, config: KubernetesConfig) -> bool:
    """Whether simulator and reporter run as ordinary containers (see the module docstring)."""
    gpu_handoff = spec.track.pool.gpus_per_attempt > 0 and config.gpu_sharing == "device-handoff"
    return config.compat == "1.20" or gpu_handoff


def render_job(spec: AttemptSpec, config: KubernetesConfig) -> Manifest:
    """The attempt's Job. Raises :class:`ConfigError` when the track cannot run on Kubernetes."""
    track = spec.track
    images = _images(track)
    pool = track.pool
    if spec.agent.kind is not AgentKind.IMAGE:
        raise ConfigError(f"submission {spec.submission_id}: the Kubernetes backend needs an agent image")
    gpus = pool.gpus_per_attempt
    dra = uses_dra(spec, config)
    gpu_handoff = gpus > 0 and not dra
    co_container = layout_is_co_container(spec, config)
    labels = attempt_labels(spec)
    name = job_name(spec)
    port = images.simulator_port

    volumes: list[Manifest] = [
        {"name": n, "emptyDir": {}}
        for n in ("staging", "contents", "results", "logs", "run", "tmp", "simstate", "recordings")
    ]
    # `cp -R`, not `cp -a`: the non-root container may not set the times or owner of the emptyDir
    # itself (root's), and `cp -a .../. dir/` tries to, failing the copy on a real node
    contents_copy = " && ".join(
        f"cp -R {shlex.quote(p.rstrip('/') + '/.')} {STAGING_DIR}/" for p in images.contents_paths
    )
    # init steps run before the pod's containers, so the scheduler counts only the larger of the two:
    # the agent's CPU costs nothing extra and keeps Python's start-up from crawling under a 100m quota
    small = _resources(pool.cpu, "256Mi")
    init_containers: list[Manifest] = [
        {
            "name": CONTENTS,
            "image": images.contents,
            "command": ["/bin/sh", "-c", f"set -e; {contents_copy}"],
            "resources": small,
            "securityContext": _restricted(read_only_root=True),
            "volumeMounts": [_mount("staging", STAGING_DIR)],
        },
        {
            "name": PREPARE,
            "image": config.image,
            "command": prepare_command(spec),
            "resources": small,
            "securityContext": _restricted(read_only_root=True),
            "volumeMounts": [_mount("staging", STAGING_DIR, read_only=True), _mount("contents", CONTENTS_DIR)],
        },
    ]

    reporter: Manifest = {
        "name": REPORTER,
        "image": config.image,
        "command": reporter_command(spec, config, co_container=co_container),
        "env": [{"name": TOKEN_ENV, "value": spec.token}],
        "resources": _resources("100m", "128Mi"),
        "securityContext": {**_restricted(read_only_root=True), "runAsNonRoot": True},
        "volumeMounts": [
            _mount("results", RESULTS_DIR, read_only=True),
            _mount("logs", LOGS_DIR, read_only=True),
            _mount("run", RUN_DIR, read_only=not co_container),
            _mount("recordings", RECORDINGS_DIR, read_only=True),
        ],
    }
    failure_threshold = max(1, math.ceil(track.setup_timeout_s / 2))
    simulator: Manifest = {
        "name": SIMULATOR,
        "image": images.simulator,
        "command": ["/bin/sh", "-c", simulator_script(spec, co_container=co_container, gpu_handoff=gpu_handoff)],
        "ports": [{"name": "rpc", "containerPort": port, "protocol": "TCP"}],
        "startupProbe": {
            "tcpSocket": {"port": port},
            "periodSeconds": 2,
            "failureThreshold": failure_threshold,
            "timeoutSeconds": 1,
        },
        "resources": _resources(pool.simulator_cpu, pool.simulator_memory),
        "securityContext": _restricted(read_only_root=False),
        "volumeMounts": [
            _mount("logs", LOGS_DIR),
            _mount("run", RUN_DIR, read_only=True),
            _mount("simstate", SIMSTATE_DIR),
            _mount("recordings", RECORDINGS_DIR),
            # shared with the agent container: the evaluator hands the simulator files by path (the
            # SUMO track writes each route's demand there), as processes on one machine do
            _mount("tmp", "/tmp"),
        ],
    }
    agent_limits = {"nvidia.com/gpu": str(gpus)} if gpu_handoff else None
    agent_env: list[Manifest] = [
        {"name": "LBCLOUD_ROUTE", "value": spec.route_id},
        {"name": "LBCLOUD_SIMULATOR_PORT", "value": str(port)},
    ]
    if track.read_only_root:
        agent_env.append({"name": "HOME", "value": "/tmp"})
    agent: Manifest = {
        "name": AGENT,
        "image": spec.agent.ref,
        "command": ["/bin/sh", "-c", agent_script(spec, co_container=co_container, gpu_handoff=gpu_handoff)],
        "env": agent_env,
        "resources": _resources(pool.cpu, pool.memory, agent_limits),
        "securityContext": _restricted(read_only_root=track.read_only_root),
        "volumeMounts": [
            _mount("contents", CONTENTS_DIR, read_only=True),
            _mount("results", RESULTS_DIR),
            _mount("logs", LOGS_DIR),
            _mount("run", RUN_DIR),
            _mount("simstate", SIMSTATE_DIR, read_only=True),
            _mount("tmp", "/tmp"),
        ],
    }
    if dra:
        simulator["resources"]["claims"] = [{"name": "gpu"}]
        agent["resources"]["claims"] = [{"name": "gpu"}]

    if config.image_pull_policy is not None:
        for container in (*init_containers, reporter, simulator, agent):
            container["imagePullPolicy"] = config.image_pull_policy
    if co_container:
        containers = [agent, simulator, reporter]
    else:
        reporter["restartPolicy"] = "Always"
        simulator["restartPolicy"] = "Always"
        # reporter first: it is up before the simulator, and the agent waits for the simulator's probe
        init_containers += [reporter, simulator]
        containers = [agent]

    pod_spec: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 30,
        "initContainers": init_containers,
        "containers": containers,
        "volumes": volumes,
    }
    if spec.budget_s > 0:
        # the pod's clock starts when a node took it, so waiting for capacity never eats the budget
        # (no budget: the official system's game-time route timeout and no-output watchdog only)
        pod_spec["activeDeadlineSeconds"] = max(1, math.ceil(spec.budget_s + track.setup_timeout_s))
    if pool.node_selector:
        pod_spec["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        pod_spec["tolerations"] = [
            {k: v for k, v in (("key", t.key), ("operator", t.operator), ("value", t.value), ("effect", t.effect)) if v}
            for t in pool.tolerations
        ]
    if pool.priority_class:
        pod_spec["priorityClassName"] = pool.priority_class
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in config.image_pull_secrets]
    if dra:
        template = claim_template_name(spec)
        if config.kube_minor < 31:
            pod_spec["resourceClaims"] = [{"name": "gpu", "source": {"resourceClaimTemplateName": template}}]
        else:
            pod_spec["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": template}]

    job_spec: Manifest = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": labels, "annotations": {SIMULATOR_KIND_ANNOTATION: track.simulator.value}},
            "spec": pod_spec,
        },
    }
    if config.compat != "1.20":
        # a v1.20 server drops both fields silently; render them only where they work
        job_spec["ttlSecondsAfterFinished"] = config.job_ttl_s
        job_spec["podFailurePolicy"] = pod_failure_policy()
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": config.namespace,
            "labels": labels,
            "annotations": {
                "lbcloud.io/attempt-number": str(spec.attempt_number),
                "lbcloud.io/repetition": str(spec.repetition),
                "lbcloud.io/budget-seconds": f"{spec.budget_s:g}",
            },
        },
        "spec": job_spec,
    }


def pod_failure_policy() -> Manifest:
    """The Job's ``podFailurePolicy``: :data:`POD_FAILURE_RULES` in order, each failing the Job."""
    rules: list[Manifest] = []
    for rule in POD_FAILURE_RULES:
        if rule.disruption:
            rules.append({"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]})
        else:
            rules.append(
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": AGENT, "operator": "In", "values": list(rule.exit_codes)},
                }
            )
    return {"rules": rules}


def render_claim_template(spec: AttemptSpec, config: KubernetesConfig) -> Manifest:
    """The DRA ResourceClaimTemplate both simulator and agent share (``gpu_sharing="dra"``)."""
    minor = config.kube_minor
    metadata = {"name": claim_template_name(spec), "namespace": config.namespace, "labels": attempt_labels(spec)}
    count = spec.track.pool.gpus_per_attempt
    if minor < 31:
        return {
            "apiVersion": "resource.k8s.io/v1alpha2",
            "kind": "ResourceClaimTemplate",
            "metadata": metadata,
            "spec": {"spec": {"resourceClassName": config.dra_device_class}},
        }
    request: Manifest = {"name": "gpu", "deviceClassName": config.dra_device_class}
    if count > 1:
        request.update({"allocationMode": "ExactCount", "count": count})
    return {
        "apiVersion": "resource.k8s.io/v1alpha3" if minor == 31 else "resource.k8s.io/v1beta1",
        "kind": "ResourceClaimTemplate",
        "metadata": metadata,
        "spec": {"spec": {"devices": {"requests": [request]}}},
    }


def render_network_policy(config: KubernetesConfig) -> Manifest:
    """Evaluation pods: no ingress; egress only to the dispatcher's pods on its port, and DNS.

    Traffic inside the pod (agent ↔ simulator on 127.0.0.1) is not subject to NetworkPolicy.
    """
    dispatcher_ns = config.dispatcher_namespace or config.namespace
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": network_policy_name(),
            "namespace": config.namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY, "app.kubernetes.io/name": "lbcloud"},
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL_COMPONENT: COMPONENT_EVALUATION, LABEL_MANAGED_BY: MANAGED_BY}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": dispatcher_ns}},
                            "podSelector": {"matchLabels": dict(config.dispatcher_pod_labels)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": config.dispatcher_port}],
                },
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": config.dns_namespace}},
                            "podSelector": {"matchLabels": dict(config.dns_pod_labels)},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
            ],
        },
    }


@dataclass(frozen=True, slots=True)
class AttemptObjects:
    """Everything one attempt needs, in creation order (claim template before the Job)."""

    job: Manifest
    claim_template: Manifest | None = None
    extras: tuple[Manifest, ...] = field(default_factory=tuple)

    def all(self) -> list[Manifest]:
        return [*([self.claim_template] if self.claim_template else []), self.job, *self.extras]


def render_attempt(spec: AttemptSpec, config: KubernetesConfig) -> AttemptObjects:
    """The Job (and, with DRA, its claim template) of one attempt."""
    claim = render_claim_template(spec, config) if uses_dra(spec, config) else None
    return AttemptObjects(job=render_job(spec, config), claim_template=claim)
