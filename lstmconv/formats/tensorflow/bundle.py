"""TensorFlow's tensor bundle (``<prefix>.index`` + ``<prefix>.data-NNNNN-of-NNNNN``), read
without TensorFlow.

The ``.index`` file is a LevelDB-style table (``tensorflow/core/lib/io/table.cc``,
``block.cc``, ``format.cc``): a 48-byte footer (metaindex and index block handles, magic
``0xdb4775248b80fb57``); blocks of prefix-compressed keys with restart points, each followed by
a type byte and a masked CRC-32C. The empty key holds a ``BundleHeaderProto``; every other key
a ``BundleEntryProto`` saying where its tensor's bytes lie in which shard
(``tensorflow/core/protobuf/tensor_bundle.proto``, ``util/tensor_bundle/tensor_bundle.cc``).
Every handle, offset and size is checked against its file, and every CRC is checked.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import os
import re
import struct

import numpy as np

from ...errors import FormatError, LstmconvError, UnsafeInputError, UnsupportedFeatureError
from .._common import dims, require_regular_file
from . import crc32c, slices, wire

MAGIC = 0xDB4775248B80FB57
FOOTER = 48
TRAILER = 5  # type byte + masked crc32c
NO_COMPRESSION, SNAPPY = 0, 1
DATA_FILE = re.compile(r"\.data-(\d{5})-of-(\d{5})$")
#: DataType (tensorflow/core/framework/types.proto) -> NumPy dtype name; 7 is DT_STRING.
DTYPES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    19: "float16",
    22: "uint32",
    23: "uint64",
}
DT_STRING = 7
#: Far more elements than any recurrent model holds: refused before allocation.
MAX_ELEMENTS = 1 << 36


def prefix_of(path: str) -> str:
    """The bundle prefix of a prefix, an ``.index`` file or a ``.data-*`` shard."""
    if path.endswith(".index"):
        return path[: -len(".index")]
    return DATA_FILE.sub("", path)


@dataclasses.dataclass(frozen=True)
class Entry:
    key: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int
    sliced: bool


@dataclasses.dataclass(frozen=True)
class Header:
    num_shards: int
    endianness: int
    producer: int


# -- the table ------------------------------------------------------------------------------------
def _handle(data: bytes, position: int, end: int, what: str) -> tuple[tuple[int, int], int]:
    offset, position = wire.varint(data, position, end, what)
    size, position = wire.varint(data, position, end, what)
    return (offset, size), position


def _block(index: bytes, handle: tuple[int, int], what: str) -> bytes:
    offset, size = handle
    if offset + size + TRAILER > len(index) - FOOTER:
        raise FormatError(
            f"{what} block at {offset} of {size} bytes runs past the table "
            f"({len(index) - FOOTER} bytes before the footer)"
        )
    contents = index[offset : offset + size]
    kind = index[offset + size]
    (stored,) = struct.unpack_from("<I", index, offset + size + 1)
    actual = crc32c.mask(crc32c.extend(crc32c.value(contents), bytes([kind])))
    if stored != actual:
        raise FormatError(
            f"{what} block at {offset}: CRC-32C {actual:#010x} does not match the stored {stored:#010x}"
        )
    if kind == SNAPPY:
        raise UnsupportedFeatureError(
            f"{what} block at {offset} is snappy-compressed",
            hint="TensorFlow writes bundles uncompressed; re-save the checkpoint with TensorFlow",
        )
    if kind != NO_COMPRESSION:
        raise FormatError(f"{what} block at {offset}: unknown compression type {kind}")
    return contents


def _entries(block: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of one block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise FormatError(f"{what} block of {len(block)} bytes has no restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    if restarts * 4 + 4 > len(block):
        raise FormatError(f"{what} block: {restarts} restart points do not fit in {len(block)} bytes")
    end = len(block) - 4 - 4 * restarts
    out, key, position = [], b"", 0
    while position < end:
        shared, position = wire.varint(block, position, end, what, limit=32)
        unshared, position = wire.varint(block, position, end, what, limit=32)
        length, position = wire.varint(block, position, end, what, limit=32)
        if shared > len(key) or unshared + length > end - position:
            raise FormatError(f"{what} block: an entry at {position} runs past the block or its previous key")
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        out.append((key, block[position : position + length]))
        position += length
    return out


def read_table(index: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a table, in key order."""
    if len(index) < FOOTER:
        raise FormatError(f"an index file of {len(index)} bytes is shorter than the 48-byte footer")
    footer = index[-FOOTER:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER - 8)
    if magic != MAGIC:
        raise FormatError(
            f"not a TensorFlow checkpoint index: footer magic {magic:#018x}, expected {MAGIC:#018x}"
        )
    _, position = _handle(footer, 0, FOOTER - 8, "footer")
    index_handle, _ = _handle(footer, position, FOOTER - 8, "footer")
    out: list[tuple[bytes, bytes]] = []
    seen: set[tuple[int, int]] = set()
    for _, value in _entries(_block(index, index_handle, "index"), "index"):
        handle, _ = _handle(value, 0, len(value), "index entry")
        if handle in seen:
            raise FormatError(f"the index names the data block at {handle[0]} twice")
        seen.add(handle)
        out += _entries(_block(index, handle, "data"), "data")
    keys = [key for key, _ in out]
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise FormatError("the table's keys are not in strictly increasing order")
    return out


