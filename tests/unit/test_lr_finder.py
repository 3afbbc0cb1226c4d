"""The learning-rate range test: exponential rates, smoothing, divergence stop, suggestion."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from backend.contract import LrFinderSpec
from backend.settings import Settings
from worker.data import DatasetError
from worker.lr_finder import (
    LossSmoother,
    exponential_learning_rates,
    find_learning_rate,
    suggest_learning_rate,
    sweep,
)
from worker.reporting import SilentReporter


class CancelAfter(SilentReporter):
    def __init__(self, batches: int) -> None:
        self.batches = batches
        self.checks = 0

    def cancel_requested(self) -> bool:
        self.checks += 1
        return self.checks >= self.batches


def tiny_sgd_network() -> keras.Model:
    network = keras.Sequential([
        keras.Input(shape=(32, 32, 3)),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    network.compile(optimizer=keras.optimizers.SGD(1e-3), loss="sparse_categorical_crossentropy")
    return network


def tiny_data(count: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=count)
    # Learnable: the class shifts the mean of every pixel.
    images = rng.normal(size=(count, 32, 32, 3)) + labels[:, None, None, None] / 3
    return images.astype("float32"), labels


def test_rates_grow_exponentially_from_start_to_end() -> None:
    rates = exponential_learning_rates(1e-6, 1.0, 7)
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(rates[1:] / rates[:-1], 10.0)
    with pytest.raises(ValueError, match="0 < start < end"):
        exponential_learning_rates(1.0, 1e-3, 5)


def test_smoother_flags_divergence_at_four_times_the_best_loss() -> None:
    smoother = LossSmoother(steps=10)
    smoothed = [smoother.add(loss) for loss in [2.0, 1.0, 0.5, 0.5]]
    assert not any(smoother.diverged(value) for value in smoothed)
    assert smoother.diverged(4.01 * smoother.best)
    assert smoother.diverged(math.nan)


def test_suggestion_is_the_rate_at_the_lowest_smoothed_loss_over_ten() -> None:
    rates = [1e-4, 1e-3, 1e-2, 1e-1]
    assert suggest_learning_rate(rates, [2.0, 1.5, 0.9, 5.0]) == pytest.approx(1e-3)
    assert suggest_learning_rate(rates, [2.0, math.nan, 1.9, math.inf]) == pytest.approx(1e-3)


def test_sweep_stops_when_the_loss_diverges() -> None:
    keras.utils.set_random_seed(0)
    images, labels = tiny_data()
    rates = exponential_learning_rates(1e-4, 1e4, 40)
    result = sweep(tiny_sgd_network(), images, labels, rates, 10, SilentReporter(), seed=0)
    assert result.diverged and not result.cancelled
    assert 2 <= result.steps < 40
    assert len(result.learning_rates) == len(result.losses) == result.steps
    assert len(result.raw_losses) == result.steps
    finite = [loss for loss in result.losses if math.isfinite(loss)]
    last = result.losses[-1]
    assert not math.isfinite(last) or last > 4 * min(finite)
    assert result.learning_rates == pytest.approx(list(rates[: result.steps]))
    assert result.suggested_learning_rate < result.learning_rates[-1]


def test_sweep_stops_on_cancel() -> None:
    images, labels = tiny_data(200)
    rates = exponential_learning_rates(1e-5, 1e-3, 20)
    result = sweep(tiny_sgd_network(), images, labels, rates, 10, CancelAfter(3), seed=0)
    assert result.cancelled and result.steps == 3


def test_find_learning_rate_on_a_fresh_model_leaves_nothing_behind(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, cifar10_path=None)
    spec = LrFinderSpec(variant="selu", dataset="synthetic", depth=2, width=16, max_steps=20)
    result = find_learning_rate(spec, SilentReporter(), settings)
    assert 2 <= result.steps <= 20
    assert result.learning_rates[0] == pytest.approx(1e-6)
    if not result.diverged:
        assert result.steps == 20 and result.learning_rates[-1] == pytest.approx(1.0)
    assert 1e-7 <= result.suggested_learning_rate <= 0.1
    assert list(tmp_path.iterdir()) == []


def test_find_learning_rate_refuses_a_batch_larger_than_half_the_training_set(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path, cifar10_path=None)
    spec = LrFinderSpec(dataset="synthetic", depth=2, width=8, batch_size=4000)
    with pytest.raises(DatasetError, match="too few for two batches"):
        find_learning_rate(spec, SilentReporter(), settings)
