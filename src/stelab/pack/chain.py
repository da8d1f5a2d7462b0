"""Any model a user writes, as the chain of supported layers it computes at inference.

:func:`as_chain` returns an ``nn.Sequential`` whose children are exactly the supported types
(:data:`CHAIN_TYPES`), computing what ``model.eval()`` computes:

* a ``Sequential`` tree of supported layers is returned as it is;
* any other module is traced with ``torch.fx`` (stelab's quantized layers and the supported
  torch layers stay whole; a user's own submodules are traced through). The traced graph must
  be a chain: every operation takes the previous one's output (a residual ``x + f(x)`` or two
  branches are refused). Functions become their module form: ``F.relu`` / ``torch.relu`` /
  ``x.relu()`` -> ``nn.ReLU``, ``torch.flatten(x, 1)`` and ``x.view(x.size(0), -1)`` ->
  ``nn.Flatten``, ``F.(log_)softmax(x, dim)`` -> ``nn.(Log)Softmax(dim)``, ``torch.sigmoid``,
  ``torch.tanh``, ``F.hardtanh``, ``F.leaky_relu``, ``x * c`` -> :class:`~stelab.nn.Scale`;
* inference-time no-ops (``nn.Dropout`` of any kind, ``F.dropout(..., training=False)``)
  become ``nn.Identity``.

Anything else is a :class:`~stelab.errors.PackError` of one line naming the layer or the
operation and what is supported.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from stelab.errors import PackError
from stelab.nn.layers import QuantConv2d, QuantLinear, Scale

__all__ = ["CHAIN_TYPES", "TORCH_TYPES", "as_chain", "exact_type", "is_plain_tree"]

#: torch layers rebuilt from their constructor arguments (plus stelab's Scale)
TORCH_TYPES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear, "Conv2d": nn.Conv2d, "BatchNorm1d": nn.BatchNorm1d,
    "BatchNorm2d": nn.BatchNorm2d, "Flatten": nn.Flatten, "ReLU": nn.ReLU,
    "Hardtanh": nn.Hardtanh, "Identity": nn.Identity, "Scale": Scale,
    "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "LeakyReLU": nn.LeakyReLU,
    "Softmax": nn.Softmax, "LogSoftmax": nn.LogSoftmax,
}
#: every layer type a chain may hold (exact types: a subclass may compute something else)
CHAIN_TYPES: dict[str, type[nn.Module]] = {
    "QuantLinear": QuantLinear, "QuantConv2d": QuantConv2d, **TORCH_TYPES,
}
#: layers that do nothing at inference
_NO_OPS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)

_ACTIVATIONS: dict[Any, Callable[..., nn.Module]] = {
    F.relu: lambda inplace=False: nn.ReLU(), torch.relu: nn.ReLU, "relu": nn.ReLU,
    torch.sigmoid: nn.Sigmoid, "sigmoid": nn.Sigmoid, F.sigmoid: nn.Sigmoid,
    torch.tanh: nn.Tanh, "tanh": nn.Tanh, F.tanh: nn.Tanh,
    F.hardtanh: lambda min_val=-1.0, max_val=1.0, inplace=False: nn.Hardtanh(min_val, max_val),
    F.leaky_relu: lambda negative_slope=0.01, inplace=False: nn.LeakyReLU(negative_slope),
}
_SOFTMAX: dict[Any, type[nn.Module]] = {
    F.softmax: nn.Softmax, torch.softmax: nn.Softmax, "softmax": nn.Softmax,
    F.log_softmax: nn.LogSoftmax, torch.log_softmax: nn.LogSoftmax,
    "log_softmax": nn.LogSoftmax,
}


def _supported_names() -> str:
    return ", ".join([*CHAIN_TYPES, "Sequential", "Dropout (a no-op at inference)"])


def exact_type(m: nn.Module) -> str | None:
    """The name in :data:`CHAIN_TYPES` of ``m``'s exact type, None if it has none."""
    for name, cls in CHAIN_TYPES.items():
        if type(m) is cls:
            return name
    return None


