"""Reading ``.onnx`` files without the onnx package: the protobuf wire format decoded for the
fields lstmconv reads, with the weights left in the memory-mapped file.

The messages below carry the field names of onnx's own (``node.op_type``, ``tensor.dims``…), so
the graph reading in :mod:`.nodes` works on either; numbers are onnx.proto's, checked against
onnx's descriptors by the tests. External data is read from inside the model's folder only,
its size checked before it is mapped.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import secrets
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np

from ... import dtypes
from ...errors import FormatError, LstmconvError, UnsafeInputError
from ...ir import Model
from .. import _common
from . import around, epilogue
from . import nodes as onnx_nodes
from .names import DTYPES

EXTERNAL = 1  # TensorProto.DataLocation
#: The most nodes a graph may have: each costs a few hundred bytes of memory once decoded.
MAX_NODES = 300_000


# -- the messages ------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class Entry:
    key: str = ""
    value: str = ""


@dataclasses.dataclass(slots=True)
class Tensor:
    name: str = ""
    dims: list[int] = dataclasses.field(default_factory=list)
    data_type: int = 0
    data_location: int = 0
    external_data: list[Entry] = dataclasses.field(default_factory=list)
    raw: np.ndarray | None = None  # raw_data: a view of the file
    float_data: np.ndarray | None = None
    double_data: np.ndarray | None = None
    int32_data: list[int] = dataclasses.field(default_factory=list)
    int64_data: list[int] = dataclasses.field(default_factory=list)
    uint64_data: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class Attribute:
    name: str = ""
    type: int = 0
    f: float = 0.0
    i: int = 0
    s: bytes = b""
    t: Tensor | None = None
    g: Graph | None = None  # a subgraph (Loop, Scan, If bodies)
    floats: list[float] = dataclasses.field(default_factory=list)
    ints: list[int] = dataclasses.field(default_factory=list)
    strings: list[bytes] = dataclasses.field(default_factory=list)
    graphs: list[Graph] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ValueInfo:
    """A graph input, output or value_info: its name and its static dims (None where symbolic);
    ``dims`` is None when the shape is not given."""

    name: str = ""
    dims: list[int | None] | None = None


@dataclasses.dataclass(slots=True)
class Node:
    input: list[str] = dataclasses.field(default_factory=list)
    output: list[str] = dataclasses.field(default_factory=list)
    name: str = ""
    op_type: str = ""
    domain: str = ""
    attribute: list[Attribute] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class Graph:
    name: str = ""
    node: list[Node] = dataclasses.field(default_factory=list)
    initializer: list[Tensor] = dataclasses.field(default_factory=list)
    input: list[ValueInfo] = dataclasses.field(default_factory=list)
    output: list[ValueInfo] = dataclasses.field(default_factory=list)
    value_info: list[ValueInfo] = dataclasses.field(default_factory=list)
    opset: int | None = None  # the model's default-domain opset (set on the main graph)


#: How deep subgraphs (a Loop's body holding an If holding…) may nest in a file lstmconv reads.
MAX_GRAPH_DEPTH = 32


_NODE_TEXT = {3: "name", 4: "op_type", 7: "domain"}


# -- the wire ----------------------------------------------------------------------------------
def _varint(buffer: Any, position: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= end or shift > 63:
            raise FormatError("not a readable ONNX model: a varint runs past its message")
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return value, position


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buffer: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field of a message; a varint's
    value is its bytes."""
    position = start
    while position < end:
        key, position = _varint(buffer, position, end)
        number, wire = key >> 3, key & 7
        value_start = position
        if wire == 0:
            _, position = _varint(buffer, position, end)
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
        elif wire == 2:
            length, value_start = _varint(buffer, position, end)
            position = value_start + length
        else:
            raise FormatError(f"not a readable ONNX model: wire type {wire} where none is expected")
        if position > end or number == 0:
            raise FormatError("not a readable ONNX model: a field runs past the end of its message")
        yield number, wire, value_start, position


