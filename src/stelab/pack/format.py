"""The packed checkpoint: one safetensors file that rebuilds an inference-only model.

Contents
* tensors: for every layer whose weight quantizer is 1-bit (QuantLinear, QuantConv2d), the
  weights' signs as one run of uint64 words, ``<layer>.weight_bits`` (sign(0) = +1; layout
  "stream" of :mod:`stelab.pack.bits`, so ceil(n / 8) bytes + at most 7); the latent weights
  are not stored. Every other parameter and floating buffer (biases, batch-norm statistics,
  layers that are not binary) as it is, under its ``state_dict`` name.
* metadata (str -> str): ``format`` = ``stelab.packed``, ``format_version``, ``stelab_version``
  and ``architecture``: JSON of the module tree (type, constructor arguments, input and weight
  quantizer names), enough to rebuild the supported layers; ``stelab_sha256``: the SHA-256 of
  the whole file with these 64 hex digits read as zeros (:mod:`stelab.integrity`), checked on
  every load (a file whose bytes changed is refused; a file written without it loads unchecked).

So the file's size is the memory :func:`stelab.nn.summary` counts (within the word rounding),
plus safetensors' header (the tensor table and the metadata). A safetensors file holds no code:
loading it never unpickles anything.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stelab.errors import PackError
from stelab.integrity import (
    EMBEDDED_KEY,
    IntegrityError,
    check_embedded,
    embedded_placeholder,
    seal_embedded,
)
from stelab.nn.layers import QuantConv2d, QuantizedLayer, QuantLinear, Scale
from stelab.pack.bits import pack_stream, stream_to_rows, unpack_stream, words_for
from stelab.pack.chain import CHAIN_TYPES, TORCH_TYPES, as_chain
from stelab.pack.modules import PackedConv2d, PackedLinear, PackedModel
from stelab.provenance import __version__
from stelab.quantizers import Quantizer, get_quantizer

__all__ = ["FORMAT", "FORMAT_VERSION", "SUPPORTED_TYPES", "export_packed", "load_packed",
           "read_metadata"]

FORMAT = "stelab.packed"
FORMAT_VERSION = "1"

SUPPORTED_TYPES = (*CHAIN_TYPES, "Sequential")


# --------------------------------------------------------------------------------- export
def _quantizer_spec(layer: QuantizedLayer, which: str, path: str) -> str | None:
    quantizer = getattr(layer, f"{which}_quantizer")
    if quantizer is None:
        return None
    if not isinstance(quantizer, Quantizer):
        raise PackError(f"export_packed: layer '{path}' has a custom {which}_quantizer "
                        f"({getattr(quantizer, '__name__', type(quantizer).__name__)}); "
                        "supported: the names of stelab.quantizers.QUANTIZERS or "
                        "'<activation>:<ste>'")
    return quantizer.name


def _is_packed_weight(layer: QuantizedLayer, path: str) -> bool:
    """Whether the weights of ``layer`` are stored as sign bits (a 1-bit sign quantizer)."""
    name = _quantizer_spec(layer, "weight", path)
    if name is None:
        return False
    if get_quantizer(name).activation != "sign":
        raise PackError(f"export_packed: layer '{path}' has weight quantizer {name!r} "
                        "(values {0, 1}); supported for packing: sign-family weight "
                        "quantizers, or None for float weights")
    return True


def _conv_args(m: nn.Conv2d) -> dict[str, Any]:
    return {"in_channels": m.in_channels, "out_channels": m.out_channels,
            "kernel_size": list(m.kernel_size), "stride": list(m.stride),
            "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
            "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None,
            "padding_mode": m.padding_mode}


def _module_args(m: nn.Module) -> dict[str, Any]:
    if isinstance(m, nn.Linear):
        return {"in_features": m.in_features, "out_features": m.out_features,
                "bias": m.bias is not None}
    if isinstance(m, nn.Conv2d):
        return _conv_args(m)
    if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        return {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
                "affine": m.affine, "track_running_stats": m.track_running_stats}
    if isinstance(m, nn.Flatten):
        return {"start_dim": m.start_dim, "end_dim": m.end_dim}
    if isinstance(m, nn.Hardtanh):
        return {"min_val": m.min_val, "max_val": m.max_val}
    if isinstance(m, Scale):
        return {"factor": m.factor}
    if isinstance(m, nn.LeakyReLU):
        return {"negative_slope": m.negative_slope}
    if isinstance(m, nn.Softmax | nn.LogSoftmax):
        return {"dim": m.dim}
    return {}


def _type_name(m: nn.Module) -> str | None:
    """The supported type ``m`` is exactly (a subclass may compute something else)."""
    for name, cls in [("Sequential", nn.Sequential), *CHAIN_TYPES.items()]:
        if type(m) is cls:
            return name
    return None


def _float_tensors(module: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    own = list(module.named_parameters(recurse=False))
    own += [(n, b) for n, b in module.named_buffers(recurse=False)
            if b is not None and b.is_floating_point()]
    return {prefix + n: t.detach().cpu().contiguous().numpy() for n, t in own}


def _describe(m: nn.Module, path: str, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    kind = _type_name(m)
    if kind is None:
        raise PackError(f"export_packed: layer '{path or '(model)'}' is a {type(m).__name__}, "
                        f"which cannot be rebuilt; supported types: {', '.join(SUPPORTED_TYPES)}")
    prefix = f"{path}." if path else ""
    if kind == "Sequential":
        children = [[name, _describe(child, prefix + name, tensors)]
                    for name, child in m.named_children()]
        return {"type": kind, "children": children}
    spec: dict[str, Any] = {"type": kind, **_module_args(m)}
    own = _float_tensors(m, prefix)
    if isinstance(m, QuantizedLayer):
        spec["input_quantizer"] = _quantizer_spec(m, "input", path)
        spec["weight_quantizer"] = _quantizer_spec(m, "weight", path)
        spec["packed"] = _is_packed_weight(m, path)
        if spec["packed"]:
            weight = own.pop(prefix + "weight")
            if np.isnan(weight).any():
                raise PackError(f"export_packed: layer '{path}' has NaN latent weights; a NaN "
                                "has no sign")
            tensors[prefix + "weight_bits"] = pack_stream(weight)
    tensors.update(own)
    return spec


def export_packed(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a packed safetensors file (see the module doc).

    Parameters
    ----------
    model : torch.nn.Module
        The trained float model: a ``Sequential`` of supported layers (:data:`SUPPORTED_TYPES`,
        exact types) or any module whose forward is a chain of them and of the functions
        :mod:`stelab.pack.chain` lists (traced with ``torch.fx``; ``nn.Dropout`` becomes a
        no-op). Binary weights (sign-family weight quantizer) are stored as 1 bit each; its
        training mode is left as it is.
    path : str or os.PathLike
        The file to write (its folder is created). Written atomically: a failure never leaves
        a partial file under this name.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PackError
        One line naming the layer or operation that cannot be packed (unsupported type, custom
        quantizer, {0, 1} weights, NaN latent weights, a branch or residual).
    """
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    spec = _describe(as_chain(model), "", tensors)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "stelab_version": __version__, "architecture": json.dumps(spec),
                EMBEDDED_KEY: embedded_placeholder()}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    save_file(tensors, str(tmp), metadata=metadata)
    seal_embedded(tmp)
    os.replace(tmp, out)  # a crash never leaves half a file under the final name
    return out


