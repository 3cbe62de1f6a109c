"""Mutation fuzzing of the readers: corrupt every fixture in many small ways and require that
reading either succeeds or raises an LstmconvError — never another exception, never a hang.

Used by tests/test_properties.py (a bounded run) and scripts/fuzz (as long as you like).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import lstmconv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SECONDS_PER_READ = 20


def fixtures(include_torch: bool = True) -> list[Path]:
    files = sorted(p for p in FIXTURES.iterdir() if p.is_file() and not p.name.endswith((".json", ".io.npz")))
    return [p for p in files if include_torch or p.suffix != ".pt"]


def mutations(data: bytes, rng: random.Random) -> bytes:
    """One corrupted copy: flipped bits, a cut, inserted or zeroed bytes, or a copied block."""
    out = bytearray(data)
    kind = rng.choice(("flip", "cut", "insert", "zero", "copy"))
    at = rng.randrange(len(out))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            spot = rng.randrange(len(out))
            out[spot] ^= 1 << rng.randrange(8)
    elif kind == "cut":
        del out[at:]
    elif kind == "insert":
        out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif kind == "zero":
        width = rng.randint(1, 256)
        out[at : at + width] = bytes(len(out[at : at + width]))
    else:
        start, width = rng.randrange(len(out)), rng.randint(4, 256)
        out[at : at + width] = out[start : start + width]
    return bytes(out)


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang(f"a read took longer than {SECONDS_PER_READ} s")


def run(count: int, seed: int = 0, include_torch: bool = True) -> Iterator[tuple[str, BaseException]]:
    """Yield (description, exception) for every read that escaped LstmconvError or hung."""
    rng = random.Random(seed)
    os.environ.setdefault("LSTMCONV_HDF5_SECONDS", "3")  # a looping HDF5 read fails sooner
    logging.disable(logging.WARNING)
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        with tempfile.TemporaryDirectory() as folder:
            for fixture in fixtures(include_torch):
                data = fixture.read_bytes()
                target = Path(folder) / f"mutant{''.join(fixture.suffixes[-1:])}"
                for index in range(count):
                    target.write_bytes(mutations(data, rng))
                    signal.alarm(SECONDS_PER_READ)
                    try:
                        lstmconv.read(target)
                    except lstmconv.LstmconvError:
                        pass
                    except BaseException as error:  # the point is to catch everything
                        if isinstance(error, KeyboardInterrupt):
                            raise
                        yield f"{fixture.name} mutation {index} (seed {seed})", error
                    finally:
                        signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
        logging.disable(logging.NOTSET)
