"""The public functions (SPEC §3): read, write, convert, verify, inspect, to_*, load_into."""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import dataclasses
import difflib
import errno
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.lib.array_utils import byte_bounds

from . import dtypes, inspection, ports, reference, verification
from .errors import (
    FormatError,
    InputNotFoundError,
    LstmconvError,
    LstmconvWarning,
    OutputExistsError,
    UnknownOptionError,
    UnsafeInputError,
    UnsupportedFeatureError,
    UsageError,
    VerificationError,
    WeightLayoutError,
)
from .formats._common import MAX_RATIO, RATIO_SLACK, require_regular_file
from .ir import Model
from .registry import (
    COMMON_READ_OPTIONS,
    FORMATS,
    Declined,
    Format,
    Reader,
    for_object,
    for_path,
    for_source,
    is_path,
)

if TYPE_CHECKING:
    import keras  # noqa: TID251  # types only
    import onnx  # noqa: TID251  # types only
    import torch  # noqa: TID251  # types only

_log = logging.getLogger("lstmconv")
#: Set while lstmconv reads back a file it just wrote: what that read would warn of was said
#: of the source already (and would name the internal staging path).
_muted: contextvars.ContextVar[bool] = contextvars.ContextVar("lstmconv_muted", default=False)


class _AsWarnings(logging.Handler):
    """Issues every warning lstmconv logs through :mod:`warnings` too, as an
    :class:`LstmconvWarning` (so ``-W error`` and ``catch_warnings`` see them); drops what is
    logged while lstmconv reads back its own output."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and not _muted.get()

    def emit(self, record: logging.LogRecord) -> None:
        warnings.warn(record.getMessage(), LstmconvWarning, stacklevel=_caller_level())


_OWN_FOLDERS = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(logging.__file__))


def _caller_level() -> int:
    """The stack level of the first frame outside lstmconv and logging: the warning points at
    the caller's line."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_FOLDERS):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


