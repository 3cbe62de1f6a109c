"""``tf-checkpoint``: a tensor bundle read as recurrent layers, without TensorFlow.

Pass the prefix (``ckpt-12``), the ``.index`` file or a ``.data-*`` shard. A TF2 object-based
checkpoint holds its object tree (:mod:`.objects`), whose variables carry their full Keras names
(``encoder/lstm_cell/kernel``); a TF1 checkpoint's keys are the names themselves (:mod:`.names`).
What neither says (TF1 ``forget_bias``, ``cell_clip``, activations) comes from the options and is
a warning when assumed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import FormatError, LstmconvError, UnsafeInputError, UnsupportedFeatureError
from ...ir import Layer, Model
from .._common import require_regular_file
from . import bundle, names, objects

_log = logging.getLogger(__name__)
#: A variable name that looks like part of a recurrent layer.
_RECURRENT = re.compile(r"(?:^|/)[^/]*(?:lstm|gru|rnn|_cell)[^/]*/", re.IGNORECASE)


class Checkpoint:
    """A bundle with its object graph, if it has one."""

    def __init__(self, path: str):
        self.prefix = bundle.prefix_of(path)
        self.bundle = bundle.Bundle(self.prefix)
        self.nodes: list[objects.ObjectNode] | None = None
        self.read_keys: set[str] = set()
        if objects.OBJECT_GRAPH in self.bundle.entries:
            strings = self.bundle.strings(objects.OBJECT_GRAPH)
            if len(strings) != 1:
                raise FormatError(f"{objects.OBJECT_GRAPH} should hold one string, found {len(strings)}")
            self.nodes = objects.object_graph(strings[0])

    def tensor(self, key: str) -> np.ndarray:
        if key not in self.bundle.entries:
            raise FormatError(f"the object graph names {key!r}, which the checkpoint does not hold")
        self.read_keys.add(key)
        return self.bundle.tensor(key)

    def say_unread(self, label: str) -> None:
        """Name, every time, the variables that look recurrent but no layer took (a cell kind
        lstmconv does not know, a ConvLSTM...), leaving out optimizer slots of read ones."""
        unread, found = [], self.variables()
        read_names = {v.full_name for v in found if v.key in self.read_keys and v.full_name}
        for variable in found:
            name = variable.full_name or variable.key
            if variable.key in self.read_keys or name in read_names or not _RECURRENT.search(name):
                continue  # read, or a second copy of a read one (SavedModel's _all_variables)
            if any(variable.key.startswith(key + "/") for key in self.read_keys):
                continue  # a TF1 slot (kernel/Adam) of a read variable
            unread.append(name)
        if unread:
            shown = ", ".join(unread[:8]) + (f" and {len(unread) - 8} more" if len(unread) > 8 else "")
            _log.warning(
                "%s: not read (no LSTM, GRU or RNN cell lstmconv knows): %s",
                label,
                shown,
            )

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: entry.shape for key, entry in self.bundle.entries.items()}

    def variables(self) -> list[objects.Variable]:
        if self.nodes is None:
            return [objects.Variable(key, key, key) for key in self.bundle.entries]
        return objects.variables(self.nodes)


def keras_layers(
    checkpoint: Checkpoint,
    configs: Mapping[str, Mapping[str, Any]],
    *,
    keras_major: int,
    label: str,
    options: Mapping[str, Any],
) -> list[Layer]:
    """The Keras recurrent layers of an object-based checkpoint; ``configs`` are layer configs
    by layer name (from a SavedModel's metadata); without one, Keras's defaults, said once."""
    found = checkpoint.variables()
    pairs = [(v.full_name or v.path, v.key) for v in found]
    groups = objects.keras_groups(pairs)
    if not groups:  # no full names: group by object path instead
        groups = objects.keras_groups([(v.path, v.key) for v in found])
    shapes, layers, assumed = checkpoint.shapes(), [], []
    for group in groups:
        kind = objects.keras_kind(group, shapes)
        config = configs.get(group.name)
        if config is None:
            assumed.append(group.name)
            config = {
                key: options[key]
                for key in ("activation", "recurrent_activation", "go_backwards")
                if key in options
            }
        merge = str(config.get("merge_mode") or options.get("merge", "concat"))
        layers.append(
            objects.keras_layer(
                group,
                kind,
                checkpoint.tensor,
                config.get("layer_config", config),
                keras_major=keras_major,
                merge=merge,
            )
        )
    if assumed:
        _log.warning(
            "%s: a checkpoint stores no activations, merge modes or go_backwards; assumed Keras's defaults "
            "(tanh, sigmoid, concat, forward) for %s; pass activation=, recurrent_activation=, merge= "
            "to change",
            label,
            ", ".join(assumed),
        )
    return layers


def tf1_layers(checkpoint: Checkpoint, label: str, options: Mapping[str, Any]) -> list[Layer]:
    keys = [v.full_name or v.key for v in checkpoint.variables()]
    by_name = {v.full_name or v.key: v.key for v in checkpoint.variables()}
    groups = names.tf1_groups(keys)
    names.assumed_forget_bias(groups, label, options.get("forget_bias"))
    names.assumed_activation(groups, label, options.get("activation"))
    if any(len(group.sides) == 2 for group in groups) and "merge" not in options:
        _log.warning("%s: a TF1 fw/bw pair's outputs are assumed concatenated (fw then bw)", label)
    layers = []
    for group in groups:
        try:
            layer = names.tf1_layer(
                group,
                lambda key: checkpoint.tensor(by_name[key]),
                forget_bias=options.get("forget_bias"),
                cell_clip=options.get("cell_clip"),
                proj_clip=options.get("proj_clip"),
                activation=options.get("activation"),
            )
        except LstmconvError as error:
            raise error.within(f'layer "{group.name}"') from None
        if layer.num_directions == 2 and options.get("merge"):
            layer = layer.replace(merge=options["merge"])
        layers.append(layer)
    return layers


STATE_FILE = "checkpoint"


def latest(folder: str) -> str:
    """The prefix a training folder's ``checkpoint`` file (a text ``CheckpointState``) names as
    ``model_checkpoint_path``: what ``tf.train.latest_checkpoint`` reads."""
    state = os.path.join(folder, STATE_FILE)
    if os.path.lexists(state):  # a FIFO would block the open
        require_regular_file(state)
    try:
        with open(state, encoding="utf-8") as file:
            text = file.read(1 << 20)
    except (OSError, UnicodeDecodeError) as error:
        raise FormatError(f"cannot read the checkpoint state file: {error}", where=(state,)) from None
    match = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    if not match:
        raise FormatError("the checkpoint state file names no model_checkpoint_path", where=(state,))
    name = match[1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    prefix = name if os.path.isabs(name) else os.path.join(folder, name)
    root = os.path.realpath(folder)
    if os.path.commonpath([root, os.path.realpath(prefix)]) != root:  # absolute, "..", or a symlink out
        raise UnsafeInputError(
            f"the checkpoint state file names {name!r}, outside the folder: refused",
            where=(state,),
            hint="pass that checkpoint's prefix itself to read it",
        )
    return prefix


def _given_config(config: Any) -> tuple[dict[str, dict[str, Any]], int]:
    """Layer configs from ``config`` (a ``.keras`` archive or a model's JSON, as for Keras
    weights-only files), and the Keras major version whose activations they name."""
    if config is None:
        return {}, 3
    from ..keras import files as keras_files

    model_config, major = keras_files.load_config(os.fspath(config))
    return objects.keras_configs([model_config]), major or 3


def read(source: Any, **options: Any) -> Model:
    """Every recurrent layer of a checkpoint (or of the latest one a training folder's
    ``checkpoint`` file names). Options: ``forget_bias`` (TF1 LSTM, default 1.0),
    ``cell_clip``, ``proj_clip``, ``activation`` (TF1 cells); ``activation``,
    ``recurrent_activation``, ``merge`` (Keras layers, whose configs a checkpoint lacks), or
    ``config``: the model's config (``.keras`` or JSON), which says all of these."""
    path = os.fspath(source)
    if os.path.isdir(path):
        path = latest(path)
    checkpoint = Checkpoint(path)
    configs, major = _given_config(options.get("config"))
    layers = keras_layers(checkpoint, configs, keras_major=major, label=path, options=options)
    if not layers:
        layers = tf1_layers(checkpoint, path, options)
    opaque = [key for key in checkpoint.bundle.entries if key.split("/")[-1].startswith("opaque_kernel")]
    if not layers and opaque:
        raise UnsupportedFeatureError(
            f"{opaque[0]} is a cuDNN opaque parameter buffer without its canonical copy; its layout is "
            "cuDNN's own and changes between CUDA/cuDNN/GPU generations, so lstmconv does not guess it",
            hint="save with tf.compat.v1.train.Saver, which writes CudnnOpaqueParamsSaveable's canonical "
            ".../cudnn_compatible_lstm_cell/kernel and bias beside it",
        )
    checkpoint.say_unread(path)
    if not layers:
        raise FormatError(
            "no recurrent layer found: no Keras kernel/recurrent_kernel and no TF1 cell "
            "(lstm_cell, gru_cell, ...) among its variables",
            hint=f"keys: {', '.join(list(checkpoint.bundle.entries)[:6])}",
        )
    return Model(tuple(layers), path)
