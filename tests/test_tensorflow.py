"""TensorFlow's own files read without TensorFlow: the fixtures against TensorFlow's outputs
(in a process where tensorflow, keras and tf_keras cannot be imported), TF1 gate orders on
arange-tagged kernels, forget_bias folded exactly and said, and the CRC-32C against its
definition."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tf_bundles

import lstmconv
from lstmconv import registry
from lstmconv.errors import UnsupportedFeatureError
from lstmconv.formats.tensorflow import crc32c

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
TF_FIXTURES = sorted(name for name, entry in MANIFEST.items() if entry["file"].startswith("tensorflow/"))
ATOL = 2e-5
#: Every recurrent layer inspect must name, per fixture.
LAYERS = {
    "tf1_lstm": ["rnn/lstm_cell"],
    "tf1_lstm_peephole_proj": ["rnn/lstm_cell"],
    "tf1_basic_lstm": ["rnn/basic_lstm_cell"],
    "tf1_gru": ["rnn/gru_cell"],
    "tf1_basic_rnn": ["rnn/basic_rnn_cell"],
    "tf1_cudnn_lstm": [
        "cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell",
        "cudnn_lstm/rnn/multi_rnn_cell/cell_1/cudnn_compatible_lstm_cell",
    ],
    "tf1_cudnn_gru": ["cudnn_gru/rnn/multi_rnn_cell/cell_0/cudnn_compatible_gru_cell"],
    "tf1_gru_block": ["rnn/gru_cell"],
    "tf1_savedmodel": ["rnn/gru_cell"],
    "tf1_multi": ["rnn/multi_rnn_cell/cell_0/lstm_cell", "rnn/multi_rnn_cell/cell_1/gru_cell"],
    "tf1_bidir": ["bidirectional_rnn/lstm_cell"],
    "tf1_lstm_block_fused": ["lstm_fused_cell"],
    "keras3_checkpoint": ["encoder", "middle", "head"],
    "tf_keras_checkpoint": ["encoder", "middle", "head"],
    "tf_keras_save_weights": ["encoder", "middle", "head"],
    "tf_keras_sharded": ["lstm", "gru"],
    "tf_keras_stacked_cells": ["stacked_rnn_cells/lstm_cell", "stacked_rnn_cells/gru_cell"],
    "keras3_checkpoint_with_optimizer": ["encoder", "middle", "head"],
    "tf_keras_savedmodel": ["gru_before", "relu_lstm"],
    "keras3_export": ["first", "second"],
}

_BLOCKED = """
import json, sys
import numpy as np
for name in ("tensorflow", "keras", "tf_keras"):
    sys.modules[name] = None
import lstmconv
from lstmconv import api
out = {}
for name, entry in json.loads(sys.argv[1]).items():
    with np.load(entry["io"]) as data:
        x, y = data["x"], data["y"]
    model = lstmconv.read(entry["file"])
    error = float(np.abs(lstmconv.reference.run(model, x) - y).max())
    info = api.inspect(entry["file"])
    out[name] = {"error": error, "layers": [layer["name"] for layer in info["layers"]]}
