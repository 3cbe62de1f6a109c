"""What ``inspect`` shows of a layer: its tensors as a format stores them (names, shapes, gate
orders) and in the canonical layout, its math, and its parameter counts, as plain data.

Each format family's face declares its own ``layout(layer)``; this module asks the registry
for it, so framework names stay in their families and no framework is imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .ir import Kind, Layer
from .plain import PlainLayer
from .registry import by_name

#: What inspect calls each activation slot of a kind.
SLOT_NAMES: Mapping[Kind, tuple[str, ...]] = MappingProxyType(
    {Kind.LSTM: ("gate", "cell", "output"), Kind.GRU: ("gate", "candidate"), Kind.RNN: ("output",)}
)


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    gates: str  # the stacking order along the gate axis, "" where there is none


def stored(layer: Layer, fmt: str) -> list[Tensor]:
    """The tensors ``fmt`` stores for ``layer``."""
    return by_name(fmt).load_face().layout(layer)


def canonical(layer: Layer) -> list[Tensor]:
    tensors = []
    for index, cell in enumerate(layer.cells):
        direction = layer.direction_name(index)
        for name, array in cell.tensors():
            tensors.append(Tensor(f"{direction}/{name}", tuple(array.shape), ""))
    return tensors


def parameter_count(tensors: list[Tensor]) -> int:
    total = 0
    for tensor in tensors:
        count = 1
        for n in tensor.shape:
            count *= n
        total += count
    return total


def describe(layer: Layer, fmt: str) -> dict[str, Any]:
    """One layer as ``inspect --json`` shows it, with its tensors as ``fmt`` stores them."""
    in_format, in_ir = stored(layer, fmt), canonical(layer)
    return {
        "name": layer.name,
        "kind": layer.kind.value,
        "direction": layer.direction.value,
        "merge": layer.merge if layer.num_directions == 2 else None,
        "input_size": layer.input_size,
        "hidden_size": layer.hidden_size,
        "proj_size": layer.proj_size,
        "output_size": layer.output_size,
        "dtype": str(layer.dtype),
        "activations": {slot: str(a) for slot, a in zip(SLOT_NAMES[layer.kind], layer.activations)},
        "gru_variant": ("reset-after" if layer.reset_after else "reset-before")
        if layer.kind is Kind.GRU
        else None,
        "clip": layer.clip,
        "input_forget": layer.input_forget,
        "peepholes": layer.has_peepholes,
        "bias": layer.has_bias,
        "reversed_output": layer.reversed_output,
        "stepped": layer.stepped,
        "stored": [{"name": t.name, "shape": list(t.shape), "gates": t.gates} for t in in_format],
        "canonical": [{"name": t.name, "shape": list(t.shape)} for t in in_ir],
        "parameters": {"stored": parameter_count(in_format), "canonical": parameter_count(in_ir)},
    }


def describe_plain(layer: PlainLayer, fmt: str) -> dict[str, Any]:
    """One plain layer (Embedding, Dense, ...) as ``inspect --json`` shows it: its kind, sizes,
    options and tensors, as ``fmt`` stores them where its face says (``plain_layout``), else
    in the canonical layout."""
    in_ir = [Tensor(name, tuple(int(n) for n in array.shape), "") for name, array in layer.items()]
    laid = getattr(by_name(fmt).load_face(), "plain_layout", None)
    in_format = laid(layer) if laid is not None else in_ir
    return {
        "name": layer.name,
        "kind": layer.kind.value,
        "input_size": layer.input_size,
        "output_size": layer.output_size,
        "dtype": None if layer.dtype is None else str(layer.dtype),
        "options": dict(layer.options),
        "stored": [{"name": t.name, "shape": list(t.shape)} for t in in_format],
        "canonical": [{"name": t.name, "shape": list(t.shape)} for t in in_ir],
        "parameters": {"stored": parameter_count(in_format), "canonical": parameter_count(in_ir)},
    }


# -- inspect --as: one layer in a framework's own layout ---------------------------------------------
#: ``inspect --as`` names, and the format whose face lays the tensors out.
VIEWS: Mapping[str, str] = MappingProxyType(
    {"keras": "keras", "torch": "torch", "onnx": "onnx", "tf": "tf-checkpoint", "tflite": "tflite"}
)
_FRAMEWORK = MappingProxyType(
    {"keras": "Keras", "torch": "PyTorch", "onnx": "ONNX", "tf": "TensorFlow 1 cells", "tflite": "TFLite"}
)
#: Each framework's own gate letters, in its stacking order, where they are not canonical.
_LETTERS: Mapping[str, Mapping[Kind, tuple[str, ...]]] = MappingProxyType(
    {
        "keras": {Kind.LSTM: ("i", "f", "c", "o"), Kind.GRU: ("z", "r", "h")},
        "onnx": {Kind.LSTM: ("i", "o", "f", "c"), Kind.GRU: ("z", "r", "h")},
        "tf": {Kind.LSTM: ("i", "j", "f", "o"), Kind.GRU: ("r", "u", "c")},
    }
)
_MEANING = MappingProxyType(
    {
        "i": "input",
        "f": "forget",
        "g": "cell candidate",
        "o": "output",
        "r": "reset",
        "z": "update",
        "n": "candidate",
        "h": "hidden",
    }
)
_NOTES: Mapping[str, Mapping[Kind, str]] = MappingProxyType(
    {
        "keras": {
            Kind.LSTM: "one bias per gate (b_ih + b_hh summed); kernel is (in, 4·H): gates along columns",
            Kind.GRU: "reset_after: bias is (2, 3·H), row 0 the input bias, row 1 the recurrent one",
        },
        "torch": {
            Kind.LSTM: "weights are (4·H, in): gates along rows; b_ih and b_hh kept apart",
            Kind.GRU: "r·z·n as canonical; n = tanh(W_n x + b_in + r ⊙ (R_n h + b_hn))",
        },
        "onnx": {
            Kind.LSTM: "W, R are (directions, 4·H, in); B = [Wb; Rb] is (directions, 8·H)",
            Kind.GRU: "linear_before_reset=1 is reset-after; B = [Wb; Rb]",
        },
        "tf": {
            Kind.LSTM: "one kernel over [x; h]: rows 0:I multiply x, rows I:I+H multiply h; "
            "forget_bias (default 1.0) is added to b_f at run time, not stored",
            Kind.GRU: "gates/kernel holds r·u over [x; h]; candidate/kernel c over [x; r·h] (reset-before)",
        },
        "tflite": {
            Kind.LSTM: "one tensor per gate and side (fw_/bw_), weights (H, in)",
        },
    }
)


def _formula(view: str, layer: Layer) -> str | None:
    """The stored parameter count per direction, as a formula in G (gates), H, I."""
    g = len(layer.gates)
    reset_after = layer.kind is Kind.GRU and layer.reset_after
    biases = 2 if view in ("torch", "onnx") or (view == "keras" and reset_after) else 1
    if view in ("tf", "tflite") and layer.kind is Kind.GRU:
        biases = 1
    factor = "" if g == 1 else f"{g}·"
    return f"{factor}H·(I+H+{biases})" if layer.has_bias else f"{factor}H·(I+H)"


def _role(name: str) -> str:
    last = name.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower()
    if last in ("r",) or "recurrent" in last or "hh" in last:
        return "b_hh" if "bias" in last else "R"
    if last == "b" or "bias" in last:
        return "b_ih" if "ih" in last else "b"
    return "W"


def view(layer: Layer, name: str) -> dict[str, Any]:
    """``layer`` laid out as framework ``name`` (keras, torch, onnx, tf, tflite) stores it: the
    tensors with their shapes, each gate's slice, the parameter formula, and a legend."""
    fmt = VIEWS[name]
    laid = layer
    if name == "tf":  # the TF1 cell layout, whatever the layer was read from
        from .formats.tensorflow import names as tf_names

        scope = layer.name.rsplit("/", 1)[-1]
        if scope not in tf_names.TF1_CELLS:
            cell = {Kind.LSTM: "lstm_cell", Kind.GRU: "gru_cell", Kind.RNN: "basic_rnn_cell"}[layer.kind]
            laid = layer.replace(name=f"{layer.name}/{cell}")
    face = by_name(fmt).load_face()
    face.check(layer)
    order = face.GATE_ORDER[layer.kind]
    letters = _LETTERS.get(name, {}).get(layer.kind, order)
    to_canonical = dict(zip(letters, order))
    h, g = layer.hidden_size, len(layer.gates)
    tensors = []
    for t in face.layout(laid):
        stored = t.gates.split(" ")[0].strip("[") if t.gates else ""
        gate_letters = [x for x in stored.split("·") if x] if stored and not stored.startswith("Wb") else []
        slices: list[dict[str, Any]] = []
        if t.gates.startswith("[Wb"):  # ONNX B: the input biases, then the recurrent ones
            axis = len(t.shape) - 1
            for half, role in enumerate(("Wb", "Rb")):
                for k, letter in enumerate(letters):
                    start = (half * g + k) * h
                    slices.append(
                        {
                            "gate": to_canonical[letter],
                            "stored": letter,
                            "role": role,
                            "axis": axis,
                            "range": [start, start + h],
                        }
                    )
        elif gate_letters:
            width = len(gate_letters) * h
            found = next((a for a, n in enumerate(t.shape) if n == width), None)
            if found is not None and len(gate_letters) > 1:
                axis = found
                for k, letter in enumerate(gate_letters):
                    slices.append(
                        {
                            "gate": to_canonical.get(letter, letter),
                            "stored": letter,
                            "role": _role(t.name),
                            "axis": axis,
                            "range": [k * h, (k + 1) * h],
                        }
                    )
        tensors.append({"name": t.name, "shape": list(t.shape), "gates": gate_letters, "slices": slices})
    stored_count = parameter_count(face.layout(laid))
    legend = [
        f"{letter} = canonical {canon} ({_MEANING.get(canon, canon)})"
        if letter != canon
        else f"{letter} ({_MEANING.get(canon, canon)})"
        for letter, canon in zip(letters, order)
    ]
    note = _NOTES.get(name, {}).get(layer.kind)
    if name == "keras" and layer.kind is Kind.GRU and not layer.reset_after:
        note = "reset_after=False: one bias (3·H,) per gate, the reset applied before R"
    return {
        "framework": _FRAMEWORK[name],
        "gate_order": list(letters),
        "canonical_order": list(order),
        "tensors": tensors,
        "formula": _formula(name, layer),
        "directions": layer.num_directions,
        "parameters": stored_count,
        "legend": legend + ([note] if note else []),
    }


def slice_text(tensor: Mapping[str, Any]) -> str:
    """``kernel[:, 0:32] = W_i  [:, 32:64] = W_f ...`` for one tensor."""
    parts = []
    for s in tensor["slices"]:
        index = [":"] * len(tensor["shape"])
        index[s["axis"]] = f"{s['range'][0]}:{s['range'][1]}"
        role = {"Wb": "Wb", "Rb": "Rb"}.get(s["role"], s["role"])
        own = "" if s["stored"] == s["gate"] else f" ({s['stored']})"
        parts.append(f"[{', '.join(index)}] = {role}_{s['gate']}{own}")
    if not parts:
        return ""
    short = tensor["name"].rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return short + parts[0] + "  " + "  ".join(parts[1:])
