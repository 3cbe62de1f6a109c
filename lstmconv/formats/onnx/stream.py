"""Writing ONNX files: the protobuf wire format by hand, so that a model is written as a stream
from the IR's per-gate blocks, never copied whole; and external data, written beside the model
when it outgrows protobuf's 2 GiB. (Reading is :mod:`.files`, which needs no onnx package.)"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from ... import dtypes
from ...errors import FormatError

#: Protobuf cannot parse a message of 2 GiB or more; past this many bytes of weights (leaving
#: room for the graph) they go to an external data file.
EXTERNAL_THRESHOLD = 2**31 - 2**26
#: External data offsets are page-aligned, so that a reader can map each tensor in place.
ALIGNMENT = 4096

Payload = dict[str, list[np.ndarray]]


# -- reading -----------------------------------------------------------------------------------
def load(path: str) -> onnx.ModelProto:
    """Parse an ``.onnx`` file without following its external data (read later, checked)."""
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as error:
        raise FormatError(
            f"not a readable ONNX model: {type(error).__name__}: {error}", where=(path,)
        ) from None


# -- writing -----------------------------------------------------------------------------------
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
