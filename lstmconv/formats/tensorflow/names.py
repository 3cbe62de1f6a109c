"""TensorFlow's variable names <-> IR layers, without TensorFlow.

TF1 cells (``tf.compat.v1.nn.rnn_cell``; ``tf_keras/layers/rnn/legacy_cells.py``, contrib
``lstm_ops.py``) keep one kernel over ``[x; h]``:

- ``LSTMCell``, ``BasicLSTMCell``, ``LSTMBlockCell``, ``LSTMBlockFusedCell``: ``kernel``
  (I+P, 4H) and ``bias`` (4H), gates ``i j f o`` (j, "ci" in the block cells, is the candidate);
  ``forget_bias`` (default 1.0) is added to f at run time and stored nowhere; peepholes
  ``w_i_diag`` ``w_f_diag`` ``w_o_diag`` (H); ``num_proj`` adds ``projection/kernel`` (H, P).
- ``GRUCell``: ``gates/kernel`` (I+H, 2H) for ``r u`` and ``candidate/kernel`` (I+H, H); the
  candidate is ``tanh([x, r*h]·Wc + bc)`` (reset before the matmul) and ``h' = u*h + (1-u)*c``,
  so ``u`` is the IR's ``z``.
- ``BasicRNNCell``: ``kernel`` (I+H, H), ``bias``.

Keras layers saved by ``tf.train.Checkpoint`` keep Keras's tensors (``kernel``,
``recurrent_kernel``, ``bias``) under ``<layer>/<cell>/`` (:mod:`.objects`); the face's
``layout`` shows either.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import LstmconvError, WeightLayoutError
from ...inspection import Tensor
from ...ir import SIGMOID, Activation, Cell, Direction, Kind, Layer, cell_from_stacked
from .._common import dims
from ..keras import names as keras_names

_log = logging.getLogger(__name__)

#: TF1 cells' column order (Keras layers in TF2 checkpoints keep Keras's, ``keras.names``).
GATE_ORDER: Mapping[Kind, tuple[str, ...]] = {
    Kind.LSTM: ("i", "g", "f", "o"),
    Kind.GRU: ("r", "z", "n"),
    Kind.RNN: ("h",),
}
#: TF1 names the LSTM candidate j and the GRU update gate u.
_TF_GATE_NAMES = {Kind.LSTM: ("i", "j", "f", "o"), Kind.GRU: ("r", "u", "c"), Kind.RNN: ("h",)}
DEFAULT_FORGET_BIAS = 1.0


@dataclasses.dataclass(frozen=True)
class TF1Cell:
    kind: Kind
    #: What TensorFlow adds to f at run time unless told otherwise (None: not an LSTM).
    forget_bias: float | None
    source: str


#: TF1 cell scopes -> what the cell computes.
TF1_CELLS: Mapping[str, TF1Cell] = {
    "lstm_cell": TF1Cell(Kind.LSTM, DEFAULT_FORGET_BIAS, "LSTMCell or LSTMBlockCell"),
    "basic_lstm_cell": TF1Cell(Kind.LSTM, DEFAULT_FORGET_BIAS, "BasicLSTMCell"),
    "lstm_fused_cell": TF1Cell(Kind.LSTM, DEFAULT_FORGET_BIAS, "LSTMBlockFusedCell"),
    # cuDNN's canonical weights as contrib cudnn_rnn saves them (CudnnLSTMSaveable): an
    # LSTMBlockCell with forget_bias 0 whose bias is b_W + b_R; CudnnGRUSaveable's GRU is the
    # reset-after variant, its candidate in input_projection and hidden_projection.
    "cudnn_compatible_lstm_cell": TF1Cell(Kind.LSTM, 0.0, "CudnnLSTM (CudnnCompatibleLSTMCell)"),
    "cudnn_compatible_gru_cell": TF1Cell(Kind.GRU, None, "CudnnGRU (CudnnCompatibleGRUCell)"),
    "gru_cell": TF1Cell(Kind.GRU, None, "GRUCell"),
    "basic_rnn_cell": TF1Cell(Kind.RNN, None, "BasicRNNCell"),
}
_SIDES = ("fw", "bw")
_KERAS_CELL_SCOPE = {Kind.LSTM: "lstm_cell", Kind.GRU: "gru_cell", Kind.RNN: "simple_rnn_cell"}


def natural_key(text: str) -> list[Any]:
    """``cell_2`` before ``cell_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# -- TF1 ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TF1Group:
    """One TF1 layer's variables: ``prefix`` is the scope before fw/bw, ``scope`` the cell's."""

    prefix: str
    scope: str
    sides: dict[str, dict[str, str]]  # "" | fw | bw -> tensor name relative to the cell -> key

    @property
    def name(self) -> str:
        return f"{self.prefix}/{self.scope}" if self.prefix else self.scope


