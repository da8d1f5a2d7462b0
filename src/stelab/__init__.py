"""stelab: 1-bit quantization-aware training with the straight-through estimator (STE).

The public API (each name is imported on first use, so ``import stelab`` and the CLI start fast)::

    import stelab

    cfg = stelab.load_config("examples/quickstart.toml")      # or stelab.parse_config({...})
    rows = stelab.run_experiment(cfg)                          # one row per trial
    rows = stelab.run_sweep("examples/sweep_small.toml", "runs/small")   # resumable grid
    configs = stelab.expand_grid(raw_sweep_mapping)            # the grid's configs
    rows = stelab.run_cells(configs, "runs/mine")              # any list of configs or cells
    claims = stelab.reproduce("quick", "runs/quick")          # the paper's experiments + report
    report = stelab.diagnose(X)                                # STE health of a data matrix
    res = stelab.load("runs/small")                            # any run/sweep/reproduce folder

    from stelab import analysis, figures                       # the report's statistics, figures
    analysis.thresholds_by(res.rows, by=("d", "noise_level"))  # n50 with bootstrap CIs
    fig = figures.success_curves(res.rows[res.rows.noise_level == 0])   # a matplotlib Figure

Notebook use (loading, analysis, figures): docs/notebooks.md. The model and its conventions:
docs/model.md; how the package is laid out: docs/architecture.md.
"""

from __future__ import annotations

from stelab.lazy import lazy_names
from stelab.provenance import __version__

#: public name -> the module that holds it
_API = {
    "Config": "stelab.config",
    "load_config": "stelab.config",
    "parse_config": "stelab.config",
    "run_experiment": "stelab.engine",
    "Execution": "stelab.sweep",
    "run_sweep": "stelab.sweep",
    "run_cells": "stelab.sweep",
    "expand_grid": "stelab.sweep",
    "make_cells": "stelab.sweep",
    "parse_sweep": "stelab.sweep",
    "reproduce": "stelab.reproduction",
    "write_report": "stelab.report.write",
    "register_surrogate": "stelab.registration",
    "register_distribution": "stelab.registration",
    "diagnose": "stelab.diagnosis",
    "load_data": "stelab.diagnosis",
    "load": "stelab.loading",
    "Results": "stelab.loading",
    "ResultsFolderError": "stelab.loading",
    "success_array": "stelab.loading",
    "StelabError": "stelab.errors",
    "ConfigError": "stelab.errors",
}

__all__ = ["__version__", *_API]

__getattr__, __dir__ = lazy_names(__name__, _API, globals(), __all__)
