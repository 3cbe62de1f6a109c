"""Broken and hostile inputs (tests/corpus.py): each case fails with its error class and
message, exits 2 from the CLI with one line and no traceback, leaves no output behind, touches
no file, and never runs a payload."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from corpus import MARKER, all_cases

import lstmconv
from lstmconv import errors
from lstmconv.cli import main
from lstmconv.errors import printable

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


@pytest.fixture(autouse=True)
def _bounded_time():
    """Each case is read in bounded time: a walk of shared objects twice, or a quadratic check,
    fails here instead of hanging the suite."""
    import signal

    def overrun(signum, frame):
        raise AssertionError("took longer than 120 s")

    previous = signal.signal(signal.SIGALRM, overrun)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


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
    assert printable(str(path)) in str(raised.value)  # names the file (escaped, as every name)
    assert "\n" not in str(raised.value) and "\x1b" not in str(raised.value)
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
    if case.secret:  # bytes of a file outside the model reach neither an output nor the message
        assert case.secret[:16] not in err.encode()
        assert not [p for p in out.rglob("*") if p.is_file() and case.secret[:16] in p.read_bytes()]


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


class _WaitsForItsThreads:
    """Stands for an object whose destruction waits for threads a forked child does not have
    (an onnxruntime session): destroying it in the child would hang."""

    def __del__(self) -> None:
        import time

        time.sleep(60)


def _allocates() -> int:
    return len([[index] for index in range(20_000)])  # enough to set off a collection


def test_forked_look_never_collects_the_parents_garbage() -> None:
    import gc
    import time

    from lstmconv.formats import forked

    gc.collect()
    gc.disable()  # the cycle stays garbage until the child
    try:
        cycle = [_WaitsForItsThreads()]
        cycle.append(cycle)  # type: ignore[arg-type]
        del cycle
        started = time.monotonic()
        gc.enable()  # as in any process: the child would collect once it allocates enough
        answer = forked.look(_allocates, 5, "a test")
        assert answer is not None and answer.value == 20_000
        assert time.monotonic() - started < 5
    finally:
        gc.callbacks.append(_never_wait)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(_never_wait)


def _never_wait(phase: str, info: dict) -> None:
    """The parent collects the cycle after the test: its object must not wait there either."""
    _WaitsForItsThreads.__del__ = lambda self: None  # type: ignore[method-assign]


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


def test_the_full_hdf5_read_runs_under_the_time_limit_too(monkeypatch) -> None:
    """Not only the structure: the values are read by a child under the limit as well (into
    memory shared with the parent), so a dataset whose read hangs costs a child."""
    import time

    from lstmconv.formats.keras import hdf5

    reading = hdf5.H5.dataset

    def hangs_when_reading_values(self, group, key, where):
        if self.into is not None:
            time.sleep(60)
        return reading(self, group, key, where)

    monkeypatch.setattr(hdf5.H5, "dataset", hangs_when_reading_values)
    monkeypatch.setenv("LSTMCONV_HDF5_SECONDS", "1")
    started = time.monotonic()
    with pytest.raises(errors.FormatError, match=r"reading the file's HDF5 datasets did not finish in 1 s"):
        lstmconv.read(Path(__file__).parent.parent / "fixtures" / "tf_keras_hard_sigmoid.h5")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf"])
def test_a_bad_time_limit_is_a_usage_error_naming_the_variable(value, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LSTMCONV_HDF5_SECONDS", value)
    fixture = Path(__file__).parent.parent / "fixtures" / "tf_keras_hard_sigmoid.h5"
    assert main(["inspect", str(fixture)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmconv: error: LSTMCONV_HDF5_SECONDS must be a positive number"), err
    assert str(fixture) not in err and err.count("\n") == 1


def test_the_forked_child_dies_with_its_parent(tmp_path) -> None:
    """SIGTERM to a process waiting on its HDF5 child must not leave the child running."""
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "child.pid"
    script = (
        "import os, time\n"
        "from lstmconv.formats import forked\n"
        "def task():\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "forked.look(task, 120, 'a test')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGTERM)
        parent.wait(10)
    finally:
        parent.kill()

    def running(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state != "Z"

    deadline = time.monotonic() + 10
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(child), "the child outlived its parent"


# -- the output side: no clobber, no leftovers, nothing outside the output paths -----------------------
FIXTURE_NPZ = Path(__file__).parent.parent / "fixtures" / "lstmconv_npz.npz"


def _staging_left(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_a_dst_that_appears_meanwhile_is_not_replaced(tmp_path, monkeypatch) -> None:
    """Checked before the work and refused at publication too: a file created at DST during the
    conversion (another conversion finishing first) survives, and the loser says so."""
    from lstmconv import api

    dest = tmp_path / "out.npz"
    checking = api._staged_write

    def someone_else_writes_first(model, fmt, target, overwrite, options, check, step=lambda _p: None):
        def check_then_race(temporary: str) -> None:
            check(temporary)
            dest.write_bytes(b"the other conversion's")

        return checking(model, fmt, target, overwrite, options, check_then_race, step)

    monkeypatch.setattr(api, "_staged_write", someone_else_writes_first)
    with pytest.raises(errors.OutputExistsError, match="appeared while converting"):
        lstmconv.convert(FIXTURE_NPZ, dest, verify=False)
    assert dest.read_bytes() == b"the other conversion's"
    assert _staging_left(tmp_path) == []


def test_a_dangling_symlink_at_dst_is_kept_without_force(tmp_path) -> None:
    dest = tmp_path / "out.npz"
    dest.symlink_to(tmp_path / "nowhere")
    with pytest.raises(errors.OutputExistsError):
        lstmconv.convert(FIXTURE_NPZ, dest, verify=False)
    assert dest.is_symlink() and not (tmp_path / "nowhere").exists()
    lstmconv.convert(FIXTURE_NPZ, dest, verify=False, overwrite=True)
    assert not dest.is_symlink() and lstmconv.read(dest).layers


def test_a_directory_at_dst_is_refused_even_with_force_and_leaves_no_data(tmp_path, capsys) -> None:
    require("onnx")
    dest = tmp_path / "out.onnx"
    dest.mkdir()
    status = main(["convert", str(FIXTURE_NPZ), str(dest), "--force", "--external-data", "--no-verify"])
    err = capsys.readouterr().err
    assert status == 2 and "the output is a directory" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]
    assert list(dest.iterdir()) == []


def test_a_long_valid_dst_name_works(tmp_path) -> None:
    dest = tmp_path / ("m" * (255 - len(".npz")) + ".npz")
    lstmconv.convert(FIXTURE_NPZ, dest, verify=False)
    assert lstmconv.read(dest).layers and _staging_left(tmp_path) == []


def test_disk_full_is_a_clean_error_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    import errno

    from lstmconv.formats import npz

    def full(model, path, **_):
        with open(path, "wb") as handle:
            handle.write(b"half a model")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(npz, "write", full)
    with pytest.raises(lstmconv.LstmconvError, match="writing the output failed: No space left on device"):
        lstmconv.convert(FIXTURE_NPZ, tmp_path / "out.npz", verify=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_remove_the_staging_folder(tmp_path, signame) -> None:
    """The signal arrives while the output is being written: the process ends, the staging
    folder goes with it, DST never appears."""
    import signal
    import subprocess
    import sys
    import time

    started = tmp_path / "writing"
    script = (
        "import time, pathlib, lstmconv\n"
        "from lstmconv.formats import npz\n"
        "real = npz.write\n"
        "def slow(model, path, **options):\n"
        "    real(model, path, **options)\n"
        f"    pathlib.Path({str(started)!r}).write_text(path)\n"
        "    time.sleep(60)\n"
        "npz.write = slow\n"
        f"lstmconv.convert({str(FIXTURE_NPZ)!r}, {str(tmp_path / 'out.npz')!r}, verify=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Path(started.read_text()).exists()  # the staged file, mid-conversion
        process.send_signal(getattr(signal, signame))
        process.wait(20)
    finally:
        process.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["writing"]


def test_convert_with_verification_touches_nothing_outside_the_output(tmp_path) -> None:
    """$HOME and $TMPDIR (fresh folders, in a subprocess) hold nothing new after converting to
    each framework's format with verification: no keras.json, no telemetry, no caches."""
    import subprocess
    import sys

    for module in ("keras", "torch", "onnx", "onnxruntime"):
        require(module)
    home, tmp, out = tmp_path / "home", tmp_path / "tmp", tmp_path / "out"
    for folder in (home, tmp, out):
        folder.mkdir()
    script = (
        "import lstmconv\n"
        f"for ending in ('keras', 'pt', 'onnx'):\n"
        f"    lstmconv.convert({str(FIXTURE_NPZ)!r}, {str(out)!r} + '/m.' + ending)\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KERAS_", "XDG_", "TORCH", "TF_"))
        or key in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")
    }
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(Path(__file__).parent.parent))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["m.keras", "m.onnx", "m.pt"]
    assert [str(p) for p in home.rglob("*")] == [] and [str(p) for p in tmp.rglob("*")] == []


