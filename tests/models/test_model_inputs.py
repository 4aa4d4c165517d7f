"""Models know their input: a kept model records the preprocessing its data had, applies it to
raw examples when asked (``raw=True``), refuses raw examples given as inputs, and says which."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from caviar.data import load_dataset
from caviar.data.preprocessing import Preprocessing, as_given, pixels
from caviar.models.load import load_model
from caviar.search.job import tune


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("inputs") / "s.db"
    config = {
        "study": {"name": "d", "storage": str(db), "seed": 0, "threads": 1},
        "data": {"dataset": "digits"},
        "space": {"lr": 0.01, "hidden_units": 32, "epochs": 4, "batch_size": 64},
        "search": {"sampler": "random", "trials": 1, "keep_models": 1},
    }
    tune(config, progress=False, report=False).close()
    return db


def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as they come: 8x8 images of 0..16, and the test labels caviar
    holds out (matched by value: caviar's test set is the raw images / 16)."""
    from sklearn.datasets import load_digits  # deferred: a slow import

    bunch = load_digits()
    return bunch.images, bunch.target  # [1797, 8, 8] float64 in [0, 16], [1797]


def test_the_embedded_and_idx_datasets_record_their_scaling() -> None:
    digits = load_dataset("digits")
    assert digits.preprocessing == pixels((8, 8), 16.0)
    assert digits.preprocessing.words() == "pixels / 16, [8, 8] flattened to 64 features"
    # what the loader did, checked against scikit-learn's raw values
    images, _ = raw_digits()
    assert float(digits.x_train.max()) == 1.0 and images.max() == 16.0


@pytest.mark.slow
def test_raw_pixels_give_the_same_predictions_as_the_loaded_inputs(study_db: Path) -> None:
    model = load_model("d", storage=study_db)
    images, labels = raw_digits()
    loaded = torch.as_tensor(images.reshape(len(images), 64) / 16.0, dtype=torch.float32)
    as_trained = model.predict(loaded)
    assert torch.equal(model.predict(images, raw=True), as_trained)  # [B, 8, 8]
    assert torch.equal(model.predict(images.reshape(-1, 64), raw=True), as_trained)  # [B, 64]
    accuracy = float((as_trained.numpy() == labels).mean())
    assert accuracy > 0.8  # a model that learned, so the equality above means something


@pytest.mark.slow
def test_raw_pixels_given_as_inputs_are_refused_not_answered(study_db: Path) -> None:
    model = load_model("d", storage=study_db)
    images, _ = raw_digits()
    with pytest.raises(ValueError) as refused:
        model.predict(images.reshape(-1, 64))
    assert str(refused.value) == (
        "CaviarModel: inputs reach [0, 16], beyond [0, 1], the range the model was trained on "
        "(pixels / 16, [8, 8] flattened to 64 features); pass raw=True to apply that "
        "preprocessing, or apply it yourself"
    )
    with pytest.raises(ValueError, match=r"raw examples of shape \[8, 8\] need raw=True$"):
        model.predict(images)
    with pytest.raises(ValueError, match=r"raw examples must be \['B', 8, 8\] or \['B', 64\]"):
        model.predict(images.reshape(-1, 32, 2), raw=True)


@pytest.mark.slow
def test_describe_says_what_the_model_takes(study_db: Path) -> None:
    described = load_model("d", storage=study_db).describe()
    assert described["preprocessing"]["divide_by"] == 16.0
    assert described["preprocessing"]["input_shape"] == [8, 8]
    assert described["inputs"] == (
        "[B, 64] after the preprocessing (pixels / 16, [8, 8] flattened to 64 features); "
        "predict(x, raw=True) applies it to raw examples, an exported program does not"
    )
    ensemble = load_model("d", storage=study_db, ensemble=1)
    images, _ = raw_digits()
    assert ensemble.describe()["inputs"] == described["inputs"]
    assert torch.equal(
        ensemble.predict(images, raw=True),
        load_model("d", storage=study_db).predict(images, raw=True),
    )


def test_a_model_kept_before_preprocessing_was_recorded_says_so() -> None:
    assert Preprocessing.from_dict(None) is None
    assert Preprocessing.from_dict({"input_shape": "x"}) is None


def test_numbers_used_as_given_have_no_range_to_check() -> None:
    done = as_given(5)
    assert done.trained_range is None
    assert done.words() == "none: the model takes the values as the data gave them"
    x = torch.arange(10.0).reshape(2, 5) * 1000
    assert torch.equal(done.apply(x), x)


def test_pixels_divide_and_flatten_as_a_hand_computation() -> None:
    done = pixels((2, 2), 255.0)
    raw = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    # float32, each value correctly rounded: 51 / 255 is float32's nearest to 0.2
    assert torch.equal(done.apply(raw), torch.tensor([[0.0, 1.0, 0.2, 0.4]]))
    assert done.trained_range == (0.0, 1.0)
    assert Preprocessing.from_dict(done.to_dict()) == done
