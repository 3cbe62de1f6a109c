"""How weights are stored: ONNX external data (models beyond protobuf's 2 GiB), dtypes, the .keras archive."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from helpers import random_layer
from natives import FILES, writable

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
    from lstmconv.formats.onnx import stream as wire

    small = lstmconv.write(_model(2), tmp_path / "small.onnx")
    assert not os.path.exists(f"{small}.data")
    monkeypatch.setattr(wire, "EXTERNAL_THRESHOLD", 1000)  # stands in for 2 GiB
    source = lstmconv.write(_model(2), tmp_path / "m.npz")
    report = lstmconv.convert(source, tmp_path / "big.onnx")
    assert report is not None and report.ok
    assert report.sides[1].how == "written file"
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


# -- float16 and bfloat16 keep their dtype -------------------------------------------------------
REDUCED = ("float16", "bfloat16")
FORMATS = writable()
#: Every reduced-precision weight is a float32 exactly, so the float64 reference of the weights
#: is the truth; a framework running in that precision stays within a few of its epsilons.
RUN_ATOL = {"float16": 4 * 2.0**-10, "bfloat16": 4 * 2.0**-7}


def _reduced(seed: int, dtype: str) -> Model:
    rng = np.random.default_rng(seed)
    model = Model(
        (
            random_layer(rng, Kind.LSTM, 4, 6, direction=Direction.BIDIRECTIONAL, name="enc"),
            random_layer(rng, Kind.GRU, 12, 5, name="dec"),
        )
    )
    return model.astype(dtype)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("dtype", REDUCED)
def test_reduced_precision_weights_keep_their_dtype_and_run(tmp_path, dtype: str, name: str):
    entry = FILES[name]
    for module in (*lstmconv.registry.by_name(name).writer_needs, *entry.needs):
        require(module)
    model = _reduced(4, dtype)
    path = lstmconv.write(model, tmp_path / f"m{entry.ending}")
    again = lstmconv.read(path)
    assert [layer.dtype.name for layer in again] == [dtype, dtype]
    if entry.exact:  # Keras keeps one bias per LSTM gate: b_ih + b_hh, rounded once
        _exactly_equal(model, again)
    x = np.random.default_rng(5).uniform(-1, 1, (3, 7, 4)).astype(np.float32)
    expected = lstmconv.reference.run(model, x)
    got = entry.run(path, x)
    np.testing.assert_allclose(got, expected, rtol=0, atol=RUN_ATOL[dtype])
    # a framework computing in that precision differs from the float64 truth; the reference
    # (npz) and onnxruntime widening the weights to float32 compute in full precision
    assert np.max(np.abs(got - expected)) > 0 or name in ("npz", "onnx")


@pytest.mark.parametrize("dtype", REDUCED)
def test_reduced_precision_verification_still_catches_a_gate_swap(tmp_path, dtype: str) -> None:
    model = _reduced(6, dtype)
    layer = model[0]
    cell = layer.cells[0]
    swapped_cell = dataclasses.replace(cell, w_ih={**cell.w_ih, "i": cell.w_ih["f"], "f": cell.w_ih["i"]})
    swapped = Model((layer.replace(cells=(swapped_cell, layer.cells[1])), model[1]))
    a = lstmconv.write(model, tmp_path / "a.npz")
    b = lstmconv.write(swapped, tmp_path / "b.npz")
    report = lstmconv.verify(a, b)
    assert report.atol == RUN_ATOL[dtype] and f"within {report.atol:g} + {report.rtol:g}·|b|" in str(report)
    assert not report.ok and report.max_error > 5 * report.atol
    assert lstmconv.verify(a, a).ok


def test_cast_on_request_is_verified_against_the_cast_weights(tmp_path, capsys, torch) -> None:
    import json

    from lstmconv.cli import main

    source = lstmconv.write(_reduced(7, "float32"), tmp_path / "m.npz")
    status = main(["convert", source, str(tmp_path / "m.safetensors"), "--dtype", "bfloat16"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "weights cast from float32 to bfloat16: verified against the cast weights" in out
    with open(tmp_path / "m.safetensors", "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    assert {entry["dtype"] for key, entry in header.items() if key != "__metadata__"} == {"BF16"}
    from safetensors.torch import load_file

    theirs = load_file(tmp_path / "m.safetensors")
    ours = lstmconv.read(tmp_path / "m.safetensors")
    assert theirs["enc.weight_ih_l0"].dtype == torch.bfloat16
    np.testing.assert_array_equal(
        theirs["enc.weight_ih_l0"][:6].float().numpy(), ours["enc"].cells[0].w_ih["i"].astype(np.float32)
    )


def test_bfloat16_onnx_needs_opset_22(tmp_path) -> None:
    import onnx

    path = lstmconv.write(_reduced(8, "bfloat16"), tmp_path / "m.onnx")
    assert onnx.load(path).opset_import[0].version == 22
    with pytest.raises(lstmconv.UnsupportedFeatureError, match="bfloat16 LSTM/GRU/RNN need opset 22"):
        lstmconv.to_onnx(_reduced(8, "bfloat16"), opset=17)


def test_keras_bfloat16_file_is_read_without_keras_as_keras_runs_it(tmp_path, keras) -> None:
    rng = np.random.default_rng(9)
    inputs = keras.Input((None, 3), dtype="bfloat16")
    layer = keras.layers.LSTM(4, return_sequences=True, dtype="bfloat16", recurrent_initializer="zeros")
    built = keras.Model(inputs, layer(inputs))
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()])
    built.save(tmp_path / "k.keras")
    model = lstmconv.read(tmp_path / "k.keras")
    assert model[0].dtype.name == "bfloat16"
    x = rng.uniform(-1, 1, (2, 5, 3)).astype(np.float32)
    theirs = np.asarray(built(x), dtype=np.float64)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), theirs, rtol=0, atol=RUN_ATOL["bfloat16"])


def test_cli_external_data_is_for_onnx_only(tmp_path, capsys, ort) -> None:
    from lstmconv.cli import main

    source = lstmconv.write(_model(10), tmp_path / "m.npz")
    assert main(["convert", source, str(tmp_path / "o.npz"), "--external-data"]) == 2
    assert "--external-data: for ONNX outputs only" in capsys.readouterr().err
    assert main(["convert", source, str(tmp_path / "o.onnx"), "--external-data"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "o.onnx", "o.onnx.data"]


def test_onnx_files_field_numbers_are_onnx_protos() -> None:
    """The wire reader's field numbers and enums, against onnx's own descriptors."""
    import onnx
    from onnx import AttributeProto, TensorProto

    from lstmconv.formats.onnx import files as onnx_files
    from lstmconv.formats.onnx import names as onnx_names

    fields = {
        onnx.ModelProto: {"graph": 7},
        onnx.GraphProto: {"node": 1, "name": 2, "initializer": 5},
        onnx.NodeProto: {"input": 1, "output": 2, "name": 3, "op_type": 4, "attribute": 5, "domain": 7},
        AttributeProto: {
            "name": 1,
            "f": 2,
            "i": 3,
            "s": 4,
            "t": 5,
            "floats": 7,
            "ints": 8,
            "strings": 9,
            "type": 20,
        },
        TensorProto: {
            "dims": 1,
            "data_type": 2,
            "float_data": 4,
            "int32_data": 5,
            "int64_data": 7,
            "name": 8,
            "raw_data": 9,
            "double_data": 10,
            "uint64_data": 11,
            "external_data": 13,
            "data_location": 14,
        },
        onnx.StringStringEntryProto: {"key": 1, "value": 2},
    }
    for message, numbers in fields.items():
        for field, number in numbers.items():
            assert message.DESCRIPTOR.fields_by_name[field].number == number, (message, field)
    assert onnx_files.EXTERNAL == TensorProto.EXTERNAL
    for code, name in onnx_files.DTYPES.items():
        assert onnx.helper.tensor_dtype_to_np_dtype(code).name == name
    types = (
        onnx_names.FLOAT,
        onnx_names.INT,
        onnx_names.STRING,
        onnx_names.TENSOR,
        onnx_names.FLOATS,
        onnx_names.INTS,
        onnx_names.STRINGS,
    )
    assert types == (
        AttributeProto.FLOAT,
        AttributeProto.INT,
        AttributeProto.STRING,
        AttributeProto.TENSOR,
        AttributeProto.FLOATS,
        AttributeProto.INTS,
        AttributeProto.STRINGS,
    )
    for field in onnx_names.ATTRIBUTE_FIELDS.values():
        assert field in AttributeProto.DESCRIPTOR.fields_by_name, field


@pytest.mark.parametrize("storage", ["raw", "typed", "constant-node"])
def test_onnx_weights_stored_every_way_read_the_same(tmp_path, storage: str) -> None:
    """Initializers with raw_data, with typed fields (float_data), and as Constant nodes."""
    import onnx
    from onnx import numpy_helper

    model = _model(11)
    proto = lstmconv.to_onnx(model)
    if storage != "raw":
        for index, tensor in enumerate(list(proto.graph.initializer)):
            value = numpy_helper.to_array(tensor)
            if storage == "typed":
                typed = onnx.helper.make_tensor(
                    tensor.name, tensor.data_type, value.shape, value.ravel().tolist()
                )
                proto.graph.initializer[index].CopyFrom(typed)
        if storage == "constant-node":
            for tensor in reversed(list(proto.graph.initializer)):
                proto.graph.node.insert(0, onnx.helper.make_node("Constant", [], [tensor.name], value=tensor))
            del proto.graph.initializer[:]
    onnx.save(proto, tmp_path / "m.onnx")
    _exactly_equal(model, lstmconv.read(tmp_path / "m.onnx"))
    _exactly_equal(model, lstmconv.read(proto))


def test_verification_runs_models_past_the_limit_from_a_file(tmp_path, monkeypatch, ort) -> None:
    """onnxruntime takes no model bytes past 2 GiB: such a model is run from a written file."""
    from lstmconv.formats.onnx import live as onnx_format
    from lstmconv.formats.onnx import stream as wire

    monkeypatch.setattr(wire, "EXTERNAL_THRESHOLD", 1000)  # stands in for 2 GiB
    source = lstmconv.write(_model(12), tmp_path / "m.onnx")
    assert os.path.exists(f"{source}.data")
    report = lstmconv.convert(source, tmp_path / "m.npz")
    assert report is not None and report.ok
    assert "source: onnxruntime, original file" in str(report)
    runnable = onnx_format.runnable(_model(12))
    assert isinstance(runnable, onnx_format.Written) and os.path.exists(runnable.path + ".data")
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        onnx_format.run(runnable, x), lstmconv.reference.run(_model(12), x), rtol=0, atol=ATOL
    )
    folder = runnable.folder.name
    del runnable
    assert not os.path.exists(folder)


def test_a_cast_report_still_names_the_source_file(tmp_path) -> None:
    source = lstmconv.write(_reduced(13, "float32"), tmp_path / "m.npz")
    report = lstmconv.convert(source, tmp_path / "c.npz", dtype="float16")
    assert report is not None and report.ok and report.source == source


def test_keras_archive_holds_what_model_save_writes_and_the_same_bytes_each_time(tmp_path, keras) -> None:
    import json
    import zipfile

    rng = np.random.default_rng(8)
    model = Model(
        (
            random_layer(rng, Kind.LSTM, 4, 6, direction=Direction.BIDIRECTIONAL, name="enc"),
            dataclasses.replace(random_layer(rng, Kind.GRU, 12, 5, name="dec"), reset_after=False),
            random_layer(rng, Kind.RNN, 5, 3, name="out"),
        )
    )
    first = lstmconv.write(model, tmp_path / "a.keras")
    second = lstmconv.write(model, tmp_path / "b.keras")
    assert Path(first).read_bytes() == Path(second).read_bytes()
    lstmconv.to_keras(model).save(tmp_path / "keras.keras")  # what Keras itself writes

    def contents(path) -> tuple[list[str], dict, dict]:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            config = json.loads(archive.read("config.json"))
            metadata = json.loads(archive.read("metadata.json"))
        return names, config, metadata

    def unshared(value):  # model.save numbers objects it meets twice by their memory address
        if isinstance(value, dict):
            return {k: unshared(v) for k, v in value.items() if k != "shared_object_id"}
        return [unshared(v) for v in value] if isinstance(value, list) else value

    ours, theirs = contents(first), contents(tmp_path / "keras.keras")
    assert ours[0] == theirs[0] == ["metadata.json", "config.json", "model.weights.h5"]
    assert ours[1] == unshared(theirs[1])
    assert ours[2] == {"keras_version": theirs[2]["keras_version"], "date_saved": "1980-01-01@00:00:00"}
    loaded = keras.saving.load_model(first, safe_mode=True)
    x = np.random.default_rng(9).standard_normal((2, 7, 4)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), lstmconv.reference.run(model, x), rtol=0, atol=ATOL)
    again = lstmconv.reference.run(lstmconv.read(first), x)  # Keras LSTM biases come back summed
    np.testing.assert_allclose(again, lstmconv.reference.run(model, x), rtol=0, atol=1e-6)
