"""Running a reader's look at an untrusted file in a forked child, under a time limit.

A corrupt HDF5 file can send the HDF5 C library into a loop (or a crash) that no signal can
interrupt in-process; in a child it costs a few milliseconds and can be killed. The child hands
back what it found as JSON (never pickle: the child is the process that touched the file), with
the warnings it logged, so a look that only needs names and shapes is not done twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import json
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import FormatError

#: The most a child may send back; a description of a model's layers is a few kilobytes.
MAX_ANSWER_BYTES = 64 << 20
_PR_SET_PDEATHSIG = 1


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[int, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.name, record.getMessage()))


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the child's task returned, and the records it logged (level, logger, message)."""

    value: Any
    log: Sequence[tuple[int, str, str]]

    def taken(self) -> Any:
        """The value, for a caller that uses it instead of doing the work again: the child's
        warnings are logged here, as that work would have logged them."""
        for level, name, message in self.log:
            logging.getLogger(name).log(level, "%s", message)
        return self.value


def look(task: Callable[[], Any], limit: float, what: str, hint: str | None = None) -> Answer | None:
    """``task()``'s JSON-able answer, computed in a forked child that is killed after ``limit``
    seconds; None when the child's task raised (the caller's own attempt reports the error) or
    where there is no fork."""
    if not hasattr(os, "fork"):
        return None
    reader, writer = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: answer, then leave without the parent's cleanup
        # No garbage collection in the child: collecting the parent's garbage would destroy its
        # objects here, and one that waits for its own threads (an onnxruntime session left from
        # an earlier verification) waits forever, as those threads were not forked.
        gc.disable()
        os.close(reader)
        _die_with(parent)
        _answer(task, writer)
        os._exit(0)
    os.close(writer)
    try:
        received, status = _receive(reader, pid, limit, what, hint)
    except BaseException:  # interrupted while waiting: the child goes too
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            _kill(pid)
        raise
    finally:
        os.close(reader)
    if os.WIFSIGNALED(status):
        raise FormatError(f"reading {what} crashed (signal {os.WTERMSIG(status)}): the file is corrupt")
    try:
        answer = json.loads(received)
    except ValueError:  # nothing (the task raised), or cut short
        return None
    return Answer(answer["value"], [tuple(record) for record in answer["log"]])


def _die_with(parent: int) -> None:
    """In the child: killed when the parent dies however it dies (Linux's PR_SET_PDEATHSIG;
    elsewhere the parent kills it on the way out), and none of the parent's signal handlers (a
    SIGTERM in the child must not run the parent's cleanup)."""
    for number in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if number is not None:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(number, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)


def _answer(task: Callable[[], Any], writer: int) -> None:
    captured = _Captured()
    root = logging.getLogger("lstmconv")
    root.handlers, root.propagate = [captured], False
    payload = b""
    with contextlib.suppress(BaseException):  # the parent's own attempt reports any error
        payload = json.dumps({"value": task(), "log": captured.records}).encode()
    with contextlib.suppress(OSError), os.fdopen(writer, "wb") as pipe:
        pipe.write(payload)


def _receive(reader: int, pid: int, limit: float, what: str, hint: str | None) -> tuple[bytes, int]:
    """Everything the child writes, read as it comes (a full pipe would stall it), and its exit
    status; the child is killed when it overruns ``limit`` or the answer's size limit."""
    deadline = time.monotonic() + limit
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        ready = select.select([reader], [], [], remaining)[0] if remaining > 0 else []
        if not ready:
            _kill(pid)
            raise FormatError(f"reading {what} did not finish in {limit:g} s: the file is corrupt", hint=hint)
        chunk = os.read(reader, 1 << 16)
        if not chunk:  # the child has closed its end: it is done
            return b"".join(chunks), os.waitpid(pid, 0)[1]
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            _kill(pid)
            return b"", 0


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
