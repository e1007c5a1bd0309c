"""EvalAI's errors as lbcloud errors.

:class:`EvalAIError` is the family this adapter raises for answers that retrying will not fix;
timeouts, connection errors, 429 and 5xx that outlive the retries become
:class:`lbcloud.domain.errors.Unavailable` (with the same context). Every error names the endpoint
(``E6 GET /api/jobs/submission/12``) and, when there is one, the submission pk.
"""

from __future__ import annotations

from lbcloud.domain.errors import LbcloudError, Unavailable


def _where(endpoint: str, submission: int | None) -> str:
    return f"EvalAI {endpoint}" + (f" (submission {submission})" if submission is not None else "")


class EvalAIError(LbcloudError):
    """EvalAI refused a request for good: retrying it unchanged will fail the same way."""

    exit_code = 9

    def __init__(self, message: str, *, endpoint: str, submission: int | None = None, status: int | None = None):
        self.endpoint = endpoint
        self.submission = submission
        self.status = status
        super().__init__(f"{_where(endpoint, submission)}: {message}")


class EvalAIAuthError(EvalAIError):
    """The host token is missing, invalid, expired, rotated, lacks a verified email or is not a host's.

    Nothing works until an operator fixes the token, so callers back off and keep other work going.
    """

    OPERATOR_HINT = (
        "the EvalAI host token was refused; it may have expired (tokens last 365 days), been rotated "
        "(refresh_auth_token invalidates the old one) or belong to an account that is not in the "
        "challenge's host team. Copy the current token from the challenge's Manage tab into "
        "evalai.token (LBCLOUD_EVALAI__TOKEN) and check evalai.auth_scheme (Bearer for the UI's token, "
        "Token for a 40-hex key)"
    )


class EvalAIRequestError(EvalAIError):
    """A permanent 4xx (or an answer lbcloud cannot parse): the request or the configuration is wrong."""


class EvalAINotFound(EvalAIRequestError):
    """EvalAI says the object does not exist (e.g. 404 ``Submission N does not exist``)."""


class EvalAIUnavailable(Unavailable):
    """EvalAI kept answering 429/5xx or not at all, after the client's retries."""

    def __init__(self, message: str, *, endpoint: str, submission: int | None = None) -> None:
        self.endpoint = endpoint
        self.submission = submission
        super().__init__(f"{_where(endpoint, submission)}: {message}")
