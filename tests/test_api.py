"""read / write / convert / verify on files: round trips, atomic writes, refusals."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from helpers import random_layer
from natives import FILES, writable

import lstmconv
from lstmconv import (
    Direction,
    Kind,
    Model,
    OutputExistsError,
    UnsupportedFeatureError,
    registry,
    verification,
)

ATOL = 2e-5


def _model(rng: np.random.Generator) -> Model:
    return Model(
        (
            random_layer(rng, Kind.LSTM, 4, 6, direction=Direction.BIDIRECTIONAL, name="enc"),
            random_layer(rng, Kind.GRU, 12, 5, name="mid"),
            random_layer(rng, Kind.RNN, 5, 3, name="out", activations=(lstmconv.Activation("relu"),)),
        )
    )


def _same_outputs(a: Model, b: Model) -> None:
    x = np.random.default_rng(9).uniform(-1, 1, (2, 5, a.input_size))
    np.testing.assert_allclose(lstmconv.reference.run(a, x), lstmconv.reference.run(b, x), rtol=0, atol=ATOL)


def _writer_installed(name: str) -> str:
    """The format's test ending, with what writing it needs imported (or skipped, or failed in CI)."""
    for module in registry.by_name(name).writer_needs:
        require(module)
    ending = FILES[name].ending
    assert ending is not None
    return ending


@pytest.mark.parametrize("name", writable())
def test_write_then_read_computes_the_same(tmp_path, name: str) -> None:
    ending = _writer_installed(name)
    model = _model(np.random.default_rng(0))
    path = lstmconv.write(model, tmp_path / f"m{ending}")
    again = lstmconv.read(path)
    assert [layer.kind for layer in again] == [layer.kind for layer in model]
    _same_outputs(model, again)
    assert os.listdir(tmp_path) == [f"m{ending}"]


def test_npz_round_trip_is_exact_and_keeps_names(tmp_path) -> None:
    model = _model(np.random.default_rng(1))
    again = lstmconv.read(lstmconv.write(model, tmp_path / "m.npz"))
    assert [layer.name for layer in again] == ["enc", "mid", "out"]
    for before, after in zip(model, again):
        for cell_a, cell_b in zip(before.cells, after.cells):
            for (name_a, a), (name_b, b) in zip(cell_a.tensors(), cell_b.tensors()):
                assert name_a == name_b and np.array_equal(a, b)
    keys = set(np.load(tmp_path / "m.npz").files)
    assert "enc/backward/w_ih/g" in keys and "mid/forward/b_hh/n" in keys


def test_same_model_same_bytes(tmp_path) -> None:
    import time

    endings = [_writer_installed(name) for name in writable()]
    model = _model(np.random.default_rng(2))
    first = [lstmconv.write(model, tmp_path / f"a{ending}") for ending in endings]
    time.sleep(1.1)  # a date written to the second would differ
    second = [lstmconv.write(model, tmp_path / f"b{ending}") for ending in endings]
    for ending, a, b in zip(endings, first, second, strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes(), ending


def test_existing_output_is_kept_unless_overwrite(tmp_path) -> None:
    model = _model(np.random.default_rng(3))
    target = tmp_path / "m.npz"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="the output exists"):
        lstmconv.write(model, target)
    assert target.read_bytes() == b"precious"
    lstmconv.write(model, target, overwrite=True)
    assert target.read_bytes() != b"precious"


def test_refused_write_leaves_no_file(tmp_path) -> None:
    layer = random_layer(np.random.default_rng(4), Kind.LSTM, peephole=True, name="peepy")
    with pytest.raises(UnsupportedFeatureError, match='layer "peepy": PyTorch cannot express peepholes'):
        lstmconv.write(Model((layer,)), tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []


def test_convert_verifies_before_keeping(tmp_path, ort) -> None:
    source = lstmconv.write(_model(np.random.default_rng(5)), tmp_path / "m.npz")
    report = lstmconv.convert(source, tmp_path / "m.onnx")
    assert report is not None and report.ok and report.max_error < 1e-5
    assert report.sides[1] == verification.Side("target", "onnxruntime", "written file")
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "m.onnx"]


def test_verify_catches_a_different_model(tmp_path) -> None:
    a = lstmconv.write(_model(np.random.default_rng(6)), tmp_path / "a.npz")
    b = lstmconv.write(_model(np.random.default_rng(7)), tmp_path / "b.npz")
    assert lstmconv.verify(a, a).ok
    report = lstmconv.verify(a, b)
    assert not report.ok and report.max_error > 1e-2


def test_import_loads_no_framework() -> None:
    heavy = "('tensorflow', 'keras', 'torch', 'onnxruntime', 'onnx')"
    code = f"import sys, lstmconv; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_verify_refuses_models_of_different_widths(tmp_path) -> None:
    rng = np.random.default_rng(8)
    a = lstmconv.write(Model((random_layer(rng, Kind.LSTM, 4, 6, name="x"),)), tmp_path / "a.npz")
    b = lstmconv.write(Model((random_layer(rng, Kind.LSTM, 5, 6, name="x"),)), tmp_path / "b.npz")
    with pytest.raises(
        lstmconv.WeightLayoutError, match=r"A's layers take and give \[\(4, 6\)\] features, B's \[\(5, 6\)\]"
    ):
        lstmconv.verify(a, b)


def test_an_output_folder_that_cannot_take_the_file_is_refused_before_reading(tmp_path) -> None:
    source = lstmconv.write(_model(np.random.default_rng(8)), tmp_path / "m.npz")
    with pytest.raises(lstmconv.LstmconvError, match="the output's folder does not exist"):
        lstmconv.convert(source, tmp_path / "missing" / "m.onnx")
    existing = tmp_path / "taken.onnx"
    existing.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        lstmconv.convert(tmp_path / "not-even-there.npz", existing)  # refused before the read fails
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "taken.onnx"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_finite_weights_whose_sum_overflows_are_not_called_infinite(dtype: str) -> None:
    import ml_dtypes

    from lstmconv import api, dtypes

    model = Model((random_layer(np.random.default_rng(3), Kind.LSTM, 3, 4),)).astype(dtype)
    cell = model[0].cells[0]
    huge = np.full_like(cell.w_ih["g"], ml_dtypes.finfo(dtypes.resolve(dtype)).max)  # finite; sums overflow
    cases = {
        "huge": (huge, False),
        "huge and -inf": (np.where(np.eye(*huge.shape, dtype=bool), -np.inf, huge).astype(huge.dtype), True),
        "one NaN": (np.where(np.eye(*huge.shape, dtype=bool), np.nan, 1).astype(huge.dtype), True),
    }
    for label, (values, bad) in cases.items():
        changed = model[0].replace(cells=(dataclasses.replace(cell, w_ih={**cell.w_ih, "g": values}),))
        if bad:
            with pytest.raises(lstmconv.WeightLayoutError, match=r"NaN or infinite weights in .* w_ih/g"):
                api._check_finite(Model((changed,), "m.npz"), strict=True)
        else:
            api._check_finite(Model((changed,), "m.npz"), strict=True)
        assert api._all_finite(values) is not bad, (dtype, label)