def is_plain_tree(model: nn.Module) -> bool:
    """Whether ``model`` is a supported layer or a ``Sequential`` tree of them."""
    if type(model) is nn.Sequential:
        return all(is_plain_tree(child) for child in model.children())
    return exact_type(model) is not None


class _Tracer(fx.Tracer):
    """Keeps stelab's layers and every torch layer whole; traces through the user's modules."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (*CHAIN_TYPES.values(), *_NO_OPS)):
            return True  # a subclass of a supported layer is refused by name, not traced
        return super().is_leaf_module(m, qualname)


def _trace(model: nn.Module) -> fx.GraphModule:
    was_training = model.training
    model.eval()  # F.dropout(x, training=self.training) and friends trace as inference
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # noqa: BLE001 - fx raises many types on untraceable code
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PackError(f"export: model {type(model).__name__} cannot be traced by torch.fx "
                        f"({text}); write forward without data-dependent control flow, or "
                        "as an nn.Sequential") from None
    finally:
        model.train(was_training)
    return fx.GraphModule(model, graph)


def _value(arg: Any, helpers: set[fx.Node]) -> Any:
    if isinstance(arg, fx.Node) and arg not in helpers:
        raise PackError(f"export: operation '{arg.name}' feeds a second input; supported: "
                        "a chain of layers")
    return arg


def _is_batch_size(node: Any, current: fx.Node, helpers: set[fx.Node]) -> bool:
    """``x.size(0)``, ``x.shape[0]``: the batch size of the chain's current tensor."""
    if not isinstance(node, fx.Node) or node not in helpers:
        return False
    if node.op == "call_method" and node.target == "size":
        return node.args[0] is current and (node.args[1:] == (0,) or node.kwargs == {"dim": 0})
    if node.op == "call_function" and node.target is operator.getitem:
        source = node.args[0]
        return (node.args[1] == 0 and isinstance(source, fx.Node) and source.op == "call_function"
                and source.target is getattr and source.args == (current, "shape"))
    return False


def _is_helper(node: fx.Node, current: fx.Node | None) -> bool:
    """Shape reads of the current tensor (used by ``view(x.size(0), -1)``)."""
    if node.op == "call_method" and node.target == "size":
        return node.args[0] is current
    if node.op == "call_function" and node.target is getattr:
        return node.args[0] is current and node.args[1] == "shape"
    if node.op == "call_function" and node.target is operator.getitem:
        source = node.args[0]
        return (isinstance(source, fx.Node) and source.op == "call_function"
                and source.target is getattr and source.args[0] is current)
    return False


def _flatten(node: fx.Node, current: fx.Node, helpers: set[fx.Node]) -> nn.Module | None:
    args, kwargs = node.args[1:], node.kwargs
    if node.target in (torch.flatten, "flatten"):
        start = kwargs.get("start_dim", args[0] if args else 0)
        end = kwargs.get("end_dim", args[1] if len(args) > 1 else -1)
        return nn.Flatten(start, end) if start == 1 and end == -1 else None
    if node.target in ("view", "reshape", torch.reshape):
        shape = args[0] if len(args) == 1 and isinstance(args[0], tuple | list) else args
        if len(shape) == 2 and _is_batch_size(shape[0], current, helpers) and shape[1] == -1:
            return nn.Flatten()
    return None


