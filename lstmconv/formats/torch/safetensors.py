"""``.safetensors`` in PyTorch ``nn.LSTM/GRU/RNN`` naming, read and written without torch.

The file is the state_dict of ``to_torch(model)`` (and the tensors of plain layers the source
does not link, which that module leaves out): an 8-byte little-endian header length, a JSON
header, then the tensors' bytes. The header is validated here (sizes against the file, offsets
inside the data and not overlapping, each key once) and the tensors are memory-mapped, so
reading costs what the pages touched cost. Writing streams each gate's block to the file in
turn. The header metadata records each simple RNN's nonlinearity (which shapes cannot tell)
and the layer order under ``lstmconv``.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import dtypes, progress
from ...errors import FormatError, LstmconvError
from ...ir import Model
from .._common import DIMS_SHOWN, dims, elements, parse_json
from . import keys, statedict
from . import template as template_

_DTYPES: dict[str, np.dtype] = {
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "BOOL": np.dtype("bool"),
}
_NAMES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32", "float64": "F64", "int64": "I64"}
#: The writer carries the plain layers (Embedding, Linear, Conv1d, norms) as nn keys.
HOLDS_PLAIN = True
#: Headers larger than this are refused before they are read (the format's own limit is 100 MB).
MAX_HEADER = 100_000_000


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise FormatError(
                f"key {key!r} appears twice in the header", hint="each tensor must be stored once"
            )
        seen.add(key)
    return dict(pairs)


def _header(path: str) -> tuple[dict[str, Any], int, int]:
    """(header, where the data starts, the data's length), every size checked before reading."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise FormatError("not a readable safetensors file: shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(size - 8, MAX_HEADER):
            raise FormatError(
                f"not a readable safetensors file: header of {length} bytes in a {size}-byte file"
            )
        text = handle.read(length)
    try:  # UTF-8 only, as the safetensors library reads it (json.loads of bytes would take UTF-16)
        header = parse_json(text.decode("utf-8"), "the header", object_pairs_hook=_unique)
    except LstmconvError:
        raise
    except (ValueError, UnicodeDecodeError) as error:
        raise FormatError(f"not a readable safetensors file: header is not UTF-8 JSON: {error}") from None
    if not isinstance(header, dict):
        raise FormatError("not a readable safetensors file: the header is not a JSON object")
    metadata = header.get("__metadata__")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(value, str) for value in metadata.values())
    ):
        raise FormatError("not a readable safetensors file: __metadata__ must map names to strings")
    return header, 8 + length, size - 8 - length


def _integers(values: Any, what: str, key: str) -> tuple[int, ...]:
    """A list of JSON integers ≥ 0, as the safetensors library demands (no "2", 2.0 or true)."""
    if not isinstance(values, list) or not all(type(n) is int and n >= 0 for n in values):
        raise FormatError(
            f"not a readable safetensors file: {what} must be non-negative integers, found {_shown(values)}",
            where=(key,),
        )
    return tuple(values)


def _recorded(metadata: Any) -> dict[str, Any]:
    """What lstmconv recorded in the header's ``__metadata__`` (its ``lstmconv`` JSON text), or {}."""
    if not isinstance(metadata, dict):
        return {}
    recorded = parse_json(metadata.get("lstmconv") or "{}", "__metadata__ › lstmconv")
    if not isinstance(recorded, dict):
        raise FormatError(
            "not a readable safetensors file: the metadata lstmconv records is not a JSON object"
        )
    return recorded


def _shown(values: Any) -> str:
    """A header value for a message, short whatever the file holds: a long list abbreviated as
    a shape (:func:`dims`), anything else cut at 200 characters."""
    if isinstance(values, list) and len(values) > DIMS_SHOWN:
        return dims(values)
    text = repr(values)
    return text if len(text) <= 200 else text[:200] + "..."


def _dtype(name: str) -> np.dtype:
    if name == "BF16":
        return dtypes.resolve("bfloat16")
    return _DTYPES[name]


