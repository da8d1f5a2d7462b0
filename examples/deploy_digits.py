"""Train a binary network on scikit-learn's digits with stelab.nn, ship it as a 1-bit packed
file, reload it for inference, and compare predictions, size on disk and speed.

    python examples/deploy_digits.py [--out runs/deploy_digits] [--epochs 20]

The network is the digits binary MLP of stelab.realdata (64 -> 256 -> 256 -> 10: a real x binary
first layer, a binary x binary hidden layer, batch norm, a float readout on binary inputs).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# torch's and numba's OpenMP pools take turns in a packed model: let waiting threads sleep
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from stelab.nn import attach_weight_clip, summary  # noqa: E402
from stelab.pack import export_packed, load_packed  # noqa: E402
from stelab.realdata import build_model, load_digits_task  # noqa: E402


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    """Adam on minibatches of 128, latent weights clipped to [-1, 1] (realdata's recipe)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    attach_weight_clip(optimizer, model)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 128):
            idx = order[start:start + 128]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()


def seconds_per_call(fn, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of a loop of calls lasting about 0.2 s."""
    fn()
    times = []
    for _ in range(repeats):
        calls, began = 0, time.perf_counter()
        while time.perf_counter() - began < 0.2:
            fn()
            calls += 1
        times.append((time.perf_counter() - began) / calls)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/deploy_digits"))
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    X_tr, y_tr, X_te, y_te = load_digits_task("multiclass", seed=0)
    x_tr, y_tr_t = torch.from_numpy(X_tr), torch.from_numpy(y_tr)
    x_te, y_te_t = torch.from_numpy(X_te), torch.from_numpy(y_te)
    model = build_model("mlp", "multiclass", "batchnorm")
    train(model, x_tr, y_tr_t, args.epochs)
    print(summary(model, input_shape=(64,)))

    with torch.no_grad():
        float_logits = model(x_te)
    float_pred = float_logits.argmax(1)
    print(f"float model: test accuracy {(float_pred == y_te_t).float().mean():.3f} "
          f"({len(y_te)} test images)")

    args.out.mkdir(parents=True, exist_ok=True)
    path = export_packed(model, args.out / "digits_mlp.safetensors")
    checkpoint = args.out / "digits_mlp_float.pt"
    torch.save(model.state_dict(), checkpoint)
    packed = load_packed(path)
    packed_logits = packed(x_te)
    packed_pred = packed_logits.argmax(1)
    same = int((packed_pred == float_pred).sum())
    print(f"packed model: test accuracy {(packed_pred == y_te_t).float().mean():.3f}; same "
          f"predictions as the float model on {same}/{len(y_te)} images; largest logit "
          f"difference {(packed_logits - float_logits).abs().max():.2e}")

    header = 8 + int.from_bytes(path.read_bytes()[:8], "little")
    size, float_size = path.stat().st_size, checkpoint.stat().st_size
    print(f"size on disk: packed {size:,} B (of which header {header:,} B), float checkpoint "
          f"(torch.save state_dict) {float_size:,} B: {float_size / size:.1f}x smaller; "
          f"summary memory {summary(model).memory_bytes:,} B")

    torch.set_num_threads(1)
    import numba

    numba.set_num_threads(1)
    one = x_te[:1]
    with torch.no_grad():
        t_float_1 = seconds_per_call(lambda: model(one))
        t_float_all = seconds_per_call(lambda: model(x_te))
    t_packed_1 = seconds_per_call(lambda: packed(one))
    t_packed_all = seconds_per_call(lambda: packed(x_te))
    print(f"speed (1 thread): one image: float {t_float_1 * 1e6:.0f} us, packed "
          f"{t_packed_1 * 1e6:.0f} us ({t_float_1 / t_packed_1:.1f}x); all {len(y_te)} test "
          f"images: float {t_float_all * 1e3:.2f} ms, packed {t_packed_all * 1e3:.2f} ms "
          f"({t_float_all / t_packed_all:.1f}x)")


if __name__ == "__main__":
    main()
