"""A second hostile set, built apart from ``tests/corpus.py`` (issue #13's last point): the same
classes of attack (bytes from outside the model, code run, hangs, memory blow-ups, clobbered
outputs, forged output lines) reached by other constructions. Every file is made here, in
``tmp_path``; each case that could hang or blow up runs in a subprocess with a timeout and an
address-space cap, and asserts the promised refusal (an ``LstmconvError`` naming the file and the
tensor), not merely survival."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from helpers import random_layer

import lstmconv
from lstmconv.ir import Model

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
#: Address space for a child that imports lstmconv and NumPy only (no framework).
SMALL_MEMORY = 1 << 30
#: Long enough for a cold start with a framework on a busy machine; a hang is far longer.
TIMEOUT = 240


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_BACKEND="tensorflow",
        HOME=str(tmp / "home"),
    )
    (tmp / "home").mkdir(exist_ok=True)
    return env


def _run(
    args: list[str], tmp: Path, *, memory: int | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``args`` in a fresh interpreter (address space capped at ``memory``); a hang fails."""

    def cap() -> None:  # pragma: no cover - runs in the child
        if memory is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    try:
        return subprocess.run(
            [sys.executable, *args],
            cwd=tmp,
            env=_env(tmp),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=cap,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args} did not finish in {timeout} s: a hang")


def _cli(*args: str, tmp: Path, **options: object) -> subprocess.CompletedProcess[str]:
    return _run(["-m", "lstmconv", *args], tmp, **options)  # type: ignore[arg-type]


_READ = """
import json, sys, lstmconv
try:
    model = lstmconv.read(sys.argv[1], *sys.argv[2:])
except lstmconv.LstmconvError as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
else:
    print(json.dumps({"layers": [layer.name for layer in model.layers]}))
"""


def _read_in_child(
    path: Path, tmp: Path, memory: int | None = SMALL_MEMORY, format: str | None = None
) -> dict[str, object]:
    """``lstmconv.read(path)`` in a capped child: what it read, or the error's class and text.
    Any other end (a traceback, a MemoryError past the cap, a kill) fails."""
    done = _run(["-c", _READ, str(path), *([format] if format else [])], tmp, memory=memory)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _refused(found: dict[str, object], error: str, *words: str) -> None:
    assert found.get("error") == error, found
    message = str(found["message"])
    assert "MemoryError" not in message and "internal error" not in message, message
    for word in words:
        assert word in message, (word, message)


def _same(a: Path, b: Path) -> bool:
    """Two files hold the same layers, tensor for tensor."""
    first, second = lstmconv.read(a), lstmconv.read(b)
    return len(first.layers) == len(second.layers) and all(
        all(np.array_equal(x, y) for (_, x), (_, y) in zip(p.tensors(), q.tensors()))
        for left, right in zip(first.layers, second.layers)
        for p, q in zip(left.cells, right.cells)
    )


def _model(rng: np.random.Generator, name: str = "rnn") -> Model:
    return Model((random_layer(rng, inputs=3, hidden=4, name=name),), "built")


# -- pickles written opcode by opcode (no torch needed to build a .pt) ----------------------------
def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _ints(values: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tensor_pickle(
    key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...], offset: int = 0
) -> bytes:
    storage = b"(" + _text("storage") + _global("torch", "FloatStorage") + _text(key) + _text("cpu")
    storage += _int(numel) + b"tQ"
    hooks = _global("collections", "OrderedDict") + b")R"
    return (
        _global("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage
        + _int(offset)
        + _ints(shape)
        + _ints(stride)
        + b"\x89"
        + hooks
        + b"tR"
    )


def _pt_zip(path: Path, pickle_bytes: bytes, storages: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")


#: An nn.LSTM(3, 4)'s state_dict shapes.
_LSTM_SHAPES = {
    "weight_ih_l0": (16, 3),
    "weight_hh_l0": (16, 4),
    "bias_ih_l0": (16,),
    "bias_hh_l0": (16,),
}


# == memory: declared far beyond stored ===========================================================
def test_pt_memo_repeats_one_tensor_under_many_names(tmp_path: Path) -> None:
    """Pickle memo abuse: one 8 kB storage, one tensor, its memo slot fetched (BINGET) under
    3,000 state_dict keys, each an expanded view of 200× its storage: 3,000 × 1.6 MB declared
    from a 40 kB file. Each tensor alone is within the 200× rule; together they are not."""
    numel = 2000
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R" + b"q\x00("
    storages = {"0": np.zeros(numel, np.float32).tobytes()}
    for index, (name, shape) in enumerate(_LSTM_SHAPES.items(), start=1):
        count = int(np.prod(shape))
        strides = (shape[1], 1) if len(shape) == 2 else (1,)
        body += _text(f"rnn.{name}") + _tensor_pickle(str(index), count, shape, strides)
        storages[str(index)] = np.linspace(-1, 1, count, dtype=np.float32).tobytes()
    first = _tensor_pickle("0", numel, (200, numel), (0, 1)) + b"r\x01\x00\x00\x00"
    body += _text("junk.0") + first
    for index in range(1, 3000):
        body += _text(f"junk.{index}") + b"j\x01\x00\x00\x00"
    body += b"u."
    path = tmp_path / "memo.pt"
    _pt_zip(path, body, storages)
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "memo.pt")


def test_npz_member_declares_a_huge_array(tmp_path: Path, rng: np.random.Generator) -> None:
    """An ``.npy`` header is a declaration too: a valid lstmconv ``.npz`` whose one member says
    (2**31, 64) float32 (512 GB) but stores 16 bytes. No compression, so the zip budget sees
    nothing; NumPy would allocate the declared array before reading a byte."""
    path = tmp_path / "huge.npz"
    lstmconv.write(_model(rng), path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    victim = next(name for name in members if name.endswith("w_ih/i.npy"))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 64), }"
    header += " " * (63 - len(header) % 64) + "\n"
    members[victim] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(16)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "huge.npz", "w_ih/i")


