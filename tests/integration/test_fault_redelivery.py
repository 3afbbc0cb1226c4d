"""A run longer than the broker's visibility timeout is trained exactly once.

With Redis as the broker, an unacknowledged task goes back to the queue after the visibility
timeout even while its first copy still runs (celery#5935, kombu#337); a second worker then
receives it. The run's lease must make that worker skip it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from backend.contract import EVENTS_KEY, run_key
from tests.support.processes import start_workers
from tests.support.specs import SMALL_NET
from tests.support.stack import running_stack
from tests.support.waiting import wait_for_run

VISIBILITY_TIMEOUT_SECONDS = 2
ENV = {
    "CURVELAB_BROKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT_SECONDS),
    "CURVELAB_HEARTBEAT_SECONDS": "0.5",
    "CURVELAB_WORKER_LOST_AFTER_SECONDS": "4",
}
WAIT_SECONDS = 120.0


def running_transitions(redis_client: object, run_id: str) -> int:
    """How many times the event stream announced the run as running: once per training."""
    entries = redis_client.xrange(EVENTS_KEY)  # type: ignore[attr-defined]
    views = [json.loads(fields["data"]) for _id, fields in entries if fields["type"] == "run"]
    statuses = [view["status"] for view in views if view["id"] == run_id]
    return sum(
        1
        for before, now in zip(["queued", *statuses[:-1]], statuses, strict=True)
        if now == "running" and before != "running"
    )


def test_a_task_redelivered_while_it_trains_is_skipped_by_the_other_worker(
    tmp_path: Path,
) -> None:
    with running_stack(tmp_path, with_worker=False, redis_db=8, extra_env=ENV) as stack:
        logs = tmp_path / "logs"
        workers = start_workers(stack.env, [logs / "worker-a.log", logs / "worker-b.log"])
        api = httpx.Client(base_url=stack.url, timeout=30)
        redis_client = stack.redis.client()
        try:
            spec = {**SMALL_NET, "variant": "selu", "batch_size": 16, "max_epochs": 1000}
            run_id = api.post("/api/runs", json=spec).json()["id"]
            trainer = wait_for_run(api, run_id, lambda view: view["status"] == "running")
            deadline = time.monotonic() + WAIT_SECONDS
            while not redis_client.hget(run_key(run_id), "skipped_deliveries"):
                assert time.monotonic() < deadline, "The broker never redelivered the task."
                time.sleep(0.2)
            # A few more epochs after the duplicate, then stop the long run.
            seen = wait_for_run(api, run_id, lambda view: view["epochs_done"] >= 1)["epochs_done"]
            wait_for_run(api, run_id, lambda view: view["epochs_done"] >= seen + 2)
            api.post(f"/api/runs/{run_id}/cancel")
            final = wait_for_run(api, run_id, timeout=60)
            # Whatever the broker still holds for the run arrives and is skipped meanwhile.
            time.sleep(2 * VISIBILITY_TIMEOUT_SECONDS + 1)
            epochs = api.get(f"/api/runs/{run_id}/metrics").json()["epochs"]
            transitions = running_transitions(redis_client, run_id)
            skipped = int(redis_client.hget(run_key(run_id), "skipped_deliveries") or 0)
            after = api.get(f"/api/runs/{run_id}").json()
        finally:
            redis_client.close()
            api.close()
            for worker in workers:
                worker.stop()

    other = next(worker for worker in workers if worker.name != trainer["worker"])
    assert skipped >= 1 and "already being trained by a live worker" in other.log_tail(20_000)
    assert transitions == 1
    assert final["status"] == "cancelled" and final["worker"] == trainer["worker"]
    assert [metrics["epoch"] for metrics in epochs] == list(range(1, final["epochs_done"] + 1))
    assert after == final