class Unmuted(logging.Filter):
    """Drops what is logged while lstmconv reads back its own output (for a handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _muted.get()


def _install_warning_bridge() -> None:
    logger = logging.getLogger("lstmconv")
    if not any(isinstance(h, _AsWarnings) for h in logger.handlers):
        logger.addHandler(_AsWarnings())


_install_warning_bridge()


@contextlib.contextmanager
def _reading_own_output() -> Iterator[None]:
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def check_options(fmt: Format, options: Mapping[str, Any], role: str) -> None:
    """Refuse a keyword option ``fmt``'s reader (``role="read"``) or writer does not take,
    naming the ones it does."""
    valid = (*COMMON_READ_OPTIONS, *fmt.read_options) if role == "read" else fmt.write_options
    unknown = [name for name in options if name not in valid]
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], valid, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    flags = [f"--{name.replace('_', '-')}" for name in valid if name != "header_only"]
    verb = {"read": "reading", "write": "writing"}.get(role, role + "ing")
    raise UnknownOptionError(
        f"{verb} {fmt.name} takes no option {', '.join(map(repr, unknown))}",
        hint=f"{suggestion}{fmt.name} {role} options: {', '.join(valid) or 'none'}",
        cli_hint=f"{fmt.name} {role} options: {', '.join(flags) or 'none'}",
    )


def source_format(source: Any, format: str | None = None) -> Format:
    return for_source(source, format) if is_path(source) else for_object(source, format)


def read(source: Any, format: str | None = None, *, strict: bool = False, **options: Any) -> Model:
    """Every recurrent layer of ``source`` (a path or a live object), in model order.

    NaN or infinite weights are logged as a warning naming the tensors, or raise with ``strict``.
    ``header_only=True`` is for looking, not converting: names, kinds and shapes are exact but a
    format may leave the values unread (Keras files do)."""
    if isinstance(source, Model):
        return source
    model = _read(source, format, strict=strict, **options)
    if not options.get("header_only"):
        _check_shared(model)
        _check_finite(model, strict)
    return model


def _all_finite(array: np.ndarray) -> bool:
    """A sum is finite exactly when every element is (NaN and ±inf propagate) unless finite
    values overflow it; only then look element by element. Float32 sums run twice as fast as
    float64 ones, and the rare overflow costs only the second look."""
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow and inf - inf are the answer
        total = np.add.reduce(array, axis=None, dtype=np.float64 if array.dtype.itemsize > 4 else np.float32)
    return bool(np.isfinite(total)) or bool(np.isfinite(array).all())


def _check_shared(model: Model) -> None:
    """Refuse layers that are views of the same few bytes many times over: one stored tensor
    named by thousands of layers (a pickle's memo, ONNX initializers, flatbuffer offsets) makes
    work, verification and output without end from the bytes of one. The weights' bytes,
    counted per layer, may be at most ``MAX_RATIO`` times the distinct memory under them."""
    spans, used = [], 0
    for layer in model:
        for cell in layer.cells:
            for _name, array in cell.tensors():
                used += array.nbytes
                spans.append(byte_bounds(array))
    distinct, end = 0, 0
    for low, high in sorted(spans):
        distinct += max(0, high - max(low, end))
        end = max(end, high)
    if used > MAX_RATIO * distinct + RATIO_SLACK:
        raise UnsafeInputError(
            f"{len(model.layers)} layers hold {used} bytes of weights that are views of {distinct} "
            f"distinct bytes: more than {MAX_RATIO}× (one tensor shared by many layers)",
            where=(model.source,),
            hint="a file naming one tensor for many layers is a bomb, not a model",
        )


def _check_finite(model: Model, strict: bool) -> None:
    bad = [
        f'layer "{layer.name}" › {layer.direction_name(index)} › {name}'
        for layer in model
        for index, cell in enumerate(layer.cells)
        for name, array in cell.tensors()
        if not _all_finite(array)
    ]
    if not bad:
        return
    shown = "; ".join(bad[:8]) + (f"; and {len(bad) - 8} more" if len(bad) > 8 else "")
    if strict:
        raise WeightLayoutError(
            f"NaN or infinite weights in {shown}",
            where=(model.source,),
            hint="fix the model, or read without strict=True",
            cli_hint="fix the model, or drop --strict",
        )
    if not _muted.get():
        _log.warning("%s: NaN or infinite weights in %s", model.source, shown)


def _read(source: Any, format: str | None, **options: Any) -> Model:
    fmt = source_format(source, format)
    check_options(fmt, options, "read")
    if is_path(source) and not fmt.exists(os.fspath(source)):
        raise InputNotFoundError("no such file", where=(os.fspath(source),))
    if is_path(source):
        path = os.fspath(source)
        if fmt.prefix_holds and not os.path.lexists(path):  # a checkpoint's prefix: its index file
            path += fmt.prefix_holds
        require_regular_file(path, folder_ok=fmt.folder_holds is not None)
    header_reader = fmt.load_header_reader() if is_path(source) and options.get("header_only") else None
    if header_reader is not None:
        with contextlib.suppress(Declined):  # then the full reader it is
            return _read_file(header_reader, fmt, os.fspath(source), options)
    if is_path(source):
        return _read_file(fmt.load_reader(), fmt, os.fspath(source), options)
    return fmt.load_live(f"reading a live {fmt.name} object").read(source, **options)


def _read_file(module: Reader, fmt: Format, path: str, options: Mapping[str, Any]) -> Model:
    try:
        return module.read(path, **options)
    except (Declined, UsageError):
        raise
    except LstmconvError as error:
        raise error.within(path) from None
    except Exception as error:  # a file from a stranger must fail as bad input
        raise FormatError(
            f"unreadable {fmt.name} file: {type(error).__name__}: {error}", where=(path,)
        ) from error


def _check_ending(fmt: Format, dest: str, given: str | None) -> None:
    """Refuse a file ending ``fmt`` does not write, unless the format was named (it wins over
    the ending) and its writer does not need the ending."""
    if fmt.read_only or dest.lower().endswith(fmt.write_endings):
        return
    if given and not fmt.needs_ending:
        return
    reason = f"{fmt.name} files must end with" if given else f"lstmconv writes {fmt.name} as"
    hint = (
        f"name it with {fmt.write_endings[0]}, which {fmt.name} itself requires" if given else fmt.write_hint
    )
    raise UnsupportedFeatureError(f"{reason} {', '.join(fmt.write_endings)}", where=(dest,), hint=hint)


def _check_target(model: Model, fmt: Format, dest: str) -> None:
    """Refuse, before writing, a file ending the format does not write and a layer it cannot hold."""
    if fmt.read_only:
        try:
            fmt.load_writer()  # refuses, saying what to write instead
        except LstmconvError as error:
            raise error.within(dest) from None
    face = fmt.load_face()
    for layer in model:
        try:
            face.check(layer)
        except LstmconvError as error:
            raise error.within(dest) from None


#: The staging folder's name: short, so that a DST name as long as the file system allows fits.
_STAGING_PREFIX = ".lstmconv-"
#: Inside the staging folder, the home of dependencies' side files while lstmconv runs them.
_SIDE_FILES = ".lstmconv-home"


@contextlib.contextmanager
def _temporary_sibling(dest: str) -> Iterator[str]:
    """A path with ``dest``'s name in a fresh folder beside it (so a format that writes files
    beside the model, as ONNX external data, writes them there too); the folder is removed with
    whatever :func:`_publish` did not move out of it."""
    folder, name = os.path.split(os.path.abspath(dest))
    staging = os.path.join(folder, f"{_STAGING_PREFIX}{os.urandom(4).hex()}")
    os.mkdir(staging)
    try:
        yield os.path.join(staging, name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP while an output was being written: cleaned up as Ctrl-C is."""


