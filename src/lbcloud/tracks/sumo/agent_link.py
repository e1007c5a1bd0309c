"""The evaluator's end of the agent protocol: start (or wait for) an agent host and talk to it.

Everything the agent does is judged here, on the trusted side: a host that does not connect,
greets with the wrong protocol, answers late, answers garbage, raises, or dies is an
:class:`AgentFault` with the stage it failed at; nothing the host says can end the evaluator.
The host's output is copied to the evaluator's own output up to a byte budget, then dropped after
one marker line, so a flooding agent costs neither disk nor memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from lbcloud.tracks.sumo.agent_api import VehicleControl
from lbcloud.tracks.sumo.agent_protocol import (
    BYE,
    CONTROL,
    DESTROY,
    DESTROYED,
    ERROR,
    HELLO,
    PROTOCOL_VERSION,
    READY,
    SETUP,
    STAGE_SETUP,
    Channel,
    ProtocolError,
    parse_control,
    step_message,
)
from lbcloud.tracks.sumo.agent_sandbox import AgentLimits, HostCommand, SandboxMode, end_agent_processes, host_command

SOCKET_NAME = "agent.sock"


class AgentFault(Exception):
    """The agent failed at ``stage`` (``connect``, ``load``, ``setup``, ``sensors``, ``run_step``, ``destroy``)."""

    def __init__(self, stage: str, message: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message
        self.timed_out = timed_out


class LogBudget:
    """Copies agent output to ``sink`` until ``limit`` bytes, then writes one marker and drops the rest."""

    def __init__(self, sink: IO[bytes], limit: int) -> None:
        self._sink = sink
        self._left = limit
        self._limit = limit
        self._lock = threading.Lock()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
        with self._lock:
            if self._left <= 0:
                self.dropped += len(chunk)
                return
            kept = chunk[: self._left]
            self._left -= len(kept)
            self.dropped += len(chunk) - len(kept)
            with contextlib.suppress(OSError, ValueError):
                self._sink.write(kept)
                if self._left <= 0:
                    self._sink.write(
                        f"\n[lbcloud: agent output truncated after {self._limit} bytes; the rest is dropped]\n".encode()
                    )
                self._sink.flush()


def _pump(stream: IO[bytes], budget: LogBudget) -> None:
    while True:
        try:
            chunk = stream.read1(65536)  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return
        if not chunk:
            return
        budget.write(chunk)


class AgentLink:
    """One connected agent host (use :func:`spawn_host` or :func:`accept_host`)."""

    def __init__(
        self,
        channel: Channel,
        process: subprocess.Popen[bytes] | None = None,
        command: HostCommand | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self.process = process
        self.command = command
        self._clock = clock
        self.broken = False
        self.folder: Path | None = None
        """A folder of the host's (socket, unsandboxed working folder), removed on close."""

    def _request(self, message: Mapping[str, Any], stage: str, timeout_s: float, expected: str) -> dict[str, Any]:
        if self.broken:
            raise AgentFault(stage, "the agent host is no longer usable")
        deadline = self._clock() + timeout_s
        try:
            self.channel.send(message)
            answer = self.channel.receive(deadline=deadline, clock=self._clock)
        except TimeoutError:
            self.broken = True
            raise AgentFault(stage, f"no answer within {timeout_s:g}s", timed_out=True) from None
        except ProtocolError as err:
            self.broken = True
            raise AgentFault(stage, f"the agent host broke the protocol or died: {err}{self._exit_note()}") from None
        except OSError as err:
            self.broken = True
            raise AgentFault(stage, f"the agent host's connection failed: {err}{self._exit_note()}") from None
        if answer["type"] == ERROR:
            reported = answer.get("stage")
            raise AgentFault(reported if isinstance(reported, str) else stage, str(answer.get("message", ""))[:500])
        if answer["type"] != expected:
            self.broken = True
            raise AgentFault(stage, f"the agent host answered {answer['type']!r} where {expected!r} was due")
        return answer

    def _exit_note(self) -> str:
        if self.process is None:
            return ""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=0.2)
        code = self.process.poll()
        return "" if code is None else f" (the agent host exited with code {code})"

    def setup(self, route_id: str, plan: Sequence[tuple[float, float, float]], config: str, timeout_s: float) -> object:
        """Construct and set up the agent; returns its ``sensors()`` answer (unvalidated). Raises AgentFault."""
        message = {
            "type": SETUP, "route_id": route_id, "global_plan": [list(p) for p in plan], "config": config,
            "host": "127.0.0.1", "port": 0,
        }  # fmt: skip
        return self._request(message, STAGE_SETUP, timeout_s, READY).get("sensors")

    def step(self, frame: int, timestamp: float, readings: Mapping[str, Any], timeout_s: float) -> VehicleControl:
        """One ``run_step``; raises AgentFault (stage ``run_step``) on anything but a well-formed control."""
        answer = self._request(step_message(frame, timestamp, readings), "run_step", timeout_s, CONTROL)
        try:
            return parse_control(answer)
        except ProtocolError as err:
            self.broken = True
            raise AgentFault("run_step", str(err)) from None

    def destroy(self, timeout_s: float) -> str | None:
        """Ask the agent to clean up; returns why that failed, or None. Never raises."""
        if self.broken:
            return None
        try:
            self._request({"type": DESTROY}, "destroy", timeout_s, DESTROYED)
        except AgentFault as err:
            return err.message
        return None

    def close(self) -> None:
        """Say goodbye and make sure nothing of the host is left."""
        if not self.broken:
            with contextlib.suppress(OSError, ProtocolError):
                self.channel.send({"type": BYE})
        with contextlib.suppress(OSError):
            self.channel.close()
        if self.process is not None:
            if not self.broken:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=1.0)
            end_agent_processes(self.process, self.command.sandboxed if self.command else False)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _greeting(channel: Channel, deadline: float, clock: Callable[[], float]) -> None:
    try:
        hello = channel.receive(deadline=deadline, clock=clock)
    except TimeoutError:
        raise AgentFault("connect", "the agent host did not greet in time") from None
    except (ProtocolError, OSError) as err:
        raise AgentFault("connect", f"the agent host's greeting failed: {err}") from None
    if hello["type"] != HELLO or hello.get("protocol") != PROTOCOL_VERSION:
        raise AgentFault("connect", f"the agent host does not speak protocol {PROTOCOL_VERSION}: {hello!r:.200}")


