"""MNIST and Fashion-MNIST: four gzipped IDX files each, read from a folder or a download cache.

``FILES`` and ``MIRRORS`` are module-level mappings on purpose: tests (and users behind a proxy
of their own) can point them elsewhere. The md5s were checked against the real files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from caviar.core.errors import InvalidValue, got
from caviar.data.dataset import Dataset
from caviar.data.download import cache_root, cache_source, check_md5, ensure_file
from caviar.data.idx import read_idx
from caviar.data.preprocessing import pixels

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

#: dataset -> file name -> md5 of the gzipped file
FILES: dict[str, dict[str, str]] = {
    "mnist": {
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

#: dataset -> base URLs, tried in order (a file's URL is base + file name)
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(k) for k in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}


def load_idx_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    key_prefix: str = "",
) -> Dataset:
    """``name`` ("mnist" or "fashion-mnist") from ``data_dir`` only, or else from the cache,
    downloading what is missing; every file is md5-checked before it is read. A bad
    ``data_dir`` or cache folder is an :class:`InvalidValue` owned by ``key_prefix`` +
    ``"data_dir"`` / ``"cache_dir"``."""
    files = FILES[name]
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            state = "is a file" if folder.exists() else "does not exist"
            raise InvalidValue(
                f"{key_prefix}data_dir",
                f"must be a folder holding the {name} IDX files, got {str(folder)!r}, "
                f"which {state}",
            )
        paths = {}
        for file, md5 in files.items():
            path = folder / file
            if not path.is_file():
                raise InvalidValue(
                    f"{key_prefix}data_dir",
                    f"file {file} is missing from data_dir {str(folder)!r} "
                    f"(expected the gzipped files {', '.join(files)})",
                )
            check_md5(path, md5)
            paths[file] = path
        where = f"{folder}"
    else:
        folder = cache_root(cache_dir) / name
        paths = {
            file: ensure_file(
                file,
                folder,
                md5,
                MIRRORS[name],
                download=download,
                owner=f"{key_prefix}cache_dir",
                source=cache_source(cache_dir),
            )
            for file, md5 in files.items()
        }
        where = f"{folder} (cache)"
    x_train = _images(paths[TRAIN_IMAGES])
    y_train = _labels(paths[TRAIN_LABELS], len(x_train))
    x_test = _images(paths[TEST_IMAGES])
    y_test = _labels(paths[TEST_LABELS], len(x_test))
    return Dataset(
        name=name,
        x_train=x_train.reshape(len(x_train), -1),  # [N, 28 * 28]
        y_train=y_train,
        x_test=x_test.reshape(len(x_test), -1),
        y_test=y_test,
        n_classes=len(CLASS_NAMES[name]),
        source=f"{name} IDX files from {where}; pixels / 255",
        class_names=CLASS_NAMES[name],
        input_shape=tuple(x_train.shape[1:]),
        preprocessing=pixels(tuple(x_train.shape[1:]), 255.0),
    )


def _images(path: Path) -> np.ndarray:
    """``[N, H, W]`` float32 in [0, 1] from a ubyte IDX image file."""
    raw = read_idx(path)
    if raw.dtype != np.uint8 or raw.ndim != 3:
        raise InvalidValue(
            str(path),
            f"must hold ubyte images [N, H, W], got {raw.dtype} of shape {list(raw.shape)}",
        )
    images = raw.astype(np.float32)
    images /= 255.0  # in place: no second 188 MB array for MNIST's training set
    return images


def _labels(path: Path, n: int) -> np.ndarray:
    """``[n]`` int64 labels from a ubyte IDX label file, checked against the ``n`` images."""
    raw = read_idx(path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise InvalidValue(
            str(path), f"must hold ubyte labels [N], got {raw.dtype} of shape {list(raw.shape)}"
        )
    if len(raw) != n:
        raise InvalidValue(str(path), f"must hold one label per image ({n}), got {len(raw)}")
    if raw.max(initial=0) >= 10:
        raise InvalidValue(str(path), f"labels must be in [0, 9], {got(int(raw.max()))}")
    return raw.astype(np.int64)