def _function_module(node: fx.Node, current: fx.Node, helpers: set[fx.Node]) -> nn.Module:
    """The module form of a call_function / call_method node applied to ``current``."""
    target, args, kwargs = node.target, node.args[1:], dict(node.kwargs)
    what = getattr(target, "__name__", str(target))
    if target in (F.dropout, "dropout"):
        if kwargs.get("training", args[1] if len(args) > 1 else True):
            raise PackError(f"export: operation '{node.name}' is F.dropout with training=True, "
                            "which drops values at inference too; use nn.Dropout or pass "
                            "training=self.training")
        return nn.Identity()
    if target in ("contiguous", "detach", "float"):
        return nn.Identity()
    flat = None if target not in (torch.flatten, "flatten", "view", "reshape",
                                  torch.reshape) else _flatten(node, current, helpers)
    if flat is not None:
        return flat
    if target in _ACTIVATIONS:
        return _ACTIVATIONS[target](*[_value(a, helpers) for a in args], **kwargs)
    if target in _SOFTMAX:
        dim = kwargs.get("dim", args[0] if args else None)
        if not isinstance(dim, int):
            raise PackError(f"export: operation '{node.name}' ({what}) needs an explicit "
                            "integer dim")
        return _SOFTMAX[target](dim)
    if target in (operator.mul, "mul", torch.mul) and len(args) == 1 \
            and isinstance(args[0], int | float) and not isinstance(args[0], bool):
        return Scale(float(args[0]))
    raise PackError(f"export: operation '{node.name}' ({what}) is not supported; supported "
                    "functions: relu, sigmoid, tanh, hardtanh, leaky_relu, (log_)softmax, "
                    "dropout (training=False), flatten(x, 1), view(x.size(0), -1), x * constant")


def _module_node(gm: fx.GraphModule, node: fx.Node) -> nn.Module:
    module = gm.get_submodule(str(node.target))
    if isinstance(module, _NO_OPS):
        return nn.Identity()
    if type(module) is nn.Sequential or exact_type(module) is None:
        raise PackError(f"export: layer '{node.target}' is a {type(module).__name__}, which "
                        f"cannot be exported; supported types: {_supported_names()}")
    return module


def _chain_from_graph(gm: fx.GraphModule) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    current: fx.Node | None = None
    helpers: set[fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise PackError("export: the model's forward takes more than one input; "
                                "supported: one input tensor")
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                raise PackError("export: the model does not return the last layer's output "
                                "alone; supported: a chain of layers returning one tensor")
            break
        if _is_helper(node, current):
            helpers.add(node)
            continue
        if node.op == "get_attr":
            raise PackError(f"export: forward reads the tensor '{node.target}' directly; "
                            "supported: layers (modules) and the functions of "
                            "stelab.pack.chain")
        if not node.args or node.args[0] is not current:
            raise PackError(f"export: operation '{node.name}' does not take the previous "
                            "layer's output (a residual or a branch); supported: a chain of "
                            "layers")
        for arg in [*node.args[1:], *node.kwargs.values()]:
            for item in arg if isinstance(arg, tuple | list) else [arg]:
                _value(item, helpers)
        if node.op == "call_module":
            layers[str(node.target).replace(".", "_")] = _module_node(gm, node)
        else:
            layers[node.name] = _function_module(node, current, helpers)
        current = node
    return nn.Sequential(layers)


def as_chain(model: nn.Module) -> nn.Sequential | nn.Module:
    """``model`` as a ``Sequential`` tree of :data:`CHAIN_TYPES` computing ``model.eval()``.

    Parameters
    ----------
    model : torch.nn.Module
        Any module: a supported layer, a ``Sequential`` of them, or a user's ``nn.Module``
        whose forward is a chain of supported layers and functions (see the module doc).

    Returns
    -------
    torch.nn.Module
        ``model`` itself when it already is a supported layer or ``Sequential`` tree of them;
        otherwise a new ``nn.Sequential`` sharing ``model``'s layers (and their tensors).

    Raises
    ------
    PackError
        One line naming the layer or operation that cannot be exported.
    """
    if not isinstance(model, nn.Module):
        raise PackError(f"export: model is a {type(model).__name__}; expected a torch.nn.Module")
    if is_plain_tree(model):
        return model
    gm = _trace(model)
    _reject_shared_outputs(gm)
    return _chain_from_graph(gm)


def _reject_shared_outputs(gm: fx.GraphModule) -> None:
    """A value read by two operations (other than shape reads) is a branch."""
    for node in gm.graph.nodes:
        if node.op == "output":
            continue
        users = [u for u in node.users if not _is_helper(u, node)]
        if len(users) > 1:
            names = ", ".join(u.name for u in users)
            raise PackError(f"export: the output of '{node.name}' is used by {len(users)} "
                            f"operations ({names}): a residual or a branch; supported: a chain "
                            "of layers")
