"""Redis restarted in the middle of a run: the worker rides it out and the API says why it
cannot answer meanwhile, then recovers without a restart of its own."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from backend.contract import EVENTS_KEY
from tests.support.specs import SMALL_NET
from tests.support.sse import open_event_stream, read_until, run_finished
from tests.support.stack import running_stack
from tests.support.waiting import wait_for_run

# Longer than the outage, so that the restart is ridden out rather than reaped as a loss.
ENV = {"CURVELAB_HEARTBEAT_SECONDS": "0.5", "CURVELAB_WORKER_LOST_AFTER_SECONDS": "30"}
EPOCHS = 8
OUTAGE_SECONDS = 3.0


def test_a_run_survives_a_redis_restart_with_every_epoch_and_the_api_answers_503_meanwhile(
    tmp_path: Path,
) -> None:
    with running_stack(tmp_path, redis_db=9, extra_env=ENV) as stack:
        if not stack.redis.embedded:
            pytest.skip("CURVELAB_REDIS_URL names a server these tests cannot restart.")
        api = httpx.Client(base_url=stack.url, timeout=30)
        spec = {**SMALL_NET, "variant": "selu", "batch_size": 16, "max_epochs": EPOCHS}
        run_id = api.post("/api/runs", json=spec).json()["id"]
        wait_for_run(api, run_id, lambda view: view["epochs_done"] >= 2)
        redis_client = stack.redis.client()
        [(before_outage, _fields)] = redis_client.xrevrange(EVENTS_KEY, count=1)
        redis_client.close()

        with stack.redis.stopped():
            went_down = time.monotonic()
            while_down = api.get(f"/api/runs/{run_id}")
            launch_while_down = api.post("/api/runs", json=spec)
            health_while_down = api.get("/api/health")
            answered_after = time.monotonic() - went_down
            time.sleep(max(OUTAGE_SECONDS - answered_after, 0))

        final = wait_for_run(api, run_id, timeout=180)
        epochs = api.get(f"/api/runs/{run_id}/metrics").json()["epochs"]
        # A browser reconnecting with the last id it saw gets everything since, in order.
        with open_event_stream(api, before_outage) as response:
            replayed = read_until(response.iter_lines(), run_finished(run_id), 30)
        # The worker reconnected to the broker too: it trains the next run.
        after = api.post("/api/runs", json={**spec, "max_epochs": 1}).json()["id"]
        next_run = wait_for_run(api, after, timeout=120)
        api.close()

    assert while_down.status_code == 503 and launch_while_down.status_code == 503
    detail = while_down.json()["detail"]
    assert detail.startswith("Redis is not reachable") and detail.endswith(".")
    assert health_while_down.json() == {"redis": False, "workers": [], "status": "degraded"}
    assert answered_after < 15
    assert final["status"] == "succeeded", final["error"]
    assert [metrics["epoch"] for metrics in epochs] == list(range(1, EPOCHS + 1))
    assert final["epochs_done"] == EPOCHS and final["worker_losses"] == 0
    assert next_run["status"] == "succeeded", next_run["error"]
    replayed_epochs = [
        event.json()["metrics"]["epoch"]
        for event in replayed
        if event.type == "epoch" and event.json()["run_id"] == run_id
    ]
    assert replayed_epochs == list(range(replayed_epochs[0], EPOCHS + 1))
