"""A one-line progress display on stderr for conversions that take longer than a moment.

The library only reports phases to a callback, and the streaming writers count the bytes they
write (:func:`expect`, :func:`advance`, per thread); the command line decides whether to show
them (not with -q, and only when stderr is a terminal): the phase, the bytes done of the total
and an estimate of the time left, once there is a rate to estimate from."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

Callback = Callable[[str], None]


class _Count:
    """Bytes done of an expected total, since ``start``."""

    def __init__(self, total: int, what: str = "") -> None:
        self.total, self.done, self.start, self.what = total, 0, time.monotonic(), what


#: The count of each thread that is writing (a batch converts in several threads at once).
_COUNTS: dict[int, _Count] = {}


def expect(total: int, what: str = "") -> None:
    """A writer in this thread is about to write ``total`` bytes (a new count; ``what``, if
    given, says which part of the writing it is)."""
    _COUNTS[threading.get_ident()] = _Count(total, what)


def advance(done: int) -> None:
    """``done`` more bytes written by this thread's writer."""
    count = _COUNTS.get(threading.get_ident())
    if count is not None:
        count.done += done


def finish() -> None:
    """This thread's writer is done: nothing more to count."""
    _COUNTS.pop(threading.get_ident(), None)


@contextlib.contextmanager
def counting(total: int, what: str = "") -> Iterator[None]:
    """:func:`expect` ``total`` bytes for the block, :func:`finish` after it."""
    expect(total, what)
    try:
        yield
    finally:
        finish()


def counted(thread: int) -> str:
    """``120/256 MiB, ~2 s left`` for ``thread``'s count; empty without one."""
    count = _COUNTS.get(thread)
    if count is None or count.total <= 0:
        return ""
    unit, scale = ("MiB", 2**20) if count.total >= 2**20 else ("KiB", 2**10)
    text = f" {count.done / scale:.0f}/{count.total / scale:.0f} {unit}" + (
        f" {count.what}" if count.what else ""
    )
    elapsed = time.monotonic() - count.start
    if 0 < count.done < count.total and elapsed > 0.2:
        left = (count.total - count.done) * elapsed / count.done
        text += f", ~{left:.0f} s left"
    return text


class Display:
    """Shows ``lstmconv: <phase> … <seconds>`` once a run has lasted ``after`` seconds."""

    def __init__(self, fd: int, label: str, after: float | None = None, every: float = 0.25):
        if after is None:
            after = float(os.environ.get("LSTMCONV_PROGRESS_AFTER", "1"))
        self.fd, self.label, self.after, self.every = fd, label, after, every
        self.phase = "starting"
        self.owner = threading.get_ident()  # the thread whose writer's bytes are shown
        self.start = time.monotonic()
        self.shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __call__(self, phase: str) -> None:
        self.phase = phase

    def __enter__(self) -> Display:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.shown:
            os.write(self.fd, b"\r\x1b[K")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            elapsed = time.monotonic() - self.start
            if elapsed >= self.after:
                self.shown = True
                line = f"\rlstmconv: {self.label}: {self.phase}{counted(self.owner)} … {elapsed:.1f} s\x1b[K"
                os.write(self.fd, line.encode())


def quiet(_: str) -> None:
    """The callback when nothing is shown."""
