"""Local CIFAR-10 copies in every accepted layout, the decoded-array cache, and every refusal."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from backend.settings import Settings
from worker.data import DatasetError, load_splits
from worker.data_sources import CIFAR10_CLASS_NAMES, RawCifar10, load_local_cifar10


def _assert_marked_images(copies, raw: RawCifar10) -> None:
    """Every decoded image is exactly the one written for its split, label and index."""
    for split, images, labels in (("train", raw.x_train, raw.y_train),
                                  ("test", raw.x_test, raw.y_test)):
        for image, label in zip(images, labels, strict=True):
            split_code, marked_label, index = image[0, 0]
            assert marked_label == label
            np.testing.assert_array_equal(image, copies.marked_image(split, int(label), index))
            assert split_code == {"train": 1, "test": 2}[split]


@pytest.mark.parametrize(
    ("archive_name", "top_level"),
    [("cifar.tar.gz", "CIFAR-10-images-master"), ("cifar.tgz", None), ("cifar.tar", "any-name"),
     ("cifar.zip", "cifar10")],
)
def test_class_folder_archives_decode_every_image_with_its_label(
    cifar_copies, tmp_path, archive_name, top_level
):
    archive = cifar_copies.pack(cifar_copies.class_folders(), archive_name, top_level)

    raw = load_local_cifar10(archive, tmp_path / "cache")

    assert raw.x_train.shape == (30, 32, 32, 3) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10, 32, 32, 3)
    assert raw.y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(raw.y_train), [3] * 10)
    _assert_marked_images(cifar_copies, raw)


@pytest.mark.parametrize("nested", [False, True], ids=["split-folders-at-root", "one-top-folder"])
def test_class_folder_folders_decode_like_archives(cifar_copies, tmp_path, nested):
    tree = cifar_copies.class_folders("outer/top" if nested else "tree")

    raw = load_local_cifar10(tree.parent if nested else tree, tmp_path / "cache")

    assert (len(raw.x_train), len(raw.x_test)) == (30, 10)
    _assert_marked_images(cifar_copies, raw)


def test_class_folder_labels_follow_cifar10_order(cifar_copies, tmp_path):
    raw = load_local_cifar10(cifar_copies.class_folders(), tmp_path / "cache")

    cat_images = raw.x_train[raw.y_train == CIFAR10_CLASS_NAMES.index("cat")]
    assert {int(image[0, 0, 1]) for image in cat_images} == {3}


@pytest.mark.parametrize("form", ["batches-folder", "parent-folder", "tar.gz"])
def test_python_format_copies_decode_channel_first_rows(cifar_copies, tmp_path, form):
    parent = cifar_copies.python_batches(per_batch=4)
    source = {
        "batches-folder": parent / "cifar-10-batches-py",
        "parent-folder": parent,
        "tar.gz": cifar_copies.pack(parent, "cifar-10-python.tar.gz"),
    }[form]

    raw = load_local_cifar10(source, tmp_path / "cache")

    assert raw.x_train.shape == (20, 32, 32, 3) and raw.x_test.shape == (4, 32, 32, 3)
    assert raw.x_train.flags.c_contiguous
    _assert_marked_images(cifar_copies, raw)


def test_second_load_reads_the_cache_instead_of_decoding(class_folder_archive, tmp_path):
    cache_dir = tmp_path / "cache"
    first = load_local_cifar10(class_folder_archive, cache_dir)
    (cache_file,) = cache_dir.iterdir()
    assert cache_file.suffix == ".npz"
    # Rewrite the cache with blank images: a load that returns them did not decode the source.
    np.savez(cache_file, x_train=np.zeros_like(first.x_train), y_train=first.y_train,
             x_test=np.zeros_like(first.x_test), y_test=first.y_test)

    second = load_local_cifar10(class_folder_archive, cache_dir)

    assert not second.x_train.any() and not second.x_test.any()
    np.testing.assert_array_equal(second.y_train, first.y_train)


def test_a_changed_source_is_decoded_again(class_folder_archive, tmp_path):
    cache_dir = tmp_path / "cache"
    load_local_cifar10(class_folder_archive, cache_dir)
    (stale_cache,) = cache_dir.iterdir()
    np.savez(stale_cache, x_train=np.zeros((1, 32, 32, 3), np.uint8), y_train=np.zeros(1),
             x_test=np.zeros((1, 32, 32, 3), np.uint8), y_test=np.zeros(1))
    modified = class_folder_archive.stat().st_mtime + 10
    os.utime(class_folder_archive, (modified, modified))

    raw = load_local_cifar10(class_folder_archive, cache_dir)

    assert len(raw.x_train) == 30
    assert len(list(cache_dir.iterdir())) == 2


def test_an_unreadable_cache_is_replaced(class_folder_archive, tmp_path):
    cache_dir = tmp_path / "cache"
    load_local_cifar10(class_folder_archive, cache_dir)
    (cache_file,) = cache_dir.iterdir()
    cache_file.write_bytes(b"half a file")

    raw = load_local_cifar10(class_folder_archive, cache_dir)

    assert len(raw.x_train) == 30
    assert sorted(cache_dir.iterdir()) == [cache_file]
    assert len(load_local_cifar10(class_folder_archive, cache_dir).x_train) == 30


def _load_error(tmp_path: Path, source: Path) -> str:
    settings = Settings(var_dir=tmp_path / "var", cifar10_path=source)
    with pytest.raises(DatasetError) as caught:
        load_splits("cifar10", settings, seed=0)
    message = str(caught.value)
    assert str(source.resolve()) in message
    assert "expected" in message
    assert message.endswith(".") and "\n" not in message
    return message


def test_missing_path_names_the_setting(tmp_path):
    message = _load_error(tmp_path, tmp_path / "nowhere" / "cifar10.tar.gz")

    assert message.startswith("CIFAR-10 not found at ")
    assert "CURVELAB_CIFAR10_PATH" in message


def test_a_file_that_is_no_archive_is_refused(tmp_path):
    source = tmp_path / "cifar10.csv"
    source.write_text("label,pixels\n")

    assert "neither a folder nor" in _load_error(tmp_path, source)


def test_a_corrupt_archive_is_refused(tmp_path):
    source = tmp_path / "cifar10.tar.gz"
    source.write_bytes(b"\x1f\x8bthis is not gzip data at all")

    assert "could not be read" in _load_error(tmp_path, source)


def test_an_archive_without_images_is_refused(cifar_copies, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "README.txt").write_text("nothing to see")
    source = cifar_copies.pack(folder, "notes.tar.gz")

    assert "No CIFAR-10 images found" in _load_error(tmp_path, source)


def test_images_of_the_wrong_size_are_refused(cifar_copies, tmp_path):
    source = cifar_copies.pack(cifar_copies.class_folders(image_size=28), "small.zip")

    assert "is 28x28 pixels: expected 32x32" in _load_error(tmp_path, source)


def test_an_undecodable_image_is_refused(cifar_copies, tmp_path):
    tree = cifar_copies.class_folders()
    (tree / "test" / "dog" / "broken.jpg").write_bytes(b"not a jpeg")

    message = _load_error(tmp_path, tree)

    assert "test/dog/broken.jpg" in message and "could not be decoded" in message


def test_a_missing_test_split_is_refused(cifar_copies, tmp_path):
    source = cifar_copies.class_folders(per_split={"train": 2})

    assert "has no test/ images" in _load_error(tmp_path, source)


def test_a_missing_class_folder_is_refused(cifar_copies, tmp_path):
    source = cifar_copies.class_folders(class_names=CIFAR10_CLASS_NAMES[:9])

    assert "missing ['truck']" in _load_error(tmp_path, source)


def test_an_unknown_class_folder_is_refused(cifar_copies, tmp_path):
    source = cifar_copies.class_folders(class_names=(*CIFAR10_CLASS_NAMES[:9], "unicorn"))

    assert "unknown ['unicorn']" in _load_error(tmp_path, source)


def test_a_missing_python_batch_is_refused(cifar_copies, tmp_path):
    source = cifar_copies.python_batches(skip=["data_batch_3"])

    assert "lacks data_batch_3" in _load_error(tmp_path, source)


def test_a_python_batch_of_the_wrong_shape_is_refused(cifar_copies, tmp_path):
    source = cifar_copies.python_batches()
    batch = {b"labels": [0, 1], b"data": np.zeros((2, 100), np.uint8)}
    (source / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(batch))

    assert "test_batch" in _load_error(tmp_path, source)


def test_a_python_batch_that_is_no_pickle_is_refused(cifar_copies, tmp_path):
    source = cifar_copies.python_batches()
    (source / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"garbage")

    assert "data_batch_1" in _load_error(tmp_path, source)


def test_an_unknown_dataset_name_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="Unknown dataset 'mnist': expected 'cifar10'"):
        load_splits("mnist", Settings(var_dir=tmp_path), seed=0)
