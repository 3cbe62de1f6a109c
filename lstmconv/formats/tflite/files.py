"""Reading ``.tflite`` files without TensorFlow: the recurrent operators of the flatbuffer
(:mod:`.flat`) as IR layers, their per-gate weights left in the memory-mapped file.

Read: ``UNIDIRECTIONAL_SEQUENCE_LSTM``, ``BIDIRECTIONAL_SEQUENCE_LSTM``, the plain ``LSTM`` op
(full kernel; one time step per invocation), ``UNIDIRECTIONAL_SEQUENCE_RNN``,
``BIDIRECTIONAL_SEQUENCE_RNN`` and ``RNN``. float32 weights, and float16 ones (stored as FP16
constants behind a ``DEQUANTIZE``, as the converter writes them); quantized weights are refused
unless ``dequantize`` is asked. The converter's forms of a Keras ``Bidirectional`` (a forward op
beside ``REVERSE_V2`` → op → ``REVERSE_V2``, merged by ``CONCATENATION``, ``ADD``, ``MUL``, or
``ADD`` then ``MUL`` 0.5) are read as one bidirectional layer, and ``go_backwards``
(``REVERSE_V2`` → op) as a reverse layer. A CIFG LSTM (no input gate: ``i = 1 - f``) becomes the
IR's coupled form (``f = 1 - i``) with the kept gate's weights negated into ``i``: exact, since
the gates are sigmoids and ``1 - σ(z) = σ(-z)``.
"""

from __future__ import annotations

import dataclasses
import logging
import mmap
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import dtypes
from ...errors import FormatError, LstmconvError, UnsupportedFeatureError, WeightLayoutError
from ...ir import SIGMOID, Cell, Direction, Kind, Layer, Model
from .. import _common
from . import flat
from . import names as n

_log = logging.getLogger("lstmconv")
_ONE_STEP = "%s: the op runs one time step per invocation, its state kept in variable tensors"
_TIME_MAJOR = "%s: time_major: the op's input is (time, batch, features); the IR's (batch, time, features)"
#: The longest chain of DEQUANTIZE ops followed back to a weight (the converter writes one).
_MAX_DEQUANTIZE_CHAIN = 8


