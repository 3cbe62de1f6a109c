"""A small tensor-bundle writer for the hostile corpus: a checkpoint written field by field, so
each case can break exactly one thing (an offset, a size, a CRC, a handle) and keep the rest valid.

The layout follows TensorFlow's (``tensor_bundle.proto``, ``lib/io/table_builder.cc``): one data
block without prefix compression, an index block naming it, an empty metaindex block, the
48-byte footer; every block followed by a type byte and its masked CRC-32C.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np

from lstmconv.formats.tensorflow import crc32c

MAGIC = 0xDB4775248B80FB57
DT_FLOAT, DT_STRING = 1, 7


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes, *, fixed32: bool = False) -> bytes:
    if fixed32:
        return varint(number << 3 | 5) + struct.pack("<I", value)
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


@dataclasses.dataclass
class Tensor:
    """One entry: its proto fields, overridable, and the bytes written to its shard."""

    dtype: int
    shape: tuple[int, ...]
    data: bytes
    shard_id: int = 0
    offset: int | None = None  # None: where it is written
    size: int | None = None  # None: len(data)
    crc: int | None = None  # None: the right one
    raw_entry: bytes | None = None  # the whole BundleEntryProto, as given


def slice_key(name: str, starts: tuple[int, ...], lengths: tuple[int, ...]) -> str:
    """EncodeTensorNameSlice's OrderedCode key, for numbers in [-1, 64): the number 0, the
    escaped name ended by 00 01, the number of dimensions, then start and length per dimension.
    Returned as a str of code points < 256 so it can key ``write``'s dict (latin-1 bytes)."""
    escaped = name.encode().replace(b"\xff", b"\xff\x00").replace(b"\x00", b"\x00\xff")
    signed = lambda v: bytes([(0x80 ^ v) & 0xFF])  # noqa: E731
    body = b"\x00" + escaped + b"\x00\x01" + bytes([1, len(starts)])
    body += b"".join(signed(s) + signed(n) for s, n in zip(starts, lengths))
    return body.decode("latin-1")


def sliced(tensor: Tensor, extents: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> bytes:
    """A full entry saying the tensor lies in these slices (TensorSliceProto extents)."""
    slices = b"".join(
        field(7, b"".join(field(1, field(1, s) + (field(2, n) if n != -1 else b"")) for s, n in zip(*extent)))
        for extent in extents
    )
    shape = b"".join(field(2, field(1, n)) for n in tensor.shape)
    return field(1, tensor.dtype) + field(2, shape) + slices


def entry_proto(tensor: Tensor, offset: int) -> bytes:
    if tensor.raw_entry is not None:
        return tensor.raw_entry
    shape = b"".join(field(2, field(1, n)) for n in tensor.shape)
    crc = tensor.crc if tensor.crc is not None else crc32c.mask(crc32c.value(tensor.data))
    return (
        field(1, tensor.dtype)
        + field(2, shape)
        + (field(3, tensor.shard_id) if tensor.shard_id else b"")
        + field(4, tensor.offset if tensor.offset is not None else offset)
        + field(5, tensor.size if tensor.size is not None else len(tensor.data))
        + field(6, crc, fixed32=True)
    )


def string_tensor(value: bytes) -> bytes:
    """A scalar string tensor's bytes: varint length, masked CRC of the uint32 length, bytes."""
    length_crc = crc32c.value(struct.pack("<I", len(value)))
    return varint(len(value)) + struct.pack("<I", crc32c.mask(length_crc)) + value


def string_crc(value: bytes) -> int:
    length_crc = crc32c.value(struct.pack("<I", len(value)))
    masked = struct.pack("<I", crc32c.mask(length_crc))
    return crc32c.mask(crc32c.extend(crc32c.extend(length_crc, masked), value))


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)


def _with_trailer(block: bytes) -> bytes:
    return block + b"\x00" + struct.pack("<I", crc32c.mask(crc32c.value(block + b"\x00")))


def table(
    entries: list[tuple[bytes, bytes]],
    *,
    index_handle: tuple[int, int] | None = None,
    repeat_block: bool = False,
) -> bytes:
    data = _block(entries)
    out = _with_trailer(data)
    meta_at = len(out)
    meta = _block([])
    out += _with_trailer(meta)
    index_at = len(out)
    handle = varint(0) + varint(len(data))
    last = entries[-1][0] if entries else b""
    index = _block([(last, handle), (last + b"\xff", handle)] if repeat_block else [(last, handle)])
    out += _with_trailer(index)
    handles = varint(meta_at) + varint(len(meta))
    handles += (
        varint(index_handle[0]) + varint(index_handle[1])
        if index_handle
        else varint(index_at) + varint(len(index))
    )
    return out + handles.ljust(40, b"\x00") + struct.pack("<Q", MAGIC)


def write(
    prefix: Path,
    tensors: dict[str, Tensor],
    *,
    num_shards: int = 1,
    endianness: int = 0,
    index_handle: tuple[int, int] | None = None,
    repeat_block: bool = False,
    reverse_keys: bool = False,
) -> Path:
    """``prefix.index`` and ``prefix.data-00000-of-0000N``; returns the index's path."""
    shard, entries = b"", []
    for key in sorted(tensors, reverse=reverse_keys):
        tensor = tensors[key]
        encoded = key.encode("latin-1") if key.startswith("\x00") else key.encode()
        entries.append((encoded, entry_proto(tensor, len(shard))))
        shard += tensor.data
    header = field(1, num_shards) + (field(2, endianness) if endianness else b"") + field(3, field(1, 1))
    index = table([(b"", header), *entries], index_handle=index_handle, repeat_block=repeat_block)
    Path(f"{prefix}.index").write_bytes(index)
    Path(f"{prefix}.data-00000-of-{num_shards:05d}").write_bytes(shard)
    return Path(f"{prefix}.index")


def lstm_cell(hidden: int = 3, inputs: int = 2, seed: int = 0) -> dict[str, Tensor]:
    """A TF1 ``rnn/lstm_cell`` with random float32 weights."""
    rng = np.random.default_rng(seed)
    kernel = rng.uniform(-0.5, 0.5, (inputs + hidden, 4 * hidden)).astype("<f4")
    bias = rng.uniform(-0.5, 0.5, (4 * hidden,)).astype("<f4")
    return {
        "rnn/lstm_cell/kernel": Tensor(DT_FLOAT, kernel.shape, kernel.tobytes()),
        "rnn/lstm_cell/bias": Tensor(DT_FLOAT, bias.shape, bias.tobytes()),
    }
