"""Fixtures of model files as they are found (issue 14): Keras 2.0-2.2 ``.h5`` layouts, CuDNN
layers, LSTM subclasses, PyTorch cells and TorchScript archives.

No current tool writes Keras 2.0-2.2's layouts, so those files are built with h5py to the
documented layout (keras-team/keras tag 2.2.4 ``keras/engine/saving.py``
``save_weights_to_hdf5_group``/``_serialize_model``; ``../shared/reference/layouts.md`` §3.2-3.3),
and their outputs computed by tf_keras: the same weights put into a tf_keras model
(``set_weights``; CuDNN weights through tf_keras's own loader conversion,
``preprocess_weights_for_loading``) and run. Everything else is written by the real tool.
Run with the project's .venv: ``.venv/bin/python scripts/make_found_fixtures.py [names]``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEED = 20261414
INIT = 0.5
LAYOUT_SOURCE = (
    "h5py {h5py} to Keras {version}'s layout (keras-team/keras tag 2.2.4 keras/engine/saving.py "
    "save_weights_to_hdf5_group; layouts.md 3.2-3.3); outputs by tf_keras {tf_keras}"
)


def _weights(shapes: list[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-INIT, INIT, shape).astype("float32") for shape in shapes]


def _input(features: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (3, 7, features)).astype("float32")


def _made_by(version: str) -> str:
    import h5py
    import tf_keras

    return LAYOUT_SOURCE.format(h5py=h5py.__version__, version=version, tf_keras=tf_keras.__version__)


def _rnn_config(cls: str, name: str, units: int, **options: Any) -> dict[str, Any]:
    """A Keras 2.x get_config() of a recurrent layer (the keys Keras 2.2.4 writes)."""
    config: dict[str, Any] = {
        "name": name,
        "trainable": True,
        "return_sequences": True,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "units": units,
        "kernel_initializer": {"class_name": "VarianceScaling", "config": {}},
        "recurrent_initializer": {"class_name": "Orthogonal", "config": {}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None,
        "recurrent_regularizer": None,
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "recurrent_constraint": None,
        "bias_constraint": None,
    }
    if not cls.startswith("CuDNN"):
        config.update(
            activation="tanh",
            recurrent_activation="hard_sigmoid",
            use_bias=True,
            dropout=0.0,
            recurrent_dropout=0.0,
            implementation=1,
            unroll=False,
        )
    if cls in ("LSTM", "CuDNNLSTM"):
        config["unit_forget_bias"] = True
    config.update(options)
    return {"class_name": cls, "config": config}


def _write_h5(
    path: Path,
    layers: list[tuple[str, list[tuple[str, np.ndarray]]]],
    version: str,
    config: Any = None,
) -> None:
    """A Keras 2.x .h5: ``save_weights`` (config None: layer groups at the root) or
    ``model.save`` (``model_config`` at the root, weights under ``model_weights``)."""
    import h5py

    with h5py.File(path, "w") as handle:
        if config is not None:
            handle.attrs["keras_version"] = version.encode()
            handle.attrs["backend"] = b"tensorflow"
            handle.attrs["model_config"] = json.dumps(config).encode()
            group = handle.create_group("model_weights")
        else:
            group = handle
        group.attrs["layer_names"] = [name.encode() for name, _ in layers]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = version.encode()
        for name, weights in layers:
            layer = group.create_group(name)
            layer.attrs["weight_names"] = [weight.encode() for weight, _ in weights]
            for weight, value in weights:
                layer.create_dataset(weight, data=value)


def _shapes(kind: str, inputs: int, units: int, cudnn: bool = False, reset_after: bool = False) -> list:
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    bias: tuple[int, ...] = (
        (2 * gates * units,) if cudnn else ((2, gates * units) if reset_after else (gates * units,))
    )
    return [(inputs, gates * units), (units, gates * units), bias]


def _named(layer: str, weights: list[np.ndarray], inner: str | None = None) -> list[tuple[str, np.ndarray]]:
    scope = f"{layer}/{inner}" if inner else layer
    return [
        (f"{scope}/{field}:0", value) for field, value in zip(("kernel", "recurrent_kernel", "bias"), weights)
    ]


def keras22_weights_flat(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Keras 2.2 ``save_weights``: flat names ``lstm_1/kernel:0``, no config; Keras 2.2's
    defaults (``recurrent_activation='hard_sigmoid'``, reset-before GRU)."""
    import tf_keras

    lstm, gru = _weights(_shapes("lstm", 4, 5), seed), _weights(_shapes("gru", 5, 3), seed + 1)
    _write_h5(path, [("lstm_1", _named("lstm_1", lstm)), ("gru_1", _named("gru_1", gru))], "2.2.4")
    model = tf_keras.Sequential(
        [
            tf_keras.layers.InputLayer((None, 4)),
            tf_keras.layers.LSTM(5, recurrent_activation="hard_sigmoid", return_sequences=True),
            tf_keras.layers.GRU(
                3, recurrent_activation="hard_sigmoid", reset_after=False, return_sequences=True
            ),
        ]
    )
    model.set_weights([*lstm, *gru])
    x_in = _input(4, seed)
    return x_in, model(x_in).numpy(), _made_by("2.2.4")


