"""lstmconv's own HDF5 reader (formats/keras/h5read.py): it reads the weights of files real
Keras 3 wrote (and lstmconv's h5write) into the same Models as h5py does, bit for bit, without
importing h5py, and the conversion computes as Keras's own forward pass; damaged or unusual
structures decline to h5py (or fail as LstmconvError), never crash or hang."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from helpers import random_layer

import lstmconv
from lstmconv import errors
from lstmconv.formats.keras import files, h5read
from lstmconv.ir import Direction, Kind, Model

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
#: float32 through NumPy's reference against Keras's TensorFlow kernels; float16 weights are
#: computed in float16 by Keras.
ATOL = {"float32": 2e-5, "float16": 2e-2}


def _models(keras, rng) -> dict[str, tuple[object, str]]:
    """Real Keras models, each its recurrent layers only (so Keras's output is theirs) or with
    plain layers around them, and the dtype of their weights."""
    layers = keras.layers

    def made(*stack, features=3, dtype="float32", inputs=None):
        start = inputs if inputs is not None else keras.Input((5, features))
        x = start
        for layer in stack:
            x = layer(x)
        return keras.Model(start, x), dtype

    return {
        "lstm": made(layers.LSTM(4, return_sequences=True)),
        "gru-reset-after": made(layers.GRU(4, return_sequences=True, reset_after=True)),
        "gru-reset-before": made(layers.GRU(3, return_sequences=True, reset_after=False)),
        "simple-rnn": made(layers.SimpleRNN(5, return_sequences=True)),
        "bidirectional": made(layers.Bidirectional(layers.LSTM(3, return_sequences=True))),
        "stacked": made(
            layers.LSTM(6, return_sequences=True),
            layers.Bidirectional(layers.GRU(4, return_sequences=True)),
            layers.SimpleRNN(3, return_sequences=True),
        ),
        "plain-around": made(
            layers.Embedding(11, 4),
            layers.LSTM(5, return_sequences=True),
            layers.LayerNormalization(),
            layers.Dense(2),
            inputs=keras.Input((5,), dtype="int32"),
        ),
        "float16": made(
            layers.LSTM(4, return_sequences=True, dtype="float16"),
            layers.GRU(3, return_sequences=True, dtype="float16"),
            dtype="float16",
        ),
        "bfloat16": made(  # (TensorFlow's QR, for the orthogonal default, has no bfloat16)
            layers.LSTM(4, return_sequences=True, dtype="bfloat16", recurrent_initializer="glorot_uniform"),
            dtype="bfloat16",
        ),
    }


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory) -> dict[str, tuple[Path, object, str]]:
    """Each model saved by Keras (``model.save``), its weights random and different per gate."""
    from conftest import require

    require("tensorflow")
    keras = require("keras")
    rng = np.random.default_rng(41)
    folder = tmp_path_factory.mktemp("h5read")
    saved = {}
    for name, (model, dtype) in _models(keras, rng).items():
        for weight in model.weights:
            weight.assign(rng.standard_normal(tuple(weight.shape)).astype(np.float32))  # cast by Keras
        path = folder / f"{name}.keras"
        model.save(path)
        saved[name] = (path, model, dtype)
    return saved


def _picture(value: object, values: bool = True) -> object:
    """Everything a Model holds, arrays as (dtype, shape, bytes): equal pictures, equal bits
    (without ``values``, the arrays' dtypes and shapes only)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes() if values else None)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (
            type(value).__name__,
            tuple((f.name, _picture(getattr(value, f.name), values)) for f in fields),
        )
    if isinstance(value, Mapping):
        return ("map", tuple((key, _picture(item, values)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_picture(item, values) for item in value)
    return value


def _both(path: Path, probe: bool = False) -> tuple[Model, Model]:
    return files._read_path(str(path), probe=probe, own=True), files._read_path(str(path), probe=probe)


NAMES = ["lstm", "gru-reset-after", "gru-reset-before", "simple-rnn", "bidirectional", "stacked"]


@pytest.mark.parametrize("name", [*NAMES, "plain-around", "float16", "bfloat16"])
def test_keras_written_files_read_as_h5py_reads_them(keras_files, name: str) -> None:
    path, _, dtype = keras_files[name]
    ours, theirs = _both(path)
    assert _picture(ours) == _picture(theirs)
    assert {array.dtype.name for layer in ours for cell in layer.cells for _, array in cell.tensors()} == {
        dtype
    }
    if name == "plain-around":
        assert [plain.kind.value for plain in ours.around] == [plain.kind.value for plain in theirs.around]
        assert len(ours.around) == 3
    header = files._read_path(str(path), probe=True, own=True)  # shapes exact, every value zero
    assert _picture(header, values=False) == _picture(theirs, values=False)
    assert all(not a.any() for layer in header for cell in layer.cells for _, a in cell.tensors())


def test_the_fixtures_read_as_h5py_reads_them() -> None:
    for path in sorted(FIXTURES.glob("*.keras")):
        ours, theirs = _both(path)
        assert _picture(ours) == _picture(theirs), path.name
        assert _picture(ours.skipped) == _picture(theirs.skipped), path.name


#: What one rounding of a merged bias in each dtype may move the reference's output.
MERGED_BIAS_ATOL = {"float32": 1e-6, "float16": 5e-3, "bfloat16": 3e-2}


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_lstmconvs_own_keras_files_read_as_written(tmp_path, dtype: str) -> None:
    """h5write's files (and, for bfloat16, h5py's, which lstmconv writes those with)."""
    rng = np.random.default_rng(3)
    model = Model(
        (
            random_layer(rng, Kind.LSTM, 4, 6, direction=Direction.BIDIRECTIONAL, name="enc"),
            random_layer(rng, Kind.GRU, 12, 5, name="dec"),
            random_layer(rng, Kind.RNN, 5, 3, name="out"),
        )
    ).astype(dtype)
    path = tmp_path / "own.keras"
    lstmconv.write(model, path)
    ours, theirs = _both(path)
    assert _picture(ours) == _picture(theirs)
    for written, read in zip(model, ours, strict=True):  # the kernels bit for bit (biases are merged)
        for cell, other in zip(written.cells, read.cells, strict=True):
            for key in ("w_ih", "w_hh"):
                for gate, array in getattr(cell, key).items():
                    assert np.array_equal(array, getattr(other, key)[gate]), (key, gate)
    x = rng.standard_normal((2, 5, 4))
    expected = lstmconv.reference.run(model, x)
    np.testing.assert_allclose(lstmconv.reference.run(ours, x), expected, atol=MERGED_BIAS_ATOL[dtype])


def test_values_are_read_only_views_of_the_archive(keras_files) -> None:
    """No copy of the weights: each dataset's array lies over the mapping of the file."""
    import mmap

    path = keras_files["lstm"][0]
    with zipfile.ZipFile(path) as archive:
        reader = files._own_member(str(path), archive, archive.getinfo("model.weights.h5"), False)
    kernel = reader.handle["layers/lstm/cell/vars/0"]
    values = kernel.values()
    assert isinstance(kernel.file.buffer.data, mmap.mmap)
    assert not values.flags.writeable and not values.flags.owndata
    assert values.shape == (3, 16)


_NO_H5PY = """
import sys
import lstmconv
for dest in sys.argv[2:]:
    lstmconv.convert(sys.argv[1], dest, verify=False)
print("H5PY", "h5py" in sys.modules)
"""


@pytest.mark.parametrize("name", ["stacked", "bidirectional", "float16"])
def test_converting_a_keras_file_imports_no_h5py_and_computes_as_keras(keras_files, tmp_path, name) -> None:
    path, model, dtype = keras_files[name]
    dests = [tmp_path / "out.safetensors", tmp_path / "out.npz"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", _NO_H5PY, str(path), *map(str, dests)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "H5PY False" in result.stdout
    x = np.random.default_rng(8).standard_normal((2, 5, 3)).astype(np.float32)
    expected = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    for dest in dests:
        got = lstmconv.reference.run(lstmconv.read(dest), x)
        np.testing.assert_allclose(got, expected, atol=ATOL[dtype], rtol=ATOL[dtype], err_msg=dest.name)


def test_swapping_two_gates_changes_the_output(keras_files) -> None:
    """The check above can fail: the LSTM's i and f swapped disagree with Keras."""
    path, model, _ = keras_files["lstm"]
    read = lstmconv.read(path)
    cell = read.layers[0].cells[0]
    swapped_gates = {**cell.w_ih, "i": cell.w_ih["f"], "f": cell.w_ih["i"]}
    swapped = dataclasses.replace(
        read,
        layers=(dataclasses.replace(read.layers[0], cells=(dataclasses.replace(cell, w_ih=swapped_gates),)),),
    )
    x = np.random.default_rng(8).standard_normal((2, 5, 3)).astype(np.float32)
    expected = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    assert np.allclose(lstmconv.reference.run(read, x), expected, atol=ATOL["float32"])
    assert not np.allclose(lstmconv.reference.run(swapped, x), expected, atol=1e-2)


# -- damaged and unusual structures -----------------------------------------------------------------
def _member(path: Path) -> tuple[dict[str, bytes], bytes]:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return members, members["model.weights.h5"]


def _archive(folder: Path, members: dict[str, bytes], weights: bytes, name: str = "x.keras") -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, data in members.items():
            archive.writestr(key, weights if key == "model.weights.h5" else data)
    return path


def _walk_everything(data: bytes) -> None:
    """Parse, then read every dataset and attribute: the parser's whole surface."""
    handle = h5read.open_buffer(data, 0, len(data), "x")
    nodes: list[h5read.Node] = [handle]
    handle.visititems(lambda _, node: nodes.append(node))
    for node in nodes:
        for key in node.attrs:
            node.attrs[key]
        if isinstance(node, h5read.Dataset):
            values = node.values()
            assert values.nbytes == node.nbytes


def _judged(data: bytes) -> str:
    """'read' or 'declined'; anything else raised is a failure of the test."""
    started = time.monotonic()
    try:
        _walk_everything(data)
        outcome = "read"
    except h5read.Decline:
        outcome = "declined"
    assert time.monotonic() - started < 5
    return outcome


@pytest.fixture(scope="module")
def weights(keras_files) -> tuple[dict[str, bytes], bytes]:
    return _member(keras_files["stacked"][0])


def test_truncated_weights_decline(weights) -> None:
    _, data = weights
    assert _judged(data) == "read"
    for end in sorted({*range(0, 600, 7), *range(0, len(data), max(1, len(data) // 150))}):
        assert _judged(data[:end]) == "declined", end


def test_flipped_bytes_decline_or_read_within_the_file(weights) -> None:
    _, data = weights
    rng = np.random.default_rng(2026)
    outcomes = {"read": 0, "declined": 0}
    for _ in range(400):
        damaged = bytearray(data)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            damaged[at] ^= int(rng.integers(1, 256))
        outcomes[_judged(bytes(damaged))] += 1
    assert outcomes["declined"] > 50  # the metadata is a good part of a small file


def test_flipped_bytes_through_lstmconv_read_give_a_model_or_an_lstmconv_error(weights, tmp_path) -> None:
    members, data = weights
    rng = np.random.default_rng(7)
    metadata = min(node.offset for node in _datasets(data) if node.nbytes)
    for index in range(30):
        damaged = bytearray(data)
        damaged[int(rng.integers(0, metadata))] ^= int(rng.integers(1, 256))
        path = _archive(tmp_path, members, bytes(damaged), f"flip{index}.keras")
        with contextlib.suppress(errors.LstmconvError):
            lstmconv.read(path)


def _datasets(data: bytes) -> list[h5read.Dataset]:
    handle = h5read.open_buffer(data, 0, len(data), "x")
    found: list[h5read.Dataset] = []
    handle.visititems(lambda _, node: found.append(node) if isinstance(node, h5read.Dataset) else None)
    return found


def _patched(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1, old
    return data.replace(old, new)


def _same_decision(tmp_path: Path, members: dict[str, bytes], damaged: bytes) -> None:
    """Declined by h5read, the file is judged by h5py's read exactly as before."""
    with pytest.raises(h5read.Decline):
        _walk_everything(damaged)
    path = _archive(tmp_path, members, damaged)
    with pytest.raises(h5read.Decline):
        files._read_path(str(path), own=True)
    try:  # h5py's read as lstmconv.read used it alone (its errors made FormatErrors there)
        expected: object = files._read_path(str(path))
    except errors.LstmconvError as error:
        expected = type(error)
    except (OSError, KeyError, ValueError, TypeError):
        expected = errors.FormatError
    try:
        got: object = lstmconv.read(path)
    except errors.LstmconvError as error:
        got = type(error)
    if isinstance(expected, Model):
        assert isinstance(got, Model) and _picture(got.layers) == _picture(expected.layers)
    else:
        assert got is expected


def test_a_dataset_past_the_end_declines(weights, tmp_path) -> None:
    members, data = weights
    kernel = _datasets(data)[0]
    layout = struct.pack("<BBQQ", 3, 1, kernel.offset, kernel.nbytes)
    past = struct.pack("<BBQQ", 3, 1, len(data) - kernel.nbytes // 2, kernel.nbytes)
    _same_decision(tmp_path, members, _patched(data, layout, past))


def test_huge_dims_decline(weights, tmp_path) -> None:
    members, data = weights
    kernel = _datasets(data)[0]
    dims = struct.pack(f"<{kernel.ndim}Q", *kernel.shape)
    huge = struct.pack(f"<{kernel.ndim}Q", 1 << 40, 1 << 40)
    _same_decision(tmp_path, members, _patched(data, dims + dims, huge + huge))


def test_a_group_that_contains_itself_declines(weights, tmp_path) -> None:
    members, data = weights
    handle = h5read.open_buffer(data, 0, len(data), "x")
    parent, child = handle["layers"], handle["layers/lstm"]
    entry = struct.pack("<Q", child.id)
    assert data.count(entry) == 1  # the one symbol-table entry naming it
    _same_decision(tmp_path, members, data.replace(entry, struct.pack("<Q", parent.id)))


def test_a_second_link_to_one_dataset_declines(weights) -> None:
    _, data = weights
    handle = h5read.open_buffer(data, 0, len(data), "x")
    first, second = handle["layers/lstm/cell/vars/0"], handle["layers/lstm/cell/vars/1"]
    damaged = data.replace(struct.pack("<Q", second.id), struct.pack("<Q", first.id))
    with pytest.raises(h5read.Decline, match="linked twice"):
        _walk_everything(damaged)
