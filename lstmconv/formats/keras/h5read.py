"""HDF5 files read without h5py, in the subset Keras writes through h5py's defaults and
:mod:`.h5write` writes: superblock version 0 with 8-byte offsets and lengths, version-1 object
headers (with continuation blocks), groups as symbol tables (a local heap of names, a version-1
B-tree over symbol-table nodes), contiguous datasets of little-endian IEEE floats and integers
(and untagged opaque values: Keras 3's bfloat16), and attributes of strings (fixed-length, or
variable-length in a global heap) and numbers.

Anything else, and anything malformed, raises :class:`Decline`: the caller then reads the file
through h5py (:mod:`.hdf5`), which judges it as it always has. So every offset, length, count
and address is checked against the file before it is used, loops are bounded by what the file
can hold, a group or B-tree node met twice (a cycle, or a second hard link) declines, and a
dataset's bytes must lie inside the file; nothing is allocated from a declared size. A
dataset's values are a read-only view of the buffer (an mmap of the file), not a copy.

Written from the HDF5 File Format Specification (the version-0 structures), like the writer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ... import dtypes
from ...errors import FormatError
from .._common import MAX_RATIO, elements
from .h5write import FLOATS, SIGNATURE, UNDEFINED

#: Bounds on what one file may make the parser do.
MAX_DEPTH = 64
MAX_OBJECTS = 1 << 18
MAX_MESSAGES = 1 << 16  # per object header, continuation blocks included
MAX_TREE_LEVEL = 32
MAX_STEPS = 1 << 22  # header messages, B-tree children, symbols and heap objects, over the file
MAX_NAME = 4096
MAX_ATTRIBUTE_BYTES = 64 << 20  # a string attribute's value (Keras's config is at most this)
#: Message types: skipped, understood, and everything else declines.
_SKIPPED = {0x0, 0x4, 0x5, 0xD, 0xE, 0x12}  # nil, fill values, comment, modification times
_DATASPACE, _DATATYPE, _LAYOUT, _ATTRIBUTE, _CONTINUATION, _SYMBOL_TABLE = 0x1, 0x3, 0x8, 0xC, 0x10, 0x11


class Decline(Exception):
    """The file is not in the subset this parser reads (or is malformed): read it with h5py."""


class Buffer:
    """``size`` bytes of ``data`` from ``base`` (a zip member inside its archive's mapping), every
    access checked to lie inside them."""

    def __init__(self, data: Any, base: int, size: int):
        self.view = memoryview(data)
        if base < 0 or size < 0 or base + size > len(self.view):
            raise Decline("the HDF5 bytes run past the file")
        self.data, self.base, self.size = data, base, size

    def check(self, at: int, length: int) -> None:
        if at < 0 or length < 0 or at + length > self.size:
            raise Decline(f"{length} bytes at {at} lie outside the {self.size} bytes of the file")

    def take(self, at: int, length: int) -> bytes:
        self.check(at, length)
        return bytes(self.view[self.base + at : self.base + at + length])

    def unpack(self, fmt: str, at: int) -> tuple[Any, ...]:
        return struct.unpack_from("<" + fmt, self.take(at, struct.calcsize("<" + fmt)))


class Attrs:
    """A node's attributes (h5py's ``attrs`` surface that the Keras reader uses), each decoded
    when asked for: a variable-length string is ``str``, a fixed-length one ``bytes``, an array
    a NumPy array."""

    def __init__(self, file: File, raw: dict[str, tuple[bytes, bytes, bytes]]):
        self._file, self._raw = file, raw
        self._values: dict[str, Any] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            self._values[key] = _guarded(_attribute_value, self._file, *self._raw[key])
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._raw else default


class Node:
    def __init__(self, file: File, name: str, address: int, attrs: Attrs):
        self.file, self.name, self.id, self.attrs = file, name, address, attrs


class Dataset(Node):
    """A contiguous dataset: its shape, dtype, and where its bytes are."""

    def __init__(self, file: File, name: str, address: int, attrs: Attrs, info: tuple[Any, ...]):
        super().__init__(file, name, address, attrs)
        self.shape, self.dtype, self.offset, self.nbytes = info

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return elements(self.shape)

    def values(self) -> np.ndarray:
        """The values: a read-only view of the file's bytes (zeros for an empty dataset)."""
        if not self.nbytes:
            return np.zeros(self.shape, self.dtype)
        buffer = self.file.buffer
        array = np.frombuffer(buffer.data, self.dtype, self.size, buffer.base + self.offset)
        return array.reshape(self.shape)


