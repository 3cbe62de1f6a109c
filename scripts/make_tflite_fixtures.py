"""The TFLite fixtures: small models converted by TensorFlow's own TFLiteConverter, and single
recurrent ops built with TensorFlow's own schema classes, each run by TFLite's interpreter on a
stored random input (``*.io.npz``: ``x`` and ``y``, both (batch, time, features)).

- Converted from tf_keras 2 models (``TFLiteConverter.from_keras_model``): tf_keras's LSTM
  becomes the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (with ``cell_clip`` 10, which the converter
  sets); ``Bidirectional`` becomes two of them around ``REVERSE_V2`` and a ``CONCATENATION``.
  Keras 3's LSTM does not fuse (its loop becomes a ``WHILE``), nor do GRU and SimpleRNN of
  either Keras: those are the refusal fixtures, with the int8 one.
- Built op by op (``tensorflow.lite.python.schema_py_generated`` with the flatbuffers package),
  for the ops no converter emits from Keras: ``BIDIRECTIONAL_SEQUENCE_LSTM``,
  ``UNIDIRECTIONAL_SEQUENCE_RNN``, ``BIDIRECTIONAL_SEQUENCE_RNN``, the one-step ``LSTM``, and a
  CIFG LSTM with peepholes, projection, clips and ``time_major``.

Fixtures every target can hold go into ``fixtures/manifest.json``; the others (refusals, and
the ops with features only ``.npz`` keeps) are listed in ``fixtures/tflite_extra.json`` with
the same fields plus ``expect`` (the error class and message) for the refusals.
Run: ``TF_USE_LEGACY_KERAS=1 python scripts/make_tflite_fixtures.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import flatbuffers
import numpy as np
import tensorflow as tf
import tf_keras
from tensorflow.lite.python import schema_py_generated as schema

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEED = 20261203
BATCH, TIME = 3, 7
INIT = 0.5


def _io_input(seed: int, features: int, batch: int = BATCH, time: int = TIME) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (batch, time, features)).astype("float32")


def _randomize(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-INIT, INIT, w.shape).astype("float32") for w in layer.get_weights()])


def _interpreter(content: bytes) -> tf.lite.Interpreter:
    interpreter = tf.lite.Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    return interpreter


def _run(content: bytes, x: np.ndarray, tensor: str | None = None) -> np.ndarray:
    """The interpreter's output for ``x`` (or the named tensor's value, for an op's sequence
    output that the model slices)."""
    interpreter = _interpreter(content)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    if tensor is None:
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    (index,) = [d["index"] for d in interpreter.get_tensor_details() if d["name"] == tensor]
    return interpreter.get_tensor(index)


def _time_major_run(content: bytes, x: np.ndarray) -> np.ndarray:
    """Run a time-major model on batch-major ``x``; the output batch-major again."""
    y = _run(content, np.ascontiguousarray(x.transpose(1, 0, 2)))
    return np.ascontiguousarray(y.transpose(1, 0, 2))


def _ops(content: bytes) -> list[str]:
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [names[codes[op.opcodeIndex]] for op in model.subgraphs[0].operators]


def _convert(model, *, float16: bool = False, int8: np.ndarray | None = None) -> bytes:
    """The converter's output; ``int8``: full-integer quantization calibrated on these inputs
    (TF 2.21's dynamic-range quantization leaves the fused LSTM's weights float32)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16 or int8 is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if float16:
        converter.target_spec.supported_types = [tf.float16]
    if int8 is not None:
        converter.representative_dataset = lambda: ([x] for x in int8)
    return converter.convert()


def _sequential(features: int, *layers, keras=tf_keras):
    inputs = keras.Input((TIME, features), batch_size=BATCH, name="x")
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


# -- ops built with TensorFlow's schema classes ------------------------------------------------
class _Graph:
    """One subgraph of one op, built with schema_py_generated's object API."""

    def __init__(self) -> None:
        self.tensors: list = []
        self.buffers = [schema.BufferT()]  # buffer 0: the empty one

    def tensor(self, name: str, shape, value: np.ndarray | None = None, variable: bool = False) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.isVariable = (
            name.encode(),
            list(shape),
            schema.TensorType.FLOAT32,
            variable,
        )
        buffer = schema.BufferT()
        if value is not None:
            buffer.data = np.ascontiguousarray(value, dtype="<f4").view(np.uint8).reshape(-1)
        self.buffers.append(buffer)
        t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def finish(self, code: int, inputs, outputs, options_type: int, options, graph_inputs) -> bytes:
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        sub = schema.SubGraphT()
        sub.tensors, sub.operators, sub.name = self.tensors, [op], b"main"
        sub.inputs, sub.outputs = list(graph_inputs), list(outputs[:1])
        opcode = schema.OperatorCodeT()
        opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), 1
        model = schema.ModelT()
        model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [opcode], [sub], self.buffers
        model.description = b"lstmconv fixture: one op built with tensorflow.lite schema_py_generated"
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _uniform(rng, *shape) -> np.ndarray:
    return rng.uniform(-INIT, INIT, shape).astype("float32")


