"""Keras files read without TensorFlow or Keras: zip + JSON config + HDF5 (a
``.keras``'s weights through :mod:`.h5read`, no h5py, where it reads them; else, and for ``.h5``
files, through h5py, in forked children under a time limit).

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
import math
import mmap
import os
import stat
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ... import outline, steps
from ...errors import (
    FormatError,
    LstmconvError,
    UnsafeInputError,
    UnsupportedFeatureError,
    UsageError,
    WeightLayoutError,
)
from ...ir import MERGE_MODES, Kind, Layer, Model, Skipped
from ...plain import PlainLayer
from .. import forked
from .._common import (
    MAX_RATIO,
    check_zip_budget,
    dims,
    member_start,
    nested_too_deeply,
    parse_json,
    require_regular_file,
)
from . import around, h5read, links
from . import names as keras_names
from .hdf5 import H5, Window, attr_strings, attr_text

_log = logging.getLogger(__name__)
_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_CUDNN = {"CuDNNLSTM", "CuDNNGRU"}
#: A zip member may expand at most this many times its stored size (zip bombs).
MAX_ZIP_RATIO = MAX_RATIO
MAX_CONFIG_BYTES = 64 << 20
#: How long the HDF5 structure may take to read in the probing child (LSTMCONV_HDF5_SECONDS).
PROBE_SECONDS = 10.0
PROBE_SECONDS_PER_GB = 30.0
#: The tree walk below reads through either backend: h5py (:class:`.hdf5.H5`, its groups and
#: datasets) or lstmconv's own parser (:class:`.h5read.Reader`), which has the same surface.
_Backend = H5 | h5read.Reader
_Group = Any


def _is_group(node: Any) -> bool:
    h5py = sys.modules.get("h5py")  # an h5py node exists only if h5py was imported
    return isinstance(node, h5read.Group) or (h5py is not None and isinstance(node, h5py.Group))


def _is_dataset(node: Any) -> bool:
    h5py = sys.modules.get("h5py")
    return isinstance(node, h5read.Dataset) or (h5py is not None and isinstance(node, h5py.Dataset))


@dataclasses.dataclass(frozen=True)
class _Spec:
    """What a recurrent layer's config says."""

    name: str
    kind: Kind
    config: Mapping[str, Any]  # the config holding the activations (the cell's, for RNN(cell))
    go_backwards: bool = False
    bidirectional: bool = False
    merge: str = "concat"
    cudnn: bool = False  # CuDNNLSTM/CuDNNGRU: cuDNN-packed weights, converted when read
    subclass: str = ""  # a user's class read as its base kind (its config is exactly the base's)


def _rnn_spec(entry: Mapping[str, Any], name: str | None = None) -> _Spec | None:
    cls, config = entry.get("class_name"), entry.get("config") or {}
    name = name or config.get("name", "")
    if cls in _CUDNN:  # fixed tanh/sigmoid; CuDNNGRU is reset-after
        kind = Kind.LSTM if cls == "CuDNNLSTM" else Kind.GRU
        return _Spec(name, kind, {}, bool(config.get("go_backwards", False)), cudnn=True)
    base = keras_names.subclass_base(entry)
    if base is not None:
        shown = str(entry.get("registered_name") or cls)
        return _Spec(name, base.kind, config, bool(config.get("go_backwards", False)), subclass=shown)
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


def _parsed_config(text: str | bytes, what: str) -> Any:
    """A model config from its JSON text (``model_config``, a config file), in Keras 2.2+'s form;
    nested too deeply to parse or to walk is a :class:`FormatError` (:func:`parse_json`)."""
    try:
        return keras_names.normalized_config(parse_json(text, what))
    except RecursionError:  # parsed, but deeper than normalized_config's walk can follow
        raise nested_too_deeply(what) from None


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
    around: list[PlainLayer] = dataclasses.field(default_factory=list)
    order: list[str] = dataclasses.field(default_factory=list)

    def add(self, layer: Layer | PlainLayer) -> None:
        (self.layers if isinstance(layer, Layer) else self.around).append(layer)  # type: ignore[arg-type]
        self.order.append(layer.name)

    def plain_or_skipped(
        self, entry: Mapping[str, Any], weights: Sequence[np.ndarray], shapes: Sequence[tuple[str, Any]]
    ) -> None:
        """A plain layer read (:mod:`.around`), or, holding weights, listed as skipped."""
        plain = around.from_entry(entry, weights)
        if plain is not None:
            self.add(plain)
        elif shapes:
            name = (entry.get("config") or {}).get("name", "")
            self.skipped.append(Skipped.of(name, str(entry.get("class_name", "")), shapes))


