"""A layer normalization written as elementary ops, read as one layer without the onnx package.

Two forms are read, each only as a whole (every value inside used by the form alone):

- torch.onnx's at opsets below 17: ``d = x - mean(x)``, ``d / sqrt(mean(d ** 2) + eps)``, then
  ``* weight`` and ``+ bias``;
- tf2onnx's of a Keras LayerNormalization: ``s = weight / sqrt(var + eps)`` with ``var`` the
  mean of ``(x - mean(x))²``, and ``x * s + (bias - mean(x) * s)``.

A mean is a ``ReduceMean`` over the last axis keeping it, or a ``GlobalAveragePool`` of a 3-D
value (which averages its last axis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Node = Any


class Form:
    """What a matched form holds: the epsilon, the scale and bias with where each sits
    ((node, input position)), and the value after it."""

    def __init__(self) -> None:
        self.epsilon: float | None = None
        self.weight: tuple[np.ndarray, Node, int] | None = None
        self.bias: tuple[np.ndarray, Node, int] | None = None
        self.out = ""


def match(
    graph: Any, const: Callable[[str], np.ndarray | None], rank: Callable[[str], int | None], x: str
) -> Form | None:
    """The decomposed layer normalization starting at ``x``, or None."""
    consumers = _uses(graph, x)
    means = [c for c in consumers if _is_mean(graph, const, rank, c, x)]
    subs = [c for c in consumers if c.op_type == "Sub" and list(c.input[:1]) == [x]]
    if len(means) != 1 or len(subs) != 1 or subs[0].input[1] != means[0].output[0]:
        return None
    mean, d = means[0].output[0], subs[0].output[0]
    squares = [c for c in _uses(graph, d) if _is_square(const, c, d)]
    if len(squares) != 1:
        return None
    variance = graph.only_consumer(squares[0].output[0])
    same_rank = lambda _name: rank(x)  # noqa: E731  (the square has x's shape)
    if variance is None or not _is_mean(graph, const, same_rank, variance, squares[0].output[0]):
        return None
    form = Form()
    add = graph.only_consumer(variance.output[0])
    if add is None or add.op_type != "Add":
        return None
    eps = _other_constant(const, add, variance.output[0])
    sqrt = graph.only_consumer(add.output[0])
    if eps is None or eps.size != 1 or sqrt is None or sqrt.op_type != "Sqrt":
        return None
    form.epsilon = float(eps.reshape(-1)[0])
    root = sqrt.output[0]
    d_uses = _uses(graph, d)
    if len(d_uses) == 2 and len(_uses(graph, mean)) == 1:
        return _torch_form(graph, const, form, d, root)
    if len(d_uses) == 1:
        return _keras_form(graph, const, form, x, mean, root)
    return None


def _torch_form(graph: Any, const: Callable, form: Form, d: str, root: str) -> Form | None:
    div = graph.only_consumer(root)
    if div is None or div.op_type != "Div" or list(div.input) != [d, root]:
        return None
    out = div.output[0]
    scale = graph.only_consumer(out)
    if scale is not None and scale.op_type == "Mul":
        weight = _other_constant(const, scale, out)
        if weight is not None:
            form.weight, out = (weight, scale, _position(scale, out)), scale.output[0]
    shift = graph.only_consumer(out)
    if shift is not None and shift.op_type == "Add":
        bias = _other_constant(const, shift, out)
        if bias is not None:
            form.bias, out = (bias, shift, _position(shift, out)), shift.output[0]
    form.out = out
    return form


def _keras_form(graph: Any, const: Callable, form: Form, x: str, mean: str, root: str) -> Form | None:
    inverse = graph.only_consumer(root)
    if inverse is None or inverse.op_type != "Reciprocal":
        return None
    scale = graph.only_consumer(inverse.output[0])
    weight = _other_constant(const, scale, inverse.output[0]) if scale is not None else None
    if scale is None or scale.op_type != "Mul" or weight is None:
        return None
    s = scale.output[0]
    uses = _uses(graph, s)
    scaled_x = [u for u in uses if u.op_type == "Mul" and sorted(u.input) == sorted([x, s])]
    negs = [c for c in _uses(graph, mean) if c.op_type == "Neg"]
    if len(uses) != 2 or len(scaled_x) != 1 or len(negs) != 1:
        return None
    scaled_mean = graph.only_consumer(negs[0].output[0])
    if scaled_mean is None or scaled_mean.op_type != "Mul" or s not in scaled_mean.input:
        return None
    shift = graph.only_consumer(scaled_mean.output[0])
    bias = _other_constant(const, shift, scaled_mean.output[0]) if shift is not None else None
    if shift is None or shift.op_type != "Add" or bias is None:
        return None
    total = graph.only_consumer(shift.output[0])
    if (
        total is None
        or total.op_type != "Add"
        or sorted(total.input) != sorted([scaled_x[0].output[0], shift.output[0]])
    ):
        return None
    if graph.only_consumer(scaled_x[0].output[0]) is not total:
        return None
    form.weight = (weight, scale, _position(scale, inverse.output[0]))
    form.bias = (bias, shift, _position(shift, scaled_mean.output[0]))
    form.out = total.output[0]
    return form


def _uses(graph: Any, value: str) -> list[Node]:
    """The nodes using ``value``, each once (``Mul(d, d)`` uses it twice)."""
    return list({id(node): node for node in graph.consumers.get(value, [])}.values())


def _position(node: Node, value: str) -> int:
    """The input position of the node's other operand (the constant beside ``value``)."""
    return 1 if node.input[0] == value else 0


def _other_constant(const: Callable, node: Node, value: str) -> np.ndarray | None:
    if len(node.input) != 2 or value not in node.input:
        return None
    return const(node.input[_position(node, value)])


def _is_square(const: Callable, node: Node, d: str) -> bool:
    if node.op_type == "Mul":
        return list(node.input) == [d, d]
    if node.op_type == "Pow" and node.input[0] == d:
        exponent = const(node.input[1])
        return exponent is not None and exponent.size == 1 and float(exponent.reshape(-1)[0]) == 2.0
    return False


def _is_mean(graph: Any, const: Callable, rank: Callable, node: Node, x: str) -> bool:
    if list(node.input[:1]) != [x]:
        return False
    if node.op_type == "GlobalAveragePool":
        return rank(x) == 3
    if node.op_type != "ReduceMean":
        return False
    from .epilogue import attribute

    if attribute(node, "keepdims", 1) != 1:
        return False
    axes = attribute(node, "axes", None)
    if axes is None and len(node.input) > 1:
        value = const(node.input[1]) if node.input[1] else None
        axes = None if value is None else [int(v) for v in np.ravel(value)]
    known = rank(x)
    return (
        axes is not None
        and len(axes) == 1
        and (axes[0] == -1 or (known is not None and axes[0] == known - 1))
    )
