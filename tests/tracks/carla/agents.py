"""Stand-in participant agents (the module the stand-in evaluator imports) and what each one does.

Each case names an agent behaviour, the stand-in server's plan for it, and the environment of the
participant's image (``$TEAM_AGENT`` / ``$TEAM_CONFIG`` set or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

AGENT_TEMPLATE = '''
import os, time

TRACK = {track!r}

if {fail_import!r}:
    raise RuntimeError("this agent's module cannot even be imported")


def setup(config):
    # ~/agent_sources.sh must have been sourced (ROS agents set themselves up there)
    if os.environ.get("STANDIN_SOURCED") != "1":
        raise RuntimeError("agent_sources.sh was not sourced")
    if {fail_setup!r}:
        raise RuntimeError("the model weights are missing")
    print("agent set up with config " + repr(config), flush=True)


def run_step(step):
    if {crash_at!r} == step:
        raise ValueError("agent bug at step " + str(step))
    if {hang!r}:
        time.sleep(3600)
'''


@dataclass(frozen=True, slots=True)
class Case:
    """One behaviour of the official system the stand-in reproduces."""

    name: str
    plan: str = ""
    track: str = "SENSORS"
    fail_import: bool = False
    fail_setup: bool = False
    crash_at: int = -1
    hang: bool = False
    team_agent: bool = True
    team_config: bool = True

    def write_agent(self, folder: Path) -> Path:
        path = folder / f"{self.name}.py"
        path.write_text(
            AGENT_TEMPLATE.format(
                track=self.track, fail_import=self.fail_import, fail_setup=self.fail_setup,
                crash_at=self.crash_at, hang=self.hang,
            )
        )  # fmt: skip
        return path


CASES = {
    case.name: case
    for case in (
        Case("normal"),
        Case("sim_crash_once", plan="crash_once"),
        Case("sim_error_once", plan="error_once"),
        Case("sim_crash_always", plan="crash"),
        Case("rejected", track="MAP"),
        Case("setup_failure", fail_setup=True),
        Case("agent_crash", crash_at=2),
        Case("uncaught", fail_import=True),
        Case("hang", hang=True),
        Case("no_team_agent", team_agent=False),
        Case("no_team_config", team_config=False),
    )
}


def write_home(folder: Path) -> Path:
    """A participant image's home: ``agent_sources.sh`` exports what the agent checks."""
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "agent_sources.sh").write_text('export STANDIN_SOURCED=1\necho "sourced agent_sources.sh"\n')
    (home / ".bashrc").write_text("# a participant's bashrc\n")
    return home


def write_untrusted_carla(folder: Path) -> Path:
    """A participant's own ``carla`` package, on its image's PYTHONPATH: it must not win."""
    site = folder / "participant-site"
    (site / "carla").mkdir(parents=True, exist_ok=True)
    (site / "carla" / "__init__.py").write_text("TRUSTED = False\n")
    return site
