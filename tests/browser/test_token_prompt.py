"""A server started with an API token: the page asks for it once, then works and streams live."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.dashboard import Dashboard
from tests.support.stack import Stack, running_stack

TOKEN = "dashboard-token-for-the-browser-test"
TOKEN_REDIS_DB = 5


@pytest.fixture(scope="module")
def token_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Valkey and uvicorn with CURVELAB_API_TOKEN; no worker, so launched runs stay queued."""
    base = tmp_path_factory.mktemp("browser-token-stack")
    extra = {"CURVELAB_API_TOKEN": TOKEN}
    with running_stack(base, with_worker=False, redis_db=TOKEN_REDIS_DB, extra_env=extra) as stack:
        yield stack


def give_token(page: Page, token: str) -> None:
    page.get_by_label("API token", exact=True).fill(token)
    page.get_by_role("button", name="Use token").click()


def test_the_page_asks_for_the_token_then_launches_and_streams_with_it(
    page: Page, token_stack: Stack
) -> None:
    dashboard = Dashboard(page, token_stack.url)
    page.goto(f"{token_stack.url}/")
    expect(page.get_by_role("heading", name="This server needs its API token")).to_be_visible()
    expect(page.locator("#connection")).to_have_text("token needed")

    give_token(page, "a guess")
    expect(page.get_by_role("alert")).to_contain_text("was not accepted")

    give_token(page, TOKEN)
    expect(page.get_by_role("button", name="Train SELU")).to_be_visible()
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#access")).to_be_hidden()
    # The session cookie is HttpOnly: no script on the page can read it.
    assert "curvelab_session" not in page.evaluate("() => document.cookie")

    run_id = dashboard.launch("Train SELU")
    dashboard.wait_for_status(run_id, "queued", timeout=10_000)
    # A run launched elsewhere arrives through the event stream, which only the cookie opens.
    launched = httpx.post(
        f"{token_stack.url}/api/runs",
        json={"variant": "batchnorm", "dataset": "synthetic", "name": "from a script"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert launched.status_code == 201
    expect(dashboard.row(launched.json()["id"])).to_be_visible(timeout=10_000)
