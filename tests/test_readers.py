"""Readers never read wrong numbers silently (issue 12): what the IR cannot hold is refused or
warned about, naming the layer; what it can hold is read exactly, checked against the original
run in its own runtime (onnxruntime on the original graph, Keras on the original model, torch on
the original module); what a reader leaves out is listed (``Model.skipped``).

tf2onnx is not installed here, so the graphs tf2onnx emits for Keras models (bidirectional
merges taken apart by Slice and joined by Add then Mul/Div, go_backwards as a ReverseSequence
before a forward node, a layer left as a Loop) are built with ``onnx.helper`` node for node as
tf2onnx's rewriters emit them (``tf2onnx/rewriter/rnn_utils.py`` ``slice_birnn_for_original_rnn_consumers``,
``tf2onnx/onnx_opset/tensor.py`` ``ReverseV2``), and each is run by onnxruntime as it is.
"""

from __future__ import annotations

import io
import json
import logging
import warnings

import numpy as np
import pytest

import lstmconv
from lstmconv import UnsupportedFeatureError
from lstmconv.ir import Direction

ATOL = 2e-5
B, T, F, H = 2, 6, 3, 4


def _x(seed: int = 0, batch: int = B, steps: int = T, features: int = F) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (batch, steps, features)).astype(np.float32)


# -- ONNX graphs as the exporters write them --------------------------------------------------------
class _Graph:
    """Nodes and initializers of a graph taking ``x`` (batch, time, features)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def const(self, value, name: str | None = None) -> str:
        from onnx import numpy_helper

        self.count += 1
        name = name or f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op: str, inputs, outputs: int = 1, name: str | None = None, **attrs) -> list[str]:
        from onnx import helper

        self.count += 1
        names = [f"{op.lower()}{self.count}_{i}" for i in range(outputs)]
        self.nodes.append(
            helper.make_node(op, list(inputs), names, name=name or f"{op}_{self.count}", **attrs)
        )
        return names

    def lstm(self, x: str, directions: int = 1, name: str = "lstm", seq_lens: str = "", **attrs) -> str:
        w = self.const(self.rng.uniform(-0.6, 0.6, (directions, 4 * H, F)).astype(np.float32), f"{name}.W")
        r = self.const(self.rng.uniform(-0.6, 0.6, (directions, 4 * H, H)).astype(np.float32), f"{name}.R")
        b = self.const(self.rng.uniform(-0.6, 0.6, (directions, 8 * H)).astype(np.float32), f"{name}.B")
        direction = {1: "forward", 2: "bidirectional"}[directions]
        attrs.setdefault("direction", direction)
        return self.op("LSTM", [x, w, r, b, seq_lens], 3, name=name, hidden_size=H, **attrs)[0]

    def model(self, output: str, time: int | str = "time", width: int = H, opset: int = 17):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", time, F])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
            self.inits,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort(proto, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _read_file(proto, tmp_path, name: str = "m.onnx") -> lstmconv.Model:
    """Through the file reader (no onnx package): the wire decoder must see what onnx sees."""
    import onnx

    path = tmp_path / name
    onnx.save(proto, str(path))
    from_file = lstmconv.read(str(path))
    _same(from_file, lstmconv.read(proto))
    return from_file


def _same(a: lstmconv.Model, b: lstmconv.Model) -> None:
    from lstmconv import outline

    assert [outline.metadata(layer) for layer in a] == [outline.metadata(layer) for layer in b]
    left, right = outline.keyed(a), outline.keyed(b)
    assert left.keys() == right.keys()
    for key in left:
        np.testing.assert_array_equal(left[key], right[key])
    assert a.skipped == b.skipped


def _tf2onnx_bidirectional(g: _Graph, scale: tuple[str, float] | None, join: str = "Add") -> str:
    """tf2onnx's Bidirectional(LSTM): X moved time major, one bidirectional node, its Y sliced
    into the two directions, each squeezed and moved batch major, then Keras's merge."""
    xt = g.op("Transpose", ["x"], perm=[1, 0, 2])[0]
    y = g.lstm(xt, 2, name="bidirectional")
    halves = []
    for start in (0, 1):
        part = g.op("Slice", [y, g.const([start]), g.const([start + 1]), g.const([1])])[0]
        squeezed = g.op("Squeeze", [part, g.const([1])])[0]
        halves.append(g.op("Transpose", [squeezed], perm=[1, 0, 2])[0])
    out = g.op(join, halves)[0]
    if scale is not None:
        op, value = scale
        out = g.op(op, [out, g.const(np.float32(value))])[0]
    return out


