"""Keras files read without TensorFlow or Keras: zip + JSON config + HDF5 (h5py).

- ``.keras`` (Keras 3, and tf_keras 2.13+): ``config.json``, ``metadata.json`` and
  ``model.weights.h5`` whose container entries each carry the layer's real name in the
  ``name`` attribute of their ``vars`` group.
- ``.weights.h5`` (Keras 3 ``save_weights``): the same tree, without a config.
- legacy ``.h5`` (Keras 2 / tf_keras ``model.save`` or ``save_weights``): ``model_weights/``
  (or the root) with ``layer_names`` and, per layer, ``weight_names``; the config in the root
  attribute ``model_config``. Keras itself loads these positionally, and so does this reader.

Layer names, order, Bidirectional and its merge mode, ``go_backwards`` and activations come
from the config; Keras 2's ``hard_sigmoid`` (0.2x+0.5) is told from Keras 3's (x/6+0.5) by the
file's Keras version. Without a config, kinds come from the shapes and activations are the
defaults (a warning says so).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import h5py
import numpy as np

from ... import outline, steps
from ...errors import FormatError, LstmconvError, UnsafeInputError, UnsupportedFeatureError, WeightLayoutError
from ...ir import MERGE_MODES, Kind, Layer, Model, Skipped
from .. import forked
from . import links
from . import names as keras_names
from .hdf5 import H5, Window, attr_strings, attr_text, member_start

_log = logging.getLogger(__name__)
_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_CUDNN = {"CuDNNLSTM", "CuDNNGRU"}
#: A zip member may expand at most this many times its stored size (zip bombs).
MAX_ZIP_RATIO = 200
MAX_CONFIG_BYTES = 64 << 20
#: How long the HDF5 structure may take to read in the probing child (LSTMCONV_HDF5_SECONDS).
PROBE_SECONDS = 10.0
PROBE_SECONDS_PER_GB = 30.0


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What a recurrent layer's config says."""

    name: str
    kind: Kind
    config: Mapping[str, Any]  # the config holding the activations (the cell's, for RNN(cell))
    go_backwards: bool = False
    bidirectional: bool = False
    merge: str = "concat"


def _rnn_spec(entry: Mapping[str, Any], name: str | None = None) -> _Spec | None:
    cls, config = entry.get("class_name"), entry.get("config") or {}
    name = name or config.get("name", "")
    if cls in _CUDNN:
        raise UnsupportedFeatureError(
            f"{cls} stores cuDNN-packed weights",
            where=(f'layer "{name}"',),
            hint="load the model in tf_keras, swap in LSTM/GRU (Keras converts the weights), and save again",
        )
    keras_names.refuse_unknown_recurrent(entry)
    if cls == "Bidirectional":
        inner = _rnn_spec(config["layer"])
        if inner is None:
            return None
        if isinstance(config.get("backward_layer"), Mapping):
            backward = _rnn_spec(config["backward_layer"])
            if backward is None:
                shown = config["backward_layer"].get("class_name")
                raise UnsupportedFeatureError(
                    f"Bidirectional with a backward layer of class {shown}", where=(f'layer "{name}"',)
                )
            keras_names.refuse_different_directions(
                name, inner.config, backward.config, (inner.kind, backward.kind)
            )
        merge = config.get("merge_mode", "concat")
        if merge not in MERGE_MODES:
            raise UnsupportedFeatureError(
                f"Bidirectional(merge_mode={merge!r})",
                where=(f'layer "{name}"',),
                hint="use merge_mode concat, sum, mul or ave",
            )
        return dataclasses.replace(inner, name=name, bidirectional=True, merge=merge, go_backwards=False)
    if isinstance(cls, str) and cls in keras_names.KINDS:
        return _Spec(name, keras_names.KINDS[cls].kind, config, bool(config.get("go_backwards", False)))
    if cls == "RNN":
        cell = config.get("cell") or {}
        if cell.get("class_name") in keras_names.BY_CELL:
            return _Spec(
                name,
                keras_names.BY_CELL[cell["class_name"]].kind,
                cell.get("config") or {},
                bool(config.get("go_backwards", False)),
            )
        raise UnsupportedFeatureError(
            f"RNN with cell {cell.get('class_name')}",
            where=(f'layer "{name}"',),
            hint="lstmconv reads LSTM, GRU and SimpleRNN cells",
        )
    return None