_TF1_TENSORS = re.compile(
    r"^(?:(?P<prefix>.*?)/)?(?:(?P<side>fw|bw)/)?(?P<scope>"
    + "|".join(TF1_CELLS)
    + r")/(?P<tensor>kernel|bias|w_[ifo]_diag|projection/kernel|"
    r"(?:gates|candidate|candidate/input_projection|candidate/hidden_projection)/(?:kernel|bias)|"
    r"[wb]_ru|[wb]_c)$"
)


def tf1_groups(keys: Sequence[str]) -> list[TF1Group]:
    """The TF1 cells among variable names, in natural order of their scopes."""
    groups: dict[tuple[str, str], TF1Group] = {}
    for key in keys:
        match = _TF1_TENSORS.match(key.removesuffix(":0"))
        if not match:
            continue
        prefix, scope = match["prefix"] or "", match["scope"]
        group = groups.setdefault((prefix, scope), TF1Group(prefix, scope, {}))
        group.sides.setdefault(match["side"] or "", {})[match["tensor"]] = key
    return sorted(groups.values(), key=lambda group: natural_key(group.name))


def tf1_layer(
    group: TF1Group,
    tensor: Callable[[str], np.ndarray],
    *,
    forget_bias: float | None = None,
    cell_clip: float | None = None,
    proj_clip: float | None = None,
    activation: str | None = None,
) -> Layer:
    """One IR layer from a TF1 cell's variables (``tensor(key)`` reads one)."""
    known = TF1_CELLS[group.scope]
    sides = set(group.sides)
    if sides not in ({""}, {"fw", "bw"}):
        raise WeightLayoutError(f"expected one cell or a fw/bw pair, found {'/'.join(sorted(sides))}")
    order = ("",) if sides == {""} else _SIDES
    act = keras_names.activation_from_keras(activation or "tanh", keras_major=2)
    fold = known.forget_bias if forget_bias is None else float(forget_bias)
    cells = []
    for side in order:
        keys = group.sides[side]
        try:
            read = {name: np.asarray(tensor(key)) for name, key in keys.items()}
            cells.append(_tf1_cell(known.kind, read, fold or 0.0))
        except LstmconvError as error:
            raise error.within(*(f"{side}/{group.scope}",) if side else ()) from None
    bidirectional = len(cells) == 2
    activations: tuple[Activation, ...] = {
        Kind.LSTM: (SIGMOID, act, act),
        Kind.GRU: (SIGMOID, act),
        Kind.RNN: (act,),
    }[known.kind]
    return Layer(
        known.kind,
        tuple(cells),
        name=group.name,
        direction=Direction.BIDIRECTIONAL if bidirectional else Direction.FORWARD,
        activations=activations,
        reset_after=known.kind is not Kind.GRU or group.scope == "cudnn_compatible_gru_cell",
        cell_clip=cell_clip if known.kind is Kind.LSTM else None,
        proj_clip=proj_clip if "projection/kernel" in group.sides[order[0]] else None,
    )


