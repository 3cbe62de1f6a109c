"""``.npz``: the IR itself, readable with NumPy alone.

Keys are ``<layer>/<direction>/<field>/<gate>`` (``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``,
``peephole``) and ``<layer>/<direction>/w_hr``; directions are ``forward``, ``reverse`` or
``forward`` + ``backward``. The key ``__lstmconv__`` holds the layers' metadata as JSON text.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from .. import dtypes
from ..errors import FormatError, LstmconvError
from ..ir import Activation, Cell, Kind, Layer, Model

NAME = "npz"
EXTENSIONS = (".npz",)
META_KEY = "__lstmconv__"
VERSION = 1
_FIELDS = ("w_ih", "w_hh", "b_ih", "b_hh", "peephole")
#: A fixed timestamp so the same model gives the same bytes.
_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def check(layer: Layer) -> None:
    """Every IR feature fits in an ``.npz``."""


def _meta(layer: Layer) -> dict[str, Any]:
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
    }


def arrays(model: Model) -> dict[str, np.ndarray]:
    """Every array of the file, metadata included, in a fixed order."""
    result: dict[str, np.ndarray] = {
        META_KEY: np.array(json.dumps({"version": VERSION, "layers": [_meta(layer) for layer in model]}))
    }
    for layer in model:
        for index, cell in enumerate(layer.cells):
            prefix = f"{layer.name}/{layer.direction_name(index)}"
            for tensor, array in cell.tensors():
                result[f"{prefix}/{tensor}"] = array
    return result


def write(model: Model, path: str, **_: Any) -> None:
    """Write an uncompressed ``.npz`` with fixed timestamps (same model, same bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays(model).items():
            info = zipfile.ZipInfo(key + ".npy", date_time=_DATE_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def read(source: Any, **_: Any) -> Model:
    path = os.fspath(source)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if META_KEY not in archive.files:
                raise FormatError(f"no {META_KEY} entry: not an lstmconv .npz", where=(path,))
            meta = json.loads(str(archive[META_KEY]))
            layers = tuple(_layer(entry, archive) for entry in meta["layers"])
    except LstmconvError as error:
        raise error.within(path) from None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise FormatError(
            f"not a readable lstmconv .npz: {type(error).__name__}: {error}", where=(path,)
        ) from None
    return Model(layers, path)


def _stored_dtype(name: str | None) -> Any:
    """How to read the layer's arrays: NumPy writes bfloat16 as raw 2-byte values (``V2``)."""
    if name != "bfloat16":
        return lambda array: array
    bfloat16 = dtypes.resolve(name)

    def view(array: np.ndarray) -> np.ndarray:
        if array.dtype.itemsize != 2:
            raise FormatError(f"expected 2-byte bfloat16 values, found {array.dtype}")
        return array.view(bfloat16)

    return view


def _layer(entry: dict[str, Any], archive: Any) -> Layer:
    name = entry["name"]
    direction = entry["direction"]
    directions = ("forward", "backward") if direction == "bidirectional" else (direction,)
    stored = _stored_dtype(entry.get("dtype"))
    cells = []
    for label in directions:
        prefix = f"{name}/{label}/"
        fields: dict[str, Any] = {}
        for key in archive.files:
            if key.startswith(prefix):
                field, _, gate = key[len(prefix) :].partition("/")
                if field in _FIELDS and gate:
                    fields.setdefault(field, {})[gate] = stored(archive[key])
                elif field == "w_hr" and not gate:
                    fields["w_hr"] = stored(archive[key])
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
    )
