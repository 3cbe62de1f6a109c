"""Structure-aware fuzzing (tests/fuzzing.py's strategies): well-formed containers with hostile
fields. Every read ends in a clean read or one LstmconvError whose message is one printable
line; nothing runs, nothing from outside the model is read. Few examples here (CI); set
LSTMCONV_FUZZ_EXAMPLES for more (scripts/fuzz does)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import fuzzing
from conftest import require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstmconv

EXAMPLES = int(os.environ.get("LSTMCONV_FUZZ_EXAMPLES", "15"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="LSTMCONV_FUZZ_EXAMPLES" not in os.environ,  # CI: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _read_both_ways(path: Path) -> None:
    before = set(os.listdir("."))
    for header_only in (True, False):
        try:
            lstmconv.read(path, header_only=header_only)
        except lstmconv.LstmconvError as error:
            text = str(error)
            assert "\n" not in text and "\x1b" not in text, text
            assert "SECRET" not in text
    assert set(os.listdir(".")) == before, "something ran and left a file"


@SETTINGS
@given(members=fuzzing.torch_zips(), duplicate=st.booleans())
def test_torch_zips_with_hostile_tensor_records(members, duplicate) -> None:
    require("torch")
    with tempfile.TemporaryDirectory() as folder:
        name = next((m for m in members if "/data/" in m), None) if duplicate else None
        _read_both_ways(fuzzing.write_zip(Path(folder) / "model.pt", members, name))


@SETTINGS
@given(model=fuzzing.onnx_models())
def test_onnx_models_with_hostile_fields(model) -> None:
    require("onnx")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(model)
        (Path(folder) / "w.bin").write_bytes(bytes(64))
        _read_both_ways(path)


@SETTINGS
@given(archive=fuzzing.zip_archives(("config.json", "metadata.json", "model.weights.h5")))
def test_keras_zips_with_hostile_members(archive) -> None:
    members, duplicate, deflate = archive
    with tempfile.TemporaryDirectory() as folder:
        _read_both_ways(fuzzing.write_zip(Path(folder) / "model.keras", members, duplicate, deflate))


@SETTINGS
@given(archive=fuzzing.zip_archives(("__lstmconv__.npy", "l/forward/w_ih/i.npy")))
def test_npz_zips_with_hostile_members(archive) -> None:
    members, duplicate, deflate = archive
    members = {**members, **fuzzing.npz_members({"version": 1, "layers": [{"name": "l\n\x1b"}]})}
    with tempfile.TemporaryDirectory() as folder:
        _read_both_ways(fuzzing.write_zip(Path(folder) / "model.npz", members, duplicate, deflate))


@SETTINGS
@given(data=st.data())
def test_hdf5_trees_with_hostile_links_and_storage(data) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _read_both_ways(data.draw(fuzzing.hdf5_trees(Path(folder))))
