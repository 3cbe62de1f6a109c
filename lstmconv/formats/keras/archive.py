"""Writing ``.keras`` archives without Keras: lstmconv's own HDF5 writer for the weights,
Keras's own config layout.

What :func:`write` puts in the archive holds what :mod:`.live` writes through Keras for the same
model: the config as Keras 3 (the version :data:`KERAS_VERSION`) serializes a functional model of
LSTM, GRU, SimpleRNN and Bidirectional layers (``serialize_keras_object`` of :func:`.live.build`'s
model), byte for byte, and a weights file with the groups, datasets and attributes Keras's
``H5IOStore`` writes (``layers/<class>/cell/vars/0..2``, each group's ``vars`` named), the
values bit for bit. The weights file is laid out by :mod:`.h5write` (all its metadata first) and
streamed straight into the archive (:mod:`.zipstream`) in one pass, without h5py; so its bytes
are lstmconv's, not h5py's, and the same model gives the same bytes. bfloat16 weights, which HDF5
has no type for and Keras marks by an attribute, go through h5py and a scratch file as Keras
writes them. Models with layers this writer does not know (plain layers around the recurrent
ones) go to :mod:`.live`, with Keras.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ... import dtypes, progress, steps
from ... import gates as gatelib
from ...ir import Cell, Direction, Kind, Layer, Model
from .. import _common
from . import h5write, zipstream
from .names import BY_KIND, GATE_ORDER, activation_to_keras, check

#: The Keras version whose layout this module writes (and which ``metadata.json`` names).
KERAS_VERSION = "3.15.1"
#: The date in a written archive (its members and ``metadata.json``), as in ``.npz``: fixed.
DATE_SAVED = "1980-01-01@00:00:00"
#: The model's name in the config and the weights file (as :func:`.live.build` names it).
MODEL_NAME = "lstmconv"


def covers(model: Model) -> bool:
    """Whether :func:`write` holds everything of ``model`` (else :mod:`.live` writes it)."""
    return not model.around


#: Plain layers are written through Keras (:mod:`.live`), which builds them where the source
#: says how they connect (``BUILDS_CHAIN``: otherwise the api lists them as not carried).
HOLDS_PLAIN = True
BUILDS_CHAIN = True


def write(model: Model, path: str, **options: Any) -> None:
    """Write ``model`` as a ``.keras`` archive at ``path``: through Keras (:mod:`.live`) for what
    this module does not cover, else the JSON config and the weights, streamed in one pass."""
    if not covers(model):
        from ...registry import by_name

        by_name("keras").load_live("writing plain layers to .keras").write(model, path, **options)  # type: ignore[attr-defined]
        return
    plan, ends = _plan(model)
    config = json.dumps(_functional(plan, ends))
    metadata = json.dumps({"keras_version": KERAS_VERSION, "date_saved": DATE_SAVED})
    if any(dtype.name == "bfloat16" for dtype in model.dtypes):
        _write_through_h5py(model, plan, path, metadata, config)
        return
    root, streams = weights_tree(plan)
    weights = h5write.layout(root, [dataset for dataset, _ in streams])
    with progress.counting(_weight_bytes(model)), open(path, "wb") as handle:
        archive = zipstream.StoredZip(handle)
        archive.add("metadata.json", metadata.encode())
        archive.add("config.json", config.encode())
        with archive.member("model.weights.h5", weights.size) as member:
            member.write(weights.metadata)
            made = (dtypes.little_endian_bytes(block) for _, blocks in streams for block in blocks())
            for block in _common.made_ahead(made):
                member.write(block)
                progress.advance(block.nbytes)
        archive.close()


def _write_through_h5py(model: Model, plan: list[_Entry], path: str, metadata: str, config: str) -> None:
    """The weights written by h5py to a scratch file (as Keras writes bfloat16), then zipped."""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as scratch:
        weights = os.path.join(scratch, "model.weights.h5")
        with progress.counting(_weight_bytes(model)):  # the weights, then the archive
            write_weights(plan, weights)
        with progress.counting(os.path.getsize(weights), "into the archive"):
            zip_archive(path, metadata, config, weights)


def zip_archive(path: str, metadata: str, config: str, weights: str) -> None:
    """The three members as ``model.save`` orders them, stored, dated 1980; the weights copied
    in large blocks."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr(_member("metadata.json"), metadata)
        archive.writestr(_member("config.json"), config)
        member = archive.open(_member("model.weights.h5"), "w", force_zip64=True)
        buffer = memoryview(bytearray(_COPY_BLOCK))  # one block in memory, reused
        with open(weights, "rb", buffering=0) as source, member:
            while count := source.readinto(buffer):
                member.write(buffer[:count])
                progress.advance(count)


