"""How the participant's image starts the official CARLA evaluator, on every container backend.

Like the official ``run_leaderboard.sh`` (carla-simulator/leaderboard-cloud,
``leaderboard_2.0/docker/leaderboard/run_leaderboard.sh`` lines 27-30 and 126-130; see
``docs/carla.md``): the image's ``~/.bashrc`` and ``~/agent_sources.sh`` are sourced first (ROS
agents set themselves up there), then the trusted ``carla`` egg, scenario_runner and leaderboard are
put in front of the image's ``PYTHONPATH``.
"""

from __future__ import annotations

import shlex

TRUSTED_SHELL_SCRIPT = (
    '[ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc"; '
    'if [ -f "$HOME/agent_sources.sh" ]; then echo "lbcloud: sourcing $HOME/agent_sources.sh"; '
    '. "$HOME/agent_sources.sh"; fi; '
    'egg=$(ls -d "$CARLA_ROOT"/PythonAPI/carla/dist/carla-*py3*.egg 2>/dev/null | head -n 1); '
    'PYTHONPATH="${egg:+$egg:}$CARLA_ROOT/PythonAPI/carla:$SCENARIO_RUNNER_ROOT:$LEADERBOARD_ROOT'
    '${PYTHONPATH:+:$PYTHONPATH}"; export PYTHONPATH; '
    'exec "$@"'
)
"""Run by the participant's bash (sh if it has none) right before the evaluator: source the
image's start-up files, then put the trusted packages first (after sourcing, so nothing in them
can push the participant's own ``carla`` in front). Needs ``CARLA_ROOT``, ``SCENARIO_RUNNER_ROOT``
and ``LEADERBOARD_ROOT`` in the environment."""

SHELL_CHOICE = 'LBCLOUD_SHELL=$(command -v bash || echo sh)'


def wrap_evaluator(command: str) -> str:
    """``command`` (one sh command line) run through :data:`TRUSTED_SHELL_SCRIPT` by
    ``$LBCLOUD_SHELL`` (set by :data:`SHELL_CHOICE`)."""
    return f'"$LBCLOUD_SHELL" -c {shlex.quote(TRUSTED_SHELL_SCRIPT)} lbcloud-agent {command}'
