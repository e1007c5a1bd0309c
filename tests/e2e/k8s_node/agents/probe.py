"""A hostile agent that drives well but first probes its sandbox and prints what it found.

It looks for a service-account token, the reporter's token, writable system folders, capabilities,
routes beyond the pod network, the Kubernetes API server and the other containers' processes, and
calls the dispatcher's reporter API without a token. The tests read its findings from the log.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from competent import CompetentAgent

TARGETS = Path(__file__).with_name("targets.json")


def get_entry_point() -> str:
    return "ProbingAgent"


def _status_field(name: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def _write_error(path: str) -> str:
    try:
        with open(path, "w") as handle:
            handle.write("x")
    except OSError as err:
        return os.strerror(err.errno or 0)
    return "written"


def _connect(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    except OSError as err:
        return type(err).__name__


def _post(url: str) -> int:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return -1


def probe() -> dict[str, Any]:
    targets = json.loads(TARGETS.read_text())
    routes = [line.split()[1:3] for line in Path("/proc/net/route").read_text().splitlines()[1:] if line.split()]
    commands = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
    return {
        "uid": os.getuid(),
        "service_account_token": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        "tokens_in_env": sorted(k for k in os.environ if "TOKEN" in k.upper()),
        "write_root": _write_error("/opt/probe-was-here"),
        "write_contents": _write_error("/lbcloud/contents/probe-was-here"),
        "write_tmp": _write_error("/tmp/probe-was-here"),
        "cap_eff": _status_field("CapEff"),
        "no_new_privs": _status_field("NoNewPrivs"),
        "route_destinations": sorted({dest for dest, _ in routes}),
        "api_server": _connect(targets["bridge"], int(targets["api_port"])),
        "reporter_visible": any("reporter" in command for command in commands),
        "dispatcher_without_token": _post(f"{targets['dispatcher']}/api/v1/reporter/attempts/1/heartbeat"),
    }


class ProbingAgent(CompetentAgent):
    """The competent driver, after printing one ``PROBE {json}`` line about its sandbox."""

    def setup(self, path_to_conf_file: str) -> None:
        print("PROBE " + json.dumps(probe(), sort_keys=True), flush=True)
        super().setup(path_to_conf_file)
