"""What a ``.pt`` file holds, for ``inspect``, without importing torch.

torch's zip format is a pickle (``data.pkl``) that names each tensor's storage, dtype, shape
and offset, beside the storages themselves (``data/<key>``). This module reads that pickle with
an unpickler that knows four kinds of global (``OrderedDict``, torch's tensor and parameter
rebuilders and the typed storages), each mapped to an inert stand-in; any other global stops
the read, and the full reader (``torch.load(weights_only=True)``) takes over. For ``inspect`` no
value is read: each tensor is a stand-in of its shape and dtype, its storage checked to hold it.
With ``values`` (:mod:`.files`, conversions without torch) each tensor is copied out of its
storage's uncompressed zip record, memory-mapped, within the bounds checked. The legacy
(non-zip) format and compressed records are left to torch.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

from ... import dtypes, outline
from ...errors import FormatError, UnsafeInputError
from ...ir import Model
from ...registry import Declined
from .._common import ELEMENTS_CAP, check_zip_budget, dims, elements, member_start
from . import statedict

#: A state_dict's pickle holds names and shapes only; anything larger is not one.
MAX_PICKLE_BYTES = 64 << 20
#: What the check before ``torch.load`` walks: a checkpoint's pickle can hold far more (an
#: optimizer's state, training history) than a state_dict's.
MAX_CHECKED_PICKLE_BYTES = 1 << 30
_STORAGES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


@dataclasses.dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclasses.dataclass(frozen=True)
class _Storage:
    dtype: np.dtype
    key: str
    numel: int


@dataclasses.dataclass(frozen=True)
class _Tensor:
    """A tensor's dtype and shape, its values left unread."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def stand_in(self) -> np.ndarray:
        return outline.placeholder(self.shape, self.storage.dtype)

    def values(self, path: str, records: dict[str, tuple[int, int]]) -> np.ndarray:
        """The tensor's values, memory-mapped from its storage's uncompressed zip record (the
        record's bounds checked against the file, the tensor's extent against the storage when
        it was unpickled): a read-only view of the map where the tensor is laid out in C order,
        as ``torch.save`` writes a parameter; otherwise (a transposed or expanded view) copied
        out in C order."""
        start, size = records[self.storage.key]
        itemsize = self.storage.dtype.itemsize
        if self.storage.numel * itemsize > size:
            raise FormatError("a storage is larger than its record", where=(f"data/{self.storage.key}",))
        if not self.storage.numel or not all(self.shape):
            return np.zeros(self.shape, self.storage.dtype)
        flat = np.memmap(
            path, dtype=self.storage.dtype, mode="r", offset=start, shape=(self.storage.numel,)
        ).view(np.ndarray)  # a plain ndarray over the map: its slices are cheap
        if self.stride == _c_strides(self.shape):
            return flat[self.offset : self.offset + int(np.prod(self.shape))].reshape(self.shape)
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], self.shape, tuple(n * itemsize for n in self.stride), writeable=False
        )
        return np.array(view, order="C")


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The element strides of a C-ordered tensor of ``shape`` (torch's ``contiguous()``)."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


#: A tensor may declare at most this many elements per element its storage holds: a view that
#: repeats elements (stride 0, as ``torch.zeros(1).expand(...)`` saves) claims far more values
#: than the file holds, and every step after reading would pay for them.
MAX_EXPANSION = 200


def check_extent(
    shape: tuple[int, ...], strides: tuple[int, ...], offset: int, numel: int, where: str
) -> None:
    """Refuse a tensor whose size, stride and offset reach past its storage of ``numel``
    elements, that has a negative stride or dimension (torch refuses those), or that declares
    more than ``MAX_EXPANSION`` times the elements stored."""
    if len(shape) != len(strides) or any(n < 0 for n in shape) or offset < 0:
        raise FormatError(
            f"a tensor of shape {dims(shape)}, strides {dims(strides)} at offset {offset} is malformed",
            where=(where,),
        )
    if any(n > ELEMENTS_CAP for n in (*shape, *strides)):  # a dim of a million digits is no size
        raise FormatError(f"a tensor's size or stride is past 2**64: {dims(shape)}", where=(where,))
    if any(s < 0 for s in strides):
        raise FormatError(
            f"a tensor of shape {dims(shape)} has negative strides {dims(strides)}: refused", where=(where,)
        )
    extent = 1 + sum((n - 1) * s for n, s in zip(shape, strides)) if all(shape) else 0
    if offset + extent > numel:
        raise FormatError(
            f"a tensor of shape {dims(shape)}, strides {dims(strides)} at offset {offset} reaches element "
            f"{offset + extent} of a storage of {numel}",
            where=(where,),
        )
    count = elements(shape)  # capped: a million huge dims are not hours of big-integer products
    if count > MAX_EXPANSION * max(numel, 1):
        raise UnsafeInputError(
            f"a tensor of shape {dims(shape)} (strides {dims(strides)}) declares {count} elements "
            f"from a storage of {numel}: more than {MAX_EXPANSION}× what is stored",
            where=(where,),
            hint="save the tensor itself (tensor.contiguous()), not an expanded view",
        )


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise FormatError("a tensor's storage is not a storage")
    try:
        shape, strides = tuple(int(n) for n in size), tuple(int(n) for n in stride)
        start = int(offset)
    except (TypeError, ValueError):
        raise FormatError(
            "a tensor's size, stride or offset is not integers", where=(f"data/{storage.key}",)
        ) from None
    check_extent(shape, strides, start, storage.numel, f"data/{storage.key}")
    return _Tensor(storage, start, shape, strides)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGES.items()},
}


