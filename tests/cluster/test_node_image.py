"""The GPU node image: named by convention, a Packer template Packer accepts, and a provisioning script
that reproduces the seed notes' steps with a pinned driver.

Packer check: Debian's packer (1.6.x, the version CI installs) has the amazon-ebs builder built in,
so ``packer validate`` fully validates ``gpu-node.pkr.hcl`` offline (no plugin download, no AWS call).
``versions.pkr.hcl`` holds the ``required_plugins`` block that Packer 1.7+ needs for ``packer init``;
Packer 1.6 does not know that block, so that file gets a structural check here instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lbcloud.cluster.node_image import image_name, render_node_image, spec_image_name
from lbcloud.cluster.node_pools import GpuImage, ImageKind
from lbcloud.cluster.render import render_all, write_files
from lbcloud.cluster.spec import ClusterSpec
from tests.cluster.conftest import example_data, spec_from

PACKER = shutil.which("packer")


def _packer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PACKER is not None
    return subprocess.run(
        [PACKER, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CHECKPOINT_DISABLE": "1"},
    )


def test_image_name_follows_the_seed_convention() -> None:
    image = GpuImage(kind=ImageKind.CUSTOM, nvidia_driver="470.182.03", ubuntu_version="20.04")
    assert image_name("1.24", image) == "ubuntu-eks/k8s_1.24/ubuntu-20.04/nvidia-470.182.03/gpu-capabilities-enabled"


def test_no_image_files_when_no_pool_needs_a_custom_image() -> None:
    data = example_data()
    data["gpu_image"]["kind"] = "eks-accelerated"
    spec = spec_from(data)
    assert spec_image_name(spec) is None
    assert render_node_image(spec) == {}


def test_variables_carry_the_spec_values(example_spec: ClusterSpec) -> None:
    variables = render_node_image(example_spec)["variables.auto.pkrvars.hcl"]
    assert 'nvidia_driver_version = "470.182.03"' in variables
    assert 'kubernetes_version    = "1.29"' in variables
    assert 'region                = "us-east-1"' in variables
    assert "volume_size_gb        = 100" in variables


@pytest.mark.skipif(PACKER is None, reason="packer is not installed (CI installs Debian's packer)")
def test_packer_validates_the_rendered_template(example_spec: ClusterSpec, tmp_path: Path) -> None:
    write_files(render_all(example_spec), tmp_path)
    folder = tmp_path / "node-image"
    result = _packer("validate", "-var-file=variables.auto.pkrvars.hcl", "gpu-node.pkr.hcl", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(PACKER is None, reason="packer is not installed (CI installs Debian's packer)")
def test_packer_rejects_a_broken_template(example_spec: ClusterSpec, tmp_path: Path) -> None:
    write_files(render_all(example_spec), tmp_path)
    folder = tmp_path / "node-image"
    template = folder / "gpu-node.pkr.hcl"
    template.write_text(
        template.read_text(encoding="utf-8").replace('ssh_username    = "ubuntu"', ""), encoding="utf-8"
    )
    result = _packer("validate", "-var-file=variables.auto.pkrvars.hcl", "gpu-node.pkr.hcl", cwd=folder)
    assert result.returncode != 0
    assert "ssh_username" in result.stdout + result.stderr


@pytest.mark.skipif(PACKER is None, reason="packer is not installed (CI installs Debian's packer)")
def test_template_is_in_packers_canonical_format(example_spec: ClusterSpec, tmp_path: Path) -> None:
    write_files(render_all(example_spec), tmp_path)
    result = _packer("fmt", "-check", ".", cwd=tmp_path / "node-image")
    assert result.returncode == 0, result.stdout


def test_versions_file_pins_the_amazon_plugin(example_spec: ClusterSpec) -> None:
    text = render_node_image(example_spec)["versions.pkr.hcl"]
    assert text.count("{") == text.count("}")
    assert re.search(r'source\s*=\s*"github.com/hashicorp/amazon"', text)
    assert re.search(r"required_plugins\s*\{", text)


def test_provisioning_script_reproduces_the_seed_steps(example_spec: ClusterSpec, tmp_path: Path) -> None:
    script = render_node_image(example_spec)["provision-gpu-node.sh"]
    path = tmp_path / "provision.sh"
    path.write_text(script, encoding="utf-8")
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    for step in (
        "NVIDIA-Linux-x86_64-${NVIDIA_DRIVER_VERSION}.run",  # pinned driver from NVIDIA's installer
        "--accept-license --no-questions --ui=none",
        "nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=containerd --set-as-default",
        "libvulkan1",
        "xserver-xorg",
        "nvidia-xconfig --preserve-busid -a --virtual=1280x1024",  # the seed's X set-up, now at boot
        "current_clocksource",  # the seed's tsc preboot command
    ):
        assert step in script
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euxo pipefail" in script


def test_provisioning_script_refuses_to_run_without_a_driver_version(tmp_path: Path) -> None:
    path = tmp_path / "provision.sh"
    path.write_text(render_node_image(spec_from())["provision-gpu-node.sh"], encoding="utf-8")
    empty = tmp_path / "no-programs"  # PATH without programs: only bash builtins could run
    empty.mkdir()
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run([bash, str(path)], capture_output=True, text=True, check=False, env={"PATH": str(empty)})
    assert result.returncode != 0
    assert "set NVIDIA_DRIVER_VERSION" in result.stderr
