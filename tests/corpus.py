"""A corpus of broken and hostile model files, one case per failure class and format.

Each case builds its file(s) in a folder of its own from the committed fixtures (or from
nothing) and names the error lstmconv must raise and the message it must carry. Run it as a
script to look at the files: ``python tests/corpus.py OUTDIR``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KERAS = FIXTURES / "keras3_stacked_bidir.keras"
LEGACY = FIXTURES / "tf_keras_hard_sigmoid.h5"
ONNX = FIXTURES / "torch_export_lstm.onnx"
#: A pickle payload leaves this file behind if it ever runs.
MARKER = "payload-ran.txt"
LEGACY_KERNEL = "model_weights/lstm_hs/lstm_hs/lstm_cell/kernel:0"
LEGACY_RECURRENT = "model_weights/lstm_hs/lstm_hs/lstm_cell/recurrent_kernel:0"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    error: str  # the LstmconvError subclass, by name
    message: str  # a regular expression the message must match
    needs: tuple[str, ...] = ()
    #: bytes from outside the model (a local file's) that must never reach an output or a message
    secret: bytes = b""


# -- .keras archives ---------------------------------------------------------------------------
def _keras_members() -> dict[str, bytes]:
    with zipfile.ZipFile(KERAS) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _keras_with_weights(folder: Path, change: Callable[[object], None]) -> Path:
    """The Keras fixture with its weights file changed by ``change(h5py.File)``."""
    import h5py

    members = _keras_members()
    scratch = folder / "scratch.h5"
    scratch.write_bytes(members["model.weights.h5"])
    with h5py.File(scratch, "r+") as handle:
        change(handle)
    members["model.weights.h5"] = scratch.read_bytes()
    scratch.unlink()
    return _write_zip(folder / "model.keras", members)


def _replace(handle, key: str, value: np.ndarray) -> None:
    del handle[key]
    handle[key] = value


#: The decoder of the Keras fixture: LSTM(5) on the 16 features of Bidirectional(LSTM(8)).
KERNEL = "layers/lstm/cell/vars/0"
RECURRENT = "layers/lstm/cell/vars/1"


def keras_cases() -> list[Case]:
    def truncated(folder: Path) -> Path:
        path = folder / "model.keras"
        path.write_bytes(KERAS.read_bytes()[: KERAS.stat().st_size // 2])
        return path

    def bomb(folder: Path) -> Path:
        members = _keras_members()
        members["assets/padding.bin"] = bytes(64 << 20)
        return _write_zip(folder / "model.keras", members, zipfile.ZIP_DEFLATED)

    def dotdot(folder: Path) -> Path:
        members = _keras_members()
        members["../../outside.txt"] = b"escape"
        return _write_zip(folder / "model.keras", members)

    def absolute(folder: Path) -> Path:
        members = _keras_members()
        members["/etc/evil"] = b"escape"
        return _write_zip(folder / "model.keras", members)

    def without(member: str) -> Callable[[Path], Path]:
        def build(folder: Path) -> Path:
            members = _keras_members()
            del members[member]
            return _write_zip(folder / "model.keras", members)

        return build

    def bad_json(folder: Path) -> Path:
        members = _keras_members()
        members["config.json"] = b'{"class_name": "Functional", "config": {'
        return _write_zip(folder / "model.keras", members)

    def garbage_weights(folder: Path) -> Path:
        members = _keras_members()
        members["model.weights.h5"] = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8
        return _write_zip(folder / "model.keras", members)

    def lambda_layer(folder: Path) -> Path:  # a Lambda's code is never loaded, let alone run
        members = _keras_members()
        config = json.loads(members["config.json"])
        config["config"]["layers"].append(
            {
                "class_name": "Lambda",
                "config": {
                    "name": "evil",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None},
                    },
                },
            }
        )
        members["config.json"] = json.dumps(config).encode()
        return _write_zip(folder / "model.keras", members)

    def only_dense(folder: Path) -> Path:
        members = _keras_members()
        config = json.loads(members["config.json"])
        config["config"]["layers"] = [
            layer for layer in config["config"]["layers"] if layer["class_name"] == "InputLayer"
        ]
        members["config.json"] = json.dumps(config).encode()
        return _write_zip(folder / "model.keras", members)

    def weights_alone(folder: Path, change: Callable[[object, Path], None]) -> Path:
        import h5py

        path = folder / "model.weights.h5"
        path.write_bytes(_keras_members()["model.weights.h5"])
        with h5py.File(path, "r+") as handle:
            change(handle, folder)
        return path

    def in_archive(change: Callable[[object, Path], None]) -> Callable[[Path], Path]:
        return lambda folder: _keras_with_weights(folder, lambda handle: change(handle, folder))

    hdf5_cases = [
        Case(
            "keras-external-storage",
            in_archive(_external_storage(KERNEL, (16, 20))),
            "UnsafeInputError",
            r"dataset '0' keeps its bytes in external storage .*: refused",
            secret=SECRET[:1280],
        ),
        Case(
            "keras-virtual-dataset",
            in_archive(_virtual(KERNEL, (16, 20))),
            "UnsafeInputError",
            r"dataset '0' is a virtual dataset",
            secret=SECRET[:1280],
        ),
        Case(
            "keras-parent-external-link",
            in_archive(_parent_external_link("layers/lstm/cell")),
            "UnsafeInputError",
            r"ExternalLink 'layers/lstm/cell' to .* refused",
        ),
        Case(
            "weights-h5-external-storage",
            lambda f: weights_alone(f, _external_storage(KERNEL, (16, 20))),
            "UnsafeInputError",
            r"dataset '0' keeps its bytes in external storage",
            secret=SECRET[:1280],
        ),
        Case(
            "weights-h5-parent-soft-link",
            lambda f: weights_alone(f, _parent_soft_link("layers/lstm")),
            "UnsafeInputError",
            r"SoftLink 'layers/lstm' to '/elsewhere' refused",
        ),
        Case(
            "weights-h5-parent-external-link",
            lambda f: weights_alone(f, _parent_external_link("layers/lstm/cell/vars")),
            "UnsafeInputError",
            r"ExternalLink 'layers/lstm/cell/vars' to .* refused",
        ),
    ]
    return [
        *hdf5_cases,
        Case("keras-truncated", truncated, "FormatError", "not a readable Keras file|neither a .keras zip"),
        Case("keras-zip-bomb", bomb, "UnsafeInputError", "expands .* bytes from"),
        Case("keras-member-dotdot", dotdot, "UnsafeInputError", "points outside the archive"),
        Case("keras-member-absolute", absolute, "UnsafeInputError", "points outside the archive"),
        Case("keras-no-config", without("config.json"), "FormatError", "no config.json"),
        Case("keras-no-weights", without("model.weights.h5"), "FormatError", "no model.weights.h5"),
        Case("keras-bad-json", bad_json, "FormatError", "JSONDecodeError"),
        Case("keras-garbage-weights", garbage_weights, "FormatError", "not a readable Keras file"),
        Case("keras-lambda-not-run", lambda_layer, "", ""),
        Case("keras-no-recurrent-layer", only_dense, "WeightLayoutError", "no recurrent layer found"),
        Case(
            "keras-gates-do-not-divide",
            lambda f: _keras_with_weights(f, lambda h: _replace(h, KERNEL, np.ones((16, 19), "f4"))),
            "WeightLayoutError",
            'layer "decoder" › forward › kernel: .*does not divide',
        ),
        Case(
            "keras-integer-weights",
            lambda f: _keras_with_weights(f, lambda h: _replace(h, KERNEL, np.ones((16, 20), "i4"))),
            "WeightLayoutError",
            "expected floating-point weights, found dtype int32",
        ),
        Case(
            "keras-boolean-weights",
            lambda f: _keras_with_weights(f, lambda h: _replace(h, KERNEL, np.ones((16, 20), bool))),
            "WeightLayoutError",
            "found dtype bool",
        ),
        Case(
            "keras-inconsistent-shapes",
            lambda f: _keras_with_weights(f, lambda h: _replace(h, RECURRENT, np.ones((6, 20), "f4"))),
            "WeightLayoutError",
            r'layer "decoder" › forward › recurrent_kernel: \(6, 20\): expected \(5, 20\), 4 gates × units 5 '
            r"\(from kernel \(16, 20\)\)",
        ),
        Case(
            "keras-blame-bias",
            lambda f: _keras_with_weights(
                f, lambda h: _replace(h, "layers/lstm/cell/vars/2", np.ones(18, "f4"))
            ),
            "WeightLayoutError",
            r'layer "decoder" › forward › bias: \(18,\): expected \(20,\), '
            r"4 gates × units 5 \(from kernel \(16, 20\)\)",
        ),
        Case(
            "keras-nan-weights-strict",
            lambda f: _keras_with_weights(f, lambda h: _replace(h, KERNEL, np.full((16, 20), np.nan, "f4"))),
            "WeightLayoutError",
            'NaN or infinite weights in layer "decoder" › forward › w_ih/i',
        ),
    ]


# -- legacy HDF5 ---------------------------------------------------------------------------------
def _legacy(folder: Path, change: Callable[[object, Path], None]) -> Path:
    import h5py

    path = folder / "model.h5"
    shutil.copyfile(LEGACY, path)
    with h5py.File(path, "r+") as handle:
        change(handle, folder)
    return path


def _external_link(handle, folder: Path) -> None:
    import h5py

    secret = folder.parent / f"{folder.name}-secret.h5"
    with h5py.File(secret, "w") as other:
        other["data"] = np.ones((5, 24), "f4")
    del handle[LEGACY_KERNEL]
    handle[LEGACY_KERNEL] = h5py.ExternalLink(str(secret), "data")


def _soft_link(handle, folder: Path) -> None:
    import h5py

    del handle[LEGACY_KERNEL]
    handle[LEGACY_KERNEL] = h5py.SoftLink("/" + LEGACY_RECURRENT)


def _shape_bomb(compression: str | None) -> Callable[[object, Path], None]:
    def change(handle, folder: Path) -> None:
        del handle[LEGACY_KERNEL]
        handle.create_dataset(
            LEGACY_KERNEL, shape=(200_000, 200_000), dtype="f4", chunks=(64, 64), compression=compression
        )

    return change


#: What a file outside the model holds; a reader that follows storage out of the file copies it.
SECRET = b"SECRET-MARKER-0123456789abcdef!!" * 64  # 2048 bytes, more than any kernel here needs


def _secret_file(folder: Path) -> Path:
    """A local file beside the case folder, as a system file or a token would be."""
    path = folder.parent / f"{folder.name}-secret.bin"
    path.write_bytes(SECRET)
    return path


def _external_storage(key: str, shape: tuple[int, ...]) -> Callable[[object, Path], None]:
    """``key`` rewritten as a dataset whose bytes HDF5 keeps in a file outside this one."""

    def change(handle, folder: Path) -> None:
        secret = _secret_file(folder)
        del handle[key]
        nbytes = int(np.prod(shape)) * 4
        handle.create_dataset(key, shape=shape, dtype="f4", external=[(str(secret), 0, nbytes)])

    return change


def _virtual(key: str, shape: tuple[int, ...], missing: bool = False) -> Callable[[object, Path], None]:
    """``key`` rewritten as a virtual dataset mapping another HDF5 file's (or a missing one's)."""
    import h5py

    def change(handle, folder: Path) -> None:
        source = folder.parent / f"{folder.name}-source.h5"
        if not missing:
            with h5py.File(source, "w") as other:
                other["data"] = np.frombuffer(SECRET[: int(np.prod(shape)) * 4], "f4").reshape(shape)
        layout = h5py.VirtualLayout(shape=shape, dtype="f4")
        layout[...] = h5py.VirtualSource(str(source), "data", shape=shape)
        del handle[key]
        handle.create_virtual_dataset(key, layout, fillvalue=0)

    return change


def _parent_external_link(group: str) -> Callable[[object, Path], None]:
    """The group holding the weights moved to another file, an external link left in its place."""
    import h5py

    def change(handle, folder: Path) -> None:
        other_path = folder.parent / f"{folder.name}-outside.h5"
        with h5py.File(other_path, "w") as other:
            handle.copy(handle[group], other, name="moved")
        del handle[group]
        handle[group] = h5py.ExternalLink(str(other_path), "/moved")

    return change


def _parent_soft_link(group: str) -> Callable[[object, Path], None]:
    """The group holding the weights moved elsewhere in the file, a soft link left in its place."""
    import h5py

    def change(handle, folder: Path) -> None:
        handle.move(group, "/elsewhere")
        handle[group] = h5py.SoftLink("/elsewhere")

    return change


def legacy_cases() -> list[Case]:
    def truncated(folder: Path) -> Path:
        path = folder / "model.h5"
        path.write_bytes(LEGACY.read_bytes()[:3000])
        return path

    def no_layer_names(handle, folder: Path) -> None:
        del handle["model_weights"].attrs["layer_names"]
        del handle.attrs["model_config"]

    return [
        Case("h5-truncated", truncated, "FormatError", "not a readable Keras file|neither a .keras zip"),
        Case(
            "h5-external-link",
            lambda f: _legacy(f, _external_link),
            "UnsafeInputError",
            "ExternalLink .* refused",
        ),
        Case("h5-soft-link", lambda f: _legacy(f, _soft_link), "UnsafeInputError", "SoftLink .* refused"),
        Case(
            "h5-external-storage",
            lambda f: _legacy(f, _external_storage(LEGACY_KERNEL, (5, 24))),
            "UnsafeInputError",
            r"dataset '\S*kernel:0' keeps its bytes in external storage .*: refused",
            secret=SECRET[:480],
        ),
        Case(
            "h5-virtual-dataset",
            lambda f: _legacy(f, _virtual(LEGACY_KERNEL, (5, 24))),
            "UnsafeInputError",
            r"dataset '\S*kernel:0' is a virtual dataset .*: refused",
            secret=SECRET[:480],
        ),
        Case(
            "h5-virtual-dataset-missing-source",
            lambda f: _legacy(f, _virtual(LEGACY_KERNEL, (5, 24), missing=True)),
            "UnsafeInputError",
            r"dataset '\S*kernel:0' is a virtual dataset",
        ),
        Case(
            "h5-parent-external-link",
            lambda f: _legacy(f, _parent_external_link("model_weights/lstm_hs/lstm_hs")),
            "UnsafeInputError",
            r"ExternalLink 'model_weights/lstm_hs/lstm_hs' to .* refused",
        ),
        Case(
            "h5-parent-soft-link",
            lambda f: _legacy(f, _parent_soft_link("model_weights/lstm_hs/lstm_hs")),
            "UnsafeInputError",
            r"SoftLink 'model_weights/lstm_hs/lstm_hs' to '/elsewhere' refused",
        ),
        Case(
            "h5-shape-bomb",
            lambda f: _legacy(f, _shape_bomb(None)),
            "UnsafeInputError",
            "declares 160000000000 bytes",
        ),
        Case(
            "h5-compressed-shape-bomb",
            lambda f: _legacy(f, _shape_bomb("gzip")),
            "UnsafeInputError",
            "declares 160000000000 bytes",
        ),
        Case(
            "h5-no-layer-names",
            lambda f: _legacy(f, no_layer_names),
            "FormatError",
            "no layer_names attribute",
        ),
        Case(
            "h5-cudnn-lstm",  # an LSTM's weights under the class CuDNNLSTM: its bias is 4H, not 8H
            lambda f: _legacy(f, _rename_class("CuDNNLSTM")),
            "WeightLayoutError",
            r'layer "lstm_hs".*expected kernel \(5, 24\) and a cuDNN bias \(48,\), found \(5, 24\), \(24,\)',
        ),
        Case(
            "h5-infinite-weights-strict",
            lambda f: _legacy(f, lambda h, _: _replace(h, LEGACY_KERNEL, np.full((5, 24), np.inf, "f4"))),
            "WeightLayoutError",
            "NaN or infinite",
        ),
    ]


def _rename_class(name: str) -> Callable[[object, Path], None]:
    def change(handle, folder: Path) -> None:
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"][1]["class_name"] = name
        handle.attrs["model_config"] = json.dumps(config)

    return change


# -- PyTorch .pt ---------------------------------------------------------------------------------
class _Payload:
    """Unpickling this runs a shell command (if anything lets it)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _torch_save(folder: Path, obj: object) -> Path:
    import torch

    path = folder / "model.pt"
    torch.save(obj, path)
    return path


