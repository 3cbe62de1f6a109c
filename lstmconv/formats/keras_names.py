"""Keras conventions shared by live Keras objects and Keras files, without importing Keras.

Kernels are (in, G·H); gates ``i f c o`` (LSTM) and ``z r h`` (GRU). ``hard_sigmoid`` changed
meaning: Keras 2 (and tf_keras) computes ``clip(0.2·x + 0.5)``, Keras 3 ``clip(x/6 + 0.5)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UnsupportedFeatureError
from ..ir import Activation, Kind, Layer
from . import _common

GATE_ORDER: Mapping[Kind, tuple[str, ...]] = {
    Kind.LSTM: ("i", "f", "g", "o"),
    Kind.GRU: ("z", "r", "n"),
    Kind.RNN: ("h",),
}
MERGE_MODES = ("concat", "sum", "mul", "ave")
_HARD_SIGMOID = {
    2: Activation("hard_sigmoid", 0.2, 0.5),
    3: Activation("hard_sigmoid", 1.0 / 6.0, 0.5),
}
_PLAIN = {
    "sigmoid": Activation("sigmoid"),
    "tanh": Activation("tanh"),
    "relu": Activation("relu"),
    "softsign": Activation("softsign"),
    "softplus": Activation("softplus"),
    "linear": Activation("affine", 1.0, 0.0),
    "elu": Activation("elu", 1.0),
}
#: Keras 3's leaky_relu defaults to negative_slope 0.2 (Keras 2 had no such activation name).
_KERAS3_ONLY = {"leaky_relu": Activation("leaky_relu", 0.2)}


def _name_of(config_value: Any) -> str:
    if isinstance(config_value, str):
        return config_value
    if isinstance(config_value, Mapping):  # serialized form {"class_name": ..., "config": ...}
        inner = config_value.get("config")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, Mapping) and isinstance(inner.get("name"), str):
            return inner["name"]
        return str(config_value.get("class_name", config_value))
    return str(config_value)


def activation_from_keras(config_value: Any, *, keras_major: int) -> Activation:
    """The IR activation for a Keras activation name, read with that Keras version's meaning."""
    name = _name_of(config_value)
    if name == "hard_sigmoid":
        return _HARD_SIGMOID[3 if keras_major >= 3 else 2]
    if name in _PLAIN:
        return _PLAIN[name]
    if keras_major >= 3 and name in _KERAS3_ONLY:
        return _KERAS3_ONLY[name]
    raise UnsupportedFeatureError(
        f"Keras activation {name!r} has no equivalent in the recurrent operators",
        hint="lstmconv knows sigmoid, tanh, relu, hard_sigmoid, linear, elu, softsign, softplus",
    )


def activation_to_keras(activation: Activation) -> str:
    """The Keras 3 name computing ``activation``, or UnsupportedFeatureError."""
    for name, known in {**_PLAIN, **_KERAS3_ONLY, "hard_sigmoid": _HARD_SIGMOID[3]}.items():
        if _common.same_activation(activation, known):
            return name
    raise UnsupportedFeatureError(
        f"Keras 3 has no activation computing {activation}",
        hint="Keras 3's hard_sigmoid is x/6+0.5 (Keras 2's 0.2x+0.5 is not); ONNX keeps any activation",
    )


def check(layer: Layer) -> None:
    """Raise for what Keras 3's LSTM/GRU/SimpleRNN cannot express."""
    _common.require_plain(
        layer,
        "Keras",
        allowed_activations=[layer.activations],
        reset_before=True,
        projection=False,
        reverse_aligned=False,
        reversed_output=True,
    )
    try:
        for activation in layer.activations:
            activation_to_keras(activation)
    except UnsupportedFeatureError as error:
        raise error.within(f'layer "{layer.name}"') from None
    if layer.kind is Kind.LSTM and not _common.same_activation(layer.activations[1], layer.activations[2]):
        raise _common.unsupported(
            layer,
            f"different cell and output activations ({layer.activations[1]}, {layer.activations[2]})",
            "Keras",
            "Keras LSTM uses one `activation` for both; ONNX keeps them apart",
        )
