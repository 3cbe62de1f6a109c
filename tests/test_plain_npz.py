"""The plain layers in ``.npz`` (#16): the IR itself, readable keys, kept by read(write(m))."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lstmconv
from lstmconv import Kind, Model
from lstmconv.errors import LstmconvError
from lstmconv.plain import PlainKind, PlainLayer


def _model(dtype: str = "float32") -> Model:
    from helpers import random_layer

    rng = np.random.default_rng(31)
    lstm = random_layer(rng, Kind.LSTM, 6, 4, name="lstm")
    if dtype != "float32":
        lstm = lstm.astype(lstmconv.dtypes.resolve(dtype))
    kind = lstmconv.dtypes.resolve(dtype)

    def values(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32).astype(kind)

    around = (
        PlainLayer(PlainKind.EMBEDDING, "emb", {"weight": values(20, 6)}),
        PlainLayer(PlainKind.LAYER_NORM, "norm", {"weight": values(4), "bias": values(4)}, {"epsilon": 1e-3}),
        PlainLayer(
            PlainKind.DENSE, "fc", {"weight": values(3, 4), "bias": values(3)}, {"activation": "softmax"}
        ),
        PlainLayer(PlainKind.DROPOUT, "drop", {}, {"rate": 0.25}),
    )
    return Model((lstm,), around=around, order=("emb", "lstm", "drop", "norm", "fc"))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_npz_keeps_the_plain_layers(tmp_path, dtype: str) -> None:
    model = _model(dtype)
    path = tmp_path / "model.npz"
    lstmconv.write(model, str(path))
    back = lstmconv.read(str(path))
    assert back.order == model.order
    for mine, theirs in zip(model.layers, back.layers):
        for (key, a), (key_back, b) in zip(
            (item for cell in mine.cells for item in cell.tensors()),
            (item for cell in theirs.cells for item in cell.tensors()),
        ):
            assert key == key_back and a.dtype == b.dtype
            np.testing.assert_array_equal(a.astype(np.float32), b.astype(np.float32))
    for mine, theirs in zip(model.around, back.around):
        assert (theirs.kind, theirs.name, dict(theirs.options)) == (mine.kind, mine.name, dict(mine.options))
        assert list(theirs.tensors) == list(mine.tensors)
        for key in mine.tensors:
            assert theirs.tensors[key].dtype == mine.tensors[key].dtype
            np.testing.assert_array_equal(
                theirs.tensors[key].astype(np.float32), mine.tensors[key].astype(np.float32)
            )
    with np.load(path) as archive:  # readable keys: <layer>/<tensor>, PyTorch's orientation
        assert {"emb/weight", "fc/weight", "fc/bias", "norm/weight", "norm/bias"} <= set(archive.files)
        assert archive["fc/weight"].shape == (3, 4)


def test_npz_without_plain_layers_holds_no_plain_entries(tmp_path) -> None:
    path = tmp_path / "model.npz"
    lstmconv.write(Model(_model().layers), str(path))
    with np.load(path) as archive:
        meta = json.loads(archive["__lstmconv__"].item())
        assert "around" not in meta and "order" not in meta
        assert all(key.startswith("lstm/forward/") for key in archive.files if key != "__lstmconv__")


def test_npz_with_a_broken_plain_entry_is_refused_naming_it(tmp_path) -> None:
    model = _model()
    path = tmp_path / "model.npz"
    lstmconv.write(model, str(path))
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(arrays["__lstmconv__"].item())
    meta["around"][1]["options"] = {}  # a norm without its epsilon: never defaulted
    arrays["__lstmconv__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(LstmconvError, match=r'layer "norm".*epsilon'):
        lstmconv.read(str(tmp_path / "broken.npz"))


def _tensors(model: Model) -> list[np.ndarray]:
    recurrent = [array for layer in model for cell in layer.cells for _, array in cell.tensors()]
    return recurrent + [array for layer in model.around for array in layer.tensors.values()]


def test_a_stored_npz_is_read_as_views_of_the_file_and_a_compressed_one_by_numpy(tmp_path) -> None:
    """Stored members (as lstmconv and ``np.savez`` write them) are mapped, not copied; the
    same arrays deflated, Fortran-ordered or big-endian read back to the same values."""
    model = _model()
    path = tmp_path / "model.npz"
    lstmconv.write(model, str(path))
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    mapped = _tensors(lstmconv.read(str(path)))
    assert all(not array.flags.owndata and not array.flags.writeable for array in mapped)
    expected = _tensors(model)
    for variant, save in (
        ("compressed", lambda p: np.savez_compressed(p, **arrays)),
        (
            "fortran",
            lambda p: np.savez(p, **{k: np.asfortranarray(v) if v.ndim else v for k, v in arrays.items()}),
        ),
        (
            "big-endian",
            lambda p: np.savez(p, **{k: v.astype(v.dtype.newbyteorder(">")) for k, v in arrays.items()}),
        ),
    ):
        other = tmp_path / f"{variant}.npz"
        save(other)
        for theirs, mine in zip(_tensors(lstmconv.read(str(other))), expected, strict=True):
            np.testing.assert_array_equal(theirs, mine, err_msg=variant)
    for theirs, mine in zip(mapped, expected, strict=True):
        np.testing.assert_array_equal(theirs, mine)


def test_an_npz_member_named_otherwise_in_its_local_header_is_refused(tmp_path) -> None:
    """Two readers must not see two files: the local header's name is the directory's."""
    path = tmp_path / "model.npz"
    lstmconv.write(_model(), str(path))
    data = bytearray(path.read_bytes())
    name = b"lstm/forward/w_ih/i.npy"
    at = data.index(name)  # the local header's copy comes before the directory's
    data[at : at + len(name)] = b"lstm/forward/w_ih/X.npy"
    path.write_bytes(bytes(data))
    with pytest.raises(LstmconvError, match=r"w_ih/i\.npy.*local header"):
        lstmconv.read(str(path))


def test_an_npz_member_shorter_than_its_array_is_refused_before_mapping(tmp_path) -> None:
    path = tmp_path / "model.npz"
    lstmconv.write(_model(), str(path))
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array)
            raw = buffer.getvalue()
            archive.writestr(key + ".npy", raw[:-8] if key == "lstm/forward/w_hh/o" else raw)
    with pytest.raises(LstmconvError, match=r"w_hh/o.*stores"):
        lstmconv.read(str(path))
