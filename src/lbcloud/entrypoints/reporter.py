"""``lbcloud reporter``: runs beside the agent in an attempt's pod and reports to the dispatcher.

It tails the shared log folder (``agent.log``, ``simulator.log``) and sends new bytes with their
offsets, sends a heartbeat every ``heartbeat_s``, and once the agent's wrapper wrote ``agent.exit``
sends the route record (the evaluator's checkpoint cut to this attempt's record). It needs no
Kubernetes or cloud credentials: only the dispatcher URL and the attempt's token
(``$LBCLOUD_REPORTER_TOKEN``).

As a native sidecar it keeps running after its final report until the kubelet stops it (a sidecar
that exits is restarted); as an ordinary container (``--exit-when-done``) it exits then, and also
probes the simulator port to tell the agent's wrapper when to start (``simulator.ready``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from lbcloud.domain.artifact_keys import RECORDING_MAX_BYTES, LogStream
from lbcloud.domain.errors import InputError, LbcloudError, Unavailable
from lbcloud.domain.results.model import ResultFormat
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.writer import dumps_results

log = logging.getLogger(__name__)

TOKEN_ENV = "LBCLOUD_REPORTER_TOKEN"
AGENT_EXIT_FILE = "agent.exit"
SIMULATOR_READY_FILE = "simulator.ready"
LOG_FILES = {LogStream.AGENT: "agent.log", LogStream.SIMULATOR: "simulator.log"}
CHUNK_BYTES = 256 * 1024
PROBE_INTERVAL_S = 0.2
"""Rounds while the agent waits for the simulator probe (co-container layout): it starts no later."""


class ReportRefused(LbcloudError):
    """The dispatcher refused a report for good (bad token, ended attempt, invalid record)."""


def _retryable(err: BaseException) -> bool:
    return isinstance(err, Unavailable)


class ReporterClient:
    """HTTP calls to the dispatcher's reporter API, retried on network errors and 5xx."""

    def __init__(
        self, http: httpx.Client, attempt_id: int, token: str, *, attempts: int = 8, max_wait_s: float = 10.0
    ) -> None:
        self.http = http
        self.attempt_id = attempt_id
        self.token = token
        self._retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.2, max=max_wait_s),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )

    def _send(self, method: str, path: str, *, content: bytes | None = None, **params: int) -> httpx.Response:
        url = f"/api/v1/reporter/attempts/{self.attempt_id}{path}"
        headers = {"Authorization": f"Bearer {self.token}"}

        def once() -> httpx.Response:
            try:
                response = self.http.request(method, url, content=content, params=params or None, headers=headers)
            except httpx.TransportError as err:
                raise Unavailable(f"dispatcher unreachable: {type(err).__name__}: {err}") from None
            if response.status_code >= 500 or response.status_code == 429:
                raise Unavailable(f"dispatcher answered {response.status_code}: {response.text[:200]}")
            return response

        for attempt in self._retrying:
            with attempt:
                return once()
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _refused(response: httpx.Response) -> ReportRefused:
        try:
            message = str(response.json().get("error", response.text))
        except ValueError:
            message = response.text
        return ReportRefused(f"dispatcher refused the report ({response.status_code}): {message}")

    def put_record(self, document: bytes) -> bool:
        """Send the record; True when stored now, False for an idempotent replay."""
        response = self._send("PUT", "/record", content=document)
        if response.status_code in (200, 201):
            return response.status_code == 201
        raise self._refused(response)

    def put_recording(self, data: bytes) -> bool:
        """Send the simulator's recording; True when stored now, False for an idempotent replay."""
        response = self._send("PUT", "/recording", content=data)
        if response.status_code in (200, 201):
            return response.status_code == 201
        raise self._refused(response)

    def append_log(self, stream: LogStream, offset: int, data: bytes) -> int:
        """Append a chunk; returns the offset the next chunk starts at (the server's on a mismatch)."""
        response = self._send("POST", f"/logs/{stream.value}", content=data, offset=offset)
        if response.status_code == 200:
            return int(response.json()["next_offset"])
        if response.status_code == 409 and "expected_offset" in response.json():
            return int(response.json()["expected_offset"])
        raise self._refused(response)

    def log_offset(self, stream: LogStream) -> int:
        response = self._send("GET", f"/logs/{stream.value}")
        if response.status_code == 200:
            return int(response.json()["offset"])
        raise self._refused(response)

    def heartbeat(self, detail: str = "") -> None:
        response = self._send("POST", "/heartbeat", content=json.dumps({"detail": detail}).encode())
        if response.status_code != 200:
            raise self._refused(response)


