"""ONNX files as they are found (issue 14): recurrent nodes inside If/Loop/Scan subgraphs,
quantized LSTMs, weights computed by constant ops; each read and checked against onnxruntime
running the original graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from corpus import onnx_deeply_nested

import lstmconv
from lstmconv.cli import main
from lstmconv.errors import FormatError, LstmconvError, UnsupportedFeatureError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FOUND = json.loads((FIXTURES / "onnx_found.json").read_text())
T, B, F, H = 6, 2, 3, 4
TARGETS = (".onnx", ".pt", ".keras", ".npz")


def _ort(proto_or_path, feed: dict) -> list[np.ndarray]:
    require("onnxruntime")
    import onnxruntime

    model = proto_or_path if isinstance(proto_or_path, (str, Path)) else proto_or_path.SerializeToString()
    session = onnxruntime.InferenceSession(
        str(model) if isinstance(model, Path) else model, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feed)


def _layer(model, name):
    return next(layer for layer in model if layer.name == name)


def _convert_verifies(source: Path, tmp_path: Path, capsys, names: list[str]) -> None:
    require("torch"), require("keras"), require("onnxruntime")
    for ending in TARGETS:
        dest = tmp_path / f"out{ending}"
        status = main(["convert", str(source), str(dest)])
        captured = capsys.readouterr()
        assert status == 0, captured.err
        for name in names:
            assert name in captured.out
        assert dest.exists()


def _inspect_names(source: Path, capsys, names: list[str]) -> None:
    assert main(["inspect", str(source)]) == 0
    out = capsys.readouterr().out
    for name in names:
        assert f'layer "{name}"' in out


# -- If / Loop / Scan ------------------------------------------------------------------------------
def test_script_if_fixture_reads_both_branches_as_onnxruntime_runs_them(capsys, tmp_path) -> None:
    entry = FOUND["onnx_script_if_lstm"]
    source = FIXTURES / entry["file"]
    model = lstmconv.read(source)
    assert [layer.name for layer in model] == ["If/then_branch/LSTM", "If/else_branch/LSTM_1"]
    assert set(entry["layers"]) == {layer.name for layer in model}
    with np.load(FIXTURES / entry["io"]) as io:
        x = io["x"]
        for name, key in entry["layers"].items():
            y = lstmconv.reference.run(lstmconv.ir.Model((_layer(model, name),), "one"), x)
            np.testing.assert_allclose(y, io[key], rtol=0, atol=2e-6)
        # the two branches hold different weights: each output is its own branch's
        assert np.abs(io["y_then"] - io["y_else"]).max() > 0.05
    _inspect_names(source, capsys, list(entry["layers"]))
    _convert_verifies(source, tmp_path, capsys, list(entry["layers"]))


class _G:
    """Nodes and initializers of one graph (a subgraph's or the main one's)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def const(self, value, name: str | None = None) -> str:
        from onnx import numpy_helper

        self.count += 1
        name = name or f"c{id(self)}_{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op: str, inputs, outputs: int = 1, name: str | None = None, **attrs) -> list[str]:
        from onnx import helper

        self.count += 1
        names = [f"{op.lower()}_{id(self)}_{self.count}_{i}" for i in range(outputs)]
        self.nodes.append(
            helper.make_node(op, list(inputs), names, name=name or f"{op}_{self.count}", **attrs)
        )
        return names

    def weights(self, directions: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = self.rng.uniform
        return (
            u(-0.6, 0.6, (directions, 4 * H, F)).astype(np.float32),
            u(-0.6, 0.6, (directions, 4 * H, H)).astype(np.float32),
            u(-0.6, 0.6, (directions, 8 * H)).astype(np.float32),
        )

    def graph(self, name: str, outputs: list[str], inputs: list | None = None):
        from onnx import TensorProto, helper

        return helper.make_graph(
            self.nodes,
            name,
            inputs or [],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
            self.inits,
        )


def _main_model(g: _G, out: str, extra_inputs: list | None = None):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        g.nodes,
        "main",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F]), *(extra_inputs or [])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        g.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _branch_lstm(g: _G, x: str, name: str, w: str, r: str, b: str) -> str:
    y = g.op("LSTM", [x, w, r, b], 3, name=name, hidden_size=H)[0]
    axis = g.const(np.array([1], np.int64))
    return g.op("Transpose", [g.op("Squeeze", [y, axis])[0]], perm=[1, 0, 2])[0]


