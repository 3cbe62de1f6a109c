"""``lstmconv convert SRC... --out-dir DIR --to FORMAT``: every file converted and verified in
one process, the failures reported without stopping the rest, the exit status saying the worst."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import random_layer

import lstmconv
from lstmconv import Kind, Model
from lstmconv.cli import main


def _sources(folder: Path, count: int = 4) -> list[Path]:
    folder.mkdir()
    paths = []
    for index in range(count):
        rng = np.random.default_rng(index)
        model = Model((random_layer(rng, Kind.LSTM, 3, 5, name="lstm"), random_layer(rng, Kind.GRU, 5, 4)))
        paths.append(Path(lstmconv.write(model, folder / f"m{index}.npz")))
    return paths


def _same(a: Path, b: Path) -> None:
    x = np.random.default_rng(7).uniform(-1, 1, (2, 4, 3))
    ra, rb = (lstmconv.reference.run(lstmconv.read(p), x) for p in (a, b))
    np.testing.assert_allclose(ra, rb, rtol=0, atol=2e-5)


def test_a_folder_is_converted_file_by_file_and_verified(tmp_path, capsys) -> None:
    sources = _sources(tmp_path / "in")
    (tmp_path / "in" / "notes.txt").write_text("not a model")  # not a readable ending: left alone
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert", str(tmp_path / "in"), "--out-dir", str(out), "--to", "safetensors"]) == 0
    text = capsys.readouterr().out
    assert sorted(os.listdir(out)) == [f"m{i}.safetensors" for i in range(4)]
    for source in sources:
        _same(source, out / (source.stem + ".safetensors"))
    assert text.rstrip().endswith("4 ok of 4") and text.count("  ok  ") == 4


def test_json_has_one_record_per_file_with_its_report(tmp_path, capsys) -> None:
    sources = _sources(tmp_path / "in", 3)
    out = tmp_path / "out"
    out.mkdir()
    args = ["convert", *map(str, sources), "--out-dir", str(out), "--to", "npz", "--json"]
    assert main(args) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["source"] for r in records] == [str(s) for s in sources]
    assert all(r["status"] == "ok" and r["verification"]["ok"] for r in records)
    assert all(len(r["verification"]["layers"]) == 2 for r in records)
    assert all(r["verification"]["max_abs"] <= 1e-6 for r in records)


def test_a_quoted_glob_is_expanded_and_existing_outputs_are_skipped_unless_force(tmp_path, capsys) -> None:
    sources = _sources(tmp_path / "in", 3)
    out = tmp_path / "out"
    out.mkdir()
    kept = out / "m1.npz"
    kept.write_bytes(b"keep me")
    pattern = str(tmp_path / "in" / "m*.npz")
    assert main(["convert", pattern, "--out-dir", str(out), "--to", "npz", "--json"]) == 0
    statuses = [r["status"] for r in json.loads(capsys.readouterr().out)]
    assert statuses == ["ok", "skipped", "ok"] and kept.read_bytes() == b"keep me"
    assert main(["convert", pattern, "--out-dir", str(out), "--to", "npz", "--force", "-q"]) == 0
    _same(sources[1], kept)


def test_a_broken_file_fails_alone_and_the_exit_status_says_so(tmp_path, capsys) -> None:
    sources = _sources(tmp_path / "in", 3)
    sources[1].write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert", str(tmp_path / "in"), "--out-dir", str(out), "--to", "npz"]) == 2
    text = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["m0.npz", "m2.npz"]
    assert "m1.npz: " in text and "2 ok, 1 error of 3" in text


def test_a_disagreeing_file_exits_1_and_the_rest_are_converted(tmp_path, capsys, monkeypatch) -> None:
    from lstmconv.formats import npz

    sources = _sources(tmp_path / "in", 3)
    real = npz.arrays

    def tampered(model):  # only the model read from m2 is written wrongly
        arrays = real(model)
        if model.source.endswith("m2.npz"):
            key = next(k for k in arrays if k.endswith("/w_ih/i"))
            arrays[key] = arrays[key] + np.float32(0.01)
        return arrays

    monkeypatch.setattr(npz, "arrays", tampered)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert", *map(str, sources), "--out-dir", str(out), "--to", "npz", "--json"]) == 1
    records = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in records] == ["ok", "ok", "disagree"]
    assert records[2]["verification"]["ok"] is False and records[2]["verification"]["max_abs"] > 1e-3
    assert sorted(os.listdir(out)) == ["m0.npz", "m1.npz"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [([], "needs --to FORMAT"), (["--to", "npz", "--out-dir", "/nonexistent-17"], "does not exist")],
)
def test_batch_refusals(tmp_path, capsys, extra, message) -> None:
    sources = _sources(tmp_path / "in", 1)
    args = ["convert", str(sources[0]), *extra]
    if "--out-dir" not in extra:
        args += ["--out-dir", str(tmp_path)]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_three_paths_without_out_dir_is_bad_usage(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["convert", "a.npz", "b.npz", "c.npz"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "--out-dir" in err


def test_the_progress_line_counts_the_batch_on_a_terminal(tmp_path) -> None:
    import pty
    import subprocess
    import sys
    import threading

    sources = _sources(tmp_path / "in", 3)
    out = tmp_path / "out"
    out.mkdir()
    primary, secondary = pty.openpty()
    code = "import sys\nfrom lstmconv.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    args = ["convert", *map(str, sources), "--out-dir", str(out), "--to", "npz"]
    shown = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    result = subprocess.run(
        [sys.executable, "-c", code, *args], stderr=secondary, stdout=subprocess.PIPE, timeout=300
    )
    os.close(secondary)
    reader.join(timeout=10)
    os.close(primary)
    assert result.returncode == 0
    assert b"3/3 converted" in shown and b"1/3 converted" in shown, bytes(shown)
    assert result.stdout.decode().rstrip().endswith("3 ok of 3")
