"""E5, STE on real data: binary networks trained with STE on scikit-learn's bundled digits
(``sklearn.datasets.load_digits``: 1797 images of 8 x 8 pixels with values 0..16; no download),
on raw pixels and on normalized inputs. The real-data check of claim C4.

Tasks
* ``binary``     : one digit (default 3) against the rest, the rest subsampled to the same size
                   (so chance accuracy is 0.5 and a constant classifier cannot look good).
* ``multiclass`` : the 10 digits (chance 0.1).
Every seed draws its own stratified 75/25 train/test split, subsample and initialization.

Models
* ``two_layer`` : the paper's network. h = W x with binary W = sign(U) (identity STE), binary
  activation sign(h) (identity STE), fixed second layer v averaging the hidden units: one block of
  ``hidden_per_output`` units per output, f_c = mean_{j in block c} sign(h_j). Square loss
  (1/2) sum_c (f_c - Y_c)^2 with Y in {-1, +1} (one-hot for 10 classes); prediction sign(f)
  (binary) or argmax_c f_c. Trained as in docs/model.md: full-batch STE gradient descent on U from a
  small random init (u0 ~ N(0, 1e-3^2)).
* ``mlp``       : a small binary MLP (Larq-style recipe): d -> H -> H -> classes, the two hidden
  layers with binary weights (``ste_sign``: sign forward, 1[|x| <= 1] backward, latent weights
  clipped to [-1, 1]) and binary activations (``ste_sign``), each pre-activation scaled by
  1/sqrt(fan_in) so that the 1[|x| <= 1] window means the same at every width; a full-precision
  readout; cross-entropy loss (a single logit with BCE for the binary task); Adam on minibatches.

Normalizations
* ``none``        : raw pixels.
* ``standardize`` : (x - mu) / sd with the training split's statistics (constant pixels are only
  centred), as :mod:`stelab.normalize`.
* ``batchnorm``   : raw pixels, and BatchNorm1d without affine part on every pre-activation
  before a sign (batch statistics in training, running statistics at test time): the
  ``batchnorm`` of :mod:`stelab.normalize` (centre, divide h by its standard deviation).

``run_digits`` returns tidy rows (one per task, model, normalization, seed) with the test
accuracy; ``summarize_digits`` gives the mean over seeds with a 95% bootstrap interval (none for
fewer than 6 seeds).

``digits_teacher_recovery`` is E4 on real inputs: the paper's exact-recovery experiment (m = 1,
random binary teacher w*, labels sign(x . w*), STE-gradient method of the engine) with the digit
images as the inputs x, raw and normalized, next to :func:`stelab.diagnosis.diagnose`'s
prediction for the same inputs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from stelab.analysis.tables import mean_ci as analysis_mean_ci
from stelab.config import NORMALIZATIONS
from stelab.errors import ConfigError
from stelab.nn import QuantLinear, Scale, attach_weight_clip
from stelab.quantizers import get_quantizer
from stelab.sweep.executors import LocalExecutor, SerialExecutor, available_cores

Tensor = torch.Tensor

TASKS = ("binary", "multiclass")
MODELS = ("two_layer", "mlp")
#: the normalizations E5's digit networks train with: a subset of the names of
#: :data:`stelab.config.NORMALIZATIONS`, where ``batchnorm`` is a BatchNorm1d layer of the network
NETWORK_NORMALIZATIONS = ("none", "standardize", "batchnorm")
CHANCE = {"binary": 0.5, "multiclass": 0.1}

__all__ = [
    "TASKS",
    "MODELS",
    "NETWORK_NORMALIZATIONS",
    "DigitsSettings",
    "load_digits_task",
    "build_model",
    "train_and_evaluate",
    "run_digits",
    "summarize_digits",
    "digits_teacher_recovery",
    "mean_ci",
]


@dataclass(frozen=True)
class DigitsSettings:
    """Training budget and sizes (``quick`` and ``full`` presets: :meth:`preset`)."""

    positive_digit: int = 3
    test_size: float = 0.25
    # two_layer: full-batch STE gradient descent
    hidden_per_output: int = 16
    two_layer_steps: int = 200
    two_layer_lr: float = 0.05
    init_scale: float = 1e-3
    # mlp: Adam on minibatches
    mlp_hidden: int = 256
    mlp_epochs: int = 20
    mlp_batch_size: int = 128
    mlp_lr: float = 1e-2

    @classmethod
    def preset(cls, quick: bool) -> DigitsSettings:
        if quick:
            return cls()
        return cls(two_layer_steps=1000, mlp_epochs=50)


def _check_choice(field_name: str, values: Sequence[str], allowed: Sequence[str]) -> None:
    for value in values:
        if value not in allowed:
            raise ConfigError(
                f"{field_name}: unknown value {value!r}; allowed: {', '.join(allowed)}"
            )


# --------------------------------------------------------------------------------- data
def load_digits_task(
    task: str, seed: int, settings: DigitsSettings | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) of ``task`` for ``seed``; X float32 raw pixels,
    y int64 class indices (binary task: 1 = the positive digit)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _check_choice("task", [task], TASKS)
    settings = settings or DigitsSettings()
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    if task == "binary":
        positive = np.flatnonzero(y == settings.positive_digit)
        others = np.flatnonzero(y != settings.positive_digit)
        rest = rng.choice(others, positive.size, replace=False)
        keep = np.concatenate([positive, rest])
        X, y = X[keep], (y[keep] == settings.positive_digit).astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=settings.test_size, stratify=y, random_state=seed
    )
    return X_tr, y_tr.astype(np.int64), X_te, y_te.astype(np.int64)


def _standardize(X_tr: np.ndarray, X_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = X_tr.mean(axis=0, dtype=np.float64)
    sd = X_tr.std(axis=0, dtype=np.float64)
    sd = np.where(sd > 0, sd, 1.0)
    return ((X_tr - mu) / sd).astype(np.float32), ((X_te - mu) / sd).astype(np.float32)


# --------------------------------------------------------------------------------- models
class PaperTwoLayer(nn.Module):
    """f_c(x) = mean_{j in block c} sign(h_j), h = sign(U) x [batch-normed]; v fixed."""

    def __init__(self, d: int, n_out: int, hidden_per_output: int, batchnorm: bool) -> None:
        super().__init__()
        hidden = n_out * hidden_per_output
        self.hidden = QuantLinear(d, hidden, bias=False, weight_quantizer="sign")
        self.norm = nn.BatchNorm1d(hidden, affine=False) if batchnorm else nn.Identity()
        self.activation = get_quantizer("sign")
        readout = torch.zeros(n_out, hidden)
        for c in range(n_out):
            block = slice(c * hidden_per_output, (c + 1) * hidden_per_output)
            readout[c, block] = 1.0 / hidden_per_output
        self.register_buffer("readout", readout)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.norm(self.hidden(x))) @ self.readout.T


def _binary_mlp(d: int, n_out: int, hidden: int, batchnorm: bool) -> nn.Sequential:
    def block(fan_in: int, first: bool) -> list[nn.Module]:
        layer = QuantLinear(
            fan_in,
            hidden,
            bias=False,
            input_quantizer=None if first else "ste_sign",
            weight_quantizer="ste_sign",
            weight_clip=1.0,
        )
        norm = nn.BatchNorm1d(hidden, affine=False) if batchnorm else nn.Identity()
        return [layer, Scale(1.0 / math.sqrt(fan_in)), norm]

    readout = QuantLinear(hidden, n_out, input_quantizer="ste_sign", weight_quantizer=None)
    return nn.Sequential(*block(d, True), *block(hidden, False), readout)


def build_model(
    model: str, task: str, normalization: str, d: int = 64, settings: DigitsSettings | None = None
) -> nn.Module:
    """The network ``model`` for ``task`` (output size 1 or 10) with batch norm iff
    ``normalization == "batchnorm"``."""
    _check_choice("model", [model], MODELS)
    _check_choice("task", [task], TASKS)
    _check_choice("normalization", [normalization], NETWORK_NORMALIZATIONS)
    settings = settings or DigitsSettings()
    n_out = 1 if task == "binary" else 10
    batchnorm = normalization == "batchnorm"
    if model == "two_layer":
        return PaperTwoLayer(d, n_out, settings.hidden_per_output, batchnorm)
    return _binary_mlp(d, n_out, settings.mlp_hidden, batchnorm)


# --------------------------------------------------------------------------------- training
def _loss_and_prediction(model: str, task: str) -> tuple[Callable, Callable]:
    if model == "two_layer":
        if task == "binary":
            targets = lambda y: (2.0 * y - 1.0)[:, None]  # noqa: E731
        else:
            targets = lambda y: 2.0 * F.one_hot(y, 10).float() - 1.0  # noqa: E731

        def loss(out: Tensor, y: Tensor) -> Tensor:
            return 0.5 * (out - targets(y)).square().sum(dim=1).mean()

        threshold = 0.0
    else:
        if task == "binary":

            def loss(out: Tensor, y: Tensor) -> Tensor:
                return F.binary_cross_entropy_with_logits(out[:, 0], y.float())

        else:
            loss = F.cross_entropy
        threshold = 0.0

    def predict(out: Tensor) -> Tensor:
        if out.shape[1] == 1:
            return (out[:, 0] >= threshold).long()  # sign(0) = +1 for the paper's f
        return out.argmax(dim=1)

    return loss, predict


def _init_latent(module: nn.Module, scale: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, QuantLinear) and layer.weight_quantizer is not None:
                if scale > 0:
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * scale)


def train_and_evaluate(
    task: str, model: str, normalization: str, seed: int, settings: DigitsSettings | None = None
) -> dict:
    """Train one network and return its tidy row (test and train accuracy, timing)."""
    settings = settings or DigitsSettings()
    X_tr, y_tr, X_te, y_te = load_digits_task(task, seed, settings)
    if normalization == "standardize":
        X_tr, X_te = _standardize(X_tr, X_te)
    torch.manual_seed(seed)  # default-initialized parts (readout) follow the seed too
    net = build_model(model, task, normalization, X_tr.shape[1], settings)
    generator = torch.Generator().manual_seed(seed)
    if model == "two_layer":
        _init_latent(net, settings.init_scale, generator)
    loss_fn, predict = _loss_and_prediction(model, task)
    xt, yt = torch.from_numpy(X_tr), torch.from_numpy(y_tr)
    began = time.perf_counter()
    net.train()
    if model == "two_layer":
        optimizer = torch.optim.SGD(net.parameters(), lr=settings.two_layer_lr)
        for _ in range(settings.two_layer_steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(xt), yt).backward()
            optimizer.step()
    else:
        optimizer = torch.optim.Adam(net.parameters(), lr=settings.mlp_lr)
        attach_weight_clip(optimizer, net)
        n = xt.shape[0]
        for _ in range(settings.mlp_epochs):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, settings.mlp_batch_size):
                idx = order[start : start + settings.mlp_batch_size]
                if idx.numel() < 2 and normalization == "batchnorm":
                    continue  # batch norm needs two samples
                optimizer.zero_grad(set_to_none=True)
                loss_fn(net(xt[idx]), yt[idx]).backward()
                optimizer.step()
    seconds = time.perf_counter() - began
    net.eval()
    with torch.no_grad():
        train_acc = float((predict(net(xt)) == yt).float().mean())
        test_pred = predict(net(torch.from_numpy(X_te)))
        test_acc = float((test_pred == torch.from_numpy(y_te)).float().mean())
    return {
        "task": task,
        "model": model,
        "normalization": normalization,
        "seed": int(seed),
        "test_accuracy": test_acc,
        "train_accuracy": train_acc,
        "n_train": int(len(y_tr)),
        "n_test": int(len(y_te)),
        "chance": CHANCE[task],
        "wall_seconds": seconds,
    }


def run_digits(
    seeds: int | Sequence[int] = 10,
    quick: bool = True,
    tasks: Sequence[str] = TASKS,
    models: Sequence[str] = MODELS,
    normalizations: Sequence[str] = NETWORK_NORMALIZATIONS,
    settings: DigitsSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Tidy rows, one per (task, model, normalization, seed), with ``test_accuracy``.

    ``seeds``: a count (seeds 0..k-1) or explicit seeds. ``quick`` picks the training budget
    (:meth:`DigitsSettings.preset`) unless ``settings`` is given. ``workers``: processes that
    train networks side by side (default one per core; 1: in this process). Each network
    trains on one thread from its own seed, so the rows (all but ``wall_seconds``) do not
    depend on ``workers``.
    """
    _check_choice("task", tasks, TASKS)
    _check_choice("model", models, MODELS)
    _check_choice("normalization", normalizations, NETWORK_NORMALIZATIONS)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("seeds: need at least one seed")
    settings = settings or DigitsSettings.preset(quick)
    combos = [
        (t, m, z, s) for t in tasks for m in models for z in normalizations for s in seed_list
    ]
    jobs = [(*combo, settings) for combo in combos]
    if workers is not None and workers < 1:
        raise ConfigError(f"workers: {workers} is not allowed; allowed: >= 1")
    workers = min(workers or available_cores(), len(jobs))
    rows: list[dict | None] = [None] * len(jobs)
    # the sweep's executors: in this process, or a process pool that Ctrl-C stops and that
    # reruns the job of a worker that died
    pool = SerialExecutor() if workers == 1 else LocalExecutor(workers)
    try:
        for done, (i, row) in enumerate(pool.map_unordered(_train_job, jobs), 1):
            if isinstance(row, BaseException):
                raise row
            rows[i] = row
            if progress is not None:
                progress(done, len(jobs))
    except BaseException:
        pool.abort()
        raise
    pool.close()
    frame = pd.DataFrame(rows)
    frame.attrs["settings"] = asdict(settings)
    return frame


