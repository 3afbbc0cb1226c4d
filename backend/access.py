"""Who may use the API: the bind-address rule, the API token, session cookies and CORS.

Without CURVELAB_API_TOKEN the API is for this machine only: it refuses to start on a
non-loopback address and answers no client outside loopback. With a token, every route
except the page, its assets, the docs and /api/health needs it, as a bearer header or as
the session cookie that POST /api/session trades it for. The cookie exists because a
browser's EventSource cannot send headers; it holds an expiry signed with the token, so
it dies on its own and with every change of token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import time
from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.settings import Settings

# Uvicorn's own logger, so that the notice appears among the server's start-up lines.
logger = logging.getLogger("uvicorn.error")

NO_TOKEN_NOTICE = (
    "No CURVELAB_API_TOKEN set: serving on 127.0.0.1 only; "
    "set a token to listen on other addresses."
)
LOOPBACK_ONLY = (
    "No CURVELAB_API_TOKEN set: this server answers only clients on 127.0.0.1; "
    "set a token to serve other addresses."
)
TOKEN_MISSING = (
    "This request needs the API token: send the header `Authorization: Bearer <token>` "
    "(the dashboard asks for the token once)."
)
TOKEN_REFUSED = (
    "The API token sent was not accepted; send the token the server was started with "
    "(CURVELAB_API_TOKEN)."
)
SESSION_REFUSED = (
    "The session cookie has expired or was signed with another token; open a new session "
    "with POST /api/session and the API token."
)

CHALLENGE = 'Bearer realm="curvelab"'
INVALID = 'Bearer realm="curvelab", error="invalid_token"'

SESSION_COOKIE = "curvelab_session"
SESSION_COOKIE_PATH = "/api"
# An hour: the dashboard renews it long before, and a stolen cookie is useless soon after.
SESSION_SECONDS = 3600

# The page, its assets, the docs and the health check carry no run data; the session route
# checks the bearer header itself. Every other path needs the token, including ones added
# later, so a new route is protected unless someone decides otherwise here.
PUBLIC_PATHS = frozenset(
    {"/", "/api/health", "/api/session", "/docs", "/docs/oauth2-redirect", "/redoc",
     "/openapi.json"}
)  # fmt: skip
PUBLIC_PREFIXES = ("/static/", "/vendor/")


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1), IPv4-mapped or not."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_bind_address(settings: Settings) -> None:
    """Refuses a tokenless server on an address other machines reach."""
    if settings.api_token is None and not is_loopback_host(settings.host):
        raise ValueError(NO_TOKEN_NOTICE)


def _signature(token: str, expires_at: int) -> str:
    message = f"curvelab-session:{expires_at}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def session_value(token: str, expires_at: int) -> str:
    """The cookie value: the expiry (unix seconds) and its HMAC keyed with the API token."""
    return f"{expires_at}.{_signature(token, expires_at)}"


def session_is_valid(token: str, value: str, now: float | None = None) -> bool:
    expiry, _, signature = value.partition(".")
    if not expiry.isdigit() or len(expiry) > 12:
        return False
    expires_at = int(expiry)
    if expires_at <= (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature.encode(), _signature(token, expires_at).encode())


def token_matches(token: str, presented: str) -> bool:
    return hmac.compare_digest(presented.encode(), token.encode())


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


async def _refuse(send: Send, status: int, detail: str, challenge: str | None = None) -> None:
    # Written here rather than as a Response: these refusals happen before routing.
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TokenGuard:
    """ASGI middleware: a request to a protected path needs the bearer token or a session."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(dict(scope["headers"]))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        detail, challenge = refusal
        await _refuse(send, 401, detail, challenge)

    def refusal(self, headers: dict[bytes, bytes]) -> tuple[str, str] | None:
        """None when the headers carry the token or a valid session; else why not, and the
        WWW-Authenticate challenge. A bearer header, when present, decides alone."""
        authorization = headers.get(b"authorization")
        presented = bearer_token(authorization.decode("latin-1") if authorization else None)
        if presented is not None:
            return None if token_matches(self.token, presented) else (TOKEN_REFUSED, INVALID)
        cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        session = cookies.get(SESSION_COOKIE)
        if session is not None:
            return None if session_is_valid(self.token, session) else (SESSION_REFUSED, INVALID)
        return TOKEN_MISSING, CHALLENGE


@lru_cache(maxsize=1024)
def _is_remote_client(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        # Not a network peer (an in-process test client, a Unix socket): nothing to refuse.
        return False
    return not is_loopback_host(host)


class LoopbackOnly:
    """ASGI middleware of a tokenless server: refuses clients that are not on this machine.

    It holds even when uvicorn is started by hand with `--host 0.0.0.0`, which the
    application cannot see.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and _is_remote_client(str(client[0])):
            await _refuse(send, 403, LOOPBACK_ONLY)
            return
        await self.app(scope, receive, send)


def install_access(app: FastAPI, settings: Settings) -> None:
    """Adds the access middlewares; call it after every other middleware is added.

    Starlette runs the last-added middleware first: CORS answers preflights (which carry
    no credentials) before the token guard, and the guard refuses before a body is read.
    """
    if settings.api_token is None:
        app.add_middleware(LoopbackOnly)
    else:
        app.add_middleware(TokenGuard, token=settings.api_token.get_secret_value())
        _document_token(app)
    if settings.cors_origins:
        if "*" in settings.cors_origins:
            raise ValueError(
                "CURVELAB_CORS_ORIGINS lists '*', which would let any site act with a "
                "visitor's session; list the exact origins instead."
            )
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )


UNAUTHORIZED_RESPONSE = {
    "description": "No API token, a wrong one, or an expired session cookie; the detail "
    "says which and what to send.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    },
}


def _document_token(app: FastAPI) -> None:
    """Declares the token in the OpenAPI schema, so /docs offers an Authorize button.

    The guard is a middleware FastAPI cannot see, so the schema is amended once generated:
    every operation outside the public paths takes the bearer header or the session cookie.
    """
    generate = app.openapi

    def openapi_with_token() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = {
            "apiToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The CURVELAB_API_TOKEN the server was started with.",
            },
            "sessionCookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": "Set by POST /api/session; what the dashboard's live view uses.",
            },
        }
        for path, operations in schema.get("paths", {}).items():
            if is_public(path):
                continue
            for operation in operations.values():
                operation["security"] = [{"apiToken": []}, {"sessionCookie": []}]
                operation.setdefault("responses", {})["401"] = UNAUTHORIZED_RESPONSE
        app.openapi_schema = schema
        return schema

    app.openapi = openapi_with_token  # type: ignore[method-assign]


def announce_access(settings: Settings) -> None:
    """The start-up line that says who may connect."""
    if settings.api_token is None:
        logger.warning(NO_TOKEN_NOTICE)
