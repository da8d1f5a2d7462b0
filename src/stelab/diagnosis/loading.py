"""Read a user's samples x features matrix (``.npz``, ``.npy``, ``.csv``) and check it: every
problem is a :class:`~stelab.errors.DataError` with one line saying what is wrong and where
(NaN and inf are refused, never turned into a sign).

Which array of a ``.npz``: ``key`` if given; else the only array; else the array named ``X``;
else DataError listing the arrays. A CSV's label column is named with ``label`` (left out, like
``drop``); a column that looks like labels but is kept (integer values, 2 to
:data:`LABEL_MAX_CLASSES` distinct ones, and named like a label or the last column beside
non-integer features) gives a :class:`LabelColumnWarning`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from stelab.errors import DataError

__all__ = ["LABEL_MAX_CLASSES", "LabelColumnWarning", "load_data", "validate_data"]

#: at most this many distinct integer values make a column look like class labels
LABEL_MAX_CLASSES = 20
#: column names that say "labels" (compared case-insensitively)
LABEL_NAMES = ("label", "labels", "target", "targets", "class", "classes", "y", "digit",
               "category")


class LabelColumnWarning(UserWarning):
    """A CSV column kept as a feature looks like class labels."""


def validate_data(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a float64 array (samples x features), or DataError with one line saying why not."""
    try:
        arr = np.asarray(X)
    except Exception as err:  # ragged nested lists and the like
        raise DataError(f"{name}: cannot be read as an array ({err})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{name}: complex values are not supported")
    if arr.ndim != 2:
        raise DataError(
            f"{name}: expected a 2-D array (samples x features), got shape {arr.shape}"
        )
    n, d = arr.shape
    if n < 2 or d < 1:
        raise DataError(f"{name}: need at least 2 samples and 1 feature, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{name}: {int(bad.sum())} entries are NaN or infinite (first at row {row}, "
            f"column {col}); remove or impute them"
        )
    return arr


def load_data(
    path: str | Path,
    key: str | None = None,
    drop: tuple[str, ...] = (),
    label: str | None = None,
) -> np.ndarray:
    """Read a samples x features matrix from ``.npz`` (array ``key``, or the only array, or
    ``X``), ``.npy`` or ``.csv`` (every column numeric after dropping ``drop`` and the label
    column ``label``; a header row is detected). Problems raise DataError with one line; a kept
    column that looks like labels warns (:class:`LabelColumnWarning`).

    Parameters
    ----------
    path : str or Path
        A ``.npz``, ``.npy`` or ``.csv`` file.
    key : str or None
        The array of an ``.npz`` file to read (``.npz`` only).
    drop : tuple of str
        CSV columns to leave out (``.csv`` only).
    label : str or None
        A CSV label column to leave out (``.csv`` only).

    Returns
    -------
    ndarray, shape (n, d), float64
        Samples x features, finite.

    Raises
    ------
    DataError
        An unsupported, missing, empty or unreadable file, ``key``/``drop``/``label`` given for
        the wrong file type or naming nothing, or data that are not a finite 2-D numeric array.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = path.write_text(chr(10).join(["a,b,y", "1.5,2,0", "3,4.25,1"]))
    >>> load_data(path, label="y")
    array([[1.5 , 2.  ],
           [3.  , 4.25]])
    """
    path = Path(path)
    if label is not None:
        if path.suffix.lower() != ".csv":
            raise DataError(f"--label: {path.name} is not a .csv file; --label names a CSV "
                            "column (for an .npz, choose the features with --key)")
        drop = (*drop, label)  # refused below, naming --label, if it is not a column
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy", ".csv"):
        raise DataError(f"data: unsupported file type {path.suffix!r}; allowed: .npz, .npy, .csv")
    if not path.is_file():
        raise DataError(f"data: file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data: {path} is empty")
    if key is not None and suffix != ".npz":
        raise DataError(f"--key: {path.name} is a {suffix} file; --key selects an array of an "
                        ".npz file only")
    if drop and suffix != ".csv":
        raise DataError(f"--drop: {path.name} is a {suffix} file; --drop leaves out columns of "
                        "a .csv file only")
    if suffix == ".csv":
        return validate_data(_read_csv(path, drop, label is not None), name=path.name)
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:
        raise DataError(f"data: cannot read {path} as {suffix}: {err}") from None
    if suffix == ".npy":
        return validate_data(loaded, name=path.name)
    with loaded:
        keys = list(loaded.keys())
        if not keys:
            raise DataError(f"data: {path} holds no arrays")
        if key is None:
            if len(keys) == 1:
                key = keys[0]
            elif "X" in keys:
                key = "X"
            else:
                raise DataError(
                    f"--key: {path.name} holds several arrays and none is named 'X'; "
                    f"allowed: {', '.join(keys)}"
                )
        if key not in keys:
            raise DataError(f"--key: no array {key!r} in {path.name}; allowed: {', '.join(keys)}")
        try:
            arr = loaded[key]
        except Exception as err:
            raise DataError(f"data: cannot read array {key!r} of {path}: {err}") from None
    return validate_data(arr, name=f"{path.name}[{key}]")


def _read_csv(path: Path, drop: tuple[str, ...], label_given: bool = False) -> np.ndarray:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data: {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"data: cannot parse {path} as CSV: {str(err).splitlines()[0]}") from None
    if all(_is_number(c) for c in frame.columns):  # no header row: the first row is data
        frame = pd.read_csv(path, header=None)
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        option = "--label" if missing[0] == drop[-1] and label_given else "--drop"
        raise DataError(
            f"{option}: no column {missing[0]!r} in {path.name}; columns: "
            + ", ".join(map(str, frame.columns[:20]))
        )
    frame = frame.drop(columns=list(drop))
    if frame.shape[0] == 0:
        raise DataError(f"data: {path} has a header but no rows")
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column]
        ):
            values = pd.to_numeric(frame[column], errors="coerce")
            first_bad = frame[column][values.isna() & frame[column].notna()]
            if len(first_bad):
                raise DataError(
                    f"data: column {column!r} of {path.name} is not numeric (e.g. "
                    f"{first_bad.iloc[0]!r} in row {first_bad.index[0]}); drop it with --drop"
                )
            frame[column] = values
    for column in _label_like(frame):
        warnings.warn(
            f"column {column!r} of {path.name} looks like labels ({frame[column].nunique()} "
            f"integer values) and is used as a feature; leave it out with --label {column}",
            LabelColumnWarning, stacklevel=3,
        )
    return frame.to_numpy()


def _label_like(frame: Any) -> list[Any]:
    """Columns that look like class labels (module docstring)."""
    integer = {
        c: bool(np.all(np.mod(frame[c].to_numpy(dtype=float), 1.0) == 0)) for c in frame.columns
    }
    found = []
    for i, column in enumerate(frame.columns):
        classes = frame[column].nunique()
        if not integer[column] or not 2 <= classes <= min(LABEL_MAX_CLASSES, len(frame) - 1):
            continue
        named = str(column).strip().lower() in LABEL_NAMES
        last = i == len(frame.columns) - 1 and not all(
            integer[c] for c in frame.columns[:-1]
        )
        if named or last:
            found.append(column)
    return found


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
