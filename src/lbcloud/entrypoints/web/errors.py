"""HTTP errors: every failure is ``{"error": "<one clear line>"}`` with a status code that fits.

Project errors map by class (:mod:`lbcloud.domain.errors`); the web layer adds
:class:`NotAuthenticated` (401) and :class:`Forbidden` (403).
"""

from __future__ import annotations

from lbcloud.domain.errors import Conflict, InputError, LbcloudError, NotFound, Unavailable


class NotAuthenticated(LbcloudError):
    """No (valid) token for something that needs one."""


class Forbidden(LbcloudError):
    """A valid token that may not do this (another team's submission, an operator-only action)."""


STATUS_BY_ERROR: tuple[tuple[type[LbcloudError], int], ...] = (
    (NotAuthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (InputError, 400),
)


def status_for(err: LbcloudError) -> int:
    """The HTTP status of a project error (500 for anything unexpected)."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(err, cls):
            return status
    return 500
