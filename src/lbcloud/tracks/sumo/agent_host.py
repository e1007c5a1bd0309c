"""The agent host: the untrusted process that imports the participant's agent and answers the evaluator.

``python -m lbcloud.tracks.sumo.agent_host --connect unix:/run/agent/agent.sock --agent agent.py``
(or ``--connect tcp:HOST:PORT``) connects to the evaluator, then serves the agent protocol
(:mod:`lbcloud.tracks.sumo.agent_protocol`) until the evaluator says ``bye`` or hangs up. It holds no
simulator handle, no checkpoint path and no lbcloud internals: it imports only the agent API, the
protocol module and the standard library, so it runs as a sandboxed process, as a container's
command, or as the participant's container in a pod. Whatever it answers, the evaluator decides
what happened; its exit code means nothing to anyone.

``--agent`` takes ``path/to/agent.py`` (the class named by ``get_entry_point()``),
``path/to/agent.py:ClassName`` or ``package.module:ClassName``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from lbcloud.tracks.sumo.agent_protocol import (
    BYE,
    DESTROY,
    DESTROYED,
    ERROR,
    HELLO,
    PROTOCOL_VERSION,
    READY,
    SETUP,
    STAGE_DESTROY,
    STAGE_LOAD,
    STAGE_RUN_STEP,
    STAGE_SENSORS,
    STAGE_SETUP,
    STEP,
    Channel,
    PeerClosed,
    ProtocolError,
    control_message,
    decode_reading,
    encode,
)

MAX_ERROR_CHARS = 500


class AgentLoadError(Exception):
    """The agent reference does not lead to a class; ``str()`` is a one-line reason."""


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise AgentLoadError(f"--agent: no such file {path}")
    name = f"lbcloud_agent_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AgentLoadError(f"--agent: {path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as err:  # the agent's module code is the agent's fault, whatever it raises
        raise AgentLoadError(f"--agent: importing {path} failed: {type(err).__name__}: {err}") from err
    return module


def find_agent_class(reference: str) -> type:
    """The agent class ``reference`` names (imports the agent's code); raises AgentLoadError."""
    location, _, class_name = reference.rpartition(":") if ":" in reference else (reference, "", "")
    if location.endswith(".py") or (not class_name and reference.endswith(".py")):
        module = _load_file(Path(location or reference))
    elif class_name:
        try:
            module = importlib.import_module(location)
        except BaseException as err:
            raise AgentLoadError(f"--agent: cannot import module {location!r}: {type(err).__name__}: {err}") from err
    else:
        raise AgentLoadError(f"--agent {reference!r}: expected path/to/agent.py[:Class] or package.module:Class")
    if not class_name:
        entry = getattr(module, "get_entry_point", None)
        if not callable(entry):
            raise AgentLoadError(
                f"--agent: {reference} has no get_entry_point(); name the class as {reference}:ClassName"
            )
        try:
            class_name = str(entry())
        except BaseException as err:
            raise AgentLoadError(f"--agent: get_entry_point() raised {type(err).__name__}: {err}") from err
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise AgentLoadError(f"--agent: {reference} has no class {class_name!r}")
    return found


def _error(stage: str, err: BaseException) -> dict[str, Any]:
    if not isinstance(err, AgentLoadError):  # the team's traceback, in its own log (the route page shows it)
        traceback.print_exception(err, file=sys.stderr)
        sys.stderr.flush()
    text = f"{type(err).__name__}: {err}" if not isinstance(err, AgentLoadError) else str(err)
    return {"type": ERROR, "stage": stage, "message": text[:MAX_ERROR_CHARS]}


class AgentHost:
    """Serves one connection: one agent instance per ``setup`` … ``destroy`` cycle."""

    def __init__(self, sock: socket.socket, reference: str) -> None:
        self.channel = Channel(sock)
        self.reference = reference
        self._class: type | None = None
        self._agent: Any = None

    def _answer(self, message: dict[str, Any]) -> dict[str, Any] | None:
        kind = message["type"]
        if kind == SETUP:
            return self._setup(message)
        if kind == STEP:
            return self._step(message)
        if kind == DESTROY:
            return self._destroy()
        raise ProtocolError(f"unexpected message type {kind!r}")

    def _setup(self, message: dict[str, Any]) -> dict[str, Any]:
        self._agent = None
        try:
            if self._class is None:
                self._class = find_agent_class(self.reference)
        except BaseException as err:
            return _error(STAGE_LOAD, err)
        try:
            agent = self._class(str(message.get("host", "")), int(message.get("port", 0)), False)
            set_plan = getattr(agent, "set_global_plan", None)
            if callable(set_plan):
                set_plan([tuple(point) for point in message.get("global_plan", [])])
            agent.setup(str(message.get("config", "")))
        except BaseException as err:
            return _error(STAGE_SETUP, err)
        self._agent = agent
        try:
            sensors = agent.sensors()
            answer = {"type": READY, "sensors": sensors}
            encode(answer)  # the trusted side validates the content; here only that it can travel
        except BaseException as err:
            return _error(STAGE_SENSORS, err)
        return answer

    def _step(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._agent is None:
            raise ProtocolError("step before a successful setup")
        frame = int(message["frame"])
        data = {sensor: (frame, decode_reading(reading)) for sensor, reading in message["input_data"].items()}
        try:
            return control_message(self._agent.run_step(data, float(message["timestamp"])))
        except BaseException as err:
            return _error(STAGE_RUN_STEP, err)

    def _destroy(self) -> dict[str, Any]:
        agent, self._agent = self._agent, None
        try:
            if agent is not None:
                agent.destroy()
        except BaseException as err:
            return _error(STAGE_DESTROY, err)
        return {"type": DESTROYED}

    def serve(self) -> int:
        """Greet, then answer requests until ``bye`` or hang-up; returns the process exit code."""
        self.channel.send({"type": HELLO, "protocol": PROTOCOL_VERSION})
        while True:
            try:
                message = self.channel.receive()
            except PeerClosed:
                return 0
            if message["type"] == BYE:
                return 0
            answer = self._answer(message)
            if answer is not None:
                self.channel.send(answer)


def connect(address: str, timeout_s: float) -> socket.socket:
    """A connected socket to ``unix:PATH`` or ``tcp:HOST:PORT``, retried for ``timeout_s``; raises OSError."""
    scheme, _, rest = address.partition(":")
    deadline = time.monotonic() + timeout_s
    while True:
        if scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = rest
        elif scheme == "tcp":
            host, _, port = rest.rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = (host, int(port))
        else:
            raise OSError(f"--connect {address!r}: expected unix:PATH or tcp:HOST:PORT")
        try:
            sock.connect(target)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lbcloud.tracks.sumo.agent_host",
        description="Run a SUMO-track agent for an evaluator (agent protocol version 1).",
    )
    parser.add_argument("--connect", required=True, help="unix:PATH or tcp:HOST:PORT of the evaluator")
    parser.add_argument("--agent", required=True, help="path/to/agent.py[:Class] or package.module:Class")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="seconds to wait for the evaluator")
    args = parser.parse_args(argv)
    try:
        sock = connect(args.connect, args.connect_timeout)
    except (OSError, ValueError) as err:
        print(f"agent host: cannot connect to {args.connect}: {err}", file=sys.stderr)
        return 1
    try:
        return AgentHost(sock, args.agent).serve()
    except (ProtocolError, OSError) as err:
        print(f"agent host: connection ended: {err}", file=sys.stderr)
        return 1
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
