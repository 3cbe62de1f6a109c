"""One recurrent node cut out of the graph it came in, to be run by onnxruntime as it is.

Verification runs the source as the user has it: for an ``.onnx`` file, each LSTM/GRU/RNN node
with its own initializers and attributes, together with the original ops around it that decide
what the layer computes (a reversal of the input before it, the split, join, scaling and
reversal of its output after it), all taken from the original graph. Nothing of lstmconv's
reading goes in, so a misread merge, direction or gate shows as a difference.

The cut starts at the node's input, or above a time reversal that feeds it, and ends at the last
op of the node's epilogue: shape-only ops, the split of the two directions, their join (Concat,
Add, Mul, Max, Sum), a scaling of a sum by a constant, a reduction over the direction axis, a
reversal of time. The output's axes are found once by a probe run with sizes that differ from
every other dimension, and put in (batch, time, features) order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import onnx
from onnx import helper

from ...errors import UnsupportedFeatureError
from .epilogue import Graph, attribute, input_boundary, label, output_end

Runner = Callable[[np.ndarray], np.ndarray]
#: Nodes a cut may hold at most (a hostile graph cannot make the walk large).
_LIMIT = 10_000
#: Initializers larger than this are fed to the cut as inputs, not copied into it.
FED_BYTES = 1 << 16


def runner(
    proto: onnx.ModelProto,
    graph: Graph,
    node: Any,
    dtype: np.dtype,
    prepare: Callable,
    values: Callable[[Any], np.ndarray],
) -> Runner:
    """Run ``node`` as cut from ``proto``: x (batch, time, features) → (batch, time, features).
    ``prepare(model)`` gives a function that runs the ModelProto on a feed (its first output);
    ``values(tensor)`` an initializer's values (the cut's large ones are fed, see :func:`_cut_model`)."""
    layout = attribute(node, "layout", 0)
    x_name, x_axes = input_boundary(graph, node, "tb" if layout == 0 else "bt")
    end = output_end(graph, node)
    cut, fed = _cut_model(proto, graph, node, x_name, end, dtype)
    run = prepare(cut)
    permutation: list[int] | None = None
    constants: dict[str, np.ndarray] = {}
    taken: set[int] | None = None

    def run_cut(x: np.ndarray) -> np.ndarray:
        nonlocal permutation, taken
        batch, steps, features = x.shape
        if taken is None:
            constants.update(_fed_values(fed, values))
            taken = _taken(cut, fed, features)
        feed = {x_name: np.ascontiguousarray(_to_axes(x, x_axes)).astype(dtype, copy=False), **constants}
        if permutation is None and not _distinct(batch, steps, taken):
            permutation = _probe(cut, lambda x: run({**feed, x_name: x}), x_axes, features, dtype, taken)
        out = np.asarray(run(feed))
        if permutation is None:  # this run's sizes tell the axes apart: it is the probe
            permutation = _axes(out.shape, batch, steps, cut.graph.name)
        return out.transpose(permutation).reshape(batch, steps, -1)

    return run_cut


def whole(
    proto: onnx.ModelProto, dtype: np.dtype, prepare: Callable, values: Callable[[Any], np.ndarray]
) -> Runner:
    """Run the whole of ``proto`` (a model of one input and one output, (batch, time, features)
    both) with its large initializers fed as inputs, as a cut has them: the file parsed once
    serves its layers' cuts and the whole run, and onnxruntime is not handed a copy of every
    weight to parse and pack again."""
    graph = proto.graph
    model, fed = _fed_model(
        proto,
        list(graph.node),
        graph.name,
        list(graph.input),
        list(graph.output),
        list(graph.initializer),
        graph.value_info,
    )
    run = prepare(model)
    x_name = graph.input[0].name
    constants: dict[str, np.ndarray] = {}

    def run_whole(x: np.ndarray) -> np.ndarray:
        if not constants:
            constants.update(_fed_values(fed, values))
        return np.asarray(run({x_name: np.asarray(x, dtype=dtype), **constants}))

    return run_whole


def _distinct(batch: int, steps: int, taken: set[int]) -> bool:
    return batch != steps and not {batch, steps} & taken


def _to_axes(x: np.ndarray, axes: str) -> np.ndarray:
    """(batch, time, features) laid out as ``axes`` ("bt": as is, "tb": time first)."""
    return x if axes == "bt" else x.transpose(1, 0, 2)


def _cut_model(
    proto: onnx.ModelProto, graph: Graph, node: Any, x_name: str, end: str, dtype: np.dtype
) -> tuple[onnx.ModelProto, list[Any]]:
    """The smallest model computing ``end`` from ``x_name`` and the graph's constants. The
    node's ``sequence_lens`` and initial states are left out: the reader refuses non-zero
    constant states and warns of computed ones, so what it reads starts from zeros, which an
    absent state is (exporters also bake the traced batch size into their zero states).
    Second: the initializers over :data:`FED_BYTES` (the weights), which the cut takes as inputs
    fed with the file's own values at each run, instead of copying them into the cut (protobuf
    copies, serializes and onnxruntime parses again every byte of a layer's weights: seconds at
    1 GiB)."""
    needed: dict[int, Any] = {}
    initializers: dict[str, Any] = {}
    blanked: set[int] = set()
    resolved: dict[str, bool] = {}

    def resolve(name: str) -> bool:
        if name == "" or name == x_name:
            return True
        if name in resolved:
            return resolved[name]
        resolved[name] = False  # a cycle resolves to nothing
        if name in graph.initializers:
            initializers[name] = graph.initializers[name]
            resolved[name] = True
            return True
        producer = graph.producers.get(name)
        if producer is None or len(needed) > _LIMIT:
            return False
        ok = True
        for index, part in enumerate(producer.input):
            if producer is node and index in (4, 5, 6):  # sequence_lens, initial_h, initial_c
                if part:
                    blanked.add(index)
                continue
            ok = resolve(part) and ok
        if ok:
            needed[id(producer)] = producer
        resolved[name] = ok
        return ok

    if not resolve(end):
        raise UnsupportedFeatureError(
            "the ops around the node take values from elsewhere in the graph, so it cannot be run on its own",
            where=(label(node),),
        )
    nodes: list[Any] = []
    for original in sorted(needed.values(), key=lambda n: graph.order[id(n)]):
        is_node = original is node
        if is_node and blanked:
            copy = onnx.NodeProto()
            copy.CopyFrom(original)
            for index in blanked:
                copy.input[index] = ""
            original = copy
        if is_node and node.op_type == "DynamicQuantizeLSTM":
            nodes.extend(_dequantizing(original, graph, proto))
            continue
        nodes.append(original)
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    return _fed_model(
        proto,
        nodes,
        f"lstmconv cut of {node.name or node.op_type}",
        [helper.make_tensor_value_info(x_name, elem, None)],
        [helper.make_tensor_value_info(end, elem, None)],
        list(initializers.values()),
    )


def _fed_model(
    proto: onnx.ModelProto,
    nodes: list[Any],
    name: str,
    inputs: list[Any],
    outputs: list[Any],
    initializers: list[Any],
    value_info: Iterable[Any] = (),
) -> tuple[onnx.ModelProto, list[Any]]:
    """A model of ``nodes`` in ``proto``'s opsets, whose ``initializers`` over :data:`FED_BYTES`
    are inputs (the second value: fed with the file's own values at each run), the rest kept."""
    fed = [t for t in initializers if stored_bytes(t) > FED_BYTES]
    declared = {value.name for value in inputs}
    graph_proto = helper.make_graph(
        nodes,
        name,
        [
            *inputs,
            *(
                helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                for t in fed
                if t.name not in declared
            ),
        ],
        outputs,
        initializer=[t for t in initializers if stored_bytes(t) <= FED_BYTES],
        value_info=list(value_info),
    )
    model = helper.make_model(graph_proto, opset_imports=list(proto.opset_import))
    model.ir_version = proto.ir_version
    model.functions.extend(proto.functions)
    return model, fed


def _fed_values(fed: list[Any], values: Callable[[Any], np.ndarray]) -> dict[str, np.ndarray]:
    """The fed initializers' values as onnxruntime takes them: bfloat16 widened to float32
    (exactly; a bfloat16 graph is run as float32, see :func:`.live.widened`), else as stored."""
    found = {tensor.name: values(tensor) for tensor in fed}
    return {
        name: array.astype(np.float32) if array.dtype.name == "bfloat16" else np.ascontiguousarray(array)
        for name, array in found.items()
    }


def stored_bytes(tensor: Any) -> int:
    """At most what an initializer's values take: 8 bytes an element (its raw data or its typed
    values), from its dims alone."""
    return int(np.prod(tensor.dims, dtype=np.int64)) * 8


def _probe(
    cut: onnx.ModelProto, run: Callable, x_axes: str, features: int, dtype: np.dtype, taken: set[int]
) -> list[int]:
    """The axis order that puts the cut's output in (batch, time, features) order, found by
    one run with a batch size and a length that no other dimension has."""
    sizes = [n for n in range(5, 10_000) if n not in taken]
    batch, steps = sizes[0], sizes[1]
    x = np.zeros((batch, steps, features), dtype=dtype)
    out = np.asarray(run(np.ascontiguousarray(_to_axes(x, x_axes))))
    return _axes(out.shape, batch, steps, cut.graph.name)


def _axes(shape: tuple[int, ...], batch: int, steps: int, where: str) -> list[int]:
    found = list(shape)
    if found.count(batch) != 1 or found.count(steps) != 1:
        raise UnsupportedFeatureError(
            f"the output of the node's epilogue has shape {tuple(found)}, not (batch, time, features)",
            where=(where,),
        )
    first = [found.index(batch), found.index(steps)]
    return first + [axis for axis in range(len(found)) if axis not in first]


def _taken(cut: onnx.ModelProto, fed: list[Any], features: int) -> set[int]:
    """Every size that the cut's output could have besides the batch and the length."""
    constants = [
        a.t for n in cut.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
    ]
    tensors = [*cut.graph.initializer, *constants]
    taken = {1, 2, features, *_dimensions([*tensors, *fed])}
    small = [t for t in tensors if int(np.prod(t.dims, dtype=np.int64)) <= 64]  # numbers that may become dims
    taken.update(int(v) for t in small for v in _values(t) if 0 < v < 10_000)
    return taken


def _dimensions(tensors: Iterable[Any]) -> set[int]:
    dims: set[int] = set()
    for tensor in tensors:
        dims.update(int(d) for d in tensor.dims)
        dims.update(d // 2 for d in tensor.dims)  # the hidden size of a bidirectional join
        dims.update(d // 3 for d in tensor.dims)
        dims.update(d // 4 for d in tensor.dims)
        dims.update(d // 6 for d in tensor.dims)
        dims.update(d // 8 for d in tensor.dims)
    return dims


def _values(tensor: Any) -> list[int]:
    """The values of a small Constant (its numbers may become dims once folded: Slice bounds)."""
    from onnx import numpy_helper

    try:
        return [int(v) for v in np.ravel(numpy_helper.to_array(tensor)) if np.isfinite(v)]
    except (ValueError, TypeError, OverflowError):
        return []


def _dequantizing(node: Any, graph: Graph, proto: onnx.ModelProto) -> list[Any]:
    """onnxruntime's DynamicQuantizeLSTM as ONNX ops: each int8 weight dequantized by the graph
    itself ((W_q - zero_point) · scale, by Cast, Sub, Mul), transposed from (D, in, 4H) to
    (D, 4H, in), into a float LSTM node with the same attributes. The source then runs its
    stored integers, scales and zero points as the quantized op defines its weights, without
    quantizing the activations (which no float layer does)."""
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 17)
    made: list[Any] = []
    weights = []
    for position, scale_at in ((1, 8), (2, 10)):
        q, scale, zero = node.input[position], node.input[scale_at], node.input[scale_at + 1]
        rank = len(graph.initializers[scale].dims) if scale in graph.initializers else 1
        base = f"{node.name}/dequantized_{position}"
        axes = [1, 2] if rank == 1 else [1]
        made += [
            helper.make_node("Cast", [q], [f"{base}/q"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Cast", [zero], [f"{base}/zero"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Sub", [f"{base}/q", f"{base}/zero_b"], [f"{base}/centered"]),
            helper.make_node("Mul", [f"{base}/centered", f"{base}/scale_b"], [f"{base}/scaled"]),
            helper.make_node("Transpose", [f"{base}/scaled"], [f"{base}/W"], perm=[0, 2, 1]),
        ]
        for name, source in (("zero_b", f"{base}/zero"), ("scale_b", scale)):
            if opset >= 13:
                axes_name = f"{base}/{name}_axes"
                made.insert(
                    0,
                    helper.make_node(
                        "Constant",
                        [],
                        [axes_name],
                        value=helper.make_tensor(axes_name, onnx.TensorProto.INT64, [len(axes)], axes),
                    ),
                )
                made.append(helper.make_node("Unsqueeze", [source, axes_name], [f"{base}/{name}"]))
            else:
                made.append(helper.make_node("Unsqueeze", [source], [f"{base}/{name}"], axes=axes))
        weights.append(f"{base}/W")
    inputs = [node.input[0], *weights, *list(node.input)[3:8]]
    while inputs and inputs[-1] == "":
        inputs.pop()
    lstm = helper.make_node("LSTM", inputs, list(node.output), name=node.name)
    lstm.attribute.extend(node.attribute)
    # the Sub/Mul need their broadcast operands first: put the Unsqueezes before them
    order = {"Constant": 0, "Cast": 1, "Unsqueeze": 2, "Sub": 3, "Mul": 4, "Transpose": 5}
    return [*sorted(made, key=lambda n: order[n.op_type]), lstm]
