# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # stelab in a notebook: from a config to a threshold, a figure and a 1-bit model
#
# This tutorial is `examples/tutorial.py` (the reviewed source, jupytext percent format) paired
# with `examples/tutorial.ipynb` (`jupytext --sync examples/tutorial.py` after an edit). The test
# suite executes it (`tests/test_tutorial.py`), so every cell here runs.
#
# It follows the path of a study of the paper (arXiv 2505.18113 v2; see docs/model.md): run the
# STE-gradient method on a teacher-student problem, find the sample-complexity threshold n50 for
# several dimensions d, fit n50 = C d^alpha, compare with the committed full reproduction, then
# look at a real dataset and deploy a binary layer. The functions it uses are listed in
# docs/notebooks.md.

# %%
# %matplotlib inline
import os
from pathlib import Path

import pandas as pd
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

import stelab
from stelab import analysis, figures
from stelab.nn import QuantLinear, attach_weight_clip, summary
from stelab.pack import export_packed, load_packed
from stelab.realdata import load_digits_task

pd.set_option("display.width", 120)
# the repository's root (the folder that holds results/full), searched upwards from here
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "results" / "full").is_dir())
# where this tutorial writes (runs/ is ignored by git); the test points it at a scratch folder
OUT = Path(os.environ.get("STELAB_TUTORIAL_OUT", ROOT / "runs" / "tutorial"))

# %% [markdown]
# ## 1. One config: a single neuron learning a binary teacher
#
# A config is a point of the parameter space (docs/model.md): the model (d inputs, m hidden
# units), the input law, label noise, the training (n samples, T steps, the surrogate gradient)
# and how many independent trials to run. `parse_config` checks every field and names the bad
# one on error.

# %%
cfg = stelab.parse_config({
    "model": {"d": 32, "m": 1, "activation": "sign"},
    "data": {"distribution": "gaussian"},
    "train": {"n": 128, "steps": 1000, "ste": "identity", "step_size": 0.5, "init": "small"},
    "run": {"trials": 32, "seed": 0, "device": "cpu"},
})
rows = stelab.run_experiment(cfg)  # one row per trial
analysis.success_table(rows)  # success rates with Wilson 95% intervals

# %% [markdown]
# ## 2. A small sweep over d and n
#
# A sweep is the same mapping with lists and a `[sweep]` table naming the axes (the format of
# `stelab sweep`, docs/sweeps.md). Its folder is resumable: running this cell again reads the
# finished cells back instead of recomputing them.
#
# The cells run one after another in this kernel (the serial executor): for a sweep this small,
# starting worker processes, each of which imports torch, costs more than the cells. For a larger
# sweep use the process pool, `stelab.Execution("local", workers=...)`, or Dask (docs/sweeps.md).

# %%
SWEEP = {
    "model": {"d": [16, 32, 64], "m": 1, "activation": "sign"},
    "data": {"distribution": "gaussian", "normalization": "none"},
    "train": {"n": [8, 12, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512], "steps": 1000,
              "ste": "identity", "step_size": 0.5, "init": "small", "init_scale": 1e-3},
    "run": {"trials": 64, "seed": 1, "device": "cpu"},
    "sweep": {"axes": ["model.d", "train.n"]},
}
stelab.run_sweep(SWEEP, OUT / "sweep", execution=stelab.Execution("serial", progress=False))

# %% [markdown]
# ## 3. Load it
#
# `stelab.load` reads any run, sweep or reproduce folder back: tidy rows (one per trial, with
# `alpha = n / d`), the grid's axes, and for a reproduce folder its derived tables by name.
# `to_xarray()` gives the success rates over the axes as a labelled array (with the optional
# extra `pip install 'stelab[notebook]'`).

# %%
res = stelab.load(OUT / "sweep")
print(res)
res.rows[["d", "n", "alpha", "trial", "success_last", "success_ergodic", "occupation"]].head()

# %%
grid = res.to_xarray(success="success_last")
grid["rate"].sel(metric="success_last").to_pandas()  # rows: d, columns: n

# %% [markdown]
# ## 4. Fit n50(d)
#
# For each d, P(success | n) = F(a + b log n) is fitted by a Firth-penalized logistic regression;
# n50 = exp(-a/b) with a bootstrap 95% interval (docs/analysis.md). The power law
# n50 = C d^alpha is then fitted across d, and the local exponents show whether one exponent
# describes the range. These are the functions the report uses.

# %%
thresholds = analysis.thresholds_by(res.rows, by="d", n_boot=200, seed=0)
thresholds[["d", "success", "n50", "ci_low", "ci_high", "identified"]]

