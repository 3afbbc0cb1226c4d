"""MC Dropout: dropout really on at inference, only dropout, vectorized, and its report."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from worker.mc_dropout import (
    MonteCarloPredictor,
    mc_dropout_report,
    prediction_stats,
    predictive_entropy,
    reliability_bins,
)
from worker.variants import build_network


def images(count: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, 32, 32, 3)).astype("float32")


def predict(network: keras.Model, inputs: np.ndarray) -> np.ndarray:
    return network.predict(inputs, verbose=0)


def test_samples_differ_when_dropout_is_on_and_average_to_the_mc_prediction() -> None:
    keras.utils.set_random_seed(1)
    network = build_network("alpha_dropout", depth=2, width=16, dropout_rate=0.5)
    inputs = images()
    deterministic, mean, _, samples = MonteCarloPredictor(network, samples=8).predict(
        inputs, keep_samples=True
    )
    assert samples is not None and samples.shape == (8, 40, 10)
    assert not np.allclose(samples[0], samples[1])
    np.testing.assert_allclose(mean, samples.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(deterministic, predict(network, inputs), rtol=1e-5, atol=1e-6)


def test_samples_are_identical_at_rate_zero_and_equal_predict() -> None:
    network = build_network("alpha_dropout", depth=2, width=16, dropout_rate=0.0)
    inputs = images()
    deterministic, mean, _, samples = MonteCarloPredictor(network, samples=5).predict(
        inputs, keep_samples=True
    )
    assert samples is not None
    expected = predict(network, inputs)
    for sample in samples:
        # Equal up to float rounding: rows of a tiled batch may take another matmul kernel path.
        np.testing.assert_allclose(sample, samples[0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(sample, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(deterministic, expected, rtol=1e-5, atol=1e-6)


def test_batch_normalization_stays_in_inference_mode_while_dropout_samples() -> None:
    network = keras.Sequential([
        keras.Input(shape=(32, 32, 3)),
        keras.layers.Flatten(),
        keras.layers.Dense(16),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.0),
        keras.layers.Dense(10, activation="softmax"),
    ])
    inputs = images()
    # Calling the whole model in training mode would switch BN to batch statistics.
    training_mode = keras.ops.convert_to_numpy(network(inputs, training=True))
    expected = predict(network, inputs)
    assert not np.allclose(training_mode, expected)
    _, mean, _, samples = MonteCarloPredictor(network, samples=3).predict(
        inputs, keep_samples=True
    )
    assert samples is not None
    for sample in samples:
        np.testing.assert_allclose(sample, expected, rtol=1e-5, atol=1e-6)


def test_images_are_split_into_batches_without_changing_the_result() -> None:
    keras.utils.set_random_seed(2)
    network = build_network("alpha_dropout", depth=2, width=8, dropout_rate=0.0)
    predictor = MonteCarloPredictor(network, samples=4)
    predictor.batch_size = 7  # 40 images: five full batches and a partial one.
    deterministic, _, _, _ = predictor.predict(images())
    np.testing.assert_allclose(deterministic, predict(network, images()), rtol=1e-5, atol=1e-6)


def test_report_counts_samples_up_to_the_requested_number() -> None:
    keras.utils.set_random_seed(3)
    network = build_network("alpha_dropout", depth=2, width=16, dropout_rate=0.3)
    inputs = images(60)
    labels = np.random.default_rng(4).integers(0, 10, size=60)
    report = mc_dropout_report(network, inputs, labels, samples=7, dropout_rate=0.3)
    assert [entry.samples for entry in report.accuracy_by_samples] == [1, 2, 5, 7]
    assert report.accuracy_by_samples[-1].accuracy == pytest.approx(report.monte_carlo.accuracy)
    assert report.evaluated_images == 60 and report.samples == 7
    deterministic = report.deterministic
    assert deterministic.accuracy == pytest.approx(
        float(np.mean(predict(network, inputs).argmax(axis=1) == labels))
    )
    assert sum(deterministic.confidence_correct.counts) == round(60 * deterministic.accuracy)
    assert sum(deterministic.confidence_wrong.counts) == 60 - round(60 * deterministic.accuracy)
    assert sum(deterministic.entropy.counts) == 60
    assert len(deterministic.reliability) == 15


def one_hot_ish(confidence: float, predicted: int) -> np.ndarray:
    row = np.full(10, (1 - confidence) / 9)
    row[predicted] = confidence
    return row


def test_expected_calibration_error_on_a_hand_computed_example() -> None:
    probabilities = np.stack([
        one_hot_ish(0.95, 0),  # bin 15 (0.933, 1], correct
        one_hot_ish(0.95, 1),  # bin 15, wrong
        one_hot_ish(0.50, 2),  # bin 8 (0.467, 0.533], correct
        one_hot_ish(0.30, 3),  # bin 5 (0.267, 0.333], wrong
    ])
    labels = np.array([0, 0, 2, 0])
    stats = prediction_stats(probabilities, labels)
    # 2/4 * |0.5 - 0.95| + 1/4 * |1 - 0.5| + 1/4 * |0 - 0.3|
    assert stats.expected_calibration_error == pytest.approx(0.425)
    assert stats.accuracy == 0.5
    occupied = [(b.count, b.accuracy) for b in stats.reliability if b.count]
    assert occupied == [(1, 0.0), (1, 1.0), (2, 0.5)]


def test_reliability_bins_include_their_upper_edge_and_zero() -> None:
    bins = reliability_bins(np.array([0.0, 1 / 15, 1.0]), np.array([True, False, True]))
    assert bins[0].count == 2 and bins[0].lower == 0.0
    assert bins[14].count == 1 and bins[14].upper == 1.0
    assert bins[5].mean_confidence is None and bins[5].accuracy is None


def test_predictive_entropy_is_zero_for_certainty_and_log_ten_for_uniform() -> None:
    entropy = predictive_entropy(np.stack([np.eye(10)[3], np.full(10, 0.1)]))
    assert entropy[0] == pytest.approx(0.0)
    assert entropy[1] == pytest.approx(math.log(10))


def test_non_sequential_networks_are_refused_with_a_sentence() -> None:
    inputs = keras.Input(shape=(4,))
    functional = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="needs a Sequential network"):
        MonteCarloPredictor(functional, samples=3)
