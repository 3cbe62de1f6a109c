"""A one-line progress display on stderr for conversions that take longer than a moment.

The library only reports phases to a callback; the command line decides whether to show them
(not with -q, and only when stderr is a terminal)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

Callback = Callable[[str], None]


class Display:
    """Shows ``lstmconv: <phase> … <seconds>`` once a run has lasted ``after`` seconds."""

    def __init__(self, fd: int, label: str, after: float | None = None, every: float = 0.25):
        if after is None:
            after = float(os.environ.get("LSTMCONV_PROGRESS_AFTER", "1"))
        self.fd, self.label, self.after, self.every = fd, label, after, every
        self.phase = "starting"
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
                line = f"\rlstmconv: {self.label}: {self.phase} … {elapsed:.1f} s\x1b[K"
                os.write(self.fd, line.encode())


def quiet(_: str) -> None:
    """The callback when nothing is shown."""
