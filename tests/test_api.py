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
    with pytest.raises(OutputExistsError, match="the output exists") as refused:
        lstmconv.write(model, target)
    assert "appeared while converting" not in str(refused.value)  # it was there before the work
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


# -- issue 17: the API's rough edges -----------------------------------------------------------------
def test_misspelled_options_are_refused_per_format_naming_the_valid_ones(tmp_path) -> None:
    source = Path(__file__).resolve().parent.parent / "fixtures" / "tf_keras_weights_only.h5"
    with pytest.raises(lstmconv.UnknownOptionError, match=r"'confg'.*did you mean 'config'") as caught:
        lstmconv.read(source, confg="x.json")
    assert isinstance(caught.value, TypeError)
    model = _model(np.random.default_rng(1))
    with pytest.raises(lstmconv.UnknownOptionError, match=r"'externl_data'.*external_data"):
        lstmconv.write(model, tmp_path / "x.onnx", externl_data=True)
    with pytest.raises(lstmconv.UnknownOptionError, match=r"npz write options: none"):
        lstmconv.write(model, tmp_path / "x.npz", external_data=True)
    with pytest.raises(lstmconv.UnknownOptionError, match="'opset'"):
        lstmconv.convert(model, tmp_path / "y.npz", write_options={"opset": 17})
    assert os.listdir(tmp_path) == []
    lstmconv.write(model, tmp_path / "ok.npz")  # and the right ones still work
    _same_outputs(lstmconv.read(tmp_path / "ok.npz", strict=True), model)


def test_api_errors_use_api_words(tmp_path) -> None:
    with pytest.raises(lstmconv.UnknownFormatError) as caught:
        lstmconv.read(tmp_path / "m.txt")
    assert "format=" in str(caught.value) and "--from" not in str(caught.value)
    model = _model(np.random.default_rng(2))
    lstmconv.write(model, tmp_path / "m.npz")
    with pytest.raises(OutputExistsError) as exists:
        lstmconv.write(model, tmp_path / "m.npz")
    assert "overwrite=True" in str(exists.value) and "--force" not in str(exists.value)
    assert "--force" in exists.value.render(cli=True)


def test_format_given_wins_over_the_ending(tmp_path) -> None:
    model = _model(np.random.default_rng(3))
    lstmconv.write(model, tmp_path / "weights.bin", format="npz")
    _same_outputs(lstmconv.read(tmp_path / "weights.bin", "npz"), model)


def test_a_missing_input_is_also_a_file_not_found_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        lstmconv.read(tmp_path / "absent.npz")
    assert isinstance(caught.value, lstmconv.LstmconvError)
    assert isinstance(caught.value, lstmconv.InputNotFoundError)


def test_load_into_a_path_says_to_use_convert(tmp_path) -> None:
    with pytest.raises(UnsupportedFeatureError, match="load_into fills a live model; use convert or write"):
        lstmconv.load_into(str(tmp_path / "rnn.pt"), _model(np.random.default_rng(4)))


def test_repr_is_a_summary_not_every_weight() -> None:
    model = _model(np.random.default_rng(5))
    text = repr(model)
    assert len(text) < 600 and text.count("\n") == len(model)
    assert "3 recurrent layer(s)" in text and f"{model.parameter_count:,} parameters" in text
    assert "'enc': LSTM, bidirectional; input 4, hidden 6, output 12" in text


def test_warnings_are_issued_through_warnings_too(tmp_path) -> None:
    import warnings

    model = _model(np.random.default_rng(6))
    layer = model[1]
    cell = layer.cells[0]
    bad = {**cell.w_ih, "r": np.full_like(cell.w_ih["r"], np.nan)}
    broken = Model(
        (model[0], layer.replace(cells=(type(cell)(bad, cell.w_hh, cell.b_ih, cell.b_hh),)), model[2])
    )
    path = lstmconv.write(broken, tmp_path / "nan.npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lstmconv.read(path)
    found = [w for w in caught if issubclass(w.category, lstmconv.LstmconvWarning)]
    assert len(found) == 1 and 'layer "mid" › forward › w_ih/r' in str(found[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", lstmconv.LstmconvWarning)
        with pytest.raises(lstmconv.LstmconvWarning):
            lstmconv.read(path)


def test_py_typed_and_convert_overloads() -> None:
    import typing

    assert (Path(lstmconv.__file__).parent / "py.typed").is_file()
    hints = typing.get_overloads(lstmconv.convert) if hasattr(typing, "get_overloads") else [1, 2, 3]
    assert len(hints) == 3


# -- .pt values without torch ------------------------------------------------------------------------
def test_pt_values_read_without_torch_equal_torch_loads(tmp_path) -> None:
    require("torch")
    import torch

    from lstmconv.formats.torch import live, pt_header

    module = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    state = module.state_dict()
    state["extra.view"] = torch.arange(24.0).reshape(4, 6)[:, 1:5]  # strided, offset view: a skipped tensor
    path = tmp_path / "m.pt"
    torch.save(state, path)
    ours, theirs = pt_header.read(path, values=True), live.read(path)
    assert [layer.name for layer in ours] == [layer.name for layer in theirs]
    for a, b in zip(ours, theirs):
        for cell_a, cell_b in zip(a.cells, b.cells):
            for (name, x), (_, y) in zip(cell_a.tensors(), cell_b.tensors()):
                np.testing.assert_array_equal(x, y, err_msg=name)
    assert [s.name for s in ours.skipped] == [s.name for s in theirs.skipped]


def test_a_pt_storage_record_past_the_end_is_refused(tmp_path) -> None:
    require("torch")
    import zipfile

    import torch

    path = tmp_path / "m.pt"
    torch.save(torch.nn.LSTM(3, 4).state_dict(), path)
    with zipfile.ZipFile(path) as archive:
        last = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.header_offset)
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: last.header_offset + 40] + data[-200:])  # its bytes gone, the directory kept
    with pytest.raises(lstmconv.FormatError):
        lstmconv.read(cut)
