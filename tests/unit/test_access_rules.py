"""The pure rules of backend/access.py: loopback addresses, bearer headers, session values."""

from __future__ import annotations

import pytest

from backend.access import (
    bearer_token,
    is_loopback_host,
    is_public,
    session_is_valid,
    session_value,
)

TOKEN = "token-of-the-unit-tests"
NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost.example.org", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("Bearer  abc ", "abc"),
        ("Basic YWJjOmRlZg==", None),
        ("abc", None),
        (None, None),
    ],
)
def test_bearer_token_of_an_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_session_value_holds_until_its_expiry_for_its_token_only() -> None:
    value = session_value(TOKEN, NOW + 60)

    assert session_is_valid(TOKEN, value, now=NOW)
    assert session_is_valid(TOKEN, value, now=NOW + 59)
    assert not session_is_valid(TOKEN, value, now=NOW + 60)
    assert not session_is_valid("another token", value, now=NOW)


def test_a_session_value_cannot_be_extended_without_the_token() -> None:
    _expiry, _, signature = session_value(TOKEN, NOW + 60).partition(".")

    assert not session_is_valid(TOKEN, f"{NOW + 10**6}.{signature}", now=NOW)


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/", True),
        ("/static/js/main.js", True),
        ("/vendor/plotly.min.js", True),
        ("/api/health", True),
        ("/api/session", True),
        ("/api/runs", False),
        ("/api/events", False),
        ("/api/health/", False),
        ("/static", False),
        ("/anything-new", False),
    ],
)
def test_only_the_page_its_assets_docs_and_health_are_public(path: str, public: bool) -> None:
    assert is_public(path) is public