@contextlib.contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Interrupted` while the output is staged, so the staging
    folder is removed on the way out as for SIGINT (only in the main thread, where Python can
    take signals; the previous handlers are put back)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise Interrupted(f"signal {signum}")

    previous = {}
    for number in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if number is not None:
            previous[number] = signal.signal(number, interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


#: Where dependencies put side files (Keras's keras.json, matplotlib's font cache, onnxruntime's
#: device id, temporary files): each pointed inside the staging folder while lstmconv runs them.
_SIDE_FILE_VARIABLES = ("HOME", "KERAS_HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TMPDIR")


#: Set while a batch holds the frameworks' homes for all its conversions (threads share them).
_SHARED_SIDE_FILES: list[str] = []


@contextlib.contextmanager
def side_files_for_batch(folder: str) -> Iterator[None]:
    """For a batch converting in threads: one home for every conversion's side files, in a
    staging folder of ``folder`` (the output folder), removed at the end; each conversion then
    leaves the process's variables alone (they are process-wide)."""
    staging = os.path.join(folder, f".lstmconv-{os.urandom(4).hex()}")
    os.mkdir(staging)
    try:
        with _side_files_inside(staging):
            _SHARED_SIDE_FILES.append(staging)
            try:
                yield
            finally:
                _SHARED_SIDE_FILES.remove(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _side_files_inside(staging: str) -> Iterator[None]:
    """While the output is written and verified, the frameworks' homes (``$HOME``,
    ``KERAS_HOME``, the XDG folders, ``MPLCONFIGDIR``, ``TMPDIR``) are a folder inside the
    staging folder, removed with it: nothing outside the output paths is touched. The variables
    are put back after (they are process-wide: a program running conversions in threads sees
    them change). onnxruntime's telemetry is also turned off where it is imported."""
    if _SHARED_SIDE_FILES:  # a batch holds them for all its conversions
        yield
        return
    home = os.path.join(staging, _SIDE_FILES)
    os.mkdir(home)
    saved = {key: os.environ.get(key) for key in _SIDE_FILE_VARIABLES}
    saved_tempdir = tempfile.tempdir
    for key in _SIDE_FILE_VARIABLES:
        os.environ[key] = home
    tempfile.tempdir = home
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _renameat2_noreplace(source: str, dest: str) -> bool:
    """Linux's renameat2(RENAME_NOREPLACE): True if done; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(dest), _RENAME_NOREPLACE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), dest)


def _place(source: str, dest: str, overwrite: bool) -> None:
    """Move ``source`` to ``dest``; without ``overwrite``, never replacing anything that is
    there by then, a dangling symlink included (the check before is no guard: a file can appear
    meanwhile, or another conversion finish first). A hard link then an unlink, where the file
    system has them; else renameat2 with RENAME_NOREPLACE."""
    if overwrite:
        os.replace(source, dest)
        return
    try:
        os.link(source, dest, follow_symlinks=False)
    except FileExistsError:
        raise _exists(dest) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        try:
            done = _renameat2_noreplace(source, dest)
        except FileExistsError:
            raise _exists(dest) from None
        if not done:
            raise LstmconvError(
                "the output's file system can publish a file only by replacing what is there",
                where=(dest,),
                hint="pass overwrite=True (--force) to allow replacing",
            ) from None
        return
    os.unlink(source)


def _exists(dest: str, appeared: bool = True) -> OutputExistsError:
    """``appeared``: found when the written file was placed, after the check before the work."""
    return OutputExistsError(
        "the output exists (it appeared while converting)" if appeared else "the output exists",
        where=(dest,),
        hint="pass overwrite=True to replace it",
        cli_hint="pass --force to replace it",
    )


def _publish(written: str, dest: str, overwrite: bool) -> None:
    """Move the written file into place, and first the files written beside it (each refused
    if it exists and ``overwrite`` is not set), so the model never appears without them; if the
    model cannot be placed, the files placed for it are taken back."""
    staging, name = os.path.split(written)
    folder = os.path.dirname(os.path.abspath(dest))
    companions = sorted(other for other in os.listdir(staging) if other != name and other != _SIDE_FILES)
    targets = [os.path.join(folder, other) for other in companions]
    for target in [*targets, dest]:
        _refuse_unwritable(target, overwrite)
    placed: list[str] = []
    try:
        for other, target in zip(companions, targets):
            _place(os.path.join(staging, other), target, overwrite)
            placed.append(target)
        _place(written, dest, overwrite)
    except BaseException:
        if not overwrite:  # what was placed did not exist before: it is ours to take back
            for target in placed:
                with contextlib.suppress(OSError):
                    os.unlink(target)
        raise


def _refuse_unwritable(dest: str, overwrite: bool, appeared: bool = True) -> None:
    """A directory is never replaced, even with ``overwrite``; anything else only with it."""
    if os.path.isdir(dest) and not os.path.islink(dest):
        raise LstmconvError(
            "the output is a directory", where=(dest,), hint="give a file name inside it, or another name"
        )
    _refuse_existing(dest, overwrite, appeared)


def _refuse_existing(dest: str, overwrite: bool, appeared: bool = True) -> None:
    if os.path.lexists(dest) and not overwrite:  # lexists: a dangling symlink is there too
        raise _exists(dest, appeared)


def _check_destination(dest: str, overwrite: bool) -> None:
    """Refuse, before any work, an output that exists or a folder that cannot take it."""
    _refuse_unwritable(dest, overwrite, appeared=False)
    folder = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(folder):
        raise LstmconvError("the output's folder does not exist", where=(dest,), hint="create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LstmconvError("the output's folder is not writable", where=(dest,))


def write(
    model: Any,
    dest: str | os.PathLike[str],
    format: str | None = None,
    overwrite: bool = False,
    **options: Any,
) -> str:
    """Write ``model`` (an IR model or anything :func:`read` takes) to ``dest`` atomically: to a
    temporary sibling, reopened and compared with the model, then renamed."""
    dest = os.fspath(dest)
    fmt = for_path(dest, format)
    check_options(fmt, options, "write")
    _check_ending(fmt, dest, format)
    model = read(model)
    _check_destination(dest, overwrite)

    def reopen(temporary: str) -> None:
        with _reading_own_output():
            _reopen_and_compare(model, temporary, fmt, dest)

    _staged_write(model, fmt, dest, overwrite, options, reopen)
    return dest


def _staged_write(
    model: Model,
    fmt: Format,
    dest: str,
    overwrite: bool,
    options: Mapping[str, Any],
    check_written: Callable[[str], None],
    step: Callable[[str], None] = lambda _phase: None,
    *,
    write_with: Callable[[str], None] | None = None,
) -> None:
    """Write ``model`` into a temporary sibling of ``dest`` (by the format's writer, or by
    ``write_with``: a template's layout), let ``check_written`` look at it (reopen, verify: it
    raises to stop), then publish it. Nothing is left behind on failure."""
    _check_target(model, fmt, dest)
    try:
        with _cleanup_on_signals(), _temporary_sibling(dest) as temporary:
            with _side_files_inside(os.path.dirname(temporary)):
                writer = fmt.load_writer()  # importing a framework may write its side files
                step("writing")
                if write_with is not None:
                    write_with(temporary)
                else:
                    writer.write(_carried(model, writer), temporary, **options)
                check_written(temporary)
            step("finishing")
            _publish(temporary, dest, overwrite)
    except LstmconvError:
        raise
    except OSError as error:  # the disk full, a quota, a read-only or vanished folder
        reason = error.strerror or type(error).__name__
        raise LstmconvError(
            f"writing the output failed: {reason}; nothing was written",
            where=(dest,),
            hint="free space, or choose another place"
            if error.errno in (errno.ENOSPC, errno.EDQUOT)
            else None,
        ) from None


def _holds(writer: Any) -> bool:
    """Whether ``writer`` carries plain layers: it says so (``HOLDS_PLAIN``), else a family that
    ports whole models (one with ``write_like``) does."""
    return bool(getattr(writer, "HOLDS_PLAIN", hasattr(writer, "write_like")))


def _carried(model: Model, writer: Any) -> Model:
    """The model as ``writer`` can hold it: one that holds no plain layers gets the recurrent
    layers alone, the plain ones listed as skipped (:meth:`Model.recurrent_only`), never dropped.
    A writer of a runnable graph (``BUILDS_CHAIN``: .keras, .onnx) holds them only where the
    source says how they connect (:func:`porting.unchained`)."""
    if not model.around:
        return model
    if not _holds(writer):
        return model.recurrent_only()
    if getattr(writer, "BUILDS_CHAIN", False):
        from . import porting

        why = porting.unchained(model)
        if why is not None:
            _log.warning(
                "the plain layers %s are not built into the written model (%s): the recurrent layers are",
                ", ".join(f'"{layer.name}"' for layer in model.around),
                why,
            )
            return model.recurrent_only()
    return model


def holds_plain(fmt: Format) -> bool:
    """Whether ``fmt``'s writer carries the plain layers."""
    return not fmt.read_only and _holds(fmt.load_writer())


def _reopen_and_compare(model: Model, written: str, fmt: Format, dest: str) -> None:
    """Read the written file back and check it holds the same layers computing the same outputs."""
    again = read(written, fmt.name)

    def shape(m: Model) -> list[tuple[object, ...]]:
        return [(x.kind, x.direction, x.input_size, x.hidden_size, x.proj_size, x.output_size) for x in m]

    if shape(again) != shape(model):
        raise VerificationError(
            f"the written file reads back as {shape(again)}, expected {shape(model)}", where=(dest,)
        )
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 3, model.input_size))
    error = verification.max_error(reference.run(again, x), reference.run(model, x))
    if not error <= dtypes.tolerance(1e-5, *model.dtypes):  # merging float16 biases rounds them
        raise VerificationError(
            f"the written file reads back computing other outputs (max |error| {error:.3g})", where=(dest,)
        )


def verify(
    a: Any,
    b: Any,
    atol: float | None = None,
    *,
    rtol: float | None = None,
    format_a: str | None = None,
    format_b: str | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> verification.Report:
    """Run each recurrent layer of ``a`` and the layer in the same position of ``b``, each as
    given in its own framework, on the same random inputs (several batch sizes and lengths,
    length 1 among them), and report each layer's largest absolute and relative difference.
    ``read_options`` go to each side whose reader takes them; one neither takes is refused."""
    options = dict(read_options or {})
    formats = [_format_of(a, format_a), _format_of(b, format_b)]
    takes = [{*COMMON_READ_OPTIONS, *fmt.read_options} for fmt in formats]
    if not isinstance(a, Model) and not isinstance(b, Model):
        neither = {name: value for name, value in options.items() if not any(name in t for t in takes)}
        check_options(formats[0], neither, "read")  # refused, naming what A's reader takes
    model_a, model_b = (
        read(x, given, **{k: v for k, v in options.items() if k in t})
        for x, given, t in ((a, format_a, takes[0]), (b, format_b, takes[1]))
    )
    shapes = [[(x.input_size, x.output_size) for x in m] for m in (model_a, model_b)]
    if shapes[0] != shapes[1]:
        raise WeightLayoutError(
            f"A's layers take and give {shapes[0]} features, B's {shapes[1]}: they are not the same model",
            where=(f"{_label(a)} vs {_label(b)}",),
        )
    sides = [
        verification.side_runners(tag, source, model, _format_of(source, given))
        for tag, source, model, given in (("A", a, model_a, format_a), ("B", b, model_b, format_b))
    ]
    return verification.check(
        _label(a), _label(b), sides[0], sides[1], model_a, model_b, rtol=rtol, atol=atol
    )


def _format_of(source: Any, given: str | None) -> Format:
    return FORMATS["npz"] if isinstance(source, Model) else source_format(source, given)


def _label(source: Any) -> str:
    return verification.label(source)


@overload
def convert(
    source: Any,
    dest: str | os.PathLike[str],
    verify: Literal[True] = ...,
    overwrite: bool = ...,
    *,
    from_format: str | None = ...,
    to_format: str | None = ...,
    layers: Sequence[str] | None = ...,
    atol: float | None = ...,
    rtol: float | None = ...,
    dtype: str | None = ...,
    read_options: Mapping[str, Any] | None = ...,
    write_options: Mapping[str, Any] | None = ...,
    progress: Callable[[str], None] | None = ...,
    like: str | os.PathLike[str] | None = ...,
    mapping: Mapping[str, str] | None = ...,
) -> verification.Report: ...


@overload
def convert(
    source: Any,
    dest: str | os.PathLike[str],
    verify: Literal[False],
    overwrite: bool = ...,
    *,
    from_format: str | None = ...,
    to_format: str | None = ...,
    layers: Sequence[str] | None = ...,
    atol: float | None = ...,
    rtol: float | None = ...,
    dtype: str | None = ...,
    read_options: Mapping[str, Any] | None = ...,
    write_options: Mapping[str, Any] | None = ...,
    progress: Callable[[str], None] | None = ...,
    like: str | os.PathLike[str] | None = ...,
    mapping: Mapping[str, str] | None = ...,
) -> None: ...


@overload
def convert(
    source: Any,
    dest: str | os.PathLike[str],
    verify: bool = ...,
    overwrite: bool = ...,
    *,
    from_format: str | None = ...,
    to_format: str | None = ...,
    layers: Sequence[str] | None = ...,
    atol: float | None = ...,
    rtol: float | None = ...,
    dtype: str | None = ...,
    read_options: Mapping[str, Any] | None = ...,
    write_options: Mapping[str, Any] | None = ...,
    progress: Callable[[str], None] | None = ...,
    like: str | os.PathLike[str] | None = ...,
    mapping: Mapping[str, str] | None = ...,
) -> verification.Report | None: ...


def convert(
    source: Any,
    dest: str | os.PathLike[str],
    verify: bool = True,
    overwrite: bool = False,
    *,
    from_format: str | None = None,
    to_format: str | None = None,
    layers: Sequence[str] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    dtype: str | None = None,
    read_options: Mapping[str, Any] | None = None,
    write_options: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    like: str | os.PathLike[str] | None = None,
    mapping: Mapping[str, str] | None = None,
) -> verification.Report | None:
    """Read ``source``, write ``dest``, and (by default) prove they compute the same outputs
    before ``dest`` is kept: each recurrent layer of the source, run as given in its own
    framework, against the same layer of the written file run in its own. Returns the report,
    or None with ``verify=False``.

    The weights keep their dtype unless ``dtype`` asks for a cast; a cast model is verified
    against its cast weights, and the report says how far the cast itself moved the outputs.
    ``write_options`` go to the format's writer (ONNX: ``external_data=True``).

    ``like``: a template saved from the target model (``torch.save(net.state_dict())``, a
    ``.safetensors`` of it, an untrained ``.keras``, an ``.onnx`` graph): ``dest`` is written in
    its exact layout, every layer with weights paired as :func:`port` pairs them (``mapping``:
    {template layer: source layer})."""
    dest = os.fspath(dest)
    verification.tolerances([], rtol, atol)  # a bad tolerance is refused before any work
    if like is not None:
        if layers or dtype or write_options:
            raise UsageError(
                "like= writes the template's layout: layers, dtype and write options do not apply"
            )
        return ports.convert_like(
            source,
            dest,
            like,
            mapping=mapping,
            verify=verify,
            overwrite=overwrite,
            from_format=from_format,
            rtol=rtol,
            atol=atol,
            read_options=read_options,
        )
    fmt = for_path(dest, to_format)
    check_options(fmt, write_options or {}, "write")
    _check_ending(fmt, dest, to_format)
    _check_destination(dest, overwrite)  # before a long read, and again before writing
    step = progress or (lambda _phase: None)
    step("reading")
    model = read(source, from_format, **dict(read_options or {}))
    if layers:
        model = model.select(layers)
    checked_against, notes = source, []
    cast = model.astype(dtype) if dtype is not None else model
    if cast.dtypes != model.dtypes:
        notes.append(_cast_note(model, cast))
        checked_against, model = cast, cast
    _check_destination(dest, overwrite)
    reports: list[verification.Report] = []
    source_name = _format_of(source, from_format).name

    def check_written(temporary: str) -> None:
        # the writer is imported by now (inside the staging folder, with its side files)
        skipped, parameters = _carried_counts(_carried(model, fmt.load_writer()), source_name)
        if not verify:
            _warn_not_carried(skipped, parameters)
            return
        step("verifying")
        with _reading_own_output():
            report = _verify_written(
                checked_against,
                model,
                temporary,
                fmt,
                rtol=rtol,
                atol=atol,
                from_format=from_format,
                labels=(_label(source), dest),
                notes=notes,
            )
        report = dataclasses.replace(report, skipped=tuple(skipped), parameters=parameters)
        if not report.ok:
            error = VerificationError(f"the written model disagrees with the source\n{report}", where=(dest,))
            error.report = report
            raise error
        reports.append(report)

    _staged_write(model, fmt, dest, overwrite, dict(write_options or {}), check_written, step)
    return reports[0] if reports else None


def _verify_written(
    source: Any,
    model: Model,
    written: str,
    fmt: Format,
    *,
    rtol: float | None,
    atol: float | None,
    from_format: str | None,
    labels: tuple[str, str],
    notes: Sequence[str] = (),
) -> verification.Report:
    written_model = read(written, fmt.name)
    source_side = verification.side_runners("source", source, model, _format_of(source, from_format))
    target_side = verification.side_runners("target", written, written_model, fmt, written=True)
    return verification.check(
        *labels, source_side, target_side, model, written_model, rtol=rtol, atol=atol, notes=notes
    )


def _carried_counts(model: Model, fmt: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """What the written model leaves out, and the parameters carried of the total (plain layers
    it holds counted as carried)."""
    skipped, parameters = _left_out(model, fmt)
    held = sum(layer.parameter_count for layer in model.around)
    return skipped, {"carried": parameters["carried"] + held, "total": parameters["total"] + held}


def _warn_not_carried(skipped: list[dict[str, Any]], parameters: dict[str, int]) -> None:
    """An unverified conversion says what it did not carry (a verified one's report lists it)."""
    if not skipped:
        return
    names = ", ".join(f"{entry['name']} ({entry['kind']}, {entry['parameters']:,})" for entry in skipped[:6])
    more = f" and {len(skipped) - 6} more" if len(skipped) > 6 else ""
    _log.warning(
        "not carried: %s%s; carried %s of %s parameters",
        names,
        more,
        f"{parameters['carried']:,}",
        f"{parameters['total']:,}",
    )


def _cast_note(model: Model, cast: Model) -> str:
    x = verification.inputs(model)[-1].astype(np.float64)
    moved = verification.max_error(reference.run(model, x), reference.run(cast, x))
    before = "/".join(d.name for d in model.dtypes)
    after = "/".join(d.name for d in cast.dtypes)
    return (
        f"weights cast from {before} to {after}: verified against the cast weights; "
        f"the cast itself moves the outputs by up to {moved:.3g}"
    )


def _build(framework: str, model: Any) -> Any:
    ir = read(model)
    return FORMATS[framework].load_live(f"to_{framework}()").build(ir)


def to_torch(model: Any) -> torch.nn.Module:
    """A runnable ``torch.nn.Module``: input (batch, time, features), layers in order; plain
    layers only where the source links them (:func:`porting.unchained`), else left out, warned."""
    built: torch.nn.Module = _build("torch", model)
    return built


def to_keras(model: Any) -> keras.Model:
    """A runnable ``keras.Model``: input (batch, time, features), layers in order."""
    built: keras.Model = _build("keras", model)
    return built


_BUILD_OPTIONS = ("opset", "input_name", "output_name")


def to_onnx(model: Any, **options: Any) -> onnx.ModelProto:
    """A runnable ``onnx.ModelProto``: input ``input``, output ``output`` (for a model that is
    one chain of layers; otherwise ``<first layer>_input``/``<last layer>_output`` per chain),
    native operators. Options: ``opset``, ``input_name``, ``output_name``."""
    fmt = FORMATS["onnx"]
    check_options(dataclasses.replace(fmt, write_options=_BUILD_OPTIONS), options, "build")
    ir = read(model)
    built: onnx.ModelProto = fmt.load_live("to_onnx()").build(ir, **options)
    return built


port = ports.port


def load_into(target: Any, model: Any, mapping: Mapping[str, str] | None = None) -> Any:
    """Fill the recurrent layers of an existing torch module, Keras model or ONNX model with
    ``model``'s layers, in order or by ``mapping`` (target layer name → model layer name)."""
    if is_path(target):
        raise UnsupportedFeatureError(
            "load_into fills a live model; use convert or write for files",
            where=(os.fspath(target),),
            hint="pass a torch.nn.Module, a keras.Model or an onnx.ModelProto as the target",
        )
    fmt = for_object(target)
    return fmt.load_live(f"load_into a {fmt.name} object").load_into(target, read(model), mapping)


class _Collected(logging.Handler):
    """The warnings lstmconv logs while it reads, for ``inspect``'s JSON."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _collecting_warnings() -> Iterator[list[str]]:
    handler = _Collected()
    logger = logging.getLogger("lstmconv")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def inspect(
    source: Any, format: str | None = None, *, as_framework: str | None = None, **options: Any
) -> dict[str, Any]:
    """What ``lstmconv inspect --json`` prints: the source's format and each layer's math, its
    tensors as the format stores them and in the canonical layout, and its parameter counts;
    what the reader left out (``skipped``: names, kinds, tensors, parameter counts), the
    parameters carried of the total, and the warnings the read gave (assumptions that change
    the numbers, masks). Reads names and shapes only (``header_only``) unless ``strict`` asks
    to check the values.

    ``as_framework`` (keras, torch, onnx, tf, tflite) adds each layer as that framework lays it
    out, whatever the source (``as``: tensors, gate slices, gate orders, the parameter formula,
    a legend; ``as_error`` where the framework cannot hold the layer) and the model's total in
    that layout (``as_parameters``)."""
    if as_framework is not None and as_framework not in inspection.VIEWS:
        raise UnknownOptionError(
            f"inspect cannot show the layout of {as_framework!r}",
            hint=f"as_framework: one of {', '.join(inspection.VIEWS)}",
        )
    fmt = source_format(source, format)
    with _collecting_warnings() as warnings:
        model = read(source, format, header_only=not options.get("strict"), **options)
    layers = [inspection.describe(layer, fmt.name) for layer in model]
    skipped, parameters = _left_out(model, fmt.name, layers)
    plain = [inspection.describe_plain(layer, fmt.name) for layer in model.around]
    held = sum(layer["parameters"]["stored"] for layer in plain)
    parameters = {"carried": parameters["carried"] + held, "total": parameters["total"] + held}
    info: dict[str, Any] = {
        "source": _label(source),
        "format": fmt.name,
        "layers": layers,
        "plain": plain,
        "order": list(model.order or ()),
        "skipped": skipped,
        "parameters": parameters,
        "warnings": list(dict.fromkeys(warnings)),
    }
    if as_framework is not None:
        total = 0
        for described, layer in zip(layers, model):
            try:
                described["as"] = inspection.view(layer, as_framework)
                total += described["as"]["parameters"]
            except LstmconvError as error:
                described["as"], described["as_error"] = None, str(error)
        info["as"] = as_framework
        info["as_parameters"] = total
    return info


def _left_out(
    model: Model, fmt: str, described: Sequence[Mapping[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """What the reader read past (names, kinds, tensors, parameter counts), and the parameters
    carried of the total, as the source stores them."""
    layers = described if described is not None else [inspection.describe(layer, fmt) for layer in model]
    carried = sum(layer["parameters"]["stored"] for layer in layers)
    skipped = [
        {
            "name": entry.name,
            "kind": entry.kind,
            "parameters": entry.parameters,
            "tensors": [{"name": name, "shape": list(shape)} for name, shape in entry.tensors],
        }
        for entry in model.skipped
    ]
    return skipped, {"carried": carried, "total": carried + model.skipped_count}
