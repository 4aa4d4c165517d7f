"""MNIST and Fashion-MNIST: tiny fake files through the real code paths (folder, cache,
download), then the real files from shared/datasets beside the checkout when that folder exists."""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from caviar.core.errors import InvalidValue
from caviar.data import load_dataset
from caviar.data import mnist as mnist_module

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"  # beside the checkout

# Fake MNIST: 3 training images and 2 test images of 2x2 pixels.
TRAIN_PIXELS = [0, 255, 51, 102] + [255] * 4 + [0] * 4  # /255 -> 0, 1, 0.2, 0.4, then 1s, then 0s
TRAIN_LABELS = [7, 0, 9]
TEST_PIXELS = [204] * 4 + [153] * 4  # 0.8 and 0.6
TEST_LABELS = [3, 3]


@pytest.fixture
def fake_files(idx) -> dict[str, bytes]:
    return {
        "train-images-idx3-ubyte.gz": gzip.compress(idx(0x08, (3, 2, 2), bytes(TRAIN_PIXELS))),
        "train-labels-idx1-ubyte.gz": gzip.compress(idx(0x08, (3,), bytes(TRAIN_LABELS))),
        "t10k-images-idx3-ubyte.gz": gzip.compress(idx(0x08, (2, 2, 2), bytes(TEST_PIXELS))),
        "t10k-labels-idx1-ubyte.gz": gzip.compress(idx(0x08, (2,), bytes(TEST_LABELS))),
    }


@pytest.fixture
def fake_mnist(monkeypatch, fake_files) -> dict[str, bytes]:
    """Point the known md5s of "mnist" at the fake files."""
    md5s = {name: hashlib.md5(data).hexdigest() for name, data in fake_files.items()}
    monkeypatch.setitem(mnist_module.FILES, "mnist", md5s)
    return fake_files


def check_fake(dataset) -> None:
    assert dataset.x_train.shape == (3, 4) and dataset.x_train.dtype == np.float32
    np.testing.assert_allclose(dataset.x_train[0], [0.0, 1.0, 0.2, 0.4], rtol=1e-6)
    np.testing.assert_array_equal(dataset.x_train[1:], [[1.0] * 4, [0.0] * 4])
    np.testing.assert_allclose(dataset.x_test, [[0.8] * 4, [0.6] * 4], rtol=1e-6)
    assert dataset.y_train.tolist() == TRAIN_LABELS and dataset.y_train.dtype == np.int64
    assert dataset.y_test.tolist() == TEST_LABELS
    assert dataset.n_classes == 10 and dataset.input_shape == (2, 2)


def test_download_into_cache_then_reuse(mirrors, monkeypatch, fake_mnist, tmp_path) -> None:
    for name, data in fake_mnist.items():
        mirrors.put("m2", name, data)
    mirrors.put("m1", "train-images-idx3-ubyte.gz", b"not it")  # bad first mirror for one file
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", (mirrors.url("m1"), mirrors.url("m2")))
    check_fake(load_dataset("mnist", cache_dir=tmp_path / "cache"))
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(fake_mnist)
    asked = len(mirrors.requests)
    assert asked == 8  # every file tried on m1 first
    check_fake(load_dataset("mnist", cache_dir=tmp_path / "cache", download=False))
    assert len(mirrors.requests) == asked