@pytest.mark.parametrize("scale", [("Mul", 0.5), ("Div", 2.0)], ids=["mul-half", "div-two"])
def test_onnx_bidirectional_ave_is_read_as_ave(ort, tmp_path, scale) -> None:
    g = _Graph(1)
    proto = g.model(_tf2onnx_bidirectional(g, scale))
    model = _read_file(proto, tmp_path)
    assert model[0].merge == "ave"
    x = _x()
    np.testing.assert_allclose(lstmconv.reference.run(model, x), _ort(proto, x), rtol=0, atol=ATOL)


def test_onnx_bidirectional_sum_and_concat_read_exactly(ort, tmp_path) -> None:
    for join, merge in (("Add", "sum"), ("Mul", "mul")):
        g = _Graph(2)
        proto = g.model(_tf2onnx_bidirectional(g, None, join))
        model = _read_file(proto, tmp_path, f"{merge}.onnx")
        assert model[0].merge == merge
        x = _x()
        np.testing.assert_allclose(lstmconv.reference.run(model, x), _ort(proto, x), rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    "scale, join, found",
    [
        (("Mul", 0.3), "Add", "Add then Mul"),
        (("Div", 3.0), "Add", "Add then Div"),
        (("Mul", 0.5), "Mul", "Mul then Mul"),
        (None, "Sub", "Sub node"),
        (None, "Max", "Max node"),
    ],
)
def test_onnx_merge_not_read_exactly_is_refused(scale, join, found) -> None:
    g = _Graph(3)
    proto = g.model(_tf2onnx_bidirectional(g, scale, join))
    with pytest.raises(UnsupportedFeatureError, match=rf'LSTM node "bidirectional".*{found}'):
        lstmconv.read(proto)


def test_onnx_concat_along_time_is_refused_not_read_as_concat() -> None:
    g = _Graph(4)
    xt = g.op("Transpose", ["x"], perm=[1, 0, 2])[0]
    y = g.lstm(xt, 2, name="bi")
    halves = [
        g.op("Squeeze", [g.op("Slice", [y, g.const([s]), g.const([s + 1]), g.const([1])])[0], g.const([1])])[
            0
        ]
        for s in (0, 1)
    ]
    out = g.op("Concat", halves, axis=0)[0]
    with pytest.raises(
        UnsupportedFeatureError, match=r'"bi".*Concat node .* along an axis other than the features'
    ):
        lstmconv.read(g.model(out))


def test_onnx_slices_along_time_are_not_taken_for_the_directions() -> None:
    g = _Graph(5)
    y = g.lstm(g.op("Transpose", ["x"], perm=[1, 0, 2])[0], 2, name="bi")
    halves = [g.op("Slice", [y, g.const([s]), g.const([s + 1]), g.const([0])])[0] for s in (0, 1)]
    out = g.op("Add", halves)[0]
    with pytest.raises(UnsupportedFeatureError, match=r'"bi".*merged by Slice'):
        lstmconv.read(g.model(out))


def _go_backwards(g: _Graph, flip: str) -> str:
    """Keras LSTM(go_backwards=True, return_sequences=True) through tf2onnx: Keras moves the
    input time major and reverses it (tf.reverse → ReverseV2 → ReverseSequence whose lengths
    are read from the input's own shape), then a forward LSTM node; its output stays in
    processing order."""
    xt = g.op("Transpose", ["x"], perm=[1, 0, 2])[0]
    if flip == "ReverseSequence":
        shape = g.op("Shape", [xt])[0]
        length = g.op("Gather", [shape, g.const(np.array([0], np.int64))])[0]
        batch = g.op("Gather", [g.op("Shape", [xt])[0], g.const(np.array([1], np.int64))])[0]
        lengths = g.op("Expand", [length, batch])[0]
        reversed_x = g.op("ReverseSequence", [xt, lengths], batch_axis=1, time_axis=0)[0]
    else:  # torch.flip, and lstmconv's own writer: Slice of step -1 over the whole axis
        reversed_x = g.op(
            "Slice",
            [xt, g.const([-1]), g.const([np.iinfo(np.int64).min]), g.const([0]), g.const([-1])],
        )[0]
    y = g.lstm(reversed_x, 1, name="backwards")
    squeezed = g.op("Squeeze", [y, g.const([1])])[0]
    return g.op("Transpose", [squeezed], perm=[1, 0, 2])[0]


