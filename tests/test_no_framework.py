"""Conversions with the core install alone: ``.onnx`` written without the onnx package
(formats/onnx/proto.py, stream.py), ``.pt`` without torch (formats/torch/archive.py), ``.keras``
without Keras (see test_keras_archive.py), and every pair among .keras, .pt, .safetensors, .onnx
and .npz run in a process where no framework can be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from helpers import random_layer
from test_keras_archive import VARIANTS

import lstmconv
from lstmconv.formats.onnx import graph as onnx_graph
from lstmconv.formats.onnx import proto, stream
from lstmconv.formats.torch import archive as pt_archive
from lstmconv.ir import Direction, Kind, Model

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FRAMEWORKS = ("torch", "keras", "tensorflow", "tf_keras", "onnx", "onnxruntime")
ENDINGS = (".keras", ".pt", ".safetensors", ".onnx", ".npz")


def _with_onnx_helpers(model: Model):
    """The model :mod:`.graph` assembles, built again with onnx.helper from the same nodes."""
    onnx = require("onnx")
    from onnx import helper

    graph = onnx_graph.Graph()
    ours = onnx_graph.assemble(model, graph, None)
    nodes = [
        helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attributes) for n in ours.nodes
    ]
    initializers = []
    for tensor in ours.initializers:
        made = onnx.TensorProto(name=tensor.name, dims=tensor.dims, data_type=tensor.data_type)
        made.raw_data = (
            tensor.raw
            if tensor.raw is not None
            else b"".join(lstmconv.dtypes.little_endian_bytes(b) for b in graph.payload[tensor.name])
        )
        initializers.append(made)
    values = [[onnx.ValueInfoProto.FromString(v) for v in side] for side in (ours.inputs, ours.outputs)]
    return helper.make_model_gen_version(
        helper.make_graph(nodes, "lstmconv", values[0], values[1], initializers),
        opset_imports=[helper.make_opsetid("", ours.opset)],
        producer_name="lstmconv",
        producer_version=lstmconv.__version__,
    )


@pytest.mark.parametrize("name", VARIANTS)
def test_the_onnx_stream_is_what_onnx_serializes(tmp_path, name: str) -> None:
    model = VARIANTS[name]
    stream.write(model, str(tmp_path / "m.onnx"))
    theirs = _with_onnx_helpers(model)
    assert (tmp_path / "m.onnx").read_bytes() == theirs.SerializeToString()
    onnx = require("onnx")
    onnx.checker.check_model(str(tmp_path / "m.onnx"))


def test_value_infos_and_attributes_are_what_onnx_helper_makes() -> None:
    onnx = require("onnx")
    from onnx import helper

    shape = ["batch", "time", 7]
    assert (
        proto.value_info("x", 10, shape) == helper.make_tensor_value_info("x", 10, shape).SerializeToString()
    )
    for value in (3, -1, 0.25, "Tanh", [1, 0, 2], [-(2**63)], [0.5, 1.5], ["Sigmoid", "Tanh"]):
        node = proto.Node("Op", ["a", ""], ["b"], "n", {"v": value, "a": 1})
        made = helper.make_node("Op", ["a", ""], ["b"], name="n", v=value, a=1)
        assert node.encode() == made.SerializeToString(), value
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert (
        proto.from_array(array, "c").encode() == onnx.numpy_helper.from_array(array, "c").SerializeToString()
    )


def test_ir_versions_are_onnx_helpers() -> None:
    require("onnx")
    from onnx import helper

    for opset in sorted({entry[2] for entry in helper.VERSION_TABLE}):  # the opsets onnx releases named
        assert proto.ir_version(opset) == helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    with pytest.raises(lstmconv.UnsupportedFeatureError, match="opset 99"):
        proto.ir_version(99)


def test_external_data_written_without_onnx_is_what_onnx_reads(tmp_path) -> None:
    onnx = require("onnx")
    model = VARIANTS["stacked"]
    stream.write(model, str(tmp_path / "m.onnx"), external_data=True)
    assert (tmp_path / "m.onnx.data").exists()
    onnx.checker.check_model(str(tmp_path / "m.onnx"))
    loaded = onnx.load(str(tmp_path / "m.onnx"))  # follows the external data
    inline = _with_onnx_helpers(model)
    for a, b in zip(loaded.graph.initializer, inline.graph.initializer, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))


def test_verification_runs_onnx_checker_on_the_written_file(tmp_path, monkeypatch) -> None:
    onnx = require("onnx")
    require("onnxruntime")
    refused = []

    def refuse(path, *args, **kwargs):
        refused.append(str(path))
        raise onnx.checker.ValidationError("stand-in refusal")

    source = lstmconv.write(VARIANTS["stacked"], tmp_path / "m.npz")
    monkeypatch.setattr(onnx.checker, "check_model", refuse)
    with pytest.raises(lstmconv.VerificationError, match=r"onnx\.checker refuses"):
        lstmconv.convert(source, tmp_path / "m.onnx")
    assert refused and refused[-1].endswith(".onnx") and not (tmp_path / "m.onnx").exists()
    monkeypatch.undo()
    assert lstmconv.convert(source, tmp_path / "m.onnx", verify=False) is None


# -- .pt without torch ----------------------------------------------------------------------------
def _torch_variants() -> dict[str, Model]:
    kept = {
        name: model
        for name, model in VARIANTS.items()
        if not any(
            layer.reversed_output
            or layer.merge != "concat"
            or (layer.kind is Kind.GRU and not layer.reset_after)
            or layer.activations != lstmconv.ir.DEFAULT_ACTIVATIONS[layer.kind]
            for layer in model
        )
    }
    rng = np.random.default_rng(6)
    mixed = Model((random_layer(rng, Kind.LSTM, 3, 4, direction=Direction.BIDIRECTIONAL, name="a"),))
    kept["float16"] = mixed.astype("float16")
    kept["bfloat16"] = mixed.astype("bfloat16")
    return kept


@pytest.mark.parametrize("as_cell", [False, True])
@pytest.mark.parametrize(("name", "model"), _torch_variants().items())
def test_pt_written_without_torch_is_what_torch_save_writes(
    tmp_path, name: str, model: Model, as_cell
) -> None:
    torch = require("torch")
    from lstmconv.formats.torch import live

    if as_cell and any(layer.direction is Direction.BIDIRECTIONAL for layer in model):
        with pytest.raises(lstmconv.UnsupportedFeatureError):
            pt_archive.write(model, str(tmp_path / "ours.pt"), as_cell=True)
        return
    pt_archive.write(model, str(tmp_path / "ours.pt"), as_cell=as_cell)
    live.write(model, str(tmp_path / "torch.pt"), as_cell=as_cell)
    ours = torch.load(tmp_path / "ours.pt", weights_only=True)
    mapped = torch.load(tmp_path / "ours.pt", weights_only=True, mmap=True)
    theirs = torch.load(tmp_path / "torch.pt", weights_only=True)
    assert list(ours) == list(theirs) == list(mapped)
    for key in theirs:
        assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key]), key
        assert torch.equal(mapped[key], theirs[key])
    assert ours._metadata == theirs._metadata
    again = lstmconv.read(tmp_path / "ours.pt")  # lstmconv's reader, without torch
    assert len(again) == len(model)
    for read_back, layer in zip(again, model, strict=True):
        x = np.random.default_rng(1).standard_normal((2, 5, layer.input_size))
        np.testing.assert_array_equal(
            lstmconv.reference.run_layer(read_back, x), lstmconv.reference.run_layer(layer, x)
        )


# -- no framework at all --------------------------------------------------------------------------
_PROBE = """
import sys
from lstmconv.cli import main
code = main(sys.argv[1:])
loaded = sorted(n for n in {frameworks!r} if n in sys.modules)
print("LOADED", loaded)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "source",
    [FIXTURES / "keras3_stacked_bidir.keras", FIXTURES / "torch_checkpoint.pt"],
    ids=lambda p: p.name,
)
def test_onnx_no_verify_imports_neither_onnx_nor_torch_nor_keras(tmp_path, source: Path) -> None:
    dest = tmp_path / "m.onnx"
    code = _PROBE.format(frameworks=FRAMEWORKS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", code, "convert", str(source), str(dest), "--no-verify"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
    x = np.random.default_rng(2).standard_normal((2, 5, lstmconv.read(source).input_size))
    expected = lstmconv.reference.run(lstmconv.read(source), x)
    np.testing.assert_allclose(lstmconv.reference.run(lstmconv.read(dest), x), expected, rtol=0, atol=1e-6)


_EVERY_PAIR = """
import json, sys
for name in {frameworks!r}:
    sys.modules[name] = None
import lstmconv
sources, folder = json.loads(sys.argv[1]), sys.argv[2]
results = {{}}
for source in sources:
    for ending in {endings!r}:
        for verify in (False, True):
            dest = f"{{folder}}/{{source.rsplit('/', 1)[1]}}-{{verify}}{{ending}}"
            try:
                lstmconv.convert(source, dest, verify=verify)
                results[dest] = "ok"
            except Exception as error:
                results[dest] = f"{{type(error).__name__}}: {{error}}"
print(json.dumps(results))
"""


def test_every_pair_converts_with_no_framework_importable(tmp_path) -> None:
    rng = np.random.default_rng(9)
    model = Model(
        (
            random_layer(rng, Kind.LSTM, 4, 6, direction=Direction.BIDIRECTIONAL, name="enc"),
            random_layer(rng, Kind.GRU, 12, 5, name="dec"),
            random_layer(rng, Kind.RNN, 5, 3, name="out"),
        )
    )
    sources = [str(lstmconv.write(model, tmp_path / f"source{ending}")) for ending in ENDINGS]
    out = tmp_path / "out"
    out.mkdir()
    code = _EVERY_PAIR.format(frameworks=FRAMEWORKS, endings=ENDINGS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(sources), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout.splitlines()[-1])
    assert len(results) == len(ENDINGS) ** 2 * 2
    assert {dest: status for dest, status in results.items() if status != "ok"} == {}
    x = rng.standard_normal((2, 7, 4))
    expected = lstmconv.reference.run(model, x)
    for dest in results:
        np.testing.assert_allclose(
            lstmconv.reference.run(lstmconv.read(dest), x), expected, rtol=0, atol=1e-6
        )


def test_pt_written_by_lstmconv_reads_in_a_process_without_torch(tmp_path) -> None:
    """The archive's records are aligned and stored: lstmconv's own reader maps them."""
    rng = np.random.default_rng(3)
    model = Model((random_layer(rng, Kind.GRU, 4, 3, name="g"), random_layer(rng, Kind.RNN, 3, 2, name="r")))
    path = tmp_path / "m.pt"
    pt_archive.write(model, str(path))
    with zipfile.ZipFile(path) as zipped:
        for info in zipped.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0, info.filename
    again = lstmconv.read(path)
    x = rng.standard_normal((1, 4, 4))
    np.testing.assert_array_equal(lstmconv.reference.run(again, x), lstmconv.reference.run(model, x))
