"""ONNX live: ``ModelProto`` objects read, runnable models built from the IR, written and run.

With :mod:`.cut` and :mod:`.whole`, the only modules of lstmconv that import onnx (and, to run
a model, onnxruntime). Building the graph lives in ``graph`` (the plain layers' nodes in
:mod:`.plain_out`), writing it in ``stream`` (encoded by ``proto``), porting a whole model in
``whole``. Files are read by :mod:`.files` and graphs by :mod:`.nodes` (the plain layers by
:mod:`.around`): none needs the onnx package. Here ``onnx.checker`` checks a written file in
verification (:func:`check_written`).
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ... import dtypes
from ...errors import FormatError, VerificationError, missing
from ...ir import Layer, Model
from .. import _common
from . import files as onnx_files
from . import proto as proto_messages
from . import stream
from .graph import Graph, assemble, node_tensors
from .names import WEIGHT_INPUTS, check
from .nodes import Constants, found_nodes, layer_from_node, recurrent_nodes


def read(source: Any, **_: Any) -> Model:
    """IR of every LSTM/GRU/RNN node of a ``ModelProto`` or an ``.onnx`` file, in graph order."""
    if isinstance(source, onnx.ModelProto):
        opset = next((o.version for o in source.opset_import if o.domain in ("", "ai.onnx")), None)
        return onnx_files.read_graph(source.graph, None, source.graph.name or "onnx model", opset=opset)
    return onnx_files.read(source)


def build(
    model: Model, *, opset: int | None = None, input_name: str | None = None, output_name: str | None = None
) -> onnx.ModelProto:
    """A runnable ONNX model of ``model``: input ``input`` (batch, time, features), output
    ``output`` (batch, time, features), native LSTM/GRU/RNN operators, layout 0 (``to_onnx``).
    Checked with ``onnx.checker`` before the weights go in (a model past 2 GiB can be held, not
    serialized: :func:`write` saves it with external data)."""
    graph = Graph()
    skeleton = assemble(model, graph, opset, input_name, output_name)
    with tempfile.TemporaryDirectory() as folder:
        check_skeleton(skeleton, graph.payload, folder)
    proto = onnx.ModelProto.FromString(skeleton.encode())
    for tensor in proto.graph.initializer:
        if tensor.name in graph.payload:
            tensor.raw_data = b"".join(dtypes.little_endian_bytes(b) for b in graph.payload[tensor.name])
    return proto


def check_skeleton(skeleton: proto_messages.ModelProto, payload: stream.Payload, folder: str) -> None:
    """``onnx.checker`` on the model with its weights standing in as an empty sparse file."""
    pointed = copy.deepcopy(skeleton)
    offsets = stream.point_external(pointed, payload, "weights.bin")
    end = max((offsets[name] + sum(b.nbytes for b in payload[name]) for name in offsets), default=0)
    with open(os.path.join(folder, "weights.bin"), "wb") as handle:
        handle.truncate(end)
    path = os.path.join(folder, "skeleton.onnx")
    with open(path, "wb") as handle:
        handle.write(pointed.encode())
    onnx.checker.check_model(path)


#: The file :func:`check_written` parsed, for :func:`layer_runners` to take: (identity, proto).
_PARSED: list[tuple[tuple[int, ...], onnx.ModelProto]] = []


def check_written(path: str) -> None:
    """``onnx.checker`` on a written file: part of verification. The file's :func:`skeleton` is
    parsed once (kept for :func:`layer_runners`, which runs it); the checker is given it with
    each large weight standing in as external data of a sparse file, its extent in the file
    checked against its shape first (checking a 1 GiB model by path parses it all again: 3-9 s).
    A model with external data files of its own is checked by path, its weights not read."""
    del _PARSED[:]
    proto = skeleton(path)
    try:
        if any(_external_file(t) for t in proto.graph.initializer):
            onnx.checker.check_model(path)
        else:
            base = os.path.dirname(os.path.abspath(path))
            with tempfile.TemporaryDirectory(prefix="lstmconv-check-") as folder:
                onnx.checker.check_model(_weights_pointed(proto, base, folder))
    except onnx.checker.ValidationError as error:
        raise VerificationError(f"onnx.checker refuses the written model: {error}", where=(path,)) from None
    _PARSED.append((_identity(path), proto))


def skeleton(path: str) -> onnx.ModelProto:
    """The model in ``path`` parsed by onnx without its large weights' bytes: each initializer
    over :data:`.cut.FED_BYTES` stays in the file, marked as external data of the file itself
    (:func:`.files.skeleton`), and is read as a view of the file by :func:`.files.to_array`."""
    from . import cut

    try:
        return onnx.ModelProto.FromString(onnx_files.skeleton(path, cut.FED_BYTES))
    except FormatError:
        raise
    except Exception as error:
        raise FormatError(
            f"not a readable ONNX model: {type(error).__name__}: {error}", where=(path,)
        ) from None


def _in_place(tensor: TensorProto) -> bool:
    return onnx_files.is_in_place(tensor)


def _external_file(tensor: TensorProto) -> bool:
    """Whether the tensor's values lie in an external data file (not left in place by a skeleton)."""
    return tensor.data_location == TensorProto.EXTERNAL and not _in_place(tensor)


