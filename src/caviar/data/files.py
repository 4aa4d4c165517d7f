"""User data from a file: ``.npz`` (arrays ``x``, ``y``, optionally ``x_test``, ``y_test``) or
``.csv`` (a header row, one label column, every other column a float feature).

Features are used as given (no rescaling: the user knows their units) but must be finite. Labels
may be integers or strings; they become 0..K-1 in sorted order (numeric order for integers) and
the original values are kept as ``class_names``. Without a test set in the file, a stratified
20 % of the rows is carved off with a fixed seed, so the test set is the same on every run.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from caviar.core.errors import InvalidValue
from caviar.data.dataset import Dataset
from caviar.data.npz import read_npz
from caviar.data.splits import split_validation

TEST_FRACTION = 0.2
TEST_SEED = 0
INT64 = (-(2**63), 2**63 - 1)
# Plain decimal numbers, ASCII only: what a csv cell may hold. Python's float() also takes
# "1_000", non-ASCII digits ("١٢") and "nan"/"inf"; the first two are refused as not plain, the
# last as not finite.
_INT = re.compile(r"[+-]?[0-9]+")
_INT_POINT = re.compile(r"[+-]?[0-9]+\.0*")  # "2.0", as float columns are often written
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ODD_CHAR = re.compile(r"[^0-9eE+\-. \t]")  # a cell with one of these needs a closer look
_BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


#: the arrays a .npz file may hold -> bytes per element added when read (features: a float32 copy)
NPZ_ARRAYS = {"x": 4, "y": 0, "x_test": 4, "y_test": 0}


def load_npz(path: str | Path) -> Dataset:
    """The dataset in the ``.npz`` file at ``path``, loaded without pickle and with every size
    checked before it is allocated (:mod:`caviar.data.npz`)."""
    path = Path(path)
    owner = str(path)
    _check_exists(path)
    names, arrays = read_npz(path, NPZ_ARRAYS)
    if "x" not in arrays or "y" not in arrays:
        raise InvalidValue(owner, f"must hold arrays 'x' and 'y', got arrays {_names(names)}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise InvalidValue(
            owner, f"must hold both 'x_test' and 'y_test' or neither, got arrays {_names(names)}"
        )
    x = _features(arrays["x"], owner, "x")
    y = _label_values(arrays["y"], len(x), owner, "y")
    input_shape = tuple(arrays["x"].shape[1:])
    if "x_test" not in arrays:
        return _carve_test(path, x, y, input_shape, "npz arrays x, y")
    x_test = _features(arrays["x_test"], owner, "x_test")
    if arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
        raise InvalidValue(
            owner,
            f"x_test examples must have the shape of x's {list(input_shape)}, "
            f"got {list(arrays['x_test'].shape[1:])}",
        )
    y_test = _label_values(arrays["y_test"], len(x_test), owner, "y_test")
    if (y.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        raise InvalidValue(
            owner,
            "y and y_test must both hold numbers or both strings, "
            f"got {y.dtype} and {y_test.dtype}",
        )
    classes = _classes(y, owner)
    unseen = np.setdiff1d(y_test, classes)
    if len(unseen):
        raise InvalidValue(
            owner, f"y_test must only hold labels seen in y, got unseen {unseen[:5].tolist()}"
        )
    return Dataset(
        name=path.stem,
        x_train=x,
        y_train=np.searchsorted(classes, y).astype(np.int64),
        x_test=x_test,
        y_test=np.searchsorted(classes, y_test).astype(np.int64),
        n_classes=len(classes),
        source=f"{path} (npz arrays x, y, x_test, y_test; features as given)",
        class_names=tuple(str(c) for c in classes.tolist()),
        input_shape=input_shape,
    )


def load_csv(path: str | Path, label_column: str = "label") -> Dataset:
    """The dataset in the ``.csv`` file at ``path``: ``label_column`` against all other columns."""
    path = Path(path)
    owner = str(path)
    _check_exists(path)
    # 1. Rows, with their line numbers for error messages; blank lines are skipped.
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        if isinstance(e, UnicodeDecodeError) and _bom(path):
            raise InvalidValue(
                owner,
                f"not a readable UTF-8 csv file: it starts with a {_bom(path)} byte order mark; "
                "save it as UTF-8",
            ) from e
        raise InvalidValue(owner, f"not a readable UTF-8 csv file ({e})") from e
    if not rows:
        raise InvalidValue(owner, "must have a header row, got an empty file")
    header = [name.strip() for name in rows[0][1]]
    if header.count(label_column) != 1:
        state = "missing" if label_column not in header else "repeated"
        raise InvalidValue(owner, f"label column {label_column!r} is {state}, got columns {header}")
    if len(header) < 2:
        raise InvalidValue(owner, f"needs at least one feature column, got columns {header}")
    if len(rows) == 1:
        raise InvalidValue(owner, "needs at least one data row, got only the header")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise InvalidValue(
                owner,
                f"line {line}: must have {len(header)} fields like the header, got {len(row)}",
            )
    # 2. Labels: all integers, or else strings.
    at = header.index(label_column)
    labels = [row[at].strip() for _, row in rows[1:]]
    numbers = [
        _label(label, line, owner, label_column)
        for (line, _), label in zip(rows[1:], labels, strict=True)
    ]
    y = (
        np.array(numbers, dtype=np.int64)
        if all(v is not None for v in numbers)
        else np.array(labels, dtype=str)
    )
    # 3. Features: every other column, as plain decimal floats.
    names = [name for i, name in enumerate(header) if i != at]
    cells = [[v for i, v in enumerate(row) if i != at] for _, row in rows[1:]]
    try:
        x = np.array(cells, dtype=np.float64)  # [N, D]
    except ValueError:
        raise _first_bad_cell(owner, rows[1:], cells, names) or InvalidValue(
            owner, "features must be numbers"
        ) from None
    # One regex pass over all the text finds whether any cell needs a closer look (fast on
    # MNIST-sized files); the closer look names the first bad cell.
    if _ODD_CHAR.search(" ".join(" ".join(values) for values in cells)):
        error = _first_bad_cell(owner, rows[1:], cells, names)
        if error is not None:
            raise error
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        r, c = bad[0]
        raise InvalidValue(
            owner, f"line {rows[1 + r][0]}, column {names[c]!r}: must be finite, got {x[r, c]}"
        )
    x32 = _features(x, owner, "features")
    return _carve_test(path, x32, y, (len(names),), f"csv, label column {label_column!r}")


def _names(names: list[str]) -> str:
    """An archive's array names for a message: the first ten, then how many more."""
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f"{names[:10]}{more}"


