"""TF2 object-based checkpoints: the object tree TensorFlow stores in
``_CHECKPOINTABLE_OBJECT_GRAPH`` (a ``TrackableObjectGraph``,
``tensorflow/core/protobuf/trackable_object_graph.proto``), and the Keras layers found in it.

Each variable carries its full Keras name (``encoder/lstm_cell/kernel``,
``middle/forward_gru/gru_cell/bias``); where it has none, its object path
(``model/layer_with_weights-0/cell/kernel``) stands in. Layer kinds come from the cell's name,
checked against the kernels' widths; the tensors are Keras's own (``keras.names``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import FormatError, WeightLayoutError
from ...ir import Kind, Layer
from ..keras import names as keras_names
from . import wire

OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_VALUE = "VARIABLE_VALUE"


# -- the object graph -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Variable:
    path: str  # object path from the root: model/layer_with_weights-0/cell/kernel
    full_name: str  # the variable's own name, "" where the checkpoint has none
    key: str  # its checkpoint key


@dataclasses.dataclass(frozen=True)
class ObjectNode:
    children: tuple[tuple[str, int], ...]
    attributes: tuple[tuple[str, str, str], ...]  # (name, full_name, checkpoint_key)


def object_graph(data: bytes) -> list[ObjectNode]:
    """The nodes of a ``TrackableObjectGraph``: children (ObjectReference: node_id 1, local_name
    2) and attributes (SerializedTensor: name 1, full_name 2, checkpoint_key 3)."""
    what = "TrackableObjectGraph"
    nodes = []
    for blob in wire.blobs(wire.message(data, what), 1, what):
        msg = wire.message(blob, what)
        children = []
        for child in wire.blobs(msg, 1, what):
            ref = wire.message(child, what)
            children.append((wire.text(ref, 2, what), wire.integer(ref, 1, what)))
        attributes = []
        for attribute in wire.blobs(msg, 2, what):
            tensor = wire.message(attribute, what)
            attributes.append(tuple(wire.text(tensor, number, what) for number in (1, 2, 3)))
        nodes.append(ObjectNode(tuple(children), tuple(attributes)))  # type: ignore[arg-type]
    for node in nodes:
        for _, target in node.children:
            if not 0 <= target < len(nodes):
                raise FormatError(f"{what}: a child refers to node {target} of {len(nodes)}")
    return nodes


def variables(nodes: Sequence[ObjectNode], skip: Sequence[str] = ("optimizer",)) -> list[Variable]:
    """Each variable once, depth first from the root in child order (model order), each object
    visited once however many paths reach it (the graph may share and even cycle)."""
    if not nodes:
        return []
    seen, out = {0}, []
    stack: list[tuple[int, str]] = [(0, "")]
    while stack:
        index, path = stack.pop()
        for name, full_name, key in nodes[index].attributes:
            if name == VARIABLE_VALUE:
                out.append(Variable(path, full_name, key))
        pending = []
        for local, target in nodes[index].children:
            if target in seen or (not path and local in skip):
                continue
            seen.add(target)
            pending.append((target, f"{path}/{local}" if path else local))
        stack.extend(reversed(pending))
    return out


# -- Keras layers ---------------------------------------------------------------------------------
_KERAS_TENSORS = ("kernel", "recurrent_kernel", "bias")
_KERAS_CELLS = {entry.cell.lower(): entry for entry in keras_names.KINDS.values()}
_KERAS_CELLS.update({"lstm_cell": keras_names.KINDS["LSTM"], "gru_cell": keras_names.KINDS["GRU"]})
_KERAS_CELLS["simple_rnn_cell"] = keras_names.KINDS["SimpleRNN"]


@dataclasses.dataclass
class KerasGroup:
    name: str
    path: str  # the layer's scope in the variable names
    cell: str  # the cell's scope: lstm_cell, gru_cell, simple_rnn_cell, or cell (object paths)
    sides: dict[str, dict[str, str]]  # "" | forward | backward -> kernel/recurrent_kernel/bias -> key


def keras_groups(variables: Sequence[tuple[str, str]]) -> list[KerasGroup]:
    """Keras recurrent layers among (name, checkpoint key) pairs, in first-seen order; a name is
    a variable's full name (``encoder/lstm_cell/kernel``) or its object path
    (``model/layer_with_weights-0/cell/kernel``)."""
    groups: dict[tuple[str, str], KerasGroup] = {}
    for name, key in variables:
        parts = name.removesuffix(":0").split("/")
        if len(parts) < 3 or parts[-1] not in _KERAS_TENSORS:
            continue
        cell = parts[-2]
        if cell != "cell" and _cell_kind(cell) is None:
            continue
        layer, side = parts[:-2], ""
        if len(layer) >= 2 and re.match(r"(forward|backward)_", layer[-1]):
            side, layer = layer[-1].split("_")[0], layer[:-1]
        if not layer:
            continue
        path = "/".join(layer)
        group = groups.setdefault((path, cell), KerasGroup(layer[-1], path, cell, {}))
        group.sides.setdefault(side, {}).setdefault(parts[-1], key)
    found = [group for group in groups.values() if any("recurrent_kernel" in s for s in group.sides.values())]
    names = [group.name for group in found]
    for group in found:  # several cells in one layer (StackedRNNCells): each named by its cell too
        if names.count(group.name) > 1:
            group.name = f"{group.name}/{group.cell}"
    return found


def _cell_kind(cell: str) -> Kind | None:
    """The kind a Keras cell's name says (``lstm_cell``, ``gru_cell_1``...), None if none."""
    entry = _KERAS_CELLS.get(re.sub(r"_\d+$", "", cell))
    return None if entry is None else entry.kind


