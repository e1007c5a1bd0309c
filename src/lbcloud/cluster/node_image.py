"""The custom GPU node image: a Packer template plus the provisioning script, named by convention.

The image name follows the seed notes' convention
``ubuntu-eks/k8s_<kubernetes>/ubuntu-<ubuntu>/nvidia-<driver>/gpu-capabilities-enabled``, so ``cluster up``
can tell whether it was already built (and ``eksctl`` can be given its id) by looking it up by name.
"""

from __future__ import annotations

from importlib import resources

from lbcloud.cluster.node_pools import GpuImage
from lbcloud.cluster.spec import ClusterSpec

TEMPLATE_FILES = ("gpu-node.pkr.hcl", "versions.pkr.hcl", "provision-gpu-node.sh")
VARIABLES_FILE = "variables.auto.pkrvars.hcl"
NODE_IMAGE_DIR = "node-image"


def image_name(kubernetes_version: str, gpu_image: GpuImage) -> str:
    """The AMI name of the custom GPU image for this Kubernetes version and driver."""
    return (
        f"ubuntu-eks/k8s_{kubernetes_version}/ubuntu-{gpu_image.ubuntu_version}"
        f"/nvidia-{gpu_image.nvidia_driver}/gpu-capabilities-enabled"
    )


def spec_image_name(spec: ClusterSpec) -> str | None:
    """The custom image's name, or None when no pool boots a custom image."""
    if not spec.needs_custom_image() or spec.gpu_image is None:
        return None
    return image_name(spec.kubernetes_version, spec.gpu_image)


def _template(name: str) -> str:
    return resources.files("lbcloud.cluster").joinpath("templates", name).read_text(encoding="utf-8")


def _hcl_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${")


def render_node_image(spec: ClusterSpec) -> dict[str, str]:
    """File name -> content of the Packer directory (empty when no pool needs a custom image)."""
    if spec_image_name(spec) is None or spec.gpu_image is None:
        return {}
    image = spec.gpu_image
    values = {
        "region": spec.region,
        "kubernetes_version": spec.kubernetes_version,
        "ubuntu_version": image.ubuntu_version,
        "nvidia_driver": image.nvidia_driver,
        "instance_type": image.builder_instance_type,
        "cluster_name": spec.name,
    }
    variables = _template(f"{VARIABLES_FILE}.j2")
    for key, value in values.items():
        variables = variables.replace("{{ " + key + " }}", _hcl_string(value))
    variables = variables.replace("{{ disk_gb }}", str(image.disk_gb))
    files = {name: _template(name) for name in TEMPLATE_FILES}
    files[VARIABLES_FILE] = variables
    return files