#: The weights go into the archive this many bytes at a time.
_COPY_BLOCK = 4 << 20
#: Kernels are packed this many bytes at a time, the next block while the last is written.
_KERNEL_BLOCK = 2 << 20


def _member(name: str) -> zipfile.ZipInfo:
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


# -- the weights ------------------------------------------------------------------------------------
def cell_weights(layer: Layer, cell: Cell) -> list[np.ndarray]:
    """One cell's Keras variables: kernel (in, G·H), recurrent kernel (H, G·H), and the bias
    (summed, or the GRU reset-after's two rows)."""
    order = GATE_ORDER[layer.kind]
    weights = [gatelib.pack_transposed(cell.w_ih, order), gatelib.pack_transposed(cell.w_hh, order)]
    return weights + ([_bias(layer, cell)] if layer.has_bias else [])


def _bias(layer: Layer, cell: Cell) -> np.ndarray:
    order = GATE_ORDER[layer.kind]
    b_ih, b_hh = cell.stacked("b_ih", order), cell.stacked("b_hh", order)
    two_rows = layer.kind is Kind.GRU and layer.reset_after
    return steps.stack_bias_rows(b_ih, b_hh) if two_rows else steps.merge_bias(b_ih, b_hh)


Blocks = Callable[[], Iterator[np.ndarray]]


def weights_tree(plan: list[_Entry]) -> tuple[h5write.Group, list[tuple[h5write.Dataset, Blocks]]]:
    """The groups, datasets and ``name`` attributes ``save_weights`` writes for the planned
    model (:func:`write_weights` with h5py), and each dataset with its values' blocks, in the
    order they are written."""
    root = h5write.Group()
    root.group("vars").attrs["name"] = MODEL_NAME
    streams: list[tuple[h5write.Dataset, Blocks]] = []
    for entry in plan:
        root.group(f"{entry.group}/vars").attrs["name"] = entry.name
        if entry.layer is None:
            continue
        if entry.layer.direction is Direction.BIDIRECTIONAL:
            for side, index in (("backward_layer", 1), ("forward_layer", 0)):  # Keras: sorted
                root.group(f"{entry.group}/{side}/vars").attrs["name"] = entry.inner[index]
                streams += _cell_tree(root.group(f"{entry.group}/{side}/cell/vars"), entry.layer, index)
        else:
            streams += _cell_tree(root.group(f"{entry.group}/cell/vars"), entry.layer, 0)
    return root, streams


def _cell_tree(group: h5write.Group, layer: Layer, index: int) -> list[tuple[h5write.Dataset, Blocks]]:
    """A cell's variables: the kernels packed a block of rows at a time when streamed (one
    block in memory), the bias whole."""
    group.attrs["name"] = _snake(BY_KIND[layer.kind].cell)
    cell, order = layer.cells[index], GATE_ORDER[layer.kind]
    streams: list[tuple[h5write.Dataset, Blocks]] = []
    for position, per_gate in enumerate((cell.w_ih, cell.w_hh)):
        height, width = per_gate[order[0]].shape
        dataset = h5write.Dataset((width, height * len(order)), per_gate[order[0]].dtype)
        group.children[str(position)] = dataset
        streams.append((dataset, functools.partial(_kernel_blocks, per_gate, order)))
    if layer.has_bias:
        bias = _bias(layer, cell)
        group.children["2"] = dataset = h5write.Dataset(bias.shape, bias.dtype)
        streams.append((dataset, functools.partial(iter, (bias,))))
    return streams


