"""What a file is by its first bytes, not its name (no framework imported).

:func:`registry.for_source` asks when a file's ending names no format, when it disagrees with a
magic number that cannot be mistaken, or when a ``.bin`` is not a pickle: PyTorch, Hugging Face,
llama.cpp and others all write ``.bin``. Every check reads at most a few kilobytes (a zip's
central directory is read by :mod:`zipfile`, names only).
"""

from __future__ import annotations

import os
import struct
import zipfile

from .errors import UnsupportedFeatureError

HDF5 = b"\x89HDF\r\n\x1a\n"
ZIP = b"PK\x03\x04"
#: llama.cpp's formats: GGUF, and the older GGML/GGMF/GGJT/GGLA (a little-endian uint32 magic,
#: so "ggml" is stored "lmgg"; some writers store it the other way round).
GGML = (b"GGUF", b"lmgg", b"fmgg", b"tjgg", b"algg", b"ggml", b"ggmf", b"ggjt", b"ggla")
#: ModelProto's fields as the first key of a serialized model: ir_version (1, varint), then
#: producer_name (2), producer_version (3), domain (4), model_version (5), doc_string (6),
#: graph (7), opset_import (8), all length-delimited but model_version.
_ONNX_AFTER_IR = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42}

#: Formats whose magic number is taken over a file's ending (it cannot be something else).
CERTAIN = ("keras", "safetensors", "tflite", "npz")


def kind(path: str) -> str | None:
    """The registry format name the bytes of ``path`` say (None: nothing lstmconv knows).
    A GGML/GGUF file is refused here, naming what it is."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return None
    if head[:4] in GGML:
        raise UnsupportedFeatureError(
            f"a GGML/GGUF file (magic {head[:4].decode(errors='replace')!r}), which lstmconv does not read",
            where=(path,),
            hint="GGML/GGUF hold llama.cpp's models; lstmconv reads recurrent layers from .pt, "
            ".safetensors, .onnx, .keras/.h5, TensorFlow checkpoints and .tflite",
        )
    if head.startswith(HDF5):
        return "keras"
    if head.startswith(ZIP):
        return _zip_kind(path)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "torch"  # a pickle: PyTorch's legacy (non-zip) serialization
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if _is_safetensors(head, size):
        return "safetensors"
    if _is_onnx(head):
        return "onnx"
    return None


def _zip_kind(path: str) -> str | None:
    """A zip: ``.keras`` (config.json and model.weights.h5 at the top), PyTorch's
    (``<archive>/data.pkl``), or NumPy's ``.npz`` (``*.npy`` members)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()[:100_000]
    except Exception:  # a damaged zip raises many classes (NotImplementedError for odd versions)
        return None
    if "config.json" in names and any(name.endswith(".weights.h5") or name.endswith(".h5") for name in names):
        return "keras"
    if any(name.count("/") == 1 and name.endswith("/data.pkl") for name in names) or "data.pkl" in names:
        return "torch"
    if names and all(name.endswith(".npy") for name in names):
        return "npz"
    if "config.json" in names:
        return "keras"
    return None


def _is_safetensors(head: bytes, size: int) -> bool:
    """An 8-byte little-endian header length that fits the file, then a JSON object."""
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= size - 8 and head[8:9] == b"{"


def _is_onnx(head: bytes) -> bool:
    """A ModelProto: ir_version (field 1, a small varint) then one of its fields, or the graph
    (field 7) first."""
    if len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 64 and head[2] in _ONNX_AFTER_IR:
        return True
    return len(head) >= 2 and head[0] == 0x3A and head[1] != 0


def describe(path: str) -> str:
    """The first bytes of a file, for a message saying lstmconv could not tell what it is."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return "unreadable"
    return "empty" if not head else f"begins {head.hex(' ')}"
