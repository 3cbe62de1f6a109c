"""Keras conventions shared by live Keras objects and Keras files, without importing Keras.

Kernels are (in, G·H); gates ``i f c o`` (LSTM) and ``z r h`` (GRU). ``hard_sigmoid`` changed
meaning: Keras 2 (and tf_keras) computes ``clip(0.2·x + 0.5)``, Keras 3 ``clip(x/6 + 0.5)``.
"""

from __future__ import annotations

import dataclasses
import logging
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

_log = logging.getLogger("lstmconv.formats.keras")


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


def activation_name(config_value: Any) -> str:
    """A config's activation as its Keras name (a string, or the serialized form's name)."""
    return _name_of(config_value)


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
                f"expected a 2-D (in, G·H) tensor, found shape {_common.dims(array.shape)}", where=(tensor,)
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
    source = f"from kernel {_common.dims(kernel.shape)}"
    if tuple(recurrent.shape) != (units, columns):
        raise WeightLayoutError(
            f"{_common.dims(recurrent.shape)}: expected ({units}, {columns}), "
            f"{gates} gates × units {units} ({source})",
            where=("recurrent_kernel",),
        )
    if bias is not None and (bias.ndim not in (1, 2) or bias.shape[-1] != columns):
        raise WeightLayoutError(
            f"{_common.dims(bias.shape)}: expected ({columns},), {gates} gates × units {units} ({source})",
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
            f"found {_common.dims(bias.shape)}",
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


# -- what a config says beyond the weights: unknown recurrent classes, masks, two directions --------
_CONTAINERS = {"Sequential", "Functional", "Model"}
#: Options a Bidirectional's two layers must share: the IR holds each once per layer.
DIRECTION_OPTIONS = ("units", "activation", "recurrent_activation", "use_bias", "reset_after")
_KNOWN_CLASSES = {*KINDS, "RNN", "Bidirectional", "CuDNNLSTM", "CuDNNGRU"}


#: The config keys of Keras's own recurrent layers (tf_keras 2.21 and Keras 2.2 without
#: ``time_major``; Keras 3.15), by class: a subclass with exactly these is read as its base.
_TF_KERAS_COMMON = frozenset(
    [
        "activation",
        "activity_regularizer",
        "bias_constraint",
        "bias_initializer",
        "bias_regularizer",
        "dropout",
        "dtype",
        "go_backwards",
        "kernel_constraint",
        "kernel_initializer",
        "kernel_regularizer",
        "name",
        "recurrent_constraint",
        "recurrent_dropout",
        "recurrent_initializer",
        "recurrent_regularizer",
        "return_sequences",
        "return_state",
        "stateful",
        "trainable",
        "units",
        "unroll",
        "use_bias",
    ]
)
_GATED = frozenset({"recurrent_activation", "implementation"})
_KERAS22_KEYS: Mapping[str, frozenset[str]] = {
    "LSTM": _TF_KERAS_COMMON | _GATED | {"unit_forget_bias"},
    "GRU": _TF_KERAS_COMMON | _GATED | {"reset_after"},
    "SimpleRNN": _TF_KERAS_COMMON,
}
_KNOWN_KEYS: Mapping[str, tuple[frozenset[str], ...]] = {
    cls: (
        keys,  # Keras 2.2
        keys | {"time_major"},  # tf_keras
        (keys - {"implementation"}) | {"zero_output_for_mask"} | ({"seed"} if cls != "SimpleRNN" else set()),
    )
    for cls, keys in _KERAS22_KEYS.items()
}
#: Keys a layer's config may carry for the model around it, not for its computation.
_PLACEMENT_KEYS = frozenset({"batch_input_shape", "input_shape", "batch_size"})


def subclass_base(entry: Mapping[str, Any]) -> KerasKind | None:
    """The Keras kind whose config keys a user's class has exactly (a subclass of LSTM that
    adds no option), or None."""
    config = entry.get("config")
    if not isinstance(config, Mapping):
        return None
    if not is_custom(entry) and entry.get("class_name") in _KNOWN_CLASSES:
        return None
    keys = set(config) - _PLACEMENT_KEYS
    for cls, variants in _KNOWN_KEYS.items():
        if any(keys == variant for variant in variants):
            return KINDS[cls]
    return None


def subclass_message(name: str, shown: str, kind: KerasKind) -> str:
    return (
        f'layer "{name}" of class {shown} read as {kind.layer}: its config and weights are an '
        f"{kind.layer}'s; if its call() computes otherwise, the conversion is wrong"
    )


def normalized_config(entry: Any) -> Any:
    """A model config with Keras 2.0/2.1's Sequential form (``"config"`` a *list* of layers)
    rewritten as Keras 2.2+'s (``{"name": ..., "layers": [...]}``), nested models included."""
    if isinstance(entry, list):
        return [normalized_config(item) for item in entry]
    if not isinstance(entry, Mapping):
        return entry
    result = {key: normalized_config(value) for key, value in entry.items()}
    if entry.get("class_name") in _CONTAINERS and isinstance(entry.get("config"), list):
        result["config"] = {"name": entry.get("name", ""), "layers": result["config"]}
    return result


def is_custom(entry: Mapping[str, Any]) -> bool:
    """Whether a config entry is a class of the user's, not Keras's own (Keras 3 records the
    module of each class, and a registered name for the user's)."""
    module, registered = entry.get("module"), entry.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        return True
    return isinstance(module, str) and not module.startswith(("keras", "tf_keras"))


def looks_recurrent(entry: Mapping[str, Any]) -> bool:
    """A layer that is recurrent by its class name (LSTM, GRU, RNN in it) or its config (a cell,
    or units with a recurrent activation)."""
    cls, config = str(entry.get("class_name", "")), entry.get("config") or {}
    if not isinstance(config, Mapping) or "layers" in config:  # a model: its layers say
        return False
    upper = cls.upper()
    return (
        any(token in upper for token in ("LSTM", "GRU", "RNN"))
        or "cell" in config
        or ("units" in config and "recurrent_activation" in config)
    )


def refuse_unknown_recurrent(entry: Mapping[str, Any]) -> None:
    """Refuse a recurrent layer lstmconv does not read (ConvLSTM, a subclass, a custom cell),
    or a known one inside a wrapper other than Bidirectional (TimeDistributed…), naming it."""
    cls, config = str(entry.get("class_name", "")), entry.get("config") or {}
    name = config.get("name", "") if isinstance(config, Mapping) else ""
    if cls in _KNOWN_CLASSES and not is_custom(entry):
        return
    if looks_recurrent(entry):
        shown = entry.get("registered_name") if is_custom(entry) else cls
        raise UnsupportedFeatureError(
            f"a recurrent layer of class {shown or cls}, which lstmconv does not read",
            where=(f'layer "{name}"',),
            hint="lstmconv reads Keras's own LSTM, GRU, SimpleRNN, RNN of their cells, and "
            "Bidirectional of those; a subclass or another class may compute otherwise",
        )
    inner = config.get("layer") if isinstance(config, Mapping) else None
    if isinstance(inner, Mapping) and (inner.get("class_name") in _KNOWN_CLASSES or looks_recurrent(inner)):
        raise UnsupportedFeatureError(
            f"a recurrent layer ({inner.get('class_name')}) inside {cls}, which lstmconv does not read",
            where=(f'layer "{name}"',),
            hint="lstmconv reads recurrent layers alone or in Bidirectional",
        )


def _option(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key)
    return _name_of(value) if key.endswith("activation") and value is not None else value


def refuse_different_directions(
    name: str, forward: Mapping[str, Any], backward: Mapping[str, Any], kinds: tuple[Kind, Kind]
) -> None:
    """A Bidirectional whose backward layer (``backward_layer=``) differs from the forward one in
    anything the IR holds once per layer is refused, naming the option."""
    if kinds[0] is not kinds[1]:
        raise UnsupportedFeatureError(
            f"Bidirectional whose backward layer is a {kinds[1].value} and forward layer a {kinds[0].value}",
            where=(f'layer "{name}"',),
            hint="lstmconv keeps one kind and one set of options per layer",
        )
    defaults = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True}
    for key in DIRECTION_OPTIONS:
        ahead = _option(forward, key) if key in forward else defaults.get(key)
        behind = _option(backward, key) if key in backward else defaults.get(key)
        if ahead != behind:
            raise UnsupportedFeatureError(
                f"Bidirectional whose backward layer differs from the forward one in {key} "
                f"({behind!r}, forward {ahead!r})",
                where=(f'layer "{name}"',),
                hint="lstmconv keeps one set of options per layer: give both directions the same",
            )