def test_hdf5_shape_whose_product_wraps_int64(tmp_path: Path) -> None:
    """A chunked dataset of (2**32, 2**32) float32: its element count is 2**64, which wraps to 0
    in int64 arithmetic, so a size check in int64 sees 0 bytes declared."""
    h5py = require("h5py")
    path = tmp_path / "wrap.weights.h5"
    with h5py.File(path, "w") as handle:
        variables = handle.create_group("layers/lstm/cell/vars")
        variables.create_dataset("0", shape=(2**32, 2**32), chunks=(1, 1), dtype="f4")
        variables.create_dataset("1", data=np.zeros((4, 16), np.float32))
        variables.create_dataset("2", data=np.zeros(16, np.float32))
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "wrap.weights.h5", "'0'")


def test_safetensors_shape_whose_product_wraps_int64(tmp_path: Path) -> None:
    """A safetensors shape of (2**62 + 1, 4) float32 whose element count wraps to 4 in int64:
    16 data bytes that 'fit' the wrapped size. It must be refused naming the tensor."""
    header = {"rnn.weight_ih_l0": {"dtype": "F32", "shape": [2**62 + 1, 4], "data_offsets": [0, 16]}}
    text = json.dumps(header).encode()
    path = tmp_path / "wrap.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(16))
    _refused(_read_in_child(path, tmp_path), "FormatError", "wrap.safetensors", "rnn.weight_ih_l0")


def test_onnx_dims_whose_product_wraps_int64(tmp_path: Path, rng: np.random.Generator) -> None:
    """An initializer of dims (2**62 + 1, 4) float32 whose 16 raw bytes 'fit' the count wrapped
    in int64 (4), and one kept as external data the same way."""
    onnx = require("onnx")
    for external in (False, True):
        folder = tmp_path / f"ext{external}"
        folder.mkdir()
        path = folder / "wrap.onnx"
        lstmconv.write(_model(rng), path, external_data=external)
        proto = onnx.load(str(path), load_external_data=False)
        tensor = proto.graph.initializer[0]
        del tensor.dims[:]
        tensor.dims.extend([2**62 + 1, 4])
        if external:
            for entry in tensor.external_data:
                if entry.key == "length":
                    entry.value = "16"
        else:
            tensor.raw_data = bytes(16)
        onnx.save(proto, str(path))
        _refused(_read_in_child(path, tmp_path), "FormatError", "wrap.onnx", tensor.name)


def test_onnx_one_initializer_shared_by_thousands_of_nodes(tmp_path: Path) -> None:
    """Flatbuffer-style aliasing in a protobuf: 3,000 LSTM nodes (about 40 bytes each) all
    naming the same 130 kB of initializers: 390 MB of layers to check, verify and write."""
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    hidden = 64
    values = np.random.default_rng(3).uniform(-0.5, 0.5, (8 * hidden * hidden + 8 * hidden,))
    weights = values.astype(np.float32)
    w = numpy_helper.from_array(weights[: 4 * hidden * hidden].reshape(1, 4 * hidden, hidden), "W")
    r = numpy_helper.from_array(weights[4 * hidden * hidden : 8 * hidden * hidden].reshape(w.dims), "R")
    b = numpy_helper.from_array(weights[8 * hidden * hidden :].reshape(1, 8 * hidden), "B")
    nodes = [
        helper.make_node("LSTM", ["X", "W", "R", "B"], [f"Y{i}"], hidden_size=hidden, name=f"l{i}")
        for i in range(3000)
    ]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1, hidden])],
        [helper.make_tensor_value_info(f"Y{i}", TensorProto.FLOAT, None) for i in range(3000)],
        [w, r, b],
    )
    path = tmp_path / "shared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), str(path))
    assert path.stat().st_size < 400_000
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "shared.onnx", "3000 recurrent nodes")


def test_pt_shape_whose_product_wraps_int64(tmp_path: Path) -> None:
    """A torch tensor of shape (2**32, 2**32) with strides (0, 0) over a one-element storage:
    its extent is 1 element, its count 2**64."""
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R("
    body += _text("rnn.weight_ih_l0") + _tensor_pickle("0", 1, (2**31 - 1, 2**31 - 1), (0, 0)) + b"u."
    path = tmp_path / "wrap.pt"
    _pt_zip(path, body, {"0": bytes(4)})
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "wrap.pt")


#: Dims enough that a product in Python's big integers, taken to the end, costs many minutes.
_MANY_DIMS = 200_000


