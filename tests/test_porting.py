"""Pairing a source model's layers with a target's (lstmconv.porting), framework-free."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_layer

import lstmconv
from lstmconv import Direction, Kind, Model, PortMismatchError
from lstmconv.plain import PlainKind, PlainLayer
from lstmconv.porting import adapted, pair


def _plain(
    rng: np.random.Generator, kind: PlainKind, name: str, *shape: int, **options: object
) -> PlainLayer:
    def draw(*dims: int) -> np.ndarray:
        return rng.standard_normal(dims).astype(np.float32)

    if kind is PlainKind.EMBEDDING:
        tensors = {"weight": draw(*shape)}
    elif kind in (PlainKind.DENSE, PlainKind.CONV1D):
        tensors = {"weight": draw(*shape), "bias": draw(shape[0])}
    elif kind is PlainKind.LAYER_NORM:
        tensors = {"weight": draw(*shape), "bias": draw(*shape)}
    elif kind is PlainKind.BATCH_NORM:
        tensors = {
            "weight": draw(*shape),
            "bias": draw(*shape),
            "mean": draw(*shape),
            "var": np.abs(draw(*shape)),
        }
    else:
        tensors = {}
    return PlainLayer(kind, name, tensors, options)


def _model(
    rng: np.random.Generator, names: tuple[str, ...], *, eps: float = 1e-5, width: int = 10, **dense
) -> Model:
    """emb → dropout → bidirectional LSTM → LayerNorm → Dense, under the given five names."""
    emb, drop, rnn, norm, head = names
    recurrent = random_layer(rng, Kind.LSTM, 8, 6, direction=Direction.BIDIRECTIONAL, name=rnn)
    around = (
        _plain(rng, PlainKind.EMBEDDING, emb, 50, 8),
        _plain(rng, PlainKind.DROPOUT, drop, rate=0.5),
        _plain(rng, PlainKind.LAYER_NORM, norm, 12, epsilon=eps),
        _plain(rng, PlainKind.DENSE, head, width, 12, **dense),
    )
    return Model((recurrent,), "test", around=around, order=names)


def test_pairs_in_order_leaving_no_ops_out() -> None:
    rng = np.random.default_rng(0)
    source = _model(rng, ("embedding", "dropout", "bidirectional", "layer_normalization", "dense"))
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"))
    assert pair(source, target) == (
        ("emb", "embedding"),
        ("rnn", "bidirectional"),
        ("norm", "layer_normalization"),
        ("fc", "dense"),
    )


def test_no_op_on_one_side_only_is_left_out() -> None:
    rng = np.random.default_rng(1)
    source = _model(rng, ("e", "d", "r", "n", "h"))
    target = Model(
        source.layers,
        "t",
        around=[layer for layer in source.around if layer.kind is not PlainKind.DROPOUT],
        order=("e", "r", "n", "h"),
    )
    assert [t for t, _ in pair(source, target)] == ["e", "r", "n", "h"]


def test_mapping_pairs_as_named_and_the_rest_in_order() -> None:
    rng = np.random.default_rng(2)
    source = _model(rng, ("e", "d", "r", "n", "h"))
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"))
    assert pair(source, target, {"fc": "h", "emb": "e"}) == (
        ("emb", "e"),
        ("rnn", "r"),
        ("norm", "n"),
        ("fc", "h"),
    )


def test_mapping_that_crosses_kinds_names_both_layers() -> None:
    rng = np.random.default_rng(3)
    source = _model(rng, ("e", "d", "r", "n", "h"))
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"))
    with pytest.raises(
        PortMismatchError,
        match=r'target layer "norm" \(layer_norm weight \(12,\), bias \(12,\), epsilon 1e-05\) and '
        r'source layer "h" \(dense weight \(10, 12\), bias \(10,\)\) do not match: '
        r"kind layer_norm against dense",
    ):
        pair(source, target, {"fc": "n", "norm": "h"})


def test_unknown_names_in_a_mapping_are_refused() -> None:
    rng = np.random.default_rng(4)
    source = _model(rng, ("e", "d", "r", "n", "h"))
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"))
    with pytest.raises(PortMismatchError, match=r"target layers \['head'\] and source layers \['nope'\]"):
        pair(source, target, {"head": "nope"})
    with pytest.raises(PortMismatchError, match=r"source layers \['h'\]"):
        pair(source, target, {"fc": "h", "norm": "h"})


def test_a_missing_layer_lists_both_sides() -> None:
    rng = np.random.default_rng(5)
    source = _model(rng, ("e", "d", "r", "n", "h"))
    full = _model(rng, ("emb", "drop", "rnn", "norm", "fc"))
    target = Model(full.layers, "t", around=full.around[:3], order=("emb", "drop", "rnn", "norm"))
    with pytest.raises(PortMismatchError) as caught:
        pair(source, target)
    text = str(caught.value)
    assert "the target has 3 layers holding weights, the source 4" in text
    assert 'target layers: "emb" embedding weight (50, 8); "rnn" lstm bidirectional 8 → 6; ' in text
    assert '"norm" layer_norm weight (12,), bias (12,), epsilon 1e-05 | source layers: "e"' in text
    assert '"h" dense weight (10, 12), bias (10,)' in text


def test_a_wrong_width_names_both_layers_and_shapes() -> None:
    rng = np.random.default_rng(6)
    source = _model(rng, ("e", "d", "r", "n", "h"))
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"), width=7)
    with pytest.raises(
        PortMismatchError,
        match=r'target layer "fc" \(dense weight \(7, 12\), bias \(7,\)\) and source layer "h" '
        r"\(dense weight \(10, 12\), bias \(10,\)\) do not match: weight \(7, 12\) against \(10, 12\)",
    ):
        pair(source, target)


def test_a_recurrent_size_difference_names_both_layers() -> None:
    rng = np.random.default_rng(7)
    source = Model((random_layer(rng, Kind.LSTM, 4, 5, name="a"),), "s")
    target = Model((random_layer(rng, Kind.LSTM, 4, 6, name="b", direction=Direction.BIDIRECTIONAL),), "t")
    with pytest.raises(
        PortMismatchError,
        match=r'target layer "b" \(lstm bidirectional 4 → 6\) and source layer "a" \(lstm forward 4 → 5\) '
        r"do not match: hidden size 6 against 5; direction bidirectional against forward",
    ):
        pair(source, target)
    gru = Model((random_layer(rng, Kind.GRU, 4, 5, name="g"),), "t")
    with pytest.raises(PortMismatchError, match="kind recurrent gru against recurrent lstm"):
        pair(source, gru)


def test_epsilon_difference_is_refused_naming_both_layers() -> None:
    rng = np.random.default_rng(8)
    source = _model(rng, ("e", "d", "r", "layer_normalization", "h"), eps=1e-3)
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"), eps=1e-5)
    with pytest.raises(
        PortMismatchError,
        match=r'target layer "norm" \(.*epsilon 1e-05\) and source layer "layer_normalization" '
        r"\(.*epsilon 0.001\) differ in epsilon: 1e-05 against 0.001",
    ):
        pair(source, target)


def test_dense_activation_one_side_lacks_is_warned_naming_both(caplog) -> None:
    rng = np.random.default_rng(9)
    source = _model(rng, ("e", "d", "r", "n", "dense"), activation="softmax")
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"))
    with pytest.warns(
        lstmconv.LstmconvWarning,
        match=r'target layer "fc" .* and source layer "dense" .*'
        r"differ in activation: linear against softmax",
    ):
        assert pair(source, target)[-1] == ("fc", "dense")


def test_dense_activations_that_differ_on_both_sides_are_refused() -> None:
    rng = np.random.default_rng(10)
    source = _model(rng, ("e", "d", "r", "n", "dense"), activation="softmax")
    target = _model(rng, ("emb", "drop", "rnn", "norm", "fc"), activation="relu")
    with pytest.raises(PortMismatchError, match=r'"fc" .* and source layer "dense" .* relu against softmax'):
        pair(source, target)


def test_conv_padding_same_matches_its_number_and_differing_stride_is_refused() -> None:
    rng = np.random.default_rng(11)
    rnn = random_layer(rng, Kind.GRU, 6, 4, name="g")

    def model(**options: object) -> Model:
        return Model(
            (rnn,), "m", around=(_plain(rng, PlainKind.CONV1D, "c", 6, 3, 5, **options),), order=("c", "g")
        )

    assert pair(model(padding="same", dilation=2), model(padding=4, dilation=2)) == (("c", "c"), ("g", "g"))
    assert pair(model(padding="valid"), model(padding=0)) == (("c", "c"), ("g", "g"))
    with pytest.raises(PortMismatchError, match="padding 1 against causal"):
        pair(model(padding="causal"), model(padding=1))
    with pytest.raises(PortMismatchError, match="stride 2 against 1"):
        pair(model(), model(stride=2))


def test_adapted_fills_a_missing_scale_and_refuses_a_bias_the_target_cannot_hold() -> None:
    rng = np.random.default_rng(12)
    target = _plain(rng, PlainKind.LAYER_NORM, "norm", 4, epsilon=1e-5)
    centred = PlainLayer(
        PlainKind.LAYER_NORM, "ln", {"bias": np.arange(4, dtype=np.float32)}, {"epsilon": 1e-5}
    )
    filled = adapted(centred, target)
    assert filled.name == "norm"
    np.testing.assert_array_equal(filled.tensors["weight"], np.ones(4, np.float32))
    np.testing.assert_array_equal(filled.tensors["bias"], np.arange(4, dtype=np.float32))
    bare = PlainLayer(PlainKind.DENSE, "fc", {"weight": np.ones((3, 4), np.float32)})
    with pytest.raises(PortMismatchError, match="the target holds no bias, the source's is not all 0"):
        adapted(_plain(rng, PlainKind.DENSE, "d", 3, 4), bare)
    zero_bias = PlainLayer(
        PlainKind.DENSE, "d", {"weight": np.ones((3, 4), np.float32), "bias": np.zeros(3, np.float32)}
    )
    assert set(adapted(zero_bias, bare).tensors) == {"weight"}