def _lstm_inputs(
    g: _Graph, rng, side: str, features: int, hidden: int, *, cifg=False, peephole=False, proj=0
):
    """The 17 weight inputs of one direction (indices, -1 for absent)."""
    out = proj or hidden
    words = ("input", "forget", "cell", "output")
    ids = []
    for w in words:
        ids.append(
            -1
            if cifg and w == "input"
            else g.tensor(f"{side}input_to_{w}_weights", (hidden, features), _uniform(rng, hidden, features))
        )
    for w in words:
        ids.append(
            -1
            if cifg and w == "input"
            else g.tensor(f"{side}recurrent_to_{w}_weights", (hidden, out), _uniform(rng, hidden, out))
        )
    for w in ("input", "forget", "output"):
        absent = not peephole or (cifg and w == "input")
        ids.append(-1 if absent else g.tensor(f"{side}cell_to_{w}_weights", (hidden,), _uniform(rng, hidden)))
    for w in words:
        ids.append(
            -1
            if cifg and w == "input"
            else g.tensor(f"{side}{w}_gate_bias", (hidden,), _uniform(rng, hidden))
        )
    ids.append(
        g.tensor(f"{side}projection_weights", (proj, hidden), _uniform(rng, proj, hidden)) if proj else -1
    )
    ids.append(-1)  # projection bias
    return ids


def bidirectional_lstm(seed: int, features=4, hidden=5) -> bytes:
    rng, g = np.random.default_rng(seed), _Graph()
    x = g.tensor("x", (TIME, BATCH, features))
    fw = _lstm_inputs(g, rng, "fw_", features, hidden)
    bw = _lstm_inputs(g, rng, "bw_", features, hidden)
    states = [g.tensor(name, (BATCH, hidden), variable=True) for name in ("fw_h", "fw_c", "bw_h", "bw_c")]
    y = g.tensor("bidirectional_sequence_lstm", (TIME, BATCH, 2 * hidden))
    options = schema.BidirectionalSequenceLSTMOptionsT()
    # Time-major, the op's default: TF 2.21's kernel gets the last batch row wrong when
    # merge_outputs is set on batch-major input (seen here: 0.1 off; two outputs are right).
    options.fusedActivationFunction, options.mergeOutputs, options.timeMajor = (
        schema.ActivationFunctionType.TANH,
        True,
        True,
    )
    inputs = [x, *fw, *bw, *states, *([-1] * 9)]
    return g.finish(52, inputs, [y], schema.BuiltinOptions.BidirectionalSequenceLSTMOptions, options, [x])


def cifg_lstm(seed: int, features=4, hidden=6, proj=3) -> bytes:
    """CIFG with peepholes and a projection, cell_clip, proj_clip, time_major input."""
    rng, g = np.random.default_rng(seed), _Graph()
    x = g.tensor("x", (TIME, BATCH, features))
    weights = _lstm_inputs(g, rng, "", features, hidden, cifg=True, peephole=True, proj=proj)
    states = [g.tensor("h", (BATCH, proj), variable=True), g.tensor("c", (BATCH, hidden), variable=True)]
    y = g.tensor("cifg_lstm", (TIME, BATCH, proj))
    options = schema.UnidirectionalSequenceLSTMOptionsT()
    options.fusedActivationFunction, options.cellClip, options.projClip, options.timeMajor = (
        4,
        0.6,
        0.25,
        True,
    )
    inputs = [x, *weights, *states, -1, -1, -1, -1]
    return g.finish(44, inputs, [y], schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions, options, [x])