# %%
analysis.scaling_by(thresholds, n_boot=500)[["success", "alpha", "alpha_ci_low",
                                             "alpha_ci_high", "n_points"]]

# %%
last = thresholds[thresholds["success"] == "success_last"].drop(columns="success")
analysis.local_exponents(last)

# %%
figures.success_curves(res.rows, success="success_last", by="d")

# %%
figures.n50_scaling(res.rows, thresholds=thresholds)

# %% [markdown]
# ## 5. Compare with the committed full reproduction
#
# `results/full` is the paper-scale run of `stelab reproduce --full` (100 trials a cell, d up to
# 1024). Its E1 case `m1_sign_identity` is the setting above, with another seed; its
# thresholds are a derived table.
#
# Read the intervals with care: trial k of a run draws its teacher, inputs and initialization
# from streams keyed by (seed, k) at every n (docs/model.md), so a run's whole success
# curve moves together; the bootstrap therefore resamples whole trials across every n (the
# clustered bootstrap, docs/analysis.md). At small d, where few grid points lie on the rise of
# the curve, n50 takes a few discrete values and two runs with different seeds can still
# disagree by somewhat more than their 95% intervals.

# %%
full = stelab.load(ROOT / "results" / "full")
reference = full.table("e1_thresholds")
reference = reference[(reference["case"] == "m1_sign_identity") & (reference["d"] <= 64)]
both = thresholds.merge(reference, on=["d", "success"], suffixes=("", "_full"))
both["intervals_overlap"] = (both["ci_low"] <= both["ci_high_full"]) & (
    both["ci_low_full"] <= both["ci_high"])
both[["d", "success", "n50", "ci_low", "ci_high", "n50_full", "ci_low_full", "ci_high_full",
      "intervals_overlap"]]

# %% [markdown]
# Over the whole range the full run gives two different exponents: the last iterate's n50 grows
# about like d^1.9 and the ergodic average's more slowly (its local exponents drift):

# %%
full.table("e1_scaling")[["case", "success", "alpha", "alpha_ci_low", "alpha_ci_high"]]

# %% [markdown]
# ## 6. Diagnose a dataset: will STE work on the digits?
#
# `stelab.diagnose` asks, for a data matrix (samples x features), whether the STE-gradient
# method can recover a random binary teacher from it, raw and after each normalization
# (docs/diagnose.md). scikit-learn's digits are bundled with it (no download).

# %%
X = load_digits().data
diagnosis = stelab.diagnose(X, teacher_balances=(0.5,))
print("recommended normalization:", diagnosis.recommended)
pd.DataFrame(diagnosis.to_dict()["checks"])[
    ["normalization", "n_eff", "unpinned_share", "identifiable", "predicted_healthy"]]

# %% [markdown]
# ## 7. Train a binary layer and ship it as a 1-bit file
#
# `stelab.nn` has binary layers for PyTorch on the same quantizers as the simulator; `stelab.pack`
# exports a trained model with its binary weights packed 8 to a byte and runs it with packed
# kernels (docs/nn.md). A real-input layer with sign weights, batch norm, then a binary x binary
# readout; Adam with the latent weights clipped to [-1, 1].

# %%
X_train, y_train, X_test, y_test = load_digits_task("multiclass", seed=0)
x, y = torch.from_numpy(X_train), torch.from_numpy(y_train)
x_test, y_test = torch.from_numpy(X_test), torch.from_numpy(y_test)

torch.manual_seed(0)
model = nn.Sequential(
    QuantLinear(64, 128, bias=False, weight_quantizer="ste_sign", weight_clip=1.0),
    nn.BatchNorm1d(128, affine=False),
    QuantLinear(128, 10, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                weight_clip=1.0),
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
attach_weight_clip(optimizer, model)  # applies weight_clip after every step
order = torch.Generator().manual_seed(0)
for _epoch in range(15):
    batches = torch.randperm(len(x), generator=order).split(128)
    for idx in (b for b in batches if len(b) > 1):  # batch norm needs two samples
        optimizer.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()
model.eval()
with torch.no_grad():
    predicted = model(x_test).argmax(1)
print(f"test accuracy {(predicted == y_test).float().mean():.3f} on {len(y_test)} images")
print(summary(model, input_shape=(64,)))

# %%
path = export_packed(model, OUT / "digits.safetensors")
packed = load_packed(path)
same = (packed(x_test).argmax(1) == predicted).float().mean()
print(f"{path.name}: {path.stat().st_size:,} bytes; packed model agrees with the float model on "
      f"{same:.1%} of the test images")
