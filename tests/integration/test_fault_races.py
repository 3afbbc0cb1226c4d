"""Cancel and delete racing with a worker's epoch ends, starts and finishes: no half-written run.

Threads play the worker and the user against a real Valkey, many times over, so that every
interleaving the transactions allow has a chance to happen.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.contract import (
    ACTIVE_RUNS_KEY,
    EVENTS_KEY,
    EpochMetrics,
    RunStatus,
    SeluSpec,
    run_key,
    run_lease_key,
    run_metrics_key,
)
from backend.run_leases import Lease, StartOutcome
from backend.store import RunStateError, RunStore
from tests.support.processes import RedisServer

ROUNDS = 40


@pytest.fixture
def race_store(idle_redis: RedisServer, tmp_path: Path) -> RunStore:
    client = idle_redis.client()
    client.flushdb()
    return RunStore(client, tmp_path / "var")


def metrics(epoch: int) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, loss=1.0, accuracy=0.5, val_loss=2.0 / epoch, val_accuracy=0.1 * epoch,
        learning_rate=1e-3, epoch_seconds=0.1, elapsed_seconds=0.1 * epoch,
    )  # fmt: skip


def race(*actions: Callable[[], None]) -> None:
    """Runs the actions at the same moment, each in its own thread."""
    gate = threading.Barrier(len(actions))
    errors: list[BaseException] = []

    def run(action: Callable[[], None]) -> None:
        gate.wait()
        try:
            action()
        except BaseException as error:  # Re-raised in the test's thread below.
            errors.append(error)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def assert_consistent(store: RunStore, run_id: str) -> dict[str, str]:
    """The hash, the metrics stream and the run's events tell the same story."""
    fields = store.redis.hgetall(run_key(run_id))
    stream = [int(entry_id.split("-")[0]) for entry_id, _ in store.redis.xrange(
        run_metrics_key(run_id)
    )]  # fmt: skip
    assert stream == list(range(1, int(fields["epochs_done"]) + 1))
    events = [
        (fields_["type"], json.loads(fields_["data"]))
        for _id, fields_ in store.redis.xrange(EVENTS_KEY)
    ]
    of_run = [
        (kind, data) for kind, data in events if (data.get("id") or data.get("run_id")) == run_id
    ]
    epoch_events = [data["metrics"]["epoch"] for kind, data in of_run if kind == "epoch"]
    assert epoch_events == stream
    last_view = [data for kind, data in of_run if kind == "run"][-1]
    assert last_view["status"] == fields["status"]
    if RunStatus(fields["status"]).finished:
        # Nothing of the run's may follow its final announcement.
        assert of_run[-1] == ("run", last_view)
        assert not store.redis.exists(run_lease_key(run_id))
        assert store.redis.zscore(ACTIVE_RUNS_KEY, run_id) is None
    return fields


def cancel_round(store: RunStore, epochs: int) -> None:
    run_id = store.create_run(SeluSpec(max_epochs=50)).id
    lease = Lease.new(run_id, "celery@race", 60)
    store.leases.start(lease, "celery@race", "CPU")
    refused: list[RunStateError] = []

    def worker() -> None:
        # Like the engine: report each epoch, stop at the first cancel it sees, then finish.
        status = RunStatus.succeeded
        for epoch in range(1, epochs + 1):
            store.record_epoch(run_id, metrics(epoch), lease)
            if store.is_cancel_requested(run_id):
                status = RunStatus.cancelled
                break
        store.finish_run(run_id, status, lease=lease)

    def cancel() -> None:
        try:
            store.request_cancel(run_id)
        except RunStateError as error:
            refused.append(error)

    race(worker, cancel)

    fields = assert_consistent(store, run_id)
    if refused:
        assert fields["status"] == "succeeded" and fields["cancel_requested"] == "0"
    else:
        # A cancel that lands after the last epoch's check lets the run succeed.
        assert fields["status"] in ("cancelled", "succeeded")
        assert fields["cancel_requested"] == "1"


def test_a_cancel_racing_an_epoch_end_leaves_stream_hash_and_events_in_agreement(
    race_store: RunStore,
) -> None:
    for round_number in range(ROUNDS):
        cancel_round(race_store, epochs=1 + round_number % 4)


def delete_round(store: RunStore) -> str:
    """A worker's start against a user's delete; returns which of them won."""
    run_id = store.create_run(SeluSpec(max_epochs=5)).id
    lease = Lease.new(run_id, "celery@race", 60)
    started: list[StartOutcome] = []
    refused: list[RunStateError] = []

    def delete() -> None:
        try:
            store.delete_run(run_id)
        except RunStateError as error:
            refused.append(error)

    race(lambda: started.append(store.leases.start(lease, "w", "CPU").outcome), delete)

    if refused:
        assert started == [StartOutcome.started]
        assert store.require_run(run_id).status is RunStatus.running
        assert store.redis.exists(run_lease_key(run_id))
        return "start"
    assert started == [StartOutcome.deleted]
    assert not store.redis.exists(run_key(run_id), run_lease_key(run_id))
    assert store.redis.zscore(ACTIVE_RUNS_KEY, run_id) is None
    return "delete"


def test_a_delete_racing_a_workers_start_either_wins_whole(race_store: RunStore) -> None:
    winners = {delete_round(race_store) for _ in range(ROUNDS)}

    # Which side wins is up to the scheduler; each round checked that the winner won whole.
    assert winners <= {"start", "delete"}


def finish_round(store: RunStore) -> None:
    run_id = store.create_run(SeluSpec(max_epochs=5)).id
    store.mark_running(run_id, "celery@legacy", "CPU")
    store.record_epoch(run_id, metrics(1))

    race(
        lambda: store.record_epoch(run_id, metrics(2)),
        lambda: store.finish_run(run_id, RunStatus.failed, error="Stopped by the test."),
    )
    assert_consistent(store, run_id)


def test_an_epoch_after_the_final_status_is_never_recorded(race_store: RunStore) -> None:
    for _ in range(ROUNDS):
        finish_round(race_store)
