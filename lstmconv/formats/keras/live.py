"""Keras 3: live models and layers, and writing ``.keras`` archives.

The only module of lstmconv that imports Keras (and so TensorFlow). Reading ``.keras`` and
``.h5`` files needs neither: see :mod:`.files`.
Kernels are (in, G·H); gates ``i f c o`` (LSTM) and ``z r h`` (GRU).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import importlib
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import numpy as np

from ...errors import LstmconvError, UnsupportedFeatureError
from ...ir import Direction, Kind, Layer, Model, Skipped
from ...plain import PlainLayer
from .. import _common
from . import archive, around, links, tf_keras_live
from . import names as keras_names
from .names import GATE_ORDER, KINDS, activation_to_keras, check, layer_from_weights

_log = logging.getLogger(__name__)

#: Keras's classes, got by the names the one table in :mod:`.names` gives.
_CELL_KINDS: Mapping[type, Kind] = {getattr(keras.layers, e.cell): e.kind for e in KINDS.values()}
_LAYER_CLASSES: Mapping[Kind, Any] = {e.kind: getattr(keras.layers, e.layer) for e in KINDS.values()}
#: The recurrent classes read, exactly these (a subclass may compute otherwise).
_READ_CLASSES = {*_LAYER_CLASSES.values(), keras.layers.RNN, keras.layers.Bidirectional}

__all__ = [
    "GATE_ORDER",
    "build",
    "check",
    "is_runnable",
    "layer_runners",
    "load_into",
    "load_written",
    "port_into",
    "read",
    "run",
    "run_whole",
    "runnable",
    "running_note",
    "write",
    "write_like",
]


def _cell_kind(layer: Any) -> Kind | None:
    cell = getattr(layer, "cell", None)
    return _CELL_KINDS.get(type(cell))  # exactly these classes: a subclass may compute otherwise


def recurrent_layers(root: Any) -> Iterator[Any]:
    """Every RNN or Bidirectional layer inside ``root``, depth first in model order."""
    if isinstance(root, (keras.layers.Bidirectional, keras.layers.RNN)):
        yield root
        return
    for child in getattr(root, "layers", ()):
        yield from recurrent_layers(child)


def _numpy(variable: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable))


def _spec(layer: Any) -> tuple[Kind, Any]:
    kind = _cell_kind(layer)
    if kind is None:
        raise UnsupportedFeatureError(
            f"recurrent layer with cell {type(getattr(layer, 'cell', None)).__name__}",
            where=(f'layer "{layer.name}"',),
            hint="lstmconv reads LSTM, GRU and SimpleRNN (and RNN of their cells)",
        )
    return kind, layer.cell


def _cell_weights(cell: Any) -> list[np.ndarray]:
    variables = [cell.kernel, cell.recurrent_kernel] + ([cell.bias] if cell.use_bias else [])
    return [_numpy(variable) for variable in variables]


def layer_from_keras(layer: Any) -> Layer:
    """One IR layer from a Keras ``RNN`` (LSTM, GRU, SimpleRNN) or ``Bidirectional``."""
    if isinstance(layer, keras.layers.Bidirectional):
        if layer.merge_mode is None:
            raise UnsupportedFeatureError(
                "Bidirectional(merge_mode=None) returns two outputs",
                where=(f'layer "{layer.name}"',),
                hint="use merge_mode concat, sum, mul or ave",
            )
        _refuse_subclass(layer.forward_layer)
        _refuse_subclass(layer.backward_layer)
        kind, cell = _spec(layer.forward_layer)
        backward_kind, backward = _spec(layer.backward_layer)
        keras_names.refuse_different_directions(
            layer.name, cell.get_config(), backward.get_config(), (kind, backward_kind)
        )
        return layer_from_weights(
            kind,
            layer.name,
            [_cell_weights(cell), _cell_weights(backward)],
            cell.get_config(),
            keras_major=3,
            bidirectional=True,
            merge=layer.merge_mode,
        )
    kind, cell = _spec(layer)
    return layer_from_weights(
        kind,
        layer.name,
        [_cell_weights(cell)],
        cell.get_config(),
        keras_major=3,
        go_backwards=bool(layer.go_backwards),
    )


def _refuse_subclass(layer: Any) -> None:
    if type(layer) not in _READ_CLASSES:
        raise UnsupportedFeatureError(
            f"a recurrent layer of class {type(layer).__name__}, which lstmconv does not read",
            where=(f'layer "{layer.name}"',),
            hint="lstmconv reads Keras's own LSTM, GRU, SimpleRNN, RNN of their cells, and "
            "Bidirectional of those; a subclass or another class may compute otherwise",
        )


def _looks_recurrent(layer: Any) -> bool:
    if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
        return True
    name = type(layer).__name__.upper()
    return not hasattr(layer, "layers") and (
        any(token in name for token in ("LSTM", "GRU", "RNN"))
        or hasattr(layer, "cell")
        or (hasattr(layer, "units") and hasattr(layer, "recurrent_activation"))
    )


def _walk(root: Any, found: list[Any], skipped: list[Skipped], plain: list[PlainLayer] | None = None) -> None:
    """Recurrent layers (refusing those lstmconv does not read), the plain layers (into
    ``found`` too, in model order, and into ``plain``) and the layers with weights read past,
    depth first in model order."""
    if _looks_recurrent(root):
        _refuse_subclass(root)
        found.append(root)
        return
    inner = getattr(root, "layer", None)  # TimeDistributed and other wrappers
    if inner is not None and _looks_recurrent(inner):
        raise UnsupportedFeatureError(
            f"a recurrent layer ({type(inner).__name__}) inside {type(root).__name__}, which lstmconv "
            "does not read",
            where=(f'layer "{root.name}"',),
            hint="lstmconv reads recurrent layers alone or in Bidirectional",
        )
    entry = tf_keras_live.entry(root)
    if plain is not None and around.is_plain(entry):
        read_plain = around.from_entry(entry, [np.asarray(w) for w in root.get_weights()])
        if read_plain is not None:
            plain.append(read_plain)
            found.append(read_plain)
            return
    children = getattr(root, "layers", None)
    if children is not None:
        for child in children:
            _walk(child, found, skipped, plain)
        return
    weights = list(getattr(root, "weights", []))
    if weights:
        tensors = [(getattr(w, "path", None) or w.name, tuple(int(n) for n in w.shape)) for w in weights]
        skipped.append(Skipped.of(root.name, type(root).__name__, tensors))


def _check_masks(source: Any, layers: list[Layer], strict: bool) -> None:
    if not isinstance(source, keras.Model):
        return
    try:
        config = keras.saving.serialize_keras_object(source)
    except Exception:  # a subclassed model may not serialize: nothing to look at
        return
    if isinstance(config, Mapping):
        keras_names.check_masks(config, layers, strict, source.name)


def read(source: Any, *, strict: bool = False, **_: Any) -> Model:
    """IR of a live Keras 3 or tf_keras (Keras 2) model or layer, with its plain layers
    (``.keras`` files are read by :mod:`.files`)."""
    if is_tf_keras(source):
        return tf_keras_live.read(source, strict=strict)
    found: list[Any] = []
    skipped: list[Skipped] = []
    plain: list[PlainLayer] = []
    _walk(source, found, skipped, plain)
    layers = [layer_from_keras(layer) for layer in found if not isinstance(layer, PlainLayer)]
    _check_masks(source, layers, strict)
    name = getattr(source, "name", type(source).__name__)
    order = [layer.name for layer in found]
    return Model(
        tuple(layers),
        name,
        _links(source, order),
        skipped=tuple(skipped),
        around=tuple(plain),
        order=tuple(order),
    )


def is_tf_keras(obj: Any) -> bool:
    """Whether a live object is tf_keras's (Keras 2), not Keras 3's."""
    return any(cls.__module__.split(".")[0] == "tf_keras" for cls in type(obj).__mro__)


def _links(source: Any, names: list[str]) -> tuple[tuple[str, str], ...] | None:
    """Which layers feed each other, from the model's own config (None for a lone layer or a
    subclassed model without one)."""
    if not isinstance(source, keras.Model):
        return None
    try:
        config = {"class_name": type(source).__name__, "config": source.get_config()}
    except Exception:  # a subclassed model need not have a config
        return None
    return links.links(config, names)


def _weights(layer: Layer, cell: Any) -> list[np.ndarray]:
    return archive.cell_weights(layer, cell)


#: The weights are set as soon as a layer is built, so its initial values are never used:
#: zeros skip TensorFlow's orthogonal QR and glorot draws (40 s for a 1 GiB model), and the
#: defaults go back into the layer before anyone sees it (see :func:`_restore_initializers`).
_PLACEHOLDER_INITIALIZERS = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}


def _restore_initializers(keras_layer: Any, layer: Layer) -> None:
    """Put back the initializers a layer made by hand would have, so the saved config is the
    usual one; a bfloat16 layer keeps zeros for its recurrent kernel, since TensorFlow's QR (the
    orthogonal default) has no bfloat16 kernel and Keras could not load the model otherwise."""
    for rnn in (
        [keras_layer.forward_layer, keras_layer.backward_layer]
        if isinstance(keras_layer, keras.layers.Bidirectional)
        else [keras_layer]
    ):
        fresh = _LAYER_CLASSES[layer.kind](units=1).cell  # each its own, as Keras makes them
        rnn.cell.kernel_initializer = fresh.kernel_initializer
        if layer.dtype.name != "bfloat16":
            rnn.cell.recurrent_initializer = fresh.recurrent_initializer


def _new_rnn(layer: Layer, name: str) -> Any:
    options: dict[str, Any] = dict(
        units=layer.hidden_size,
        activation=activation_to_keras(layer.activations[1 if layer.kind is not Kind.RNN else 0]),
        use_bias=layer.has_bias,
        return_sequences=True,
        go_backwards=layer.reversed_output,
        dtype=str(layer.dtype),
        name=name,
    )
    options.update(_PLACEHOLDER_INITIALIZERS)
    if layer.kind is not Kind.RNN:
        options["recurrent_activation"] = activation_to_keras(layer.activations[0])
    if layer.kind is Kind.GRU:
        options["reset_after"] = layer.reset_after
    return _LAYER_CLASSES[layer.kind](**options)


def new_layer(layer: Layer, name: str) -> Any:
    """The Keras layer (an RNN, or a Bidirectional of one) for ``layer``, its weights unset."""
    if layer.direction is Direction.BIDIRECTIONAL:
        return keras.layers.Bidirectional(
            _new_rnn(layer, f"{name}_{layer.kind.value}"),
            merge_mode=layer.merge,
            name=name,
            dtype=str(layer.dtype),
        )
    return _new_rnn(layer, name)


def build(model: Model) -> Any:
    """A runnable ``keras.Model``: input (batch, time, features), the layers in order (``to_keras``).
    Layers the source links directly are chained; a model of several chains has an input and an
    output per chain, named after its first and last layer. A model with plain layers in one
    chain (:func:`.whole.one_chain`) is built whole, plain layers and all, input integer ids
    where it starts with an Embedding; plain layers off one chain are not carried, and said."""
    if model.around:
        left = whole.not_carried(model)
        if not left:
            return whole.build_whole(model)
        _log.warning(
            "%s: the layers do not form one chain; Keras gets the recurrent layers alone, not carried: %s",
            model.source,
            ", ".join(left),
        )
    for layer in model.layers:
        check(layer)
    names = _common.identifiers(model.layers)
    chains = model.chains()
    inputs, outputs, built = [], [], []
    for chain in chains:
        input_name = "input" if len(chains) == 1 else f"{names[chain[0].name]}_input"
        x = keras.Input(shape=(None, chain[0].input_size), dtype=str(chain[0].dtype), name=input_name)
        inputs.append(x)
        for layer in chain:
            keras_layer = new_layer(layer, names[layer.name])
            x = keras_layer(x)
            built.append((keras_layer, layer))
        outputs.append(x)
    if len(chains) == 1:
        result = keras.Model(inputs[0], outputs[0], name="lstmconv")
    else:
        result = keras.Model(inputs, outputs, name="lstmconv")
    for keras_layer, layer in built:
        keras_layer.set_weights([w for cell in layer.cells for w in _weights(layer, cell)])
        _restore_initializers(keras_layer, layer)
    return result


def run(keras_model: Any, x: np.ndarray) -> np.ndarray:
    """Run a Keras model on (batch, time, features)."""
    dtype = keras_model.inputs[0].dtype if getattr(keras_model, "inputs", None) else "float32"
    return np.asarray(keras.ops.convert_to_numpy(keras_model(np.asarray(x, dtype=dtype), training=False)))


def is_runnable(obj: Any) -> bool:
    """Whether ``obj`` is a model of recurrent layers only, returning full sequences."""
    if not isinstance(obj, keras.Model):
        return False
    layers = [layer for layer in obj.layers if not isinstance(layer, keras.layers.InputLayer)]
    return bool(layers) and all(
        (isinstance(layer, keras.layers.RNN) and layer.return_sequences)
        or (isinstance(layer, keras.layers.Bidirectional) and layer.return_sequences)
        for layer in layers
    )


def write(model: Model, path: str, **_: Any) -> None:
    """Save ``to_keras(model)`` as a ``.keras`` archive at ``path``: Keras's own config
    (``serialize_keras_object``) and weights file (``save_weights``, the layout ``model.save``
    puts in the archive), zipped as ``model.save`` zips them, but with fixed dates and without
    the shared-object ids (memory addresses) ``model.save`` writes into the config, so the same
    model gives the same bytes; the weights go into the archive in large blocks, where
    ``model.save`` copies a model over 512 MiB 8 KiB at a time (or holds a copy in memory)."""
    save_built(build(model), path)


def save_built(built: Any, path: str) -> None:
    """Save a Keras model as :func:`write` does: the same model gives the same bytes."""
    config = json.dumps(keras.saving.serialize_keras_object(built))
    metadata = json.dumps({"keras_version": keras.__version__, "date_saved": archive.DATE_SAVED})
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as scratch:
        weights = os.path.join(scratch, "model.weights.h5")
        built.save_weights(weights)
        archive.zip_archive(path, metadata, config, weights)


def load_into(target: Any, model: Model, mapping: Mapping[str, str] | None = None) -> Any:
    """Fill the recurrent layers of a Keras model with ``model``'s layers, in order or by
    ``mapping`` (Keras layer name → model layer name). Everything is checked first."""
    keras_3 = not is_tf_keras(target)
    slots = list(recurrent_layers(target) if keras_3 else _recurrent_any(target))
    present = [layer_from_keras(slot) for slot in slots] if keras_3 else list(read(target).layers)
    plan = []
    for position, layer in _common.pair_slots([slot.name for slot in slots], model, mapping):
        if keras_3:
            check(layer)
        _common.require_matching(
            layer,
            f'Keras layer "{slots[position].name}"',
            _structure(layer),
            _structure(present[position]),
        )
        plan.append((slots[position], layer))
    for slot, layer in plan:
        slot.set_weights([w for cell in layer.cells for w in _weights(layer, cell)])
    return target


def _structure(layer: Layer) -> dict[str, object]:
    return {
        **_common.structure(layer),
        "activations": [str(a) for a in layer.activations],
        "merge": layer.merge if layer.direction is Direction.BIDIRECTIONAL else None,
    }


def load_written(path: str) -> Any:
    """Open a Keras file as given: a ``.keras`` (lstmconv's own output, or a source) or Keras 3
    ``.h5`` by Keras (safe mode: no lambdas), a Keras 2 ``.h5`` by tf_keras."""
    return _load_as_given(path)[1]


def check_written(path: str) -> None:
    """Nothing beyond what loading the file for verification checks (Keras's own loader)."""


def runnable(model: Model) -> Any:
    """What verification runs for an IR model: :func:`build`'s."""
    return build(model)


def running_note(model: Model) -> str | None:
    """Keras runs every model it can build as it is: nothing to say."""
    return None


# -- the source as given, layer by layer (verification) -------------------------------------------
def layer_runners(source: Any, model: Model) -> tuple[str, dict[str, Any], Any]:
    """A run function for each of ``model``'s layers, from ``source`` as the user has it: a live
    model's own layers, or the file loaded by Keras (``safe_mode``; a legacy Keras 2 ``.h5`` by
    ``tf_keras`` where Keras 3 cannot load it). Each recurrent layer (or its Bidirectional
    wrapper) runs on its own, cloned from its own config to return every step, with its own
    weights. Third: the whole model's run function, when it is a model of these layers alone."""
    framework, loaded = (
        _load_as_given(source) if isinstance(source, (str, os.PathLike)) else ("keras", source)
    )
    if type(loaded).__module__.startswith("tf_keras"):
        framework = "tf_keras"
    found = {layer.name: layer for layer in _recurrent_any(loaded)}
    runners = {ir.name: _layer_runner(found[ir.name], ir) for ir in model if ir.name in found}
    whole = (lambda x: run(loaded, x)) if is_runnable(loaded) and len(model.chains()) == 1 else None
    return framework, runners, whole


def _load_as_given(path: str | os.PathLike[str]) -> tuple[str, Any]:
    """The file loaded by Keras 3 (``safe_mode``), or a Keras 2 ``.h5`` by ``tf_keras``, whose
    layers compute as Keras 2's did (its hard_sigmoid is not Keras 3's)."""
    text = os.fspath(path)
    if text.lower().endswith(".weights.h5"):
        raise UnsupportedFeatureError("a weights-only file holds no model that Keras can load", where=(text,))
    if _keras_major(text) == 2:
        return "tf_keras", _load_keras2(text)
    with _initializers_overwritten(keras), _weights_read_in_memory():
        with _unpacked(text) as unpacked:
            if unpacked is not None:
                try:
                    loaded = keras.saving.load_model(unpacked.folder, compile=False, safe_mode=True)
                except Exception:
                    if unpacked.intact():
                        raise
                else:
                    if unpacked.intact():
                        return "keras", loaded
        # anything else, or a member whose bytes are not the CRC's: Keras reads the archive itself
        return "keras", keras.saving.load_model(text, compile=False, safe_mode=True)


#: The members of a ``.keras`` archive that :func:`_unpacked` lays out as Keras's folder form.
_ARCHIVE_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}
_WEIGHTS_MEMBER = "model.weights.h5"
_SHARED_MEMORY = "/dev/shm"


@dataclasses.dataclass
class _Unpacked:
    """A ``.keras`` archive laid out as Keras's folder form; ``intact()`` (waiting for the check
    where it runs beside the load) says whether every member had the CRC-32 the archive records."""

    folder: str
    crc: concurrent.futures.Future[bool] | None = None

    def intact(self) -> bool:
        return self.crc is None or self.crc.result()


@contextlib.contextmanager
def _unpacked(path: str) -> Iterator[_Unpacked | None]:
    """A ``.keras`` archive as the folder Keras also loads (``config.json``, ``metadata.json``,
    ``model.weights.h5`` side by side) in a temporary folder. The small members are copied by
    the kernel and checked against their CRC-32; the weights member is read **in place**: the
    folder holds an empty stand-in, and Keras's weights store opened on it (in this thread)
    gets an h5py file over a :class:`~lstmconv.formats._common.MemberWindow` of the archive,
    while another thread checks the member's CRC-32 (``intact()``). Copying a 1 GiB member out
    took 1.0-1.6 s; reading it through ``zipfile`` into memory and h5py reading that were 14 s
    of an 18 s load. Where this Keras has no such store (or the OS no ``pread``), the member is
    copied too (in memory where /dev/shm has room). None (Keras reads the archive itself) for
    anything else: compressed, encrypted, duplicated or other members (assets), a small
    member's CRC that differs (Keras then refuses the file as it does), no room."""
    import shutil
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile):
        yield None
        return
    names = [info.filename for info in infos]
    plain = all(info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1 for info in infos)
    if (
        not plain
        or len(set(names)) != len(names)
        or not {"config.json", _WEIGHTS_MEMBER} <= set(names) <= _ARCHIVE_MEMBERS
    ):
        yield None
        return
    in_place = _in_place_store() and hasattr(os, "pread")
    copies = [info for info in infos if not (in_place and info.filename == _WEIGHTS_MEMBER)]
    folder = tempfile.mkdtemp(prefix="lstmconv-keras-", dir=_room_for(sum(i.file_size for i in copies)))
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lstmconv-crc") if in_place else None
    stand_in = os.path.join(folder, _WEIGHTS_MEMBER)
    try:
        if not all(_copied(path, info, os.path.join(folder, info.filename)) for info in copies):
            yield None
            return
        crc = None
        if pool is not None:
            info = next(info for info in infos if info.filename == _WEIGHTS_MEMBER)
            try:
                start = _common.member_start(path, info)
            except LstmconvError:
                yield None
                return
            open(stand_in, "wb").close()
            crc = pool.submit(_crc_is, path, start, info.file_size, info.CRC)
            _IN_PLACE.windows = {**getattr(_IN_PLACE, "windows", {}), stand_in: (path, start, info.file_size)}
        yield _Unpacked(folder, crc)
    finally:
        windows = getattr(_IN_PLACE, "windows", {})
        windows.pop(stand_in, None)
        if pool is not None:
            pool.shutdown(wait=True)
        shutil.rmtree(folder, ignore_errors=True)