def _if_model(nested: bool = False):
    """An If whose then_branch's LSTM takes W from the main graph (outer scope) and R, B from
    its own initializers; the else_branch's LSTM has all its weights in the branch (inside a
    second If when ``nested``)."""
    from onnx import TensorProto, helper

    main_g = _G(1)
    xt = main_g.op("Transpose", ["x"], perm=[1, 0, 2])[0]
    w1, r1, b1 = main_g.weights()
    outer_w = main_g.const(w1, "outer_W")
    then_g = _G(2)
    then_y = _branch_lstm(then_g, xt, "lstm_then", outer_w, then_g.const(r1), then_g.const(b1))
    else_g = _G(3)
    w2, r2, b2 = else_g.weights()
    if nested:
        inner_g = _G(4)
        inner_y = _branch_lstm(
            inner_g, xt, "lstm_deep", inner_g.const(w2), inner_g.const(r2), inner_g.const(b2)
        )
        other = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["same"])],
            "other",
            [],
            [helper.make_tensor_value_info("same", TensorProto.FLOAT, None)],
        )
        else_y = else_g.op(
            "If",
            [else_g.const(np.array(True))],
            name="inner_if",
            then_branch=inner_g.graph("inner_then", [inner_y]),
            else_branch=other,
        )[0]
    else:
        else_y = _branch_lstm(else_g, xt, "lstm_else", else_g.const(w2), else_g.const(r2), else_g.const(b2))
    cond = main_g.op(
        "Cast", [main_g.op("Greater", ["rate", main_g.const(np.array(0, np.float32))])[0]], to=9
    )[0]
    out = main_g.op(
        "If",
        [cond],
        name="If_0",
        then_branch=then_g.graph("then", [then_y]),
        else_branch=else_g.graph("else", [else_y]),
    )[0]
    return _main_model(main_g, out, [helper.make_tensor_value_info("rate", TensorProto.FLOAT, [])])


@pytest.mark.parametrize("nested", [False, True], ids=["if", "if-inside-if"])
def test_if_branches_with_outer_scope_weights_read_and_verify(tmp_path, capsys, nested) -> None:
    import onnx

    proto = _if_model(nested)
    path = tmp_path / "if.onnx"
    onnx.save(proto, str(path))
    x = np.random.default_rng(5).standard_normal((B, T, F)).astype(np.float32)
    model = lstmconv.read(path)
    deep = "If_0/else_branch/inner_if/then_branch/lstm_deep" if nested else "If_0/else_branch/lstm_else"
    names = ["If_0/then_branch/lstm_then", deep]
    # in the file's order: onnx.helper writes the attributes sorted (else_branch first)
    assert [layer.name for layer in model] == names[::-1]
    assert [layer.name for layer in lstmconv.read(proto)] == names[::-1]
    for name, rate in zip(names, (1.0, -1.0)):
        expected = _ort(path, {"x": x, "rate": np.array(rate, np.float32)})[0]
        got = lstmconv.reference.run(lstmconv.ir.Model((_layer(model, name),), "one"), x)
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)
    assert model.skipped == ()  # the outer W is the then-branch LSTM's, not left over
    _inspect_names(path, capsys, names)
    _convert_verifies(path, tmp_path, capsys, names)


def _loop_body(step_state: bool):
    """A Loop body holding an LSTM node on the outer ``xt``: with ``step_state`` its initial_h is
    the loop-carried value (the layer stepped once per iteration), else it starts from zero."""
    from onnx import TensorProto, helper

    g = _G(7)
    w, r, b = g.weights()
    inputs = [
        helper.make_tensor_value_info("iter", TensorProto.INT64, []),
        helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        helper.make_tensor_value_info("h_in", TensorProto.FLOAT, None),
    ]
    state = "h_in" if step_state else ""
    outs = g.op("LSTM", ["xt", g.const(w), g.const(r), g.const(b), "", state], 3, name="step", hidden_size=H)
    g.nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    body = helper.make_graph(
        g.nodes,
        "body",
        inputs,
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info(outs[1], TensorProto.FLOAT, None),
        ],
        g.inits,
    )
    main_g = _G(8)
    main_g.nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]))
    h0 = main_g.const(np.zeros((1, B, H), np.float32))
    loop = main_g.op(
        "Loop",
        [main_g.const(np.array(2, np.int64)), main_g.const(np.array(True)), h0],
        name="loop",
        body=body,
    )[0]
    return _main_model(main_g, loop), w, r, b


def test_loop_stepping_a_recurrent_node_is_refused_saying_so() -> None:
    proto, *_ = _loop_body(step_state=True)
    with pytest.raises(
        UnsupportedFeatureError,
        match=r'LSTM node "loop/body/step" is inside Loop node "loop", which feeds its initial_h',
    ):
        lstmconv.read(proto)


