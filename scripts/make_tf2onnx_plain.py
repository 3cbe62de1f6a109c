"""Keras models with plain layers exported by the real tf2onnx, for the ONNX reader of plain
layers (``tests/test_onnx_plain.py``), each with Keras's own outputs on stored ids and its
weights in ``<name>.io.npz``:

- ``plain.onnx``: ``Embedding → LSTM → Dense(softmax)``. tf2onnx writes the Embedding as a
  Gather behind its wrap of negative ids, the last step as a Slice, the Dense as MatMul + Add +
  Softmax;
- ``plain_norm.onnx``: ``Embedding → LSTM (sequences) → LayerNormalization(epsilon=1e-3) →
  Dense(relu)``; tf2onnx writes the normalization as elementary ops (GlobalAveragePool, Sub,
  Mul, Sqrt, Reciprocal...).

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


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for offset, (name, build) in enumerate((("plain", _plain), ("plain_norm", _plain_norm))):
        rng = np.random.default_rng(SEED + offset)
        ids = keras.Input((None,), dtype="int32", name="ids")
        model = keras.Model(ids, build(ids))
        for layer in model.layers:
            layer.set_weights(
                [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in layer.get_weights()]
            )
        function = tf.function(
            lambda t, m=model: m(t), input_signature=[tf.TensorSpec((None, None), tf.int32, name="ids")]
        )
        proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
        (FOLDER / f"{name}.onnx").write_bytes(proto.SerializeToString())
        x_ids = rng.integers(0, 30, (3, 6)).astype("int32")
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