def keras21_sequential_list(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Keras 2.1 ``model.save``: the Sequential config a *list* of layers; flat names."""
    import tf_keras

    lstm = _weights(_shapes("lstm", 4, 5), seed)
    forward, backward = _weights(_shapes("lstm", 5, 4), seed + 1), _weights(_shapes("lstm", 5, 4), seed + 2)
    first = _rnn_config("LSTM", "lstm_1", 5, recurrent_activation="sigmoid")
    first["config"]["batch_input_shape"] = [None, None, 4]
    first["config"]["dtype"] = "float32"
    config = {
        "class_name": "Sequential",
        "config": [
            first,
            {
                "class_name": "Bidirectional",
                "config": {
                    "name": "bidirectional_1",
                    "trainable": True,
                    "layer": _rnn_config("LSTM", "lstm_2", 4, recurrent_activation="sigmoid"),
                    "merge_mode": "concat",
                },
            },
        ],
    }
    weights = [
        ("lstm_1", _named("lstm_1", lstm)),
        (
            "bidirectional_1",
            _named("bidirectional_1", forward, "forward_lstm_2")
            + _named("bidirectional_1", backward, "backward_lstm_2"),
        ),
    ]
    _write_h5(path, weights, "2.1.6", config)
    model = tf_keras.Sequential(
        [
            tf_keras.layers.InputLayer((None, 4)),
            tf_keras.layers.LSTM(5, return_sequences=True),
            tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(4, return_sequences=True)),
        ]
    )
    model.set_weights([*lstm, *forward, *backward])
    x_in = _input(4, seed)
    return x_in, model(x_in).numpy(), _made_by("2.1.6")


def _cudnn_model(path: Path, seed: int, with_config: bool) -> tuple[np.ndarray, np.ndarray, str]:
    import tf_keras
    from tf_keras.src.saving.legacy.hdf5_format import preprocess_weights_for_loading

    lstm = _weights(_shapes("lstm", 4, 5, cudnn=True), seed)
    gru = _weights(_shapes("gru", 5, 3, cudnn=True), seed + 1)
    first = _rnn_config("CuDNNLSTM", "cu_dnn_lstm_1", 5)
    first["config"]["batch_input_shape"] = [None, None, 4]
    config = {
        "class_name": "Sequential",
        "config": {"name": "sequential_1", "layers": [first, _rnn_config("CuDNNGRU", "cu_dnn_gru_1", 3)]},
    }
    _write_h5(
        path,
        [("cu_dnn_lstm_1", _named("cu_dnn_lstm_1", lstm)), ("cu_dnn_gru_1", _named("cu_dnn_gru_1", gru))],
        "2.2.4",
        config if with_config else None,
    )
    model = tf_keras.Sequential(
        [
            tf_keras.layers.InputLayer((None, 4)),
            tf_keras.layers.LSTM(5, return_sequences=True),
            tf_keras.layers.GRU(3, reset_after=True, recurrent_activation="sigmoid", return_sequences=True),
        ]
    )
    for layer, weights in zip(model.layers, (lstm, gru)):  # tf_keras's own CuDNN conversion
        layer.set_weights(preprocess_weights_for_loading(layer, weights, "2.2.4", "tensorflow"))
    x_in = _input(4, seed)
    return x_in, model(x_in).numpy(), _made_by("2.2.4") + " (CuDNN weights converted by its loader)"


def keras2_cudnn(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Keras 2.2 ``model.save`` of CuDNNLSTM 5 then CuDNNGRU 3."""
    return _cudnn_model(path, seed, True)


def keras2_cudnn_weights(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Keras 2.2 ``save_weights`` of CuDNNLSTM 5 then CuDNNGRU 3 (no config: told by the bias)."""
    return _cudnn_model(path, seed, False)


def tf_keras_lstm_subclass(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """tf_keras ``model.save('x.h5')`` of a subclass of LSTM saved under its own class name."""
    import tf_keras

    @tf_keras.saving.register_keras_serializable(package="found")
    class MyLSTM(tf_keras.layers.LSTM):
        pass

    model = tf_keras.Sequential(
        [tf_keras.layers.InputLayer((None, 4)), MyLSTM(5, return_sequences=True, name="my_lstm")]
    )
    model.set_weights(_weights([tuple(w.shape) for w in model.get_weights()], seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    x_in = _input(4, seed)
    return x_in, model(x_in).numpy(), f"tf_keras {tf_keras.__version__}"


def keras3_lstm_subclass(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Keras 3 ``.keras`` of a subclass of LSTM saved under its own (registered) class name."""
    import keras

    @keras.saving.register_keras_serializable(package="found")
    class MyLSTM(keras.layers.LSTM):
        pass

    model = keras.Sequential([keras.Input((None, 4)), MyLSTM(5, return_sequences=True, name="my_lstm")])
    model.set_weights(_weights([tuple(w.shape) for w in model.get_weights()], seed))
    model.save(path)
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"keras {keras.__version__}"


def _torch_randomized(module: Any, seed: int) -> Any:
    import torch

    with torch.no_grad():
        shapes = [tuple(p.shape) for p in module.parameters()]
        for parameter, value in zip(module.parameters(), _weights(shapes, seed)):
            parameter.copy_(torch.from_numpy(value))
    return module.eval()


def _stepped(cell: Any, x_in: np.ndarray) -> np.ndarray:
    """The cell stepped over time from a zero state, as a model that uses one does."""
    import torch

    with torch.no_grad():
        state, outputs = None, []
        for step in range(x_in.shape[1]):
            state = cell(torch.from_numpy(x_in[:, step]), state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs, 1).numpy()


def _cell_fixture(path: Path, seed: int, cls_name: str) -> tuple[np.ndarray, np.ndarray, str]:
    import torch
    from torch import nn

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = getattr(nn, cls_name)(4, 5)
            self.out = nn.Linear(5, 2)

    module = _torch_randomized(Decoder(), seed)
    state = {f"decoder.{key}": value for key, value in module.state_dict().items()}
    torch.save({"epoch": 3, "model_state_dict": state}, path)
    x_in = _input(4, seed)
    return (
        x_in,
        _stepped(module.cell, x_in),
        f"torch {torch.__version__} (the cell stepped over time from zero)",
    )


def torch_lstm_cell(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    return _cell_fixture(path, seed, "LSTMCell")


def torch_gru_cell(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    return _cell_fixture(path, seed, "GRUCell")


def torchscript_script(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``torch.jit.script`` of a module holding a 2-layer nn.LSTM, ``torch.jit.save``d; y from
    ``torch.jit.load`` of the saved archive."""
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(4, 5, num_layers=2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lstm(x)[0]

    torch.jit.save(torch.jit.script(_torch_randomized(Encoder(), seed)), str(path))
    x_in = _input(4, seed)
    with torch.no_grad():
        y = torch.jit.load(str(path))(torch.from_numpy(x_in)).numpy()
    return x_in, y, f"torch {torch.__version__} torch.jit.script + torch.jit.save; y by torch.jit.load"


def torchscript_trace(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``torch.jit.trace`` of a module with a bidirectional nn.GRU (and a head it does not
    use), saved as ``.pt``; y from ``torch.jit.load``."""
    import torch
    from torch import nn

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(4, 3, batch_first=True, bidirectional=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    x_in = _input(4, seed)
    module = _torch_randomized(Tagger(), seed)
    torch.jit.save(torch.jit.trace(module, torch.from_numpy(x_in)), str(path))
    with torch.no_grad():
        y = torch.jit.load(str(path))(torch.from_numpy(x_in)).numpy()
    return x_in, y, f"torch {torch.__version__} torch.jit.trace + torch.jit.save; y by torch.jit.load"


MAKERS: dict[str, tuple[str, Callable[[Path, int], tuple[np.ndarray, np.ndarray, str]], str]] = {
    "keras22_weights_flat": (
        ".h5",
        keras22_weights_flat,
        "Keras 2.2 save_weights .h5, flat names (lstm_1/kernel:0), no config: LSTM 5, GRU 3 "
        "(Keras 2.2 defaults)",
    ),
    "keras21_sequential_list": (
        ".h5",
        keras21_sequential_list,
        "Keras 2.1 model.save .h5: Sequential config a list; LSTM 5, Bidirectional(LSTM 4)",
    ),
    "keras2_cudnn": (".h5", keras2_cudnn, "Keras 2.2 model.save .h5: CuDNNLSTM 5, CuDNNGRU 3"),
    "keras2_cudnn_weights": (
        ".h5",
        keras2_cudnn_weights,
        "Keras 2.2 save_weights .h5 (no config): CuDNNLSTM 5, CuDNNGRU 3",
    ),
    "tf_keras_lstm_subclass": (
        ".h5",
        tf_keras_lstm_subclass,
        "tf_keras .h5: a subclass of LSTM (found>MyLSTM)",
    ),
    "keras3_lstm_subclass": (
        ".keras",
        keras3_lstm_subclass,
        "Keras 3 .keras: a subclass of LSTM (found>MyLSTM)",
    ),
    "torch_lstm_cell": (
        ".pt",
        torch_lstm_cell,
        "checkpoint of a module with an nn.LSTMCell (decoder.cell.*)",
    ),
    "torch_gru_cell": (".pt", torch_gru_cell, "checkpoint of a module with an nn.GRUCell (decoder.cell.*)"),
    "torchscript_script": (".jit", torchscript_script, "TorchScript (torch.jit.script) of a 2-layer nn.LSTM"),
    "torchscript_trace": (
        ".pt",
        torchscript_trace,
        "TorchScript (torch.jit.trace) of a bidirectional nn.GRU",
    ),
}


def make(names: list[str]) -> None:
    manifest_path = FIXTURES / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
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


if __name__ == "__main__":
    make(sys.argv[1:])
