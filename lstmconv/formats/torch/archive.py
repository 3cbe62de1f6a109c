"""Writing ``.pt`` files without torch: torch's zip format, as ``torch.save`` writes a state_dict.

The archive holds ``archive/data.pkl`` (a protocol 2 pickle of an ``OrderedDict`` of tensors,
each ``torch._utils._rebuild_tensor_v2`` of a persistent storage, with the ``_metadata`` that
:mod:`.live` records), one uncompressed record ``archive/data/<n>`` per tensor, aligned to 64
bytes as torch aligns them (so ``torch.load(mmap=True)`` and lstmconv's reader map them in place),
and torch's small records (``version``, ``byteorder``...). The pickle is written opcode by opcode
(nothing is imported to name torch's globals), the tensors' bytes streamed from the IR's blocks.
What ``torch.load(weights_only=True)`` reads back is what :func:`.live.write` saves.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import dtypes, progress
from ...ir import Model
from . import keys, statedict

#: NumPy dtype name -> torch's storage class (torch's legacy typed storages, as it pickles them).
_STORAGES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "bfloat16": "BFloat16Storage",
    "int64": "LongStorage",  # a BatchNorm's num_batches_tracked
}
#: Records torch writes beside the pickle and the storages (``.data/serialization_id`` aside).
_SMALL_RECORDS = ((".format_version", b"1"), (".storage_alignment", b"64"), ("byteorder", b"little"))
_ALIGNMENT = 64


#: The plain layers go into the state_dict in nn naming (:mod:`.around`).
HOLDS_PLAIN = True


def write(model: Model, path: str, *, as_cell: bool = False, **options: Any) -> None:
    """The state_dict of ``model``'s modules (:func:`statedict.modules`) and plain layers, as
    :func:`.live.write` saves it, with the RNN nonlinearities and the links in its ``_metadata``;
    ``rename`` ({OLD: NEW}, prefix match) and ``prefix``: the keys renamed (:mod:`.keys`)."""
    ready = keys.prepared(
        model, path, as_cell=as_cell, rename=options.get("rename"), prefix=options.get("prefix")
    )
    parts = ready.blocks
    metadata: dict[str, Any] = {key: {statedict.META_KEY: name} for key, name in ready.nonlinearities.items()}
    if ready.links:
        metadata[""] = {statedict.LINKS_KEY: ready.links}
    pickled = _pickle(parts, metadata)
    total = sum(block.nbytes for blocks in parts.values() for block in blocks)
    with progress.counting(total), zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        _record(archive, "archive/data.pkl", [np.frombuffer(pickled, np.uint8)])
        for name, value in _SMALL_RECORDS:
            _record(archive, f"archive/{name}", [np.frombuffer(value, np.uint8)])
        for index, blocks in enumerate(parts.values()):
            _record(archive, f"archive/data/{index}", blocks, counted=True)
        _record(archive, "archive/version", [np.frombuffer(b"3\n", np.uint8)])


def _record(archive: zipfile.ZipFile, name: str, blocks: list[np.ndarray], counted: bool = False) -> None:
    """One stored record whose data starts on a 64-byte boundary (padded, as torch pads, in an
    extra field ``FB``), its bytes written block by block."""
    size = sum(block.nbytes for block in blocks)
    large = size * 1.05 > zipfile.ZIP64_LIMIT  # as zipfile decides: then a zip64 extra field follows
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.file_size = size
    start = archive.fp.tell() if archive.fp is not None else 0
    header = 30 + len(name.encode()) + 4 + (20 if large else 0)
    padding = -(start + header) % _ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
    with archive.open(info, "w", force_zip64=large) as member:
        for block in blocks:
            member.write(dtypes.little_endian_bytes(block))
            if counted:  # the weights, for the progress line
                progress.advance(block.nbytes)


# -- the pickle, opcode by opcode (protocol 2) --------------------------------------------------------
_ORDERED_DICT = b"ccollections\nOrderedDict\n"


def _pickle(parts: Mapping[str, list[np.ndarray]], metadata: Mapping[str, Any]) -> bytes:
    """``OrderedDict`` of the tensors (storage ``n`` for the n-th), its ``_metadata`` as state."""
    out = bytearray(b"\x80\x02" + _ORDERED_DICT + b")R")
    if parts:
        out += b"("
        for index, (key, blocks) in enumerate(parts.items()):
            out += _value(key) + _tensor(index, blocks)
        out += b"u"  # SETITEMS
    out += b"}" + _value("_metadata") + _ORDERED_DICT + b")R"
    if metadata:
        out += b"(" + b"".join(_value(k) + _value(v) for k, v in metadata.items()) + b"u"
    out += b"sb."  # SETITEM, BUILD, STOP
    return bytes(out)


def _tensor(index: int, blocks: list[np.ndarray]) -> bytes:
    """``_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())``."""
    dtype = blocks[0].dtype.name
    shape = (sum(block.shape[0] for block in blocks), *blocks[0].shape[1:]) if blocks[0].ndim else ()
    stride = tuple(int(np.prod(shape[axis + 1 :], dtype=np.int64)) for axis in range(len(shape)))
    numel = int(np.prod(shape, dtype=np.int64))
    storage = b"(" + _value("storage") + f"ctorch\n{_STORAGES[dtype]}\n".encode()
    storage += _value(str(index)) + _value("cpu") + _value(numel) + b"tQ"  # TUPLE, BINPERSID
    arguments = storage + _value(0) + _value(shape) + _value(stride) + b"\x89" + _ORDERED_DICT + b")R"
    return b"ctorch._utils\n_rebuild_tensor_v2\n(" + arguments + b"tR"


def _value(value: Any) -> bytes:
    """A plain value: str, int, bool, None, a tuple, a list or a dict of those."""
    if isinstance(value, bool):
        return b"\x88" if value else b"\x89"
    if value is None:
        return b"N"
    if isinstance(value, str):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, tuple):
        return b"(" + b"".join(_value(v) for v in value) + b"t"
    if isinstance(value, list):
        return b"]" + ((b"(" + b"".join(_value(v) for v in value) + b"e") if value else b"")
    if isinstance(value, Mapping):
        inner = b"".join(_value(k) + _value(v) for k, v in value.items())
        return b"}" + ((b"(" + inner + b"u") if value else b"")
    raise TypeError(f"no pickle for {type(value).__name__}")  # not reached: the values are the writer's


def _integer(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1
