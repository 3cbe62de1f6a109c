"""Porting a whole model into ONNX (issue #16): the hooks :mod:`.live` names. ``port_into``
fills an ``onnx.ModelProto``'s layers, recurrent and plain, as :func:`lstmconv.porting.pair`
pairs them, keeping its graph; ``run_whole`` runs one in onnxruntime; ``write_like`` writes a
model into the layout of an ``.onnx`` template."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...ir import Layer, Model
from ...plain import PlainLayer
from .. import _common
from . import files as onnx_files
from .graph import node_tensors
from .live import Written, _inside, _location, _session, _structure, load, read
from .names import check
from .nodes import Constants, layer_from_node


def port_into(target: onnx.ModelProto, source: Model, pairs: Sequence[tuple[str, str]]) -> onnx.ModelProto:
    """Fill the target's layer named ``pairs[i][0]`` (as :func:`read` names it) with ``source``'s
    layer ``pairs[i][1]``: the initializers of its nodes replaced (dtype kept), the graph as it
    is. Everything is checked before anything changes."""
    from ... import porting

    graph = target.graph
    opset = next((o.version for o in target.opset_import if o.domain in ("", "ai.onnx")), None)
    constants = Constants(graph, lambda tensor: onnx_files.to_array(tensor, None))
    found, names, plain = onnx_files.read_nodes(graph, constants, opset)
    recurrent = dict(zip(names, found))
    present = {layer.name: layer for layer in read(target).everything()}
    given = {layer.name: layer for layer in source.everything()}
    plan: list[tuple[Any, Any, int, np.ndarray]] = []
    for target_name, source_name in pairs:
        layer = given.get(source_name)
        if layer is None or target_name not in present:
            raise _common.UnsupportedFeatureError(
                f"no layer {source_name!r} in the source or {target_name!r} in the target",
                hint="pair the layers with lstmconv.porting.pair(source, read(target))",
            )
        if target_name in recurrent:
            item = recurrent[target_name]
            assert isinstance(layer, Layer)
            check(layer)
            slot = f'{item.node.op_type} node "{target_name}"'
            here = layer_from_node(item.node, item.constants, target_name)
            _common.require_matching(layer, slot, _structure(layer), _structure(here))
            plan.extend((item.graph, item.node, i, value) for i, value in node_tensors(layer).items())
        else:
            assert isinstance(layer, PlainLayer)
            fitted = porting.adapted(layer, present[target_name])  # type: ignore[arg-type]
            for tensor, array in fitted.tensors.items():
                node, index, transposed = plain.slots[target_name][tensor]
                plan.append((graph, node, index, array.T if transposed else array))
    for where, node, index, value in plan:
        _set_input(where, node, index, value)
    return target


def _set_input(graph: onnx.GraphProto, node: onnx.NodeProto, index: int, value: np.ndarray) -> None:
    """Overwrite the initializer at ``node.input[index]`` (its dtype and shape kept); one another
    node shares, or a computed value, is left alone and the node gets a fresh initializer."""
    initializers = {t.name: t for t in graph.initializer}
    name = node.input[index]
    uses = sum(list(other.input).count(name) for other in graph.node)
    tensor = initializers.get(name)
    if tensor is not None and uses == 1 and int(np.prod(tensor.dims, dtype=np.int64)) == value.size:
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        shaped = np.ascontiguousarray(value.astype(dtype)).reshape(tuple(tensor.dims))
        tensor.CopyFrom(numpy_helper.from_array(shaped, name))
        return
    fresh = _common.unique_names([*initializers, f"{node.name or node.output[0]}.input{index}"])[-1]
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), fresh))
    node.input[index] = fresh


def run_whole(obj: Any, x: np.ndarray) -> np.ndarray:
    """Run an ``onnx.ModelProto`` (an ``.onnx`` file, a :class:`Written`) end to end in
    onnxruntime: ``x`` goes to its one data input, cast to that input's type (int64 ids for an
    Embedding); its first output comes back."""
    if isinstance(obj, Written):
        obj = obj.path
    proto = obj if isinstance(obj, onnx.ModelProto) else load(os.fspath(obj))
    held = {t.name for t in proto.graph.initializer}
    data = [info for info in proto.graph.input if info.name not in held]
    if len(data) != 1:
        raise _common.UnsupportedFeatureError(
            f"the model has {len(data)} data inputs ({', '.join(i.name for i in data)}); run_whole feeds one"
        )
    dtype = helper.tensor_dtype_to_np_dtype(data[0].type.tensor_type.elem_type)
    session = _session(proto.SerializeToString() if isinstance(obj, onnx.ModelProto) else os.fspath(obj))
    return np.asarray(session.run(None, {data[0].name: np.asarray(x).astype(dtype)})[0])


def write_like(model: Model, template: str, pairs: Sequence[tuple[str, str]], dest: str) -> None:
    """``dest``: the ``.onnx`` ``template`` (a graph exported from the user's target model) with
    the initializers of its paired layers replaced by ``model``'s; its external data read from
    inside its folder as the reader does, and written beside ``dest`` (``<name>.data``) when the
    template kept any. Written to a temporary file first: nothing half-written."""
    from onnx import external_data_helper

    path = os.fspath(template)
    base = os.path.dirname(os.path.abspath(path))
    proto = load(path)
    external = [t for t in proto.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    for tensor in external:
        _inside(base, _location(tensor))
        external_data_helper.load_external_data_for_tensor(tensor, base)
        tensor.data_location = TensorProto.DEFAULT
        del tensor.external_data[:]
    port_into(proto, model, pairs)
    folder = os.path.dirname(os.path.abspath(os.fspath(dest)))
    name = os.path.basename(os.fspath(dest))
    with tempfile.TemporaryDirectory(prefix=".lstmconv-", dir=folder) as scratch:
        written = os.path.join(scratch, name)
        if external:
            onnx.save_model(
                proto, written, save_as_external_data=True, location=f"{name}.data", size_threshold=1024
            )
            os.replace(os.path.join(scratch, f"{name}.data"), os.path.join(folder, f"{name}.data"))
        else:
            onnx.save_model(proto, written)
        os.replace(written, os.path.join(folder, name))
