"""A hostile agent: before driving, it tries to get out of its container and reports what it reached.

It prints one line ``PROBE-RESULT {json}``; the tests assert every attempt failed. Targets come from
the image's environment: ``PROBE_TARGETS`` (host:port listeners the test opened) and
``PROBE_FORBIDDEN`` (host paths that must not be visible), separated by commas.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from competent import CompetentAgent


def get_entry_point() -> str:
    return "ProbingAgent"


def _connect(target: str) -> str:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return "connected"
    except OSError as err:
        return f"refused: {err}"


def _write(path: str) -> str:
    try:
        with open(path, "w") as fh:
            fh.write("x")
        return "written"
    except OSError as err:
        return f"refused: {err}"


def probe() -> dict[str, object]:
    targets = [t for t in os.environ.get("PROBE_TARGETS", "").split(",") if t]
    forbidden = [p for p in os.environ.get("PROBE_FORBIDDEN", "").split(",") if p]
    with open("/proc/self/status") as fh:
        caps = next(line.split()[1] for line in fh if line.startswith("CapEff:"))
    return {
        "connections": {t: _connect(t) for t in targets},
        "docker_socket": [p for p in ("/var/run/docker.sock", "/run/docker.sock") if os.path.exists(p)],
        "forbidden_visible": [p for p in forbidden if os.path.exists(p)],
        "write_root": _write("/escape-probe"),
        "write_opt": _write("/opt/escape-probe"),
        "uid": os.getuid(),
        "cap_eff": caps,
        "env": sorted(os.environ),
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
    }


class ProbingAgent(CompetentAgent):
    def setup(self, path_to_conf_file: str) -> None:
        print("PROBE-RESULT " + json.dumps(probe()), file=sys.stderr, flush=True)
        super().setup(path_to_conf_file)
