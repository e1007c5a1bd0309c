"""What the control-plane commands read and change, in the API's own shapes, from either side:

- :class:`LocalControlPlane` works on this machine's settings (state store, artifact store);
- :class:`RemoteControlPlane` goes through a server's HTTP API with the token of ``lbcloud login``.

Both return the models the API documents (``SubmissionOut``, ``ProgressOut``, ``Leaderboard``…), so
every command renders one shape the same way whichever side answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from lbcloud.domain.artifact_keys import attempt_log_key
from lbcloud.domain.errors import InputError, NotFound
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SourceKind
from lbcloud.domain.tasks import AttemptStatus
from lbcloud.entrypoints.cli.remote import RemoteClient
from lbcloud.entrypoints.web.leaderboard import Leaderboard, build_leaderboard
from lbcloud.entrypoints.web.route_detail import RouteDetailOut, build_route_detail
from lbcloud.entrypoints.web.views import (
    ProgressOut,
    SubmissionOut,
    TrackOut,
    build_progress,
    submission_out,
    submission_with_state,
    track_out,
)
from lbcloud.entrypoints.wiring import System
from lbcloud.services.control import cancel_submission, rerun_submission, resume_submission


class LogText(BaseModel):
    offset: int
    next_offset: int
    text: str
    complete: bool


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    track: str
    team: str | None
    agent: str
    kind: AgentKind
    agent_config: str | None = None
    method_name: str | None = None


class ControlPlane(Protocol):
    """Reads and actions shared by the local and the remote side."""

    where: str

    def tracks(self) -> list[TrackOut]: ...
    def submissions(self, limit: int) -> list[SubmissionOut]: ...
    def progress(self, submission_id: int) -> ProgressOut: ...
    def route(self, submission_id: int, instance_id: str) -> RouteDetailOut: ...
    def submit(self, request: SubmitRequest) -> SubmissionOut: ...
    def cancel(self, submission_id: int, reason: str | None) -> SubmissionOut: ...
    def resume(self, submission_id: int) -> SubmissionOut: ...
    def rerun(self, submission_id: int) -> SubmissionOut: ...
    def leaderboard(self, track: str) -> Leaderboard: ...
    def read_log(self, submission_id: int, attempt_id: int, stream: str, offset: int) -> LogText: ...
    def page_url(self, submission_id: int) -> str | None: ...
    def close(self) -> None: ...


class LocalControlPlane:
    """This machine's state store and artifact store (the settings file's)."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.where = "local"

    def tracks(self) -> list[TrackOut]:
        return [track_out(t) for t in self.system.tracks.values()]

    def submissions(self, limit: int) -> list[SubmissionOut]:
        store = self.system.store
        return [submission_with_state(store, s) for s in store.list_submissions(limit=limit)]

    def progress(self, submission_id: int) -> ProgressOut:
        return build_progress(self.system, self.system.store.get_submission(submission_id))

    def route(self, submission_id: int, instance_id: str) -> RouteDetailOut:
        return build_route_detail(self.system, self.system.store.get_submission(submission_id), instance_id)

    def submit(self, request: SubmitRequest) -> SubmissionOut:
        if not request.team:
            raise InputError("give the team the submission belongs to (--team)")
        ref = AgentRef(request.kind, request.agent, config=request.agent_config)
        submission, _ = self.system.intake.submit(
            NewSubmission(
                team=request.team,
                track=request.track,
                agent=ref,
                source=SourceKind.LOCAL,
                method_name=request.method_name,
            )
        )
        return submission_with_state(self.system.store, submission)

    def cancel(self, submission_id: int, reason: str | None) -> SubmissionOut:
        sub = cancel_submission(self.system.store, submission_id, reason or "cancelled by an operator")
        return submission_with_state(self.system.store, sub)

    def resume(self, submission_id: int) -> SubmissionOut:
        return submission_with_state(self.system.store, resume_submission(self.system.store, submission_id))

    def rerun(self, submission_id: int) -> SubmissionOut:
        return submission_out(rerun_submission(self.system.store, submission_id))

    def leaderboard(self, track: str) -> Leaderboard:
        if track not in self.system.tracks:
            raise InputError(f"unknown track {track!r} (tracks: {', '.join(sorted(self.system.tracks))})")
        return build_leaderboard(
            self.system.store, track, self.system.settings.web.team_profiles, self.system.settings.web.baseline_teams
        )

    def read_log(self, submission_id: int, attempt_id: int, stream: str, offset: int) -> LogText:
        attempt = self.system.store.get_attempt(attempt_id)
        ended = attempt.status is AttemptStatus.ENDED
        try:
            data = self.system.artifacts.get(attempt_log_key(submission_id, attempt_id, stream))
        except NotFound:
            data = b""
        chunk = data[offset:]
        if not ended:  # only whole lines while the attempt runs
            chunk = chunk[: chunk.rfind(b"\n") + 1]
        return LogText(
            offset=offset,
            next_offset=offset + len(chunk),
            text=chunk.decode("utf-8", "replace"),
            complete=ended and offset + len(chunk) >= len(data),
        )

    def page_url(self, submission_id: int) -> str | None:
        public = self.system.settings.web.public_url
        return f"{public.rstrip('/')}/submissions/{submission_id}" if public else None

    def close(self) -> None:
        self.system.close()


class RemoteControlPlane:
    """A server's HTTP API (``lbcloud login``)."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client
        self.where = client.base_url()

    def tracks(self) -> list[TrackOut]:
        return [TrackOut.model_validate(t) for t in self.client.get("/tracks")]

    def submissions(self, limit: int) -> list[SubmissionOut]:
        return [SubmissionOut.model_validate(s) for s in self.client.get("/submissions", limit=limit)]

    def progress(self, submission_id: int) -> ProgressOut:
        return ProgressOut.model_validate(self.client.get(f"/submissions/{submission_id}"))

    def route(self, submission_id: int, instance_id: str) -> RouteDetailOut:
        return RouteDetailOut.model_validate(self.client.get(f"/submissions/{submission_id}/routes/{instance_id}"))

    def submit(self, request: SubmitRequest) -> SubmissionOut:
        body = {
            "track": request.track,
            "agent": request.agent,
            "kind": request.kind.value,
            "team": request.team,
            "agent_config": request.agent_config,
            "method_name": request.method_name,
        }
        return SubmissionOut.model_validate(self.client.post("/submissions", body))

    def cancel(self, submission_id: int, reason: str | None) -> SubmissionOut:
        return SubmissionOut.model_validate(
            self.client.post(f"/submissions/{submission_id}/cancel", {"reason": reason})
        )

    def resume(self, submission_id: int) -> SubmissionOut:
        return SubmissionOut.model_validate(self.client.post(f"/submissions/{submission_id}/resume"))

    def rerun(self, submission_id: int) -> SubmissionOut:
        raise InputError("rerun is not available through the API: run it on the server, or submit the agent again")

    def leaderboard(self, track: str) -> Leaderboard:
        return Leaderboard.model_validate(self.client.get(f"/tracks/{track}/leaderboard"))

    def read_log(self, submission_id: int, attempt_id: int, stream: str, offset: int) -> LogText:
        path = f"/submissions/{submission_id}/attempts/{attempt_id}/logs/{stream}"
        return LogText.model_validate(self.client.get(path, offset=offset))

    def page_url(self, submission_id: int) -> str | None:
        return f"{self.where}/submissions/{submission_id}"

    def close(self) -> None:
        self.client.close()
