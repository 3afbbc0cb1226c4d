"""MC Dropout on 10,000 images x 100 samples: the engine's vectorized sampler against the naive
loop of 100 ``model(x, training=True)`` calls (a call on all images at once, the fastest naive
form; ``predict`` would switch dropout off). The network is the alpha_dropout variant (20 x 100,
AlphaDropout 0.1) with its initial weights and the images are random: timing does not depend
on either. Prints the GFLOP/s the sampler reaches and a float32 matmul peak measured in this
run, and ends with RESULT lines for the speedup and both rates.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.common import say  # noqa: E402
from worker.mc_dropout import SAMPLE_COUNTS, MonteCarloPredictor  # noqa: E402
from worker.train import describe_device  # noqa: E402
from worker.variants import build_network  # noqa: E402

IMAGES = int(os.environ.get("BENCH_IMAGES", "10000"))
SAMPLES = 100
REPEATS = 3
MATMUL_SIZE = 2048



def dense_flops_per_row(layers: list[keras.layers.Layer]) -> int:
    """Multiply-adds of the Dense layers, counted as two FLOPs each; the rest is negligible."""
    return sum(
        2 * int(np.prod(layer.kernel.shape))
        for layer in layers
        if isinstance(layer, keras.layers.Dense)
    )


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def matmul_peak_gflops() -> float:
    left = tf.random.normal([MATMUL_SIZE, MATMUL_SIZE])
    right = tf.random.normal([MATMUL_SIZE, MATMUL_SIZE])
    tf.matmul(left, right).numpy()
    seconds = median_seconds(lambda: tf.matmul(left, right).numpy(), 5)
    return 2 * MATMUL_SIZE**3 / seconds / 1e9


def main() -> None:
    keras.utils.set_random_seed(0)
    network = build_network("alpha_dropout", depth=20, width=100, dropout_rate=0.1)
    images = np.random.default_rng(0).normal(size=(IMAGES, 32, 32, 3)).astype("float32")
    say(f"device: {describe_device()}; {IMAGES} random images, "
        f"{SAMPLES} samples, untrained alpha_dropout network")

    peak = matmul_peak_gflops()
    say(f"float32 matmul {MATMUL_SIZE}x{MATMUL_SIZE}: {peak:.1f} GFLOP/s")

    predictor = MonteCarloPredictor(network, SAMPLES, SAMPLE_COUNTS)
    predictor.predict(images[: predictor.batch_size])  # Traces the sampler once.
    vectorized_seconds = median_seconds(lambda: predictor.predict(images), REPEATS)
    _, vectorized_mean, _, _ = predictor.predict(images)
    shared = dense_flops_per_row(predictor.deterministic_layers)
    sampled = dense_flops_per_row(predictor.sampled_layers)
    # Per image: the shared layers once, the layers after dropout once per sample and once more
    # for the deterministic prediction that comes out of the same pass.
    performed_flops = IMAGES * (shared + (SAMPLES + 1) * sampled)
    naive_flops = IMAGES * SAMPLES * (shared + sampled)
    gflops = performed_flops / vectorized_seconds / 1e9
    # The Dense work is the FLOP count; most of the time after the shared layers goes to
    # drawing a random mask for every activation of every sample, which is memory-bound.
    say(f"vectorized: {vectorized_seconds:.3f} s, {performed_flops / 1e9:.1f} GFLOP performed, "
        f"{gflops:.1f} GFLOP/s ({gflops / peak:.0%} of the matmul peak); "
        f"{naive_flops / vectorized_seconds / 1e9:.1f} GFLOP/s counted as the naive work")

    def naive() -> np.ndarray:
        total = np.zeros((IMAGES, 10), dtype=np.float64)
        for _ in range(SAMPLES):
            total += keras.ops.convert_to_numpy(network(images, training=True))
        return total / SAMPLES

    network(images[:100], training=True)  # Warms up the eager kernels.
    started = time.perf_counter()
    naive_mean = naive()
    naive_seconds = time.perf_counter() - started
    say(f"naive loop of {SAMPLES} calls: {naive_seconds:.3f} s, "
        f"{naive_flops / naive_seconds / 1e9:.1f} GFLOP/s")
    # Both estimate the same expectation; with 100 samples they agree to about a percent.
    difference = np.abs(vectorized_mean - naive_mean)
    say(f"difference between the two mean probabilities: mean {difference.mean():.4f}, "
        f"largest {difference.max():.4f}")
    say(f"RESULT mc_dropout_speedup {naive_seconds / vectorized_seconds:.1f}")
    say(f"RESULT mc_dropout_gflops {gflops:.1f}")
    say(f"RESULT matmul_peak_gflops {peak:.1f}")


if __name__ == "__main__":
    main()