@pytest.mark.parametrize("flip", ["ReverseSequence", "Slice"])
def test_onnx_go_backwards_reversal_before_the_node_is_a_reverse_layer(ort, tmp_path, flip) -> None:
    g = _Graph(6)
    proto = g.model(_go_backwards(g, flip))
    model = _read_file(proto, tmp_path)
    layer = model[0]
    assert (layer.direction, layer.reversed_output) == (Direction.REVERSE, True)
    x = _x(1)
    expected = _ort(proto, x)
    np.testing.assert_allclose(lstmconv.reference.run(layer, x), expected, rtol=0, atol=ATOL)
    # read as forward (as before), the numbers are far off: the test can fail
    assert (
        np.abs(
            lstmconv.reference.run(layer.replace(direction="forward", reversed_output=False), x) - expected
        ).max()
        > 0.05
    )


@pytest.mark.parametrize("where", ["right-after", "batch-major"])
def test_onnx_reversal_before_and_after_is_an_aligned_reverse_layer(ort, where) -> None:
    g = _Graph(7)
    xt = g.op("Transpose", ["x"], perm=[1, 0, 2])[0]

    def flip(axis: int) -> list[str]:
        return [g.const([-1]), g.const([np.iinfo(np.int64).min]), g.const([axis]), g.const([-1])]

    y = g.lstm(g.op("Slice", [xt, *flip(0)])[0], 1, name="aligned")
    if where == "right-after":
        back = g.op("Slice", [y, *flip(0)])[0]
        out = g.op("Transpose", [g.op("Squeeze", [back, g.const([1])])[0]], perm=[1, 0, 2])[0]
    else:  # moved batch major first, then flipped along its time axis (1)
        moved = g.op("Transpose", [g.op("Squeeze", [y, g.const([1])])[0]], perm=[1, 0, 2])[0]
        out = g.op("Slice", [moved, *flip(1)])[0]
    proto = g.model(out)
    layer = lstmconv.read(proto)[0]
    assert (layer.direction, layer.reversed_output) == (Direction.REVERSE, False)
    x = _x(2)
    np.testing.assert_allclose(lstmconv.reference.run(layer, x), _ort(proto, x), rtol=0, atol=ATOL)


def test_onnx_reversal_of_padded_lengths_is_refused() -> None:
    g = _Graph(8)
    xt = g.op("Transpose", ["x"], perm=[1, 0, 2])[0]
    reversed_x = g.op(
        "ReverseSequence", [xt, g.const(np.array([6, 4], np.int64))], batch_axis=1, time_axis=0
    )[0]
    out = g.lstm(reversed_x, 1, name="masked_backwards")
    with pytest.raises(UnsupportedFeatureError, match=r'"masked_backwards".*ReverseSequence node .* lengths'):
        lstmconv.read(g.model(out))


def _packed_module(torch, bidirectional: bool = False):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class Packed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(F, H, batch_first=True, bidirectional=bidirectional)
            self.head = torch.nn.Linear(H * (2 if bidirectional else 1), 2)

        def forward(self, x, lengths):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            return self.head(pad_packed_sequence(y, batch_first=True)[0])

    torch.manual_seed(0)
    return Packed().eval()


@pytest.mark.parametrize("bidirectional", [False, True])
def test_torch_onnx_export_of_pack_padded_sequence_is_refused(torch, bidirectional) -> None:
    """torch.onnx.export (TorchScript exporter) writes the lengths as sequence_lens. The dynamo
    exporter (torch 2.13) cannot export pack_padded_sequence at all (torch.export fails)."""
    import onnx

    module = _packed_module(torch, bidirectional)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(_x()), torch.tensor([6, 4])), buffer, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    with pytest.raises(
        UnsupportedFeatureError, match=r'LSTM node "/lstm/LSTM" › sequence_lens.*padded steps'
    ):
        lstmconv.read(proto)


