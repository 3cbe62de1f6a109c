"""``.npz``: the IR itself, readable with NumPy alone.

Keys are ``<layer>/<direction>/<field>/<gate>`` (``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``,
``peephole``) and ``<layer>/<direction>/w_hr``; directions are ``forward``, ``reverse`` or
``forward`` + ``backward``. The plain layers around them (Embedding, Dense, ...) keep their
tensors under ``<layer>/<tensor>`` (``fc/weight``, PyTorch's orientation). The key
``__lstmconv__`` holds the layers' metadata (and, with plain layers, every layer's place in the
model: ``order``) as JSON text.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import zipfile
from typing import Any

import numpy as np

from .. import outline, progress
from ..errors import FormatError, LstmconvError, UnsafeInputError
from ..inspection import Tensor, canonical
from ..ir import GATES, Layer, Model
from ._common import check_zip_budget, dims, elements, member_start, parse_json

NAME = "npz"
GATE_ORDER = GATES
META_KEY = "__lstmconv__"
VERSION = 1
#: The plain layers are carried (:mod:`lstmconv.plain`).
HOLDS_PLAIN = True
#: A fixed timestamp so the same model gives the same bytes.
_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def check(layer: Layer) -> None:
    """Every IR feature fits in an ``.npz``."""


def layout(layer: Layer) -> list[Tensor]:
    """An ``.npz`` stores the IR's own tensors."""
    return canonical(layer)


def arrays(model: Model) -> dict[str, np.ndarray]:
    """Every array of the file, metadata included, in a fixed order."""
    meta: dict[str, Any] = {"version": VERSION, "layers": [outline.metadata(layer) for layer in model]}
    if model.links is not None:
        meta["links"] = [list(pair) for pair in model.links]
    if model.around:  # only where there are some: a recurrent-only model keeps its bytes
        meta["around"] = [outline.plain_metadata(layer) for layer in model.around]
        meta["order"] = list(model.order or ())
    return {META_KEY: np.array(json.dumps(meta)), **outline.keyed(model), **outline.plain_keyed(model)}


def write(model: Model, path: str, **_: Any) -> None:
    """Write an uncompressed ``.npz`` with fixed timestamps (same model, same bytes); the
    weights' bytes are counted for the progress line (the metadata's are not)."""
    members = arrays(model)
    weights = sum(array.nbytes for key, array in members.items() if key != META_KEY)
    with (
        progress.counting(weights),
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        for key, array in members.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=_DATE_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            if key != META_KEY:
                progress.advance(array.nbytes)


def _check_declared(listing: zipfile.ZipFile) -> None:
    """Each member's ``.npy`` header against the bytes the member holds, before NumPy reads it:
    NumPy allocates the declared array first (16 stored bytes may declare 512 GB)."""
    for info in listing.infolist():
        with listing.open(info) as member:
            shape, _fortran, dtype = _header(member)
        declared = elements(shape) * dtype.itemsize
        if declared > info.file_size:
            raise UnsafeInputError(
                f"declares {dtype} {dims(shape)} ({declared} bytes) but stores {info.file_size} bytes",
                where=(info.filename.removesuffix(".npy"),),
                hint="the file's sizes are inconsistent; refusing to allocate",
            )


def _mapped(path: str, listing: zipfile.ZipFile) -> dict[str, np.ndarray] | None:
    """Every member's array as a read-only view of a memory map of the file, when every member
    is stored (as lstmconv and ``np.savez`` write them): no copy, and only the pages used are
    read. None where one is compressed or encrypted (NumPy reads those). Each ``.npy`` header is
    read as NumPy reads it, and the array must fit in its member."""
    infos = listing.infolist()
    if not infos or any(info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1 for info in infos):
        return None
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    found = {}
    for info in infos:
        start = member_start(path, info)
        member = io.BytesIO(mapped[start : start + min(info.file_size, _HEADER_LIMIT)])
        shape, fortran, dtype = _header(member)
        if dtype.hasobject:
            raise FormatError(
                "not a readable lstmconv .npz: an array of Python objects (a pickle), which is never loaded",
                where=(info.filename.removesuffix(".npy"),),
            )
        offset, count = member.tell(), elements(shape)
        if offset + count * dtype.itemsize > info.file_size:
            raise UnsafeInputError(
                f"declares {dtype} {dims(shape)} but stores {info.file_size} bytes",
                where=(info.filename.removesuffix(".npy"),),
            )
        flat = np.frombuffer(mapped, dtype, count, start + offset)
        found[info.filename.removesuffix(".npy")] = flat.reshape(shape, order="F" if fortran else "C")
    return found


#: A ``.npy`` header is read from at most this many bytes (NumPy's own limit is 10,000).
_HEADER_LIMIT = 1 << 16


def _header(member: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    return np.lib.format.read_array_header_2_0(member)


def read(source: Any, **_: Any) -> Model:
    path = os.fspath(source)
    try:
        with zipfile.ZipFile(path) as listing:  # sizes checked before numpy inflates anything
            check_zip_budget(listing.infolist(), os.path.getsize(path))
            archive = _mapped(path, listing)
            if archive is None:
                _check_declared(listing)
        if archive is None:
            with np.load(path, allow_pickle=False) as loaded:
                archive = {key: loaded[key] for key in loaded.files}
        if META_KEY not in archive:
            raise FormatError(f"no {META_KEY} entry: not an lstmconv .npz", where=(path,))
        meta = parse_json(str(archive[META_KEY]), META_KEY)
        layers = tuple(outline.layer(entry, archive) for entry in meta["layers"])
        around = tuple(outline.plain_layer(entry, archive) for entry in meta.get("around", []))
        order = meta.get("order") if around else None
        links = meta.get("links")
        if links is not None and not (
            isinstance(links, list) and all(isinstance(p, list) and len(p) == 2 for p in links)
        ):
            raise FormatError("links must be a list of [from, to] layer names", where=(META_KEY,))
    except LstmconvError as error:
        raise error.within(path) from None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise FormatError(
            f"not a readable lstmconv .npz: {type(error).__name__}: {error}", where=(path,)
        ) from None
    links_ = None if links is None else tuple((str(a), str(b)) for a, b in links)
    try:
        return Model(layers, path, links_, around=around, order=None if order is None else tuple(order))
    except LstmconvError as error:
        raise error.within(path, META_KEY) from None
