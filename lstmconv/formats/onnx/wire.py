"""The protobuf wire format, by hand where onnx's own parser would copy the weights: an
``.onnx`` file scanned so that its weights stay memory-mapped, a model written as a stream
from the IR's per-gate blocks, and external data (read inside the model's folder only, and
written beside the model when it outgrows protobuf's 2 GiB)."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ... import dtypes
from ...errors import FormatError, UnsafeInputError

_GRAPH_FIELD = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
_INITIALIZER_FIELD = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
_RAW_DATA_FIELD = TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number
#: Protobuf cannot parse a message of 2 GiB or more; past this many bytes of weights (leaving
#: room for the graph) they go to an external data file.
EXTERNAL_THRESHOLD = 2**31 - 2**26
#: External data offsets are page-aligned, so that a reader can map each tensor in place.
ALIGNMENT = 4096

Payload = dict[str, list[np.ndarray]]


# -- reading -----------------------------------------------------------------------------------
def to_array(tensor: TensorProto, base_dir: str | None) -> np.ndarray:
    """A tensor's values; external data only from inside ``base_dir``, sizes checked first."""
    if tensor.data_location != TensorProto.EXTERNAL:
        try:
            return numpy_helper.to_array(tensor)
        except (ValueError, TypeError) as error:
            raise FormatError(f"tensor data unreadable: {error}", where=(tensor.name,)) from None
    return _external_array(tensor, base_dir)


def _external_array(tensor: TensorProto, base_dir: str | None) -> np.ndarray:
    info = {entry.key: entry.value for entry in tensor.external_data}
    where = (tensor.name,)
    if base_dir is None:
        raise FormatError(
            "the tensor's data is external but the model has no folder",
            where=where,
            hint="read the model from its file",
        )
    location = info.get("location", "")
    root = os.path.realpath(base_dir)
    target = os.path.realpath(os.path.join(root, location))
    if os.path.isabs(location) or os.path.commonpath([root, target]) != root:
        raise UnsafeInputError(
            f"external data {location!r} lies outside the model's folder",
            where=where,
            hint="keep external data files beside the model",
        )
    dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
    shape = tuple(int(d) for d in tensor.dims)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    offset = int(info.get("offset", 0) or 0)
    length = int(info.get("length", expected) or expected)
    if not os.path.isfile(target):
        raise FormatError(f"external data file {location!r} not found", where=where)
    size = os.path.getsize(target)
    if length != expected or offset < 0 or offset + expected > size:
        raise FormatError(
            f"external data holds {max(size - offset, 0)} bytes at offset {offset} (length {length}), "
            f"expected {expected} for shape {shape}",
            where=where,
        )
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(target, dtype=dtype, mode="r", offset=offset, shape=shape)