def keras_kind(group: KerasGroup, shapes: Mapping[str, tuple[int, ...]]) -> Kind:
    """The layer's kind: its cell's name where it has one, checked against the kernels' widths."""
    for name, side in group.sides.items():
        for tensor in ("kernel", "recurrent_kernel"):
            if side.get(tensor) not in shapes:
                raise WeightLayoutError(
                    f"expected a {tensor} beside the others, found {', '.join(sorted(side)) or 'none'}",
                    where=(f'layer "{group.name}"', "/".join(part for part in (name, group.cell) if part)),
                )
    side = next(iter(group.sides.values()))
    kernel, recurrent = shapes[side["kernel"]], shapes[side["recurrent_kernel"]]
    if len(kernel) != 2 or len(recurrent) != 2 or recurrent[0] == 0 or recurrent[1] % recurrent[0]:
        raise WeightLayoutError(
            f"expected kernel (I, G·H) and recurrent_kernel (H, G·H), found {kernel} and {recurrent}",
            where=(f'layer "{group.name}"',),
        )
    by_width = {4: Kind.LSTM, 3: Kind.GRU, 1: Kind.RNN}.get(recurrent[1] // recurrent[0])
    named = _cell_kind(group.cell)
    if by_width is None or (named is not None and named is not by_width):
        raise WeightLayoutError(
            f"recurrent_kernel {recurrent} does not fit a {group.cell}",
            where=(f'layer "{group.name}"',),
        )
    return by_width


def keras_layer(
    group: KerasGroup,
    kind: Kind,
    tensor: Callable[[str], np.ndarray],
    config: Mapping[str, Any],
    *,
    keras_major: int,
    merge: str = "concat",
) -> Layer:
    sides = [side for side in ("", "forward", "backward") if side in group.sides]
    if sides not in ([""], ["forward", "backward"]):
        raise WeightLayoutError(
            f"expected one cell or a forward/backward pair, found {sides}", where=(group.path,)
        )
    directions = [
        [np.asarray(tensor(group.sides[side][name])) for name in _KERAS_TENSORS if name in group.sides[side]]
        for side in sides
    ]
    return keras_names.layer_from_weights(
        kind,
        group.name,
        directions,
        config,
        keras_major=keras_major,
        bidirectional=len(sides) == 2,
        merge=merge,
        go_backwards=bool(config.get("go_backwards")) and len(sides) == 1,
    )


def keras_configs(entries: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Layer configs by layer name from Keras's ``{"class_name", "config"}`` entries (a
    SavedModel's per-object metadata, or a model config's layers, nested models walked); a
    Bidirectional's is its inner layer's config with its merge mode."""
    out: dict[str, dict[str, Any]] = {}
    pending = list(entries)
    while pending:
        entry = pending.pop(0)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("config"), Mapping):
            continue
        config = entry["config"]
        name = entry.get("name") or config.get("name")
        if isinstance(config.get("layers"), list):  # a Sequential or Functional model
            pending = [*config["layers"], *pending]
        if entry.get("class_name") == "Bidirectional" and isinstance(config.get("layer"), Mapping):
            inner = config["layer"].get("config", {})
            out[str(name)] = {**inner, "merge_mode": config.get("merge_mode", "concat")}
        elif isinstance(name, str):
            out[name] = dict(config)
    return out