def _train_job(job: tuple[str, str, str, int, DigitsSettings]) -> dict:
    """:func:`train_and_evaluate` of one (task, model, normalization, seed, settings) tuple, on
    one thread."""
    with _single_thread():
        return train_and_evaluate(*job)


class _single_thread:
    """Tiny networks run fastest on one thread (and leave the other cores to other work)."""

    def __enter__(self) -> None:
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._threads)


# --------------------------------------------------------------------------------- summary
def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the bootstrap interval of :func:`stelab.analysis.mean_ci`, inside
    [0, 1] for accuracies; nan ends for fewer than ``MIN_SAMPLE`` (6) seeds (too few)."""
    return analysis_mean_ci(np.asarray(values, dtype=np.float64), confidence)


def summarize_digits(rows: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (task, model, normalization): mean test accuracy over seeds with a bootstrap interval,
    its standard deviation, the number of seeds and chance."""
    records = []
    for (task, model, norm), group in rows.groupby(["task", "model", "normalization"], sort=False):
        mean, low, high = mean_ci(group["test_accuracy"].to_list(), confidence)
        records.append(
            {
                "task": task,
                "model": model,
                "normalization": norm,
                "test_accuracy": mean,
                "ci_low": low,
                "ci_high": high,
                "sd": float(group["test_accuracy"].std(ddof=1)) if len(group) > 1 else 0.0,
                "seeds": int(len(group)),
                "train_accuracy": float(group["train_accuracy"].mean()),
                "chance": CHANCE[task],
            }
        )
    return pd.DataFrame(records)