def _check_exists(path: Path) -> None:
    if path.is_dir():
        raise InvalidValue(str(path), "is a folder, not a file")
    if not path.is_file():
        raise InvalidValue(str(path), "no such file")


def _bom(path: Path) -> str:
    """The encoding whose byte order mark starts the file, or ``""``."""
    try:
        with open(path, "rb") as f:
            return _BOMS.get(f.read(2), "")
    except OSError:
        return ""


def _label(text: str, line: int, owner: str, column: str) -> int | None:
    """The integer a csv label stands for (``2``, ``-2``, ``2.0``), or None for a class name;
    refuses an empty label and other numbers (``0.5``, ``1e3``, ``1_0``, ``nan``)."""
    where = f"line {line}, column {column!r}"
    if not text:
        raise InvalidValue(owner, f"line {line}: label column {column!r} is empty")
    if _INT.fullmatch(text):
        value = int(text)
        if not INT64[0] <= value <= INT64[1]:
            raise InvalidValue(
                owner, f"{where}: must fit in int64 (from -2**63 to 2**63 - 1), got {text!r}"
            )
        return value
    if _INT_POINT.fullmatch(text):
        return _label(text[: text.index(".")], line, owner, column)  # "2.0" -> 2
    try:
        float(text)
    except ValueError:
        return None  # a class name
    raise InvalidValue(owner, f"{where}: must be an integer or a class name, got {text!r}")


def _features(x: np.ndarray, owner: str, what: str) -> np.ndarray:
    """``x`` as finite float32 ``[N, D]``, one row per example (later dims flattened)."""
    if x.ndim < 2 or len(x) == 0 or x.size == 0:
        raise InvalidValue(
            owner, f"{what} must be [N, D] (or [N, ...]) with N, D >= 1, got shape {list(x.shape)}"
        )
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InvalidValue(owner, f"{what} must hold real numbers, got dtype {x.dtype}")
    with np.errstate(over="ignore"):  # too large for float32 -> inf, reported just below
        flat = x.reshape(len(x), -1).astype(np.float32)
    if not np.isfinite(flat).all():
        where = np.argwhere(~np.isfinite(flat))[0]
        raise InvalidValue(
            owner,
            f"{what} must be finite (in float32), got {x.reshape(len(x), -1)[tuple(where)]} "
            f"at row {where[0]}, feature {where[1]}",
        )
    return flat


