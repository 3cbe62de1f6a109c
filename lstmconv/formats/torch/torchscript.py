"""TorchScript archives (``torch.jit.save``: ``.jit``, or ``.pt``) read as data, without torch.

A TorchScript archive is torch's zip format whose ``data.pkl`` pickles the module hierarchy as
instances of ``__torch__.…`` classes, each holding its parameters as plain tensors among its
attributes; ``code/`` and ``constants.pkl`` hold the model's code. Nothing of the code is read,
run or loaded: ``data.pkl`` is read with :mod:`.pt_header`'s restricted unpickler, each
``__torch__`` class standing in as an inert attribute container (it runs nothing: no argument
it is given is used, its state is kept as a dict), and every other global refused. The tensors'
values are read from their storage records, each checked to hold the tensor (offset, shape and
non-negative strides within the storage, the storage within its record).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import FormatError, UnsafeInputError
from ...registry import Declined
from .._common import check_zip_budget, dims
from . import pt_header

#: The one line of torch that exports a TorchScript archive's state_dict (when it is refused).
EXPORT = 'torch.save(torch.jit.load(path).state_dict(), "model.pt")'
#: Deeper module hierarchies than this are not a model's.
MAX_DEPTH = 200


class ScriptObject:
    """An instance of a TorchScript class from ``data.pkl``: its attributes, nothing else."""

    def __init__(self, *_: Any, **__: Any) -> None:  # arguments are never used
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, Mapping):
            raise FormatError(f"a TorchScript object's state is a {type(state).__name__}, not a dict")
        self.attributes = {str(key): value for key, value in state.items()}


def _same(value: Any, *_: Any) -> Any:
    return value


#: ``torch.jit._pickle``'s helpers each return their first argument (a list, or a value whose
#: static type they tag): the same inert function stands in for each.
_JIT_HELPERS = {"build_intlist", "build_tensorlist", "build_doublelist", "build_boollist", "restore_type_tag"}


class _Unpickler(pt_header._Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return ScriptObject
        if module == "torch.jit._pickle" and name in _JIT_HELPERS:
            return _same
        return super().find_class(module, name)


def _root(archive: zipfile.ZipFile) -> str | None:
    """The archive's folder if it is a TorchScript archive (data.pkl beside constants.pkl or code/)."""
    names = archive.namelist()
    for name in names:
        if name.endswith("/data.pkl") and name.count("/") == 1:
            root = name[: -len("data.pkl")]
            if f"{root}constants.pkl" in archive.NameToInfo or any(
                n.startswith(f"{root}code/") for n in names
            ):
                return root
    return None


def is_torchscript(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (its members only are looked at)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return _root(archive) is not None
    except (OSError, zipfile.BadZipFile):
        return False


def _refused(reason: str) -> UnsafeInputError:
    return UnsafeInputError(
        f"a TorchScript archive whose data.pkl holds {reason}, which lstmconv does not read as data",
        hint=f"export its state_dict with torch: {EXPORT}",
    )


def read_state(path: str, *, values: bool = True) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The archive's parameters and buffers by state_dict key (``encoder.lstm.weight_ih_l0``),
    and the ``nonlinearity`` of each module that records one, by module path; with ``values``
    False, stand-ins of their shapes and dtypes."""
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_budget(archive.infolist(), os.path.getsize(path))
            root = _root(archive)
            if root is None:
                raise FormatError("not a TorchScript archive: no data.pkl beside constants.pkl or code/")
            info = archive.getinfo(f"{root}data.pkl")
            if info.file_size > pt_header.MAX_PICKLE_BYTES:
                raise FormatError(f"data.pkl declares {info.file_size} bytes, more than a model's attributes")
            order = (
                archive.read(f"{root}byteorder") if f"{root}byteorder" in archive.NameToInfo else b"little"
            )
            if order != b"little":
                raise _refused(f"byte order {order!r}")
            sizes = {
                item.filename[len(root) + len("data/") :]: item.file_size
                for item in archive.infolist()
                if item.filename.startswith(f"{root}data/")
            }
            try:
                loaded = _Unpickler(archive.read(info), sizes).load()
            except Declined as declined:
                raise _refused(f"the global {declined}") from None
            except (FormatError, UnsafeInputError):
                raise
            except Exception as error:  # a broken pickle raises many classes
                raise FormatError(f"not a readable data.pkl: {type(error).__name__}: {error}") from None
            if not isinstance(loaded, ScriptObject):
                raise FormatError(f"data.pkl holds a {type(loaded).__name__}, not a TorchScript module")
            found: dict[str, pt_header._Tensor] = {}
            nonlinearities: dict[str, str] = {}
            _walk(loaded, "", found, nonlinearities, set(), 0)
            if not values:
                return {key: tensor.stand_in() for key, tensor in found.items()}, nonlinearities
            storages: dict[str, bytes] = {}
            tensors = {}
            for key, tensor in found.items():
                if tensor.storage.key not in storages:
                    storages[tensor.storage.key] = archive.read(f"{root}data/{tensor.storage.key}")
                tensors[key] = _values(storages[tensor.storage.key], tensor, key)
            return tensors, nonlinearities
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise FormatError(f"not a readable TorchScript archive: {error}", where=(path,)) from None
    except (FormatError, UnsafeInputError) as error:
        raise error.within(path) from None


def _walk(
    node: ScriptObject,
    prefix: str,
    found: dict[str, pt_header._Tensor],
    nonlinearities: dict[str, str],
    seen: set[int],
    depth: int,
) -> None:
    """The tensors directly among each module's attributes, keyed by their module path."""
    if id(node) in seen or depth > MAX_DEPTH:
        raise FormatError(f"the module hierarchy at {prefix or '<root>'} loops or nests past {MAX_DEPTH}")
    seen.add(id(node))
    if node.attributes.get("nonlinearity") in ("tanh", "relu"):
        nonlinearities[prefix.rstrip(".")] = str(node.attributes["nonlinearity"])
    for name, value in node.attributes.items():
        if isinstance(value, pt_header._Tensor):
            found[prefix + name] = value
        elif isinstance(value, ScriptObject):
            _walk(value, f"{prefix}{name}.", found, nonlinearities, seen, depth + 1)


def _values(raw: bytes, tensor: pt_header._Tensor, key: str) -> np.ndarray:
    """The tensor's values from its storage's bytes, every index checked to lie inside them."""
    dtype, itemsize = tensor.storage.dtype, tensor.storage.dtype.itemsize
    if any(n < 0 for n in tensor.shape) or any(s < 0 for s in tensor.stride):
        raise FormatError(
            f"shape {dims(tensor.shape)} or strides {dims(tensor.stride)} are negative", where=(key,)
        )
    if len(raw) < tensor.storage.numel * itemsize:
        raise FormatError(
            f"storage {tensor.storage.key} holds {len(raw)} bytes, "
            f"{tensor.storage.numel * itemsize} declared",
            where=(key,),
        )
    flat = np.frombuffer(raw, dtype=dtype, count=tensor.storage.numel)
    if not all(tensor.shape):
        return np.zeros(tensor.shape, dtype)
    extent = 1 + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride))
    if tensor.offset + extent > flat.size:  # checked when unpickled; kept next to the read
        raise FormatError(f"a tensor of shape {dims(tensor.shape)} overruns its storage", where=(key,))
    window = flat[tensor.offset : tensor.offset + extent]
    strided = np.lib.stride_tricks.as_strided(
        window, tensor.shape, tuple(s * itemsize for s in tensor.stride), writeable=False
    )
    return np.array(strided)
