"""The datasets a run trains on: CIFAR-10 or a synthetic stand-in, split and scaled for a model.

`load_splits` returns raw uint8 images with a seeded validation split carved out of the training
set; `prepare_inputs` turns them into float32 model inputs. The test split is only ever passed
through, so the final evaluation is the first time a model sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backend.settings import Settings
from worker.data_sources import CIFAR10_CLASS_NAMES, DatasetError, RawCifar10, load_local_cifar10

__all__ = [
    "SYNTHETIC_TEST_SIZE",
    "SYNTHETIC_TRAIN_SIZE",
    "VALIDATION_FRACTION",
    "DatasetError",
    "DatasetSplits",
    "ModelInputs",
    "load_splits",
    "prepare_inputs",
]

# 5,000 of CIFAR-10's 50,000 training images, as in the chapter; the same share elsewhere.
VALIDATION_FRACTION = 0.1
# Small enough to generate in milliseconds and train a few epochs in seconds on a CPU.
SYNTHETIC_TRAIN_SIZE = 2000
SYNTHETIC_TEST_SIZE = 500
SYNTHETIC_CLASS_NAMES: tuple[str, ...] = tuple(f"pattern_{index}" for index in range(10))


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """Raw images, uint8 (N, 32, 32, 3), and int64 labels (N,) of each split."""

    x_train: NDArray[np.uint8]
    y_train: NDArray[np.int64]
    x_valid: NDArray[np.uint8]
    y_valid: NDArray[np.int64]
    x_test: NDArray[np.uint8]
    y_test: NDArray[np.int64]
    class_names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Float32 images (N, 32, 32, 3) and int64 labels, ready for `model.fit`."""

    x_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    x_valid: NDArray[np.float32]
    y_valid: NDArray[np.int64]
    x_test: NDArray[np.float32]
    y_test: NDArray[np.int64]


def load_splits(dataset: str, settings: Settings, seed: int) -> DatasetSplits:
    """Train, validation and test splits of `dataset` ("cifar10" or "synthetic")."""
    if dataset == "cifar10":
        if settings.cifar10_path is None:
            raw = _download_cifar10()
        else:
            raw = load_local_cifar10(settings.cifar10_path, settings.dataset_cache_dir)
        class_names = CIFAR10_CLASS_NAMES
    elif dataset == "synthetic":
        raw = generate_synthetic(seed)
        class_names = SYNTHETIC_CLASS_NAMES
    else:
        raise DatasetError(f"Unknown dataset {dataset!r}: expected 'cifar10' or 'synthetic'.")
    return _hold_out_validation(raw, class_names, seed)


def prepare_inputs(splits: DatasetSplits, standardize: bool) -> ModelInputs:
    """Scale pixels to [0, 1], or standardize each feature with the training split's statistics."""
    if standardize:
        mean, std = _feature_mean_and_std(splits.x_train)
    else:
        mean, std = np.asarray(0.0, dtype=np.float32), np.asarray(255.0, dtype=np.float32)

    def scale(images: NDArray[np.uint8]) -> NDArray[np.float32]:
        # In place on one float32 copy: CIFAR-10's training split alone is 553 MB as float32.
        scaled = images.astype(np.float32)
        scaled -= mean
        scaled /= std
        return scaled

    return ModelInputs(
        scale(splits.x_train), splits.y_train.astype(np.int64),
        scale(splits.x_valid), splits.y_valid.astype(np.int64),
        scale(splits.x_test), splits.y_test.astype(np.int64),
    )


