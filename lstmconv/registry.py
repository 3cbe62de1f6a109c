"""Every format lstmconv knows, and every fact about it, in one record each.

A format's modules are named here as strings and imported only when the format is used, so
``import lstmconv`` imports no framework. Each format family is a folder under
``lstmconv/formats/`` (or one file, for ``npz``) whose modules have the same roles:

- the **face** (``NAME``, ``GATE_ORDER``, ``check``, ``layout``): imports no framework;
- the **reader** (``read(path, **options)``): files, without the framework where it can;
- the **header reader** (optional): names, kinds and shapes alone, raising :class:`Declined`
  for a file only the full reader can read;
- the **writer** (``write(model, path, **options)``), absent for a read-only format;
- the **live** module (:class:`Runtime`): the only one that imports the framework; live objects,
  runnable forms, running them, filling existing models.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, cast

from .errors import UnknownFormatError, UnsupportedFeatureError, missing

if TYPE_CHECKING:
    import numpy as np

    from .inspection import Tensor
    from .ir import Kind, Layer, Model


#: Options every reader is called with: ``strict`` (refuse NaN weights and masks) and
#: ``header_only`` (names and shapes for inspect).
COMMON_READ_OPTIONS = ("strict", "header_only")


class Declined(Exception):
    """A header reader leaves this file to the format's full reader."""


class Face(Protocol):
    """What every format family declares without importing its framework."""

    NAME: str
    GATE_ORDER: Mapping[Kind, tuple[str, ...]]

    def check(self, layer: Layer) -> None: ...
    def layout(self, layer: Layer) -> list[Tensor]: ...


class Reader(Protocol):
    def read(self, source: Any, **options: Any) -> Model: ...


class Writer(Protocol):
    def write(self, model: Model, path: str, **options: Any) -> None: ...


class Runtime(Protocol):
    """A framework's live module: every hook is declared, none is probed for."""

    def read(self, source: Any, **options: Any) -> Model: ...
    def build(self, model: Model, **options: Any) -> Any: ...
    def run(self, built: Any, x: np.ndarray) -> np.ndarray: ...
    def load_into(self, target: Any, model: Model, mapping: Mapping[str, str] | None = None) -> Any: ...
    def is_runnable(self, obj: Any) -> bool: ...
    def load_written(self, path: str) -> Any: ...
    def check_written(self, path: str) -> None: ...
    def runnable(self, model: Model) -> Any: ...
    def running_note(self, model: Model) -> str | None: ...
    def layer_runners(self, source: Any, model: Model) -> tuple[str, Mapping[str, Any], Any]: ...


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    description: str
    #: File endings this format reads, and those it writes (none: read-only).
    read_endings: tuple[str, ...]
    write_endings: tuple[str, ...]
    face: str
    reader: str
    writer: str | None = None
    header_reader: str | None = None
    #: The module that imports the framework (live objects, build, run, load_into).
    live: str | None = None
    #: Python packages each role needs; ``extra`` is the pip extra that installs them.
    reader_needs: tuple[str, ...] = ()
    writer_needs: tuple[str, ...] = ()
    live_needs: tuple[str, ...] = ()
    extra: str = "all"
    #: The packages that run this format's live module's models (verification's runtime), and
    #: the pip extra that installs them.
    runtime: tuple[str, ...] = ()
    runtime_extra: str = "all"
    #: Top-level modules whose classes are this format's live objects.
    live_roots: tuple[str, ...] = ()
    #: The format whose live module runs this format's files (None: the NumPy reference).
    runs_in: str | None = None
    #: A folder is this format when it holds this file (SavedModel: ``saved_model.pb``).
    folder_holds: str | None = None
    #: Regular expressions a file name (lowercased) may end with beyond ``read_endings``
    #: (a checkpoint's ``.data-00000-of-00001`` shards).
    read_patterns: tuple[str, ...] = ()
    #: A path is this format when the path plus this ending is a file (a checkpoint prefix,
    #: ``ckpt-12`` for ``ckpt-12.index``), though the path itself names no file.
    prefix_holds: str | None = None
    #: Said when a read-only ending of this format is asked to be written.
    write_hint: str | None = None
    #: The keyword options this format's reader and writer take (beyond :data:`COMMON_READ_OPTIONS`);
    #: any other is refused, naming these.
    read_options: tuple[str, ...] = ()
    write_options: tuple[str, ...] = ()
    #: Whether the writer needs the path to end with one of ``write_endings`` (Keras saves only
    #: ``.keras``); otherwise a format named explicitly wins over the path's ending.
    needs_ending: bool = False

    @property
    def read_only(self) -> bool:
        return self.writer is None

    def names(self, path: str) -> bool:
        """Whether ``path`` is this format's by its name, its contents (a folder) or its
        companion file (a prefix)."""
        lowered = path.lower()
        if lowered.endswith(self.read_endings) or any(
            re.search(p + "$", lowered) for p in self.read_patterns
        ):
            return True
        if self.folder_holds and os.path.isfile(os.path.join(path, self.folder_holds)):
            return True
        companion = self.prefix_holds
        return companion is not None and not os.path.exists(path) and os.path.isfile(path + companion)

    def exists(self, path: str) -> bool:
        """Whether the file (or folder, or prefix's companion) ``path`` names is there."""
        return os.path.exists(path) or (
            self.prefix_holds is not None and os.path.isfile(path + self.prefix_holds)
        )

    def load_face(self) -> Face:
        return cast(Face, importlib.import_module(self.face))

    def load_reader(self) -> Reader:
        return cast(Reader, _import(self.reader, self.reader_needs, self.extra, f"reading {self.name} files"))

    def load_header_reader(self) -> Reader | None:
        return (
            None if self.header_reader is None else cast(Reader, importlib.import_module(self.header_reader))
        )

    def load_writer(self) -> Writer:
        if self.writer is None:
            raise UnsupportedFeatureError(
                f"lstmconv reads {self.name} files but does not write them",
                hint=self.write_hint or f"write one of {', '.join(writable_endings())}",
            )
        return cast(Writer, _import(self.writer, self.writer_needs, self.extra, f"writing {self.name} files"))

    def load_live(self, purpose: str = "") -> Runtime:
        if self.live is None:
            raise UnsupportedFeatureError(f"{self.name} has no live objects or runnable form")
        module = _import(self.live, self.live_needs, self.extra, purpose or f"the {self.name} format")
        return cast(Runtime, module)

    def available(self, role: str = "reader") -> bool:
        """Whether the packages ``role`` (reader, writer, live, runtime) needs are installed."""
        needs = {
            "reader": self.reader_needs,
            "writer": self.writer_needs,
            "live": self.live_needs,
            "runtime": (*self.live_needs, *self.runtime),
        }[role]
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
            raise missing(name, extra, purpose)
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise missing(error.name or module, extra, purpose, failed=str(error)) from None