def _kernel_blocks(per_gate: Mapping[str, np.ndarray], order: tuple[str, ...]) -> Iterator[np.ndarray]:
    """The kernel ``pack_transposed(per_gate, order)``, as blocks of its rows of about
    :data:`_KERNEL_BLOCK` bytes (the same bytes as the whole array's)."""
    height, width = per_gate[order[0]].shape
    rows = max(1, _KERNEL_BLOCK // (height * len(order) * per_gate[order[0]].dtype.itemsize))
    for start in range(0, width, rows):
        yield gatelib.pack_transposed(
            {gate: per_gate[gate][:, start : start + rows] for gate in order}, order
        )


def write_weights(plan: list[_Entry], path: str) -> None:
    """The HDF5 file ``save_weights`` writes for the planned model, through h5py, group by group
    in Keras's order (the same h5py calls, so the same bytes): for bfloat16 weights."""
    import h5py

    with h5py.File(path, "w") as handle:
        _named(handle.create_group("vars"), MODEL_NAME)
        for entry in plan:
            _named(handle.create_group(entry.group).create_group("vars"), entry.name)
            if entry.layer is None:
                continue
            if entry.layer.direction is Direction.BIDIRECTIONAL:
                for side, index in (("backward_layer", 1), ("forward_layer", 0)):  # Keras: sorted
                    inner = f"{entry.group}/{side}"
                    _named(handle.create_group(inner).create_group("vars"), entry.inner[index])
                    _cell(handle, f"{inner}/cell", entry.layer, index)
            else:
                _cell(handle, f"{entry.group}/cell", entry.layer, 0)


def _weight_bytes(model: Model) -> int:
    """The bytes of the Keras variables: kernels, and the bias (one, or the GRU's two rows)."""
    total = 0
    for layer in model:
        for cell in layer.cells:
            total += sum(a.nbytes for a in (*cell.w_ih.values(), *cell.w_hh.values()))
            two_rows = layer.kind is Kind.GRU and layer.reset_after
            biases = (*(cell.b_ih or {}).values(), *((cell.b_hh or {}).values() if two_rows else ()))
            total += sum(a.nbytes for a in biases)
    return total


def _named(group: Any, name: str) -> None:
    group.attrs["name"] = name


def _cell(handle: Any, path: str, layer: Layer, index: int) -> None:
    """A cell's variables: the kernels packed a block of rows at a time (one block in memory,
    the file's bytes the same as a whole array's), the bias whole."""
    group = handle.create_group(path).create_group("vars")
    _named(group, _snake(BY_KIND[layer.kind].cell))
    cell, order = layer.cells[index], GATE_ORDER[layer.kind]
    for position, per_gate in enumerate((cell.w_ih, cell.w_hh)):
        first = per_gate[order[0]]
        height, width = first.shape
        if first.dtype.name == "bfloat16":  # as Keras writes it: whole, then marked
            _mark(group.create_dataset(str(position), data=gatelib.pack_transposed(per_gate, order)), first)
            progress.advance(first.nbytes * len(order))
            continue
        # as h5py's group[key] = array does it: written anonymous, then linked
        dataset = group.create_dataset(None, (width, height * len(order)), first.dtype)
        start = 0
        for block in _kernel_blocks(per_gate, order):
            dataset[start : start + len(block)] = block
            start += len(block)
            progress.advance(block.nbytes)
        group[str(position)] = dataset
    if layer.has_bias:
        bias = _bias(layer, cell)
        if bias.dtype.name == "bfloat16":
            _mark(group.create_dataset("2", data=bias), bias)
        else:
            group["2"] = bias
        progress.advance(bias.nbytes)


def _mark(dataset: Any, value: np.ndarray) -> None:
    """Keras marks a bfloat16 variable's dataset (HDF5 has no such type)."""
    if value.dtype.name == "bfloat16":
        dataset.attrs["dtype"] = "bfloat16"


# -- the model's plan: Keras's layer order, names and groups ------------------------------------------
class _Entry:
    """One layer of the functional model: an input (``layer`` None) or a recurrent layer."""

    def __init__(self, name: str, group: str, layer: Layer | None, feeds: str | None, inner=("", "")):
        self.name, self.group, self.layer, self.feeds = name, group, layer, feeds
        self.inner: tuple[str, str] = inner
        self.features = 0
        self.dtype = ""


def _plan(model: Model) -> tuple[list[_Entry], list[tuple[str, str]]]:
    """The model's inputs and layers in the order Keras's functional graph lists them (by depth
    from the outputs, deepest first; chains in order within a depth), each with its group in the
    weights file, its name, and the layer it takes its input from; then each chain's input
    and output names, in model order."""
    for layer in model.layers:
        check(layer)
    names = _common.identifiers(model.layers)
    chains = model.chains()
    ranked: list[tuple[int, int, _Entry]] = []
    ends: list[tuple[str, str]] = []
    visited = 0
    for chain in chains:
        first = names[chain[0].name]
        source = _Entry("input" if len(chains) == 1 else f"{first}_input", "InputLayer", None, None)
        source.features, source.dtype = chain[0].input_size, str(chain[0].dtype)
        entries, feeds = [source], source.name
        for layer in chain:
            entry = _layer_entry(layer, names[layer.name], feeds)
            entries.append(entry)
            feeds = entry.name
        ends.append((source.name, feeds))
        depth = len(chain)
        for position, entry in enumerate(entries):
            # depth from the output; Keras's traversal meets the output first, the input last
            ranked.append((-(depth - position), visited + depth - position, entry))
        visited += len(entries)
    plan = [entry for _, _, entry in sorted(ranked, key=lambda item: (item[0], item[1]))]
    _groups(plan)
    return plan, ends


def _layer_entry(layer: Layer, name: str, feeds: str) -> _Entry:
    bidirectional = layer.direction is Direction.BIDIRECTIONAL
    inner = (f"forward_{name}_{layer.kind.value}", f"backward_{name}_{layer.kind.value}")
    entry = _Entry(name, "Bidirectional" if bidirectional else BY_KIND[layer.kind].layer, layer, feeds, inner)
    entry.features, entry.dtype = layer.input_size, str(layer.dtype)
    return entry


def _groups(plan: list[_Entry]) -> None:
    """Each entry's group: ``layers/`` and its class in snake case, numbered from the second."""
    used: dict[str, int] = {}
    for entry in plan:
        base = _snake(entry.group)
        used[base] = used.get(base, -1) + 1
        entry.group = f"layers/{base}" + (f"_{used[base]}" if used[base] else "")


def _snake(name: str) -> str:
    """Keras's ``to_snake_case`` for the class names written here."""
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)).lower()