def _walk_config(entry: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """(container path of layer names, layer entry) for every layer, nested models included."""
    for layer in (entry.get("config") or {}).get("layers", []):
        yield (), layer
        if layer.get("class_name") in _MODEL_CLASSES:
            inner_name = (layer.get("config") or {}).get("name", "")
            for path, inner in _walk_config(layer):
                yield (inner_name, *path), inner


def _major(version: str | None, default: int) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return default


@dataclasses.dataclass
class _Found:
    """What a read finds: the recurrent layers, and the layers with weights it reads past."""

    layers: list[Layer] = dataclasses.field(default_factory=list)
    skipped: list[Skipped] = dataclasses.field(default_factory=list)


def _shapes(group: h5py.Group) -> list[tuple[str, tuple[int, ...]]]:
    """(path, shape) of every dataset under ``group`` (shapes only: nothing is read)."""
    found: list[tuple[str, tuple[int, ...]]] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            found.append((f"{group.name.strip('/')}/{name}", tuple(int(n) for n in node.shape)))

    group.visititems(visit)
    return found


def _check_masks(config: Mapping[str, Any] | None, layers: Sequence[Layer], strict: bool, where: str) -> None:
    """Keras masking (Masking, Embedding(mask_zero=True)) upstream of a recurrent layer: a
    warning naming the layer, an error with ``strict``."""
    if config is None:
        return
    masked = keras_names.masked_layers(config)
    for layer in layers:
        if layer.name in masked:
            message = keras_names.mask_message(layer.name, masked[layer.name])
            if strict:
                raise UnsupportedFeatureError(
                    message, hint="remove the masking, or drop --strict to convert anyway"
                )
            _log.warning("%s: %s", where, message)


# -- building IR layers --------------------------------------------------------------------------
def _layer(spec: _Spec, directions: Sequence[Sequence[np.ndarray]], keras_major: int) -> Layer:
    return keras_names.layer_from_weights(
        spec.kind,
        spec.name,
        directions,
        spec.config,
        keras_major=keras_major,
        bidirectional=spec.bidirectional,
        merge=spec.merge,
        go_backwards=spec.go_backwards,
    )


def _spec_from_shapes(name: str, weights: Sequence[np.ndarray], bidirectional: bool) -> _Spec:
    """No config: tell LSTM, GRU and RNN apart by the recurrent kernel (H, G·H)."""
    if len(weights) < 2 or weights[1].ndim != 2 or not weights[1].shape[0]:
        raise WeightLayoutError(
            f"expected kernel and recurrent_kernel, found {len(weights)} weight(s)",
            where=(f'layer "{name}"',),
        )
    hidden, columns = weights[1].shape
    kind = {4: Kind.LSTM, 3: Kind.GRU, 1: Kind.RNN}.get(columns // hidden if columns % hidden == 0 else 0)
    if kind is None:
        raise WeightLayoutError(
            f"recurrent_kernel {weights[1].shape} is not (H, 4H), (H, 3H) or (H, H)",
            where=(f'layer "{name}"',),
        )
    config: dict[str, Any] = {}
    if kind is Kind.GRU:  # a (2, 3H) bias is reset-after; without a bias, Keras's default
        from_shape = steps.reset_after_from_bias(weights[2] if len(weights) > 2 else None)
        config["reset_after"] = True if from_shape is None else from_shape
    return _Spec(name, kind, config, bidirectional=bidirectional)


# -- Keras 3 tree: .keras and .weights.h5 ----------------------------------------------------------
def _named_entries(layers_group: h5py.Group) -> dict[str, h5py.Group]:
    """Children of a ``layers`` container keyed by the real layer name in ``vars/@name``."""
    entries = {}
    for key in layers_group:
        child = layers_group[key]
        if isinstance(child, h5py.Group):
            label = attr_text(child["vars"].attrs, "name") if "vars" in child else None
            entries[label or key] = child
    return entries


def _cell_weights(h5: H5, group: h5py.Group, where: str) -> list[np.ndarray]:
    if "cell" not in group or "vars" not in group["cell"]:
        raise FormatError("expected cell/vars with the layer's weights", where=(where,))
    variables = group["cell/vars"]
    return [h5.dataset(variables, str(index), where) for index in range(len(variables))]


def _tree_weights(h5: H5, group: h5py.Group, spec_bidirectional: bool, where: str) -> list[list[np.ndarray]]:
    if spec_bidirectional:
        return [
            _cell_weights(h5, group[side], f"{where}/{side}")
            for side in ("forward_layer", "backward_layer")
            if side in group
        ] or [[]]
    return [_cell_weights(h5, group, where)]


def _read_tree(h5: H5, config: Mapping[str, Any] | None, keras_major: int) -> _Found:
    root = h5.handle
    found = _Found()
    if "layers" not in root:
        if "cell" in root or "forward_layer" in root:  # a single layer saved alone
            _tree_without_config(h5, {"layer": root}, keras_major, found)
            return found
        raise FormatError("no 'layers' group: not a Keras weights file")
    if config is None:
        _tree_without_config(h5, _named_entries(root["layers"]), keras_major, found)
        return found
    containers: dict[tuple[str, ...], dict[str, h5py.Group]] = {(): _named_entries(root["layers"])}
    for path, entry in _walk_config(config):
        entries = containers.get(path)
        name = (entry.get("config") or {}).get("name", "")
        if entries is None or name not in entries:
            if _rnn_spec(entry) is not None:
                raise FormatError(f"no weights for layer {name!r}", where=("/".join((*path, name)),))
            continue
        group = entries[name]
        if entry.get("class_name") in _MODEL_CLASSES and "layers" in group:
            containers[(*path, name)] = _named_entries(group["layers"])
            continue
        spec = _rnn_spec(entry)
        if spec is not None:
            found.layers.append(
                _layer(spec, _tree_weights(h5, group, spec.bidirectional, group.name), keras_major)
            )
        else:
            shapes = _shapes(group)
            if shapes:
                found.skipped.append(Skipped.of(name, str(entry.get("class_name", "")), shapes))
    return found


def _tree_without_config(h5: H5, entries: Mapping[str, h5py.Group], keras_major: int, found: _Found) -> None:
    for name, group in entries.items():
        if "layers" in group:
            _tree_without_config(h5, _named_entries(group["layers"]), keras_major, found)
            continue
        bidirectional = "forward_layer" in group
        if not bidirectional and "cell" not in group:
            shapes = _shapes(group)
            if shapes:
                found.skipped.append(Skipped.of(name, "layer", shapes))
            continue
        directions = _tree_weights(h5, group, bidirectional, group.name)
        spec = _spec_from_shapes(name, directions[0], bidirectional)
        _no_config(group.file.filename, name, spec.kind.value, bidirectional)
        found.layers.append(_layer(spec, directions, keras_major))


# -- legacy HDF5: model.save("x.h5") / save_weights("x.h5") ---------------------------------------
def _legacy_layer_weights(h5: H5, group: h5py.Group, where: str) -> list[tuple[str, np.ndarray]]:
    return [(name, h5.dataset(group, name, where)) for name in attr_strings(group, "weight_names")]


def _split_directions(named: Sequence[tuple[str, np.ndarray]], bidirectional: bool) -> list[list[np.ndarray]]:
    arrays = [array for _, array in named]
    if not bidirectional:
        return [arrays]
    half = len(arrays) // 2
    return [arrays[:half], arrays[half:]]


def _read_legacy(h5: H5, keras_major: int, given: Mapping[str, Any] | None = None) -> tuple[_Found, Any]:
    root = h5.handle
    weights_root = root.get("model_weights", root)
    if not attr_strings(weights_root, "layer_names"):
        raise FormatError("no layer_names attribute: not a Keras HDF5 weights file")
    text = attr_text(root.attrs, "model_config")
    config = json.loads(text) if text else given
    classes = {
        (entry.get("config") or {}).get("name", ""): str(entry.get("class_name", ""))
        for _, entry in (_walk_config(config) if config is not None else ())
    }
    found = _Found()
    for layer_name in attr_strings(weights_root, "layer_names"):
        group = weights_root[layer_name]
        named = _legacy_layer_weights(h5, group, f"{weights_root.name}/{layer_name}")
        if not named:
            continue
        used: set[str] = set()
        for spec, mine in _legacy_specs(config, layer_name, named, h5.handle.filename):
            directions = _split_directions(mine, spec.bidirectional)
            found.layers.append(_layer(spec, directions, keras_major))
            used.update(name for name, _ in mine)
        rest = [(name, tuple(int(n) for n in array.shape)) for name, array in named if name not in used]
        if rest:
            found.skipped.append(Skipped.of(layer_name, classes.get(layer_name, "layer"), rest))
    return found, config


def _no_config(path: str, layer: str, kind: str, bidirectional: bool) -> None:
    """The one warning for a weights file read without its model's config (legacy ``.h5`` and
    ``.weights.h5`` alike)."""
    _log.warning(
        '%s: no model config; layer "%s" read as %s with default activations%s; if they are not '
        "the defaults, give the model's config (.keras or JSON): --config PATH, or config= in the API",
        path,
        layer,
        kind,
        " and merge concat" if bidirectional else "",
    )


def _legacy_specs(
    config: Mapping[str, Any] | None,
    layer_name: str,
    named: Sequence[tuple[str, np.ndarray]],
    filename: str,
) -> Iterator[tuple[_Spec, list[tuple[str, np.ndarray]]]]:
    """The recurrent layers inside one ``layer_names`` entry, with their weights."""
    if config is None:
        if any(token in name for name, _ in named for token in ("lstm_cell", "gru_cell", "simple_rnn_cell")):
            bidirectional = any("/forward_" in name for name, _ in named) and any(
                "/backward_" in name for name, _ in named
            )
            arrays = [array for _, array in named]
            inferred = _spec_from_shapes(layer_name, arrays, bidirectional)
            _no_config(filename, layer_name, inferred.kind.value, bidirectional)
            yield inferred, list(named)
        return
    for path, entry in _walk_config(config):
        name = (entry.get("config") or {}).get("name", "")
        top = path[0] if path else name
        if top != layer_name:
            continue
        spec = _rnn_spec(entry)
        if spec is None:
            continue
        if not path:
            yield spec, list(named)
            continue
        mine = [(n, a) for n, a in named if name in n.split("/")]
        yield spec, mine


# -- entry points ----------------------------------------------------------------------------------
def _open_keras_archive(path: str) -> tuple[zipfile.ZipFile, Mapping[str, Any], int]:
    archive = zipfile.ZipFile(path)
    for info in archive.infolist():
        parts = info.filename.replace("\\", "/").split("/")
        if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise UnsafeInputError(
                f"zip member {info.filename!r} points outside the archive",
                hint="a .keras file holds only config.json, metadata.json, model.weights.h5 and assets/",
            )
        if info.compress_size and info.file_size > MAX_ZIP_RATIO * info.compress_size + (1 << 20):
            raise UnsafeInputError(
                f"zip member {info.filename!r} expands {info.file_size} bytes from {info.compress_size}",
                hint="the archive looks like a zip bomb",
            )
    names = set(archive.namelist())
    if "config.json" not in names:
        raise FormatError("no config.json in the archive: not a .keras file")
    if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
        raise UnsafeInputError("config.json is larger than 64 MiB")
    config = json.loads(archive.read("config.json"))
    metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    if "model.weights.h5" not in names:
        other = "model.weights.npz" in names
        raise FormatError(
            "no model.weights.h5 in the archive" + (" (npz weights are not read yet)" if other else "")
        )
    return archive, config, _major(metadata.get("keras_version"), 3)


def read(
    source: Any,
    *,
    config: str | os.PathLike[str] | None = None,
    header_only: bool = False,
    strict: bool = False,
    **_: Any,
) -> Model:
    """``config``: for a weights-only file, the model's config, as a ``.keras`` archive or a JSON
    file (``config.json``, or ``model.to_json()``), so names, activations and merges are known.
    ``header_only``: names and shapes exact, every value zero. ``strict``: a masked recurrent
    layer is an error, not a warning."""
    path = os.fspath(source)
    try:
        given = _load_config(os.fspath(config)) if config is not None else None
        outlined = _look_in_child(path, given, strict)
        if header_only and outlined is not None:
            return outline.placeholders(outlined.taken(), path)
        model = _read_path(path, probe=header_only, given=given, strict=strict)
        found = links.links(_model_config(path, given), [layer.name for layer in model.layers])
        return dataclasses.replace(model, links=found)
    except LstmconvError as error:
        raise error.within(path) from None
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise FormatError(
            f"not a readable Keras file: {type(error).__name__}: {error}", where=(path,)
        ) from None


def _model_config(path: str, given: tuple[Mapping[str, Any], int | None] | None) -> Any:
    """The model's config (the one given for a weights-only file, else the file's own), or None."""
    if given is not None:
        return given[0]
    if zipfile.is_zipfile(path):
        archive, config, _major_version = _open_keras_archive(path)
        archive.close()
        return config
    with h5py.File(path, "r") as handle:
        text = attr_text(handle.attrs, "model_config")
    return json.loads(text) if text else None


def _look_in_child(
    path: str, given: tuple[Mapping[str, Any], int | None] | None, strict: bool = False
) -> forked.Answer | None:
    """The file's layers outlined (names, shapes, dtypes) by a forked child that walks the HDF5
    structure under a time limit, so that a file that hangs or crashes the HDF5 library costs a
    child (see :mod:`.forked`); None if the walk failed, for the real read to report why."""
    size_limit = PROBE_SECONDS + PROBE_SECONDS_PER_GB * os.path.getsize(path) / 2**30  # inflating takes time
    limit = float(os.environ.get("LSTMCONV_HDF5_SECONDS", size_limit))
    return forked.look(
        lambda: outline.outline(_read_path(path, probe=True, given=given, strict=strict)),
        limit,
        "the file's HDF5 structure",
        hint="set LSTMCONV_HDF5_SECONDS to allow longer",
    )


def _load_config(path: str) -> tuple[Mapping[str, Any], int | None]:
    """(config, Keras major version if known) from a .keras archive or a JSON file."""
    try:
        if zipfile.is_zipfile(path):
            archive, config, major = _open_keras_archive(path)
            archive.close()
            return config, major
        if os.path.getsize(path) > MAX_CONFIG_BYTES:
            raise UnsafeInputError("the config is larger than 64 MiB")
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except LstmconvError as error:
        raise error.within(path) from None
    except (OSError, ValueError) as error:
        raise FormatError(f"not a readable Keras config: {error}", where=(path,)) from None
    if not isinstance(config, Mapping) or "config" not in config:
        raise FormatError('expected a Keras model config {"class_name": ..., "config": ...}', where=(path,))
    version = config.get("keras_version")
    return config, _major(version, 3) if version else None


#: Public for the families whose files hold Keras weights without their config (TF checkpoints).
load_config = _load_config


def _read_path(
    path: str,
    probe: bool = False,
    given: tuple[Mapping[str, Any], int | None] | None = None,
    strict: bool = False,
) -> Model:
    config, given_major = given if given is not None else (None, None)
    size = os.path.getsize(path)
    if zipfile.is_zipfile(path):
        archive, config, major = _open_keras_archive(path)
        with archive:
            info = archive.getinfo("model.weights.h5")
            if info.compress_type == zipfile.ZIP_STORED:  # as Keras writes it: read it in place
                source: Any = Window(path, member_start(path, info), info.file_size)
            else:
                source = io.BytesIO(archive.read(info))
            with source, h5py.File(source, "r") as handle:
                found = _read_tree(H5(handle, info.file_size, probe), config, major)
    else:
        if not h5py.is_hdf5(path):
            raise FormatError("neither a .keras zip archive nor an HDF5 file")
        with h5py.File(path, "r") as handle:
            h5 = H5(handle, size, probe)
            version = attr_text(handle.attrs, "keras_version")
            if "model_weights" in handle or "layer_names" in handle.attrs:
                found, config = _read_legacy(h5, given_major or _major(version, 2), config)
            else:
                found = _read_tree(h5, config, given_major or _major(version, 3))
    _check_masks(config, found.layers, strict, path)
    return Model(tuple(found.layers), path, skipped=tuple(found.skipped))
