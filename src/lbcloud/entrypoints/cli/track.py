"""`lbcloud track` commands: the GPU-free SUMO track (simulator server, route sets, evaluator)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lbcloud.domain.errors import InputError
from lbcloud.domain.tracks import ScorerVersion
from lbcloud.tracks.sumo.agent_sandbox import AgentLimits, SandboxMode

_LIMITS = AgentLimits()

app = typer.Typer(help="Track commands (the SUMO track's simulator, route sets and evaluator).", no_args_is_help=True)
sumo_app = typer.Typer(
    help="The SUMO track: a CARLA-shaped driving benchmark that needs no GPU.\n\n"
    "Example:  lbcloud track sumo simulator --port 8813 &  then  lbcloud track sumo evaluate --agent "
    "examples/agents/competent.py --routes sumo-dev --checkpoint results.json --port 8813",
    no_args_is_help=True,
)
app.add_typer(sumo_app, name="sumo")


def _routes_path(value: str) -> Path:
    """A route file path, or the name of a shipped route set (``sumo-dev``, ``sumo-test``)."""
    from lbcloud.tracks.sumo.route_sets import PRESETS, shipped_route_file

    if value in PRESETS:
        return shipped_route_file(value)
    return Path(value)


@sumo_app.command("simulator")
def simulator(
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 for TraCI clients.")] = 8813,
    once: Annotated[
        bool, typer.Option("--once", help="Serve one evaluator session, then exit (the process becomes SUMO).")
    ] = False,
    pid_file: Annotated[
        Path | None, typer.Option("--pid-file", help="Write the pid of the listening SUMO process here.")
    ] = None,
) -> None:
    """Run a SUMO simulator server that evaluators load routes into (ends cleanly on SIGTERM).

    Example:  lbcloud track sumo simulator --port 8813
    """
    from lbcloud.tracks.sumo.simulator import serve

    sys.exit(serve(port, once=once, pid_file=pid_file))  # the code itself: the root turns typer.Exit into 0


@sumo_app.command("generate")
def generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Route file to write.")],
    preset: Annotated[
        str | None, typer.Option("--preset", help="Regenerate a shipped set: sumo-dev or sumo-test.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the route set.")] = 0,
    count: Annotated[int, typer.Option("--count", help="Number of routes.")] = 10,
    min_length: Annotated[float, typer.Option("--min-length", help="Length of route 0 (m).")] = 250.0,
    max_length: Annotated[float, typer.Option("--max-length", help="Length of the last route (m).")] = 1500.0,
    town: Annotated[
        list[str] | None, typer.Option("--town", help="Town(s) to use, e.g. grid5x5-150m (repeatable).")
    ] = None,
    traffic: Annotated[int, typer.Option("--traffic", help="Background vehicles inserted per minute.")] = 40,
) -> None:
    """Generate a route set (deterministic from its seed) and the networks it needs.

    Example:  lbcloud track sumo generate --seed 7 --count 12 --town grid5x5-150m -o routes.xml
    """
    from lbcloud.tracks.sumo.network import Town
    from lbcloud.tracks.sumo.route_sets import PRESETS, RouteSetSpec, generate_route_set, route_set_xml

    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        spec = PRESETS[preset]
    else:
        towns = tuple(Town.parse(name) for name in (town or ["grid5x5-150m"]))
        spec = RouteSetSpec(seed, count, min_length, max_length, towns, traffic)
    routes = generate_route_set(spec)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(route_set_xml(routes))
    lengths = ", ".join(f"{r.route_id}:{r.length_m:.0f}m" for r in routes)
    typer.echo(f"wrote {len(routes)} routes to {output} ({lengths})")


@sumo_app.command("evaluate")
def evaluate(
    agent: Annotated[str, typer.Option("--agent", help="path/to/agent.py[:Class] or package.module:Class.")],
    routes: Annotated[str, typer.Option("--routes", help="Route file, or sumo-dev / sumo-test.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Result/checkpoint file (2.x JSON).")] = Path(
        "simulation_results.json"
    ),
    port: Annotated[int, typer.Option("--port", help="Port of the SUMO simulator server on 127.0.0.1.")] = 8813,
    agent_config: Annotated[str, typer.Option("--agent-config", help="Passed to the agent's setup().")] = "",
    routes_subset: Annotated[str, typer.Option("--routes-subset", help="e.g. '0', '0-4', '12,3-4'.")] = "",
    repetitions: Annotated[int, typer.Option("--repetitions", help="Runs of each route.")] = 1,
    resume: Annotated[
        bool, typer.Option("--resume", help="Resume from the checkpoint: skip finished routes, re-run a crashed one.")
    ] = False,
    scorer: Annotated[ScorerVersion, typer.Option("--scorer", help="lb2.0 or lb2.1.")] = ScorerVersion.LB20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the background traffic.")] = 0,
    setup_timeout: Annotated[float, typer.Option("--setup-timeout", help="Seconds for the agent's setup().")] = 20.0,
    step_timeout: Annotated[float, typer.Option("--step-timeout", help="Seconds for one run_step().")] = 5.0,
    simulator_timeout: Annotated[
        float, typer.Option("--simulator-timeout", help="Seconds the simulator may take to answer.")
    ] = 30.0,
    connect_timeout: Annotated[
        float, typer.Option("--connect-timeout", help="Seconds to wait for the simulator at start.")
    ] = 10.0,
    agent_sandbox: Annotated[
        SandboxMode,
        typer.Option("--agent-sandbox", help="auto: bubblewrap where it works; bwrap: required; none: plain process."),
    ] = SandboxMode.AUTO,
    agent_memory_mb: Annotated[int, typer.Option("--agent-memory-mb", help="Address space per agent process.")] = (
        _LIMITS.memory_mb
    ),
    agent_pids: Annotated[int, typer.Option("--agent-pids", help="Processes/threads the agent may have.")] = (
        _LIMITS.pids
    ),
    agent_cpu_s: Annotated[int, typer.Option("--agent-cpu-s", help="CPU seconds per agent process.")] = (_LIMITS.cpu_s),
    agent_disk_mb: Annotated[int, typer.Option("--agent-disk-mb", help="Writable space (and largest file).")] = (
        _LIMITS.disk_mb
    ),
    agent_log_bytes: Annotated[
        int, typer.Option("--agent-log-bytes", help="Agent output kept; the rest is dropped after a marker.")
    ] = _LIMITS.log_bytes,
    agent_socket: Annotated[
        Path | None,
        typer.Option(
            "--agent-socket",
            help="Wait for an agent host (e.g. a container running `python -m lbcloud.tracks.sumo.agent_host "
            "--connect unix:PATH --agent ...`) on this unix socket instead of starting one per route.",
        ),
    ] = None,
) -> None:
    """Evaluate an agent on SUMO routes, writing a leaderboard 2.x checkpoint after every route.

    The agent runs in a separate agent host process (sandboxed with bubblewrap where available) and
    talks to the evaluator over the agent protocol (docs/sumo-track.md).

    Exit codes: 0 finished, 2 bad input, 3 agent rejected (sensors), 4 simulation crashed,
    5 simulator unreachable, 6 agent host could not be started here.

    Example:  lbcloud track sumo evaluate --agent examples/agents/competent.py --routes sumo-test
    --routes-subset 0 --checkpoint out.json --port 8813
    """
    from lbcloud.tracks.sumo.evaluator import EvaluatorOptions, run_with_errors

    if scorer is ScorerVersion.LB10:
        raise InputError("--scorer: the SUMO track writes 2.x files; use lb2.0 or lb2.1")
    options = EvaluatorOptions(
        agent=agent,
        routes=_routes_path(routes),
        checkpoint=checkpoint,
        port=port,
        agent_config=agent_config,
        routes_subset=routes_subset,
        repetitions=repetitions,
        resume=resume,
        scorer=scorer,
        seed=seed,
        setup_timeout_s=setup_timeout,
        step_timeout_s=step_timeout,
        simulator_timeout_s=simulator_timeout,
        connect_timeout_s=connect_timeout,
        sandbox=agent_sandbox,
        limits=AgentLimits(
            memory_mb=agent_memory_mb,
            pids=agent_pids,
            cpu_s=agent_cpu_s,
            disk_mb=agent_disk_mb,
            log_bytes=agent_log_bytes,
        ),
        agent_socket=agent_socket,
    )
    code = run_with_errors(options, echo=typer.echo)
    # everything is written and closed by now: skip the interpreter's teardown (tens of milliseconds
    # a slot would otherwise wait for) once the output is flushed
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@sumo_app.command("sandbox")
def sandbox(
    mode: Annotated[
        SandboxMode,
        typer.Option("--agent-sandbox", help="The mode to check (the local backend's local.agent_sandbox)."),
    ] = SandboxMode.AUTO,
) -> None:
    """Say whether agents run sandboxed on this machine, and with what limits (exit 1 when they do not).

    Example:  lbcloud track sumo sandbox
    """
    import shutil

    from lbcloud.tracks.sumo.agent_sandbox import sandbox_status

    status = sandbox_status(mode)
    typer.echo(f"{'ok  ' if status.sandboxed else 'FAIL'} sandbox: {status.detail}")
    typer.echo(f"{'ok  ' if shutil.which('setpriv') or os.geteuid() != 0 else 'FAIL'} setpriv (own agent user id)")
    typer.echo(
        f"ok   limits per agent: {_LIMITS.memory_mb} MiB address space, {_LIMITS.pids} processes, "
        f"{_LIMITS.cpu_s} CPU-s, {_LIMITS.disk_mb} MiB scratch, {_LIMITS.log_bytes} bytes of output (defaults)"
    )
    if not status.sandboxed:
        typer.echo("agents run as plain processes here: see docs/security.md before accepting agent files")
        raise typer.Exit(1)


@sumo_app.command("agent-host")
def agent_host(
    connect: Annotated[str, typer.Option("--connect", help="unix:PATH or tcp:HOST:PORT of the evaluator.")],
    agent: Annotated[str, typer.Option("--agent", help="path/to/agent.py[:Class] or package.module:Class.")],
    connect_timeout: Annotated[float, typer.Option("--connect-timeout", help="Seconds to wait for it.")] = 30.0,
) -> None:
    """Run an agent for an evaluator over the agent protocol (what a participant's container runs).

    Same as `python -m lbcloud.tracks.sumo.agent_host`, which needs nothing but the agent API.

    Example:  lbcloud track sumo agent-host --connect unix:/run/agent/agent.sock --agent my_agent.py
    """
    from lbcloud.tracks.sumo.agent_host import main

    sys.exit(main(["--connect", connect, "--agent", agent, "--connect-timeout", str(connect_timeout)]))
