"""``.keras`` written without Keras (formats/keras/archive.py): Keras loads it (safe mode), it
computes as the reference for every variant Keras holds, it holds what the Keras-built path
(formats/keras/live.py ``write``) writes (the config and metadata byte for byte, the weights
file's groups, datasets and attributes, the values bit for bit), the same model gives the same
bytes, and writing it imports no framework (nor h5py)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import random_layer

import lstmconv
from lstmconv.formats.keras import archive
from lstmconv.ir import Activation, Direction, Kind, Model
from lstmconv.plain import PlainKind, PlainLayer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ATOL = 2e-5
BI = Direction.BIDIRECTIONAL


def _reversed(layer):
    return dataclasses.replace(layer, reversed_output=True)


def _variants() -> dict[str, Model]:
    rng = np.random.default_rng(17)

    def layer(kind, inputs, hidden, **options):
        reset_after = options.pop("reset_after", True)
        made = random_layer(rng, kind, inputs, hidden, **options)
        return dataclasses.replace(made, reset_after=reset_after) if kind is Kind.GRU else made

    hard, elu = Activation("hard_sigmoid", 1.0 / 6.0, 0.5), Activation("elu", 1.0)
    variants = {
        f"{kind.value}-{direction.value}": Model((layer(kind, 4, 5, direction=direction, name="x"),))
        for kind in Kind
        for direction in (Direction.FORWARD, BI)
    }
    variants |= {
        f"bidirectional-{merge}": Model(
            (dataclasses.replace(layer(Kind.LSTM, 4, 5, direction=BI, name="x"), merge=merge),)
        )
        for merge in ("sum", "mul", "ave")
    }
    variants |= {
        f"go_backwards-{kind.value}": Model(
            (_reversed(layer(kind, 4, 3, direction=Direction.REVERSE, name="back")),)
        )
        for kind in Kind
    }
    variants |= {
        "gru-reset-before": Model((layer(Kind.GRU, 4, 5, reset_after=False, name="g"),)),
        "gru-reset-before-bidirectional": Model(
            (layer(Kind.GRU, 4, 5, reset_after=False, direction=BI, name="g"),)
        ),
        "no-bias": Model((layer(Kind.LSTM, 4, 3, bias=False, name="a"), layer(Kind.GRU, 3, 2, bias=False))),
        "activations": Model(
            (
                layer(Kind.LSTM, 4, 3, name="a", activations=(hard, Activation("relu"), Activation("relu"))),
                layer(Kind.GRU, 3, 3, name="b", activations=(Activation("sigmoid"), Activation("softsign"))),
                layer(Kind.RNN, 3, 3, name="c", activations=(Activation("leaky_relu", 0.2),)),
                layer(Kind.RNN, 3, 2, name="d", activations=(Activation("affine", 1.0, 0.0),)),
                layer(Kind.LSTM, 2, 2, name="e", activations=(Activation("softplus"), elu, elu)),
            )
        ),
        "stacked": Model(
            (
                layer(Kind.LSTM, 4, 6, direction=BI, name="enc"),
                layer(Kind.GRU, 12, 5, reset_after=False, name="dec"),
                layer(Kind.RNN, 5, 3, name="out.layer"),
            )
        ),
        "separate-chains": Model(
            (
                layer(Kind.GRU, 4, 3, name="a"),
                layer(Kind.LSTM, 3, 2, direction=BI, name="b"),
                layer(Kind.RNN, 7, 2, name="c"),
                layer(Kind.LSTM, 2, 2, name="d"),
            ),
            links=(("a", "b"),),
        ),
        "same-names": Model((layer(Kind.LSTM, 4, 3, name="x/1"), layer(Kind.LSTM, 3, 3, name="x.1"))),
    }
    #: Keras lists a deeper chain's layers first: this model reads back reordered (as Keras
    #: writes it), so it is checked for its bytes only.
    variants["chains-reordered"] = Model(
        (layer(Kind.RNN, 7, 2, name="c"), layer(Kind.GRU, 4, 3, name="a"), layer(Kind.LSTM, 3, 2, name="b")),
        links=(("a", "b"),),
    )
    variants["stacked-float16"] = variants["stacked"].astype("float16")
    variants["stacked-float64"] = variants["stacked"].astype("float64")
    return variants


VARIANTS = _variants()


@pytest.mark.parametrize("name", [name for name in VARIANTS if name != "chains-reordered"])
def test_keras_loads_the_archive_and_it_computes_as_the_reference(tmp_path, keras, name: str) -> None:
    model = VARIANTS[name]
    path = str(tmp_path / "m.keras")
    archive.write(model, path)  # lstmconv.write's read-back check runs one chain only
    loaded = keras.saving.load_model(path, safe_mode=True)
    chains = model.chains()
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 6, chain[0].input_size)) for chain in chains]
    dtype = str(model.layers[0].dtype)
    outputs = loaded([x.astype(dtype) for x in xs] if len(chains) > 1 else xs[0].astype(dtype))
    outputs = outputs if len(chains) > 1 else [outputs]
    atol = 4e-3 if dtype == "float16" else ATOL
    assert len(outputs) == len(chains)
    for chain, x, out in zip(chains, xs, outputs, strict=True):
        expected = lstmconv.reference.run(Model(chain), x.astype(dtype))
        np.testing.assert_allclose(np.asarray(out, dtype=np.float64), expected, rtol=0, atol=atol)


def _walk(path: Path) -> list[tuple[str, tuple]]:
    """The weights file of a ``.keras`` archive as h5py reads it: every group and dataset in
    h5py's order, with its attributes (value, Python type, HDF5 string type, shape), a
    dataset's shape, dtype, storage layout and values' bytes."""
    import h5py

    def attributes(node) -> dict[str, tuple]:
        found = {}
        for key in node.attrs:
            stored = node.attrs.get_id(key)
            value = node.attrs[key]
            found[key] = (value, type(value), h5py.check_string_dtype(stored.dtype), stored.shape)
        return found

    walked: list[tuple[str, tuple]] = []

    def visit(name: str, node) -> None:
        if isinstance(node, h5py.Dataset):
            layout = node.id.get_create_plist().get_layout()
            values = node[()]
            kept = (node.shape, node.dtype.str, layout, node.compression, values.tobytes())
            walked.append((name, ("dataset", attributes(node), *kept)))
        else:
            walked.append((name, ("group", attributes(node), list(node))))

    with (
        zipfile.ZipFile(path) as archive,
        archive.open("model.weights.h5") as member,
        h5py.File(member) as h5,
    ):
        walked.append(("/", ("group", attributes(h5), list(h5))))
        h5.visititems(visit)
    return walked


def _holds_what_keras_writes(ours: Path, theirs: Path, keras) -> None:
    """The config and metadata byte for byte what Keras writes (but for another Keras's own
    version in metadata.json), the members stored and dated 1980 in Keras's order, and the
    weights file holding the same groups, datasets (names, shapes, dtypes, values bit for bit)
    and attributes as Keras's."""
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        assert a.testzip() is None
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        assert {(i.compress_type, i.date_time) for i in a.infolist()} == {
            (zipfile.ZIP_STORED, (1980, 1, 1, 0, 0, 0))
        }
        assert a.read("config.json") == b.read("config.json")
        if keras.__version__ == archive.KERAS_VERSION:
            assert a.read("metadata.json") == b.read("metadata.json")
        else:
            assert json.loads(a.read("metadata.json"))["date_saved"] == archive.DATE_SAVED
    assert _walk(ours) == _walk(theirs)


