"""Which layers of a Keras model feed each other directly, from its config.

A ``Sequential`` config is a list of layers, each fed by the one before; a functional config
names each layer's inputs in its ``inbound_nodes`` (Keras 3: ``keras_history`` of the tensors in
``args``; Keras 2: ``[name, node, tensor, kwargs]`` lists). Layers that compute nothing at
inference (Dropout, noise, InputLayer) are looked through; any other layer in between (a
LayerNormalization, a Dense, a RepeatVector) breaks the link, and so does an output that is not
the full sequence (``return_sequences=False``, or a state of ``return_state=True``) between two
recurrent layers. A plain layer (Dense, LayerNormalization, ...) is linked to the layer that
feeds it whatever that gives (its reader warns where a recurrent layer gives its last step only).
Imports no Keras: it reads the config as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

#: Layers that pass their input through unchanged at inference.
TRANSPARENT = frozenset(
    {
        "InputLayer",
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
    }
)
_MODELS = frozenset({"Sequential", "Functional", "Model"})


def links(config: Any, recurrent: Sequence[str]) -> tuple[tuple[str, str], ...] | None:
    """(from, to) pairs of the layers named in ``recurrent`` (recurrent and plain) where one's
    output is the other's only input; None when there is no config to tell."""
    if not isinstance(config, Mapping):
        return None
    wanted = set(recurrent)
    found: list[tuple[str, str]] = []
    for entries, sequential in _models(config):
        found.extend(_links_in(entries, sequential, wanted))
    order = {name: index for index, name in enumerate(recurrent)}
    return tuple(sorted(set(found), key=lambda pair: (order[pair[0]], order[pair[1]])))


def _models(config: Mapping[str, Any]) -> Iterator[tuple[list[Mapping[str, Any]], bool]]:
    """(layer entries, is Sequential) of the model and of every model nested in it."""
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, Mapping) else inner  # Keras 2.0/2.1: a list
    if not isinstance(layers, (list, tuple)):
        return
    entries = [entry for entry in layers if isinstance(entry, Mapping)]
    yield entries, config.get("class_name") == "Sequential"
    for entry in entries:
        if entry.get("class_name") in _MODELS:
            yield from _models(entry)


def _name(entry: Mapping[str, Any]) -> str:
    config = entry.get("config")
    return str(entry.get("name") or (config.get("name") if isinstance(config, Mapping) else "") or "")


def _links_in(entries: list[Mapping[str, Any]], sequential: bool, wanted: set[str]) -> list[tuple[str, str]]:
    by_name = {_name(entry): entry for entry in entries}
    if sequential:
        inputs = {
            _name(entry): [(_name(entries[index - 1]), 0)] if index else []
            for index, entry in enumerate(entries)
        }
    else:
        inputs = {_name(entry): _inbound(entry) for entry in entries}

    def resolve(name: str, tensor: int) -> tuple[str, int] | None:
        for _ in range(len(entries) + 1):
            entry = by_name.get(name)
            if entry is None or entry.get("class_name") not in TRANSPARENT:
                return name, tensor
            feeding = inputs.get(name) or []
            if len(feeding) != 1:
                return None
            name, tensor = feeding[0]
        return None

    found = []
    for entry in entries:
        after = _name(entry)
        feeding = inputs.get(after) or []
        if after not in wanted or len(feeding) != 1:
            continue
        source = resolve(*feeding[0])
        if source is None or source[0] not in wanted or source[1] != 0:
            continue
        before = by_name[source[0]]
        if _returns_sequences(before) or not (_recurrent(before) and _recurrent(entry)):
            found.append((source[0], after))  # a plain layer takes what it is given
    return found


def _recurrent(entry: Mapping[str, Any]) -> bool:
    config = entry.get("config") or {}
    return entry.get("class_name") == "Bidirectional" or "return_sequences" in config


def _inbound(entry: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(layer, tensor index) of each input of a layer called once; [] if called more than once
    (a shared layer) or never."""
    nodes = entry.get("inbound_nodes") or []
    if not isinstance(nodes, (list, tuple)) or len(nodes) != 1:
        return []
    node = nodes[0]
    if isinstance(node, Mapping):  # Keras 3
        return list(_histories(node.get("args", [])))
    if isinstance(node, (list, tuple)):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        return [
            (str(item[0]), int(item[2]))
            for item in node
            if isinstance(item, (list, tuple)) and len(item) >= 3 and isinstance(item[2], int)
        ]
    return []


def _histories(value: Any) -> Iterator[tuple[str, int]]:
    if isinstance(value, Mapping):
        history = (value.get("config") or {}).get("keras_history") if value.get("class_name") else None
        if (
            value.get("class_name") == "__keras_tensor__"
            and isinstance(history, (list, tuple))
            and len(history) == 3
        ):
            yield str(history[0]), int(history[2])
            return
        for item in value.values():
            yield from _histories(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _histories(item)


def _returns_sequences(entry: Mapping[str, Any]) -> bool:
    config = entry.get("config") or {}
    if entry.get("class_name") == "Bidirectional":
        inner = config.get("layer") or {}
        config = inner.get("config") or {}
    return bool(config.get("return_sequences")) and not config.get("return_state")
