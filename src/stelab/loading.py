"""Reading any results folder back for analysis: ``stelab.load(folder)``.

Three kinds of folder are recognized, by the files their writer leaves:

* **run** (``stelab run`` / :func:`stelab.run_experiment` written with ``--out``):
  ``results.parquet`` stamped with its config, no ``manifest.json``;
* **sweep** (``stelab sweep`` / :func:`stelab.run_sweep`): ``manifest.json`` of format
  ``stelab-sweep/1`` and the merged ``results.parquet``;
* **reproduce** (``stelab reproduce``): ``profile.toml`` and ``tables/`` holding one Parquet file
  per experiment table (per-trial rows) and ``summary_<name>.parquet`` per derived table.

Every per-trial table gains the column ``alpha = n / d`` (float64, samples per dimension) where
it has both ``n`` and ``d``. :func:`success_array` (and :meth:`Results.to_xarray`) turn rows
into success rates with Wilson 95% intervals over the grid's axes as an ``xarray.Dataset``
(xarray is the optional extra ``stelab[notebook]``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import pyarrow as pa

from stelab.analysis.tables import success_table
from stelab.config import parse_config
from stelab.errors import StelabError
from stelab.integrity import IntegrityError, read_checked
from stelab.report.folder import SUMMARY, TABLES, load_tables
from stelab.results import RESULTS
from stelab.sweep.store import FORMAT, MANIFEST

if TYPE_CHECKING:
    import xarray

Kind = Literal["run", "sweep", "reproduce"]
#: the success notions summarized by default
SUCCESS = ("success_last", "success_ergodic")
#: the flat config columns of every engine row (``Config.flat()``), in their order
CONFIG_COLUMNS = tuple(parse_config({"model": {"d": 2}, "train": {"n": 2, "steps": 1}}).flat())


class ResultsFolderError(StelabError, ValueError):
    """A folder is not one that ``stelab run``, ``sweep`` or ``reproduce`` wrote, or a table in
    it cannot be read."""


@dataclass(repr=False)
class Results:
    """The contents of a results folder (returned by :func:`load`).

    Attributes
    ----------
    folder : Path
        The folder read.
    kind : {"run", "sweep", "reproduce"}
        Which writer made it.
    tables : dict of str to DataFrame
        Per-trial rows by table name: ``{"results": rows}`` for a run or sweep; the experiment
        tables (``"e1"``, ``"e2"``, ...) of a reproduce folder. Each has ``alpha = n / d``.
    derived : dict of str to DataFrame
        A reproduce folder's derived tables by name (``"e1_thresholds"``, ``"e1_scaling"``,
        ...; the file ``tables/summary_<name>.parquet``); empty for a run or sweep.
    axes : tuple of str
        The row columns the grid varies (a sweep's declared axes first, in its order, then any
        other config column taking several values); ``()`` for a single config.
    manifest : dict
        ``manifest.json`` (a sweep's or reproduce run's record), ``{}`` for a run folder.
    """

    folder: Path
    kind: Kind
    tables: dict[str, pd.DataFrame]
    derived: dict[str, pd.DataFrame] = field(default_factory=dict)
    axes: tuple[str, ...] = ()
    manifest: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        tables = ", ".join(f"{name}: {len(t)} rows" for name, t in self.tables.items())
        derived = f", derived=[{', '.join(self.derived)}]" if self.derived else ""
        return (f"Results(kind={self.kind!r}, folder='{self.folder}', tables={{{tables}}}"
                f"{derived}, axes={self.axes})")

    @cached_property
    def rows(self) -> pd.DataFrame:
        """Every per-trial row: the table itself for a run or sweep; for a reproduce folder the
        experiment tables stacked, with a ``table`` column naming each row's table (columns a
        table lacks are missing values)."""
        if self.kind != "reproduce":
            return self.tables["results"]
        return pd.concat([t.assign(table=name) for name, t in self.tables.items()],
                         ignore_index=True)

    def table(self, name: str) -> pd.DataFrame:
        """The per-trial or derived table called ``name`` (ResultsFolderError naming the
        available ones when there is none)."""
        found = self.tables.get(name, self.derived.get(name))
        if found is None:
            names = ", ".join([*self.tables, *self.derived])
            raise ResultsFolderError(f"table: {name!r} is not in {self.folder}; "
                                     f"available: {names}")
        return found

    def to_xarray(
        self,
        success: str | Sequence[str] = SUCCESS,
        axes: Sequence[str] | None = None,
        table: str | None = None,
    ) -> xarray.Dataset:
        """Success rates over the grid as a labelled array; see :func:`success_array`.

        Parameters
        ----------
        success : str or sequence of str
            Boolean outcome columns to summarize (the ``metric`` coordinate).
        axes : sequence of str, optional
            Row columns to use as dimensions; default :attr:`axes` (for a reproduce folder,
            the config columns that ``table`` varies).
        table : str, optional
            Which per-trial table; required for a reproduce folder with several.
        """
        if table is None:
            if len(self.tables) > 1:
                raise ResultsFolderError(
                    f"table: {self.folder} holds several per-trial tables; name one of "
                    f"{', '.join(self.tables)}")
            table = next(iter(self.tables))
        rows = self.table(table)
        if axes is None:
            axes = self.axes if self.kind != "reproduce" else varying_columns(rows)
        return success_array(rows, axes, success)


def with_alpha(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the column ``alpha = n / d`` (float64) added when it has ``n`` and ``d``
    (otherwise unchanged)."""
    if "n" in rows and "d" in rows and "alpha" not in rows:
        rows = rows.assign(alpha=rows["n"].astype("float64") / rows["d"].astype("float64"))
    return rows


