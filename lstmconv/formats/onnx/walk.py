"""The walk along an ONNX graph's chain (:mod:`.around`): its state, the ops it passes between
two layers, and the lookups its layer readers share. Needs no onnx package."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import epilogue
from .nodes import Constants, attribute_value

#: Ops passed on the way: they move or rename values, computing nothing a layer holds.
_GLUE = {"Identity", "Cast", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Dropout"}
#: Ops that read only their input's shape (the exporters' zero states are built from them).
_SHAPE_READERS = {"Shape", "Size"}
#: Integer arithmetic on ids before an embedding's Gather (tf2onnx wraps negative ids).
_INDEX_OPS = {"Cast", "Add", "Sub", "Mul", "Less", "Greater", "Not", "Where", "Equal", "And", "Or"}
Slot = tuple[Any, int, bool]


@dataclasses.dataclass
class Walk:
    graph: epilogue.Graph
    constants: Constants
    opset: int | None
    recurrent: dict[int, str]  # id(node) -> layer name
    starts: dict[str, Any]  # value where a recurrent node's layer begins -> node
    taken: set[str]
    slots: dict[str, Slot] = dataclasses.field(default_factory=dict)  # the layer being read's


def data_consumers(walk: Walk, value: str) -> list[Any]:
    return [c for c in walk.graph.consumers.get(value, []) if c.op_type not in _SHAPE_READERS]


def passes(walk: Walk, node: Any, value: str) -> bool:
    """Whether ``node`` is glue on ``value``: a shape-only op whose other inputs are constants
    or computed from shapes alone (tf2onnx's Tensordot reshapes back to the input's shape), or
    a selection of steps (``y[:, -1]``: a Gather or Slice by constants off the feature axis)."""
    if node.op_type in ("Gather", "Slice") and node.input[0] == value:
        return _selects_steps(walk, node, value)
    if node.op_type not in _GLUE or node.input[0] != value:
        return False
    return all(walk.graph.is_constant(name) or _from_shapes(walk, name) for name in node.input[1:])


def _selects_steps(walk: Walk, node: Any, value: str) -> bool:
    """A Gather or Slice of ``value`` by constants along axes other than its last (features)."""
    rank = rank_of(walk, value)
    if rank is None or not all(walk.graph.is_constant(name) for name in node.input[1:] if name):
        return False
    if node.op_type == "Gather":
        axes = [int(attrs_of(node).get("axis", 0))]
    elif len(node.input) > 3 and node.input[3]:
        found = any_const(walk, node.input[3])
        if found is None:
            return False
        axes = [int(a) for a in np.ravel(found)]
    else:
        axes = list(range(rank))  # every axis: the features too
    return all(-rank <= axis < rank and axis % rank != rank - 1 for axis in axes)


def _from_shapes(walk: Walk, name: str) -> bool:
    """Whether ``name`` is computed from values' shapes (and constants) alone."""
    pending, seen = [name], set[str]()
    while pending:
        current = pending.pop()
        if current in seen or walk.graph.is_constant(current):
            continue
        seen.add(current)
        producer = walk.graph.producers.get(current)
        if producer is None or len(seen) > 256:
            return False
        if producer.op_type in _SHAPE_READERS:
            continue
        if producer.op_type not in {"Gather", "Concat", "Cast", "Slice", "Unsqueeze", "Squeeze", "Reshape"}:
            return False
        pending.extend(part for part in producer.input if part)
    return True


def embedding_past_index_ops(walk: Walk, ids: str) -> Any | None:
    """The one Gather of a float table whose indices are computed from ``ids`` (and constants)
    by integer index arithmetic alone, every use of ``ids`` lying on that computation."""
    pending, seen, gathers = [ids], set[str](), []
    while pending and len(seen) < 256:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for consumer in data_consumers(walk, name):
            if consumer.op_type == "Gather" and consumer.input[1] == name:
                gathers.append(consumer)
            elif consumer.op_type in _INDEX_OPS and all(
                _depends_only_on(walk, part, ids) for part in consumer.input
            ):
                pending.extend(consumer.output)
            else:
                return None
    if len({id(g) for g in gathers}) != 1:
        return None
    return gathers[0] if _identity_on_ids(walk, ids, gathers[0]) else None