@pytest.mark.parametrize("name", [*VARIANTS, "stacked-bfloat16"])
def test_the_archive_holds_what_keras_writes_and_is_reproducible(tmp_path, keras, name: str) -> None:
    from lstmconv.formats.keras import live

    model = VARIANTS[name] if name in VARIANTS else VARIANTS["stacked"].astype("bfloat16")
    ours = tmp_path / "ours.keras"
    archive.write(model, str(ours))
    live.write(model, str(tmp_path / "keras.keras"))
    _holds_what_keras_writes(ours, tmp_path / "keras.keras", keras)
    archive.write(model, str(tmp_path / "again.keras"))
    assert (tmp_path / "again.keras").read_bytes() == ours.read_bytes()


def test_the_weights_file_is_written_in_place_without_h5py_but_for_bfloat16(tmp_path, monkeypatch) -> None:
    """Streamed straight into the archive: nothing beside it, h5py not called; bfloat16 (no
    HDF5 type) still goes through h5py."""
    import h5py

    calls = []
    monkeypatch.setattr(h5py, "File", lambda *a, **k: calls.append(a) or pytest.fail("h5py used"))
    folder = tmp_path / "out"
    folder.mkdir()
    archive.write(VARIANTS["stacked"], str(folder / "m.keras"))
    assert calls == [] and os.listdir(folder) == ["m.keras"]
    monkeypatch.undo()
    seen = []
    monkeypatch.setattr(archive, "write_weights", lambda plan, path: seen.append(Path(path).touch()))
    monkeypatch.setattr(archive, "zip_archive", lambda *a: None)
    archive.write(VARIANTS["stacked"].astype("bfloat16"), str(folder / "b.keras"))
    assert len(seen) == 1


