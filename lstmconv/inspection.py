"""What ``inspect`` shows of a layer: its tensors as a format stores them (names, shapes, gate
orders) and in the canonical layout, its math, and its parameter counts, as plain data.

Each format family's face declares its own ``layout(layer)``; this module asks the registry
for it, so framework names stay in their families and no framework is imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .ir import Kind, Layer
from .registry import by_name

#: What inspect calls each activation slot of a kind.
SLOT_NAMES: Mapping[Kind, tuple[str, ...]] = MappingProxyType(
    {Kind.LSTM: ("gate", "cell", "output"), Kind.GRU: ("gate", "candidate"), Kind.RNN: ("output",)}
)


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    gates: str  # the stacking order along the gate axis, "" where there is none


def stored(layer: Layer, fmt: str) -> list[Tensor]:
    """The tensors ``fmt`` stores for ``layer``."""
    return by_name(fmt).load_face().layout(layer)


def canonical(layer: Layer) -> list[Tensor]:
    tensors = []
    for index, cell in enumerate(layer.cells):
        direction = layer.direction_name(index)
        for name, array in cell.tensors():
            tensors.append(Tensor(f"{direction}/{name}", tuple(array.shape), ""))
    return tensors


def parameter_count(tensors: list[Tensor]) -> int:
    total = 0
    for tensor in tensors:
        count = 1
        for n in tensor.shape:
            count *= n
        total += count
    return total


def describe(layer: Layer, fmt: str) -> dict[str, Any]:
    """One layer as ``inspect --json`` shows it, with its tensors as ``fmt`` stores them."""
    in_format, in_ir = stored(layer, fmt), canonical(layer)
    return {
        "name": layer.name,
        "kind": layer.kind.value,
        "direction": layer.direction.value,
        "merge": layer.merge if layer.num_directions == 2 else None,
        "input_size": layer.input_size,
        "hidden_size": layer.hidden_size,
        "proj_size": layer.proj_size,
        "output_size": layer.output_size,
        "dtype": str(layer.dtype),
        "activations": {slot: str(a) for slot, a in zip(SLOT_NAMES[layer.kind], layer.activations)},
        "gru_variant": ("reset-after" if layer.reset_after else "reset-before")
        if layer.kind is Kind.GRU
        else None,
        "clip": layer.clip,
        "input_forget": layer.input_forget,
        "peepholes": layer.has_peepholes,
        "bias": layer.has_bias,
        "reversed_output": layer.reversed_output,
        "stepped": layer.stepped,
        "stored": [{"name": t.name, "shape": list(t.shape), "gates": t.gates} for t in in_format],
        "canonical": [{"name": t.name, "shape": list(t.shape)} for t in in_ir],
        "parameters": {"stored": parameter_count(in_format), "canonical": parameter_count(in_ir)},
    }