# -- the protos -----------------------------------------------------------------------------------
def _header(value: bytes) -> Header:
    msg = wire.message(value, "BundleHeaderProto")
    version = wire.message(wire.blob(msg, 3, "BundleHeaderProto"), "VersionDef")
    return Header(
        num_shards=wire.integer(msg, 1, "BundleHeaderProto"),
        endianness=wire.integer(msg, 2, "BundleHeaderProto"),
        producer=wire.integer(version, 1, "VersionDef"),
    )


def _shape(value: bytes, what: str) -> tuple[int, ...]:
    msg = wire.message(value, what)
    if wire.integer(msg, 3, what):
        raise FormatError(f"{what}: a tensor of unknown rank")
    dims = []
    for dim in wire.blobs(msg, 2, what):
        size = wire.integer(wire.message(dim, what), 1, what)
        if size < 0:
            raise FormatError(f"{what}: dimension {size}")
        dims.append(size)
    return tuple(dims)


def _entry(key: str, value: bytes) -> Entry:
    what = f'entry "{key}"'
    msg = wire.message(value, what)
    return Entry(
        key=key,
        dtype=wire.integer(msg, 1, what),
        shape=_shape(wire.blob(msg, 2, what), what),
        shard_id=wire.integer(msg, 3, what),
        offset=wire.integer(msg, 4, what),
        size=wire.integer(msg, 5, what),
        crc32c=wire.integer(msg, 6, what, signed=False),
        sliced=bool(msg.get(7)),
    )


