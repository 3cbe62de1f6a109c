"""The model without its values: each layer as JSON, everything the IR holds but the arrays,
and the way back.

``.npz`` keeps this description beside its arrays; a Keras file's structure is looked at in a
forked child that sends back the description with each tensor's shape and dtype instead of its
values (:func:`outline`), which :func:`placeholders` turns back into arrays that cost no memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import dtypes
from .errors import FormatError
from .ir import Activation, Cell, Kind, Layer, Model, Skipped
from .plain import PlainKind, PlainLayer

_FIELDS = ("w_ih", "w_hh", "b_ih", "b_hh", "peephole")


def metadata(layer: Layer) -> dict[str, Any]:
    """What a layer is, without its tensors (the TF clips only where set, so files without
    them keep their bytes)."""
    clips = {f: getattr(layer, f) for f in ("cell_clip", "proj_clip") if getattr(layer, f) is not None}
    return {
        "name": layer.name,
        "kind": layer.kind.value,
        "direction": layer.direction.value,
        "merge": layer.merge,
        "activations": [[a.name, a.alpha, a.beta] for a in layer.activations],
        "clip": layer.clip,
        "input_forget": layer.input_forget,
        "reset_after": layer.reset_after,
        "reversed_output": layer.reversed_output,
        "dtype": layer.dtype.name,
        **clips,
    }


def keyed(model: Model) -> dict[str, np.ndarray]:
    """Every tensor of every layer under ``<layer>/<direction>/<field>[/<gate>]``."""
    return {
        f"{layer.name}/{layer.direction_name(index)}/{tensor}": array
        for layer in model
        for index, cell in enumerate(layer.cells)
        for tensor, array in cell.tensors()
    }


def layer(entry: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Layer:
    """The layer ``entry`` describes, its tensors taken from ``arrays`` by their keys."""
    name = entry["name"]
    direction = entry["direction"]
    labels = ("forward", "backward") if direction == "bidirectional" else (direction,)
    stored = _stored_dtype(entry.get("dtype"))
    cells = []
    for label in labels:
        prefix = f"{name}/{label}/"
        fields: dict[str, Any] = {}
        for key in arrays.keys():  # noqa: SIM118 - an NpzFile iterates its members' names this way only
            if key.startswith(prefix):
                field, _, gate = key[len(prefix) :].partition("/")
                if field in _FIELDS and gate:
                    fields.setdefault(field, {})[gate] = stored(arrays[key])
                elif field == "w_hr" and not gate:
                    fields["w_hr"] = stored(arrays[key])
        cells.append(Cell(**fields))
    return Layer(
        Kind(entry["kind"]),
        tuple(cells),
        name=name,
        direction=direction,
        merge=entry.get("merge", "concat"),
        activations=tuple(Activation(*spec) for spec in entry["activations"]),
        clip=entry.get("clip"),
        input_forget=bool(entry.get("input_forget", False)),
        reset_after=bool(entry.get("reset_after", True)),
        reversed_output=bool(entry.get("reversed_output", False)),
        cell_clip=entry.get("cell_clip"),
        proj_clip=entry.get("proj_clip"),
    )


def _stored_dtype(name: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """How to take a layer's arrays: NumPy writes bfloat16 as raw 2-byte values (``V2``)."""
    if name != "bfloat16":
        return lambda array: array
    bfloat16 = dtypes.resolve(name)

    def view(array: np.ndarray) -> np.ndarray:
        if array.dtype.itemsize != 2:
            raise FormatError(f"expected 2-byte bfloat16 values, found {array.dtype}")
        return array.view(bfloat16)

    return view


def outline(model: Model) -> dict[str, Any]:
    """The model's layers with each tensor's shape and dtype name in place of its values, and
    what the reader left out (``skipped``)."""
    described: dict[str, Any] = {
        "layers": [metadata(layer) for layer in model],
        "tensors": {key: [list(array.shape), array.dtype.name] for key, array in keyed(model).items()},
    }
    if model.skipped:  # only where there is something: a model without keeps its outline
        described["skipped"] = [dataclasses.asdict(entry) for entry in model.skipped]
    if model.around:  # the plain layers, likewise only where there are some
        described["around"] = [
            {
                "name": layer.name,
                "kind": layer.kind.value,
                "options": dict(layer.options),
                "tensors": {key: [list(array.shape), array.dtype.name] for key, array in layer.items()},
            }
            for layer in model.around
        ]
        described["order"] = list(model.order or ())
    return described


def placeholders(outlined: Mapping[str, Any], source: str) -> Model:
    """The model :func:`outline` described, every value zero, in arrays that hold one element."""
    tensors = outlined["tensors"].items()
    arrays = {key: placeholder(tuple(shape), dtypes.resolve(dtype)) for key, (shape, dtype) in tensors}
    skipped = tuple(
        Skipped.of(entry["name"], entry["kind"], [(name, shape) for name, shape in entry["tensors"]])
        for entry in outlined.get("skipped", [])
    )
    plain = tuple(
        PlainLayer(
            PlainKind(entry["kind"]),
            entry["name"],
            {
                key: placeholder(tuple(shape), dtypes.resolve(dtype))
                for key, (shape, dtype) in entry["tensors"].items()
            },
            entry["options"],
        )
        for entry in outlined.get("around", [])
    )
    return Model(
        tuple(layer(entry, arrays) for entry in outlined["layers"]),
        source,
        skipped=skipped,
        around=plain,
        order=tuple(outlined["order"]) if plain else None,
    )


def placeholder(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Zeros of ``shape`` that hold one element: a tensor whose values were left unread."""
    return np.broadcast_to(np.zeros((), dtype), shape)


# -- the plain layers (issue #16) ------------------------------------------------------------------
def plain_metadata(layer: PlainLayer) -> dict[str, Any]:
    """What a plain layer is, without its tensors: kind, options, and each tensor's dtype."""
    return {
        "name": layer.name,
        "kind": layer.kind.value,
        "options": dict(layer.options),
        "tensors": {key: array.dtype.name for key, array in layer.items()},
    }


def plain_keyed(model: Model) -> dict[str, np.ndarray]:
    """Every tensor of every plain layer under ``<layer>/<tensor>`` (``fc/weight``)."""
    return {f"{layer.name}/{key}": array for layer in model.around for key, array in layer.items()}


def plain_layer(entry: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> PlainLayer:
    """The plain layer ``entry`` describes, its tensors taken from ``arrays`` by their keys."""
    name = entry["name"]
    tensors = {key: _stored_dtype(dtype)(arrays[f"{name}/{key}"]) for key, dtype in entry["tensors"].items()}
    return PlainLayer(PlainKind(entry["kind"]), name, tensors, entry["options"])
