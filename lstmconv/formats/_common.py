"""Small pieces every format family shares: feature checks and name handling."""

from __future__ import annotations

import concurrent.futures
import io
import json
import math
import operator
import os
import re
import stat
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import FormatError, UnsafeInputError, UnsupportedFeatureError, WeightLayoutError
from ..ir import Activation, Direction, Kind, Layer, Model
from ..plain import PlainLayer


def _kind_of(mode: int) -> str:
    for test, label in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return label
    return "not a regular file"


def require_regular_file(path: str, *, folder_ok: bool = False) -> None:
    """Refuse anything but a regular file (or, with ``folder_ok``, a folder) before a reader
    opens it: a FIFO would block the read forever, ``/dev/zero`` never ends. The path is stat-ed
    first, then opened with ``O_NONBLOCK`` (opening a FIFO would otherwise wait for a writer) and
    the open file checked again, so what was stat-ed is what was opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise FormatError(f"cannot open: {error.strerror}", where=(path,)) from None
    if stat.S_ISDIR(mode) and folder_ok:
        return
    if not stat.S_ISREG(mode):
        raise FormatError(f"{_kind_of(mode)}, not a regular file: refused", where=(path,))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise FormatError(f"cannot open: {error.strerror}", where=(path,)) from None
    try:
        mode = os.fstat(descriptor).st_mode
    finally:
        os.close(descriptor)
    if not stat.S_ISREG(mode):
        raise FormatError(f"{_kind_of(mode)}, not a regular file: refused", where=(path,))


#: A shape's element count stops growing here: past it, every shape is refused anyway.
ELEMENTS_CAP = 1 << 64


_T = TypeVar("_T")
_DONE: Any = object()


def made_ahead(items: Iterable[_T]) -> Iterator[_T]:
    """``items`` in order, each next one made in a second thread while the caller uses the
    current one: a block's write (a system call) overlaps the packing of the next (NumPy
    copies), both outside the GIL. Two items are alive at a time."""
    iterator = iter(items)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lstmconv-ahead") as pool:
        pending = pool.submit(next, iterator, _DONE)
        while (item := pending.result()) is not _DONE:
            pending = pool.submit(next, iterator, _DONE)
            yield item


def member_start(path: str, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes begin: after its local header, whose lengths may differ
    from the central directory's (its name may not: that is two readers seeing two files)."""
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        name = handle.read(int.from_bytes(local[26:28], "little")) if len(local) == 30 else b""
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise FormatError(f"zip member {info.filename!r} has no local header where the directory says")
    if name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"):
        raise FormatError(f"zip member {info.filename!r} is named {name!r} in its local header")
    start = info.header_offset + 30 + len(name) + int.from_bytes(local[28:30], "little")
    if start + info.file_size > os.path.getsize(path) or info.compress_size != info.file_size:
        raise FormatError(f"zip member {info.filename!r} runs past the end of the file")
    return start


