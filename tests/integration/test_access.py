"""Access control in-process against a real Valkey: the API token, sessions, loopback and CORS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.access import (
    LOOPBACK_ONLY,
    NO_TOKEN_NOTICE,
    SESSION_COOKIE,
    SESSION_REFUSED,
    TOKEN_MISSING,
    TOKEN_REFUSED,
    session_value,
)
from backend.contract import TASK_QUEUE
from backend.main import create_app
from backend.settings import Settings

TOKEN = "correct horse battery staple"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SYNTHETIC = {"variant": "selu", "dataset": "synthetic", "max_epochs": 3}
LAB_ORIGIN = "https://lab.example.org"
# Every route that changes something, the event stream, and every read of run data.
PROTECTED = [
    ("POST", "/api/runs", SYNTHETIC),
    ("POST", "/api/lr-finder", {"dataset": "synthetic"}),
    ("POST", "/api/runs/some-run/cancel", None),
    ("DELETE", "/api/runs/some-run", None),
    ("GET", "/api/events", None),
    ("GET", "/api/runs", None),
    ("GET", "/api/runs/some-run", None),
    ("GET", "/api/runs/some-run/metrics", None),
    ("GET", "/api/runs/some-run/mc-dropout", None),
    ("GET", "/api/variants", None),
]
PUBLIC = ["/", "/api/health", "/static/js/api.js", "/vendor/plotly.min.js", "/openapi.json"]


@pytest.fixture
def token_settings(idle_settings: Settings) -> Settings:
    return idle_settings.model_copy(update={"api_token": SecretStr(TOKEN)})


@pytest.fixture
def token_client(token_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(token_settings)) as client:
        yield client


def nothing_stored_or_queued(client: TestClient) -> bool:
    store = client.app.state.store  # type: ignore[attr-defined]
    return store.count_runs() == 0 and store.redis.llen(TASK_QUEUE) == 0


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, TOKEN_MISSING), ({"Authorization": "Bearer guessed"}, TOKEN_REFUSED)],
    ids=["no-token", "wrong-token"],
)
def test_protected_routes_answer_401_with_a_sentence_without_the_right_token(
    token_client: TestClient, method: str, path: str, body: dict | None, headers: dict, detail: str
) -> None:
    response = token_client.request(method, path, json=body, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert nothing_stored_or_queued(token_client)


def test_the_bearer_token_opens_every_mutating_route(token_client: TestClient) -> None:
    launched = token_client.post("/api/runs", json=SYNTHETIC, headers=BEARER)
    finder = token_client.post("/api/lr-finder", json={"dataset": "synthetic"}, headers=BEARER)
    assert launched.status_code == 201 and finder.status_code == 201
    run_id = launched.json()["id"]

    cancelled = token_client.post(f"/api/runs/{run_id}/cancel", headers=BEARER)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert token_client.delete(f"/api/runs/{run_id}", headers=BEARER).status_code == 204
    listed = token_client.get("/api/runs", headers=BEARER).json()["runs"]
    assert [run["id"] for run in listed] == [finder.json()["id"]]


@pytest.mark.parametrize("path", PUBLIC)
def test_the_page_its_assets_and_health_need_no_token(token_client: TestClient, path: str) -> None:
    assert token_client.get(path).status_code == 200


def test_openapi_declares_the_token_on_protected_routes_only(token_client: TestClient) -> None:
    schema = token_client.get("/openapi.json").json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiToken"] == {**schemes["apiToken"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie"
    launch = schema["paths"]["/api/runs"]["post"]
    assert {"apiToken": []} in launch["security"]
    refusal = launch["responses"]["401"]["content"]["application/json"]["schema"]
    assert refusal["required"] == ["detail"]
    assert "security" not in schema["paths"]["/api/health"]["get"]
    assert token_client.get("/docs").status_code == 200


def test_without_a_token_openapi_declares_no_security(idle_client: TestClient) -> None:
    schema = idle_client.get("/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})


def test_a_session_cookie_is_set_only_for_the_bearer_token(token_client: TestClient) -> None:
    assert token_client.post("/api/session").status_code == 401
    refused = token_client.post("/api/session", headers={"Authorization": "Bearer guessed"})
    assert refused.status_code == 401 and refused.json() == {"detail": TOKEN_REFUSED}
    assert SESSION_COOKIE not in token_client.cookies

    opened = token_client.post("/api/session", headers=BEARER)

    assert opened.status_code == 200
    assert opened.json()["lifetime_seconds"] == 3600
    assert 0 < opened.json()["expires_at"] - time.time() <= 3600
    cookie = opened.headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=strict", "path=/api", "max-age=3600"):
        assert attribute in cookie
    # The cookie alone, as a browser's EventSource or download link sends it, now suffices.
    assert token_client.get("/api/runs").status_code == 200
    assert token_client.post("/api/runs", json=SYNTHETIC).status_code == 201


def last_character_changed(value: str) -> str:
    """The value with its last character replaced by a different one, never by itself."""
    return value[:-1] + ("1" if value.endswith("0") else "0")


@pytest.mark.parametrize(
    "cookie",
    [
        session_value(TOKEN, int(time.time()) - 1),
        session_value("another token", int(time.time()) + 600),
        last_character_changed(session_value(TOKEN, int(time.time()) + 600)),
        "forever.",
        "99999999999999999999.abc",
    ],
    ids=["expired", "other-token", "tampered", "unsigned", "absurd-expiry"],
)
def test_an_expired_or_forged_session_cookie_is_refused(
    token_client: TestClient, cookie: str
) -> None:
    token_client.cookies.set(SESSION_COOKIE, cookie, path="/api")

    response = token_client.get("/api/runs")

    assert response.status_code == 401 and response.json() == {"detail": SESSION_REFUSED}
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_without_a_token_everything_is_open_to_this_machine(idle_client: TestClient) -> None:
    assert idle_client.post("/api/runs", json=SYNTHETIC).status_code == 201
    session = idle_client.post("/api/session")
    assert session.json() == {"expires_at": None, "lifetime_seconds": None}
    assert "set-cookie" not in session.headers


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "lab.example.org"])
def test_a_tokenless_server_refuses_a_non_loopback_address(
    idle_settings: Settings, host: str
) -> None:
    with pytest.raises(ValueError) as refused:
        create_app(idle_settings.model_copy(update={"host": host}))
    assert str(refused.value) == NO_TOKEN_NOTICE


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_need_no_token(idle_settings: Settings, host: str) -> None:
    create_app(idle_settings.model_copy(update={"host": host}))


def test_with_a_token_any_address_is_allowed(token_settings: Settings) -> None:
    create_app(token_settings.model_copy(update={"host": "0.0.0.0"}))


def get_as_client(settings: Settings, client_host: str, headers: dict | None = None) -> int:
    """GET /api/variants as if from client_host (uvicorn puts the peer address in the scope)."""
    # TestClient runs the app in its own thread, so this works beside Playwright's running loop.
    with TestClient(create_app(settings), client=(client_host, 50123)) as client:
        response = client.get("/api/variants", headers=headers)
    if response.status_code == 403:
        assert response.json() == {"detail": LOOPBACK_ONLY}
    return response.status_code


def test_a_tokenless_server_answers_only_loopback_clients(
    idle_settings: Settings, token_settings: Settings
) -> None:
    # Even when uvicorn is started by hand with --host 0.0.0.0, which the app cannot see.
    assert get_as_client(idle_settings, "203.0.113.9") == 403
    assert get_as_client(idle_settings, "::ffff:10.0.0.3") == 403
    assert get_as_client(idle_settings, "127.0.0.1") == 200
    assert get_as_client(idle_settings, "::1") == 200
    assert get_as_client(token_settings, "203.0.113.9", BEARER) == 200


def preflight(client: TestClient, origin: str) -> httpx.Response:
    return client.options(
        "/api/runs",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_closed_when_no_origin_is_listed(token_client: TestClient) -> None:
    response = preflight(token_client, LAB_ORIGIN)

    assert "access-control-allow-origin" not in response.headers
    answer = token_client.get("/api/runs", headers={**BEARER, "Origin": LAB_ORIGIN})
    assert "access-control-allow-origin" not in answer.headers


def test_cors_admits_only_the_listed_origins(token_settings: Settings) -> None:
    settings = token_settings.model_copy(update={"cors_origins": [LAB_ORIGIN]})
    with TestClient(create_app(settings)) as client:
        listed = preflight(client, LAB_ORIGIN)
        unlisted = preflight(client, "https://evil.example.com")
        answer = client.get("/api/runs", headers={**BEARER, "Origin": LAB_ORIGIN})

    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == LAB_ORIGIN
    assert listed.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in listed.headers["access-control-allow-headers"].lower()
    assert unlisted.status_code == 400
    assert "access-control-allow-origin" not in unlisted.headers
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == LAB_ORIGIN


def test_a_wildcard_cors_origin_is_refused(token_settings: Settings) -> None:
    with pytest.raises(ValueError, match="exact origins"):
        create_app(token_settings.model_copy(update={"cors_origins": ["*"]}))