class _Opaque:
    """What a global lstmconv does not know becomes when only checking (``permissive``): inert,
    it takes any arguments and state, and imports and runs nothing."""

    def __new__(cls, *_: Any, **__: Any) -> _Opaque:
        return object.__new__(cls)

    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def __call__(self, *_: Any, **__: Any) -> _Opaque:
        return _Opaque()

    def __setstate__(self, _state: Any) -> None:
        pass

    def __setitem__(self, _key: Any, _value: Any) -> None:
        pass

    def append(self, _value: Any) -> None:
        pass

    def extend(self, _values: Any) -> None:
        pass


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, storage_sizes: dict[str, int], permissive: bool = False) -> None:
        super().__init__(io.BytesIO(data))
        self.storage_sizes = storage_sizes
        self.permissive = permissive

    def find_class(self, module: str, name: str) -> Any:
        found = _GLOBALS.get((module, name))
        if found is None:
            if self.permissive:
                return _Opaque
            raise Declined(f"{module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise FormatError(f"unexpected persistent id {str(pid)[:80]}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            if not self.permissive:
                raise Declined(f"storage {storage_type!r}")
            storage_type = _StorageType("uint8")  # unknown width: check at least one byte each
        name = storage_type.dtype
        dtype = dtypes.resolve(name) if dtypes.is_float(name) else np.dtype(name)
        try:
            storage = _Storage(dtype, str(key), int(numel))
        except (TypeError, ValueError):
            raise FormatError(f"storage {str(key)[:40]!r} has no element count") from None
        stored = self.storage_sizes.get(storage.key)
        if stored is None or stored < storage.numel * storage.dtype.itemsize:
            raise FormatError(
                f"storage {key} needs {storage.numel * storage.dtype.itemsize} bytes, "
                f"the archive holds {0 if stored is None else stored}",
                where=(f"data/{key}",),
            )
        return storage


#: The read options that decide a state_dict's plain layers (:mod:`.around`).
PLAIN_OPTIONS = ("like", "like_names", "epsilon")


def read(source: Any, *, nonlinearity: str | None = None, values: bool = False, **options: Any) -> Model:
    """The layers of a ``.pt`` file in torch's zip format, their values unread (``header_only``),
    or with ``values`` read from the storages' zip records (memory-mapped, uncompressed only).
    Raises :class:`~lstmconv.registry.Declined` for what only torch can read."""
    path = os.fspath(source)
    from . import torchscript  # it builds on this module's unpickler

    if torchscript.is_torchscript(path):  # read as data, its code never loaded
        tensors, nonlinearities = torchscript.read_state(path, values=values)
        return statedict.read_tensors(
            tensors,
            nonlinearity=nonlinearity,
            source=path,
            per_module=None if nonlinearity else nonlinearities,
            **{key: options[key] for key in PLAIN_OPTIONS if key in options},
        )
    loaded, records = _unpickle(path)
    state = statedict.find_state_dict(loaded, lambda value: isinstance(value, _Tensor))
    if state is None:
        raise statedict.no_state_dict(path, loaded, lambda value: isinstance(value, _Tensor))
    if values:
        _check_total(state, path)
    tensors = {
        key: value.values(path, records) if values else value.stand_in()
        for key, value in state.items()
        if isinstance(value, _Tensor)
    }
    return statedict.read_tensors(
        tensors,
        nonlinearity=nonlinearity,
        source=path,
        per_module=None if nonlinearity else statedict.recorded_nonlinearities(state),
        recorded=statedict.recorded_links(state),
        **{key: options[key] for key in PLAIN_OPTIONS if key in options},
    )


def _check_total(state: Any, path: str) -> None:
    """All the tensors to be copied out together declare at most ``MAX_EXPANSION`` times the
    file's bytes: one tensor, or one expanded view, named under thousands of keys (the pickle's
    memo repeats an object for a few bytes) is within the rule for each tensor, not together."""
    size = os.path.getsize(path)
    allowed, total = MAX_EXPANSION * size + (1 << 20), 0
    for key, value in state.items():
        if isinstance(value, _Tensor):
            total += elements(value.shape) * value.storage.dtype.itemsize
            if total > allowed:
                raise UnsafeInputError(
                    f"the tensors up to {key!r} declare {total} bytes, more than {MAX_EXPANSION}× "
                    f"the {size} bytes of the file",
                    where=(str(key),),
                    hint="a state_dict that names one tensor many times (or expanded views) is refused",
                )


def refuse_ambiguous(path: str) -> None:
    """Refuse a file whose kind torch and zipfile would tell apart differently: duplicate zip
    member names (each picks another), or a legacy pickle that is also a zip (zipfile finds the
    zip from the end, torch reads the pickle from the start); and a zip whose records expand
    past the one compression budget (:func:`.._common.check_zip_budget`)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not zipfile.is_zipfile(path):
        return
    if head != b"PK\x03\x04":
        raise UnsafeInputError(
            "the file is both a zip archive and something else (a legacy pickle?): ambiguous, refused",
            hint="torch and other readers would read different models from it",
        )
    with zipfile.ZipFile(path) as archive:
        names = [info.filename for info in archive.infolist()]
        check_zip_budget(archive.infolist(), os.path.getsize(path))  # torch inflates deflated records
    if len(set(names)) != len(names):
        twice = sorted(name for name, count in collections.Counter(names).items() if count > 1)
        raise UnsafeInputError(
            f"zip member {twice[0]!r} appears twice: ambiguous, refused",
            hint="torch and zipfile pick different copies",
        )


def check_file(path: str) -> None:
    """Every tensor of a ``.pt`` file in torch's zip format checked against its own storage
    record (size, stride, offset, dtype width; no negative strides; no expansion past
    ``MAX_EXPANSION``) before torch maps anything, whatever else the pickle holds (unknown
    globals become inert stand-ins: nothing is imported or run). For the full reader."""
    refuse_ambiguous(path)
    if zipfile.is_zipfile(path):
        _unpickle(path, permissive=True)


def _records(archive: zipfile.ZipFile, path: str, root: str) -> dict[str, tuple[int, int]]:
    """Each storage's (start of its bytes in the file, size), for the uncompressed records;
    a compressed record is left to torch."""
    found: dict[str, tuple[int, int]] = {}
    for info in archive.infolist():
        if not info.filename.startswith(f"{root}data/"):
            continue
        if info.compress_type != zipfile.ZIP_STORED:
            raise Declined(f"compressed storage {info.filename}")
        found[info.filename[len(root) + len("data/") :]] = (member_start(path, info), info.file_size)
    return found


def _unpickle(path: str, permissive: bool = False) -> tuple[Any, dict[str, tuple[int, int]]]:
    """The pickle's objects, and (unless ``permissive``, the check before torch) where each
    uncompressed storage's bytes are."""
    refuse_ambiguous(path)
    if not zipfile.is_zipfile(path):
        raise Declined("the legacy pickle format")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [info for info in archive.infolist() if info.filename.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise FormatError(f"expected one data.pkl in the archive, found {len(pickles)}")
            root = pickles[0].filename[: -len("data.pkl")]
            if pickles[0].file_size > (MAX_CHECKED_PICKLE_BYTES if permissive else MAX_PICKLE_BYTES):
                raise FormatError(f"data.pkl declares {pickles[0].file_size} bytes, more than a state_dict's")
            order = (
                archive.read(f"{root}byteorder") if f"{root}byteorder" in archive.NameToInfo else b"little"
            )
            if order != b"little" and not permissive:
                raise Declined(f"byte order {order!r}")
            sizes = {
                info.filename[len(root) + len("data/") :]: info.file_size
                for info in archive.infolist()
                if info.filename.startswith(f"{root}data/")
            }
            data = archive.read(pickles[0])
            records = {} if permissive else _records(archive, path, root)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise FormatError(f"not a readable PyTorch file: {error}") from None
    try:
        return _Unpickler(data, sizes, permissive).load(), records
    except (Declined, FormatError):
        raise
    except Exception as error:  # a broken pickle raises many classes
        raise FormatError(f"not a readable PyTorch file: {type(error).__name__}: {error}") from None
