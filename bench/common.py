"""What the benchmarks share: line output and stand-in epoch metrics of a realistic size."""

from __future__ import annotations

import sys

from backend.contract import EpochMetrics

# Twenty hidden layers, as in the chapter, so each stand-in epoch is as large as a real one.
LAYERS = 20


def say(line: str) -> None:
    """Prints one line at once, so progress shows while a long benchmark runs."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def stand_in_epoch(epoch: int, epoch_seconds: float = 1.0) -> EpochMetrics:
    """Metrics shaped like a real epoch's, for benchmarks of the service rather than training."""
    return EpochMetrics(
        epoch=epoch,
        loss=1.0 / epoch,
        accuracy=0.5,
        val_loss=1.0 / epoch,
        val_accuracy=0.5,
        learning_rate=7e-4,
        epoch_seconds=epoch_seconds,
        elapsed_seconds=epoch * epoch_seconds,
        activation_means=[0.01 * layer for layer in range(LAYERS)],
        activation_stds=[1.0 - 0.01 * layer for layer in range(LAYERS)],
    )
