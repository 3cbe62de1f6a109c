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


# -- a subclass of LSTM saved under its own class name ---------------------------------------------
@pytest.mark.parametrize("name", ["tf_keras_lstm_subclass", "keras3_lstm_subclass"])
def test_lstm_subclass_reads_as_lstm_with_a_warning_naming_the_class(name, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        model = lstmconv.read(_fixture(name))
    assert [(layer.name, layer.kind) for layer in model] == [("my_lstm", lstmconv.Kind.LSTM)]
    x, y = _io(name)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=ATOL)
    assert (
        'layer "my_lstm" of class found>MyLSTM read as LSTM: its config and weights are an LSTM\'s; '
        "if its call() computes otherwise, the conversion is wrong"
    ) in caplog.text


def _edit_h5_config(source: Path, target: Path, edit) -> None:
    with h5py.File(source) as old, h5py.File(target, "w") as new:
        for key, value in old.attrs.items():
            new.attrs[key] = value
        old.copy("model_weights", new)
        config = json.loads(new.attrs["model_config"])
        edit(config, new)
        new.attrs["model_config"] = json.dumps(config)


def test_lstm_subclass_with_an_option_of_its_own_is_refused(tmp_path) -> None:
    path = tmp_path / "own_option.h5"
    _edit_h5_config(
        _fixture("tf_keras_lstm_subclass"),
        path,
        lambda config, _: config["config"]["layers"][1]["config"].update(clip=0.1),
    )
    with pytest.raises(lstmconv.UnsupportedFeatureError, match=r'layer "my_lstm".*class found>MyLSTM'):
        lstmconv.read(path)


def test_lstm_subclass_with_a_weight_of_its_own_is_refused(tmp_path) -> None:
    path = tmp_path / "own_weight.h5"

    def add_weight(_config, handle) -> None:
        group = handle["model_weights/my_lstm"]
        names = [n if isinstance(n, bytes) else str(n).encode() for n in group.attrs["weight_names"]]
        names.append(b"my_lstm/scale:0")
        group.attrs["weight_names"] = names
        group["my_lstm/scale:0"] = np.ones(5, "float32")

    _edit_h5_config(_fixture("tf_keras_lstm_subclass"), path, add_weight)
    with pytest.raises(lstmconv.UnsupportedFeatureError, match=r"class found>MyLSTM.*holds .*scale"):
        lstmconv.read(path)


def test_lstm_subclass_with_strict_is_refused() -> None:
    with pytest.raises(lstmconv.UnsupportedFeatureError, match=r"class found>MyLSTM.*drop --strict"):
        lstmconv.read(_fixture("keras3_lstm_subclass"), strict=True)
