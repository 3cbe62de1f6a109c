"""HDF5 files written without h5py, in the oldest layout every HDF5 reader knows (the one h5py
writes by default): superblock version 0, version-1 object headers, groups as symbol tables
(a local heap of names, a version-1 B-tree over symbol-table nodes, names in ``strcmp``
order), contiguous datasets of little-endian IEEE floats, and scalar variable-length UTF-8
string attributes (what ``attrs[key] = "text"`` gives in h5py) held in a global heap.

Every size is known before a byte is written, so :func:`layout` places all the metadata at the
front and each dataset's bytes after it, in the order the caller will stream them:
``Layout.metadata`` first, then each of ``Layout.datasets``' ``nbytes``, nothing in between.
Written from the HDF5 File Format Specification (version 2.0 of the document, the structures
of format version 0); offsets and lengths are 8 bytes, so files past 4 GiB are addressed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

#: The undefined address.
UNDEFINED = 0xFFFF_FFFF_FFFF_FFFF
SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: B-tree "K"s the superblock declares: a symbol-table node holds up to 2·LEAF_K entries,
#: a group B-tree node up to 2·NODE_K children (the library's defaults).
LEAF_K, NODE_K = 4, 16
SUPERBLOCK_SIZE = 56 + 40  # the fixed fields, then the root group's symbol-table entry
ENTRY_SIZE = 40  # a symbol-table entry: name offset, header address, cache type, scratch pad
SNOD_SIZE = 8 + 2 * LEAF_K * ENTRY_SIZE
TREE_SIZE = 24 + 2 * NODE_K * 8 + (2 * NODE_K + 1) * 8
HEAP_HEADER = 32
#: A free block at the end of each local heap: the library always keeps one, and other
#: readers than the library need not know the "no free block" marker.
HEAP_FREE = 16
COLLECTION_MIN = 4096  # a global heap collection is at least this big
#: Message types of a version-1 object header.
DATASPACE, DATATYPE, FILL_VALUE, LAYOUT, ATTRIBUTE, SYMBOL_TABLE = 0x1, 0x3, 0x5, 0x8, 0xC, 0x11
#: IEEE floats: (bit precision, exponent location, exponent size, mantissa size, bias).
FLOATS = {2: (16, 10, 5, 10, 15), 4: (32, 23, 8, 23, 127), 8: (64, 52, 11, 52, 1023)}


@dataclass(eq=False)
class Dataset:
    """A contiguous dataset whose bytes the caller streams (C order, little-endian)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dtype = np.dtype(self.dtype)
        if self.dtype.kind != "f" or self.dtype.itemsize not in FLOATS:
            raise ValueError(f"HDF5 writer: no IEEE float type for {self.dtype}")

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(eq=False)
class Group:
    """A group: its children by name, and its string attributes."""

    children: dict[str, Group | Dataset] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)

    def group(self, path: str) -> Group:
        """The group at ``path`` below this one (``a/b/c``), made where missing."""
        here = self
        for part in path.split("/"):
            child = here.children.setdefault(_name(part), Group())
            if not isinstance(child, Group):
                raise ValueError(f"HDF5 writer: {part!r} is a dataset, not a group")
            here = child
        return here


@dataclass
class Layout:
    """The file: ``metadata`` (everything but the datasets' bytes), then ``datasets``' bytes in
    this order, ``size`` bytes in all."""

    metadata: bytes
    datasets: list[Dataset]
    size: int


def _name(part: str) -> str:
    if not part or part in (".", "..") or "/" in part or "\0" in part:
        raise ValueError(f"HDF5 writer: {part!r} is not a name for a group member")
    return part


def _pad(size: int) -> int:
    return (size + 7) & ~7


def _attribute_size(name: str) -> int:
    """A string attribute's message: its header, the version-1 attribute header, the name
    (NUL-terminated, padded), the type (20 bytes, padded), the scalar space, the value."""
    return 8 + 8 + _pad(len(name.encode()) + 1) + 24 + 8 + 16


