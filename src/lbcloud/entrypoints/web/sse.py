"""Server-sent events: the live submission feed (shared per submission) and log following.

:class:`LiveHub` keeps one poller per watched submission, however many browsers watch it: the
poller reads the store's event log (``events(submission_id=, after_id=)``) every ``poll_s``; on a new
event, or every ``refresh_s`` while someone watches (durations grow), it rebuilds the submission's
snapshot once and fans it out to every subscriber queue. A subscriber that falls too far behind is
disconnected (the browser's ``EventSource`` reconnects and starts from a fresh snapshot).

Frames: ``event: progress`` (the snapshot JSON), ``event: event`` (one store event, ``id:`` is the
event id), ``event: end`` (the submission reached a terminal status; the stream closes) and
``: keepalive`` comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio.to_thread

from lbcloud.domain.errors import NotFound
from lbcloud.services.ports import ArtifactStore, Event

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_frame(event: str, data: str, event_id: int | None = None) -> str:
    """One SSE frame (multi-line data is split into ``data:`` lines)."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return "\n".join(lines) + "\n\n"


SnapshotLoader = Callable[[int], tuple[str, bool, str]]
"""``submission id → (snapshot JSON, terminal?, team)`` (runs in a worker thread)."""
EventReader = Callable[[int, int], list[Event]]
"""``(submission id, after event id) → events`` in id order (runs in a worker thread)."""
EventEncoder = Callable[[Event], str]


@dataclass
class _Channel:
    subscribers: set[asyncio.Queue[str | None]] = field(default_factory=set)
    payload: str | None = None
    terminal: bool = False
    last_event_id: int = 0
    task: asyncio.Task[None] | None = None
    loading: asyncio.Lock = field(default_factory=asyncio.Lock)
    team: str | None = None


class LiveHub:
    """Fans out live snapshots of submissions to SSE subscribers (one poller per submission)."""

    def __init__(
        self,
        load: SnapshotLoader,
        read_events: EventReader,
        encode_event: EventEncoder,
        *,
        poll_s: float = 0.25,
        refresh_s: float = 5.0,
        heartbeat_s: float = 15.0,
        queue_size: int = 256,
        on_clients: Callable[[int], None] | None = None,
    ) -> None:
        self._load = load
        self._read_events = read_events
        self._encode_event = encode_event
        self.poll_s = poll_s
        self.refresh_s = refresh_s
        self.heartbeat_s = heartbeat_s
        self._queue_size = queue_size
        self._on_clients = on_clients or (lambda _delta: None)
        self._channels: dict[int, _Channel] = {}
        self._teams: dict[int, str] = {}

    def cached_team(self, submission_id: int) -> str | None:
        """The team of a submission seen before (a submission never changes team): saves a store
        read per subscriber when many browsers open the same submission at once."""
        channel = self._channels.get(submission_id)
        if channel is not None and channel.team is not None:
            return channel.team
        return self._teams.get(submission_id)

    def remember_team(self, submission_id: int, team: str) -> None:
        if len(self._teams) > 10000:
            self._teams.clear()
        self._teams[submission_id] = team

    @property
    def watched(self) -> int:
        """Submissions with at least one subscriber."""
        return len(self._channels)

    async def _latest_event_id(self, submission_id: int) -> int:
        last = 0
        while True:
            batch = await anyio.to_thread.run_sync(self._read_events, submission_id, last)
            if not batch:
                return last
            last = batch[-1].id

    async def stream(self, submission_id: int) -> AsyncIterator[str]:
        """The SSE frames of one subscriber: the current snapshot first, then changes."""
        channel = self._channels.get(submission_id)
        if channel is None:
            channel = self._channels[submission_id] = _Channel()
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=self._queue_size)
        channel.subscribers.add(queue)
        self._on_clients(1)
        try:
            async with channel.loading:  # many browsers open at once: load the first snapshot once
                if channel.payload is None:
                    channel.last_event_id = await self._latest_event_id(submission_id)
                    loaded = await anyio.to_thread.run_sync(self._load, submission_id)
                    channel.payload, channel.terminal, channel.team = loaded
            yield sse_frame("progress", channel.payload or "{}")
            if channel.terminal:
                yield sse_frame("end", "{}")
                return
            if channel.task is None or channel.task.done():
                channel.task = asyncio.create_task(self._poll(submission_id, channel))
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=self.heartbeat_s)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if item is None:
                    return
                yield item
        finally:
            self._on_clients(-1)
            channel.subscribers.discard(queue)
            if not channel.subscribers and self._channels.get(submission_id) is channel:
                del self._channels[submission_id]
                if channel.task is not None and channel.task is not asyncio.current_task():
                    channel.task.cancel()

    def _broadcast(self, channel: _Channel, item: str | None) -> None:
        for queue in list(channel.subscribers):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                # a slow client: drop what it has not read and close its stream
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
                channel.subscribers.discard(queue)

    async def _poll(self, submission_id: int, channel: _Channel) -> None:
        last_refresh = time.monotonic()
        while channel.subscribers:
            await asyncio.sleep(self.poll_s)
            try:
                events = await anyio.to_thread.run_sync(self._read_events, submission_id, channel.last_event_id)
                # events go out first: they are small and what people wait for; the snapshot follows
                for event in events:
                    channel.last_event_id = event.id
                    self._broadcast(channel, sse_frame("event", self._encode_event(event), event.id))
                if not events and time.monotonic() - last_refresh < self.refresh_s:
                    continue
                payload, terminal, _team = await anyio.to_thread.run_sync(self._load, submission_id)
            except NotFound:
                self._broadcast(channel, sse_frame("end", json.dumps({"error": "submission not found"})))
                self._broadcast(channel, None)
                return
            except Exception:  # a store hiccup must not kill the feed; try again next tick
                await asyncio.sleep(self.poll_s)
                continue
            last_refresh = time.monotonic()
            if payload != channel.payload:
                channel.payload = payload
                self._broadcast(channel, sse_frame("progress", payload))
            if terminal:
                channel.terminal = True
                self._broadcast(channel, sse_frame("end", "{}"))
                self._broadcast(channel, None)
                return

    async def close(self) -> None:
        for channel in list(self._channels.values()):
            self._broadcast(channel, None)
            if channel.task is not None:
                channel.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await channel.task
        self._channels.clear()


