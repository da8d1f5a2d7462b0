"""A binary MLP and a binary CNN built and trained the way Larq's guides teach, with stelab.nn.

    python examples/larq_style.py          # about 20 s on one core; prints the test accuracies

The recipe (docs/nn.md, "A Larq-style recipe"; Larq's names: docs/from_larq.md):

* first layer: real inputs (no input quantizer), binary weights; every later binary layer also
  binarizes its inputs (``input_quantizer="ste_sign"``);
* order: binary layer -> (pooling) -> batch norm; no bias in binary layers (batch norm follows);
* weights ``ste_sign`` (sign, gradient 1[|w| <= 1]) with ``weight_clip=1.0``: the latent
  weights stay in [-1, 1] after every optimizer step, with no call to make;
* the last binary layer gives the logits through a batch norm (softmax is in the loss);
* the MLP trains with Adam; the CNN with Bop on the binary weights and Adam on the rest.

Data: scikit-learn's digits (1797 images of 8 x 8 pixels, no download), scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from stelab.nn import Bop, QuantConv2d, QuantLinear, binary_parameters, real_parameters

BINARY = {"weight_quantizer": "ste_sign", "weight_clip": 1.0, "bias": False}
HIDDEN = {"input_quantizer": "ste_sign", **BINARY}


def binary_mlp() -> nn.Sequential:
    """Flatten -> [QuantLinear -> BatchNorm] x 3; the first layer sees the real pixels."""
    return nn.Sequential(
        nn.Flatten(),
        QuantLinear(64, 256, **BINARY),  # first layer: real inputs
        nn.BatchNorm1d(256),
        QuantLinear(256, 256, **HIDDEN),
        nn.BatchNorm1d(256),
        QuantLinear(256, 10, **HIDDEN),
        nn.BatchNorm1d(10),  # logits
    )


def binary_cnn() -> nn.Sequential:
    """[QuantConv2d -> MaxPool -> BatchNorm] x 2 -> Flatten -> QuantLinear -> BatchNorm."""
    return nn.Sequential(
        QuantConv2d(1, 32, 3, padding=1, **BINARY),  # first layer: real inputs
        nn.MaxPool2d(2),
        nn.BatchNorm2d(32),
        QuantConv2d(32, 64, 3, padding=1, **HIDDEN),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(64),
        nn.Flatten(),
        QuantLinear(64 * 2 * 2, 10, **HIDDEN),
        nn.BatchNorm1d(10),  # logits
    )


def digits(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Train and test images (n, 1, 8, 8) in [0, 1] and labels, a 80/20 split."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X = torch.tensor(X[order] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y[order])
    cut = int(0.8 * len(y))
    return X[:cut], y[:cut], X[cut:], y[cut:]


def train(model: nn.Module, optimizers: list[torch.optim.Optimizer], data: tuple,
          epochs: int, seed: int = 0) -> float:
    """Minibatch training with cross-entropy; returns the test accuracy."""
    X_tr, y_tr, X_te, y_te = data
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y_tr), generator=generator).split(64):
            for opt in optimizers:
                opt.zero_grad()
            loss_fn(model(X_tr[batch]), y_tr[batch]).backward()
            for opt in optimizers:
                opt.step()  # weight_clip applies here, after each step
    model.eval()
    with torch.no_grad():
        return float((model(X_te).argmax(1) == y_te).float().mean())


def main() -> dict[str, float]:
    torch.manual_seed(0)
    data = digits()
    mlp = binary_mlp()
    mlp_acc = train(mlp, [torch.optim.Adam(mlp.parameters(), lr=1e-2)], data, epochs=15)
    clipped = max(float(m.weight.detach().abs().max()) for m in mlp if isinstance(m, QuantLinear))
    cnn = binary_cnn()
    optimizers = [Bop(binary_parameters(cnn), gamma=1e-3, threshold=1e-6),
                  torch.optim.Adam(real_parameters(cnn), lr=1e-2)]
    cnn_acc = train(cnn, optimizers, data, epochs=15)
    print(f"binary MLP (Adam): test accuracy {mlp_acc:.3f}; max |latent weight| {clipped:.3f}")
    print(f"binary CNN (Bop + Adam): test accuracy {cnn_acc:.3f}")
    return {"mlp": mlp_acc, "cnn": cnn_acc, "max_latent": clipped}


if __name__ == "__main__":
    main()