def _shapes(group: _Group) -> list[tuple[str, tuple[int, ...]]]:
    """(path, shape) of every dataset under ``group`` (shapes only: nothing is read)."""
    found: list[tuple[str, tuple[int, ...]]] = []

    def visit(name: str, node: Any) -> None:
        if _is_dataset(node):
            found.append((f"{group.name.strip('/')}/{name}", tuple(int(n) for n in node.shape)))

    group.visititems(visit)
    return found


def _subclass_read(spec: _Spec, unexpected: Sequence[str], strict: bool) -> None:
    """A user's subclass read as its base kind: refused when it holds weights its base has not
    (``unexpected``) or with ``strict``, else a warning naming the class."""
    base = keras_names.BY_KIND[spec.kind]
    if unexpected or strict:
        raise UnsupportedFeatureError(
            f"a recurrent layer of class {spec.subclass}, which lstmconv does not read"
            + (f" (it holds {', '.join(unexpected)} beside an {base.layer}'s weights)" if unexpected else ""),
            where=(f'layer "{spec.name}"',),
            hint=f"its config is an {base.layer}'s: drop --strict to read it as one"
            if not unexpected
            else "a subclass or another class may compute otherwise",
        )
    _log.warning("%s", keras_names.subclass_message(spec.name, spec.subclass, base))


# -- building IR layers --------------------------------------------------------------------------
def _from_cudnn(kind: Kind, weights: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    """A CuDNNLSTM/CuDNNGRU's ``[kernel, recurrent_kernel, bias]`` in LSTM/GRU's layout (Keras 2's
    ``_convert_rnn_weights`` facts, layouts.md §3.3): each gate's input block is cuDNN's (H, I)
    row-major matrix reinterpreted as (I, H), each recurrent block is transposed, and the bias
    (2·G·H,) is [input-side gates; recurrent-side gates], kept as two rows (b_ih, b_hh)."""
    gates = 4 if kind is Kind.LSTM else 3
    where = (f'layer "{name}"',)
    if len(weights) != 3:
        raise WeightLayoutError(
            f"expected kernel, recurrent_kernel and bias, found {len(weights)} weight(s)", where=where
        )
    kernel, recurrent, bias = weights
    if kernel.ndim != 2 or recurrent.ndim != 2 or recurrent.shape[1] != gates * recurrent.shape[0]:
        raise WeightLayoutError(
            f"expected kernel (I, {gates}H) and recurrent_kernel (H, {gates}H), "
            f"found {dims(kernel.shape)}, {dims(recurrent.shape)}",
            where=where,
        )
    hidden, inputs = recurrent.shape[0], kernel.shape[0]
    if kernel.shape[1] != gates * hidden or bias.shape != (2 * gates * hidden,):
        raise WeightLayoutError(
            f"expected kernel ({inputs}, {gates * hidden}) and a cuDNN bias ({2 * gates * hidden},), "
            f"found {dims(kernel.shape)}, {dims(bias.shape)}",
            where=where,
        )
    blocks = np.split(kernel, gates, axis=1)
    kernel = np.concatenate(
        [np.ascontiguousarray(block).reshape(hidden, inputs).T for block in blocks], axis=1
    )
    recurrent = np.concatenate([block.T for block in np.split(recurrent, gates, axis=1)], axis=1)
    return [kernel, recurrent, bias.reshape(2, gates * hidden)]


def _layer(spec: _Spec, directions: Sequence[Sequence[np.ndarray]], keras_major: int) -> Layer:
    if spec.cudnn:
        directions = [_from_cudnn(spec.kind, weights, spec.name) for weights in directions]
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
            f"recurrent_kernel {dims(weights[1].shape)} is not (H, 4H), (H, 3H) or (H, H)",
            where=(f'layer "{name}"',),
        )
    bias = weights[2] if len(weights) > 2 else None
    if bias is not None and bias.shape == (2 * columns,) and kind is not Kind.RNN:  # CuDNNLSTM/GRU's
        return _Spec(name, kind, {}, bidirectional=bidirectional, cudnn=True)
    config: dict[str, Any] = {}
    if kind is Kind.GRU:  # a (2, 3H) bias is reset-after; without a bias, Keras's default
        from_shape = steps.reset_after_from_bias(weights[2] if len(weights) > 2 else None)
        config["reset_after"] = True if from_shape is None else from_shape
    return _Spec(name, kind, config, bidirectional=bidirectional)


