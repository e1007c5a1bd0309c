"""Least privilege for the local backend's attempts: what their processes inherit, and what they cost.

- :func:`attempt_environment` — the allowlisted environment of an attempt's supervisor, simulator and
  evaluator: no ``LBCLOUD_*`` settings (tokens, database URL), no cloud credentials, nothing else of
  the server's environment. The agent host gets even less (see the SUMO track's agent sandbox).
- :func:`read_capped` — a log file read up to a byte limit, with a marker saying what was left out,
  so the server never holds a whole flooded log in memory.
- :func:`check_free_space` — the data dir's free-space guard: no attempt starts on a nearly full disk.
- :class:`AgentPolicy` — the agent limits and sandbox choice the backend hands to the evaluator.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lbcloud.domain.errors import Unavailable

ALLOWED_VARIABLES = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH"})
ALLOWED_PREFIXES = ("SUMO_",)
ALLOWED_LBCLOUD = frozenset({"LBCLOUD_SUMO_CACHE"})
"""The only ``LBCLOUD_*`` variable an attempt sees: where the SUMO networks are cached (no secret)."""


def attempt_environment(environ: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment an attempt's processes start with: the allowlisted part of ``environ`` plus ``extra``."""
    kept = {
        key: value
        for key, value in environ.items()
        if key in ALLOWED_VARIABLES or key in ALLOWED_LBCLOUD or key.startswith(ALLOWED_PREFIXES)
    }
    return {**kept, **(extra or {})}


def truncation_marker(limit: int, size: int) -> bytes:
    return f"\n[lbcloud: log truncated: {size - limit} of {size} bytes left out after the first {limit}]\n".encode()


def read_capped(path: Path, limit: int) -> bytes:
    """The first ``limit`` bytes of ``path`` (and a marker when there was more); raises OSError."""
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
        if len(data) <= limit:
            return data
        size = os.fstat(fh.fileno()).st_size
    return data[:limit] + truncation_marker(limit, size)


def check_free_space(folder: Path, min_free_mb: int) -> None:
    """Raise Unavailable when ``folder``'s file system has less than ``min_free_mb`` MiB free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError as err:
        raise Unavailable(f"cannot read the free space of {folder}: {err}") from err
    if free < min_free_mb * 1024 * 1024:
        raise Unavailable(
            f"only {free // (1024 * 1024)} MiB free in {folder}; attempts need at least {min_free_mb} MiB "
            "(local.min_free_mb)"
        )


@dataclass(frozen=True, slots=True)
class AgentPolicy:
    """How the local backend's evaluators run agents (settings ``local.*``), as command placeholders."""

    sandbox: str = "auto"
    memory_mb: int = 4096
    pids: int = 128
    cpu_s: int = 3600
    disk_mb: int = 512
    log_limit_bytes: int = 8 * 1024 * 1024
    min_free_mb: int = 1024

    def placeholders(self) -> dict[str, str]:
        return {
            "agent_sandbox": self.sandbox,
            "agent_memory_mb": str(self.memory_mb),
            "agent_pids": str(self.pids),
            "agent_cpu_s": str(self.cpu_s),
            "agent_disk_mb": str(self.disk_mb),
            "agent_log_bytes": str(self.log_limit_bytes),
        }
