"""Launching from the page and watching a run arrive live, without polling or reloading."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from backend.contract import RunStatus, run_key
from tests.browser.dashboard import SMALL_NET, Dashboard
from tests.support.processes import start_api
from tests.support.stack import Stack
from tests.support.waiting import wait_for_run

STARTUP_MILLISECONDS = 60_000


def test_train_selu_shows_a_row_that_runs_then_succeeds_with_three_live_points(
    dashboard: Dashboard,
) -> None:
    dashboard.open()
    dashboard.set_fields({**SMALL_NET, "max_epochs": "3"})
    dashboard.mark_page()
    dashboard.record_statuses()

    run_id = dashboard.launch("Train SELU")

    expect(dashboard.row(run_id)).to_be_visible()
    dashboard.wait_for_status(run_id, "succeeded")
    curve = dashboard.wait_for_curve_points("chart-val_accuracy", run_id, 3)
    assert curve["x"] == [1, 2, 3]
    assert all(0.0 <= value <= 1.0 for value in curve["y"])
    assert "running" in dashboard.statuses_seen(run_id)
    assert dashboard.statuses_seen(run_id)[-1] == "succeeded"
    assert dashboard.still_same_page(), "the page reloaded to show the new epochs"
    row_text = dashboard.row(run_id).inner_text()
    assert "3 of at most 3 epochs" in row_text and "selu" in row_text


def test_cancel_button_stops_a_running_run(dashboard: Dashboard, api: httpx.Client) -> None:
    dashboard.open()
    dashboard.set_fields({**SMALL_NET, "max_epochs": "1000", "name": "to be cancelled"})
    run_id = dashboard.launch("Train baseline")
    try:
        dashboard.wait_for_status(run_id, "running")
        row = dashboard.row(run_id)
        # The first epoch includes TensorFlow's tracing, so the estimate may take a while.
        expect(row.locator(".time-left")).to_contain_text("at most", timeout=STARTUP_MILLISECONDS)
        expect(row.locator(".progress-text")).to_contain_text("of at most 1000")

        row.get_by_role("button", name="Cancel").click()

        dashboard.wait_for_status(run_id, "cancelled", timeout=STARTUP_MILLISECONDS)
    finally:
        # A run left going would hold the only worker for the rest of the session.
        if not RunStatus(api.get(f"/api/runs/{run_id}").json()["status"]).finished:
            api.post(f"/api/runs/{run_id}/cancel")
    expect(row.get_by_role("button", name="Cancel")).to_be_disabled()
    assert api.get(f"/api/runs/{run_id}").json()["status"] == "cancelled"
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert api.get(f"/api/runs/{run_id}").status_code == 404


def test_the_page_catches_up_with_epochs_missed_while_the_api_was_down(
    dashboard: Dashboard, browser_stack: Stack, api: httpx.Client
) -> None:
    dashboard.open()
    dashboard.set_fields({**SMALL_NET, "max_epochs": "30", "patience": "1000"})
    dashboard.mark_page()
    run_id = dashboard.launch("Train SELU")
    seen_before = len(dashboard.wait_for_curve_points("chart-val_accuracy", run_id, 1)["x"])

    port = int(browser_stack.api.url.rsplit(":", 1)[1])
    browser_stack.api.kill()
    store_client = browser_stack.redis.client()
    try:
        # Let the worker record epochs that no browser hears about.
        for _ in range(600):
            done = int(store_client.hget(run_key(run_id), "epochs_done") or 0)
            if done >= seen_before + 2:
                break
            dashboard.page.wait_for_timeout(100)
    finally:
        store_client.close()
        browser_stack.api = start_api(browser_stack.env, browser_stack.api.log_path, port=port)
    assert done >= seen_before + 2

    final = wait_for_run(api, run_id, timeout=300)
    assert final["status"] == RunStatus.succeeded.value
    curve = dashboard.wait_for_curve_points("chart-val_accuracy", run_id, final["epochs_done"])
    assert curve["x"] == list(range(1, final["epochs_done"] + 1))
    dashboard.wait_for_status(run_id, "succeeded", timeout=30_000)
    assert dashboard.still_same_page()
