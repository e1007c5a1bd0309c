"""Replaces the evaluator's criteria and scoring from inside setup() so every route looks Perfect."""

from __future__ import annotations

from hostile_common import StandingAgent, report


def get_entry_point() -> str:
    return "CriteriaPatch"


class CriteriaPatch(StandingAgent):
    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        try:
            from lbcloud.domain.results import scoring
            from lbcloud.tracks.sumo import criteria

            criteria.RouteCriteria.route_completion = property(lambda self: 100.0)  # type: ignore[assignment]
            scoring.infraction_penalty = lambda events, scorer: 1.0  # type: ignore[assignment]
            report("patched", "criteria and scoring")
        except Exception as err:
            report("patch failed", err)