def test_onnx_constant_sequence_lens_of_the_full_static_length_is_read(ort, tmp_path) -> None:
    g = _Graph(9)
    xt = g.op("Transpose", ["x"], perm=[1, 0, 2])[0]
    y = g.lstm(xt, 1, name="fixed", seq_lens=g.const(np.array([T, T], np.int32)))
    out = g.op("Transpose", [g.op("Squeeze", [y, g.const([1])])[0]], perm=[1, 0, 2])[0]
    proto = g.model(out, time=T)
    model = _read_file(proto, tmp_path)
    x = _x(3)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), _ort(proto, x), rtol=0, atol=ATOL)
    g2 = _Graph(9)
    y = g2.lstm(
        g2.op("Transpose", ["x"], perm=[1, 0, 2])[0],
        1,
        name="fixed",
        seq_lens=g2.const(np.array([T, T - 2], np.int32)),
    )
    with pytest.raises(UnsupportedFeatureError, match=r'"fixed" › sequence_lens'):
        lstmconv.read(g2.model(y, time=T))
    g3 = _Graph(9)  # the full length, but the input's length is not static: cannot be proved
    y = g3.lstm(
        g3.op("Transpose", ["x"], perm=[1, 0, 2])[0],
        1,
        name="fixed",
        seq_lens=g3.const(np.array([T, T], np.int32)),
    )
    with pytest.raises(UnsupportedFeatureError, match=r'"fixed" › sequence_lens'):
        lstmconv.read(g3.model(y))