@dataclasses.dataclass
class _Graph:
    """One subgraph with what the layer builders ask of it."""

    model: flat.TfliteModel
    graph: flat.SubGraph
    producers: dict[int, flat.Operator]
    consumers: dict[int, list[flat.Operator]]
    #: Dequantize quantized weights (else refuse them), and the largest rounding each costs.
    dequantize: bool = False
    rounding: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, model: flat.TfliteModel, graph: flat.SubGraph, dequantize: bool = False) -> _Graph:
        producers: dict[int, flat.Operator] = {}
        consumers: dict[int, list[flat.Operator]] = {}
        for op in graph.operators:
            for index in op.outputs:
                if index >= 0:
                    producers.setdefault(index, op)
            for index in op.inputs:
                if index >= 0:
                    consumers.setdefault(index, []).append(op)
        return cls(model, graph, producers, consumers, dequantize)

    def tensor(self, index: int) -> flat.Tensor:
        return self.graph.tensors[index]

    def constant(self, index: int, label: str) -> np.ndarray:
        """A weight's values: its own buffer, or the FP16 constant a DEQUANTIZE turns into it."""
        tensor = self.tensor(index)
        where = f"{label} ({tensor.label()})"
        seen: set[int] = set()
        while True:
            data = self._buffer_array(tensor, where)
            if data is not None:
                return data
            producer = self.producers.get(tensor.index)
            if producer is None or producer.code != n.DEQUANTIZE:
                made = (
                    f"computed by {producer.op_name} (operator {producer.index})" if producer else "an input"
                )
                raise UnsupportedFeatureError(
                    f"the weight is not a constant: it is {made}",
                    where=(where,),
                    hint="lstmconv reads weights stored in the file (float32, or float16 behind DEQUANTIZE)",
                )
            if tensor.index in seen or len(seen) >= _MAX_DEQUANTIZE_CHAIN or not producer.inputs:
                raise FormatError("not a readable TFLite model: a DEQUANTIZE chain loops", where=(where,))
            seen.add(tensor.index)
            if producer.inputs[0] < 0:
                raise FormatError("not a readable TFLite model: a DEQUANTIZE without input", where=(where,))
            tensor = self.tensor(producer.inputs[0])

    def _buffer_array(self, tensor: flat.Tensor, where: str) -> np.ndarray | None:
        buffer = self.model.buffers[tensor.buffer]
        if buffer.length == 0:
            return None
        quantized = tensor.quantization is not None or tensor.type in n.QUANTIZED_TYPES
        if quantized and not self.dequantize:
            raise UnsupportedFeatureError(
                f"{tensor.type_name}-quantized weights (scale {_shown(tensor)}) are not read",
                where=(where,),
                hint="lstmconv reads float32 and float16 weights: convert without "
                "converter.optimizations, or with target_spec.supported_types=[tf.float16]; "
                "or read with dequantize=True (--dequantize), at the cost of the rounding",
            )
        name = n.STORED_QUANTIZED.get(tensor.type) if quantized else n.FLOAT_TYPES.get(tensor.type)
        if name is None:
            expected = "int8, uint8, int16 or int32" if quantized else "a float type"
            raise FormatError(f"a weight of type {tensor.type_name}, expected {expected}", where=(where,))
        dtype = (np.dtype(name) if quantized else dtypes.resolve(name)).newbyteorder("<")
        if any(d < 0 for d in tensor.shape):
            raise FormatError(f"negative dims {_common.dims(tensor.shape)}", where=(where,))
        count = 1
        for d in tensor.shape:  # Python ints: a huge shape cannot overflow
            count *= d
        if count * dtype.itemsize != buffer.length:
            raise FormatError(
                f"the buffer holds {buffer.length} bytes, expected {count * dtype.itemsize} "
                f"for shape {_common.dims(tensor.shape)} of {name}",
                where=(where,),
            )
        values = np.frombuffer(self.model.flat.data, dtype=dtype, count=count, offset=buffer.start)
        values = values.reshape(tensor.shape)
        return self._dequantized(tensor, values, where) if quantized else values

    def _dequantized(self, tensor: flat.Tensor, values: np.ndarray, where: str) -> np.ndarray:
        """``scale · (q - zero_point)`` in float32, per tensor or along ``quantized_dimension``."""
        q = tensor.quantization
        if q is None:
            raise FormatError(f"{tensor.type_name} weights without a scale", where=(where,))
        axis = q.quantized_dimension
        scale, zero = q.scale.astype(np.float64), q.zero_point.astype(np.float64)
        if zero.size not in (0, 1, scale.size):
            raise FormatError(f"{scale.size} scales but {zero.size} zero points", where=(where,))
        if scale.size > 1:
            if not 0 <= axis < values.ndim or values.shape[axis] != scale.size:
                raise FormatError(
                    f"{scale.size} scales along dimension {axis} of shape {_common.dims(values.shape)}",
                    where=(where,),
                )
            shape = [1] * values.ndim
            shape[axis] = scale.size
            scale = scale.reshape(shape)
            zero = zero.reshape(shape) if zero.size > 1 else zero
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise FormatError("a scale that is not a positive number", where=(where,))
        self.rounding[where] = float(np.max(scale)) / 2
        return ((values.astype(np.float64) - (zero if zero.size else 0.0)) * scale).astype(np.float32)


def _shown(tensor: flat.Tensor) -> str:
    if tensor.quantization is None:
        return "none"
    scale = tensor.quantization.scale
    return f"{float(scale[0]):.3g}" + (f" and {scale.size - 1} more" if scale.size > 1 else "")


@dataclasses.dataclass
class _Read:
    """A recurrent op read: its layer, and the tensors it takes and gives."""

    layer: Layer
    op: flat.Operator
    input: int
    output: int


