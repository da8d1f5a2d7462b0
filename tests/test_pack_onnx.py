"""export_onnx: standard ONNX graphs that onnxruntime runs, equal to the torch eval model (bit
for bit where inputs and weights are binary, within the stated bound elsewhere), dynamic batch,
identical predictions; bad models get one PackError line."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from stelab.errors import PackError
from stelab.nn import QuantConv2d, QuantLinear, Scale
from stelab.pack import export_onnx
from tests.test_pack_trace import ConvNet

onnx = pytest.importorskip("onnx", reason="export_onnx needs the deploy extra: onnx")
ort = pytest.importorskip("onnxruntime", reason="the round trip needs the deploy extra: "
                          "onnxruntime")

U = 2.0**-24


def _run(path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def _randomize_bn(model: nn.Module, seed: int = 3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen))


@pytest.mark.parametrize("in_features", [1, 63, 65, 300])
@pytest.mark.parametrize("quantizer", ["ste_sign", "step"])
@pytest.mark.parametrize("bias", [False, True])
def test_binary_linear_is_bit_exact_at_any_batch(tmp_path, in_features, quantizer, bias):
    torch.manual_seed(in_features)
    model = QuantLinear(in_features, 37, bias=bias, input_quantizer=quantizer).eval()
    path = export_onnx(model, tmp_path / "m.onnx", (in_features,))
    for batch in (1, 7, 64):
        x = torch.randn(batch, in_features)
        x[0, 0] = 0.0  # sign(0) = +1, step(0) = 0 in both
        got, expected = _run(path, x), model(x).detach()
        if not bias:
            assert torch.equal(got, expected)
        else:  # the integer product is exact; either runtime may add the bias inside its sum
            q = model.input_quantizer(x).detach()
            exact = F.linear(q, torch.where(model.weight >= 0, 1.0, -1.0)).detach()
            # a sum of K + 1 terms in any order: within (K + 1) u (K + |b|) of the exact value
            bound = (in_features + 1) * U * (in_features + model.bias.detach().abs())
            assert ((got - exact - model.bias.detach()).abs() <= bound).all()
            assert ((got - expected).abs() <= 2 * bound).all()


@pytest.mark.parametrize("kwargs", [
    {"padding": 1}, {"padding": 1, "stride": 2}, {"padding": "same", "dilation": 2},
    {"padding": 1, "groups": 2}, {"padding": 1, "padding_mode": "reflect"},
    {"padding": 2, "padding_mode": "replicate"},
])
def test_binary_conv_is_bit_exact(tmp_path, kwargs):
    torch.manual_seed(0)
    model = QuantConv2d(4, 6, 3, input_quantizer="sign", **kwargs).eval()
    path = export_onnx(model, tmp_path / "c.onnx", (4, 9, 9))
    x = torch.randn(3, 4, 9, 9)
    assert torch.equal(_run(path, x), model(x).detach())


def test_real_inputs_within_bound(tmp_path):
    torch.manual_seed(1)
    model = QuantLinear(200, 50, bias=False).eval()  # real x binary
    path = export_onnx(model, tmp_path / "r.onnx", 200)
    x = torch.randn(16, 200)
    bound = 2 * 199 * U * x.abs().sum(dim=1, keepdim=True)
    assert ((_run(path, x) - model(x).detach()).abs() <= bound).all()


class Net(ConvNet):
    """test_pack_trace's ConvNet with more inference-time ops in its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.2)
        self.scale = Scale(0.5)

    def forward(self, x):
        x = torch.tanh(self.bn1(self.conv1(x)))
        x = self.drop(F.leaky_relu(self.bn2(self.conv2(x)), 0.1))
        x = torch.flatten(x, 1)
        return F.log_softmax(self.scale(self.fc(x)), dim=1)


@pytest.mark.parametrize("make, shape", [
    (Net, (1, 8, 8)),
    (lambda: nn.Sequential(QuantLinear(64, 128, bias=False), nn.BatchNorm1d(128), nn.Hardtanh(),
                           QuantLinear(128, 128, input_quantizer="sign"), nn.BatchNorm1d(128),
                           nn.ReLU(), nn.Sigmoid(), QuantLinear(128, 10), nn.Softmax(dim=1)),
     (64,)),
])
def test_models_match_and_predict_the_same(tmp_path, make, shape):
    torch.manual_seed(4)
    model = make()
    _randomize_bn(model)
    path = export_onnx(model, tmp_path / "n.onnx", shape)
    assert model.training  # the mode is left as it was
    model.eval()
    x = torch.randn(200, *shape)
    got, expected = _run(path, x), model(x).detach()
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(got.argmax(1), expected.argmax(1))


def test_graph_is_standard_onnx_with_dynamic_batch(tmp_path):
    model = nn.Sequential(QuantLinear(8, 4, input_quantizer="sign"), nn.ReLU())
    proto = onnx.load(str(export_onnx(model, tmp_path / "g.onnx", (8,))))
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert all(node.domain == "" for node in proto.graph.node)
    dim = proto.graph.input[0].type.tensor_type.shape.dim
    assert dim[0].dim_param == "batch" and dim[1].dim_value == 8
    assert {node.op_type for node in proto.graph.node} >= {"MatMul", "Where", "Relu"}


def test_nan_input_propagates_like_torch(tmp_path):
    model = QuantLinear(3, 2, input_quantizer="sign").eval()
    path = export_onnx(model, tmp_path / "nan.onnx", (3,))
    x = torch.tensor([[float("nan"), 1.0, -1.0], [0.5, -2.0, 0.0]])
    got, expected = _run(path, x), model(x).detach()
    assert torch.isnan(got[0]).all() and torch.isnan(expected[0]).all()
    assert torch.equal(got[1], expected[1])


@pytest.mark.parametrize("model, shape, words", [
    (nn.Sequential(QuantLinear(3, 3), nn.GRU(3, 3)), (3,), "layer '1' is a GRU"),
    (QuantLinear(3, 3, input_quantizer=torch.tanh), (3,), "custom input_quantizer"),
    (QuantConv2d(1, 2, 3, padding=1, padding_mode="circular"), (1, 5, 5), "circular"),
    (QuantLinear(3, 3), (4,), "does not fit layer"),
    (QuantLinear(3, 3), (0,), "positive integers"),
    (QuantLinear(3, 3), "abc", "positive integers"),
    (nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)), (3,), "track_running_stats"),
])
def test_bad_models_get_one_line(tmp_path, model, shape, words):
    with pytest.raises(PackError) as exc:
        export_onnx(model, tmp_path / "bad.onnx", shape)
    assert "\n" not in str(exc.value) and words in str(exc.value)
    assert not list(tmp_path.iterdir())