def test_loop_around_a_node_it_does_not_feed_is_read() -> None:
    proto, w, _r, _b = _loop_body(step_state=False)
    model = lstmconv.read(proto)
    assert [layer.name for layer in model] == ["loop/body/step"]
    np.testing.assert_array_equal(model.layers[0].cells[0].w_ih["f"], w[0, 2 * H : 3 * H])


def test_subgraphs_nested_deeper_than_the_cap_are_refused(tmp_path) -> None:
    path = tmp_path / "deep.onnx"
    path.write_bytes(onnx_deeply_nested())
    with pytest.raises(FormatError, match="nest deeper than 32"):
        lstmconv.read(path)


# -- quantized -------------------------------------------------------------------------------------
def test_quantized_lstm_reads_dequantized_near_onnxruntime_and_the_float_weights(
    caplog, capsys, tmp_path
) -> None:
    """onnxruntime's DynamicQuantizeLSTM read dequantized: the weights within half a step of
    the float model's, the outputs within 0.01 of onnxruntime running the quantized model
    (measured 0.0038: onnxruntime quantizes the activations too) and of the float model's."""
    import onnx
    from onnx import numpy_helper

    entry = FOUND["onnx_quantized_lstm"]
    source = FIXTURES / entry["file"]
    with caplog.at_level("WARNING", logger="lstmconv"):
        model = lstmconv.read(source)
    assert "read dequantized, not exact" in caplog.text and "at most 0.00319" in caplog.text
    (layer,) = model.layers
    assert layer.name == "/LSTM_quant" and layer.num_directions == 2
    with np.load(FIXTURES / entry["io"]) as io:
        y = lstmconv.reference.run(model, io["x"])
        quantized_gap = np.abs(y - io["y"]).max()
        float_gap = np.abs(y - io["y_float"]).max()
    assert quantized_gap < 0.01 and float_gap < 0.01, (quantized_gap, float_gap)
    assert quantized_gap > 1e-4  # activation quantization is there: this is not the same computation
    # the weights themselves: the float model's W within half a quantization step
    original = onnx.load(str(FIXTURES / entry["float_file"]))
    lstm = next(n for n in original.graph.node if n.op_type == "LSTM")
    w_float = next(numpy_helper.to_array(t) for t in original.graph.initializer if t.name == lstm.input[1])
    order = ("i", "o", "f", "g")
    w_read = np.stack([np.concatenate([cell.w_ih[g] for g in order]) for cell in layer.cells])
    assert np.abs(w_read - w_float).max() <= 0.00319 + 1e-7
    assert np.abs(w_read - w_float).max() > 1e-4
    _inspect_names(source, capsys, ["/LSTM_quant"])
    _convert_verifies(source, tmp_path, capsys, ["/LSTM_quant"])


# -- weights computed by constant ops --------------------------------------------------------------
def _folded_model(opset: int):
    """An LSTM whose W, R and B are computed from initializers by Cast, Transpose, Unsqueeze,
    Slice (a time reversal among them), Concat, Gather, Squeeze, Reshape, Flatten and Identity,
    with axes as attributes before opset 13 and as inputs from 13 on."""
    g = _G(20 + opset)
    u = g.rng.uniform
    int_min = np.iinfo(np.int64).min

    def axes_op(op: str, x: str, axes: list[int]) -> str:
        if opset >= 13:
            return g.op(op, [x, g.const(np.array(axes, np.int64))])[0]
        return g.op(op, [x], axes=axes)[0]

    w_stored = g.const(u(-0.6, 0.6, (F, 4 * H)).astype(np.float16))
    w = axes_op("Unsqueeze", g.op("Transpose", [g.op("Cast", [w_stored], to=1)[0]], perm=[1, 0])[0], [0])
    big = g.const(u(-0.6, 0.6, (2, 4 * H + 4, H)).astype(np.float32))
    ints = lambda *v: g.const(np.array(v, np.int64))  # noqa: E731
    part = g.op("Slice", [big, ints(1, 2), ints(2, 2 + 2 * H), ints(0, 1)])[0]
    whole = g.op("Slice", [big, ints(-1), ints(int_min), ints(0), ints(-1)])[0]  # axis 0 reversed
    one = g.op("Slice", [whole, ints(1), ints(2), ints(0)])[0]  # big[0:1]
    flipped = g.op("Slice", [one, ints(-1), ints(-(2 * H) - 1), ints(1), ints(-1)])[0]
    r = g.op("Identity", [g.op("Concat", [part, flipped], axis=1)[0]])[0]
    b_stored = g.const(u(-0.6, 0.6, (3, 1, 8 * H)).astype(np.float32))
    picked = g.op("Gather", [b_stored, ints(2)], axis=0)[0]  # (1, 1, 8H)
    b = g.op("Reshape", [axes_op("Squeeze", picked, [0]), ints(1, -1)])[0]
    b = g.op("Flatten", [b], axis=1)[0]
    xt = g.op("Transpose", ["x"], perm=[1, 0, 2])[0]
    y = g.op("LSTM", [xt, w, r, b], 3, name="folded", hidden_size=H)[0]
    out = g.op("Transpose", [axes_op("Squeeze", y, [1])], perm=[1, 0, 2])[0]
    model = _main_model(g, out)
    from onnx import helper

    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", opset))
    return model