# -- the config -------------------------------------------------------------------------------------
def _functional(plan: list[_Entry], ends: list[tuple[str, str]]) -> dict[str, Any]:
    by_name = {entry.name: entry for entry in plan}
    ends_in = [[first, 0, 0] for first, _ in ends]
    ends_out = [[last, 0, 0] for _, last in ends]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": MODEL_NAME,
            "trainable": True,
            "layers": [_layer_config(entry, by_name) for entry in plan],
            "input_layers": ends_in[0] if len(ends) == 1 else ends_in,
            "output_layers": ends_out[0] if len(ends) == 1 else ends_out,
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": {},
    }


def _layer_config(entry: _Entry, by_name: Mapping[str, _Entry]) -> dict[str, Any]:
    if entry.layer is None:
        config: dict[str, Any] = {
            "batch_shape": [None, None, entry.features],
            "dtype": entry.dtype,
            "sparse": False,
            "ragged": False,
            "name": entry.name,
            "optional": False,
        }
        return {**_serialized("keras.layers", "InputLayer", config), "name": entry.name, "inbound_nodes": []}
    layer = entry.layer
    bidirectional = layer.direction is Direction.BIDIRECTIONAL
    if bidirectional:
        body = {
            "name": entry.name,
            "trainable": True,
            "dtype": _policy(entry.dtype),
            "merge_mode": layer.merge,
            "layer": _built(_rnn(layer, entry.inner[0], False, True), layer.input_size),
            "backward_layer": _built(_rnn(layer, entry.inner[1], True, True), layer.input_size),
        }
        config = _serialized("keras.layers", "Bidirectional", body)
    else:
        config = _rnn(layer, entry.name)
    source = by_name[entry.feeds or ""]
    kwargs: dict[str, Any] = {"mask": None} if bidirectional else {"training": False, "mask": None}
    history = {
        "shape": [None, None, layer.input_size],
        "dtype": source.dtype,
        "keras_history": [source.name, 0, 0],
    }
    node = {"args": [{"class_name": "__keras_tensor__", "config": history}], "kwargs": kwargs}
    return {**_built(config, layer.input_size), "name": entry.name, "inbound_nodes": [node]}


