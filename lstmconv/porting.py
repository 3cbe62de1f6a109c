"""Which layer of one model fills which layer of another: the pairing behind ``port`` and
``convert --like``, framework-free.

:func:`pair` lines up every layer holding weights, recurrent and plain, of a source model with a
target's, in model order or by a mapping, and checks each pair: the kind, the shapes, and the
options that change the numbers (a normalization's epsilon, a Dense activation, a Conv1D's padding,
stride, dilation and groups). No-ops (Dropout, Masking) compute nothing and are left out on both
sides. :func:`adapted` gives the source layer in the target's tensor set (a missing norm scale is
ones, a missing bias zeros), which each family's ``port_into`` / ``write_like`` then writes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import PortMismatchError
from .formats import _common
from .ir import Layer, Model
from .plain import NO_OPS, PlainKind, PlainLayer

_log = logging.getLogger(__name__)
AnyLayer = Layer | PlainLayer
#: What a tensor a layer may leave out stands for: a norm's scale is one, every bias zero.
_IDENTITY = {"weight": 1.0, "bias": 0.0}
_CONV_OPTIONS = ("stride", "dilation", "groups")


def weighted(model: Model) -> tuple[AnyLayer, ...]:
    """The layers of ``model`` that compute something (every one but Dropout and Masking), in order."""
    return tuple(
        layer for layer in model.everything() if not (isinstance(layer, PlainLayer) and layer.kind in NO_OPS)
    )


def pair(
    source: Model, target: Model, mapping: Mapping[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """(target_name, source_name) for every target layer holding weights, recurrent and plain, in
    target model order; no-ops (Dropout, Masking) left out on both sides.

    Without ``mapping`` the layers pair in order; with ``mapping`` ({target_name: source_name})
    the named ones pair as named and the rest in order. Raises :class:`PortMismatchError` listing
    both sides' layers (name, kind, shapes) when they do not line up, and refuses (or, for a Dense
    activation one side does not hold, warns) naming both layers when their options differ."""
    targets, sources = weighted(target), weighted(source)
    chosen = _by_mapping(targets, sources, mapping or {})
    rest_t = [layer for layer in targets if layer.name not in chosen]
    used = set(chosen.values())
    rest_s = [layer for layer in sources if layer.name not in used]
    if len(rest_t) != len(rest_s):
        what = "layers left out of the mapping" if mapping else "layers"
        raise PortMismatchError(
            f"the target has {len(rest_t)} {what} holding weights, the source {len(rest_s)}: "
            + _sides(rest_t, rest_s),
            hint="build the target with the same layers, or pass mapping={target layer: source layer}",
        )
    by_order = iter(rest_s)
    source_of = {layer.name: layer for layer in sources}
    pairs = []
    for layer in targets:
        match = source_of[chosen[layer.name]] if layer.name in chosen else next(by_order)
        check(match, layer, context=_sides(targets, sources))
        pairs.append((layer.name, match.name))
    return tuple(pairs)


def counterparts(
    names: Sequence[str], like: Model, like_names: Mapping[str, str] | None = None
) -> dict[str, AnyLayer]:
    """For each of one side's layer ``names`` (in order, no-ops left out), the layer of ``like``
    it would pair with: as ``like_names`` (name → like's name) says, else by place among the
    rest when both sides have as many; a name without one is left out (then :func:`pair` says why)."""
    others = weighted(like)
    by_name = {layer.name: layer for layer in others}
    chosen = {
        name: by_name[other]
        for name, other in (like_names or {}).items()
        if other in by_name and name in names
    }
    rest = [name for name in names if name not in chosen]
    used = {layer.name for layer in chosen.values()}
    free = [layer for layer in others if layer.name not in used]
    if len(rest) == len(free):
        chosen.update(zip(rest, free))
    return chosen


def _by_mapping(
    targets: Sequence[AnyLayer], sources: Sequence[AnyLayer], mapping: Mapping[str, str]
) -> dict[str, str]:
    target_names = {layer.name for layer in targets}
    source_names = {layer.name for layer in sources}
    unknown_t = sorted(set(mapping) - target_names)
    unknown_s = sorted(set(mapping.values()) - source_names)
    if unknown_t or unknown_s:
        raise PortMismatchError(
            f"the mapping names target layers {unknown_t} and source layers {unknown_s} that hold no "
            "weights or are not there: " + _sides(targets, sources)
        )
    repeated = sorted({name for name in mapping.values() if list(mapping.values()).count(name) > 1})
    if repeated:
        raise PortMismatchError(f"the mapping fills several target layers from source layers {repeated}")
    return dict(mapping)


def check(source: AnyLayer, target: AnyLayer, *, context: str = "") -> None:
    """Raise :class:`PortMismatchError` naming both layers when ``source`` cannot fill
    ``target``; warn naming both where the numbers may differ but the target may make up for it."""
    both = (
        f'target layer "{target.name}" ({describe(target)}) '
        f'and source layer "{source.name}" ({describe(source)})'
    )
    problem = _problem(source, target)
    if problem:
        raise PortMismatchError(
            f"{both} do not match: {problem}" + (f" — {context}" if context else ""),
            hint="build the target with the same layers and sizes, or pass mapping={target: source}",
        )
    if isinstance(source, PlainLayer) and isinstance(target, PlainLayer):
        _check_options(source, target, both)


def _problem(source: AnyLayer, target: AnyLayer) -> str | None:
    if isinstance(source, Layer) != isinstance(target, Layer) or source.kind != target.kind:
        return f"kind {_kind(target)} against {_kind(source)}"
    if isinstance(source, Layer) and isinstance(target, Layer):
        wanted, found = _structure(target), _structure(source)
        differences = [
            f"{key} {wanted[key]} against {found[key]}" for key in wanted if wanted[key] != found[key]
        ]
        return "; ".join(differences) or None
    assert isinstance(source, PlainLayer) and isinstance(target, PlainLayer)
    try:
        adapted(source, target)
    except PortMismatchError as error:
        return error.message
    return None


def _structure(layer: Layer) -> dict[str, object]:
    return {**_common.structure(layer), "projection": layer.proj_size}


def _kind(layer: AnyLayer) -> str:
    return layer.kind.value if isinstance(layer, PlainLayer) else f"recurrent {layer.kind.value}"


def adapted(source: PlainLayer, target: PlainLayer) -> PlainLayer:
    """``source`` holding exactly ``target``'s tensors, under ``target``'s name and options: a
    scale or bias the source leaves out is filled with ones or zeros (the same numbers), one the
    target leaves out must be ones or zeros in the source. Raises :class:`PortMismatchError`
    when shapes differ or a tensor cannot be left out."""
    tensors = {}
    for name, wanted in target.tensors.items():
        found = source.tensors.get(name)
        if found is None:
            if name not in _IDENTITY:
                raise PortMismatchError(f"the source holds no {name}")
            found = np.full(wanted.shape, _IDENTITY[name], dtype=source.dtype or wanted.dtype)
        if found.shape != wanted.shape:
            raise PortMismatchError(f"{name} {_shape(wanted)} against {_shape(found)}")
        tensors[name] = found
    for name, found in source.tensors.items():
        if name not in target.tensors and not (
            name in _IDENTITY and np.array_equal(found, np.full_like(found, _IDENTITY[name]))
        ):
            raise PortMismatchError(
                f"the target holds no {name}, the source's is not all {_IDENTITY.get(name, 0):g}"
            )
    return PlainLayer(target.kind, target.name, tensors, target.options)


def _check_options(source: PlainLayer, target: PlainLayer, both: str) -> None:
    if target.kind in (PlainKind.LAYER_NORM, PlainKind.BATCH_NORM):
        eps_t, eps_s = target.options["epsilon"], source.options["epsilon"]
        if not math.isclose(eps_t, eps_s, rel_tol=1e-6, abs_tol=0.0):
            raise PortMismatchError(
                f"{both} differ in epsilon: {eps_t:g} against {eps_s:g}",
                hint=f"build the target's normalization with epsilon {eps_s:g} (torch eps=, Keras epsilon=)",
            )
    if target.kind is PlainKind.CONV1D:
        differences = [
            f"{key} {target.options[key]} against {source.options[key]}"
            for key in _CONV_OPTIONS
            if target.options[key] != source.options[key]
        ]
        pad_t, pad_s = conv_padding(target), conv_padding(source)
        if pad_t != pad_s:
            differences.append(f"padding {target.options['padding']} against {source.options['padding']}")
        if differences:
            raise PortMismatchError(f"{both} differ: " + "; ".join(differences))
    if target.kind in (PlainKind.DENSE, PlainKind.CONV1D):
        _check_activation(source, target, both)


def _check_activation(source: PlainLayer, target: PlainLayer, both: str) -> None:
    act_t, act_s = target.options["activation"], source.options["activation"]
    if act_t == act_s:
        return
    if "linear" in (act_t, act_s):
        _log.warning(
            "%s differ in activation: %s against %s; the one without it must apply it after the layer "
            "(in its forward), or the outputs differ",
            both,
            act_t,
            act_s,
        )
        return
    raise PortMismatchError(f"{both} differ in activation: {act_t} against {act_s}")


def conv_padding(layer: PlainLayer) -> str | int:
    """A Conv1D's padding in one vocabulary: a number of zeros each side where one exists
    (``valid`` is 0, ``same`` at stride 1 and an odd reach is half of it), else its name."""
    padding = layer.options["padding"]
    if padding == "valid":
        return 0
    reach = int(layer.options["dilation"]) * (int(layer.tensors["weight"].shape[2]) - 1)
    if padding == "same" and layer.options["stride"] == 1 and reach % 2 == 0:
        return reach // 2
    return padding if isinstance(padding, str) else int(padding)


def _shape(array: np.ndarray) -> str:
    return "(" + ", ".join(str(n) for n in array.shape) + ("," if array.ndim == 1 else "") + ")"


def describe(layer: AnyLayer) -> str:
    """A layer in a few words: its kind and shapes (``dense weight (10, 32), bias (10,)``)."""
    if isinstance(layer, Layer):
        bias = "" if layer.has_bias else ", no bias"
        proj = f", projection {layer.proj_size}" if layer.proj_size else ""
        return (
            f"{layer.kind.value} {layer.direction.value} {layer.input_size} → {layer.hidden_size}{proj}{bias}"
        )
    shapes = ", ".join(f"{name} {_shape(array)}" for name, array in layer.items())
    extra = ""
    if "epsilon" in layer.options:
        extra = f", epsilon {layer.options['epsilon']:g}"
    elif layer.options.get("activation", "linear") != "linear":
        extra = f", {layer.options['activation']}"
    return f"{layer.kind.value} {shapes or 'no weights'}{extra}"


def _sides(targets: Sequence[AnyLayer], sources: Sequence[AnyLayer]) -> str:
    def listed(layers: Sequence[AnyLayer]) -> str:
        return "; ".join(f'"{layer.name}" {describe(layer)}' for layer in layers) or "none"

    return f"target layers: {listed(targets)} | source layers: {listed(sources)}"


def unchained(model: Model) -> str | None:
    """Why ``model``'s plain layers cannot be built with its recurrent ones as one chain
    (input → every layer in model order → output), or None when they can: what a writer of a
    runnable graph (.keras, .onnx) needs. Every two layers next to each other must be linked
    (``Model.links``): a reader that cannot say how its plain layers connect (a state_dict's keys,
    a torch module's registration order) leaves them out of the links, and they are not built
    as if it did; such a model's plain layers are listed as not carried there."""
    everything = weighted(model)  # Dropout and Masking compute nothing: looked through
    for before, after in zip(everything, everything[1:]):
        if isinstance(before, Layer) and isinstance(after, Layer):
            if not model.linked(before, after):
                return f'recurrent layers "{before.name}" and "{after.name}" are not linked'
        elif model.links is None or (before.name, after.name) not in set(model.links):
            return f'the source does not say that "{before.name}" feeds "{after.name}"'
    for index, layer in enumerate(everything):
        if isinstance(layer, PlainLayer) and layer.kind is PlainKind.EMBEDDING and index:
            return f'embedding "{layer.name}" is not the first layer'
    for before, after in zip(everything, everything[1:]):
        gives, takes = before.output_size, after.input_size
        if gives is not None and takes is not None and gives != takes:
            return f'layer "{after.name}" takes {takes} features but "{before.name}" gives {gives}'
    return None