# -- Keras 3 tree: .keras and .weights.h5 ----------------------------------------------------------
def _named_entries(layers_group: _Group) -> dict[str, _Group]:
    """Children of a ``layers`` container keyed by the real layer name in ``vars/@name``."""
    entries = {}
    for key in layers_group:
        child = layers_group[key]
        if _is_group(child):
            label = attr_text(child["vars"].attrs, "name") if "vars" in child else None
            entries[label or key] = child
    return entries


def _cell_weights(h5: _Backend, group: _Group, where: str) -> list[np.ndarray]:
    if "cell" not in group or "vars" not in group["cell"]:
        raise FormatError("expected cell/vars with the layer's weights", where=(where,))
    variables = group["cell/vars"]
    return [h5.dataset(variables, str(index), where) for index in range(len(variables))]


def _tree_weights(
    h5: _Backend, group: _Group, spec_bidirectional: bool, where: str
) -> list[list[np.ndarray]]:
    if spec_bidirectional:
        return [
            _cell_weights(h5, group[side], f"{where}/{side}")
            for side in ("forward_layer", "backward_layer")
            if side in group
        ] or [[]]
    return [_cell_weights(h5, group, where)]


def _read_tree(
    h5: _Backend, config: Mapping[str, Any] | None, keras_major: int, strict: bool = False
) -> _Found:
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
    containers: dict[tuple[str, ...], dict[str, _Group]] = {(): _named_entries(root["layers"])}
    for path, entry in _walk_config(config):
        entries = containers.get(path)
        name = (entry.get("config") or {}).get("name", "")
        if entries is None or name not in entries:
            if _rnn_spec(entry) is not None:
                raise FormatError(f"no weights for layer {name!r}", where=("/".join((*path, name)),))
            if around.is_plain(entry):
                found.plain_or_skipped(entry, [], [])
            continue
        group = entries[name]
        if entry.get("class_name") in _MODEL_CLASSES and "layers" in group:
            containers[(*path, name)] = _named_entries(group["layers"])
            continue
        spec = _rnn_spec(entry)
        if spec is not None:
            if spec.subclass:
                own = [
                    key for key in group if key != "cell" and not (key == "vars" and not len(group["vars"]))
                ]
                _subclass_read(spec, own, strict)
            found.add(_layer(spec, _tree_weights(h5, group, spec.bidirectional, group.name), keras_major))
        else:
            shapes = _shapes(group)
            weights = _plain_weights(h5, group, group.name) if around.is_plain(entry) else []
            found.plain_or_skipped(entry, weights, shapes)
    return found


def _plain_weights(h5: _Backend, group: _Group, where: str, seen: set[Any] | None = None) -> list[np.ndarray]:
    """A layer's own ``vars`` in order, then those of the layers it wraps (TimeDistributed's);
    each group once (hard links can make n groups 2^n paths)."""
    seen = set() if seen is None else seen
    weights = []
    if "vars" in group:
        variables = group["vars"]
        weights = [h5.dataset(variables, str(index), where) for index in range(len(variables))]
    for key in sorted(group):
        inner = group[key]
        if key != "vars" and _is_group(inner) and inner.id not in seen:
            seen.add(inner.id)
            weights += _plain_weights(h5, inner, f"{where}/{key}", seen)
    return weights


def _tree_without_config(
    h5: _Backend, entries: Mapping[str, _Group], keras_major: int, found: _Found, seen: set[Any] | None = None
) -> None:
    """``seen``: the ``layers`` groups walked already (hard links can make n groups 2^n paths)."""
    seen = set() if seen is None else seen
    for name, group in entries.items():
        if "layers" in group:
            inner = group["layers"]
            if inner.id not in seen:
                seen.add(inner.id)
                _tree_without_config(h5, _named_entries(inner), keras_major, found, seen)
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
        found.add(_layer(spec, directions, keras_major))


