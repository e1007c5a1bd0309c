"""Render everything a cluster spec implies into files (``lbcloud cluster render``).

Layout of the output directory::

    eksctl/cluster.yaml               eksctl ClusterConfig
    addons/*.yaml                     NVIDIA device plugin, cluster-autoscaler, Fluent Bit
    lbcloud/*.yaml                    lbcloud's namespace, RBAC, settings, Deployments, policies
    iam/*.json                        least-privilege IAM policy documents
    node-image/                       Packer template, variables and provisioning script

Rendering is pure: it reads nothing but the spec and runs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lbcloud.cluster.addons import render_addons
from lbcloud.cluster.eksctl import render_cluster_config
from lbcloud.cluster.iam import all_policies
from lbcloud.cluster.lbcloud_objects import render_lbcloud_objects
from lbcloud.cluster.node_image import NODE_IMAGE_DIR, render_node_image
from lbcloud.cluster.spec import ClusterSpec
from lbcloud.domain.errors import ConfigError

EKSCTL_FILE = "eksctl/cluster.yaml"
ADDONS_DIR = "addons"
LBCLOUD_DIR = "lbcloud"
IAM_DIR = "iam"
HEADER = "# Rendered by `lbcloud cluster render` from the cluster spec {name!r}; edit the spec, not this file.\n"


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings (config files) as literal blocks so they stay readable."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml_documents(documents: Sequence[Mapping[str, Any]], header: str = "") -> str:
    """Documents as one YAML stream (``---`` separated), keys in the order they were built."""
    body = "---\n".join(yaml.dump(dict(d), Dumper=_Dumper, sort_keys=False, width=120) for d in documents)
    return header + body


def render_eksctl_file(spec: ClusterSpec, ami_id: str | None = None) -> str:
    return dump_yaml_documents([render_cluster_config(spec, ami_id)], HEADER.format(name=spec.name))


def render_all(spec: ClusterSpec, ami_id: str | None = None) -> dict[str, str]:
    """Relative path -> file content for every rendered file (deterministic, in a stable order)."""
    header = HEADER.format(name=spec.name)
    files: dict[str, str] = {EKSCTL_FILE: render_eksctl_file(spec, ami_id)}
    for name, objects in render_addons(spec).items():
        files[f"{ADDONS_DIR}/{name}"] = dump_yaml_documents(objects, header)
    for name, objects in render_lbcloud_objects(spec).items():
        files[f"{LBCLOUD_DIR}/{name}"] = dump_yaml_documents(objects, header)
    for name, policy in all_policies(spec).items():
        files[f"{IAM_DIR}/{name}-policy.json"] = json.dumps(policy, indent=2) + "\n"
    for name, text in render_node_image(spec).items():
        files[f"{NODE_IMAGE_DIR}/{name}"] = text
    return files


def write_files(files: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write the rendered files under ``out_dir`` (scripts executable); returns the paths written.

    Files of an earlier render that the spec no longer implies are removed, so ``kubectl apply -f``
    on a directory never applies stale objects.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for subdir in {Path(rel).parts[0] for rel in files if len(Path(rel).parts) > 1}:
            folder = out_dir / subdir
            if folder.is_dir():
                for old in folder.iterdir():
                    if old.is_file() and f"{subdir}/{old.name}" not in files and old.name != "manifest.json":
                        old.unlink()
        written = []
        for rel, text in files.items():
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if path.suffix == ".sh":
                path.chmod(0o755)
            written.append(path)
    except OSError as err:
        raise ConfigError(f"{out_dir}: cannot write rendered files ({err.strerror or err})") from None
    return written
