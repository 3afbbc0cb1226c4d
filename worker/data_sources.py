"""Local CIFAR-10 copies: class-folder or python-format, archive or folder, decoded once and cached.

A source is read in one sequential pass (a gzip stream cannot seek cheaply), then decoded into
uint8 arrays that are cached as an uncompressed .npz keyed by the source's path, size and mtime.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

# CIFAR-10's label order 0-9; class folders are mapped to labels by these names.
CIFAR10_CLASS_NAMES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
IMAGE_SHAPE = (32, 32, 3)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
PYTHON_BATCH_NAMES = (*(f"data_batch_{index}" for index in range(1, 6)), "test_batch")
SPLIT_FOLDERS = ("train", "test")
_GZIP_MAGIC = b"\x1f\x8b"
# Bump when the decoded arrays would change for the same source, so old caches are not reused.
_CACHE_FORMAT_VERSION = 1
EXPECTED_LAYOUT = (
    "an archive (.tar.gz, .tgz, .tar or .zip) or folder with train/<class>/ and test/<class>/ "
    "image folders, or the official cifar-10-batches-py files"
)
_SET_PATH_HINT = "set CURVELAB_CIFAR10_PATH to such a copy"


class DatasetError(ValueError):
    """A dataset is missing or malformed; the message names the path and what was expected."""


@dataclass(frozen=True, eq=False)
class RawCifar10:
    """CIFAR-10 as published: uint8 images (N, 32, 32, 3) and int64 labels (N,)."""

    x_train: NDArray[np.uint8]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.uint8]
    y_test: NDArray[np.int64]


def load_local_cifar10(path: Path, cache_dir: Path) -> RawCifar10:
    """Decoded arrays of the copy at `path`, from the cache when the source is unchanged."""
    source = path.expanduser().resolve()
    if not source.exists():
        raise DatasetError(f"CIFAR-10 not found at {source}: expected {EXPECTED_LAYOUT}; "
                           f"{_SET_PATH_HINT}.")
    cache_file = cache_path_for(source, cache_dir)
    cached = _read_cache(cache_file)
    if cached is not None:
        return cached
    raw = _decode_source(source)
    _write_cache(cache_file, raw)
    return raw


def cache_path_for(source: Path, cache_dir: Path) -> Path:
    """Where the decoded arrays of `source` are cached; a changed source gets a new name."""
    digest = hashlib.sha256(f"v{_CACHE_FORMAT_VERSION}|{source}".encode())
    if source.is_dir():
        for file in sorted(item for item in source.rglob("*") if item.is_file()):
            status = file.stat()
            digest.update(f"|{file.relative_to(source)}|{status.st_size}|{status.st_mtime_ns}"
                          .encode())
    else:
        status = source.stat()
        digest.update(f"|{status.st_size}|{status.st_mtime_ns}".encode())
    return cache_dir / f"cifar10-{digest.hexdigest()[:20]}.npz"


def _decode_source(source: Path) -> RawCifar10:
    class_images: list[tuple[str, str, str, bytes]] = []
    python_batches: dict[str, bytes] = {}
    try:
        for name, payload in _read_members(source, _is_wanted):
            parts = _name_parts(name)
            if parts[-1] in PYTHON_BATCH_NAMES:
                python_batches[parts[-1]] = payload
            else:
                class_images.append((parts[-3].lower(), parts[-2], name, payload))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
        raise DatasetError(f"CIFAR-10 archive {source} could not be read ({error}): expected "
                           f"{EXPECTED_LAYOUT}.") from error
    if python_batches:
        return _from_python_batches(source, python_batches)
    if class_images:
        return _from_class_folders(source, class_images)
    raise DatasetError(f"No CIFAR-10 images found in {source}: expected {EXPECTED_LAYOUT}; "
                       f"{_SET_PATH_HINT}.")


def _name_parts(name: str) -> list[str]:
    # Plain string splitting: pathlib costs seconds over CIFAR-10's 60,000 members.
    return [part for part in name.split("/") if part not in ("", ".")]


def _is_wanted(name: str) -> bool:
    parts = _name_parts(name)
    if not parts or any(part.startswith((".", "__MACOSX")) for part in parts):
        return False
    if parts[-1] in PYTHON_BATCH_NAMES:
        # The official archive nests the batches in one folder; deeper copies are not ours.
        return len(parts) <= 2
    # train/<class>/<image>, possibly under one top-level folder of any name.
    return (len(parts) in (3, 4) and parts[-3].lower() in SPLIT_FOLDERS
            and os.path.splitext(parts[-1])[1].lower() in IMAGE_SUFFIXES)


def _read_members(source: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """(relative name, bytes) of each wanted file, in one sequential pass over the source."""
    if source.is_dir():
        for file in sorted(source.rglob("*")):
            name = file.relative_to(source).as_posix()
            if file.is_file() and wanted(name):
                yield name, file.read_bytes()
        return
    lowered = source.name.lower()
    if lowered.endswith(".zip"):
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if not info.is_dir() and wanted(info.filename):
                    yield info.filename, archive.read(info)
        return
    if not lowered.endswith(ARCHIVE_SUFFIXES):
        raise DatasetError(f"CIFAR-10 source {source} is neither a folder nor a .tar.gz, .tgz, "
                           f".tar or .zip archive: expected {EXPECTED_LAYOUT}.")
    payload = source.read_bytes()
    if payload[:2] == _GZIP_MAGIC:
        # One decompression call and an in-memory walk are about twice as fast as tarfile's
        # stream mode; CIFAR-10 archives unpack to under 200 MB.
        payload = gzip.decompress(payload)
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as archive:
        for member in archive:
            if member.isfile() and wanted(member.name):
                extracted = archive.extractfile(member)
                if extracted is not None:
                    yield member.name, extracted.read()


def _from_class_folders(source: Path, entries: list[tuple[str, str, str, bytes]]) -> RawCifar10:
    labels_by_name = {name: label for label, name in enumerate(CIFAR10_CLASS_NAMES)}
    arrays: dict[str, tuple[NDArray[np.uint8], NDArray[np.int64]]] = {}
    for split in SPLIT_FOLDERS:
        split_entries = [entry for entry in entries if entry[0] == split]
        if not split_entries:
            raise DatasetError(f"CIFAR-10 copy {source} has no {split}/ images: expected both "
                               f"train/<class>/ and test/<class>/ image folders.")
        unknown = sorted({entry[1] for entry in split_entries} - set(labels_by_name))
        missing = sorted(set(labels_by_name) - {entry[1] for entry in split_entries},
                         key=labels_by_name.__getitem__)
        if unknown or missing:
            problem = f"unknown {unknown}" if unknown else f"missing {missing}"
            raise DatasetError(f"CIFAR-10 copy {source} has {split}/ class folders {problem}: "
                               f"expected exactly {', '.join(CIFAR10_CLASS_NAMES)}.")
        # Sorting makes the arrays independent of the order in which the archive lists files.
        split_entries.sort(key=lambda entry: (labels_by_name[entry[1]], entry[2]))
        images = np.stack([_decode_image(source, name, payload)
                           for _, _, name, payload in split_entries])
        labels = np.array([labels_by_name[entry[1]] for entry in split_entries], dtype=np.int64)
        arrays[split] = images, labels
    return RawCifar10(*arrays["train"], *arrays["test"])


def _decode_image(source: Path, name: str, payload: bytes) -> NDArray[np.uint8]:
    try:
        with Image.open(io.BytesIO(payload), formats=("JPEG", "PNG")) as image:
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            width, height = rgb.size
            pixels = np.frombuffer(rgb.tobytes(), dtype=np.uint8).reshape(height, width, 3)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DatasetError(f"Image {name} in {source} could not be decoded ({error}): expected "
                           f"a JPEG or PNG file.") from error
    if pixels.shape != IMAGE_SHAPE:
        height, width = pixels.shape[:2]
        raise DatasetError(f"Image {name} in {source} is {width}x{height} pixels: expected "
                           f"32x32 CIFAR-10 images.")
    return pixels


def _from_python_batches(source: Path, batches: dict[str, bytes]) -> RawCifar10:
    missing = [name for name in PYTHON_BATCH_NAMES if name not in batches]
    if missing:
        raise DatasetError(f"CIFAR-10 copy {source} lacks {', '.join(missing)}: expected the "
                           f"official cifar-10-batches-py files data_batch_1 to data_batch_5 "
                           f"and test_batch.")
    train = [_decode_python_batch(source, name, batches[name]) for name in PYTHON_BATCH_NAMES[:5]]
    x_test, y_test = _decode_python_batch(source, "test_batch", batches["test_batch"])
    return RawCifar10(np.concatenate([images for images, _ in train]),
                      np.concatenate([labels for _, labels in train]), x_test, y_test)


def _decode_python_batch(
    source: Path, name: str, payload: bytes
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    expected = ("expected a pickled dict with 'data' (N x 3072 uint8) and 'labels' "
                "(N labels 0-9) as in the official cifar-10-batches-py")
    try:
        # The official format is a pickle; the path is chosen by whoever runs the worker.
        batch = pickle.loads(payload, encoding="bytes")
        data = np.asarray(batch.get(b"data", batch.get("data")), dtype=np.uint8)
        labels = np.asarray(batch.get(b"labels", batch.get("labels")), dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
        raise DatasetError(f"Batch {name} in {source} could not be read ({error}): "
                           f"{expected}.") from error
    if (data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),)
            or labels.min(initial=0) < 0 or labels.max(initial=0) > 9):
        raise DatasetError(f"Batch {name} in {source} has data of shape {data.shape} and "
                           f"{labels.size} labels: {expected}.")
    # Rows are stored channel-first (1024 red, then green, then blue values).
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _read_cache(cache_file: Path) -> RawCifar10 | None:
    if not cache_file.exists():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            raw = RawCifar10(stored["x_train"], stored["y_train"], stored["x_test"],
                             stored["y_test"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        logger.warning("Ignoring unreadable dataset cache %s (%s); decoding again.",
                       cache_file, error)
        return None
    if raw.x_train.shape[1:] != IMAGE_SHAPE or raw.x_test.shape[1:] != IMAGE_SHAPE:
        return None
    return raw


def _write_cache(cache_file: Path, raw: RawCifar10) -> None:
    """Write atomically, so a concurrent worker never reads a half-written cache."""
    temporary_name = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary_name = tempfile.mkstemp(
            dir=cache_file.parent, prefix=f".{cache_file.stem}-", suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test,
                     y_test=raw.y_test)
        os.replace(temporary_name, cache_file)
    except OSError as error:
        # The cache only saves time; a read-only var dir must not stop training.
        logger.warning("Could not write the dataset cache %s (%s); the next load decodes "
                       "again.", cache_file, error)
        if temporary_name is not None:
            Path(temporary_name).unlink(missing_ok=True)
