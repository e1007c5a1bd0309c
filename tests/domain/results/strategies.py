"""Hypothesis strategies for route records built by the scorer, as an evaluator would write them."""

from __future__ import annotations

from hypothesis import strategies as st

from lbcloud.domain.results.model import INFRACTION_KEYS_2X, INFRACTION_KEYS_10, ResultFormat, RouteRecord, route_id_for
from lbcloud.domain.results.scoring import (
    InfractionEvent,
    blocked_message,
    build_route_record,
    min_speed_message,
    off_road_message,
)
from lbcloud.domain.tracks import ScorerVersion

_FIXED_KINDS = [
    k for k in INFRACTION_KEYS_2X if k not in ("min_speed_infractions", "outside_route_lanes", "vehicle_blocked")
]


@st.composite
def events(draw: st.DrawFn) -> list[InfractionEvent]:
    out: list[InfractionEvent] = []
    off_road_done = False
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            p = round(draw(st.floats(0, 99.99)), 2)
            out.append(InfractionEvent("min_speed_infractions", min_speed_message(p), p))
        elif choice == 1 and not off_road_done:
            q = round(draw(st.floats(0, 60)), 2)
            metres = round(draw(st.floats(0, 500)), 3)
            out.append(InfractionEvent("outside_route_lanes", off_road_message(metres, q), q))
            off_road_done = True
        elif choice == 2:
            out.append(InfractionEvent("vehicle_blocked", blocked_message(1.0, 2.0, 3.0)))
        else:
            out.append(InfractionEvent(draw(st.sampled_from(_FIXED_KINDS)), "Agent did something"))
    return out


@st.composite
def route_record(
    draw: st.DrawFn, route: int, repetition: int = 0, scorer: ScorerVersion = ScorerVersion.LB20
) -> RouteRecord:
    rc = draw(st.one_of(st.just(100), st.just(0), st.floats(0.01, 99.99).map(lambda x: round(x, 2))))
    failure = draw(st.sampled_from([None, "Agent crashed", "Simulation crashed"]))
    drawn = draw(events())
    fmt = ResultFormat.V2X
    if scorer is ScorerVersion.LB10:
        drawn = [event for event in drawn if event.kind in INFRACTION_KEYS_10]
        fmt = ResultFormat.V10
    return build_route_record(
        index=route,
        route_id=route_id_for(route, repetition, fmt),
        route_completion=rc,
        events=drawn,
        route_length=draw(st.floats(10, 20000)),
        duration_game=draw(st.floats(0, 3000)),
        duration_system=draw(st.floats(0, 9000)),
        scorer=scorer,
        failure=failure,
    )


@st.composite
def record_sets(draw: st.DrawFn, max_routes: int = 12) -> list[RouteRecord]:
    """Records of routes 0..n-1 (one repetition), in route order."""
    n = draw(st.integers(1, max_routes))
    return [draw(route_record(i)) for i in range(n)]