def test_cache_dir_comes_from_the_environment(mirrors, monkeypatch, fake_mnist, tmp_path) -> None:
    for name, data in fake_mnist.items():
        mirrors.put("m", name, data)
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", (mirrors.url("m"),))
    monkeypatch.setenv("CAVIAR_CACHE", str(tmp_path / "env-cache"))
    check_fake(load_dataset("MNIST"))
    assert (tmp_path / "env-cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_data_dir_is_read_without_network(monkeypatch, fake_mnist, tmp_path) -> None:
    monkeypatch.setitem(mnist_module.MIRRORS, "mnist", ("http://127.0.0.1:9/never/",))
    for name, data in fake_mnist.items():
        (tmp_path / name).write_bytes(data)
    check_fake(load_dataset("mnist", data_dir=tmp_path))


def test_data_dir_missing_file_names_file_and_folder(fake_mnist, tmp_path) -> None:
    for name, data in fake_mnist.items():
        if name != "t10k-labels-idx1-ubyte.gz":
            (tmp_path / name).write_bytes(data)
    with pytest.raises(
        InvalidValue, match=f"t10k-labels-idx1-ubyte.gz is missing from data_dir '{tmp_path}'"
    ):
        load_dataset("mnist", data_dir=tmp_path)
    with pytest.raises(InvalidValue, match="data_dir: must be a folder"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_data_dir_wrong_md5_is_an_error(fake_mnist, tmp_path) -> None:
    for name, data in fake_mnist.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"other"))
    expected = hashlib.md5(fake_mnist["train-labels-idx1-ubyte.gz"]).hexdigest()
    with pytest.raises(InvalidValue, match=f"train-labels-idx1-ubyte.gz: md5 must be {expected}"):
        load_dataset("mnist", data_dir=tmp_path)


def test_labels_must_match_images(monkeypatch, idx, fake_files, tmp_path) -> None:
    fake_files["train-labels-idx1-ubyte.gz"] = gzip.compress(idx(0x08, (2,), bytes([1, 2])))
    md5s = {name: hashlib.md5(data).hexdigest() for name, data in fake_files.items()}
    monkeypatch.setitem(mnist_module.FILES, "mnist", md5s)
    for name, data in fake_files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(InvalidValue, match=r"must hold one label per image \(3\), got 2"):
        load_dataset("mnist", data_dir=tmp_path)


# --- the real files ------------------------------------------------------------------------------

# Published class counts (MNIST: LeCun et al.'s files; Fashion-MNIST: 6000 / 1000 per class).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def shared(name: str) -> Path:
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist", data_dir=shared("mnist"))


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist", data_dir=shared("fashion-mnist"))


def test_real_files_have_the_idx_magic_numbers() -> None:
    folder = shared("mnist")
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as f:
        assert int.from_bytes(f.read(4), "big") == 2051
    with gzip.open(folder / "train-labels-idx1-ubyte.gz") as f:
        assert int.from_bytes(f.read(4), "big") == 2049


@pytest.mark.slow
def test_real_mnist(mnist) -> None:
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.dtype == np.float32 and mnist.y_train.dtype == np.int64
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    assert mnist.x_test.min() == 0.0 and mnist.x_test.max() == 1.0
    assert [Counter(mnist.y_train.tolist())[k] for k in range(10)] == MNIST_TRAIN_COUNTS
    assert [Counter(mnist.y_test.tolist())[k] for k in range(10)] == MNIST_TEST_COUNTS
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.y_test[:5].tolist() == [7, 2, 1, 0, 4]


@pytest.mark.slow
def test_real_fashion_mnist(fashion) -> None:
    assert fashion.x_train.shape == (60000, 784) and fashion.x_test.shape == (10000, 784)
    assert fashion.x_train.min() == 0.0 and fashion.x_train.max() == 1.0
    assert Counter(fashion.y_train.tolist()) == dict.fromkeys(range(10), 6000)
    assert Counter(fashion.y_test.tolist()) == dict.fromkeys(range(10), 1000)
    assert fashion.y_train[0] == 9 and fashion.class_names[9] == "Ankle boot"


@pytest.mark.slow
def test_first_500_training_images() -> None:
    folder = shared("mnist")
    small = load_dataset("mnist", data_dir=folder, train_size=500, test_size=100)
    assert small.x_train.shape == (500, 784) and small.x_test.shape == (100, 784)
    # oracle: the raw bytes after the 16-byte header of the images file
    raw = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    pixels = np.frombuffer(raw[16 : 16 + 500 * 784], dtype=np.uint8).reshape(500, 784)
    np.testing.assert_allclose(small.x_train, pixels / 255.0, rtol=1e-6)
    with pytest.raises(InvalidValue, match=r"train_size must be in \[1, 60000\], got 60001"):
        load_dataset("mnist", data_dir=folder, train_size=60001)