loaded = [m for m in ("tensorflow", "keras", "tf_keras") if sys.modules.get(m) is not None]
print(json.dumps({"results": out, "loaded": loaded}))
"""


def test_the_fixtures_cover_every_tensorflow_source() -> None:
    assert set(TF_FIXTURES) == set(LAYERS)
    formats = {registry.for_path(FIXTURES / MANIFEST[name]["file"]).name for name in TF_FIXTURES}
    assert formats == {"tf-checkpoint", "savedmodel"}


def test_fixtures_match_tensorflow_with_tensorflow_blocked() -> None:
    entries = {
        name: {"file": str(FIXTURES / MANIFEST[name]["file"]), "io": str(FIXTURES / MANIFEST[name]["io"])}
        for name in TF_FIXTURES
    }
    env = {**os.environ, "PYTHONPATH": str(Path(lstmconv.__file__).parent.parent)}
    run = subprocess.run(
        [sys.executable, "-c", _BLOCKED, json.dumps(entries)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    for name in TF_FIXTURES:
        result = report["results"][name]
        assert result["error"] < ATOL, (name, result["error"])
        assert result["layers"] == LAYERS[name], name
    assert "forget_bias is not stored in a TF1 checkpoint; assumed 1" in run.stderr


@pytest.mark.parametrize("ending", ["", ".index", ".data-00000-of-00001"])
def test_a_checkpoint_is_named_by_prefix_index_or_shard(ending: str) -> None:
    path = f"{FIXTURES / 'tensorflow' / 'tf1_gru'}{ending}"
    assert registry.for_path(path).name == "tf-checkpoint"
    model = lstmconv.read(path)
    assert [(layer.name, layer.reset_after) for layer in model] == [("rnn/gru_cell", False)]


def test_a_training_folder_reads_its_latest_checkpoint(tmp_path) -> None:
    import shutil

    for path in (FIXTURES / "tensorflow").glob("tf1_gru.*"):
        shutil.copy(path, tmp_path / path.name.replace("tf1_gru", "ckpt-7"))
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-7"\n'
        'all_model_checkpoint_paths: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-7"\n'
    )
    assert registry.for_path(tmp_path).name == "tf-checkpoint"
    assert [layer.name for layer in lstmconv.read(tmp_path)] == ["rnn/gru_cell"]
    (tmp_path / "checkpoint").write_text("all_model_checkpoint_paths: 3\n")
    with pytest.raises(lstmconv.LstmconvError, match="names no model_checkpoint_path"):
        lstmconv.read(tmp_path)


def _tagged_lstm(tmp_path: Path, inputs: int = 2, hidden: int = 3) -> Path:
    kernel = np.arange((inputs + hidden) * 4 * hidden, dtype="<f4").reshape(inputs + hidden, 4 * hidden)
    bias = 1000 + np.arange(4 * hidden, dtype="<f4")
    tensors = {
        "rnn/lstm_cell/kernel": tf_bundles.Tensor(tf_bundles.DT_FLOAT, kernel.shape, kernel.tobytes()),
        "rnn/lstm_cell/bias": tf_bundles.Tensor(tf_bundles.DT_FLOAT, bias.shape, bias.tobytes()),
    }
    return tf_bundles.write(tmp_path / "ckpt-3", tensors)


def test_variables_of_cells_lstmconv_does_not_know_are_named(tmp_path, caplog) -> None:
    tensors = tf_bundles.lstm_cell()
    unknown = np.zeros((5, 12), "<f4")
    for name in ("rnn/nas_cell/kernel", "rnn/lstm_cell/kernel/Adam"):
        tensors[name] = tf_bundles.Tensor(tf_bundles.DT_FLOAT, unknown.shape, unknown.tobytes())
    with caplog.at_level(logging.WARNING):
        model = lstmconv.read(tf_bundles.write(tmp_path / "ckpt", tensors), forget_bias=1.0)
    assert [layer.name for layer in model] == ["rnn/lstm_cell"]
    assert "not read (no LSTM, GRU or RNN cell lstmconv knows): rnn/nas_cell/kernel" in caplog.text
    assert "Adam" not in caplog.text  # an optimizer slot of a read variable is not a layer


def test_tf1_lstm_gates_i_j_f_o_over_x_then_h(tmp_path) -> None:
    inputs, hidden = 2, 3
    path = _tagged_lstm(tmp_path, inputs, hidden)
    kernel = np.arange((inputs + hidden) * 4 * hidden, dtype="f4").reshape(inputs + hidden, 4 * hidden)
    cell = lstmconv.read(path, forget_bias=0.5)[0].cells[0]
    for tf_index, gate in enumerate("igfo"):  # TF's j is the IR's candidate g
        block = slice(tf_index * hidden, (tf_index + 1) * hidden)
        assert np.array_equal(cell.w_ih[gate], kernel[:inputs, block].T)
        assert np.array_equal(cell.w_hh[gate], kernel[inputs:, block].T)
        assert np.array_equal(cell.b_ih[gate], 1000 + np.arange(4 * hidden, dtype="f4")[block])
    assert np.array_equal(cell.b_hh["f"], np.full(hidden, 0.5, "f4"))  # forget_bias, exactly
    assert not cell.b_hh["i"].any() and not cell.b_hh["g"].any() and not cell.b_hh["o"].any()


def test_forget_bias_is_said_when_assumed_and_changes_the_numbers(tmp_path, caplog) -> None:
    prefix = FIXTURES / "tensorflow" / "tf1_lstm"
    with np.load(FIXTURES / MANIFEST["tf1_lstm"]["io"]) as data:
        x, y = data["x"], data["y"]
    with caplog.at_level(logging.WARNING):
        assumed = lstmconv.read(prefix)
    assert "forget_bias is not stored in a TF1 checkpoint; assumed 1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        given = lstmconv.read(prefix, forget_bias=1.0)
        zero = lstmconv.read(prefix, forget_bias=0.0)
    assert "forget_bias" not in caplog.text
    np.testing.assert_allclose(lstmconv.reference.run(given, x), y, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(lstmconv.reference.run(assumed, x), lstmconv.reference.run(given, x))
    assert np.abs(lstmconv.reference.run(zero, x) - y).max() > 1e-2


OPTIONS = json.loads((FIXTURES / "tensorflow" / "options.json").read_text())


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_what_a_checkpoint_cannot_say_comes_from_the_options(name: str) -> None:
    """TF1 cell_clip clips the carried cell state, proj_clip the projected h: with the cell's
    options the reader matches TensorFlow; without them it is visibly off."""
    entry = OPTIONS[name]
    with np.load(FIXTURES / entry["io"]) as data:
        x, y = data["x"], data["y"]
    options = {
        key: FIXTURES / value if key == "config" else value for key, value in entry["read_options"].items()
    }
    model = lstmconv.read(FIXTURES / entry["file"], **options)
    np.testing.assert_allclose(lstmconv.reference.run(model, x), y, rtol=0, atol=ATOL)
    for missing in options:
        partial = {key: value for key, value in options.items() if key != missing}
        off = lstmconv.read(FIXTURES / entry["file"], **partial)
        try:
            assert np.abs(lstmconv.reference.run(off, x) - y).max() > 1e-3, missing
        except lstmconv.LstmconvError as error:  # or the defaults do not even fit together
            assert "do not form one stack" in str(error)


def test_a_savedmodel_without_keras_metadata_pb_reads_the_object_graphs_metadata(tmp_path) -> None:
    """TF 2.0-2.4 kept the Keras metadata in SavedUserObject.metadata (field 3) of each object
    of saved_model.pb's object graph (MetaGraphDef 7 > SavedObjectGraph 1 > SavedObject 4)."""
    import shutil

    from lstmconv.formats.tensorflow import savedmodel

    folder = tmp_path / "model"
    shutil.copytree(FIXTURES / "tensorflow" / "tf_keras_savedmodel", folder)
    texts = list(savedmodel._metadata_from_keras_pb((folder / "keras_metadata.pb").read_bytes()))
    (folder / "keras_metadata.pb").unlink()
    field = tf_bundles.field
    objects = b"".join(field(1, field(4, field(1, b"_tf_keras_layer") + field(3, t.encode()))) for t in texts)
    (folder / "saved_model.pb").write_bytes(field(1, 1) + field(2, field(7, objects)))
    model = lstmconv.read(folder)
    assert model["relu_lstm"].activations[1] == lstmconv.Activation("relu")
    assert model["gru_before"].reset_after is False


