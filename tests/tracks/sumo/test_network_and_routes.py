"""Towns, the network cache and the seeded route sets (real netgenerate)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.routes import parse_route_file
from lbcloud.tracks.sumo.network import Town, network_file, road_network
from lbcloud.tracks.sumo.route_sets import (
    PRESETS,
    RouteSetSpec,
    generate_route_set,
    route_set_xml,
    shipped_route_file,
)
from lbcloud.tracks.sumo.scenario import RouteDefinition, build_scenario, ego_edges


def test_town_names_round_trip_and_bad_names_are_refused() -> None:
    assert Town.parse("grid5x7-130m") == Town(5, 7, 130)
    assert Town(5, 7, 130).name == "grid5x7-130m"
    with pytest.raises(InputError, match="unknown SUMO town"):
        Town.parse("Town01")
    with pytest.raises(InputError):
        Town(1, 5, 100)


@pytest.mark.sumo
def test_concurrent_generators_share_one_complete_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBCLOUD_SUMO_CACHE", str(tmp_path))
    town = Town(3, 3, 80)
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: network_file(town), range(4)))
    assert len(set(paths)) == 1
    assert paths[0].read_text().rstrip().endswith("</net>")
    leftovers = [p.name for p in paths[0].parent.parent.iterdir() if p.name != town.name]
    assert leftovers == []


@pytest.mark.sumo
def test_networks_have_a_traffic_light_at_every_inner_junction(sumo_cache: Path) -> None:
    net = road_network(Town(4, 4, 120))
    assert len(net.getTrafficLights()) == 16


@pytest.mark.sumo
def test_the_shipped_route_sets_are_what_their_presets_generate(sumo_cache: Path) -> None:
    for name, spec in PRESETS.items():
        assert shipped_route_file(name).read_text() == route_set_xml(generate_route_set(spec)), name


@pytest.mark.sumo
def test_sumo_test_has_ten_routes_varying_fivefold_with_route_0_among_the_shortest(sumo_cache: Path) -> None:
    routes = generate_route_set(PRESETS["sumo-test"])
    lengths = {r.route_id: r.length_m for r in routes}
    assert len(routes) >= 10
    assert max(lengths.values()) >= 5 * min(lengths.values())
    assert lengths["0"] <= sorted(lengths.values())[1]
    assert 2 <= len(generate_route_set(PRESETS["sumo-dev"])) <= 3


@pytest.mark.sumo
def test_route_files_have_the_leaderboard_2x_shape(sumo_cache: Path) -> None:
    parsed = parse_route_file(shipped_route_file("sumo-test").read_bytes(), "sumo-test.xml")
    assert [r.route_id for r in parsed.routes] == [str(i) for i in range(10)]
    assert all(len(r.keypoints) >= 3 for r in parsed.routes)
    assert {r.town for r in parsed.routes} == {"grid5x7-130m", "grid6x6-150m"}


@pytest.mark.sumo
def test_waypoints_lead_back_to_the_generated_roads(sumo_cache: Path) -> None:
    spec = RouteSetSpec(seed=5, count=4, min_length_m=200, max_length_m=700, towns=(Town(4, 4, 120),))
    for route in generate_route_set(spec):
        assert ego_edges(road_network(route.town), route.waypoints) == route.edges


@pytest.mark.sumo
def test_the_same_instance_builds_the_same_traffic_and_another_seed_does_not(sumo_cache: Path, tmp_path: Path) -> None:
    route = generate_route_set(PRESETS["sumo-dev"])[0]
    definition = RouteDefinition(route.route_id, route.town, route.waypoints, route.seed, route.traffic_per_min)
    first = build_scenario(definition, 0, 7, tmp_path / "a").routes_file.read_text()
    again = build_scenario(definition, 0, 7, tmp_path / "b").routes_file.read_text()
    other = build_scenario(definition, 0, 8, tmp_path / "c").routes_file.read_text()
    assert first == again
    assert first != other


@pytest.mark.sumo
def test_generate_command_writes_a_deterministic_route_file(sumo_cache: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("a.xml", "b.xml"):
        out = tmp_path / name
        done = subprocess.run(
            [sys.executable, "-m", "lbcloud", "track", "sumo", "generate", "--seed", "3", "--count", "4",
             "--min-length", "200", "--max-length", "600", "--town", "grid4x4-120m", "-o", str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "wrote 4 routes" in done.stdout
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]


def test_generate_command_refuses_a_bad_town(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lbcloud", "track", "sumo", "generate", "--town", "Town01", "-o", str(tmp_path / "x")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "error: unknown SUMO town 'Town01'" in done.stderr
    assert not (tmp_path / "x").exists()
