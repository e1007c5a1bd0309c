"""The SUMO simulator server: a long-lived process on 127.0.0.1:<port> that evaluators load routes into.

SUMO's TraCI server serves one client session and exits when that client leaves. To be long-lived
like a CARLA server, :func:`serve` runs SUMO as a child and starts a fresh one on the same port each
time a session ends (cleanly or because the client went away); if SUMO is killed by a signal (killed,
crashed) the server exits with it, so the process a test or an orchestrator kills is the one that
listens. ``once=True`` replaces the
current process with SUMO itself (one session, then exit), which suits a container command.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from lbcloud.domain.errors import InputError, Unavailable
from lbcloud.tracks.sumo.binaries import binary, loopback_shim, sumo_environment
from lbcloud.tracks.sumo.network import Town, network_file

log = logging.getLogger(__name__)

MAX_QUICK_FAILURES = 5
PR_SET_PDEATHSIG = 1
IDLE_TOWN = Town(2, 2, 50)
"""The tiny network a fresh server idles on until an evaluator loads a route's network."""


def server_command(port: int) -> list[str]:
    """The ``sumo`` command line of a server on ``port`` (no GUI, one TraCI client)."""
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be in 1-65535, got {port}")
    return [
        str(binary("sumo")),
        "--net-file", str(network_file(IDLE_TOWN)),
        "--remote-port", str(port),
        "--num-clients", "1",
        "--no-step-log", "true",
        "--no-warnings", "true",
    ]  # fmt: skip


def server_environment() -> dict[str, str]:
    """SUMO's environment, with the preload that binds its port to 127.0.0.1 when it can be built."""
    env = sumo_environment()
    shim = loopback_shim()
    if shim is not None:
        env["LD_PRELOAD"] = f"{shim} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else str(shim)
    return env


def _check_port_free(port: int) -> None:
    """Refuse a port another socket listens on or is bound to.

    The probe binds the way SUMO does (``SO_REUSEADDR``), so connections of a previous server that
    linger in TIME_WAIT after it was killed do not block a restart on the same port.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as err:
            raise Unavailable(f"port {port} on 127.0.0.1 is already in use ({err.strerror})") from err


def _die_with_parent() -> None:
    """In the SUMO child (Linux): be killed when the server process dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the server still kills its child on SIGTERM
        pass


def _write_pid(pid_file: Path | None, pid: int) -> None:
    if pid_file is not None:
        tmp = pid_file.with_name(pid_file.name + ".tmp")
        tmp.write_text(f"{pid}\n")
        os.replace(tmp, pid_file)


def serve(
    port: int,
    *,
    once: bool = False,
    pid_file: Path | None = None,
    on_start: Callable[[int], None] | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT (exit 0) or until SUMO dies abnormally (its exit status).

    ``pid_file`` receives the pid of the listening SUMO process each time one starts.
    """
    command = server_command(port)
    _check_port_free(port)
    env = server_environment()
    if once:
        _write_pid(pid_file, os.getpid())
        sys.stdout.flush()
        os.execve(command[0], command, env)
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.kill()  # SUMO ignores SIGTERM while it waits for a client; it holds nothing to save

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        quick_failures = 0
        while not stopping:
            started = time.monotonic()
            # The server runs no threads, so preexec_fn is safe here.
            child = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)  # noqa: PLW1509
            _write_pid(pid_file, child.pid)
            if on_start is not None:
                on_start(child.pid)
            log.info("SUMO server pid %d listening on 127.0.0.1:%d", child.pid, port)
            try:
                code = child.wait()
            except KeyboardInterrupt:
                stopping = True
                child.kill()
                code = child.wait()
            if stopping:
                return 0
            if code < 0:
                log.error("SUMO server pid %d was killed by signal %d", child.pid, -code)
                return 128 - code
            quick_failures = quick_failures + 1 if code != 0 and time.monotonic() - started < 1.0 else 0
            if quick_failures >= MAX_QUICK_FAILURES:
                log.error("SUMO keeps failing at start (status %d); giving up", code)
                return code
        return 0
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