# -- legacy HDF5: model.save("x.h5") / save_weights("x.h5") ---------------------------------------
def _legacy_layer_weights(h5: _Backend, group: _Group, where: str) -> list[tuple[str, np.ndarray]]:
    return [(name, h5.dataset(group, name, where)) for name in attr_strings(group, "weight_names")]


def _split_directions(named: Sequence[tuple[str, np.ndarray]], bidirectional: bool) -> list[list[np.ndarray]]:
    arrays = [array for _, array in named]
    if not bidirectional:
        return [arrays]
    half = len(arrays) // 2
    return [arrays[:half], arrays[half:]]


def _read_legacy(
    h5: _Backend, keras_major: int, given: Mapping[str, Any] | None = None, strict: bool = False
) -> tuple[_Found, Any]:
    root = h5.handle
    weights_root = root.get("model_weights", root)
    if not attr_strings(weights_root, "layer_names"):
        raise FormatError("no layer_names attribute: not a Keras HDF5 weights file")
    text = attr_text(root.attrs, "model_config")
    config = _parsed_config(text, "model_config") if text else given
    old_defaults = _before_2_3(
        attr_text(root.attrs, "keras_version") or attr_text(weights_root.attrs, "keras_version")
    )
    classes = {
        (entry.get("config") or {}).get("name", ""): str(entry.get("class_name", ""))
        for _, entry in (_walk_config(config) if config is not None else ())
    }
    tops = {
        (entry.get("config") or {}).get("name", ""): entry
        for path, entry in (_walk_config(config) if config is not None else ())
        if not path
    }
    found = _Found()
    for layer_name in attr_strings(weights_root, "layer_names"):
        group = weights_root[layer_name]
        named = _legacy_layer_weights(h5, group, f"{weights_root.name}/{layer_name}")
        entry = tops.get(layer_name)
        if entry is not None and around.is_plain(entry):
            shapes = [(name, tuple(int(n) for n in array.shape)) for name, array in named]
            found.plain_or_skipped(entry, [array for _, array in named], shapes)
            continue
        if not named:
            continue
        used: set[str] = set()
        for spec, mine in _legacy_specs(config, layer_name, named, old_defaults, h5.handle.filename):
            if spec.subclass:
                fields = [weight.split("/")[-1].split(":")[0] for weight, _ in mine]
                expected = ["kernel", "recurrent_kernel", "bias"][: len(fields)]
                _subclass_read(spec, [] if fields == expected and len(fields) >= 2 else fields, strict)
            directions = _split_directions(mine, spec.bidirectional)
            found.add(_layer(spec, directions, keras_major))
            used.update(name for name, _ in mine)
        rest = [(name, tuple(int(n) for n in array.shape)) for name, array in named if name not in used]
        if rest:
            found.skipped.append(Skipped.of(layer_name, classes.get(layer_name, "layer"), rest))
    return found, config


def _before_2_3(version: str | None) -> bool:
    """Whether a Keras version string is 2.0-2.2, whose LSTM/GRU default ``recurrent_activation``
    was ``hard_sigmoid`` (tag 2.2.4 ``keras/layers/recurrent.py``; layouts.md §13)."""
    parts = str(version or "").split(".")
    try:
        return len(parts) >= 2 and int(parts[0]) == 2 and int(parts[1]) < 3
    except ValueError:
        return False


def _is_recurrent_weight(name: str) -> bool:
    """A weight name of a recurrent layer: Keras 2.3+/tf_keras ``lstm/lstm_cell/kernel:0``, or
    Keras 2.0-2.2's flat ``lstm_1/recurrent_kernel:0`` (no cell group)."""
    return name.split("/")[-1].split(":")[0] == "recurrent_kernel" or any(
        token in name for token in ("lstm_cell", "gru_cell", "simple_rnn_cell")
    )


