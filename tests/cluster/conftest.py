"""Shared inputs for the cluster tests: specs and the eksctl schema beside the project."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbcloud.cluster.spec import ClusterSpec, example_spec_text, parse_spec
from tests.conftest import SHARED

EKSCTL_SCHEMA = SHARED / "schemas" / "eksctl-clusterconfig-v1alpha5.schema.json"


def example_data() -> dict[str, Any]:
    """The example spec ``lbcloud cluster init`` writes, as a mapping to modify."""
    data = yaml.safe_load(example_spec_text())
    assert isinstance(data, dict)
    return data


def spec_from(changes: dict[str, Any] | None = None, **fields: Any) -> ClusterSpec:
    """The example spec with top-level fields replaced."""
    data = copy.deepcopy(example_data())
    data.update(changes or {})
    data.update(fields)
    return parse_spec(data, "cluster.yaml")


@pytest.fixture
def example_spec() -> ClusterSpec:
    return parse_spec(example_data(), "cluster.yaml")


@pytest.fixture(scope="session")
def eksctl_schema() -> dict[str, Any]:
    if not EKSCTL_SCHEMA.is_file():
        pytest.skip(f"eksctl schema not found at {EKSCTL_SCHEMA}")
    loaded = json.loads(EKSCTL_SCHEMA.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def write_spec(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