def _parsed(path: str) -> onnx.ModelProto:
    """The file as :func:`check_written` parsed it (taken: held no longer), or its skeleton now."""
    kept = _PARSED.pop() if _PARSED else None
    if kept is not None and kept[0] == _identity(path):
        return kept[1]
    return skeleton(path)


def _identity(path: str) -> tuple[int, ...]:
    status = os.stat(path)
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _weights_pointed(proto: onnx.ModelProto, base: str, folder: str) -> str:
    """``proto`` (a skeleton of a file in ``base``) saved in ``folder`` with each weight left in
    place as external data of one sparse file (the rest copied as it is); the saved path."""
    pointed = onnx.ModelProto()
    _copy_fields(proto, pointed, skip="graph")
    _copy_fields(proto.graph, pointed.graph, skip="initializer")
    offset = 0
    for tensor in proto.graph.initializer:
        if not _in_place(tensor):
            pointed.graph.initializer.add().CopyFrom(tensor)
            continue
        size = onnx_files.to_array(tensor, base).nbytes  # its extent in the file against its dims and type
        stand_in = pointed.graph.initializer.add()
        _copy_fields(tensor, stand_in, skip="external_data")
        for key, value in (("location", "weights.bin"), ("offset", str(offset)), ("length", str(size))):
            entry = stand_in.external_data.add()
            entry.key, entry.value = key, value
        offset += size
    with open(os.path.join(folder, "weights.bin"), "wb") as handle:
        handle.truncate(offset)
    model_path = os.path.join(folder, "model.onnx")
    with open(model_path, "wb") as handle:
        handle.write(pointed.SerializeToString())
    return model_path


def _copy_fields(source: Any, into: Any, skip: str) -> None:
    """Every field of the message ``source`` set on ``into``, except ``skip``."""
    for field, value in source.ListFields():
        if field.name == skip:
            continue
        if field.is_repeated:
            getattr(into, field.name).extend(value)
        elif field.type == field.TYPE_MESSAGE:
            getattr(into, field.name).CopyFrom(value)
        else:
            setattr(into, field.name, value)


def write(model: Model, path: str, **options: Any) -> None:
    """:func:`.stream.write` (which needs no onnx package), then ``onnx.checker`` on the file."""
    stream.write(model, path, **options)
    check_written(path)


def load(path: str) -> onnx.ModelProto:
    """Parse an ``.onnx`` file without following its external data (read later, checked)."""
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as error:
        raise FormatError(
            f"not a readable ONNX model: {type(error).__name__}: {error}", where=(path,)
        ) from None


