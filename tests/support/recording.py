"""A training reporter that records what the engine tells it, for tests of the engine."""

from __future__ import annotations

from backend.contract import ActivationStatistics, BatchProgress, EpochMetrics


class RecordingReporter:
    """Keeps every epoch and progress report; asks to cancel after a number of batches."""

    def __init__(self, cancel_after_batches: int | None = None) -> None:
        self.initial_activations: list[ActivationStatistics] = []
        self.epochs: list[EpochMetrics] = []
        self.progress: list[BatchProgress] = []
        self.cancel_checks = 0
        self.cancel_after_batches = cancel_after_batches

    def on_initial_activations(self, statistics: ActivationStatistics) -> None:
        self.initial_activations.append(statistics)

    def on_epoch(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)

    def on_progress(self, progress: BatchProgress) -> None:
        self.progress.append(progress)

    def cancel_requested(self) -> bool:
        self.cancel_checks += 1
        return (
            self.cancel_after_batches is not None
            and self.cancel_checks > self.cancel_after_batches
        )
