"""Live objects: containers and nested models, load_into, and torch.onnx.export graphs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from natives import VARIANTS, keras_native, keras_run, onnx_native, onnx_run, torch_run

import lstmconv
from lstmconv import Kind, UnsupportedFeatureError, WeightLayoutError

ATOL = 2e-5


def _x(features: int, seed: int = 0, batch: int = 2, steps: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (batch, steps, features)).astype(np.float32)


def _randomize(torch, module) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.uniform_(-0.5, 0.5)


def _seq2seq(torch):
    class Seq2Seq(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = torch.nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(12, 3)
            self.decoder = torch.nn.GRU(12, 5, batch_first=True)

    torch.manual_seed(0)
    module = Seq2Seq()
    _randomize(torch, module)
    return module


def test_torch_container_yields_layers_in_module_order_with_paths(torch) -> None:
    model = lstmconv.read(_seq2seq(torch))
    assert [(layer.name, layer.kind) for layer in model] == [
        ("encoder.l0", Kind.LSTM),
        ("encoder.l1", Kind.LSTM),
        ("decoder", Kind.GRU),
    ]
    assert model["encoder.l1"].input_size == 12


def test_keras_nested_models_yield_layers_in_order(keras) -> None:
    inner = keras.Sequential(
        [keras.Input((None, 4)), keras.layers.LSTM(5, return_sequences=True, name="inner_lstm")]
    )
    inputs = keras.Input((None, 4))
    x = inner(inputs)
    x = keras.layers.Dense(6)(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True), name="bi")(x)
    model = lstmconv.read(keras.Model(inputs, x))
    assert [layer.name for layer in model] == ["inner_lstm", "bi"]
    assert model["bi"].direction is lstmconv.Direction.BIDIRECTIONAL


def test_keras_merge_mode_none_is_refused(keras) -> None:
    layer = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), merge_mode=None)
    layer.build((None, None, 2))
    with pytest.raises(UnsupportedFeatureError, match="merge_mode=None"):
        lstmconv.read(layer)


def _variant(name: str):
    return next(v for v in VARIANTS if v.id == name)


def test_load_into_torch_fills_recurrent_layers_and_leaves_the_rest(torch, keras) -> None:
    variant = _variant("lstm-stacked")
    source = keras_native(variant, np.random.default_rng(1))
    target = torch.nn.Sequential()
    target.add_module("rnn", torch.nn.LSTM(5, 7, num_layers=2, batch_first=True))
    target.add_module("head", torch.nn.Linear(7, 2))
    head_before = target.head.weight.detach().clone()
    lstmconv.load_into(target, source)
    x = _x(5)
    np.testing.assert_allclose(torch_run(target.rnn, x), keras_run(source, x), rtol=0, atol=ATOL)
    assert torch.equal(target.head.weight, head_before)


def test_load_into_checks_everything_before_changing_anything(torch, keras) -> None:
    source = keras_native(_variant("lstm-stacked"), np.random.default_rng(1))
    target = torch.nn.ModuleDict(
        {"a": torch.nn.LSTM(5, 7, batch_first=True), "b": torch.nn.LSTM(7, 8, batch_first=True)}
    )
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(WeightLayoutError, match="hidden size: target has 8, layer has 7"):
        lstmconv.load_into(target, source)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    with pytest.raises(WeightLayoutError, match="the target has 1 recurrent layer"):
        lstmconv.load_into(torch.nn.LSTM(5, 7), source)


def test_load_into_by_name_mapping(torch) -> None:
    module = _seq2seq(torch)
    model = lstmconv.read(module)
    target = torch.nn.ModuleDict({"dec": torch.nn.GRU(12, 5, batch_first=True)})
    lstmconv.load_into(target, model, mapping={"dec": "decoder"})
    x = _x(12)
    np.testing.assert_allclose(torch_run(target["dec"], x), torch_run(module.decoder, x), rtol=0, atol=ATOL)
    with pytest.raises(WeightLayoutError, match="mapping names unknown"):
        lstmconv.load_into(target, model, mapping={"dec": "nope"})


def test_load_into_keras_and_onnx(torch, keras, ort) -> None:
    variant = _variant("gru-reset-after-bidir")
    source = keras_native(variant, np.random.default_rng(2))
    x = _x(5)
    expected = keras_run(source, x)
    keras_target = keras_native(variant, np.random.default_rng(99))
    lstmconv.load_into(keras_target, source)
    np.testing.assert_allclose(keras_run(keras_target, x), expected, rtol=0, atol=ATOL)
    onnx_target = onnx_native(variant, np.random.default_rng(98))
    lstmconv.load_into(onnx_target, source)
    np.testing.assert_allclose(onnx_run(onnx_target, x), expected, rtol=0, atol=ATOL)


def test_load_into_refuses_what_the_target_cannot_express(torch, keras) -> None:
    source = keras_native(_variant("gru-reset-before"), np.random.default_rng(3))
    with pytest.raises(UnsupportedFeatureError, match="PyTorch cannot express the reset-before GRU"):
        lstmconv.load_into(torch.nn.GRU(5, 7), source)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_torch_onnx_export_reads_back(torch, ort, dynamo: bool, kind: str) -> None:
    if dynamo:
        from conftest import require

        require("onnxscript")
    import io

    import onnx

    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(5, 6, num_layers=2, bidirectional=True, batch_first=True)
    _randomize(torch, module)
    x = _x(5, batch=3, steps=7)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.onnx.export(
            module, (torch.from_numpy(x),), dynamo=dynamo, f=None if dynamo else buffer
        )
    proto = exported.model_proto if dynamo else onnx.load_from_string(buffer.getvalue())
    model = lstmconv.read(proto)
    assert [layer.kind.value for layer in model] == [kind.lower()] * 2
    expected = torch_run(module, x)
    np.testing.assert_allclose(torch_run(lstmconv.to_torch(model), x), expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), expected, rtol=0, atol=ATOL)


def test_keras_layers_carry_the_default_initializers(keras) -> None:
    """Layers are built with zeros (their weights are set at once); the config says the defaults."""
    from helpers import random_layer

    from lstmconv import Direction, Kind, Model

    rng = np.random.default_rng(3)
    model = Model(
        (
            random_layer(rng, Kind.LSTM, 3, 4, direction=Direction.BIDIRECTIONAL, name="a"),
            random_layer(rng, Kind.GRU, 8, 5, name="b"),
            random_layer(rng, Kind.RNN, 5, 2, name="c"),
        )
    )
    built = lstmconv.to_keras(model)
    rnns = [
        rnn
        for layer in built.layers[1:]
        for rnn in (
            [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]
        )
    ]
    assert len(rnns) == 4
    for rnn in rnns:
        config, fresh = rnn.get_config(), type(rnn)(units=1).get_config()
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            assert config[key] == fresh[key], (rnn.name, key)
    bidirectional = built.layers[1]
    assert (
        bidirectional.forward_layer.cell.kernel_initializer
        is not bidirectional.backward_layer.cell.kernel_initializer
    )
