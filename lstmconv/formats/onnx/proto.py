"""The ONNX messages lstmconv writes, encoded in protobuf's wire format without the onnx package.

Each message encodes its fields in field-number order, as protobuf's own serializer does, so a
model encoded here is byte for byte what ``onnx.helper`` builds and ``SerializeToString`` gives
(the tests hold the two side by side). Field numbers are onnx.proto's (proto2: repeated
integers unpacked, strings and messages length-delimited).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import dtypes
from ...errors import UnsupportedFeatureError
from .names import DTYPES, FLOAT, FLOATS, INT, INTS, STRING, STRINGS

#: NumPy dtype name -> TensorProto.DataType.
CODES = {name: code for code, name in DTYPES.items()}
#: TensorProto.DataLocation.EXTERNAL.
EXTERNAL = 1
#: (first opset, IR version) from onnx.helper.VERSION_TABLE: the lowest IR version holding an opset.
_IR_VERSIONS = (
    (1, 3),
    (9, 4),
    (10, 5),
    (11, 6),
    (12, 7),
    (15, 8),
    (19, 9),
    (21, 10),
    (23, 11),
    (24, 12),
    (25, 13),
    (28, 14),
)
#: The newest opset :data:`_IR_VERSIONS` knows.
NEWEST_OPSET = 28


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as protobuf writes it: ten bytes, two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_prefix(number: int, size: int) -> bytes:
    """The tag and length of a length-delimited field of ``size`` bytes (written after it)."""
    return key(number, 2) + varint(size)


def _bytes(number: int, value: bytes) -> bytes:
    return length_prefix(number, len(value)) + value


def _text(number: int, value: str) -> bytes:
    return _bytes(number, value.encode())


def _integer(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def _float(number: int, value: float) -> bytes:
    return key(number, 5) + struct.pack("<f", value)


def dtype_code(dtype: np.dtype | str) -> int:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    return CODES[name]


def ir_version(opset: int) -> int:
    """The IR version ``onnx.helper.make_model_gen_version`` gives a model of ``opset``."""
    if not 1 <= opset <= NEWEST_OPSET:
        raise UnsupportedFeatureError(
            f"opset {opset} is not one lstmconv knows (1 to {NEWEST_OPSET})",
            hint="leave the opset to lstmconv",
        )
    return max(version for first, version in _IR_VERSIONS if first <= opset)


@dataclasses.dataclass
class Tensor:
    """A TensorProto: its bytes inline (``raw``), or pointing at external data (``external``)."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    raw: bytes | None = None
    external: list[tuple[str, str]] | None = None

    def encode(self) -> bytes:
        out = b"".join(_integer(1, dim) for dim in self.dims) + _integer(2, self.data_type)
        out += _text(8, self.name)
        if self.raw is not None:
            out += _bytes(9, self.raw)
        if self.external is not None:
            out += b"".join(_bytes(13, _text(1, k) + _text(2, v)) for k, v in self.external)
            out += _integer(14, EXTERNAL)
        return out


def from_array(array: np.ndarray, name: str) -> Tensor:
    """``numpy_helper.from_array``: the array's little-endian bytes inline."""
    data = bytes(dtypes.little_endian_bytes(np.ascontiguousarray(array)))
    return Tensor(name, tuple(int(n) for n in array.shape), dtype_code(array.dtype), raw=data)


@dataclasses.dataclass
class Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str
    attributes: dict[str, Any]

    def encode(self) -> bytes:
        out = b"".join(_text(1, name) for name in self.inputs)
        out += b"".join(_text(2, name) for name in self.outputs)
        out += _text(3, self.name) + _text(4, self.op_type)
        for name, value in sorted(self.attributes.items()):  # make_node sorts them by name
            out += _bytes(5, _attribute(name, value))
        return out


def _attribute(name: str, value: Any) -> bytes:
    """An AttributeProto as ``onnx.helper.make_attribute`` makes it, its fields in number order."""
    out = _text(1, name)
    if isinstance(value, bool | int | np.integer):
        return out + _integer(3, int(value)) + _integer(20, INT)
    if isinstance(value, float):
        return out + _float(2, value) + _integer(20, FLOAT)
    if isinstance(value, str):
        return out + _text(4, value) + _integer(20, STRING)
    values = list(value)
    if all(isinstance(v, str) for v in values):
        return out + b"".join(_text(9, v) for v in values) + _integer(20, STRINGS)
    if all(isinstance(v, int | np.integer) for v in values):
        return out + b"".join(_integer(8, int(v)) for v in values) + _integer(20, INTS)
    return out + b"".join(_float(7, float(v)) for v in values) + _integer(20, FLOATS)


def value_info(name: str, elem_type: int, shape: Sequence[int | str | None]) -> bytes:
    """``make_tensor_value_info``: a tensor of ``elem_type`` with named, sized or unknown (None)
    dimensions."""
    dims = b"".join(
        _bytes(1, b"" if dim is None else _text(2, dim) if isinstance(dim, str) else _integer(1, dim))
        for dim in shape
    )
    tensor_type = _integer(1, elem_type) + _bytes(2, dims)
    return _text(1, name) + _bytes(2, _bytes(1, tensor_type))


@dataclasses.dataclass
class ModelProto:
    """A model of one graph: its nodes, initializers, inputs and outputs (value infos, encoded)."""

    nodes: list[Node]
    initializers: list[Tensor]
    inputs: list[bytes]
    outputs: list[bytes]
    opset: int
    producer_version: str
    graph_name: str = "lstmconv"
    producer_name: str = "lstmconv"

    def head(self) -> bytes:
        """The model's fields before the graph (field 7)."""
        out = _integer(1, ir_version(self.opset))
        return out + _text(2, self.producer_name) + _text(3, self.producer_version)

    def tail(self) -> bytes:
        """The model's fields after the graph: the opset import."""
        return _bytes(8, _text(1, "") + _integer(2, self.opset))

    def graph_head(self) -> bytes:
        """The graph's nodes and name (fields 1, 2), before its initializers (5)."""
        return b"".join(_bytes(1, node.encode()) for node in self.nodes) + _text(2, self.graph_name)

    def graph_tail(self) -> bytes:
        """The graph's inputs and outputs (fields 11, 12), after its initializers."""
        return b"".join(_bytes(11, v) for v in self.inputs) + b"".join(_bytes(12, v) for v in self.outputs)

    def encode(self) -> bytes:
        """The whole model, each initializer as it stands (placeholders hold no bytes)."""
        graph = self.graph_head() + b"".join(_bytes(5, t.encode()) for t in self.initializers)
        graph += self.graph_tail()
        return self.head() + _bytes(7, graph) + self.tail()
