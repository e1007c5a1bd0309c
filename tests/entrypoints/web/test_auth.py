"""Tokens: operator, teams, public, open mode."""

from __future__ import annotations

import pytest

from lbcloud.entrypoints.web.auth import OPERATOR, PUBLIC, InvalidToken, Principal, Role, principal_for_token
from lbcloud.settings import WebSettings

WEB = WebSettings(operator_token="op", team_tokens={"alpha": "a-token", "beta": "b-token"})


def test_tokens_map_to_the_operator_or_their_team() -> None:
    assert principal_for_token(WEB, "op") == OPERATOR
    assert principal_for_token(WEB, "a-token") == Principal(Role.TEAM, "alpha")
    assert principal_for_token(WEB, None) == PUBLIC


def test_an_unknown_token_is_refused_not_downgraded() -> None:
    with pytest.raises(InvalidToken):
        principal_for_token(WEB, "b-tokenX")


def test_without_any_token_configured_everyone_is_the_operator() -> None:
    assert principal_for_token(WebSettings(), None) == OPERATOR


def test_team_tokens_alone_keep_anonymous_callers_public() -> None:
    assert principal_for_token(WebSettings(team_tokens={"alpha": "t"}), None) == PUBLIC
