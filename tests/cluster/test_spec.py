"""The cluster spec: the example parses, and each kind of bad spec gives one clear line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from lbcloud.cluster.node_pools import Capacity, ImageKind
from lbcloud.cluster.spec import example_spec_text, load_spec, parse_spec
from lbcloud.domain.errors import ConfigError
from tests.cluster.conftest import example_data, write_spec


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_spec(data, "cluster.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_example_spec_parses_with_the_documented_defaults() -> None:
    spec = parse_spec(example_data(), "cluster.yaml")
    assert spec.name == "leaderboard"
    assert spec.region == "us-east-1"
    assert spec.kubernetes_version == "1.29"
    assert [p.name for p in spec.gpu_pools] == ["g5-xlarge", "g5-12xlarge"]
    assert spec.gpu_pools[0].min == 0 and spec.gpu_pools[0].max == 4
    assert spec.gpu_pools[1].capacity is Capacity.SPOT
    assert spec.gpu_pools[1].gpus_per_node == 4
    assert spec.gpu_image is not None and spec.gpu_image.nvidia_driver == "470.182.03"
    assert spec.image_kind(spec.gpu_pools[0]) is ImageKind.CUSTOM
    assert spec.kube_context == "lbcloud-leaderboard"
    assert spec.storage.prefix == "lbcloud/"


def test_example_spec_is_commented_for_a_first_time_reader() -> None:
    text = example_spec_text()
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) > 30
    for topic in ("min 0", "470", "spot", "environment variables", "docs/operator-guide.md"):
        assert topic in text


def test_unknown_instance_type_format_is_one_line() -> None:
    data = example_data()
    data["gpu_pools"][0]["instance_type"] = "g5xlarge"
    assert _error(data) == (
        "cluster.yaml: gpu_pools[0].instance_type: 'g5xlarge' is not an EC2 instance type "
        "(expected family.size, e.g. g5.xlarge)"
    )


def test_min_greater_than_max_names_the_pool() -> None:
    data = example_data()
    data["gpu_pools"][1].update(min=3, max=1)
    assert _error(data) == "cluster.yaml: gpu_pools[1]: min (3) is greater than max (1)"


def test_missing_region_is_one_line() -> None:
    data = example_data()
    del data["region"]
    assert _error(data) == "cluster.yaml: region: required field is missing"


def test_gpu_pool_without_an_image_choice_is_one_line() -> None:
    data = example_data()
    del data["gpu_image"]
    assert _error(data) == (
        "cluster.yaml: gpu_pools[0] (g5-xlarge): no GPU node image chosen; "
        "set gpu_image.kind (eks-accelerated or custom) or the pool's image"
    )


def test_a_pool_may_choose_the_eks_image_without_a_gpu_image_section() -> None:
    data = example_data()
    del data["gpu_image"]
    for pool in data["gpu_pools"]:
        pool["image"] = "eks-accelerated"
    spec = parse_spec(data)
    assert not spec.needs_custom_image()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"kubernetes_version": "1.24"}, "kubernetes_version: Kubernetes 1.24 is not supported"),
        ({"region": "mars-1"}, "region: 'mars-1' is not an AWS region"),
        ({"name": "9lives"}, "name: cluster name '9lives' must start with a letter"),
        ({"clustr": "typo"}, "clustr: unknown field"),
        ({"admins": ["alice"]}, "admins: 'alice' is not an IAM role or user ARN"),
        ({"storage": {"bucket": "Bad_Bucket"}}, "storage.bucket: 'Bad_Bucket' is not a valid S3 bucket name"),
        ({"tracks": [{"name": "MAP", "pool": "p5"}]}, "tracks[0] (MAP): unknown pool 'p5'"),
        ({"settings": {"database_url": "postgresql://u:pw@h/db"}}, "settings.database_url: secrets do not belong"),
    ],
)
def test_bad_top_level_fields_name_the_field(change: dict[str, Any], expected: str) -> None:
    data = example_data()
    data.update(change)
    message = _error(data)
    assert message.startswith("cluster.yaml: ")
    assert expected in message


def test_a_cpu_instance_type_cannot_be_a_gpu_pool() -> None:
    data = example_data()
    data["gpu_pools"][0]["instance_type"] = "m5.large"
    assert "instance type m5.large has no NVIDIA GPU" in _error(data)


def test_a_gpu_type_missing_from_the_table_needs_its_gpu_count() -> None:
    data = example_data()
    data["gpu_pools"][0]["instance_type"] = "p4d.24xlarge"
    assert "set `gpus:` for this pool" in _error(data)
    data["gpu_pools"][0]["gpus"] = 8
    assert parse_spec(data).gpu_pools[0].gpus_per_node == 8


def test_duplicate_pool_names_are_refused() -> None:
    data = example_data()
    data["gpu_pools"].append(copy.deepcopy(data["gpu_pools"][0]))
    assert "duplicate GPU pool names: g5-xlarge" in _error(data)


def test_several_problems_are_still_one_line_that_counts_the_rest() -> None:
    data = example_data()
    del data["region"]
    del data["image"]
    message = _error(data)
    assert "(and 1 more problem)" in message


def test_load_spec_reports_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cluster spec not found \(write an example with: lbcloud cluster init\)"):
        load_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_spec(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec(listing)


def test_load_spec_reads_a_file(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path / "cluster.yaml", example_data()))
    assert spec.name == "leaderboard"


def test_a_placed_track_must_be_defined_in_the_settings() -> None:
    data = example_data()
    data["tracks"].append({"name": "MAP", "pool": "g5-xlarge"})
    assert _error(data) == (
        "cluster.yaml: tracks[1] (MAP): no track MAP under settings.tracks; define its routes, images and scorer there"
    )