def test_tf1_gru_gates_r_u_then_the_candidate(tmp_path) -> None:
    inputs, hidden = 2, 3
    gates = np.arange((inputs + hidden) * 2 * hidden, dtype="<f4").reshape(inputs + hidden, 2 * hidden)
    candidate = -1 - np.arange((inputs + hidden) * hidden, dtype="<f4").reshape(inputs + hidden, hidden)
    tensors = {
        f"rnn/gru_cell/{name}": tf_bundles.Tensor(tf_bundles.DT_FLOAT, array.shape, array.tobytes())
        for name, array in (("gates/kernel", gates), ("candidate/kernel", candidate))
    }
    layer = lstmconv.read(tf_bundles.write(tmp_path / "gru", tensors))[0]
    cell = layer.cells[0]
    assert not layer.reset_after and not layer.has_bias
    assert np.array_equal(cell.w_ih["r"], gates[:inputs, :hidden].T)
    assert np.array_equal(cell.w_hh["z"], gates[inputs:, hidden:].T)  # TF's u
    assert np.array_equal(cell.w_ih["n"], candidate[:inputs].T)
    assert np.array_equal(cell.w_hh["n"], candidate[inputs:].T)


def test_cudnn_canonical_forms_hold_no_run_time_forget_bias_and_a_reset_after_gru(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        lstm = lstmconv.read(FIXTURES / "tensorflow" / "tf1_cudnn_lstm")
        gru = lstmconv.read(FIXTURES / "tensorflow" / "tf1_cudnn_gru")[0]
    assert "forget_bias" not in caplog.text
    assert all(not layer.cells[0].b_hh["f"].any() for layer in lstm)
    assert gru.reset_after and gru.cells[0].b_hh["n"].any() and not gru.cells[0].b_hh["r"].any()


def test_savedmodel_options_come_from_the_keras_metadata() -> None:
    model = lstmconv.read(FIXTURES / "tensorflow" / "tf_keras_savedmodel")
    assert model["relu_lstm"].activations[1] == lstmconv.Activation("relu")
    assert model["gru_before"].reset_after is False


def test_inspect_shows_tensorflow_names_and_shapes(capsys) -> None:
    from lstmconv.cli import main

    assert (
        main(["inspect", str(FIXTURES / "tensorflow" / "tf1_lstm_peephole_proj")]) == 0
    )  # -q would print only the headings
    out = capsys.readouterr().out
    assert "rnn/lstm_cell/kernel" in out and "(7, 28)" in out and "gates i·j·f·o over [x; h]" in out
    assert "rnn/lstm_cell/projection/kernel" in out and "(7, 3)" in out
    assert "rnn/lstm_cell/w_f_diag" in out


def test_tensorflow_formats_are_read_only() -> None:
    model = lstmconv.read(FIXTURES / "tensorflow" / "tf1_lstm", forget_bias=1.0)
    with pytest.raises(UnsupportedFeatureError, match="reads tf-checkpoint files but does not write them"):
        lstmconv.write(model, "out.index", format="tf-checkpoint")


@pytest.mark.parametrize("size", [0, 1, 9, 4095, 4096, 70_001, 1 << 20])
def test_crc32c_chunked_equals_bytewise(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    assert crc32c.value(data) == crc32c._bytewise(0xFFFFFFFF, data.tobytes()) ^ 0xFFFFFFFF


def test_crc32c_check_value_and_mask() -> None:
    assert crc32c.value(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c.extend(crc32c.value(b"12345"), b"6789") == 0xE3069283
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert crc32c.unmask(crc32c.mask(value)) == value


@pytest.mark.parametrize("name", ["tf1_multi", "tf_keras_checkpoint", "tf_keras_sharded"])
def test_corrupted_bundles_fail_only_as_lstmconv_errors(name: str, tmp_path) -> None:
    """Random byte flips, truncations and extensions of a real index (and its first shard):
    the reader either reads the model or raises an LstmconvError, nothing else."""
    import shutil

    from lstmconv.errors import LstmconvError
    from lstmconv.formats.tensorflow import checkpoint

    source = FIXTURES / "tensorflow"
    rng = np.random.default_rng(len(name))
    for attempt in range(150):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        for path in source.glob(f"{name}.*"):
            shutil.copy(path, folder / path.name)
        victim = folder / (
            f"{name}.index" if attempt % 3 else next(p.name for p in folder.glob("*.data-00000-*"))
        )
        data = bytearray(victim.read_bytes())
        how = attempt % 5
        if how == 0:
            data = data[: rng.integers(0, len(data))]
        elif how == 1:
            data += rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes()
        else:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(0, len(data))] ^= int(rng.integers(1, 256))
        victim.write_bytes(bytes(data))
        with contextlib.suppress(LstmconvError):
            checkpoint.read(folder / name)


def test_corrupted_savedmodel_metadata_fails_only_as_lstmconv_errors(tmp_path) -> None:
    import shutil

    from lstmconv.errors import LstmconvError
    from lstmconv.formats.tensorflow import savedmodel

    rng = np.random.default_rng(3)
    for attempt in range(120):
        folder = tmp_path / str(attempt)
        shutil.copytree(FIXTURES / "tensorflow" / "tf_keras_savedmodel", folder)
        victim = folder / ("keras_metadata.pb" if attempt % 2 else "saved_model.pb")
        data = bytearray(victim.read_bytes())
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(0, len(data))] ^= int(rng.integers(1, 256))
        victim.write_bytes(bytes(data))
        with contextlib.suppress(LstmconvError):
            savedmodel.read(folder)
