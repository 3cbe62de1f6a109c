"""Keras models with plain layers exported by the real tf2onnx, for the ONNX reader of plain
layers (``tests/test_onnx_plain.py``), each with Keras's own outputs on stored ids and its
weights in ``<name>.io.npz``:

- ``plain.onnx``: ``Embedding → LSTM → Dense(softmax)``. tf2onnx writes the Embedding as a
  Gather behind its wrap of negative ids, the last step as a Slice, the Dense as MatMul + Add +
  Softmax;
- ``plain_norm.onnx``: ``Embedding → LSTM (sequences) → LayerNormalization(epsilon=1e-3) →
  Dense(relu)``; tf2onnx writes the normalization as elementary ops (GlobalAveragePool, Sub,
  Mul, Sqrt, Reciprocal...);
- ``plain_conv.onnx``: ``Conv1D(5, 3, strides=2, relu) → LSTM (sequences) → Dense`` on float
  steps; tf2onnx writes the Conv1D as a 2-D Conv with a one-row kernel between an Unsqueeze and
  a Squeeze, its bias added after.

Run as ``scripts/make_tf2onnx_cases.py`` says (tf2onnx on the path, no dependencies)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
import tf2onnx

FOLDER = Path(__file__).resolve().parent.parent / "fixtures" / "tf2onnx"
SEED = 20261216


def _plain(ids):
    x = keras.layers.Embedding(30, 6, name="emb")(ids)
    x = keras.layers.LSTM(5, name="lstm")(x)
    return keras.layers.Dense(4, activation="softmax", name="fc")(x)


def _plain_norm(ids):
    x = keras.layers.Embedding(30, 6, name="emb")(ids)
    x = keras.layers.LSTM(5, return_sequences=True, name="lstm")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-3, name="norm")(x)
    return keras.layers.Dense(4, activation="relu", name="fc")(x)


def _plain_conv(x):
    x = keras.layers.Conv1D(5, 3, strides=2, activation="relu", name="conv")(x)
    x = keras.layers.LSTM(4, return_sequences=True, name="lstm")(x)
    return keras.layers.Dense(3, name="fc")(x)


CASES = (("plain", _plain, "ids"), ("plain_norm", _plain_norm, "ids"), ("plain_conv", _plain_conv, "steps"))


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for offset, (name, build, feed) in enumerate(CASES):
        rng = np.random.default_rng(SEED + offset)
        shape, dtype = ((None,), "int32") if feed == "ids" else ((None, 4), "float32")
        inputs = keras.Input(shape, dtype=dtype, name="x")
        model = keras.Model(inputs, build(inputs))
        for layer in model.layers:
            layer.set_weights(
                [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in layer.get_weights()]
            )
        spec = tf.TensorSpec((None, *shape), dtype, name="x")
        function = tf.function(lambda t, m=model: m(t), input_signature=[spec])
        proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
        (FOLDER / f"{name}.onnx").write_bytes(proto.SerializeToString())
        if feed == "ids":
            x_ids = rng.integers(0, 30, (3, 6)).astype("int32")
        else:
            x_ids = rng.uniform(-1, 1, (3, 9, 4)).astype("float32")
        weights = {
            f"{layer.name}.{index}": value
            for layer in model.layers
            for index, value in enumerate(layer.get_weights())
        }
        np.savez(
            FOLDER / f"{name}.io.npz",
            x=x_ids,
            y=np.asarray(model(x_ids)),
            made_by=f"keras {keras.__version__}, tensorflow {tf.__version__}, tf2onnx {tf2onnx.__version__}",
            **weights,
        )
        print(name, sorted({node.op_type for node in proto.graph.node}))


if __name__ == "__main__":
    main()