#: This thread's weights members read in place: stand-in path -> (archive, start, size).
_IN_PLACE = threading.local()


def _in_place_store() -> bool:
    """Whether Keras's HDF5 weights store is one lstmconv can open over a window of the archive
    (its ``_get_h5_file``, wrapped once: a stand-in of this thread's gets the window, any other
    path or mode what Keras opens)."""
    try:
        from keras.src.saving import saving_lib

        store = saving_lib.H5IOStore
        original = store._get_h5_file
    except (ImportError, AttributeError):
        return False
    with _PATCHING:
        if getattr(store._get_h5_file, "_lstmconv_original", None) is None:

            def _get_h5_file(self: Any, path_or_io: Any, mode: Any = None) -> Any:
                windows = getattr(_IN_PLACE, "windows", {})
                key = os.fspath(path_or_io) if isinstance(path_or_io, (str, os.PathLike)) else None
                if key not in windows or self.archive or (mode or self.mode) != "r":
                    return original(self, path_or_io, mode)
                import h5py

                self.io_file = _common.MemberWindow(*windows[key])
                return h5py.File(self.io_file, mode="r")

            _get_h5_file._lstmconv_original = original  # type: ignore[attr-defined]
            store._get_h5_file = _get_h5_file
    return True


def _room_for(size: int) -> str | None:
    """/dev/shm where it can hold ``size`` bytes and a margin, else the temporary folder."""
    try:
        status = os.statvfs(_SHARED_MEMORY)
        if os.access(_SHARED_MEMORY, os.W_OK) and status.f_bavail * status.f_frsize > size + (256 << 20):
            return _SHARED_MEMORY
    except OSError:
        pass
    return None