class MemberWindow(io.RawIOBase):
    """A stored zip member as a read-only file of its own, read in place: ``seek`` and
    ``readinto`` address the member's bytes (``size`` of them from ``start`` of ``path``), each
    read an ``os.preadv`` straight into the caller's buffer, nothing past the member's end."""

    def __init__(self, path: str, start: int, size: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._start, self._size, self._at = start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(f"seek to {base + offset}, before the member's start")
        self._at = base + offset
        return self._at

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted, done = max(0, min(len(view), self._size - self._at)), 0
        while done < wanted:
            at = self._start + self._at + done
            if hasattr(os, "preadv"):
                moved = os.preadv(self._fd, [view[done:wanted]], at)
            else:  # macOS: one copy more
                chunk = os.pread(self._fd, wanted - done, at)
                moved = len(chunk)
                view[done : done + moved] = chunk
            if moved <= 0:
                break
            done += moved
        self._at += done
        return done

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def elements(shape: Iterable[int]) -> int:
    """The element count of ``shape`` (non-negative dims) in Python ints, so a product past
    2**63 does not wrap in int64 (to 0, or to what a few stored bytes hold); it stops at
    ``ELEMENTS_CAP`` + 1, so a million huge dims cost a million steps, not hours of big-integer
    arithmetic."""
    dims = [int(n) for n in shape]
    if 0 in dims:
        return 0
    total = 1
    for n in dims:
        total *= n
        if total > ELEMENTS_CAP:
            return ELEMENTS_CAP + 1
    return total


#: Past this many dims a shape is abbreviated in messages (:func:`dims`).
DIMS_SHOWN = 8


def dims(shape: Iterable[object]) -> str:
    """A shape for a message: ``(2, 3)``, ``(5,)``; past ``DIMS_SHOWN`` dims the first five,
    how many are left out and the last, ``(1, 1, 1, 1, 1, ... 199,994 more ..., 1)``, so a
    hostile file's 200,000-dim shape cannot make a message of a megabyte."""
    values = list(shape)
    shown = [_dim(n) for n in (values if len(values) <= DIMS_SHOWN else (*values[:5], values[-1]))]
    if len(values) <= DIMS_SHOWN:
        return f"({shown[0]},)" if len(shown) == 1 else f"({', '.join(shown)})"
    return f"({', '.join(shown[:5])}, ... {len(values) - 6:,} more ..., {shown[-1]})"


def _dim(n: object) -> str:
    try:
        value = operator.index(n)  # type: ignore[arg-type]  # NumPy ints print as plain ints; the rest raise
    except TypeError:
        text = repr(n)
        return text if len(text) <= 40 else text[:37] + "..."
    if value.bit_length() > 64:  # a dim of a million digits: its size, not its digits
        return f"{'-' if value < 0 else ''}~2**{value.bit_length() - 1}"
    return str(value)


def parse_json(text: str | bytes, what: str, **options: Any) -> Any:
    """``json.loads`` of a file's ``what`` (``config.json``, a header): JSON nested past Python's
    recursion limit is a :class:`FormatError` saying so (:func:`nested_too_deeply`), not a
    ``RecursionError`` from deep inside the decoder."""
    try:
        return json.loads(text, **options)
    except RecursionError:
        raise nested_too_deeply(what) from None


def nested_too_deeply(what: str) -> FormatError:
    """The error for JSON (or a config walked from it) nested deeper than lstmconv can follow."""
    return FormatError(
        f"the JSON is nested too deeply to read (past Python's recursion limit of "
        f"{sys.getrecursionlimit():,} levels)",
        where=(what,),
        hint="a model file's JSON nests a few levels, not thousands: the file is damaged, or made to "
        "crash readers",
    )


#: Compressed data may expand at most this many times the bytes the outermost file stores: one
#: budget for a zip member, and for compression nested inside it (HDF5 inside ``.keras``).
MAX_RATIO = 200
#: Below this, anything goes (headers, small configs).
RATIO_SLACK = 1 << 20


def check_zip_budget(infos: Iterable[zipfile.ZipInfo], stored: int) -> None:
    """Refuse a zip whose members declare more than ``MAX_RATIO`` times what they store (each,
    or all together against the ``stored`` bytes of the file), before anything is inflated."""
    total = 0
    for info in infos:
        if info.compress_size and info.file_size > MAX_RATIO * info.compress_size + RATIO_SLACK:
            raise UnsafeInputError(
                f"zip member {info.filename!r} expands {info.file_size} bytes from {info.compress_size}",
                hint="the archive looks like a zip bomb",
            )
        total += info.file_size
        if total > MAX_RATIO * stored + RATIO_SLACK:
            raise UnsafeInputError(
                f"zip members up to {info.filename!r} expand to {total} bytes from a {stored}-byte file",
                hint="the archive looks like a zip bomb",
            )


def unsupported(layer: Layer, feature: str, target: str, instead: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(
        f"{target} cannot express {feature}", where=(f'layer "{layer.name}"',), hint=instead
    )


def require_plain(
    layer: Layer,
    target: str,
    *,
    allowed_activations: Sequence[Sequence[Activation]],
    reset_before: bool,
    projection: bool,
    reverse_aligned: bool,
    reversed_output: bool,
) -> None:
    """Raise :class:`UnsupportedFeatureError` for the first feature of ``layer`` that ``target``
    cannot express. Peepholes, clip and input_forget are ONNX-only and always checked."""
    if layer.has_peepholes:
        raise unsupported(layer, "peepholes", target, "ONNX keeps peepholes; convert to .onnx or .npz")
    if layer.clip is not None:
        raise unsupported(layer, f"cell clip {layer.clip:g}", target, "ONNX keeps clip")
    if layer.input_forget:
        raise unsupported(layer, "input_forget (coupled gates)", target, "ONNX keeps input_forget")
    refuse_tf_clips(layer, target)
    if layer.proj_size and not projection:
        raise unsupported(
            layer,
            f"a projection (proj_size={layer.proj_size})",
            target,
            "PyTorch keeps projections",
        )
    if layer.kind is Kind.GRU and not layer.reset_after and not reset_before:
        raise unsupported(
            layer,
            "the reset-before GRU (Keras reset_after=False, ONNX linear_before_reset=0)",
            target,
            "Keras GRU(reset_after=False) and ONNX keep it",
        )
    if layer.direction is Direction.REVERSE:
        if layer.reversed_output and not reversed_output:
            raise unsupported(layer, "a reverse-only layer (go_backwards)", target, "Keras and ONNX keep it")
        if not layer.reversed_output and not reverse_aligned:
            raise unsupported(
                layer,
                "a reverse-only layer whose output is aligned with the input time",
                target,
                "ONNX keeps it",
            )
    if not any(_same_activations(layer.activations, allowed) for allowed in allowed_activations):
        shown = ", ".join(str(a) for a in layer.activations)
        raise unsupported(
            layer,
            f"the activations {shown}",
            target,
            "ONNX accepts every activation lstmconv knows",
        )


def refuse_tf_clips(layer: Layer, target: str) -> None:
    """TF1/TFLite's clip of the cell state and of the projection: only .npz (and TFLite) hold them."""
    labels = (("cell_clip", "a clip of the cell state"), ("proj_clip", "a clip of the projection"))
    for field, label in labels:
        value = getattr(layer, field)
        if value is not None:
            raise unsupported(
                layer,
                f"{label} ({field} {value:g}, TensorFlow's; ONNX's clip bounds the gate inputs instead)",
                target,
                ".npz keeps it",
            )


def _same_activations(found: Sequence[Activation], allowed: Sequence[Activation]) -> bool:
    return len(found) == len(allowed) and all(same_activation(a, b) for a, b in zip(found, allowed))


def same_activation(a: Activation, b: Activation) -> bool:
    """Equal up to float32 rounding of the parameters (ONNX stores them as float32)."""
    if a.name != b.name:
        return False
    return all(
        (x is None and y is None)
        or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9))
        for x, y in ((a.alpha, b.alpha), (a.beta, b.beta))
    )