# -- one op, one layer -------------------------------------------------------------------------
def _label(graph: _Graph, op: flat.Operator) -> str:
    output = op.outputs[0] if op.outputs and op.outputs[0] >= 0 else None
    shown = f' → "{graph.tensor(output).name}"' if output is not None else ""
    return f"{op.op_name} (subgraph {graph.graph.index}, operator {op.index}{shown})"


def _input(op: flat.Operator, position: int) -> int:
    return op.inputs[position] if position < len(op.inputs) else -1


def _activation(op: flat.Operator) -> Any:
    code = op.options.get("fused_activation_function", 0)
    activation = n.ACTIVATIONS.get(code)
    if activation is None:
        raise UnsupportedFeatureError(
            f"fused_activation_function {n.ACTIVATION_NAMES.get(code, code)}",
            hint="lstmconv's activations are TANH, RELU and NONE of TFLite's",
        )
    return activation


def _same_dtype(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weights of one dtype: float16 weights beside float32 biases become float32 (exactly)."""
    kinds = {a.dtype for a in arrays.values()}
    if len(kinds) <= 1:
        return arrays
    widest = max(kinds, key=lambda d: d.itemsize)
    return {key: a.astype(widest) for key, a in arrays.items()}


def _lstm_cell(graph: _Graph, op: flat.Operator, first: int, side: str) -> tuple[Cell, bool]:
    """One direction's cell from the 17 inputs from ``first``, and whether it is CIFG."""
    found: dict[str, np.ndarray] = {}
    for offset, field, gate, name in n.LSTM_SLOTS:
        position = first + offset
        index = _input(op, position)
        if index >= 0:
            found[f"{field}/{gate}"] = graph.constant(index, f"input {position} {side}{name}")
    if "projection_bias/" in found:
        raise UnsupportedFeatureError(
            f"a projection bias ({side}projection_bias, input {first + 16})",
            hint="the IR's projection (PyTorch's weight_hr) has no bias",
        )
    required = [f"{field}/{g}" for field in ("w_ih", "w_hh", "bias") for g in "fgo"]
    absent = [key for key in required if key not in found]
    if absent:
        raise FormatError(f"required inputs {absent} are absent (-1)", where=(side.rstrip("_"),))
    cifg = "w_ih/i" not in found
    if cifg != ("w_hh/i" not in found) or (cifg and ("bias/i" in found or "peephole/i" in found)):
        raise FormatError("the input gate's tensors are neither all present nor all absent (CIFG)")
    peepholes = [key for key in ("peephole/i", "peephole/f", "peephole/o") if key in found]
    if peepholes and len(peepholes) != (2 if cifg else 3):
        raise FormatError(f"peepholes {peepholes} without the others")
    if cifg:  # i = 1 - f = σ(-z_f): the IR's f = 1 - i with the forget gate's weights negated into i
        for field in ("w_ih", "w_hh", "bias", *(("peephole",) if peepholes else ())):
            found[f"{field}/i"] = -found[f"{field}/f"]
    found = _same_dtype(found)
    if op.options.get("diagonal_recurrent_tensors"):
        for g in "ifgo":
            vector = found[f"w_hh/{g}"]
            if vector.ndim != 1:
                raise WeightLayoutError(
                    f"diagonal recurrent weights must be vectors, found shape {_common.dims(vector.shape)}",
                    where=(f"{side}recurrent_to_{n.GATE_WORDS[g]}_weights",),
                )
            found[f"w_hh/{g}"] = np.diag(vector)
    bias = {g: found[f"bias/{g}"] for g in "ifgo"}
    cell = Cell(
        w_ih={g: found[f"w_ih/{g}"] for g in "ifgo"},
        w_hh={g: found[f"w_hh/{g}"] for g in "ifgo"},
        b_ih=bias,
        b_hh={g: np.zeros_like(b) for g, b in bias.items()},
        w_hr=found.get("w_hr/"),
        peephole={g: found[f"peephole/{g}"] for g in "ifo"} if peepholes else None,
    )
    return cell, cifg


def _clips(op: flat.Operator, projected: bool, label: str) -> dict[str, float | None]:
    clips: dict[str, float | None] = {}
    for field in ("cell_clip", "proj_clip"):
        value = float(op.options.get(field, 0.0))
        if not np.isfinite(value) or value < 0:
            raise FormatError(f"{field} {value} (TFLite requires 0, none, or a positive number)")
        clips[field] = value or None
    if clips["proj_clip"] is not None and not projected:
        _log.info("%s: proj_clip %g without a projection, which TFLite ignores", label, clips["proj_clip"])
        clips["proj_clip"] = None
    return clips


def _lstm_layer(graph: _Graph, op: flat.Operator, name: str, label: str) -> Layer:
    if op.code == n.LSTM and op.options.get("kernel_type", 0) != 0:
        raise UnsupportedFeatureError(
            "the BASIC LSTM kernel (kernel_type BASIC)", hint="lstmconv reads the FULL kernel"
        )
    bidirectional = op.code == n.BIDIRECTIONAL_SEQUENCE_LSTM
    if bidirectional:
        aux = [p for p in n.BI_LSTM_AUX if _input(op, p) >= 0]
        if aux:
            raise UnsupportedFeatureError(
                f"an auxiliary input (inputs {aux})", hint="lstmconv reads one input per layer"
            )
        firsts: Sequence[tuple[int, str]] = list(zip(n.BI_LSTM_FIRST, ("fw_", "bw_")))
    else:
        if len(op.inputs) not in (20, 24):
            raise FormatError(f"{len(op.inputs)} inputs, expected 20 or 24")
        norms = [f"{name} (input {p})" for p, name in n.LAYER_NORM if _input(op, p) >= 0]
        if norms:
            raise UnsupportedFeatureError(
                f"layer normalization ({', '.join(norms)})",
                hint="the IR's LSTM has no layer-norm coefficients",
            )
        firsts = [(n.UNI_LSTM_FIRST, "")]
    cells, coupled = [], []
    for first, side in firsts:
        cell, cifg = _lstm_cell(graph, op, first, side)
        cells.append(cell)
        coupled.append(cifg)
    if len(set(coupled)) > 1:
        raise UnsupportedFeatureError("one direction is CIFG and the other is not")
    activation = _activation(op)
    clips = _clips(op, cells[0].w_hr is not None, label)
    if op.options.get("time_major"):
        _log.info(_TIME_MAJOR, label)
    if bidirectional and not op.options.get("merge_outputs"):
        _log.info("%s: two outputs (fw, bw), read as one layer whose output is their concatenation", label)
    if op.code == n.LSTM:
        _log.info(_ONE_STEP, label)
    return Layer(
        Kind.LSTM,
        tuple(cells),
        name=name,
        direction=Direction.BIDIRECTIONAL if bidirectional else Direction.FORWARD,
        activations=(SIGMOID, activation, activation),  # TFLite's gates are always sigmoids
        input_forget=coupled[0],
        cell_clip=clips["cell_clip"],
        proj_clip=clips["proj_clip"],
    )


def _rnn_layer(graph: _Graph, op: flat.Operator, name: str, label: str) -> Layer:
    bidirectional = op.code == n.BIDIRECTIONAL_SEQUENCE_RNN
    if bidirectional:
        aux = [p for p in n.BI_RNN_AUX if _input(op, p) >= 0]
        if aux:
            raise UnsupportedFeatureError(
                f"an auxiliary input (inputs {aux})", hint="lstmconv reads one input per layer"
            )
        firsts: Sequence[tuple[int, str]] = list(zip(n.BI_RNN_FIRST, ("fw_", "bw_")))
    else:
        firsts = [(n.UNI_RNN_FIRST, "")]
    cells = []
    for first, side in firsts:
        found = {}
        for offset, (field, word) in enumerate(n.RNN_SLOTS):
            index = _input(op, first + offset)
            if index < 0:
                raise FormatError(f"required input {first + offset} {side}{word} is absent (-1)")
            found[field] = graph.constant(index, f"input {first + offset} {side}{word}")
        found = _same_dtype(found)
        cells.append(
            Cell(
                w_ih={"h": found["w_ih"]},
                w_hh={"h": found["w_hh"]},
                b_ih={"h": found["bias"]},
                b_hh={"h": np.zeros_like(found["bias"])},
            )
        )
    if op.options.get("time_major"):
        _log.info(_TIME_MAJOR, label)
    if op.code == n.RNN:
        _log.info(_ONE_STEP, label)
    return Layer(
        Kind.RNN,
        tuple(cells),
        name=name,
        direction=Direction.BIDIRECTIONAL if bidirectional else Direction.FORWARD,
        activations=(_activation(op),),
    )


# -- the graph ---------------------------------------------------------------------------------
def _reverse_of(graph: _Graph, tensor: int) -> int | None:
    """The tensor REVERSE_V2 reverses into ``tensor`` along the time axis, or None."""
    op = graph.producers.get(tensor)
    if op is None or op.code != n.REVERSE_V2 or _reverse_axis(graph, op) is None:
        return None
    return op.inputs[0]


def _int_constant(graph: _Graph, index: int) -> np.ndarray | None:
    tensor = graph.tensor(index)
    buffer = graph.model.buffers[tensor.buffer]
    if tensor.type != n.INT32 or not 4 <= buffer.length <= 64 or buffer.length % 4:
        return None
    return np.frombuffer(graph.model.flat.data, dtype="<i4", count=buffer.length // 4, offset=buffer.start)


def _pair_bidirectional(graph: _Graph, reads: list[_Read]) -> list[_Read]:
    """The converter's forms of a Keras ``Bidirectional`` (a forward op on x, a backward op on
    REVERSE_V2(x)) joined into one bidirectional layer, its merge told by the ops after them:
    REVERSE_V2 of the backward output then CONCATENATION (fw first; concat), ADD (sum), MUL
    (mul), ADD then MUL by 0.5 (ave); or, for return_sequences=False, a STRIDED_SLICE of each
    then CONCATENATION. An op on REVERSE_V2(x) that pairs with none is a reverse layer: aligned
    with the input when its output is reversed back, in processing order otherwise."""
    by_output = {read.output: read for read in reads}
    joined: dict[int, _Read] = {}
    dropped: set[int] = set()
    for position, read in enumerate(reads):
        if read.layer.direction is not Direction.FORWARD or read.op.code in (n.LSTM, n.RNN):
            continue
        if read.op.options.get("time_major"):  # its time axis is 0, not the one reversed here
            continue
        source = _reverse_of(graph, read.input)
        if source is None:
            continue
        back = _only(graph, read.output, n.REVERSE_V2)
        if back is not None and _reverse_axis(graph, back) is None:
            back = None
        found = _merged(graph, by_output, read, back)
        if found is not None:
            forward, merge, output = found
            if (
                forward.input == source
                and forward.op.code == read.op.code
                and _twins(forward.layer, read.layer)
            ):
                layer = forward.layer.replace(
                    cells=(forward.layer.cells[0], read.layer.cells[0]),
                    direction=Direction.BIDIRECTIONAL,
                    merge=merge,
                )
                joined[forward.op.index] = _Read(layer, forward.op, source, output)
                dropped.add(read.op.index)
                continue
        # A reverse layer alone: REVERSE_V2(x) → op [→ REVERSE_V2].
        layer = read.layer.replace(direction=Direction.REVERSE, reversed_output=back is None)
        reads[position] = _Read(layer, read.op, source, back.outputs[0] if back is not None else read.output)
    return [joined.get(read.op.index, read) for read in reads if read.op.index not in dropped]


def _only(graph: _Graph, tensor: int, code: int) -> flat.Operator | None:
    """The one consumer of ``tensor`` with operator ``code`` and one output, if there is one."""
    found = [op for op in graph.consumers.get(tensor, []) if op.code == code and len(op.outputs) == 1]
    return found[0] if len(found) == 1 and found[0].outputs[0] >= 0 else None


def _plain(op: flat.Operator) -> bool:
    return not op.options.get("fused_activation_function", 0)


def _merged(
    graph: _Graph, by_output: dict[int, _Read], backward: _Read, back: flat.Operator | None
) -> tuple[_Read, str, int] | None:
    """(forward op, merge mode, merged output) of a backward op, or None."""
    if back is None:  # return_sequences=False: STRIDED_SLICE each, CONCATENATION [fw, bw]
        sliced = _only(graph, backward.output, n.STRIDED_SLICE)
        concat = _only(graph, sliced.outputs[0], n.CONCATENATION) if sliced else None
        if (
            sliced is None
            or concat is None
            or len(concat.inputs) != 2
            or concat.inputs[1] != sliced.outputs[0]
        ):
            return None
        first = graph.producers.get(concat.inputs[0])
        if first is None or first.code != n.STRIDED_SLICE or not first.inputs:
            return None
        forward = by_output.get(first.inputs[0])
        concat_ok = concat.options.get("axis") in (-1, 1) and _plain(concat)
        return (forward, "concat", backward.output) if forward and concat_ok else None
    reversed_back = back.outputs[0]
    for op in graph.consumers.get(reversed_back, []):
        if len(op.inputs) != 2 or len(op.outputs) != 1 or not _plain(op):
            continue
        if op.code == n.CONCATENATION and op.inputs[1] == reversed_back and op.options.get("axis") in (-1, 2):
            forward = by_output.get(op.inputs[0])
            return (forward, "concat", op.outputs[0]) if forward else None
        if op.code in (n.ADD, n.MUL):
            other = op.inputs[0] if op.inputs[1] == reversed_back else op.inputs[1]
            forward = by_output.get(other)
            if forward is None:
                return None
            if op.code == n.MUL:
                return forward, "mul", op.outputs[0]
            half = _only(graph, op.outputs[0], n.MUL)
            if half is not None and _plain(half) and _is_half(graph, half, op.outputs[0]):
                return forward, "ave", half.outputs[0]
            return forward, "sum", op.outputs[0]
    return None


def _is_half(graph: _Graph, op: flat.Operator, value: int) -> bool:
    """Whether MUL ``op`` multiplies ``value`` by a constant 0.5."""
    other = op.inputs[0] if op.inputs[1] == value else op.inputs[1]
    if other < 0:
        return False
    try:
        constant = graph.constant(other, "the MUL factor")
    except LstmconvError:
        return False
    return constant.size == 1 and float(constant.reshape(-1)[0]) == 0.5


def _reverse_axis(graph: _Graph, op: flat.Operator) -> int | None:
    """1 when the REVERSE_V2 ``op`` reverses the time axis of (batch, time, features)."""
    if len(op.inputs) != 2 or min(op.inputs) < 0:
        return None
    axis = _int_constant(graph, op.inputs[1])
    rank = len(graph.tensor(op.inputs[0]).shape)
    if axis is None or axis.size != 1 or rank != 3:
        return None
    return 1 if int(axis[0]) % rank == 1 else None


def _twins(a: Layer, b: Layer) -> bool:
    """Two layers one bidirectional layer can hold: same math, same sizes."""
    same = ("kind", "activations", "input_forget", "cell_clip", "proj_clip", "clip", "dtype")
    sizes = ("input_size", "hidden_size", "proj_size", "has_peepholes", "has_bias")
    return all(getattr(a, f) == getattr(b, f) for f in (*same, *sizes))


def _refuse_loops(graph: _Graph, label: str) -> None:
    for op in graph.graph.operators:
        if op.code == n.WHILE:
            body = op.options.get("body_subgraph_index", -1)
            bodies = graph.model.subgraphs
            body_name = bodies[body].name if 0 <= body < len(bodies) else f"subgraph {body}"
            output = graph.tensor(op.outputs[0]).name if op.outputs and op.outputs[0] >= 0 else "?"
            raise UnsupportedFeatureError(
                f'operator {op.index} (WHILE, body "{body_name}", output "{output}") is a recurrent layer '
                "exported as a WHILE loop, not a fused op; lstmconv cannot read it",
                where=(label,),
                hint="TFLite fuses only LSTMs (tf_keras LSTM → UNIDIRECTIONAL_SEQUENCE_LSTM); GRU, SimpleRNN "
                "and Keras 3 layers become WHILE loops",
            )


def read_model(
    model: flat.TfliteModel, label: str, *, drop_clips: bool = False, dequantize: bool = False
) -> Model:
    reads: list[_Read] = []
    rounding: dict[str, float] = {}
    for sub in model.subgraphs:
        graph = _Graph.of(model, sub, dequantize)
        _refuse_loops(graph, f"subgraph {sub.index}")
        found = []
        for op in sub.operators:
            if op.code not in n.RECURRENT_OPS:
                continue
            op_label = _label(graph, op)
            output = op.outputs[0] if op.outputs else -1
            name = graph.tensor(output).name if output >= 0 else f"{op.op_name.lower()}_{op.index}"
            try:
                if op.code in (n.LSTM, n.UNIDIRECTIONAL_SEQUENCE_LSTM, n.BIDIRECTIONAL_SEQUENCE_LSTM):
                    layer = _lstm_layer(graph, op, name, op_label)
                else:
                    layer = _rnn_layer(graph, op, name, op_label)
            except LstmconvError as error:
                raise error.within(op_label) from None
            found.append(_Read(layer, op, _input(op, 0), output))
        reads += _pair_bidirectional(graph, found)
        rounding.update(graph.rounding)
    if rounding:
        worst = max(rounding, key=rounding.__getitem__)
        _log.warning(
            "%s: %d quantized weight tensor(s) dequantized as asked: each value is the quantizer's "
            "rounding of the trained one, off by up to half a step (at most %.3g, in %s); an integer "
            "kernel also rounds the activations, which the IR computes in float",
            label,
            len(rounding),
            rounding[worst],
            worst,
        )
    if not reads:
        found_ops = sorted({op.op_name for sub in model.subgraphs for op in sub.operators})
        raise WeightLayoutError(
            f"no recurrent op found among {', '.join(found_ops) or 'no operators'}",
            hint="lstmconv reads UNIDIRECTIONAL_SEQUENCE_LSTM, BIDIRECTIONAL_SEQUENCE_LSTM, LSTM, "
            "UNIDIRECTIONAL_SEQUENCE_RNN, BIDIRECTIONAL_SEQUENCE_RNN and RNN (a model converted with "
            "SELECT_TF_OPS keeps TensorFlow's own loop ops instead)",
        )
    names = _common.unique_names(read.layer.name for read in reads)
    layers = [read.layer.replace(name=name) for read, name in zip(reads, names)]
    if drop_clips:
        layers = [_without_clips(layer, label) for layer in layers]
    return Model(tuple(layers), label)


def _without_clips(layer: Layer, label: str) -> Layer:
    clips = {f: getattr(layer, f) for f in ("cell_clip", "proj_clip") if getattr(layer, f) is not None}
    if not clips:
        return layer
    shown = ", ".join(f"{f} {v:g}" for f, v in clips.items())
    _log.warning(
        '%s: layer "%s": %s dropped as asked: the result equals the TFLite model only while the '
        "clipped values stay inside the clip (the verification runs the model without it)",
        label,
        layer.name,
        shown,
    )
    return layer.replace(cell_clip=None, proj_clip=None)


def load(path: str) -> flat.TfliteModel:
    with open(path, "rb") as handle:
        try:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise FormatError("not a readable TFLite model: the file is empty") from None
    return flat.parse(memoryview(buffer))


def read(source: Any, *, drop_clips: bool = False, dequantize: bool = False, **_: Any) -> Model:
    """IR of every recurrent op of a ``.tflite`` file, in subgraph and operator order.

    ``drop_clips`` drops TFLite's ``cell_clip`` and ``proj_clip`` (the converter sets
    ``cell_clip`` 10 on every Keras LSTM), with a warning, so the layers convert to formats that
    cannot clip; otherwise they are kept and such targets refuse them. ``dequantize`` reads
    int8 (and uint8, int16, int32-bias) weights as ``scale · (q - zero_point)`` in float32, with
    a warning of what that rounding costs; otherwise they are refused."""
    path = os.fspath(source)
    return read_model(load(path), path, drop_clips=drop_clips, dequantize=dequantize)
