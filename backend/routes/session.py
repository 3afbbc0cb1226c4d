"""POST /api/session: trades the API token for a short-lived cookie the browser sends itself.

A browser's EventSource cannot send an Authorization header, so the dashboard opens a
session first; the HttpOnly cookie then authorizes the event stream and plain links
(such as the CSV download) as well as fetch calls.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response
from pydantic import BaseModel, Field

from backend.access import (
    CHALLENGE,
    INVALID,
    SESSION_COOKIE,
    SESSION_COOKIE_PATH,
    SESSION_SECONDS,
    TOKEN_MISSING,
    TOKEN_REFUSED,
    bearer_token,
    session_value,
    token_matches,
)
from backend.deps import SettingsDep

router = APIRouter(prefix="/api", tags=["access"])


class SessionView(BaseModel):
    expires_at: float | None = Field(
        description="When the session cookie expires (unix seconds, server clock); null when "
        "the server needs no token and so set no cookie."
    )
    lifetime_seconds: int | None = Field(
        description="How long the cookie lives from now; renew it before then. Null likewise."
    )


@router.post(
    "/session",
    responses={401: {"description": "The bearer token is missing or wrong."}},
)
def open_session(
    request: Request,
    response: Response,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API token>.")] = None,
) -> SessionView:
    """Sets an HttpOnly session cookie for the API token sent as a bearer header."""
    if settings.api_token is None:
        return SessionView(expires_at=None, lifetime_seconds=None)
    token = settings.api_token.get_secret_value()
    presented = bearer_token(authorization)
    if presented is None:
        raise HTTPException(401, TOKEN_MISSING, headers={"WWW-Authenticate": CHALLENGE})
    if not token_matches(token, presented):
        raise HTTPException(401, TOKEN_REFUSED, headers={"WWW-Authenticate": INVALID})
    expires_at = int(time.time()) + SESSION_SECONDS
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token, expires_at),
        max_age=SESSION_SECONDS,
        path=SESSION_COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return SessionView(expires_at=expires_at, lifetime_seconds=SESSION_SECONDS)
