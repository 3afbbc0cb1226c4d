"""Run names are shown as text, and the server's validation errors land next to their fields."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from backend.contract import run_key
from tests.browser.dashboard import SMALL_NET, Dashboard
from tests.support.stack import Stack
from tests.support.waiting import wait_for_run

HOSTILE_NAME = "<img src=x onerror=alert(1)>"


def test_a_run_named_like_html_is_shown_as_that_text_everywhere(dashboard: Dashboard) -> None:
    dashboard.open()
    dashboard.set_fields({**SMALL_NET, "max_epochs": "1", "name": HOSTILE_NAME})

    run_id = dashboard.launch("Train baseline")

    expect(dashboard.row(run_id).locator(".run-name")).to_have_text(HOSTILE_NAME)
    dashboard.wait_for_status(run_id, "succeeded")
    dashboard.wait_for_curve_points("chart-val_accuracy", run_id, 1)
    legend = dashboard.page.locator("#chart-val_accuracy .legendtext").all_text_contents()
    assert HOSTILE_NAME in legend
    assert dashboard.page.locator("img").count() == 0
    # The dialog guard of the page fixture fails the test if alert(1) ever ran.


def test_a_refused_parameter_shows_the_server_message_next_to_it_and_starts_nothing(
    dashboard: Dashboard, api: httpx.Client
) -> None:
    runs_before = len(api.get("/api/runs").json()["runs"])
    dashboard.open()
    dashboard.set_fields({**SMALL_NET, "learning_rate": "-1", "max_epochs": "0"})

    dashboard.page.get_by_role("button", name="Train SELU", exact=True).click()

    learning_rate_error = dashboard.page.locator("#error-learning_rate")
    expect(learning_rate_error).to_contain_text("greater than 0")
    expect(dashboard.page.locator("#error-max_epochs")).to_contain_text("greater than or equal")
    expect(dashboard.page.locator("#field-learning_rate")).to_have_attribute("aria-invalid", "true")
    expect(dashboard.page.locator("#error-depth")).to_be_empty()
    assert len(api.get("/api/runs").json()["runs"]) == runs_before

    dashboard.set_field("learning_rate", "0.001")
    dashboard.set_field("max_epochs", "1")
    dashboard.page.locator("#field-max_epochs").press("Enter")
    expect(learning_rate_error).to_be_empty()


def test_a_run_that_lost_workers_says_so_in_its_row(
    dashboard: Dashboard, api: httpx.Client, browser_stack: Stack
) -> None:
    small = {key: int(value) if value.isdigit() else value for key, value in SMALL_NET.items()}
    run_id = api.post("/api/runs", json={**small, "variant": "selu", "max_epochs": 1}).json()["id"]
    wait_for_run(api, run_id, timeout=300)
    client = browser_stack.redis.client()
    try:
        # The counts the leases write when a worker is lost and its run is taken up again.
        client.hset(run_key(run_id), mapping={"resumes": 2, "worker_losses": 1})
    finally:
        client.close()

    dashboard.open()

    expect(dashboard.row(run_id).locator(".run-history")).to_have_text("resumed 2× · 1 worker lost")
    histories = dashboard.page.locator("#runs-table .run-history").all_text_contents()
    # Runs that never lost a worker show nothing there.
    assert [text for text in histories if text] == ["resumed 2× · 1 worker lost"]
