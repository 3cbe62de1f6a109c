"""Broken and hostile inputs (tests/corpus.py): each case fails with its error class and
message, exits 2 from the CLI with one line and no traceback, leaves no output behind, touches
no file, and never runs a payload."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import require
from corpus import MARKER, all_cases

import lstmconv
from lstmconv import errors
from lstmconv.cli import main

CASES = all_cases()


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in root.rglob("*")
    }


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request, tmp_path):
    case = request.param
    for module in case.needs:
        require(module)
    folder = tmp_path / "case"
    folder.mkdir()
    return case, case.build(folder), tmp_path


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


def test_read_raises_the_named_error(case) -> None:
    case, path, root = case
    if not case.error:  # a hostile file that must read cleanly without running anything
        lstmconv.read(path)
        assert not any(root.rglob(MARKER))
        return
    classes = tuple(getattr(errors, name) for name in case.error.split("|"))
    with pytest.raises(classes) as raised:
        lstmconv.read(path, strict=True)
    assert re.search(case.message, str(raised.value)), str(raised.value)
    assert str(path) in str(raised.value)  # names the file
    assert not any(root.rglob(MARKER)), "the payload ran"


def test_cli_exits_2_with_one_line_and_writes_nothing(case, capsys) -> None:
    case, path, root = case
    if not case.error:
        return
    out = root / "out"
    out.mkdir()
    before = _tree(root)
    status = main(["convert", str(path), str(out / "model.npz"), "--strict"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("lstmconv: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert os.listdir(out) == []
    assert _tree(root) == before  # nothing touched, inside or beside the case folder
    assert not any(root.rglob(MARKER))


def test_inspect_reads_only_headers_and_still_refuses(case, capsys) -> None:
    """``inspect`` reads names and shapes alone (a ``.pt`` without torch): the same files fail,
    with one line, and no payload runs. Only values (NaN under --strict) can pass unseen."""
    case, path, root = case
    status = main(["inspect", str(path)])
    err = capsys.readouterr().err
    assert not any(root.rglob(MARKER)), "the payload ran"
    assert "Traceback" not in err
    if not case.error or "NaN" in case.message or "infinite" in case.message:
        assert status in (0, 2), err
        return
    assert status == 2, err
    assert err.startswith("lstmconv: error: ") and err.count("\n") == 1
    assert re.search(case.message, err), err


# -- the forked child that looks at HDF5 structure first (lstmconv.formats.forked) -------------------
def _warns_and_answers() -> dict[str, int]:
    import logging

    logging.getLogger("lstmconv.formats.keras.files").warning("seen in the child")
    return {"answer": 42}


def _hangs() -> None:
    import time

    time.sleep(60)


def _crashes() -> None:
    import faulthandler
    import signal

    faulthandler.disable()  # pytest's would print the child's stack
    os.kill(os.getpid(), signal.SIGSEGV)


def _raises() -> None:
    import logging

    logging.getLogger("lstmconv").warning("lost with the child")
    raise ValueError("the parent's own read reports this")


def test_forked_look_returns_the_answer_and_replays_its_warnings(caplog) -> None:
    from lstmconv.formats import forked

    with caplog.at_level("WARNING", logger="lstmconv"):
        answer = forked.look(_warns_and_answers, 10, "a test")
        assert forked.look(_raises, 10, "a test") is None
        assert answer is not None and not caplog.records  # logged only when the answer is taken
        assert answer.taken() == {"answer": 42}
    assert [r.getMessage() for r in caplog.records] == ["seen in the child"]
    assert caplog.records[0].name == "lstmconv.formats.keras.files"


def test_forked_look_kills_a_child_that_hangs_or_reports_one_that_crashed() -> None:
    import time

    from lstmconv.formats import forked

    started = time.monotonic()
    with pytest.raises(errors.FormatError, match=r"reading a test did not finish in 0\.5 s.*set THIS"):
        forked.look(_hangs, 0.5, "a test", hint="set THIS")
    assert time.monotonic() - started < 10
    with pytest.raises(errors.FormatError, match=r"reading a test crashed \(signal 11\)"):
        forked.look(_crashes, 10, "a test")


def test_keras_header_read_outlines_the_full_read_and_warns_once(tmp_path, caplog) -> None:
    import zipfile

    from test_files import FIXTURES, _summary

    weights_only = tmp_path / "alone.weights.h5"
    with zipfile.ZipFile(FIXTURES / "keras3_stacked_bidir.keras") as archive:
        weights_only.write_bytes(archive.read("model.weights.h5"))
    paths = sorted(FIXTURES.glob("*.keras")) + sorted(FIXTURES.glob("*.h5")) + [weights_only]

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if "no model config" in r.getMessage()]

    for path in paths:
        caplog.clear()
        full = lstmconv.read(path)
        expected = warned()
        caplog.clear()
        header = lstmconv.read(path, header_only=True)
        assert warned() == expected, path.name  # once each, not once more from the child
        assert _summary(header) == _summary(full), path.name
        for ours, theirs in zip(header, full, strict=True):
            for cell, other in zip(ours.cells, theirs.cells, strict=True):
                assert [(n, a.shape, a.dtype) for n, a in cell.tensors()] == [
                    (n, a.shape, a.dtype) for n, a in other.tensors()
                ]
                assert all(not a.any() and not any(a.strides) for _, a in cell.tensors())  # one zero each
        config_less = path.name.endswith("weights_only.h5") or path.name == "keras22_weights_flat.h5"
        assert len(expected) == (
            2 if config_less or path == weights_only else 0
        )  # a CuDNN layer assumes nothing
