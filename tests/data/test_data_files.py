"""User data in .npz and .csv files: round trips and every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caviar.core.errors import InvalidValue
from caviar.data import load_dataset


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- npz ------------------------------------------------------------------------------------------


def test_npz_with_test_set_round_trips(tmp_path) -> None:
    path = tmp_path / "mine.npz"
    x = np.array([[100.0, -2.5], [3.0, 4.0], [5.0, 6.0]])
    x_test = np.array([[7.0, 8.0]])
    np.savez(path, x=x, y=np.array([7, 3, 7]), x_test=x_test, y_test=np.array([3]))
    data = load_dataset(path)
    assert data.name == "mine"
    np.testing.assert_array_equal(data.x_train, x)  # as given, not rescaled
    assert data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_test, x_test)
    assert data.y_train.tolist() == [1, 0, 1] and data.y_test.tolist() == [0]
    assert data.class_names == ("3", "7") and data.n_classes == 2


def test_npz_images_are_flattened(tmp_path) -> None:
    path = tmp_path / "img.npz"
    x = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(4, 2, 3)
    np.savez(path, x=x, y=np.array([0, 1, 0, 1]), x_test=x[:2], y_test=np.array([1, 0]))
    data = load_dataset(str(path))
    assert data.x_train.shape == (4, 6) and data.input_shape == (2, 3)
    assert data.x_train[1].tolist() == [6, 7, 8, 9, 10, 11]


def test_npz_without_test_set_carves_a_stratified_fifth(tmp_path) -> None:
    path = tmp_path / "carve.npz"
    x = np.arange(20.0).reshape(10, 2)
    y = np.array(["dog", "cat"] * 5)
    np.savez(path, x=x, y=y)
    data = load_dataset(path)
    assert data.class_names == ("cat", "dog")
    assert len(data.y_test) == 2 and sorted(data.y_test.tolist()) == [0, 1]  # 20 % of 5 each
    assert "stratified 20% of 10 rows carved off with seed 0" in data.source
    rows = {tuple(r) for r in np.vstack([data.x_train, data.x_test]).tolist()}
    assert rows == {tuple(r) for r in x.tolist()}
    # labels still belong to their rows: row i is [2i, 2i + 1], "dog" at even i
    for row, label in zip(data.x_train, data.y_train, strict=True):
        assert label == (1 if int(row[0]) // 2 % 2 == 0 else 0)
    again = load_dataset(path)
    np.testing.assert_array_equal(again.x_test, data.x_test)


def npz(tmp_path, **arrays) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


X4 = np.zeros((4, 2))
Y4 = np.array([0, 1, 0, 1])


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x": X4}, r"must hold arrays 'x' and 'y', got arrays \['x'\]"),
        ({"x": X4, "y": Y4, "x_test": X4}, r"both 'x_test' and 'y_test' or neither"),
        ({"x": np.zeros(4), "y": Y4}, r"x must be \[N, D\] .* got shape \[4\]"),
        (
            {"x": np.zeros((0, 2)), "y": np.zeros(0, int)},
            r"x must be \[N, D\] .* got shape \[0, 2\]",
        ),
        ({"x": X4, "y": Y4[:3]}, r"y must be \[4\], one label per example, got shape \[3\]"),
        ({"x": np.array([[0.0], [np.nan], [1.0], [2.0]]), "y": Y4}, r"x must be finite .* row 1"),
        ({"x": np.array([[0.0], [1.0], [np.inf], [2.0]]), "y": Y4}, r"x must be finite .* row 2"),
        ({"x": np.array([[1e39]] * 4), "y": Y4}, r"x must be finite \(in float32\)"),
        ({"x": np.array([["a"]] * 4), "y": Y4}, r"x must hold real numbers, got dtype <U1"),
        ({"x": X4, "y": np.array([0.5, 1, 0, 1])}, r"y must hold integer or string labels"),
        ({"x": X4, "y": np.zeros(4, int)}, r"must have at least 2 classes, got 1 \(\[0\]\)"),
        ({"x": X4, "y": Y4, "x_test": X4, "y_test": np.array([0, 1, 2, 0])}, r"unseen \[2\]"),
        ({"x": X4, "y": Y4, "x_test": np.zeros((2, 3)), "y_test": Y4[:2]}, r"x_test examples"),
        ({"x": X4, "y": Y4, "x_test": X4, "y_test": np.array(["a"] * 4)}, r"both hold numbers"),
        ({"x": X4[:2], "y": Y4[:2]}, r"too few examples to carve off a 20% test set"),
    ],
)
def test_bad_npz(tmp_path, arrays, match) -> None:
    path = npz(tmp_path, **arrays)
    with pytest.raises(InvalidValue, match=match) as info:
        load_dataset(path)
    assert str(info.value).startswith(str(path))


def test_npz_that_is_not_an_archive(tmp_path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidValue) as info:
        load_dataset(tmp_path / "junk.npz")
    assert info.value.reason == (
        "not a .npz archive (a zip of .npy arrays): it starts with b'not a zi'; "
        "save the arrays with numpy.savez(path, x=x, y=y)"
    )


def test_npz_with_pickled_objects_is_refused(tmp_path) -> None:
    path = npz(tmp_path, x=X4, y=np.array([0, "a", 0, "a"], dtype=object))
    with pytest.raises(InvalidValue) as info:
        load_dataset(path)
    assert info.value.reason == (
        "array 'y' holds Python objects (dtype object), which only pickle can load, and caviar "
        "loads no pickles: save numbers (or, for labels, strings)"
    )


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InvalidValue, match=r"nope\.npz: no such file"):
        load_dataset(tmp_path / "nope.npz")
    with pytest.raises(InvalidValue, match=r"nope\.csv: no such file"):
        load_dataset(tmp_path / "nope.csv")


# --- csv ------------------------------------------------------------------------------------------


def test_csv_round_trip_with_string_labels(tmp_path) -> None:
    rows = "".join(f"{i},{kind},{i * 10}\n" for i, kind in enumerate(["b", "a", "c", "b", "a"] * 2))
    path = write_csv(tmp_path / "animals.csv", "a, kind ,b\n" + rows)
    data = load_dataset(path, label_column="kind")
    assert data.class_names == ("a", "b", "c") and data.n_classes == 3
    assert data.x_train.shape == (8, 2) and data.x_test.shape == (2, 2)
    # rows are [i, 10 i] with label ["b", "a", "c", "b", "a"][i % 5]
    for x, y in zip(
        np.vstack([data.x_train, data.x_test]),
        np.concatenate([data.y_train, data.y_test]),
        strict=True,
    ):
        i = int(x[0])
        assert x[1] == 10 * i
        assert data.class_names[y] == ["b", "a", "c", "b", "a"][i % 5]
    assert "label column 'kind'" in data.source and "carved off" in data.source


def test_csv_integer_labels_sort_numerically(tmp_path) -> None:
    path = write_csv(tmp_path / "n.csv", "label,f\n" + "10,1.5\n9,2.5\n2,3.5\n" * 4)
    data = load_dataset(path)
    assert data.class_names == ("2", "9", "10")
    x = np.vstack([data.x_train, data.x_test])[:, 0]
    y = np.concatenate([data.y_train, data.y_test])
    assert {(float(a), int(b)) for a, b in zip(x, y, strict=True)} == {(1.5, 2), (2.5, 1), (3.5, 0)}


def test_csv_skips_blank_lines_and_keeps_values(tmp_path) -> None:
    path = write_csv(tmp_path / "v.csv", "x1,x2,label\n\n-1e3,0.25,0\n2,3,1\n4,5,0\n6,7,1\n8,9,0\n")
    data = load_dataset(path)
    everything = np.vstack([data.x_train, data.x_test]).tolist()
    assert sorted(everything) == [[-1000.0, 0.25], [2, 3], [4, 5], [6, 7], [8, 9]]


HEADER = "a,b,label\n"
GOOD_ROWS = "1,2,0\n3,4,1\n5,6,0\n7,8,1\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"must have a header row, got an empty file"),
        ("a,b,c\n1,2,3\n", r"label column 'label' is missing, got columns \['a', 'b', 'c'\]"),
        ("label,a,label\n1,2,3\n", r"label column 'label' is repeated"),
        ("label\n1\n2\n", r"needs at least one feature column"),
        (HEADER, r"needs at least one data row"),
        (HEADER + GOOD_ROWS + "9,10\n", r"line 6: must have 3 fields like the header, got 2"),
        (HEADER + "1,x,0\n" + GOOD_ROWS, r"line 2, column 'b': must be a number, got 'x'"),
        (HEADER + GOOD_ROWS + "nan,1,0\n", r"line 6, column 'a': must be finite, got nan"),
        (HEADER + GOOD_ROWS + "1,-inf,0\n", r"line 6, column 'b': must be finite, got -inf"),
        (HEADER + GOOD_ROWS + "1,2, \n", r"line 6: label column 'label' is empty"),
        (HEADER + "1,2,cat\n3,4,cat\n5,6,cat\n", r"at least 2 classes, got 1 \(\['cat'\]\)"),
        (HEADER + "1,2,0\n3,4,1\n", r"too few examples to carve off a 20% test set"),
    ],
)
def test_bad_csv(tmp_path, text, match) -> None:
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(InvalidValue, match=match) as info:
        load_dataset(path)
    assert str(info.value).startswith(str(path))


def test_csv_that_is_not_text(tmp_path) -> None:
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidValue, match=r"bin\.csv: not a readable UTF-8 csv file"):
        load_dataset(tmp_path / "bin.csv")