# --------------------------------------------------------------------------------- E4 on digits
def digits_teacher_recovery(
    trials: int = 16,
    steps: int = 500,
    teacher_balances: Sequence[float] = (0.5, 0.75),
    normalizations: Sequence[str] = NORMALIZATIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """Exact recovery of random binary teachers from the 1797 digit images (constant pixels left
    out), per (normalization, balance): measured success rate of the last iterate with a Wilson
    95% interval (:func:`stelab.diagnosis.simulate`) and diagnose's prediction."""
    from sklearn.datasets import load_digits

    from stelab.analysis.proportions import wilson_interval
    from stelab.diagnosis import diagnose, simulate

    X = load_digits().data.astype(np.float64)
    diagnosis = diagnose(X, tuple(teacher_balances), tuple(normalizations), steps=steps, seed=seed)
    rows = []
    for z in normalizations:
        for balance in teacher_balances:
            rate = simulate(X, z, balance, trials=trials, steps=steps, seed=seed)
            successes = int(round(rate * trials))
            low, high = wilson_interval(successes, trials)
            check = diagnosis.check(z, balance)
            rows.append(
                {
                    "normalization": z,
                    "teacher_balance": float(balance),
                    "successes": successes,
                    "trials": trials,
                    "success_rate": rate,
                    "ci_low": low,
                    "ci_high": high,
                    "n_eff": check.n_eff,
                    "unpinned_share": check.unpinned_share,
                    "gaussian_n50": diagnosis.gaussian_n50,
                    "predicted_healthy": check.predicted_healthy,
                    "measured_healthy": rate >= 0.5,
                }
            )
    return pd.DataFrame(rows)
