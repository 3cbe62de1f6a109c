"""Keras models exported by the real tf2onnx (scripts/make_tf2onnx_cases.py): each either
reads and matches Keras's own outputs, converting verified against the original graph run by
onnxruntime, or is refused with a message that names the layer and says why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require

import lstmconv
from lstmconv import verification

FOLDER = Path(__file__).parent.parent / "fixtures" / "tf2onnx"
CASES = json.loads((FOLDER / "cases.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_tf2onnx_export_is_read_exactly_or_refused(name, tmp_path):
    case = CASES[name]
    path = FOLDER / case["file"]
    if case["expect"] == "refuse":
        with pytest.raises(lstmconv.LstmconvError, match=case["message"]):
            lstmconv.read(path)
        with pytest.raises(lstmconv.LstmconvError, match=case["message"]):
            lstmconv.convert(path, tmp_path / "out.npz")
        assert list(tmp_path.iterdir()) == []
        return
    with np.load(FOLDER / case["io"]) as data:
        x, y = data["x"], data["y"]
    model = lstmconv.read(path)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=2e-6)
    require("onnxruntime")
    report = lstmconv.convert(path, tmp_path / "out.onnx")
    assert report is not None and report.ok
    assert report.sides[0] == verification.Side("source", "onnxruntime", "original file")


def test_the_cases_are_what_their_names_say():
    assert {CASES[n]["expect"] for n in ("bidir_ave", "go_backwards")} == {"match"}
    assert "ReverseSequence" in CASES["go_backwards"]["ops"] and "Mul" in CASES["bidir_ave"]["ops"]
    assert "Loop" in CASES["masking"]["ops"]
