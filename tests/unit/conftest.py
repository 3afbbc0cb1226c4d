"""Builders of tiny CIFAR-10 copies in every layout the worker accepts."""

from __future__ import annotations

import pickle
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.data_sources import CIFAR10_CLASS_NAMES

SPLIT_CODES = {"train": 1, "test": 2}
PYTHON_BATCH_NAMES = [f"data_batch_{number}" for number in range(1, 6)] + ["test_batch"]


class CifarCopies:
    """Writes tiny CIFAR-10 copies under one folder; every image is unique and marked."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def marked_image(split: str, label: int, index: int, size: int = 32) -> np.ndarray:
        """A random image whose first pixel spells (split code, label, index)."""
        rng = np.random.default_rng([SPLIT_CODES[split], label, index])
        image = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        image[0, 0] = (SPLIT_CODES[split], label, index)
        return image

    def class_folders(
        self,
        name: str = "tree",
        per_split: dict[str, int] | None = None,
        class_names: Sequence[str] = CIFAR10_CLASS_NAMES,
        image_size: int = 32,
    ) -> Path:
        """`<split>/<class>/NNNN.png` images; PNG keeps the marked pixels exact."""
        root = self.root / name
        for split, count in (per_split or {"train": 3, "test": 1}).items():
            for label, class_name in enumerate(class_names):
                folder = root / split / class_name
                folder.mkdir(parents=True)
                for index in range(count):
                    pixels = self.marked_image(split, label, index, image_size)
                    Image.fromarray(pixels).save(folder / f"{index:04d}.png")
        return root

    def python_batches(
        self, name: str = "official", per_batch: int = 4, skip: Sequence[str] = ()
    ) -> Path:
        """A folder holding cifar-10-batches-py with the six official pickles."""
        folder = self.root / name / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for batch_number, batch_name in enumerate(PYTHON_BATCH_NAMES):
            if batch_name in skip:
                continue
            split = "test" if batch_name == "test_batch" else "train"
            labels = [(batch_number + index) % 10 for index in range(per_batch)]
            images = np.stack([
                self.marked_image(split, label, batch_number * per_batch + index)
                for index, label in enumerate(labels)
            ])
            # The official rows are channel-first: 1024 red values, then green, then blue.
            rows = images.transpose(0, 3, 1, 2).reshape(per_batch, -1)
            batch = {b"batch_label": batch_name.encode(), b"labels": labels, b"data": rows}
            (folder / batch_name).write_bytes(pickle.dumps(batch))
        return folder.parent

    def pack(self, folder: Path, archive_name: str, top_level: str | None = None) -> Path:
        """The files under `folder` in a .tar.gz, .tgz, .tar or .zip archive."""
        archive = self.root / archive_name
        archive.parent.mkdir(parents=True, exist_ok=True)
        prefix = f"{top_level}/" if top_level else ""
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        if archive_name.endswith(".zip"):
            with zipfile.ZipFile(archive, "w") as bundle:
                for file in files:
                    bundle.write(file, prefix + file.relative_to(folder).as_posix())
        else:
            mode = "w" if archive_name.endswith(".tar") else "w:gz"
            with tarfile.open(archive, mode) as bundle:
                for file in files:
                    bundle.add(file, prefix + file.relative_to(folder).as_posix())
        return archive


@pytest.fixture
def cifar_copies(tmp_path: Path) -> CifarCopies:
    return CifarCopies(tmp_path / "copies")


@pytest.fixture
def class_folder_archive(cifar_copies: CifarCopies) -> Path:
    """3 train and 1 test image per class in a tar.gz under a top folder, like the real copy."""
    tree = cifar_copies.class_folders()
    return cifar_copies.pack(tree, "cifar10-tiny.tar.gz", top_level="CIFAR-10-images-master")
