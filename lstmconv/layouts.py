"""How each format stores a layer, for ``inspect``: tensor names, shapes and gate orders.

Each format module declares its own ``layout(layer)``; this module only dispatches, so
framework names stay in their modules and no framework is imported.
"""

from __future__ import annotations

import dataclasses
import importlib

from .ir import Layer

_MODULES = {
    "torch": "lstmconv.formats.statedict",
    "safetensors": "lstmconv.formats.statedict",
    "keras": "lstmconv.formats.keras_names",
    "onnx": "lstmconv.formats.onnx_names",
}


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    gates: str  # the stacking order along the gate axis, "" where there is none


def stored(layer: Layer, fmt: str) -> list[Tensor]:
    """The tensors ``fmt`` stores for ``layer`` (the IR's own for npz)."""
    if fmt not in _MODULES:
        return canonical(layer)
    layout: list[Tensor] = importlib.import_module(_MODULES[fmt]).layout(layer)
    return layout


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
