"""The run's callbacks: cancel and progress, best weights, epoch metrics, the 1cycle schedule."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from tests.support.recording import RecordingReporter
from worker.callbacks import (
    BestWeightsKeeper,
    CancelAndProgress,
    EpochReporter,
    OneCycleScheduler,
    one_cycle_learning_rate,
    one_cycle_momentum,
)
from worker.variants import build_network, compile_network, make_optimizer


class FakeClock:
    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def tiny_network(variant: str = "selu", learning_rate: float = 1e-3) -> keras.Model:
    network = build_network(variant, depth=2, width=8)
    return compile_network(network, make_optimizer(variant, learning_rate), jit_compile=False)


def tiny_data(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(count, 32, 32, 3)).astype("float32")
    return images, rng.integers(0, 10, size=count)


def test_one_cycle_schedule_rises_to_the_peak_then_anneals() -> None:
    total, peak = 1000, 0.05
    rates = [one_cycle_learning_rate(step, total, peak) for step in range(total)]
    assert rates[0] == pytest.approx(peak / 10)
    peak_step = int(np.argmax(rates))
    assert abs(peak_step - 0.45 * (total - 1)) <= 1
    assert max(rates) == pytest.approx(peak, rel=1e-3)
    assert np.all(np.diff(rates[: peak_step + 1]) > 0)
    assert np.all(np.diff(rates[peak_step:]) < 0)
    assert rates[int(0.9 * (total - 1))] == pytest.approx(peak / 10, rel=1e-2)
    assert rates[-1] == pytest.approx(peak / 1000)


def test_one_cycle_scheduler_drives_the_optimizer_every_batch() -> None:
    network = tiny_network("onecycle")
    images, labels = tiny_data(40, seed=1)
    steps = 2 * 4  # two epochs of four batches of ten
    scheduler = OneCycleScheduler(steps, peak_learning_rate=0.02)
    network.fit(images, labels, batch_size=10, epochs=2, callbacks=[scheduler], verbose=0)
    assert scheduler.step == steps
    assert float(network.optimizer.learning_rate) == pytest.approx(0.02 / 1000)
    assert float(network.optimizer.momentum_variable) == pytest.approx(0.95)


def test_one_cycle_momentum_mirrors_the_learning_rate() -> None:
    total, peak = 1000, 0.05
    rates = np.array([one_cycle_learning_rate(step, total, peak) for step in range(total)])
    momenta = np.array([one_cycle_momentum(step, total, 0.95, 0.85) for step in range(total)])
    assert momenta[0] == pytest.approx(0.95) and momenta[-1] == pytest.approx(0.95)
    assert momenta.min() == pytest.approx(0.85, abs=1e-3)
    assert int(np.argmin(momenta)) == int(np.argmax(rates))
    cycle = slice(0, int(0.9 * (total - 1)))
    # While the rate rises the momentum falls, and the other way round.
    assert np.all(np.sign(np.diff(rates[cycle])) == -np.sign(np.diff(momenta[cycle])))
    assert np.all(momenta[int(0.9 * total) + 1 :] == pytest.approx(0.95))


@pytest.mark.parametrize("jit_compile", [False, True])
def test_the_compiled_step_uses_the_momentum_set_between_batches(jit_compile: bool) -> None:
    """Setting the momentum must change training; a frozen Python number would not."""

    class HoldMomentum(keras.callbacks.Callback):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.model.optimizer.build(self.model.trainable_variables)

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self.model.optimizer.momentum_variable.assign(self.value)

    images, labels = tiny_data(40, seed=2)
    final_weights = []
    for momentum in (0.0, 0.9):
        keras.utils.set_random_seed(3)
        network = build_network("onecycle", depth=2, width=8, dropout_rate=0.0)
        compile_network(network, make_optimizer("onecycle", 0.05), jit_compile=jit_compile)
        network.fit(
            images, labels, batch_size=10, epochs=1, shuffle=False,
            callbacks=[HoldMomentum(momentum)], verbose=0,
        )  # fmt: skip
        final_weights.append(network.get_weights()[0])
    assert not np.allclose(final_weights[0], final_weights[1])


def test_best_weights_keeper_stops_after_patience_and_restores_the_best_epoch() -> None:
    network = tiny_network()
    keeper = BestWeightsKeeper(patience=2)
    keeper.set_model(network)
    weights_by_epoch = []
    for epoch, val_loss in enumerate([2.0, 1.0, 1.5, 1.2]):
        network.set_weights([w + epoch for w in network.get_weights()])
        weights_by_epoch.append(network.get_weights())
        keeper.on_epoch_end(epoch, {"val_loss": val_loss, "val_accuracy": 0.1 * epoch})
        assert network.stop_training == (epoch == 3)
    keeper.on_train_end()
    assert keeper.stopped_early and keeper.best_epoch == 2
    assert keeper.best_val_loss == 1.0 and keeper.best_val_accuracy == pytest.approx(0.1)
    for restored, best in zip(network.get_weights(), weights_by_epoch[1], strict=True):
        np.testing.assert_array_equal(restored, best)


def test_best_weights_are_restored_after_fit_even_without_early_stopping() -> None:
    # Random labels and a high rate: the network memorizes the training set while the
    # validation loss rises, so the best epoch comes early and the last weights are worse.
    keras.utils.set_random_seed(3)
    network = tiny_network(learning_rate=0.03)
    train_images, train_labels = tiny_data(64, seed=2)
    valid_images, valid_labels = tiny_data(64, seed=3)

    class WeightsPerEpoch(keras.callbacks.Callback):
        snapshots: list[list[np.ndarray]] = []

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.snapshots.append(self.model.get_weights())

    snapshots = WeightsPerEpoch()
    keeper = BestWeightsKeeper(patience=None)
    history = network.fit(
        train_images, train_labels, batch_size=16, epochs=8, verbose=0,
        validation_data=(valid_images, valid_labels), callbacks=[snapshots, keeper],
    )
    val_losses = history.history["val_loss"]
    best_index = int(np.argmin(val_losses))
    assert best_index < len(val_losses) - 1, "the construction needs a best epoch before the last"
    assert not keeper.stopped_early and keeper.best_epoch == best_index + 1
    assert keeper.best_val_loss == pytest.approx(val_losses[best_index])
    for restored, best in zip(
        network.get_weights(), snapshots.snapshots[best_index], strict=True
    ):
        np.testing.assert_array_equal(restored, best)


def test_cancel_stops_fit_within_one_batch() -> None:
    network = tiny_network()
    images, labels = tiny_data(100, seed=4)
    reporter = RecordingReporter(cancel_after_batches=3)
    cancel = CancelAndProgress(reporter, batches_per_epoch=10)
    network.fit(images, labels, batch_size=10, epochs=3, callbacks=[cancel], verbose=0)
    assert cancel.cancelled
    # Three batches passed the check, the fourth saw the cancel and was the last to run.
    assert cancel.batches_started == 4


def test_progress_is_throttled_to_twice_a_second() -> None:
    network = tiny_network()
    images, labels = tiny_data(200, seed=5)
    reporter = RecordingReporter()
    clock = FakeClock(step=0.125)  # Every batch seems to take an eighth of a second.
    cancel = CancelAndProgress(reporter, batches_per_epoch=20, clock=clock)
    network.fit(images, labels, batch_size=10, epochs=1, callbacks=[cancel], verbose=0)
    done = [progress.batches_done for progress in reporter.progress]
    assert done == [1, 5, 9, 13, 17]
    assert {(progress.epoch, progress.batches_total) for progress in reporter.progress} == {(1, 20)}


def test_epoch_reporter_sends_every_field_and_hidden_activation_statistics() -> None:
    network = tiny_network(learning_rate=5e-4)
    images, labels = tiny_data(30, seed=6)
    reporter = RecordingReporter()
    epoch_reporter = EpochReporter(reporter, images[:10])
    network.fit(
        images, labels, batch_size=10, epochs=2, verbose=0,
        validation_data=(images[:10], labels[:10]), callbacks=[epoch_reporter],
    )
    assert [metrics.epoch for metrics in reporter.epochs] == [1, 2]
    hidden = keras.Model(network.inputs[0], network.get_layer("hidden2").output)
    expected = keras.ops.convert_to_numpy(hidden(images[:10]))
    last = reporter.epochs[-1]
    assert len(last.activation_means) == len(last.activation_stds) == 2
    assert last.activation_means[1] == pytest.approx(float(expected.mean()), rel=1e-4)
    assert last.activation_stds[1] == pytest.approx(float(expected.std()), rel=1e-4)
    assert last.learning_rate == pytest.approx(5e-4)
    assert last.elapsed_seconds >= last.epoch_seconds > 0
    floats = [value for value in last.model_dump().values() if isinstance(value, float)]
    assert all(math.isfinite(value) for value in floats)