def _mask_producer(entry: Mapping[str, Any]) -> bool:
    cls, config = entry.get("class_name"), entry.get("config") or {}
    return cls == "Masking" or (cls == "Embedding" and bool(config.get("mask_zero")))


def _history(value: Any, found: list[str]) -> None:
    """The layer names a Keras 3 (``keras_history``) or Keras 2 (``[name, node, tensor, {}]``)
    inbound node refers to."""
    if isinstance(value, Mapping):
        history = (
            (value.get("config") or {}).get("keras_history")
            if isinstance(value.get("config"), Mapping)
            else None
        )
        if isinstance(history, list) and history and isinstance(history[0], str):
            found.append(history[0])
        for inner in value.values():
            _history(inner, found)
    elif isinstance(value, list):
        if (
            len(value) >= 3
            and isinstance(value[0], str)
            and isinstance(value[1], int)
            and isinstance(value[2], int)
        ):
            found.append(value[0])
        for inner in value:
            _history(inner, found)


def _passes_mask(entry: Mapping[str, Any]) -> bool:
    """Keras 3 writes the mask a functional layer is called with into its inbound node."""
    for node in entry.get("inbound_nodes") or []:
        kwargs = node.get("kwargs") if isinstance(node, Mapping) else None
        if isinstance(kwargs, Mapping) and kwargs.get("mask") is not None:
            return True
    return False


