"""Regenerate the committed fixtures: small real model files made by the real frameworks.

Each fixture is a model file plus ``<name>.io.npz`` holding an input ``x`` (batch, time,
features) and ``y``, the framework's own output for it; ``manifest.json`` records the versions
and seeds. Run with the project's .venv: ``.venv/bin/python scripts/make_fixtures.py``.
tf2onnx is optional (it needs its own environment): with ``--tf2onnx PYTHON`` that interpreter
converts the Keras fixture ``tf2onnx_lstm`` is made from.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEED = 20261124
INIT = 0.5


def _weights(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-INIT, INIT, shape).astype("float32") for shape in shapes]


def _input(features: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (3, 7, features)).astype("float32")


def _randomize_keras(model: Any, seed: int) -> None:
    for index, layer in enumerate(model.layers):
        shapes = [w.shape for w in layer.get_weights()]
        if shapes:
            layer.set_weights(_weights(shapes, seed + index))


def keras3_stacked_bidir(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    import keras

    inputs = keras.Input((None, 6), name="features")
    x = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True), name="encoder")(inputs)
    x = keras.layers.LSTM(5, return_sequences=True, name="decoder")(x)
    model = keras.Model(inputs, x, name="stacked_bidir")
    _randomize_keras(model, seed)
    model.save(path)
    x_in = _input(6, seed)
    return x_in, np.asarray(model(x_in)), f"keras {keras.__version__}"


def keras3_gru_rnn(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    import keras

    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.GRU(6, return_sequences=True, reset_after=False, name="gru_reset_before"),
            keras.layers.Bidirectional(
                keras.layers.GRU(5, return_sequences=True), merge_mode="ave", name="bigru"
            ),
            keras.layers.SimpleRNN(3, activation="relu", return_sequences=True, name="rnn_relu"),
        ],
        name="gru_rnn",
    )
    _randomize_keras(model, seed)
    model.save(path)
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"keras {keras.__version__}"


def _tf_keras():
    import tf_keras

    return tf_keras


def tf_keras_hard_sigmoid(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    tf_keras = _tf_keras()
    model = tf_keras.Sequential(
        [
            tf_keras.layers.InputLayer((None, 5)),
            tf_keras.layers.LSTM(
                6, recurrent_activation="hard_sigmoid", return_sequences=True, name="lstm_hs"
            ),
            tf_keras.layers.Bidirectional(
                tf_keras.layers.LSTM(4, return_sequences=True), merge_mode="sum", name="bi_lstm"
            ),
        ]
    )
    _randomize_keras(model, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    x_in = _input(5, seed)
    return x_in, model(x_in).numpy(), f"tf_keras {tf_keras.__version__}"


def tf_keras_weights_only(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    tf_keras = _tf_keras()
    model = tf_keras.Sequential(
        [
            tf_keras.layers.InputLayer((None, 3)),
            tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(4, return_sequences=True)),
            tf_keras.layers.GRU(5, return_sequences=True),
        ]
    )
    _randomize_keras(model, seed)
    model.save_weights(path)
    path.with_suffix(".json").write_text(model.to_json())  # the config, for --config
    x_in = _input(3, seed)
    return x_in, model(x_in).numpy(), f"tf_keras {tf_keras.__version__}"


def _torch_randomized(module: Any, seed: int) -> Any:
    import torch

    with torch.no_grad():
        for parameter, value in zip(
            module.parameters(), _weights([tuple(p.shape) for p in module.parameters()], seed)
        ):
            parameter.copy_(torch.from_numpy(value))
    return module.eval()


def torch_checkpoint(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True)

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = Encoder()
            self.head = torch.nn.Linear(12, 4)

    model = _torch_randomized(Tagger(), seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    checkpoint = {
        "epoch": 3,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": 0.25,
    }
    torch.save(checkpoint, path)
    x_in = _input(5, seed)
    with torch.no_grad():
        y = model.encoder.lstm(torch.from_numpy(x_in))[0].numpy()
    return x_in, y, f"torch {torch.__version__}"


def _export(module: Any, x_in: np.ndarray, path: Path) -> None:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.from_numpy(x_in),),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}},
        )
    path.write_bytes(buffer.getvalue())


def torch_export_lstm(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    import torch

    module = _torch_randomized(torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True), seed)
    x_in = _input(4, seed)
    _export(module, x_in, path)
    with torch.no_grad():
        y = module(torch.from_numpy(x_in))[0].numpy()
    return x_in, y, f"torch {torch.__version__} torch.onnx.export(dynamo=False)"


def torch_export_gru(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    import torch

    module = _torch_randomized(torch.nn.GRU(4, 5, num_layers=2, batch_first=True), seed)
    x_in = _input(4, seed)
    _export(module, x_in, path)
    with torch.no_grad():
        y = module(torch.from_numpy(x_in))[0].numpy()
    return x_in, y, f"torch {torch.__version__} torch.onnx.export(dynamo=False)"


def torch_safetensors(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    import safetensors
    import torch
    from safetensors.torch import save_file

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(3, 5, bidirectional=True, batch_first=True)

    model = _torch_randomized(Tagger(), seed)
    save_file(model.state_dict(), str(path))
    x_in = _input(3, seed)
    with torch.no_grad():
        y = model.gru(torch.from_numpy(x_in))[0].numpy()
    return x_in, y, f"torch {torch.__version__}, safetensors {safetensors.__version__} save_file"


def lstmconv_npz(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """lstmconv's own IR file, written by lstmconv from a torch module; y is torch's."""
    import torch

    import lstmconv

    module = _torch_randomized(torch.nn.LSTM(4, 3, batch_first=True), seed)
    lstmconv.write(module, path, overwrite=True)
    x_in = _input(4, seed)
    with torch.no_grad():
        y = module(torch.from_numpy(x_in))[0].numpy()
    return x_in, y, f"lstmconv {lstmconv.__version__} from torch {torch.__version__} nn.LSTM"


MAKERS: dict[str, tuple[str, Callable[[Path, int], tuple[np.ndarray, np.ndarray, str]], str]] = {
    "keras3_stacked_bidir": (".keras", keras3_stacked_bidir, "Keras 3: Bidirectional(LSTM 8) then LSTM 5"),
    "keras3_gru_rnn": (
        ".keras",
        keras3_gru_rnn,
        "Keras 3: GRU reset_after=False, Bidirectional(GRU) ave, SimpleRNN relu",
    ),
    "tf_keras_hard_sigmoid": (
        ".h5",
        tf_keras_hard_sigmoid,
        "tf_keras legacy .h5: LSTM hard_sigmoid, Bidirectional(LSTM) sum",
    ),
    "tf_keras_weights_only": (
        ".h5",
        tf_keras_weights_only,
        "tf_keras save_weights .h5 (no config): Bidirectional(LSTM), GRU",
    ),
    "torch_checkpoint": (
        ".pt",
        torch_checkpoint,
        "training checkpoint: model_state_dict with encoder.lstm.* (2-layer bidir) and a Linear head",
    ),
    "torch_export_lstm": (".onnx", torch_export_lstm, "torch.onnx.export of a 2-layer bidirectional nn.LSTM"),
    "torch_export_gru": (".onnx", torch_export_gru, "torch.onnx.export of a 2-layer nn.GRU"),
    "torch_safetensors": (
        ".safetensors",
        torch_safetensors,
        "safetensors.torch.save_file of a module's state_dict: gru.* (bidirectional nn.GRU)",
    ),
    "lstmconv_npz": (".npz", lstmconv_npz, "lstmconv's IR .npz of an nn.LSTM (written by lstmconv)"),
}


def make(names: list[str]) -> None:
    FIXTURES.mkdir(exist_ok=True)
    manifest_path = FIXTURES / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for offset, name in enumerate(MAKERS):
        if names and name not in names:
            continue
        ending, maker, description = MAKERS[name]
        seed = SEED + 100 * offset
        path = FIXTURES / f"{name}{ending}"
        x_in, y, made_by = maker(path, seed)
        np.savez(FIXTURES / f"{name}.io.npz", x=x_in, y=y)
        manifest[name] = {
            "file": path.name,
            "io": f"{name}.io.npz",
            "description": description,
            "made_by": made_by,
            "seed": seed,
            "input_shape": list(x_in.shape),
            "output_shape": list(y.shape),
        }
        print(f"{path.name}: {description} -> y {y.shape}")
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"fixtures to make (default all): {', '.join(MAKERS)}")
    parser.add_argument("--tf2onnx", metavar="PYTHON", help="an interpreter with tf2onnx and tensorflow")
    args = parser.parse_args()
    make(args.names)
    if args.tf2onnx:
        subprocess.run([args.tf2onnx, str(Path(__file__).with_name("make_tf2onnx_fixture.py"))], check=True)


if __name__ == "__main__":
    sys.exit(main())