def _built(serialized: dict[str, Any], features: int) -> dict[str, Any]:
    return {**serialized, "build_config": {"input_shape": [None, None, features]}}


def _serialized(module: str, class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _policy(dtype: str) -> dict[str, Any]:
    return _serialized("keras", "DTypePolicy", {"name": dtype})


def _initializer(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return _serialized("keras.initializers", class_name, config)


def _rnn(layer: Layer, name: str, backwards: bool = False, wrapped: bool = False) -> dict[str, Any]:
    """An LSTM, GRU or SimpleRNN, serialized, its config's keys in Keras's order."""
    return _serialized(
        "keras.layers", BY_KIND[layer.kind].layer, _rnn_config(layer, name, backwards, wrapped)
    )


def _rnn_config(layer: Layer, name: str, backwards: bool, wrapped: bool) -> dict[str, Any]:
    kind, dtype = layer.kind, str(layer.dtype)
    config: dict[str, Any] = {
        "name": name,
        "trainable": True,
        "dtype": _policy(dtype),
        "return_sequences": True,
        "return_state": False,
        "go_backwards": backwards or layer.reversed_output,
        "stateful": False,
        "unroll": False,
        "zero_output_for_mask": wrapped,
        "units": layer.hidden_size,
        "activation": activation_to_keras(layer.activations[0 if kind is Kind.RNN else 1]),
    }
    if kind is not Kind.RNN:
        config["recurrent_activation"] = activation_to_keras(layer.activations[0])
    recurrent = (
        _initializer("Zeros", {})
        if dtype == "bfloat16"  # TensorFlow's QR has no bfloat16 kernel: see live._restore_initializers
        else _initializer("Orthogonal", {"seed": None, "gain": 1.0})
    )
    config.update(
        use_bias=layer.has_bias,
        kernel_initializer=_initializer(
            "GlorotUniform", {"seed": None, "input_axes": None, "output_axes": None}
        ),
        recurrent_initializer=recurrent,
        bias_initializer=_initializer("Zeros", {}),
    )
    if kind is Kind.LSTM:
        config["unit_forget_bias"] = True
    for key in ("kernel", "recurrent", "bias", "activity"):
        config[f"{key}_regularizer"] = None
    for key in ("kernel", "recurrent", "bias"):
        config[f"{key}_constraint"] = None
    config.update(dropout=0.0, recurrent_dropout=0.0)
    if kind is Kind.GRU:
        config["reset_after"] = layer.reset_after
    if kind is not Kind.RNN:
        config["seed"] = None
    return config
