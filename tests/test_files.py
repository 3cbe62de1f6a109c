"""The committed fixtures (real files from the real frameworks, see scripts/make_fixtures.py):
each reader against the framework's own outputs, and the CLI converting every fixture to every
format, the written file run in its own framework."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from natives import FILES, writable

import lstmconv
from lstmconv.cli import main
from lstmconv.plain import PlainKind

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ATOL = 2e-5
TARGETS = [FILES[name].ending for name in writable()]
_BY_ENDING = {FILES[name].ending: FILES[name] for name in writable()}
#: (fixture, target ending) -> what the refusal names. These convert nowhere else.
REFUSED = {
    ("tf_keras_hard_sigmoid", ".pt"): "PyTorch cannot express the activations",
    ("tf_keras_hard_sigmoid", ".safetensors"): "PyTorch cannot express the activations",
    ("tf_keras_hard_sigmoid", ".keras"): "Keras 3 has no activation computing hard_sigmoid",
    ("keras3_gru_rnn", ".pt"): "PyTorch cannot express the reset-before GRU",
    ("keras3_gru_rnn", ".safetensors"): "PyTorch cannot express the reset-before GRU",
    # TensorFlow's fixtures: TF1's reset-before GRU, peepholes and projections
    **{
        (name, ending): "PyTorch cannot express the reset-before GRU"
        for name in ("tf1_gru", "tf1_gru_block", "tf1_multi", "tf1_savedmodel", "tf_keras_savedmodel")
        for ending in (".pt", ".safetensors")
    },
    **{
        (name, ending): f"{target} cannot express peepholes"
        for name in ("tf1_lstm_block_fused", "tf1_lstm_peephole_proj")
        for ending, target in ((".pt", "PyTorch"), (".safetensors", "PyTorch"), (".keras", "Keras"))
    },
    ("tf1_lstm_peephole_proj", ".onnx"): "ONNX cannot express a projection (proj_size=3)",
    # Keras 2.2's defaults: hard_sigmoid 0.2x+0.5, reset-before GRU
    ("keras22_weights_flat", ".pt"): "PyTorch cannot express the activations hard_sigmoid(0.2, 0.5)",
    ("keras22_weights_flat", ".safetensors"): "PyTorch cannot express the activations hard_sigmoid(0.2, 0.5)",
    ("keras22_weights_flat", ".keras"): "Keras 3 has no activation computing hard_sigmoid(0.2, 0.5)",
}
#: TFLiteConverter sets cell_clip 10 on every Keras LSTM, which only .npz keeps (tests/test_tflite.py
#: converts them with --drop-clips).
REFUSED.update(
    {
        (name, ending): "cannot express a clip of the cell state (cell_clip 10"
        for name, entry in MANIFEST.items()
        if name.startswith("tflite_") and "TFLiteConverter" in entry["made_by"]
        for ending in (".onnx", ".pt", ".safetensors", ".keras")
    }
)


def _io(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(FIXTURES / MANIFEST[name]["io"]) as data:
        return data["x"], data["y"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_reader_matches_the_frameworks_own_output(name: str, request) -> None:
    if name.startswith("torch_checkpoint"):
        request.getfixturevalue("torch")
    x, y = _io(name)
    model = lstmconv.read(FIXTURES / MANIFEST[name]["file"])
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=ATOL)


@pytest.mark.parametrize("ending", TARGETS)
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_cli_convert_reproduces_the_source(name: str, ending: str, tmp_path, capsys) -> None:
    require("torch"), require("keras"), require("onnxruntime")
    source = FIXTURES / MANIFEST[name]["file"]
    dest = tmp_path / f"out{ending}"
    status = main(["convert", str(source), str(dest)])
    captured = capsys.readouterr()
    if (name, ending) in REFUSED:
        assert status == 2
        assert REFUSED[name, ending] in captured.err and captured.err.count("\n") == 1
        assert os.listdir(tmp_path) == []
        return
    assert status == 0, captured.err
    assert "within" in captured.out and f"wrote {dest}" in captured.out
    x, y = _io(name)
    ran = _BY_ENDING[ending].run(str(dest), x)
    np.testing.assert_allclose(
        ran, y if ran.shape == y.shape else _through_head(source, y), rtol=0, atol=ATOL
    )
    assert os.listdir(tmp_path) == [dest.name]


def _through_head(source: Path, y: np.ndarray) -> np.ndarray:
    """The fixture's recurrent output ``y`` through the plain layers after the recurrent ones (a
    Linear head), in NumPy: what a written file that carries and runs them computes (#16)."""
    model = lstmconv.read(source)
    last = max((model.order or ()).index(layer.name) for layer in model.layers)
    assert model.everything()[last + 1 :], "the output differs from the fixture's without a head"
    for layer in model.everything()[last + 1 :]:
        assert layer.kind is PlainKind.DENSE and layer.options["activation"] == "linear", layer
        y = y @ np.asarray(layer.tensors["weight"], np.float64).T + layer.tensors.get("bias", 0.0)
    return y


def test_hard_sigmoid_h5_converts_exactly_to_onnx_and_is_refused_to_torch(tmp_path, capsys) -> None:
    require("onnxruntime"), require("torch")
    source = FIXTURES / "tf_keras_hard_sigmoid.h5"
    assert main(["convert", str(source), str(tmp_path / "m.onnx"), "-q"]) == 0
    assert main(["convert", str(source), str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert (
        'layer "lstm_hs": PyTorch cannot express the activations hard_sigmoid(0.2, 0.5), tanh, tanh (ONNX'
        in err
    )
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]
    layer = lstmconv.read(tmp_path / "m.onnx")["lstm_hs"]
    assert layer.activations[0] == lstmconv.Activation("hard_sigmoid", 0.2, 0.5)


def test_checkpoint_names_come_from_the_module_paths(request) -> None:
    request.getfixturevalue("torch")
    model = lstmconv.read(FIXTURES / "torch_checkpoint.pt")
    assert [layer.name for layer in model] == ["encoder.lstm.l0", "encoder.lstm.l1"]


def test_keras_names_and_merge_modes_come_from_the_config() -> None:
    model = lstmconv.read(FIXTURES / "keras3_gru_rnn.keras")
    assert [(layer.name, layer.merge, layer.reset_after) for layer in model] == [
        ("gru_reset_before", "concat", False),
        ("bigru", "ave", True),
        ("rnn_relu", "concat", True),
    ]
    assert model["rnn_relu"].activations == (lstmconv.Activation("relu"),)


def _summary(model: lstmconv.Model) -> list[tuple[object, ...]]:
    return [
        (
            layer.name,
            layer.kind,
            layer.direction,
            layer.merge,
            layer.input_size,
            layer.hidden_size,
            layer.proj_size,
            layer.has_bias,
            layer.dtype.name,
            tuple(str(a) for a in layer.activations),
        )
        for layer in model
    ]


def _pt_files(folder: Path, torch) -> list[Path]:
    """.pt files as people save them: lstmconv's, torch's own state_dicts, checkpoints."""
    from helpers import random_layer

    from lstmconv import Direction, Kind, Model

    rng = np.random.default_rng(11)
    relu = (lstmconv.Activation("relu"),)
    paths = [
        lstmconv.write(
            Model(
                (
                    random_layer(rng, Kind.LSTM, 3, 5, direction=Direction.BIDIRECTIONAL, proj=2, name="a"),
                    random_layer(rng, Kind.GRU, 4, 6, name="b"),
                    random_layer(rng, Kind.RNN, 6, 3, name="c", activations=relu),
                )
            ),
            folder / "lstmconv.pt",
        ),
        lstmconv.write(Model((random_layer(rng, Kind.GRU, 3, 4),)).astype("bfloat16"), folder / "bf16.pt"),
        lstmconv.write(Model((random_layer(rng, Kind.LSTM, 3, 4),)).astype("float16"), folder / "f16.pt"),
    ]
    lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    saved = {
        "bare.pt": lstm.state_dict(),
        "parameters.pt": dict(lstm.named_parameters()),
        "checkpoint.pt": {
            "epoch": 3,
            "model_state_dict": {f"enc.{k}": v for k, v in lstm.state_dict().items()},
        },
        "extras.pt": {"state_dict": lstm.state_dict(), "shape": torch.Size([2, 3]), "lr": torch.tensor(0.1)},
    }
    for name, obj in saved.items():
        torch.save(obj, folder / name)
        paths.append(str(folder / name))
    return [Path(p) for p in paths]


def test_pt_header_read_without_torch_matches_torch_load(tmp_path, torch) -> None:
    from lstmconv.formats.torch import pt_header as torch_files
    from lstmconv.registry import Declined

    for path in _pt_files(tmp_path, torch):
        full = lstmconv.read(path)
        header = lstmconv.read(path, header_only=True)
        assert _summary(header) == _summary(full), path.name
        if path.name != "extras.pt":  # torch.Size is beyond the quick reader: torch.load reads it
            assert _summary(torch_files.read(path)) == _summary(full), path.name
    with pytest.raises(Declined, match=r"torch\.Size"):
        torch_files.read(tmp_path / "extras.pt")


def test_pt_inspect_needs_no_torch(tmp_path, torch) -> None:
    import subprocess
    import sys

    path = _pt_files(tmp_path, torch)[0]
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from lstmconv.cli import main\n"
        f"status = main(['inspect', {str(path)!r}])\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None], 'torch imported'\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'layer "a": LSTM, bidirectional, merge concat; input 3, hidden 5, projection 2' in result.stdout
    assert 'layer "c": RNN' in result.stdout and "relu" in result.stdout


def test_pt_values_are_views_of_the_file_where_c_ordered_and_copies_otherwise(tmp_path, torch) -> None:
    """A C-ordered tensor is read as a read-only view of the map (no copy of the weights); a
    transposed or expanded one is copied out in C order; both equal what ``torch.load`` gives."""
    from lstmconv.formats.torch import pt_header

    generator = torch.Generator().manual_seed(5)
    plain = torch.rand(6, 4, generator=generator)
    saved = {"plain": plain, "transposed": torch.rand(4, 6, generator=generator).t(), "tail": plain[3:]}
    saved["expanded"] = torch.rand(1, 4, generator=generator).expand(3, 4)
    path = tmp_path / "views.pt"
    torch.save(saved, path)
    loaded, records = pt_header._unpickle(str(path))
    for key, tensor in saved.items():
        values = loaded[key].values(str(path), records)
        np.testing.assert_array_equal(values, tensor.numpy(), err_msg=key)
        assert values.flags.c_contiguous, key
        is_view = key in ("plain", "tail")
        assert (not values.flags.owndata and not values.flags.writeable) is is_view, key
