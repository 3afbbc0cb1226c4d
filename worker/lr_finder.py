"""The learning-rate range test: grow the rate exponentially, watch the loss, suggest a rate.

The chapter's advice is to search for the right learning rate each time the architecture
changes. The test trains a freshly built model of the variant for at most one epoch, one batch
per rate, and throws the model away afterwards, so it leaves nothing behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from backend.contract import BatchProgress, LrFinderResult, LrFinderSpec
from backend.settings import Settings
from worker.reporting import TrainingReporter

if TYPE_CHECKING:
    import keras

# Stop once the smoothed loss exceeds the best smoothed loss by this factor: it has diverged.
DIVERGENCE_FACTOR = 4.0
# Exponential smoothing of the per-batch loss, which is noisy; short sweeps smooth less so
# that the smoothed curve still follows the loss (about five effective windows per sweep).
MAX_SMOOTHING = 0.98
PROGRESS_INTERVAL_SECONDS = 0.5


def exponential_learning_rates(start: float, end: float, steps: int) -> np.ndarray:
    """``steps`` rates from ``start`` to ``end``, evenly spaced on a log scale."""
    if not 0 < start < end:
        raise ValueError(
            f"The range test needs 0 < start < end learning rate; got {start} and {end}."
        )
    if steps < 2:
        raise ValueError(f"The range test needs at least 2 steps; got {steps}.")
    return np.geomspace(start, end, steps)


class LossSmoother:
    """Bias-corrected exponential moving average of the loss with a divergence check."""

    def __init__(self, steps: int) -> None:
        self.beta = min(MAX_SMOOTHING, 1.0 - 5.0 / max(steps, 10))
        self._average = 0.0
        self._count = 0
        self.best = math.inf

    def add(self, loss: float) -> float:
        self._count += 1
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta**self._count)
        self.best = min(self.best, smoothed)
        return smoothed

    def diverged(self, smoothed: float) -> bool:
        return not math.isfinite(smoothed) or smoothed > DIVERGENCE_FACTOR * self.best


def suggest_learning_rate(learning_rates: list[float], smoothed_losses: list[float]) -> float:
    """The rate at the lowest smoothed loss, divided by 10.

    At the minimum the loss is about to climb, so that rate is already too high to train
    with; the chapter (after Leslie Smith) advises a rate about ten times lower. This rule is
    steadier than the steepest-descent point, which a single noisy batch can move far.
    """
    if not learning_rates or len(learning_rates) != len(smoothed_losses):
        raise ValueError("A suggestion needs as many smoothed losses as learning rates, not 0.")
    finite = [(loss, rate) for rate, loss in zip(learning_rates, smoothed_losses, strict=True)
              if math.isfinite(loss)]
    if not finite:
        return learning_rates[0]
    _, rate_at_minimum = min(finite)
    return rate_at_minimum / 10


def sweep(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    learning_rates: np.ndarray,
    batch_size: int,
    reporter: TrainingReporter,
    seed: int,
    clock: Callable[[], float] = time.monotonic,
) -> LrFinderResult:
    """Trains one batch per learning rate until the rates run out or the loss diverges."""
    order = np.random.default_rng(seed).permutation(len(images))
    smoother = LossSmoother(len(learning_rates))
    rates: list[float] = []
    raw_losses: list[float] = []
    smoothed_losses: list[float] = []
    diverged = cancelled = False
    last_report = -math.inf
    for step, rate in enumerate(learning_rates):
        batch = order[step * batch_size : (step + 1) * batch_size]
        model.optimizer.learning_rate.assign(float(rate))
        # Keras 3 resets the metrics on every train_on_batch: this is the batch's own loss.
        logs = model.train_on_batch(images[batch], labels[batch], return_dict=True)
        loss = float(logs["loss"])
        smoothed = smoother.add(loss)
        rates.append(float(rate))
        raw_losses.append(loss)
        smoothed_losses.append(smoothed)
        if smoother.diverged(smoothed):
            diverged = True
            break
        if reporter.cancel_requested():
            cancelled = True
            break
        if clock() - last_report >= PROGRESS_INTERVAL_SECONDS:
            last_report = clock()
            reporter.on_progress(BatchProgress(
                epoch=1, batches_done=step + 1, batches_total=len(learning_rates)))
    return LrFinderResult(
        learning_rates=rates,
        losses=smoothed_losses,
        raw_losses=raw_losses,
        suggested_learning_rate=suggest_learning_rate(rates, smoothed_losses),
        diverged=diverged,
        steps=len(rates),
        cancelled=cancelled,
    )


def find_learning_rate(
    spec: LrFinderSpec, reporter: TrainingReporter, settings: Settings
) -> LrFinderResult:
    """Runs the range test on a fresh model of ``spec.variant`` and the training split."""
    # Data first: a missing dataset is reported before TensorFlow is even imported.
    from worker.data import DatasetError, load_splits, prepare_inputs

    splits = load_splits(spec.dataset, settings, spec.seed)

    import keras

    from worker.variants import (
        build_network,
        compile_network,
        make_optimizer,
        uses_standardized_inputs,
    )

    inputs = prepare_inputs(splits, standardize=uses_standardized_inputs(spec.variant))
    batches_per_epoch = len(inputs.x_train) // spec.batch_size
    steps = batches_per_epoch if spec.max_steps is None else min(spec.max_steps, batches_per_epoch)
    if steps < 2:
        raise DatasetError(
            f"The training split has {len(inputs.x_train)} images, too few for two batches of "
            f"{spec.batch_size}; use a smaller batch size."
        )
    rates = exponential_learning_rates(spec.start_learning_rate, spec.end_learning_rate, steps)
    keras.utils.set_random_seed(spec.seed)
    network = build_network(spec.variant, spec.depth, spec.width, spec.dropout_rate)
    compile_network(network, make_optimizer(spec.variant, float(rates[0])))
    return sweep(network, inputs.x_train, inputs.y_train, rates, spec.batch_size, reporter,
                 spec.seed)
