"""The IR is validated when built and cannot be changed afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_cell, random_layer

from lstmconv import Activation, Direction, Kind, Layer, Model, UnsupportedFeatureError, WeightLayoutError
from lstmconv.formats.keras import names as keras_names


def test_layer_reports_its_sizes() -> None:
    rng = np.random.default_rng(0)
    layer = random_layer(rng, Kind.LSTM, 3, 8, direction=Direction.BIDIRECTIONAL, proj=2)
    assert (layer.input_size, layer.hidden_size, layer.proj_size, layer.state_size) == (3, 8, 2, 2)
    assert layer.output_size == 4
    assert layer.parameter_count == 2 * (4 * 8 * 3 + 4 * 8 * 2 + 2 * 4 * 8 + 2 * 8)


def test_arrays_are_read_only() -> None:
    layer = random_layer(np.random.default_rng(0))
    with pytest.raises(ValueError, match="read-only"):
        layer.cells[0].w_ih["i"][0, 0] = 1.0
    with pytest.raises(TypeError):
        layer.cells[0].w_ih["i"] = np.zeros((5, 4))  # type: ignore[index]


def test_wrong_shape_names_layer_direction_and_tensor() -> None:
    cell = random_cell(np.random.default_rng(0), Kind.LSTM, 4, 5)
    bad = dict(cell.w_hh)
    bad["g"] = np.zeros((5, 6), np.float32)
    with pytest.raises(
        WeightLayoutError, match=r'layer "enc" › forward › w_hh/g: expected shape \(5, 5\), found \(5, 6\)'
    ):
        Layer(Kind.LSTM, (type(cell)(cell.w_ih, bad, cell.b_ih, cell.b_hh),), name="enc")


def test_integer_weights_are_refused() -> None:
    with pytest.raises(WeightLayoutError, match="expected floating-point weights, found dtype int64"):
        random_cell(np.random.default_rng(0), Kind.RNN, 2, 3, dtype="int64")


def test_mixed_dtypes_are_refused() -> None:
    cell = random_cell(np.random.default_rng(0), Kind.RNN, 2, 3)
    with pytest.raises(WeightLayoutError, match="expected dtype float32"):
        Layer(Kind.RNN, (type(cell)(cell.w_ih, {"h": cell.w_hh["h"].astype("float64")}),))


def test_missing_gate_is_refused() -> None:
    cell = random_cell(np.random.default_rng(0), Kind.GRU, 2, 3)
    w_ih = {g: v for g, v in cell.w_ih.items() if g != "z"}
    with pytest.raises(WeightLayoutError, match="expected gates r·z·n"):
        Layer(Kind.GRU, (type(cell)(w_ih, cell.w_hh),))


def test_bidirectional_needs_two_cells() -> None:
    cell = random_cell(np.random.default_rng(0), Kind.LSTM, 2, 3)
    with pytest.raises(WeightLayoutError, match="needs 2 cell"):
        Layer(Kind.LSTM, (cell,), direction="bidirectional")


def test_peepholes_and_clip_belong_to_lstm() -> None:
    cell = random_cell(np.random.default_rng(0), Kind.GRU, 2, 3)
    with pytest.raises(WeightLayoutError, match="clip and input_forget are LSTM features"):
        Layer(Kind.GRU, (cell,), clip=1.0)


def test_activation_defaults_follow_onnx() -> None:
    assert (Activation("hard_sigmoid").alpha, Activation("hard_sigmoid").beta) == (0.2, 0.5)
    assert Activation("leaky_relu").alpha == 0.01
    with pytest.raises(WeightLayoutError, match="takes no alpha"):
        Activation("tanh", 1.0)
    with pytest.raises(WeightLayoutError, match="unknown activation"):
        Activation("swish")


def test_keras_hard_sigmoid_depends_on_the_keras_version() -> None:
    assert keras_names.activation_from_keras("hard_sigmoid", keras_major=2) == Activation(
        "hard_sigmoid", 0.2, 0.5
    )
    assert keras_names.activation_from_keras("hard_sigmoid", keras_major=3) == Activation(
        "hard_sigmoid", 1 / 6, 0.5
    )
    with pytest.raises(UnsupportedFeatureError, match="Keras 3 has no activation"):
        keras_names.activation_to_keras(Activation("hard_sigmoid", 0.2, 0.5))


def test_model_needs_layers_with_unique_names() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(WeightLayoutError, match="no recurrent layer found"):
        Model(())
    with pytest.raises(WeightLayoutError, match="unique"):
        Model((random_layer(rng, name="a"), random_layer(rng, name="a")))


def test_chain_check_names_both_layers() -> None:
    rng = np.random.default_rng(0)
    model = Model((random_layer(rng, inputs=4, hidden=5, name="a"), random_layer(rng, inputs=7, name="b")))
    with pytest.raises(WeightLayoutError, match='layer "b" takes 7 features but "a" gives 5'):
        model.check_chain()


def test_bias_sum_is_exact_up_to_one_rounding() -> None:
    cell = random_cell(np.random.default_rng(0), Kind.LSTM, 2, 3)
    sums = cell.bias_sum()
    assert sums is not None
    for gate in "ifgo":
        assert np.array_equal(sums[gate], cell.b_ih[gate] + cell.b_hh[gate])  # type: ignore[index]


def test_tensorflow_clips_are_validated_and_bound_the_state() -> None:
    import lstmconv
    from lstmconv import reference
    from lstmconv.errors import WeightLayoutError

    rng = np.random.default_rng(5)
    layer = random_layer(rng, Kind.LSTM, 3, 4, proj=2)
    with pytest.raises(WeightLayoutError, match="cell_clip must be a positive number"):
        layer.replace(cell_clip=-1.0)
    with pytest.raises(WeightLayoutError, match="proj_clip needs a projection"):
        random_layer(rng, Kind.LSTM, 3, 4).replace(proj_clip=1.0)
    x = rng.uniform(-3, 3, (2, 9, 3)) * 4
    free = reference.run(layer, x)
    clipped = reference.run(layer.replace(proj_clip=0.05), x)
    assert np.abs(clipped).max() <= 0.05 + 1e-12 < np.abs(free).max()
    assert not np.allclose(reference.run(layer.replace(cell_clip=0.1), x), free)
    with pytest.raises(lstmconv.UnsupportedFeatureError, match=r"cell_clip 0\.1"):
        lstmconv.to_onnx(lstmconv.Model((layer.replace(cell_clip=0.1),)))
