"""Where a recurrent node's layer begins and ends in its graph, read without the onnx package.

The layer begins at the node's input, or above a time reversal that feeds it (Keras
``go_backwards`` as exported); it ends at the last op of the node's epilogue: shape-only ops,
the split of the two directions, their join (Concat, Add, Mul, Max, Sum), a scaling of a sum by
a constant, a reduction over the direction axis, a reversal of time. Verification cuts this
span out of the original graph to run it as it is (:mod:`.cut`); the reader links two layers
when one's end is the other's beginning through shape-only ops.
Works on :mod:`.files`' messages and on onnx's own protos alike (the same field names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedFeatureError
from .names import SHAPE_OPS

_LAYOUT_OPS = SHAPE_OPS - {"Expand", "Cast"}
_SPLITS = {"Split", "Slice", "Gather"}
_JOINS = {"Concat", "Add", "Mul", "Max", "Min", "Sum", "Mean"}
_REDUCTIONS = {"ReduceSum", "ReduceMean", "ReduceProd", "ReduceMax"}
_SCALES = {"Mul", "Div"}
_REVERSALS = {"ReverseSequence"}


class Graph:
    """Producers, consumers and constants of one graph, looked up once."""

    def __init__(self, graph: Any, outer: Graph | None = None):
        """``outer``: the enclosing scope of a subgraph (an If branch, a Loop body), whose
        initializers and nodes' outputs the subgraph may use by name; its nodes come first in
        ``order`` and its names are hidden by the subgraph's own."""
        self.nodes: list[Any] = [*(outer.nodes if outer is not None else ()), *graph.node]
        self.order = {id(node): index for index, node in enumerate(self.nodes)}
        self.producers: dict[str, Any] = dict(outer.producers) if outer is not None else {}
        self.consumers: dict[str, list[Any]] = {}
        self.initializers: dict[str, Any] = dict(outer.initializers) if outer is not None else {}
        own = {tensor.name: tensor for tensor in graph.initializer}
        for name in own:
            self.producers.pop(name, None)
        for info in getattr(graph, "input", ()):  # a body's inputs hide outer names too
            self.producers.pop(info.name, None)
            self.initializers.pop(info.name, None)
        for node in graph.node:
            for name in node.output:
                if name:
                    self.producers[name] = node
                    self.initializers.pop(name, None)
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.initializers.update(own)
        self.outputs = {value.name for value in getattr(graph, "output", ())}
        self._constant: dict[str, bool] = {}

    def is_constant(self, name: str, depth: int = 0) -> bool:
        """Whether ``name`` is computed from initializers and Constant nodes alone (each name
        answered once: ``Concat(x, x)`` chained 64 times is 2^64 paths, 64 names)."""
        if name in self.initializers or name == "":
            return True
        known = self._constant.get(name)
        if known is not None:
            return known
        node = self.producers.get(name)
        if node is None or depth > 64:
            return False
        self._constant[name] = False  # a cycle is no constant
        answer = node.op_type == "Constant" or all(self.is_constant(part, depth + 1) for part in node.input)
        self._constant[name] = answer
        return answer

    def only_consumer(self, name: str) -> Any | None:
        consumers = self.consumers.get(name, [])
        return consumers[0] if len(consumers) == 1 and name not in self.outputs else None


def attribute(node: Any, name: str, default: Any) -> Any:
    from .nodes import attribute_value

    for item in node.attribute:
        if item.name == name:
            return attribute_value(item)
    return default


def input_boundary(graph: Graph, node: Any, axes: str) -> tuple[str, str]:
    """The node's input, or the input of a time reversal (ReverseSequence, a Slice with step -1
    on the time axis) that feeds it through layout ops: Keras ``go_backwards`` as exported."""
    name, current = node.input[0], axes
    passed_reversal = False
    chosen = (name, axes)
    for _ in range(16):
        producer = graph.producers.get(name)
        if producer is None or len(graph.consumers.get(name, [])) != 1:
            break
        if producer.op_type == "Transpose":
            perm = attribute(producer, "perm", None)
            if perm is None or sorted(perm) != [0, 1, 2]:
                break
            before = [""] * 3
            for out_axis, in_axis in enumerate(perm):
                before[in_axis] = (current + "f")[out_axis]
            current = "".join(before).replace("f", "")
            if len(current) != 2:
                break
        elif producer.op_type in _REVERSALS or _is_time_reversal(graph, producer, current):
            passed_reversal = True
        elif producer.op_type != "Identity":
            break
        name = producer.input[0]
        if passed_reversal:
            chosen = (name, current)
    return chosen


