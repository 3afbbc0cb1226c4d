"""Per-epoch checkpoints: written atomically, newest wins, and a restored model trains on
exactly as the uninterrupted one does."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from backend.contract import (
    ActivationStatistics,
    BatchProgress,
    EpochMetrics,
    OneCycleSpec,
    SeluSpec,
)
from backend.run_files import checkpoint_dir
from backend.settings import Settings
from worker.checkpoints import (
    BEST_WEIGHTS_FILE,
    STATE_FILE,
    TrainingState,
    capture,
    latest_epoch,
    read_checkpoint,
    restore,
    write_checkpoint,
)
from worker.train import run


def small_network(width: int = 8, dropout: float = 0.0) -> keras.Model:
    keras.utils.set_random_seed(3)
    layers: list[keras.layers.Layer] = [
        keras.Input(shape=(6,)),
        keras.layers.Dense(width, activation="selu", kernel_initializer="lecun_normal"),
    ]
    if dropout:
        layers.append(keras.layers.AlphaDropout(dropout))
    layers.append(keras.layers.Dense(3, activation="softmax"))
    network = keras.Sequential(layers)
    network.compile(
        optimizer=keras.optimizers.Nadam(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return network


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 3, size=64)


def metrics(epoch: int) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, loss=1.0, accuracy=0.5, val_loss=1.0 / epoch, val_accuracy=0.5,
        learning_rate=1e-2, epoch_seconds=0.1, elapsed_seconds=0.1 * epoch,
    )  # fmt: skip


def state(epoch: int, best_epoch: int | None = None) -> TrainingState:
    return TrainingState(
        epoch=epoch,
        elapsed_seconds=0.1 * epoch,
        history=[metrics(number) for number in range(1, epoch + 1)],
        best_epoch=best_epoch or epoch,
        best_val_loss=1.0 / (best_epoch or epoch),
        best_val_accuracy=0.5,
        epochs_without_improvement=epoch - (best_epoch or epoch),
    )


def test_a_restored_network_trains_on_exactly_as_the_uninterrupted_one(tmp_path: Path) -> None:
    images, labels = data()
    uninterrupted = small_network(dropout=0.2)
    uninterrupted.fit(images, labels, batch_size=16, epochs=2, shuffle=False, verbose=0)

    interrupted = small_network(dropout=0.2)
    interrupted.fit(images, labels, batch_size=16, epochs=1, shuffle=False, verbose=0)
    write_checkpoint(tmp_path, capture(interrupted, state(1), interrupted.get_weights()))
    resumed = small_network(dropout=0.2)
    saved = read_checkpoint(tmp_path)
    assert saved is not None
    restore(resumed, saved)
    resumed.fit(images, labels, batch_size=16, epochs=2, initial_epoch=1, shuffle=False, verbose=0)

    # Weights, optimizer moments, step count and the dropout seed all came back.
    assert int(resumed.optimizer.iterations.numpy()) == 8
    for expected, actual in zip(uninterrupted.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_the_state_and_best_weights_come_back_as_written(tmp_path: Path) -> None:
    network = small_network()
    best = [weights + 1.0 for weights in network.get_weights()]
    written = state(3, best_epoch=2)
    written.best_val_loss = math.inf

    write_checkpoint(tmp_path, capture(network, written, best))
    saved = read_checkpoint(tmp_path)

    assert saved is not None and saved.state == written
    assert saved.best_weights is not None
    for expected, actual in zip(best, saved.best_weights, strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_half_written_checkpoints_are_ignored_and_older_ones_removed(tmp_path: Path) -> None:
    network = small_network()
    write_checkpoint(tmp_path, capture(network, state(1), None))
    # What a worker killed mid-write leaves: a temporary folder, an epoch folder without state.
    (tmp_path / ".writing-0123").mkdir()
    (tmp_path / "epoch-000009").mkdir()

    assert latest_epoch(tmp_path) == 1
    write_checkpoint(tmp_path, capture(network, state(2), None))

    assert latest_epoch(tmp_path) == 2
    assert not (tmp_path / "epoch-000001").exists()
    assert latest_epoch(tmp_path / "no-such-run") == 0
    assert read_checkpoint(tmp_path / "no-such-run") is None


def test_a_checkpoint_older_than_the_newest_is_not_written(tmp_path: Path) -> None:
    network = small_network()
    write_checkpoint(tmp_path, capture(network, state(3), None))

    assert write_checkpoint(tmp_path, capture(network, state(2), None)) is None
    assert latest_epoch(tmp_path) == 3


def test_unchanged_best_weights_are_linked_not_written_again(tmp_path: Path) -> None:
    network = small_network()
    best = network.get_weights()
    first = write_checkpoint(tmp_path, capture(network, state(2), best))
    first_inode = (first / BEST_WEIGHTS_FILE).stat().st_ino if first else 0

    second = write_checkpoint(tmp_path, capture(network, state(3, best_epoch=2), best))

    assert second is not None and (second / STATE_FILE).is_file()
    assert (second / BEST_WEIGHTS_FILE).stat().st_ino == first_inode


def test_a_checkpoint_of_another_network_is_refused_with_a_sentence(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, capture(small_network(width=8), state(1), None))
    saved = read_checkpoint(tmp_path)
    assert saved is not None

    with pytest.raises(ValueError, match="do not match this run's model"):
        restore(small_network(width=5), saved)


class WorkerKilledError(RuntimeError):
    """Stands for a worker that dies right after reporting an epoch."""


class Reporter:
    """Collects epochs; raises after `die_after` reported epochs, like a worker killed then."""

    def __init__(self, die_after: int | None = None) -> None:
        self.epochs: list[EpochMetrics] = []
        self.initial_activations: list[ActivationStatistics] = []
        self.die_after = die_after

    def on_initial_activations(self, statistics: ActivationStatistics) -> None:
        self.initial_activations.append(statistics)

    def on_epoch(self, metrics: EpochMetrics) -> None:
        self.epochs.append(metrics)
        if self.die_after is not None and len(self.epochs) == self.die_after:
            raise WorkerKilledError(f"Killed after epoch {metrics.epoch}.")

    def on_progress(self, progress: BatchProgress) -> None:
        return None

    def cancel_requested(self) -> bool:
        return False


def test_a_run_resumes_from_its_checkpoint_on_the_1cycle_schedule_and_cleans_up(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path, cifar10_path=None)
    spec = OneCycleSpec(dataset="synthetic", depth=2, width=16, max_epochs=3, mc_samples=2)
    uninterrupted = Reporter()
    run(spec, uninterrupted, settings, run_id="whole")
    first_try = Reporter(die_after=2)
    with pytest.raises(WorkerKilledError):
        run(spec, first_try, settings, run_id="resumed")
    folder = checkpoint_dir(tmp_path, "resumed")
    assert latest_epoch(folder) == 2

    second_try = Reporter()
    summary = run(spec, second_try, settings, run_id="resumed")

    # The checkpointed epochs are reported again as they were, then training goes on; the
    # untrained network's statistics were the first try's to report, and stay as it reported.
    assert second_try.epochs[:2] == first_try.epochs
    assert len(first_try.initial_activations) == 1 and second_try.initial_activations == []
    assert first_try.initial_activations == uninterrupted.initial_activations
    assert [metrics.epoch for metrics in second_try.epochs] == [1, 2, 3]
    assert summary.epochs_run == 3 and not summary.cancelled
    # The schedule carried on from the restored step count, not from its start.
    expected_rates = [metrics.learning_rate for metrics in uninterrupted.epochs]
    assert [metrics.learning_rate for metrics in second_try.epochs] == pytest.approx(
        expected_rates, rel=1e-5
    )
    assert second_try.epochs[2].elapsed_seconds > second_try.epochs[1].elapsed_seconds
    assert not folder.exists() and not checkpoint_dir(tmp_path, "whole").exists()


def test_a_run_lost_after_its_last_epoch_resumes_straight_to_its_results(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, cifar10_path=None)
    spec = SeluSpec(dataset="synthetic", depth=2, width=16, max_epochs=2)
    with pytest.raises(WorkerKilledError):
        run(spec, Reporter(die_after=2), settings, run_id="finished-training")

    resumed = Reporter()
    summary = run(spec, resumed, settings, run_id="finished-training", keep_checkpoint=True)

    assert [metrics.epoch for metrics in resumed.epochs] == [1, 2]
    assert summary.epochs_run == 2 and summary.best_epoch in (1, 2)
    assert latest_epoch(checkpoint_dir(tmp_path, "finished-training")) == 2