def _no_config(path: str, layer: str, kind: str, bidirectional: bool, defaults: str = "") -> None:
    """The one warning for a weights file read without its model's config (legacy ``.h5`` and
    ``.weights.h5`` alike)."""
    _log.warning(
        '%s: no model config; layer "%s" read as %s with default activations%s%s; if they are not '
        "the defaults, give the model's config (.keras or JSON): --config PATH, or config= in the API",
        path,
        layer,
        kind,
        defaults,
        " and merge concat" if bidirectional else "",
    )


def _legacy_specs(
    config: Mapping[str, Any] | None,
    layer_name: str,
    named: Sequence[tuple[str, np.ndarray]],
    old_defaults: bool = False,
    filename: str = "",
) -> Iterator[tuple[_Spec, list[tuple[str, np.ndarray]]]]:
    """The recurrent layers inside one ``layer_names`` entry, with their weights. Without a
    config, the defaults of the file's Keras version (``old_defaults``: Keras 2.0-2.2's)."""
    if config is None:
        if any(_is_recurrent_weight(name) for name, _ in named):
            bidirectional = any("/forward_" in name for name, _ in named) and any(
                "/backward_" in name for name, _ in named
            )
            inferred = _spec_from_shapes(
                layer_name, _split_directions(named, bidirectional)[0], bidirectional
            )
            if old_defaults and not inferred.cudnn and inferred.kind is not Kind.RNN:
                inferred = dataclasses.replace(
                    inferred, config={**inferred.config, "recurrent_activation": "hard_sigmoid"}
                )
            if inferred.cudnn:  # its activations are fixed: nothing is assumed
                _log.info('layer "%s" read as a CuDNN %s (its cuDNN bias)', layer_name, inferred.kind.value)
            else:
                old = old_defaults and inferred.kind is not Kind.RNN
                _no_config(
                    filename,
                    layer_name,
                    inferred.kind.value,
                    bidirectional,
                    " of Keras <= 2.2 (recurrent_activation hard_sigmoid)" if old else "",
                )
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
    check_zip_budget(archive.infolist(), os.path.getsize(path))
    names = set(archive.namelist())
    if "config.json" not in names:
        raise FormatError("no config.json in the archive: not a .keras file")
    if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
        raise UnsafeInputError("config.json is larger than 64 MiB")
    config = parse_json(archive.read("config.json"), "config.json")
    metadata = parse_json(archive.read("metadata.json"), "metadata.json") if "metadata.json" in names else {}
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
    seconds = _limit_from_environment()
    try:
        given = _load_config(os.fspath(config)) if config is not None else None
        model = _read_own(path, given, strict, header_only)
        if model is not None and header_only:  # placeholders, as the outline below gives them
            return model
        if model is None:  # through h5py, in children under the time limit
            limit = seconds if seconds is not None else _limit_for_size(path)
            outlined = _look_in_child(path, given, limit, strict)
            if header_only and outlined is not None:
                return outline.placeholders(outlined.taken()["outline"], path)
            if outlined is not None and not header_only:
                arrays = _read_in_child(path, given, outlined.value["datasets"], limit)
                if arrays is not None:  # the values are read: the parent walks the structure alone
                    model = _read_path(path, given=given, strict=strict, preread=iter(arrays))
            if model is None:
                model = _read_path(path, probe=header_only, given=given, strict=strict)
        found = links.links(_model_config(path, given), list(model.order or ()))
        return dataclasses.replace(model, links=found)
    except LstmconvError as error:
        raise error.within(path) from None
    except RecursionError:  # a config nested past the limit, met by a walk of it (_walk_config, links)
        raise nested_too_deeply("the model config").within(path) from None
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise FormatError(
            f"not a readable Keras file: {type(error).__name__}: {error}", where=(path,)
        ) from None