@pytest.mark.parametrize("opset", [11, 17])
def test_weights_computed_by_constant_ops_are_folded_as_onnxruntime_computes_them(
    opset, tmp_path, capsys
) -> None:
    import onnx

    proto = _folded_model(opset)
    path = tmp_path / "folded.onnx"
    onnx.save(proto, str(path))
    x = np.random.default_rng(opset).standard_normal((B, T, F)).astype(np.float32)
    expected = _ort(path, {"x": x})[0]
    for source in (path, proto):
        model = lstmconv.read(source)
        assert [layer.name for layer in model] == ["folded"]
        np.testing.assert_allclose(lstmconv.reference.run(model, x), expected, rtol=0, atol=2e-6)
    if opset == 17:
        _inspect_names(path, capsys, ["folded"])
        _convert_verifies(path, tmp_path, capsys, ["folded"])


def test_a_weight_computed_from_the_input_still_says_it_is_not_a_constant() -> None:
    g = _G(30)
    w, r, b = g.weights()
    shape = g.op("Shape", ["x"])[0]  # depends on the input: not a constant
    w_name = g.op(
        "Reshape",
        [
            g.const(w.ravel()),
            g.op(
                "Concat",
                [
                    g.const(np.array([1, 4 * H], np.int64)),
                    g.op(
                        "Slice", [shape, g.const(np.array([2], np.int64)), g.const(np.array([3], np.int64))]
                    )[0],
                ],
                axis=0,
            )[0],
        ],
    )[0]
    y = g.op(
        "LSTM",
        [g.op("Transpose", ["x"], perm=[1, 0, 2])[0], w_name, g.const(r), g.const(b)],
        3,
        name="l",
        hidden_size=H,
    )[0]
    with pytest.raises(LstmconvError, match="expected a constant"):
        lstmconv.read(_main_model(g, y))


# -- what a file is, by its bytes ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "renamed", "expected"),
    [
        ("keras3_gru_rnn.keras", "model", "keras"),  # zip with config.json + model.weights.h5
        ("torch_checkpoint.pt", "model.dat", "torch"),  # zip with */data.pkl
        ("lstmconv_npz.npz", "model", "npz"),  # zip of *.npy
        ("tf_keras_hard_sigmoid.h5", "model", "keras"),  # HDF5
        ("torch_safetensors.safetensors", "model.bin", "safetensors"),
        ("torch_export_lstm.onnx", "model.bin", "onnx"),
        ("tf2onnx_keras_lstm.onnx", "model", "onnx"),
        ("tflite_lstm.tflite", "model.bin", "tflite"),  # TFL3 at offset 4
        ("torch_checkpoint.pt", "model.bin", "torch"),
    ],
)
def test_formats_are_told_by_their_bytes_when_the_name_does_not_say(
    fixture, renamed, expected, tmp_path
) -> None:
    from lstmconv import registry

    path = tmp_path / renamed
    path.write_bytes((FIXTURES / fixture).read_bytes())
    assert registry.for_source(path).name == expected
    assert registry.for_source(FIXTURES / fixture).name == registry.for_path(FIXTURES / fixture).name


def test_a_legacy_pickle_bin_is_torch_and_a_ggml_bin_is_named_not_called_a_pickle(tmp_path) -> None:
    from lstmconv import registry
    from lstmconv.errors import UnknownFormatError

    (tmp_path / "legacy.bin").write_bytes(b"\x80\x02" + b"\x00" * 30)
    assert registry.for_source(tmp_path / "legacy.bin").name == "torch"
    for magic in (b"GGUF\x03\x00\x00\x00", b"lmgg", b"tjgg"):
        path = tmp_path / "model.bin"
        path.write_bytes(magic + b"\x00" * 64)
        with pytest.raises(
            UnsupportedFeatureError, match=r"a GGML/GGUF file .* which lstmconv does not read"
        ):
            lstmconv.read(path)
        assert main(["inspect", str(path)]) == 2
    (tmp_path / "mystery").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(
        UnknownFormatError, match=r"from the file name or its first bytes \(begins 01 02 03 04"
    ):
        lstmconv.read(tmp_path / "mystery")


