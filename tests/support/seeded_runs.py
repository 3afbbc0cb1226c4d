"""Stored runs in every state, with metrics, a summary and an MC Dropout report, written
through RunStore as a worker would: what fuzzed and hostile requests are aimed at."""

from __future__ import annotations

from backend.contract import (
    ActivationStatistics,
    EpochMetrics,
    Histogram,
    McDropoutReport,
    PredictionStats,
    ReliabilityBin,
    RunStatus,
    RunSummary,
    SampleCountAccuracy,
    parse_run_spec,
)
from backend.store import RunStore


def _histogram() -> Histogram:
    return Histogram(bin_edges=[0.0, 0.5, 1.0], counts=[3, 7])


def _prediction_stats(accuracy: float) -> PredictionStats:
    return PredictionStats(
        accuracy=accuracy,
        expected_calibration_error=0.05,
        confidence_correct=_histogram(),
        confidence_wrong=_histogram(),
        entropy=_histogram(),
        reliability=[
            ReliabilityBin(lower=0.0, upper=0.5, count=0, mean_confidence=None, accuracy=None),
            ReliabilityBin(lower=0.5, upper=1.0, count=10, mean_confidence=0.8, accuracy=0.7),
        ],
    )


def _epoch(epoch: int) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, loss=1.0 / epoch, accuracy=0.3, val_loss=1.2 / epoch, val_accuracy=0.28,
        learning_rate=5e-4, epoch_seconds=1.5, elapsed_seconds=1.5 * epoch,
        activation_means=[0.1, -0.2], activation_stds=[1.0, 0.9],
    )  # fmt: skip


def seed_runs(store: RunStore) -> list[str]:
    """Runs in each state, so that fuzzed run ids also reach the code behind a real run."""
    spec = parse_run_spec({"variant": "alpha_dropout", "dataset": "synthetic", "max_epochs": 2})
    queued, running, failed, succeeded = (store.create_run(spec).id for _ in range(4))
    for run_id in (running, failed, succeeded):
        store.mark_running(run_id, "celery@fuzz", "CPU")
    store.record_initial_activations(running, ActivationStatistics(means=[0.0], stds=[1.0]))
    store.finish_run(failed, RunStatus.failed, error="The fuzz test failed it on purpose.")
    for epoch in (1, 2):
        store.record_epoch(succeeded, _epoch(epoch))
    report = McDropoutReport(
        samples=10, dropout_rate=0.1, evaluated_images=10,
        deterministic=_prediction_stats(0.7), monte_carlo=_prediction_stats(0.72),
        accuracy_by_samples=[SampleCountAccuracy(samples=10, accuracy=0.72)],
    )  # fmt: skip
    summary = RunSummary(
        best_epoch=2, best_val_loss=0.6, best_val_accuracy=0.28, test_loss=0.61,
        test_accuracy=0.27, epochs_run=2, stopped_early=False, total_seconds=3.0,
        median_epoch_seconds=1.5, model_path="models/fuzz.keras", mc_dropout=report,
    )  # fmt: skip
    store.finish_run(succeeded, RunStatus.succeeded, summary=summary)
    return [queued, running, failed, succeeded]