def test_the_weights_member_holds_the_hdf5_file_exactly(tmp_path) -> None:
    """The member's size is the HDF5 file's end-of-file address, and the CRC-32 is right."""
    path = tmp_path / "m.keras"
    archive.write(VARIANTS["stacked-float16"], str(path))
    with zipfile.ZipFile(path) as opened:
        data = opened.read("model.weights.h5")  # zipfile checks the CRC-32
        info = opened.getinfo("model.weights.h5")
    assert data[:8] == b"\x89HDF\r\n\x1a\n" and int.from_bytes(data[40:48], "little") == len(data)
    assert info.file_size == info.compress_size == len(data)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "fixture",
    [
        "keras3_stacked_bidir.keras",
        "keras3_gru_rnn.keras",
        "torch_export_lstm.onnx",
        "torch_checkpoint.pt",
        "torch_export_gru.onnx",
        "torch_safetensors.safetensors",
        "lstmconv_npz.npz",
    ],
)
def test_the_fixtures_written_both_ways_hold_the_same(tmp_path, keras, fixture: str) -> None:
    from lstmconv.formats.keras import live

    model = lstmconv.read(FIXTURES / fixture)
    archive.write(model, str(tmp_path / "ours.keras"))
    live.write(model, str(tmp_path / "keras.keras"))
    _holds_what_keras_writes(tmp_path / "ours.keras", tmp_path / "keras.keras", keras)
    archive.write(model, str(tmp_path / "again.keras"))
    assert _digest(tmp_path / "again.keras") == _digest(tmp_path / "ours.keras")
    ours, theirs = (
        keras.saving.load_model(tmp_path / f, safe_mode=True) for f in ("ours.keras", "keras.keras")
    )
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal((2, 5, tensor.shape[-1])).astype("float32") for tensor in ours.inputs]
    for a, b in zip(keras.tree.flatten(ours(xs)), keras.tree.flatten(theirs(xs)), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))  # the same weights, bit for bit


def test_the_config_is_what_serialize_keras_object_gives(keras) -> None:
    from lstmconv.formats.keras import live

    model = VARIANTS["separate-chains"]
    plan, ends = archive._plan(model)
    ours = archive._functional(plan, ends)
    theirs = keras.saving.serialize_keras_object(live.build(model))
    assert json.loads(json.dumps(ours)) == json.loads(json.dumps(theirs))


def test_plain_layers_go_through_keras(tmp_path, monkeypatch) -> None:
    """What the writer does not cover (plain layers around the recurrent ones) is Keras's."""
    from lstmconv import registry

    rng = np.random.default_rng(4)
    dense = PlainLayer(PlainKind.DENSE, "head", {"weight": rng.standard_normal((2, 5)).astype("float32")})
    model = Model((random_layer(rng, Kind.LSTM, 4, 5, name="x"),), around=(dense,))
    assert not archive.covers(model) and archive.covers(Model(model.layers))
    called = []
    fake = type("Live", (), {"write": staticmethod(lambda m, p, **o: called.append((m, p)))})
    monkeypatch.setattr(registry.Format, "load_live", lambda self, purpose="": fake)
    archive.write(model, str(tmp_path / "m.keras"))
    assert called == [(model, str(tmp_path / "m.keras"))]
    assert not (tmp_path / "m.keras").exists()


_NO_FRAMEWORK = """
import sys
from lstmconv.cli import main
code = main(sys.argv[1:])
loaded = sorted(n for n in ("keras", "tensorflow", "torch", "onnx", "tf_keras") if n in sys.modules)
print("LOADED", loaded)
print("H5PY", "h5py" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "fixture",
    ["keras3_stacked_bidir.keras", "torch_checkpoint.pt", "torch_export_gru.onnx", "lstmconv_npz.npz"],
)
def test_writing_keras_imports_neither_keras_nor_tensorflow(tmp_path, fixture: str) -> None:
    """Nor h5py: a Keras-written .keras source is read by lstmconv's own HDF5 parser (.h5read)."""
    dest = tmp_path / "out.keras"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        "-c",
        _NO_FRAMEWORK,
        "convert",
        str(FIXTURES / fixture),
        str(dest),
        "--no-verify",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
    assert "H5PY False" in result.stdout
    again = lstmconv.read(dest)
    x = np.random.default_rng(5).standard_normal((2, 4, again.input_size))
    np.testing.assert_allclose(
        lstmconv.reference.run(again, x),
        lstmconv.reference.run(lstmconv.read(FIXTURES / fixture), x),
        atol=1e-5,
    )
