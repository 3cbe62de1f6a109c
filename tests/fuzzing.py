"""Mutation fuzzing of the readers: corrupt every fixture in many small ways and require that
reading either succeeds or raises an LstmconvError — never another exception, never a hang.

Used by tests/test_properties.py (a bounded run) and scripts/fuzz (as long as you like).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import lstmconv

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SECONDS_PER_READ = 20


def fixtures(include_torch: bool = True) -> list[Path]:
    files = sorted(p for p in FIXTURES.iterdir() if p.is_file() and not p.name.endswith((".json", ".io.npz")))
    return [p for p in files if include_torch or p.suffix != ".pt"]


def mutations(data: bytes, rng: random.Random) -> bytes:
    """One corrupted copy: flipped bits, a cut, inserted or zeroed bytes, or a copied block."""
    out = bytearray(data)
    kind = rng.choice(("flip", "cut", "insert", "zero", "copy"))
    at = rng.randrange(len(out))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            spot = rng.randrange(len(out))
            out[spot] ^= 1 << rng.randrange(8)
    elif kind == "cut":
        del out[at:]
    elif kind == "insert":
        out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif kind == "zero":
        width = rng.randint(1, 256)
        out[at : at + width] = bytes(len(out[at : at + width]))
    else:
        start, width = rng.randrange(len(out)), rng.randint(4, 256)
        out[at : at + width] = out[start : start + width]
    return bytes(out)


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang(f"a read took longer than {SECONDS_PER_READ} s")


def run(count: int, seed: int = 0, include_torch: bool = True) -> Iterator[tuple[str, BaseException]]:
    """Yield (description, exception) for every read that escaped LstmconvError or hung."""
    rng = random.Random(seed)
    os.environ.setdefault("LSTMCONV_HDF5_SECONDS", "3")  # a looping HDF5 read fails sooner
    logging.disable(logging.WARNING)
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        with tempfile.TemporaryDirectory() as folder:
            for fixture in fixtures(include_torch):
                data = fixture.read_bytes()
                target = Path(folder) / f"mutant{''.join(fixture.suffixes[-1:])}"
                for index in range(count):
                    target.write_bytes(mutations(data, rng))
                    signal.alarm(SECONDS_PER_READ)
                    try:
                        lstmconv.read(target)
                    except lstmconv.LstmconvError:
                        pass
                    except BaseException as error:  # the point is to catch everything
                        if isinstance(error, KeyboardInterrupt):
                            raise
                        yield f"{fixture.name} mutation {index} (seed {seed})", error
                    finally:
                        signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
        logging.disable(logging.NOTSET)


# -- structure-aware fuzzing: hostile fields inside well-formed containers ----------------------------------
# Strategies that build the containers lstmconv reads (torch's pickle in its zip, ONNX protobufs,
# zip archives, HDF5 trees) with hostile values where the reader must check them: storage sizes,
# strides and offsets, dims and data types, names with control characters, member names that
# leave the archive, links and external storage. tests/test_structured_fuzz.py runs them (few
# examples in CI; LSTMCONV_FUZZ_EXAMPLES for more, as scripts/fuzz sets).
import json as _json  # noqa: E402 - the strategies' own imports, kept with them
import struct as _struct  # noqa: E402
import zipfile as _zipfile  # noqa: E402

import numpy as _np  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: Integers where the readers must check bounds: zero, negatives, huge, and small plausible ones.
hostile_ints = st.one_of(
    st.integers(0, 70),
    st.sampled_from([-1, -(2**31), 2**31 - 1, 2**40, 2**62]),
    st.integers(-(2**31), 2**31 - 1),
)
#: Names with what a reader must not print raw, or follow.
hostile_names = st.one_of(
    st.sampled_from(
        [
            "rnn.weight_ih_l0",
            "rnn.weight_hh_l0",
            "rnn.bias_ih_l0",
            "rnn.bias_hh_l0",
            "lstm\nlstmconv: wrote forged",
            "\x1b[2J",
            "../../etc/passwd",
            "/etc/passwd",
            "",
        ]
    ),
    st.text(max_size=12),
)


def _p_text(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return b"X" + _struct.pack("<I", len(data)) + data


def _p_int(value: int) -> bytes:
    return b"J" + _struct.pack("<i", max(-(2**31), min(2**31 - 1, value)))


_GLOBALS = [
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"ctorch._utils\n_rebuild_parameter\n",
    b"ccollections\nOrderedDict\n",
    b"ctorch\nFloatStorage\n",
    b"ctorch\nHalfStorage\n",
    b"cbuiltins\neval\n",  # refused by every reader: nothing here may run
    b"cos\nsystem\n",
    b"cposix\nsystem\n",
]


@st.composite
def torch_tensor_records(draw) -> tuple[bytes, str, int]:
    """One ``_rebuild_tensor_v2`` call with a persistent storage id, every field hostile."""
    key = draw(st.sampled_from(["0", "1", "2", "../0", "\x00"]))
    numel = draw(hostile_ints)
    ndim = draw(st.integers(0, 3))
    size = [draw(hostile_ints) for _ in range(ndim)]
    stride = [draw(hostile_ints) for _ in range(draw(st.sampled_from([ndim, ndim, max(ndim - 1, 0)])))]
    storage = draw(st.sampled_from(_GLOBALS[3:5] + _GLOBALS[5:6]))
    record = b"ctorch._utils\n_rebuild_tensor_v2\n(" + b"(" + _p_text("storage") + storage
    record += _p_text(key) + _p_text("cpu") + _p_int(numel) + b"tQ" + _p_int(draw(hostile_ints))
    record += b"(" + b"".join(_p_int(n) for n in size) + b"t(" + b"".join(_p_int(n) for n in stride) + b"t"
    record += b"\x89ccollections\nOrderedDict\n)RtR"
    return record, key, numel


@st.composite
def torch_zips(draw) -> dict[str, bytes]:
    """Members of a torch zip: a state_dict pickle of hostile tensors (or a hostile global),
    storages of drawn lengths, sometimes a duplicate member."""
    entries = draw(st.lists(st.tuples(hostile_names, torch_tensor_records()), min_size=1, max_size=4))
    pickled = bytearray(b"\x80\x02ccollections\nOrderedDict\n)R(")
    storages: dict[str, bytes] = {}
    for name, (record, key, numel) in entries:
        pickled += _p_text(name) + record
        length = draw(st.sampled_from([0, 4, max(0, min(numel, 64)) * 4, 1000]))
        storages[key] = bytes(draw(st.binary(min_size=min(length, 8), max_size=min(length, 8)))) + bytes(
            max(0, length - 8)
        )
    if draw(st.booleans()):
        pickled += _p_text("hook") + draw(st.sampled_from(_GLOBALS[5:])) + b"(" + _p_text("touch x") + b"tR"
    pickled += b"u."
    members = {
        "archive/data.pkl": bytes(pickled),
        "archive/byteorder": draw(st.sampled_from([b"little", b"big", b"middle"])),
        "archive/version": b"3\n",
    }
    members.update({f"archive/data/{key}": data for key, data in storages.items()})
    return members


def write_zip(
    path: Path, members: dict[str, bytes], duplicate: str | None = None, deflate: bool = False
) -> Path:
    import warnings

    compression = _zipfile.ZIP_DEFLATED if deflate else _zipfile.ZIP_STORED
    with warnings.catch_warnings(), _zipfile.ZipFile(path, "w", compression) as archive:
        warnings.simplefilter("ignore")
        for name, data in members.items():
            archive.writestr(name, data)
        if duplicate is not None and duplicate in members:
            archive.writestr(duplicate, bytes(len(members[duplicate])))
    return path


@st.composite
def onnx_models(draw) -> bytes:
    """An ONNX model (serialized) with one recurrent node whose attributes, inputs and
    initializers are hostile: hidden_size, direction, dims, data types, raw lengths, external
    data locations, names."""
    from onnx import TensorProto, helper

    op = draw(st.sampled_from(["LSTM", "GRU", "RNN", "Concat", ""]))
    hidden = draw(hostile_ints)
    initializers = []
    for name in ("W", "R", "B", "h0"):
        dims = [draw(st.integers(-2, 30)) for _ in range(draw(st.integers(0, 3)))]
        tensor = TensorProto(name=name, data_type=draw(st.sampled_from([1, 6, 9, 10, 11, 16, 99])))
        tensor.dims.extend(dims)
        tensor.raw_data = bytes(draw(st.sampled_from([0, 4, 96, 384, 1000])))
        if draw(st.integers(0, 4)) == 0:
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (
                ("location", draw(st.sampled_from(["../x.bin", "/etc/passwd", "w.bin", "\x1b", "."]))),
                ("offset", str(draw(hostile_ints))),
                ("length", draw(st.sampled_from(["4", "-1", "x", str(2**40)]))),
            ):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
        initializers.append(tensor)
    attributes = {
        "hidden_size": hidden,
        "direction": draw(st.sampled_from(["forward", "reverse", "bidirectional", "sideways", ""])),
    }
    if draw(st.booleans()):
        attributes["activations"] = draw(
            st.lists(st.sampled_from(["Sigmoid", "Tanh", "Relu", "Swish"]), min_size=1, max_size=7)
        )
    node = helper.make_node(
        op or "Add", ["x", "W", "R", "B", "", "h0"], ["y"], name=draw(hostile_names), **attributes
    )
    if not op:
        node.op_type = ""
    graph = helper.make_graph([node], "g", [], [], initializer=initializers)
    return helper.make_model(graph).SerializeToString()


@st.composite
def zip_archives(draw, required: tuple[str, ...]) -> tuple[dict[str, bytes], str | None, bool]:
    """Members (required names plus hostile ones) of a zip, a member to duplicate, deflate or not."""
    members = {name: draw(st.binary(max_size=64)) for name in required}
    for name in draw(
        st.lists(st.sampled_from(["../evil", "/abs", "a/../../b", "C:x", "ok.bin", "\x1b"]), max_size=3)
    ):
        members[name] = draw(st.sampled_from([b"", b"x" * 10, bytes(1 << 16)]))
    duplicate = draw(st.sampled_from([None, *required]))
    return members, duplicate, draw(st.booleans())


def npz_members(meta: dict) -> dict[str, bytes]:
    """An lstmconv .npz's members from its metadata, every tensor a tiny float32 array."""
    import io

    out = {}
    buffer = io.BytesIO()
    _np.lib.format.write_array(buffer, _np.array(_json.dumps(meta)))
    out["__lstmconv__.npy"] = buffer.getvalue()
    return out


