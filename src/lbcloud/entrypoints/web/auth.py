"""Who is asking: the operator, a team, or the public.

Tokens come from ``settings.web``: ``operator_token`` sees and controls everything; each of
``team_tokens`` (team → token) sees only that team's submissions, attempts and logs. The leaderboard
is public. A token is read from ``Authorization: Bearer <token>`` first, then from the page cookie
(set by the login form, or by opening a page once with ``?token=``).

When neither an operator token nor team tokens are configured the server runs in *open mode*: every
caller is the operator. That is the laptop default (the server listens on 127.0.0.1); any production
configuration sets tokens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

from starlette.requests import HTTPConnection

from lbcloud.domain.submissions import Submission
from lbcloud.settings import WebSettings

COOKIE_NAME = "lbcloud_token"
QUERY_TOKEN = "token"


class Role(StrEnum):
    OPERATOR = "operator"
    TEAM = "team"
    PUBLIC = "public"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller. ``team`` is set for :attr:`Role.TEAM` only."""

    role: Role
    team: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def signed_in(self) -> bool:
        return self.role is not Role.PUBLIC

    @property
    def label(self) -> str:
        return self.team if self.role is Role.TEAM and self.team else self.role.value

    def can_see(self, submission: Submission) -> bool:
        """The operator sees every submission, a team only its own."""
        return self.is_operator or (self.role is Role.TEAM and self.team == submission.team)


PUBLIC = Principal(Role.PUBLIC)
OPERATOR = Principal(Role.OPERATOR)


class InvalidToken(Exception):
    """A token was given but matches no configured token."""


def open_mode(web: WebSettings) -> bool:
    """No token configured at all: every caller is the operator (laptop default)."""
    return not web.operator_token and not web.team_tokens


def principal_for_token(web: WebSettings, token: str | None) -> Principal:
    """The principal a token stands for (constant-time comparisons).

    Raises :class:`InvalidToken` for a token that matches nothing."""
    if open_mode(web):
        return OPERATOR
    if not token:
        return PUBLIC
    given = token.encode()
    if web.operator_token and secrets.compare_digest(given, web.operator_token.encode()):
        return OPERATOR
    match: str | None = None
    for team, team_token in web.team_tokens.items():
        if team_token and secrets.compare_digest(given, team_token.encode()):
            match = team
    if match is None:
        raise InvalidToken("the token is not valid")
    return Principal(Role.TEAM, match)


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of the page cookie."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = connection.cookies.get(COOKIE_NAME)
    return cookie or None