def _lstm_state(**changes: np.ndarray) -> dict:
    import torch

    rng = np.random.default_rng(0)
    state = {
        "rnn.weight_ih_l0": rng.uniform(-1, 1, (16, 3)).astype("f4"),
        "rnn.weight_hh_l0": rng.uniform(-1, 1, (16, 4)).astype("f4"),
        "rnn.bias_ih_l0": rng.uniform(-1, 1, 16).astype("f4"),
        "rnn.bias_hh_l0": rng.uniform(-1, 1, 16).astype("f4"),
    }
    state.update(changes)
    return {key: torch.from_numpy(np.asarray(value)) for key, value in state.items() if value is not None}


def _pickle_text(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _pickle_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _pt_pickle(entries: list[tuple[str, str, int, int, tuple[int, ...], tuple[int, ...]]]) -> bytes:
    """A state_dict pickle written opcode by opcode as torch.save writes one, with each tensor's
    (key, storage key, storage elements, offset, size, stride) as given: torch's own pickler
    would not write a tensor that overruns its storage."""
    out = bytearray(b"\x80\x02ccollections\nOrderedDict\n)R(")
    for key, storage, numel, offset, size, stride in entries:
        out += _pickle_text(key) + b"ctorch._utils\n_rebuild_tensor_v2\n("
        out += b"(" + _pickle_text("storage") + b"ctorch\nFloatStorage\n"
        out += _pickle_text(storage) + _pickle_text("cpu") + _pickle_int(numel) + b"tQ"
        out += _pickle_int(offset)
        out += b"(" + b"".join(_pickle_int(n) for n in size) + b"t"
        out += b"(" + b"".join(_pickle_int(n) for n in stride) + b"t"
        out += b"\x89ccollections\nOrderedDict\n)RtR"
    return bytes(out + b"u.")


def _pt_zip(
    folder: Path, pickled: bytes, storages: dict[str, bytes], extra: tuple[tuple[str, bytes], ...] = ()
) -> Path:
    """torch's zip layout (archive/data.pkl, archive/data/<key>…) around a given pickle."""
    import warnings

    path = folder / "model.pt"
    members = [
        ("archive/data.pkl", pickled),
        ("archive/.format_version", b"1"),
        ("archive/.storage_alignment", b"64"),
        ("archive/byteorder", b"little"),
        *((f"archive/data/{key}", data) for key, data in storages.items()),
        ("archive/version", b"3\n"),
        *extra,
    ]
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names some cases want
        for name, data in members:
            archive.writestr(name, data)
    return path


def _one_tensor(
    offset: int, size: tuple[int, ...], stride: tuple[int, ...], stored: int = 192
) -> Callable[[Path], Path]:
    """rnn.weight_ih_l0 over a 48-element float32 storage whose record holds ``stored`` bytes."""

    def build(folder: Path) -> Path:
        pickled = _pt_pickle([("rnn.weight_ih_l0", "0", 48, offset, size, stride)])
        return _pt_zip(folder, pickled, {"0": bytes(range(256))[:stored] if stored <= 256 else bytes(stored)})

    return build


def torch_hostile_cases() -> list[Case]:
    """Storages out of bounds, ambiguous files, declared sizes far past stored ones, and a
    pickle whose naive walk takes 2^40 steps."""

    def expanded(folder: Path) -> Path:
        import torch

        state = _lstm_state()
        state["rnn.weight_ih_l0"] = torch.zeros(1).expand(2_000_000, 4_400_000)  # 8.8e12 elements
        return _torch_save(folder, state)

    def duplicate_member(folder: Path) -> Path:
        import torch

        template = folder / "template.pt"
        torch.save(_lstm_state(), template)
        with zipfile.ZipFile(template) as archive:
            members = [(info.filename, archive.read(info)) for info in archive.infolist()]
        template.unlink()
        first = next(name for name, _ in members if "/data/" in name)
        path = folder / "model.pt"
        import warnings

        with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
            warnings.simplefilter("ignore")
            for name, data in [*members, (first, bytes(len(dict(members)[first])))]:
                archive.writestr(name, data)
        return path

    def pickle_and_zip(folder: Path) -> Path:
        import torch

        legacy, modern = folder / "legacy.pt", folder / "modern.pt"
        torch.save(_lstm_state(), legacy, _use_new_zipfile_serialization=False)
        other = _lstm_state()
        other["rnn.weight_ih_l0"] = other["rnn.weight_ih_l0"] * 2
        torch.save(other, modern)
        path = folder / "model.pt"
        path.write_bytes(legacy.read_bytes() + modern.read_bytes())
        legacy.unlink()
        modern.unlink()
        return path

    def shared_twice(folder: Path) -> Path:
        inner: dict = {"epoch": 1}
        for _ in range(40):
            inner = {"a": inner, "b": inner}
        path = _torch_save(folder, inner)
        assert path.stat().st_size < 4096
        return path

    needs = ("torch",)
    return [
        Case(
            "pt-stride-past-storage",
            _one_tensor(0, (16, 3), (4, 1)),
            "FormatError",
            r"shape \(16, 3\), strides \(4, 1\) at offset 0 reaches element 63 of a storage of 48",
            needs,
        ),
        Case(
            "pt-offset-past-storage",
            _one_tensor(10, (16, 3), (3, 1)),
            "FormatError",
            r"at offset 10 reaches element 58 of a storage of 48",
            needs,
        ),
        Case(
            "pt-negative-stride",
            _one_tensor(45, (16, 3), (-3, 1)),
            "FormatError",
            r"has negative strides \(-3, 1\): refused",
            needs,
        ),
        Case(
            "pt-storage-past-its-record",
            _one_tensor(0, (16, 3), (3, 1), stored=100),
            "FormatError",
            r"storage 0 needs 192 bytes, the archive holds 100",
            needs,
        ),
        Case(
            "pt-expanded-tensor",
            expanded,
            "UnsafeInputError",
            r"declares 8800000000000 elements from a storage of 1: more than 200×",
            needs,
        ),
        Case(
            "pt-duplicate-zip-member",
            duplicate_member,
            "UnsafeInputError",
            r"appears twice: ambiguous",
            needs,
        ),
        Case(
            "pt-legacy-pickle-and-zip",
            pickle_and_zip,
            "UnsafeInputError",
            r"both a zip archive and something else .*: ambiguous, refused",
            needs,
        ),
        Case("pt-shared-dicts-2-to-the-40", shared_twice, "FormatError", "no state_dict found", needs),
    ]


def torch_cases() -> list[Case]:
    def payload_legacy(folder: Path) -> Path:  # the old, non-zip pickle format
        path = folder / "model.pt"
        path.write_bytes(pickle.dumps({"state_dict": _Payload(folder / MARKER)}))
        return path

    def payload_zip(folder: Path) -> Path:  # torch's zip format with a pickled object inside
        return _torch_save(folder, {"model_state_dict": _lstm_state(), "hook": _Payload(folder / MARKER)})

    def truncated(folder: Path) -> Path:
        path = _torch_save(folder, _lstm_state())
        path.write_bytes(path.read_bytes()[:600])
        return path

    def random_bytes(folder: Path) -> Path:
        path = folder / "model.pt"
        path.write_bytes(np.random.default_rng(1).bytes(4096))
        return path

    torch_needs = ("torch",)
    return [
        Case(
            "pt-pickle-payload-legacy",
            payload_legacy,
            "UnsafeInputError",
            "loading would run code",
            torch_needs,
        ),
        Case("pt-pickle-payload-zip", payload_zip, "UnsafeInputError", "loading would run code", torch_needs),
        Case("pt-truncated", truncated, "FormatError", "not a readable PyTorch file", torch_needs),
        Case(
            "pt-random-bytes",
            random_bytes,
            "FormatError|UnsafeInputError",
            "not a readable PyTorch file|would run code",
            torch_needs,
        ),
        Case(
            "pt-no-state-dict",
            lambda f: _torch_save(f, {"epoch": 3, "loss": 0.5}),
            "FormatError",
            "no state_dict found",
            torch_needs,
        ),
        Case(
            "pt-gates-do-not-divide",
            lambda f: _torch_save(f, _lstm_state(**{"rnn.weight_hh_l0": np.ones((15, 4), "f4")})),
            "WeightLayoutError",
            "weight_hh has 15 rows for hidden size 4",
            torch_needs,
        ),
        Case(
            "pt-integer-weights",
            lambda f: _torch_save(f, _lstm_state(**{"rnn.weight_ih_l0": np.ones((16, 3), "i8")})),
            "WeightLayoutError",
            "rnn.weight_ih_l0: expected floating-point weights, found dtype int64",
            torch_needs,
        ),
        Case(
            "pt-missing-weight-hh",
            lambda f: _torch_save(f, _lstm_state(**{"rnn.weight_hh_l0": None})),
            "WeightLayoutError",
            "expected weight_ih and weight_hh",
            torch_needs,
        ),
        *torchscript_cases(),
        Case(
            "pt-bias-wrong-length",
            lambda f: _torch_save(f, _lstm_state(**{"rnn.bias_hh_l0": np.ones(12, "f4")})),
            "WeightLayoutError",
            r"rnn\.bias_hh_l0: \(12,\): expected \(16,\), 4 × hidden 4 \(from rnn\.weight_hh_l0 \(16, 4\)\)",
            torch_needs,
        ),
    ]


# -- TorchScript archives (read as data: tests/test_found.py) -------------------------------------
TORCHSCRIPT = FIXTURES / "torchscript_script.jit"


def _torchscript_with(folder: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    """The TorchScript fixture with its members changed by ``change(members)``."""
    with zipfile.ZipFile(TORCHSCRIPT) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    return _write_zip(folder / "model.jit", members)


def _data_pkl(members: dict[str, bytes]) -> str:
    return next(name for name in members if name.endswith("/data.pkl"))


def torchscript_cases() -> list[Case]:
    def foreign_global(folder: Path) -> Path:  # data.pkl calls os.system when unpickled
        payload = pickle.dumps(_Payload(folder / MARKER), protocol=2)
        return _torchscript_with(folder, lambda m: m.update({_data_pkl(m): payload}))

    def storage_past_record(folder: Path) -> Path:  # storage 0 declares 80 floats, holds 4
        def cut(members: dict[str, bytes]) -> None:
            root = _data_pkl(members)[: -len("data.pkl")]
            members[f"{root}data/0"] = members[f"{root}data/0"][:16]

        return _torchscript_with(folder, cut)

    def script_class_reduce(folder: Path) -> Path:  # __torch__.M(os.system("touch ..."))
        command = f"touch {folder / MARKER}".encode()
        payload = (
            b"\x80\x02c__torch__\nM\n(cos\nsystem\nX"
            + struct.pack("<I", len(command))
            + command
            + b"\x85RtR."
        )
        return _torchscript_with(folder, lambda m: m.update({_data_pkl(m): payload}))

    needs = ("torch",)
    return [
        Case(
            "torchscript-foreign-global",
            foreign_global,
            "UnsafeInputError",
            r"a TorchScript archive whose data\.pkl holds the global (posix|os)\.system.*"
            r"torch\.save\(torch\.jit\.load\(path\)\.state_dict\(\)",
            needs,
        ),
        Case(
            "torchscript-storage-past-record",
            storage_past_record,
            "FormatError",
            r"storage 0 needs 320 bytes, the archive holds 16",
            needs,
        ),
        Case(
            "torchscript-class-reduce-calls",
            script_class_reduce,
            "UnsafeInputError",
            r"a TorchScript archive whose data\.pkl holds the global os\.system",
            needs,
        ),
    ]


# -- safetensors ---------------------------------------------------------------------------------
def _safetensors(folder: Path, header: dict, data: bytes, header_bytes: bytes | None = None) -> Path:
    text = header_bytes if header_bytes is not None else json.dumps(header).encode()
    path = folder / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def _st_entry(dtype: str, shape: list[int], start: int) -> dict:
    size = int(np.prod(shape)) * {"F32": 4, "I32": 4, "BOOL": 1}[dtype]
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, start + size]}