def _read_varint(buffer: Any, position: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= end or shift > 63:
            raise FormatError("not a readable ONNX model: a varint runs past its message")
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return value, position


def _fields(buffer: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, value start, value end, field end) of each field of a protobuf message;
    the value of a varint or fixed-width field is reported as empty."""
    position = start
    while position < end:
        key, position = _read_varint(buffer, position, end)
        number, wire = key >> 3, key & 7
        value_start = position
        if wire == 0:
            _, position = _read_varint(buffer, position, end)
            value_start = position
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
            value_start = position
        elif wire == 2:
            length, value_start = _read_varint(buffer, position, end)
            position = value_start + length
        else:
            raise FormatError(f"not a readable ONNX model: wire type {wire} where none is expected")
        if position > end:
            raise FormatError("not a readable ONNX model: a field runs past the end of its message")
        yield number, value_start, position, position


def load_mapped(path: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The model without its initializers' raw_data, and those bytes memory-mapped by name.

    A weight's bytes are never copied: onnx parses the rest (graph, nodes, small tensors), and
    the weights are views of the file, read when (and if) they are used."""
    with open(path, "rb") as handle:
        try:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise FormatError("not a readable ONNX model: the file is empty") from None
    head, graph_rest, tensors, mapped = bytearray(), bytearray(), [], {}
    previous = 0
    for number, start, end, field_end in _fields(buffer, 0, len(buffer)):
        field_start, previous = previous, field_end
        if number != _GRAPH_FIELD:
            head += buffer[field_start:field_end]
            continue
        inner_previous = start
        for inner_number, inner_start, inner_end, inner_field_end in _fields(buffer, start, end):
            piece_start, inner_previous = inner_previous, inner_field_end
            if inner_number != _INITIALIZER_FIELD:  # slice only what is kept: never the weights
                graph_rest += buffer[piece_start:inner_field_end]
                continue
            tensor, raw = _tensor_without_raw_data(buffer, inner_start, inner_end)
            tensors.append(tensor)
            if raw is not None:
                mapped[tensor.name] = np.frombuffer(
                    buffer, dtype=np.uint8, count=raw[1] - raw[0], offset=raw[0]
                )
    try:
        proto = onnx.ModelProto.FromString(bytes(head))
        graph = onnx.GraphProto.FromString(bytes(graph_rest))
    except Exception as error:  # protobuf raises DecodeError and others
        raise FormatError(f"not a readable ONNX model: {type(error).__name__}: {error}") from None
    graph.initializer.extend(tensors)
    proto.graph.CopyFrom(graph)
    return proto, mapped


def _tensor_without_raw_data(buffer: Any, start: int, end: int) -> tuple[TensorProto, tuple[int, int] | None]:
    rest, raw, previous = bytearray(), None, start
    for number, value_start, value_end, field_end in _fields(buffer, start, end):
        if number == _RAW_DATA_FIELD:
            raw = (value_start, value_end)
        else:
            rest += buffer[previous:field_end]
        previous = field_end
    try:
        return TensorProto.FromString(bytes(rest)), raw
    except Exception as error:
        raise FormatError(
            f"not a readable ONNX model: an initializer: {type(error).__name__}: {error}"
        ) from None


def load(path: str) -> onnx.ModelProto:
    """Parse an ``.onnx`` file without following its external data (read later, checked)."""
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as error:
        raise FormatError(
            f"not a readable ONNX model: {type(error).__name__}: {error}", where=(path,)
        ) from None


# -- writing -----------------------------------------------------------------------------------
def payload_size(payload: Payload) -> int:
    return sum(block.nbytes for blocks in payload.values() for block in blocks)


def point_external(proto: onnx.ModelProto, payload: Payload, location: str) -> dict[str, int]:
    """Turn the payload's initializers into external data in ``location``, each at a page-aligned
    offset in payload order; returns those offsets."""
    offsets, end = {}, 0
    for tensor in proto.graph.initializer:
        if tensor.name not in payload:
            continue
        offset = -(-end // ALIGNMENT) * ALIGNMENT
        size = sum(block.nbytes for block in payload[tensor.name])
        tensor.data_location = TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(size))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        offsets[tensor.name], end = offset, offset + size
    return offsets


def write_external(proto: onnx.ModelProto, payload: Payload, path: str) -> None:
    """The model at ``path`` and its weights in ``<name>.data`` beside it, streamed block by block."""
    location = os.path.basename(path) + ".data"
    offsets = point_external(proto, payload, location)
    with open(os.path.join(os.path.dirname(path), location), "wb") as handle:
        for name, offset in offsets.items():
            handle.write(b"\0" * (offset - handle.tell()))
            _write_blocks(handle, payload[name])
    with open(path, "wb") as handle:
        handle.write(proto.SerializeToString())


def check_skeleton(proto: onnx.ModelProto, payload: Payload, folder: str) -> None:
    """``onnx.checker`` on the model with its weights standing in as an empty sparse file."""
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(proto)
    offsets = point_external(skeleton, payload, "weights.bin")
    end = max((offsets[name] + sum(b.nbytes for b in payload[name]) for name in offsets), default=0)
    with open(os.path.join(folder, "weights.bin"), "wb") as handle:
        handle.truncate(end)
    path = os.path.join(folder, "skeleton.onnx")
    onnx.save_model(skeleton, path)
    onnx.checker.check_model(path)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _tag(message: Any, field: str) -> bytes:
    """The wire tag of a length-delimited field, from the message's own descriptor."""
    return _varint(message.DESCRIPTOR.fields_by_name[field].number << 3 | 2)


def serialize(proto: onnx.ModelProto, payload: Payload, handle: Any) -> None:
    """Protobuf wire format by hand, so the big ``raw_data`` fields are written from the blocks.
    Fields may come in any order on the wire; parsers merge them."""
    head = onnx.ModelProto()
    head.CopyFrom(proto)
    head.ClearField("graph")
    graph_head = onnx.GraphProto()
    graph_head.CopyFrom(proto.graph)
    del graph_head.initializer[:]
    pieces: list[tuple[bytes, list[np.ndarray]]] = []  # (bytes before the data, the data's blocks)
    for tensor in proto.graph.initializer:
        blocks = payload.get(tensor.name, [])
        size = sum(block.nbytes for block in blocks)
        encoded = tensor.SerializeToString()
        if blocks:
            encoded += _tag(tensor, "raw_data") + _varint(size)
        pieces.append((_tag(proto.graph, "initializer") + _varint(len(encoded) + size) + encoded, blocks))
    graph_bytes = graph_head.SerializeToString()
    graph_size = len(graph_bytes) + sum(
        len(prefix) + sum(b.nbytes for b in blocks) for prefix, blocks in pieces
    )
    handle.write(head.SerializeToString())
    handle.write(_tag(proto, "graph") + _varint(graph_size))
    handle.write(graph_bytes)
    for prefix, blocks in pieces:
        handle.write(prefix)
        _write_blocks(handle, blocks)


def _write_blocks(handle: Any, blocks: list[np.ndarray]) -> None:
    for block in blocks:
        handle.write(dtypes.little_endian_bytes(block))
