"""FastAPI dependencies shared by the API and the pages: the system, the caller, visible submissions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lbcloud.domain.submissions import Submission
from lbcloud.entrypoints.web.auth import InvalidToken, Principal, bearer_token, principal_for_token
from lbcloud.entrypoints.web.errors import Forbidden, NotAuthenticated
from lbcloud.entrypoints.wiring import System


async def system_dep(request: Request) -> System:
    return get_system(request)


async def principal_dep(request: Request) -> Principal:
    return get_principal(request)


def get_system(request: Request) -> System:
    system: System = request.app.state.system
    return system


def get_principal(request: Request) -> Principal:
    """The caller; a token that matches nothing is refused (401) rather than treated as public."""
    system = get_system(request)
    try:
        principal = principal_for_token(system.settings.web, bearer_token(request))
    except InvalidToken:
        raise NotAuthenticated("the token is not valid; use an operator or team token") from None
    request.state.principal = principal
    return principal


# async wrappers: resolving the caller does no I/O, so it should not take a worker thread per request
SystemDep = Annotated[System, Depends(system_dep)]
PrincipalDep = Annotated[Principal, Depends(principal_dep)]


def require_signed_in(principal: Principal) -> None:
    if not principal.signed_in:
        raise NotAuthenticated("sign in with a team or operator token (Authorization: Bearer <token>)")


def require_operator(principal: Principal) -> None:
    require_signed_in(principal)
    if not principal.is_operator:
        raise Forbidden("only the operator may do this")


def visible_submission(system: System, principal: Principal, submission_id: int) -> Submission:
    """The submission if the caller may see it: 401 when anonymous, 403 for another team's."""
    require_signed_in(principal)
    submission = system.store.get_submission(submission_id)
    if not principal.can_see(submission):
        raise Forbidden(f"submission {submission_id} belongs to another team")
    return submission
