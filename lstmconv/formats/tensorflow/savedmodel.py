"""``savedmodel``: a SavedModel folder read as recurrent layers, without TensorFlow, running none
of its functions.

The weights come from ``variables/variables.index`` (a tensor bundle, :mod:`.checkpoint`), the
layer kinds and options from the Keras metadata the folder carries: ``keras_metadata.pb`` (a
``SavedMetadata``: nodes with ``node_path`` and the layer's JSON, tf_keras ≥ 2.5) or else the
``SavedUserObject.metadata`` of the object graph in ``saved_model.pb``
(``SavedModel.meta_graphs[].object_graph_def``, ``saved_object_graph.proto``). A folder with
neither (Keras 3 ``model.export``) is read as a checkpoint is: names and shapes from the
variables, Keras's default activations, said.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ...errors import FormatError
from ...ir import Model
from .._common import parse_json, require_regular_file
from . import checkpoint, objects, wire

SAVED_MODEL = "saved_model.pb"
KERAS_METADATA = "keras_metadata.pb"
#: Far beyond any SavedModel's metadata: refused before reading.
MAX_PROTO = 1 << 31


def _read_file(path: str, what: str) -> bytes:
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise FormatError(f"the SavedModel has no {what}", where=(path,)) from None
    require_regular_file(path)  # a FIFO would block the read, /dev/zero never end
    if size >= MAX_PROTO:
        raise FormatError(f"{what} of {size} bytes is past protobuf's 2 GiB", where=(path,))
    with open(path, "rb") as file:
        return file.read()


def _metadata_from_keras_pb(data: bytes) -> Iterator[str]:
    """SavedMetadata: nodes 1 (SavedObject: node_id 2, node_path 3, identifier 4, metadata 5)."""
    what = "keras_metadata.pb SavedMetadata"
    for node in wire.blobs(wire.message(data, what), 1, what):
        yield wire.text(wire.message(node, what), 5, what)


def _metadata_from_saved_model(data: bytes) -> Iterator[str]:
    """SavedModel.meta_graphs 2 > MetaGraphDef.object_graph_def 7 > SavedObjectGraph.nodes 1 >
    SavedObject.user_object 4 > SavedUserObject.metadata 3."""
    what = "saved_model.pb"
    meta_graphs = wire.blobs(wire.message(data, what), 2, what)
    if not meta_graphs:
        raise FormatError("saved_model.pb holds no MetaGraphDef")
    for meta_graph in meta_graphs:
        graph = wire.blob(wire.message(meta_graph, what), 7, what)
        for node in wire.blobs(wire.message(graph, what), 1, what):
            user_object = wire.blob(wire.message(node, what), 4, what)
            if user_object:
                text = wire.text(wire.message(user_object, what), 3, what)
                if text:
                    yield text


def _configs(texts: Iterator[str]) -> dict[str, dict[str, Any]]:
    """Keras layer configs by layer name, from each object's metadata JSON."""
    entries = []
    for text in texts:
        try:
            entries.append(parse_json(text, "Keras metadata"))
        except ValueError:
            raise FormatError(f"Keras metadata is not JSON: {text[:60]!r}") from None
    return objects.keras_configs(entries)


def read(source: Any, **options: Any) -> Model:
    """Every recurrent layer of a SavedModel folder, in the order its object graph holds them."""
    folder = os.fspath(source)
    saved_model = _read_file(os.path.join(folder, SAVED_MODEL), SAVED_MODEL)
    if not wire.blobs(wire.message(saved_model, SAVED_MODEL), 2, SAVED_MODEL):
        raise FormatError("saved_model.pb holds no MetaGraphDef: not a SavedModel")
    prefix = os.path.join(folder, "variables", "variables")
    if not os.path.lexists(prefix + ".index"):  # a FIFO or device there is refused by the bundle
        raise FormatError("the SavedModel has no variables/variables.index: it holds no weights")
    keras_pb = os.path.join(folder, KERAS_METADATA)
    if os.path.isfile(keras_pb):
        configs = _configs(_metadata_from_keras_pb(_read_file(keras_pb, KERAS_METADATA)))
    else:
        configs = _configs(_metadata_from_saved_model(saved_model))
    variables = checkpoint.Checkpoint(prefix)
    layers = checkpoint.keras_layers(
        variables, configs, keras_major=2 if configs else 3, label=folder, options=options
    )
    if not layers:
        layers = checkpoint.tf1_layers(variables, folder, options)
    variables.say_unread(folder)
    if not layers:
        raise FormatError("no recurrent layer found among the SavedModel's variables")
    return Model(tuple(layers), folder)
