"""The TFLite fixtures: small models converted by TensorFlow's own TFLiteConverter, and single
recurrent ops built with TensorFlow's own schema classes, each run by TFLite's interpreter on a
stored random input (``*.io.npz``: ``x`` and ``y``, both (batch, time, features)).

- Converted from tf_keras 2 models (``TFLiteConverter.from_keras_model``): tf_keras's LSTM
  becomes the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (with ``cell_clip`` 10, which the converter
  sets); ``Bidirectional`` becomes two of them around ``REVERSE_V2`` and a ``CONCATENATION``.
  Keras 3's LSTM does not fuse (its loop becomes a ``WHILE``), nor do GRU and SimpleRNN of
  either Keras: those are the refusal fixtures, with the int8 one.
- Built op by op (scripts/tflite_ops.py: TensorFlow's schema classes and flatbuffers),
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
from tflite_ops import BATCH, TIME, bidirectional_lstm, lstm, lstm_step, rnn, time_major_run
from tflite_ops import run as _run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEED = 20261203
INIT = 0.5


def _io_input(seed: int, features: int, batch: int = BATCH, time: int = TIME) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (batch, time, features)).astype("float32")


def _randomize(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-INIT, INIT, w.shape).astype("float32") for w in layer.get_weights()])


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
        y_float=np.asarray(model(x)),  # the float model the quantizer started from
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
        time_major_run(content, x),
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
    content, x = lstm(seed), _io_input(seed, 4)
    save(
        "tflite_op_cifg",
        content,
        x,
        time_major_run(content, x),
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
    # More of the converter's forms (added later: their seeds follow the others').
    seed += 1
    model = _sequential(4, L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="ave"))
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 4)
    save(
        "tflite_bidir_ave",
        content,
        x,
        _run(content, x),
        "tf_keras Bidirectional(LSTM 4, merge_mode='ave') via TFLiteConverter (REVERSE_V2, ADD, MUL 0.5)",
        seed,
        made_by,
    )
    seed += 1
    model = _sequential(4, L.LSTM(5, return_sequences=True, go_backwards=True))
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 4)
    save(
        "tflite_go_backwards",
        content,
        x,
        _run(content, x),
        "tf_keras LSTM(5, go_backwards=True) via TFLiteConverter (REVERSE_V2 then the op: a reverse layer)",
        seed,
        made_by,
    )
    seed += 1
    model = _sequential(4, L.Bidirectional(L.LSTM(3)))
    _randomize(model, seed)
    content, x = _convert(model), _io_input(seed, 4)
    save(
        "tflite_bidir_last",
        content,
        x,
        _run(content, x),
        "tf_keras Bidirectional(LSTM 3) without return_sequences via TFLiteConverter: y is the model's "
        "(batch, 6) output, the forward op's last step and the backward op's last processed one",
        seed,
        made_by,
        listed=False,
    )
    seed += 1
    content, x = rnn(seed, bidirectional=False, external=True), _io_input(seed, 4)
    save(
        "tflite_op_rnn_external",
        content,
        x,
        _run(content, x),
        "UNIDIRECTIONAL_SEQUENCE_RNN with every buffer's data after the flatbuffer (Buffer.offset and "
        ".size, as for models past 2 GB), built with the schema classes",
        seed,
        built_by,
        listed=False,
    )
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    extra_path.write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
