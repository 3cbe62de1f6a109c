"""The plain layers around the recurrent nodes of an ONNX graph, read without the onnx package.

The graph is walked from its one data input along the values the model computes, in graph
order: shape-only ops pass (Identity, Cast, Transpose, Reshape, Squeeze, Unsqueeze, Flatten,
Dropout); a recurrent node's layer is passed from its input to the end of its epilogue
(:mod:`.epilogue`); and these ops are read as layers (:mod:`lstmconv.plain`, PyTorch's
orientation):

- ``Gather`` of a float initializer by the ids = Embedding (index arithmetic on the ids alone
  before it, tf2onnx's wrap of negative ids, passes where, run on every id in range, it gives
  each back unchanged);
- ``MatMul`` by a 2-D initializer (+ ``Add`` of a bias), ``Gemm`` (``transB``; alpha = beta = 1)
  = Dense, weight turned to (out, in); a ``Relu``/``Tanh``/``Sigmoid``/``Softmax`` (over the
  last axis) that alone consumes it is its activation;
- ``Conv`` with a 1-D kernel = Conv1D (pads, strides, dilations, group);
- ``LayerNormalization`` (over the last axis; epsilon as written, ONNX's default 1e-5 where
  absent) and ``BatchNormalization`` (inference; epsilon).

The first op the walk does not understand, or a value used twice, ends the model's plain
part: what lies past it is left to :func:`.nodes.skipped`, never guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import LstmconvError
from ...plain import PlainKind, PlainLayer
from . import epilogue
from .nodes import Constants
from .walk import (
    Slot,
    Walk,
    any_const,
    attrs_of,
    data_consumers,
    embedding_past_index_ops,
    float_const,
    passes,
    rank_of,
    sources,
)

_ACTIVATIONS = {
    "Relu": "relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Elu": "elu",
    "Selu": "selu",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Exp": "exponential",
    "LeakyRelu": "leaky_relu",
}
#: Attributes an activation op must have to be Keras's (ONNX default, Keras's value).
_KERAS_ATTRIBUTES: dict[str, dict[str, tuple[float, float]]] = {
    "Elu": {"alpha": (1.0, 1.0)},
    "LeakyRelu": {"alpha": (0.01, 0.2)},
    "Selu": {
        "alpha": (1.6732632423543772, 1.6732632423543772),
        "gamma": (1.0507009873554805, 1.0507009873554805),
    },
}
_OVER_AN_AXIS = {"Softmax", "LogSoftmax"}
#: The first opset whose Softmax works over one axis (-1 by default) rather than flattening.
_SOFTMAX_ONE_AXIS = 13


@dataclasses.dataclass
class Read:
    """What the walk found: plain layers and every layer's name in model order, and the
    initializers the plain layers hold (so that they are not listed as skipped)."""

    around: list[PlainLayer] = dataclasses.field(default_factory=list)
    order: list[str] = dataclasses.field(default_factory=list)
    used: set[str] = dataclasses.field(default_factory=set)
    #: Per plain layer, where each tensor sits: (node, input position, transposed (a MatMul's
    #: or Gemm's (in, out) kernel)); what :func:`.live.port_into` overwrites.
    slots: dict[str, dict[str, Slot]] = dataclasses.field(default_factory=dict)


def read_around(
    graph: Any, constants: Constants, recurrent: Sequence[tuple[str, Any]], opset: int | None
) -> Read:
    """The plain layers of ``graph`` along its one chain; ``recurrent``: (layer name, node) of
    the recurrent nodes in the main graph, read already."""
    view = epilogue.Graph(graph)
    starts = {}
    for _name, node in recurrent:
        layout = epilogue.attribute(node, "layout", 0)
        starts[epilogue.input_boundary(view, node, "tb" if layout == 0 else "bt")[0]] = node
    walk = Walk(view, constants, opset, {id(node): name for name, node in recurrent}, starts, set())
    found = Read()
    data = [info.name for info in graph.input if info.name not in view.initializers]
    if len(data) == 1:
        _walk(walk, data[0], found)
    return found


def _walk(walk: Walk, value: str, found: Read) -> None:
    for _ in range(len(walk.graph.nodes) + 1):
        if value in walk.starts and id(walk.starts[value]) in walk.recurrent:
            node = walk.starts.pop(value)
            found.order.append(walk.recurrent[id(node)])
            value = epilogue.output_end(walk.graph, node)
            continue
        consumers = data_consumers(walk, value)
        if len(consumers) > 1 and value not in walk.graph.outputs:
            decomposed = _decomposed_layer_norm(walk, value)
            if decomposed is not None:
                consumers = []
                layer, value, used = decomposed
                _take(walk, found, layer, used)
                continue
        if len(consumers) != 1 or value in walk.graph.outputs:
            start = len(consumers) > 1 and not found.order
            gather = embedding_past_index_ops(walk, value) if start else None
            if gather is None:
                return
            consumers, value = [gather], gather.input[1]
        node = consumers[0]
        if passes(walk, node, value):
            value = node.output[0]
            continue
        read = _layer(walk, node, value)
        if read is None:
            return
        layer, value, used = read
        _take(walk, found, layer, used)


def _take(walk: Walk, found: Read, layer: PlainLayer, used: set[str]) -> None:
    found.around.append(layer)
    found.order.append(layer.name)
    found.used.update(used)
    found.slots[layer.name] = walk.slots
    walk.slots = {}


Result = tuple[PlainLayer, str, set[str]]


def _layer(walk: Walk, node: Any, value: str) -> Result | None:
    """The layer ``node`` starts, the value after it, and the initializers it holds; None when
    ``node`` is not (exactly) one of the layers this module reads."""
    if node.domain not in ("", "ai.onnx"):
        return None
    reader = _READERS.get(node.op_type)
    if reader is None:
        return None
    try:
        return reader(walk, node, value)
    except LstmconvError as error:
        raise error.within(f'{node.op_type} node "{node.name}"') from None


def _name(walk: Walk, node: Any, weights: Sequence[str]) -> str:
    """A layer's name: its weights' module path where the exporter kept it (``fc.weight``:
    ``fc``), else its node's name without the op's part (``/fc/MatMul``: ``fc``)."""
    for weight in weights:
        for suffix in (".weight", ".bias", ".scale", ".running_mean"):
            if weight.endswith(suffix) and len(weight) > len(suffix):
                return _unique(walk, weight[: -len(suffix)])
    label = node.name.strip("/") or node.output[0]
    parts = label.split("/")
    return _unique(walk, "/".join(parts[:-1]) if len(parts) > 1 else label)


def _unique(walk: Walk, name: str) -> str:
    candidate, count = name, 0
    while candidate in walk.taken or candidate in walk.recurrent.values():
        count += 1
        candidate = f"{name}_{count}"
    walk.taken.add(candidate)
    return candidate


def _embedding(walk: Walk, node: Any, value: str) -> Result | None:
    table = float_const(walk, node.input[0])
    if node.input[1] != value or table is None or table.ndim != 2 or attrs_of(node).get("axis", 0) != 0:
        return None
    layer = PlainLayer(PlainKind.EMBEDDING, _name(walk, node, node.input[:1]), {"weight": table})
    walk.slots = {"weight": (node, 0, False)}
    return layer, node.output[0], sources(walk, node.input[:1])


def _matmul(walk: Walk, node: Any, value: str) -> Result | None:
    kernel = float_const(walk, node.input[1])
    if node.input[0] != value or kernel is None or kernel.ndim != 2:
        return None
    tensors, out, names = {"weight": np.ascontiguousarray(kernel.T)}, node.output[0], [node.input[1]]
    walk.slots = {"weight": (node, 1, True)}
    after = walk.graph.only_consumer(out)
    if after is not None and after.op_type == "Reshape" and passes(walk, after, out):
        out = after.output[0]  # tf2onnx's Tensordot: the steps flattened, then their shape back
    add = _only(walk, out, "Add")
    if add is not None:
        other = add.input[1] if add.input[0] == out else add.input[0]
        bias = float_const(walk, other)
        if bias is not None and bias.size == kernel.shape[1] and bias.shape[-1] == kernel.shape[1]:
            tensors["bias"], out = bias.reshape(-1), add.output[0]
            names.append(other)
            walk.slots["bias"] = (add, list(add.input).index(other), False)
    return _dense(walk, node, tensors, out, names)


def _gemm(walk: Walk, node: Any, value: str) -> Result | None:
    attrs = attrs_of(node)
    b = float_const(walk, node.input[1])
    c = float_const(walk, node.input[2]) if len(node.input) > 2 else None
    if (
        node.input[0] != value
        or b is None
        or b.ndim != 2
        or attrs.get("transA", 0)
        or attrs.get("alpha", 1.0) != 1.0
        or (c is not None and attrs.get("beta", 1.0) != 1.0)
    ):
        return None
    weight = b if attrs.get("transB", 0) else b.T
    tensors, names = {"weight": np.ascontiguousarray(weight)}, list(node.input[1:3])
    walk.slots = {"weight": (node, 1, not attrs.get("transB", 0)), "bias": (node, 2, False)}
    if c is not None:
        if c.size != weight.shape[0]:
            return None
        tensors["bias"] = c.reshape(-1)
    elif len(node.input) > 2 and node.input[2]:
        return None  # a bias computed at run time
    return _dense(walk, node, tensors, node.output[0], names)


def _dense(walk: Walk, node: Any, tensors: dict[str, np.ndarray], out: str, names: list[str]) -> Result:
    activation, out = _activation(walk, out, softmax=True)
    layer = PlainLayer(PlainKind.DENSE, _name(walk, node, names), tensors, {"activation": activation})
    return layer, out, sources(walk, names)


def _only(walk: Walk, value: str, op: str) -> Any | None:
    consumer = walk.graph.only_consumer(value)
    return consumer if consumer is not None and consumer.op_type == op else None


def _activation(walk: Walk, value: str, *, softmax: bool) -> tuple[str, str]:
    """The Keras activation applied to ``value`` alone (a softmax only over the last axis, and
    only where ``softmax``: not on a convolution's channels-first output), and the value after."""
    silu = _silu(walk, value)
    if silu is not None:
        return "silu", silu
    consumer = walk.graph.only_consumer(value)
    if consumer is None or consumer.op_type not in _ACTIVATIONS or consumer.domain not in ("", "ai.onnx"):
        return "linear", value
    attrs = attrs_of(consumer)
    if consumer.op_type in _OVER_AN_AXIS:
        default_last = walk.opset is not None and walk.opset >= _SOFTMAX_ONE_AXIS
        if not softmax or not (attrs.get("axis") == -1 or ("axis" not in attrs and default_last)):
            return "linear", value
    for name, (default, wanted) in _KERAS_ATTRIBUTES.get(consumer.op_type, {}).items():
        if _float32(attrs.get(name, default)) != _float32(wanted):
            return "linear", value
    return _ACTIVATIONS[consumer.op_type], consumer.output[0]


def _silu(walk: Walk, value: str) -> str | None:
    """``value · Sigmoid(value)`` (Keras silu/swish), the value after it, or None."""
    uses = list({id(node): node for node in walk.graph.consumers.get(value, [])}.values())
    if len(uses) != 2 or value in walk.graph.outputs:
        return None
    gates = [node for node in uses if node.op_type == "Sigmoid"]
    products = [node for node in uses if node.op_type == "Mul"]
    if len(gates) != 1 or len(products) != 1:
        return None
    gate, product = gates[0], products[0]
    after: str = product.output[0]
    if sorted(product.input) != sorted([value, gate.output[0]]):
        return None
    return after if walk.graph.only_consumer(gate.output[0]) is product else None


def _conv(walk: Walk, node: Any, value: str) -> Result | None:
    """A Conv with a 1-D kernel, or tf2onnx's form of a Keras Conv1D: a 2-D Conv whose kernel
    is one row high (``(out, in, 1, k)``), then a Squeeze of that row and the bias added."""
    weight = float_const(walk, node.input[1])
    bias = float_const(walk, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if node.input[0] != value or weight is None or (len(node.input) > 2 and node.input[2] and bias is None):
        return None
    attrs, out = attrs_of(node), node.output[0]
    if weight.ndim == 4 and weight.shape[2] == 1:
        row = _one_row(attrs)
        squeeze = walk.graph.only_consumer(out)
        if row is None or squeeze is None or not _squeezes_row(walk, squeeze, out):
            return None
        attrs, weight, out = row, weight[:, :, 0, :], squeeze.output[0]
    elif weight.ndim != 3:
        return None
    tensors = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    walk.slots = {"weight": (node, 1, False), "bias": (node, 2, False)}
    names = [node.input[1]] if bias is None else [node.input[1], node.input[2]]
    add = _only(walk, out, "Add") if bias is None else None
    if add is not None:  # tf2onnx's bias, shaped (1, out, 1) to add to (batch, out, time)
        other = add.input[1] if add.input[0] == out else add.input[0]
        added = float_const(walk, other)
        if added is not None and added.ndim >= 2 and added.size == weight.shape[0] and added.shape[-1] == 1:
            tensors["bias"], out = added.reshape(-1), add.output[0]
            walk.slots["bias"] = (add, list(add.input).index(other), False)
            names.append(other)
    kernel, (stride,), (dilation,) = weight.shape[2], attrs.get("strides", [1]), attrs.get("dilations", [1])
    padding = _padding(attrs, kernel, dilation)
    if padding is None:
        return None
    activation, out = _activation(walk, out, softmax=False)
    options = {
        "stride": int(stride),
        "dilation": int(dilation),
        "groups": int(attrs.get("group", 1)),
        "padding": padding,
        "activation": activation,
    }
    return (
        PlainLayer(PlainKind.CONV1D, _name(walk, node, names), tensors, options),
        out,
        sources(walk, names),
    )


def _one_row(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """A 2-D Conv's attributes as the 1-D ones of its one-row kernel; None unless the row
    axis is left alone (stride and dilation 1, no pads)."""
    strides, dilations = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
    pads = attrs.get("pads", [0, 0, 0, 0])
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4 or strides[0] != 1 or dilations[0] != 1:
        return None
    if pads[0] or pads[2]:
        return None
    return {**attrs, "strides": [strides[1]], "dilations": [dilations[1]], "pads": [pads[1], pads[3]]}


def _squeezes_row(walk: Walk, node: Any, value: str) -> bool:
    if node.op_type != "Squeeze" or node.input[0] != value:
        return False
    axes = attrs_of(node).get("axes")
    if axes is None and len(node.input) > 1:
        found = any_const(walk, node.input[1])
        axes = None if found is None else [int(a) for a in np.ravel(found)]
    return axes in ([2], [-2])


def _padding(attrs: dict[str, Any], kernel: int, dilation: int) -> str | int | None:
    """ONNX pads as the IR's padding: valid (none), a number of zeros each side, causal (all on
    the left); None for what the IR cannot say (uneven pads, auto_pad SAME)."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return "valid"
    if auto != "NOTSET":
        return None
    left, right = attrs.get("pads", [0, 0])
    if left == right:
        return "valid" if left == 0 else int(left)
    if right == 0 and left == (kernel - 1) * dilation:
        return "causal"
    return None


def _float32(value: float) -> float:
    return float(np.format_float_positional(np.float32(value), unique=True))


def _layer_norm(walk: Walk, node: Any, value: str) -> Result | None:
    attrs = attrs_of(node)
    scale = float_const(walk, node.input[1])
    bias = float_const(walk, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if node.input[0] != value or scale is None or scale.ndim != 1 or attrs.get("axis", -1) != -1:
        return None
    if (len(node.input) > 2 and node.input[2] and bias is None) or len([o for o in node.output if o]) > 1:
        return None
    tensors = {"weight": scale} if bias is None else {"weight": scale, "bias": bias}
    walk.slots = {"weight": (node, 1, False), "bias": (node, 2, False)}
    options = {"epsilon": _float32(attrs.get("epsilon", 1e-5)), "axis": -1}
    names = [n for n in node.input[1:3] if n]
    layer = PlainLayer(PlainKind.LAYER_NORM, _name(walk, node, names), tensors, options)
    return layer, node.output[0], sources(walk, names)


def _batch_norm(walk: Walk, node: Any, value: str) -> Result | None:
    attrs = attrs_of(node)
    parts = [float_const(walk, name) for name in node.input[1:5]]
    if node.input[0] != value or len(parts) != 4 or any(p is None or p.ndim != 1 for p in parts):
        return None
    if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        return None
    tensors = {key: part for key, part in zip(("weight", "bias", "mean", "var"), parts) if part is not None}
    walk.slots = {key: (node, 1 + i, False) for i, key in enumerate(("weight", "bias", "mean", "var"))}
    options = {"epsilon": _float32(attrs.get("epsilon", 1e-5)), "axis": 1}
    names = list(node.input[1:5])
    layer = PlainLayer(PlainKind.BATCH_NORM, _name(walk, node, names), tensors, options)
    return layer, node.output[0], sources(walk, names)


_READERS = {
    "Gather": _embedding,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Conv": _conv,
    "LayerNormalization": _layer_norm,
    "BatchNormalization": _batch_norm,
}


def _decomposed_layer_norm(walk: Walk, value: str) -> Result | None:
    """A layer normalization written as elementary ops (see :mod:`.decomposed`)."""
    from . import decomposed

    form = decomposed.match(
        walk.graph, lambda name: any_const(walk, name), lambda name: rank_of(walk, name), value
    )
    if form is None or form.epsilon is None or form.weight is None:
        return None
    weight, node, index = form.weight
    tensors = {"weight": weight.reshape(-1)}
    walk.slots = {"weight": (node, index, False)}
    names = [node.input[index]]
    if form.bias is not None:
        bias, bias_node, bias_index = form.bias
        if bias.size != weight.size:
            return None
        tensors["bias"] = bias.reshape(-1)
        walk.slots["bias"] = (bias_node, bias_index, False)
        names.append(bias_node.input[bias_index])
    if any(array.dtype.kind != "f" for array in tensors.values()):
        return None
    options = {"epsilon": _float32(form.epsilon), "axis": -1}
    layer = PlainLayer(PlainKind.LAYER_NORM, _name(walk, node, names), tensors, options)
    return layer, form.out, sources(walk, names)
