"""The protobuf wire format, decoded by hand with every length checked against its message.

TensorFlow's messages are read as ``{field number: [values]}``: a varint or fixed field's value
is an int, a length-delimited one's is ``bytes``. Callers name the fields they read (numbers from
TensorFlow's ``.proto`` files) and ignore the rest, as protobuf itself does.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...errors import FormatError

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5
Message = dict[int, list["int | bytes"]]


def varint(data: bytes, position: int, end: int, what: str, *, limit: int = 64) -> tuple[int, int]:
    """A varint of at most ``limit`` bits at ``position``, and where the next field starts."""
    value, shift = 0, 0
    while True:
        if position >= end:
            raise FormatError(f"{what}: a varint runs past its end")
        if shift >= limit:
            raise FormatError(f"{what}: a varint is longer than {limit} bits")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            if value >> limit:
                raise FormatError(f"{what}: a varint is longer than {limit} bits")
            return value, position


def fields(data: bytes, what: str) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message."""
    position, end = 0, len(data)
    while position < end:
        tag, position = varint(data, position, end, what)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise FormatError(f"{what}: field number 0")
        if wire == VARINT:
            value, position = varint(data, position, end, what)
            yield number, wire, value
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if position + width > end:
                raise FormatError(f"{what}: a fixed field runs past its end")
            yield number, wire, int.from_bytes(data[position : position + width], "little")
            position += width
        elif wire == BYTES:
            length, position = varint(data, position, end, what)
            if length > end - position:
                raise FormatError(
                    f"{what}: a field of {length} bytes runs past its end ({end - position} left)"
                )
            yield number, wire, bytes(data[position : position + length])
            position += length
        else:
            raise FormatError(f"{what}: wire type {wire} is not readable")


def message(data: bytes, what: str) -> Message:
    out: Message = {}
    for number, _, value in fields(data, what):
        out.setdefault(number, []).append(value)
    return out


def integer(msg: Message, number: int, what: str, *, signed: bool = True, default: int = 0) -> int:
    """The last value of a scalar integer field (proto3: absent means 0)."""
    values = msg.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, int):
        raise FormatError(f"{what}: field {number} should be a number, found bytes")
    if signed and value >= 1 << 63:
        value -= 1 << 64
    return value


def blob(msg: Message, number: int, what: str) -> bytes:
    values = msg.get(number)
    if not values:
        return b""
    value = values[-1]
    if not isinstance(value, bytes):
        raise FormatError(f"{what}: field {number} should be bytes, found a number")
    return value


def blobs(msg: Message, number: int, what: str) -> list[bytes]:
    values = msg.get(number, [])
    if not all(isinstance(value, bytes) for value in values):
        raise FormatError(f"{what}: field {number} should hold messages, found a number")
    return [value for value in values if isinstance(value, bytes)]


def text(msg: Message, number: int, what: str) -> str:
    try:
        return blob(msg, number, what).decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{what}: field {number} is not UTF-8 text") from None
