"""The CARLA-specific parts of an attempt pod's wrapper scripts (pure: sh text, no I/O).

They reproduce what the official cloud's ``run_leaderboard.sh`` / ``run_carla.sh``
(carla-simulator/leaderboard-cloud, ``leaderboard_2.0/docker/{leaderboard,carla}/``) do around the
evaluator, with lbcloud's layout and blame (see ``docs/carla.md``):

- the leaderboard's variables (``CARLA_ROOT``, ``SCENARIO_RUNNER_ROOT``, ``LEADERBOARD_ROOT``,
  ``CHALLENGE_TRACK_CODENAME``, ``ROUTES``, ``ROUTES_SUBSET``, ``REPETITIONS``, ``DEBUG_CHALLENGE=0``);
- ``~/.bashrc`` and ``~/agent_sources.sh`` sourced before the evaluator starts (ROS agents need it),
  with their output in the agent's own log;
- the trusted ``carla`` package (the contents image's egg), scenario_runner and leaderboard put in
  front of the participant's ``PYTHONPATH``;
- ``$TEAM_CONFIG`` may be unset (the official template leaves it empty); an unset ``$TEAM_AGENT`` is
  the team's mistake, told in its log, and ends the attempt with the wrapper's agent-setup code;
- the simulator renders on the GPU the agent holds: its UUID mapped to the adapter index CARLA's
  ``-ini:[/Script/Engine.RendererSettings]:r.GraphicsAdapter=<index>`` expects.
"""

from __future__ import annotations

import shlex

from lbcloud.adapters.backends.carla_startup import TRUSTED_SHELL_SCRIPT, wrap_evaluator
from lbcloud.domain.blame import EXIT_AGENT_REJECTED
from lbcloud.domain.carla import leaderboard_environment
from lbcloud.domain.tracks import Track

GPU_INDEX_ENV = "LBCLOUD_GPU_INDEX"
"""Set by the simulator wrapper to the host index of the attempt's GPU (``{gpu_index}``)."""
def agent_prelude(track: Track, *, contents: str, routes: str, route: str, log: str, exit_file: str) -> list[str]:
    """sh lines run in the agent container before the evaluator: the environment and the
    ``$TEAM_AGENT`` check (its message goes to the agent's log, which the team reads)."""
    env = leaderboard_environment(track, contents=contents, routes=routes, route=route)
    lines = [f"{name}={shlex.quote(value)}; export {name}" for name, value in env.items()]
    message = (
        "lbcloud: the agent image does not set $TEAM_AGENT. Set it (e.g. ENV TEAM_AGENT=/workspace/my_agent.py)"
        " to the Python file of the agent to evaluate; $TEAM_CONFIG may stay unset."
    )
    lines += [
        'if [ -z "${TEAM_AGENT:-}" ]; then',
        f"  echo {shlex.quote(message)} | tee -a {log} >&2",
        f"  echo {EXIT_AGENT_REJECTED} > {exit_file}; exit {EXIT_AGENT_REJECTED}",
        "fi",
        "LBCLOUD_SHELL=$(command -v bash || echo sh)",
    ]
    return lines


def gpu_index_lines(uuid_file: str) -> list[str]:
    """sh lines for the simulator container: the host index of the GPU whose UUID the agent
    published (``nvidia-smi`` in the simulator container lists every GPU of the node), as
    ``$LBCLOUD_GPU_INDEX``; 0 when it cannot be found (a node with one GPU)."""
    return [
        f"uuid=$(cat {uuid_file})",
        f"{GPU_INDEX_ENV}=$(nvidia-smi --query-gpu=index,uuid --format=csv,noheader 2>/dev/null"
        ' | awk -F", *" -v u="$uuid" \'$2 == u {print $1; exit}\')',
        f'if [ -z "${{{GPU_INDEX_ENV}}}" ]; then',
        '  echo "lbcloud: GPU $uuid not listed by nvidia-smi; using adapter 0" >&2',
        f"  {GPU_INDEX_ENV}=0",
        "fi",
        f'echo "lbcloud: rendering on GPU $uuid (adapter ${GPU_INDEX_ENV})"',
        f"export {GPU_INDEX_ENV}",
    ]


__all__ = ["GPU_INDEX_ENV", "TRUSTED_SHELL_SCRIPT", "agent_prelude", "gpu_index_lines", "wrap_evaluator"]