# -- the bundle -----------------------------------------------------------------------------------
class Bundle:
    """A checkpoint's entries by key, and their tensors, read from the shards on request."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        index_path = prefix + ".index"
        if os.path.lexists(index_path):  # a FIFO would block the open, /dev/zero never end
            require_regular_file(index_path)
        try:
            with open(index_path, "rb") as file:
                index = file.read()
        except FileNotFoundError:
            raise FormatError("no checkpoint index", where=(index_path,)) from None
        table = read_table(index)
        if not table or table[0][0] != b"":
            raise FormatError("the checkpoint index has no header entry (the empty key)")
        self.header = _header(table[0][1])
        if self.header.endianness != 0:
            raise UnsupportedFeatureError(
                "the checkpoint was written big-endian; lstmconv reads little-endian ones"
            )
        if not 1 <= self.header.num_shards <= 1 << 16:
            raise FormatError(f"the checkpoint header says {self.header.num_shards} shards")
        self.entries: dict[str, Entry] = {}
        #: A partitioned tensor's slices by its name, each a (start, length) per dimension.
        self.slices: dict[str, list[tuple[slices.SliceKey, Entry]]] = {}
        for key, value in table[1:]:
            if key.startswith(b"\x00"):  # a slice: EncodeTensorNameSlice's OrderedCode key
                found = slices.decode(key)
                self.slices.setdefault(found.name, []).append((found, _entry(found.name, value)))
                continue
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError(f"a key is not UTF-8: {key[:40]!r}") from None
            self.entries[name] = _entry(name, value)
        self._shards: dict[int, np.ndarray] = {}

    def shard_path(self, shard: int) -> str:
        return f"{self.prefix}.data-{shard:05d}-of-{self.header.num_shards:05d}"

    def _shard(self, entry: Entry) -> np.ndarray:
        if not 0 <= entry.shard_id < self.header.num_shards:
            raise FormatError(
                f"shard {entry.shard_id} is out of range: the checkpoint has {self.header.num_shards}"
            )
        if entry.shard_id not in self._shards:
            path = self.shard_path(entry.shard_id)
            if os.path.lexists(path):  # a FIFO would block the open, /dev/zero never end
                require_regular_file(path)
            try:
                with open(path, "rb") as file:
                    size = os.fstat(file.fileno()).st_size
                    mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            except FileNotFoundError:
                raise FormatError(f"the data shard {os.path.basename(path)} is missing") from None
            self._shards[entry.shard_id] = np.frombuffer(mapped, dtype=np.uint8)
        return self._shards[entry.shard_id]

    def _bytes(self, entry: Entry) -> np.ndarray:
        shard = self._shard(entry)
        if entry.offset < 0 or entry.size < 0 or entry.offset + entry.size > shard.size:
            raise FormatError(
                f"bytes [{entry.offset}, {entry.offset + entry.size}) lie past the end of "
                f"{os.path.basename(self.shard_path(entry.shard_id))} ({shard.size} bytes)"
            )
        data = shard[entry.offset : entry.offset + entry.size]
        return data

    def _check_crc(self, entry: Entry, data: np.ndarray | bytes) -> None:
        actual = crc32c.value(data)
        if crc32c.unmask(entry.crc32c) != actual:
            raise FormatError(
                f"CRC-32C {actual:#010x} of its bytes does not match the stored "
                f"{crc32c.unmask(entry.crc32c):#010x}: the data shard is corrupt"
            )

    def tensor(self, key: str) -> np.ndarray:
        """The tensor stored under ``key``, checked against its CRC (a read-only view)."""
        entry = self.entries[key]
        try:
            return self._tensor(entry)
        except LstmconvError as error:
            raise error.within(key) from None

    def _tensor(self, entry: Entry, *, part: bool = False) -> np.ndarray:
        if entry.sliced:
            if part:
                raise FormatError("a slice is itself partitioned")
            return self._assembled(entry)
        if entry.dtype not in DTYPES:
            raise UnsupportedFeatureError(
                f"tensor dtype {entry.dtype} (TensorFlow DataType) is not readable here"
            )
        count = math.prod(entry.shape)
        if count > MAX_ELEMENTS:
            raise UnsafeInputError(f"shape {dims(entry.shape)} asks for {count} elements")
        dtype = _numpy_dtype(DTYPES[entry.dtype])
        if count * dtype.itemsize != entry.size:
            raise FormatError(
                f"{DTYPES[entry.dtype]} {dims(entry.shape)} needs {count * dtype.itemsize} bytes, "
                f"the entry says {entry.size}"
            )
        data = self._bytes(entry)
        self._check_crc(entry, data)
        return data.view(dtype).reshape(entry.shape)

    def _assembled(self, entry: Entry) -> np.ndarray:
        """A partitioned tensor put together from its slices, each placed once, every element
        covered exactly once."""
        if entry.dtype not in DTYPES:
            raise UnsupportedFeatureError(
                f"tensor dtype {entry.dtype} (TensorFlow DataType) is not readable here"
            )
        count = math.prod(entry.shape)
        if count > MAX_ELEMENTS:
            raise UnsafeInputError(f"shape {dims(entry.shape)} asks for {count} elements")
        out = np.zeros(entry.shape, _numpy_dtype(DTYPES[entry.dtype]))
        covered = np.zeros(entry.shape, np.uint8)
        for key, part in self.slices.get(entry.key, []):
            if len(key.starts) != len(entry.shape) or part.dtype != entry.dtype:
                raise FormatError(
                    f"a slice of {len(key.starts)} dimensions (dtype {part.dtype}) does not fit"
                )
            window = []
            for start, length, size in zip(key.starts, key.lengths, entry.shape):
                stop = size if length == -1 else start + length
                if not 0 <= start <= stop <= size:
                    raise FormatError(f"a slice [{start}, {stop}) lies outside a dimension of {size}")
                window.append(slice(start, stop))
            values = self._tensor(part, part=True)
            if values.shape != out[tuple(window)].shape:
                raise FormatError(
                    f"a slice of shape {dims(values.shape)} fills a window of "
                    f"{dims(out[tuple(window)].shape)}"
                )
            out[tuple(window)] = values
            covered[tuple(window)] += 1
        if count and not (covered == 1).all():
            raise FormatError("its slices do not cover it exactly once")
        out.flags.writeable = False
        return out

    def strings(self, key: str) -> list[bytes]:
        """A string tensor: varint64 lengths, a masked CRC of the lengths, then the bytes."""
        entry = self.entries[key]
        what = key
        if entry.dtype != DT_STRING:
            raise FormatError(f"{key}: expected a string tensor, found dtype {entry.dtype}")
        count = math.prod(entry.shape)
        data = self._bytes(entry).tobytes()
        if count > len(data):
            raise FormatError(f"{key}: {count} strings cannot fit in {len(data)} bytes")
        lengths, position = [], 0
        for _ in range(count):
            length, position = wire.varint(data, position, len(data), what)
            lengths.append(length)
        length_crc = crc32c.value(
            b"".join(struct.pack("<I", n) if n < 1 << 32 else struct.pack("<Q", n) for n in lengths)
        )
        if position + 4 + sum(lengths) != len(data):
            raise FormatError(
                f"{key}: string lengths add up to {sum(lengths)} bytes, "
                f"the entry holds {len(data) - position - 4}"
            )
        (stored,) = struct.unpack_from("<I", data, position)
        if crc32c.unmask(stored) != length_crc:
            raise FormatError(f"{key}: the CRC-32C of the string lengths does not match")
        total = crc32c.extend(length_crc, data[position : position + 4])
        position += 4
        out = []
        for length in lengths:
            out.append(data[position : position + length])
            position += length
        total = crc32c.extend(total, data[position - sum(lengths) : position])
        if crc32c.unmask(entry.crc32c) != total:
            raise FormatError(
                f"{key}: the CRC-32C of the string tensor does not match: the data shard is corrupt"
            )
        return out


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name).newbyteorder("<")
