"""Partitioned tensors in a bundle: each slice is an entry of its own, keyed by
``EncodeTensorNameSlice(name, slice)`` (``tensorflow/core/util/saved_tensor_slice_util.cc``), an
OrderedCode string (``tsl/lib/strings/ordered_code.cc``): the number 0, the tensor's name, the
number of dimensions, then each dimension's start and length as signed numbers (length -1: the
whole dimension). Decoded here to put the slices back together.
"""

from __future__ import annotations

import dataclasses

from ...errors import FormatError

#: The header bits OrderedCode sets in a signed number of each length (1 to 8 bytes).
_LENGTH_MASK = [0, 0x80, 0xC000, 0xE00000, 0xF0000000, 0xF800000000, 0xFC0000000000, 0xFE000000000000]
_LENGTH_MASK.append(0xFF00000000000000)


@dataclasses.dataclass(frozen=True)
class SliceKey:
    name: str
    starts: tuple[int, ...]
    lengths: tuple[int, ...]  # -1: the whole dimension


def _number(key: bytes, position: int) -> tuple[int, int]:
    """WriteNumIncreasing: a length byte, then that many big-endian bytes."""
    if position >= len(key):
        raise FormatError("a slice key ends inside a number")
    size = key[position]
    if size > 8 or position + 1 + size > len(key):
        raise FormatError("a slice key holds a number past its end")
    return int.from_bytes(key[position + 1 : position + 1 + size], "big"), position + 1 + size


def _string(key: bytes, position: int) -> tuple[bytes, int]:
    """WriteString: 0x00 escaped as 00 ff, 0xff as ff 00, ended by 00 01."""
    out = bytearray()
    while position + 1 < len(key):
        byte, following = key[position], key[position + 1]
        if byte == 0x00 and following == 0x01:
            return bytes(out), position + 2
        if byte == 0x00 and following == 0xFF:
            out.append(0x00)
            position += 2
        elif byte == 0xFF and following == 0x00:
            out.append(0xFF)
            position += 2
        elif byte in (0x00, 0xFF):
            raise FormatError("a slice key holds a badly escaped name")
        else:
            out.append(byte)
            position += 1
    raise FormatError("a slice key's name has no end")


def _signed(key: bytes, position: int) -> tuple[int, int]:
    """WriteSignedNumIncreasing: the length in unary after the sign bit (up to 8 bytes here)."""
    if position >= len(key):
        raise FormatError("a slice key ends inside a signed number")
    negative = not key[position] & 0x80
    first = key[position] ^ (0xFF if negative else 0)
    if first == 0xFF:
        raise FormatError("a slice key holds a signed number longer than 8 bytes")
    length = 8 - (first ^ 0xFF).bit_length()
    if position + length > len(key):
        raise FormatError("a slice key holds a signed number past its end")
    value = -1 if negative else 0  # sign-extended, as Python's integers are
    for byte in key[position : position + length]:
        value = (value << 8) | byte
    return value ^ _LENGTH_MASK[length], position + length


def decode(key: bytes) -> SliceKey:
    what = f"slice key {key[:40]!r}"
    try:
        zero, position = _number(key, 0)
        if zero != 0:
            raise FormatError("a slice key does not start with 0")
        name, position = _string(key, position)
        dims, position = _number(key, position)
        starts, lengths = [], []
        for _ in range(dims):
            start, position = _signed(key, position)
            length, position = _signed(key, position)
            starts.append(start)
            lengths.append(length)
        if position != len(key):
            raise FormatError("a slice key has bytes after its last dimension")
        return SliceKey(name.decode("utf-8"), tuple(starts), tuple(lengths))
    except UnicodeDecodeError:
        raise FormatError(f"{what}: the name is not UTF-8") from None
    except FormatError as error:
        raise error.within(what) from None
