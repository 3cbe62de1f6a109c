"""A bounded reader of the flatbuffers that ``.tflite`` files are, without the flatbuffers
package: every offset, vtable, vector length and field is checked against the file's size
before it is used, so a truncated or hostile file fails with one :class:`FormatError`.

Only what :mod:`.files` reads is decoded: ``Model``, ``OperatorCode``, ``SubGraph``,
``Tensor``, ``QuantizationParameters``, ``Operator`` (with its options union) and ``Buffer``, by
the field numbers of ``tensorflow/lite/schema/schema.fbs`` (checked against TensorFlow's own
generated reader by the tests). The schema is not recursive, so neither is this reader: no
offset can make it loop.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import FormatError
from . import names

IDENTIFIER = b"TFL3"
_WIDTH = {"b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "f": 4, "q": 8, "Q": 8}


def _bad(what: str) -> FormatError:
    return FormatError(f"not a readable TFLite model: {what}")


class Flat:
    """The file's bytes, read only through bounds-checked accessors."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.size = len(data)

    def need(self, position: int, length: int, what: str) -> None:
        if position < 0 or length < 0 or position + length > self.size:
            raise _bad(
                f"{what} at byte {position} (length {length}) lies past the end of the file "
                f"({self.size} bytes)"
            )

    def scalar(self, position: int, code: str, what: str) -> Any:
        self.need(position, _WIDTH[code], what)
        return struct.unpack_from("<" + code, self.data, position)[0]

    def target(self, position: int, what: str) -> int:
        """Where the uoffset stored at ``position`` points."""
        return position + self.scalar(position, "I", what)

    def table(self, position: int, what: str) -> Table:
        self.need(position, 4, what)
        vtable = position - self.scalar(position, "i", what)
        vsize = self.scalar(vtable, "H", f"the vtable of {what}")
        inline = self.scalar(vtable + 2, "H", f"the vtable of {what}")
        if vsize < 4 or vsize % 2 or inline < 4:
            raise _bad(
                f"the vtable of {what} at byte {vtable} is malformed (size {vsize}, table size {inline})"
            )
        self.need(vtable, vsize, f"the vtable of {what}")
        self.need(position, inline, what)
        return Table(self, position, vtable, vsize, inline, what)

    def root(self) -> Table:
        if self.size < 8:
            raise _bad(f"the file holds {self.size} bytes, too few for a flatbuffer")
        if bytes(self.data[4:8]) != IDENTIFIER:
            raise _bad(f"no {IDENTIFIER.decode()} identifier at byte 4 (found {bytes(self.data[4:8])!r})")
        return self.table(self.target(0, "the root offset"), "the Model table")


@dataclasses.dataclass(frozen=True)
class Table:
    flat: Flat
    position: int
    vtable: int
    vsize: int
    inline: int
    what: str

    def field(self, index: int, width: int) -> int | None:
        """The absolute position of field ``index`` (None: absent), checked to lie in the table."""
        slot = 4 + 2 * index
        if slot + 2 > self.vsize:
            return None
        offset = self.flat.scalar(self.vtable + slot, "H", f"the vtable of {self.what}")
        if offset == 0:
            return None
        if offset + width > self.inline:
            raise _bad(f"field {index} of {self.what} lies outside its table")
        return self.position + offset

    def scalar(self, index: int, code: str, default: Any) -> Any:
        position = self.field(index, _WIDTH[code])
        return default if position is None else self.flat.scalar(position, code, self.what)

    def pointed(self, index: int) -> int | None:
        position = self.field(index, 4)
        return None if position is None else self.flat.target(position, f"field {index} of {self.what}")

    def table(self, index: int, what: str) -> Table | None:
        position = self.pointed(index)
        return None if position is None else self.flat.table(position, what)

    def vector(self, index: int, width: int, what: str) -> tuple[int, int]:
        """(first element's position, length) of a vector field; (0, 0) when absent."""
        position = self.pointed(index)
        if position is None:
            return 0, 0
        length = self.flat.scalar(position, "I", what)
        if length * width > self.flat.size:
            raise _bad(f"{what} claims {length} elements, more than the file's {self.flat.size} bytes hold")
        self.flat.need(position + 4, length * width, what)
        return position + 4, length

    def tables(self, index: int, what: str) -> list[Table]:
        start, length = self.vector(index, 4, what)
        return [
            self.flat.table(self.flat.target(start + 4 * k, f"{what}[{k}]"), f"{what}[{k}]")
            for k in range(length)
        ]

    def ints(self, index: int, what: str) -> tuple[int, ...]:
        start, length = self.vector(index, 4, what)
        return tuple(int(v) for v in np.frombuffer(self.flat.data, dtype="<i4", count=length, offset=start))

    def numbers(self, index: int, dtype: str, what: str) -> np.ndarray:
        start, length = self.vector(index, np.dtype(dtype).itemsize, what)
        return np.frombuffer(self.flat.data, dtype=dtype, count=length, offset=start)

    def string(self, index: int, what: str) -> str:
        start, length = self.vector(index, 1, what)
        try:
            return bytes(self.flat.data[start : start + length]).decode()
        except UnicodeDecodeError:
            raise _bad(f"{what} is not UTF-8") from None


# -- the messages ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Quantization:
    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int


