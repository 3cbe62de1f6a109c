"""The tf2onnx fixture: a Keras LSTM model converted by tf2onnx (``from_function``).

tf2onnx needs its own environment (it pins protobuf and onnx differently from the project), so
scripts/make_fixtures.py runs this file with the interpreter given by ``--tf2onnx PYTHON``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
import tf2onnx

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NAME, SEED = "tf2onnx_keras_lstm", 20261124 + 9000


def main() -> None:
    rng = np.random.default_rng(SEED)
    inputs = keras.Input((None, 5), name="x")
    x = keras.layers.LSTM(6, return_sequences=True, name="lstm_a")(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), name="bi")(x)
    model = keras.Model(inputs, x)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    function = tf.function(
        lambda t: model(t), input_signature=[tf.TensorSpec((None, None, 5), tf.float32, name="x")]
    )
    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
    (FIXTURES / f"{NAME}.onnx").write_bytes(proto.SerializeToString())
    x_in = np.random.default_rng(SEED).uniform(-1.5, 1.5, (3, 7, 5)).astype("float32")
    np.savez(FIXTURES / f"{NAME}.io.npz", x=x_in, y=np.asarray(model(x_in)))
    manifest_path = FIXTURES / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[NAME] = {
        "file": f"{NAME}.onnx",
        "io": f"{NAME}.io.npz",
        "description": "tf2onnx from_function of a Keras 3 model: LSTM 6 then Bidirectional(LSTM 4)",
        "made_by": f"keras {keras.__version__}, tensorflow {tf.__version__}, tf2onnx {tf2onnx.__version__}",
        "seed": SEED,
        "input_shape": list(x_in.shape),
        "output_shape": list(np.asarray(model(x_in)).shape),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"{NAME}.onnx: {[n.op_type for n in proto.graph.node]}")


if __name__ == "__main__":
    main()
