"""Reading ONNX graphs, without the onnx package: every LSTM/GRU/RNN node, its weights as
constants, and what the ops around it say (how the two directions merge, whether a reverse
layer's output is flipped). Nodes, attributes and tensors are read by their field names, so
this works on :mod:`.files`' messages and on onnx's own ``ModelProto`` alike."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ... import steps
from ...errors import FormatError, LstmconvError, WeightLayoutError
from ...ir import ACTIVATION_SLOTS, DEFAULT_ACTIVATIONS, Activation, Direction, Kind, Layer, cell_from_stacked
from .. import _common
from .names import ATTRIBUTE_FIELDS, BY_LOWER, GATE_ORDER, OPS, PEEPHOLE_ORDER, SHAPE_OPS

_log = logging.getLogger("lstmconv.formats.onnx")
Node = Any  # a NodeProto of onnx, or files.Node: the same field names


class Constants:
    """Values known without running the graph: initializers, Constant nodes, Identity of those.
    ``to_array`` turns a tensor message into its values (checked, external data resolved)."""

    def __init__(self, graph: Any, to_array: Callable[[Any], np.ndarray]):
        self.to_array = to_array
        self.tensors: dict[str, Any] = {t.name: t for t in graph.initializer}
        self.values: dict[str, np.ndarray] = {}
        self.producers: dict[str, Node] = {}
        self.consumers: dict[str, list[Node]] = {}
        self._zero_states: dict[str, bool | None] = {}
        for node in graph.node:
            for output in node.output:
                self.producers[output] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            if node.op_type == "Constant" and node.output:
                self._constant(node)

    def _constant(self, node: Node) -> None:
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.t is not None:
                self.tensors[node.output[0]] = attribute.t
            elif attribute.name in ("value_float", "value_floats"):
                self.values[node.output[0]] = np.asarray(attribute_value(attribute), dtype=np.float32)

    def get(self, name: str) -> np.ndarray | None:
        seen = 0
        while name not in self.tensors and name not in self.values and name in self.producers and seen < 64:
            node = self.producers[name]
            if node.op_type != "Identity":
                return None
            name, seen = node.input[0], seen + 1
        if name in self.values:
            return self.values[name]
        tensor = self.tensors.get(name)
        return None if tensor is None else self.to_array(tensor)

    def is_zero_state(self, name: str, depth: int = 0) -> bool | None:
        """True/False when ``name`` is a known constant state (zeros or not); None if unknown.
        Exporters build zero states from a constant through shape-only ops (Expand, Unsqueeze…).
        Each name is answered once (``Concat(x, x)`` chained 40 times is 2^40 paths, 40 names)."""
        if name in self._zero_states:
            return self._zero_states[name]
        answer = self._is_zero_state(name, depth)
        self._zero_states[name] = answer
        return answer

    def _is_zero_state(self, name: str, depth: int) -> bool | None:
        value = self.get(name)
        if value is not None:
            return not np.any(value)
        node = self.producers.get(name)
        if node is None or depth > 32:
            return None
        if node.op_type == "ConstantOfShape":
            return not np.any(self._fill_value(node))
        if node.op_type in SHAPE_OPS:
            return self.is_zero_state(node.input[0], depth + 1)
        if node.op_type in ("Slice", "Gather"):  # part of zeros is zeros; part of the rest: unknown
            return True if self.is_zero_state(node.input[0], depth + 1) else None
        if node.op_type == "Concat":
            parts = [self.is_zero_state(part, depth + 1) for part in node.input]
            return False if False in parts else (True if all(parts) else None)
        return None

    def _fill_value(self, node: Node) -> np.ndarray:
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.t is not None:
                return self.to_array(attribute.t)
        return np.zeros(1, dtype=np.float32)


def attribute_value(attribute: Any) -> Any:
    """The value an attribute holds, by its declared type (as ``onnx.helper.get_attribute_value``)."""
    field = ATTRIBUTE_FIELDS.get(attribute.type)
    if field is None:
        raise FormatError(
            f"attribute {attribute.name!r} has type {attribute.type}, which lstmconv does not read"
        )
    value = getattr(attribute, field)
    return list(value) if field in ("floats", "ints", "strings") else value


def recurrent_nodes(graph: Any) -> list[tuple[str, Node]]:
    """(name, node) of every LSTM/GRU/RNN node of the default domain, in graph order."""
    found = []
    for index, node in enumerate(graph.node):
        if node.op_type in OPS and node.domain in ("", "ai.onnx"):
            found.append((node.name or f"{node.op_type.lower()}_{index}", node))
    return found


def layer_from_node(node: Node, constants: Constants, name: str) -> Layer:
    kind = OPS[node.op_type]
    where = f'{node.op_type} node "{name}"'
    try:
        return _layer(node, kind, constants, name)
    except LstmconvError as error:
        raise error.within(where) from None


def _attributes(node: Node) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        if attribute.type not in ATTRIBUTE_FIELDS:  # graphs, sparse tensors: nothing lstmconv reads
            continue
        value: Any = attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode(errors="replace") for v in value]
        values[attribute.name] = value
    return values


def _layer(node: Node, kind: Kind, constants: Constants, name: str) -> Layer:
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
    if hidden < 1:
        raise FormatError(f"hidden_size {hidden} is not a positive number of units", where=("hidden_size",))
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
    halves = [(None, None)] * count if b is None else [steps.split_bias_halves(b[d]) for d in range(count)]
    cells = tuple(
        cell_from_stacked(
            GATE_ORDER[kind],
            w[d],
            r[d],
            *halves[d],
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


def _only_consumer(constants: Constants, name: str) -> Node | None:
    consumers = constants.consumers.get(name, [])
    return consumers[0] if len(consumers) == 1 else None


def _ints(constants: Constants, node: Node, index: int, attribute: str) -> list[int] | None:
    """An int list given as a constant input (newer opsets) or an attribute (older ones)."""
    if len(node.input) > index and node.input[index]:
        value = constants.get(node.input[index])
        return None if value is None else [int(v) for v in np.ravel(value)]
    return _attributes(node).get(attribute)


def _reversal_after(node: Node, constants: Constants, direction: Direction) -> tuple[str, bool]:
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


def _merge_after(y: str, constants: Constants) -> str:
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
        joined: Node = ends[0][0]
        positions = (ends[0][1], ends[1][1])
        merge = _ELEMENTWISE_MERGES.get(joined.op_type)
        if merge == "concat" and positions[0] > positions[1]:
            raise _common.UnsupportedFeatureError("the backward output is concatenated first", where=("Y",))
        if merge:
            return merge
    _log.warning("%s: cannot tell how the graph merges the two directions; assumed concat", y)
    return "concat"


def _direction_branches(consumers: list[Node], constants: Constants) -> list[str]:
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


def _past_shape_ops(name: str, constants: Constants) -> tuple[Node | None, int]:
    """The first node after ``name`` that is not a shape-only op, and the input it takes it at."""
    for _ in range(16):
        consumers = constants.consumers.get(name, [])
        if len(consumers) != 1:
            return None, -1
        node = consumers[0]
        if node.op_type not in SHAPE_OPS:
            return node, list(node.input).index(name)
        name = node.output[0]
    return None, -1


def _required(constants: Constants, name: str, tensor: str) -> np.ndarray:
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


def _check_state(constants: Constants, name: str, label: str) -> None:
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
        ir_name = BY_LOWER.get(onnx_name.lower())
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
