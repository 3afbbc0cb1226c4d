"""The worker side of leases against a real Valkey: the keeper's renewals, the reaper's sweep
(the task really lands in the broker's queue), fenced reporting."""

from __future__ import annotations

import base64
import json
import time

from backend.contract import TASK_NAME, TASK_QUEUE, EpochMetrics, RunStatus, SeluSpec
from backend.reaper import Reaper
from backend.run_files import checkpoint_dir
from backend.run_leases import Lease
from backend.settings import Settings
from backend.store import RunStore
from worker.leases import LeaseKeeper
from worker.redis_reporter import RedisReporter


def started(store: RunStore, ttl_seconds: float = 60.0) -> Lease:
    run_id = store.create_run(SeluSpec(max_epochs=3)).id
    lease = Lease.new(run_id, "celery@unit", ttl_seconds)
    store.leases.start(lease, "celery@unit", "CPU")
    return lease


def queued_tasks(store: RunStore) -> list[tuple[str, list[str]]]:
    """(task name, args) of each message waiting in the broker's training queue."""
    tasks = []
    for raw in store.redis.lrange(TASK_QUEUE, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        tasks.append((message["headers"]["task"], args))
    return tasks


def test_the_sweep_requeues_a_lost_run_and_sends_its_task_by_name(
    store: RunStore, store_settings: Settings
) -> None:
    lease = started(store)
    store.redis.delete(lease.key)

    outcome = Reaper(store, store_settings).sweep()

    assert outcome == {lease.run_id: RunStatus.queued}
    assert queued_tasks(store) == [(TASK_NAME, [lease.run_id])]
    assert store.leases.requeued_unsent(0) == []
    assert Reaper(store, store_settings).sweep() == {}
    assert len(queued_tasks(store)) == 1


def test_the_sweep_fails_a_run_lost_too_often_and_removes_its_checkpoint(
    store: RunStore, store_settings: Settings
) -> None:
    settings = store_settings.model_copy(update={"max_worker_losses": 1})
    lease = started(store)
    folder = checkpoint_dir(settings.var_dir, lease.run_id)
    folder.mkdir(parents=True)
    store.redis.delete(lease.key)

    assert Reaper(store, settings).sweep() == {lease.run_id: RunStatus.failed}

    assert not folder.exists() and queued_tasks(store) == []
    assert store.require_run(lease.run_id).error is not None


def test_a_requeue_whose_sender_died_is_sent_by_the_next_sweep(
    store: RunStore, store_settings: Settings
) -> None:
    settings = store_settings.model_copy(update={"worker_lost_after_seconds": 0.2})
    lease = started(store)
    store.redis.delete(lease.key)
    # The reaper that won the transaction died before sending the task.
    store.leases.reap_lost(60, max_losses=2)
    time.sleep(0.3)

    Reaper(store, settings).sweep()

    assert queued_tasks(store) == [(TASK_NAME, [lease.run_id])]


def test_the_keeper_renews_until_the_lease_is_taken_away(store: RunStore) -> None:
    lease = started(store, ttl_seconds=0.6)
    with LeaseKeeper(store, lease, interval_seconds=0.1) as keeper:
        time.sleep(0.8)
        assert not keeper.lost.is_set() and store.redis.exists(lease.key)
        store.redis.set(lease.key, "celery@other#1")
        deadline = time.monotonic() + 2
        while not keeper.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)

    assert keeper.lost.is_set()
    assert store.redis.get(lease.key) == "celery@other#1"


def test_a_reporter_that_lost_the_lease_stops_the_run_and_writes_nothing(
    store: RunStore,
) -> None:
    lease = started(store)
    keeper = LeaseKeeper(store, lease, interval_seconds=30)
    metrics = EpochMetrics(
        epoch=1, loss=1.0, accuracy=0.5, val_loss=0.9, val_accuracy=0.6,
        learning_rate=1e-3, epoch_seconds=0.5, elapsed_seconds=0.5,
    )  # fmt: skip
    with RedisReporter(store, lease.run_id, lease_keeper=keeper) as reporter:
        store.redis.delete(lease.key)
        reporter.on_epoch(metrics)

        assert reporter.lease_lost and reporter.cancel_requested()
        assert not reporter.cancelled_by_user

    assert store.get_metrics(lease.run_id) == []
