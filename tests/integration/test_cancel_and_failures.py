"""Cancelling queued and running runs, a failing run and a range test, on the real worker."""

from __future__ import annotations

import time

import httpx

from backend.contract import TASK_QUEUE
from backend.store import RunStore
from tests.support.specs import SMALL_NET
from tests.support.stack import Stack
from tests.support.waiting import wait_for_run

LONG_RUN = {**SMALL_NET, "variant": "selu", "max_epochs": 1000}


def test_cancel_stops_a_running_run_within_moments_and_a_queued_one_at_once(
    api: httpx.Client, stack: Stack, stack_store: RunStore
) -> None:
    running_id = api.post("/api/runs", json={**LONG_RUN, "name": "long"}).json()["id"]
    queued_id = api.post("/api/runs", json={**LONG_RUN, "name": "waiting"}).json()["id"]
    wait_for_run(api, running_id, lambda view: view["epochs_done"] >= 1)

    assert api.get(f"/api/runs/{queued_id}").json()["status"] == "queued"
    refused = api.delete(f"/api/runs/{running_id}")
    assert refused.status_code == 409
    cancelled_queued = api.post(f"/api/runs/{queued_id}/cancel").json()
    assert cancelled_queued["status"] == "cancelled"

    requested = time.monotonic()
    asked = api.post(f"/api/runs/{running_id}/cancel").json()
    final = wait_for_run(api, running_id, lambda view: view["status"] != "running", timeout=60)
    stopped_after = time.monotonic() - requested

    assert asked["status"] == "running" and asked["cancel_requested"]
    assert final["status"] == "cancelled" and final["error"] is None
    # One batch, then the engine evaluates the best weights on the test set and saves them.
    assert stopped_after < 20
    assert final["summary"]["cancelled"] and final["epochs_done"] >= 1
    assert len(api.get(f"/api/runs/{running_id}/metrics").json()["epochs"]) == final["epochs_done"]
    model_file = stack.var_dir / final["summary"]["model_path"]
    assert model_file.is_file()

    # The worker takes the cancelled run's message next and must leave it alone.
    deadline = time.monotonic() + 30
    while stack_store.redis.llen(TASK_QUEUE) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    untouched = api.get(f"/api/runs/{queued_id}").json()
    assert untouched["status"] == "cancelled" and untouched["started_at"] is None

    assert api.post(f"/api/runs/{running_id}/cancel").status_code == 409
    assert api.delete(f"/api/runs/{running_id}").status_code == 204
    assert not model_file.exists()
    assert api.get(f"/api/runs/{running_id}/metrics").status_code == 404


def test_a_run_whose_dataset_is_missing_fails_with_a_sentence_naming_the_path(
    api: httpx.Client,
) -> None:
    spec = {**SMALL_NET, "variant": "baseline", "dataset": "cifar10", "max_epochs": 2}
    run_id = api.post("/api/runs", json=spec).json()["id"]

    final = wait_for_run(api, run_id)

    assert final["status"] == "failed" and final["finished_at"] is not None
    assert "no-cifar10-here" in final["error"] and final["error"].endswith(".")


def test_a_range_test_run_returns_its_loss_against_rate_curve(api: httpx.Client) -> None:
    spec = {key: SMALL_NET[key] for key in ("dataset", "depth", "width", "batch_size")}
    response = api.post("/api/lr-finder", json={**spec, "variant": "selu", "max_steps": 20})
    run_id = response.json()["id"]

    final = wait_for_run(api, run_id)

    assert final["status"] == "succeeded", final["error"]
    result = final["lr_finder"]
    assert final["kind"] == "lr_finder" and 0 < len(result["learning_rates"]) <= 20
    assert len(result["losses"]) == len(result["learning_rates"])
    assert result["learning_rates"] == sorted(result["learning_rates"])
    assert result["suggested_learning_rate"] > 0