def _copied(path: str, info: Any, dest: str) -> bool:
    """Whether the stored member ``info`` of ``path`` was copied to ``dest`` with the CRC-32 its
    header records (False: a copy that failed, or other bytes)."""
    try:
        start = _common.member_start(path, info)
        with open(path, "rb") as source, open(dest, "wb") as target:
            done = 0
            while done < info.file_size:
                moved = os.sendfile(target.fileno(), source.fileno(), start + done, info.file_size - done)
                if moved <= 0:
                    return False
                done += moved
        return _crc_is(dest, 0, info.file_size, info.CRC)
    except (OSError, LstmconvError):
        return False


def _crc_is(path: str, start: int, size: int, expected: int) -> bool:
    """Whether ``size`` bytes of ``path`` from ``start`` have the CRC-32 ``expected`` (read
    through a map of the file, 64 MiB at a time; zlib lets other threads run meanwhile)."""
    import mmap
    import zlib

    crc = 0
    try:
        if size:
            with (
                open(path, "rb") as handle,
                mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view,
                memoryview(view) as data,
            ):
                if start + size > len(data):
                    return False
                for offset in range(start, start + size, 64 << 20):
                    crc = zlib.crc32(data[offset : min(offset + (64 << 20), start + size)], crc)
    except OSError:
        return False
    return crc == expected