@st.composite
def hdf5_trees(draw, folder: Path) -> Path:
    """A legacy Keras .h5 tree (layer_names, weight_names, datasets) with hostile links,
    storage, shapes, dtypes and names."""
    import h5py

    path = folder / "model.h5"
    secret = folder / "secret.bin"
    secret.write_bytes(b"SECRET" * 100)
    with h5py.File(path, "w") as handle:
        weights = handle.create_group("model_weights")
        layer = draw(st.sampled_from(["lstm", "gru\n", "\x1b[2J", "a/b"]))
        group = weights.require_group(layer)
        names = []
        for index in range(draw(st.integers(0, 3))):
            name = f"{layer}/cell/w{index}:0"
            names.append(name)
            shape = tuple(draw(st.integers(0, 6)) for _ in range(draw(st.integers(1, 3))))
            kind = draw(st.sampled_from(["plain", "gzip", "external", "soft", "missing", "int", "string"]))
            if kind == "plain":
                group[name] = _np.zeros(shape, "f4")
            elif kind == "gzip":
                group.create_dataset(name, shape=shape, dtype="f4", compression="gzip")
            elif kind == "external":
                group.create_dataset(
                    name,
                    shape=shape,
                    dtype="f4",
                    external=[(str(secret), 0, max(4, 4 * int(_np.prod(shape))))],
                )
            elif kind == "soft":
                group[name] = h5py.SoftLink("/model_weights")
            elif kind == "int":
                group[name] = _np.zeros(shape, "i4")
            elif kind == "string":
                group[name] = _np.array(["x"] * max(1, int(_np.prod(shape))), dtype=h5py.string_dtype())
        group.attrs["weight_names"] = [n.encode() for n in names]
        weights.attrs["layer_names"] = [layer.encode()] + ([b"ghost"] if draw(st.booleans()) else [])
        if draw(st.booleans()):
            handle.attrs["model_config"] = draw(
                st.sampled_from(['{"config": {"layers": []}}', "{", '{"class_name": "Sequential"}', "[]"])
            )
    return path