@dataclasses.dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    quantization: Quantization | None
    is_variable: bool

    @property
    def type_name(self) -> str:
        return names.TYPE_NAMES.get(self.type, f"type {self.type}")

    def label(self) -> str:
        return f'tensor {self.index} "{self.name}"'


@dataclasses.dataclass(frozen=True)
class Operator:
    index: int
    code: int
    custom: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any]

    @property
    def op_name(self) -> str:
        if self.code == names.CUSTOM and self.custom:
            return f"CUSTOM {self.custom}"
        return names.OP_NAMES.get(self.code, f"operator {self.code}")


@dataclasses.dataclass(frozen=True)
class SubGraph:
    index: int
    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Buffer:
    """Where a buffer's bytes are: inside the flatbuffer (``data``) or after it (``offset``,
    ``size``, for models past 2 GB); length 0 for none."""

    start: int
    length: int


@dataclasses.dataclass(frozen=True)
class TfliteModel:
    flat: Flat
    subgraphs: tuple[SubGraph, ...]
    buffers: tuple[Buffer, ...]
    description: str


def _quantization(table: Table | None, what: str) -> Quantization | None:
    if table is None:
        return None
    scale = table.numbers(2, "<f4", f"{what}.scale")
    if not scale.size:
        return None
    zero_point = table.numbers(3, "<i8", f"{what}.zero_point")
    return Quantization(scale, zero_point, int(table.scalar(6, "i", 0)))


def _options(table: Table, code: int) -> dict[str, Any]:
    kind = table.scalar(3, "B", 0)
    spec = names.OPTIONS.get(kind)
    found = table.table(4, f"the options of operator code {code}") if spec else None
    if spec is None:
        return {}
    name, fields = spec
    values: dict[str, Any] = {"type": name}
    for field, (index, fmt, default) in fields.items():
        values[field] = default if found is None else found.scalar(index, fmt, default)
    return values


def parse(data: Any) -> TfliteModel:
    flat = Flat(data)
    model = flat.root()
    codes, customs = [], []
    for k, code in enumerate(model.tables(1, "Model.operator_codes")):
        deprecated = code.scalar(0, "b", 0)
        builtin = code.scalar(3, "i", 0)
        codes.append(max(int(deprecated), int(builtin)))  # schema 3a: the larger of the two holds
        customs.append(code.string(1, f"Model.operator_codes[{k}].custom_code"))
    buffers = []
    for k, table in enumerate(model.tables(4, "Model.buffers")):
        what = f"Model.buffers[{k}]"
        start, length = table.vector(0, 1, f"{what}.data")
        offset, size = table.scalar(1, "Q", 0), table.scalar(2, "Q", 0)
        if length == 0 and offset > 1:  # stored after the flatbuffer, from the file's start
            flat.need(offset, size, f"{what} (offset {offset}, size {size})")
            start, length = offset, size
        buffers.append(Buffer(start, length))
    subgraphs = []
    for g, graph in enumerate(model.tables(2, "Model.subgraphs")):
        where = f"SubGraph[{g}]"
        tensors = []
        for t, table in enumerate(graph.tables(0, f"{where}.tensors")):
            what = f"{where}.tensors[{t}]"
            tensors.append(
                Tensor(
                    index=t,
                    name=table.string(3, f"{what}.name"),
                    shape=table.ints(0, f"{what}.shape"),
                    type=int(table.scalar(1, "b", 0)),
                    buffer=int(table.scalar(2, "I", 0)),
                    quantization=_quantization(
                        table.table(4, f"{what}.quantization"), f"{what}.quantization"
                    ),
                    is_variable=bool(table.scalar(5, "?", False)),
                )
            )
        operators = []
        for o, table in enumerate(graph.tables(3, f"{where}.operators")):
            what = f"{where}.operators[{o}]"
            opcode = int(table.scalar(0, "I", 0))
            if opcode >= len(codes):
                raise _bad(f"{what} uses operator code {opcode}, but the model has {len(codes)}")
            operators.append(
                Operator(
                    index=o,
                    code=codes[opcode],
                    custom=customs[opcode],
                    inputs=table.ints(1, f"{what}.inputs"),
                    outputs=table.ints(2, f"{what}.outputs"),
                    options=_options(table, codes[opcode]),
                )
            )
        for op in operators:
            for index in (*op.inputs, *op.outputs):
                if not -1 <= index < len(tensors):
                    raise _bad(
                        f"{where} operator {op.index} ({op.op_name}) names tensor {index}, "
                        f"but the subgraph has {len(tensors)}"
                    )
        for tensor in tensors:
            if tensor.buffer >= len(buffers):
                raise _bad(
                    f"{where} {tensor.label()} names buffer {tensor.buffer}, but the model has {len(buffers)}"
                )
        subgraphs.append(
            SubGraph(
                index=g,
                name=graph.string(4, f"{where}.name"),
                tensors=tuple(tensors),
                operators=tuple(operators),
                inputs=graph.ints(1, f"{where}.inputs"),
                outputs=graph.ints(2, f"{where}.outputs"),
            )
        )
    if not subgraphs:
        raise _bad("it has no subgraph")
    return TfliteModel(flat, tuple(subgraphs), tuple(buffers), model.string(3, "Model.description"))