# --------------------------------------------------------------------------------- load
class _Reader:
    """The file's tensors by name, each taken once; a missing name or a bad shape is a
    PackError naming the tensor."""

    def __init__(self, path: Path, handle: Any) -> None:
        self.path, self.handle = path, handle
        self.names = set(handle.keys())

    def take(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in self.names:
            raise PackError(f"{self.path}: tensor {name!r} is missing (the file is damaged or "
                            "was not written by export_packed)")
        try:
            value = self.handle.get_tensor(name)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types
            raise PackError(f"{self.path}: tensor {name!r} cannot be read ({_first_line(exc)})"
                            ) from None
        if shape is not None and tuple(value.shape) != shape:
            raise PackError(f"{self.path}: tensor {name!r} has shape {tuple(value.shape)}; the "
                            f"architecture needs {shape}")
        return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_float_tensors(module: nn.Module, prefix: str, reader: _Reader) -> None:
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(recurse=False),
                             *module.named_buffers(recurse=False)]:
            if tensor is None or not tensor.is_floating_point():
                continue
            value = reader.take(prefix + name, tuple(tensor.shape))
            tensor.copy_(torch.from_numpy(np.array(value)))


def _packed_rows(prefix: str, reader: _Reader, rows: int, k: int) -> np.ndarray:
    words = reader.take(prefix + "weight_bits", (words_for(rows * k),))
    return stream_to_rows(words, rows, k)


def _bias(spec: dict[str, Any], prefix: str, reader: _Reader, size: int) -> torch.Tensor | None:
    if not spec["bias"]:
        return None
    return torch.from_numpy(np.array(reader.take(prefix + "bias", (size,))))


def _input_mode(spec: dict[str, Any]) -> str:
    name = spec["input_quantizer"]
    return "real" if name is None else get_quantizer(name, "input_quantizer").activation