def test_a_pickle_of_another_librarys_objects_names_the_class(torch, tmp_path) -> None:
    """madmom 0.16.1's models (beats_blstm_1.pkl) are protocol-2 pickles of
    madmom.ml.nn.NeuralNetwork: refused unloaded, naming the class, not called a torch file."""
    from lstmconv.errors import UnsafeInputError

    path = tmp_path / "beats_blstm_1.pkl"  # GLOBAL, EMPTY_TUPLE, NEWOBJ, then BUILD of its dict
    path.write_bytes(b"\x80\x02cmadmom.ml.nn\nNeuralNetwork\nq\x00)\x81q\x01}q\x02U\x06layersq\x03]q\x04sb.")
    with pytest.raises(UnsafeInputError, match=r"beyond tensors \(madmom\.ml\.nn\.NeuralNetwork\)") as caught:
        lstmconv.read(path)
    assert "not a PyTorch state_dict" in caught.value.render()


def test_a_safetensors_bin_is_read_without_torch(tmp_path) -> None:
    import subprocess
    import sys

    path = tmp_path / "pytorch_model.bin"
    path.write_bytes((FIXTURES / "torch_safetensors.safetensors").read_bytes())
    io = FIXTURES / "torch_safetensors.io.npz"
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, lstmconv\n"
        f"m = lstmconv.read({str(path)!r})\n"
        f"d = np.load({str(io)!r})\n"
        "print(np.abs(lstmconv.reference.run(m, d['x']) - d['y']).max())\n"
        "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < 2e-5


def test_a_cnn_state_dict_says_what_it_holds(tmp_path) -> None:
    require("torch")
    import torch

    cnn = torch.nn.Sequential(torch.nn.Conv1d(1, 16, 3), torch.nn.ReLU(), torch.nn.Conv1d(16, 8, 3))
    path = tmp_path / "cnn.pt"
    torch.save(cnn.state_dict(), path)
    with pytest.raises(
        LstmconvError,
        match=r"a state_dict of 4 tensors, none recurrent: 0.weight \(16, 1, 3\), 0.bias \(16,\), "
        r"2.weight \(8, 16, 3\)",
    ):
        lstmconv.read(path)


def test_an_onnx_graph_without_recurrent_nodes_lists_its_ops() -> None:
    g = _G(40)
    out = g.op("Relu", [g.op("Relu", [g.op("Add", ["x", g.const(np.ones(F, np.float32))])[0]])[0]])[0]
    with pytest.raises(LstmconvError, match=r"no recurrent layer found: .*its 3 nodes are Relu ×2, Add"):
        lstmconv.read(_main_model(g, out))


def test_a_keras_model_without_recurrent_layers_lists_its_classes(tmp_path) -> None:
    require("keras")
    import keras

    model = keras.Sequential([keras.Input((10, 2)), keras.layers.Conv1D(4, 3), keras.layers.Dense(2)])
    model.save(tmp_path / "cnn.keras")
    with pytest.raises(
        LstmconvError, match="no LSTM, GRU or SimpleRNN layer; its 3 layers are InputLayer, Conv1D, Dense"
    ):
        lstmconv.read(tmp_path / "cnn.keras")


def test_an_unrolled_cell_loop_inside_an_if_branch_is_refused() -> None:
    from onnx import TensorProto, helper

    body_g = _G(50)
    mm = body_g.op("MatMul", ["h_in", body_g.const(np.ones((H, H), np.float32))])[0]
    body_g.nodes.append(helper.make_node("Tanh", [body_g.op("Sigmoid", [mm])[0]], ["h_out"]))
    body_g.nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    body = helper.make_graph(
        body_g.nodes,
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
        body_g.inits,
    )
    branch_g = _G(51)
    h0 = branch_g.const(np.zeros((B, H), np.float32))
    loop = branch_g.op(
        "Loop",
        [branch_g.const(np.array(T, np.int64)), branch_g.const(np.array(True)), h0],
        name="cell_loop",
        body=body,
    )[0]
    main_g = _G(52)
    out = main_g.op(
        "If",
        [main_g.const(np.array(True))],
        name="choose",
        then_branch=branch_g.graph("then", [loop]),
        else_branch=branch_g.graph("else", [loop]),
    )[0]
    with pytest.raises(UnsupportedFeatureError, match='layer "cell_loop" was exported as a Loop'):
        lstmconv.read(_main_model(main_g, out))