def _load_keras2(text: str) -> Any:
    """A Keras 2 ``.h5`` loaded by tf_keras, in its safe mode."""
    try:
        import tf_keras
    except ImportError:
        raise UnsupportedFeatureError(
            "a Keras 2 file, and tf_keras (which computes as Keras 2) is not installed", where=(text,)
        ) from None
    # tf_keras's load_model has no safe mode for .h5 (it would unmarshal and call a Lambda's
    # bytecode): its own scope turns it on, and without that scope the file is not loaded.
    try:
        from tf_keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:
        raise UnsupportedFeatureError(
            "a Keras 2 file, and this tf_keras has no safe mode to load it with", where=(text,)
        ) from None
    with SafeModeScope(True), _initializers_overwritten(tf_keras):
        return tf_keras.models.load_model(text, compile=False)


#: Set in a thread while it loads or clones a model that only lstmconv runs (see below).
_OVERWRITTEN = threading.local()
_PATCHING = threading.Lock()


@contextlib.contextmanager
def _initializers_overwritten(library: Any) -> Iterator[None]:
    """A scope in which ``library``'s (Keras 3's or tf_keras's) own initializers make zeros, in
    this thread only: a model loaded or cloned to be run has every variable overwritten from
    the file or the layer, and Keras's Orthogonal initializer (the recurrent kernels' default)
    decomposes a random matrix per kernel for values never used: 63 of 119 s verifying a 1 GiB
    ``.keras``. Only for models lstmconv runs itself, never one it gives the user; elsewhere
    (other threads, outside the scope) each initializer computes as Keras has it."""
    _patch_initializers(library)
    with _flag_on(_OVERWRITTEN):
        yield


