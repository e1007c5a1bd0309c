"""The files an attempt's containers see besides their images: the track's contents and the route.

The contents image's folders are copied out once per image id (``<workdir>/contents/<id>/<n>``) and
mounted read-only; their ``routes/`` folder is left empty there, and each attempt mounts over it a
folder holding only its own route (the route file cut to one ``<route>``), so an agent never sees
another route of a private set.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from lbcloud.adapters.backends.docker.engine import DockerEngine
from lbcloud.adapters.backends.docker.plans import ImageFacts
from lbcloud.domain.errors import ConfigError
from lbcloud.domain.results.routes import only_route
from lbcloud.services.ports import AttemptSpec


def contents_copies(
    engine: DockerEngine, workdir: Path, image: ImageFacts, paths: Sequence[str]
) -> tuple[tuple[str, Path], ...]:
    """(path in the image, host copy) for each of ``paths``, copied on first use."""
    out = []
    for index, path in enumerate(paths):
        target = workdir / "contents" / image.id.replace("sha256:", "")[:16] / str(index)
        if not target.exists():
            staging = target.with_name(f".{target.name}.staging")
            shutil.rmtree(staging, ignore_errors=True)
            engine.extract(image.id, path, staging)
            shutil.rmtree(staging / "routes", ignore_errors=True)
            (staging / "routes").mkdir()
            staging.rename(target)
        out.append((path, target))
    return tuple(out)


def route_folder(spec: AttemptSpec, folder: Path) -> Path:
    """``<folder>/routes`` with the track's route file cut to the attempt's route; raises ConfigError
    when the dispatcher's copy of the route file cannot be read, InputError when the route is not in it."""
    source = Path(spec.track.routes_file)
    try:
        data = source.read_bytes()
    except OSError as err:
        raise ConfigError(f"track {spec.track.name}: cannot read {source} ({err.strerror or err})") from None
    routes = folder / "routes"
    routes.mkdir(exist_ok=True)
    (routes / source.name).write_bytes(only_route(data, spec.route_id, str(source)))
    return routes