_KERAS, _TORCH, _ONNX = "lstmconv.formats.keras", "lstmconv.formats.torch", "lstmconv.formats.onnx"
_TF = "lstmconv.formats.tensorflow"
_TF_OPTIONS = (
    "config",
    "forget_bias",
    "cell_clip",
    "proj_clip",
    "activation",
    "recurrent_activation",
    "merge",
)
#: A state_dict's readers: ``epsilon`` of its norms, ``like``/``like_names`` a model whose layers
#: decide what its keys cannot say (formats/torch/around.py).
_STATE_DICT_OPTIONS = ("nonlinearity", "epsilon", "like", "like_names")
FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format(
            "keras",
            "Keras 3 .keras archives; Keras 2 .h5 and .weights.h5 (read without Keras)",
            read_endings=(".keras", ".h5", ".hdf5"),
            write_endings=(".keras",),
            face=_KERAS,
            reader=f"{_KERAS}.files",
            writer=f"{_KERAS}.archive",  # without Keras; plain layers through live, with it
            live=f"{_KERAS}.live",
            reader_needs=("h5py",),
            writer_needs=("h5py",),
            live_needs=("keras",),
            extra="keras",
            runtime=("tensorflow",),
            runtime_extra="keras",
            live_roots=("keras", "tf_keras", "tensorflow"),
            runs_in="keras",
            write_hint="legacy Keras .h5 is read-only; write .keras",
            read_options=("config",),
            needs_ending=True,
        ),
        Format(
            "torch",
            "PyTorch state_dict or checkpoint (weights_only loading)",
            read_endings=(".pt", ".pth", ".bin", ".jit"),
            write_endings=(".pt", ".pth", ".bin"),
            face=_TORCH,
            reader=f"{_TORCH}.files",  # torch's zip format without torch; the rest with torch.load
            writer=f"{_TORCH}.archive",  # torch's zip format without torch
            header_reader=f"{_TORCH}.pt_header",
            live=f"{_TORCH}.live",
            live_needs=("torch",),
            extra="torch",
            runtime_extra="torch",
            live_roots=("torch",),
            runs_in="torch",
            read_options=_STATE_DICT_OPTIONS,
            write_options=("as_cell", "rename", "prefix"),
        ),
        Format(
            "safetensors",
            "safetensors in PyTorch nn.LSTM/GRU/RNN naming",
            read_endings=(".safetensors",),
            write_endings=(".safetensors",),
            face=_TORCH,
            reader=f"{_TORCH}.safetensors",
            writer=f"{_TORCH}.safetensors",
            runs_in="torch",
            read_options=_STATE_DICT_OPTIONS,
            write_options=("as_cell", "rename", "prefix"),
        ),
        Format(
            "onnx",
            "ONNX models with LSTM/GRU/RNN nodes",
            read_endings=(".onnx",),
            write_endings=(".onnx",),
            face=_ONNX,
            reader=f"{_ONNX}.files",
            writer=f"{_ONNX}.stream",  # without onnx; onnx.checker runs in verification
            live=f"{_ONNX}.live",
            live_needs=("onnx",),
            runtime=("onnxruntime",),
            runtime_extra="onnxruntime",
            live_roots=("onnx",),
            runs_in="onnx",
            write_options=("opset", "external_data", "input_name", "output_name"),
        ),
        Format(
            "tf-checkpoint",
            "TensorFlow checkpoints: TF1 cells and TF2 Keras objects (read without TensorFlow)",
            read_endings=(".index",),
            write_endings=(),
            face=_TF,
            reader=f"{_TF}.checkpoint",
            read_patterns=(r"\.data-\d{5}-of-\d{5}",),
            prefix_holds=".index",
            folder_holds="checkpoint",
            write_hint="TensorFlow checkpoints are read-only here; write .keras, .onnx or .pt",
            read_options=_TF_OPTIONS,
        ),
        Format(
            "savedmodel",
            "TensorFlow SavedModel folders (read without TensorFlow, no graph function run)",
            read_endings=(),
            write_endings=(),
            face=_TF,
            reader=f"{_TF}.savedmodel",
            folder_holds="saved_model.pb",
            write_hint="SavedModel folders are read-only here; write .keras, .onnx or .pt",
            read_options=_TF_OPTIONS,
        ),
        Format(
            "tflite",
            "TFLite flatbuffers: fused LSTM and RNN ops, float32 or float16 weights (without TensorFlow)",
            read_endings=(".tflite",),
            write_endings=(),
            face="lstmconv.formats.tflite",
            reader="lstmconv.formats.tflite.files",
            write_hint="lstmconv reads .tflite but does not write it; write .keras and convert it with "
            "tf.lite.TFLiteConverter, or .npz, .onnx, .pt",
            read_options=("drop_clips", "dequantize"),
        ),
        Format(
            "npz",
            "the lstmconv IR as NumPy arrays with readable keys",
            read_endings=(".npz",),
            write_endings=(".npz",),
            face="lstmconv.formats.npz",
            reader="lstmconv.formats.npz",
            writer="lstmconv.formats.npz",
        ),
    )
}


