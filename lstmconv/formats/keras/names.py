"""Keras conventions shared by live Keras objects and Keras files, without importing Keras.

Kernels are (in, G·H); gates ``i f c o`` (LSTM) and ``z r h`` (GRU). ``hard_sigmoid`` changed
meaning: Keras 2 (and tf_keras) computes ``clip(0.2·x + 0.5)``, Keras 3 ``clip(x/6 + 0.5)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import steps
from ...errors import LstmconvError, UnsupportedFeatureError, WeightLayoutError
from ...inspection import Tensor
from ...ir import Activation, Cell, Direction, Kind, Layer, cell_from_stacked
from .. import _common

GATE_ORDER: Mapping[Kind, tuple[str, ...]] = {
    Kind.LSTM: ("i", "f", "g", "o"),
    Kind.GRU: ("z", "r", "n"),
    Kind.RNN: ("h",),
}
#: Keras names the LSTM candidate c and the GRU candidate h.
_KERAS_GATE_NAMES = {Kind.LSTM: ("i", "f", "c", "o"), Kind.GRU: ("z", "r", "h"), Kind.RNN: ("h",)}


@dataclasses.dataclass(frozen=True)
class KerasKind:
    """One recurrent layer kind as Keras names it: the layer class and its cell class."""

    kind: Kind
    layer: str
    cell: str


#: The one table of Keras's recurrent layer kinds, keyed by layer class name.
KINDS: Mapping[str, KerasKind] = {
    entry.layer: entry
    for entry in (
        KerasKind(Kind.LSTM, "LSTM", "LSTMCell"),
        KerasKind(Kind.GRU, "GRU", "GRUCell"),
        KerasKind(Kind.RNN, "SimpleRNN", "SimpleRNNCell"),
    )
}
#: The same entries keyed by cell class name, and by IR kind.
BY_CELL: Mapping[str, KerasKind] = {entry.cell: entry for entry in KINDS.values()}
BY_KIND: Mapping[Kind, KerasKind] = {entry.kind: entry for entry in KINDS.values()}
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


def layer_from_weights(
    kind: Kind,
    name: str,
    directions: Sequence[Sequence[np.ndarray]],
    config: Mapping[str, Any],
    *,
    keras_major: int,
    bidirectional: bool = False,
    merge: str = "concat",
    go_backwards: bool = False,
) -> Layer:
    """One IR layer from Keras weights ``[kernel, recurrent_kernel(, bias)]`` per direction
    and the (cell) config holding the activations and GRU variant."""
    try:
        reset_after = _reset_after(kind, config, directions[0])
        sides = ("forward", "backward") if bidirectional else ("reverse" if go_backwards else "forward",)
        cells = []
        for side, weights in zip(sides, directions):
            try:
                cells.append(_cell(kind, weights))
            except LstmconvError as error:
                raise error.within(side) from None
        return Layer(
            kind,
            tuple(cells),
            name=name,
            direction=Direction.BIDIRECTIONAL
            if bidirectional
            else (Direction.REVERSE if go_backwards else Direction.FORWARD),
            merge=merge if bidirectional else "concat",
            activations=_activations(kind, config, keras_major),
            reset_after=reset_after,
            reversed_output=go_backwards and not bidirectional,
        )
    except LstmconvError as error:
        raise error.within(f'layer "{name}"') from None


def _cell(kind: Kind, weights: Sequence[np.ndarray]) -> Cell:
    if len(weights) not in (2, 3):
        raise WeightLayoutError(f"expected kernel, recurrent_kernel and bias, found {len(weights)} weight(s)")
    kernel, recurrent = weights[0], weights[1]
    for tensor, array in (("kernel", kernel), ("recurrent_kernel", recurrent)):
        if array.ndim != 2:
            raise WeightLayoutError(
                f"expected a 2-D (in, G·H) tensor, found shape {array.shape}", where=(tensor,)
            )
    bias = weights[2] if len(weights) == 3 else None
    _check_shapes(kind, kernel, recurrent, bias)
    b_ih, b_hh = (bias, None) if bias is None or bias.ndim != 2 else steps.unstack_bias_rows(bias)
    try:
        return cell_from_stacked(GATE_ORDER[kind], kernel.T, recurrent.T, b_ih, b_hh)
    except LstmconvError as error:
        names = {"w_ih": "kernel", "w_hh": "recurrent_kernel", "b_ih": "bias", "b_hh": "bias"}
        error.where = tuple(names.get(part, part) for part in error.where)
        raise


def _check_shapes(kind: Kind, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray | None) -> None:
    """The recurrent kernel and the bias against the units the kernel's columns say (G·units),
    blaming the file's own tensor in Keras's names and saying where the units came from."""
    gates = len(GATE_ORDER[kind])
    columns = kernel.shape[1]
    if columns % gates:
        return  # the gate split says it does not divide, naming the kernel
    units = columns // gates
    source = f"from kernel {tuple(kernel.shape)}"
    if tuple(recurrent.shape) != (units, columns):
        raise WeightLayoutError(
            f"{tuple(recurrent.shape)}: expected ({units}, {columns}), "
            f"{gates} gates × units {units} ({source})",
            where=("recurrent_kernel",),
        )
    if bias is not None and (bias.ndim not in (1, 2) or bias.shape[-1] != columns):
        raise WeightLayoutError(
            f"{tuple(bias.shape)}: expected ({columns},), {gates} gates × units {units} ({source})",
            where=("bias",),
        )


def _reset_after(kind: Kind, config: Mapping[str, Any], weights: Sequence[np.ndarray]) -> bool:
    if kind is not Kind.GRU:
        return True
    bias = weights[2] if len(weights) == 3 else None
    from_shape = steps.reset_after_from_bias(bias)
    declared = config.get("reset_after")
    if declared is None:  # Keras <= 2.2 had no such option and computed reset-before
        return bool(from_shape)
    if bias is not None and bool(declared) != from_shape:
        raise WeightLayoutError(
            f"reset_after={declared} needs a bias of shape {'(2, 3H)' if declared else '(3H,)'}, "
            f"found {bias.shape}",
            where=("bias",),
        )
    return bool(declared)


def _activations(kind: Kind, config: Mapping[str, Any], keras_major: int) -> tuple[Activation, ...]:
    act = activation_from_keras(config.get("activation", "tanh"), keras_major=keras_major)
    if kind is Kind.RNN:
        return (act,)
    gate = activation_from_keras(config.get("recurrent_activation", "sigmoid"), keras_major=keras_major)
    return (gate, act, act) if kind is Kind.LSTM else (gate, act)


def layout(layer: Layer) -> list[Tensor]:
    """The tensors this format stores for ``layer``, for ``inspect``."""
    g, h, i = len(layer.gates), layer.hidden_size, layer.input_size
    order, tensors = "·".join(_KERAS_GATE_NAMES[layer.kind]), []
    sides = ("forward_layer/", "backward_layer/") if layer.direction is Direction.BIDIRECTIONAL else ("",)
    for side in sides:
        tensors += [
            Tensor(f"{side}cell/kernel", (i, g * h), order),
            Tensor(f"{side}cell/recurrent_kernel", (h, g * h), order),
        ]
        if layer.has_bias:
            two_biases = layer.kind is Kind.GRU and layer.reset_after
            tensors.append(Tensor(f"{side}cell/bias", (2, g * h) if two_biases else (g * h,), order))
    return tensors
