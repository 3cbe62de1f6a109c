""".tflite files read without TensorFlow (scripts/make_tflite_fixtures.py made them with
TensorFlow's converter and schema classes and ran them in tf.lite.Interpreter): each reader
output against the interpreter's own, with TensorFlow, Keras and flatbuffers blocked; the
parser against TensorFlow's generated reader; refusals; inspect; conversion onwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from natives import FILES

import lstmconv
from lstmconv import Direction, Kind, errors
from lstmconv.cli import main
from lstmconv.formats.tflite import flat, names

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LISTED = {
    k: v for k, v in json.loads((FIXTURES / "manifest.json").read_text()).items() if k.startswith("tflite_")
}
EXTRA = json.loads((FIXTURES / "tflite_extra.json").read_text())
ALL = {**LISTED, **EXTRA}
#: Fixtures whose y is the whole output sequence (tflite_bidir_last's is the last step only).
READABLE = sorted(
    name for name, entry in ALL.items() if "expect" not in entry and len(entry["output_shape"]) == 3
)
REFUSED = sorted(name for name, entry in ALL.items() if "expect" in entry)
ATOL = 2e-5
BLOCKED = ("tensorflow", "keras", "tf_keras", "flatbuffers", "torch", "onnx", "onnxruntime")


def _io(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(FIXTURES / ALL[name]["io"]) as data:
        return data["x"], data["y"]


def test_the_fixtures_cover_every_op_and_refusal() -> None:
    ops = {
        names.OP_NAMES[op.code]
        for name in READABLE
        for graph in flat.parse((FIXTURES / ALL[name]["file"]).read_bytes()).subgraphs
        for op in graph.operators
        if op.code in names.RECURRENT_OPS
    }
    assert ops == {names.OP_NAMES[code] for code in names.RECURRENT_OPS} - {"RNN"}
    assert {"tflite_gru_while", "tflite_keras3_lstm_while", "tflite_int8"} <= set(REFUSED)


def test_every_fixture_reads_without_tensorflow_and_matches_the_interpreter() -> None:
    """In a process where TensorFlow, Keras and flatbuffers cannot be imported: every readable
    fixture's IR, run by the NumPy reference, gives the interpreter's stored outputs; every
    refusal fixture fails with its message."""
    prelude = "".join(f"sys.modules[{name!r}] = None\n" for name in BLOCKED)
    code = (
        "import sys, json\n" + prelude + "import numpy as np, lstmconv, re\n"
        f"fixtures = {str(FIXTURES)!r}\n"
        f"readable, refused, entries = {READABLE!r}, {REFUSED!r}, {ALL!r}\n"
        "errors = {}\n"
        "for name in readable:\n"
        "    model = lstmconv.read(f'{fixtures}/{entries[name][\"file\"]}')\n"
        "    data = np.load(f'{fixtures}/{entries[name][\"io\"]}')\n"
        "    errors[name] = float(np.abs(lstmconv.reference.run(model, data['x']) - data['y']).max())\n"
        "    errors[name + ':dtype'] = str(model.dtypes[0])\n"
        "for name in refused:\n"
        "    kind, message = entries[name]['expect']\n"
        "    try:\n"
        "        lstmconv.read(f'{fixtures}/{entries[name][\"file\"]}')\n"
        "    except getattr(lstmconv.errors, kind) as error:\n"
        "        assert message in str(error), str(error)\n"
        "    else:\n"
        "        raise AssertionError(name + ' read')\n"
        "loaded = [m for m in sys.modules if sys.modules[m] is not None and m.split('.')[0] in "
        f"{BLOCKED!r}]\n"
        "assert not loaded, loaded\n"
        "print(json.dumps(errors))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 0, out.stderr
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    for name in READABLE:
        # The interpreter computes in float32 on the weights it reads (float16 ones dequantized
        # exactly), so even the float16 fixture agrees to float32 rounding, far inside the
        # 4 units of float16 precision (3.9e-3) verification would allow it.
        assert measured[name] <= ATOL, (name, measured[name])
    assert measured["tflite_float16:dtype"] == "float16"


def _layers(name: str) -> list[tuple[object, ...]]:
    model = lstmconv.read(FIXTURES / ALL[name]["file"])
    return [
        (
            layer.name,
            layer.kind,
            layer.direction,
            layer.input_size,
            layer.hidden_size,
            layer.proj_size,
            layer.input_forget,
            layer.has_peepholes,
            layer.cell_clip,
            layer.proj_clip,
            tuple(str(a) for a in layer.activations),
        )
        for layer in model
    ]


LSTM_MATH = ("sigmoid", "tanh", "tanh")


def test_layer_facts_come_from_the_ops_and_their_options() -> None:
    fw, bi = Direction.FORWARD, Direction.BIDIRECTIONAL
    assert _layers("tflite_stacked") == [
        ("tfl.unidirectional_sequence_lstm", Kind.LSTM, fw, 5, 8, 0, False, False, 10.0, None, LSTM_MATH),
        ("StatefulPartitionedCall:0", Kind.LSTM, fw, 8, 5, 0, False, False, 10.0, None, LSTM_MATH),
    ]
    # REVERSE_V2 → op → REVERSE_V2 → CONCATENATION beside a forward op: one bidirectional layer.
    assert _layers("tflite_bidir") == [
        ("tfl.unidirectional_sequence_lstm1", Kind.LSTM, bi, 4, 4, 0, False, False, 10.0, None, LSTM_MATH),
        ("StatefulPartitionedCall:0", Kind.LSTM, fw, 8, 3, 0, False, False, 10.0, None, LSTM_MATH),
    ]
    assert [
        (layer.direction, layer.merge) for layer in lstmconv.read(FIXTURES / "tflite_bidir_ave.tflite")
    ] == [(bi, "ave")]
    (backwards,) = lstmconv.read(FIXTURES / "tflite_go_backwards.tflite")
    assert (backwards.direction, backwards.reversed_output) == (Direction.REVERSE, True)
    (cifg,) = _layers("tflite_op_cifg")
    assert cifg[1:] == (Kind.LSTM, fw, 4, 6, 3, True, True, pytest.approx(0.6), 0.25, LSTM_MATH)
    assert _layers("tflite_op_bidir_rnn_relu")[0][1:4] == (Kind.RNN, bi, 4)
    assert _layers("tflite_op_bidir_rnn_relu")[0][-1] == ("relu",)
    assert _layers("tflite_op_lstm_step")[0][7] is True  # peepholes
    assert lstmconv.read(FIXTURES / "tflite_float16.tflite").dtypes == (np.dtype("float16"),)
    external = flat.parse((FIXTURES / "tflite_op_rnn_external.tflite").read_bytes())
    stored = [b for b in external.buffers if b.length]  # weights, recurrent weights, bias
    assert [b.length for b in stored] == [80, 100, 20] and min(b.start for b in stored) == 864


def test_cifg_becomes_the_coupled_form_with_the_forget_gate_negated() -> None:
    """TFLite's i = 1 - σ(z_f) is the IR's f = 1 - i with i = σ(-z_f): the forget gate's
    tensors kept in f, their negation in i, exactly."""
    layer = lstmconv.read(FIXTURES / "tflite_op_cifg.tflite")[0]
    cell = layer.cells[0]
    for field in ("w_ih", "w_hh", "b_ih", "peephole"):
        np.testing.assert_array_equal(getattr(cell, field)["i"], -getattr(cell, field)["f"])
    graph = flat.parse((FIXTURES / "tflite_op_cifg.tflite").read_bytes()).subgraphs[0]
    op = graph.operators[0]
    assert [op.inputs[k] for k in (1, 5, 9, 12, 17)] == [-1] * 5  # no input gate, no projection bias


def test_the_parser_agrees_with_tensorflows_generated_reader() -> None:
    """Every tensor, operator and option lstmconv's parser decodes, against TensorFlow's own
    schema_py_generated on the same bytes."""
    require("tensorflow")
    from tensorflow.lite.python import schema_py_generated as schema

    options = {
        "fused_activation_function": "fusedActivationFunction",
        "cell_clip": "cellClip",
        "proj_clip": "projClip",
        "time_major": "timeMajor",
        "merge_outputs": "mergeOutputs",
        "kernel_type": "kernelType",
        "axis": "axis",
        "asymmetric_quantize_inputs": "asymmetricQuantizeInputs",
        "diagonal_recurrent_tensors": "diagonalRecurrentTensors",
        "body_subgraph_index": "bodySubgraphIndex",
        "cond_subgraph_index": "condSubgraphIndex",
    }
    for name in sorted(ALL):
        data = (FIXTURES / ALL[name]["file"]).read_bytes()
        ours = flat.parse(data)
        theirs = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in theirs.operatorCodes]
        assert len(ours.buffers) == len(theirs.buffers)
        for mine, buffer in zip(ours.buffers, theirs.buffers):
            if buffer.data is None and buffer.offset > 1:  # stored after the flatbuffer
                assert (mine.start, mine.length) == (buffer.offset, buffer.size)
                continue
            assert mine.length == (0 if buffer.data is None else len(buffer.data))
            if mine.length:
                assert bytes(data[mine.start : mine.start + mine.length]) == bytes(buffer.data)
        assert len(ours.subgraphs) == len(theirs.subgraphs)
        for graph, expected in zip(ours.subgraphs, theirs.subgraphs):
            assert graph.name == (expected.name or b"").decode()
            assert [t.name for t in graph.tensors] == [t.name.decode() for t in expected.tensors]
            assert [t.shape for t in graph.tensors] == [
                tuple(t.shape if t.shape is not None else ()) for t in expected.tensors
            ]
            assert [(t.type, t.buffer, t.is_variable) for t in graph.tensors] == [
                (t.type, t.buffer, bool(t.isVariable)) for t in expected.tensors
            ]
            quantized = [t.quantization is not None for t in graph.tensors]
            assert quantized == [
                bool(t.quantization and t.quantization.scale is not None) for t in expected.tensors
            ]
            for op, other in zip(graph.operators, expected.operators, strict=True):
                assert op.code == codes[other.opcodeIndex]
                assert op.inputs == tuple(other.inputs) and op.outputs == tuple(other.outputs)
                if other.builtinOptions is not None and op.options:
                    for field, value in op.options.items():
                        if field != "type":
                            assert value == pytest.approx(getattr(other.builtinOptions, options[field])), (
                                name,
                                field,
                            )


def test_refusals_name_the_op_and_the_tensor() -> None:
    with pytest.raises(errors.UnsupportedFeatureError) as raised:
        lstmconv.read(FIXTURES / "tflite_int8.tflite")
    text = str(raised.value)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM (subgraph 0, operator 1" in text
    assert "input 1 input_to_input_weights" in text and "int8-quantized weights" in text
    with pytest.raises(errors.UnsupportedFeatureError, match="functional_1/lstm_1/while_body"):
        lstmconv.read(FIXTURES / "tflite_keras3_lstm_while.tflite")


def test_inspect_shows_tflites_own_tensor_names(capsys) -> None:
    assert main(["inspect", str(FIXTURES / "tflite_op_cifg.tflite")]) == 0
    out = capsys.readouterr().out
    assert "tflite layout:" in out
    for line in (
        "input_to_forget_weights",
        "recurrent_to_output_weights",
        "cell_to_forget_weights",
        "projection_weights",
    ):
        assert line in out
    assert "input_to_input_weights" not in out  # CIFG: TFLite holds no input gate
    assert main(["inspect", str(FIXTURES / "tflite_op_bidir_lstm.tflite"), "--json"]) == 0
    (layer,) = json.loads(capsys.readouterr().out)["layers"]
    stored = {t["name"]: (tuple(t["shape"]), t["gates"]) for t in layer["stored"]}
    assert stored["fw_input_to_cell_weights"] == ((5, 4), "g")
    assert stored["bw_recurrent_to_input_weights"] == ((5, 5), "i")
    assert stored["bw_output_gate_bias"] == ((5,), "o")
    assert layer["parameters"]["stored"] == 2 * (4 * 5 * 4 + 4 * 5 * 5 + 4 * 5)


def test_clips_are_refused_by_targets_unless_dropped(tmp_path, capsys, caplog) -> None:
    source = str(FIXTURES / "tflite_stacked.tflite")
    assert main(["convert", source, str(tmp_path / "m.onnx")]) == 2
    assert "ONNX cannot express a clip of the cell state (cell_clip 10" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
    with caplog.at_level("WARNING", logger="lstmconv"):
        model = lstmconv.read(source, drop_clips=True)
    assert all(layer.cell_clip is None for layer in model)
    assert "cell_clip 10 dropped as asked" in caplog.text


@pytest.mark.parametrize("ending", [".onnx", ".pt", ".keras", ".npz"])
@pytest.mark.parametrize("name", ["tflite_bidir", "tflite_float16", "tflite_op_cifg"])
def test_convert_runs_in_each_target_as_the_interpreter_did(name: str, ending: str, tmp_path, capsys) -> None:
    """The CLI converts (dropping the converter's clip of 10, which the stored inputs never
    reach); the written file, run in its own framework, gives TFLite's outputs. The CIFG
    fixture's clips do act: only .npz takes it, and gives TFLite's outputs too."""
    fmt = next(f for f in FILES.values() if f.ending == ending)
    for module in fmt.needs:
        require(module)
    dest = tmp_path / f"out{ending}"
    active = name == "tflite_op_cifg"  # its clips act on the stored input: never dropped
    drop = [] if active else ["--drop-clips"]
    status = main(["convert", *drop, str(FIXTURES / ALL[name]["file"]), str(dest)])
    captured = capsys.readouterr()
    if active and ending != ".npz":  # CIFG, peepholes, projection and clips: only .npz holds them all
        assert status == 2 and "cannot express" in captured.err
        assert os.listdir(tmp_path) == []
        return
    assert status == 0, captured.err
    x, y = _io(name)
    # A float16 model runs in float16 where the target does (onnxruntime): 4 units of float16's
    # precision, as verification allows; float32 rounding elsewhere.
    atol = lstmconv.dtypes.tolerance(ATOL, *lstmconv.read(dest).dtypes)
    np.testing.assert_allclose(fmt.run(str(dest), x), y, rtol=0, atol=atol)


def test_npz_keeps_the_clips_and_cifg_exactly(tmp_path) -> None:
    source = FIXTURES / "tflite_op_cifg.tflite"
    assert main(["convert", str(source), str(tmp_path / "m.npz"), "-q"]) == 0
    layer = lstmconv.read(tmp_path / "m.npz")[0]
    assert (layer.cell_clip, layer.proj_clip, layer.input_forget) == (pytest.approx(0.6), 0.25, True)
    x, y = _io("tflite_op_cifg")
    np.testing.assert_allclose(lstmconv.reference.run(layer, x), y, rtol=0, atol=ATOL)
    unclipped = lstmconv.reference.run(layer.replace(cell_clip=None, proj_clip=None), x)
    assert np.abs(unclipped - y).max() > 0.01  # the clips act on this input


def test_tflite_is_read_only(tmp_path, capsys) -> None:
    assert main(["convert", str(FIXTURES / "tflite_op_rnn.tflite"), str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert "lstmconv reads tflite files but does not write them" in err and "TFLiteConverter" in err
    assert os.listdir(tmp_path) == []


def _tflite_ops():
    """scripts/tflite_ops.py: single ops built with TensorFlow's schema classes."""
    require("tensorflow")
    sys.path.insert(0, str(FIXTURES.parent / "scripts"))
    import tflite_ops

    return tflite_ops


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"layer_norm": True}, r"layer normalization \(input_layer_norm_coefficients \(input 20\), forget_"),
        ({"projection_bias": True}, r"a projection bias \(projection_bias, input 17\)"),
        ({"activation": 3}, "fused_activation_function RELU6"),
    ],
)
def test_lstm_features_the_ir_lacks_are_refused_by_name(change, message, tmp_path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(_tflite_ops().lstm(5, **change))
    with pytest.raises(errors.UnsupportedFeatureError, match=message) as raised:
        lstmconv.read(path)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM (subgraph 0, operator 0" in str(raised.value)


def test_the_basic_lstm_kernel_is_refused(tmp_path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(_tflite_ops().lstm_step(5, kernel_type=1))
    with pytest.raises(errors.UnsupportedFeatureError, match="the BASIC LSTM kernel"):
        lstmconv.read(path)


def test_the_one_step_rnn_op_matches_the_interpreter(tmp_path) -> None:
    ops = _tflite_ops()
    content = ops.rnn_step(6, activation=1)
    x = np.random.default_rng(6).uniform(-1.5, 1.5, (ops.BATCH, 1, 4)).astype("float32")
    y = ops.run(content, np.ascontiguousarray(x[:, 0]))[:, None]
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    model = lstmconv.read(path)
    assert (model[0].name, model[0].kind, str(model[0].activations[0])) == ("rnn_step", Kind.RNN, "relu")
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=ATOL)
    assert np.abs(y).max() > 0.1


def test_int8_weights_dequantized_on_request_say_what_it_costs(caplog) -> None:
    """``dequantize=True`` reads scale·(q - zero_point); the IR then follows TFLite's integer
    kernel to within its rounding of the activations (measured 3.6e-3 on outputs up to 0.34),
    and the float model it was made from to within the weights' rounding (1.6e-3; the
    interpreter itself is 4.0e-3 from it)."""
    with caplog.at_level("WARNING", logger="lstmconv"):
        model = lstmconv.read(FIXTURES / "tflite_int8.tflite", dequantize=True)
    assert "12 quantized weight tensor(s) dequantized as asked" in caplog.text
    assert "off by up to half a step (at most 0.00197" in caplog.text
    assert model.dtypes == (np.dtype("float32"),)
    with np.load(FIXTURES / "tflite_int8.io.npz") as data:
        x, y, y_float = data["x"], data["y"], data["y_float"]
    out = lstmconv.reference.run(model, x)
    assert np.abs(out - y).max() < 1e-2
    assert np.abs(out - y_float).max() < 5e-3
    assert np.abs(y).max() > 0.2


def test_a_bidirectional_without_sequences_is_one_layer_and_its_last_steps() -> None:
    """Keras's Bidirectional(return_sequences=False) is the forward op's last step beside the
    backward op's last processed step, which is time 0 of the layer's aligned output."""
    (layer,) = lstmconv.read(FIXTURES / "tflite_bidir_last.tflite")
    assert (layer.direction, layer.merge, layer.hidden_size) == (Direction.BIDIRECTIONAL, "concat", 3)
    x, y = _io("tflite_bidir_last")
    out = lstmconv.reference.run(layer, x)
    np.testing.assert_allclose(np.concatenate([out[:, -1, :3], out[:, 0, 3:]], axis=1), y, rtol=0, atol=ATOL)