class _Reader:
    """Decodes one buffer; every value is checked to lie inside its message."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer
        self.depth = 0

    def text(self, start: int, end: int) -> str:
        try:
            return bytes(self.buffer[start:end]).decode()
        except UnicodeDecodeError:
            raise FormatError("not a readable ONNX model: a name is not UTF-8") from None

    def integer(self, wire: int, start: int, end: int) -> int:
        if wire != 0:
            raise FormatError(f"not a readable ONNX model: wire type {wire} where a varint is expected")
        return _signed(_varint(self.buffer, start, end)[0])

    def integers(self, wire: int, start: int, end: int) -> list[int]:
        """A repeated varint field, packed (wire 2) or one value (wire 0)."""
        if wire == 0:
            return [self.integer(wire, start, end)]
        values, position = [], start
        while position < end:
            value, position = _varint(self.buffer, position, end)
            values.append(_signed(value))
        return values

    def fixed(self, wire: int, start: int, end: int, code: str) -> np.ndarray:
        """A repeated fixed-width field (float, double), packed or one value."""
        width = struct.calcsize(code)
        if wire == 0 or (end - start) % width:
            raise FormatError("not a readable ONNX model: a packed field is not whole values")
        return np.frombuffer(self.buffer, dtype=f"<{code}", count=(end - start) // width, offset=start).copy()

    def model(self) -> Graph:
        graph, opset = None, None
        for number, wire, start, end in _fields(self.buffer, 0, len(self.buffer)):
            if number == 7 and wire == 2:
                graph = self.graph(start, end)
            elif number == 8 and wire == 2:  # opset_import: domain (1), version (2)
                domain, version = "", None
                for number2, wire2, s2, e2 in _fields(self.buffer, start, end):
                    if number2 == 1 and wire2 == 2:
                        domain = self.text(s2, e2)
                    elif number2 == 2:
                        version = self.integer(wire2, s2, e2)
                if domain in ("", "ai.onnx"):
                    opset = version
        if graph is None:
            raise FormatError("not a readable ONNX model: it has no graph")
        graph.opset = opset
        return graph

    def graph(self, start: int, end: int) -> Graph:
        if self.depth >= MAX_GRAPH_DEPTH:
            raise FormatError(f"not a readable ONNX model: subgraphs nest deeper than {MAX_GRAPH_DEPTH}")
        self.depth += 1
        graph = Graph()
        for number, wire, value_start, value_end in _fields(self.buffer, start, end):
            if wire != 2:
                continue
            if number == 1:
                node = self.node(value_start, value_end)
                if not node.op_type:  # checked at once: millions of empty nodes would fill memory
                    raise FormatError(f"not a readable ONNX model: node {len(graph.node)} has no op_type")
                if len(graph.node) >= MAX_NODES:
                    raise UnsafeInputError(
                        f"the graph has more than {MAX_NODES} nodes", hint="no recurrent model needs so many"
                    )
                graph.node.append(node)
            elif number == 2:
                graph.name = self.text(value_start, value_end)
            elif number == 5:
                graph.initializer.append(self.tensor(value_start, value_end))
            elif number in (11, 12, 13):
                values = {11: graph.input, 12: graph.output, 13: graph.value_info}[number]
                values.append(self.value_info(value_start, value_end))
        self.depth -= 1
        return graph

    def value_info(self, start: int, end: int) -> ValueInfo:
        """ValueInfoProto: name (1), type (2) › tensor_type (1) › shape (2) › dim (1) ›
        dim_value (1) or dim_param (2)."""
        info = ValueInfo()
        for number, wire, value_start, value_end in _fields(self.buffer, start, end):
            if number == 1 and wire == 2:
                info.name = self.text(value_start, value_end)
            elif number == 2 and wire == 2:
                info.dims = self._type_dims(value_start, value_end)
        return info

    def _type_dims(self, start: int, end: int) -> list[int | None] | None:
        for number, wire, s1, e1 in _fields(self.buffer, start, end):
            if number != 1 or wire != 2:  # tensor_type
                continue
            for number2, wire2, s2, e2 in _fields(self.buffer, s1, e1):
                if number2 == 2 and wire2 == 2:  # shape
                    dims: list[int | None] = []
                    for number3, wire3, s3, e3 in _fields(self.buffer, s2, e2):
                        if number3 == 1 and wire3 == 2:
                            value: int | None = None
                            for number4, wire4, s4, e4 in _fields(self.buffer, s3, e3):
                                if number4 == 1:
                                    value = self.integer(wire4, s4, e4)
                            dims.append(value)
                    return dims
        return None

    def node(self, start: int, end: int) -> Node:
        node = Node()
        for number, wire, value_start, value_end in _fields(self.buffer, start, end):
            if wire != 2:
                continue
            if number in (1, 2):
                (node.input if number == 1 else node.output).append(self.text(value_start, value_end))
            elif number in (3, 4, 7):
                setattr(
                    node, {3: "name", 4: "op_type", 7: "domain"}[number], self.text(value_start, value_end)
                )
            elif number == 5:
                node.attribute.append(self.attribute(value_start, value_end))
        return node

    def attribute(self, start: int, end: int) -> Attribute:
        attribute = Attribute()
        for number, wire, value_start, value_end in _fields(self.buffer, start, end):
            if number == 1:
                attribute.name = self.text(value_start, value_end)
            elif number == 20:
                attribute.type = self.integer(wire, value_start, value_end)
            elif number == 2:
                attribute.f = float(self.fixed(wire, value_start, value_end, "f")[0])
            elif number == 3:
                attribute.i = self.integer(wire, value_start, value_end)
            elif number == 4:
                attribute.s = bytes(self.buffer[value_start:value_end])
            elif number == 5:
                attribute.t = self.tensor(value_start, value_end)
            elif number == 6 and wire == 2:
                attribute.g = self.graph(value_start, value_end)
            elif number == 11 and wire == 2:
                attribute.graphs.append(self.graph(value_start, value_end))
            elif number == 7:
                attribute.floats.extend(float(v) for v in self.fixed(wire, value_start, value_end, "f"))
            elif number == 8:
                attribute.ints.extend(self.integers(wire, value_start, value_end))
            elif number == 9:
                attribute.strings.append(bytes(self.buffer[value_start:value_end]))
        return attribute

    def tensor(self, start: int, end: int) -> Tensor:
        tensor, floats, doubles = Tensor(), [], []
        for number, wire, value_start, value_end in _fields(self.buffer, start, end):
            if number == 1:
                tensor.dims.extend(self.integers(wire, value_start, value_end))
            elif number == 2:
                tensor.data_type = self.integer(wire, value_start, value_end)
            elif number == 8:
                tensor.name = self.text(value_start, value_end)
            elif number == 9:
                tensor.raw = np.frombuffer(
                    self.buffer, dtype=np.uint8, count=value_end - value_start, offset=value_start
                )
            elif number == 14:
                tensor.data_location = self.integer(wire, value_start, value_end)
            elif number == 13:
                tensor.external_data.append(self.entry(value_start, value_end))
            elif number == 4:
                floats.append(self.fixed(wire, value_start, value_end, "f"))
            elif number == 10:
                doubles.append(self.fixed(wire, value_start, value_end, "d"))
            elif number in (5, 7, 11):
                field = {5: tensor.int32_data, 7: tensor.int64_data, 11: tensor.uint64_data}[number]
                field.extend(self.integers(wire, value_start, value_end))
        tensor.float_data = np.concatenate(floats) if floats else None
        tensor.double_data = np.concatenate(doubles) if doubles else None
        return tensor

    def entry(self, start: int, end: int) -> Entry:
        entry = Entry()
        for number, _wire, value_start, value_end in _fields(self.buffer, start, end):
            if number in (1, 2):
                setattr(entry, "key" if number == 1 else "value", self.text(value_start, value_end))
        return entry


# -- tensors -----------------------------------------------------------------------------------
def tensor_dtype(data_type: int) -> np.dtype:
    name = DTYPES.get(data_type)
    if name is None:
        raise FormatError(f"tensor data type {data_type} is not one lstmconv reads")
    return dtypes.resolve(name) if dtypes.is_float(name) else np.dtype(name)


def to_array(tensor: Any, base_dir: str | None) -> np.ndarray:
    """A tensor's values (a message of this module or of onnx): raw data as a view of the file,
    external data only from inside ``base_dir``, every size checked first."""
    where = (tensor.name,)
    try:
        dtype = tensor_dtype(tensor.data_type)
        shape = tuple(int(n) for n in tensor.dims)
        if any(n < 0 for n in shape):
            raise FormatError(f"negative dims {_common.dims(shape)}")
        count = _common.elements(shape)  # no int64 wrap
        if tensor.data_location == EXTERNAL:
            return _external_array(tensor, base_dir, dtype, shape)
        raw = _raw(tensor)
        if raw is not None:
            if raw.nbytes != count * dtype.itemsize:
                raise FormatError(
                    f"raw_data holds {raw.nbytes} bytes, expected {count * dtype.itemsize} "
                    f"for shape {_common.dims(shape)}"
                )
            return raw.view(dtype.newbyteorder("<")).reshape(shape)
        return _typed_values(tensor, dtype, count).reshape(shape)
    except LstmconvError as error:
        raise error.within(*where) from None


def _raw(tensor: Any) -> np.ndarray | None:
    raw = getattr(tensor, "raw", None)
    if raw is not None:
        return raw
    data = getattr(tensor, "raw_data", b"")  # an onnx TensorProto
    return np.frombuffer(data, dtype=np.uint8) if data else None


def _typed_values(tensor: Any, dtype: np.dtype, count: int) -> np.ndarray:
    """Values kept in the typed fields: float_data, double_data, int32_data (which also holds
    the bits of float16 and bfloat16), int64_data, uint64_data."""
    if dtype.name == "float32":
        values = np.asarray(tensor.float_data if tensor.float_data is not None else [], dtype=np.float32)
    elif dtype.name == "float64":
        values = np.asarray(tensor.double_data if tensor.double_data is not None else [], dtype=np.float64)
    elif dtype.name in ("float16", "bfloat16"):
        values = np.asarray(tensor.int32_data, dtype=np.int64).astype(np.uint16).view(dtype)
    elif dtype.name == "int64":
        values = np.asarray(tensor.int64_data, dtype=np.int64)
    elif dtype.name in ("uint32", "uint64"):
        values = np.asarray(tensor.uint64_data, dtype=np.uint64).astype(dtype)
    else:
        values = np.asarray(tensor.int32_data, dtype=np.int64).astype(dtype)
    if values.size != count:
        raise FormatError(
            f"holds {values.size} values, expected {count} for shape {_common.dims(tensor.dims)}"
        )
    return values


def require_one_link(target: str, location: str) -> None:
    """Refuse an external data file with more than one hard link: its path lies inside the
    model's folder, but a hard link made elsewhere (``ln ~/.ssh/id_rsa weights.bin``) is the same
    bytes as a file outside it, which no path check can see."""
    links = os.stat(target).st_nlink
    if links > 1:
        raise UnsafeInputError(
            f"external data file {location!r} has {links} hard links: a hard link can reach bytes "
            "outside the model's folder, so external data must be a file of its own",
            hint="copy the data file beside the model (cp, not ln) and convert again",
        )


def _external_array(tensor: Any, base_dir: str | None, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    info = {entry.key: entry.value for entry in tensor.external_data}
    if base_dir is None:
        raise FormatError(
            "the tensor's data is external but the model has no folder", hint="read the model from its file"
        )
    location = info.get("location", "")
    root = os.path.realpath(base_dir)
    target = os.path.realpath(os.path.join(root, location))
    if os.path.isabs(location) or os.path.commonpath([root, target]) != root:
        raise UnsafeInputError(
            f"external data {location!r} lies outside the model's folder",
            hint="keep external data files beside the model",
        )
    expected = _common.elements(shape) * dtype.itemsize
    try:
        offset = int(info.get("offset", 0) or 0)
        length = int(info.get("length", expected) or expected)
    except ValueError:
        raise FormatError(f"external data offset or length is not a number: {info}") from None
    in_place = is_in_place(tensor)  # a skeleton's own mark: the model file itself
    if in_place and length != expected:
        raise FormatError(f"raw_data holds {length} bytes, expected {expected} for shape {shape}")
    if not os.path.exists(target):
        raise FormatError(f"external data file {location!r} not found")
    _common.require_regular_file(target)
    if not in_place:  # the model's own bytes: whatever links it has, they are what is read
        require_one_link(target, location)
    size = os.path.getsize(target)
    if length != expected or offset < 0 or offset + expected > size:
        raise FormatError(
            f"external data holds {max(size - offset, 0)} bytes at offset {offset} (length {length}), "
            f"expected {expected} for shape {_common.dims(shape)}"
        )
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(target, dtype=dtype.newbyteorder("<"), mode="r", offset=offset, shape=shape)


# -- a skeleton for the onnx package --------------------------------------------------------------
#: The external-data key marking a tensor whose raw data a :func:`skeleton` left in the file.
IN_PLACE = "lstmconv_in_place"
#: Its value, known only to this process: a file naming the key itself gets no exemption.
_IN_PLACE_TOKEN = secrets.token_hex(16)
_GRAPH, _INITIALIZER, _RAW_DATA, _EXTERNAL_DATA, _DATA_LOCATION = 7, 5, 9, 13, 14


def is_in_place(tensor: Any) -> bool:
    """Whether a tensor is one a :func:`skeleton` of this process left in its model's file."""
    return any(e.key == IN_PLACE and e.value == _IN_PLACE_TOKEN for e in tensor.external_data)


