"""A state_dict in a template's exact layout (``convert --like init.pt``), without torch: which
value goes under each of the template's keys, shared by ``.pt`` (:mod:`.whole`) and
``.safetensors`` (:mod:`.safetensors`) templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import PortMismatchError
from ...ir import Layer, Model
from ...plain import PlainLayer
from .._common import dims
from . import around, statedict


def values(
    model: Model,
    present: Model,
    pairs: Sequence[tuple[str, str]],
    template: Mapping[str, np.ndarray],
    where: str,
) -> dict[str, np.ndarray]:
    """The template's entries filled from ``model`` as ``pairs`` say, cast to the template's
    dtypes; its integer entries kept. Raises :class:`PortMismatchError` naming the key where the
    template holds a tensor no layer fills, or a layer gives one the template lacks."""
    from ... import porting

    theirs = {layer.name: layer for layer in present.everything()}
    mine = {layer.name: layer for layer in model.everything()}
    recurrent, produced = [], {}
    for t, s in pairs:
        target, source = theirs.get(t), mine.get(s)
        if target is None or source is None:
            raise PortMismatchError(f'the pair "{t}" ← "{s}" names a layer neither side has', where=(where,))
        porting.check(source, target)
        if isinstance(target, Layer) and isinstance(source, Layer):
            recurrent.append(source.replace(name=t, stepped=target.stepped, merge="concat"))
        elif isinstance(target, PlainLayer) and isinstance(source, PlainLayer):
            produced.update(around.state_entries(porting.adapted(source, target)))
    if recurrent:
        renamed = Model(tuple(recurrent), where, present.links)
        produced.update(_rooted(statedict.state_dict(renamed), template))
    values = {}
    for key, array in template.items():
        if around.is_counter(key, array):
            continue  # the template's own count (num_batches_tracked), kept
        if key in produced:
            if tuple(produced[key].shape) != tuple(array.shape):
                raise PortMismatchError(
                    f"the template holds {dims(array.shape)}, the model gives {dims(produced[key].shape)}",
                    where=(where, key),
                )
            values[key] = np.asarray(produced[key]).astype(array.dtype)
        else:
            raise PortMismatchError(
                "no layer of the model fills this template tensor",
                where=(where, key),
                hint="the template's layer is not one lstmconv reads, or pass a mapping",
            )
    extra = sorted(set(produced) - set(template))
    if extra:
        raise PortMismatchError(
            f"the model gives tensors the template lacks: {', '.join(extra)}", where=(where,)
        )
    return values


def _rooted(produced: Mapping[str, np.ndarray], template: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A bare ``nn.LSTM`` template's keys have no module prefix (``weight_ih_l0``), while its
    layer is named after its kind: such keys lose the name again."""
    found = {}
    for key, value in produced.items():
        bare = key.partition(".")[2]
        found[bare if key not in template and bare in template else key] = value
    return found