def runnable(model: Model) -> onnx.ModelProto | Written:
    """What verification runs for ``model``: :func:`build`'s model, or past protobuf's 2 GiB
    (which onnxruntime cannot take as bytes) the model written with external data into a
    temporary folder, removed with the returned object."""
    if not stream.past_protobuf(model):
        return build(model)
    folder = tempfile.TemporaryDirectory(prefix="lstmconv-")
    path = os.path.join(folder.name, "model.onnx")
    write(model, path, external_data=True)
    written = Written(path)
    written.folder = folder
    return written


class Written:
    """An ``.onnx`` file lstmconv wrote, run from its path so that external data beside it is found."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.proto = load(path)
        self.session: Any = None  # made on the first run, kept for the next ones
        self.folder: Any = None  # a temporary folder holding the file, removed with this object


def run(model: onnx.ModelProto | Written, x: np.ndarray) -> np.ndarray:
    """Run a model built by :func:`build` (or a file written by :func:`write`) on (batch, time,
    features): onnxruntime, or for float64 (which onnxruntime's LSTM/GRU/RNN kernels lack)
    ONNX's own reference evaluator. A bfloat16 model runs widened to float32 (see :func:`widened`)."""
    proto = model.proto if isinstance(model, Written) else model
    dtype = helper.tensor_dtype_to_np_dtype(proto.graph.input[0].type.tensor_type.elem_type)
    if dtype == np.float64:
        whole = onnx.load(model.path) if isinstance(model, Written) else proto
        return _run_reference_evaluator(whole, {proto.graph.input[0].name: np.asarray(x, dtype=dtype)})
    session = model.session if isinstance(model, Written) else None
    if session is None:
        session = _session(_runnable(model))
        if isinstance(model, Written):
            model.session = session
    wanted = np.float32 if dtype.name == "bfloat16" else dtype
    return session.run(None, {proto.graph.input[0].name: np.asarray(x, dtype=wanted)})[0]


def running_note(model: Model) -> str | None:
    """What the report should say about how this format runs ``model``."""
    if any(layer.dtype.name == "bfloat16" for layer in model):
        return (
            "onnxruntime has no bfloat16 LSTM/GRU/RNN kernel: the ONNX graph ran with its bfloat16 "
            "weights widened to float32, which holds them exactly"
        )
    return None


def _runnable(model: onnx.ModelProto | Written) -> bytes | str:
    """What onnxruntime is given: the file's path (its external data beside it) or the bytes."""
    proto = model.proto if isinstance(model, Written) else model
    bfloat16 = proto.graph.input[0].type.tensor_type.elem_type == TensorProto.BFLOAT16 or any(
        tensor.data_type == TensorProto.BFLOAT16 for tensor in proto.graph.initializer
    )
    if not bfloat16:
        return model.path if isinstance(model, Written) else model.SerializeToString()
    return widened(onnx.load(model.path) if isinstance(model, Written) else proto).SerializeToString()


def widened(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every bfloat16 (weights, Casts, inputs and outputs) made float32: the
    same numbers, since each bfloat16 is a float32 with its low 16 bits zero."""
    wide = onnx.ModelProto()
    wide.CopyFrom(proto)
    graph = wide.graph
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.BFLOAT16:
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(onnx_files.to_array(tensor, None).astype(np.float32), tensor.name)
            )
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == TensorProto.BFLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.BFLOAT16:
                attribute.i = TensorProto.FLOAT
    return wide


def _session(model: bytes | str) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise missing("onnxruntime", "onnxruntime", "running an ONNX model") from None
    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:  # nothing is to be written or sent outside the output paths
        disable()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _run_reference_evaluator(proto: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    # onnx.reference ignores activations, clip and input_forget: refuse rather than mislead.
    for _, node in recurrent_nodes(proto.graph):
        used = {a.name for a in node.attribute} & {"activations", "clip", "input_forget"}
        if used:
            raise _common.UnsupportedFeatureError(
                f"no runtime here runs a float64 {node.op_type} with {', '.join(sorted(used))} "
                "(onnxruntime has no float64 kernel; onnx.reference ignores those attributes)",
                where=(f'{node.op_type} node "{node.name}"',),
                hint="use float32 weights to run it",
            )
    from onnx.reference import ReferenceEvaluator

    outputs: list[Any] = list(ReferenceEvaluator(proto).run(None, feed))
    return np.asarray(outputs[0])


def load_into(
    target: onnx.ModelProto, model: Model, mapping: Mapping[str, str] | None = None
) -> onnx.ModelProto:
    """Fill the LSTM/GRU/RNN nodes of ``target`` with ``model``'s layers, in order or by
    ``mapping`` (node name → model layer name). Everything is checked before anything changes."""
    graph = target.graph
    constants = Constants(graph, lambda tensor: onnx_files.to_array(tensor, None))
    nodes = recurrent_nodes(graph)
    plan = []
    for position, layer in _common.pair_slots([name for name, _ in nodes], model, mapping):
        name, node = nodes[position]
        check(layer)
        present = layer_from_node(node, constants, name)
        _common.require_matching(
            layer, f'{node.op_type} node "{name}"', _structure(layer), _structure(present)
        )
        plan.append((node, layer))
    for node, layer in plan:
        _replace_weights(graph, node, layer)
    return target


def _structure(layer: Layer) -> dict[str, object]:
    return {
        **_common.structure(layer),
        "activations": [str(a) for a in layer.activations],
        "peepholes": layer.has_peepholes,
        "clip": layer.clip,
        "input_forget": layer.input_forget,
    }


def _replace_weights(graph: onnx.GraphProto, node: onnx.NodeProto, layer: Layer) -> None:
    """Overwrite the node's weight initializers; one shared with another node, or a Constant
    node's value, is left alone and the node gets a fresh initializer instead."""
    initializers = {t.name: t for t in graph.initializer}
    uses: dict[str, int] = {}
    for other in graph.node:
        for name in other.input:
            uses[name] = uses.get(name, 0) + 1
    for index, value in node_tensors(layer).items():
        name = node.input[index]
        if name in initializers and uses.get(name) == 1:
            tensor = initializers[name]
            dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
            tensor.CopyFrom(numpy_helper.from_array(value.astype(dtype), name))
        else:
            fresh = f"{node.name or node.output[0]}.{WEIGHT_INPUTS[index]}"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), fresh))
            node.input[index] = fresh


