"""RedisReporter against a real Valkey: epochs stored, cancels heard within moments."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from backend.contract import BatchProgress, EpochMetrics, RunStatus, SeluSpec
from backend.store import RunStore
from worker.redis_reporter import RedisReporter


def started_run(store: RunStore) -> str:
    run_id = store.create_run(SeluSpec(max_epochs=3)).id
    store.mark_running(run_id, "celery@test", "CPU")
    return run_id


def wait_until(condition: Callable[[], bool], seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_the_reporter_stores_epochs_and_progress(store: RunStore) -> None:
    run_id = started_run(store)
    metrics = EpochMetrics(
        epoch=1, loss=1.0, accuracy=0.5, val_loss=0.9, val_accuracy=0.6,
        learning_rate=1e-3, epoch_seconds=0.5, elapsed_seconds=0.5,
    )  # fmt: skip

    with RedisReporter(store, run_id) as reporter:
        reporter.on_progress(BatchProgress(epoch=1, batches_done=3, batches_total=4))
        reporter.on_epoch(metrics)
        assert not reporter.cancel_requested()

    view = store.require_run(run_id)
    assert store.get_metrics(run_id) == [metrics]
    assert view.epochs_done == 1 and view.progress is not None and view.progress.batches_done == 3


def test_a_cancel_request_reaches_the_reporter_within_a_fraction_of_a_second(
    store: RunStore,
) -> None:
    run_id = started_run(store)
    with RedisReporter(store, run_id) as reporter:
        assert not reporter.cancel_requested()
        requested = time.monotonic()
        store.request_cancel(run_id)
        assert wait_until(reporter.cancel_requested)
        heard_after = time.monotonic() - requested
        assert reporter.cancelled_by_user

    assert heard_after < 0.5


def test_a_cancel_made_before_the_reporter_started_is_not_missed(store: RunStore) -> None:
    run_id = started_run(store)
    store.request_cancel(run_id)

    with RedisReporter(store, run_id) as reporter:
        assert reporter.cancel_requested() and reporter.cancelled_by_user


def test_a_worker_shutdown_stops_training_without_counting_as_a_user_cancel(
    store: RunStore,
) -> None:
    run_id = started_run(store)
    stopping = threading.Event()
    with RedisReporter(store, run_id, stopping) as reporter:
        stopping.set()
        assert reporter.cancel_requested() and not reporter.cancelled_by_user
    assert store.require_run(run_id).status is RunStatus.running