def _st_lstm(dtype: str = "F32") -> tuple[dict, bytes]:
    item = {"F32": 4, "I32": 4, "BOOL": 1}[dtype]
    header = {
        "rnn.weight_ih_l0": _st_entry(dtype, [16, 3], 0),
        "rnn.weight_hh_l0": _st_entry(dtype, [16, 4], 48 * item),
    }
    return header, bytes((48 + 64) * item)


def safetensors_cases() -> list[Case]:
    def header_too_long(folder: Path) -> Path:
        path = folder / "model.safetensors"
        path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
        return path

    def overlapping(folder: Path) -> Path:
        header, data = _st_lstm()
        header["rnn.weight_hh_l0"]["data_offsets"] = [100, 356]
        return _safetensors(folder, header, data)

    def duplicate(folder: Path) -> Path:
        header, data = _st_lstm()
        entry = json.dumps(header["rnn.weight_ih_l0"])
        text = (
            '{"rnn.weight_ih_l0": '
            + entry
            + ', "rnn.weight_ih_l0": '
            + entry
            + ', "rnn.weight_hh_l0": '
            + json.dumps(header["rnn.weight_hh_l0"])
            + "}"
        ).encode()
        return _safetensors(folder, {}, data, text)

    def beyond(folder: Path) -> Path:
        header, data = _st_lstm()
        return _safetensors(folder, header, data[:100])

    def unrelated(folder: Path) -> Path:
        return _safetensors(folder, {"linear.weight": _st_entry("F32", [2, 2], 0)}, bytes(16))

    return [
        Case(
            "safetensors-header-too-long", header_too_long, "FormatError", "not a readable safetensors file"
        ),
        Case(
            "safetensors-bad-json",
            lambda f: _safetensors(f, {}, b"", b'{"a": [1, 2'),
            "FormatError",
            "not a readable safetensors file",
        ),
        Case(
            "safetensors-overlapping-offsets", overlapping, "FormatError", "not a readable safetensors file"
        ),
        Case("safetensors-duplicate-keys", duplicate, "FormatError", "key 'rnn.weight_ih_l0' appears twice"),
        Case("safetensors-data-beyond-file", beyond, "FormatError", "not a readable safetensors file"),
        Case(
            "safetensors-integer-weights",
            lambda f: _safetensors(f, *_st_lstm("I32")),
            "WeightLayoutError",
            "found dtype int32",
        ),
        Case(
            "safetensors-boolean-weights",
            lambda f: _safetensors(f, *_st_lstm("BOOL")),
            "WeightLayoutError",
            "found dtype bool",
        ),
        Case("safetensors-no-recurrent-layer", unrelated, "WeightLayoutError", "no recurrent layer found"),
    ]


