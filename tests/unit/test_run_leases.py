"""Run leases against a real Valkey: one trainer per run, fenced writes, reaping lost workers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from backend.contract import (
    ACTIVE_RUNS_KEY,
    REQUEUED_RUNS_KEY,
    ActivationStatistics,
    BatchProgress,
    EpochMetrics,
    RunStatus,
    SeluSpec,
    run_lease_key,
)
from backend.run_files import checkpoint_dir
from backend.run_leases import Lease, StartOutcome
from backend.store import LeaseLostError, RunStore

LIMIT_SECONDS = 60.0


def metrics(epoch: int) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, loss=1.0, accuracy=0.5, val_loss=1.0 / epoch, val_accuracy=0.5,
        learning_rate=1e-3, epoch_seconds=1.0, elapsed_seconds=float(epoch),
    )  # fmt: skip


def started(store: RunStore, ttl_seconds: float = LIMIT_SECONDS) -> Lease:
    run_id = store.create_run(SeluSpec(max_epochs=5)).id
    lease = Lease.new(run_id, "celery@a", ttl_seconds)
    assert store.leases.start(lease, "celery@a", "CPU").outcome is StartOutcome.started
    return lease


def expire(store: RunStore, lease: Lease) -> None:
    """What a worker's silence does after the limit: its lease key is gone."""
    store.redis.delete(lease.key)


def test_a_second_delivery_of_a_leased_run_is_skipped_and_counted(store: RunStore) -> None:
    lease = started(store)
    copy = Lease.new(lease.run_id, "celery@b", LIMIT_SECONDS)

    result = store.leases.start(copy, "celery@b", "CPU")

    assert result.outcome is StartOutcome.leased and result.view is None
    assert store.redis.hget(f"curvelab:run:{lease.run_id}", "skipped_deliveries") == "1"
    view = store.require_run(lease.run_id)
    assert view.status is RunStatus.running and view.worker == "celery@a"


def test_deliveries_of_finished_deleted_and_orphaned_runs_are_skipped(store: RunStore) -> None:
    finished = started(store)
    store.finish_run(finished.run_id, RunStatus.succeeded, lease=finished)
    orphaned = started(store)
    expire(store, orphaned)
    deleted_id = store.create_run(SeluSpec()).id
    store.delete_run(deleted_id)

    outcomes = [
        store.leases.start(Lease.new(run_id, "celery@b", 60), "celery@b", "CPU").outcome
        for run_id in (finished.run_id, orphaned.run_id, deleted_id)
    ]

    assert outcomes == [StartOutcome.finished, StartOutcome.orphaned, StartOutcome.deleted]
    assert not store.redis.exists(run_lease_key(deleted_id))


def test_renewal_extends_the_lease_and_stamps_the_heartbeat(store: RunStore) -> None:
    lease = started(store, ttl_seconds=0.5)
    before = float(store.redis.hget(f"curvelab:run:{lease.run_id}", "heartbeat_at") or 0)
    time.sleep(0.3)

    assert store.leases.renew(lease)

    assert store.redis.pttl(lease.key) > 400
    after = float(store.redis.hget(f"curvelab:run:{lease.run_id}", "heartbeat_at") or 0)
    assert after > before
    expire(store, lease)
    assert not store.leases.renew(lease)
    assert not store.redis.exists(lease.key)


def test_a_worker_that_lost_its_lease_cannot_write_the_run(store: RunStore) -> None:
    lease = started(store)
    assert store.record_epoch(lease.run_id, metrics(1), lease)
    expire(store, lease)

    with pytest.raises(LeaseLostError, match="lost its lease"):
        store.record_epoch(lease.run_id, metrics(2), lease)
    progress = BatchProgress(epoch=2, batches_done=1, batches_total=9)
    assert not store.record_progress(lease.run_id, progress, lease)
    with pytest.raises(LeaseLostError):
        store.record_initial_activations(
            lease.run_id, ActivationStatistics(means=[0.0], stds=[1.0]), lease
        )
    assert store.finish_run(lease.run_id, RunStatus.succeeded, lease=lease) is None

    view = store.require_run(lease.run_id)
    assert view.status is RunStatus.running and view.epochs_done == 1 and view.progress is None