def _is_time_reversal(graph: Graph, node: Any, axes: str) -> bool:
    if node.op_type != "Slice" or len(node.input) < 5:
        return False
    axes_value, steps = (_constant(graph, node.input[i]) for i in (3, 4))
    if axes_value is None or steps is None:
        return False
    return np.ravel(steps).tolist() == [-1] and np.ravel(axes_value).tolist() == [axes.index("t")]


def _constant(graph: Graph, name: str) -> np.ndarray | None:
    from . import files

    if name in graph.initializers:
        return files.to_array(graph.initializers[name], None)
    node = graph.producers.get(name)
    if node is not None and node.op_type == "Constant":
        for item in node.attribute:
            if item.name == "value" and item.t is not None:
                return files.to_array(item.t, None)
    return None


def output_end(graph: Graph, node: Any) -> str:
    """The last tensor of the node's epilogue (see the module's docstring)."""
    y = node.output[0] if node.output else ""
    if not y:
        raise UnsupportedFeatureError("the node has no output Y", where=(label(node),))
    joined_sum = False
    end = y
    for _ in range(64):
        consumer = graph.only_consumer(end)
        branches = graph.consumers.get(end, [])
        if consumer is None and len(branches) == 2 and all(b.op_type in _SPLITS for b in branches):
            joined = _join_of_branches(graph, branches)
            if joined is None:
                break
            end, joined_sum = joined.output[0], joined.op_type in ("Add", "Sum")
            continue
        if consumer is None:
            break
        others = [name for name in consumer.input if name != end]
        passes = _LAYOUT_OPS | _REDUCTIONS | _REVERSALS | {"Slice"}
        if _static_reshape(graph, consumer):
            break  # a shape fixed at export (dynamo's): the span ends before it, to run at any size
        if consumer.op_type in passes and all(graph.is_constant(name) for name in others):
            end = consumer.output[0]
        elif consumer.op_type == "Split" and len(consumer.output) == 2:
            joined = _join_of_branches(graph, [consumer])
            if joined is None:
                break
            end, joined_sum = joined.output[0], joined.op_type in ("Add", "Sum")
        elif consumer.op_type in _SCALES and joined_sum and all(graph.is_constant(n) for n in others):
            end, joined_sum = consumer.output[0], False
        else:
            break
    return end


def _static_reshape(graph: Graph, node: Any) -> bool:
    """A Reshape to a constant shape with no 0 or -1: the batch and length the exporter traced."""
    if node.op_type != "Reshape" or len(node.input) < 2:
        return False
    shape = _constant(graph, node.input[1])
    return shape is not None and bool(np.all(np.ravel(shape) > 0))


def _join_of_branches(graph: Graph, splits: list[Any]) -> Any | None:
    """The one node that joins the two direction branches, past layout ops on each."""
    outputs = [name for split in splits for name in split.output if name]
    if len(outputs) != 2:
        return None
    ends = []
    for name in outputs:
        for _ in range(16):
            consumer = graph.only_consumer(name)
            if consumer is None:
                return None
            if consumer.op_type in _LAYOUT_OPS:
                name = consumer.output[0]
                continue
            ends.append(consumer)
            break
    if len(ends) != 2 or ends[0] is not ends[1] or ends[0].op_type not in _JOINS:
        return None
    return ends[0]


def label(node: Any) -> str:
    return f'{node.op_type} node "{node.name}"'


def links(graph_message: Any, nodes: list[tuple[str, Any]]) -> tuple[tuple[str, str], ...]:
    """(from, to) names of recurrent nodes where one's layer ends where the other's begins,
    through shape-only ops (the ONNX form of one layer feeding the next)."""
    graph = Graph(graph_message)
    ends: dict[str, str] = {}
    for name, node in nodes:
        try:
            ends[output_end(graph, node)] = name
        except UnsupportedFeatureError:
            continue
    found = []
    for name, node in nodes:
        layout = attribute(node, "layout", 0)
        start, _axes = input_boundary(graph, node, "tb" if layout == 0 else "bt")
        for _ in range(16):
            if start in ends and ends[start] != name:
                found.append((ends[start], name))
                break
            producer = graph.producers.get(start)
            if producer is None or producer.op_type not in SHAPE_OPS or not producer.input:
                break
            start = producer.input[0]
    return tuple(found)
