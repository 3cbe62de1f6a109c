"""Writing ONNX files without the onnx package: the protobuf wire format (:mod:`.proto`), so a
model is written as a stream from the IR's per-gate blocks, never copied whole; and external
data, written beside the model when it outgrows protobuf's 2 GiB. The bytes are what onnx's own
serializer gives for the same model. (Reading is :mod:`.files`; ``onnx.checker`` runs in
verification, :mod:`.live`.)"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ... import dtypes, progress
from ...ir import Model
from . import proto
from .graph import Graph, assemble

#: Protobuf cannot parse a message of 2 GiB or more; past this many bytes of weights (leaving
#: room for the graph) they go to an external data file.
EXTERNAL_THRESHOLD = 2**31 - 2**26
#: External data offsets are page-aligned, so that a reader can map each tensor in place.
ALIGNMENT = 4096

Payload = dict[str, list[np.ndarray]]


#: Plain layers are written as nodes where the source says how they connect (``BUILDS_CHAIN``:
#: otherwise the api lists them as not carried).
HOLDS_PLAIN = True
BUILDS_CHAIN = True


def write(
    model: Model,
    path: str,
    *,
    opset: int | None = None,
    external_data: bool | None = None,
    input_name: str | None = None,
    output_name: str | None = None,
    **_: Any,
) -> None:
    """Save ``to_onnx(model)`` to ``path``, streamed, so no copy of the model is ever made: each
    weight's bytes are taken gate block by gate block from the IR.

    Weights beyond protobuf's 2 GiB (or all of them, with ``external_data=True``) go to
    ``<name>.data`` beside the model, as ONNX external data. ``input_name``/``output_name``
    name a one-chain model's input and output (default ``input``/``output``)."""
    graph = Graph()
    model_proto = assemble(model, graph, opset, input_name, output_name)
    if external_data is None:
        external_data = past_protobuf(model)
    total = sum(block.nbytes for blocks in graph.payload.values() for block in blocks)
    with progress.counting(total):
        if external_data:
            write_external(model_proto, graph.payload, path)
            return
        with open(path, "wb") as handle:
            serialize(model_proto, graph.payload, handle)


def past_protobuf(model: Model) -> bool:
    """Whether the model's weights (every one becomes an initializer) outgrow protobuf's 2 GiB."""
    size = sum(array.nbytes for layer in model for cell in layer.cells for _, array in cell.tensors())
    return size > EXTERNAL_THRESHOLD


def point_external(model: proto.ModelProto, payload: Payload, location: str) -> dict[str, int]:
    """Turn the payload's initializers into external data in ``location``, each at a page-aligned
    offset in payload order; returns those offsets."""
    offsets, end = {}, 0
    for tensor in model.initializers:
        if tensor.name not in payload:
            continue
        offset = -(-end // ALIGNMENT) * ALIGNMENT
        size = sum(block.nbytes for block in payload[tensor.name])
        tensor.external = [("location", location), ("offset", str(offset)), ("length", str(size))]
        offsets[tensor.name], end = offset, offset + size
    return offsets


def write_external(model: proto.ModelProto, payload: Payload, path: str) -> None:
    """The model at ``path`` and its weights in ``<name>.data`` beside it, streamed block by block."""
    location = os.path.basename(path) + ".data"
    offsets = point_external(model, payload, location)
    with open(os.path.join(os.path.dirname(path), location), "wb") as handle:
        for name, offset in offsets.items():
            handle.write(b"\0" * (offset - handle.tell()))
            _write_blocks(handle, payload[name])
    with open(path, "wb") as handle:
        handle.write(model.encode())


def serialize(model: proto.ModelProto, payload: Payload, handle: Any) -> None:
    """The model on the wire, its fields in number order as protobuf writes them, with the big
    ``raw_data`` fields written from the blocks."""
    pieces: list[tuple[bytes, list[np.ndarray]]] = []  # (bytes before the data, the data's blocks)
    for tensor in model.initializers:
        blocks = payload.get(tensor.name, []) if tensor.raw is None and tensor.external is None else []
        size = sum(block.nbytes for block in blocks)
        encoded = tensor.encode()
        if blocks:
            encoded += proto.length_prefix(9, size)  # raw_data
        pieces.append((proto.length_prefix(5, len(encoded) + size) + encoded, blocks))  # initializer
    graph_head, graph_tail = model.graph_head(), model.graph_tail()
    graph_size = len(graph_head) + len(graph_tail)
    graph_size += sum(len(prefix) + sum(b.nbytes for b in blocks) for prefix, blocks in pieces)
    handle.write(model.head() + proto.length_prefix(7, graph_size) + graph_head)
    for prefix, blocks in pieces:
        handle.write(prefix)
        _write_blocks(handle, blocks)
    handle.write(graph_tail + model.tail())


def _write_blocks(handle: Any, blocks: list[np.ndarray]) -> None:
    for block in blocks:
        handle.write(dtypes.little_endian_bytes(block))
        progress.advance(block.nbytes)