def varying_columns(rows: pd.DataFrame, first: Sequence[str] = ()) -> tuple[str, ...]:
    """The config columns (:data:`CONFIG_COLUMNS` and a ``case`` label) that take more than
    one value in ``rows``: those of ``first`` in its order, then the others in row order."""
    candidates = [*first, "case", *CONFIG_COLUMNS]
    out: list[str] = []
    for column in candidates:
        if column in rows and column not in out and rows[column].nunique(dropna=False) > 1:
            out.append(column)
    return tuple(out)


def success_array(
    rows: pd.DataFrame,
    axes: Sequence[str],
    success: str | Sequence[str] = SUCCESS,
) -> xarray.Dataset:
    """Success rates of ``rows`` over ``axes`` as an ``xarray.Dataset``.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with the columns ``axes`` and the boolean ``success`` columns.
    axes : sequence of str
        Columns that become the dimensions (their distinct values the coordinates).
    success : str or sequence of str
        Outcome columns; they become the coordinate ``metric``.

    Returns
    -------
    xarray.Dataset
        Dimensions ``(*axes, "metric")``; variables ``rate`` (float64, successes / trials),
        ``ci_low`` and ``ci_high`` (float64, Wilson 95% interval, within [0, 1]),
        ``successes`` and ``trials`` (counts). A combination the rows do not hold (a zipped or
        partial grid) is NaN in every variable.
    """
    try:
        import xarray  # noqa: F401 - the optional extra; to_xarray below needs it
    except ImportError:
        raise ResultsFolderError(
            "xarray: not installed; install it with pip install 'stelab[notebook]' "
            "(or pip install xarray)") from None
    axes = list(axes)
    missing = [c for c in axes if c not in rows]
    if missing:
        raise ResultsFolderError(f"axes: {missing[0]!r} is not a column of the rows; "
                                 f"columns: {', '.join(map(str, rows.columns))}")
    table = success_table(rows, axes, success)
    frame = table.set_index([*axes, "metric"])[["rate", "ci_low", "ci_high", "successes",
                                                 "trials"]]
    return frame.to_xarray()