@contextlib.contextmanager
def _flag_on(flag: threading.local) -> Iterator[None]:
    """``flag.on`` set in this thread for the scope (and as it was after)."""
    before = getattr(flag, "on", False)
    flag.on = True
    try:
        yield
    finally:
        flag.on = before


def _patch_initializers(library: Any) -> None:
    """Wrap each initializer class's own ``__call__`` once: zeros inside the scope, else the
    original."""
    base = library.initializers.Initializer
    zeros = library.ops.zeros if hasattr(library, "ops") else None
    with _PATCHING:
        for value in list(vars(library.initializers).values()):
            if not (isinstance(value, type) and issubclass(value, base)):
                continue
            for cls in value.__mro__:
                original = cls.__dict__.get("__call__")
                if original is None or getattr(original, "_lstmconv_original", None) is not None:
                    continue
                cls.__call__ = _zeros_in_scope(original, zeros)  # type: ignore[method-assign]


#: From this many elements on, a variable lstmconv loads to overwrite is left unfilled.
_UNFILLED_ELEMENTS = 1 << 18


def _zeros_in_scope(original: Any, zeros: Any) -> Any:
    def __call__(self: Any, shape: Any, dtype: Any = None, **kwargs: Any) -> Any:
        if not getattr(_OVERWRITTEN, "on", False):
            return original(self, shape, dtype, **kwargs)
        import tensorflow as tf

        dims = [int(n) for n in shape]
        if math.prod(dims) >= _UNFILLED_ELEMENTS and (
            zeros is None or keras.backend.backend() == "tensorflow"
        ):
            # not filled (TensorFlow's Fill was 6.5 s of a 1 GiB model's load): Keras overwrites
            # every variable of a layer it loads or refuses the file, and a clone is set whole
            return tf.raw_ops.Empty(shape=dims, dtype=tf.as_dtype(dtype or "float32"))
        return zeros(shape, dtype=dtype) if zeros is not None else tf.zeros(shape, dtype=dtype or "float32")

    __call__._lstmconv_original = original  # type: ignore[attr-defined]
    functools.update_wrapper(__call__, original)
    return __call__


