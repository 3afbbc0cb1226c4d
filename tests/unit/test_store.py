"""RunStore against a real Valkey: each transition, its event, and the races it refuses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from backend.contract import (
    EVENTS_KEY,
    RUN_INDEX_KEY,
    ActivationStatistics,
    BatchProgress,
    EpochMetrics,
    LrFinderSpec,
    RunKind,
    RunStatus,
    RunSummary,
    SeluSpec,
    parse_run_spec,
    run_key,
    run_metrics_key,
)
from backend.settings import Settings
from backend.store import RunNotFoundError, RunStateError, RunStore


def epoch_metrics(epoch: int, val_loss: float, epoch_seconds: float = 1.0) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch,
        loss=1.0 / epoch,
        accuracy=0.5,
        val_loss=val_loss,
        val_accuracy=1.0 - val_loss / 10,
        learning_rate=1e-3,
        epoch_seconds=epoch_seconds,
        elapsed_seconds=epoch * epoch_seconds,
        activation_means=[0.1, 0.2],
        activation_stds=[1.0, 0.9],
    )


def summary(model_path: str = "models/run.keras", best_epoch: int = 2) -> RunSummary:
    return RunSummary(
        best_epoch=best_epoch,
        best_val_loss=0.5,
        best_val_accuracy=0.8,
        test_loss=0.6,
        test_accuracy=0.79,
        epochs_run=3,
        stopped_early=False,
        total_seconds=3.0,
        median_epoch_seconds=1.0,
        model_path=model_path,
    )


def events(store: RunStore) -> list[tuple[str, dict]]:
    return [
        (fields["type"], json.loads(fields["data"]))
        for _entry_id, fields in store.redis.xrange(EVENTS_KEY)
    ]


def running_run(store: RunStore) -> str:
    run_id = store.create_run(parse_run_spec({"variant": "selu", "max_epochs": 5})).id
    assert store.mark_running(run_id, "celery@test", "CPU") is not None
    return run_id


def test_create_run_stores_a_queued_run_and_announces_it(store: RunStore) -> None:
    spec = SeluSpec(name="<b>mine</b>", dataset="synthetic", max_epochs=3)

    view = store.create_run(spec)

    assert view.status is RunStatus.queued and view.kind is RunKind.train
    assert view.name == "<b>mine</b>" and view.max_epochs == 3 and view.epochs_done == 0
    assert view.spec == spec.model_dump(mode="json")
    assert store.get_run(view.id) == view
    assert store.redis.zscore(RUN_INDEX_KEY, view.id) == pytest.approx(view.created_at)
    assert events(store) == [("run", view.model_dump(mode="json"))]


def test_list_runs_is_newest_first_and_load_spec_returns_the_validated_spec(
    store: RunStore,
) -> None:
    first = store.create_run(SeluSpec(max_epochs=2))
    second = store.create_run(LrFinderSpec(variant="baseline", max_steps=20), RunKind.lr_finder)

    assert [view.id for view in store.list_runs()] == [second.id, first.id]
    assert [view.id for view in store.list_runs(limit=1)] == [second.id]
    assert second.max_epochs == 1 and second.variant == "baseline"
    assert store.load_spec(first.id) == (RunKind.train, SeluSpec(max_epochs=2))
    assert store.load_spec(second.id) == (
        RunKind.lr_finder,
        LrFinderSpec(variant="baseline", max_steps=20),
    )
    assert store.load_spec("missing") is None
    assert store.count_runs() == 2


def test_mark_running_moves_only_a_queued_run(store: RunStore) -> None:
    run_id = store.create_run(SeluSpec()).id

    view = store.mark_running(run_id, "celery@host-a", "GPU:0 Test GPU")

    assert view is not None and view.status is RunStatus.running
    assert view.worker == "celery@host-a" and view.device == "GPU:0 Test GPU"
    assert view.started_at is not None
    assert store.mark_running(run_id, "celery@host-b", "CPU") is None
    assert store.require_run(run_id).worker == "celery@host-a"
    assert store.mark_running("missing", "celery@host-b", "CPU") is None


def test_record_epoch_appends_once_per_epoch_and_keeps_the_best_and_median(
    store: RunStore,
) -> None:
    run_id = running_run(store)
    reported = [epoch_metrics(1, 2.0, 4.0), epoch_metrics(2, 1.0, 1.0), epoch_metrics(3, 1.5, 2.0)]

    assert [store.record_epoch(run_id, metrics) for metrics in reported] == [True, True, True]
    assert store.record_epoch(run_id, epoch_metrics(2, 0.1)) is False

    assert store.get_metrics(run_id) == reported
    entry_ids = [entry_id for entry_id, _ in store.redis.xrange(run_metrics_key(run_id))]
    assert entry_ids == ["1-1", "2-1", "3-1"]
    view = store.require_run(run_id)
    assert view.epochs_done == 3 and view.best_epoch == 2
    assert view.best_val_accuracy == pytest.approx(0.9)
    assert view.seconds_per_epoch == pytest.approx(2.0)
    epoch_events = [data for kind, data in events(store) if kind == "epoch"]
    assert epoch_events == [
        {"run_id": run_id, "metrics": metrics.model_dump(mode="json")} for metrics in reported
    ]


def test_progress_is_stored_and_cleared_when_the_run_finishes(store: RunStore) -> None:
    run_id = running_run(store)
    progress = BatchProgress(epoch=1, batches_done=10, batches_total=50)

    store.record_progress(run_id, progress)

    assert store.require_run(run_id).progress == progress
    assert events(store)[-1] == ("progress", {"run_id": run_id, "progress": progress.model_dump()})
    finished = store.finish_run(run_id, RunStatus.succeeded, summary=summary())
    assert finished is not None and finished.progress is None
    assert finished.summary == summary() and finished.best_epoch == 2
    assert finished.finished_at is not None
    assert events(store)[-1] == ("run", finished.model_dump(mode="json"))
    assert store.finish_run(run_id, RunStatus.failed, error="late") is None
    assert store.require_run(run_id).status is RunStatus.succeeded


def test_initial_activations_are_stored_and_announced_while_the_run_runs(store: RunStore) -> None:
    statistics = ActivationStatistics(means=[0.01, -0.02], stds=[0.98, 1.03])
    run_id = running_run(store)

    view = store.record_initial_activations(run_id, statistics)

    assert view.initial_activations == statistics
    assert store.require_run(run_id).initial_activations == statistics
    assert events(store)[-1] == ("run", view.model_dump(mode="json"))
    store.finish_run(run_id, RunStatus.succeeded, summary=summary())
    with pytest.raises(RunStateError, match="not running"):
        store.record_initial_activations(run_id, ActivationStatistics(means=[9.0], stds=[9.0]))
    assert store.require_run(run_id).initial_activations == statistics


def test_a_failed_run_keeps_its_error_and_metrics(store: RunStore) -> None:
    run_id = running_run(store)
    store.record_epoch(run_id, epoch_metrics(1, 1.0))

    view = store.finish_run(run_id, RunStatus.failed, error="The dataset is missing.")

    assert view is not None and view.error == "The dataset is missing."
    assert view.status is RunStatus.failed and view.epochs_done == 1
    assert len(store.get_metrics(run_id)) == 1


def test_finish_run_refuses_a_status_that_is_not_final(store: RunStore) -> None:
    with pytest.raises(ValueError, match="finished status"):
        store.finish_run(running_run(store), RunStatus.running)


def test_cancelling_a_queued_run_cancels_it_at_once(store: RunStore) -> None:
    run_id = store.create_run(SeluSpec()).id

    view = store.request_cancel(run_id)

    assert view.status is RunStatus.cancelled and view.finished_at is not None
    assert store.mark_running(run_id, "celery@late", "CPU") is None


def test_cancelling_a_running_run_sets_the_flag_and_wakes_the_worker(store: RunStore) -> None:
    run_id = running_run(store)
    subscription = store.cancel_subscription(run_id)
    try:
        view = store.request_cancel(run_id)
        deadline = time.monotonic() + 2.0
        message = None
        # The first reads may only drain the (ignored) subscribe confirmation.
        while message is None and time.monotonic() < deadline:
            message = subscription.get_message(timeout=0.5)
    finally:
        subscription.close()

    assert view.status is RunStatus.running and view.cancel_requested
    assert store.is_cancel_requested(run_id)
    assert message is not None and message["type"] == "message"


def test_cancelling_a_finished_or_unknown_run_is_refused_with_a_sentence(
    store: RunStore,
) -> None:
    run_id = running_run(store)
    store.finish_run(run_id, RunStatus.succeeded, summary=summary())

    with pytest.raises(RunStateError, match="already finished \\(succeeded\\)"):
        store.request_cancel(run_id)
    with pytest.raises(RunNotFoundError, match="No run has the id 'nope'"):
        store.request_cancel("nope")


def test_delete_refuses_a_running_run(store: RunStore) -> None:
    run_id = running_run(store)

    with pytest.raises(RunStateError, match="is running; cancel it"):
        store.delete_run(run_id)
    assert store.get_run(run_id) is not None


def test_delete_removes_the_run_its_metrics_index_entry_and_model_file(
    store: RunStore, store_settings: Settings
) -> None:
    run_id = running_run(store)
    store.record_epoch(run_id, epoch_metrics(1, 1.0))
    model_file = store_settings.models_dir / f"{run_id}.keras"
    model_file.parent.mkdir(parents=True)
    model_file.write_bytes(b"model")
    store.finish_run(run_id, RunStatus.succeeded, summary=summary(f"models/{run_id}.keras"))

    store.delete_run(run_id)

    assert store.get_run(run_id) is None
    assert not store.redis.exists(run_key(run_id), run_metrics_key(run_id))
    assert store.redis.zscore(RUN_INDEX_KEY, run_id) is None
    assert not model_file.exists()
    assert events(store)[-1] == ("deleted", {"run_id": run_id})
    assert store.metrics_json(run_id) is None
    with pytest.raises(RunNotFoundError):
        store.delete_run(run_id)


def test_delete_never_removes_a_file_outside_the_var_dir(
    store: RunStore, store_settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "precious.keras"
    outside.write_bytes(b"keep me")
    run_id = running_run(store)
    store.finish_run(run_id, RunStatus.succeeded, summary=summary("../precious.keras"))

    store.delete_run(run_id)

    assert outside.read_bytes() == b"keep me"


def test_worker_registry_lists_recent_beats_only(store: RunStore) -> None:
    store.workers.beat("celery@a")
    store.redis.zadd("curvelab:workers", {"celery@gone": time.time() - 120})

    assert store.workers.seen_within(15) == ["celery@a"]
    store.workers.remove("celery@a")
    assert store.workers.seen_within(15) == []
