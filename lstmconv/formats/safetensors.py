"""``.safetensors`` in PyTorch ``nn.LSTM/GRU/RNN`` naming, read and written without torch.

The file is the state_dict of ``to_torch(model)``. The header metadata records each simple
RNN's nonlinearity (which shapes cannot tell) under ``lstmconv``.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from ..errors import FormatError, LstmconvError
from ..ir import Kind, Model
from . import statedict

NAME = "safetensors"
EXTENSIONS = (".safetensors",)
check = statedict.check


def _check_header(path: str) -> None:
    """What the safetensors library lets through: duplicate keys (the last would win silently).
    The header's length is checked against the file before it is read."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise FormatError("not a readable safetensors file: shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > size - 8:
            raise FormatError(
                f"not a readable safetensors file: header of {length} bytes in a {size}-byte file"
            )
        text = handle.read(length)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise FormatError(
                    f"key {key!r} appears twice in the header", hint="each tensor must be stored once"
                )
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(text, object_pairs_hook=unique)
    except (ValueError, UnicodeDecodeError) as error:
        if isinstance(error, LstmconvError):
            raise
        raise FormatError(f"not a readable safetensors file: header is not JSON: {error}") from None


def read(source: Any, *, nonlinearity: str | None = None, **_: Any) -> Model:
    path = os.fspath(source)
    _check_header(path)
    try:
        with safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open is no dict
    except (SafetensorError, OSError, ValueError) as error:
        raise FormatError(f"not a readable safetensors file: {error}", where=(path,)) from None
    recorded_meta = json.loads(metadata.get("lstmconv", "{}"))
    recorded = recorded_meta.get("nonlinearity", {})
    order = {name: index for index, name in enumerate(recorded_meta.get("order", []))}
    if order:  # the header's keys are sorted; lstmconv records the model order
        tensors = dict(sorted(tensors.items(), key=lambda item: order.get(item[0].split(".")[0], len(order))))
    try:
        return statedict.read_tensors(
            tensors,
            nonlinearity=nonlinearity or "tanh",
            source=path,
            per_module=None if nonlinearity else recorded,
        )
    except LstmconvError as error:
        raise error.within(path) from None


_DTYPES = {"float16": "F16", "float32": "F32", "float64": "F64", "bfloat16": "BF16"}


def write(model: Model, path: str, **_: Any) -> None:
    """Write the state_dict of ``to_torch(model)``: an 8-byte little-endian header length, a JSON
    header (keys sorted, so the same model gives the same bytes), then each tensor's bytes."""
    tensors = statedict.state_dict(model)
    nonlinearity = {
        name: layer.activations[0].name
        for name, layer in zip(statedict.module_names(model), model)
        if layer.kind is Kind.RNN
    }
    header: dict[str, Any] = {
        "__metadata__": {
            "format": "pt",
            "lstmconv": json.dumps(
                {"nonlinearity": nonlinearity, "order": statedict.module_names(model)}, sort_keys=True
            ),
        }
    }
    offset = 0
    for key, array in tensors.items():
        header[key] = {
            "dtype": _DTYPES[array.dtype.name],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for array in tensors.values():
            handle.write(
                np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            )
