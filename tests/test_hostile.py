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