def load_written(path: str) -> Written:
    """Open an ``.onnx`` file lstmconv wrote, to run it as it is."""
    return Written(path)


def is_runnable(obj: Any) -> bool:
    """A live ModelProto is not run as it is: its graph may hold more than the recurrent nodes."""
    return False


# -- the source as given, layer by layer (verification) -------------------------------------------
def layer_runners(source: Any, model: Model) -> tuple[str, dict[str, Any], Any]:
    """A run function for each of ``model``'s layers from ``source`` as the user has it: each
    LSTM/GRU/RNN node cut from the original graph with its own initializers and the original ops
    around it (see :mod:`.cut`), run by onnxruntime (float64: ONNX's reference evaluator)."""
    from . import cut

    base = (
        None if isinstance(source, onnx.ModelProto) else os.path.dirname(os.path.abspath(os.fspath(source)))
    )
    proto = source if base is None else _parsed(os.fspath(source))
    found = found_nodes(proto.graph, Constants(proto.graph, lambda tensor: onnx_files.to_array(tensor, base)))
    names = _common.unique_names(f.name for f in found)
    layers = {layer.name: layer for layer in model}
    scopes: dict[int, cut.Graph] = {}

    def scope_of(graphs: tuple[Any, ...]) -> cut.Graph:
        """The cut view of the innermost of ``graphs``, seeing every scope around it."""
        view: cut.Graph | None = None
        for graph in graphs:
            if id(graph) not in scopes:
                scopes[id(graph)] = cut.Graph(graph, view)
            view = scopes[id(graph)]
        assert view is not None
        return view

    runners = {
        name: cut.runner(
            proto,
            scope_of((*f.scopes, f.graph)),
            f.node,
            _run_dtype(layers[name]),
            lambda m: _run_cut(m, base),
            lambda tensor: onnx_files.to_array(tensor, base),
        )
        for name, f in zip(names, found)
        if name in layers
    }
    whole = None
    written = proto.producer_name == "lstmconv" and len(proto.graph.input) == 1 and base is not None
    if written and len(model.chains()) == 1 and not model.around:  # the recurrent layers alone
        whole = cut.whole(
            proto,
            _run_dtype(model.layers[0]),
            lambda m: _run_cut(m, base),
            lambda tensor: onnx_files.to_array(tensor, base),
        )
    return "onnxruntime", runners, whole


