"""Folding pure-constant chains while reading: weights that an exporter left computed by
Transpose, Reshape, Squeeze, Unsqueeze, Concat, Slice, Cast, Gather, Identity, Expand or Tile
of initializers and Constant nodes (OpenVINO's exports, torch.jit.script's, some tf2onnx ones).

Each op is computed in NumPy as the ONNX operator defines it. Where an operator moved an
attribute to an input in a newer opset (Squeeze/Unsqueeze axes at 13, Slice at 10, Reshape's
shape at 5), a valid model carries exactly one of the two forms, so the node's own attribute is
read when present and the input otherwise. The work is bounded: every value is folded once
(memoized), chains are at most :data:`MAX_DEPTH` deep, and the elements folded in total are
capped (by the file's size: a file cannot honestly hold weights larger than itself), checked
before each result is made, so Expand/Tile bombs and Concat doublings are refused, not run.
Needs no onnx package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import FormatError, LstmconvError, UnsafeInputError
from .._common import dims
from .names import DTYPES

#: Ops folded when every input is a constant.
FOLDABLE = frozenset(
    {
        "Identity",
        "Cast",
        "Transpose",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Slice",
        "Gather",
        "Expand",
        "Tile",
        "Flatten",
    }
)
#: How long a chain of folded ops may be.
MAX_DEPTH = 64
#: The least element budget (a small file's weights may be folded from tiny constants).
MIN_BUDGET = 1 << 20

#: TensorProto.DataType -> NumPy dtype name, for Cast's ``to`` (bfloat16 is not folded).
_CAST = {code: name for code, name in DTYPES.items() if name != "bfloat16"}


class Budget:
    """The elements folding may still make."""

    def __init__(self, elements: int) -> None:
        self.total = max(int(elements), MIN_BUDGET)
        self.left = self.total

    def take(self, count: int, what: str) -> None:
        if count > self.left:
            raise UnsafeInputError(
                f"folding {what} would make {count} elements, past the {self.total} elements the "
                "file's size allows for folded constants",
                hint="a constant-folding bomb, or a model whose weights are not constants",
            )
        self.left -= count


def fold(
    node: Any,
    inputs: list[np.ndarray | None],
    attrs: dict[str, Any],
    budget: Budget,
) -> np.ndarray | None:
    """The value of ``node`` (one of :data:`FOLDABLE`) from its constant ``inputs`` (None for an
    absent optional input), or None when it is not a pure constant lstmconv folds."""
    op = node.op_type
    label = f'{op} node "{node.name}"'
    if op == "Concat":
        return _concat(inputs, attrs, budget, label)
    first = inputs[0] if inputs else None
    if first is None:
        return None
    data: np.ndarray = first

    def _int_list(index: int, attribute: str) -> list[int] | None:
        if attribute in attrs:
            return [int(v) for v in np.ravel(attrs[attribute])]
        given = inputs[index] if len(inputs) > index else None
        return None if given is None else [int(v) for v in np.ravel(given)]

    def _made(shape: tuple[int, ...]) -> None:
        budget.take(int(np.prod(shape, dtype=np.int64)) if shape else 1, label)

    try:
        if op == "Identity":
            return data
        if op == "Cast":
            to = _CAST.get(int(attrs.get("to", 0)))
            if to is None:
                return None
            _made(data.shape)
            return data.astype(to)
        if op == "Transpose":
            perm = attrs.get("perm")
            perm = list(range(data.ndim))[::-1] if perm is None else [int(p) for p in perm]
            if sorted(perm) != list(range(data.ndim)):
                raise FormatError(f"{label}: perm {perm} is not a permutation of {data.ndim} axes")
            _made(data.shape)
            return np.ascontiguousarray(np.transpose(data, perm))
        if op == "Reshape":
            shape = _int_list(1, "shape")
            if shape is None:
                return None
            return _reshape(data, shape, bool(attrs.get("allowzero", 0)), label)
        if op == "Flatten":
            axis = int(attrs.get("axis", 1))
            axis = axis + data.ndim if axis < 0 else axis
            if not 0 <= axis <= data.ndim:
                raise FormatError(f"{label}: axis {axis} out of range for rank {data.ndim}")
            rows = int(np.prod(data.shape[:axis], dtype=np.int64))
            return data.reshape(rows, int(np.prod(data.shape[axis:], dtype=np.int64)))
        if op == "Squeeze":
            axes = _int_list(1, "axes")
            if axes is None:
                return np.squeeze(data)
            normal = _axes(axes, data.ndim, label)
            if any(data.shape[a] != 1 for a in normal):
                raise FormatError(
                    f"{label}: squeezes axes {dims(axes)} of shape {dims(data.shape)}, not all of size 1"
                )
            return np.squeeze(data, axis=tuple(normal))
        if op == "Unsqueeze":
            axes = _int_list(1, "axes")
            if axes is None:
                return None
            rank = data.ndim + len(axes)
            shape = list(data.shape)
            for axis in sorted(_axes(axes, rank, label)):
                shape.insert(axis, 1)
            return data.reshape(shape)
        if op == "Slice":
            return _slice(data, inputs, attrs, label)
        if op == "Gather":
            if len(inputs) < 2 or inputs[1] is None:
                return None
            indices = np.asarray(inputs[1]).astype(np.int64)
            axis = int(attrs.get("axis", 0))
            axis = axis + data.ndim if axis < 0 else axis
            if not 0 <= axis < data.ndim:
                raise FormatError(f"{label}: axis {axis} out of range for rank {data.ndim}")
            size = data.shape[axis]
            if np.any(indices < -size) or np.any(indices >= size):
                raise FormatError(f"{label}: indices outside [-{size}, {size - 1}]")
            _made(data.shape[:axis] + indices.shape + data.shape[axis + 1 :])
            return np.take(data, np.where(indices < 0, indices + size, indices), axis=axis)
        if op == "Expand":
            if len(inputs) < 2 or inputs[1] is None:
                return None
            wanted = [int(v) for v in np.ravel(inputs[1])]
            if any(v < 0 for v in wanted):
                raise FormatError(f"{label}: negative shape {dims(wanted)}")
            try:
                broadcast = np.broadcast_shapes(data.shape, tuple(wanted))
            except ValueError:
                raise FormatError(
                    f"{label}: shape {dims(data.shape)} does not broadcast to {dims(wanted)}"
                ) from None
            _made(broadcast)
            return np.broadcast_to(data, broadcast).copy()
        if op == "Tile":
            if len(inputs) < 2 or inputs[1] is None:
                return None
            repeats = [int(v) for v in np.ravel(inputs[1])]
            if len(repeats) != data.ndim or any(r < 0 for r in repeats):
                raise FormatError(f"{label}: repeats {dims(repeats)} do not fit rank {data.ndim}")
            _made(tuple(d * r for d, r in zip(data.shape, repeats)))
            return np.tile(data, repeats)
    except LstmconvError:
        raise
    except (ValueError, IndexError, TypeError, OverflowError) as error:
        raise FormatError(f"{label} cannot be folded: {error}") from None
    return None


def _concat(
    inputs: list[np.ndarray | None], attrs: dict[str, Any], budget: Budget, label: str
) -> np.ndarray | None:
    parts = [p for p in inputs if p is not None]
    if not parts or len(parts) != len(inputs):
        return None
    axis = int(attrs.get("axis", 0))
    rank = parts[0].ndim
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < max(rank, 1) or any(p.ndim != rank for p in parts):
        raise FormatError(f"{label}: axis {axis} does not fit inputs of ranks {dims(p.ndim for p in parts)}")
    budget.take(sum(int(p.size) for p in parts), label)
    try:
        return np.concatenate(parts, axis=axis)
    except (ValueError, TypeError) as error:
        raise FormatError(f"{label} cannot be folded: {error}") from None


def _axes(axes: list[int], rank: int, label: str) -> list[int]:
    normal = [a + rank if a < 0 else a for a in axes]
    if any(not 0 <= a < rank for a in normal) or len(set(normal)) != len(normal):
        raise FormatError(f"{label}: axes {dims(axes)} out of range or repeated for rank {rank}")
    return normal


def _reshape(data: np.ndarray, shape: list[int], allowzero: bool, label: str) -> np.ndarray:
    out = []
    for index, value in enumerate(shape):
        if value == 0 and not allowzero:
            if index >= data.ndim:
                raise FormatError(f"{label}: shape {dims(shape)} copies dim {index} of rank {data.ndim}")
            out.append(data.shape[index])
        else:
            out.append(value)
    if out.count(-1) > 1 or any(v < -1 for v in out):
        raise FormatError(f"{label}: shape {dims(shape)} is not a valid Reshape shape")
    return data.reshape(out)


def _slice(
    data: np.ndarray, inputs: list[np.ndarray | None], attrs: dict[str, Any], label: str
) -> np.ndarray | None:
    """Slice-1 (starts/ends/axes attributes) and Slice-10+ (inputs, with steps)."""
    if "starts" in attrs:
        starts, ends = list(attrs["starts"]), list(attrs.get("ends", []))
        axes = list(attrs["axes"]) if "axes" in attrs else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        given = [_ints_of(inputs[i] if len(inputs) > i else None) for i in range(1, 5)]
        if given[0] is None or given[1] is None:
            return None
        starts, ends = given[0], given[1]
        axes = given[2] if given[2] is not None else list(range(len(starts)))
        steps = given[3] if given[3] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise FormatError(f"{label}: starts, ends, axes and steps differ in length")
    index: list[slice] = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, _axes(list(axes), data.ndim, label), steps):
        if step == 0:
            raise FormatError(f"{label}: step 0")
        # ONNX clamps starts and ends into the axis exactly as Python's slice.indices does.
        first, stop, stride = slice(int(start), int(end), int(step)).indices(data.shape[axis])
        index[axis] = slice(first, None if stop < 0 else stop, stride)
    return data[tuple(index)]


def _ints_of(value: np.ndarray | None) -> list[int] | None:
    return None if value is None else [int(v) for v in np.ravel(value)]


def attributes_of(node: Any, read: Callable[[Any], Any]) -> dict[str, Any]:
    """The node's attributes by name (``read`` gives one attribute's value)."""
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        try:
            values[attribute.name] = read(attribute)
        except FormatError:
            continue
    return values
