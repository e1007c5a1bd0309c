"""Where the SUMO binaries of the ``eclipse-sumo`` wheel live, and the track's cache folder.

The cache (``$LBCLOUD_SUMO_CACHE``, default ``~/.cache/lbcloud/sumo``) holds generated networks
and the loopback shim; every entry is written to a temporary folder and renamed into place, so
concurrent writers never leave a half-written entry behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from lbcloud.domain.errors import Unavailable

log = logging.getLogger(__name__)

CACHE_ENV = "LBCLOUD_SUMO_CACHE"
SHIM_NAME = "libloopback_bind.so"


def sumo_home() -> Path:
    """The SUMO_HOME of the installed ``eclipse-sumo`` wheel."""
    try:
        import sumo  # type: ignore[import-untyped]
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise Unavailable("the eclipse-sumo package is not installed (pip install eclipse-sumo)") from err
    return Path(sumo.SUMO_HOME)


def binary(name: str) -> Path:
    """Path of a SUMO binary (``sumo``, ``netgenerate``); raises Unavailable when it is missing."""
    path = sumo_home() / "bin" / name
    if not path.is_file():
        raise Unavailable(f"SUMO binary {name!r} not found at {path}")
    return path


def sumo_environment() -> dict[str, str]:
    """Environment for SUMO child processes (SUMO_HOME set, so SUMO validates its XML input)."""
    env = dict(os.environ)
    env["SUMO_HOME"] = str(sumo_home())
    return env


def cache_dir() -> Path:
    """The track's cache folder (created on demand)."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured) if configured else Path.home() / ".cache" / "lbcloud" / "sumo"
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Create the folder ``target`` with ``build(tmp)`` in a sibling temp folder, then rename it.

    If another process wins the race, its (complete) folder is kept and ours is discarded.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def loopback_shim() -> Path | None:
    """A preload library that makes SUMO's TraCI server bind 127.0.0.1 instead of every interface.

    Compiled once into the cache from the shipped C source; ``None`` (with a warning) when no C
    compiler is available, in which case SUMO binds all interfaces as it does on its own.
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    source = resources.files("lbcloud.tracks.sumo").joinpath("data/loopback_bind.c").read_text()
    target = cache_dir() / "shim"
    library = target / SHIM_NAME
    if library.is_file():
        return library
    if compiler is None:
        log.warning("no C compiler found: the SUMO server will listen on all interfaces, not only 127.0.0.1")
        return None

    def build(tmp: Path) -> None:
        (tmp / "loopback_bind.c").write_text(source)
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(tmp / SHIM_NAME), str(tmp / "loopback_bind.c"), "-ldl"],
            check=True,
            capture_output=True,
        )

    try:
        build_atomically(target, build)
    except (OSError, subprocess.CalledProcessError) as err:
        log.warning("could not build the loopback shim (%s): SUMO will listen on all interfaces", err)
        return None
    return library if library.is_file() else None
