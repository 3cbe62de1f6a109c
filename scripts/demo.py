"""The demo: a small stacked, bidirectional Keras LSTM (fixed seeds) converted to PyTorch and
ONNX and back, each conversion checked on the same random inputs against the source."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import lstmconv
from lstmconv.formats import keras as keras_format
from lstmconv.formats import onnx as onnx_format
from lstmconv.formats import torch as torch_format


def keras_model() -> keras.Model:
    keras.utils.set_random_seed(7)
    inputs = keras.Input((None, 8), name="features")
    x = keras.layers.Bidirectional(keras.layers.LSTM(16, return_sequences=True), name="encoder")(inputs)
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(12, return_sequences=True), merge_mode="sum", name="refiner"
    )(x)
    model = keras.Model(inputs, keras.layers.LSTM(6, return_sequences=True, name="decoder")(x))
    rng = np.random.default_rng(7)
    for layer in model.layers[1:]:
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    return model


def main() -> None:
    source = keras_model()
    model = lstmconv.read(source)
    x = np.random.default_rng(0).uniform(-2, 2, (4, 11, 8)).astype(np.float32)
    expected = keras_format.run(source, x)
    for layer in model:
        print(
            f"{layer.name:<8} {layer.kind.value} {layer.direction.value:<13} merge={layer.merge:<6} "
            f"in={layer.input_size:<3} hidden={layer.hidden_size:<3} params={layer.parameter_count}"
        )
    print()
    torch_module = lstmconv.to_torch(model)
    onnx_model = lstmconv.to_onnx(model)
    rows = [
        ("Keras → reference (NumPy)", lstmconv.reference.run(model, x)),
        ("Keras → PyTorch", torch_format.run(torch_module, x)),
        ("Keras → ONNX (onnxruntime)", onnx_format.run(onnx_model, x)),
        ("Keras → PyTorch → Keras", keras_format.run(lstmconv.to_keras(lstmconv.read(torch_module)), x)),
        ("Keras → ONNX → Keras", keras_format.run(lstmconv.to_keras(lstmconv.read(onnx_model)), x)),
        ("Keras → ONNX → PyTorch", torch_format.run(lstmconv.to_torch(lstmconv.read(onnx_model)), x)),
    ]
    print(f"{'conversion':<28} {'max |error| vs Keras':>22}")
    worst = 0.0
    for label, got in rows:
        error = float(np.abs(got - expected).max())
        worst = max(worst, error)
        print(f"{label:<28} {error:>22.3e}")
    print(f"\nall within 2e-5: {'yes' if worst <= 2e-5 else 'NO'}")
    raise SystemExit(0 if worst <= 2e-5 else 1)


if __name__ == "__main__":
    main()