def list_formats() -> list[Format]:
    return list(FORMATS.values())


def by_name(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}", hint=f"formats: {', '.join(FORMATS)}") from None


def readable_endings() -> list[str]:
    return [ending for fmt in FORMATS.values() for ending in fmt.read_endings]


def writable_endings() -> list[str]:
    return [ending for fmt in FORMATS.values() for ending in fmt.write_endings]


def for_path(path: str | os.PathLike[str], given: str | None = None) -> Format:
    """The format named, or the one the file name's ending (or a folder's contents) says."""
    if given:
        return by_name(given)
    text = os.fspath(path)
    for fmt in FORMATS.values():
        if fmt.names(text):
            return fmt
    raise UnknownFormatError(
        "cannot tell the format from the file name",
        where=(text,),
        hint=f"name it with one of {', '.join(readable_endings())} or pass format= "
        "(from_format=/to_format= to convert)",
        cli_hint=f"name it with one of {', '.join(readable_endings())} or pass --from/--to",
    )


def for_source(path: str | os.PathLike[str], given: str | None = None) -> Format:
    """The format of a file to read: named (``given``), else by the file's first bytes where
    its ending names no format, where a magic number that cannot be mistaken (HDF5, zip
    members, safetensors' header, TFLite's identifier) disagrees with the ending, or where a
    ``.bin`` is not PyTorch's (see :mod:`.sniff`); else by its ending, as :func:`for_path`.
    A GGML/GGUF file is refused, naming what it is."""
    if given:
        return by_name(given)
    text = os.fspath(path)
    named = next((fmt for fmt in FORMATS.values() if fmt.names(text)), None)
    if not os.path.isfile(text) or (named is not None and (named.read_patterns or named.prefix_holds)):
        return for_path(text)
    from . import sniff

    found = sniff.kind(text)
    if named is None:
        if found is not None:
            return FORMATS[found]
        raise UnknownFormatError(
            f"cannot tell the format from the file name or its first bytes ({sniff.describe(text)})",
            where=(text,),
            hint=f"name it with one of {', '.join(readable_endings())} or pass --from/--to",
        )
    bin_not_torch = text.lower().endswith(".bin") and named.name == "torch"
    if found is not None and found != named.name and (found in sniff.CERTAIN or bin_not_torch):
        return FORMATS[found]
    return named


def for_object(obj: Any, given: str | None = None) -> Format:
    """The format of a live object, told from its class's module without importing frameworks."""
    if given:
        return by_name(given)
    roots = {root: fmt for fmt in FORMATS.values() for root in fmt.live_roots}
    for cls in type(obj).__mro__:  # user subclasses of nn.Module or keras.Model count too
        module = cls.__module__.split(".")[0]
        if module in roots:
            return roots[module]
    raise UnknownFormatError(
        f"cannot read a {type(obj).__module__}.{type(obj).__name__}",
        hint="pass a file path, a torch.nn.Module, a keras.Model or layer, or an onnx.ModelProto",
    )


def is_path(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike))
