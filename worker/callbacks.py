"""Keras callbacks of a training run: cancel and progress, best weights, epoch metrics, 1cycle."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from backend.contract import ActivationStatistics, BatchProgress, EpochMetrics
from worker.checkpoints import TrainingState
from worker.reporting import TrainingReporter
from worker.variants import (
    ONE_CYCLE_MOMENTUM_HIGH,
    ONE_CYCLE_MOMENTUM_LOW,
    hidden_activation_outputs,
)

Clock = Callable[[], float]

# The reporter contract allows at most two progress messages a second.
PROGRESS_INTERVAL_SECONDS = 0.5


class CancelAndProgress(keras.callbacks.Callback):
    """Asks the reporter before every batch whether to stop, and reports progress, throttled.

    The check sits in ``on_train_batch_begin`` on purpose: a callback that overrides a
    batch-end hook makes Keras convert every batch's logs to Python floats synchronously,
    stalling the pipeline. Keras checks ``stop_training`` after every batch, so a cancel seen
    before batch k stops the run once batch k is done: within one batch. Keras still validates
    and closes the interrupted epoch; the other callbacks read ``cancelled`` to ignore it.
    """

    def __init__(
        self,
        reporter: TrainingReporter,
        batches_per_epoch: int,
        clock: Clock = time.monotonic,
        interval_seconds: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        super().__init__()
        self.reporter = reporter
        self.batches_per_epoch = batches_per_epoch
        self.clock = clock
        self.interval_seconds = interval_seconds
        self.cancelled = False
        self.batches_started = 0
        self._epoch = 1
        self._last_report = -math.inf

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches_started += 1
        if not self.cancelled and self.reporter.cancel_requested():
            self.cancelled = True
            self.model.stop_training = True
        now = self.clock()
        if batch > 0 and now - self._last_report >= self.interval_seconds:
            self._last_report = now
            self.reporter.on_progress(
                BatchProgress(
                    epoch=self._epoch, batches_done=batch, batches_total=self.batches_per_epoch
                )
            )


class BestWeightsKeeper(keras.callbacks.Callback):
    """Early stopping on val_loss that always ends with the best epoch's weights in the model.

    Keras's EarlyStopping restores the best weights only when it stops the run itself; this
    keeper also restores them when the run ends at max_epochs or is cancelled.
    ``patience=None`` keeps the best weights without ever stopping (the 1cycle variant).
    """

    def __init__(self, patience: int | None, cancel: CancelAndProgress | None = None) -> None:
        super().__init__()
        if patience is not None and patience < 1:
            raise ValueError(f"Patience must be at least 1 epoch; got {patience}.")
        self.patience = patience
        self.cancel = cancel
        self.best_epoch = 0
        self.best_val_loss = math.inf
        self.best_val_accuracy = math.nan
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_early = False
        self.epochs_without_improvement = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            return
        logs = logs or {}
        val_loss = float(logs["val_loss"])
        # A NaN loss never compares as an improvement, so a diverged run runs out of patience.
        if val_loss < self.best_val_loss:
            self.best_epoch = epoch + 1
            self.best_val_loss = val_loss
            self.best_val_accuracy = float(logs.get("val_accuracy", math.nan))
            self.best_weights = self.model.get_weights()
            self.epochs_without_improvement = 0
            return
        self.epochs_without_improvement += 1
        if self.patience is not None and self.epochs_without_improvement >= self.patience:
            self.stopped_early = True
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def resume_from(self, state: TrainingState, best_weights: list[np.ndarray] | None) -> None:
        """Takes up early stopping where a checkpointed run left it."""
        self.best_epoch = state.best_epoch
        self.best_val_loss = state.best_val_loss
        self.best_val_accuracy = state.best_val_accuracy
        self.best_weights = best_weights
        self.epochs_without_improvement = state.epochs_without_improvement
        self.stopped_early = state.stopped_early


class EpochReporter(keras.callbacks.Callback):
    """Sends one EpochMetrics per finished epoch, with the hidden activations' statistics.

    The statistics come from a probe model that shares the network's layers and returns every
    hidden activation; it is built once and run on the same validation images every epoch, so
    the numbers are comparable from epoch to epoch and cost one small forward pass.
    ``before_report`` (the checkpoint writer) sees the history including the new epoch before
    the reporter does, so that an epoch is never reported without its checkpoint.
    """

    def __init__(
        self,
        reporter: TrainingReporter,
        probe_images: np.ndarray,
        cancel: CancelAndProgress | None = None,
        clock: Clock = time.monotonic,
        before_report: Callable[[list[EpochMetrics]], None] | None = None,
    ) -> None:
        super().__init__()
        self.reporter = reporter
        self.probe_images = probe_images
        self.cancel = cancel
        self.clock = clock
        self.before_report = before_report
        self.history: list[EpochMetrics] = []
        # Training time of the run's earlier attempts, when it resumed from a checkpoint.
        self.elapsed_before = 0.0
        self._probe: keras.Model | None = None
        self._train_start = 0.0
        self._epoch_start = 0.0

    def resume_from(self, state: TrainingState) -> None:
        """Reports the checkpointed epochs again (reporters keep each epoch once) and goes on
        counting from them."""
        self.history = list(state.history)
        self.elapsed_before = state.elapsed_seconds
        for metrics in self.history:
            self.reporter.on_epoch(metrics)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        hidden_outputs = hidden_activation_outputs(self.model)
        if hidden_outputs:
            self._probe = keras.Model(self.model.inputs[0], hidden_outputs)
        if not self.history:
            # Epoch 0 of the self-normalization view: the untrained network, which is where
            # SELU's fixed point holds by construction; a resumed run reported it already.
            means, stds = self.activation_statistics()
            self.reporter.on_initial_activations(ActivationStatistics(means=means, stds=stds))
        self._train_start = self.clock()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = self.clock()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            return
        logs = logs or {}
        means, stds = self.activation_statistics()
        now = self.clock()
        metrics = EpochMetrics(
            epoch=epoch + 1,
            loss=float(logs["loss"]),
            accuracy=float(logs["accuracy"]),
            val_loss=float(logs["val_loss"]),
            val_accuracy=float(logs["val_accuracy"]),
            learning_rate=current_learning_rate(self.model),
            epoch_seconds=now - self._epoch_start,
            elapsed_seconds=self.elapsed_before + now - self._train_start,
            activation_means=means,
            activation_stds=stds,
        )
        self.history.append(metrics)
        if self.before_report is not None:
            self.before_report(self.history)
        self.reporter.on_epoch(metrics)

    def activation_statistics(self) -> tuple[list[float], list[float]]:
        """Mean and standard deviation of each hidden layer's activation on the probe images."""
        if self._probe is None:
            return [], []
        activations = self._probe(self.probe_images, training=False)
        if not isinstance(activations, (list, tuple)):
            activations = [activations]
        means = [float(keras.ops.mean(layer_output)) for layer_output in activations]
        stds = [float(keras.ops.std(layer_output)) for layer_output in activations]
        return means, stds