# -- sizes and places ------------------------------------------------------------------------------
def _header_size(node: Group | Dataset) -> int:
    """A version-1 object header: the 16-byte prefix, then each message (8 + padded data)."""
    messages = sum(_attribute_size(key) for key in node.attrs)
    if isinstance(node, Group):
        return 16 + messages + 8 + 16
    rank = len(node.shape)
    space = 8 + (16 * rank if rank else 0)
    return 16 + messages + (8 + space) + (8 + 24) + (8 + 8) + (8 + 24)


def _heap_names(group: Group) -> tuple[dict[str, int], int]:
    """Each child's name's offset in the group's local heap (the empty string at 0, every
    name NUL-terminated and padded to 8), and the heap's data size with its free block."""
    offsets, at = {}, 8
    for name in group.children:
        offsets[name] = at
        at += _pad(len(name.encode()) + 1)
    return offsets, at + HEAP_FREE


def _sorted(group: Group) -> list[str]:
    return sorted(group.children, key=lambda name: name.encode())


def _chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _tree_levels(symbol_nodes: int) -> list[int]:
    """How many B-tree nodes each level has, from level 0 (over the symbol-table nodes) up to
    the root's level of one node; an empty group has one empty level-0 node."""
    levels = [max(1, -(-symbol_nodes // (2 * NODE_K)))]
    while levels[-1] > 1:
        levels.append(-(-levels[-1] // (2 * NODE_K)))
    return levels


class _Places:
    """Every structure's address, handed out in one walk of the tree (depth first)."""

    def __init__(self, root: Group, datasets: list[Dataset]):
        self.at = SUPERBLOCK_SIZE
        self.header: dict[int, int] = {}
        self.heap: dict[int, int] = {}
        self.trees: dict[int, list[list[int]]] = {}
        self.snods: dict[int, list[int]] = {}
        self._walk(root)
        self.strings: dict[tuple[int, str], tuple[int, int]] = {}
        self.collections: list[tuple[int, int, list[bytes]]] = []
        self._collect(root)
        self.data: dict[int, int] = {}
        for dataset in datasets:
            self.data[id(dataset)] = self.at if dataset.nbytes else UNDEFINED
            self.at += dataset.nbytes

    def _take(self, size: int) -> int:
        address, self.at = self.at, self.at + size
        return address

    def _walk(self, node: Group | Dataset) -> None:
        self.header[id(node)] = self._take(_header_size(node))
        if isinstance(node, Dataset):
            return
        key = id(node)
        self.heap[key] = self._take(HEAP_HEADER + _heap_names(node)[1])
        symbol_nodes = -(-len(node.children) // (2 * LEAF_K))
        self.trees[key] = [[self._take(TREE_SIZE) for _ in range(n)] for n in _tree_levels(symbol_nodes)]
        self.snods[key] = [self._take(SNOD_SIZE) for _ in range(symbol_nodes)]
        for name in _sorted(node):
            self._walk(node.children[name])

    def _collect(self, root: Group) -> None:
        """Every attribute's string into a global heap collection (indices from 1), in the
        order of the walk; a new collection when one holds 65,535 objects."""
        pending: list[bytes] = []
        where: list[tuple[int, str]] = []
        for node in _nodes(root):
            for key, text in node.attrs.items():
                where.append((id(node), key))
                pending.append(text.encode())
        for chunk_start in range(0, len(pending), 0xFFFF):
            chunk = pending[chunk_start : chunk_start + 0xFFFF]
            used = 16 + sum(16 + _pad(len(text)) for text in chunk)
            size = max(COLLECTION_MIN, used + 16)  # always room for the free-space object
            address = self._take(size)
            self.collections.append((address, size, chunk))
            for index, _ in enumerate(chunk):
                self.strings[where[chunk_start + index]] = (address, index + 1)


def _nodes(node: Group | Dataset) -> Iterator[Group | Dataset]:
    yield node
    if isinstance(node, Group):
        for name in _sorted(node):
            yield from _nodes(node.children[name])


# -- encoding ---------------------------------------------------------------------------------------
def layout(root: Group, datasets: list[Dataset]) -> Layout:
    """The file holding ``root``'s tree, its datasets' bytes to follow in ``datasets``' order
    (every dataset of the tree, each once)."""
    listed = {id(d) for d in datasets}
    found = [node for node in _nodes(root) if isinstance(node, Dataset)]
    if len(listed) != len(datasets) or len(found) != len(datasets) or listed != {id(d) for d in found}:
        raise ValueError("HDF5 writer: the stream order must list every dataset of the tree once")
    places = _Places(root, datasets)
    metadata = bytearray(_metadata_end(places, datasets))
    _superblock(metadata, places, root)
    for node in _nodes(root):
        _object(metadata, places, node)
    for address, size, chunk in places.collections:
        _collection(metadata, address, size, chunk)
    return Layout(bytes(metadata), list(datasets), places.at)


def _metadata_end(places: _Places, datasets: list[Dataset]) -> int:
    return places.at - sum(d.nbytes for d in datasets)


def _superblock(out: bytearray, places: _Places, root: Group) -> None:
    fixed = SIGNATURE + bytes([0, 0, 0, 0, 0, 8, 8, 0]) + struct.pack("<HHI", LEAF_K, NODE_K, 0)
    fixed += struct.pack("<QQQQ", 0, UNDEFINED, places.at, UNDEFINED)
    out[0:56] = fixed
    out[56:96] = _entry(places, 0, root)


def _entry(places: _Places, name_offset: int, node: Group | Dataset) -> bytes:
    """A symbol-table entry; a group's caches its B-tree and heap (cache type 1), as the
    library's do."""
    address = places.header[id(node)]
    if isinstance(node, Group):
        scratch = struct.pack("<QQ", places.trees[id(node)][-1][0], places.heap[id(node)])
        return struct.pack("<QQII", name_offset, address, 1, 0) + scratch
    return struct.pack("<QQII", name_offset, address, 0, 0) + bytes(16)


def _message(kind: int, body: bytes, flags: int = 0) -> bytes:
    padded = body + bytes(_pad(len(body)) - len(body))
    return struct.pack("<HHB3x", kind, len(padded), flags) + padded


def _object(out: bytearray, places: _Places, node: Group | Dataset) -> None:
    messages: list[bytes] = []
    if isinstance(node, Group):
        body = struct.pack("<QQ", places.trees[id(node)][-1][0], places.heap[id(node)])
        messages.append(_message(SYMBOL_TABLE, body))
    else:
        messages += _dataset_messages(places, node)
    messages += [
        _attribute(key, len(text.encode()), *places.strings[id(node), key])
        for key, text in node.attrs.items()
    ]
    body = b"".join(messages)
    address = places.header[id(node)]
    header = struct.pack("<BBHII4x", 1, 0, len(messages), 1, len(body))
    out[address : address + len(header) + len(body)] = header + body
    if isinstance(node, Group):
        _symbol_table(out, places, node)


def _dataset_messages(places: _Places, dataset: Dataset) -> list[bytes]:
    rank = len(dataset.shape)
    dims = struct.pack(f"<{rank}Q", *dataset.shape)
    space = struct.pack("<BBB5x", 1, rank, 1 if rank else 0) + (dims + dims if rank else b"")
    size = dataset.dtype.itemsize
    precision, exponent_at, exponent_size, mantissa_size, bias = FLOATS[size]
    # class 1 (floating point), version 1; little-endian, mantissa normalized with an implied
    # leading 1, the sign bit at the top
    datatype = bytes([0x11, 0x20, precision - 1, 0]) + struct.pack(
        "<IHHBBBBI", size, 0, precision, exponent_at, exponent_size, 0, mantissa_size, bias
    )
    fill = bytes([2, 2, 2, 1]) + struct.pack("<I", 0)  # allocated late, filled if set: the default
    storage = struct.pack("<BBQQ", 3, 1, places.data[id(dataset)], dataset.nbytes)  # contiguous
    return [
        _message(DATASPACE, space),
        _message(DATATYPE, datatype, flags=1),
        _message(FILL_VALUE, fill, flags=1),
        _message(LAYOUT, storage),
    ]


def _attribute(name: str, length: int, collection: int, index: int) -> bytes:
    """A scalar attribute of a variable-length UTF-8 string (NUL-padded), its value in the
    global heap."""
    key = name.encode() + b"\0"
    base = bytes([0x10, 0, 0, 0]) + struct.pack("<IHH", 1, 0, 8)  # an unsigned byte
    vlen = bytes([0x19, 0x01, 0x01, 0]) + struct.pack("<I", 16) + base  # string, UTF-8
    space = struct.pack("<BBB5x", 1, 0, 0)  # scalar
    value = struct.pack("<IQI", length, collection, index)
    body = struct.pack("<BBHHH", 1, 0, len(key), len(vlen), len(space))
    body += key.ljust(_pad(len(key)), b"\0") + vlen.ljust(24, b"\0") + space + value
    return _message(ATTRIBUTE, body)


def _symbol_table(out: bytearray, places: _Places, group: Group) -> None:
    """The group's local heap, its symbol-table nodes (2·LEAF_K entries each, in name order)
    and the B-tree over them (2·NODE_K children a node, each key the last name below it)."""
    key = id(group)
    offsets, data_size = _heap_names(group)
    heap = places.heap[key]
    data = heap + HEAP_HEADER
    out[heap : heap + HEAP_HEADER] = (
        b"HEAP" + bytes(4) + struct.pack("<QQQ", data_size, data_size - HEAP_FREE, data)
    )
    for name, offset in offsets.items():
        encoded = name.encode()
        out[data + offset : data + offset + len(encoded)] = encoded
    free = data + data_size - HEAP_FREE
    out[free : free + HEAP_FREE] = struct.pack("<QQ", 1, HEAP_FREE)  # the last free block: size 16
    names = _sorted(group)
    snods = places.snods[key]
    children: list[tuple[int, int]] = []  # (address, heap offset of the last name below it)
    for address, chunk in zip(snods, _chunks(names, 2 * LEAF_K), strict=True):
        entries = b"".join(_entry(places, offsets[name], group.children[name]) for name in chunk)
        out[address : address + 8 + len(entries)] = b"SNOD" + struct.pack("<BBH", 1, 0, len(chunk)) + entries
        children.append((address, offsets[chunk[-1]]))
    for level, addresses in enumerate(places.trees[key]):
        nodes = _chunks(children, 2 * NODE_K) or [[]]
        children = []
        for position, (address, below) in enumerate(zip(addresses, nodes, strict=True)):
            left = addresses[position - 1] if position else UNDEFINED
            right = addresses[position + 1] if position + 1 < len(addresses) else UNDEFINED
            body = b"TREE" + struct.pack("<BBHQQ", 0, level, len(below), left, right) + struct.pack("<Q", 0)
            for child, last in below:
                body += struct.pack("<QQ", child, last)
            out[address : address + len(body)] = body
            children.append((address, below[-1][1] if below else 0))


def _collection(out: bytearray, address: int, size: int, strings: list[bytes]) -> None:
    """A global heap collection: its objects (index, reference count 0 as the library writes
    for variable-length data, size, the bytes padded to 8), then the free space as object 0."""
    body = b"GCOL" + bytes([1, 0, 0, 0]) + struct.pack("<Q", size)
    for index, text in enumerate(strings, start=1):
        body += struct.pack("<HHIQ", index, 0, 0, len(text)) + text.ljust(_pad(len(text)), b"\0")
    body += struct.pack("<HHIQ", 0, 0, 0, size - len(body))
    out[address : address + len(body)] = body
