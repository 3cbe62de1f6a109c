"""The NumPy reference against onnxruntime for what only ONNX expresses: every activation,
peepholes, clip, input_forget, both GRU variants. (Against torch, Keras and ORT on plain layers:
the ``->reference`` cases of the conversion matrix.)"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_layer

import lstmconv
from lstmconv import Activation as A
from lstmconv import Direction, Kind, Model

ATOL = 2e-5
LSTM_ACTIVATIONS = [
    (A("hard_sigmoid", 0.3, 0.6), A("tanh"), A("tanh")),
    (A("sigmoid"), A("affine", 0.5, 0.1), A("softsign")),
    (A("sigmoid"), A("leaky_relu", 0.1), A("elu", 0.7)),
    (A("sigmoid"), A("scaled_tanh", 1.2, 0.8), A("softplus")),
    (A("hard_sigmoid", 1 / 6, 0.5), A("relu"), A("thresholded_relu", 0.2)),
]


def _ort(model: Model, x: np.ndarray) -> np.ndarray:
    from lstmconv.formats.onnx import live as onnx_format

    return onnx_format.run(lstmconv.to_onnx(model), x)


def _check(model: Model, seed: int = 5) -> None:
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, (3, 7, model.input_size)).astype(np.float32)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), _ort(model, x), rtol=0, atol=ATOL)


@pytest.mark.parametrize("activations", LSTM_ACTIVATIONS, ids=lambda a: "-".join(x.name for x in a))
def test_lstm_activations(ort, activations) -> None:
    rng = np.random.default_rng(11)
    _check(Model((random_layer(rng, Kind.LSTM, direction=Direction.BIDIRECTIONAL, activations=activations),)))


@pytest.mark.parametrize("direction", list(Direction))
def test_lstm_peepholes_clip_input_forget(ort, direction: Direction) -> None:
    rng = np.random.default_rng(12)
    layer = random_layer(rng, Kind.LSTM, peephole=True, direction=direction)
    for variant in (layer, layer.replace(clip=0.4), layer.replace(input_forget=True, clip=0.9)):
        _check(Model((variant,)))


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize(
    "activations", [(), (A("hard_sigmoid", 0.25, 0.45), A("relu")), (A("sigmoid"), A("softsign"))]
)
def test_gru_variants_and_activations(ort, reset_after: bool, activations) -> None:
    rng = np.random.default_rng(13)
    layer = random_layer(rng, Kind.GRU, direction=Direction.BIDIRECTIONAL, activations=activations)
    _check(Model((layer.replace(reset_after=reset_after),)))


@pytest.mark.parametrize(
    "activation",
    [A("tanh"), A("relu"), A("leaky_relu", 0.2), A("affine", 0.7, -0.1), A("thresholded_relu", 0.3)],
)
def test_rnn_activations(ort, activation: A) -> None:
    rng = np.random.default_rng(14)
    _check(Model((random_layer(rng, Kind.RNN, activations=(activation,)),)))


def test_gru_variants_really_differ() -> None:
    rng = np.random.default_rng(15)
    after = random_layer(rng, Kind.GRU)
    x = rng.uniform(-1, 1, (2, 6, after.input_size))
    before = after.replace(reset_after=False)
    assert np.abs(lstmconv.reference.run(after, x) - lstmconv.reference.run(before, x)).max() > 1e-2


def test_reference_wants_batch_time_features() -> None:
    layer = random_layer(np.random.default_rng(0))
    with pytest.raises(lstmconv.WeightLayoutError, match=r"expected input shaped \(batch, time, features\)"):
        lstmconv.reference.run(layer, np.zeros((3, 4)))
    with pytest.raises(lstmconv.WeightLayoutError, match="expected 4 input features, found 6"):
        lstmconv.reference.run(Model((layer,)), np.zeros((1, 2, 6)))


def test_an_opset_7_node_with_constant_and_identity_weights(ort) -> None:
    """Weights from a Constant node and through Identity, opset 7, run by onnxruntime as is."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(21)
    w = rng.uniform(-0.5, 0.5, (1, 12, 4)).astype(np.float32)
    r = rng.uniform(-0.5, 0.5, (1, 12, 3)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (1, 24)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w)),
        helper.make_node("Identity", ["r_init"], ["r"]),
        helper.make_node("LSTM", ["x", "w", "r", "b"], ["y"], hidden_size=3),
    ]
    graph = helper.make_graph(
        nodes,
        "opset7",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(r, "r_init"), numpy_helper.from_array(b, "b")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)], ir_version=3)
    model = lstmconv.read(proto)
    x = rng.uniform(-1, 1, (5, 2, 4)).astype(np.float32)  # (time, batch, features): layout 0
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": x})[0][:, 0]  # (time, batch, hidden)
    expected = lstmconv.reference.run(model, x.transpose(1, 0, 2)).transpose(1, 0, 2)
    np.testing.assert_allclose(y, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("opset", [14, 17, 18, 22])
def test_to_onnx_at_other_opsets(ort, opset: int) -> None:
    from lstmconv.formats.onnx import live as onnx_format

    rng = np.random.default_rng(22)
    layer = random_layer(rng, Kind.GRU, direction=Direction.BIDIRECTIONAL).replace(merge="ave")
    proto = lstmconv.to_onnx(Model((layer,)), opset=opset)
    assert proto.opset_import[0].version == opset
    x = rng.uniform(-1, 1, (2, 5, layer.input_size)).astype(np.float32)
    np.testing.assert_allclose(onnx_format.run(proto, x), lstmconv.reference.run(layer, x), rtol=0, atol=ATOL)
