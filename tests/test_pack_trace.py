"""export_packed of any module a user writes (traced with torch.fx into a chain of supported
layers), inference-time ops, and PackedModel on numpy arrays and single samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from stelab.errors import DataError, PackError
from stelab.nn import QuantConv2d, QuantLinear
from stelab.pack import export_packed, load_packed


class Net(nn.Module):
    """The idiomatic way: layers as attributes, a forward with functions and Dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = QuantLinear(64, 48, bias=False)
        self.bn1 = nn.BatchNorm1d(48)
        self.drop = nn.Dropout(0.3)
        self.fc2 = QuantLinear(48, 10, input_quantizer="ste_sign")

    def forward(self, x):
        x = self.drop(self.bn1(self.fc1(x)))
        x = F.dropout(x, 0.2, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = QuantConv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = QuantConv2d(8, 16, 3, stride=2, padding=1, bias=False,
                                 input_quantizer="ste_sign")
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = QuantLinear(16 * 4 * 4, 10, input_quantizer="ste_sign")

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        x = x.view(x.size(0), -1)
        return torch.softmax(self.fc(x), dim=-1)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = QuantLinear(8, 8)

    def forward(self, x):
        return x + self.fc(x)


def _randomize_bn(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


@pytest.mark.parametrize("make, shape", [(Net, (5, 64)), (ConvNet, (5, 1, 8, 8))])
def test_custom_module_exports_and_matches_eval(tmp_path, make, shape):
    torch.manual_seed(0)
    model = make()
    _randomize_bn(model)
    model.train()  # export does not need eval() first, and leaves the mode as it was
    packed = load_packed(export_packed(model, tmp_path / "m.safetensors"))
    assert model.training
    x = torch.randn(*shape)
    expected = model.eval()(x).detach()
    got = packed(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.argmax(1), expected.argmax(1))


def test_dropout_and_activations_in_sequential(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(QuantLinear(16, 12), nn.Dropout(0.5), nn.Tanh(),
                          QuantLinear(12, 12, input_quantizer="sign"), nn.LeakyReLU(0.1),
                          nn.Sigmoid(), QuantLinear(12, 4), nn.LogSoftmax(dim=1)).eval()
    packed = load_packed(export_packed(model, tmp_path / "s.safetensors"))
    x = torch.randn(6, 16)
    assert torch.allclose(packed(x), model(x).detach(), atol=1e-5)


@pytest.mark.parametrize("model, words", [
    (Residual(), "residual"),
    (nn.Sequential(QuantLinear(3, 3), nn.GRU(3, 3)), "layer '1' is a GRU"),
])
def test_branches_and_unsupported_layers_get_one_line(tmp_path, model, words):
    with pytest.raises(PackError) as exc:
        export_packed(model, tmp_path / "x.safetensors")
    assert "\n" not in str(exc.value) and words in str(exc.value)


def test_dropout_at_inference_is_refused(tmp_path):
    class AlwaysDrop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = QuantLinear(4, 4)

        def forward(self, x):
            return F.dropout(self.fc(x), 0.5)  # training=True by default: drops in eval too

    with pytest.raises(PackError) as exc:
        export_packed(AlwaysDrop(), tmp_path / "x.safetensors")
    assert "training=True" in str(exc.value) and "\n" not in str(exc.value)


def test_untraceable_forward_gets_one_line(tmp_path):
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = QuantLinear(4, 4)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else x

    with pytest.raises(PackError) as exc:
        export_packed(DataDependent(), tmp_path / "x.safetensors")
    assert "cannot be traced" in str(exc.value) and "\n" not in str(exc.value)


# --------------------------------------------------------------------------------- inputs
@pytest.fixture
def mlp(tmp_path):
    torch.manual_seed(2)
    model = nn.Sequential(QuantLinear(10, 6), nn.BatchNorm1d(6),
                          QuantLinear(6, 3, input_quantizer="sign")).eval()
    return model, load_packed(export_packed(model, tmp_path / "m.safetensors"))


def test_numpy_and_list_inputs(mlp):
    model, packed = mlp
    x = np.random.default_rng(0).standard_normal((4, 10))  # float64, as numpy makes it
    expected = model(torch.from_numpy(x).float()).detach()
    assert torch.equal(packed(x), expected)
    assert torch.equal(packed(x.astype(np.float32)), expected)
    assert torch.equal(packed(x.tolist()), expected)


def test_single_sample(mlp, tmp_path):
    model, packed = mlp
    x = torch.randn(10)
    y = packed(x)
    assert y.shape == (3,)
    assert torch.equal(y, model(x[None]).detach()[0])
    assert torch.equal(packed(x.numpy()), y)
    conv = nn.Sequential(QuantConv2d(2, 3, 3), nn.Flatten()).eval()
    packed_conv = load_packed(export_packed(conv, tmp_path / "c.safetensors"))
    image = torch.randn(2, 5, 5)
    assert torch.allclose(packed_conv(image), conv(image[None]).detach()[0], atol=1e-5)  # real x binary: within the bound


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), {"x": 1}, torch.randn(4, 7)])
def test_bad_inputs_get_one_line(mlp, bad):
    _, packed = mlp
    with pytest.raises(DataError) as exc:
        packed(bad)
    assert "\n" not in str(exc.value)
