"""PyTorch ``nn.LSTM/GRU/RNN`` state_dict naming, without importing torch.

Shared by the ``torch`` format (live modules and ``.pt`` files) and the ``safetensors`` format.
Names: ``<prefix>weight_ih_l{k}[_reverse]`` (G·H, in), ``weight_hh`` (G·H, H or P),
``bias_ih``, ``bias_hh`` (G·H), ``weight_hr`` (P, H); gates ``i f g o`` and ``r z n``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ... import dtypes
from ...errors import FormatError, LstmconvError, UnsupportedFeatureError, WeightLayoutError
from ...inspection import Tensor
from ...ir import (
    DEFAULT_ACTIVATIONS,
    RELU,
    TANH,
    Activation,
    Cell,
    Direction,
    Kind,
    Layer,
    Model,
    Skipped,
    cell_from_stacked,
)
from .. import _common

_log = logging.getLogger(__name__)
GATE_ORDER: Mapping[Kind, tuple[str, ...]] = {
    Kind.LSTM: ("i", "f", "g", "o"),
    Kind.GRU: ("r", "z", "n"),
    Kind.RNN: ("h",),
}
_GATE_COUNT_KIND = {4: Kind.LSTM, 3: Kind.GRU, 1: Kind.RNN}
_KEY = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<field>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
    r"_l(?P<index>\d+)(?P<reverse>_reverse)?$"
)
_FIELDS = {
    "weight_ih": "w_ih",
    "weight_hh": "w_hh",
    "bias_ih": "b_ih",
    "bias_hh": "b_hh",
    "weight_hr": "w_hr",
}
NONLINEARITIES = ("tanh", "relu")
_STACKED_NAME = re.compile(r"^(?P<module>.+)\.l(?P<index>\d+)$")

Group = dict[tuple[int, bool], dict[str, np.ndarray]]
#: Where checkpoints keep the model's state_dict, searched in this order.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")
#: The key of the RNN nonlinearity lstmconv records in a state_dict's ``_metadata``.
META_KEY = "lstmconv_nonlinearity"


def find_state_dict(loaded: object, is_tensor: Callable[[object], bool]) -> Mapping[str, Any] | None:
    """The state_dict in what a ``.pt`` file holds: itself, or one a checkpoint holds."""
    if not isinstance(loaded, Mapping):
        return None
    if any(is_tensor(value) for value in loaded.values()) and bool(
        recurrent_groups({k: v for k, v in loaded.items() if isinstance(k, str)})
    ):  # bool, not any(): the prefix of a bare nn.LSTM is "", which any() would call empty
        return loaded
    for key in CHECKPOINT_KEYS:
        inner = find_state_dict(loaded.get(key), is_tensor)
        if inner is not None:
            return inner
    for value in loaded.values():
        inner = find_state_dict(value, is_tensor)
        if inner is not None:
            return inner
    return None


def recorded_nonlinearities(state: object) -> dict[str, str]:
    """The RNN nonlinearities lstmconv recorded in the state_dict's ``_metadata``, by prefix."""
    metadata = getattr(state, "_metadata", None) or {}
    return {
        prefix: str(entry[META_KEY])
        for prefix, entry in metadata.items()
        if isinstance(entry, Mapping) and entry.get(META_KEY) in NONLINEARITIES
    }


#: The key of the links between modules lstmconv records in ``_metadata[""]``.
LINKS_KEY = "lstmconv_links"


def recorded_links(state: object) -> list[tuple[str, str]]:
    """The (from, to) module links lstmconv recorded in the state_dict's ``_metadata``."""
    metadata = getattr(state, "_metadata", None) or {}
    entry = metadata.get("") if isinstance(metadata, Mapping) else None
    return checked_links(entry.get(LINKS_KEY) if isinstance(entry, Mapping) else None)


def checked_links(value: object) -> list[tuple[str, str]]:
    """Recorded links as pairs of names; anything else is ignored (it came from a stranger)."""
    if not isinstance(value, list):
        return []
    return [
        (a, b)
        for a, b in (p for p in value if isinstance(p, list) and len(p) == 2)
        if isinstance(a, str) and isinstance(b, str)
    ]


def written_links(model: Model) -> list[list[str]]:
    """The model's chains as links in the module names :func:`state_dict` writes (to be recorded)."""
    names = dict(zip((layer.name for layer in model), module_names(model)))
    chained = [(a.name, b.name) for chain in model.chains() for a, b in zip(chain, chain[1:])]
    return [[names[a], names[b]] for a, b in chained]


