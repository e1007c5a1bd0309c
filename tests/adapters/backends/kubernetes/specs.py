"""Attempt specs for the Kubernetes backend tests."""

from __future__ import annotations

import dataclasses

from lbcloud.domain.submissions import AgentKind, AgentRef
from lbcloud.domain.tracks import Pool, Track
from lbcloud.services.ports import AttemptSpec
from lbcloud.settings import load_settings

AGENT_IMAGE = "registry.example.org/team-a/agent:v1"


def sumo_track() -> Track:
    return load_settings().track("sumo-test")


def attempt_spec(
    attempt_id: int = 7,
    *,
    submission_id: int = 3,
    route_id: str = "2",
    team: str = "Team A",
    track: Track | None = None,
    agent_image: str = AGENT_IMAGE,
    pool: Pool | None = None,
    repetition: int = 0,
) -> AttemptSpec:
    track = track or sumo_track()
    if pool is not None:
        track = dataclasses.replace(track, pool=pool)
    return AttemptSpec(
        attempt_id=attempt_id,
        attempt_number=1,
        submission_id=submission_id,
        task_id=attempt_id * 10,
        team=team,
        track=track,
        agent=AgentRef(AgentKind.IMAGE, agent_image),
        route_id=route_id,
        repetition=repetition,
        budget_s=300.0,
        token=f"token-{attempt_id}",
    )