def lstm_step(seed: int, features=4, hidden=5) -> bytes:
    """The plain LSTM op (full kernel): one time step, input (batch, features)."""
    rng, g = np.random.default_rng(seed), _Graph()
    x = g.tensor("x", (BATCH, features))
    weights = _lstm_inputs(g, rng, "", features, hidden, peephole=True)
    states = [g.tensor("h", (BATCH, hidden), variable=True), g.tensor("c", (BATCH, hidden), variable=True)]
    y = g.tensor("lstm_step", (BATCH, hidden))
    options = schema.LSTMOptionsT()
    options.fusedActivationFunction = 4
    inputs = [x, *weights, *states, -1, -1, -1, -1]
    return g.finish(16, inputs, [y], schema.BuiltinOptions.LSTMOptions, options, [x])


def rnn(seed: int, *, bidirectional: bool, features=4, hidden=5, activation=4) -> bytes:
    rng, g = np.random.default_rng(seed), _Graph()
    x = g.tensor("x", (BATCH, TIME, features))
    inputs = [x]
    for side in ("fw_", "bw_") if bidirectional else ("",):
        inputs += [
            g.tensor(f"{side}weights", (hidden, features), _uniform(rng, hidden, features)),
            g.tensor(f"{side}recurrent_weights", (hidden, hidden), _uniform(rng, hidden, hidden)),
            g.tensor(f"{side}bias", (hidden,), _uniform(rng, hidden)),
            g.tensor(f"{side}hidden_state", (BATCH, hidden), variable=True),
        ]
    if bidirectional:
        y = g.tensor("bidirectional_sequence_rnn", (BATCH, TIME, 2 * hidden))
        options = schema.BidirectionalSequenceRNNOptionsT()
        options.timeMajor, options.fusedActivationFunction, options.mergeOutputs = False, activation, True
        return g.finish(
            46,
            [*inputs, -1, -1, -1],
            [y],
            schema.BuiltinOptions.BidirectionalSequenceRNNOptions,
            options,
            [x],
        )
    y = g.tensor("sequence_rnn", (BATCH, TIME, hidden))
    options = schema.SequenceRNNOptionsT()
    options.timeMajor, options.fusedActivationFunction = False, activation
    return g.finish(35, inputs, [y], schema.BuiltinOptions.SequenceRNNOptions, options, [x])


