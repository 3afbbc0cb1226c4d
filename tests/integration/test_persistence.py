"""Runs outlive the processes: a new API process and a restarted Valkey keep every run."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from backend.contract import BatchProgress, EpochMetrics, SeluSpec
from backend.settings import Settings
from backend.store import RunStore
from tests.support.processes import RedisServer, start_api
from tests.support.stack import Stack


def test_a_restarted_api_process_serves_every_run(
    api: httpx.Client, stack: Stack, stack_store: RunStore, tmp_path: Path
) -> None:
    # A run that no worker will touch, so that the listing holds still between the two reads.
    stack_store.request_cancel(stack_store.create_run(SeluSpec(name="kept")).id)
    before = api.get("/api/runs").json()["runs"]

    restarted = start_api(stack.env, tmp_path / "api-restarted.log")
    try:
        after = httpx.get(f"{restarted.url}/api/runs", timeout=30).json()["runs"]
    finally:
        restarted.stop()

    assert after == before and len(after) >= 1


def test_a_restarted_valkey_keeps_runs_and_metrics_from_its_append_only_file(
    idle_redis: RedisServer, idle_settings: Settings
) -> None:
    if not idle_redis.embedded:
        pytest.skip("CURVELAB_REDIS_URL names a server these tests cannot restart.")
    store = RunStore.from_settings(idle_settings)
    run_ids = [store.create_run(SeluSpec(name=f"run {index}")).id for index in range(3)]
    store.mark_running(run_ids[0], "celery@test", "CPU")
    store.record_progress(run_ids[0], BatchProgress(epoch=2, batches_done=1, batches_total=9))
    for epoch in (1, 2):
        store.record_epoch(
            run_ids[0],
            EpochMetrics(
                epoch=epoch, loss=1.0, accuracy=0.5, val_loss=1.0 / epoch, val_accuracy=0.5,
                learning_rate=1e-3, epoch_seconds=1.0, elapsed_seconds=float(epoch),
            ),
        )  # fmt: skip
    before = (store.list_runs(), store.get_metrics(run_ids[0]))
    store.close()

    idle_redis.restart()

    reopened = RunStore.from_settings(idle_settings)
    try:
        assert (reopened.list_runs(), reopened.get_metrics(run_ids[0])) == before
    finally:
        reopened.close()