class Group(Node):
    """A group: its children in h5py's order (by name), reached by name or ``a/b`` path."""

    def __init__(self, file: File, name: str, address: int, attrs: Attrs, children: dict[str, Node]):
        super().__init__(file, name, address, attrs)
        self.children = children

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(key) is not None

    def __getitem__(self, key: str) -> Any:
        node = self._find(key)
        if node is None:
            raise KeyError(f"{key!r} is not in {self.name}")
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self.children)

    def __len__(self) -> int:
        return len(self.children)

    def get(self, key: str, default: Any = None) -> Any:
        node = self._find(key)
        return default if node is None else node

    def _find(self, path: str) -> Node | None:
        node: Node | None = self
        for part in path.split("/"):
            if not isinstance(node, Group):
                return None
            node = node.children.get(part) if part else node
        return node

    def visititems(self, visit: Callable[[str, Node], Any]) -> None:
        """``visit(relative name, node)`` for every node below, depth first in name order (each
        node is met once: the parse declines a second link)."""
        pending: list[tuple[str, Node]] = [(name, child) for name, child in reversed(self.children.items())]
        while pending:
            name, node = pending.pop()
            visit(name, node)
            if isinstance(node, Group):
                pending += [(f"{name}/{key}", child) for key, child in reversed(node.children.items())]


