"""Golden tests: every rendered file of the example spec, byte for byte.

After an intended change, regenerate the golden files with
``LBCLOUD_UPDATE_GOLDEN=1 pytest tests/cluster/test_render.py`` and review the diff.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lbcloud.cluster.render import render_all, write_files
from lbcloud.cluster.spec import ClusterSpec
from lbcloud.domain.errors import ConfigError
from tests.cluster.conftest import example_data, spec_from

GOLDEN = Path(__file__).parent / "golden" / "example"
UPDATE = os.environ.get("LBCLOUD_UPDATE_GOLDEN") == "1"


def _golden_files() -> dict[str, str]:
    return {str(p.relative_to(GOLDEN)): p.read_text(encoding="utf-8") for p in sorted(GOLDEN.rglob("*")) if p.is_file()}


def test_rendered_files_match_the_golden_files(example_spec: ClusterSpec) -> None:
    files = render_all(example_spec)
    if UPDATE:
        write_files(files, GOLDEN)
    golden = _golden_files()
    assert sorted(files) == sorted(golden)
    for rel, text in files.items():
        assert text == golden[rel], f"{rel} differs from tests/cluster/golden/example/{rel}"


def test_rendering_is_deterministic(example_spec: ClusterSpec) -> None:
    assert render_all(example_spec) == render_all(example_spec)


def test_every_file_kind_is_rendered(example_spec: ClusterSpec) -> None:
    files = render_all(example_spec)
    assert "eksctl/cluster.yaml" in files
    assert {"addons/nvidia-device-plugin.yaml", "addons/cluster-autoscaler.yaml", "addons/fluent-bit.yaml"} <= set(
        files
    )
    assert {f"iam/{n}-policy.json" for n in ("dispatcher", "cluster-autoscaler", "fluent-bit", "operator")} <= set(
        files
    )
    assert {"node-image/gpu-node.pkr.hcl", "node-image/provision-gpu-node.sh"} <= set(files)
    assert all(text.strip() for text in files.values())


def test_optional_parts_follow_the_spec() -> None:
    data = example_data()
    for pool in data["gpu_pools"]:
        pool["image"] = "eks-accelerated"
    spec = spec_from(data, logs={"enabled": False})
    files = render_all(spec)
    assert "addons/fluent-bit.yaml" not in files
    assert "iam/fluent-bit-policy.json" not in files
    assert not any(rel.startswith("node-image/") for rel in files)


def test_write_files_makes_scripts_executable_and_drops_stale_files(example_spec: ClusterSpec, tmp_path: Path) -> None:
    stale = tmp_path / "addons" / "old-addon.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: Old\n", encoding="utf-8")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("mine\n", encoding="utf-8")
    written = write_files(render_all(example_spec), tmp_path)
    assert len(written) == len(render_all(example_spec))
    script = tmp_path / "node-image" / "provision-gpu-node.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    assert not stale.exists()
    assert unrelated.read_text(encoding="utf-8") == "mine\n"


def test_write_files_reports_an_unwritable_folder(example_spec: ClusterSpec, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot write rendered files"):
        write_files(render_all(example_spec), blocker / "out")