def record_document(checkpoint_text: str, route_id: str, source: str = "checkpoint") -> bytes:
    """The checkpoint cut to this attempt's record, named ``route_id`` (a 2.x repetition rename).

    Deterministic, so a retried upload sends identical bytes. Raises :class:`InputError` when the
    checkpoint holds no record."""
    results = parse_results(checkpoint_text, source)
    if not results.records:
        raise InputError(f"{source}: the evaluator wrote no route record")
    record = next((r for r in results.records if r.route_id == route_id), results.records[-1])
    if record.route_id != route_id and results.format is ResultFormat.V2X:
        record = dataclasses.replace(record, route_id=route_id)
    return dumps_results(dataclasses.replace(results, records=(record,))).encode("utf-8")


def simulator_listening(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclasses.dataclass
class Reporter:
    """The reporting loop (time and I/O injected so tests drive it step by step)."""

    client: ReporterClient
    route_id: str
    checkpoint: Path
    logs_dir: Path
    run_dir: Path
    interval_s: float = 2.0
    heartbeat_s: float = 10.0
    probe_port: int | None = None
    monotonic: Callable[[], float] = time.monotonic
    probe: Callable[[int], bool] = simulator_listening
    offsets: dict[LogStream, int] = dataclasses.field(default_factory=dict)
    record_sent: bool = False
    recordings_dir: Path | None = None
    max_recording_bytes: int = RECORDING_MAX_BYTES
    recording_sent: bool = False
    _last_beat: float | None = None

    def resume_offsets(self) -> None:
        """Continue where the dispatcher's copy of each log ends (a restarted reporter)."""
        for stream in LOG_FILES:
            self.offsets[stream] = self.client.log_offset(stream)

    @property
    def simulator_known_ready(self) -> bool:
        """No probe to do (sidecar layout), or the simulator answered it: rounds at the normal interval."""
        return self.probe_port is None or (self.run_dir / SIMULATOR_READY_FILE).exists()

    @property
    def agent_done(self) -> bool:
        return (self.run_dir / AGENT_EXIT_FILE).is_file()

    def ship_logs(self) -> int:
        """Send every new byte of the log files; returns how many were accepted."""
        sent = 0
        for stream, name in LOG_FILES.items():
            path = self.logs_dir / name
            offset = self.offsets.get(stream, 0)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            with path.open("rb") as handle:
                while offset < size:
                    handle.seek(offset)
                    chunk = handle.read(min(CHUNK_BYTES, size - offset))
                    if not chunk:
                        break
                    new_offset = self.client.append_log(stream, offset, chunk)
                    sent += max(0, new_offset - offset)
                    offset = new_offset
            self.offsets[stream] = offset
        return sent

    def step(self) -> None:
        """One round: simulator probe (co-container layout), logs, heartbeat when due."""
        ready = self.run_dir / SIMULATOR_READY_FILE
        if self.probe_port is not None and not ready.exists() and self.probe(self.probe_port):
            ready.write_text("ready\n", encoding="utf-8")
        self.ship_logs()
        now = self.monotonic()
        if self._last_beat is None or now - self._last_beat >= self.heartbeat_s:
            self.client.heartbeat(f"agent log {self.offsets.get(LogStream.AGENT, 0)} bytes")
            self._last_beat = now

    def finish(self) -> None:
        """Final report: all logs, then the route record if the agent finished and wrote one."""
        self.ship_logs()
        if self.record_sent or not self.agent_done:
            return
        self.ship_recording()  # before the record, which may end the attempt
        try:
            text = self.checkpoint.read_text(encoding="utf-8")
        except OSError:
            log.warning("the evaluator left no checkpoint at %s", self.checkpoint)
            return
        try:
            document = record_document(text, self.route_id, str(self.checkpoint))
        except InputError as err:
            log.warning("no route record to report: %s", err)
            return
        self.client.put_record(document)
        self.record_sent = True

    def ship_recording(self) -> None:
        """The simulator's recorder file of the route, when the track records one within the cap.
        A failure here is logged and never keeps the route record from being sent."""
        if self.recordings_dir is None or self.recording_sent:
            return
        files = sorted(self.recordings_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
        if not files:
            return
        self.recording_sent = True
        size = files[-1].stat().st_size
        if size > self.max_recording_bytes:
            log.warning("the recording %s is %d bytes, over the %d-byte cap: not kept", files[-1], size,
                        self.max_recording_bytes)  # fmt: skip
            return
        try:
            self.client.put_recording(files[-1].read_bytes())
        except (LbcloudError, OSError) as err:
            log.warning("the recording was not kept: %s", err)

    def run(self, stop: threading.Event, *, exit_when_done: bool) -> int:
        """Report until the agent is done (then finish) and, unless ``exit_when_done``, until ``stop``."""
        with contextlib.suppress(LbcloudError):
            self.resume_offsets()
        while not stop.is_set() and not self.agent_done:
            try:
                self.step()
            except ReportRefused as err:
                log.error("%s", err)
                return 1
            except LbcloudError as err:  # keep going: the next round retries
                log.warning("report failed: %s", err)
            stop.wait(self.interval_s if self.simulator_known_ready else min(self.interval_s, PROBE_INTERVAL_S))
        try:
            self.finish()
        except LbcloudError as err:
            log.error("final report failed: %s", err)
            return 1
        if not exit_when_done:
            stop.wait()  # a native sidecar that exits would be restarted: wait for the kubelet's SIGTERM
        return 0


def reporter_command(
    dispatcher_url: Annotated[str, typer.Option("--dispatcher-url", help="Base URL of the dispatcher.")],
    attempt_id: Annotated[int, typer.Option("--attempt-id", help="The attempt this pod runs.")],
    route_id: Annotated[str, typer.Option("--route-id", help="The record's route id, e.g. RouteScenario_3_rep0.")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="The evaluator's checkpoint file.")],
    logs_dir: Annotated[Path, typer.Option("--logs-dir", help="Folder with agent.log and simulator.log.")],
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Folder with agent.exit / simulator.ready.")],
    token: Annotated[str, typer.Option("--token", envvar=TOKEN_ENV, help="Attempt token.", show_default=False)] = "",
    interval: Annotated[float, typer.Option("--interval", help="Seconds between log rounds.")] = 2.0,
    exit_when_done: Annotated[bool, typer.Option("--exit-when-done", help="Exit after the final report.")] = False,
    probe_port: Annotated[
        int | None, typer.Option("--probe-port", help="Probe this simulator port and write simulator.ready.")
    ] = None,
    recordings_dir: Annotated[
        Path | None, typer.Option("--recordings-dir", help="Folder where the simulator writes its recording.")
    ] = None,
    max_recording_bytes: Annotated[
        int, typer.Option("--max-recording-bytes", help="Recordings above this size are not kept.")
    ] = RECORDING_MAX_BYTES,
) -> None:
    """Stream an attempt's logs, heartbeats and route record to the dispatcher (runs in the pod)."""
    if not token:
        raise InputError(f"no attempt token: set ${TOKEN_ENV}")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with httpx.Client(base_url=dispatcher_url, timeout=30.0) as http:
            reporter = Reporter(
                ReporterClient(http, attempt_id, token),
                route_id=route_id,
                checkpoint=checkpoint,
                logs_dir=logs_dir,
                run_dir=run_dir,
                interval_s=interval,
                probe_port=probe_port,
                recordings_dir=recordings_dir,
                max_recording_bytes=max_recording_bytes,
            )
            code = reporter.run(stop, exit_when_done=exit_when_done)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    raise typer.Exit(code)


app = typer.Typer(help="In-pod reporter.", no_args_is_help=False)
app.command("reporter")(reporter_command)