def listen(path: Path) -> socket.socket:
    """A unix socket listening at ``path`` for one agent host (reachable by the sandbox's user)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o777)  # only the folder bound into this one sandbox leads here
    listener.listen(1)
    return listener


def accept_host(
    listener: socket.socket,
    timeout_s: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    command: HostCommand | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AgentLink:
    """Wait up to ``timeout_s`` for the host to connect and greet; raises AgentFault (stage ``connect``)."""
    deadline = clock() + timeout_s
    while True:
        left = deadline - clock()
        if left <= 0:
            raise AgentFault("connect", f"the agent host did not connect within {timeout_s:g}s")
        if process is not None and process.poll() is not None:
            raise AgentFault("connect", f"the agent host exited with code {process.returncode} before connecting")
        listener.settimeout(min(left, 0.1))
        try:
            sock, _ = listener.accept()
            break
        except TimeoutError:
            continue
    listener.settimeout(None)
    # a host that stops reading cannot block the evaluator longer than its setup time
    channel = Channel(sock, send_timeout_s=timeout_s)
    try:
        _greeting(channel, deadline, clock)
    except AgentFault:
        channel.close()
        raise
    return AgentLink(channel, process, command, clock)


def spawn_host(
    agent: str,
    *,
    timeout_s: float,
    mode: SandboxMode,
    limits: AgentLimits,
    output: LogBudget,
    files: Sequence[str] = (),
    clock: Callable[[], float] = time.monotonic,
    while_starting: Callable[[], None] | None = None,
) -> AgentLink:
    """Start an agent host for ``agent`` and wait until it greets; raises AgentFault / RuntimeError (sandbox).

    ``files`` (the agent's configuration) are made readable to it at the same path. ``while_starting``
    runs after the host process started and before its greeting is awaited (the caller's own preparation
    overlaps the host's start); if it raises, the host is stopped and the error propagates."""
    folder = Path(tempfile.mkdtemp(prefix="lbcloud-agent-"))
    os.chmod(folder, 0o711)
    try:
        listener = listen(folder / SOCKET_NAME)
        workdir = folder / "home"
        workdir.mkdir()
        command = host_command(agent, folder / SOCKET_NAME, workdir, mode=mode, limits=limits, files=files)
        try:
            process = subprocess.Popen(  # argv built by host_command, no shell
                command.argv, cwd=command.cwd, env=command.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, preexec_fn=command.preexec(),  # noqa: PLW1509
            )  # fmt: skip
        except OSError as err:
            raise RuntimeError(f"could not start the agent host: {err}") from err
        assert process.stdout is not None
        threading.Thread(target=_pump, args=(process.stdout, output), name="agent-output", daemon=True).start()
        if while_starting is not None:
            try:
                while_starting()
            except BaseException:
                listener.close()
                end_agent_processes(process, command.sandboxed)
                raise
        try:
            link = accept_host(listener, timeout_s, process=process, command=command, clock=clock)
        except AgentFault:
            end_agent_processes(process, command.sandboxed)
            raise
        finally:
            listener.close()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    link.folder = folder
    return link