def _whole_fields(buffer: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """:func:`_fields` with where each field's tag starts: (number, wire, tag start, value start,
    value end); fields follow each other, so a field starts where the one before it ends."""
    previous = start
    for number, wire, value_start, value_end in _fields(buffer, start, end):
        yield number, wire, previous, value_start, value_end
        previous = value_end


def skeleton(path: str, over: int) -> bytes:
    """The bytes of the model in ``path`` with the raw data of each main-graph initializer
    longer than ``over`` bytes left in the file: such a tensor is marked as external data of the
    model file itself (offset, length and :data:`IN_PLACE`), so that onnx parses a few kilobytes
    instead of every weight, and :func:`to_array` maps the values where they lie."""
    from .proto import key, length_prefix, varint

    def text(number: int, value: str) -> bytes:
        return length_prefix(number, len(value.encode())) + value.encode()

    def tensor(start: int, end: int) -> bytes:
        kept, moved, elsewhere = bytearray(), None, False
        for number, wire, tag, value_start, value_end in _whole_fields(buffer, start, end):
            if number == _RAW_DATA and wire == 2 and value_end - value_start > over:
                moved = (value_start, value_end - value_start)
            else:
                kept += buffer[tag:value_end]
            elsewhere = elsewhere or number in (_EXTERNAL_DATA, _DATA_LOCATION)
        if moved is None or elsewhere:  # a tensor that names external data is left as onnx reads it
            return bytes(buffer[start:end])
        offset, length = moved
        for name, value in (
            ("location", location),
            ("offset", str(offset)),
            ("length", str(length)),
            (IN_PLACE, _IN_PLACE_TOKEN),
        ):
            body = text(1, name) + text(2, value)
            kept += length_prefix(_EXTERNAL_DATA, len(body)) + body
        return bytes(kept + key(_DATA_LOCATION, 0) + varint(EXTERNAL))

    location = os.path.basename(path)
    with open(path, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise FormatError("not a readable ONNX model: the file is empty", where=(path,)) from None
    buffer = memoryview(mapped)
    try:
        out = bytearray()
        for number, wire, tag, value_start, value_end in _whole_fields(buffer, 0, len(buffer)):
            if number != _GRAPH or wire != 2:
                out += buffer[tag:value_end]
                continue
            graph = bytearray()
            for inner, inner_wire, inner_tag, start, end in _whole_fields(buffer, value_start, value_end):
                if inner == _INITIALIZER and inner_wire == 2 and end - start > over:
                    body = tensor(start, end)
                    graph += length_prefix(_INITIALIZER, len(body)) + body
                else:
                    graph += buffer[inner_tag:end]
            out += length_prefix(_GRAPH, len(graph)) + graph
        return bytes(out)
    except LstmconvError as error:
        raise error.within(path) from None
    finally:
        buffer.release()
        mapped.close()


# -- reading -----------------------------------------------------------------------------------
def load(path: str) -> Graph:
    """The graph of an ``.onnx`` file, its weights left in the memory-mapped file."""
    with open(path, "rb") as handle:
        try:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise FormatError("not a readable ONNX model: the file is empty") from None
    return _Reader(memoryview(buffer)).model()


def read(source: Any, **_: Any) -> Model:
    """IR of every LSTM/GRU/RNN node of an ``.onnx`` file, in graph order (subgraphs' too)."""
    path = os.fspath(source)
    graph = load(path)
    base = os.path.dirname(os.path.abspath(path))
    return read_graph(graph, base, path, size=os.path.getsize(path), opset=graph.opset)


def _refuse_shared_weights(found: list[Any]) -> None:
    """The weights the recurrent nodes use, counted per use, at most ``MAX_RATIO`` times the
    distinct weights stored (plus slack): one stored initializer named by 20,000 nodes is 20,000
    layers to check, verify and write, from the bytes of one."""
    used, stored = 0, dict[tuple[int, str], int]()
    for item in found:
        for name in item.node.input:
            value = item.constants.get(name)
            if value is not None:
                used += value.nbytes
                scope = item.constants  # the scope defining the name: one stored tensor, one key
                while name not in scope.local and scope.outer is not None:
                    scope = scope.outer
                stored[(id(scope), name)] = value.nbytes
        if used > _common.MAX_RATIO * sum(stored.values()) + _common.RATIO_SLACK:
            raise UnsafeInputError(
                f"{len(found)} recurrent nodes use {used} bytes of weights (up to node "
                f"{item.node.name!r}) from {sum(stored.values())} bytes stored: more than "
                f"{_common.MAX_RATIO}× what is stored",
                hint="nodes sharing one initializer this often are a bomb, not a model",
            )


def read_graph(
    graph: Any, base_dir: str | None, label: str, size: int = 0, opset: int | None = None
) -> Model:
    """IR of every LSTM/GRU/RNN node of a graph (of this module's messages or onnx's), those of
    its If/Loop/Scan subgraphs named by their path, and of the plain layers along its one chain
    (:mod:`.around`). ``size`` (the file's bytes) caps the elements constant folding may make;
    ``opset`` (the model's, where known) says what an op's defaults are."""
    from . import fold

    constants = onnx_nodes.Constants(
        graph, lambda tensor: to_array(tensor, base_dir), budget=fold.Budget(size)
    )
    layers = []
    try:
        found, names, plain = read_nodes(graph, constants, opset)
        for name, item in zip(names, found):
            layers.append(onnx_nodes.layer_from_node(item.node, item.constants, name))
    except LstmconvError as error:
        raise error.within(label) from None
    left = onnx_nodes.skipped(
        graph,
        constants,
        [f.node for f in found],
        scoped=[(f.node, f.constants) for f in found],
        held=plain.used,
    )
    links: list[tuple[str, str]] = []
    for scope in {id(f.graph): f.graph for f in found}.values():
        here = [(name, f.node) for name, f in zip(names, found) if f.graph is scope]
        links.extend(epilogue.links(scope, here))
    # the walk passes only ops that move values between two layers next to each other in it
    for before, after in zip(plain.order, plain.order[1:]):
        if plain.slots.keys() & {before, after}:
            links.append((before, after))
    order = _model_order(plain.order, names)
    return Model(tuple(layers), label, tuple(links), skipped=left, around=tuple(plain.around), order=order)


def read_nodes(
    graph: Any, constants: onnx_nodes.Constants, opset: int | None
) -> tuple[list[onnx_nodes.Found], list[str], around.Read]:
    """The recurrent nodes (with their layer names) and the plain layers of a graph."""
    found = onnx_nodes.found_nodes(graph, constants)
    _refuse_shared_weights(found)
    names = _common.unique_names(f.name for f in found)
    onnx_nodes.refuse_control_flow(graph, bool(found))
    if not found:
        onnx_nodes.refuse_unrolled(graph)
        raise onnx_nodes.no_recurrent_node(graph)
    main = [(name, f.node) for name, f in zip(names, found) if not f.scopes]
    opset = opset if opset is not None else getattr(graph, "opset", None)
    return found, names, around.read_around(graph, constants, main, opset)


def _model_order(walked: list[str], recurrent: list[str]) -> tuple[str, ...]:
    """The walk's order; a recurrent layer it did not pass goes after the recurrent layer before
    it, the first one before the first the walk passed, or past the walk's end."""
    order = list(walked)
    for index, name in enumerate(recurrent):
        if name in order:
            continue
        if index:
            order.insert(order.index(recurrent[index - 1]) + 1, name)
        else:
            passed = [order.index(other) for other in recurrent if other in order]
            order.insert(min(passed) if passed else len(order), name)
    return tuple(order)
