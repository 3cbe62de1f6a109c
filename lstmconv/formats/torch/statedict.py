"""PyTorch ``nn.LSTM/GRU/RNN`` state_dict naming, without importing torch.

Shared by the ``torch`` format (live modules and ``.pt`` files) and the ``safetensors`` format.
Names: ``<prefix>weight_ih_l{k}[_reverse]`` (G·H, in), ``weight_hh`` (G·H, H or P),
``bias_ih``, ``bias_hh`` (G·H), ``weight_hr`` (P, H); gates ``i f g o`` and ``r z n``.
"""

from __future__ import annotations

import dataclasses
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
from . import around

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
#: A single-step cell's keys (``nn.LSTMCell``/``GRUCell``/``RNNCell``): no ``_l<k>``.
_CELL_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<field>weight_ih|weight_hh|bias_ih|bias_hh)$")
_CELL_FIELDS = ({"weight_ih", "weight_hh"}, {"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
#: The torch class of a single-step cell, by kind.
CELL_CLASSES = {Kind.LSTM: "LSTMCell", Kind.GRU: "GRUCell", Kind.RNN: "RNNCell"}
NONLINEARITIES = ("tanh", "relu")
_STACKED_NAME = re.compile(r"^(?P<module>.+)\.l(?P<index>\d+)$")

Group = dict[tuple[int, bool], dict[str, np.ndarray]]
#: Where checkpoints keep the model's state_dict, searched in this order.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")
#: The key of the RNN nonlinearity lstmconv records in a state_dict's ``_metadata``.
META_KEY = "lstmconv_nonlinearity"


def find_state_dict(
    loaded: object, is_tensor: Callable[[object], bool], _seen: set[int] | None = None
) -> Mapping[str, Any] | None:
    """The state_dict in what a ``.pt`` file holds: itself, or one a checkpoint holds. Each
    container is looked at once (a pickle can hold one object many times, and objects holding
    the previous one twice make 2^n paths from n objects)."""
    if not isinstance(loaded, Mapping):
        return None
    seen = set() if _seen is None else _seen
    if id(loaded) in seen:
        return None
    seen.add(id(loaded))
    if any(is_tensor(value) for value in loaded.values()) and bool(
        recurrent_groups({k: v for k, v in loaded.items() if isinstance(k, str)})
    ):  # bool, not any(): the prefix of a bare nn.LSTM is "", which any() would call empty
        return loaded
    for key in CHECKPOINT_KEYS:
        inner = find_state_dict(loaded.get(key), is_tensor, seen)
        if inner is not None:
            return inner
    for value in loaded.values():
        inner = find_state_dict(value, is_tensor, seen)
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


def written_links(model: Model, *, as_cell: bool = False) -> list[list[str]]:
    """The model's chains as links in the names the readers give back what :func:`state_dict`
    writes (to be recorded); links within one module are implied, not recorded."""
    names = {
        layer.name: name
        for module in modules(model, as_cell=as_cell)
        for layer, name in zip(module.layers, module.names())
    }
    chained = [(a.name, b.name) for chain in model.chains() for a, b in zip(chain, chain[1:])]
    return [[names[a], names[b]] for a, b in chained]


def cell_prefixes(tensors: Mapping[str, Any]) -> set[str]:
    """The prefixes whose keys are exactly a single-step cell's (``weight_ih``, ``weight_hh``,
    and ``bias_ih`` with ``bias_hh`` or neither) and no others."""
    fields: dict[str, set[str]] = {}
    for key in tensors:
        match = _CELL_KEY.match(key)
        if match is not None:
            fields.setdefault(match["prefix"], set()).add(match["field"])
    others = {
        key.rpartition(".")[0] + "." if "." in key else "" for key in tensors if not _CELL_KEY.match(key)
    }
    return {prefix for prefix, found in fields.items() if found in _CELL_FIELDS and prefix not in others}


def recurrent_groups(tensors: Mapping[str, np.ndarray]) -> dict[str, Group]:
    """Keys of recurrent modules grouped by prefix, in first-appearance order; a single-step
    cell's (:func:`cell_prefixes`) as level 0."""
    groups: dict[str, Group] = {}
    cells = cell_prefixes(tensors)
    for key, array in tensors.items():
        match = _KEY.match(key)
        if match is not None:
            slot = (int(match["index"]), match["reverse"] is not None)
            groups.setdefault(match["prefix"], {}).setdefault(slot, {})[match["field"]] = array
            continue
        cell = _CELL_KEY.match(key)
        if cell is not None and cell["prefix"] in cells:
            groups.setdefault(cell["prefix"], {}).setdefault((0, False), {})[cell["field"]] = array
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
            forward = group.get((index, False), {})
            for field, array in fields.items() if reverse else ():
                other = forward.get(field)
                if other is not None and array.shape != other.shape:
                    raise WeightLayoutError(
                        f"{_common.dims(array.shape)}: expected {_common.dims(other.shape)} "
                        f"as {prefix}{field}_l{index} has",
                        where=(f"{prefix}{field}{suffix}",),
                    )
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
    _check_shapes(fields, kind, prefix, suffix)
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


def _check_shapes(fields: dict[str, np.ndarray], kind: Kind, prefix: str, suffix: str) -> None:
    """Each tensor's shape against the hidden size, blaming the file's own tensor by its own
    name and saying where the hidden size came from: weight_hr's columns with a projection,
    else weight_hh's (its rows were checked to be G·H in :func:`infer_kind`)."""
    gates = len(GATE_ORDER[kind])

    def name(field: str) -> str:
        return f"{prefix}{field}{suffix}"

    def shown(field: str) -> str:
        return f"{name(field)} {_common.dims(fields[field].shape)}"

    hh = fields["weight_hh"]
    if "weight_hr" in fields and fields["weight_hr"].ndim == 2:
        proj, hidden = fields["weight_hr"].shape
        source = shown("weight_hr")
        expected_hh: tuple[int, ...] = (gates * hidden, proj)
    elif hh.ndim == 2:
        hidden, source = hh.shape[1], shown("weight_hh")
        expected_hh = (gates * hidden, hidden)
    else:
        raise WeightLayoutError(
            f"{_common.dims(hh.shape)}: expected 2 dimensions", where=(name("weight_hh"),)
        )
    if tuple(hh.shape) != expected_hh:
        raise WeightLayoutError(
            f"{_common.dims(hh.shape)}: expected {expected_hh} for hidden {hidden} (from {source})",
            where=(name("weight_hh"),),
        )
    ih = fields["weight_ih"]
    if ih.ndim != 2 or ih.shape[0] != gates * hidden:
        found = f"{ih.shape[0]} rows is" if ih.ndim == 2 else f"{ih.ndim} dimensions are"
        raise WeightLayoutError(
            f"{_common.dims(ih.shape)}: {found} not {gates} × hidden {hidden} (from {source})",
            where=(name("weight_ih"),),
        )
    for field in ("bias_ih", "bias_hh"):
        bias = fields.get(field)
        if bias is not None and tuple(bias.shape) != (gates * hidden,):
            raise WeightLayoutError(
                f"{_common.dims(bias.shape)}: expected ({gates * hidden},), "
                f"{gates} × hidden {hidden} (from {source})",
                where=(name(field),),
            )


def read_tensors(
    tensors: Mapping[str, np.ndarray],
    *,
    nonlinearity: str | None = None,
    source: str = "",
    per_module: Mapping[str, str] | None = None,
    recorded: Sequence[tuple[str, str]] = (),
    like: Model | None = None,
    like_names: Mapping[str, str] | None = None,
    epsilon: float | None = None,
    ordered: bool = True,
) -> Model:
    """Every recurrent module found in a state_dict of NumPy arrays, and the plain layers
    around them (:mod:`.around`: ``like``, ``like_names`` and ``epsilon`` decide what the keys
    cannot say), in key order.

    ``per_module`` maps a module's prefix (without the trailing dot) to its RNN nonlinearity
    where it is known; ``nonlinearity`` applies to the rest. An RNN whose nonlinearity neither
    says is read as tanh, with a warning each time (its shapes cannot tell tanh from relu).
    ``recorded``: links between modules that lstmconv wrote down when it wrote the file."""
    layers: list[Layer] = []
    groups = recurrent_groups(tensors)
    cells = cell_prefixes(tensors)
    modules: list[tuple[str, list[Layer]]] = []
    for prefix, group in groups.items():
        kind = infer_kind(group, prefix)
        chosen = (per_module or {}).get(prefix.rstrip("."), nonlinearity)
        if chosen is None:
            chosen = "tanh"
            if kind is Kind.RNN:
                _log.warning(
                    '%s: module "%s" is an nn.%s, whose state_dict cannot say tanh or relu: assumed '
                    'tanh; if it is relu, pass --nonlinearity relu (nonlinearity="relu")',
                    source,
                    prefix.rstrip(".") or kind.value,
                    "RNNCell" if prefix in cells else "RNN",
                )
        found = layers_from_group(prefix, group, kind, nonlinearity=chosen)
        if prefix in cells:
            found = [layer.replace(stepped=True) for layer in found]
            _log.warning(
                '%s: module "%s" is an nn.%s (one step): read as a one-layer forward %s stepped '
                "over time from a zero state",
                source,
                prefix.rstrip(".") or kind.value,
                CELL_CLASSES[kind],
                kind.value.upper(),
            )
        layers.extend(found)
        modules.append((prefix, found))
    if not layers:
        raise WeightLayoutError(
            "no recurrent layer found: no key ends in weight_ih_l0 / weight_hh_l0"
            + (f"; {listing(tensors)}" if tensors else ""),
            where=(source,),
            hint="lstmconv reads nn.LSTM, nn.GRU and nn.RNN weights",
        )
    names = {layer.name for layer in layers}
    known = [pair for pair in recorded if pair[0] in names and pair[1] in names]
    taken = {key for key in tensors if _is_recurrent_key(key, cells)}
    plain, unread, order = around.read_all(
        tensors,
        taken,
        modules,
        _starts(tensors, cells),
        like=like,
        like_names=like_names,
        epsilon=epsilon,
        source=source,
        ordered=ordered,
    )
    handled = set(around.groups(tensors, taken))
    others = tuple(entry for entry in skipped_keys(tensors) if entry.name not in handled)
    return Model(
        tuple(layers),
        source,
        tuple(dict.fromkeys([*links(layers), *known])),
        skipped=(*unread, *others),
        around=tuple(plain),
        order=tuple(order),
    )


def _starts(tensors: Mapping[str, Any], cells: set[str]) -> dict[str, int]:
    """The index of each recurrent module's first key, by prefix (one pass)."""
    found: dict[str, int] = {}
    for index, key in enumerate(tensors):
        match = _KEY.match(key) or _CELL_KEY.match(key)
        if match is not None and (match.re is _KEY or match["prefix"] in cells):
            found.setdefault(match["prefix"], index)
    return found


def _is_recurrent_key(key: str, cells: set[str]) -> bool:
    cell = _CELL_KEY.match(key)
    return _KEY.match(key) is not None or (cell is not None and cell["prefix"] in cells)


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
    cells = cell_prefixes(tensors)
    for key, array in tensors.items():
        cell = _CELL_KEY.match(key)
        if _KEY.match(key) is not None or not dtypes.is_float(array.dtype):
            continue
        if cell is not None and cell["prefix"] in cells:
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
    """The submodule name of each layer in ``to_torch(model)``, in model order (plain ones too)."""
    return _common.unique_names(_common.identifier(layer.name) for layer in model.everything())


@dataclasses.dataclass(frozen=True)
class Module:
    """One module of a written state_dict: its key prefix (no trailing dot), its levels (one
    per ``num_layers`` index, l0 first), and whether it is a single-step cell (no ``_l<k>``)."""

    key: str
    layers: tuple[Layer, ...]
    cell: bool = False

    def names(self) -> list[str]:
        """The IR names the readers give its levels back."""
        return [level_name(self.key, index, len(self.layers)) for index in range(len(self.layers))]


_DOTTED = re.compile(r"^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$")


def _same_module(before: Layer, after: Layer) -> bool:
    """Whether ``after`` can be the next ``num_layers`` index of ``before``'s module."""
    return (
        before.kind is after.kind
        and before.hidden_size == after.hidden_size
        and before.has_bias == after.has_bias
        and before.direction is after.direction
        and before.proj_size == after.proj_size
        and before.activations == after.activations
        and before.dtype == after.dtype
        and after.input_size == before.output_size
        and before.merge == after.merge == "concat"
    )


def modules(model: Model, *, as_cell: bool = False) -> list[Module]:
    """The modules a state_dict of ``model`` holds. Levels named ``<m>.l0``, ``<m>.l1``… (as the
    readers name a multi-layer module's), linked in ``model.links`` and alike, are one module
    ``<m>`` again, so its keys are the original module's; a name that is a module path keeps its
    dots. A layer read from a single-step cell (``stepped``), or any with ``as_cell``, is written
    as an ``nn.LSTMCell``/``GRUCell``/``RNNCell`` where it can be one."""
    linked = set(model.links or ())
    layers, found, index = list(model.layers), [], 0
    while index < len(layers):
        group = [layers[index]]
        first = _STACKED_NAME.match(layers[index].name)
        if first and first["index"] == "0" and _DOTTED.match(first["module"]) and not as_cell:
            while index + len(group) < len(layers):
                after = layers[index + len(group)]
                if after.name != f"{first['module']}.l{len(group)}":
                    break
                if (group[-1].name, after.name) not in linked or not _same_module(group[-1], after):
                    break
                group.append(after)
        if len(group) > 1:
            found.append(Module(first["module"], tuple(group)))  # type: ignore[index]
        else:
            layer = group[0]
            key = layer.name if _DOTTED.match(layer.name) else _common.identifier(layer.name)
            cell = (layer.stepped or as_cell) and layer.direction is Direction.FORWARD and not layer.proj_size
            if as_cell and not cell:
                raise UnsupportedFeatureError(
                    f"an nn.{CELL_CLASSES[layer.kind]} cannot hold a "
                    + ("projection" if layer.proj_size else f"{layer.direction.value} layer"),
                    where=(f'layer "{layer.name}"',),
                    hint="drop --as-cell to write it as a module",
                )
            found.append(Module(key, (layer,), cell))
        index += len(group)
    keys = _common.unique_names(module.key for module in found)
    return [dataclasses.replace(module, key=key) for module, key in zip(found, keys)]


def blocks(model: Model, *, as_cell: bool = False) -> dict[str, list[np.ndarray]]:
    """Each state_dict key of ``model``'s modules (:func:`modules`) and plain layers
    (:func:`.around.state_entries`), in model order, with the blocks that, stacked along the
    first axis, make its tensor (one per gate, in PyTorch's order): writers can stream them."""
    recurrent = _recurrent_blocks(model, as_cell=as_cell)
    first = {module.layers[0].name: module.key for module in modules(model, as_cell=as_cell)}
    plain = {layer.name: layer for layer in model.around}
    keys = _common.unique_names([*first.values(), *(_plain_key(name) for name in plain)])[len(first) :]
    renamed = dict(zip(plain, keys))
    result: dict[str, list[np.ndarray]] = {}
    for name in model.order or ():
        if name in first:
            prefix = first[name] + "."
            result.update((key, parts) for key, parts in recurrent.items() if key.startswith(prefix))
        elif name in plain:
            entries = around.state_entries(plain[name].replace(name=renamed[name]))
            result.update((key, [array]) for key, array in entries.items())
    return result


def _plain_key(name: str) -> str:
    return name if _DOTTED.match(name) else _common.identifier(name)


def _recurrent_blocks(model: Model, *, as_cell: bool = False) -> dict[str, list[np.ndarray]]:
    result: dict[str, list[np.ndarray]] = {}
    for module in modules(model, as_cell=as_cell):
        for level, layer in enumerate(module.layers):
            check(layer, state_dict=True)
            order = GATE_ORDER[layer.kind]
            for index, cell in enumerate(layer.cells):
                suffix = "" if module.cell else f"_l{level}" + ("_reverse" if index else "")
                fields = [("weight_ih", cell.w_ih), ("weight_hh", cell.w_hh)]
                if cell.b_ih is not None and cell.b_hh is not None:
                    fields += [("bias_ih", cell.b_ih), ("bias_hh", cell.b_hh)]
                for field, gates in fields:
                    result[f"{module.key}.{field}{suffix}"] = [gates[gate] for gate in order]
                if cell.w_hr is not None:
                    result[f"{module.key}.weight_hr{suffix}"] = [cell.w_hr]
    return result


def state_dict(model: Model, *, as_cell: bool = False) -> dict[str, np.ndarray]:
    """The state_dict of ``model``'s modules as NumPy arrays, in PyTorch's key order."""
    return {
        key: np.concatenate(parts) if len(parts) > 1 else parts[0]
        for key, parts in blocks(model, as_cell=as_cell).items()
    }


def nonlinearities(model: Model, *, as_cell: bool = False) -> dict[str, str]:
    """The RNN nonlinearity of each written module that is an RNN, by key (to be recorded)."""
    return {
        module.key: module.layers[0].activations[0].name
        for module in modules(model, as_cell=as_cell)
        if module.layers[0].kind is Kind.RNN
    }


def layout(layer: Layer) -> list[Tensor]:
    """The tensors this format stores for ``layer``, for ``inspect``."""
    g, h, i, p = len(layer.gates), layer.hidden_size, layer.input_size, layer.state_size
    order, tensors = "·".join(GATE_ORDER[layer.kind]), []
    stacked = _STACKED_NAME.match(layer.name)  # "encoder.lstm.l1" is index 1 of module encoder.lstm
    prefix, k = (stacked["module"], stacked["index"]) if stacked else (layer.name, "0")
    for index in range(layer.num_directions):
        suffix = "" if layer.stepped else f"_l{k}" + ("_reverse" if index else "")
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
        f"{key} {_common.dims(getattr(value, 'shape', ()))}" for key, value in list(tensors.items())[:limit]
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
