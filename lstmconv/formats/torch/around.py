"""The plain layers of a PyTorch state_dict (``nn.Embedding``, ``nn.Linear``, ``nn.Conv1d``,
``nn.LayerNorm``, ``nn.BatchNorm1d``) in ``nn`` naming, without importing torch.

A state_dict holds tensors and their keys, nothing else: from them alone

- ``running_mean`` + ``running_var`` (``num_batches_tracked``) is a BatchNorm, a 2-D
  ``weight`` with a 1-D ``bias`` a Linear: read as such;
- a lone 2-D ``weight`` is an Embedding or a bias-less Linear, a 3-D ``weight`` a Conv1d whose
  stride, padding, dilation and groups are not stored, 1-D ``weight``/``bias`` a LayerNorm (or
  another affine-only norm), and no norm's epsilon is stored.

What is ambiguous or missing is decided by the model the state_dict is ported to or from
(``like``: the counterpart in the same place, or named by ``like_names``, gives the kind and the
options, with a warning for each epsilon taken), or by ``epsilon`` for the norms; else the layer
is listed as skipped, saying what is unknown. Nothing is guessed silently.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import dtypes
from ...errors import LstmconvError
from ...ir import Layer, Model, Skipped
from ...plain import NO_OPS, PlainKind, PlainLayer

_log = logging.getLogger(__name__)
#: The nn key suffixes of plain layers, and the IR tensor each holds.
FIELDS: Mapping[str, str] = {"weight": "weight", "bias": "bias", "running_mean": "mean", "running_var": "var"}
COUNTER = "num_batches_tracked"
#: The options of each kind a state_dict does not store.
_UNSTORED: Mapping[PlainKind, tuple[str, ...]] = {
    PlainKind.LAYER_NORM: ("epsilon",),
    PlainKind.BATCH_NORM: ("epsilon",),
    PlainKind.CONV1D: ("stride", "padding", "dilation", "groups"),
}
_TORCH_CLASS = {
    PlainKind.EMBEDDING: "Embedding",
    PlainKind.DENSE: "Linear",
    PlainKind.CONV1D: "Conv1d",
    PlainKind.LAYER_NORM: "LayerNorm",
    PlainKind.BATCH_NORM: "BatchNorm1d",
}


def groups(tensors: Mapping[str, Any], taken: set[str]) -> dict[str, dict[str, Any]]:
    """The keys outside ``taken`` (the recurrent modules') whose suffixes are a plain layer's,
    grouped by module, in first-appearance order; a module with any other key is left out."""
    found: dict[str, dict[str, Any]] = {}
    others: set[str] = set()
    for key, value in tensors.items():
        if key in taken:
            continue
        module, _, field = key.rpartition(".")
        if field in FIELDS or field == COUNTER:
            found.setdefault(module, {})[field] = value
        else:
            others.add(module)
    return {module: fields for module, fields in found.items() if module not in others and module}


def candidates(fields: Mapping[str, Any]) -> tuple[PlainKind, ...]:
    """The kinds a module's keys may be, the sure one alone where there is one."""
    weight = fields.get("weight")
    rank = getattr(weight, "ndim", None)
    if "running_mean" in fields and "running_var" in fields:
        return (PlainKind.BATCH_NORM,)
    if set(fields) - {"weight", "bias"}:
        return ()
    if rank == 3:
        return (PlainKind.CONV1D,)
    if rank == 2:
        return (PlainKind.DENSE,) if "bias" in fields else (PlainKind.EMBEDDING, PlainKind.DENSE)
    if rank in (1, None) and all(getattr(v, "ndim", 0) == 1 for v in fields.values()):
        return (PlainKind.LAYER_NORM,)
    return ()


def _what(kinds: Sequence[PlainKind]) -> str:
    return " or ".join(
        "Linear(bias=False)" if kind is PlainKind.DENSE and len(kinds) > 1 else _TORCH_CLASS[kind]
        for kind in kinds
    )


def read_layer(
    module: str,
    fields: Mapping[str, np.ndarray],
    counterpart: Any = None,
    *,
    epsilon: float | None = None,
    source: str = "",
) -> PlainLayer | Skipped:
    """The plain layer ``module``'s keys hold, or a :class:`Skipped` saying what is unknown.
    ``counterpart``: the layer it ports to or from (a PlainLayer), whose kind and options decide."""
    kinds = candidates(fields)
    tensors = {FIELDS[field]: value for field, value in fields.items() if field in FIELDS}
    listed = [
        (f"{module}.{field}", tuple(getattr(v, "shape", ())))
        for field, v in fields.items()
        if field != COUNTER
    ]
    like = counterpart if isinstance(counterpart, PlainLayer) and counterpart.kind in kinds else None
    kind = like.kind if like is not None else (kinds[0] if len(kinds) == 1 else None)
    if kind is None:
        why = "unknown kind" if kinds else "not a layer lstmconv reads"
        return Skipped.of(module, f"{_what(kinds)} ({why})" if kinds else "module", listed)
    options: dict[str, Any] = {}
    unstored = _UNSTORED.get(kind, ())
    if unstored and like is not None:
        options = {name: like.options[name] for name in unstored}
        _log.warning(
            '%s: a state_dict holds no %s: "%s" (nn.%s) taken as %s, as "%s" it pairs with has',
            source,
            ", ".join(unstored),
            module,
            _TORCH_CLASS[kind],
            ", ".join(f"{k}={v}" for k, v in options.items()),
            like.name,
        )
    elif unstored == ("epsilon",) and epsilon is not None:
        options = {"epsilon": float(epsilon)}
    elif unstored:
        hint = "; pass epsilon=" if unstored == ("epsilon",) else ""
        return Skipped.of(module, f"{_TORCH_CLASS[kind]} ({', '.join(unstored)} unknown{hint})", listed)
    if kind is PlainKind.BATCH_NORM:
        options["axis"] = 1  # nn.BatchNorm1d: channels first
    try:
        return PlainLayer(kind, module, tensors, options)
    except LstmconvError as error:
        raise error.within(source) from None


def read_all(
    tensors: Mapping[str, np.ndarray],
    taken: set[str],
    recurrent: Sequence[tuple[str, Sequence[Layer]]],
    starts: Mapping[str, int],
    *,
    like: Model | None = None,
    like_names: Mapping[str, str] | None = None,
    epsilon: float | None = None,
    source: str = "",
    ordered: bool = True,
) -> tuple[list[PlainLayer], list[Skipped], list[str]]:
    """The plain layers of a state_dict, what was skipped among its plain-looking modules, and
    every layer's name in key order. ``recurrent``: (key prefix, its IR layers) per module, and
    ``starts`` the index of each one's first key.
    Where the keys are not in model order (``ordered`` false: a ``.safetensors`` header is
    sorted), each layer takes the first free layer of ``like`` its kind and shapes fit, and the
    order is ``like``'s."""
    from ... import porting

    found = groups(tensors, taken)
    position: dict[str, int] = dict(starts)  # each recurrent module's first key, by prefix
    for index, key in enumerate(tensors):
        module = key.rpartition(".")[0]
        if module in found and module not in position:
            position[module] = index
    entries: list[tuple[int, list[str], str | None]] = [
        (position.get(prefix, 0), [layer.name for layer in layers], None) for prefix, layers in recurrent
    ]
    entries += [(position[module], [module], module) for module in found]
    entries.sort(key=lambda entry: entry[0])
    names = [
        name
        for _, listed, module in entries
        for name in listed
        if module is None or candidates(found[module])
    ]
    plain = [module for _, _, module in entries if module is not None]
    counterparts = porting.counterparts(names, like, like_names) if like is not None else {}
    if like is not None and not ordered:
        own = {layer.name: layer for _, layers in recurrent for layer in layers}
        counterparts = _by_shape(names, {**own, **found}, like, like_names)
        place = {layer.name: index for index, layer in enumerate(like.everything())}
        names.sort(key=lambda name: place.get(getattr(counterparts.get(name), "name", ""), len(place)))
    around: list[PlainLayer] = []
    skipped: list[Skipped] = []
    for module in plain:
        read = read_layer(module, found[module], counterparts.get(module), epsilon=epsilon, source=source)
        if isinstance(read, PlainLayer):
            around.append(read)
        else:
            skipped.append(read)
    kept = {layer.name for layer in around}
    return around, skipped, [name for name in names if name in kept or name not in found]


def _by_shape(
    names: Sequence[str], own: Mapping[str, Any], like: Model, like_names: Mapping[str, str] | None
) -> dict[str, Any]:
    """For each name, the layer of ``like`` named for it in ``like_names``, else the first free
    one whose kind and shapes fit (a recurrent level: its kind, sizes and direction)."""
    from ... import porting

    free = list(porting.weighted(like))
    by_name = {layer.name: layer for layer in free}
    chosen = {name: by_name[other] for name, other in (like_names or {}).items() if other in by_name}
    taken = {layer.name for layer in chosen.values()}  # by name: layers compare by their arrays
    for name in names:
        if name in chosen:
            continue
        fit = next((x for x in free if x.name not in taken and _fits(own[name], x)), None)
        if fit is not None:
            chosen[name] = fit
            taken.add(fit.name)
    return chosen


def _fits(mine: Any, other: Any) -> bool:
    if isinstance(mine, Layer):
        return isinstance(other, Layer) and all(
            getattr(mine, field) == getattr(other, field)
            for field in ("kind", "input_size", "hidden_size", "direction", "proj_size")
        )
    if not isinstance(other, PlainLayer) or other.kind not in candidates(mine):
        return False
    shapes = {FIELDS[field]: tuple(value.shape) for field, value in mine.items() if field in FIELDS}
    return shapes == {name: tuple(array.shape) for name, array in other.items()}


def state_entries(layer: PlainLayer) -> dict[str, np.ndarray]:
    """The state_dict entries of ``layer`` under its name, as its ``nn`` module holds them."""
    if layer.kind in NO_OPS:
        return {}
    back = {tensor: field for field, tensor in FIELDS.items()}
    entries = {f"{layer.name}.{back[tensor]}": np.asarray(array) for tensor, array in layer.items()}
    if layer.kind is PlainKind.BATCH_NORM:
        entries[f"{layer.name}.{COUNTER}"] = np.zeros((), np.int64)
    return entries


#: PyTorch's own default epsilon of nn.LayerNorm and nn.BatchNorm1d.
TORCH_EPSILON = 1e-5
_CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}


