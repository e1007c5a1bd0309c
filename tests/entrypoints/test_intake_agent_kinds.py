"""Intake refuses a kind of agent the configured backend cannot run, with the reason and what to do
instead: it never becomes an attempt that fails (and is blamed on someone) later."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbcloud.domain.errors import InputError
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission
from lbcloud.entrypoints.wiring import build_system
from lbcloud.settings import load_settings

AGENT = Path(__file__).resolve().parents[2] / "examples" / "agents" / "competent.py"


def _submit(tmp_path: Path, backend: str, agent: AgentRef) -> int:
    settings = load_settings(
        None, data_dir=str(tmp_path / "data"), backend=backend, local={"allow_unsandboxed_agents": True}
    )
    system = build_system(settings)
    try:
        submission, _ = system.intake.submit(NewSubmission(team="alpha", track="sumo-dev", agent=agent))
        assert system.store.get_submission(submission.id).agent.kind is agent.kind
        return submission.id
    finally:
        system.close()


def test_the_local_backend_refuses_an_image_and_says_what_to_submit(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"local backend runs agent files, not images: submit a Python file"):
        _submit(tmp_path, "local", AgentRef(AgentKind.IMAGE, "registry.local/alpha/agent:1"))
    assert _submit(tmp_path, "local", AgentRef(AgentKind.LOCAL, str(AGENT))) > 0


@pytest.mark.parametrize("backend", ["docker", "kubernetes"])
def test_image_backends_refuse_an_agent_file_and_say_to_submit_an_image(tmp_path: Path, backend: str) -> None:
    with pytest.raises(InputError, match=rf"{backend} backend evaluates images, not agent files: .*--image"):
        _submit(tmp_path, backend, AgentRef(AgentKind.LOCAL, str(AGENT)))
    with pytest.raises(InputError, match=r"image reference 'Not An Image!' is malformed"):
        _submit(tmp_path, backend, AgentRef(AgentKind.IMAGE, "Not An Image!"))
    assert _submit(tmp_path, backend, AgentRef(AgentKind.IMAGE, "registry.local/alpha/agent:1")) > 0
