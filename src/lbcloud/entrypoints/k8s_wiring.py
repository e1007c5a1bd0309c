"""Builds the Kubernetes backend from settings (``settings.backend == "kubernetes"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbcloud.adapters.backends.kubernetes.backend import KubernetesBackend
from lbcloud.adapters.backends.kubernetes.client import KubeClient
from lbcloud.adapters.backends.kubernetes.manifests import KubernetesConfig

if TYPE_CHECKING:
    from lbcloud.entrypoints.wiring import System


def build_kubernetes_backend(system: System) -> KubernetesBackend:
    """A :class:`KubernetesBackend` on ``settings.kubernetes`` (credentials from the kubeconfig or the
    pod's service account), storing nothing itself: records come through the reporter API into
    ``system.artifacts``, which the backend reads back when an attempt ends."""
    k8s = system.settings.kubernetes
    config = KubernetesConfig.from_settings(k8s)
    api = KubeClient.from_config(config.namespace, kubeconfig=k8s.kubeconfig, context=k8s.context,
                                 in_cluster=k8s.in_cluster)  # fmt: skip
    return KubernetesBackend(api, system.artifacts, config, allowed_registries=k8s.allowed_registries)
