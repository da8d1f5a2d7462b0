"""stelab.pack: every bad model or bad file gets one clear line (a PackError / DataError)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from torch import nn

from stelab.errors import DataError, PackError
from stelab.nn import QuantConv2d, QuantLinear
from stelab.pack import SUPPORTED_TYPES, export_packed, load_packed
from stelab.pack.format import FORMAT


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


@pytest.fixture
def good_file(tmp_path):
    model = nn.Sequential(QuantLinear(65, 9, input_quantizer="sign"), nn.BatchNorm1d(9))
    return export_packed(model, tmp_path / "good.safetensors")


class MyLinear(nn.Linear):
    """A subclass may compute anything: it is not rebuilt as a Linear."""


@pytest.mark.parametrize("bad, kind", [(MyLinear(3, 3), "MyLinear"),
                                       (nn.LSTM(3, 3), "LSTM")])
def test_unsupported_layer_names_layer_and_types(tmp_path, bad, kind):
    model = nn.Sequential(QuantLinear(3, 3), nn.Sequential(nn.ReLU(), bad))
    with pytest.raises(PackError) as exc:
        export_packed(model, tmp_path / "x.safetensors")
    text = _one_line(exc)
    assert f"layer '1.1' is a {kind}" in text
    assert all(t in text for t in SUPPORTED_TYPES)
    assert not (tmp_path / "x.safetensors").exists()


def test_custom_quantizer_and_step_weights_are_refused(tmp_path):
    with pytest.raises(PackError) as exc:
        export_packed(QuantLinear(3, 3, input_quantizer=torch.tanh), tmp_path / "a")
    assert "custom input_quantizer" in _one_line(exc)
    with pytest.raises(PackError) as exc:
        export_packed(nn.Sequential(QuantConv2d(1, 2, 3, weight_quantizer="step")), tmp_path / "b")
    assert "layer '0'" in _one_line(exc) and "'step'" in str(exc.value)


def test_nan_weights_are_refused(tmp_path):
    layer = QuantLinear(3, 3)
    with torch.no_grad():
        layer.weight[1, 1] = float("nan")
    with pytest.raises(PackError) as exc:
        export_packed(layer, tmp_path / "a")
    assert "NaN" in _one_line(exc)


def test_nan_input_to_binary_layer_is_refused(good_file):
    packed = load_packed(good_file)
    x = torch.randn(2, 65)
    x[1, 3] = float("nan")
    with pytest.raises(DataError) as exc:
        packed(x)
    assert "layer '0'" in _one_line(exc) and "NaN" in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(PackError) as exc:
        load_packed(tmp_path / "nope.safetensors")
    assert "no such file" in _one_line(exc)


def test_not_safetensors(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, path)
    with pytest.raises(PackError) as exc:
        load_packed(path)
    assert "not a readable safetensors file" in _one_line(exc)


def test_truncated(good_file, tmp_path):
    data = good_file.read_bytes()
    for cut in (4, len(data) // 2, len(data) - 3):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(data[:cut])
        with pytest.raises(PackError) as exc:
            load_packed(path)
        _one_line(exc)


def test_other_safetensors_file(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": np.ones((2, 2), np.float32)}, str(path))
    with pytest.raises(PackError) as exc:
        load_packed(path)
    assert "not a stelab packed model" in _one_line(exc)


def _rewrite(good_file, tmp_path, change):
    from safetensors import safe_open

    with safe_open(str(good_file), framework="numpy") as handle:
        metadata = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    change(metadata, tensors)
    metadata.pop("stelab_sha256", None)  # a file another writer made: loaded unchecked
    path = tmp_path / "changed.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_unknown_format_version(good_file, tmp_path):
    path = _rewrite(good_file, tmp_path, lambda m, t: m.update(format_version="99"))
    with pytest.raises(PackError) as exc:
        load_packed(path)
    assert "format version '99' is not supported; supported: '1'" in _one_line(exc)


def test_missing_tensor(good_file, tmp_path):
    path = _rewrite(good_file, tmp_path, lambda m, t: t.pop("1.running_var"))
    with pytest.raises(PackError) as exc:
        load_packed(path)
    assert "'1.running_var' is missing" in _one_line(exc)


def test_wrong_shape_and_bad_architecture(good_file, tmp_path):
    path = _rewrite(good_file, tmp_path, lambda m, t: t.update({"0.bias": np.ones(4, np.float32)}))
    with pytest.raises(PackError) as exc:
        load_packed(path)
    assert "'0.bias' has shape (4,)" in _one_line(exc)

    def bad_arch(m, t):
        spec = json.loads(m["architecture"])
        spec["children"][0][1]["type"] = "LSTM"
        m["architecture"] = json.dumps(spec)

    with pytest.raises(PackError) as exc:
        load_packed(_rewrite(good_file, tmp_path, bad_arch))
    assert "unknown type 'LSTM'" in _one_line(exc)
    path = _rewrite(good_file, tmp_path, lambda m, t: m.update(architecture="{not json"))
    with pytest.raises(PackError) as exc:
        load_packed(path)
    assert "not valid JSON" in _one_line(exc)
    path = _rewrite(good_file, tmp_path, lambda m, t: m.update(architecture='{"type": 3}'))
    with pytest.raises(PackError) as exc:
        load_packed(path)
    _one_line(exc)


def test_packed_model_is_inference_only(good_file):
    packed = load_packed(good_file)
    assert packed.metadata["format"] == FORMAT
    with pytest.raises(PackError) as exc:
        packed.train()
    assert "inference-only" in _one_line(exc)
    packed.eval()  # allowed