def _need(read: Mapping[str, np.ndarray], name: str, ndim: int) -> np.ndarray:
    if name not in read:
        raise WeightLayoutError(f"expected a tensor {name!r}, found only {', '.join(sorted(read))}")
    array = read[name]
    if array.ndim != ndim:
        raise WeightLayoutError(f"expected a {ndim}-D tensor, found shape {dims(array.shape)}", where=(name,))
    return array


def _split_kernel(kernel: np.ndarray, recurrent: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A kernel over [x; h] as (input rows, recurrent rows), each transposed to out × in."""
    inputs = kernel.shape[0] - recurrent
    if inputs <= 0:
        raise WeightLayoutError(
            f"expected (I+{recurrent}, G·H) rows over [x; h], found shape {dims(kernel.shape)}", where=(name,)
        )
    return kernel[:inputs].T, kernel[inputs:].T


def _tf1_cell(kind: Kind, read: Mapping[str, np.ndarray], forget_bias: float) -> Cell:
    if kind is Kind.GRU:
        return _tf1_gru(read)
    gates = len(GATE_ORDER[kind])
    kernel = _need(read, "kernel", 2)
    if kernel.shape[1] % gates:
        raise WeightLayoutError(
            f"expected {gates}·H columns, found shape {dims(kernel.shape)}", where=("kernel",)
        )
    hidden = kernel.shape[1] // gates
    bias = _need(read, "bias", 1) if "bias" in read else None
    if bias is not None and bias.shape != (gates * hidden,):
        raise WeightLayoutError(
            f"expected shape ({gates * hidden},), found {dims(bias.shape)}", where=("bias",)
        )
    w_hr = None
    if "projection/kernel" in read:
        projection = _need(read, "projection/kernel", 2)
        if projection.shape[0] != hidden:
            raise WeightLayoutError(
                f"expected ({hidden}, P), found {dims(projection.shape)}", where=("projection/kernel",)
            )
        w_hr = projection.T
    recurrent = hidden if w_hr is None else w_hr.shape[0]
    w_ih, w_hh = _split_kernel(kernel, recurrent, "kernel")
    peephole = None
    diagonals = [name for name in ("w_i_diag", "w_f_diag", "w_o_diag") if name in read]
    if diagonals:
        if len(diagonals) != 3:
            raise WeightLayoutError(f"expected w_i_diag, w_f_diag and w_o_diag, found {', '.join(diagonals)}")
        peephole = np.concatenate([_need(read, name, 1) for name in ("w_i_diag", "w_f_diag", "w_o_diag")])
    b_ih = b_hh = None
    if bias is not None or (kind is Kind.LSTM and forget_bias):
        b_ih = bias if bias is not None else np.zeros(gates * hidden, kernel.dtype)
        b_hh = np.zeros_like(b_ih)
        if kind is Kind.LSTM:  # the run-time forget_bias, held exactly on the recurrent side
            f = GATE_ORDER[kind].index("f")
            b_hh[f * hidden : (f + 1) * hidden] = forget_bias
    return cell_from_stacked(GATE_ORDER[kind], w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, peephole=peephole)


def _cudnn_gru(read: Mapping[str, np.ndarray]) -> Cell:
    """CudnnCompatibleGRUCell: ``n = tanh(x·Wx + bx + r * (h·Wh + bh))``; gates/bias is the sum
    of cuDNN's two r, u biases."""
    gates = _need(read, "gates/kernel", 2)
    w_x, w_h = (
        _need(read, "candidate/input_projection/kernel", 2),
        _need(read, "candidate/hidden_projection/kernel", 2),
    )
    hidden = w_h.shape[0]
    if w_h.shape != (hidden, hidden) or gates.shape != (w_x.shape[0] + hidden, 2 * hidden):
        raise WeightLayoutError(
            f"expected gates/kernel (I+H, 2H), input_projection (I, H), hidden_projection (H, H); "
            f"found {dims(gates.shape)}, {dims(w_x.shape)}, {dims(w_h.shape)}"
        )
    g_ih, g_hh = _split_kernel(gates, hidden, "gates/kernel")
    w_ih, w_hh = np.concatenate([g_ih, w_x.T]), np.concatenate([g_hh, w_h.T])
    names = ("gates/bias", "candidate/input_projection/bias", "candidate/hidden_projection/bias")
    present = [name in read for name in names]
    if not any(present):
        return cell_from_stacked(GATE_ORDER[Kind.GRU], w_ih, w_hh)
    if not all(present):
        raise WeightLayoutError(f"expected {', '.join(names)} together")
    g_b, x_b, h_b = (_need(read, name, 1) for name in names)
    if g_b.shape != (2 * hidden,) or x_b.shape != (hidden,) or h_b.shape != (hidden,):
        raise WeightLayoutError(f"expected biases (2H,), (H,), (H,) for H={hidden}")
    b_ih = np.concatenate([g_b, x_b])
    b_hh = np.concatenate([np.zeros_like(g_b), h_b])  # b_hn stays inside r * (...)
    return cell_from_stacked(GATE_ORDER[Kind.GRU], w_ih, w_hh, b_ih, b_hh)


#: contrib's GRUBlockCell (gru_ops.py) names GRUCell's tensors w_ru, b_ru, w_c, b_c (its V2 and
#: the op compute the same).
_GRU_BLOCK_NAMES = {
    "w_ru": "gates/kernel",
    "b_ru": "gates/bias",
    "w_c": "candidate/kernel",
    "b_c": "candidate/bias",
}


def _tf1_gru(read: Mapping[str, np.ndarray]) -> Cell:
    if "candidate/input_projection/kernel" in read:
        return _cudnn_gru(read)
    if set(read) & set(_GRU_BLOCK_NAMES):
        if set(read) & set(_GRU_BLOCK_NAMES.values()):
            raise WeightLayoutError("GRUBlockCell's w_ru/w_c and GRUCell's gates/candidate in one scope")
        read = {_GRU_BLOCK_NAMES.get(name, name): array for name, array in read.items()}
    gates, candidate = _need(read, "gates/kernel", 2), _need(read, "candidate/kernel", 2)
    hidden = candidate.shape[1]
    if gates.shape != (candidate.shape[0], 2 * hidden):
        raise WeightLayoutError(
            f"expected ({candidate.shape[0]}, {2 * hidden}) beside candidate/kernel {dims(candidate.shape)}, "
            f"found {dims(gates.shape)}",
            where=("gates/kernel",),
        )
    g_ih, g_hh = _split_kernel(gates, hidden, "gates/kernel")
    c_ih, c_hh = _split_kernel(candidate, hidden, "candidate/kernel")
    w_ih, w_hh = np.concatenate([g_ih, c_ih]), np.concatenate([g_hh, c_hh])
    has = ["gates/bias" in read, "candidate/bias" in read]
    if any(has) and not all(has):
        raise WeightLayoutError("expected both gates/bias and candidate/bias, or neither")
    bias = None
    if all(has):
        g_b, c_b = _need(read, "gates/bias", 1), _need(read, "candidate/bias", 1)
        if g_b.shape != (2 * hidden,) or c_b.shape != (hidden,):
            raise WeightLayoutError(
                f"expected gates/bias ({2 * hidden},) and candidate/bias ({hidden},), "
                f"found {dims(g_b.shape)}, {dims(c_b.shape)}"
            )
        bias = np.concatenate([g_b, c_b])
    return cell_from_stacked(GATE_ORDER[Kind.GRU], w_ih, w_hh, bias)


def assumed_activation(groups: Sequence[TF1Group], label: str, given: str | None) -> None:
    """A BasicRNNCell's activation (and CudnnRNNRelu's, saved under the same name) is stored
    nowhere: tanh is assumed, and said."""
    simple = [group.name for group in groups if TF1_CELLS[group.scope].kind is Kind.RNN]
    if simple and given is None:
        _log.warning(
            "%s: a TF1 BasicRNNCell's activation is not stored; assumed tanh for %s; pass activation=relu "
            "if it was CudnnRNNRelu or used another",
            label,
            ", ".join(simple),
        )


def assumed_forget_bias(groups: Sequence[TF1Group], label: str, given: float | None) -> None:
    """Say, every time, that a TF1 LSTM's run-time forget_bias was assumed."""
    if given is not None:
        return
    lstm = [group for group in groups if TF1_CELLS[group.scope].forget_bias == DEFAULT_FORGET_BIAS]
    if lstm:
        _log.warning(
            "%s: forget_bias is not stored in a TF1 checkpoint; assumed %g (TensorFlow's default) for %s "
            "and folded into b_f; pass forget_bias=... (--forget-bias) if the model used another",
            label,
            DEFAULT_FORGET_BIAS,
            ", ".join(group.name for group in lstm),
        )


# -- the face -------------------------------------------------------------------------------------
def check(layer: Layer) -> None:
    """TensorFlow files are read here, not written: nothing to check."""


def layout(layer: Layer) -> list[Tensor]:
    """The tensors as TensorFlow names them: TF1 cells for a layer read from TF1 names, else the
    Keras tensors under the layer's name (what ``tf.train.Checkpoint`` of a Keras model keeps)."""
    scope = layer.name.rsplit("/", 1)[-1]
    if scope not in TF1_CELLS:  # Keras's full names: <layer>/[forward_layer/]lstm_cell/kernel
        cell = _KERAS_CELL_SCOPE[layer.kind]
        return [
            Tensor(f"{layer.name}/{t.name.replace('cell/', cell + '/')}", t.shape, t.gates)
            for t in keras_names.layout(layer)
        ]
    prefix = layer.name.rsplit("/", 1)[0] + "/" if "/" in layer.name else ""
    sides = [f"{side}/" for side in _SIDES] if layer.direction is Direction.BIDIRECTIONAL else [""]
    h, i, p, g = layer.hidden_size, layer.input_size, layer.state_size, len(layer.gates)
    order = "·".join(_TF_GATE_NAMES[layer.kind])
    tensors = []
    for side in sides:
        base = f"{prefix}{side}{scope}"
        if layer.kind is Kind.GRU and scope == "cudnn_compatible_gru_cell":
            tensors += [
                Tensor(f"{base}/gates/kernel", (i + h, 2 * h), "r·u over [x; h]"),
                Tensor(f"{base}/candidate/input_projection/kernel", (i, h), "c"),
                Tensor(f"{base}/candidate/hidden_projection/kernel", (h, h), "c"),
            ]
            if layer.has_bias:
                tensors += [
                    Tensor(f"{base}/gates/bias", (2 * h,), "r·u (b_W + b_R)"),
                    Tensor(f"{base}/candidate/input_projection/bias", (h,), "c"),
                    Tensor(f"{base}/candidate/hidden_projection/bias", (h,), "c"),
                ]
            continue
        if layer.kind is Kind.GRU:
            tensors += [
                Tensor(f"{base}/gates/kernel", (i + h, 2 * h), "r·u over [x; h]"),
                Tensor(f"{base}/candidate/kernel", (i + h, h), "c over [x; r·h]"),
            ]
            if layer.has_bias:
                tensors += [
                    Tensor(f"{base}/gates/bias", (2 * h,), "r·u"),
                    Tensor(f"{base}/candidate/bias", (h,), "c"),
                ]
            continue
        tensors.append(Tensor(f"{base}/kernel", (i + p, g * h), f"{order} over [x; h]"))
        if layer.has_bias:
            tensors.append(Tensor(f"{base}/bias", (g * h,), order))
        if layer.has_peepholes:
            tensors += [Tensor(f"{base}/w_{gate}_diag", (h,), "") for gate in "ifo"]
        if layer.proj_size:
            tensors.append(Tensor(f"{base}/projection/kernel", (h, p), ""))
    return tensors