# -- the fixtures ------------------------------------------------------------------------------
def main() -> None:
    L = tf_keras.layers
    made_by = (
        f"tensorflow {tf.__version__} (tf_keras {tf_keras.__version__}): TFLiteConverter, tf.lite.Interpreter"
    )
    built_by = (
        f"tensorflow {tf.__version__}: lite schema_py_generated + flatbuffers {flatbuffers.__version__}, "
        "tf.lite.Interpreter"
    )
    manifest_path, extra_path = FIXTURES / "manifest.json", FIXTURES / "tflite_extra.json"
    manifest = json.loads(manifest_path.read_text())
    extra: dict[str, dict] = {}

    def save(name, content, x, y, description, seed, by, *, listed=True, expect=None, **more):
        (FIXTURES / f"{name}.tflite").write_bytes(content)
        np.savez(FIXTURES / f"{name}.io.npz", x=x, y=y, **more)
        entry = {
            "description": description,
            "file": f"{name}.tflite",
            "input_shape": list(x.shape),
            "io": f"{name}.io.npz",
            "made_by": by,
            "output_shape": list(y.shape),
            "seed": seed,
        }
        if expect:
            entry["expect"] = expect
        (manifest if listed else extra)[name] = entry
        print(f"{name}.tflite ({len(content)} bytes): {_ops(content)}")

    # Converted by TFLiteConverter from tf_keras models.
    seed = SEED
    model = _sequential(5, L.LSTM(6, name="lstm"))
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 5)
    sequence = _run(content, x, tensor="tfl.unidirectional_sequence_lstm")
    assert np.allclose(sequence[:, -1], _run(content, x)), "the op's last step is the model's output"
    save(
        "tflite_lstm",
        content,
        x,
        sequence,
        "tf_keras LSTM(6) (last step only) via TFLiteConverter: y is the fused op's whole sequence "
        "(y_last the model's output)",
        seed,
        made_by,
        y_last=_run(content, x),
    )
    seed += 1
    model = _sequential(5, L.LSTM(8, return_sequences=True), L.LSTM(5, return_sequences=True))
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 5)
    save(
        "tflite_stacked",
        content,
        x,
        _run(content, x),
        "tf_keras LSTM(8) then LSTM(5), return_sequences, via TFLiteConverter",
        seed,
        made_by,
    )
    seed += 1
    model = _sequential(
        4, L.Bidirectional(L.LSTM(4, return_sequences=True)), L.LSTM(3, return_sequences=True)
    )
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 4)
    save(
        "tflite_bidir",
        content,
        x,
        _run(content, x),
        "tf_keras Bidirectional(LSTM 4) then LSTM 3 via TFLiteConverter "
        "(REVERSE_V2, two fused ops, CONCATENATION)",
        seed,
        made_by,
    )
    seed += 1
    model = _sequential(4, L.LSTM(7, return_sequences=True))
    _randomize(model, seed)
    content, x = _convert(model, float16=True), _io_input(seed, 4)
    save(
        "tflite_float16",
        content,
        x,
        _run(content, x),
        "tf_keras LSTM(7) via TFLiteConverter with supported_types=[tf.float16] "
        "(FP16 constants behind DEQUANTIZE)",
        seed,
        made_by,
    )
    # Refusals: loops that are not fused, and int8 weights.
    seed += 1
    model = _sequential(4, L.GRU(5, return_sequences=True))
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 4)
    save(
        "tflite_gru_while",
        content,
        x,
        _run(content, x),
        "tf_keras GRU(5) via TFLiteConverter: a WHILE loop",
        seed,
        made_by,
        listed=False,
        expect=["UnsupportedFeatureError", "exported as a WHILE loop, not a fused op"],
    )
    seed += 1
    import keras

    model = _sequential(4, keras.layers.LSTM(5, return_sequences=True), keras=keras)
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 4)
    save(
        "tflite_keras3_lstm_while",
        content,
        x,
        _run(content, x),
        f"Keras {keras.__version__} LSTM(5) via TFLiteConverter: a WHILE loop, not the fused op",
        seed,
        f"keras {keras.__version__}, tensorflow {tf.__version__}",
        listed=False,
        expect=["UnsupportedFeatureError", "exported as a WHILE loop, not a fused op"],
    )
    seed += 1
    model = _sequential(4, L.LSTM(8, return_sequences=True))
    _randomize(model, seed)
    x = _io_input(seed, 4)
    content = _convert(
        model, int8=np.random.default_rng(seed).uniform(-1.5, 1.5, (8, BATCH, TIME, 4)).astype("float32")
    )
    save(
        "tflite_int8",
        content,
        x,
        _run(content, x),
        "tf_keras LSTM(8) via TFLiteConverter with Optimize.DEFAULT and a representative dataset "
        "(int8 weights)",
        seed,
        made_by,
        listed=False,
        expect=["UnsupportedFeatureError", "int8-quantized weights"],
    )
    # Ops built one by one, run by the interpreter.
    seed += 1
    content, x = rnn(seed, bidirectional=False), _io_input(seed, 4)
    save(
        "tflite_op_rnn",
        content,
        x,
        _run(content, x),
        "UNIDIRECTIONAL_SEQUENCE_RNN, TANH, built with the schema classes",
        seed,
        built_by,
    )
    seed += 1
    content, x = bidirectional_lstm(seed), _io_input(seed, 4)
    save(
        "tflite_op_bidir_lstm",
        content,
        x,
        _time_major_run(content, x),
        "BIDIRECTIONAL_SEQUENCE_LSTM, merge_outputs, time_major (x and y stored batch-major), built with the "
        "schema classes",
        seed,
        built_by,
    )
    seed += 1
    content, x = rnn(seed, bidirectional=True, activation=1), _io_input(seed, 4)
    save(
        "tflite_op_bidir_rnn_relu",
        content,
        x,
        _run(content, x),
        "BIDIRECTIONAL_SEQUENCE_RNN, RELU, merge_outputs, built with the schema classes",
        seed,
        built_by,
        listed=False,
    )
    seed += 1
    content, x = cifg_lstm(seed), _io_input(seed, 4)
    save(
        "tflite_op_cifg",
        content,
        x,
        _time_major_run(content, x),
        "UNIDIRECTIONAL_SEQUENCE_LSTM: CIFG, peepholes, projection 3, cell_clip 0.6, proj_clip 0.25, "
        "time_major "
        "(x and y stored batch-major), built with the schema classes",
        seed,
        built_by,
        listed=False,
    )
    seed += 1
    content, x = lstm_step(seed), _io_input(seed, 4, time=1)
    y = _run(content, np.ascontiguousarray(x[:, 0]))[:, None]
    save(
        "tflite_op_lstm_step",
        content,
        x,
        y,
        "the plain LSTM op (full kernel, peepholes): one time step from zero state, "
        "built with the schema classes",
        seed,
        built_by,
        listed=False,
    )
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    extra_path.write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
