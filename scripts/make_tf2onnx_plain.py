"""A Keras ``Embedding → LSTM → Dense(softmax)`` exported by the real tf2onnx, for the ONNX
reader of plain layers (``tests/test_onnx_plain.py``): ``fixtures/tf2onnx/plain.onnx``, Keras's
own outputs on stored ids and its weights in ``plain.io.npz``. tf2onnx writes the Embedding as
a Gather behind its wrap of negative ids, the last step as a Slice, the Dense as MatMul + Add +
Softmax. Run as ``scripts/make_tf2onnx_cases.py`` says (tf2onnx on the path, no dependencies)."""

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


def main() -> None:
    rng = np.random.default_rng(SEED)
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(30, 6, name="emb")(ids)
    x = keras.layers.LSTM(5, name="lstm")(x)
    y = keras.layers.Dense(4, activation="softmax", name="fc")(x)
    model = keras.Model(ids, y)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in layer.get_weights()])
    function = tf.function(
        lambda t: model(t), input_signature=[tf.TensorSpec((None, None), tf.int32, name="ids")]
    )
    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
    FOLDER.mkdir(parents=True, exist_ok=True)
    (FOLDER / "plain.onnx").write_bytes(proto.SerializeToString())
    x_ids = rng.integers(0, 30, (3, 6)).astype("int32")
    np.savez(
        FOLDER / "plain.io.npz",
        x=x_ids,
        y=np.asarray(model(x_ids)),
        embedding=model.get_layer("emb").get_weights()[0],
        kernel=model.get_layer("fc").get_weights()[0],
        bias=model.get_layer("fc").get_weights()[1],
        made_by=f"keras {keras.__version__}, tensorflow {tf.__version__}, tf2onnx {tf2onnx.__version__}",
    )
    print(sorted({node.op_type for node in proto.graph.node}))


if __name__ == "__main__":
    main()