def _label_values(y: np.ndarray, n: int, owner: str, what: str) -> np.ndarray:
    """``y`` checked to be ``[n]`` integer (or integral float) or string labels."""
    if y.shape != (n,):
        raise InvalidValue(
            owner, f"{what} must be [{n}], one label per example, got shape {list(y.shape)}"
        )
    if y.dtype.kind in "iuf" and len(y):
        low, high = y.min(), y.max()
        if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise InvalidValue(
                owner, f"{what} must hold integer or string labels, got fractional floats"
            )
        # float(2**63) is exactly representable: an integral float below it fits in int64
        for value in (low, high):
            if not -(2.0**63) <= float(value) < 2.0**63 or (
                y.dtype.kind == "u" and int(value) > INT64[1]
            ):
                raise InvalidValue(owner, f"{what} must hold labels that fit in int64, got {value}")
    if y.dtype.kind in "iub":
        return y.astype(np.int64) if y.dtype.kind != "b" else y
    if y.dtype.kind == "f":
        return y.astype(np.int64)
    if y.dtype.kind == "S":  # bytes: numpy reads them as ASCII
        try:
            return y.astype(str)
        except UnicodeDecodeError as e:
            raise InvalidValue(
                owner,
                f"{what} holds byte strings that are not ASCII (byte {e.object[e.start]:#04x}); "
                "save labels as str (numpy dtype U) or integers",
            ) from None
    if y.dtype.kind == "U":
        return y.astype(str)
    raise InvalidValue(owner, f"{what} must hold integer or string labels, got dtype {y.dtype}")


def _classes(y: np.ndarray, owner: str) -> np.ndarray:
    classes = np.unique(y)  # sorted: numerically for integers, lexicographically for strings
    if len(classes) < 2:
        raise InvalidValue(
            owner, f"must have at least 2 classes, got {len(classes)} ({classes.tolist()})"
        )
    return classes


def _carve_test(
    path: Path, x: np.ndarray, y: np.ndarray, input_shape: tuple[int, ...], kind: str
) -> Dataset:
    """A dataset from all of ``(x, y)``, its test set a stratified 20 % carved off with seed 0."""
    owner = str(path)
    classes = _classes(y, owner)
    codes = np.searchsorted(classes, y).astype(np.int64)
    try:
        cut = split_validation(x, codes, fraction=TEST_FRACTION, seed=TEST_SEED)
    except InvalidValue as e:
        raise InvalidValue(
            owner, f"too few examples to carve off a {TEST_FRACTION:.0%} test set: {e.reason}"
        ) from e
    return Dataset(
        name=path.stem,
        x_train=cut.x_train,
        y_train=cut.y_train,
        x_test=cut.x_val,
        y_test=cut.y_val,
        n_classes=len(classes),
        source=(
            f"{path} ({kind}; features as given); test: stratified {TEST_FRACTION:.0%} "
            f"of {len(y)} rows carved off with seed {TEST_SEED} (split {cut.hash[:12]})"
        ),
        class_names=tuple(str(c) for c in classes.tolist()),
        input_shape=input_shape,
    )


def _first_bad_cell(
    owner: str, rows: list[tuple[int, list[str]]], cells: list[list[str]], names: list[str]
) -> InvalidValue | None:
    """The error for the first cell that is not a finite plain decimal number, if any."""
    for (line, _), values in zip(rows, cells, strict=True):
        for name, value in zip(names, values, strict=True):
            where = f"line {line}, column {name!r}"
            text = value.strip(" \t")
            if _DECIMAL.fullmatch(text):
                continue
            try:
                number = float(value)
            except ValueError:
                return InvalidValue(owner, f"{where}: must be a number, got {value!r}")
            if _NOT_FINITE.fullmatch(text):
                return InvalidValue(owner, f"{where}: must be finite, got {number}")
            return InvalidValue(owner, f"{where}: must be a plain decimal number, got {value!r}")
    return None
