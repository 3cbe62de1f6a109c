"""Model files as they are found (issue 14): Keras 2.0-2.2 layouts, CuDNN layers, LSTM
subclasses, PyTorch cells, TorchScript archives, multi-layer modules written back under their
own names. Fixtures: scripts/make_found_fixtures.py (numbers checked in tests/test_files.py
against the framework's own outputs; here, what each kind must also get right)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

import lstmconv
from lstmconv.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ATOL = 2e-5


def _io(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(FIXTURES / MANIFEST[name]["io"]) as data:
        return data["x"], data["y"]


def _fixture(name: str) -> Path:
    return FIXTURES / MANIFEST[name]["file"]


# -- Keras 2.0-2.2 ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "layers"),
    [
        ("keras22_weights_flat", ["lstm_1", "gru_1"]),
        ("keras21_sequential_list", ["lstm_1", "bidirectional_1"]),
        ("keras2_cudnn", ["cu_dnn_lstm_1", "cu_dnn_gru_1"]),
        ("keras2_cudnn_weights", ["cu_dnn_lstm_1", "cu_dnn_gru_1"]),
    ],
)
def test_keras2_layouts_read_and_inspect_names_every_layer(name, layers, capsys) -> None:
    model = lstmconv.read(_fixture(name))
    assert [layer.name for layer in model] == layers
    x, y = _io(name)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=ATOL)
    assert main(["inspect", str(_fixture(name))]) == 0
    out = capsys.readouterr().out
    assert all(layer in out for layer in layers)


def test_keras22_weights_only_takes_keras22_defaults(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        model = lstmconv.read(_fixture("keras22_weights_flat"))
    assert model["lstm_1"].activations[0] == lstmconv.Activation("hard_sigmoid", 0.2, 0.5)
    assert not model["gru_1"].reset_after  # Keras <= 2.2 had only the reset-before GRU
    assert "default activations of Keras <= 2.2" in caplog.text


def test_keras21_list_config_gives_names_merge_and_links() -> None:
    model = lstmconv.read(_fixture("keras21_sequential_list"))
    assert model["bidirectional_1"].direction is lstmconv.Direction.BIDIRECTIONAL
    assert model["lstm_1"].activations[0] == lstmconv.Activation("sigmoid")
    assert model.links == (("lstm_1", "bidirectional_1"),)


def test_cudnn_lstm_keeps_both_biases_and_gru_is_reset_after() -> None:
    model = lstmconv.read(_fixture("keras2_cudnn"))
    lstm, gru = model["cu_dnn_lstm_1"], model["cu_dnn_gru_1"]
    with h5py.File(_fixture("keras2_cudnn")) as handle:
        bias = handle["model_weights/cu_dnn_lstm_1/cu_dnn_lstm_1/bias:0"][()]
        kernel = handle["model_weights/cu_dnn_lstm_1/cu_dnn_lstm_1/kernel:0"][()]
    hidden = 5
    for index, gate in enumerate("ifgo"):  # [input i f c o ; recurrent i f c o], kept apart
        np.testing.assert_array_equal(lstm.cells[0].b_ih[gate], bias[index * hidden : (index + 1) * hidden])
        np.testing.assert_array_equal(
            lstm.cells[0].b_hh[gate], bias[(4 + index) * hidden : (5 + index) * hidden]
        )
    # the input block of gate i is cuDNN's (H, I) row-major matrix, stored as (I, H)
    np.testing.assert_array_equal(lstm.cells[0].w_ih["i"], kernel[:, :hidden].reshape(hidden, 4))
    assert gru.reset_after and gru.activations[0] == lstmconv.Activation("sigmoid")


def test_cudnn_bias_of_the_wrong_size_is_one_clear_error(tmp_path) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(_fixture("keras2_cudnn")) as source, h5py.File(path, "w") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value
        source.copy("model_weights", target)
        del target["model_weights/cu_dnn_lstm_1/cu_dnn_lstm_1/bias:0"]
        target["model_weights/cu_dnn_lstm_1/cu_dnn_lstm_1/bias:0"] = np.zeros(20, "float32")
    with pytest.raises(lstmconv.LstmconvError, match=r'layer "cu_dnn_lstm_1".*cuDNN bias \(40,\)'):
        lstmconv.read(path)
