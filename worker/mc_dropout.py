"""MC Dropout: predictions with dropout left on at inference, averaged over many samples.

The seed code called ``predict``, which switches dropout off, so its "samples" were identical.
Here only the dropout layers run in training mode (BatchNormalization and the rest stay in
inference mode), and the samples are drawn in one vectorized pass per batch: the layers before
the first dropout layer are deterministic, so they run once per image; their output is then
tiled ``samples`` times and only the remaining layers run on the tiled batch.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from backend.contract import (
    Histogram,
    McDropoutReport,
    PredictionStats,
    ReliabilityBin,
    SampleCountAccuracy,
)

SAMPLE_COUNTS = (1, 2, 5, 10, 20, 50, 100)
CALIBRATION_BINS = 15
HISTOGRAM_BINS = 20
STOCHASTIC_LAYERS = (
    keras.layers.Dropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
)
# Rows of the tiled batch per forward pass: enough to keep the cores busy, few enough that
# the tiled activations (8 MB at width 100) stay in cache; 200,000 rows measured 60% slower.
TILED_ROWS_PER_PASS = 20_000


class MonteCarloPredictor:
    """Draws MC Dropout samples of a Sequential network; see the module docstring."""

    def __init__(self, network: keras.Model, samples: int, counts: tuple[int, ...] = ()) -> None:
        if not isinstance(network, keras.Sequential):
            raise ValueError(
                "MC Dropout needs a Sequential network so that only its dropout layers can be "
                f"switched to training mode; got a {type(network).__name__}."
            )
        if samples < 1:
            raise ValueError(f"MC Dropout needs at least one sample; got {samples}.")
        layers = list(network.layers)
        first_stochastic = next(
            (i for i, layer in enumerate(layers) if isinstance(layer, STOCHASTIC_LAYERS)),
            len(layers),
        )
        self.deterministic_layers = layers[:first_stochastic]
        self.sampled_layers = layers[first_stochastic:]
        self.samples = samples
        self.counts = tuple(count for count in counts if 1 <= count <= samples)
        # Row k sums the first counts[k] samples: one small matmul instead of a cumulative sum.
        self._first_samples = tf.constant(
            [[1.0 if index < count else 0.0 for index in range(samples)] for count in self.counts],
            shape=(len(self.counts), samples),
        )
        self.batch_size = max(1, TILED_ROWS_PER_PASS // samples)
        self._predict_batch = tf.function(self._predict_batch_eager, reduce_retracing=True)

    def _predict_batch_eager(self, images: tf.Tensor) -> tuple[tf.Tensor, ...]:
        hidden = images
        for layer in self.deterministic_layers:
            hidden = layer(hidden, training=False)
        deterministic = hidden
        for layer in self.sampled_layers:
            deterministic = layer(deterministic, training=False)
        batch = tf.shape(hidden)[0]
        shape = tf.shape(hidden)
        tiled = tf.broadcast_to(hidden[tf.newaxis], tf.concat([[self.samples], shape], 0))
        sampled = tf.reshape(tiled, tf.concat([[self.samples * batch], shape[1:]], 0))
        for layer in self.sampled_layers:
            sampled = layer(sampled, training=isinstance(layer, STOCHASTIC_LAYERS))
        per_sample = tf.reshape(sampled, [self.samples, batch, -1])
        mean = tf.reduce_mean(per_sample, axis=0)
        # The prediction after the first k samples, for each k in counts: accuracy against k.
        sums_by_count = tf.tensordot(self._first_samples, per_sample, axes=1)
        predictions_by_count = tf.argmax(sums_by_count, axis=-1)
        return deterministic, mean, predictions_by_count, per_sample

    def predict(
        self, images: np.ndarray, keep_samples: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Returns deterministic probabilities (N, C), MC mean probabilities (N, C), the class
        predicted after each of ``counts`` samples (K, N), and all samples (S, N, C) on request."""
        if len(images) == 0:
            raise ValueError("MC Dropout needs at least one image to evaluate.")
        deterministic, mean, by_count, kept = [], [], [], []
        for start in range(0, len(images), self.batch_size):
            batch = tf.convert_to_tensor(images[start : start + self.batch_size])
            det, avg, predicted, per_sample = self._predict_batch(batch)
            deterministic.append(det.numpy())
            mean.append(avg.numpy())
            by_count.append(predicted.numpy())
            if keep_samples:
                kept.append(per_sample.numpy())
        samples = np.concatenate(kept, axis=1) if keep_samples else None
        return (
            np.concatenate(deterministic),
            np.concatenate(mean),
            np.concatenate(by_count, axis=1),
            samples,
        )