def recurrent_groups(tensors: Mapping[str, np.ndarray]) -> dict[str, Group]:
    """Keys of recurrent modules grouped by prefix, in first-appearance order."""
    groups: dict[str, Group] = {}
    for key, array in tensors.items():
        match = _KEY.match(key)
        if match is None:
            continue
        slot = (int(match["index"]), match["reverse"] is not None)
        groups.setdefault(match["prefix"], {}).setdefault(slot, {})[match["field"]] = array
    return groups


def infer_kind(group: Group, prefix: str) -> Kind:
    """LSTM, GRU or RNN from the shapes alone: weight_hh is (G·H, H), or (4H, P) with weight_hr."""
    fields = group[min(group)]
    if "weight_hh" not in fields or "weight_ih" not in fields:
        raise WeightLayoutError(
            f"expected weight_ih and weight_hh, found {sorted(fields)}", where=(prefix or "<root>",)
        )
    rows, cols = fields["weight_hh"].shape[0], fields["weight_hh"].shape[-1]
    if "weight_hr" in fields:
        hidden = fields["weight_hr"].shape[-1]
        return Kind.LSTM if rows == 4 * hidden else _bad_gates(prefix, rows, hidden)
    if cols and rows % cols == 0 and rows // cols in _GATE_COUNT_KIND:
        return _GATE_COUNT_KIND[rows // cols]
    return _bad_gates(prefix, rows, cols)


def _bad_gates(prefix: str, rows: int, hidden: int) -> Kind:
    raise WeightLayoutError(
        f"weight_hh has {rows} rows for hidden size {hidden}: expected 4·H (LSTM), 3·H (GRU) or H (RNN)",
        where=(f"{prefix}weight_hh_l0",),
    )


def layers_from_group(
    prefix: str, group: Group, kind: Kind, *, nonlinearity: str = "tanh", base: str = ""
) -> list[Layer]:
    """The IR layers of one ``nn.LSTM/GRU/RNN`` (one per ``num_layers`` index)."""
    if nonlinearity not in NONLINEARITIES:
        raise LstmconvError(f"nonlinearity must be one of {NONLINEARITIES}, found {nonlinearity!r}")
    indices = sorted({index for index, _ in group})
    if indices != list(range(len(indices))):
        raise WeightLayoutError(f"layer indices {indices} are not 0..{len(indices) - 1}", where=(prefix,))
    bidirectional = any(reverse for _, reverse in group)
    base = base or prefix.rstrip(".") or kind.value
    layers = []
    for index in indices:
        name = level_name(base, index, len(indices))
        directions = (False, True) if bidirectional else (False,)
        cells = []
        for reverse in directions:
            suffix = f"_l{index}{'_reverse' if reverse else ''}"
            fields = group.get((index, reverse))
            if fields is None:
                raise WeightLayoutError("direction missing", where=(f"{prefix}weight_ih{suffix}",))
            cells.append(_cell(fields, kind, prefix, suffix))
        layers.append(
            Layer(
                kind,
                tuple(cells),
                name=name,
                direction=Direction.BIDIRECTIONAL if bidirectional else Direction.FORWARD,
                activations=((RELU if nonlinearity == "relu" else TANH),) if kind is Kind.RNN else (),
            )
        )
    return layers


def level_name(base: str, index: int, levels: int) -> str:
    """The IR name of index ``index`` of a module of ``levels`` layers named ``base``."""
    return base if levels == 1 else f"{base}.l{index}"


def _cell(fields: dict[str, np.ndarray], kind: Kind, prefix: str, suffix: str) -> Cell:
    unknown = set(fields) - {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"}
    if unknown or ("bias_ih" in fields) != ("bias_hh" in fields):
        raise WeightLayoutError(
            f"expected bias_ih and bias_hh together, found {sorted(fields)}",
            where=(prefix + suffix,),
        )
    try:
        return cell_from_stacked(
            GATE_ORDER[kind],
            fields["weight_ih"],
            fields["weight_hh"],
            fields.get("bias_ih"),
            fields.get("bias_hh"),
            w_hr=fields.get("weight_hr"),
        )
    except LstmconvError as error:
        tensor = error.where[0] if error.where else ""
        torch_name = {v: k for k, v in _FIELDS.items()}.get(tensor.split("/")[0], tensor)
        error.where = (f"{prefix}{torch_name}{suffix}", *error.where[1:])
        raise


def read_tensors(
    tensors: Mapping[str, np.ndarray],
    *,
    nonlinearity: str | None = None,
    source: str = "",
    per_module: Mapping[str, str] | None = None,
    recorded: Sequence[tuple[str, str]] = (),
) -> Model:
    """Every recurrent module found in a state_dict of NumPy arrays, in key order.

    ``per_module`` maps a module's prefix (without the trailing dot) to its RNN nonlinearity
    where it is known; ``nonlinearity`` applies to the rest. An RNN whose nonlinearity neither
    says is read as tanh, with a warning each time (its shapes cannot tell tanh from relu).
    ``recorded``: links between modules that lstmconv wrote down when it wrote the file."""
    layers: list[Layer] = []
    groups = recurrent_groups(tensors)
    for prefix, group in groups.items():
        kind = infer_kind(group, prefix)
        chosen = (per_module or {}).get(prefix.rstrip("."), nonlinearity)
        if chosen is None:
            chosen = "tanh"
            if kind is Kind.RNN:
                _log.warning(
                    '%s: module "%s" is an nn.RNN, whose state_dict cannot say tanh or relu: assumed '
                    'tanh; if it is relu, pass --nonlinearity relu (nonlinearity="relu")',
                    source,
                    prefix.rstrip(".") or kind.value,
                )
        layers.extend(layers_from_group(prefix, group, kind, nonlinearity=chosen))
    if not layers:
        raise WeightLayoutError(
            "no recurrent layer found: no key ends in weight_ih_l0 / weight_hh_l0"
            + (f"; {listing(tensors)}" if tensors else ""),
            where=(source,),
            hint="lstmconv reads nn.LSTM, nn.GRU and nn.RNN weights",
        )
    names = {layer.name for layer in layers}
    known = [pair for pair in recorded if pair[0] in names and pair[1] in names]
    return Model(
        tuple(layers), source, tuple(dict.fromkeys([*links(layers), *known])), skipped=skipped_keys(tensors)
    )


def links(layers: list[Layer]) -> tuple[tuple[str, str], ...]:
    """The levels of one ``num_layers`` module feed each other; separate modules are not known
    to (a state_dict holds no ``forward``), so they are kept apart."""
    found = []
    for before, after in zip(layers, layers[1:]):
        a, b = _STACKED_NAME.match(before.name), _STACKED_NAME.match(after.name)
        if a and b and a["module"] == b["module"] and int(b["index"]) == int(a["index"]) + 1:
            found.append((before.name, after.name))
    return tuple(found)


def skipped_keys(tensors: Mapping[str, np.ndarray]) -> tuple[Skipped, ...]:
    """The floating-point tensors of a state_dict that belong to no recurrent module, grouped by
    the module their key names (``head.weight`` and ``head.bias``: module ``head``)."""
    groups: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for key, array in tensors.items():
        if _KEY.match(key) is not None or not dtypes.is_float(array.dtype):
            continue
        module = key.rpartition(".")[0] or key
        groups.setdefault(module, []).append((key, tuple(array.shape)))
    return tuple(Skipped.of(module, "module", keys) for module, keys in groups.items())


def check(layer: Layer, *, state_dict: bool = False) -> None:
    """Raise for what ``nn.LSTM/GRU/RNN`` cannot express."""
    plain: dict[Kind, list[tuple[Activation, ...]]] = {
        Kind.LSTM: [DEFAULT_ACTIVATIONS[Kind.LSTM]],
        Kind.GRU: [DEFAULT_ACTIVATIONS[Kind.GRU]],
        Kind.RNN: [(TANH,), (RELU,)],
    }
    _common.require_plain(
        layer,
        "PyTorch",
        allowed_activations=plain[layer.kind],
        reset_before=False,
        projection=True,
        reverse_aligned=False,
        reversed_output=False,
    )
    if state_dict and layer.direction is Direction.BIDIRECTIONAL and layer.merge != "concat":
        raise UnsupportedFeatureError(
            f"a PyTorch state_dict cannot record the bidirectional merge mode {layer.merge!r} "
            "(nn.LSTM concatenates)",
            where=(f'layer "{layer.name}"',),
            hint="to_torch() keeps it in a live module; .onnx, .keras and .npz files keep it",
        )


def module_names(model: Model) -> list[str]:
    """The submodule name of each layer in ``to_torch(model)``."""
    return _common.unique_names(_common.identifier(layer.name) for layer in model.layers)


def blocks(model: Model) -> dict[str, list[np.ndarray]]:
    """Each state_dict key of ``to_torch(model)`` with the blocks that, stacked along the first
    axis, make its tensor (one per gate, in PyTorch's order): writers can stream them."""
    result: dict[str, list[np.ndarray]] = {}
    for name, layer in zip(module_names(model), model.layers):
        check(layer, state_dict=True)
        order = GATE_ORDER[layer.kind]
        for index, cell in enumerate(layer.cells):
            suffix = "_l0_reverse" if index else "_l0"
            fields = [("weight_ih", cell.w_ih), ("weight_hh", cell.w_hh)]
            if cell.b_ih is not None and cell.b_hh is not None:
                fields += [("bias_ih", cell.b_ih), ("bias_hh", cell.b_hh)]
            for field, gates in fields:
                result[f"{name}.{field}{suffix}"] = [gates[gate] for gate in order]
            if cell.w_hr is not None:
                result[f"{name}.weight_hr{suffix}"] = [cell.w_hr]
    return result


def state_dict(model: Model) -> dict[str, np.ndarray]:
    """The state_dict of ``to_torch(model)`` as NumPy arrays, in PyTorch's key order."""
    return {key: np.concatenate(parts) for key, parts in blocks(model).items()}


def layout(layer: Layer) -> list[Tensor]:
    """The tensors this format stores for ``layer``, for ``inspect``."""
    g, h, i, p = len(layer.gates), layer.hidden_size, layer.input_size, layer.state_size
    order, tensors = "·".join(GATE_ORDER[layer.kind]), []
    stacked = _STACKED_NAME.match(layer.name)  # "encoder.lstm.l1" is index 1 of module encoder.lstm
    prefix, k = (stacked["module"], stacked["index"]) if stacked else (layer.name, "0")
    for index in range(layer.num_directions):
        suffix = f"_l{k}" + ("_reverse" if index else "")
        tensors += [
            Tensor(f"{prefix}.weight_ih{suffix}", (g * h, i), order),
            Tensor(f"{prefix}.weight_hh{suffix}", (g * h, p), order),
        ]
        if layer.has_bias:
            tensors += [
                Tensor(f"{prefix}.bias_ih{suffix}", (g * h,), order),
                Tensor(f"{prefix}.bias_hh{suffix}", (g * h,), order),
            ]
        if layer.proj_size:
            tensors.append(Tensor(f"{prefix}.weight_hr{suffix}", (p, h), ""))
    return tensors


def listing(tensors: Mapping[str, Any], limit: int = 8) -> str:
    """What a state_dict without recurrent keys holds: "a state_dict of 12 tensors, none
    recurrent: conv1.weight (16, 1, 3), ..." (the first ``limit`` keys with their shapes)."""
    shown = ", ".join(
        f"{key} {tuple(int(n) for n in getattr(value, 'shape', ()))}"
        for key, value in list(tensors.items())[:limit]
    )
    more = ", ..." if len(tensors) > limit else ""
    return f"a state_dict of {len(tensors)} tensors, none recurrent: {shown}{more}"


def _tensor_dict(
    loaded: object, is_tensor: Callable[[object], bool], depth: int = 0
) -> Mapping[str, Any] | None:
    """The first mapping of tensors in what a file holds (itself or a checkpoint's entry)."""
    if not isinstance(loaded, Mapping) or depth > 8:
        return None
    tensors = {k: v for k, v in loaded.items() if isinstance(k, str) and is_tensor(v)}
    if tensors:
        return tensors
    for value in loaded.values():
        inner = _tensor_dict(value, is_tensor, depth + 1)
        if inner is not None:
            return inner
    return None


def no_state_dict(
    path: str, loaded: object = None, is_tensor: Callable[[object], bool] | None = None
) -> FormatError | WeightLayoutError:
    """No state_dict with recurrent keys: say what the file holds when it is tensors after all."""
    tensors = _tensor_dict(loaded, is_tensor) if is_tensor is not None else None
    if tensors:
        return WeightLayoutError(
            f"no recurrent layer found: {listing(tensors)}",
            where=(path,),
            hint="lstmconv reads nn.LSTM, nn.GRU and nn.RNN weights: keys ending in weight_ih_l0 "
            "/ weight_hh_l0",
        )
    return FormatError(
        "no state_dict found: expected a dict of tensors, or a checkpoint holding one under "
        f"{', '.join(CHECKPOINT_KEYS)}",
        where=(path,),
    )
