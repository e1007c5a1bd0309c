"""Route files, the official --routes-subset semantics and error texts, and the worker split."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.model import ResultFormat
from lbcloud.domain.results.routes import (
    parse_route_file,
    reference_split,
    select_routes,
    select_subset,
    split_routes,
    subset_expression,
)

XML_2X = """<?xml version="1.0" encoding="UTF-8"?>
<routes>
  <route id="3" town="Town13">
    <weathers><weather route_percentage="0"/></weathers>
    <waypoints>
      <position x="0.0" y="0.0" z="0.0"/>
      <position x="3.0" y="4.0" z="0.0"/>
      <position x="3.0" y="4.0" z="12.0"/>
    </waypoints>
    <scenarios>
      <scenario name="a" type="Accident"><trigger_point x="1" y="1" z="0" yaw="0"/></scenario>
      <scenario name="b" type="HardBreakRoute"/>
    </scenarios>
  </route>
  <route id="1" town="Town13"><waypoints><position x="0" y="0" z="0"/></waypoints><scenarios/></route>
  <route id="2" town="Town12"><waypoints/><scenarios/></route>
  <route id="12" town="Town12"><waypoints/><scenarios/></route>
  <route id="4" town="Town12"><waypoints/><scenarios/></route>
</routes>
"""

XML_10 = """<routes>
  <route id="0" town="Town01">
    <waypoint pitch="0" roll="0" x="0" y="0" yaw="0" z="0"/>
    <waypoint pitch="0" roll="0" x="0" y="0" yaw="0" z="2"/>
  </route>
  <route id="5" town="Town01"><waypoint x="1" y="1" z="1"/></route>
</routes>"""

IDS = ("3", "1", "2", "12", "4")


def test_parse_2x_route_file() -> None:
    routes = parse_route_file(XML_2X, "r.xml")
    assert routes.format is ResultFormat.V2X
    assert routes.route_ids == IDS
    first = routes.routes[0]
    assert first.town == "Town13"
    assert first.scenario_count == 2
    assert first.length_2d == 5.0
    assert first.length_3d == 17.0
    assert routes.routes[2].keypoints == ()


def test_parse_10_route_file() -> None:
    routes = parse_route_file(XML_10.encode(), "r10.xml")
    assert routes.format is ResultFormat.V10
    assert routes.route_ids == ("0", "5")
    assert routes.routes[0].length_3d == 2.0
    assert routes.routes[0].length_2d == 0.0


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<routes><route id='a'/></routes>", "route ids must be decimal integers"),
        ("<routes><route/></routes>", "has no id"),
        ("<routes><route id='1'><waypoints><position x='q' y='0' z='0'/></waypoints></route></routes>", "not a number"),
        ("<routes><route id='1'>", "not a valid route XML file"),
        ("<scenarios/>", "expected <routes>"),
    ],
)
def test_bad_route_files_are_input_errors(xml: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_route_file(xml, "bad.xml")
    assert str(info.value).startswith("bad.xml: ")


@pytest.mark.parametrize(
    ("subset", "selected"),
    [
        ("", IDS),
        ("3,1", ("3", "1")),
        ("1,3", ("3", "1")),
        ("1-12", ("1", "2", "12")),
        ("12, 3 - 1", ("3", "1", "12")),
        ("2-2", ("2",)),
    ],
)
def test_subsets_select_in_file_order(subset: str, selected: tuple[str, ...]) -> None:
    assert select_subset(IDS, subset) == selected


@pytest.mark.parametrize(
    ("subset", "fmt", "message"),
    [
        ("12-1", ResultFormat.V2X, "Malformed route subset '12-1', found the end id before the starting one"),
        ("5-5", ResultFormat.V10, "Malformed route subset '5-5', found the end id before the starting one"),
        ("1,1", ResultFormat.V2X, "Found a repeated route with id '1'"),
        ("1-2,2", ResultFormat.V2X, "Found a repeated route with id '2'"),
        ("7", ResultFormat.V2X, "Couldn't find the route with id '7' inside the given routes file"),
        ("1,", ResultFormat.V2X, "Couldn't find the route with id '' inside the given routes file"),
        ("1-99", ResultFormat.V2X, "Couldn't find the route with id '99' inside the given routes file"),
        ("99-1", ResultFormat.V2X, "Malformed route subset '99-1', found the end id before the starting one"),
        ("1-2-3", ResultFormat.V2X, "Malformed route subset '1-2-3'"),
    ],
)
def test_subset_errors_use_official_texts(subset: str, fmt: ResultFormat, message: str) -> None:
    ids = ("5", "6") if subset == "5-5" else IDS
    with pytest.raises(InputError) as info:
        select_subset(ids, subset, fmt)
    assert str(info.value).startswith(message)


def test_20_accepts_single_route_range() -> None:
    assert select_subset(("5", "6"), "5-5") == ("5",)


def test_duplicate_id_in_file_is_repeated() -> None:
    with pytest.raises(InputError, match="Found a repeated route with id '1'"):
        select_subset(("0", "1", "1"), "1")


def test_select_routes_returns_definitions() -> None:
    routes = parse_route_file(XML_2X, "r.xml")
    assert [r.route_id for r in select_routes(routes, "2-4")] == ["2", "12", "4"]


def test_spec_split_of_10_over_3() -> None:
    ids = [str(i) for i in range(10)]
    shares = split_routes(ids, 3)
    assert [subset_expression(s, ids) for s in shares] == ["0-3", "4-6", "7-9"]
    assert [subset_expression(s, ids) for s in split_routes(ids, 10)][7] == "7"


def test_more_workers_than_routes_gives_one_route_each() -> None:
    assert split_routes(["0", "1"], 5) == [("0",), ("1",)]
    with pytest.raises(InputError):
        split_routes(["0"], 0)


def test_reference_float_rule_overshoots_where_spec_says() -> None:
    assert reference_split(25, 11)[-1] == (23, 25)
    assert split_routes([str(i) for i in range(25)], 11)[-1] == ("23", "24")
    overshoots = sum(1 for r in range(1, 201) for w in range(1, 33) if reference_split(r, w)[-1][1] >= r)
    assert overshoots == 104


@given(n=st.integers(0, 400), workers=st.integers(1, 64))
def test_split_covers_every_route_exactly_once(n: int, workers: int) -> None:
    ids = [str(i) for i in range(n)]
    shares = split_routes(ids, workers)
    assert [i for share in shares for i in share] == ids
    assert len(shares) == min(n, workers)
    if shares:
        sizes = [len(s) for s in shares]
        assert max(sizes) - min(sizes) <= 1
        assert min(sizes) == math.floor(n / len(shares))


@given(ids=st.lists(st.integers(0, 10_000).map(str), min_size=1, max_size=60, unique=True), workers=st.integers(1, 9))
def test_split_subsets_select_exactly_their_share(ids: list[str], workers: int) -> None:
    for share in split_routes(ids, workers):
        assert select_subset(ids, subset_expression(share, ids)) == share