def _read_own(
    path: str, given: tuple[Mapping[str, Any], int | None] | None, strict: bool, header_only: bool
) -> Model | None:
    """A ``.keras`` archive read by lstmconv's own HDF5 parser, in this process: it walks a
    bounded structure and cannot hang or crash as the HDF5 library can, so no child is needed;
    None where it declines the file (it is not in the subset Keras writes, or is damaged), for
    h5py's read, in children under the time limit, to judge it as before."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        model = _read_path(path, probe=header_only, given=given, strict=strict, own=True)
    except h5read.Decline as why:
        _log.debug("%s: read through h5py: %s", path, why)
        return None
    # a header read's tensors are the placeholders the outline gives, as through h5py
    return outline.placeholders(outline.outline(model), path) if header_only else model


def _model_config(path: str, given: tuple[Mapping[str, Any], int | None] | None) -> Any:
    """The model's config (the one given for a weights-only file, else the file's own), or None."""
    if given is not None:
        return given[0]
    if zipfile.is_zipfile(path):
        archive, config, _major_version = _open_keras_archive(path)
        archive.close()
        return config
    import h5py

    with h5py.File(path, "r") as handle:
        text = attr_text(handle.attrs, "model_config")
    return _parsed_config(text, "model_config") if text else None


def _limit_from_environment() -> float | None:
    """LSTMCONV_HDF5_SECONDS, if set: a usage error (not the file's) when it is no number."""
    text = os.environ.get("LSTMCONV_HDF5_SECONDS")
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(
            f"LSTMCONV_HDF5_SECONDS must be a positive number of seconds, found {text!r}",
            hint="unset it for the default (10 s, more for large files)",
        )
    return value


def _limit_for_size(path: str) -> float:
    return PROBE_SECONDS + PROBE_SECONDS_PER_GB * os.path.getsize(path) / 2**30  # inflating takes time


def _look_in_child(
    path: str, given: tuple[Mapping[str, Any], int | None] | None, limit: float, strict: bool = False
) -> forked.Answer | None:
    """The file's layers outlined (names, shapes, dtypes) by a forked child that walks the HDF5
    structure under a time limit, so that a file that hangs or crashes the HDF5 library costs a
    child (see :mod:`.forked`), with every dataset it was asked for; None if the walk failed,
    for the real read to report why."""

    def task() -> dict[str, Any]:
        seen: list[tuple[str, list[int], str]] = []
        model = _read_path(path, probe=True, given=given, strict=strict, seen=seen)
        return {"outline": outline.outline(model), "datasets": seen}

    return forked.look(
        task, limit, "the file's HDF5 structure", hint="set LSTMCONV_HDF5_SECONDS to allow longer"
    )


def _read_in_child(
    path: str,
    given: tuple[Mapping[str, Any], int | None] | None,
    datasets: Sequence[tuple[str, Sequence[int], str]],
    limit: float,
) -> list[np.ndarray] | None:
    """Every dataset's values, read by a forked child under the time limit into memory shared
    with this process (an anonymous mapping: no file), in the order the read asks for them;
    None where there is no fork or the child's read failed (the parent's own read reports why)."""
    layout, total = [], 0
    for _name, shape, dtype_text in datasets:
        dtype = np.dtype(dtype_text)
        count = int(np.prod(shape, dtype=np.int64))
        layout.append((total, dtype, tuple(shape), count))
        total += -(-count * dtype.itemsize // 64) * 64
    shared = mmap.mmap(-1, max(total, 1))
    arrays = [
        np.frombuffer(shared, dtype, count, offset).reshape(shape) for offset, dtype, shape, count in layout
    ]
    done = forked.look(
        lambda: bool(_read_path(path, given=given, into=iter(arrays)) is not None),
        limit,
        "the file's HDF5 datasets",
        hint="set LSTMCONV_HDF5_SECONDS to allow longer",
    )
    if done is None or done.value is not True:
        return None
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _load_config(path: str) -> tuple[Mapping[str, Any], int | None]:
    """(config, Keras major version if known) from a .keras archive or a JSON file."""
    try:
        require_regular_file(path)
        if zipfile.is_zipfile(path):
            archive, config, major = _open_keras_archive(path)
            archive.close()
            return config, major
        if os.path.getsize(path) > MAX_CONFIG_BYTES:
            raise UnsafeInputError("the config is larger than 64 MiB")
        with open(path, encoding="utf-8") as handle:
            config = _parsed_config(handle.read(), "the config")
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
    own: bool = False,
    **h5_options: Any,
) -> Model:
    """The layers of the file, and what it holds besides; ``h5_options`` go to
    :class:`.hdf5.H5` (``seen``, ``into``, ``preread``). ``own``: a ``.keras`` archive's weights
    read by :mod:`.h5read`, without h5py (:class:`.h5read.Decline` where it does not read them)."""
    config, given_major = given if given is not None else (None, None)
    size = os.path.getsize(path)
    if zipfile.is_zipfile(path):
        archive, config, major = _open_keras_archive(path)
        with archive:
            info = archive.getinfo("model.weights.h5")
            if own:
                found = _read_tree(_own_member(path, archive, info, probe), config, major, strict)
            else:
                if info.compress_type == zipfile.ZIP_STORED:  # as Keras writes it: read it in place
                    source: Any = Window(path, member_start(path, info), info.file_size)
                else:
                    source = io.BytesIO(archive.read(info))
                import h5py

                with source, h5py.File(source, "r") as handle:
                    found = _read_tree(
                        H5(handle, info.file_size, probe, outer=size, **h5_options), config, major, strict
                    )
    else:
        if own:
            raise h5read.Decline("an HDF5 file outside a .keras archive is read through h5py")
        found, config = _read_hdf5(path, size, probe, config, given_major, strict, h5_options)
    if not found.layers:
        raise _no_recurrent_layer(config, found, path)
    keras_names.check_masks(config, found.layers, strict, path)
    return Model(
        tuple(found.layers),
        path,
        skipped=tuple(found.skipped),
        around=tuple(found.around),
        order=tuple(found.order),
    )


def _read_hdf5(
    path: str,
    size: int,
    probe: bool,
    config: Any,
    given_major: int | None,
    strict: bool,
    h5_options: Mapping[str, Any],
) -> tuple[_Found, Any]:
    """A legacy ``.h5`` or a ``.weights.h5`` file, through h5py."""
    import h5py

    if not h5py.is_hdf5(path):
        raise FormatError("neither a .keras zip archive nor an HDF5 file")
    with h5py.File(path, "r") as handle:
        h5 = H5(handle, size, probe, **h5_options)
        version = attr_text(handle.attrs, "keras_version")
        if "model_weights" in handle or "layer_names" in handle.attrs:
            return _read_legacy(h5, given_major or _major(version, 2), config, strict)
        return _read_tree(h5, config, given_major or _major(version, 3), strict), config


def _own_member(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, probe: bool) -> h5read.Reader:
    """The weights member parsed by :mod:`.h5read`: a stored one (as Keras writes it) over a
    read-only mapping of the archive, so its datasets are views of the file's pages, not copies;
    a compressed one inflated into memory. The mapping covers only the bytes the file has now,
    and every structure is checked to lie inside the member."""
    outer = os.path.getsize(path)
    if info.compress_type != zipfile.ZIP_STORED:
        data: Any = archive.read(info)
        return h5read.Reader(h5read.open_buffer(data, 0, len(data), path), probe, outer=outer)
    start = member_start(path, info)
    with open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode) or start + info.file_size > status.st_size:
            raise h5read.Decline("the archive is not a regular file, or shorter than its member")
        data = mmap.mmap(handle.fileno(), status.st_size, access=mmap.ACCESS_READ)
    return h5read.Reader(h5read.open_buffer(data, start, info.file_size, path), probe, outer=outer)


def _no_recurrent_layer(config: Any, found: _Found, path: str) -> WeightLayoutError:
    """Say what the file holds when no layer is recurrent: its layers' classes (the config's,
    else those of the layers holding weights)."""
    what = "layers"
    if isinstance(config, Mapping) and isinstance(config.get("config"), Mapping):
        classes = [str(entry.get("class_name", "?")) for _, entry in _walk_config(config)]
    else:  # weights only: the layers' names (their classes are not stored)
        classes, what = [item.name for item in found.skipped], "layers with weights"
    counts: dict[str, int] = {}
    for cls in classes:
        counts[cls] = counts.get(cls, 0) + 1
    shown = ", ".join(f"{cls} ×{n}" if n > 1 else cls for cls, n in list(counts.items())[:12])
    held = f"its {len(classes)} {what} are {shown}" if classes else "it names no layers"
    return WeightLayoutError(
        f"no recurrent layer found: no LSTM, GRU or SimpleRNN layer; {held}",
        where=(path,),
        hint="lstmconv reads LSTM, GRU and simple RNN layers",
    )