def _run_dtype(layer: Layer) -> np.dtype:
    return np.dtype(np.float32) if layer.dtype.name == "bfloat16" else layer.dtype


def _run_cut(proto: onnx.ModelProto, base: str | None) -> Any:
    """A function running ``proto`` on a feed: one onnxruntime session, made on the first run.
    Weights kept as external data are read into the cut model (a layer is far below protobuf's
    2 GiB); a cut past that is saved in a temporary folder with hard links to the data files."""
    sessions: list[Any] = []

    def run_feed(feed: dict[str, np.ndarray]) -> np.ndarray:
        if not sessions:
            sessions.append(_with_external_data(proto, base))
        model = sessions[0]
        if next(iter(feed.values())).dtype == np.float64:
            whole = onnx.load(model.path) if isinstance(model, Written) else model
            return _run_reference_evaluator(whole, feed)
        if len(sessions) == 1:
            sessions.append(_session(_runnable(model)))
        return sessions[1].run(None, feed)[0]

    return run_feed


def _with_external_data(proto: onnx.ModelProto, base: str | None) -> onnx.ModelProto | Written:
    from onnx import external_data_helper

    external = [t for t in proto.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert not any(_in_place(t) for t in external), "a weight left in place is fed, never kept in a cut"
    if not external:
        return proto
    if base is None:
        raise _common.UnsupportedFeatureError("external data of a model held in memory")
    size = sum(int(np.prod(t.dims, dtype=np.int64)) * 4 for t in external)
    if size < stream.EXTERNAL_THRESHOLD:
        for tensor in external:
            _inside(base, _location(tensor))
            external_data_helper.load_external_data_for_tensor(tensor, base)
            tensor.data_location = TensorProto.DEFAULT
            del tensor.external_data[:]
        return proto
    folder = tempfile.TemporaryDirectory(prefix="lstmconv-cut-")
    for location in sorted({_location(t) for t in external}):
        os.makedirs(os.path.dirname(os.path.join(folder.name, location)), exist_ok=True)
        os.link(_inside(base, location), os.path.join(folder.name, location))
    path = os.path.join(folder.name, "cut.onnx")
    onnx.save(proto, path)
    written = Written(path)
    written.folder = folder
    return written


def _location(tensor: TensorProto) -> str:
    return next((entry.value for entry in tensor.external_data if entry.key == "location"), "")


def _inside(base: str, location: str) -> str:
    """The path of external data ``location`` of a model in ``base``, which must lie inside it."""
    root = os.path.realpath(base)
    target = os.path.realpath(os.path.join(base, location))
    if os.path.commonpath([root, target]) != root:
        raise _common.UnsupportedFeatureError("external data outside the model's folder", where=(location,))
    return target


# the hooks that port a whole model (issue #16) live in .whole; named here, as every family's are
from .whole import port_into, run_whole, write_like  # noqa: E402

__all__ = ["port_into", "run_whole", "write_like"]