def _feature_mean_and_std(
    images: NDArray[np.uint8], chunk_size: int = 5000
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per pixel-and-channel mean and std, in chunks: a float64 copy of CIFAR-10 is 1.1 GB."""
    if len(images) == 0:
        raise DatasetError("The training split is empty: expected at least one image to "
                           "compute standardization statistics from.")
    total = np.zeros(images.shape[1:], dtype=np.float64)
    total_of_squares = np.zeros(images.shape[1:], dtype=np.float64)
    for start in range(0, len(images), chunk_size):
        chunk = images[start:start + chunk_size].astype(np.float64)
        total += chunk.sum(axis=0)
        total_of_squares += np.square(chunk).sum(axis=0)
    mean = total / len(images)
    variance = np.maximum(total_of_squares / len(images) - np.square(mean), 0.0)
    std = np.sqrt(variance)
    # A constant pixel (std 0) is left centred rather than divided into infinity.
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _hold_out_validation(raw: RawCifar10, class_names: tuple[str, ...], seed: int) -> DatasetSplits:
    order = np.random.default_rng(seed).permutation(len(raw.x_train))
    validation_size = round(len(order) * VALIDATION_FRACTION)
    valid_indices, train_indices = order[:validation_size], order[validation_size:]
    return DatasetSplits(
        x_train=raw.x_train[train_indices], y_train=raw.y_train[train_indices],
        x_valid=raw.x_train[valid_indices], y_valid=raw.y_train[valid_indices],
        x_test=raw.x_test, y_test=raw.y_test, class_names=class_names,
    )


def _download_cifar10() -> RawCifar10:
    # Imported here so that synthetic runs and local copies never pay for loading TensorFlow.
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # Keras wraps network failures in a bare Exception.
        raise DatasetError(
            f"CIFAR-10 could not be downloaded by Keras into ~/.keras/datasets ({error}): expected "
            "an internet connection, or set CURVELAB_CIFAR10_PATH to a local copy."
        ) from error
    return RawCifar10(
        np.asarray(x_train, dtype=np.uint8), np.asarray(y_train, dtype=np.int64).reshape(-1),
        np.asarray(x_test, dtype=np.uint8), np.asarray(y_test, dtype=np.int64).reshape(-1),
    )


def generate_synthetic(
    seed: int, train_size: int = SYNTHETIC_TRAIN_SIZE, test_size: int = SYNTHETIC_TEST_SIZE
) -> RawCifar10:
    """CIFAR-shaped images of ten smooth colour patterns, blurred by shifts, contrast and noise."""
    rng = np.random.default_rng([seed, 1])
    class_count = len(SYNTHETIC_CLASS_NAMES)
    # Prototypes are drawn on a larger canvas so that a random 32x32 crop shifts the pattern.
    margin = 4
    prototypes = _smooth_patterns(rng, class_count, 32 + 2 * margin, strength=25.0)
    # Class-free patterns twice as strong overlap the classes, so telling them apart takes
    # learning: the SELU network reaches about 75% validation accuracy in three epochs.
    distractors = _smooth_patterns(rng, 40, 32, strength=50.0)
    total = train_size + test_size
    labels = rng.integers(0, class_count, size=total)
    offsets = rng.integers(0, 2 * margin + 1, size=(total, 2))
    rows = offsets[:, 0, None] + np.arange(32)
    columns = offsets[:, 1, None] + np.arange(32)
    images = prototypes[labels[:, None, None], rows[:, :, None], columns[:, None, :]]
    images *= rng.uniform(0.6, 1.4, size=(total, 1, 1, 1)).astype(np.float32)
    images += distractors[rng.integers(0, len(distractors), size=total)]
    images += rng.normal(128.0, 20.0, size=(total, 1, 1, 3)).astype(np.float32)
    images += rng.standard_normal(size=images.shape, dtype=np.float32) * np.float32(60.0)
    pixels = np.clip(images, 0, 255, out=images).astype(np.uint8)
    labels = labels.astype(np.int64)
    return RawCifar10(pixels[:train_size], labels[:train_size],
                      pixels[train_size:], labels[train_size:])


def _smooth_patterns(
    rng: np.random.Generator, count: int, size: int, strength: float
) -> NDArray[np.float32]:
    """`count` random colour fields (size x size x 3), upsampled from a coarse 5x5 grid."""
    coarse = rng.normal(0.0, strength, size=(count, 5, 5, 3)).astype(np.float32)
    positions = np.linspace(0, 4, size, dtype=np.float32)
    lower = np.minimum(positions.astype(int), 3)
    weight = positions - lower
    # Separable linear interpolation: first along rows, then along columns.
    along_rows = (coarse[:, lower] * (1 - weight)[None, :, None, None]
                  + coarse[:, lower + 1] * weight[None, :, None, None])
    return (along_rows[:, :, lower] * (1 - weight)[None, None, :, None]
            + along_rows[:, :, lower + 1] * weight[None, None, :, None])
