"""The proof is not circular: each side of a check runs what the user has, in its own framework,
so a misreading shows. A reader patched to swap two gates must make ``convert`` fail (exit 1)
and write nothing, for every source format, against every kind of target."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require

import lstmconv
from lstmconv import cli, registry, verification
from lstmconv.ir import Kind, Layer, Model

FIXTURES = Path(__file__).parent.parent / "fixtures"
#: One fixture made by the real tool for each source format, with what runs it.
SOURCES = {
    "keras": ("keras3_stacked_bidir.keras", ("tensorflow", "keras")),
    "keras-legacy": ("tf_keras_hard_sigmoid.h5", ("tensorflow", "tf_keras")),
    "onnx-torch": ("torch_export_lstm.onnx", ("onnxruntime",)),
    "onnx-tf2onnx": ("tf2onnx_keras_lstm.onnx", ("onnxruntime",)),
    "onnx-gru": ("torch_export_gru.onnx", ("onnxruntime",)),
    "torch": ("torch_checkpoint.pt", ("torch",)),
    "safetensors": ("torch_safetensors.safetensors", ("torch", "safetensors")),
}


def _swap_two_gates(layer: Layer) -> Layer:
    """The layer as a reader that confused two gates of its first direction would give."""
    first, second = {Kind.LSTM: ("i", "f"), Kind.GRU: ("r", "z"), Kind.RNN: ("h", "h")}[layer.kind]
    cell = layer.cells[0]
    swapped = dict(cell.w_ih)
    swapped[first], swapped[second] = cell.w_ih[second], cell.w_ih[first]
    return layer.replace(cells=(dataclasses.replace(cell, w_ih=swapped), *layer.cells[1:]))


def misread(monkeypatch, format_name: str) -> None:
    """The reader of ``format_name`` returns its first layer with two gates swapped."""
    original = registry.Format.load_reader

    def load_reader(self):
        reader = original(self)
        if self.name != format_name:
            return reader

        class Misreading:
            @staticmethod
            def read(source, **options):
                model = reader.read(source, **options)
                if options.get("header_only"):
                    return model
                return Model((_swap_two_gates(model.layers[0]), *model.layers[1:]), model.source)

        return Misreading

    monkeypatch.setattr(registry.Format, "load_reader", load_reader)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (source, target)
        for source in sorted(SOURCES)
        for target in (".npz", ".onnx", ".pt")
        if (source, target) != ("keras-legacy", ".pt")  # Keras 2's hard_sigmoid: no PyTorch form
    ],
)
def test_a_misread_layer_fails_the_proof_and_writes_nothing(monkeypatch, tmp_path, capsys, source, target):
    name, needs = SOURCES[source]
    misread(monkeypatch, registry.for_path(name).name)
    for module in needs:
        require(module)
    if target == ".onnx":
        require("onnxruntime")
    if target == ".pt":
        require("torch")
    dest = tmp_path / f"out{target}"
    status = cli.main(["convert", str(FIXTURES / name), str(dest)])
    err = capsys.readouterr().err
    assert status == cli.EXIT_DISAGREE, err
    assert "disagrees with the source" in err and "original file" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_source_runs_as_the_user_has_it(tmp_path, source):
    """Without the patch the same conversions verify, each source side run from the original file."""
    name, needs = SOURCES[source]
    for module in needs:
        require(module)
    report = lstmconv.convert(str(FIXTURES / name), str(tmp_path / "out.npz"))
    assert report is not None and report.ok
    assert report.sides[0].how == "original file", report.sides[0]
    assert report.sides[0].framework in ("keras", "tf_keras", "onnxruntime", "torch")
    assert report.sides[1].framework == "reference" and "npz" in report.sides[1].why
    assert [c.compared for c in report.checks] == ["run"] * len(report.checks)
    assert 0 < report.max_error < 1e-4 and report.max_rel < 1e-2


def test_per_layer_checks_name_each_layer(tmp_path):
    require("onnxruntime")
    report = lstmconv.convert(str(FIXTURES / "tf2onnx_keras_lstm.onnx"), str(tmp_path / "out.onnx"))
    assert report is not None
    assert [c.layer for c in report.checks] == [layer.name for layer in lstmconv.read(tmp_path / "out.onnx")]
    assert report.sides == (
        verification.Side("source", "onnxruntime", "original file"),
        verification.Side("target", "onnxruntime", "written file"),
    )


def test_live_object_is_run_as_itself(tmp_path):
    torch = require("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(4, 6, num_layers=2, batch_first=True)
    report = lstmconv.convert(module, str(tmp_path / "out.npz"))
    assert report is not None and report.ok
    assert report.sides[0] == verification.Side("source", "torch", "object")
    assert [c.layer for c in report.checks] == ["gru.l0", "gru.l1"]


# -- tolerance -------------------------------------------------------------------------------------
def test_tolerance_is_absolute_plus_relative():
    b = np.array([1e6, 1.0, 0.0])
    a = b + np.array([1.0, 1e-6, 5e-6])
    max_abs, max_rel, ok = verification.differences(a, b, rtol=1.3e-6, atol=1e-5)
    assert ok and max_abs == pytest.approx(1.0) and max_rel == pytest.approx(1e-6, rel=1e-3)
    assert not verification.differences(a, b, rtol=0.0, atol=1e-5)[2]
    assert not verification.differences(np.array([np.nan]), np.array([0.0]), 1.0, 1.0)[2]
    assert verification.differences(np.array([np.nan]), np.array([np.nan]), 0.0, 0.0)[2]


def test_default_tolerances_by_dtype():
    assert verification.tolerances([np.dtype("float32")], None, None) == (1.3e-6, 1e-5)
    rtol, atol = verification.tolerances([np.dtype("float32"), np.dtype("float16")], None, None)
    assert rtol == 1e-3 and atol > 1e-5
    assert verification.tolerances([np.dtype("float32")], 0.0, 2e-3) == (0.0, 2e-3)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(lstmconv.LstmconvError):
            verification.tolerances([], bad, None)


@pytest.mark.parametrize("flag", ["--atol", "--rtol"])
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "x"])
def test_a_bad_tolerance_is_a_usage_error(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["convert", str(FIXTURES / "lstmconv_npz.npz"), str(tmp_path / "o.npz"), f"{flag}={value}"])
    assert stopped.value.code == 2
    assert flag in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_large_outputs_agree_within_the_relative_tolerance(tmp_path):
    """A relu RNN driven to large outputs: a fixed absolute 1e-5 would refuse it."""
    torch = require("torch")
    require("onnxruntime")
    torch.manual_seed(3)
    module = torch.nn.RNN(4, 8, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        module.weight_hh_l0.mul_(6.0)
        module.weight_ih_l0.mul_(40.0)
    report = lstmconv.convert(module, str(tmp_path / "out.onnx"))
    assert report is not None and report.ok
    x = verification.inputs(lstmconv.read(module))[-1]
    assert np.abs(lstmconv.reference.run(lstmconv.read(module), x)).max() > 1e3
    assert report.max_error > 1e-5  # beyond the old fixed tolerance, within the relative one


# -- honest when nothing runs -------------------------------------------------------------------------
def _cli(*args: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "from lstmconv.cli import main\n"
        f"raise SystemExit(main({list(args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_round_trip_only_is_called_so_and_names_the_missing_runtime(tmp_path):
    require("onnx")
    dest = tmp_path / "out.onnx"
    done = _cli("convert", str(FIXTURES / "lstmconv_npz.npz"), str(dest), blocked=("onnxruntime",))
    assert done.returncode == 0, done.stderr
    assert "round trip only: the written file read back equals the source's tensors" in done.stdout
    assert "onnxruntime is not installed (pip install 'lstmconv[onnxruntime]')" in done.stdout
    assert "tensors" in done.stdout and " yes" in done.stdout
    assert done.stdout.rstrip().endswith("(round trip only)")
    assert dest.exists()


def test_convert_json_prints_the_structured_report(tmp_path):
    done = _cli("convert", str(FIXTURES / "lstmconv_npz.npz"), str(tmp_path / "o.npz"), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["wrote"].endswith("o.npz")
    report = info["verification"]
    assert report["round_trip_only"] is True and report["ok"] is True
    assert [side["role"] for side in report["sides"]] == ["source", "target"]
    assert {"layer", "target_layer", "compared", "max_abs", "max_rel", "ok"} <= set(report["layers"][0])


def test_verify_json(tmp_path):
    require("onnxruntime")
    out = tmp_path / "o.onnx"
    assert cli.main(["convert", str(FIXTURES / "torch_export_gru.onnx"), str(out), "-q"]) == 0
    done = _cli("verify", str(FIXTURES / "torch_export_gru.onnx"), str(out), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["sides"][0]["how"] == "original file"
    assert report["sides"][1]["how"] == "original file"


# -- models whose recurrent layers are not one chain -------------------------------------------------
def _keras_branching(keras, path: Path) -> Path:
    """LSTM → LayerNormalization → LSTM of another width, and an encoder/decoder pair whose
    decoder starts from the encoder's states: the commonest LSTM architectures."""
    keras.utils.set_random_seed(4)
    x = keras.Input((None, 4), name="x")
    a = keras.layers.LSTM(8, return_sequences=True, name="first")(x)
    a = keras.layers.LayerNormalization(name="norm")(a)
    a = keras.layers.LSTM(5, return_sequences=True, name="second")(a)
    enc_in = keras.Input((None, 3), name="enc_in")
    _, h, c = keras.layers.LSTM(6, return_state=True, name="encoder")(enc_in)
    dec_in = keras.Input((None, 2), name="dec_in")
    d = keras.layers.LSTM(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    d = keras.layers.Dense(2, name="head")(d)
    model = keras.Model([x, enc_in, dec_in], [a, d])
    model.save(path)
    return path


def test_branches_and_an_encoder_decoder_convert_verified_from_keras(tmp_path):
    require("tensorflow")
    keras = require("keras")
    ort = require("onnxruntime")
    source = _keras_branching(keras, tmp_path / "m.keras")
    model = lstmconv.read(source)
    names = [layer.name for layer in model]
    assert sorted(names) == ["decoder", "encoder", "first", "second"]
    recurrent = set(names)
    # a LayerNormalization between, and states (not outputs) passed on: no recurrent layer feeds another
    assert [link for link in model.links or () if set(link) <= recurrent] == []
    report = lstmconv.convert(source, tmp_path / "m.onnx")
    assert report is not None and report.ok and report.sides[0].how == "original file"
    assert [c.layer for c in report.checks] == names
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [f"{name}_input" for name in names]
    again = lstmconv.convert(source, tmp_path / "m2.keras")
    assert again is not None and again.ok


def test_a_direct_stack_stays_one_chain(tmp_path):
    ort = require("onnxruntime")
    report = lstmconv.convert(str(FIXTURES / "keras3_stacked_bidir.keras"), tmp_path / "m.onnx")
    assert report is not None and report.ok
    assert [c.layer for c in report.checks] == ["encoder", "decoder", "(whole model)"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]


class _EncoderDecoder:
    """A torch module: LSTM → LayerNorm → LSTM of another width, and an encoder/decoder pair."""

    @staticmethod
    def build(torch):
        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.first = torch.nn.LSTM(4, 8, batch_first=True)
                self.norm = torch.nn.LayerNorm(8)
                self.second = torch.nn.GRU(8, 5, batch_first=True)
                self.encoder = torch.nn.LSTM(3, 6, batch_first=True)
                self.decoder = torch.nn.LSTM(2, 6, batch_first=True)

            def forward(self, x, enc, dec):
                a, _ = self.first(x)
                a, _ = self.second(self.norm(a))
                _, state = self.encoder(enc)
                d, _ = self.decoder(dec, state)
                return a, d

        torch.manual_seed(11)
        return Model().eval()


@pytest.mark.parametrize("dynamo", [False, True])
def test_branches_and_an_encoder_decoder_convert_verified_from_onnx(tmp_path, dynamo):
    """Both of torch's exporters; dynamo's fixes the traced batch and length in its Reshapes,
    which the cut leaves out so each layer runs at any size."""
    torch = require("torch")
    require("onnx")
    require("onnxruntime")
    module = _EncoderDecoder.build(torch)
    args = (torch.rand(2, 5, 4), torch.rand(2, 5, 3), torch.rand(2, 4, 2))
    source = tmp_path / "m.onnx"
    torch.onnx.export(module, args, str(source), dynamo=dynamo, input_names=["x", "enc", "dec"])
    model = lstmconv.read(source)
    assert len(model) == 4 and model.links == ()
    for target in ("out.onnx", "out.keras", "out.pt", "out.npz"):
        if target.endswith(".keras"):
            require("keras")
        report = lstmconv.convert(source, tmp_path / target)
        assert report is not None and report.ok, report
        assert report.sides[0] == verification.Side("source", "onnxruntime", "original file")
