"""The Docker backend: each attempt is a simulator container and a sandboxed agent container.

- :mod:`.plans` — what the containers of one attempt look like (labels, sandbox, limits, GPUs,
  commands), as frozen values built without talking to the engine.
- :mod:`.engine` — the Docker Engine API (the ``docker`` SDK) behind lbcloud's own errors: images,
  the track's contents, containers by label.
- :mod:`.contents` — the track's contents copied out of its image, the route file cut to one route.
- :mod:`.logs` — containers' logs followed into the artifact store, kept past the containers.
- :mod:`.outcome` — how an attempt's containers ended, as outcome, blame and reason.
- :mod:`.backend` — :class:`~.backend.DockerBackend`, the ``AttemptBackend`` the dispatcher drives.
"""
