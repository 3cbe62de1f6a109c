"""ONNX: ``LSTM``, ``GRU`` and ``RNN`` nodes of any model, and runnable models built from the IR.

The only module of lstmconv that imports onnx (and, to run a model, onnxruntime).
W is (D, G·H, in), R is (D, G·H, H), B is (D, 2·G·H) = [Wb; Rb], P is (D, 3H) in i·o·f order.
"""

from __future__ import annotations

import logging
import mmap
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import __version__
from ..errors import FormatError, LstmconvError, UnsafeInputError, WeightLayoutError, missing
from ..ir import (
    ACTIVATION_SLOTS,
    DEFAULT_ACTIVATIONS,
    Activation,
    Direction,
    Kind,
    Layer,
    Model,
    cell_from_stacked,
)
from ..layouts import Tensor
from . import _common

NAME = "onnx"
EXTENSIONS = (".onnx",)
GATE_ORDER: Mapping[Kind, tuple[str, ...]] = {
    Kind.LSTM: ("i", "o", "f", "g"),
    Kind.GRU: ("z", "r", "n"),
    Kind.RNN: ("h",),
}
PEEPHOLE_ORDER = ("i", "o", "f")
#: The ONNX docs name the LSTM candidate c and the GRU candidate h.
_ONNX_GATE_NAMES = {Kind.LSTM: ("i", "o", "f", "c"), Kind.GRU: ("z", "r", "h"), Kind.RNN: ("h",)}
OPS: Mapping[str, Kind] = {"LSTM": Kind.LSTM, "GRU": Kind.GRU, "RNN": Kind.RNN}
OP_NAMES = {kind: op for op, kind in OPS.items()}
DEFAULT_OPSET = 17
ACTIVATIONS: Mapping[str, str] = {
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Relu": "relu",
    "HardSigmoid": "hard_sigmoid",
    "Affine": "affine",
    "LeakyRelu": "leaky_relu",
    "ThresholdedRelu": "thresholded_relu",
    "ScaledTanh": "scaled_tanh",
    "Elu": "elu",
    "Softsign": "softsign",
    "Softplus": "softplus",
}
_BY_LOWER = {name.lower(): ir_name for name, ir_name in ACTIVATIONS.items()}
_FROM_IR = {ir_name: name for name, ir_name in ACTIVATIONS.items()}
_log = logging.getLogger(__name__)
_GRAPH_FIELD = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
_INITIALIZER_FIELD = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
_RAW_DATA_FIELD = TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number
#: Ops that move or reshape values without changing them.
_SHAPE_OPS = {"Identity", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Expand", "Flatten", "Transpose"}


# -- reading -----------------------------------------------------------------------------------
class _Constants:
    """Values known without running the graph: initializers, Constant nodes, Identity of those."""

    def __init__(
        self, graph: onnx.GraphProto, base_dir: str | None, mapped: dict[str, np.ndarray] | None = None
    ):
        self.base_dir = base_dir
        self.mapped = mapped or {}
        self.tensors: dict[str, TensorProto] = {t.name: t for t in graph.initializer}
        self.producers: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for output in node.output:
                self.producers[output] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            if node.op_type == "Constant":
                value = _constant_value(node)
                if value is not None:
                    self.tensors[node.output[0]] = value

    def get(self, name: str) -> np.ndarray | None:
        seen = 0
        while name not in self.tensors and name in self.producers and seen < 64:
            node = self.producers[name]
            if node.op_type != "Identity":
                return None
            name, seen = node.input[0], seen + 1
        tensor = self.tensors.get(name)
        if tensor is None:
            return None
        raw = self.mapped.get(name)
        if raw is None or tensor.data_location == TensorProto.EXTERNAL:
            return to_array(tensor, self.base_dir)
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        shape = tuple(int(n) for n in tensor.dims)
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if raw.nbytes != expected:
            raise FormatError(
                f"raw_data holds {raw.nbytes} bytes, expected {expected} for shape {shape}", where=(name,)
            )
        return raw.view(dtype.newbyteorder("<")).reshape(shape)

    def is_zero_state(self, name: str, depth: int = 0) -> bool | None:
        """True/False when ``name`` is a known constant state (zeros or not); None if unknown.
        Exporters build zero states from a constant through shape-only ops (Expand, Unsqueeze…)."""
        value = self.get(name)
        if value is not None:
            return not np.any(value)
        node = self.producers.get(name)
        if node is None or depth > 32:
            return None
        if node.op_type == "ConstantOfShape":
            return not np.any(_fill_value(node))
        if node.op_type in _SHAPE_OPS:
            return self.is_zero_state(node.input[0], depth + 1)
        if node.op_type in ("Slice", "Gather"):  # part of zeros is zeros; part of the rest: unknown
            return True if self.is_zero_state(node.input[0], depth + 1) else None
        if node.op_type == "Concat":
            parts = [self.is_zero_state(part, depth + 1) for part in node.input]
            return False if False in parts else (True if all(parts) else None)
        return None


def _constant_value(node: onnx.NodeProto) -> TensorProto | None:
    for attribute in node.attribute:
        if attribute.name == "value":
            return attribute.t
        if attribute.name in ("value_float", "value_floats"):
            data = helper.get_attribute_value(attribute)
            return numpy_helper.from_array(np.asarray(data, dtype=np.float32))
    return None


def _fill_value(node: onnx.NodeProto) -> np.ndarray:
    for attribute in node.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
    return np.zeros(1, dtype=np.float32)


def to_array(tensor: TensorProto, base_dir: str | None) -> np.ndarray:
    """A tensor's values; external data only from inside ``base_dir``, sizes checked first."""
    if tensor.data_location != TensorProto.EXTERNAL:
        try:
            return numpy_helper.to_array(tensor)
        except (ValueError, TypeError) as error:
            raise FormatError(f"tensor data unreadable: {error}", where=(tensor.name,)) from None
    return _external_array(tensor, base_dir)


def _external_array(tensor: TensorProto, base_dir: str | None) -> np.ndarray:
    info = {entry.key: entry.value for entry in tensor.external_data}
    where = (tensor.name,)
    if base_dir is None:
        raise FormatError(
            "the tensor's data is external but the model has no folder",
            where=where,
            hint="read the model from its file",
        )
    location = info.get("location", "")
    root = os.path.realpath(base_dir)
    target = os.path.realpath(os.path.join(root, location))
    if os.path.isabs(location) or os.path.commonpath([root, target]) != root:
        raise UnsafeInputError(
            f"external data {location!r} lies outside the model's folder",
            where=where,
            hint="keep external data files beside the model",
        )
    dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
    shape = tuple(int(d) for d in tensor.dims)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    offset = int(info.get("offset", 0) or 0)
    length = int(info.get("length", expected) or expected)
    if not os.path.isfile(target):
        raise FormatError(f"external data file {location!r} not found", where=where)
    size = os.path.getsize(target)
    if length != expected or offset < 0 or offset + expected > size:
        raise FormatError(
            f"external data holds {max(size - offset, 0)} bytes at offset {offset} (length {length}), "
            f"expected {expected} for shape {shape}",
            where=where,
        )
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(target, dtype=dtype, mode="r", offset=offset, shape=shape)


def _read_varint(buffer: Any, position: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= end or shift > 63:
            raise FormatError("not a readable ONNX model: a varint runs past its message")
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return value, position


def _fields(buffer: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, value start, value end, field end) of each field of a protobuf message;
    the value of a varint or fixed-width field is reported as empty."""
    position = start
    while position < end:
        key, position = _read_varint(buffer, position, end)
        number, wire = key >> 3, key & 7
        value_start = position
        if wire == 0:
            _, position = _read_varint(buffer, position, end)
            value_start = position
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
            value_start = position
        elif wire == 2:
            length, value_start = _read_varint(buffer, position, end)
            position = value_start + length
        else:
            raise FormatError(f"not a readable ONNX model: wire type {wire} where none is expected")
        if position > end:
            raise FormatError("not a readable ONNX model: a field runs past the end of its message")
        yield number, value_start, position, position


def load_mapped(path: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The model without its initializers' raw_data, and those bytes memory-mapped by name.

    A weight's bytes are never copied: onnx parses the rest (graph, nodes, small tensors), and
    the weights are views of the file, read when (and if) they are used."""
    with open(path, "rb") as handle:
        try:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise FormatError("not a readable ONNX model: the file is empty") from None
    head, graph_rest, tensors, mapped = bytearray(), bytearray(), [], {}
    previous = 0
    for number, start, end, field_end in _fields(buffer, 0, len(buffer)):
        field_start, previous = previous, field_end
        if number != _GRAPH_FIELD:
            head += buffer[field_start:field_end]
            continue
        inner_previous = start
        for inner_number, inner_start, inner_end, inner_field_end in _fields(buffer, start, end):
            piece_start, inner_previous = inner_previous, inner_field_end
            if inner_number != _INITIALIZER_FIELD:  # slice only what is kept: never the weights
                graph_rest += buffer[piece_start:inner_field_end]
                continue
            tensor, raw = _tensor_without_raw_data(buffer, inner_start, inner_end)
            tensors.append(tensor)
            if raw is not None:
                mapped[tensor.name] = np.frombuffer(
                    buffer, dtype=np.uint8, count=raw[1] - raw[0], offset=raw[0]
                )
    try:
        proto = onnx.ModelProto.FromString(bytes(head))
        graph = onnx.GraphProto.FromString(bytes(graph_rest))
    except Exception as error:  # protobuf raises DecodeError and others
        raise FormatError(f"not a readable ONNX model: {type(error).__name__}: {error}") from None
    graph.initializer.extend(tensors)
    proto.graph.CopyFrom(graph)
    return proto, mapped


def _tensor_without_raw_data(buffer: Any, start: int, end: int) -> tuple[TensorProto, tuple[int, int] | None]:
    rest, raw, previous = bytearray(), None, start
    for number, value_start, value_end, field_end in _fields(buffer, start, end):
        if number == _RAW_DATA_FIELD:
            raw = (value_start, value_end)
        else:
            rest += buffer[previous:field_end]
        previous = field_end
    try:
        return TensorProto.FromString(bytes(rest)), raw
    except Exception as error:
        raise FormatError(
            f"not a readable ONNX model: an initializer: {type(error).__name__}: {error}"
        ) from None


def load(path: str) -> onnx.ModelProto:
    """Parse an ``.onnx`` file without following its external data (read later, checked)."""
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as error:
        raise FormatError(
            f"not a readable ONNX model: {type(error).__name__}: {error}", where=(path,)
        ) from None


def read(source: Any, **_: Any) -> Model:
    """IR of every LSTM/GRU/RNN node of a ``ModelProto`` or an ``.onnx`` file, in graph order."""
    mapped: dict[str, np.ndarray] = {}
    if isinstance(source, onnx.ModelProto):
        proto, base_dir, label = source, None, source.graph.name or "onnx model"
    else:
        label = os.fspath(source)
        proto, mapped = load_mapped(label)
        base_dir = os.path.dirname(os.path.abspath(label))
    constants = _Constants(proto.graph, base_dir, mapped)
    nodes = recurrent_nodes(proto.graph)
    names = _common.unique_names(name for name, _ in nodes)
    layers = []
    for name, (_original, node) in zip(names, nodes):
        try:
            layers.append(layer_from_node(node, constants, name))
        except LstmconvError as error:
            raise error.within(label) from None
    return Model(tuple(layers), label)


def recurrent_nodes(graph: onnx.GraphProto) -> list[tuple[str, onnx.NodeProto]]:
    """(name, node) of every LSTM/GRU/RNN node of the default domain, in graph order."""
    found = []
    for index, node in enumerate(graph.node):
        if node.op_type in OPS and node.domain in ("", "ai.onnx"):
            found.append((node.name or f"{node.op_type.lower()}_{index}", node))
    return found


def layer_from_node(node: onnx.NodeProto, constants: _Constants, name: str) -> Layer:
    kind = OPS[node.op_type]
    where = f'{node.op_type} node "{name}"'
    try:
        return _layer(node, kind, constants, name)
    except LstmconvError as error:
        raise error.within(where) from None


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        value: Any = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        values[attribute.name] = value
    return values


def _layer(node: onnx.NodeProto, kind: Kind, constants: _Constants, name: str) -> Layer:
    attrs = _attributes(node)
    inputs = list(node.input) + [""] * 8
    try:
        direction = Direction(attrs.get("direction", "forward"))
    except ValueError:
        raise FormatError(
            f"direction {attrs.get('direction')!r} is not forward, reverse or bidirectional",
            where=("direction",),
        ) from None
    count = 2 if direction is Direction.BIDIRECTIONAL else 1
    w = _required(constants, inputs[1], "W")
    r = _required(constants, inputs[2], "R")
    gates = len(GATE_ORDER[kind])
    hidden = int(attrs["hidden_size"]) if "hidden_size" in attrs else int(r.shape[-1] if r.ndim == 3 else 0)
    inputs_size = w.shape[-1] if w.ndim == 3 else -1
    _expect(
        w,
        (count, gates * hidden, inputs_size),
        "W",
        f"hidden_size {hidden} needs {gates}·{hidden} rows",
    )
    _expect(r, (count, gates * hidden, hidden), "R", f"hidden_size {hidden}")
    b = constants.get(inputs[3]) if inputs[3] else None
    if inputs[3] and b is None:
        raise WeightLayoutError("B is computed at run time; expected a constant", where=("B",))
    if b is not None:
        _expect(b, (count, 2 * gates * hidden), "B", "B holds [Wb; Rb]")
    p = None
    if kind is Kind.LSTM and inputs[7]:
        p = _required(constants, inputs[7], "P")
        _expect(p, (count, 3 * hidden), "P", "P holds the i, o, f peepholes")
    for state, label in (
        (inputs[5], "initial_h"),
        (inputs[6] if kind is Kind.LSTM else "", "initial_c"),
    ):
        _check_state(constants, state, label)
    cells = tuple(
        cell_from_stacked(
            GATE_ORDER[kind],
            w[d],
            r[d],
            None if b is None else b[d, : gates * hidden],
            None if b is None else b[d, gates * hidden :],
            peephole=None if p is None else p[d],
            peephole_order=PEEPHOLE_ORDER,
        )
        for d in range(count)
    )
    y_after, reversed_output = _reversal_after(node, constants, direction)
    return Layer(
        kind,
        cells,
        name=name,
        direction=direction,
        merge=_merge_after(y_after, constants) if count == 2 else "concat",
        reversed_output=reversed_output,
        activations=_read_activations(attrs, kind, count),
        clip=_float32(attrs["clip"]) if "clip" in attrs else None,
        input_forget=bool(attrs.get("input_forget", 0)),
        reset_after=bool(attrs.get("linear_before_reset", 0)) if kind is Kind.GRU else True,
    )


def _only_consumer(constants: _Constants, name: str) -> onnx.NodeProto | None:
    consumers = constants.consumers.get(name, [])
    return consumers[0] if len(consumers) == 1 else None


def _ints(constants: _Constants, node: onnx.NodeProto, index: int, attribute: str) -> list[int] | None:
    """An int list given as a constant input (newer opsets) or an attribute (older ones)."""
    if len(node.input) > index and node.input[index]:
        value = constants.get(node.input[index])
        return None if value is None else [int(v) for v in np.ravel(value)]
    return _attributes(node).get(attribute)


def _reversal_after(node: onnx.NodeProto, constants: _Constants, direction: Direction) -> tuple[str, bool]:
    """Whether a reverse layer's Y is flipped in time right after (Keras go_backwards order)."""
    y = node.output[0] if node.output else ""
    after = _only_consumer(constants, y) if y else None
    if direction is not Direction.REVERSE or after is None or after.op_type != "Slice":
        return y, False
    starts, axes, steps = (
        _ints(constants, after, i, a) for i, a in ((1, "starts"), (3, "axes"), (4, "steps"))
    )
    if axes == [0] and steps == [-1] and starts == [-1]:
        return after.output[0], True
    return y, False


_REDUCE_MERGES = {"ReduceSum": "sum", "ReduceProd": "mul", "ReduceMean": "ave"}
_ELEMENTWISE_MERGES = {"Concat": "concat", "Add": "sum", "Mul": "mul"}


def _merge_after(y: str, constants: _Constants) -> str:
    """How the graph merges the two directions of Y (time, 2, batch, H) after the node:
    reduced over axis 1 (lstmconv), transposed and reshaped (PyTorch), or taken apart by
    Slice/Split and joined again by Concat, Add or Mul (tf2onnx)."""
    consumers = constants.consumers.get(y, [])
    after = consumers[0] if len(consumers) == 1 else None
    if after is not None and after.op_type in _REDUCE_MERGES:
        if _ints(constants, after, 1, "axes") == [1] and not _attributes(after).get("keepdims", 1):
            return _REDUCE_MERGES[after.op_type]
        raise _common.UnsupportedFeatureError(
            f"directions merged by {after.op_type} in a form lstmconv does not recognise", where=("Y",)
        )
    if after is not None and after.op_type == "Transpose" and _attributes(after).get("perm") == [0, 2, 1, 3]:
        return "concat"
    branches = _direction_branches(consumers, constants)
    ends = [_past_shape_ops(branch, constants) for branch in branches]
    if len(ends) == 2 and ends[0][0] is not None and ends[0][0] is ends[1][0]:
        joined, positions = ends[0][0], (ends[0][1], ends[1][1])
        merge = _ELEMENTWISE_MERGES.get(joined.op_type)
        if merge == "concat" and positions[0] > positions[1]:
            raise _common.UnsupportedFeatureError("the backward output is concatenated first", where=("Y",))
        if merge:
            return merge
    _log.warning("%s: cannot tell how the graph merges the two directions; assumed concat", y)
    return "concat"


def _direction_branches(consumers: list[onnx.NodeProto], constants: _Constants) -> list[str]:
    """[forward, backward] outputs taken from Y by one Split or two Slice/Gather on axis 1."""
    if len(consumers) == 1 and consumers[0].op_type == "Split" and len(consumers[0].output) == 2:
        return list(consumers[0].output)
    if len(consumers) != 2 or any(node.op_type not in ("Slice", "Gather") for node in consumers):
        return []
    first = []
    for node in consumers:
        index = (
            _ints(constants, node, 1, "starts") if node.op_type == "Slice" else _ints(constants, node, 1, "")
        )
        first.append(index[0] if index else -1)
    if sorted(first) != [0, 1]:
        return []
    return [node.output[0] for _, node in sorted(zip(first, consumers), key=lambda pair: pair[0])]


def _past_shape_ops(name: str, constants: _Constants) -> tuple[onnx.NodeProto | None, int]:
    """The first node after ``name`` that is not a shape-only op, and the input it takes it at."""
    for _ in range(16):
        consumers = constants.consumers.get(name, [])
        if len(consumers) != 1:
            return None, -1
        node = consumers[0]
        if node.op_type not in _SHAPE_OPS:
            return node, list(node.input).index(name)
        name = node.output[0]
    return None, -1


def _required(constants: _Constants, name: str, tensor: str) -> np.ndarray:
    value = constants.get(name) if name else None
    if value is None:
        raise WeightLayoutError(
            "expected a constant (initializer or Constant node), found "
            + ("a computed value" if name else "nothing"),
            where=(tensor,),
            hint="fold constants first, e.g. torch.onnx.export(..., do_constant_folding=True)",
        )
    return value


def _expect(value: np.ndarray, shape: tuple[int, ...], tensor: str, why: str) -> None:
    if value.ndim != len(shape) or any(e >= 0 and e != f for e, f in zip(shape, value.shape)):
        shown = "(" + ", ".join("in" if e < 0 else str(e) for e in shape) + ")"
        raise WeightLayoutError(f"expected {shown}, found {tuple(value.shape)}: {why}", where=(tensor,))


def _check_state(constants: _Constants, name: str, label: str) -> None:
    if not name:
        return
    zero = constants.is_zero_state(name)
    if zero is False:
        raise _common.UnsupportedFeatureError(
            f"a non-zero constant {label}",
            where=(label,),
            hint="lstmconv converts weights; states start at zero",
        )
    if zero is None:
        _log.warning("%s is computed at run time; lstmconv's forms start from a zero state", label)


def _float32(value: float) -> float:
    """The shortest decimal that is the same float32 (ONNX stores 0.2 as 0.2000000029…)."""
    return float(np.format_float_positional(np.float32(value), unique=True))


def _read_activations(attrs: dict[str, Any], kind: Kind, count: int) -> tuple[Activation, ...]:
    slots = len(ACTIVATION_SLOTS[kind])
    names = attrs.get("activations")
    if not names:
        return DEFAULT_ACTIVATIONS[kind]
    if len(names) != slots * count:
        raise WeightLayoutError(
            f"expected {slots * count} activations for {count} direction(s), found {names}",
            where=("activations",),
        )
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    parsed = []
    for onnx_name in names:
        ir_name = _BY_LOWER.get(onnx_name.lower())
        if ir_name is None:
            raise _common.UnsupportedFeatureError(
                f"activation {onnx_name!r} is not an ONNX RNN activation", where=("activations",)
            )
        default_alpha, default_beta = Activation(ir_name).alpha, Activation(ir_name).beta
        alpha = _float32(alphas.pop(0)) if default_alpha is not None and alphas else default_alpha
        beta = _float32(betas.pop(0)) if default_beta is not None and betas else default_beta
        parsed.append(Activation(ir_name, alpha, beta))
    forward, backward = tuple(parsed[:slots]), tuple(parsed[slots:])
    if backward and any(not _common.same_activation(a, b) for a, b in zip(forward, backward)):
        raise _common.UnsupportedFeatureError(
            "different activations per direction",
            where=("activations",),
            hint="lstmconv keeps one set of activations per layer",
        )
    return forward


# -- inspect ---------
def layout(layer: Layer) -> list[Tensor]:
    """The tensors this format stores for ``layer``, for ``inspect``."""
    g, h, i, d = len(layer.gates), layer.hidden_size, layer.input_size, layer.num_directions
    order = "·".join(_ONNX_GATE_NAMES[layer.kind])
    tensors = [Tensor("W", (d, g * h, i), order), Tensor("R", (d, g * h, h), order)]
    if layer.has_bias:
        tensors.append(Tensor("B", (d, 2 * g * h), f"[Wb {order}; Rb {order}]"))
    if layer.has_peepholes:
        tensors.append(Tensor("P", (d, 3 * h), "i·o·f"))
    return tensors


# -- building ----------------------------------------------------------------------------------
def check(layer: Layer) -> None:
    """Raise for what ONNX's LSTM/GRU/RNN cannot express: a projection."""
    if layer.proj_size:
        raise _common.unsupported(
            layer,
            f"a projection (proj_size={layer.proj_size})",
            "ONNX",
            "PyTorch and .npz keep projections",
        )


class _Graph:
    """Nodes and initializers being built. Streaming, the weight initializers are placeholders
    and their bytes stay as the IR's per-gate blocks until the file is written."""

    def __init__(self, stream: bool = False) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.stream = stream
        self.payload: dict[str, list[np.ndarray]] = {}

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, name: str, shape: tuple[int, ...], blocks: list[np.ndarray]) -> str:
        if not self.stream:
            return self.constant(name, np.concatenate([block.ravel() for block in blocks]).reshape(shape))
        tensor = TensorProto(
            name=name, dims=shape, data_type=helper.np_dtype_to_tensor_dtype(blocks[0].dtype)
        )
        self.initializers.append(tensor)
        self.payload[name] = blocks
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, name: str | None = None, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=name or output, **attrs))
        return output


