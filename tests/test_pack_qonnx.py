"""export_onnx(..., qonnx=True): QONNX graphs (BipolarQuant on binary weights and sign
inputs) that the qonnx package reads, types and executes, equal to torch where binary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from stelab.nn import QuantConv2d, QuantLinear
from stelab.pack import export_onnx
from stelab.pack.onnx_export import QONNX_DOMAIN

pytest.importorskip("qonnx", reason="the QONNX check needs the qonnx package (deploy extra)")
from qonnx.core.datatype import DataType  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.infer_datatypes import InferDataTypes  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402


def _execute(path, x: torch.Tensor, out_shape: list[int]) -> np.ndarray:
    model = ModelWrapper(str(path))
    model.set_tensor_shape("input", list(x.shape))  # qonnx's executor wants a fixed batch
    model.set_tensor_shape("output", out_shape)
    model = model.transform(InferShapes())
    return execute_onnx(model, {"input": x.numpy()})["output"]


@pytest.mark.parametrize("bias", [False, True])
def test_binary_mlp_and_convnet_execute_exactly(tmp_path, bias):
    torch.manual_seed(0)
    model = nn.Sequential(
        QuantConv2d(1, 4, 3, padding=1, bias=False, input_quantizer="sign"),
        QuantConv2d(4, 6, 3, stride=2, padding=1, bias=bias, input_quantizer="ste_sign"),
        nn.Flatten(), QuantLinear(6 * 9, 10, bias=False, input_quantizer="sign")).eval()
    path = export_onnx(model, tmp_path / "q.onnx", (1, 6, 6), qonnx=True)
    x = torch.randn(5, 1, 6, 6)
    got = _execute(path, x, [5, 10])
    expected = model(x).detach().numpy()
    if bias:  # one bias inside an integer sum: a rounding, not bit-exact
        assert np.allclose(got, expected, rtol=0, atol=1e-4)
    else:
        assert np.array_equal(got, expected)


def test_graph_marks_binary_weights_and_inputs(tmp_path):
    model = nn.Sequential(QuantLinear(16, 8, input_quantizer="sign"), nn.ReLU(),
                          QuantLinear(8, 4, input_quantizer="step"))
    path = export_onnx(model, tmp_path / "q.onnx", (16,), qonnx=True)
    wrapper = ModelWrapper(str(path))
    assert (QONNX_DOMAIN, 1) in [(o.domain, o.version) for o in wrapper.model.opset_import]
    bipolar = [n for n in wrapper.graph.node if n.op_type == "BipolarQuant"]
    assert len(bipolar) == 3 and all(n.domain == QONNX_DOMAIN for n in bipolar)  # 2 W, 1 x
    assert any(n.op_type == "Greater" for n in wrapper.graph.node)  # step stays standard
    typed = wrapper.transform(InferShapes()).transform(InferDataTypes())
    assert all(typed.get_tensor_datatype(n.output[0]) == DataType["BIPOLAR"] for n in bipolar)
