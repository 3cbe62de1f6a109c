"""Keras's plain layers (Embedding, Dense, Conv1D, normalizations, no-ops) ↔ :mod:`lstmconv.plain`,
from a layer's config entry and its weights in Keras's order, without importing Keras.

Keras stores a Dense kernel (in, out) and a Conv1D kernel (kernel, in/groups, out): the IR holds
them as PyTorch does, (out, in) and (out, in/groups, kernel). Keras's Conv1D is channels-last,
(batch, time, features), as its recurrent layers are; a channels-first Conv1D convolves along
the feature axis of a recurrent layer's output and is listed as not carried. Normalizations keep
their ``epsilon`` as the config says (Keras's default is 1e-3, PyTorch's 1e-5); a feature axis
given as 2 (tf_keras's built form, of a (batch, time, features) input) is the last axis, -1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import LstmconvError, WeightLayoutError
from ...inspection import Tensor
from ...plain import PlainKind, PlainLayer
from .._common import dims
from . import names as keras_names

_log = logging.getLogger("lstmconv.formats.keras")

#: Layers that compute nothing at inference, read as the IR's no-ops.
DROPOUTS = frozenset({"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout"})
#: Every Keras class read as a plain layer.
CLASSES = frozenset(
    {"Embedding", "Dense", "Conv1D", "LayerNormalization", "BatchNormalization", "TimeDistributed", "Masking"}
    | DROPOUTS
)
#: The Keras name of each tensor the IR holds, per kind.
KERAS_NAMES: Mapping[PlainKind, Mapping[str, str]] = {
    PlainKind.EMBEDDING: {"weight": "embeddings"},
    PlainKind.DENSE: {"weight": "kernel", "bias": "bias"},
    PlainKind.CONV1D: {"weight": "kernel", "bias": "bias"},
    PlainKind.LAYER_NORM: {"weight": "gamma", "bias": "beta"},
    PlainKind.BATCH_NORM: {
        "weight": "gamma",
        "bias": "beta",
        "mean": "moving_mean",
        "var": "moving_variance",
    },
}


class NotCarried(Exception):
    """A plain layer of a known class whose options the IR cannot hold (said, and skipped)."""


def is_plain(entry: Mapping[str, Any]) -> bool:
    return entry.get("class_name") in CLASSES and not keras_names.is_custom(entry)


def from_entry(entry: Mapping[str, Any], weights: Sequence[np.ndarray]) -> PlainLayer | None:
    """The plain layer a config entry ``{"class_name", "config"}`` with these weights (in
    Keras's order) is; None for a class that is not one (or a user's subclass). A known class
    whose options or weights the IR cannot hold (a channels-first Conv1D, a LoRA or quantized
    Dense's extra or integer weights) logs a warning naming it and why, and gives None, so the
    caller lists it as skipped, as every layer lstmconv does not carry is."""
    if not is_plain(entry):
        return None
    config = entry.get("config") or {}
    name = str(config.get("name", ""))
    try:
        return _from_entry(str(entry["class_name"]), config, list(weights), name)
    except (NotCarried, LstmconvError) as reason:
        text = reason.render() if isinstance(reason, LstmconvError) else str(reason)
        _log.warning('layer "%s" (%s) is not carried: %s', name, entry["class_name"], text)
        return None


def _from_entry(cls: str, config: Mapping[str, Any], weights: list[np.ndarray], name: str) -> PlainLayer:
    if cls in DROPOUTS:
        _expect(weights, 0, cls)
        return PlainLayer(PlainKind.DROPOUT, name, options={"rate": float(config.get("rate", 0.0) or 0.0)})
    if cls == "Masking":
        _expect(weights, 0, cls)
        return PlainLayer(
            PlainKind.MASKING, name, options={"mask_value": float(config.get("mask_value", 0.0))}
        )
    if cls == "Embedding":
        _expect(weights, 1, cls)
        return PlainLayer(PlainKind.EMBEDDING, name, {"weight": weights[0]})
    if cls == "Dense":
        return _dense(config, weights, name)
    if cls == "TimeDistributed":
        inner = config.get("layer") or {}
        if inner.get("class_name") != "Dense" or keras_names.is_custom(inner):
            raise NotCarried(
                f"TimeDistributed of {inner.get('class_name')}: lstmconv carries TimeDistributed(Dense)"
            )
        dense = _dense(inner.get("config") or {}, weights, name)
        return dense.replace(options={**dense.options, "time_distributed": True})
    if cls == "Conv1D":
        return _conv1d(config, weights, name)
    if cls == "LayerNormalization":
        if config.get("rms_scaling"):
            raise NotCarried("rms_scaling=True (RMS normalization) has no IR form")
        tensors = _named(
            weights, [("weight", config.get("scale", True)), ("bias", config.get("center", True))], cls
        )
        options = {"epsilon": _epsilon(config), "axis": _axis(config.get("axis", -1))}
        return PlainLayer(PlainKind.LAYER_NORM, name, tensors, options)
    if cls == "BatchNormalization":
        if config.get("renorm"):
            raise NotCarried("renorm=True keeps extra statistics lstmconv does not carry")
        wanted = [
            ("weight", config.get("scale", True)),
            ("bias", config.get("center", True)),
            ("mean", True),
            ("var", True),
        ]
        options = {"epsilon": _epsilon(config), "axis": _axis(config.get("axis", -1))}
        return PlainLayer(PlainKind.BATCH_NORM, name, _named(weights, wanted, cls), options)
    raise NotCarried(f"class {cls}")  # pragma: no cover - CLASSES lists every class above


def _dense(config: Mapping[str, Any], weights: list[np.ndarray], name: str) -> PlainLayer:
    tensors = _named(weights, [("weight", True), ("bias", config.get("use_bias", True))], "Dense")
    if tensors["weight"].ndim != 2:
        raise WeightLayoutError(
            f"expected a 2-D (in, out) kernel, found {dims(tensors['weight'].shape)}", where=("kernel",)
        )
    tensors["weight"] = tensors["weight"].T
    activation = keras_names.activation_name(config.get("activation", "linear"))
    return PlainLayer(PlainKind.DENSE, name, tensors, {"activation": activation})


def _conv1d(config: Mapping[str, Any], weights: list[np.ndarray], name: str) -> PlainLayer:
    if config.get("data_format", "channels_last") != "channels_last":
        raise NotCarried(
            f"data_format={config.get('data_format')!r}: it convolves along the features of a "
            "(batch, time, features) sequence; lstmconv carries channels_last Conv1D"
        )
    tensors = _named(weights, [("weight", True), ("bias", config.get("use_bias", True))], "Conv1D")
    if tensors["weight"].ndim != 3:
        raise WeightLayoutError(
            f"expected a 3-D (kernel, in, out) kernel, found {dims(tensors['weight'].shape)}",
            where=("kernel",),
        )
    tensors["weight"] = tensors["weight"].transpose(2, 1, 0)
    options = {
        "stride": _single(config.get("strides", 1)),
        "padding": str(config.get("padding", "valid")).lower(),
        "dilation": _single(config.get("dilation_rate", 1)),
        "groups": int(config.get("groups", 1)),
        "activation": keras_names.activation_name(config.get("activation", "linear")),
    }
    return PlainLayer(PlainKind.CONV1D, name, tensors, options)


def _expect(weights: Sequence[np.ndarray], count: int, cls: str) -> None:
    if len(weights) != count:
        raise WeightLayoutError(f"a Keras {cls} holds {count} weight(s), found {len(weights)}")


def _named(weights: list[np.ndarray], wanted: Sequence[tuple[str, Any]], cls: str) -> dict[str, np.ndarray]:
    """Keras's positional weights named, those the config says are absent left out."""
    present = [tensor for tensor, held in wanted if held]
    _expect(weights, len(present), cls)
    return dict(zip(present, weights))


def _epsilon(config: Mapping[str, Any]) -> float:
    """A normalization's epsilon, as its config says: never defaulted."""
    value = config.get("epsilon")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotCarried(f"its config gives no epsilon (found {value!r}), and lstmconv never assumes one")
    return float(value)


def _single(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise NotCarried(f"a 1-D option of {len(value)} values: {value}")
        value = value[0]
    return int(value)


def _axis(value: Any) -> int:
    """The normalized axis: -1 for the features of a (batch, time, features) input, given as -1
    or 2 (tf_keras lists the built axes, [2]); any other axis as it is."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise NotCarried(f"normalizing over several axes {list(value)}")
        value = value[0]
    axis = int(value)
    return -1 if axis in (-1, 2) else axis


# -- the way back: the IR's plain layer as Keras holds it -------------------------------------------
def keras_weights(layer: PlainLayer) -> list[np.ndarray]:
    """The layer's tensors in Keras's order and orientation (``set_weights``)."""
    tensors = dict(layer.tensors)
    if layer.kind is PlainKind.DENSE:
        tensors["weight"] = tensors["weight"].T
    elif layer.kind is PlainKind.CONV1D:
        tensors["weight"] = tensors["weight"].transpose(2, 1, 0)
    return [
        np.ascontiguousarray(tensors[name]) for name in KERAS_NAMES.get(layer.kind, {}) if name in tensors
    ]


def layout(layer: PlainLayer) -> list[Tensor]:
    """The tensors Keras stores for a plain layer, with Keras's names and shapes (``inspect``)."""
    names = KERAS_NAMES.get(layer.kind, {})
    prefix = "layer/" if layer.options.get("time_distributed") else ""
    present = [name for name in names if name in layer.tensors]
    return [
        Tensor(f"{prefix}{names[name]}", tuple(int(n) for n in array.shape), "")
        for name, array in zip(present, keras_weights(layer))
    ]
