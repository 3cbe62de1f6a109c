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
from ...ir import (
    ACTIVATION_SLOTS,
    DEFAULT_ACTIVATIONS,
    Activation,
    Direction,
    Kind,
    Layer,
    Skipped,
    cell_from_stacked,
)
from .. import _common
from . import fold
from .names import (
    ATTRIBUTE_FIELDS,
    BY_LOWER,
    FLOAT_TYPES,
    GATE_ORDER,
    GRAPH,
    GRAPHS,
    OPS,
    PEEPHOLE_ORDER,
    SHAPE_OPS,
)

_log = logging.getLogger("lstmconv.formats.onnx")
Node = Any  # a NodeProto of onnx, or files.Node: the same field names


class Constants:
    """Values known without running the graph: initializers, Constant nodes, and pure-constant
    chains of them (folded, see :mod:`.fold`). ``to_array`` turns a tensor message into its
    values (checked, external data resolved). A subgraph's constants see the ``outer`` scope's
    (ONNX scoping: a Loop/Scan/If body may use any name of the graphs around it); ``budget``
    caps the elements folding may make (shared by every scope of one file)."""

    def __init__(
        self,
        graph: Any,
        to_array: Callable[[Any], np.ndarray],
        outer: Constants | None = None,
        budget: fold.Budget | None = None,
    ):
        self.to_array = to_array
        self.outer = outer
        self.budget: fold.Budget = budget or (outer.budget if outer is not None else fold.Budget(0))
        self.tensors: dict[str, Any] = {t.name: t for t in graph.initializer}
        self.values: dict[str, np.ndarray] = {}
        self.folded: dict[str, np.ndarray | None] = {}
        self.producers: dict[str, Node] = {}
        self.consumers: dict[str, list[Node]] = {}
        #: Names this graph defines itself (they hide the outer scope's).
        self.local: set[str] = set(self.tensors)
        #: Static dims of graph inputs, outputs and value_info (None for a symbolic dim).
        self.dims: dict[str, list[int | None]] = {}
        for info in [*graph.input, *getattr(graph, "value_info", []), *graph.output]:
            dims = _static_dims(info)
            if dims is not None:
                self.dims.setdefault(info.name, dims)
        self._zero_states: dict[str, bool | None] = {}
        self.local.update(info.name for info in graph.input)
        for node in graph.node:
            for output in node.output:
                self.producers[output] = node
                self.local.add(output)
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
            elif attribute.name in ("value_int", "value_ints"):
                self.values[node.output[0]] = np.asarray(attribute_value(attribute), dtype=np.int64)

    def get(self, name: str, depth: int = 0) -> np.ndarray | None:
        """The value of ``name`` when it is a constant: an initializer, a Constant node, or a
        pure-constant chain of :data:`.fold.FOLDABLE` ops over those, here or in an outer scope."""
        if not name:
            return None
        if name not in self.local:
            return self.outer.get(name, depth) if self.outer is not None else None
        if name in self.values:
            return self.values[name]
        tensor = self.tensors.get(name)
        if tensor is not None:
            return self.to_array(tensor)
        if name in self.folded:
            return self.folded[name]
        node = self.producers.get(name)
        if node is None or node.op_type not in fold.FOLDABLE or node.domain not in ("", "ai.onnx"):
            return None
        if depth >= fold.MAX_DEPTH:
            raise FormatError(
                f"constants computed by a chain of more than {fold.MAX_DEPTH} ops "
                f'(at {node.op_type} node "{node.name}")'
            )
        self.folded[name] = None  # a cycle folds to nothing
        inputs = [self.get(part, depth + 1) if part else None for part in node.input]
        needed = inputs[:1] if node.op_type != "Concat" else inputs
        value = None
        if all(v is not None for v in needed) and not any(
            part and v is None for part, v in zip(node.input, inputs)
        ):
            value = fold.fold(node, inputs, _attributes(node), self.budget)
        if value is not None and len(node.output) == 1:
            self.folded[name] = value
        else:
            value = None
        return value

    def is_zero_state(self, name: str, depth: int = 0) -> bool | None:
        """True/False when ``name`` is a known constant state (zeros or not); None if unknown.
        Exporters build zero states from a constant through shape-only ops (Expand, Unsqueeze…).
        Each name is answered once (``Concat(x, x)`` chained 40 times is 2^40 paths, 40 names)."""
        if name not in self.local and self.outer is not None:
            return self.outer.is_zero_state(name, depth)
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


def _static_dims(info: Any) -> list[int | None] | None:
    """The dims of a ValueInfo (of :mod:`.files` or of onnx), None where symbolic or unknown."""
    if hasattr(info, "dims"):
        return info.dims
    tensor_type = info.type.tensor_type if info.HasField("type") else None
    if tensor_type is None or not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]


def attribute_value(attribute: Any) -> Any:
    """The value an attribute holds, by its declared type (as ``onnx.helper.get_attribute_value``)."""
    field = ATTRIBUTE_FIELDS.get(attribute.type)
    if field is None:
        raise FormatError(
            f"attribute {attribute.name!r} has type {attribute.type}, which lstmconv does not read"
        )
    value = getattr(attribute, field)
    return list(value) if field in ("floats", "ints", "strings") else value