def test_safetensors_shape_of_many_huge_dims(tmp_path: Path) -> None:
    """A shape of 200,000 dims of 2**62 + 1: refused as the wrong size at once, not after the
    quadratic cost of multiplying it out."""
    header = {"w": {"dtype": "F32", "shape": [2**62 + 1] * _MANY_DIMS, "data_offsets": [0, 4]}}
    text = json.dumps(header).encode()
    path = tmp_path / "rank.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(4))
    done = _run(["-c", _READ, str(path)], tmp_path, memory=SMALL_MEMORY, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    _refused(json.loads(done.stdout.strip().splitlines()[-1]), "FormatError", "rank.safetensors")


def test_pt_shape_of_many_huge_dims(tmp_path: Path) -> None:
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R("
    huge = (2**31 - 1,) * _MANY_DIMS
    body += _text("rnn.weight_ih_l0") + _tensor_pickle("0", 1, huge, (0,) * _MANY_DIMS) + b"u."
    path = tmp_path / "rank.pt"
    _pt_zip(path, body, {"0": bytes(4)})
    done = _run(["-c", _READ, str(path)], tmp_path, memory=SMALL_MEMORY, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    _refused(json.loads(done.stdout.strip().splitlines()[-1]), "UnsafeInputError", "rank.pt")


#: A shape of this many dims is abbreviated in messages (``_common.dims``), not printed whole.
_LONG_RANK = 100_000


def _long_rank_npz(path: Path, rng: np.random.Generator, rank: int) -> None:
    """A valid lstmconv ``.npz`` whose one member's ``.npy`` header declares ``rank`` dims of 2."""
    lstmconv.write(_model(rng), path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    victim = next(name for name in members if name.endswith("w_ih/i.npy"))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "2, " * rank + "), }"
    header += " " * (63 - (len(header) + 12) % 64) + "\n"
    members[victim] = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header.encode() + bytes(16)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("ending", [".safetensors", ".npz", ".npz-3000", ".onnx"])
def test_a_shape_of_a_hundred_thousand_dims_gives_a_short_message(tmp_path: Path, rng, ending) -> None:
    """A header declaring a 100,000-dim shape (300 kB of text) is refused in a message of a few
    hundred characters, the shape abbreviated; ``.npz-3000``: 3,000 dims, which NumPy's header
    limit lets through to lstmconv's own check."""
    path = tmp_path / f"rank{ending.partition('-')[0]}"
    if ending == ".safetensors":  # 8 data bytes for a 4-byte shape: the wrong size
        header = {"rnn.weight_ih_l0": {"dtype": "F32", "shape": [1] * _LONG_RANK, "data_offsets": [0, 8]}}
        text = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(8))
    elif ending.startswith(".npz"):
        _long_rank_npz(path, rng, 3_000 if ending == ".npz-3000" else _LONG_RANK)
    else:
        onnx = require("onnx")
        lstmconv.write(_model(rng), path)
        proto = onnx.load(str(path))
        tensor = proto.graph.initializer[0]
        del tensor.dims[:]
        tensor.dims.extend([1] * _LONG_RANK)
        tensor.raw_data = bytes(8)  # 8 bytes for a 4-byte shape
        onnx.save(proto, str(path))
    found = _read_in_child(path, tmp_path)
    assert "error" in found and path.name in str(found["message"]), found
    message = str(found["message"])
    print(f"{ending}: {len(message)} characters: {message[:300]}")
    assert len(message) < 1000, message[:2000]
    if ending != ".npz":  # NumPy refuses the 300 kB header itself, before lstmconv sees a shape
        assert "more ..." in message, message


def test_pt_storage_record_is_a_zip_bomb(tmp_path: Path) -> None:
    """A torch zip whose one storage record is deflated: 300 MB of zeros in 300 kB, the LSTM's
    tensors views into it. Compressed records go to torch, which would inflate all of it."""
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R("
    numel, offset = 75 << 20, 0
    for name, shape in _LSTM_SHAPES.items():
        strides = (shape[1], 1) if len(shape) == 2 else (1,)
        body += _text(f"rnn.{name}") + _tensor_pickle("0", numel, shape, strides, offset)
        offset += int(np.prod(shape))
    body += b"u."
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/byteorder", "little")
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            chunk = bytes(1 << 22)
            for _ in range(numel * 4 // len(chunk)):
                member.write(chunk)
        archive.writestr("archive/version", "3\n")
    assert path.stat().st_size < 1_000_000
    _refused(_read_in_child(path, tmp_path, memory=None), "UnsafeInputError", "bomb.pt", "zip bomb")


# == hangs: walks that repeat, files that never end ===============================================
def test_hdf5_hard_links_that_double_at_every_level(tmp_path: Path) -> None:
    """40 nested Keras ``layers`` groups, each holding two hard links to the next: 41 groups,
    2**40 paths. A walk that follows each path runs into the time limit; each group is walked
    once, and the read says what the file holds (no recurrent layer)."""
    h5py = require("h5py")
    path = tmp_path / "diamond.weights.h5"
    with h5py.File(path, "w") as handle:
        containers = [handle.create_group("layers")]
        containers += [handle.create_group(f"c{level}") for level in range(1, 41)]
        for level in range(40):
            entry = handle.create_group(f"e{level}")
            entry["layers"] = containers[level + 1]
            containers[level]["a"] = entry
            containers[level]["b"] = entry
    found = _read_in_child(path, tmp_path)
    _refused(found, "WeightLayoutError", "diamond.weights.h5", "no recurrent layer")


def test_hdf5_hard_link_cycle(tmp_path: Path) -> None:
    """A Keras ``layers`` group whose child is a hard link back to the root: a cycle."""
    h5py = require("h5py")
    path = tmp_path / "cycle.weights.h5"
    with h5py.File(path, "w") as handle:
        layers = handle.create_group("layers")
        layers["loop"] = handle["/"]
    found = _read_in_child(path, tmp_path)
    assert "error" in found and "cycle.weights.h5" in str(found["message"]), found


def _copy_checkpoint(tmp: Path, name: str = "tf1_basic_lstm") -> Path:
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(FIXTURES / "tensorflow" / f"{name}{suffix}", tmp / f"ckpt{suffix}")
    return tmp / "ckpt"


def test_checkpoint_shard_is_a_fifo(tmp_path: Path) -> None:
    """The index is a regular file, but the data shard it sends the reader to is a named pipe:
    opening it would wait for a writer forever."""
    prefix = _copy_checkpoint(tmp_path)
    shard = tmp_path / "ckpt.data-00000-of-00001"
    shard.unlink()
    os.mkfifo(shard)
    _refused(_read_in_child(tmp_path / "ckpt.index", tmp_path), "FormatError", "FIFO", "data-00000")
    assert prefix.with_suffix(".index").exists()


def test_checkpoint_shard_is_dev_zero(tmp_path: Path) -> None:
    """The data shard is a symlink to ``/dev/zero``: endless zeros, no regular file."""
    _copy_checkpoint(tmp_path)
    shard = tmp_path / "ckpt.data-00000-of-00001"
    shard.unlink()
    shard.symlink_to("/dev/zero")
    _refused(_read_in_child(tmp_path / "ckpt.index", tmp_path), "FormatError", "character device")


def test_savedmodel_pb_is_dev_zero(tmp_path: Path) -> None:
    """A SavedModel folder (a regular folder, as ``inspect`` checks) whose ``saved_model.pb``
    is a symlink to ``/dev/zero``: reading it to the end never ends."""
    folder = tmp_path / "export"
    shutil.copytree(FIXTURES / "tensorflow" / "keras3_export", folder)
    (folder / "saved_model.pb").unlink()
    (folder / "saved_model.pb").symlink_to("/dev/zero")
    found = _read_in_child(folder, tmp_path, format="savedmodel")
    _refused(found, "FormatError", "saved_model.pb", "character device")


def test_savedmodel_variables_index_is_a_fifo(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(FIXTURES / "tensorflow" / "keras3_export", folder)
    index = folder / "variables" / "variables.index"
    index.unlink()
    os.mkfifo(index)
    _refused(_read_in_child(folder, tmp_path, format="savedmodel"), "FormatError", "variables.index")


# == bytes from outside the model =================================================================
def test_checkpoint_state_file_names_a_prefix_outside_the_folder(tmp_path: Path) -> None:
    """A training folder's ``checkpoint`` file whose ``model_checkpoint_path`` is a checkpoint
    elsewhere on the disk (absolute, or up with ``..``): its weights are not the folder's."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = _copy_checkpoint(elsewhere)
    for named in (str(outside), "../elsewhere/ckpt"):
        folder = tmp_path / f"run{len(named)}"
        folder.mkdir()
        (folder / "checkpoint").write_text(f'model_checkpoint_path: "{named}"\n')
        _refused(_read_in_child(folder, tmp_path), "UnsafeInputError", "outside")


def test_hdf5_external_storage_in_a_legacy_h5_through_an_absolute_weight_name(tmp_path: Path) -> None:
    """A Keras 2 ``save_weights`` file whose layer lists its weight by an absolute path
    (``/stash/kernel``) to a dataset whose bytes are external storage on ``/proc/self/environ``."""
    h5py = require("h5py")
    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [b"lstm"]
        handle.attrs["keras_version"] = b"2.15.0"
        group = handle.create_group("lstm")
        group.attrs["weight_names"] = [b"/stash/kernel", b"lstm/recurrent_kernel:0", b"lstm/bias:0"]
        handle.create_dataset(
            "stash/kernel", shape=(3, 16), dtype="f4", external=[("/proc/self/environ", 0, 192)]
        )
        group.create_dataset("lstm/recurrent_kernel:0", data=np.ones((4, 16), np.float32))
        group.create_dataset("lstm/bias:0", data=np.ones(16, np.float32))
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "external storage", "legacy.h5")


def test_onnx_external_data_through_a_symlinked_folder(tmp_path: Path, rng: np.random.Generator) -> None:
    """External data whose location is ``sub/w.bin``, where ``sub`` is a symlink (inside the
    model's folder) to a folder outside it holding a secret of the right size."""
    onnx = require("onnx")
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "m.onnx"
    lstmconv.write(_model(rng), path, external_data=True)
    proto = onnx.load(str(path), load_external_data=False)
    secret = tmp_path / "secrets"
    secret.mkdir()
    (secret / "w.bin").write_bytes(b"S3CRET!!" * 4096)
    (folder / "sub").symlink_to(secret)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "sub/w.bin"
            if entry.key == "offset":
                entry.value = "0"
    onnx.save(proto, str(path))
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "outside")


def test_onnx_external_data_that_is_a_hard_link_to_a_file_elsewhere(tmp_path: Path, rng) -> None:
    """The data file's name lies in the model's folder, but it is a hard link (``os.link``) to a
    file in another folder: the same bytes as that file, which no path check sees. Refused,
    naming the model, the tensor and the data file; the same bytes as a file of its own convert."""
    onnx = require("onnx")
    folder, elsewhere = tmp_path / "model", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    path = folder / "m.onnx"
    model = _model(rng)
    lstmconv.write(model, path, external_data=True)
    proto = onnx.load(str(path), load_external_data=False)
    tensor = next(t for t in proto.graph.initializer if t.external_data)
    location = next(entry.value for entry in tensor.external_data if entry.key == "location")
    outside = elsewhere / "weights.bin"
    (folder / location).rename(outside)
    os.link(outside, folder / location)
    found = _read_in_child(path, tmp_path)
    _refused(
        found, "UnsafeInputError", "m.onnx", tensor.name, location, "hard link", "outside the model's folder"
    )
    assert not (tmp_path / "out.npz").exists()
    (folder / location).unlink()  # the same bytes, now a file of its own
    shutil.copyfile(outside, folder / location)
    report = lstmconv.convert(path, tmp_path / "out.npz")  # verified: the ONNX nodes run as given
    assert report is not None and report.ok, report
    assert _same(tmp_path / "out.npz", path)
    again = lstmconv.read(tmp_path / "out.npz")
    assert all(
        np.array_equal(x, y)
        for p, q in zip(again[0].cells, model[0].cells)
        for (_, x), (_, y) in zip(p.tensors(), q.tensors())
    )


def test_onnx_external_data_is_a_fifo_beside_the_model(tmp_path: Path, rng: np.random.Generator) -> None:
    onnx = require("onnx")
    path = tmp_path / "m.onnx"
    lstmconv.write(_model(rng), path, external_data=True)
    proto = onnx.load(str(path), load_external_data=False)
    location = next(
        entry.value
        for tensor in proto.graph.initializer
        for entry in tensor.external_data
        if entry.key == "location"
    )
    (tmp_path / location).unlink()
    os.mkfifo(tmp_path / location)
    _refused(_read_in_child(path, tmp_path), "FormatError", "FIFO")


# == code: nothing in the file runs ===============================================================
def test_pt_persistent_id_smuggles_a_call(tmp_path: Path) -> None:
    """A torch zip whose storage's persistent id holds ``posix.system(...)`` applied (GLOBAL +
    REDUCE inside the tuple torch hands to its persistent_load), then a plain LSTM state_dict.
    Neither lstmconv's check nor ``torch.load(weights_only=True)`` may run it."""
    marker = tmp_path / "ran"
    call = _global("posix", "system") + b"(" + _text(f"touch {marker}") + b"tR"
    storage = b"(" + _text("storage") + call + _text("0") + _text("cpu") + _int(4) + b"tQ"
    tensor = (
        _global("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage
        + _int(0)
        + _ints((4,))
        + _ints((1,))
        + b"\x89"
        + _global("collections", "OrderedDict")
        + b")RtR"
    )
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + _text("w") + tensor + b"u."
    path = tmp_path / "smuggle.pt"
    _pt_zip(path, body, {"0": bytes(16)})
    found = _read_in_child(path, tmp_path, memory=None)  # type: ignore[arg-type]
    assert not marker.exists()
    assert found.get("error") in ("UnsafeInputError", "FormatError"), found


def test_tf_keras_h5_lambda_never_runs_in_verification(tmp_path: Path) -> None:
    """A Keras 2 ``.h5`` (saved by tf_keras) holding an LSTM and a ``Lambda`` whose marshalled
    bytecode writes a file. lstmconv's reader never loads the config with Keras, but the
    verification of ``convert`` loads the original file in its own framework: that must not
    deserialize, let alone call, the lambda."""
    require("tensorflow")
    require("tf_keras")
    marker = tmp_path / "ran"
    build = textwrap.dedent(
        f"""
        import tf_keras as k
        m = k.Sequential([k.Input((5, 3)), k.layers.LSTM(4, return_sequences=True),
            k.layers.Lambda(lambda x: (__import__("pathlib").Path({str(marker)!r}).write_text("ran"), x)[1])])
        m.save("lambda.h5")
        """
    )
    made = _run(["-c", build], tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    marker.unlink()  # building the model called the lambda once
    done = _cli("convert", "lambda.h5", "out.onnx", tmp=tmp_path)
    assert not marker.exists(), "the Lambda's code ran during convert"
    assert done.returncode in (0, 2), done.stderr[-2000:]


def test_keras3_lookup_vocabulary_file_is_never_opened(tmp_path: Path) -> None:
    """A ``.keras`` model with a ``StringLookup`` whose vocabulary is a path to a named pipe
    outside the model: Keras would open it while loading the model for verification (and
    block forever). Nothing outside the archive may be opened."""
    require("tensorflow")
    keras = require("keras")
    fifo = tmp_path / "vocab.txt"
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, keras.layers.LSTM(4, return_sequences=True)(inputs))
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    config = json.loads(members["config.json"])
    lookup = {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {"name": "lookup", "vocabulary": str(fifo), "dtype": "string"},
        "registered_name": None,
        "inbound_nodes": [],
    }
    config["config"]["layers"].append(lookup)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    os.mkfifo(fifo)
    done = _cli("convert", "m.keras", "out.onnx", tmp=tmp_path)
    assert done.returncode in (0, 2), done.stderr[-2000:]
    assert "internal error" not in done.stderr


# == output: never clobbered, never through a link ================================================
def test_force_onto_a_symlink_replaces_the_link_not_its_target(tmp_path: Path, rng) -> None:
    lstmconv.write(_model(rng), tmp_path / "m.npz")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.safetensors").symlink_to(victim)
    refused = _cli("convert", "m.npz", "out.safetensors", tmp=tmp_path)
    assert refused.returncode == 2 and "exists" in refused.stderr, refused.stderr
    done = _cli("convert", "m.npz", "out.safetensors", "--force", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out.safetensors").is_symlink()
    assert _same(tmp_path / "out.safetensors", tmp_path / "m.npz")


def test_force_onto_a_hard_link_of_the_input_leaves_the_input(tmp_path: Path, rng) -> None:
    """DST is another name of the input's own inode: writing through it would corrupt the
    input (and the read of it) mid-conversion."""
    lstmconv.write(_model(rng), tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    os.link(tmp_path / "m.npz", tmp_path / "same.npz")
    rng2 = np.random.default_rng(7)
    lstmconv.write(_model(rng2), tmp_path / "other.npz")
    done = _cli("convert", "other.npz", "same.npz", "--force", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m.npz").read_bytes() == before
    assert _same(tmp_path / "same.npz", tmp_path / "other.npz")


def test_converting_a_file_onto_itself_without_force(tmp_path: Path, rng) -> None:
    lstmconv.write(_model(rng), tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    done = _cli("convert", "m.npz", "./m.npz", tmp=tmp_path)
    assert done.returncode == 2 and "exists" in done.stderr, done.stderr
    assert (tmp_path / "m.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "m.npz"]


def test_an_output_whose_folder_is_a_file(tmp_path: Path, rng) -> None:
    """DST ``plain.txt/out.onnx``: its folder is a regular file. One error line, nothing left."""
    lstmconv.write(_model(rng), tmp_path / "m.npz")
    (tmp_path / "plain.txt").write_text("x")
    done = _cli("convert", "m.npz", "plain.txt/out.onnx", tmp=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("lstmconv: error:"), done.stderr
    assert "internal error" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "m.npz", "plain.txt"]


# == what reaches the terminal ====================================================================
def test_npz_layer_name_with_escapes_is_printed_escaped(tmp_path: Path, rng) -> None:
    """A layer name from an ``.npz``'s metadata holding a newline, an ESC sequence and U+2028:
    ``inspect`` and ``convert`` print it escaped, on one line."""
    forged = "rnn\nlstmconv: wrote forged.onnx\x1b[2J\u2028x"
    lstmconv.write(_model(rng, forged), tmp_path / "m.npz")
    shown = _cli("inspect", "m.npz", tmp=tmp_path)
    assert shown.returncode == 0, shown.stderr
    everything = shown.stdout + shown.stderr
    assert "\x1b" not in everything and "\u2028" not in everything
    assert not any(line.startswith("lstmconv: wrote forged") for line in everything.splitlines())
    assert "\\x1b[2J" in shown.stdout and "\\n" in shown.stdout
    as_json = _cli("inspect", "m.npz", "--json", tmp=tmp_path)
    assert as_json.returncode == 0 and "\x1b" not in as_json.stdout
    assert forged in as_json.stdout or json.loads(as_json.stdout)  # JSON escapes by itself


def test_safetensors_key_with_escapes_in_an_error(tmp_path: Path) -> None:
    """A safetensors key with a newline and ESC in a header the reader refuses: the one error
    line names it escaped."""
    key = "rnn.weight_ih_l0\nlstmconv: wrote x.onnx\x1b]0;pwned\x07"
    header = {key: {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 40]}}
    text = json.dumps(header).encode()
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + bytes(40))
    done = _cli("inspect", "bad.safetensors", tmp=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmconv: error:"), done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr and "\\x1b" in done.stderr


# == deep nesting =================================================================================
def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_keras_config_nested_past_the_recursion_limit(tmp_path: Path, rng) -> None:
    """A ``.keras`` archive (a valid weights file) whose config.json nests 100,000 lists deep
    inside a layer's config: one error naming the file, whatever JSON's recursion limit does."""
    h5py = require("h5py")
    weights = io.BytesIO()
    with h5py.File(weights, "w") as handle:
        variables = handle.create_group("layers/lstm/cell/vars")
        for index, shape in enumerate(((3, 16), (4, 16), (16,))):
            variables.create_dataset(str(index), data=rng.uniform(-1, 1, shape).astype(np.float32))
    config = '{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "LSTM", '
    config += '"config": {"name": "lstm", "units": 4, "deep": ' + _deep_json(100_000) + "}}]}}"
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", config)
        archive.writestr("metadata.json", '{"keras_version": "3.5.0"}')
        archive.writestr("model.weights.h5", weights.getvalue())
    found = _read_in_child(path, tmp_path)
    _refused(found, "FormatError", "deep.keras", "config.json", "nested too deeply")
    assert "RecursionError" not in str(found["message"]), found


def test_npz_metadata_nested_past_the_recursion_limit(tmp_path: Path, rng) -> None:
    path = tmp_path / "deep.npz"
    lstmconv.write(_model(rng), path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array('{"version": 1, "layers": ' + _deep_json(100_000) + "}"))
    members["__lstmconv__.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    found = _read_in_child(path, tmp_path)
    _refused(found, "FormatError", "deep.npz", "__lstmconv__", "nested too deeply")


def test_safetensors_header_nested_past_the_recursion_limit(tmp_path: Path) -> None:
    """A header whose one entry nests 100,000 lists deep, and a valid header whose lstmconv
    metadata (JSON inside a string) does: each one FormatError naming the file and what nests."""
    deep_header = ('{"rnn.weight_ih_l0": ' + _deep_json(100_000) + "}").encode()
    (tmp_path / "deep.safetensors").write_bytes(struct.pack("<Q", len(deep_header)) + deep_header)
    shapes = {"rnn.weight_ih_l0": [16, 3], "rnn.weight_hh_l0": [16, 4]}
    header: dict[str, object] = {"__metadata__": {"format": "pt", "lstmconv": _deep_json(100_000)}}
    offset = 0
    for key, shape in shapes.items():
        header[key] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [offset, offset + 4 * shape[0] * shape[1]],
        }
        offset += 4 * shape[0] * shape[1]
    text = json.dumps(header).encode()
    (tmp_path / "meta.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + bytes(offset))
    for name, nested in (("deep.safetensors", "the header"), ("meta.safetensors", "lstmconv")):
        found = _read_in_child(tmp_path / name, tmp_path)
        _refused(found, "FormatError", name, nested, "nested too deeply")
        assert "RecursionError" not in str(found["message"]), found


def test_keras2_h5_model_config_nested_past_the_recursion_limit(tmp_path: Path, rng) -> None:
    """A legacy Keras 2 ``.h5`` (valid weights, layer_names, weight_names) whose ``model_config``
    attribute nests 100,000 lists deep in a layer's config."""
    h5py = require("h5py")
    path = tmp_path / "deep.h5"
    config = '{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "LSTM", '
    config += '"config": {"name": "lstm", "units": 4, "deep": ' + _deep_json(100_000) + "}}]}}"
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = config
        handle.attrs["keras_version"] = "2.15.0"
        handle.attrs["backend"] = "tensorflow"
        weights = handle.create_group("model_weights")
        weights.attrs["layer_names"] = [b"lstm"]
        group = weights.create_group("lstm")
        names = ("kernel", "recurrent_kernel", "bias")
        group.attrs["weight_names"] = [f"lstm/lstm_cell/{name}:0".encode() for name in names]
        for name, shape in zip(names, ((3, 16), (4, 16), (16,))):
            group.create_dataset(
                f"lstm/lstm_cell/{name}:0", data=rng.uniform(-1, 1, shape).astype(np.float32)
            )
    found = _read_in_child(path, tmp_path)
    _refused(found, "FormatError", "deep.h5", "model_config", "nested too deeply")
    assert "RecursionError" not in str(found["message"]), found


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    key, length, out = (number << 3) | 2, len(payload), bytearray()
    for value in (key, length):
        while value > 0x7F:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out) + payload


def test_onnx_if_nested_thousands_deep(tmp_path: Path) -> None:
    """A ModelProto whose graph holds an If whose then_branch holds an If… 5,000 deep, written
    byte by byte (no onnx package): a recursive decoder or walk would overflow the stack."""
    graph = _field(1, _field(4, b"Relu") + _field(1, b"x") + _field(2, b"y"))
    for level in range(5000):
        attribute = _field(1, b"then_branch") + _field(6, graph) + b"\xa0\x01\x05"  # type GRAPH
        node = _field(1, b"c") + _field(2, f"o{level}".encode()) + _field(4, b"If") + _field(5, attribute)
        graph = _field(1, node)
    model = b"\x08\x08" + _field(7, graph) + _field(8, b"\x10\x0f")
    path = tmp_path / "deep.onnx"
    path.write_bytes(model)
    found = _read_in_child(path, tmp_path)
    _refused(found, "FormatError", "deep.onnx")


# == more bytes from elsewhere ====================================================================
def test_keras_weights_member_flagged_as_a_symlink(tmp_path: Path, rng) -> None:
    """A ``.keras`` whose ``model.weights.h5`` member carries Unix symlink mode bits and the
    text of a path to a real weights file outside: an extractor that honours the bits would
    read that file. The member is its own bytes (a path, not HDF5): refused, never followed."""
    h5py = require("h5py")
    outside = tmp_path / "outside.weights.h5"
    with h5py.File(outside, "w") as handle:
        variables = handle.create_group("layers/lstm/cell/vars")
        for index, shape in enumerate(((3, 16), (4, 16), (16,))):
            variables.create_dataset(str(index), data=rng.uniform(-1, 1, shape).astype(np.float32))
    path = tmp_path / "link.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
        archive.writestr("metadata.json", '{"keras_version": "3.5.0"}')
        info = zipfile.ZipInfo("model.weights.h5")
        info.create_system = 3
        info.external_attr = (0o120777 << 16) | 0x20  # S_IFLNK
        archive.writestr(info, str(outside))
    found = _read_in_child(path, tmp_path)
    assert found.get("error") == "FormatError" and "link.keras" in str(found["message"]), found


def test_hdf5_virtual_dataset_mapping_its_own_file(tmp_path: Path) -> None:
    """A virtual dataset whose source is ``.`` (the same file, HDF5's own shorthand): mapped
    storage all the same, refused naming the dataset."""
    h5py = require("h5py")
    path = tmp_path / "self.weights.h5"
    with h5py.File(path, "w", libver="latest") as handle:
        handle.create_dataset("stash", data=np.ones((3, 16), np.float32))
        variables = handle.create_group("layers/lstm/cell/vars")
        layout = h5py.VirtualLayout(shape=(3, 16), dtype="f4")
        layout[:] = h5py.VirtualSource(".", "stash", shape=(3, 16))
        variables.create_virtual_dataset("0", layout)
        variables.create_dataset("1", data=np.ones((4, 16), np.float32))
        variables.create_dataset("2", data=np.ones(16, np.float32))
    _refused(_read_in_child(path, tmp_path), "UnsafeInputError", "virtual dataset", "'0'")


# == flatbuffer offsets ===========================================================================
def test_tflite_offsets_pointing_anywhere(tmp_path: Path) -> None:
    """The LSTM fixture with, one at a time: the root offset past the end; the Model table's
    vtable offset pointing at the table itself; the buffers vector claiming 2**30 entries; a
    buffer's data offset wrapped to point before the file."""
    from lstmconv.formats.tflite.flat import Flat

    data = (FIXTURES / "tflite_lstm.tflite").read_bytes()
    model = Flat(data).root()
    buffers, _count = model.vector(4, 4, "buffers")
    patches = {
        "root": (0, 0xFFFFFFF0),
        "vtable": (model.position, 0),
        "buffers": (buffers - 4, 1 << 30),
        "buffer0": (buffers, 0xFFFFFFFF - buffers),
    }
    for name, (position, value) in patches.items():
        broken = bytearray(data)
        broken[position : position + 4] = struct.pack("<I", value)
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(bytes(broken))
        _refused(_read_in_child(path, tmp_path), "FormatError", f"{name}.tflite")


# == pickles and TorchScript that would run ======================================================
def test_protocol_0_text_pickle_named_pt(tmp_path: Path) -> None:
    """A protocol-0 (text) pickle, which no sniffing of ``\\x80`` sees, named ``.pt``: GLOBAL
    ``posix system`` and REDUCE. torch's ``weights_only`` refuses it; nothing runs."""
    require("torch")
    marker = tmp_path / "ran"
    (tmp_path / "text.pt").write_bytes(f"cposix\nsystem\n(Vtouch {marker}\ntR.".encode())
    found = _read_in_child(tmp_path / "text.pt", tmp_path, memory=None)
    assert not marker.exists()
    _refused(found, "UnsafeInputError", "text.pt")


def test_torchscript_code_and_constants_never_run(tmp_path: Path) -> None:
    """A ``torch.jit.save`` archive of an LSTM whose code files gain a line writing a file at
    import, and whose ``constants.pkl`` becomes ``posix.system(...)``: reading and converting
    it (verification included) runs neither."""
    require("torch")
    marker = tmp_path / "ran"
    build = textwrap.dedent(
        """
        import torch
        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(torch.nn.LSTM(3, 4)), "plain.pt")
        """
    )
    made = _run(["-c", build], tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')\n"
    evil = f"cposix\nsystem\n(Vtouch {marker}\ntR.".encode()
    with zipfile.ZipFile(tmp_path / "plain.pt") as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(tmp_path / "script.pt", "w") as archive:
        for info, data in members:
            if info.filename.endswith(".py"):
                data = payload.encode() + data
            elif info.filename.endswith("constants.pkl"):
                data = evil
            archive.writestr(info, data)
    done = _cli("convert", "script.pt", "out.onnx", tmp=tmp_path)
    assert not marker.exists(), "code from the archive ran"
    assert done.returncode in (0, 2) and "internal error" not in done.stderr, done.stderr[-2000:]


# == output through a symlinked folder ============================================================
def test_force_onto_a_symlink_to_a_directory(tmp_path: Path, rng) -> None:
    """DST is a symlink to a directory elsewhere: with ``--force``, nothing is written into
    that directory and nothing in it is removed."""
    lstmconv.write(_model(rng), tmp_path / "m.npz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (tmp_path / "out.onnx").symlink_to(elsewhere)
    done = _cli("convert", "m.npz", "out.onnx", "--force", tmp=tmp_path)
    assert done.returncode in (0, 2) and "internal error" not in done.stderr, done.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]
    assert (elsewhere / "keep.txt").read_text() == "keep"


def test_legacy_pt_one_tensor_for_many_modules(tmp_path: Path) -> None:
    """A legacy (non-zip) ``.pt``, read by torch: one nn.LSTM(256, 256)'s four tensors under
    300 module names (the pickle stores each tensor once, its memo names it 300 times): 300
    layers, 630 MB of weights to check, verify and write, from 2 MB."""
    require("torch")
    build = textwrap.dedent(
        """
        import collections, torch
        lstm = torch.nn.LSTM(256, 256)
        state = collections.OrderedDict(
            (f"m{i}.{key}", value) for i in range(300) for key, value in lstm.state_dict().items()
        )
        torch.save(state, "shared.pt", _use_new_zipfile_serialization=False)
        """
    )
    made = _run(["-c", build], tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    assert (tmp_path / "shared.pt").stat().st_size < 3_000_000
    found = _read_in_child(tmp_path / "shared.pt", tmp_path, memory=None)
    _refused(found, "UnsafeInputError", "shared.pt", "300 layers")


def test_external_data_sidecar_that_is_a_symlink_to_a_victim(tmp_path: Path, rng) -> None:
    """DST's own name is free, but the ``.data`` file ONNX external data will be published as
    is a symlink to a file of someone else's: refused without ``--force``; with it, the link is
    replaced, never written through."""
    require("onnx")
    lstmconv.write(_model(rng), tmp_path / "m.npz")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.onnx.data").symlink_to(victim)
    refused = _cli("convert", "m.npz", "out.onnx", "--external-data", "--no-verify", tmp=tmp_path)
    assert refused.returncode == 2 and "exists" in refused.stderr, refused.stderr
    assert not (tmp_path / "out.onnx").exists() and victim.read_text() == "precious"
    done = _cli("convert", "m.npz", "out.onnx", "--external-data", "--no-verify", "--force", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious" and not (tmp_path / "out.onnx.data").is_symlink()
    assert _same(tmp_path / "out.onnx", tmp_path / "m.npz")


def test_force_onto_the_memory_mapped_input_itself(tmp_path: Path, rng) -> None:
    """``convert m.onnx m.onnx --external-data --force`` (and a safetensors onto itself): the
    reader's weights are memory maps of the very files being replaced. Publishing by rename
    leaves the mapped inodes whole; writing into them would read back garbage."""
    require("onnx")
    lstmconv.write(_model(rng), tmp_path / "m.npz")
    lstmconv.write(lstmconv.read(tmp_path / "m.npz"), tmp_path / "m.onnx", external_data=True)
    lstmconv.write(lstmconv.read(tmp_path / "m.npz"), tmp_path / "m.safetensors")
    for name, extra in (("m.onnx", ["--external-data"]), ("m.safetensors", [])):
        done = _cli("convert", name, name, *extra, "--force", tmp=tmp_path)
        assert done.returncode == 0, done.stderr
        assert _same(tmp_path / name, tmp_path / "m.npz")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lstmconv-")]


def test_batch_summary_escapes_file_names_from_a_folder(tmp_path: Path, rng) -> None:
    """A batch over a downloaded folder, one of whose files is named with an OSC escape, a BEL
    and a newline forging a line: the summary table and its error lines show them escaped."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    forged = "evil\x1b]0;pwned\x07\nlstmconv: wrote forged"
    lstmconv.write(_model(rng), folder / f"{forged}.npz")
    (folder / f"{forged}-broken.npz").write_bytes(b"PK\x05\x06" + bytes(18))
    (tmp_path / "out").mkdir()
    batch = ("convert", "downloads", "--out-dir", "out", "--to", "safetensors", "--no-verify")
    done = _cli(*batch, tmp=tmp_path)
    everything = done.stdout + done.stderr
    assert done.returncode == 2, everything
    assert "\x1b" not in everything and "\x07" not in everything, everything
    assert not any(line.startswith("lstmconv: wrote forged") for line in everything.splitlines())
    assert "\\x1b]0;pwned\\x07\\n" in done.stdout


def test_keras3_config_naming_a_foreign_class_never_runs(tmp_path: Path) -> None:
    """A ``.keras`` whose Dense (after the LSTM, carried as a plain layer) has ``subprocess.Popen`` as its
    kernel initializer, with arguments that write a file: Keras's safe mode, loading the source
    for verification, must refuse to import it."""
    require("tensorflow")
    keras = require("keras")
    marker = tmp_path / "ran"
    inputs = keras.Input((5, 3))
    outputs = keras.layers.Dense(2)(keras.layers.LSTM(4, return_sequences=True)(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["config"]["kernel_initializer"] = {
                "module": "subprocess",
                "class_name": "Popen",
                "config": {"args": ["touch", str(marker)]},
                "registered_name": None,
            }
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    done = _cli("convert", "m.keras", "out.onnx", tmp=tmp_path)
    assert not marker.exists(), "a class named by the config ran"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "keras cannot load it" in done.stdout  # the source side fell back to the reference