def _cell_body():
    """A Loop body computing a simple RNN step (MatMul, Add, Tanh), as tf2onnx leaves a layer
    whose loop its rewriters do not match."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((H, H), np.float32), "body_w")
    nodes = [
        helper.make_node("MatMul", ["h_in", "body_w"], ["mm"]),
        helper.make_node("Tanh", ["mm"], ["h_out"]),
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
    ]
    return helper.make_graph(
        nodes,
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, None),
        ],
        [w],
    )


@pytest.mark.parametrize("beside", [True, False], ids=["beside-an-lstm-node", "alone"])
def test_onnx_layer_exported_as_a_loop_is_refused_naming_it(tmp_path, beside) -> None:
    import onnx

    g = _Graph(10)
    h0 = g.const(np.zeros((B, H), np.float32))
    loop = g.op(
        "Loop",
        [g.const(np.array(T, np.int64)), g.const(np.array(True)), h0],
        name="while_rnn",
        body=_cell_body(),
    )[0]
    out = loop
    if beside:
        out = g.lstm(g.op("Transpose", ["x"], perm=[1, 0, 2])[0], 1, name="native")
    proto = g.model(out)
    path = tmp_path / "loop.onnx"
    onnx.save(proto, str(path))
    for source in (proto, str(path)):
        with pytest.raises(
            UnsupportedFeatureError,
            match='layer "while_rnn" was exported as a Loop, not an LSTM/GRU/RNN node',
        ):
            lstmconv.read(source)


def test_onnx_recurrent_node_inside_an_if_is_read_named_by_its_path(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    inner = _Graph(11)
    y = inner.lstm("x", 1, name="inner_lstm")
    branch = helper.make_graph(
        inner.nodes, "then", [], [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], inner.inits
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["same"])],
        "else",
        [],
        [helper.make_tensor_value_info("same", TensorProto.FLOAT, None)],
    )
    g = _Graph(12)
    out = g.op("If", [g.const(np.array(True))], name="choose", then_branch=branch, else_branch=other)[0]
    proto = g.model(out)
    path = tmp_path / "if.onnx"
    onnx.save(proto, str(path))
    for source in (proto, str(path)):  # tests/test_found_onnx.py checks the numbers
        assert [layer.name for layer in lstmconv.read(source)] == ["choose/then_branch/inner_lstm"]


def test_onnx_unrolled_cell_without_recurrent_nodes_says_so(tmp_path) -> None:
    """Keras's own ONNX export with the torch backend (model.export(format="onnx")) unrolls the
    LSTM into MatMul/Sigmoid/Tanh: no native node to read, and the refusal says why."""
    g = _Graph(13)
    mm = g.op("MatMul", ["x", g.const(np.ones((F, H), np.float32))])[0]
    out = g.op("Tanh", [g.op("Sigmoid", [mm])[0]])[0]
    with pytest.raises(UnsupportedFeatureError, match="unrolled"):
        lstmconv.read(g.model(out))


def test_onnx_unrolled_gemm_cell_is_named_as_found(tmp_path) -> None:
    """silero-vad 6.2.3's silero_vad_op18_ifless.onnx steps its LSTM cell as Gemm + Sigmoid/Tanh:
    the refusal names the Gemm it found, not a MatMul the file does not have."""
    g = _Graph(13)
    mm = g.op("Gemm", ["x", g.const(np.ones((F, H), np.float32))])[0]
    out = g.op("Tanh", [g.op("Sigmoid", [mm])[0]])[0]
    with pytest.raises(UnsupportedFeatureError, match="unrolled") as caught:
        lstmconv.read(g.model(out))
    assert "Gemm" in str(caught.value)


def test_onnx_skipped_lists_the_initializers_no_recurrent_node_uses(torch) -> None:
    import onnx

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(F, H, batch_first=True)
            self.head = torch.nn.Linear(H, 2)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net().eval(), (torch.from_numpy(_x()),), buffer, dynamo=False)
    model = lstmconv.read(onnx.load_from_string(buffer.getvalue()))
    assert len(model) == 1
    # the Linear after the LSTM is read as a plain Dense (#16): nothing is left over
    assert model.skipped == ()
    (head,) = model.around
    assert head.kind.value == "dense" and head.parameter_count == 2 * H + 2
    # a graph with the recurrent node's layer alone: the Linear's initializers are listed
    recurrent_only = lstmconv.formats.onnx.files.read_graph(
        _without_input_chain(onnx.load_from_string(buffer.getvalue())), None, "net"
    )
    assert sum(s.parameters for s in recurrent_only.skipped) == 2 * H + 2
    assert {s.kind for s in recurrent_only.skipped} <= {"MatMul", "Add", "Gemm"}
    shapes = sorted(shape for s in recurrent_only.skipped for _, shape in s.tensors)
    assert shapes == sorted([(2,), (H, 2)]) or shapes == sorted([(2,), (2, H)])


def _without_input_chain(proto):
    """The graph with a second data input, so that it is no one chain: no plain layer is read."""
    import onnx

    proto.graph.input.append(onnx.helper.make_tensor_value_info("unused", onnx.TensorProto.FLOAT, [1]))
    return proto.graph


# -- Keras ------------------------------------------------------------------------------------------
def _keras_out(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


def _randomize_keras(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.uniform(-0.5, 0.5, tuple(weight.shape)).astype("float32"))


def _masked_models(keras):
    functional_in = keras.Input((T, F))
    masked = keras.layers.Masking(mask_value=0.0)(functional_in)
    functional = keras.Model(
        functional_in, keras.layers.LSTM(H, return_sequences=True, name="encoder")(masked)
    )
    sequential = keras.Sequential(
        [
            keras.Input((T,)),
            keras.layers.Embedding(10, F, mask_zero=True),
            keras.layers.GRU(H, name="encoder"),
        ]
    )
    return {"masking-functional": functional, "embedding-sequential": sequential}


@pytest.mark.parametrize("which", ["masking-functional", "embedding-sequential"])
def test_keras_masking_warns_naming_the_layer_and_strict_refuses(keras, tmp_path, caplog, which) -> None:
    model = _masked_models(keras)[which]
    path = str(tmp_path / "masked.keras")
    model.save(path)
    for source in (model, path):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lstmconv"):
            read = lstmconv.read(source)
        assert [layer.name for layer in read] == ["encoder"]
        assert any('layer "encoder" is called with' in m and "padded steps" in m for m in caplog.messages)
        with pytest.raises(UnsupportedFeatureError, match=r'layer "encoder" is called with .*padded steps'):
            lstmconv.read(source, strict=True)
    info = lstmconv.inspect(path)
    assert any('layer "encoder"' in w and "padded steps" in w for w in info["warnings"])
    from lstmconv.cli import main

    assert main(["inspect", path, "--strict"]) == 2


def test_keras_masking_changes_the_numbers_it_warns_about(keras) -> None:
    """The warning is not idle: with padded (zero) steps, Keras's masked output differs from the
    unmasked computation lstmconv carries."""
    model = _masked_models(keras)["masking-functional"]
    _randomize_keras(model)
    x = _x(4)
    x[1, 3:] = 0.0
    carried = lstmconv.reference.run(lstmconv.read(model), x)
    assert np.abs(carried - _keras_out(model, x)).max() > 0.01


def test_keras_unmasked_models_give_no_mask_warning(keras, caplog) -> None:
    inputs = keras.Input((T, F))
    model = keras.Model(inputs, keras.layers.LSTM(H, return_sequences=True)(keras.layers.Dense(F)(inputs)))
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        lstmconv.read(model, strict=True)
    assert not [m for m in caplog.messages if "mask" in m]


@pytest.mark.parametrize("merge", ["ave", "concat"])
def test_keras_bidirectional_with_the_same_backward_layer_reads_exactly(keras, tmp_path, merge) -> None:
    inputs = keras.Input((T, F))
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(H, return_sequences=True),
        backward_layer=keras.layers.LSTM(H, return_sequences=True, go_backwards=True),
        merge_mode=merge,
        name="bi",
    )
    model = keras.Model(inputs, layer(inputs))
    _randomize_keras(model, 1)
    path = str(tmp_path / "bi.keras")
    model.save(path)
    x = _x(5)
    for source in (model, path):
        read = lstmconv.read(source)
        assert read[0].merge == merge
        np.testing.assert_allclose(lstmconv.reference.run(read, x), _keras_out(model, x), rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    "options, option",
    [
        ({"activation": "relu"}, "activation"),
        ({"recurrent_activation": "hard_sigmoid"}, "recurrent_activation"),
        ({"use_bias": False}, "use_bias"),
    ],
)
def test_keras_bidirectional_whose_backward_layer_differs_is_refused(
    keras, tmp_path, options, option
) -> None:
    inputs = keras.Input((T, F))
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(H, return_sequences=True),
        backward_layer=keras.layers.LSTM(H, return_sequences=True, go_backwards=True, **options),
        name="bi",
    )
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "bi.keras")
    model.save(path)
    for source in (model, path):
        with pytest.raises(
            UnsupportedFeatureError, match=rf'layer "bi".*backward layer differs .* in {option}'
        ):
            lstmconv.read(source)


def test_keras_bidirectional_gru_reset_after_differs_is_refused(keras, tmp_path) -> None:
    inputs = keras.Input((T, F))
    layer = keras.layers.Bidirectional(
        keras.layers.GRU(H, return_sequences=True),
        backward_layer=keras.layers.GRU(H, return_sequences=True, go_backwards=True, reset_after=False),
        name="bigru",
    )
    model = keras.Model(inputs, layer(inputs))
    with pytest.raises(UnsupportedFeatureError, match=r'layer "bigru".*in reset_after'):
        lstmconv.read(model)


def test_keras_convlstm_before_an_lstm_is_refused_naming_the_class(keras, tmp_path) -> None:
    inputs = keras.Input((T, 5, 2))
    conv = keras.layers.ConvLSTM1D(3, 2, return_sequences=True, name="conv")(inputs)
    flat = keras.layers.Reshape((T, 4 * 3))(conv)
    model = keras.Model(inputs, keras.layers.LSTM(H, name="after")(flat))
    path = str(tmp_path / "conv.keras")
    model.save(path)
    for source in (model, path):
        with pytest.raises(UnsupportedFeatureError, match=r'layer "conv".*class ConvLSTM1D'):
            lstmconv.read(source)


def test_keras_lstm_subclass_is_refused_naming_the_class(keras, tmp_path) -> None:
    @keras.saving.register_keras_serializable(package="test_readers")
    class ClippedLSTM(keras.layers.LSTM):
        def call(self, sequences, initial_state=None, mask=None, training=False):
            output = super().call(sequences, initial_state=initial_state, mask=mask, training=training)
            return keras.ops.clip(output, -0.1, 0.1)

    inputs = keras.Input((T, F))
    model = keras.Model(inputs, ClippedLSTM(H, name="clipped")(inputs))
    path = str(tmp_path / "sub.keras")
    model.save(path)
    with pytest.raises(UnsupportedFeatureError, match=r'layer "clipped".*class .*ClippedLSTM'):
        lstmconv.read(model)  # a live object shows its call() is its own
    # a file holds only its config and weights, which are an LSTM's: read as one, said loudly
    with pytest.raises(UnsupportedFeatureError, match=r'layer "clipped".*class .*ClippedLSTM'):
        lstmconv.read(path, strict=True)


def test_keras2_lstm_subclass_in_a_legacy_h5_is_refused(tmp_path) -> None:
    """A Keras 2 file (tf_keras) whose config names a subclass of LSTM: read past before."""
    tf_keras = pytest.importorskip("tf_keras")

    class MyLSTM(tf_keras.layers.LSTM):
        pass

    model = tf_keras.Sequential([tf_keras.Input((T, F)), MyLSTM(H, name="mine"), tf_keras.layers.Dense(2)])
    path = str(tmp_path / "legacy.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    with pytest.raises(UnsupportedFeatureError, match=r'layer "mine".*class MyLSTM'):
        lstmconv.read(path, strict=True)  # without strict: read as LSTM, warned (tests/test_found.py)


def test_keras_timedistributed_recurrent_is_refused(keras) -> None:
    inputs = keras.Input((2, T, F))
    model = keras.Model(inputs, keras.layers.TimeDistributed(keras.layers.LSTM(H), name="td")(inputs))
    with pytest.raises(UnsupportedFeatureError, match=r'layer "td".*inside TimeDistributed'):
        lstmconv.read(model)


def test_keras_plain_layers_are_read_and_the_rest_listed_and_inspect_counts_them(keras, tmp_path) -> None:
    inputs = keras.Input((T,))
    x = keras.layers.Embedding(10, F, name="embed")(inputs)
    x = keras.layers.LSTM(H, return_sequences=True, name="lstm")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.PReLU(name="prelu")(x)  # weights of a kind lstmconv does not carry
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    path = str(tmp_path / "mixed.keras")
    model.save(path)
    plain = {"embed": ("embedding", 10 * F), "norm": ("layer_norm", 2 * H), "head": ("dense", H * 2 + 2)}
    for source in (model, path):
        read = lstmconv.read(source)
        assert {p.name: (p.kind.value, p.parameter_count) for p in read.around} == plain
        assert read.order == ("embed", "lstm", "norm", "head")
        assert [(s.name, s.kind, s.parameters) for s in read.skipped] == [("prelu", "PReLU", T * H)]
    info = lstmconv.inspect(path)
    lstm = 4 * H * (F + H + 1)
    held = sum(p for _, p in plain.values())
    assert info["parameters"] == {"carried": lstm + held, "total": lstm + held + T * H}
    assert [entry["name"] for entry in info["plain"]] == ["embed", "norm", "head"]
    assert info["order"] == ["embed", "lstm", "norm", "head"]
    assert {entry["name"] for entry in info["skipped"]} == {"prelu"}


def test_keras_configless_weights_warn_in_inspect_too(keras, tmp_path, caplog) -> None:
    inputs = keras.Input((T, F))
    model = keras.Model(inputs, keras.layers.LSTM(H, activation="relu", name="lstm")(inputs))
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    info = lstmconv.inspect(path)
    assert any('layer "lstm" read as lstm with default activations' in w for w in info["warnings"])
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        lstmconv.read(path)
    assert any("default activations" in m for m in caplog.messages)


# -- torch ------------------------------------------------------------------------------------------
def _rnn_state(torch, nonlinearity: str):
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.RNN(F, H, nonlinearity=nonlinearity, batch_first=True)
            self.head = torch.nn.Linear(H, 2)

    torch.manual_seed(0)
    return Net()


@pytest.mark.parametrize("ending", [".pt", ".safetensors"])
def test_torch_rnn_state_dict_assumed_tanh_warns_every_time(torch, tmp_path, caplog, ending) -> None:
    net = _rnn_state(torch, "relu")
    path = str(tmp_path / f"rnn{ending}")
    if ending == ".pt":
        torch.save(net.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(net.state_dict(), path)
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lstmconv"):
            model = lstmconv.read(path)
        assert model[0].activations[0].name == "tanh"
        assert any(
            'module "rnn"' in m and "assumed tanh" in m and "--nonlinearity relu" in m
            for m in caplog.messages
        )
    info = lstmconv.inspect(path)
    assert any('module "rnn"' in w and "assumed tanh" in w for w in info["warnings"])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        told = lstmconv.read(path, nonlinearity="relu")
    assert not caplog.messages
    x = _x(6)
    with torch.no_grad():
        expected = net.rnn(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(lstmconv.reference.run(told, x), expected, rtol=0, atol=ATOL)
    assert not told.skipped  # its nn.Linear "head" (weight and bias) is read as a plain layer
    assert [(p.name, p.kind.value, p.parameter_count) for p in told.around] == [("head", "dense", H * 2 + 2)]


def test_torch_live_rnn_knows_its_nonlinearity_and_lists_the_rest(torch, caplog) -> None:
    net = _rnn_state(torch, "relu")
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        model = lstmconv.read(net)
    assert model[0].activations[0].name == "relu"
    assert not caplog.messages
    assert not model.skipped
    assert [(p.name, p.kind.value, p.parameter_count) for p in model.around] == [("head", "dense", H * 2 + 2)]


def test_cli_inspect_prints_what_is_not_carried(torch, tmp_path, capsys) -> None:
    from lstmconv.cli import main

    net = _rnn_state(torch, "tanh")
    path = str(tmp_path / "rnn.pt")
    state = net.state_dict()
    state["extra.weight"] = torch.zeros(3, 4)  # a lone 2-D weight: an Embedding or a bias-less Linear
    torch.save(state, path)
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    rnn, head = H * (F + H + 2), 2 * H + 2  # the head, an nn.Linear, is carried
    assert (
        "not carried:" in out
        and "extra (Embedding or Linear(bias=False) (unknown kind))  12 parameters" in out
    )
    assert f"carried {rnn + head:,} of {rnn + head + 12:,} parameters" in out
    assert main(["inspect", path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == {"carried": rnn + head, "total": rnn + head + 12}
    assert any("assumed tanh" in w for w in info["warnings"])


def test_keras_own_onnx_export_with_the_torch_backend_is_refused_as_unrolled(tmp_path) -> None:
    """Keras's own ``model.export(path, format="onnx")``: with the TensorFlow backend it needs
    tf2onnx (not installed here); with the torch backend it traces Keras's LSTM loop into plain
    MatMul/Sigmoid/Tanh ops, which lstmconv refuses saying so (it never reports "verified" on a
    graph it could not read). Run in a child: the backend is chosen at import."""
    import os
    import subprocess
    import sys

    from conftest import require

    require("torch")
    require("onnxscript")
    path = tmp_path / "keras_torch.onnx"
    script = (
        "import numpy as np, keras\n"
        "inputs = keras.Input((5, 3))\n"
        "layer = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), merge_mode='ave')\n"
        "model = keras.Model(inputs, layer(inputs))\n"
        "model(np.zeros((1, 5, 3), 'float32'))\n"
        f"model.export({str(path)!r}, format='onnx')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with pytest.raises(UnsupportedFeatureError, match="unrolled"):
        lstmconv.read(str(path))


def test_keras2_masking_in_a_legacy_h5_warns(tmp_path, caplog) -> None:
    """Keras 2 (tf_keras) configs do not record masks in the call: the Masking layer upstream
    says it."""
    tf_keras = pytest.importorskip("tf_keras")
    inputs = tf_keras.Input((T, F))
    model = tf_keras.Model(inputs, tf_keras.layers.LSTM(H, name="k2")(tf_keras.layers.Masking()(inputs)))
    path = str(tmp_path / "masked.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        lstmconv.read(path)
    assert any('layer "k2" is called with the mask of "masking"' in m for m in caplog.messages)
    with pytest.raises(UnsupportedFeatureError, match=r'layer "k2" is called with'):
        lstmconv.read(path, strict=True)