class File(Group):
    """The parsed structure of one HDF5 file over ``buffer`` (every group and dataset header,
    the attributes left encoded until asked for)."""

    def __init__(self, buffer: Buffer, filename: str):
        self.buffer, self.filename = buffer, filename
        self.leaf_k, self.node_k, self.end, root = _superblock(buffer)
        self.objects, self.steps = 0, 0
        self.heaps: dict[int, dict[int, tuple[int, int]]] = {}
        self._seen: set[int] = set()
        header = _Header(self, root, "/")
        if header.symbol_table is None:
            raise Decline("the root is not a group")
        super().__init__(self, "/", root, header.attrs, {})
        self.children = self._children(header.symbol_table, "/", 0)
        self.file = self

    def _node(self, address: int, name: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise Decline(f"{name}: groups nested deeper than {MAX_DEPTH}")
        header = _Header(self, address, name)
        if header.symbol_table is not None:
            if header.dataset is not None:
                raise Decline(f"{name}: both a group and a dataset")
            return Group(self, name, address, header.attrs, self._children(header.symbol_table, name, depth))
        if header.dataset is None:
            raise Decline(f"{name}: neither a group nor a dataset")
        return Dataset(self, name, address, header.attrs, header.dataset)

    def _children(self, table: tuple[int, int], name: str, depth: int) -> dict[str, Node]:
        prefix = name.rstrip("/") + "/"
        children: dict[str, Node] = {}
        for key, address in _symbols(self, *table):
            children[key] = self._node(address, prefix + key, depth + 1)
        return children

    def work(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise Decline(f"more than {MAX_STEPS} structures to walk")

    def visit_header(self, address: int) -> None:
        """Each object header once: a second visit is a cycle or a second hard link (Keras
        writes neither)."""
        if address in self._seen:
            raise Decline(f"the object at {address} is linked twice (or the tree has a cycle)")
        self._seen.add(address)
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise Decline(f"more than {MAX_OBJECTS} objects")


def open_buffer(data: Any, base: int, size: int, filename: str) -> File:
    """The file held in ``size`` bytes of ``data`` from ``base``; :class:`Decline` if it is not
    one this parser reads."""
    return _guarded(File, Buffer(data, base, size), filename)


def _guarded(parse: Callable[..., Any], *args: Any) -> Any:
    """``parse(*args)``, a short or undecodable structure declining like any other oddity."""
    try:
        return parse(*args)
    except (struct.error, IndexError, ValueError, OverflowError, UnicodeDecodeError) as error:
        raise Decline(f"{type(error).__name__}: {error}") from None


# -- structures ------------------------------------------------------------------------------------
def _superblock(buffer: Buffer) -> tuple[int, int, int, int]:
    """(leaf K, node K, end of file, root object header address) of a version-0 superblock at
    the file's start (no user block, base address 0, 8-byte offsets and lengths)."""
    if buffer.take(0, 8) != SIGNATURE:
        raise Decline("no HDF5 signature at the start")
    version, free, root_version, _, shared, offsets, lengths, _ = buffer.unpack("8B", 8)
    if (version, free, root_version, shared, offsets, lengths) != (0, 0, 0, 0, 8, 8):
        raise Decline(f"superblock version {version} (or offsets of {offsets} bytes)")
    leaf_k, node_k, _flags = buffer.unpack("HHI", 16)
    base, _free, end, driver = buffer.unpack("QQQQ", 24)
    if base != 0 or driver != UNDEFINED or not 0 < leaf_k <= 1 << 12 or not 0 < node_k <= 1 << 12:
        raise Decline("a base address, driver block or B-tree K this parser does not read")
    if end > buffer.size:
        raise Decline(f"the superblock's end of file {end} is past the {buffer.size} bytes held")
    buffer.size = end  # nothing the file holds lies past its own end
    _name, address, _cache, _ = buffer.unpack("QQII", 56)
    return leaf_k, node_k, end, address


class _Header:
    """A version-1 object header's messages: a symbol table (a group), a dataset's (shape,
    dtype, offset, bytes), its attributes (name -> encoded type, space and value)."""

    def __init__(self, file: File, address: int, name: str):
        file.visit_header(address)
        self.file, self.name = file, name
        self.symbol_table: tuple[int, int] | None = None
        self.dataset: tuple[Any, ...] | None = None
        self.raw: dict[str, tuple[bytes, bytes, bytes]] = {}
        buffer = file.buffer
        version, _, count, references, size = buffer.unpack("BBHII", address)
        if version != 1 or references != 1:
            raise Decline(f"{name}: object header version {version}, {references} links")
        if count > MAX_MESSAGES:
            raise Decline(f"{name}: {count} header messages")
        self.parts: dict[int, list[bytes]] = {}
        blocks, seen, done = [(address + 16, size)], {address}, 0
        while blocks:
            start, length = blocks.pop(0)
            buffer.check(start, length)
            at = start
            while at + 8 <= start + length and done < count:
                file.work(1)
                kind, body_size, flags = buffer.unpack("HHB", at)
                if at + 8 + body_size > start + length:
                    raise Decline(f"{name}: a header message runs past its block")
                body = buffer.take(at + 8, body_size)
                at, done = at + 8 + body_size, done + 1
                if kind == _CONTINUATION:
                    more, more_length = struct.unpack_from("<QQ", body)
                    if more in seen:
                        raise Decline(f"{name}: a header continuation met twice")
                    seen.add(more)
                    blocks.append((more, more_length))
                elif kind not in _SKIPPED:
                    if flags & ~0x1:  # shared (stored elsewhere) or other handling this does not know
                        raise Decline(f"{name}: a header message with flags {flags:#x}")
                    self.parts.setdefault(kind, []).append(body)
        if done != count:
            raise Decline(f"{name}: {done} header messages found of the {count} declared")
        self.attrs = Attrs(file, self.raw)
        self._interpret()

    def _interpret(self) -> None:
        known = {_DATASPACE, _DATATYPE, _LAYOUT, _ATTRIBUTE, _SYMBOL_TABLE}
        unknown = set(self.parts) - known
        if unknown or any(len(self.parts[kind]) > 1 for kind in self.parts if kind != _ATTRIBUTE):
            raise Decline(f"{self.name}: header messages {sorted(self.parts)} this parser does not read")
        for body in self.parts.get(_ATTRIBUTE, []):
            key, encoded = _attribute(body, self.name)
            if key in self.raw:
                raise Decline(f"{self.name}: attribute {key!r} twice")
            self.raw[key] = encoded
        if _SYMBOL_TABLE in self.parts:
            if set(self.parts) & {_DATASPACE, _DATATYPE, _LAYOUT}:
                raise Decline(f"{self.name}: a group with a dataset's messages")
            self.symbol_table = struct.unpack_from("<QQ", self.parts[_SYMBOL_TABLE][0])
        elif {_DATASPACE, _DATATYPE, _LAYOUT} <= set(self.parts):
            shape = _dataspace(self.parts[_DATASPACE][0], self.name)
            dtype = _numeric(self.parts[_DATATYPE][0], self.name)
            if shape is None:
                raise Decline(f"{self.name}: a null dataspace")
            self.dataset = (
                shape,
                dtype,
                *_contiguous(self.file, self.parts[_LAYOUT][0], shape, dtype, self.name),
            )
        elif set(self.parts) & {_DATASPACE, _DATATYPE, _LAYOUT}:
            raise Decline(f"{self.name}: part of a dataset's messages")


def _dataspace(body: bytes, name: str) -> tuple[int, ...] | None:
    """The dims of a version-1 or -2 dataspace (``()`` scalar), None for a null one."""
    version, rank, flags = struct.unpack_from("<BBB", body)
    if version == 1:
        start, null = 8, False
    elif version == 2:
        start, null = 4, body[3] == 2
        if body[3] not in (0, 1, 2) or (body[3] == 0 and rank):
            raise Decline(f"{name}: dataspace type {body[3]}")
    else:
        raise Decline(f"{name}: dataspace version {version}")
    if rank > 32 or flags & ~0x1:
        raise Decline(f"{name}: a dataspace of rank {rank}, flags {flags:#x}")
    dims = struct.unpack_from(f"<{rank}Q", body, start)
    # maximum dims: a dataset that can grow is stored chunked, so only fixed ones
    if flags & 1 and struct.unpack_from(f"<{rank}Q", body, start + 8 * rank) != dims:
        raise Decline(f"{name}: a resizable dataspace")
    return None if null else tuple(int(n) for n in dims)


def _numeric(body: bytes, name: str) -> np.dtype:
    """A little-endian IEEE float (as :data:`.h5write.FLOATS` describes them) or integer, or an
    untagged opaque type (what h5py makes of NumPy's ``V2``, which Keras 3 stores bfloat16 as,
    marked by the dataset's ``dtype`` attribute)."""
    if len(body) < 8:
        raise Decline(f"{name}: a short datatype")
    kind, bits, size = body[0] & 0x0F, body[1:4], struct.unpack_from("<I", body, 4)[0]
    version = body[0] >> 4
    if version != 1:
        raise Decline(f"{name}: datatype version {version}")
    if kind == 1 and size in FLOATS and len(body) >= 20:
        precision, exponent_at, exponent_size, mantissa_size, bias = FLOATS[size]
        expected = bytes([0x20, precision - 1, 0]) + struct.pack(
            "<HHBBBBI", 0, precision, exponent_at, exponent_size, 0, mantissa_size, bias
        )
        if bits + body[8:20] == expected:
            return np.dtype(f"<f{size}")
    integer = kind == 0 and size in (1, 2, 4, 8) and len(body) >= 12 and bits[0] in (0, 8)
    if integer and bits[1:] == b"\0\0" and struct.unpack_from("<HH", body, 8) == (0, 8 * size):
        return np.dtype(f"<{'i' if bits[0] else 'u'}{size}")
    if kind == 5 and bits == b"\0\0\0" and 0 < size <= 64:  # opaque, untagged: Keras's bfloat16
        return np.dtype(f"V{size}")
    raise Decline(f"{name}: a datatype (class {kind}, {size} bytes) this parser does not read")


def _contiguous(
    file: File, body: bytes, shape: tuple[int, ...], dtype: np.dtype, name: str
) -> tuple[int, int]:
    """(offset, bytes) of a version-3 contiguous layout, which must hold exactly the dataset's
    bytes inside the file; an unallocated one only for an empty dataset."""
    version, layout = body[0], body[1]
    if version != 3 or layout != 1:
        raise Decline(f"{name}: layout version {version}, class {layout} (only contiguous is read)")
    address, size = struct.unpack_from("<QQ", body, 2)
    declared = elements(shape) * dtype.itemsize
    if size != declared:
        raise Decline(f"{name}: {size} bytes stored for {declared} declared")
    if address == UNDEFINED:
        if declared:
            raise Decline(f"{name}: storage not allocated (its fill value would be read)")
        return 0, 0
    file.buffer.check(address, size)
    return address, size


def _attribute(body: bytes, name: str) -> tuple[str, tuple[bytes, bytes, bytes]]:
    """(name, (datatype, dataspace, value)) of a version-1, -2 or -3 attribute message."""
    version = body[0]
    if version not in (1, 2, 3):
        raise Decline(f"{name}: attribute message version {version}")
    name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
    at = 8 if version < 3 else 9
    if version == 3 and body[8] not in (0, 1):
        raise Decline(f"{name}: attribute name encoding {body[8]}")

    def field(size: int) -> bytes:
        nonlocal at
        part = body[at : at + size]
        if len(part) != size:
            raise Decline(f"{name}: an attribute message runs past its end")
        at += (size + 7) & ~7 if version == 1 else size
        return part

    key = field(name_size)
    if not key.endswith(b"\0") or b"\0" in key[:-1]:
        raise Decline(f"{name}: an attribute name not NUL-terminated")
    datatype, dataspace = field(type_size), field(space_size)
    return key[:-1].decode(), (datatype, dataspace, body[at:])


def _attribute_value(file: File, datatype: bytes, dataspace: bytes, value: bytes) -> Any:
    """What h5py gives for the attribute: ``str`` for a variable-length string, ``bytes`` for a
    fixed-length one, a NumPy value for numbers, an array of those for a 1-D space."""
    where = "an attribute"
    shape = _dataspace(dataspace, where)
    if shape is None or len(shape) > 1:
        raise Decline("an attribute of a null or multi-dimensional space")
    count = elements(shape)
    kind, size = (
        (datatype[0] & 0x0F, struct.unpack_from("<I", datatype, 4)[0]) if len(datatype) >= 8 else (-1, 0)
    )
    if datatype[0] >> 4 != 1:
        raise Decline("an attribute datatype of another version")
    if kind == 3 and datatype[1] & 0x0F in (0, 1) and size:  # fixed-length string, NUL-ended or -padded
        if count * size > len(value):
            raise Decline("an attribute's value runs past its message")
        items = [value[i * size : (i + 1) * size].rstrip(b"\0") for i in range(count)]
        return items[0] if not shape else np.array(items, dtype=f"S{size}")
    if kind == 9 and datatype[1] & 0x0F == 1 and (datatype[1] >> 4) in (0, 1):  # variable-length string
        if 16 * count > len(value):
            raise Decline("an attribute's value runs past its message")
        texts = [_global_string(file, *struct.unpack_from("<IQI", value, 16 * i)) for i in range(count)]
        return texts[0] if not shape else np.array(texts, dtype=object)
    dtype = _numeric(datatype, where)
    if count * dtype.itemsize > len(value):
        raise Decline("an attribute's value runs past its message")
    array = np.frombuffer(value, dtype, count).copy()
    return array[0] if not shape else array


def _global_string(file: File, length: int, collection: int, index: int) -> str:
    if length > MAX_ATTRIBUTE_BYTES:
        raise Decline(f"a {length}-byte string attribute")
    if not length and not collection:
        return ""
    objects = file.heaps.get(collection)
    if objects is None:
        objects = file.heaps[collection] = _collection(file, collection)
    found = objects.get(index)
    if found is None or found[1] < length:
        raise Decline(f"global heap object {index} missing or shorter than {length} bytes")
    return file.buffer.take(found[0], length).decode()


def _collection(file: File, address: int) -> dict[int, tuple[int, int]]:
    """A global heap collection's objects: index -> (offset of the bytes, size)."""
    buffer = file.buffer
    if buffer.take(address, 4) != b"GCOL" or buffer.unpack("B", address + 4)[0] != 1:
        raise Decline(f"no global heap collection at {address}")
    size = buffer.unpack("Q", address + 8)[0]
    buffer.check(address, size)
    objects, at, end = {}, address + 16, address + size
    while at + 16 <= end:
        file.work(1)
        index, _count, _, length = buffer.unpack("HHIQ", at)
        if index == 0:  # the free space: the rest of the collection
            break
        if index in objects or at + 16 + length > end:
            raise Decline(f"global heap object {index} repeated or past its collection")
        objects[index] = (at + 16, length)
        at += 16 + ((length + 7) & ~7)
    return objects


def _symbols(file: File, tree: int, heap: int) -> list[tuple[str, int]]:
    """A symbol-table group's (name, object header address) pairs, in name order, which the
    B-tree must already give (strictly increasing: a name twice declines)."""
    data, data_size = _local_heap(file.buffer, heap)
    entries: list[tuple[str, int]] = []
    for node in _leaves(file, tree):
        buffer = file.buffer
        if buffer.take(node, 4) != b"SNOD" or buffer.unpack("B", node + 4)[0] != 1:
            raise Decline(f"no symbol-table node at {node}")
        count = buffer.unpack("H", node + 6)[0]
        if count > 2 * file.leaf_k:
            raise Decline(f"a symbol-table node of {count} entries")
        file.work(1 + count)
        for position in range(count):
            offset, address, cache, _ = buffer.unpack("QQII", node + 8 + 40 * position)
            if cache not in (0, 1):  # 2: a soft link
                raise Decline(f"a symbol-table entry of cache type {cache}")
            entries.append((_heap_name(buffer, data, data_size, offset), address))
            if len(entries) > MAX_OBJECTS:
                raise Decline("too many entries")
    keys = [key.encode() for key, _ in entries]
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise Decline("a group's names out of order (or one twice)")
    return entries


def _local_heap(buffer: Buffer, address: int) -> tuple[int, int]:
    if buffer.take(address, 4) != b"HEAP" or buffer.unpack("B", address + 4)[0] != 0:
        raise Decline(f"no local heap at {address}")
    data_size, _free, data = buffer.unpack("QQQ", address + 8)
    buffer.check(data, data_size)
    return data, data_size


def _heap_name(buffer: Buffer, data: int, data_size: int, offset: int) -> str:
    """A NUL-terminated name inside the heap's data segment: a member name h5py would show."""
    if not 0 < offset < data_size:
        raise Decline(f"a name at {offset} outside its heap")
    start = buffer.base + data + offset
    end = buffer.data.find(b"\0", start, start + min(data_size - offset, MAX_NAME))
    if end <= start:
        raise Decline("a member name that is empty, not NUL-terminated or too long")
    name = bytes(buffer.view[start:end]).decode()
    if "/" in name or name in (".", ".."):
        raise Decline(f"a member name {name!r}")
    return name


def _leaves(file: File, root: int) -> list[int]:
    """The symbol-table nodes under a group's version-1 B-tree, left to right; each tree node
    once, levels falling by one to 0."""
    buffer, found, seen = file.buffer, [], set()
    pending: list[tuple[int, int | None]] = [(root, None)]
    while pending:
        address, level_expected = pending.pop()
        if address in seen:
            raise Decline(f"the B-tree node at {address} is met twice")
        seen.add(address)
        if buffer.take(address, 4) != b"TREE":
            raise Decline(f"no B-tree node at {address}")
        kind, level, count = buffer.unpack("BBH", address + 4)
        if kind != 0 or level > MAX_TREE_LEVEL or (level_expected is not None and level != level_expected):
            raise Decline(f"a B-tree node of type {kind}, level {level}")
        if count > 2 * file.node_k:
            raise Decline(f"a B-tree node of {count} children")
        file.work(1 + count)
        children = [buffer.unpack("Q", address + 32 + 16 * i)[0] for i in range(count)]
        if level == 0:
            found.extend(children)
        else:
            pending.extend((child, level - 1) for child in reversed(children))
        if len(found) > MAX_OBJECTS:
            raise Decline("too many symbol-table nodes")
    return found


# -- the Keras reader's surface ---------------------------------------------------------------------
class Reader:
    """What :class:`.hdf5.H5` gives the Keras reader, over a parsed :class:`File`: ``handle``
    (the root group) and :meth:`dataset`. The declared bytes of every dataset read count
    against the same budget as there; past it, the file is declined (h5py's read refuses it)."""

    def __init__(self, handle: File, probe: bool = False, outer: int | None = None):
        self.handle, self.probe = handle, probe
        self.budget = MAX_RATIO * (handle.buffer.size if outer is None else outer) + (1 << 20)
        self.declared = 0

    def dataset(self, group: Group, key: str, where: str) -> np.ndarray:
        node = group.children.get(key)
        if node is None:
            raise FormatError(f"missing weight {key!r}", where=(where,))
        if not isinstance(node, Dataset):
            raise FormatError(f"{key!r} is not a dataset", where=(where,))
        self.declared += node.nbytes
        if self.declared > self.budget:
            raise Decline(f"the datasets up to {key!r} declare more than the budget")
        # probing: the shape and dtype, one zero for every value
        values = np.broadcast_to(np.zeros((), node.dtype), node.shape) if self.probe else node.values()
        if node.attrs.get("dtype") in ("bfloat16", b"bfloat16") and values.dtype.itemsize == 2:
            return values.view(dtypes.resolve("bfloat16"))  # Keras 3 stores bfloat16 as raw 2-byte values
        return values