# -- ONNX ------------------------------------------------------------------------------------------
def _onnx_model():
    import onnx

    return onnx.load(ONNX)


def _save_onnx(model, folder: Path) -> Path:
    import onnx

    path = folder / "model.onnx"
    onnx.save(model, path)
    return path


def _lstm_node(model):
    return next(node for node in model.graph.node if node.op_type == "LSTM")


def _initializer(model, name: str):
    return next(t for t in model.graph.initializer if t.name == name)


def _externalize(folder: Path, location: str, *, write_to: Path | None = None, short: bool = False) -> Path:
    """The fixture with its first LSTM's W stored as external data at ``location``."""
    from onnx import TensorProto

    model = _onnx_model()
    tensor = _initializer(model, _lstm_node(model).input[1])
    raw = tensor.raw_data or np.asarray(tensor.float_data, "f4").tobytes()
    target = write_to if write_to is not None else folder / location
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw[: len(raw) // 2] if short else raw)
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return _save_onnx(model, folder)


def _onnx_changed(change: Callable[[object], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        model = _onnx_model()
        change(model)
        return _save_onnx(model, folder)

    return build


def _set_initializer(name_of: Callable[[object], str], value: np.ndarray) -> Callable[[object], None]:
    from onnx import numpy_helper

    def change(model) -> None:
        tensor = _initializer(model, name_of(model))
        tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))

    return change


def _set_attribute(name: str, value: object) -> Callable[[object], None]:
    from onnx import helper

    def change(model) -> None:
        node = _lstm_node(model)
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, value)])

    return change


def _computed_weight(model) -> None:
    node = _lstm_node(model)
    model.graph.node.insert(0, __import__("onnx").helper.make_node("Neg", [node.input[1]], ["negated_w"]))
    node.input[1] = "negated_w"


def onnx_cases() -> list[Case]:
    def symlinked(folder: Path) -> Path:
        outside = folder.parent / f"{folder.name}-outside.bin"
        path = _externalize(folder, "weights.bin", write_to=outside)
        (folder / "weights.bin").symlink_to(outside)
        return path

    def truncated(folder: Path) -> Path:
        path = folder / "model.onnx"
        path.write_bytes(ONNX.read_bytes()[:1500])
        return path

    def only_add(folder: Path) -> Path:
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Add", ["a", "a"], ["b"])],
            "g",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])],
        )
        return _save_onnx(helper.make_model(graph), folder)

    w_name = lambda model: _lstm_node(model).input[1]  # noqa: E731
    b_name = lambda model: _lstm_node(model).input[3]  # noqa: E731
    needs = ("onnx",)
    return [
        Case(
            "onnx-external-dotdot",
            lambda f: _externalize(f, "../secret.bin", write_to=f.parent / f"{f.name}.bin"),
            "UnsafeInputError",
            "lies outside the model's folder",
            needs,
        ),
        Case(
            "onnx-external-absolute",
            lambda f: _externalize(
                f, str(f.parent / f"{f.name}-abs.bin"), write_to=f.parent / f"{f.name}-abs.bin"
            ),
            "UnsafeInputError",
            "lies outside the model's folder",
            needs,
        ),
        Case(
            "onnx-external-symlink", symlinked, "UnsafeInputError", "lies outside the model's folder", needs
        ),
        Case(
            "onnx-external-short",
            lambda f: _externalize(f, "weights.bin", short=True),
            "FormatError",
            r"external data holds 384 bytes .* expected 768 for shape \(2, 24, 4\)",
            needs,
        ),
        Case(
            "onnx-external-missing",
            lambda f: _externalize(f, "weights.bin", write_to=f / "elsewhere.bin"),
            "FormatError",
            "external data file 'weights.bin' not found",
            needs,
        ),
        Case("onnx-truncated", truncated, "FormatError", "not a readable ONNX model", needs),
        Case("onnx-no-recurrent-layer", only_add, "WeightLayoutError", "no recurrent layer found", needs),
        Case(
            "onnx-W-rows-do-not-match",
            _onnx_changed(_set_initializer(w_name, np.ones((2, 20, 4), "f4"))),
            "WeightLayoutError",
            r"W: expected \(2, 24, 4\), found \(2, 20, 4\): hidden_size 6 needs 4·6 rows",
            needs,
        ),
        Case(
            "onnx-B-wrong-length",
            _onnx_changed(_set_initializer(b_name, np.ones((2, 40), "f4"))),
            "WeightLayoutError",
            r"B: expected \(2, 48\), found \(2, 40\)",
            needs,
        ),
        Case(
            "onnx-integer-weights",
            _onnx_changed(_set_initializer(w_name, np.ones((2, 24, 4), "i4"))),
            "WeightLayoutError",
            "found dtype int32",
            needs,
        ),
        Case(
            "onnx-computed-weights",
            _onnx_changed(_computed_weight),
            "WeightLayoutError",
            "expected a constant",
            needs,
        ),
        Case(
            "onnx-unknown-activation",
            _onnx_changed(_set_attribute("activations", ["Swish", "Tanh", "Tanh"] * 2)),
            "UnsupportedFeatureError",
            "activation 'Swish' is not an ONNX RNN activation",
            needs,
        ),
        Case(
            "onnx-activation-count",
            _onnx_changed(_set_attribute("activations", ["Sigmoid", "Tanh"])),
            "WeightLayoutError",
            "expected 6 activations for 2 direction",
            needs,
        ),
        Case(
            "onnx-bad-direction",
            _onnx_changed(_set_attribute("direction", "sideways")),
            "FormatError",
            "direction 'sideways' is not forward, reverse or bidirectional",
            needs,
        ),
        *_onnx_found_cases(),
    ]


# -- ONNX as found (issue 14): subgraphs, folded constants, quantized nodes ------------------------
def _proto_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (numbers below 16)."""
    size, length = len(payload), b""
    while True:
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            return bytes([number << 3 | 2]) + length + payload


def onnx_deeply_nested(levels: int = 40) -> bytes:
    """ModelProto bytes of If nodes nested ``levels`` deep, written by hand (protobuf's own
    parser stops near 33 subgraphs)."""
    graph = _proto_field(1, _proto_field(4, b"Identity"))
    for _ in range(levels):
        attribute = _proto_field(1, b"then_branch") + _proto_field(6, graph) + bytes([0xA0, 0x01, 5])
        graph = _proto_field(1, _proto_field(4, b"If") + _proto_field(5, attribute))
    return bytes([8, 8]) + _proto_field(7, graph)


def _weight_computed_by(op: str, shape_input: np.ndarray) -> Callable[[object], None]:
    """The LSTM's W made by ``op`` (Expand, Tile) of a one-element constant by ``shape_input``."""

    def change(model) -> None:
        from onnx import helper, numpy_helper

        node = _lstm_node(model)
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(np.ones((1, 1, 1), "f4"), "bomb_seed"),
                numpy_helper.from_array(shape_input, "bomb_shape"),
            ]
        )
        model.graph.node.insert(0, helper.make_node(op, ["bomb_seed", "bomb_shape"], ["bomb"], name="bomb"))
        node.input[1] = "bomb"

    return change