def unique_names(names: Iterable[str]) -> list[str]:
    """Names made unique by suffixing ``_1``, ``_2``… to repeats, order kept."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        candidate = name
        while candidate in seen:
            seen[name] += 1
            candidate = f"{name}_{seen[name]}"
        seen.setdefault(candidate, 0)
        result.append(candidate)
    return result


def identifier(name: str) -> str:
    """A name usable as a torch submodule or Keras layer name (no dots or slashes)."""
    cleaned = re.sub(r"[^0-9A-Za-z_-]", "_", name).strip("_")
    return cleaned or "layer"


def identifiers(layers: Iterable[Layer | PlainLayer]) -> dict[str, str]:
    """Each layer's name → an :func:`identifier` of it, made unique in order (what a written
    graph or model names the layer)."""
    names = [layer.name for layer in layers]
    return dict(zip(names, unique_names(identifier(name) for name in names)))


def structure(layer: Layer) -> dict[str, object]:
    """What must match between a layer and the target slot it fills (``load_into``)."""
    return {
        "kind": layer.kind.value,
        "input size": layer.input_size,
        "hidden size": layer.hidden_size,
        "direction": layer.direction.value,
        "bias": layer.has_bias,
        "reset_after": layer.reset_after,
        "reversed output": layer.reversed_output,
    }


def require_matching(layer: Layer, slot: str, expected: dict[str, object], found: dict[str, object]):
    """Raise when a target slot's structure differs from the layer going into it."""
    differences = [
        f"{key}: target has {found[key]}, layer has {expected[key]}"
        for key in expected
        if expected[key] != found[key]
    ]
    if differences:
        raise WeightLayoutError(
            "the target does not match: " + "; ".join(differences),
            where=(slot, f'layer "{layer.name}"'),
            hint="build the target with the same sizes, or pass a mapping of names",
        )


def pair_slots(
    slots: Sequence[str], model: Model, mapping: Mapping[str, str] | None
) -> list[tuple[int, Layer]]:
    """Which model layer goes into which target slot: all in order, or by ``mapping``
    (target slot name → model layer name); slots left out of a mapping stay untouched."""
    layer_names = [layer.name for layer in model.layers]
    if mapping is None:
        if len(slots) != len(model.layers):
            raise WeightLayoutError(
                f"the target has {len(slots)} recurrent layer(s) ({', '.join(slots) or 'none'}), "
                f"the model has {len(model.layers)} ({', '.join(layer_names)})",
                hint="pass mapping={target layer: model layer}",
            )
        return list(enumerate(model.layers))
    unknown_slots = sorted(set(mapping) - set(slots))
    unknown_layers = sorted(set(mapping.values()) - set(layer_names))
    if unknown_slots or unknown_layers:
        raise WeightLayoutError(
            f"mapping names unknown target layers {unknown_slots} or model layers {unknown_layers}",
            hint=f"target layers: {', '.join(slots)}; model layers: {', '.join(layer_names)}",
        )
    return [(slots.index(slot), model[name]) for slot, name in mapping.items()]
