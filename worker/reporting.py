"""How the training engine tells the outside world what it is doing."""

from __future__ import annotations

from typing import Protocol

from backend.contract import ActivationStatistics, BatchProgress, EpochMetrics


class TrainingReporter(Protocol):
    """Receives a run's live facts; the CLI prints them, the Celery task stores them."""

    def on_initial_activations(self, statistics: ActivationStatistics) -> None:
        """Called once before the first batch of a run (not again when it resumes)."""

    def on_epoch(self, metrics: EpochMetrics) -> None:
        """Called once after each finished epoch, in order."""

    def on_progress(self, progress: BatchProgress) -> None:
        """Called within an epoch, at most twice a second."""

    def cancel_requested(self) -> bool:
        """Checked after every batch; must be cheap (no network round trip)."""
        return False


class SilentReporter:
    """A reporter that listens to nothing, for benchmarks and library use."""

    def on_initial_activations(self, statistics: ActivationStatistics) -> None:
        return None

    def on_epoch(self, metrics: EpochMetrics) -> None:
        return None

    def on_progress(self, progress: BatchProgress) -> None:
        return None

    def cancel_requested(self) -> bool:
        return False