# ------------------------------------------------------------------------------------- log follow


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Log text from ``offset`` (bytes) up to ``next_offset``; ``complete`` once nothing more will come."""

    offset: int
    next_offset: int
    text: str
    complete: bool
    size: int


def read_log_chunk(
    artifacts: ArtifactStore, key: str, offset: int, *, finished: bool, max_bytes: int = 256 * 1024
) -> LogChunk:
    """Read a log blob from ``offset``. While the attempt runs, only whole lines are returned (no
    half-written line or split UTF-8 character); once it finished, everything is."""
    try:
        data = artifacts.get(key)
    except NotFound:
        data = b""
    size = len(data)
    offset = max(0, min(offset, size))
    piece = data[offset : offset + max_bytes]
    more_after = offset + len(piece) < size
    if (not finished or more_after) and not piece.endswith(b"\n"):
        cut = piece.rfind(b"\n")
        piece = piece[: cut + 1] if cut >= 0 else (piece if len(piece) >= max_bytes else b"")
    next_offset = offset + len(piece)
    return LogChunk(
        offset=offset,
        next_offset=next_offset,
        text=piece.decode("utf-8", errors="replace"),
        complete=finished and next_offset >= size,
        size=size,
    )


async def follow_log(
    read: Callable[[int], LogChunk],
    offset: int,
    *,
    poll_s: float = 0.5,
    heartbeat_s: float = 15.0,
) -> AsyncIterator[str]:
    """SSE frames of a growing log: ``event: log`` with ``{offset, next_offset, text}``, then
    ``event: end`` once the attempt ended and everything was sent."""
    quiet = 0.0
    while True:
        chunk = await anyio.to_thread.run_sync(read, offset)
        if chunk.text:
            payload = {"offset": chunk.offset, "next_offset": chunk.next_offset, "text": chunk.text}
            yield sse_frame("log", json.dumps(payload), chunk.next_offset)
            quiet = 0.0
        offset = chunk.next_offset
        if chunk.complete:
            yield sse_frame("end", json.dumps({"next_offset": offset}))
            return
        if chunk.text and offset < chunk.size:
            continue  # more is already there
        await asyncio.sleep(poll_s)
        quiet += poll_s
        if quiet >= heartbeat_s:
            quiet = 0.0
            yield ": keepalive\n\n"
