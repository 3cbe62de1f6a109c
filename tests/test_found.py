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
def test_lstm_subclass_reads_as_lstm_with_a_warning_naming_the_class(name, caplog, capsys) -> None:
    with caplog.at_level(logging.WARNING):
        model = lstmconv.read(_fixture(name))
    assert [(layer.name, layer.kind) for layer in model] == [("my_lstm", lstmconv.Kind.LSTM)]
    x, y = _io(name)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=ATOL)
    assert (
        'layer "my_lstm" of class found>MyLSTM read as LSTM: its config and weights are an LSTM\'s; '
        "if its call() computes otherwise, the conversion is wrong"
    ) in caplog.text
    assert main(["inspect", str(_fixture(name))]) == 0
    assert 'layer "my_lstm": LSTM' in capsys.readouterr().out
    assert any(
        "of class found>MyLSTM read as LSTM" in w for w in lstmconv.inspect(_fixture(name))["warnings"]
    )


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


# -- PyTorch cells -----------------------------------------------------------------------------------
def _stepped(cell, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        state, outputs = None, []
        for step in range(x.shape[1]):
            state = cell(torch.from_numpy(x[:, step]), state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs, 1).numpy()


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell", "RNNCell"])
def test_torch_cell_state_dict_reads_as_a_stepped_layer(torch, cls, tmp_path, capsys) -> None:
    torch.manual_seed(3)
    cell = getattr(torch.nn, cls)(4, 5).eval()
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.uniform_(-0.6, 0.6)
    path = tmp_path / "cell.pt"
    torch.save({f"dec.cell.{key}": value for key, value in cell.state_dict().items()}, path)
    model = lstmconv.read(path)
    layer = model["dec.cell"]
    assert layer.stepped and layer.direction is lstmconv.Direction.FORWARD
    x = np.random.default_rng(4).uniform(-1.5, 1.5, (3, 7, 4)).astype("float32")
    np.testing.assert_allclose(lstmconv.reference.run(model, x), _stepped(cell, x), rtol=0, atol=ATOL)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"a single-step cell (nn.{cls}), read as stepped over time" in out
    assert "dec.cell.weight_ih  " in out and "_l0" not in out


def test_torch_cell_written_back_as_a_cell_loads_into_the_original(torch, tmp_path) -> None:
    source = _fixture("torch_lstm_cell")
    for ending in (".pt", ".safetensors"):
        dest = tmp_path / f"out{ending}"
        assert main(["convert", str(source), str(dest), "-q"]) == 0
        if ending == ".pt":
            state = torch.load(dest)
        else:
            from safetensors.torch import load_file

            state = load_file(dest)
        cell_keys = [f"decoder.cell.{k}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        assert sorted(state) == sorted([*cell_keys, "decoder.out.weight", "decoder.out.bias"])  # + its Linear
        cell = torch.nn.LSTMCell(4, 5)
        cell.load_state_dict({key.removeprefix("decoder.cell."): state[key] for key in cell_keys})
        x, y = _io("torch_lstm_cell")
        np.testing.assert_allclose(_stepped(cell.eval(), x), y, rtol=0, atol=ATOL)
        assert lstmconv.read(dest)["decoder.cell"].stepped


def test_as_cell_writes_a_layer_as_a_cell_and_refuses_what_a_cell_cannot_hold(
    torch, tmp_path, capsys
) -> None:
    torch.manual_seed(5)
    lstm = torch.nn.GRU(4, 3, batch_first=True)
    path = tmp_path / "gru.pt"
    torch.save({f"rnn.{k}": v for k, v in lstm.state_dict().items()}, path)
    dest = tmp_path / "cell.pt"
    assert main(["convert", str(path), str(dest), "--as-cell", "-q"]) == 0
    assert sorted(torch.load(dest)) == ["rnn.bias_hh", "rnn.bias_ih", "rnn.weight_hh", "rnn.weight_ih"]
    cell = torch.nn.GRUCell(4, 3)
    cell.load_state_dict({k.removeprefix("rnn."): v for k, v in torch.load(dest).items()})
    x = np.random.default_rng(6).uniform(-1, 1, (2, 5, 4)).astype("float32")
    with torch.no_grad():
        expected = lstm(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(_stepped(cell, x), expected, rtol=0, atol=ATOL)
    assert main(["convert", str(_fixture("torch_checkpoint")), str(tmp_path / "bi.pt"), "--as-cell"]) == 2
    assert "nn.LSTMCell cannot hold a bidirectional layer" in capsys.readouterr().err
    assert main(["convert", str(path), str(tmp_path / "x.onnx"), "--as-cell"]) == 2
    assert "--as-cell is for PyTorch outputs" in capsys.readouterr().err


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell", "RNNCell"])
def test_live_cell_module_is_read_and_verified_as_the_cell_itself(torch, cls, tmp_path) -> None:
    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = getattr(torch.nn, cls)(4, 3)

    module = Decoder().eval()
    model = lstmconv.read(module)
    assert [(layer.name, layer.stepped) for layer in model] == [("cell", True)]
    from lstmconv.formats.torch import live

    framework, runners, _whole = live.layer_runners(module, model)
    assert framework == "torch" and set(runners) == {"cell"}
    x = np.random.default_rng(7).uniform(-1, 1, (2, 6, 4)).astype("float32")
    np.testing.assert_allclose(runners["cell"](x), _stepped(module.cell, x), rtol=0, atol=1e-6)
    report = lstmconv.convert(module, tmp_path / "out.onnx")
    assert report.ok
    # filled back into a cell
    other = Decoder()
    lstmconv.load_into(other, model)
    np.testing.assert_allclose(_stepped(other.cell, x), _stepped(module.cell, x), rtol=0, atol=1e-6)


# -- TorchScript ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "layers", "plain"),
    [("torchscript_script", ["lstm.l0", "lstm.l1"], []), ("torchscript_trace", ["rnn"], ["head"])],
)
def test_torchscript_is_read_as_data_never_loaded(torch, monkeypatch, name, layers, plain, capsys) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("the archive's code was loaded")

    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model = lstmconv.read(_fixture(name))
    assert [layer.name for layer in model] == layers
    assert [layer.name for layer in model.around] == plain  # the nn.Linear "head": weight and bias
    assert not model.skipped
    x, y = _io(name)  # y: torch.jit.load of the archive, when the fixture was made
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=ATOL)
    assert main(["inspect", str(_fixture(name))]) == 0
    out = capsys.readouterr().out
    assert all(f'layer "{layer}"' in out for layer in layers)


def test_torchscript_header_read_needs_no_torch_and_matches() -> None:
    from lstmconv.formats.torch import pt_header

    outlined = pt_header.read(_fixture("torchscript_trace"))
    full = lstmconv.read(_fixture("torchscript_trace"))
    assert [(x.name, x.kind, x.input_size, x.hidden_size, x.direction) for x in outlined] == [
        (x.name, x.kind, x.input_size, x.hidden_size, x.direction) for x in full
    ]


def test_torchscript_converts_to_a_state_dict_torch_loads(torch, tmp_path) -> None:
    dest = tmp_path / "out.pt"
    assert main(["convert", str(_fixture("torchscript_script")), str(dest), "-q"]) == 0
    state = torch.load(dest)
    module = torch.nn.Module()
    module.lstm = torch.nn.LSTM(4, 5, num_layers=2, batch_first=True)
    module.load_state_dict(state, strict=True)
    x, y = _io("torchscript_script")
    with torch.no_grad():
        np.testing.assert_allclose(module.lstm(torch.from_numpy(x))[0].numpy(), y, rtol=0, atol=ATOL)


# -- a multi-layer module written back under its own keys ---------------------------------------------
def test_multi_layer_module_keeps_its_keys_pt_to_pt_and_safetensors(torch, tmp_path) -> None:
    source = torch.load(_fixture("torch_checkpoint"))["model_state_dict"]
    wanted = sorted(key for key in source if key.startswith("encoder.lstm."))
    head = ["head.bias", "head.weight"]  # its nn.Linear, carried too
    for ending in (".pt", ".safetensors"):
        dest = tmp_path / f"out{ending}"
        assert main(["convert", str(_fixture("torch_checkpoint")), str(dest), "-q"]) == 0
        if ending == ".pt":
            state = dict(torch.load(dest))
        else:
            from safetensors.torch import load_file

            state = load_file(dest)
        assert sorted(state) == sorted([*wanted, *head])
        np.testing.assert_array_equal(state["head.weight"].numpy(), source["head.weight"].numpy())
        lstm = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True)
        lstm.load_state_dict({k.removeprefix("encoder.lstm."): state[k] for k in wanted}, strict=True)
        x, y = _io("torch_checkpoint")
        with torch.no_grad():
            np.testing.assert_allclose(lstm(torch.from_numpy(x))[0].numpy(), y, rtol=0, atol=ATOL)
        read = lstmconv.read(dest)
        assert [layer.name for layer in read] == ["encoder.lstm.l0", "encoder.lstm.l1"]
        assert read.links == (("encoder.lstm.l0", "encoder.lstm.l1"),)


def test_levels_not_linked_or_unlike_stay_modules_of_their_own() -> None:
    from lstmconv.formats.torch import statedict

    unlinked = lstmconv.Model(tuple(lstmconv.read(_fixture("torchscript_script")).layers), "x", links=())
    assert [module.key for module in statedict.modules(unlinked)] == ["lstm.l0", "lstm.l1"]
    linked = lstmconv.read(_fixture("torchscript_script"))
    assert [(m.key, len(m.layers)) for m in statedict.modules(linked)] == [("lstm", 2)]
    assert [m.key for m in statedict.modules(linked, as_cell=True)] == ["lstm.l0", "lstm.l1"]