def masked_layers(entry: Mapping[str, Any], upstream: str | None = None) -> dict[str, str]:
    """Each layer name of a model config whose input carries a Keras mask, with the layer that
    makes it (``Masking``, ``Embedding(mask_zero=True)``, or "" when only the call says so):
    in a Sequential, every layer after the maker; in a functional model, every layer the
    maker's output reaches, or that is called with a mask."""
    config = entry.get("config") or {}
    layers = [layer for layer in config.get("layers", []) if isinstance(layer, Mapping)]
    found: dict[str, str] = {}
    if entry.get("class_name") == "Sequential" or not any("inbound_nodes" in layer for layer in layers):
        maker = upstream
        for layer in layers:
            name = (layer.get("config") or {}).get("name", "")
            if maker is not None:
                found[name] = maker
            if layer.get("class_name") in _CONTAINERS:
                inner = masked_layers(layer, maker)
                found.update(inner)
                if inner and maker is None:
                    maker = next(iter(inner.values()))
            elif _mask_producer(layer):
                maker = name
        return found
    makers: dict[str, str | None] = {}
    by_name = {(layer.get("config") or {}).get("name", ""): layer for layer in layers}

    def maker_of(name: str, depth: int = 0) -> str | None:
        if name in makers or depth > 500:
            return makers.get(name)
        makers[name] = None  # cycles end here
        layer = by_name.get(name)
        if layer is None:
            return None
        if _mask_producer(layer):
            makers[name] = name
            return name
        inbound: list[str] = []
        _history(layer.get("inbound_nodes") or [], inbound)
        for parent in inbound:
            made = maker_of(parent, depth + 1)
            if made is not None:
                makers[name] = made
                break
        if makers[name] is None and layer.get("class_name") in _CONTAINERS:
            inner = masked_layers(layer)
            if inner:
                makers[name] = next(iter(inner.values()))
        return makers[name]

    for name, layer in by_name.items():
        inbound: list[str] = []
        _history(layer.get("inbound_nodes") or [], inbound)
        parents = [maker_of(parent) for parent in inbound]
        maker = next((m for m in parents if m is not None), None)
        if maker is None and _passes_mask(layer):
            maker = ""
        if maker is not None:
            found[name] = maker
        if layer.get("class_name") in _CONTAINERS:
            found.update(masked_layers(layer, maker))
    return found


def check_masks(config: Mapping[str, Any] | None, layers: Sequence[Layer], strict: bool, where: str) -> None:
    """Keras masking (Masking, Embedding(mask_zero=True)) upstream of a recurrent layer, from the
    model's config (a file's, or a live model's serialized one): a warning naming the layer, an
    error with ``strict``."""
    if config is None:
        return
    masked = masked_layers(config)
    for layer in layers:
        if layer.name in masked:
            message = mask_message(layer.name, masked[layer.name])
            if strict:
                raise UnsupportedFeatureError(
                    message, hint="remove the masking, or drop --strict to convert anyway"
                )
            _log.warning("%s: %s", where, message)


def mask_message(layer: str, maker: str) -> str:
    source = f'the mask of "{maker}"' if maker else "a mask"
    return (
        f'layer "{layer}" is called with {source}; lstmconv carries no mask, so padded steps '
        "will compute differently in the converted model"
    )