def _concat_doubling(model) -> None:
    """W made by 40 Concats, each of the last one with itself: 2**40 elements if folded."""
    from onnx import helper, numpy_helper

    node = _lstm_node(model)
    model.graph.initializer.append(numpy_helper.from_array(np.ones((1, 1, 1), "f4"), "twice_0"))
    made = [
        helper.make_node(
            "Concat", [f"twice_{k}", f"twice_{k}"], [f"twice_{k + 1}"], axis=1, name=f"twice_{k}"
        )
        for k in range(40)
    ]
    for position, made_node in enumerate(made):
        model.graph.node.insert(position, made_node)
    node.input[1] = "twice_40"


def onnx_quantized_changed(change: Callable[[object], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        import onnx

        model = onnx.load(FIXTURES / "onnx_quantized_lstm.onnx")
        change(model)
        return _save_onnx(model, folder)

    return build


def _zero_point_wrong_shape(model) -> None:
    from onnx import numpy_helper

    node = next(n for n in model.graph.node if n.op_type == "DynamicQuantizeLSTM")
    tensor = _initializer(model, node.input[9])
    tensor.CopyFrom(numpy_helper.from_array(np.zeros((3,), np.int8), tensor.name))


def _onnx_found_cases() -> list[Case]:
    def deep(folder: Path) -> Path:
        path = folder / "model.onnx"
        path.write_bytes(onnx_deeply_nested())
        return path

    needs = ("onnx",)
    huge = np.array([2, 1 << 16, 1 << 16], np.int64)
    return [
        Case("onnx-subgraphs-nested-deep", deep, "FormatError", "subgraphs nest deeper than 32"),
        Case(
            "onnx-fold-expand-bomb",
            _onnx_changed(_weight_computed_by("Expand", huge)),
            "UnsafeInputError",
            'folding Expand node "bomb" would make 8589934592 elements, past the',
            needs,
        ),
        Case(
            "onnx-fold-tile-bomb",
            _onnx_changed(_weight_computed_by("Tile", huge)),
            "UnsafeInputError",
            'folding Tile node "bomb" would make 8589934592 elements',
            needs,
        ),
        Case(
            "onnx-fold-concat-doubling",
            _onnx_changed(_concat_doubling),
            "UnsafeInputError",
            r'folding Concat node "twice_\d+" would make \d+ elements, past the 1048576 elements',
            needs,
        ),
        Case(
            "onnx-quantized-zero-point-shape",
            onnx_quantized_changed(_zero_point_wrong_shape),
            "WeightLayoutError",
            r"W_zero_point.*expected \(2, 24\) like W_scale, found \(3,\)",
            needs,
        ),
    ]


# -- npz -------------------------------------------------------------------------------------------
def npz_cases() -> list[Case]:
    def pickled(folder: Path) -> Path:
        path = folder / "model.npz"
        np.savez(path, **{"__lstmconv__": np.array([_Payload(folder / MARKER)], dtype=object)})
        return path

    def no_meta(folder: Path) -> Path:
        path = folder / "model.npz"
        np.savez(path, w=np.ones(3))
        return path

    def bad_meta(folder: Path) -> Path:
        path = folder / "model.npz"
        np.savez(path, __lstmconv__=np.array('{"version": 1, "layers": [{"name": "x"'))
        return path

    return [
        Case("npz-pickled-object", pickled, "FormatError", "not a readable lstmconv .npz"),
        Case("npz-no-metadata", no_meta, "FormatError", "no __lstmconv__ entry"),
        Case("npz-bad-metadata", bad_meta, "FormatError", "not a readable lstmconv .npz"),
    ]


# -- TensorFlow checkpoints and SavedModels --------------------------------------------------------
TF1_LSTM = FIXTURES / "tensorflow" / "tf1_lstm"
SAVEDMODEL = FIXTURES / "tensorflow" / "tf_keras_savedmodel"


def _bundle(folder: Path, change: Callable[[dict], None] | None = None, **options: object) -> Path:
    import tf_bundles

    tensors = tf_bundles.lstm_cell()
    if change is not None:
        change(tensors["rnn/lstm_cell/kernel"].__dict__)
    return tf_bundles.write(folder / "ckpt-1", tensors, **options)


def _copy_fixture(
    folder: Path, change: Callable[[bytearray], None] | None = None, shard: bool = True
) -> Path:
    index = bytearray((TF1_LSTM.parent / "tf1_lstm.index").read_bytes())
    if change is not None:
        change(index)
    (folder / "ckpt.index").write_bytes(bytes(index))
    if shard:
        shutil.copy(TF1_LSTM.parent / "tf1_lstm.data-00000-of-00001", folder / "ckpt.data-00000-of-00001")
    return folder / "ckpt"


def _flip(position: int) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        data[position] ^= 0x55

    return change


def _keras_without_kernel(folder: Path) -> Path:
    import tf_bundles

    recurrent = np.zeros((3, 12), "<f4")
    tensors = {
        "lstm/lstm_cell/recurrent_kernel": tf_bundles.Tensor(
            tf_bundles.DT_FLOAT, (3, 12), recurrent.tobytes()
        )
    }
    return tf_bundles.write(folder / "ckpt-1", tensors)


def _sliced_kernel(folder: Path, parts: list[tuple[tuple[int, int], tuple[int, int]]]) -> Path:
    """rnn/lstm_cell/kernel (5, 12) partitioned into ``parts`` (starts, lengths), each a slice."""
    import tf_bundles

    tensors = tf_bundles.lstm_cell()
    kernel = np.frombuffer(tensors["rnn/lstm_cell/kernel"].data, "<f4").reshape(5, 12)
    full = tf_bundles.Tensor(tf_bundles.DT_FLOAT, (5, 12), b"")
    full.raw_entry = tf_bundles.sliced(full, parts)
    tensors["rnn/lstm_cell/kernel"] = full
    for starts, lengths in parts:
        window = kernel[starts[0] : starts[0] + lengths[0], starts[1] : starts[1] + lengths[1]].copy()
        key = tf_bundles.slice_key("rnn/lstm_cell/kernel", starts, lengths)
        tensors[key] = tf_bundles.Tensor(tf_bundles.DT_FLOAT, window.shape, window.tobytes())
    return tf_bundles.write(folder / "ckpt-1", tensors)


def tf_checkpoint_cases() -> list[Case]:
    import tf_bundles

    def bad_tensor_crc(folder: Path) -> Path:
        prefix = _copy_fixture(folder)
        shard = folder / "ckpt.data-00000-of-00001"
        data = bytearray(shard.read_bytes())
        data[17] ^= 0x01
        shard.write_bytes(bytes(data))
        return prefix

    def missing_shard(folder: Path) -> Path:
        return _copy_fixture(folder, shard=False)

    def overlong_varint(folder: Path) -> Path:
        entry = tf_bundles.field(1, 1) + b"\x20" + b"\xff" * 11 + b"\x01"
        return _bundle(folder, lambda t: t.update(raw_entry=entry))

    def object_graph_cycle(folder: Path) -> Path:
        # node 0 -> node 1 -> node 0: a reader that follows children must stop
        ref = lambda node, name: tf_bundles.field(1, tf_bundles.field(1, node) + tf_bundles.field(2, name))  # noqa: E731
        graph = tf_bundles.field(1, ref(1, b"a")) + tf_bundles.field(1, ref(0, b"back"))
        data = tf_bundles.string_tensor(graph)
        tensors = {
            "_CHECKPOINTABLE_OBJECT_GRAPH": tf_bundles.Tensor(
                tf_bundles.DT_STRING, (), data, crc=tf_bundles.string_crc(graph)
            )
        }
        return tf_bundles.write(folder / "ckpt-1", tensors)

    def opaque_only(folder: Path) -> Path:
        buffer = np.zeros(64, "<f4").tobytes()
        tensors = {"cudnn_lstm/opaque_kernel": tf_bundles.Tensor(tf_bundles.DT_FLOAT, (64,), buffer)}
        return tf_bundles.write(folder / "ckpt-1", tensors)

    def object_graph(folder: Path, graph: bytes, crc: int | None = None) -> Path:
        data = tf_bundles.string_tensor(graph)
        crc = tf_bundles.string_crc(graph) if crc is None else crc
        entry = tf_bundles.Tensor(tf_bundles.DT_STRING, (), data, crc=crc)
        return tf_bundles.write(folder / "ckpt-1", {"_CHECKPOINTABLE_OBJECT_GRAPH": entry})

    def keras_missing_recurrent(folder: Path) -> Path:
        tensors = tf_bundles.lstm_cell()
        kernel = tensors.pop("rnn/lstm_cell/kernel")
        tensors["lstm/lstm_cell/kernel"] = kernel
        tensors["lstm/lstm_cell/recurrent_kernel"] = tf_bundles.Tensor(
            tf_bundles.DT_FLOAT, (3, 9), np.zeros((3, 9), "<f4").tobytes()
        )
        return tf_bundles.write(folder / "ckpt-1", tensors)

    return [
        Case("tf-checkpoint-rewritten", lambda f: _bundle(f), "", ""),
        Case("tf-checkpoint-bad-magic", lambda f: _copy_fixture(f, _flip(-1)), "FormatError", "footer magic"),
        Case(
            "tf-checkpoint-index-handle-past-end",
            lambda f: _bundle(f, index_handle=(10_000, 40)),
            "FormatError",
            "runs past the table",
        ),
        Case(
            "tf-checkpoint-bad-block-crc",
            lambda f: _copy_fixture(f, _flip(8)),
            "FormatError",
            "CRC-32C .* does not match",
        ),
        Case(
            "tf-checkpoint-bad-tensor-crc",
            bad_tensor_crc,
            "FormatError",
            "bias: CRC-32C .* data shard is corrupt",
        ),
        Case(
            "tf-checkpoint-offset-past-shard",
            lambda f: _bundle(f, lambda t: t.update(offset=1 << 40)),
            "FormatError",
            "lie past the end of ckpt-1.data-00000-of-00001",
        ),
        Case(
            "tf-checkpoint-size-not-shape",
            lambda f: _bundle(f, lambda t: t.update(size=12)),
            "FormatError",
            r"float32 \(5, 12\) needs 240 bytes, the entry says 12",
        ),
        Case(
            "tf-checkpoint-huge-shape",
            lambda f: _bundle(f, lambda t: t.update(shape=(1 << 30, 1 << 30))),
            "UnsafeInputError",
            "asks for 1152921504606846976 elements",
        ),
        Case(
            "tf-checkpoint-shard-out-of-range",
            lambda f: _bundle(f, lambda t: t.update(shard_id=3)),
            "FormatError",
            "shard 3 is out of range",
        ),
        Case(
            "tf-checkpoint-missing-shard",
            missing_shard,
            "FormatError",
            "data shard ckpt.data-00000-of-00001 is missing",
        ),
        Case(
            "tf-checkpoint-unknown-dtype",
            lambda f: _bundle(f, lambda t: t.update(dtype=21)),
            "UnsupportedFeatureError",
            "dtype 21",
        ),
        Case(
            "tf-checkpoint-overlong-varint", overlong_varint, "FormatError", "varint is longer than 64 bits"
        ),
        Case(
            "tf-checkpoint-big-endian",
            lambda f: _bundle(f, endianness=1),
            "UnsupportedFeatureError",
            "big-endian",
        ),
        Case(
            "tf-checkpoint-keras-no-kernel",
            lambda f: _keras_without_kernel(f),
            "WeightLayoutError",
            'layer "lstm" › lstm_cell: expected a kernel beside the others, found recurrent_kernel',
        ),
        Case(
            "tf-checkpoint-slices-rebuilt",
            lambda f: _sliced_kernel(f, [((0, 0), (2, 12)), ((2, 0), (3, 5)), ((2, 5), (3, 7))]),
            "",
            "",
        ),
        Case(
            "tf-checkpoint-slices-leave-a-gap",
            lambda f: _sliced_kernel(f, [((0, 0), (2, 12)), ((2, 0), (3, 5))]),
            "FormatError",
            "rnn/lstm_cell/kernel: its slices do not cover it exactly once",
        ),
        Case(
            "tf-checkpoint-slices-overlap",
            lambda f: _sliced_kernel(f, [((0, 0), (3, 12)), ((2, 0), (3, 12))]),
            "FormatError",
            "its slices do not cover it exactly once",
        ),
        Case(
            "tf-checkpoint-slice-outside",
            lambda f: _sliced_kernel(f, [((0, 0), (5, 12)), ((4, 0), (3, 12))]),
            "FormatError",
            r"a slice \[4, 7\) lies outside a dimension of 5",
        ),
        Case(
            "tf-checkpoint-keys-out-of-order",
            lambda f: _bundle(f, reverse_keys=True),
            "FormatError",
            "not in strictly increasing order",
        ),
        Case(
            "tf-checkpoint-index-repeats-a-block",
            lambda f: _bundle(f, repeat_block=True),
            "FormatError",
            "names the data block at 0 twice",
        ),
        Case(
            "tf-checkpoint-object-graph-bad-crc",
            lambda f: object_graph(f, b"\x0a\x00", crc=12345),
            "FormatError",
            "_CHECKPOINTABLE_OBJECT_GRAPH: the CRC-32C of the string tensor does not match",
        ),
        Case(
            "tf-checkpoint-object-graph-garbage",
            lambda f: object_graph(f, b"\x0a\x05\x0a\x03\x08"),
            "FormatError",
            "TrackableObjectGraph: a field of 5 bytes runs past its end",
        ),
        Case(
            "tf-checkpoint-object-graph-child-out-of-range",
            lambda f: object_graph(f, b"\x0a\x04\x0a\x02\x08\x09"),
            "FormatError",
            "a child refers to node 9 of 1",
        ),
        Case(
            "tf-checkpoint-cudnn-opaque-only",
            opaque_only,
            "UnsupportedFeatureError",
            "cudnn_lstm/opaque_kernel is a cuDNN opaque parameter buffer without its canonical copy",
        ),
        Case(
            "tf-checkpoint-object-graph-cycle", object_graph_cycle, "FormatError", "no recurrent layer found"
        ),
        Case(
            "tf-checkpoint-keras-shapes-disagree",
            keras_missing_recurrent,
            "WeightLayoutError",
            "does not fit a lstm_cell",
        ),
        Case(
            "tf-checkpoint-truncated-index",
            lambda f: _copy_fixture(f, lambda d: d.__delitem__(slice(0, 150))),
            "FormatError",
            "shorter than the 48-byte footer|runs past|magic",
        ),
    ]


def savedmodel_cases() -> list[Case]:
    def without_variables(folder: Path) -> Path:
        shutil.copytree(SAVEDMODEL, folder / "model")
        shutil.rmtree(folder / "model" / "variables")
        return folder / "model"

    def bad_metadata(folder: Path) -> Path:
        shutil.copytree(SAVEDMODEL, folder / "model")
        (folder / "model" / "keras_metadata.pb").write_bytes(b"\x0a\x05\x12\x7f")
        return folder / "model"

    def not_a_proto(folder: Path) -> Path:
        shutil.copytree(SAVEDMODEL, folder / "model")
        (folder / "model" / "saved_model.pb").write_bytes(b"\x12\xff\xff\xff\xff\x0f")
        (folder / "model" / "keras_metadata.pb").unlink()
        return folder / "model"

    return [
        Case("savedmodel-no-variables", without_variables, "FormatError", "has no variables/variables.index"),
        Case("savedmodel-bad-keras-metadata", bad_metadata, "FormatError", "runs past its end"),
        Case("savedmodel-bad-saved-model-pb", not_a_proto, "FormatError", "runs past its end"),
    ]


# -- .tflite flatbuffers ------------------------------------------------------------------------
TFLITE = FIXTURES / "tflite_stacked.tflite"
TFLITE_F16 = FIXTURES / "tflite_float16.tflite"


def _tflite_patched(
    source: Path, locate: Callable[[object], list[tuple[int, bytes]]]
) -> Callable[[Path], Path]:
    """A fixture with bytes overwritten where ``locate(flat.Flat)`` says (found with lstmconv's
    own bounded parser, so the patch lands on the field it means)."""

    def build(folder: Path) -> Path:
        from lstmconv.formats.tflite import flat

        data = bytearray(source.read_bytes())
        for position, value in locate(flat.Flat(bytes(data))):
            data[position : position + len(value)] = value
        path = folder / "model.tflite"
        path.write_bytes(bytes(data))
        return path

    return build


def _main_graph(f):
    return f.root().tables(2, "subgraphs")[0]


def _lstm_op(f):
    graph = _main_graph(f)
    return next(
        op for op in graph.tables(3, "operators") if op.ints(1, "inputs") and len(op.ints(1, "inputs")) == 24
    )


def _weight_tensor(f):
    graph = _main_graph(f)
    return graph.tables(0, "tensors")[_lstm_op(f).ints(1, "inputs")[2]]


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def tflite_cases() -> list[Case]:
    def written(data: bytes) -> Callable[[Path], Path]:
        def build(folder: Path) -> Path:
            path = folder / "model.tflite"
            path.write_bytes(data)
            return path

        return build

    def copied(name: str) -> Callable[[Path], Path]:
        def build(folder: Path) -> Path:
            path = folder / "model.tflite"
            shutil.copyfile(FIXTURES / name, path)
            return path

        return build

    def huge_shape(f):  # a weight's (8, 5) becomes (2**31 - 1, 2**31 - 1) over its 160 bytes
        shape = _weight_tensor(f).pointed(0)
        return [(shape + 4, _u32(2**31 - 1) * 2)]

    def long_vector(f):  # Model.buffers claims 2**30 entries
        return [(f.root().pointed(4), _u32(2**30))]

    def long_data(f):  # one weight's buffer data claims more bytes than the file has
        buffer_index = struct.unpack_from("<I", f.data, _weight_tensor(f).field(2, 4))[0]
        buffer = f.root().tables(4, "buffers")[buffer_index]
        return [(buffer.pointed(0), _u32(len(f.data)))]

    def tensor_out_of_range(f):
        return [(_lstm_op(f).pointed(1) + 4 * 3, struct.pack("<i", 9999))]

    def buffer_out_of_range(f):
        return [(_weight_tensor(f).field(2, 4), _u32(4_000_000))]

    def opcode_out_of_range(f):  # no operator codes left for the ops to use
        return [(f.root().pointed(1), _u32(0))]

    def vtable_outside(f):  # the root table's vtable said to lie 2**31 - 1 bytes before it
        return [(struct.unpack_from("<I", f.data, 0)[0], struct.pack("<i", 2**31 - 1))]

    def dequantize_cycle(f):  # a DEQUANTIZE made to read its own output: the weight's producer loops
        graph = _main_graph(f)
        weight = _lstm_op(f).ints(1, "inputs")[2]
        op = next(op for op in graph.tables(3, "operators") if op.ints(2, "outputs") == (weight,))
        return [(op.pointed(1) + 4, struct.pack("<i", weight))]

    def external_past_end(f):  # a buffer stored after the flatbuffer, said to lie 2**40 bytes in
        buffer = next(b for b in f.root().tables(4, "buffers") if b.field(1, 8) is not None)
        return [(buffer.field(1, 8), struct.pack("<Q", 2**40))]

    def only_add(f):  # the RNN fixture's one operator code made ADD
        code = f.root().tables(1, "operator_codes")[0]
        return [(code.field(0, 1), b"\x00"), (code.field(3, 4), _u32(0))]

    stacked = TFLITE.read_bytes()
    return [
        Case("tflite-empty", written(b""), "FormatError", "the file is empty"),
        Case(
            "tflite-truncated",
            written(stacked[:900]),
            "FormatError",
            "not a readable TFLite model: .* past the end",
        ),
        Case(
            "tflite-not-tflite",
            written(b"\x08\x00\x00\x00ONNX" + bytes(64)),
            "FormatError",
            "no TFL3 identifier",
        ),
        Case(
            "tflite-root-out-of-range",
            written(_u32(0xFFFFFF00) + stacked[4:]),
            "FormatError",
            "the Model table at byte 4294967040 .* lies past the end of the file",
        ),
        Case(
            "tflite-vtable-outside",
            _tflite_patched(TFLITE, vtable_outside),
            "FormatError",
            "vtable of the Model table",
        ),
        Case(
            "tflite-vector-longer-than-file",
            _tflite_patched(TFLITE, long_vector),
            "FormatError",
            r"Model.buffers claims 1073741824 elements, more than the file's \d+ bytes hold",
        ),
        Case(
            "tflite-buffer-past-end",
            _tflite_patched(TFLITE, long_data),
            "FormatError",
            r"buffers\[\d+\]\.data .* past the end",
        ),
        Case(
            "tflite-external-buffer-past-end",
            _tflite_patched(FIXTURES / "tflite_op_rnn_external.tflite", external_past_end),
            "FormatError",
            r"Model.buffers\[\d+\] \(offset 1099511627776, size \d+\) .* lies past the end of the file",
        ),
        Case(
            "tflite-no-recurrent-op",
            _tflite_patched(FIXTURES / "tflite_op_rnn.tflite", only_add),
            "WeightLayoutError",
            "no recurrent op found among ADD",
        ),
        Case(
            "tflite-huge-shape",
            _tflite_patched(TFLITE, huge_shape),
            "FormatError",
            r"input 2 input_to_forget_weights .* the buffer holds 160 bytes, expected 18446744056529682436 "
            r"for shape \(2147483647, 2147483647\)",
        ),
        Case(
            "tflite-tensor-out-of-range",
            _tflite_patched(TFLITE, tensor_out_of_range),
            "FormatError",
            "names tensor 9999",
        ),
        Case(
            "tflite-buffer-out-of-range",
            _tflite_patched(TFLITE, buffer_out_of_range),
            "FormatError",
            "names buffer 4000000",
        ),
        Case(
            "tflite-opcode-out-of-range",
            _tflite_patched(TFLITE, opcode_out_of_range),
            "FormatError",
            "uses operator code 0, but the model has 0",
        ),
        Case(
            "tflite-dequantize-cycle",
            _tflite_patched(TFLITE_F16, dequantize_cycle),
            "FormatError",
            "a DEQUANTIZE chain loops",
        ),
        Case(
            "tflite-gru-while-loop",
            copied("tflite_gru_while.tflite"),
            "UnsupportedFeatureError",
            r'operator 1 \(WHILE, body "while_body", output "while"\) is a recurrent layer exported as '
            "a WHILE loop, not a fused op; lstmconv cannot read it",
        ),
        Case(
            "tflite-int8-weights",
            copied("tflite_int8.tflite"),
            "UnsupportedFeatureError",
            r"UNIDIRECTIONAL_SEQUENCE_LSTM .* input 1 input_to_input_weights \(tensor \d+ .*\): "
            "int8-quantized weights",
        ),
    ]


# -- not regular files: a FIFO blocks a read forever, /dev/zero never ends ------------------------------
def _fifo(name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        os.mkfifo(path)
        return path

    return build


def _directory(name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.mkdir()
        return path

    return build


def _dev_zero(name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.symlink_to("/dev/zero")
        return path

    return build


def not_regular_cases(ending: str) -> list[Case]:
    fifo = r"a FIFO \(named pipe\), not a regular file: refused"
    cases = [
        Case(f"fifo-{ending}", _fifo(f"m.{ending}"), "FormatError", fifo),
        Case(
            f"directory-{ending}", _directory(f"m.{ending}"), "FormatError", "a directory, not a regular file"
        ),
    ]
    if ending == "keras":
        cases.append(
            Case(
                "dev-zero-keras",
                _dev_zero("m.keras"),
                "FormatError",
                "a character device, not a regular file",
            )
        )
    return cases


# -- bounded work: walks, name checks, declared against stored sizes ----------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _onnx_of_nodes(folder: Path, node: bytes, count: int) -> Path:
    """A model whose graph is ``count`` copies of one encoded NodeProto, written on the wire."""
    one = b"\x0a" + _varint(len(node)) + node
    graph = one * count
    path = folder / "model.onnx"
    path.write_bytes(b"\x3a" + _varint(len(graph)) + graph)
    return path


def bounded_work_cases() -> list[Case]:
    def concat_chain(folder: Path) -> Path:
        """initial_h built from zeros by 40 chained Concat(x, x): 2^40 paths, 41 names."""
        from onnx import helper, numpy_helper

        model = _onnx_model()
        node = _lstm_node(model)
        model.graph.initializer.append(numpy_helper.from_array(np.zeros((2, 1, 6), "f4"), "chain_0"))
        chain = [
            helper.make_node("Concat", [f"chain_{k}", f"chain_{k}"], [f"chain_{k + 1}"], axis=1)
            for k in range(40)
        ]
        position = list(model.graph.node).index(node)
        for offset, link in enumerate(chain):
            model.graph.node.insert(position + offset, link)
        node.input[5] = "chain_40"
        return _save_onnx(model, folder)

    def many_layers(folder: Path) -> Path:
        """60,000 one-unit simple RNNs in a safetensors file: name checks must be linear."""
        header, offset = {}, 0
        for index in range(60_000):
            for field in ("weight_ih_l0", "weight_hh_l0"):
                header[f"m{index}.{field}"] = {
                    "dtype": "F32",
                    "shape": [1, 1],
                    "data_offsets": [offset, offset + 4],
                }
                offset += 4
        data = np.random.default_rng(2).uniform(-1, 1, offset // 4).astype("<f4").tobytes()
        return _safetensors(folder, header, data)

    def npz_bomb(folder: Path) -> Path:
        """A valid lstmconv .npz plus a member of 200 MB of zeros deflated to ~200 kB."""
        source = FIXTURES / "lstmconv_npz.npz"
        path = folder / "model.npz"
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for info in original.infolist():
                archive.writestr(info.filename, original.read(info))
            with archive.open("padding.npy", "w", force_zip64=True) as member:
                count = 50 << 20
                np.lib.format.write_array_header_1_0(
                    member, {"descr": "<f4", "fortran_order": False, "shape": (count,)}
                )
                block = bytes(4 << 20)
                for _ in range(count * 4 // len(block)):
                    member.write(block)
        return path

    def zip_times_hdf5(folder: Path) -> Path:
        """Each layer expands under 200×, together ~2000×: a gzip dataset of 63 MB in a 1.3 MB
        HDF5 file, deflated in the .keras archive to ~32 kB (its chunks repeat)."""
        import h5py

        members = _keras_members()
        scratch = folder / "scratch.h5"
        scratch.write_bytes(members["model.weights.h5"])
        rng = np.random.default_rng(0)
        row = np.zeros(262_144, "f4")
        row[rng.integers(0, row.size, 3000)] = rng.standard_normal(3000)
        with h5py.File(scratch, "r+") as handle:
            del handle[KERNEL]
            dataset = handle.create_dataset(
                KERNEL, (60, row.size), "f4", chunks=(1, row.size), compression="gzip"
            )
            for index in range(60):
                dataset[index] = row
        members["model.weights.h5"] = scratch.read_bytes()
        scratch.unlink()
        return _write_zip(folder / "model.keras", members, zipfile.ZIP_DEFLATED)

    return [
        # initial_h from 40 chained Concat(x, x): folding it is a bomb, refused within budget
        Case(
            "onnx-concat-chain-2-to-the-40",
            concat_chain,
            "UnsafeInputError",
            "constant-folding bomb",
            ("onnx",),
        ),
        Case(
            "onnx-6MB-of-empty-nodes",
            lambda f: _onnx_of_nodes(f, b"", 3_000_000),
            "FormatError",
            "node 0 has no op_type",
        ),
        Case(
            "onnx-too-many-nodes",
            lambda f: _onnx_of_nodes(f, b"\x22\x01A", 300_001),
            "UnsafeInputError",
            "the graph has more than 300000 nodes",
        ),
        Case("safetensors-60000-layers", many_layers, "", ""),
        Case(
            "npz-member-zip-bomb", npz_bomb, "UnsafeInputError", r"zip member 'padding.npy' expands \d+ bytes"
        ),
        Case(
            "keras-zip-times-hdf5-ratio",
            zip_times_hdf5,
            "UnsafeInputError",
            r"declares? \d+ bytes",
        ),
    ]


# -- names that would forge output lines or drive the terminal ---------------------------------------------
#: A name holding a newline and a forged line after it, and terminal escape sequences.
FORGED = "evil\nlstmconv: wrote forged.onnx\x1b[2J\x1b]0;owned\x07\u202e"


def forged_name_cases() -> list[Case]:
    def onnx_node(folder: Path) -> Path:
        model = _onnx_model()
        _lstm_node(model).name = FORGED
        _set_attribute("direction", "sideways")(model)
        return _save_onnx(model, folder)

    def safetensors_key(folder: Path) -> Path:
        header, data = _st_lstm("I32")
        header = {key.replace("rnn.", "rnn\x1b[2J\u2028."): value for key, value in header.items()}
        return _safetensors(folder, header, data)

    def file_name(folder: Path) -> Path:
        path = folder / "m\nlstmconv: wrote forged\x1b[2J.npz"
        np.savez(path, w=np.ones(3))
        return path

    return [
        Case(
            "onnx-node-name-forges-a-line",
            onnx_node,
            "FormatError",
            r"evil\\nlstmconv: wrote forged.onnx\\x1b\[2J",
            ("onnx",),
        ),
        Case(
            "safetensors-key-escapes",
            safetensors_key,
            "WeightLayoutError",
            r"rnn\\x1b\[2J\\u2028\.weight_ih_l0",
        ),
        Case(
            "npz-file-name-forges-a-line",
            file_name,
            "FormatError",
            r"m\\nlstmconv: wrote forged\\x1b\[2J\.npz",
        ),
    ]


# -- degenerate or unusual but valid models --------------------------------------------------------------
#: Cases whose file the reference safetensors library refuses too (tests/test_hostile.py checks).
REFERENCE_REFUSES = "safetensors-reference-refuses-"


def degenerate_cases() -> list[Case]:
    def st(shapes: dict[str, tuple[int, ...]]) -> Callable[[Path], Path]:
        def build(folder: Path) -> Path:
            header, offset = {}, 0
            for key, shape in shapes.items():
                header[key] = _st_entry("F32", list(shape), offset)
                offset = header[key]["data_offsets"][1]
            return _safetensors(folder, header, bytes(offset))

        return build

    def utf16(folder: Path) -> Path:
        header, data = _st_lstm()
        return _safetensors(folder, header, data, json.dumps(header).encode("utf-16"))

    def with_gap(folder: Path) -> Path:
        header, _ = _st_lstm()
        header["rnn.weight_ih_l0"], header["rnn.weight_hh_l0"] = (  # out of order, and a gap of 8
            _st_entry("F32", [16, 3], 256 + 8),
            _st_entry("F32", [16, 4], 0),
        )
        return _safetensors(folder, header, bytes(256 + 8 + 192))

    def numbers_as_strings(folder: Path) -> Path:
        header, data = _st_lstm()
        header["rnn.weight_hh_l0"]["shape"] = ["16", "4"]
        return _safetensors(folder, header, data)

    def trailing(folder: Path) -> Path:
        header, data = _st_lstm()
        return _safetensors(folder, header, data + bytes(64))

    def onnx_hidden_minus_one(model) -> None:
        _set_attribute("hidden_size", -1)(model)

    def big_endian_kernel(folder: Path) -> Path:
        """The .npz fixture with one tensor stored big-endian: read byte-swapped, same model."""
        path = folder / "model.npz"
        with np.load(FIXTURES / "lstmconv_npz.npz") as archive:
            arrays = {key: archive[key] for key in archive.files}
        key = next(key for key in arrays if "w_ih" in key)
        arrays[key] = arrays[key].astype(arrays[key].dtype.newbyteorder(">"))
        np.savez(path, **arrays)
        return path

    def all_big_endian(folder: Path) -> Path:
        path = folder / "model.npz"
        with np.load(FIXTURES / "lstmconv_npz.npz") as archive:
            arrays = {key: archive[key] for key in archive.files}
        for key, array in arrays.items():
            if array.dtype.kind == "f":
                arrays[key] = array.astype(array.dtype.newbyteorder(">"))
        np.savez(path, **arrays)
        return path

    one_unit = "a layer needs at least one input feature and one unit"
    return [
        Case(
            "safetensors-input-size-0",
            st({"rnn.weight_ih_l0": (16, 0), "rnn.weight_hh_l0": (16, 4)}),
            "WeightLayoutError",
            "input size 0, hidden size 4: " + one_unit,
        ),
        Case(
            "safetensors-hidden-size-0",
            st({"rnn.weight_ih_l0": (0, 3), "rnn.weight_hh_l0": (0, 0)}),
            "WeightLayoutError",
            "weight_hh has 0 rows for hidden size 0",
        ),
        Case(
            "npz-input-size-0",
            _npz_input_size_0,
            "WeightLayoutError",
            "input size 0, hidden size \\d+: " + one_unit,
        ),
        Case(
            "onnx-hidden-size-minus-1",
            _onnx_changed(onnx_hidden_minus_one),
            "FormatError",
            "hidden_size -1 is not a positive number of units",
            ("onnx",),
        ),
        Case("npz-one-big-endian-kernel", big_endian_kernel, "", ""),
        Case("npz-all-big-endian", all_big_endian, "", ""),
        Case(REFERENCE_REFUSES + "utf16", utf16, "FormatError", "header is not UTF-8 JSON"),
        Case(REFERENCE_REFUSES + "gap-out-of-order", with_gap, "FormatError", "leaves a gap at byte 256"),
        Case(
            REFERENCE_REFUSES + "numbers-as-strings",
            numbers_as_strings,
            "FormatError",
            r"shape must be non-negative integers, found \['16', '4'\]",
        ),
        Case(REFERENCE_REFUSES + "trailing-data", trailing, "FormatError", "cover 448 of the 512 data bytes"),
    ]


def _npz_input_size_0(folder: Path) -> Path:
    """The .npz fixture with every w_ih of its first layer given zero columns."""
    path = folder / "model.npz"
    with np.load(FIXTURES / "lstmconv_npz.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    first = json.loads(str(arrays["__lstmconv__"]))["layers"][0]["name"]
    for key, array in arrays.items():
        if key.startswith(f"{first}/") and "/w_ih/" in key:
            arrays[key] = np.zeros((array.shape[0], 0), array.dtype)
    np.savez(path, **arrays)
    return path


# -- blame: errors name the file's own tensor, and where the hidden size came from -------------------------
def blame_cases() -> list[Case]:
    def odd_one_out(shapes: dict[str, tuple[int, ...]]) -> Callable[[Path], Path]:
        def build(folder: Path) -> Path:
            header, offset = {}, 0
            for key, shape in shapes.items():
                header[key] = _st_entry("F32", list(shape), offset)
                offset = header[key]["data_offsets"][1]
            return _safetensors(folder, header, bytes(offset))

        return build

    lstm = {"weight_ih_l0": (64, 8), "weight_hh_l0": (64, 16), "bias_ih_l0": (64,), "bias_hh_l0": (64,)}
    return [
        Case(
            "safetensors-blame-weight-ih-rows",
            odd_one_out({**lstm, "weight_ih_l0": (60, 8)}),
            "WeightLayoutError",
            r"› weight_ih_l0: \(60, 8\): 60 rows is not 4 × hidden 16 \(from weight_hh_l0 \(64, 16\)\)",
        ),
        Case(
            "safetensors-blame-bias",
            odd_one_out({**lstm, "bias_ih_l0": (60,)}),
            "WeightLayoutError",
            r"› bias_ih_l0: \(60,\): expected \(64,\), 4 × hidden 16 \(from weight_hh_l0 \(64, 16\)\)",
        ),
        Case(
            "safetensors-blame-reverse-direction",
            odd_one_out(
                {**lstm, **{k + "_reverse": v for k, v in lstm.items()}, "weight_ih_l0_reverse": (64, 9)}
            ),
            "WeightLayoutError",
            r"› weight_ih_l0_reverse: \(64, 9\): expected \(64, 8\) as weight_ih_l0 has",
        ),
    ]


def _cross_cutting(prefix: str) -> list[Case]:
    """The cases of the classes that span formats (bounded work, forged names), by name prefix."""
    cases = bounded_work_cases() + forged_name_cases() + degenerate_cases() + blame_cases()
    return [case for case in cases if case.name.startswith(prefix)]


#: The cases of each registry format (tests/test_registry.py demands some for every format).
CASES_BY_FORMAT: dict[str, Callable[[], list[Case]]] = {
    "keras": lambda: (
        keras_cases()
        + legacy_cases()
        + not_regular_cases("keras")
        + not_regular_cases("h5")
        + _cross_cutting("keras")
    ),
    "torch": lambda: torch_cases() + torch_hostile_cases() + not_regular_cases("pt"),
    "safetensors": lambda: (
        safetensors_cases() + not_regular_cases("safetensors") + _cross_cutting("safetensors")
    ),
    "onnx": lambda: onnx_cases() + not_regular_cases("onnx") + _cross_cutting("onnx"),
    "npz": lambda: npz_cases() + not_regular_cases("npz") + _cross_cutting("npz"),
    "tf-checkpoint": tf_checkpoint_cases,
    "savedmodel": savedmodel_cases,
    "tflite": tflite_cases,
}


def all_cases() -> list[Case]:
    return [case for cases in CASES_BY_FORMAT.values() for case in cases()]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    for case in all_cases():
        folder = out / case.name
        folder.mkdir(parents=True, exist_ok=True)
        print(case.build(folder))


if __name__ == "__main__":
    main()
