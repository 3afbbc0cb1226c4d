"""The API sweeps for runs of lost workers too: with no worker alive at all, a run whose
worker died goes back to the queue (or fails after too many losses) instead of showing
`running` until some worker starts again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.contract import TASK_QUEUE
from backend.main import create_app
from backend.run_leases import Lease
from backend.settings import Settings
from backend.store import RunStore
from tests.support.processes import RedisServer

SWEEP_SECONDS = 0.2
LAUNCH = {"variant": "selu", "dataset": "synthetic", "max_epochs": 3}


@pytest.fixture
def reaping_settings(idle_redis: RedisServer, tmp_path: Path) -> Settings:
    return idle_redis.fresh_settings(
        tmp_path / "var",
        heartbeat_seconds=SWEEP_SECONDS,
        worker_lost_after_seconds=1.0,
        max_worker_losses=2,
    )


@pytest.fixture
def client_and_store(reaping_settings: Settings) -> Iterator[tuple[TestClient, RunStore]]:
    store = RunStore.from_settings(reaping_settings)
    with TestClient(create_app(reaping_settings)) as client:
        yield client, store
    store.close()


def taken_by_a_worker(store: RunStore, run_id: str, ttl_seconds: float) -> None:
    """What a worker does when it starts the run: a lease that its heartbeat would renew."""
    lease = Lease.new(run_id, "celery@vanished", ttl_seconds)
    store.leases.start(lease, "celery@vanished", "CPU")


def launched_and_taken(client: TestClient, store: RunStore, ttl_seconds: float) -> str:
    """A run launched through the API and started by a worker that holds it for ttl_seconds."""
    run_id = str(client.post("/api/runs", json=LAUNCH).json()["id"])
    taken_by_a_worker(store, run_id, ttl_seconds)
    return run_id


def poll_run(client: TestClient, run_id: str, until_status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["status"] == until_status or time.monotonic() > deadline:
            return run
        time.sleep(SWEEP_SECONDS / 2)


def test_a_run_whose_worker_vanished_is_queued_again_by_the_api_alone(
    client_and_store: tuple[TestClient, RunStore],
) -> None:
    client, store = client_and_store
    run_id = launched_and_taken(client, store, ttl_seconds=0.5)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"

    run = poll_run(client, run_id, "queued")

    assert run["status"] == "queued" and run["worker_losses"] == 1
    assert "worker loss 1 of 2" in run["note"]
    # The launch's task and the one the sweep sent again, for the next worker to resume.
    assert store.redis.llen(TASK_QUEUE) == 2
    assert store.workers.seen_within(60) == []


def test_a_second_loss_fails_the_run_with_a_sentence(
    client_and_store: tuple[TestClient, RunStore],
) -> None:
    client, store = client_and_store
    run_id = launched_and_taken(client, store, ttl_seconds=0.3)
    assert poll_run(client, run_id, "queued")["status"] == "queued"
    taken_by_a_worker(store, run_id, ttl_seconds=0.3)

    run = poll_run(client, run_id, "failed")

    assert run["status"] == "failed" and run["worker_losses"] == 2
    assert run["error"].startswith("Worker lost") and run["error"].endswith(".")


def test_a_run_whose_worker_still_holds_its_lease_is_left_running(
    client_and_store: tuple[TestClient, RunStore],
) -> None:
    client, store = client_and_store
    run_id = launched_and_taken(client, store, ttl_seconds=60)

    time.sleep(5 * SWEEP_SECONDS)

    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "running" and run["worker_losses"] == 0