def unheld(layer: PlainLayer) -> str | None:
    """What of ``layer`` a state_dict cannot hold and the module loading it needs beyond
    PyTorch's defaults (an epsilon other than 1e-5, an activation, conv options), or None."""
    options = layer.options
    if layer.kind in (PlainKind.LAYER_NORM, PlainKind.BATCH_NORM):
        if math.isclose(options["epsilon"], TORCH_EPSILON, rel_tol=1e-6):
            return None
        width = layer.width if layer.width is not None else "…"
        return f"nn.{_TORCH_CLASS[layer.kind]}({width}, eps={options['epsilon']:g})"
    if layer.kind is PlainKind.DENSE and options["activation"] != "linear":
        return f"its activation {options['activation']} applied after it in forward"
    if layer.kind is PlainKind.CONV1D:
        padding = 0 if options["padding"] == "valid" else options["padding"]
        if {**options, "padding": padding, "activation": "linear"} == {
            **_CONV_DEFAULTS,
            "activation": "linear",
        }:
            return None if options["activation"] == "linear" else f"its activation {options['activation']}"
        shown = ", ".join(f"{key}={options[key]!r}" for key in ("stride", "padding", "dilation", "groups"))
        act = f", then {options['activation']}" if options["activation"] != "linear" else ""
        return f"nn.Conv1d(..., {shown}){act}"
    return None


def warn_unheld(model: Model, dest: str) -> None:
    """Warn, naming each layer, of what a state_dict written from ``model`` cannot hold."""
    for layer in model.around:
        needed = unheld(layer)
        if needed is not None:
            _log.warning(
                '%s: a state_dict cannot hold what layer "%s" (%s) computes beyond its tensors: '
                "the module loading it needs %s",
                os.path.basename(dest),
                layer.name,
                layer.kind.value,
                needed,
            )


def is_counter(key: str, array: np.ndarray) -> bool:
    """A BatchNorm's ``num_batches_tracked``, or any integer entry: a template's own value is kept."""
    return key.rpartition(".")[2] == COUNTER or not dtypes.is_float(array.dtype)
