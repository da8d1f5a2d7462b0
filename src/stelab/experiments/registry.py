"""The record of one experiment: everything ``stelab reproduce``, ``stelab plot`` and the report
need to know about it, so that they loop over the registry and know no experiment by name.

An experiment module (``stelab/experiments/<name>.py``) defines ``EXPERIMENT = Experiment(...)``
with

* ``tables``: its per-trial tables (``DIR/tables/<table>.parquet``), each produced either from
  engine cells run through the sweep store (``cells``: profile -> configs; resumable, one Parquet
  file per finished cell) or by the experiment's own runner (``run``: profile -> rows, for work
  that is not a sweep of engine cells, such as training on real data);
* ``derive``: its stored tables -> derived tables (thresholds, exponents, success tables), written
  as ``DIR/tables/summary_<name>.parquet``; ``provides`` names them. The claims' evidence
  (:mod:`stelab.report.evidence`) reads derived tables by these names;
* ``figures``: stored + derived tables -> PNG files under ``DIR/figures``;
* ``section``: its Markdown section of ``report.md``;
* ``claims``: the claims (C1..C4) its derived tables give evidence for; the section receives
  their verdicts.

The experiment runs when the profile holds its table ``[profile_table]``, and appears in the
report when its (non-optional) stored tables are present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stelab.claims import Verdict
from stelab.config import Config
from stelab.render.markdown import image

Profile = dict[str, Any]
Frames = dict[str, pd.DataFrame]
Figures = dict[str, Path]

#: columns every table of engine rows holds (a stored table without them was not written by
#: ``stelab reproduce``)
ROW_COLUMNS = ("d", "n", "m", "steps", "trial", "success_last", "success_ergodic")


@dataclass(frozen=True)
class Estimate:
    """What one table is expected to take, printed before a reproduce runs (``Table.estimate``)."""

    table: str
    trials: int
    worker_seconds: float
    peak_bytes: int  # of one worker running the largest trial

    def line(self, workers: int, threads: int = 1) -> str:
        """The plan's line for ``workers`` processes of ``threads`` threads each. The wall time
        is the worker-seconds over the workers: a large trial is a block of its own, and a block
        of one trial runs on one thread, so a worker's other threads add nothing there (blocks
        of several small trials do use them, and finish sooner than the line says)."""
        return (f"[{self.table}] plan: ~{self.trials:,} trials, ~{self.worker_seconds:,.0f} "
                f"worker-seconds (~{self.worker_seconds / workers / 60:.0f} min on {workers} "
                f"workers of {threads} threads), peak ~{self.peak_bytes / 2**30:.2f} GB a worker "
                f"(~{workers * self.peak_bytes / 2**30:.1f} GB for {workers})")


@dataclass(frozen=True)
class Table:
    """One per-trial table of an experiment, ``DIR/tables/<name>.parquet``.

    Exactly one of ``cells`` (the engine cells of the table, run through the sweep store),
    ``design`` (an adaptive design: profile and the rows of every cell run so far -> the cells
    of the next round, run through the sweep store until a round adds no cell that has not
    run; :meth:`next_cells`) and ``run`` (the experiment's own runner, which returns the rows).
    ``wanted``: whether the
    profile asks for the table at all (default: whenever its experiment runs). ``columns``:
    what a stored table must hold to be read back (engine tables also need
    :data:`ROW_COLUMNS`). ``optional``: the experiment is reported without it.
    """

    name: str
    description: str
    cells: Callable[[Profile], list[Config]] | None = None
    run: Callable[[Profile], pd.DataFrame] | None = None
    design: Callable[[Profile, pd.DataFrame], list[Config]] | None = None
    #: profile -> the table's expected trials, worker-seconds and peak memory (optional)
    estimate: Callable[[Profile], Estimate] | None = None
    wanted: Callable[[Profile], bool] | None = None
    columns: tuple[str, ...] = ()
    optional: bool = False
    #: (profile, rows) -> rows with label columns added before the table is stored (e.g. the
    #: profile's case names, :func:`stelab.experiments.cases.label_cases`)
    label: Callable[[Profile, pd.DataFrame], pd.DataFrame] | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.cells, self.design, self.run)) != 1:
            raise TypeError(f"Table {self.name!r}: give exactly one of cells=, design= and run=")

    @property
    def runs_cells(self) -> bool:
        """Whether the table is made of engine cells run through the sweep store."""
        return self.run is None

    def next_cells(self, profile: Profile, rows: pd.DataFrame) -> list[Config]:
        """The cells to run given the ``rows`` of the cells run so far: a fixed table's cells
        whatever the rows; an adaptive design's next round. Cells that already ran may be
        among them (the caller skips them); the table is complete when none is new."""
        if self.design is not None:
            return self.design(profile, rows)
        assert self.cells is not None
        return self.cells(profile)

    def is_wanted(self, profile: Profile) -> bool:
        return self.wanted is None or bool(self.wanted(profile))

    @property
    def required_columns(self) -> tuple[str, ...]:
        base = ROW_COLUMNS if self.runs_cells else ()
        return tuple(dict.fromkeys((*base, *self.columns)))


@dataclass(frozen=True)
class SectionContext:
    """What a report section is written from."""

    derived: Mapping[str, pd.DataFrame]  # every derived table of the run
    figures: Mapping[str, Path]  # figure name -> PNG path, of every experiment
    folder: Path  # the reproduce folder (image links are relative to it)
    verdicts: Mapping[str, Verdict] = field(default_factory=dict)  # of the experiment's claims

    def image(self, name: str, caption: str) -> str:
        """A Markdown image line for figure ``name`` ('' when it was not drawn)."""
        return image(dict(self.figures), name, self.folder, caption)


@dataclass(frozen=True)
class Experiment:
    """One experiment: how its tables are produced, derived, drawn and reported."""

    name: str  # the --only name; experiments run and appear in the report in name order
    title: str  # one line: what it measures
    profile_table: str  # the profile's [table] holding its axes; without it, it does not run
    tables: tuple[Table, ...]
    derive: Callable[[Frames, int], Frames]  # (its stored tables, bootstrap size) -> derived
    provides: tuple[str, ...]  # the names of the derived tables ``derive`` returns
    figures: Callable[[Frames, Frames, Path], Figures]  # (its tables, derived, folder) -> PNGs
    section: Callable[[SectionContext], str]  # its report section (Markdown)
    claims: tuple[str, ...] = ()  # the claims its derived tables give evidence for

    def present(self, tables: Mapping[str, pd.DataFrame]) -> bool:
        """Whether the stored tables of this experiment are there to report."""
        return all(t.name in tables for t in self.tables if not t.optional)

    def own(self, tables: Mapping[str, pd.DataFrame]) -> Frames:
        """Its tables among ``tables``."""
        return {t.name: tables[t.name] for t in self.tables if t.name in tables}

    def derive_checked(self, tables: Mapping[str, pd.DataFrame], n_boot: int) -> Frames:
        """``derive`` on its own tables; a derived table not declared in ``provides`` is a bug
        of the experiment module (the claims would not know where it comes from)."""
        derived = self.derive(self.own(tables), n_boot)
        undeclared = sorted(set(derived) - set(self.provides))
        if undeclared:
            raise TypeError(f"experiment {self.name!r}: derive returned {undeclared[0]!r}, "
                            f"which is not in provides={self.provides}")
        return derived
