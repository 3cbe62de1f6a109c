"""Gate orders are data: each format declares its order once, and this module packs and unpacks.

``unpack(stacked, order)`` cuts a stacked tensor into equal blocks along ``axis`` and names them;
``pack(per_gate, order)`` is its inverse. Views are returned where NumPy allows, so unpacking a
large tensor copies nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import WeightLayoutError

GateOrder = tuple[str, ...]


def unpack(
    stacked: np.ndarray, order: Sequence[str], *, axis: int = 0, tensor: str = ""
) -> dict[str, np.ndarray]:
    """Split ``stacked`` into ``len(order)`` equal blocks along ``axis``, keyed by gate name."""
    count = len(order)
    if stacked.ndim == 0 or axis >= stacked.ndim or axis < -stacked.ndim:
        raise WeightLayoutError(
            f"expected a tensor with a gate axis {axis}, found shape {tuple(stacked.shape)}",
            where=(tensor,),
        )
    size = stacked.shape[axis]
    if size % count:
        raise WeightLayoutError(
            f"gate axis of length {size} does not divide into {count} gates "
            f"({'·'.join(order)}), found shape {tuple(stacked.shape)}",
            where=(tensor,),
            hint=f"expected a multiple of {count}",
        )
    step = size // count
    index: list[slice] = [slice(None)] * stacked.ndim
    blocks = {}
    for position, gate in enumerate(order):
        index[axis] = slice(position * step, (position + 1) * step)
        blocks[gate] = stacked[tuple(index)]
    return blocks


def pack(per_gate: Mapping[str, np.ndarray], order: Sequence[str], *, axis: int = 0) -> np.ndarray:
    """Concatenate the gates of ``per_gate`` in ``order`` along ``axis``."""
    _require(per_gate, order)
    return np.concatenate([per_gate[gate] for gate in order], axis=axis)


def pack_transposed(
    per_gate: Mapping[str, np.ndarray], order: Sequence[str], *, rows: int = 16
) -> np.ndarray:
    """``pack(per_gate, order).T`` of 2-D gates, laid out in C order (as Keras keeps a kernel):
    each gate's (out, in) block goes into its columns ``rows`` of its rows at a time, since a
    transpose copied in one go strides across memory and runs several times slower."""
    _require(per_gate, order)
    height, width = per_gate[order[0]].shape
    packed = np.empty((width, height * len(order)), dtype=per_gate[order[0]].dtype)
    for position, gate in enumerate(order):
        columns = packed[:, position * height : (position + 1) * height]
        for start in range(0, height, rows):
            columns[:, start : start + rows] = per_gate[gate][start : start + rows].T
    return packed


def _require(per_gate: Mapping[str, np.ndarray], order: Sequence[str]) -> None:
    missing = [gate for gate in order if gate not in per_gate]
    if missing:
        raise WeightLayoutError(f"gates {missing} missing, found {sorted(per_gate)}")


def reorder(stacked: np.ndarray, source: Sequence[str], target: Sequence[str], *, axis: int = 0):
    """Move the gate blocks of ``stacked`` from ``source`` order to ``target`` order."""
    return pack(unpack(stacked, source, axis=axis), target, axis=axis)