def _tensors(path: str, header: dict[str, Any], start: int, data_length: int) -> dict[str, np.ndarray]:
    spans: list[tuple[int, int, str, np.dtype, tuple[int, ...]]] = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = _dtype(entry["dtype"])
            shape = _integers(entry["shape"], "shape", key)
            begin, end = _integers(entry["data_offsets"], "data_offsets", key)
        except (KeyError, TypeError, ValueError) as error:
            raise FormatError(
                f"not a readable safetensors file: bad header entry ({error})", where=(key,)
            ) from None
        expected = elements(shape) * dtype.itemsize  # no int64 wrap
        if any(n < 0 for n in shape) or not 0 <= begin <= end <= data_length or end - begin != expected:
            raise FormatError(
                f"not a readable safetensors file: offsets {begin}..{end} for {entry['dtype']} {dims(shape)} "
                f"({expected} bytes) in {data_length} bytes of data",
                where=(key,),
            )
        spans.append((begin, end, key, dtype, shape))
    spans.sort()
    covered = 0  # the tensors tile the data exactly, in offset order: no overlap, no gap, no tail
    for begin, end, key, *_rest in spans:
        if begin != covered:
            problem = (
                "overlaps the tensor before it" if begin < covered else f"leaves a gap at byte {covered}"
            )
            raise FormatError(f"not a readable safetensors file: {key!r} at {begin}..{end} {problem}")
        covered = end
    if covered != data_length:
        raise FormatError(
            f"not a readable safetensors file: the tensors cover {covered} of the {data_length} data bytes"
        )
    mapped = (  # a plain ndarray over the map: slicing a memmap costs ~20 µs a tensor
        np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(data_length,)).view(np.ndarray)
        if data_length
        else None
    )
    position = {key: index for index, key in enumerate(header)}
    tensors = {}
    for begin, end, key, dtype, shape in sorted(spans, key=lambda span: position[span[2]]):
        raw = mapped[begin:end] if mapped is not None else np.zeros(0, np.uint8)
        tensors[key] = raw.view(dtype).reshape(shape)
    return tensors


def read(source: Any, *, nonlinearity: str | None = None, **options: Any) -> Model:
    path = os.fspath(source)
    header, start, data_length = _header(path)
    tensors = _tensors(path, header, start, data_length)
    metadata = header.get("__metadata__") or {}
    recorded_meta = _recorded(metadata)
    recorded = recorded_meta.get("nonlinearity", {})
    order = {name: index for index, name in enumerate(recorded_meta.get("order", []))}
    if order:  # the header's keys are sorted; lstmconv records the model order
        tensors = dict(
            sorted(tensors.items(), key=lambda item: order.get(item[0].rpartition(".")[0], len(order)))
        )
    try:
        return statedict.read_tensors(
            tensors,
            nonlinearity=nonlinearity,
            source=path,
            per_module=None if nonlinearity else recorded,
            recorded=statedict.checked_links(recorded_meta.get("links")),
            **{key: options[key] for key in ("like", "like_names", "epsilon") if key in options},
            ordered=bool(order),  # else the header's sorted keys: no model order
        )
    except LstmconvError as error:
        raise error.within(path) from None


def write(model: Model, path: str, *, as_cell: bool = False, **options: Any) -> None:
    """Header first (keys sorted, so the same model gives the same bytes), then each tensor's
    gate blocks in turn, streamed: no stacked copy of the model is ever made. ``as_cell``:
    every layer as a single-step cell (``nn.LSTMCell`` keys); ``rename``/``prefix``: the keys
    renamed (:mod:`.keys`)."""
    ready = keys.prepared(
        model, path, as_cell=as_cell, rename=options.get("rename"), prefix=options.get("prefix")
    )
    parts = ready.blocks
    order = list(dict.fromkeys(key.rpartition(".")[0] for key in parts))
    recorded: dict[str, Any] = {"nonlinearity": ready.nonlinearities, "order": order}
    if ready.links:
        recorded["links"] = ready.links
    meta = json.dumps(recorded, sort_keys=True)
    header: dict[str, Any] = {"__metadata__": {"format": "pt", "lstmconv": meta}}
    offset = 0
    for key, blocks in parts.items():
        shape = (
            list(blocks[0].shape)
            if len(blocks) == 1
            else [sum(block.shape[0] for block in blocks), *blocks[0].shape[1:]]
        )
        nbytes = sum(block.nbytes for block in blocks)
        header[key] = {
            "dtype": _NAMES[blocks[0].dtype.name],
            "shape": shape,
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with progress.counting(offset), open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for blocks in parts.values():
            for block in blocks:
                handle.write(dtypes.little_endian_bytes(block))
                progress.advance(block.nbytes)  # the weights, for the progress line


def write_like(model: Model, template: str, pairs: Sequence[tuple[str, str]], dest: str) -> None:
    """Write ``model``'s weights into ``dest`` in the exact layout of the ``.safetensors``
    ``template``: its keys in its order, its dtypes, its integer entries and metadata kept."""
    header, start, data_length = _header(template)
    tensors = _tensors(template, header, start, data_length)
    recorded = _recorded(header.get("__metadata__"))
    present = statedict.read_tensors(
        tensors, source=template, like=model, like_names=dict(pairs), ordered=bool(recorded.get("order"))
    )
    values = template_.values(model, present, pairs, tensors, template)
    written: dict[str, Any] = {}
    offset = 0
    arrays = []
    for key, entry in header.items():
        if key == "__metadata__":
            written[key] = entry
            continue
        array = values.get(key, tensors[key])
        arrays.append(array)
        written[key] = {**entry, "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(written, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dest, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for array in arrays:
            handle.write(dtypes.little_endian_bytes(array))