def _build(spec: dict[str, Any], path: str, reader: _Reader) -> nn.Module:
    kind = spec.get("type")
    prefix = f"{path}." if path else ""
    if kind == "Sequential":
        children = OrderedDict((name, _build(child, prefix + name, reader))
                               for name, child in spec["children"])
        return nn.Sequential(children)
    args = {k: v for k, v in spec.items()
            if k not in ("type", "input_quantizer", "weight_quantizer", "packed")}
    if kind in ("QuantLinear", "QuantConv2d") and spec["packed"]:
        return _build_packed(kind, args, spec, prefix, reader)
    if kind == "QuantLinear":
        module: nn.Module = QuantLinear(**args, input_quantizer=spec["input_quantizer"],
                                        weight_quantizer=None)
    elif kind == "QuantConv2d":
        module = QuantConv2d(**args, input_quantizer=spec["input_quantizer"],
                             weight_quantizer=None)
    elif kind in TORCH_TYPES:
        module = TORCH_TYPES[kind](**args)
    else:
        raise PackError(f"{reader.path}: layer '{path}' has unknown type {kind!r}; supported "
                        f"types: {', '.join(SUPPORTED_TYPES)}")
    _load_float_tensors(module, prefix, reader)
    return module


def _build_packed(kind: str, args: dict[str, Any], spec: dict[str, Any], prefix: str,
                  reader: _Reader) -> nn.Module:
    mode = _input_mode(spec)
    if kind == "QuantLinear":
        rows = _packed_rows(prefix, reader, args["out_features"], args["in_features"])
        bias = _bias(spec, prefix, reader, args["out_features"])
        layer: PackedLinear | PackedConv2d = PackedLinear(
            args["in_features"], args["out_features"], rows, bias, mode)
    else:
        # a float twin gives torch's own reading of the padding ("same", asymmetric)
        twin = nn.Conv2d(**args, device="meta")
        kh, kw = twin.kernel_size
        k = twin.in_channels // twin.groups * kh * kw
        words = reader.take(prefix + "weight_bits", (words_for(twin.out_channels * k),))
        signs = unpack_stream(words, twin.out_channels * k).reshape(twin.weight.shape)
        bias = _bias(spec, prefix, reader, twin.out_channels)
        layer = PackedConv2d(twin.in_channels, twin.out_channels, (kh, kw), tuple(twin.stride),
                             tuple(twin._reversed_padding_repeated_twice), tuple(twin.dilation),
                             twin.groups, twin.padding_mode, signs, bias, mode)
    layer.label = f"layer '{prefix[:-1] or '(model)'}'"
    return layer


def _open(path: Path) -> Any:
    from safetensors import safe_open

    if not path.is_file():
        raise PackError(f"{path}: no such file")
    try:
        check_embedded(path, path.read_bytes())
    except IntegrityError as exc:
        raise PackError(str(exc)) from None
    try:
        return safe_open(str(path), framework="numpy")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own types
        raise PackError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from None


def _check_metadata(path: Path, metadata: dict[str, str] | None) -> dict[str, Any]:
    metadata = metadata or {}
    if metadata.get("format") != FORMAT:
        raise PackError(f"{path}: not a stelab packed model (its metadata has no "
                        f"format = {FORMAT!r}); write one with stelab.pack.export_packed")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise PackError(f"{path}: format version {version!r} is not supported; supported: "
                        f"{FORMAT_VERSION!r} (a newer stelab may read it)")
    try:
        spec = json.loads(metadata["architecture"])
        if not isinstance(spec, dict):
            raise ValueError("not an object")
    except (KeyError, ValueError) as exc:
        raise PackError(f"{path}: the architecture metadata is missing or not valid JSON "
                        f"({_first_line(exc)})") from None
    return spec


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a packed file (format, versions, architecture JSON), checked.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`export_packed`.

    Returns
    -------
    dict of str to str
        The safetensors header metadata: ``format``, the format version, the architecture as
        JSON text and the versions that wrote it.

    Raises
    ------
    PackError
        No such file, not a readable safetensors file, not a stelab packed model, an
        unsupported format version, or architecture metadata that is missing or not JSON.
    """
    path = Path(path)
    handle = _open(path)
    metadata = handle.metadata() or {}
    _check_metadata(path, metadata)
    return dict(metadata)


def load_packed(path: str | os.PathLike[str]) -> PackedModel:
    """The inference-only model written by :func:`export_packed`.

    Its outputs equal the float model's ``eval()`` outputs bit for bit through binary x binary
    layers and within the bound of :mod:`stelab.pack.kernels` through real x binary ones.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`export_packed`.

    Returns
    -------
    PackedModel
        Call it with a float32-convertible tensor, numpy array or list of shape (batch, ...)
        or one sample; see :class:`~stelab.pack.PackedModel`.

    Raises
    ------
    PackError
        One line for a file that is missing, not safetensors, truncated, of another format or
        format version, or lacks a tensor.
    """
    path = Path(path)
    handle = _open(path)
    metadata = handle.metadata() or {}
    spec = _check_metadata(path, metadata)
    reader = _Reader(path, handle)
    try:
        net = _build(spec, "", reader)
    except PackError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise PackError(f"{path}: the architecture metadata cannot be rebuilt "
                        f"({type(exc).__name__}: {_first_line(exc)})") from None
    return PackedModel(net, metadata)