_IN_MEMORY = threading.local()


@contextlib.contextmanager
def _weights_read_in_memory() -> Iterator[None]:
    """A scope in which Keras 3 reads a ``.keras`` file's weights member into memory where half
    the memory available holds them, as Keras does with psutil installed; without psutil it
    assumes 1 GB available and extracts a larger member into a folder beside the user's file
    (7.8 s of a 1 GiB model's load, and a write where lstmconv only reads). This thread only."""
    try:
        from keras.src.saving import saving_lib

        original = saving_lib.is_memory_sufficient
    except (ImportError, AttributeError):  # another Keras: it reads as it does
        yield
        return
    with _PATCHING:
        if getattr(saving_lib.is_memory_sufficient, "_lstmconv_original", None) is None:

            def is_memory_sufficient(model: Any) -> bool:
                available = _available_memory() if getattr(_IN_MEMORY, "on", False) else None
                if available is None:
                    return bool(original(model))
                return bool(saving_lib.weight_memory_size(model.variables) < available * 0.5)

            is_memory_sufficient._lstmconv_original = original  # type: ignore[attr-defined]
            saving_lib.is_memory_sufficient = is_memory_sufficient
    with _flag_on(_IN_MEMORY):
        yield


def _available_memory() -> int | None:
    """The memory available to this process, as the kernel estimates it (psutil's figure)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _keras_major(path: str) -> int:
    """2 for an HDF5 file that Keras 2 saved (its ``keras_version`` attribute), else 3."""
    if not path.lower().endswith((".h5", ".hdf5")):
        return 3
    import h5py

    with h5py.File(path, "r") as handle:
        version = handle.attrs.get("keras_version", b"")
        if "model_config" not in handle.attrs:
            raise UnsupportedFeatureError(
                "a weights-only file holds no model that Keras can load", where=(path,)
            )
    text = version.decode() if isinstance(version, bytes) else str(version)
    return 2 if text.startswith("2.") else 3


def _is_recurrent(layer: Any) -> bool:
    names = {cls.__name__ for cls in type(layer).__mro__}
    return bool(names & {"RNN", "Bidirectional"}) and hasattr(layer, "get_config")


def _recurrent_any(root: Any) -> Iterator[Any]:
    """Every RNN or Bidirectional layer of a Keras 3 or tf_keras model, depth first."""
    if _is_recurrent(root):
        yield root
        return
    for child in getattr(root, "layers", ()):
        yield from _recurrent_any(child)


def _returns_every_step(config: Any) -> bool:
    """Whether a layer config (and every config it nests) returns every step and no states."""
    if isinstance(config, dict):
        wanted = {"return_sequences": True, "return_state": False, "stateful": False}
        if any(key in config and config[key] != value for key, value in wanted.items()):
            return False
        return all(_returns_every_step(value) for value in config.values())
    if isinstance(config, list):
        return all(_returns_every_step(value) for value in config)
    return True


def _every_step(config: Any) -> None:
    """Make a layer config (and the configs it nests) return every step and no states."""
    if isinstance(config, dict):
        for key in ("return_sequences", "return_state", "stateful"):
            if key in config:
                config[key] = key == "return_sequences"
        for value in config.values():
            _every_step(value)
    elif isinstance(config, list):
        for value in config:
            _every_step(value)


def _layer_runner(layer: Any, ir: Layer) -> Any:
    config = layer.get_config()
    dtype = np.dtype(str(getattr(layer, "compute_dtype", None) or "float32"))
    if _returns_every_step(config):
        clone = layer  # runs as it is
    else:
        _every_step(config)
        library: Any = keras
        if type(layer).__module__.startswith("tf_keras"):
            library = importlib.import_module("tf_keras")
        with _initializers_overwritten(library):
            clone = type(layer).from_config(config)
        clone(np.zeros((1, 1, ir.input_size), dtype=dtype))
        clone.set_weights(layer.get_weights())

    def run_layer(x: np.ndarray) -> np.ndarray:
        out = clone(np.asarray(x, dtype=dtype), training=False)
        return np.asarray(keras.ops.convert_to_numpy(out) if hasattr(out, "shape") else out)

    return run_layer


from . import whole  # noqa: E402  - it builds on this module
from .whole import port_into, run_whole, write_like  # noqa: E402