def test_a_lost_worker_s_run_is_queued_to_resume_then_failed_after_the_second_loss(
    store: RunStore,
) -> None:
    lease = started(store)
    store.record_epoch(lease.run_id, metrics(1), lease)
    expire(store, lease)

    first = store.leases.reap_lost(LIMIT_SECONDS, max_losses=2)

    assert [(entry.run_id, entry.status) for entry in first] == [(lease.run_id, RunStatus.queued)]
    queued = store.require_run(lease.run_id)
    assert (queued.resumes, queued.worker_losses, queued.worker) == (1, 1, None)
    assert queued.note is not None and "worker loss 1 of 2" in queued.note
    assert "continues at epoch 2" in queued.note
    assert store.leases.requeued_unsent(0) == [lease.run_id]
    assert store.redis.zscore(ACTIVE_RUNS_KEY, lease.run_id) is None

    second_lease = Lease.new(lease.run_id, "celery@b", LIMIT_SECONDS)
    resumed = store.leases.start(second_lease, "celery@b", "CPU").view
    assert resumed is not None and resumed.note is not None
    assert resumed.note.startswith("Resumed at epoch 2 after worker loss 1 of 2")
    assert store.leases.requeued_unsent(0) == []
    expire(store, second_lease)

    second = store.leases.reap_lost(LIMIT_SECONDS, max_losses=2)

    failed = store.require_run(lease.run_id)
    assert [entry.status for entry in second] == [RunStatus.failed]
    assert failed.status is RunStatus.failed and failed.worker_losses == 2
    assert failed.error is not None and failed.error.startswith("Worker lost:")
    assert store.get_metrics(lease.run_id) == [metrics(1)]


def test_a_live_lease_is_never_reaped_and_a_cancelled_run_is_not_resumed(
    store: RunStore,
) -> None:
    alive = started(store)
    cancelled = started(store)
    store.request_cancel(cancelled.run_id)
    expire(store, cancelled)

    reaped = store.leases.reap_lost(LIMIT_SECONDS, max_losses=2)

    assert [(entry.run_id, entry.status) for entry in reaped] == [
        (cancelled.run_id, RunStatus.cancelled)
    ]
    assert store.require_run(alive.run_id).status is RunStatus.running


def test_concurrent_reapers_requeue_a_run_once(store: RunStore) -> None:
    leases = [started(store) for _ in range(5)]
    for lease in leases:
        expire(store, lease)
    results: list[list[str]] = []
    gate = threading.Barrier(4)

    def reap() -> None:
        reaper_store = RunStore(store.redis, Path("unused"))
        gate.wait()
        results.append([entry.run_id for entry in reaper_store.leases.reap_lost(60, 2)])

    threads = [threading.Thread(target=reap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    reaped = sorted(run_id for result in results for run_id in result)
    assert reaped == sorted(lease.run_id for lease in leases)
    assert all(store.require_run(lease.run_id).resumes == 1 for lease in leases)


def test_a_handed_back_run_is_queued_without_counting_a_loss(store: RunStore) -> None:
    lease = started(store)
    store.record_epoch(lease.run_id, metrics(1), lease)

    view = store.leases.hand_back(lease, "its worker shut down")

    assert view is not None and view.status is RunStatus.queued
    assert (view.resumes, view.worker_losses) == (1, 0)
    assert view.note == "Resuming after its worker shut down; it continues at epoch 2."
    assert not store.redis.exists(lease.key)
    assert store.leases.hand_back(lease, "its worker shut down") is None


def test_deleting_a_requeued_run_removes_its_lease_entries_and_checkpoint(
    store: RunStore, tmp_path: Path
) -> None:
    var_dir = tmp_path / "var"
    lease = started(store)
    folder = checkpoint_dir(var_dir, lease.run_id) / "epoch-000001"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text("{}")
    stray_model = var_dir / "models" / f"{lease.run_id}.keras"
    stray_model.parent.mkdir(parents=True)
    stray_model.write_bytes(b"model")
    expire(store, lease)
    store.leases.reap_lost(LIMIT_SECONDS, max_losses=2)

    RunStore(store.redis, var_dir).delete_run(lease.run_id)

    assert not folder.parent.exists() and not stray_model.exists()
    assert store.redis.zscore(REQUEUED_RUNS_KEY, lease.run_id) is None
