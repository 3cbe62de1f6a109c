"""``lstmconv convert SRC... --out-dir DIR --to FORMAT``: many conversions in one process.

A shell loop pays the interpreter's start and the frameworks' imports once per file (1.6–3.2 s
each); here they are paid once, and the files are converted by a pool of workers, one per
core. Threads, not processes: the work is NumPy and the frameworks' kernels, which release the
GIL, and a spawned process would pay the imports again (fork is unsafe once TensorFlow is
loaded). ``LSTMCONV_BATCH_POOL=process`` uses a spawn process pool instead (for the benchmark).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import glob
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from . import api
from .errors import LstmconvError, UnknownFormatError, VerificationError, printable
from .registry import FORMATS, for_path

EXIT_OK, EXIT_DISAGREE, EXIT_ERROR = 0, 1, 2


def expand(paths: Iterable[str]) -> list[str]:
    """Files as given, globs expanded (when the shell did not), folders as every file in them
    whose name says a format lstmconv reads (a folder that is itself a model, a SavedModel,
    counts as one source). In order, each once."""
    found: list[str] = []
    for path in paths:
        if glob.has_magic(path) and not os.path.exists(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise LstmconvError("the pattern matches no file", where=(path,))
            found.extend(matches)
        elif os.path.isdir(path) and not _is_model(path):
            inside = sorted(os.path.join(path, name) for name in os.listdir(path))
            found.extend(entry for entry in inside if _is_model(entry) and not _companion(entry))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def _is_model(path: str) -> bool:
    try:
        for_path(path)
    except UnknownFormatError:
        return False
    return True


def _companion(path: str) -> bool:
    """A checkpoint's data shard, read through its ``.index``."""
    return for_path(path).name == "tf-checkpoint" and not path.lower().endswith(".index")


def destination(source: str, out_dir: str, to_format: str) -> str:
    """``DIR/<SRC's name without its ending><the format's ending>``."""
    name = os.path.basename(os.path.normpath(source))
    fmt = for_path(source) if _is_model(source) else None
    endings = sorted((*(fmt.read_endings if fmt else ()), ".weights.h5"), key=len, reverse=True)
    stem = next((name[: -len(e)] for e in endings if name.lower().endswith(e)), os.path.splitext(name)[0])
    return os.path.join(out_dir, stem + FORMATS[to_format].write_endings[0])


def convert_one(source: str, dest: str, options: dict[str, Any]) -> dict[str, Any]:
    """One file's record: status ok / disagree / error / skipped, the report, the seconds."""
    start = time.perf_counter()
    record: dict[str, Any] = {"source": source, "dest": dest, "status": "ok", "error": None}
    report = None
    try:
        if os.path.exists(dest) and not options["overwrite"]:
            record.update(status="skipped", error="the output exists (--force replaces it)")
        else:
            report = api.convert(source, dest, **options)
    except VerificationError as error:
        report = error.report
        record.update(status="disagree", error=error.render(cli=True).splitlines()[0])
    except LstmconvError as error:
        record.update(status="error", error=error.render(cli=True))
    except Exception as error:  # one bad file must not stop the batch
        record.update(status="error", error=f"internal error ({type(error).__name__}: {error})")
    record["verification"] = None if report is None else report.to_dict()
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def run(args: argparse.Namespace) -> int:
    from .cli import _read_options, _write_options  # the one place options are made from flags

    if not args.to_format:
        raise LstmconvError("a batch conversion needs --to FORMAT", hint=f"formats: {', '.join(FORMATS)}")
    if not os.path.isdir(args.out_dir):
        raise LstmconvError("the output folder does not exist", where=(args.out_dir,), hint="create it first")
    sources = expand(args.paths)
    if not sources:
        raise LstmconvError("no readable model among the sources", where=tuple(args.paths[:1]))
    dests = [destination(source, args.out_dir, args.to_format) for source in sources]
    clashes = {d for d in dests if dests.count(d) > 1}
    if clashes:
        raise LstmconvError(
            f"several sources would be written to {sorted(clashes)[0]}",
            hint="convert them into separate folders",
        )
    options: dict[str, Any] = {
        "verify": not args.no_verify,
        "overwrite": args.force,
        "from_format": args.from_format,
        "to_format": args.to_format,
        "layers": args.layers,
        "atol": args.atol,
        "rtol": args.rtol,
        "dtype": args.dtype,
        "read_options": _read_options(args),
        "write_options": _write_options(args, dests[0]),
    }
    records = _convert_all(sources, dests, options, args)
    if args.json:
        print(json.dumps(records, indent=2))
    elif not args.quiet or any(r["status"] in ("error", "disagree") for r in records):
        print(summary(records))
    statuses = {r["status"] for r in records}
    return EXIT_ERROR if "error" in statuses else EXIT_DISAGREE if "disagree" in statuses else EXIT_OK


def _convert_all(
    sources: list[str], dests: list[str], options: dict[str, Any], args: argparse.Namespace
) -> list[dict[str, Any]]:
    workers = max(1, min(args.jobs or os.cpu_count() or 1, len(sources)))
    if os.environ.get("LSTMCONV_BATCH_POOL") == "process":
        pool: concurrent.futures.Executor = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn")
        )
    else:
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="lstmconv")
    shown = not args.quiet and not args.json and os.isatty(args.stderr_fd)
    line = _Progress(args.stderr_fd, len(sources)) if shown else None
    records: list[dict[str, Any] | None] = [None] * len(sources)
    threads = isinstance(pool, concurrent.futures.ThreadPoolExecutor)
    homes = api.side_files_for_batch(args.out_dir) if threads else contextlib.nullcontext()
    with homes, pool:
        futures = {pool.submit(convert_one, s, d, options): i for i, (s, d) in enumerate(zip(sources, dests))}
        for future in concurrent.futures.as_completed(futures):
            record = future.result()
            records[futures[future]] = record
            if line is not None:
                line.done(record)
    if line is not None:
        line.close()
    return [r for r in records if r is not None]


class _Progress:
    """``lstmconv: 7/20 converted, 1 failed … 3.2 s`` on one line, over the whole batch."""

    def __init__(self, fd: int, total: int) -> None:
        self.fd, self.total, self.count, self.failed = fd, total, 0, 0
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def done(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.count += 1
            self.failed += record["status"] in ("error", "disagree")
            elapsed = time.monotonic() - self.start
            left = elapsed / self.count * (self.total - self.count)
            failed = f", {self.failed} failed" if self.failed else ""
            text = (
                f"\rlstmconv: {self.count}/{self.total} converted{failed} … "
                f"{elapsed:.1f} s, ~{left:.0f} s left\x1b[K"
            )
            os.write(self.fd, text.encode())

    def close(self) -> None:
        os.write(self.fd, b"\r\x1b[K")


def summary(records: list[dict[str, Any]]) -> str:
    """One table for the batch, then the count of each status; file names escaped (a folder's
    file may be named with a newline or a terminal escape)."""
    rows = [("source", "output", "status", "max |a-b|", "seconds")]
    for r in records:
        report = r["verification"]
        error = "" if report is None or report["max_abs"] is None else f"{report['max_abs']:.3e}"
        rows.append((printable(r["source"]), printable(r["dest"]), r["status"], error, f"{r['seconds']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for r in records:
        if r["error"] and r["status"] != "skipped":
            lines.append(f"{printable(r['source'])}: {printable(r['error'])}")
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "disagree", "error", "skipped")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(records)}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run as lstmconv convert SRC... --out-dir DIR --to FORMAT")