def test_warnings_and_the_wrote_line_escape_names(tmp_path) -> None:
    """A warning naming a layer whose name holds a newline and escapes stays one line; so does
    the "wrote" line for a DST whose name does."""
    require("onnx")
    from corpus import FORGED, _lstm_node, _onnx_model, _save_onnx, _set_initializer

    model = _onnx_model()
    node = _lstm_node(model)
    node.name = FORGED
    _set_initializer(lambda m: _lstm_node(m).input[1], np.full((2, 24, 4), np.nan, "f4"))(model)
    source = _save_onnx(model, tmp_path)
    dest = tmp_path / "out\nlstmconv: wrote forged\x1b[2J.npz"
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    command = [sys.executable, "-m", "lstmconv", "convert", str(source), str(dest), "--no-verify"]
    captured = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert captured.returncode == 0, captured.stderr
    assert captured.stderr.count("\n") == 1 and "NaN or infinite" in captured.stderr, captured.stderr
    assert "\x1b" not in captured.stderr + captured.stdout and "evil\\nlstmconv" in captured.stderr
    assert captured.stdout.count("\n") == 1 and captured.stdout.startswith("wrote "), captured.stdout
    assert dest.exists()


def test_the_reference_safetensors_library_refuses_the_same_headers(tmp_path) -> None:
    """The header cases lstmconv refuses as the safetensors library does (UTF-16, gaps, numbers
    as strings, data no tensor covers): the library itself refuses each file too."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from corpus import REFERENCE_REFUSES

    chosen = [case for case in CASES if case.name.startswith(REFERENCE_REFUSES)]
    assert len(chosen) >= 4
    for index, case in enumerate(chosen):
        folder = tmp_path / str(index)
        folder.mkdir()
        with pytest.raises(Exception, match="deserializing header"):
            safetensors_numpy.load_file(str(case.build(folder)))