#: Quantized recurrent ops of onnxruntime's contrib domain, read dequantized.
QUANTIZED = {"DynamicQuantizeLSTM": Kind.LSTM}
QUANTIZED_DOMAIN = "com.microsoft"


def is_recurrent(node: Node) -> bool:
    """An LSTM/GRU/RNN node of the default domain, or onnxruntime's DynamicQuantizeLSTM."""
    if node.op_type in OPS and node.domain in ("", "ai.onnx"):
        return True
    return node.op_type in QUANTIZED and node.domain == QUANTIZED_DOMAIN


def recurrent_nodes(graph: Any) -> list[tuple[str, Node]]:
    """(name, node) of every LSTM/GRU/RNN node of the default domain, in graph order."""
    found = []
    for index, node in enumerate(graph.node):
        if is_recurrent(node):
            found.append((node.name or f"{node.op_type.lower()}_{index}", node))
    return found


def layer_from_node(node: Node, constants: Constants, name: str) -> Layer:
    where = f'{node.op_type} node "{name}"'
    try:
        if node.op_type in QUANTIZED:
            return _layer(_dequantized(node, constants, name), QUANTIZED[node.op_type], constants, name)
        return _layer(node, OPS[node.op_type], constants, name)
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
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise FormatError(f"layout {layout} is neither 0 (time major) nor 1 (batch major)", where=("layout",))
    if inputs[4]:
        _check_sequence_lens(constants, node, inputs[4], layout)
    for state, label in (
        (inputs[5], "initial_h"),
        (inputs[6] if kind is Kind.LSTM else "", "initial_c"),
    ):
        _check_state(constants, state, label)
    reversed_input = _reversal_before(constants, inputs[0], layout)
    if reversed_input and direction is not Direction.FORWARD:
        raise _common.UnsupportedFeatureError(
            f"a {direction.value} node whose input is reversed in time before it",
            where=("X",),
            hint="lstmconv reads a reversed input before a forward node (Keras go_backwards)",
        )
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
    if reversed_input:  # a forward pass over the reversed input: a reverse layer (go_backwards)
        y = node.output[0] if node.output else ""
        flipped_back = _reversal_after(node, constants, layout, y)
        direction, reversed_output = Direction.REVERSE, flipped_back is None
    else:
        reversed_output = _reversal_after_reverse(node, constants, direction, layout)
    return Layer(
        kind,
        cells,
        name=name,
        direction=direction,
        merge=_merge_after(node.output[0], constants, layout, hidden) if count == 2 else "concat",
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


def _reversal_after_reverse(node: Node, constants: Constants, direction: Direction, layout: int) -> bool:
    """Whether a reverse node's Y is flipped in time right after (Keras go_backwards order)."""
    y = node.output[0] if node.output else ""
    if direction is not Direction.REVERSE or not y:
        return False
    return _reversal_after(node, constants, layout, y) is not None


def _reversal_after(node: Node, constants: Constants, layout: int, y: str) -> str | None:
    """The output of the op that flips Y (time, directions, batch, hidden) in time right after
    the node (past moves: Squeeze, Transpose…), or None when Y is not flipped."""
    axis: tuple[int, int] | None = (0 if layout == 0 else 1, 4)
    name = y
    for _ in range(16):
        consumers = [n for n in constants.consumers.get(name, []) if n.op_type not in _SHAPE_READERS]
        if len(consumers) != 1 or axis is None:
            return None
        after = consumers[0]
        if after.op_type in SHAPE_OPS:
            axis, name = _moved_feature(constants, after, axis), after.output[0]
            continue
        return after.output[0] if _reversed_axis(constants, after, axis[0]) == axis[0] else None
    return None


def _reversed_axis(constants: Constants, node: Node, time_axis: int) -> int | None:
    """The axis a Slice (step -1 over the whole axis) or a ReverseSequence (over full lengths)
    reverses; None for any other op. A reversal of the time axis that lstmconv cannot prove
    whole is refused."""
    if node.op_type == "Slice":
        starts, ends, axes, steps_ = (
            _ints(constants, node, i, a) for i, a in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps"))
        )
        if steps_ is None or len(steps_) != 1 or steps_[0] != -1:
            return None
        if axes is None or len(axes) != 1:
            raise _common.UnsupportedFeatureError(
                f'Slice node "{node.name}" reverses an axis lstmconv cannot tell, next to a recurrent node'
            )
        if axes[0] != time_axis:
            return axes[0]
        if starts != [-1] or ends is None or ends[0] > -(2**31):
            raise _common.UnsupportedFeatureError(
                f'Slice node "{node.name}" reverses part of an axis next to a recurrent node',
                hint="lstmconv reads a reversal of the whole time axis",
            )
        return axes[0]
    if node.op_type == "ReverseSequence":
        attrs = _attributes(node)
        axis, batch_axis = int(attrs.get("time_axis", 0)), int(attrs.get("batch_axis", 1))
        if axis != time_axis:
            return axis
        if not _full_lengths(
            constants, node.input[1] if len(node.input) > 1 else "", node.input[0], time_axis
        ):
            raise _common.UnsupportedFeatureError(
                f'ReverseSequence node "{node.name}" next to a recurrent node reverses sequences of '
                "lengths lstmconv cannot prove to be the whole time axis (padded sequences)",
                hint="lstmconv converts unpadded models: export without masking or packing",
            )
        return time_axis if {time_axis, batch_axis} == {0, 1} else None
    return None


def _reversal_before(constants: Constants, x: str, layout: int) -> bool:
    """Whether the node's input X is reversed in time just before it (through moves only):
    Keras go_backwards, as tf2onnx exports it (a ReverseSequence, or a Slice of step -1)."""
    time_axis = 0 if layout == 0 else 1
    name = x
    for _ in range(16):
        node = constants.producers.get(name)
        if node is None:
            return False
        if node.op_type in ("Identity", "Cast"):
            name = node.input[0]
            continue
        if node.op_type == "Transpose":
            perm = _attributes(node).get("perm")
            if perm is None or time_axis >= len(perm):
                return False
            time_axis, name = int(perm[time_axis]), node.input[0]
            continue
        return _reversed_axis(constants, node, time_axis) == time_axis
    return False


def _full_lengths(constants: Constants, lengths: str, x: str, time_axis: int) -> bool:
    """Whether ``lengths`` (per batch entry) is the whole length of ``x``'s ``time_axis``: a
    constant equal to its static length, or the length read from ``x``'s own shape (through
    moves of ``x``), broadcast over the batch, as tf2onnx builds it."""
    if not lengths:
        return False
    value = constants.get(lengths)
    if value is not None:
        total = _static_length(constants, x, time_axis)
        return total is not None and value.size > 0 and bool(np.all(value == total))
    found = _shape_entry(constants, lengths)
    if found is None:
        return False
    source, axis = found
    return _same_axis(constants, source, axis, x, time_axis)


def _shape_entry(constants: Constants, name: str, depth: int = 0) -> tuple[str, int] | None:
    """(tensor, axis) when ``name`` is one entry of a tensor's Shape, perhaps cast, reshaped
    or expanded over the batch."""
    node = constants.producers.get(name)
    if node is None or depth > 16:
        return None
    if node.op_type in ("Expand", "Cast", "Identity", "Squeeze", "Unsqueeze", "Reshape", "Tile"):
        return _shape_entry(constants, node.input[0], depth + 1)
    if node.op_type == "Gather":
        index = constants.get(node.input[1])
        shape = constants.producers.get(node.input[0])
        if index is None or index.size != 1 or shape is None or shape.op_type != "Shape":
            return None
        if int(_attributes(node).get("axis", 0)) != 0:
            return None
        start = int(_attributes(shape).get("start", 0))
        if start < 0:
            return None
        return shape.input[0], start + int(np.ravel(index)[0])
    return None


def _same_axis(constants: Constants, source: str, axis: int, target: str, target_axis: int) -> bool:
    """Whether ``target``'s ``target_axis`` is ``source``'s ``axis``, through moves only."""
    name, wanted = target, target_axis
    for _ in range(16):
        if name == source:
            return wanted == axis
        node = constants.producers.get(name)
        if node is None:
            return False
        if node.op_type == "Transpose":
            perm = _attributes(node).get("perm")
            if perm is None or wanted >= len(perm):
                return False
            wanted = int(perm[wanted])
        elif node.op_type not in ("Identity", "Cast", "ReverseSequence") and not (
            node.op_type == "Slice" and _ints(constants, node, 4, "steps") == [-1]
        ):
            return False
        name = node.input[0]
    return False


def _static_length(constants: Constants, x: str, axis: int) -> int | None:
    """The static length of ``x``'s ``axis``, from the graph's declared shapes (through moves)."""
    name, wanted = x, axis
    for _ in range(16):
        dims = constants.dims.get(name)
        if dims is not None and wanted < len(dims) and dims[wanted]:
            return dims[wanted]
        node = constants.producers.get(name)
        if node is None:
            return None
        if node.op_type == "Transpose":
            perm = _attributes(node).get("perm")
            if perm is None or wanted >= len(perm):
                return None
            wanted = int(perm[wanted])
        elif node.op_type not in ("Identity", "Cast", "ReverseSequence"):
            return None
        name = node.input[0]
    return None


def _check_sequence_lens(constants: Constants, node: Node, lengths: str, layout: int) -> None:
    """``sequence_lens`` masks padded steps; lstmconv's layers run every step. Read past it only
    when it is the whole length of every sequence."""
    if _full_lengths(constants, lengths, node.input[0], 0 if layout == 0 else 1):
        return
    raise _common.UnsupportedFeatureError(
        "sequence_lens is given (padded sequences, e.g. torch's pack_padded_sequence or Keras "
        "masking): lstmconv's layers run every step, so padded steps would compute differently",
        where=("sequence_lens",),
        hint="export the model without packing or masking (lstmconv converts unpadded models)",
    )


_REDUCE_MERGES = {"ReduceSum": "sum", "ReduceProd": "mul", "ReduceMean": "ave"}
_ELEMENTWISE_MERGES = {"Concat": "concat", "Add": "sum", "Mul": "mul"}
#: Consumers of Y that read only its shape, not its values.
_SHAPE_READERS = ("Shape", "Size")


def _refuse_merge(what: str) -> _common.UnsupportedFeatureError:
    return _common.UnsupportedFeatureError(
        f"the two directions are merged by {what}, which lstmconv does not read as a merge",
        where=("Y",),
        hint="lstmconv reads concat, sum, mul and ave (Add then Mul 0.5 or Div 2) merges",
    )


def _merge_after(y: str, constants: Constants, layout: int, hidden: int) -> str:
    """How the graph merges the two directions of Y (time, 2, batch, H) after the node:
    reduced over the direction axis (lstmconv), transposed and reshaped (PyTorch), or taken
    apart by Slice/Split/Gather and joined again by Concat, Add (then Mul 0.5 or Div 2: ave)
    or Mul (tf2onnx). Anything else is refused rather than guessed."""
    direction_axis = 1 if layout == 0 else 2
    consumers = [n for n in constants.consumers.get(y, []) if n.op_type not in _SHAPE_READERS]
    if not consumers:
        _log.warning("%s: no op merges the two directions; read as concat", y)
        return "concat"
    after = consumers[0] if len(consumers) == 1 else None
    if after is not None and after.op_type in _REDUCE_MERGES:
        if _ints(constants, after, 1, "axes") == [direction_axis] and not _attributes(after).get(
            "keepdims", 1
        ):
            return _REDUCE_MERGES[after.op_type]
        raise _refuse_merge(
            f'{after.op_type} node "{after.name}" in a form other than over the direction axis'
        )
    if after is not None and after.op_type in ("Transpose", "Reshape"):
        if _concat_by_reshape(constants, after, layout, hidden):
            return "concat"
        raise _refuse_merge(f'{after.op_type} node "{after.name}"')
    branches = _direction_branches(consumers, constants, direction_axis)
    if not branches:
        shown = ", ".join(f'{n.op_type} "{n.name}"' for n in consumers)
        raise _refuse_merge(shown)
    ends = [_past_shape_ops(branch, constants, feature) for branch, feature in branches]
    first = ends[0][0]
    if first is None or ends[1][0] is not first:
        raise _common.UnsupportedFeatureError(
            "the two directions of Y go separate ways after the node (no one op joins them)",
            where=("Y",),
            hint="lstmconv reads a bidirectional layer whose directions are merged",
        )
    joined: Node = first
    positions, features = (ends[0][1], ends[1][1]), (ends[0][2], ends[1][2])
    merge = _ELEMENTWISE_MERGES.get(joined.op_type)
    if merge is None or len(joined.input) != 2:
        raise _refuse_merge(f'{joined.op_type} node "{joined.name}"')
    if merge == "concat":
        axis = int(_attributes(joined).get("axis", 0))
        rank = features[0][1] if features[0] is not None else None
        if features[0] is None or features[0] != features[1] or rank is None:
            raise _refuse_merge(f'Concat node "{joined.name}" of values lstmconv cannot follow')
        if (axis + rank if axis < 0 else axis) != features[0][0]:
            raise _refuse_merge(f'Concat node "{joined.name}" along an axis other than the features')
        if positions[0] > positions[1]:
            raise _common.UnsupportedFeatureError("the backward output is concatenated first", where=("Y",))
        return merge
    return _scaled(constants, joined, merge)


def _scaled(constants: Constants, joined: Node, merge: str) -> str:
    """``sum`` and ``mul`` as they are, unless a constant scales them right after: Add then
    Mul 0.5 (or Div 2) is ``ave``; any other scale is refused."""
    after, _, _ = _past_shape_ops(joined.output[0], constants, None)
    if after is None or after.op_type not in ("Mul", "Div"):
        return merge
    here = list(after.input).index(_last_moved(joined.output[0], constants))
    other = after.input[1 - here] if len(after.input) == 2 else ""
    value = constants.get(other) if other else None
    if value is None:
        return merge  # scaled by a computed value: that is the next layer's work, not the merge's
    ave = (after.op_type == "Mul" and np.all(value == 0.5)) or (
        after.op_type == "Div" and here == 0 and np.all(value == 2)
    )
    if merge == "sum" and ave and value.size == 1:
        return "ave"
    shown = ", ".join(f"{v:g}" for v in np.ravel(value)[:4])
    raise _refuse_merge(f'{joined.op_type} then {after.op_type} node "{after.name}" by a constant ({shown})')


def _last_moved(name: str, constants: Constants) -> str:
    """The last output of the chain of moves starting at ``name`` (what the next op takes)."""
    for _ in range(16):
        consumers = constants.consumers.get(name, [])
        if len(consumers) != 1 or consumers[0].op_type not in SHAPE_OPS:
            return name
        name = consumers[0].output[0]
    return name


def _concat_by_reshape(constants: Constants, node: Node, layout: int, hidden: int) -> bool:
    """PyTorch's concat: Y (time, 2, batch, H) moved to (time, batch, 2, H) by Transpose
    [0, 2, 1, 3], then reshaped to (time, batch, 2·H); batch major, Y (batch, time, 2, H) is
    reshaped alone."""
    if node.op_type == "Transpose":
        if layout != 0 or _attributes(node).get("perm") != [0, 2, 1, 3]:
            return False
        consumers = constants.consumers.get(node.output[0], [])
        if len(consumers) != 1 or consumers[0].op_type != "Reshape":
            return False
        node = consumers[0]
    elif layout != 1:
        return False
    shape = constants.get(node.input[1]) if len(node.input) > 1 else None
    if shape is None or shape.size != 3:
        return False
    last, first = int(shape[-1]), [int(v) for v in shape[:2]]
    return (
        last in (-1, 2 * hidden)
        and all(v in (0, -1) or v > 0 for v in first)
        and (last != -1 or -1 not in first)
    )


def _direction_branches(
    consumers: list[Node], constants: Constants, axis: int
) -> list[tuple[str, tuple[int, int] | None]]:
    """[forward, backward] outputs taken from Y along the direction ``axis`` by one Split or two
    Slice/Gather, each with (its feature axis, its rank)."""
    if len(consumers) == 1 and consumers[0].op_type == "Split" and len(consumers[0].output) == 2:
        split = consumers[0]
        sizes = _ints(constants, split, 1, "split")
        if int(_attributes(split).get("axis", 0)) != axis or sizes not in (None, [1, 1]):
            return []
        return [(output, (3, 4)) for output in split.output]
    if len(consumers) != 2 or any(node.op_type not in ("Slice", "Gather") for node in consumers):
        return []
    found: dict[int, tuple[str, tuple[int, int]]] = {}
    for node in consumers:
        if node.op_type == "Slice":
            starts, ends, axes, steps_ = (
                _ints(constants, node, i, a)
                for i, a in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps"))
            )
            if axes != [axis] or steps_ not in (None, [1]) or starts not in ([0], [1]) or ends is None:
                return []
            if ends[0] != starts[0] + 1 and not (starts == [1] and ends[0] >= 2):
                return []
            found[starts[0]] = (node.output[0], (3, 4))
        else:
            index = constants.get(node.input[1]) if len(node.input) > 1 else None
            if index is None or index.size != 1 or int(_attributes(node).get("axis", 0)) != axis:
                return []
            found[int(np.ravel(index)[0])] = (
                node.output[0],
                (3 if index.ndim else 2, 4 if index.ndim else 3),
            )
    if sorted(found) != [0, 1]:
        return []
    return [found[0], found[1]]


def _past_shape_ops(
    name: str, constants: Constants, feature: tuple[int, int] | None
) -> tuple[Node | None, int, tuple[int, int] | None]:
    """The first node after ``name`` that is not a move, the input it takes it at, and where
    the feature axis of (feature axis, rank) ``feature`` ended up (None once it is lost)."""
    for _ in range(16):
        consumers = [n for n in constants.consumers.get(name, []) if n.op_type not in _SHAPE_READERS]
        if len(consumers) != 1:
            return None, -1, feature
        node = consumers[0]
        if node.op_type not in SHAPE_OPS:
            return node, list(node.input).index(name), feature
        feature = _moved_feature(constants, node, feature)
        name = node.output[0]
    return None, -1, feature


def _moved_feature(
    constants: Constants, node: Node, feature: tuple[int, int] | None
) -> tuple[int, int] | None:
    """Where a move puts an axis (the features', or time's) of (axis, rank); None when lstmconv
    cannot follow it."""
    if feature is None:
        return None
    axis, rank = feature
    op = node.op_type
    if op in ("Identity", "Cast"):
        return feature
    if op == "Transpose":
        perm = _attributes(node).get("perm") or list(range(rank))[::-1]
        return (list(perm).index(axis), rank) if axis in perm and len(perm) == rank else None
    if op in ("Squeeze", "Unsqueeze"):
        given = _ints(constants, node, 1, "axes")
        if given is None:
            return None
        if op == "Squeeze":
            axes = sorted(a + rank if a < 0 else a for a in given)
            if axis in axes:
                return None
            return axis - sum(1 for a in axes if a < axis), rank - len(axes)
        new_rank = rank + len(given)
        axes = sorted(a + new_rank if a < 0 else a for a in given)
        for a in axes:
            if a <= axis:
                axis += 1
        return axis, new_rank
    if op == "Reshape":  # the features stay whole and last only if every other dim is kept
        shape = constants.get(node.input[1]) if len(node.input) > 1 else None
        if shape is None or axis != rank - 1 or shape.size != rank or int(shape[-1]) not in (-1, 0):
            return None
        return feature if all(int(v) == 0 for v in np.ravel(shape)[:-1]) else None
    return None


def _required(constants: Constants, name: str, tensor: str) -> np.ndarray:
    value = constants.get(name) if name else None
    if value is None:
        raise WeightLayoutError(
            "expected a constant (initializer or Constant node), found "
            + ("a computed value" if name else "nothing"),
            where=(tensor,),
            hint="lstmconv folds chains of Transpose, Reshape, Squeeze, Unsqueeze, Concat, Slice, "
            "Cast, Gather, Identity, Expand, Tile of constants; this one takes other ops or run-time "
            "values: export with constant folding, e.g. torch.onnx.export(..., do_constant_folding=True)",
        )
    return value


def _expect(value: np.ndarray, shape: tuple[int, ...], tensor: str, why: str) -> None:
    if value.ndim != len(shape) or any(e >= 0 and e != f for e, f in zip(shape, value.shape)):
        shown = "(" + ", ".join("in" if e < 0 else str(e) for e in shape) + ")"
        raise WeightLayoutError(
            f"expected {shown}, found {_common.dims(value.shape)}: {why}", where=(tensor,)
        )


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


# -- what the graph holds besides the recurrent nodes ----------------------------------------------
def subgraphs(node: Node) -> list[tuple[str, Any]]:
    """(attribute name, graph) of every subgraph a node holds (Loop and Scan bodies, If branches)."""
    found = []
    for attribute in node.attribute:
        if attribute.type == GRAPH and attribute.g is not None:
            found.append((attribute.name, attribute.g))
        elif attribute.type == GRAPHS:
            found.extend((f"{attribute.name}[{i}]", g) for i, g in enumerate(attribute.graphs))
    return found


def _node_label(node: Node, index: int) -> str:
    return node.name or f"{node.op_type.lower()}_{index}"


def _recurrent_inside(graph: Any, path: tuple[str, ...], depth: int = 0) -> tuple[str, ...] | None:
    """The path to the first LSTM/GRU/RNN node anywhere inside ``graph``'s subgraphs."""
    for index, node in enumerate(graph.node):
        here = (*path, f'{node.op_type} node "{_node_label(node, index)}"')
        if is_recurrent(node) and depth:
            return here
        if depth < 32:
            for attribute, body in subgraphs(node):
                inside = _recurrent_inside(body, (*here, attribute), depth + 1)
                if inside is not None:
                    return inside
    return None


def _computes_a_cell(graph: Any, depth: int = 0) -> bool:
    """Whether a body holds a matrix product and a sigmoid or tanh: a recurrent cell, unrolled."""
    ops: set[str] = set()

    def collect(g: Any, level: int) -> None:
        for node in g.node:
            ops.add(node.op_type)
            if level < 32:
                for _, body in subgraphs(node):
                    collect(body, level + 1)

    collect(graph, depth)
    return bool(ops & {"MatMul", "Gemm"}) and bool(ops & {"Sigmoid", "Tanh", "HardSigmoid"})


def refuse_control_flow(graph: Any, has_recurrent: bool) -> None:
    """Refuse a graph where a recurrent layer may hide in control flow that holds no recurrent
    node: a Loop or Scan whose body computes a cell, or any Loop or Scan beside recurrent nodes
    (reading those alone would drop the layer the Loop computes). Recurrent nodes inside
    subgraphs are found by :func:`found_nodes`, which refuses the loops that step them."""
    for index, node in _all_nodes(graph):
        if node.op_type not in ("Loop", "Scan"):
            continue
        bodies = [body for _, body in subgraphs(node)]
        if any(_recurrent_inside(body, (), 1) is not None for body in bodies):
            continue  # found_nodes reads (or refuses) the recurrent nodes inside
        if has_recurrent or any(_computes_a_cell(body) for body in bodies):
            raise _common.UnsupportedFeatureError(
                f'layer "{_node_label(node, index)}" was exported as a {node.op_type}, not an '
                "LSTM/GRU/RNN node; lstmconv cannot read it",
                hint="export the layer as a native ONNX LSTM/GRU/RNN node (tf2onnx does for Keras "
                "LSTM/GRU with default activations; torch.onnx.export traces nn.LSTM as one)",
            )


def _all_nodes(graph: Any, depth: int = 0) -> list[tuple[int, Node]]:
    """(index in its graph, node) of the graph's nodes and, depth first, its subgraphs'."""
    found = []
    for index, node in enumerate(graph.node):
        found.append((index, node))
        if depth < MAX_SUBGRAPH_DEPTH:
            for _, body in subgraphs(node):
                found.extend(_all_nodes(body, depth + 1))
    return found


def refuse_unrolled(graph: Any) -> None:
    """A graph without recurrent nodes that computes a cell (MatMul with Sigmoid/Tanh) holds a
    recurrent layer unrolled into plain ops (Keras's own ONNX export with the torch backend)."""
    if _computes_a_cell(graph):
        raise _common.UnsupportedFeatureError(
            "no LSTM/GRU/RNN node, but MatMul/Gemm with Sigmoid/Tanh: a recurrent layer exported "
            "unrolled into plain ops, which lstmconv cannot read",
            hint="export it as a native ONNX LSTM/GRU/RNN node (tf2onnx, torch.onnx.export of nn.LSTM)",
        )


def no_recurrent_node(graph: Any) -> WeightLayoutError:
    """What a graph without LSTM/GRU/RNN nodes holds: its op types, most used first."""
    counts: dict[str, int] = {}
    for node in graph.node:
        label = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        counts[label] = counts.get(label, 0) + 1
    ops = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{op} ×{count}" if count > 1 else op for op, count in ops[:12])
    held = (
        f"its {len(graph.node)} nodes are {shown}{', ...' if len(ops) > 12 else ''}"
        if ops
        else "it has no nodes"
    )
    return WeightLayoutError(
        "no recurrent layer found: no LSTM/GRU/RNN node (nor DynamicQuantizeLSTM) in the graph "
        f"or its subgraphs; {held}",
        hint="lstmconv reads native ONNX LSTM/GRU/RNN nodes",
    )


def _float_tensor(tensor: Any) -> bool:
    return tensor is not None and tensor.data_type in FLOAT_TYPES


def skipped(
    graph: Any,
    constants: Constants,
    recurrent: list[Node],
    scoped: list[tuple[Node, Constants]] | None = None,
    held: set[str] | None = None,
) -> tuple[Skipped, ...]:
    """Floating-point initializers (and Constant node values) of the main graph that no
    recurrent node uses (``scoped``: each node with its own graph's constants, for nodes in
    subgraphs) nor a plain layer holds (``held``), grouped by the node that consumes them.
    Scalars (0.5, epsilons) are arithmetic, not weights; what a state is computed from through
    a Shape is not used by it."""
    used: set[str] = set(held or ())  # every value the weights and states of the nodes are made from
    pairs = scoped if scoped is not None else [(node, constants) for node in recurrent]
    pending = [(name, scope) for node, scope in pairs for name in list(node.input)[1:] if name]
    seen: set[tuple[str, int]] = set()
    while pending:
        name, scope = pending.pop()
        if (name, id(scope)) in seen:
            continue
        seen.add((name, id(scope)))
        where: Constants | None = scope
        while where is not None and name not in where.local:
            where = where.outer
        if where is None:
            continue
        if where is constants:
            used.add(name)
        producer = where.producers.get(name)
        if producer is not None and producer.op_type not in _SHAPE_READERS:
            pending.extend((n, where) for n in producer.input if n)
    groups: dict[tuple[str, str], list[tuple[str, tuple[int, ...]]]] = {}
    for name, tensor in constants.tensors.items():
        if name in used or not _float_tensor(tensor):
            continue
        shape = tuple(int(n) for n in tensor.dims)
        if int(np.prod(shape, dtype=np.int64)) <= 1:
            continue
        consumer = _first_consumer(constants, name)
        key = (
            ("(unused)", "") if consumer is None else (consumer.name or consumer.output[0], consumer.op_type)
        )
        groups.setdefault(key, []).append((name, shape))
    return tuple(Skipped.of(name, kind, tensors) for (name, kind), tensors in groups.items())


def _first_consumer(constants: Constants, name: str) -> Node | None:
    for _ in range(64):
        consumers = constants.consumers.get(name, [])
        if not consumers:
            return None
        if consumers[0].op_type != "Identity":
            return consumers[0]
        name = consumers[0].output[0]
    return None


# -- recurrent nodes in subgraphs ----------------------------------------------------------------
#: How deep lstmconv looks into subgraphs (a Loop body holding an If holding…).
MAX_SUBGRAPH_DEPTH = 32


class Found:
    """A recurrent node where it is: its layer name (a path through the subgraphs holding it,
    ``If_0/then_branch/LSTM_3``), the graph it is in, that graph's constants (which see the
    enclosing scopes'), and the enclosing graphs, outermost first."""

    def __init__(self, name: str, node: Node, graph: Any, constants: Constants, scopes: tuple[Any, ...]):
        self.name, self.node, self.graph, self.constants, self.scopes = name, node, graph, constants, scopes


def _part(text: str) -> str:
    return text.strip("/") or text


def found_nodes(graph: Any, constants: Constants) -> list[Found]:
    """Every LSTM/GRU/RNN node of the graph and, depth first in graph order, of its subgraphs
    (If branches, Loop and Scan bodies). A node in a Loop or Scan body that the loop feeds per
    iteration (its input or initial state made from the body's inputs: a recurrent layer
    exported as a Loop stepping the node) is refused, since the node alone computes something
    else than the loop does."""
    found: list[Found] = []
    _find(graph, constants, (), (), "", 0, found)
    return found


def _find(
    graph: Any,
    constants: Constants,
    scopes: tuple[Any, ...],
    path: tuple[str, ...],
    loop: str,
    depth: int,
    found: list[Found],
) -> None:
    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        if is_recurrent(node):
            name = "/".join((*path, _part(label))) if path else label
            if loop:
                _refuse_stepped(graph, constants, node, name, loop)
            found.append(Found(name, node, graph, constants, scopes))
            continue
        for attribute, body in subgraphs(node):
            if depth + 1 > MAX_SUBGRAPH_DEPTH:
                raise FormatError(
                    f'subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH} (at {node.op_type} node "{label}")'
                )
            inner = Constants(body, constants.to_array, outer=constants)
            here = f'{node.op_type} node "{label}"' if node.op_type in ("Loop", "Scan") else loop
            _find(body, inner, (*scopes, graph), (*path, _part(label), attribute), here, depth + 1, found)


def _refuse_stepped(graph: Any, constants: Constants, node: Node, name: str, loop: str) -> None:
    """Refuse a recurrent node that a Loop/Scan feeds per iteration (X or a state from the
    body's inputs: the iteration count, the carried values, the scanned slices)."""
    body_inputs = {info.name for info in graph.input}
    inputs = list(node.input) + [""] * 8
    for position, label in ((0, "X"), (5, "initial_h"), (6, "initial_c")):
        if inputs[position] and _depends_on(constants, inputs[position], body_inputs):
            raise _common.UnsupportedFeatureError(
                f'{node.op_type} node "{name}" is inside {loop}, which feeds its {label} per '
                "iteration: a recurrent layer exported as a loop stepping the node, which computes "
                "something other than the node alone; lstmconv cannot read it",
                hint="export the layer as one native ONNX LSTM/GRU/RNN node over the whole sequence",
            )


def _depends_on(constants: Constants, name: str, targets: set[str]) -> bool:
    """Whether ``name`` is computed (in this graph) from any of ``targets``."""
    pending, seen = [name], set[str]()
    while pending and len(seen) < 100_000:
        current = pending.pop()
        if current in seen or not current:
            continue
        seen.add(current)
        if current in targets:
            return True
        producer = constants.producers.get(current)
        if producer is not None:
            pending.extend(producer.input)
    return False


# -- quantized recurrent nodes ---------------------------------------------------------------------
class _Plain:
    """A recurrent node as the default domain's op, its weights renamed to dequantized values."""

    def __init__(self, node: Node, op_type: str, inputs: list[str]) -> None:
        self.op_type, self.domain, self.name = op_type, "", node.name
        self.input, self.output, self.attribute = inputs, list(node.output), list(node.attribute)


def _dequantized(node: Node, constants: Constants, name: str) -> _Plain:
    """onnxruntime's DynamicQuantizeLSTM (inputs X, W, R, B, sequence_lens, initial_h,
    initial_c, P, W_scale, W_zero_point, R_scale, R_zero_point; W (D, input, 4H) and R (D, H, 4H)
    int8/uint8, scales and zero points per direction (D,) or per channel (D, 4H)) as an LSTM
    node with W = (W_q - zero_point) · scale, transposed to ONNX's (D, 4H, input). Logged: the
    read is dequantized, and how far the values can be from the float weights they came from."""
    inputs = list(node.input) + [""] * 12
    parts, notes = {}, []
    for position, tensor, scale_at in ((1, "W", 8), (2, "R", 10)):
        quantized = _required(constants, inputs[position], tensor)
        scale = _required(constants, inputs[scale_at], f"{tensor}_scale")
        zero = _required(constants, inputs[scale_at + 1], f"{tensor}_zero_point")
        if quantized.dtype not in (np.int8, np.uint8) or zero.dtype != quantized.dtype:
            raise WeightLayoutError(
                f"expected int8 or uint8 weights with zero points of their dtype, found "
                f"{quantized.dtype} and {zero.dtype}",
                where=(tensor,),
            )
        if scale.dtype.kind != "f" or quantized.ndim != 3:
            raise WeightLayoutError(
                f"expected a float scale and a (D, in, 4H) weight, found {scale.dtype} "
                f"and {_common.dims(quantized.shape)}",
                where=(f"{tensor}_scale",),
            )
        d, rows = quantized.shape[0], quantized.shape[2]
        if scale.shape not in ((d,), (d, rows)):
            raise WeightLayoutError(
                f"expected ({d},) per direction or ({d}, {rows}) per channel, "
                f"found {_common.dims(scale.shape)}",
                where=(f"{tensor}_scale",),
            )
        if zero.shape != scale.shape:
            raise WeightLayoutError(
                f"expected {_common.dims(scale.shape)} like {tensor}_scale, found {_common.dims(zero.shape)}",
                where=(f"{tensor}_zero_point",),
            )
        shaped = (d, 1, 1) if scale.ndim == 1 else (d, 1, rows)
        exact = (quantized.astype(np.float64) - zero.reshape(shaped)) * scale.astype(np.float64).reshape(
            shaped
        )
        value = exact.astype(scale.dtype)
        rounding = float(np.max(np.abs(value - exact))) if value.size else 0.0
        step = float(np.max(np.abs(scale))) if scale.size else 0.0
        largest = float(np.max(np.abs(value))) if value.size else 0.0
        key = f"{inputs[position]}#dequantized"
        constants.values[key] = np.ascontiguousarray(value.transpose(0, 2, 1))
        constants.local.add(key)
        parts[position] = key
        notes.append(
            f"{tensor} {quantized.dtype} in steps of up to {step:.3g} (at most {step / 2:.3g} from the "
            f"float weights it was quantized from, {step / 2 / largest if largest else 0:.2%} of its largest "
            f"value; dequantized to {value.dtype} within {rounding:.1e})"
        )
    _log.warning(
        '%s node "%s": read dequantized, not exact: %s; onnxruntime also quantizes the '
        "activations at run time, which the float layer lstmconv writes does not",
        node.op_type,
        name,
        "; ".join(notes),
    )
    plain = [inputs[0], parts[1], parts[2], *inputs[3:8]]
    while plain and plain[-1] == "":
        plain.pop()
    return _Plain(node, "LSTM", plain)
