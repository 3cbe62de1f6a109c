"""How weights are stored: ONNX external data (models beyond protobuf's 2 GiB)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from helpers import random_layer

import lstmconv
from lstmconv import Direction, Kind, Model, OutputExistsError

ATOL = 2e-5


def _model(seed: int) -> Model:
    rng = np.random.default_rng(seed)
    return Model(
        (
            random_layer(rng, Kind.LSTM, 4, 6, direction=Direction.BIDIRECTIONAL, peephole=True, name="enc"),
            dataclasses.replace(random_layer(rng, Kind.GRU, 12, 5, name="dec"), reset_after=False),
        )
    )


def _exactly_equal(a: Model, b: Model) -> None:
    for before, after in zip(a, b, strict=True):
        for cell_a, cell_b in zip(before.cells, after.cells, strict=True):
            for (name_a, x), (name_b, y) in zip(cell_a.tensors(), cell_b.tensors(), strict=True):
                assert name_a == name_b and x.dtype == y.dtype and np.array_equal(x, y), name_a


def test_external_data_is_written_beside_the_model_and_runs(tmp_path, ort) -> None:
    import onnx

    model = _model(0)
    path = lstmconv.write(model, tmp_path / "m.onnx", external_data=True)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "m.onnx.data"]
    assert os.path.getsize(tmp_path / "m.onnx") < 4096  # only the graph: the weights are outside
    proto = onnx.load(path, load_external_data=False)
    weights = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert {t.name for t in weights} == {"enc.W", "enc.R", "enc.B", "enc.P", "dec.W", "dec.R", "dec.B"}
    for tensor in weights:
        info = {entry.key: entry.value for entry in tensor.external_data}
        assert info["location"] == "m.onnx.data" and int(info["offset"]) % 4096 == 0
    onnx.checker.check_model(path)
    _exactly_equal(model, lstmconv.read(path))
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).uniform(-1, 1, (3, 7, 4)).astype(np.float32)
    np.testing.assert_allclose(
        session.run(None, {"input": x})[0], lstmconv.reference.run(model, x), rtol=0, atol=ATOL
    )


def test_models_past_the_protobuf_limit_get_external_data(tmp_path, monkeypatch, ort) -> None:
    from lstmconv.formats.onnx import wire

    small = lstmconv.write(_model(2), tmp_path / "small.onnx")
    assert not os.path.exists(f"{small}.data")
    monkeypatch.setattr(wire, "EXTERNAL_THRESHOLD", 1000)  # stands in for 2 GiB
    source = lstmconv.write(_model(2), tmp_path / "m.npz")
    report = lstmconv.convert(source, tmp_path / "big.onnx")
    assert report is not None and report.ok
    assert any("written file" in comparison.left for comparison in report.comparisons)
    assert sorted(os.listdir(tmp_path)) == ["big.onnx", "big.onnx.data", "m.npz", "small.onnx"]
    _exactly_equal(lstmconv.read(source), lstmconv.read(tmp_path / "big.onnx"))


def test_existing_external_data_is_kept_unless_overwrite(tmp_path) -> None:
    data = tmp_path / "m.onnx.data"
    data.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=r"m\.onnx\.data: the output exists"):
        lstmconv.write(_model(3), tmp_path / "m.onnx", external_data=True)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx.data"] and data.read_bytes() == b"precious"
    lstmconv.write(_model(3), tmp_path / "m.onnx", external_data=True, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "m.onnx.data"]
    _exactly_equal(_model(3), lstmconv.read(tmp_path / "m.onnx"))
