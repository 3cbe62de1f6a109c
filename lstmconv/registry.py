"""The formats lstmconv knows: names, file endings, what they need, and lazy loading.

A format module is imported only when that format is used, so ``import lstmconv`` imports no
framework. Every format module has the same surface: ``NAME``, ``EXTENSIONS``, ``read``,
``write``, ``check``; the framework ones also ``build``, ``run`` and ``load_into``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

from .errors import MissingDependencyError, UnknownFormatError


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    module: str
    extensions: tuple[str, ...]
    #: Python packages the module needs, with the pip extra that installs them.
    needs: tuple[str, ...]
    extra: str
    #: The module that reads files of this format, when it is not ``module`` itself.
    reader: str | None = None
    reader_needs: tuple[str, ...] = ()
    #: A module that reads names, kinds and shapes alone (``header_only``) with nothing heavy,
    #: raising ``_common.Declined`` for files only the full reader can read.
    header_reader: str | None = None
    #: The framework whose runnable form is this format's "own" (None: the NumPy reference).
    runs_in: str | None = None
    description: str = ""

    def load(self, purpose: str = "") -> ModuleType:
        return _import(self.module, self.needs, self.extra, purpose or f"the {self.name} format")

    def load_reader(self) -> ModuleType:
        if self.reader is None:
            return self.load(f"reading {self.name} files")
        return _import(self.reader, self.reader_needs, self.extra, f"reading {self.name} files")

    def load_header_reader(self) -> ModuleType | None:
        return None if self.header_reader is None else importlib.import_module(self.header_reader)

    def available(self, *, reading: bool = False) -> bool:
        needs = self.reader_needs if reading and self.reader else self.needs
        return all(installed(name) for name in needs)


def installed(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (a module blocked by setting
    ``sys.modules[name] = None`` counts as missing)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _import(module: str, needs: tuple[str, ...], extra: str, purpose: str) -> ModuleType:
    for name in needs:
        if not installed(name):
            raise MissingDependencyError(
                f"{purpose} needs {name}, which is not installed",
                hint=f"pip install 'lstmconv[{extra}]'",
            )
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{purpose} needs {error.name or module}, which failed to import: {error}",
            hint=f"pip install 'lstmconv[{extra}]'",
        ) from None


FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format(
            "keras",
            "lstmconv.formats.keras",
            (".keras", ".h5", ".hdf5"),
            ("keras",),
            "keras",
            reader="lstmconv.formats.keras_files",
            reader_needs=("h5py",),
            runs_in="keras",
            description="Keras 3 .keras archives; Keras 2 .h5 and .weights.h5 (read without Keras)",
        ),
        Format(
            "torch",
            "lstmconv.formats.torch",
            (".pt", ".pth", ".bin"),
            ("torch",),
            "torch",
            runs_in="torch",
            header_reader="lstmconv.formats.torch_files",
            description="PyTorch state_dict or checkpoint (weights_only loading)",
        ),
        Format(
            "safetensors",
            "lstmconv.formats.safetensors",
            (".safetensors",),
            ("safetensors",),
            "all",
            runs_in="torch",
            description="safetensors in PyTorch nn.LSTM/GRU/RNN naming",
        ),
        Format(
            "onnx",
            "lstmconv.formats.onnx",
            (".onnx",),
            ("onnx",),
            "all",
            reader="lstmconv.formats.onnx_files",
            runs_in="onnx",
            description="ONNX models with LSTM/GRU/RNN nodes",
        ),
        Format(
            "npz",
            "lstmconv.formats.npz",
            (".npz",),
            (),
            "all",
            description="the lstmconv IR as NumPy arrays with readable keys",
        ),
    )
}


def by_name(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}", hint=f"formats: {', '.join(FORMATS)}") from None


def for_path(path: str | os.PathLike[str], given: str | None = None) -> Format:
    """The format named, or the one the file name's ending says."""
    if given:
        return by_name(given)
    lowered = os.fspath(path).lower()
    for fmt in FORMATS.values():
        if lowered.endswith(fmt.extensions):
            return fmt
    raise UnknownFormatError(
        "cannot tell the format from the file name",
        where=(os.fspath(path),),
        hint=f"name it with one of {', '.join(e for f in FORMATS.values() for e in f.extensions)} "
        "or pass --from/--to",
    )


def for_object(obj: Any, given: str | None = None) -> Format:
    """The format of a live object, told from its class's module without importing frameworks."""
    if given:
        return by_name(given)
    by_module = {"torch": "torch", "keras": "keras", "tensorflow": "keras", "onnx": "onnx"}
    for cls in type(obj).__mro__:  # user subclasses of nn.Module or keras.Model count too
        module = cls.__module__.split(".")[0]
        if module in by_module:
            return FORMATS[by_module[module]]
    raise UnknownFormatError(
        f"cannot read a {type(obj).__module__}.{type(obj).__name__}",
        hint="pass a file path, a torch.nn.Module, a keras.Model or layer, or an onnx.ModelProto",
    )


def is_path(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike))
