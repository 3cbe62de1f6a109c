"""Keras models that lstmconv once misread, exported by the real tf2onnx (``from_function``):
a Bidirectional ``ave`` merge, ``go_backwards``, masking, a Bidirectional whose backward layer
differs, and a GRU with a ``relu`` recurrent activation. Each is saved with Keras's own outputs
on a stored input, under ``fixtures/tf2onnx/``, with ``cases.json`` saying what each holds and
what lstmconv must do with it (``tests/test_tf2onnx.py``).

tf2onnx pins its own protobuf and onnx; tf2onnx 1.17 runs with this project's when put on the
path without its dependencies:

    pip install --no-deps --target /tmp/tf2onnx_pkgs tf2onnx
    PYTHONPATH=/tmp/tf2onnx_pkgs .venv/bin/python scripts/make_tf2onnx_cases.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
import tf2onnx

FOLDER = Path(__file__).resolve().parent.parent / "fixtures" / "tf2onnx"
SEED = 20261203
MADE_BY = f"keras {keras.__version__}, tensorflow {tf.__version__}, tf2onnx {tf2onnx.__version__}"


def _bidir_ave(x):
    return keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True), merge_mode="ave", name="bi"
    )(x)


def _bidir_sum(x):
    return keras.layers.Bidirectional(
        keras.layers.GRU(4, return_sequences=True), merge_mode="sum", name="bi"
    )(x)


def _go_backwards(x):
    return keras.layers.LSTM(5, return_sequences=True, go_backwards=True, name="backwards")(x)


def _masking(x):
    x = keras.layers.Masking(mask_value=0.0, name="mask")(x)
    return keras.layers.LSTM(5, return_sequences=True, name="masked")(x)


def _backward_differs(x):
    return keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True),
        backward_layer=keras.layers.LSTM(4, return_sequences=True, activation="relu", go_backwards=True),
        name="bi",
    )(x)


def _gru_relu(x):
    return keras.layers.GRU(5, return_sequences=True, recurrent_activation="relu", name="gru_relu")(x)


#: name -> (build, what lstmconv must do: "match" Keras's outputs, or "refuse" saying "message").
#: tf2onnx 1.17 exports Keras 3's GRU, a masked LSTM and a relu-gated GRU as Loops.
CASES: dict[str, tuple[Callable, dict[str, str]]] = {
    "bidir_ave": (_bidir_ave, {"expect": "match"}),
    "bidir_sum": (_bidir_sum, {"expect": "refuse", "message": "exported as a Loop"}),
    "go_backwards": (_go_backwards, {"expect": "match"}),
    "masking": (_masking, {"expect": "refuse", "message": "exported as a Loop"}),
    "backward_differs": (
        _backward_differs,
        {"expect": "refuse", "message": "different activations per direction"},
    ),
    "gru_relu": (_gru_relu, {"expect": "refuse", "message": "exported as a Loop"}),
}


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    described = {}
    for index, (name, (build, expect)) in enumerate(CASES.items()):
        rng = np.random.default_rng(SEED + index)
        inputs = keras.Input((None, 3), name="x")
        model = keras.Model(inputs, build(inputs))
        for layer in model.layers:
            layer.set_weights(
                [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in layer.get_weights()]
            )
        function = tf.function(
            lambda t, m=model: m(t), input_signature=[tf.TensorSpec((None, None, 3), tf.float32, name="x")]
        )
        proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
        (FOLDER / f"{name}.onnx").write_bytes(proto.SerializeToString())
        x = rng.uniform(-1.0, 1.0, (3, 6, 3)).astype("float32")
        if name == "masking":
            x[1, 4:] = 0.0  # padded steps, which the mask skips
        y = np.asarray(model(x))
        np.savez(FOLDER / f"{name}.io.npz", x=x, y=y)
        described[name] = {
            **expect,
            "file": f"{name}.onnx",
            "io": f"{name}.io.npz",
            "ops": sorted({node.op_type for node in proto.graph.node}),
            "made_by": MADE_BY,
            "seed": SEED + index,
        }
        print(name, described[name]["ops"])
    (FOLDER / "cases.json").write_text(json.dumps(described, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
