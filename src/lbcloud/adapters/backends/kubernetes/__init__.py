"""The Kubernetes backend: one ``batch/v1`` Job per attempt (see ``docs/kubernetes.md``).

- :mod:`.manifests` — pure builders of the Job, NetworkPolicy and DRA claim template.
- :mod:`.client` — a thin adapter over the official client (raw JSON in and out, errors translated).
- :mod:`.watch` — list + watch threads with resourceVersion bookkeeping and relist on 410 Gone.
- :mod:`.blame` — pod and Job state → attempt outcome and blame (pure).
- :mod:`.backend` — :class:`KubernetesBackend`, the :class:`~lbcloud.services.ports.AttemptBackend`.
"""