def build(model: Model, *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """A runnable ONNX model of ``model``: input ``input`` (batch, time, features), output
    ``output`` (batch, time, features), native LSTM/GRU/RNN operators, layout 0 (``to_onnx``)."""
    proto = _assemble(model, _Graph(), opset)
    onnx.checker.check_model(proto)
    return proto


def _assemble(model: Model, graph: _Graph, opset: int) -> onnx.ModelProto:
    model.check_chain()
    for layer in model.layers:
        check(layer)
    dtype = model.layers[0].dtype
    x = graph.node("Transpose", ["input"], "time_major", perm=[1, 0, 2])
    prefixes = _common.unique_names(_common.identifier(layer.name) for layer in model.layers)
    for prefix, layer in zip(prefixes, model.layers):
        if layer.dtype != dtype:
            x = graph.node("Cast", [x], f"{prefix}/cast", to=helper.np_dtype_to_tensor_dtype(layer.dtype))
        x = _add_layer(graph, prefix, layer, x, opset)
        dtype = layer.dtype
    graph.node("Transpose", [x], "output", perm=[1, 0, 2])
    elem_in = helper.np_dtype_to_tensor_dtype(model.layers[0].dtype)
    elem_out = helper.np_dtype_to_tensor_dtype(model.layers[-1].dtype)
    proto = helper.make_model_gen_version(
        helper.make_graph(
            graph.nodes,
            "lstmconv",
            [helper.make_tensor_value_info("input", elem_in, ["batch", "time", model.input_size])],
            [
                helper.make_tensor_value_info(
                    "output", elem_out, ["batch", "time", model.layers[-1].output_size]
                )
            ],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="lstmconv",
        producer_version=__version__,
    )
    return proto


#: The node's input position of each weight tensor, and its name.
_WEIGHT_INPUTS = {1: "W", 2: "R", 3: "B", 7: "P"}


def node_blocks(layer: Layer) -> dict[int, tuple[tuple[int, ...], list[np.ndarray]]]:
    """W, R and, where the layer has them, B and P, keyed by their input position on the node,
    each as (shape, the IR's per-gate blocks whose bytes in turn make the tensor)."""
    order, cells = GATE_ORDER[layer.kind], layer.cells
    d, g, h = layer.num_directions, len(order), layer.hidden_size
    tensors: dict[int, tuple[tuple[int, ...], list[np.ndarray]]] = {
        1: ((d, g * h, layer.input_size), [c.w_ih[gate] for c in cells for gate in order]),
        2: ((d, g * h, h), [c.w_hh[gate] for c in cells for gate in order]),
    }
    if layer.has_bias:
        tensors[3] = (
            (d, 2 * g * h),
            [b[gate] for c in cells for b in (c.b_ih, c.b_hh) if b for gate in order],
        )
    if layer.has_peepholes:
        tensors[7] = ((d, 3 * h), [c.peephole[gate] for c in cells if c.peephole for gate in PEEPHOLE_ORDER])
    return tensors


def node_tensors(layer: Layer) -> dict[int, np.ndarray]:
    """W, R and, where the layer has them, B and P as arrays, keyed by their input position."""
    return {
        index: np.concatenate([block.ravel() for block in blocks]).reshape(shape)
        for index, (shape, blocks) in node_blocks(layer).items()
    }


def _add_layer(graph: _Graph, prefix: str, layer: Layer, x: str, opset: int) -> str:
    inputs = [x, "", "", "", "", "", "", ""]
    for index, (shape, blocks) in node_blocks(layer).items():
        inputs[index] = graph.weight(f"{prefix}.{_WEIGHT_INPUTS[index]}", shape, blocks)
    while inputs[-1] == "":
        inputs.pop()
    y = graph.node(OP_NAMES[layer.kind], inputs, f"{prefix}/Y", name=layer.name, **_attributes_of(layer))
    if layer.reversed_output:
        y = graph.node(
            "Slice",
            [
                y,
                *(
                    graph.constant(f"{prefix}.{n}", np.array([v], np.int64))
                    for n, v in (
                        ("starts", -1),
                        ("ends", np.iinfo(np.int64).min),
                        ("axes", 0),
                        ("steps", -1),
                    )
                ),
            ],
            f"{prefix}/Y_reversed",
        )
    return _merge(graph, prefix, layer, y, opset)


def _merge(graph: _Graph, prefix: str, layer: Layer, y: str, opset: int) -> str:
    """(time, D, batch, H) -> (time, batch, features) as the layer merges its directions."""
    if layer.num_directions == 1 or layer.merge != "concat":
        axis = graph.constant(f"{prefix}.direction_axis", np.array([1], np.int64))
    if layer.num_directions == 1:
        return graph.node("Squeeze", [y, axis], f"{prefix}/out")
    if layer.merge == "concat":
        moved = graph.node("Transpose", [y], f"{prefix}/Y_batch_major", perm=[0, 2, 1, 3])
        shape = graph.constant(f"{prefix}.concat_shape", np.array([0, 0, -1], np.int64))
        return graph.node("Reshape", [moved, shape], f"{prefix}/out")
    op = {"sum": "ReduceSum", "mul": "ReduceProd", "ave": "ReduceMean"}[layer.merge]
    if op == "ReduceSum" or opset >= 18:
        return graph.node(op, [y, axis], f"{prefix}/out", keepdims=0)
    return graph.node(op, [y], f"{prefix}/out", axes=[1], keepdims=0)


def _attributes_of(layer: Layer) -> dict[str, Any]:
    attrs: dict[str, Any] = {"hidden_size": layer.hidden_size, "direction": layer.direction.value}
    if layer.activations != DEFAULT_ACTIVATIONS[layer.kind]:
        attrs["activations"] = [_FROM_IR[a.name] for a in layer.activations] * layer.num_directions
        alphas = [a.alpha for a in layer.activations if a.alpha is not None] * layer.num_directions
        betas = [a.beta for a in layer.activations if a.beta is not None] * layer.num_directions
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    if layer.clip is not None:
        attrs["clip"] = layer.clip
    if layer.input_forget:
        attrs["input_forget"] = 1
    if layer.kind is Kind.GRU:
        attrs["linear_before_reset"] = int(layer.reset_after)
    return attrs


def write(model: Model, path: str, *, opset: int = DEFAULT_OPSET, **_: Any) -> None:
    """Save ``to_onnx(model)`` to ``path``, streamed: the graph is checked with ``onnx.checker``
    with its weights standing in as an empty sparse file, then written with each weight's bytes
    taken gate block by gate block from the IR, so no copy of the model is ever made."""
    graph = _Graph(stream=True)
    proto = _assemble(model, graph, opset)
    _check_skeleton(proto, graph.payload)
    with open(path, "wb") as handle:
        _serialize(proto, graph.payload, handle)


def _check_skeleton(proto: onnx.ModelProto, payload: dict[str, list[np.ndarray]]) -> None:
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(proto)
    with tempfile.TemporaryDirectory() as folder:
        stand_in = os.path.join(folder, "weights.bin")
        with open(stand_in, "wb") as handle:
            handle.truncate(max((sum(b.nbytes for b in blocks) for blocks in payload.values()), default=0))
        for tensor in skeleton.graph.initializer:
            if tensor.name in payload:
                tensor.data_location = TensorProto.EXTERNAL
                size = sum(block.nbytes for block in payload[tensor.name])
                for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", str(size))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
        path = os.path.join(folder, "skeleton.onnx")
        onnx.save_model(skeleton, path)
        onnx.checker.check_model(path)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _tag(message: Any, field: str) -> bytes:
    """The wire tag of a length-delimited field, from the message's own descriptor."""
    return _varint(message.DESCRIPTOR.fields_by_name[field].number << 3 | 2)


def _serialize(proto: onnx.ModelProto, payload: dict[str, list[np.ndarray]], handle: Any) -> None:
    """Protobuf wire format by hand, so the big ``raw_data`` fields are written from the blocks.
    Fields may come in any order on the wire; parsers merge them."""
    head = onnx.ModelProto()
    head.CopyFrom(proto)
    head.ClearField("graph")
    graph_head = onnx.GraphProto()
    graph_head.CopyFrom(proto.graph)
    del graph_head.initializer[:]
    pieces: list[tuple[bytes, list[np.ndarray]]] = []  # (bytes before the data, the data's blocks)
    for tensor in proto.graph.initializer:
        blocks = payload.get(tensor.name, [])
        size = sum(block.nbytes for block in blocks)
        encoded = tensor.SerializeToString()
        if blocks:
            encoded += _tag(tensor, "raw_data") + _varint(size)
        pieces.append((_tag(proto.graph, "initializer") + _varint(len(encoded) + size) + encoded, blocks))
    graph_bytes = graph_head.SerializeToString()
    graph_size = len(graph_bytes) + sum(
        len(prefix) + sum(b.nbytes for b in blocks) for prefix, blocks in pieces
    )
    handle.write(head.SerializeToString())
    handle.write(_tag(proto, "graph") + _varint(graph_size))
    handle.write(graph_bytes)
    for prefix, blocks in pieces:
        handle.write(prefix)
        for block in blocks:
            handle.write(np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<")).data)


# -- running and filling -----------------------------------------------------------------------
def run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """Run a model built by :func:`build` on (batch, time, features): onnxruntime, or for
    float64 (which onnxruntime's LSTM/GRU/RNN kernels lack) ONNX's own reference evaluator."""
    dtype = helper.tensor_dtype_to_np_dtype(proto.graph.input[0].type.tensor_type.elem_type)
    feed = {proto.graph.input[0].name: np.asarray(x, dtype=dtype)}
    if dtype == np.float64:
        return _run_reference_evaluator(proto, feed)
    try:
        import onnxruntime
    except ImportError:
        raise missing("onnxruntime", "onnxruntime", "running an ONNX model") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feed)[0]


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
    constants = _Constants(graph, None)
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
            fresh = f"{node.name or node.output[0]}.{_WEIGHT_INPUTS[index]}"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), fresh))
            node.input[index] = fresh


def load_written(path: str) -> onnx.ModelProto:
    """Open an ``.onnx`` file lstmconv wrote, to run it as it is."""
    return load(path)