def current_learning_rate(model: keras.Model) -> float:
    return float(model.optimizer.learning_rate.numpy())


# The 1cycle phases as fractions of the schedule: the learning rate rises until RISE_END, falls
# back until FALL_END, then is annealed; the momentum mirrors the rise and fall, then stays high.
RISE_END, FALL_END = 0.45, 0.90


def _one_cycle_position(step: int, total_steps: int) -> float:
    if total_steps < 1:
        raise ValueError(f"A 1cycle schedule needs at least one step; got {total_steps}.")
    last = max(total_steps - 1, 1)
    return min(max(step, 0), last) / last


def one_cycle_learning_rate(step: int, total_steps: int, peak: float) -> float:
    """The 1cycle rate at a batch index: up from peak/10 to peak over the first 45% of the
    steps, back down to peak/10 over the next 45%, then annealed to peak/1000 at the last step."""
    position = _one_cycle_position(step, total_steps)
    start, final = peak / 10, peak / 1000
    if position <= RISE_END:
        return start + (peak - start) * position / RISE_END
    if position <= FALL_END:
        return peak + (start - peak) * (position - RISE_END) / (FALL_END - RISE_END)
    return start + (final - start) * (position - FALL_END) / (1.0 - FALL_END)


def one_cycle_momentum(step: int, total_steps: int, high: float, low: float) -> float:
    """The 1cycle momentum at a batch index: down from ``high`` to ``low`` while the rate
    rises, back up to ``high`` while it falls, then held at ``high`` for the annealing."""
    position = _one_cycle_position(step, total_steps)
    if position <= RISE_END:
        return high + (low - high) * position / RISE_END
    if position <= FALL_END:
        return low + (high - low) * (position - RISE_END) / (FALL_END - RISE_END)
    return high


class OneCycleScheduler(keras.callbacks.Callback):
    """Sets the optimizer's learning rate and momentum before every batch from the 1cycle schedule.

    The position is the optimizer's own step count, read once when training begins, so a
    run resumed from a checkpoint (which restores that count) carries on where it was.
    The momentum is cycled when the optimizer keeps it in a variable (CycledMomentumSGD).
    """

    def __init__(
        self,
        total_steps: int,
        peak_learning_rate: float,
        momentum_range: tuple[float, float] = (ONE_CYCLE_MOMENTUM_LOW, ONE_CYCLE_MOMENTUM_HIGH),
    ) -> None:
        super().__init__()
        if total_steps < 1:
            raise ValueError(f"A 1cycle schedule needs at least one step; got {total_steps}.")
        self.total_steps = total_steps
        self.peak_learning_rate = peak_learning_rate
        self.low_momentum, self.high_momentum = momentum_range
        self.step = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        # Keras builds the optimizer inside the first step; the first batch needs its variables.
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.step = int(optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        rate = one_cycle_learning_rate(self.step, self.total_steps, self.peak_learning_rate)
        optimizer.learning_rate.assign(rate)
        momentum_variable = getattr(optimizer, "momentum_variable", None)
        if momentum_variable is not None:
            momentum_variable.assign(
                one_cycle_momentum(
                    self.step, self.total_steps, self.high_momentum, self.low_momentum
                )
            )
        self.step += 1