def load(folder: str | Path) -> Results:
    """Read the folder of a ``stelab run``, ``sweep`` or ``reproduce`` back.

    Parameters
    ----------
    folder : str or Path
        The ``--out`` folder of the run.

    Returns
    -------
    Results
        Its per-trial tables (each with ``alpha = n / d``), derived tables, axes and manifest.

    Raises
    ------
    ResultsFolderError
        ``folder`` is missing, not a folder, none of the three kinds, or a table in it cannot
        be read (one line naming the file and what is wrong).
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ResultsFolderError(f"folder: {folder} {what}; give the --out folder of "
                                 "'stelab run', 'stelab sweep' or 'stelab reproduce'")
    if (folder / "profile.toml").is_file() and (folder / TABLES).is_dir():
        return _load_reproduce(folder)
    if (folder / MANIFEST).is_file():
        return _load_sweep(folder)
    if (folder / RESULTS).is_file():
        return Results(folder, "run", {"results": _read_rows(folder / RESULTS)})
    raise ResultsFolderError(
        f"folder: {folder} is not a results folder (no {RESULTS}, {MANIFEST} or "
        f"profile.toml + {TABLES}/); give the --out folder of 'stelab run', 'stelab sweep' "
        "or 'stelab reproduce'")


def _read_rows(path: Path) -> pd.DataFrame:
    rows = _read_table(path)
    if rows.empty:
        raise ResultsFolderError(
            f"{path}: has no rows (every cell failed or none finished; see the errors/ folder "
            "beside it and run the same command again)")
    return with_alpha(rows)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(read_checked(folder / MANIFEST))
    except IntegrityError as err:
        raise ResultsFolderError(str(err)) from None
    except (OSError, ValueError) as err:
        raise ResultsFolderError(f"{folder / MANIFEST}: unreadable ({err})") from None
    if not isinstance(manifest, dict):
        raise ResultsFolderError(f"{folder / MANIFEST}: not a JSON object")
    return manifest


def _load_sweep(folder: Path) -> Results:
    manifest = _read_manifest(folder)
    if manifest.get("format") != FORMAT:
        raise ResultsFolderError(
            f"{folder / MANIFEST}: format {manifest.get('format')!r}, not {FORMAT!r}, so "
            f"{folder} is not a sweep folder")
    if not (folder / RESULTS).is_file():
        raise ResultsFolderError(
            f"folder: {folder} holds no {RESULTS} yet (the sweep did not finish); run the same "
            "sweep again to complete it")
    rows = _read_rows(folder / RESULTS)
    sweep = manifest.get("sweep") if isinstance(manifest.get("sweep"), dict) else {}
    declared = (sweep.get("sweep") or {}).get("axes", [])
    first = [_column_of(path, rows) for path in declared if isinstance(path, str)]
    axes = varying_columns(rows, [c for c in first if c is not None])
    return Results(folder, "sweep", {"results": rows}, axes=axes, manifest=manifest)


def _column_of(path: str, rows: pd.DataFrame) -> str | None:
    """The row column of a sweep axis (``noise.level`` -> ``noise_level``, ``model.d`` ->
    ``d``); None when it has none of its own (a nested parameter, stored as JSON)."""
    parts = path.split(".")
    for name in ("_".join(parts[-2:]), parts[-1]):
        if name in rows:
            return name
    return None


def _load_reproduce(folder: Path) -> Results:
    try:
        tables = {name: with_alpha(t) for name, t in load_tables(folder).items()}
    except StelabError as err:
        raise ResultsFolderError(str(err)) from None
    derived = {path.stem[len(SUMMARY):]: _read_table(path)
               for path in sorted((folder / TABLES).glob(f"{SUMMARY}*.parquet"))}
    manifest = _read_manifest(folder) if (folder / MANIFEST).is_file() else {}
    return Results(folder, "reproduce", tables, derived=derived, manifest=manifest)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(pa.BufferReader(read_checked(path)))
    except IntegrityError as err:
        raise ResultsFolderError(str(err)) from None
    except Exception as err:  # pyarrow raises several types for a damaged file
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise ResultsFolderError(f"{path}: not a readable Parquet table ({first})") from None