_ARITHMETIC: dict[str, Any] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Less": np.less,
    "Greater": np.greater,
    "Equal": np.equal,
    "And": np.logical_and,
    "Or": np.logical_or,
}


def _identity_on_ids(walk: Walk, ids: str, gather: Any) -> bool:
    """Whether the index arithmetic between ``ids`` and ``gather`` gives every id in
    [0, rows) back unchanged (tf2onnx's wrap of negative ids does): run on those ids."""
    table = float_const(walk, gather.input[0])
    if table is None or table.ndim != 2:
        return False
    values: dict[str, np.ndarray] = {ids: np.arange(table.shape[0], dtype=np.int64)}
    for node in walk.graph.nodes:  # graph order: each value computed before it is used
        if node.output[0] in values or not any(part in values for part in node.input):
            continue
        parts = [values.get(part, any_const(walk, part)) for part in node.input]
        if any(part is None for part in parts) or node.op_type not in {*_ARITHMETIC, "Cast", "Not", "Where"}:
            continue  # not on the index path (checked by the caller), or run-time values
        try:
            values[node.output[0]] = _evaluate(node, parts)
        except (TypeError, ValueError):
            return False
    result = values.get(gather.input[1])
    return result is not None and np.array_equal(result, values[ids])


def _evaluate(node: Any, parts: list[Any]) -> np.ndarray:
    from .names import DTYPES

    if node.op_type == "Cast":
        to = DTYPES.get(int(attrs_of(node).get("to", 0)))
        return parts[0].astype(to if to not in (None, "bfloat16") else np.float32)
    if node.op_type == "Not":
        return np.logical_not(parts[0])
    if node.op_type == "Where":
        return np.where(parts[0], parts[1], parts[2])
    return np.asarray(_ARITHMETIC[node.op_type](parts[0], parts[1]))


def _depends_only_on(walk: Walk, name: str, ids: str) -> bool:
    """Whether ``name`` is computed from ``ids`` and constants by index arithmetic alone."""
    pending, seen = [name], set[str]()
    while pending:
        current = pending.pop()
        if current in seen or current == ids or walk.graph.is_constant(current):
            continue
        seen.add(current)
        producer = walk.graph.producers.get(current)
        if producer is None or producer.op_type not in _INDEX_OPS or len(seen) > 256:
            return False
        pending.extend(producer.input)
    return True


def attrs_of(node: Any) -> dict[str, Any]:
    values = {}
    for item in node.attribute:
        value = attribute_value(item)
        values[item.name] = value.decode() if isinstance(value, bytes) else value
    return values


def float_const(walk: Walk, name: str) -> np.ndarray | None:
    if not name or not walk.graph.is_constant(name):
        return None
    value = walk.constants.get(name)
    return None if value is None or value.dtype.kind != "f" else np.asarray(value)


def sources(walk: Walk, names: Sequence[str]) -> set[str]:
    """The initializers the named constants are made from."""
    found, pending, seen = set(), [n for n in names if n], set[str]()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in walk.graph.initializers:
            found.add(name)
            continue
        producer = walk.graph.producers.get(name)
        if producer is not None:
            pending.extend(n for n in producer.input if n)
    return found


def any_const(walk: Walk, name: str) -> np.ndarray | None:
    if not name or not walk.graph.is_constant(name):
        return None
    value = walk.constants.get(name)
    return None if value is None else np.asarray(value)


def rank_of(walk: Walk, name: str) -> int | None:
    """The rank of a value where the graph says it: its declared dims, or a Transpose's perm."""
    dims = walk.constants.dims.get(name)
    if dims is not None:
        return len(dims)
    producer = walk.graph.producers.get(name)
    if producer is not None and producer.op_type == "Transpose":
        perm = epilogue.attribute(producer, "perm", None)
        return len(perm) if perm is not None else None
    return None
