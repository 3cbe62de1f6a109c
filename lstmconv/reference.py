"""A NumPy forward pass of the IR: the oracle every conversion is checked against.

It computes in float64 whatever the weights' dtype, over input shaped (batch, time, features),
and returns the last layer's full output sequence (batch, time, features) in float64. ``dtype``
asks for another precision (float32): verification runs it once to measure how much rounding
a layer amplifies on its inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import gates as gatelib
from .errors import WeightLayoutError
from .ir import Activation, Cell, Direction, Kind, Layer, Model

Array = np.ndarray


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


def _softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


_FUNCTIONS: dict[str, Callable[[Array, float, float], Array]] = {
    "sigmoid": lambda x, a, b: _sigmoid(x),
    "tanh": lambda x, a, b: np.tanh(x),
    "relu": lambda x, a, b: np.maximum(x, 0.0),
    "softsign": lambda x, a, b: x / (1.0 + np.abs(x)),
    "softplus": lambda x, a, b: _softplus(x),
    "hard_sigmoid": lambda x, a, b: np.clip(a * x + b, 0.0, 1.0),
    "affine": lambda x, a, b: a * x + b,
    "leaky_relu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "thresholded_relu": lambda x, a, b: np.where(x > a, x, 0.0),
    "scaled_tanh": lambda x, a, b: a * np.tanh(b * x),
    "elu": lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0.0))),
}


def activate(activation: Activation, x: Array) -> Array:
    """Apply ``activation`` elementwise."""
    return _FUNCTIONS[activation.name](x, activation.alpha or 0.0, activation.beta or 0.0)


def run(model: Model | Layer, x: Array, *, dtype: np.dtype | type = np.float64) -> Array:
    """Run every layer of ``model`` in order on ``x`` (batch, time, features), computing in
    ``dtype`` (float64 unless asked)."""
    layers = (model,) if isinstance(model, Layer) else model.layers
    value = np.asarray(x, dtype=dtype)
    if value.ndim != 3:
        raise WeightLayoutError(f"expected input shaped (batch, time, features), found {value.shape}")
    if isinstance(model, Model):
        model.check_chain()
    for layer in layers:
        if value.shape[2] != layer.input_size:
            raise WeightLayoutError(
                f"expected {layer.input_size} input features, found {value.shape[2]}",
                where=(f'layer "{layer.name}"',),
            )
        value = run_layer(layer, value)
    return value


def run_layer(layer: Layer, x: Array) -> Array:
    """One layer over (batch, time, features), outputs merged as the layer says."""
    outputs = []
    for index, cell in enumerate(layer.cells):
        backward = layer.direction is Direction.REVERSE or index == 1
        sequence = x[:, ::-1] if backward else x
        y = _STEPPERS[layer.kind](layer, cell, sequence)
        if backward and not layer.reversed_output:
            y = y[:, ::-1]
        outputs.append(y)
    if len(outputs) == 1:
        return outputs[0]
    forward, backward_out = outputs
    if layer.merge == "concat":
        return np.concatenate([forward, backward_out], axis=2)
    if layer.merge == "sum":
        return forward + backward_out
    if layer.merge == "mul":
        return forward * backward_out
    return (forward + backward_out) / 2.0


def _stacked(cell: Cell, gates: tuple[str, ...], dtype: np.dtype) -> tuple[Array, Array, Array, Array]:
    """(W, R, b_ih, b_hh) in canonical order, in ``dtype``; zero biases when the layer has none."""
    w = gatelib.pack(cell.w_ih, gates).astype(dtype)
    r = gatelib.pack(cell.w_hh, gates).astype(dtype)
    if cell.b_ih is None or cell.b_hh is None:
        zero = np.zeros(w.shape[0], dtype)
        return w, r, zero, zero
    return (
        w,
        r,
        gatelib.pack(cell.b_ih, gates).astype(dtype),
        gatelib.pack(cell.b_hh, gates).astype(dtype),
    )


def _clip(layer: Layer, value: Array) -> Array:
    return value if layer.clip is None else np.clip(value, -layer.clip, layer.clip)


def _lstm(layer: Layer, cell: Cell, x: Array) -> Array:
    w, r, b_ih, b_hh = _stacked(cell, layer.gates, x.dtype)
    gate_fn, cell_fn, out_fn = layer.activations
    hidden = layer.hidden_size
    batch, steps, _ = x.shape
    projected = x @ w.T + (b_ih + b_hh)
    peep = {g: cell.peephole[g].astype(x.dtype) for g in "ifo"} if cell.peephole else None
    w_hr = None if cell.w_hr is None else cell.w_hr.astype(x.dtype)
    h = np.zeros((batch, layer.state_size), x.dtype)
    c = np.zeros((batch, hidden), x.dtype)
    out = np.empty((batch, steps, layer.state_size), x.dtype)
    for t in range(steps):
        z = projected[:, t] + h @ r.T
        zi, zf, zg, zo = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
        if peep is not None:
            zi = zi + peep["i"] * c
            zf = zf + peep["f"] * c
        i = activate(gate_fn, _clip(layer, zi))
        f = 1.0 - i if layer.input_forget else activate(gate_fn, _clip(layer, zf))
        g = activate(cell_fn, _clip(layer, zg))
        c = f * c + i * g
        if layer.cell_clip is not None:  # TF1 / TFLite: the carried state itself
            c = np.clip(c, -layer.cell_clip, layer.cell_clip)
        if peep is not None:
            zo = zo + peep["o"] * c
        o = activate(gate_fn, _clip(layer, zo))
        # ONNX clips the gate pre-activations only; onnxruntime does not clip c before h().
        h = o * activate(out_fn, c)
        if w_hr is not None:
            h = h @ w_hr.T
            if layer.proj_clip is not None:
                h = np.clip(h, -layer.proj_clip, layer.proj_clip)
        out[:, t] = h
    return out


def _gru(layer: Layer, cell: Cell, x: Array) -> Array:
    w, r, b_ih, b_hh = _stacked(cell, layer.gates, x.dtype)
    gate_fn, cand_fn = layer.activations
    hidden = layer.hidden_size
    batch, steps, _ = x.shape
    projected = x @ w.T + b_ih
    r_rz, r_n = r[: 2 * hidden], r[2 * hidden :]
    b_rz, b_n = b_hh[: 2 * hidden], b_hh[2 * hidden :]
    h = np.zeros((batch, hidden), x.dtype)
    out = np.empty((batch, steps, hidden), x.dtype)
    for t in range(steps):
        xr, xz, xn = (projected[:, t, k * hidden : (k + 1) * hidden] for k in range(3))
        hrz = h @ r_rz.T + b_rz
        reset = activate(gate_fn, xr + hrz[:, :hidden])
        update = activate(gate_fn, xz + hrz[:, hidden:])
        if layer.reset_after:
            n = activate(cand_fn, xn + reset * (h @ r_n.T + b_n))
        else:
            n = activate(cand_fn, xn + (reset * h) @ r_n.T + b_n)
        h = (1.0 - update) * n + update * h
        out[:, t] = h
    return out


def _rnn(layer: Layer, cell: Cell, x: Array) -> Array:
    w, r, b_ih, b_hh = _stacked(cell, layer.gates, x.dtype)
    (act,) = layer.activations
    batch, steps, _ = x.shape
    projected = x @ w.T + (b_ih + b_hh)
    h = np.zeros((batch, layer.hidden_size), x.dtype)
    out = np.empty((batch, steps, layer.hidden_size), x.dtype)
    for t in range(steps):
        h = activate(act, projected[:, t] + h @ r.T)
        out[:, t] = h
    return out


_STEPPERS = {Kind.LSTM: _lstm, Kind.GRU: _gru, Kind.RNN: _rnn}