def mc_dropout_report(
    network: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    samples: int,
    dropout_rate: float,
) -> McDropoutReport:
    """Compares deterministic and MC Dropout predictions of ``network`` on the given images."""
    counts = tuple(sorted({*(c for c in SAMPLE_COUNTS if c <= samples), samples}))
    predictor = MonteCarloPredictor(network, samples, counts)
    deterministic, monte_carlo, predictions_by_count, _ = predictor.predict(images)
    labels = np.asarray(labels).reshape(-1)
    return McDropoutReport(
        samples=samples,
        dropout_rate=dropout_rate,
        evaluated_images=len(labels),
        deterministic=prediction_stats(deterministic, labels),
        monte_carlo=prediction_stats(monte_carlo, labels),
        accuracy_by_samples=[
            SampleCountAccuracy(samples=count, accuracy=float(np.mean(predicted == labels)))
            for count, predicted in zip(predictor.counts, predictions_by_count, strict=True)
        ],
    )


def prediction_stats(probabilities: np.ndarray, labels: np.ndarray) -> PredictionStats:
    """Accuracy, calibration and confidence histograms of one way of predicting."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    confidence_edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    entropy_edges = np.linspace(0.0, math.log(probabilities.shape[1]), HISTOGRAM_BINS + 1)
    reliability = reliability_bins(confidence, correct)
    return PredictionStats(
        accuracy=float(correct.mean()),
        expected_calibration_error=expected_calibration_error(reliability, len(labels)),
        confidence_correct=_histogram(confidence[correct], confidence_edges),
        confidence_wrong=_histogram(confidence[~correct], confidence_edges),
        entropy=_histogram(predictive_entropy(probabilities), entropy_edges),
        reliability=reliability,
    )


def predictive_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of class probabilities; 0 for a one-hot row."""
    clipped = np.clip(probabilities, 1e-12, 1.0)
    return np.maximum(-(probabilities * np.log(clipped)).sum(axis=1), 0.0)


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[ReliabilityBin]:
    """Equal-width confidence bins (lower, upper]; the first bin also holds confidence 0."""
    index = np.clip(np.ceil(np.asarray(confidence) * bins).astype(int) - 1, 0, bins - 1)
    result = []
    for bin_index in range(bins):
        members = index == bin_index
        count = int(members.sum())
        result.append(
            ReliabilityBin(
                lower=bin_index / bins,
                upper=(bin_index + 1) / bins,
                count=count,
                mean_confidence=float(confidence[members].mean()) if count else None,
                accuracy=float(np.asarray(correct)[members].mean()) if count else None,
            )
        )
    return result


def expected_calibration_error(reliability: list[ReliabilityBin], total: int) -> float:
    """Sum over bins of (bin share of the images) x |bin accuracy - bin mean confidence|."""
    if total < 1:
        raise ValueError("The calibration error needs at least one prediction.")
    return float(
        sum(
            bin_.count / total * abs(bin_.accuracy - bin_.mean_confidence)
            for bin_ in reliability
            if bin_.count and bin_.accuracy is not None and bin_.mean_confidence is not None
        )
    )


def _histogram(values: np.ndarray, edges: np.ndarray) -> Histogram:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return Histogram(bin_edges=[float(edge) for edge in edges], counts=[int(c) for c in counts])
