"""Live tf_keras (Keras 2) models read as their saved files are: each layer's config entry and
weights (``get_config``, ``get_weights``) go through the readers of :mod:`.files` and
:mod:`.around`, with Keras 2's meanings (its ``hard_sigmoid`` is 0.2·x + 0.5). Imports no
framework: the objects are asked, never their classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ...errors import LstmconvError, UnsupportedFeatureError
from ...ir import Layer, Model, Skipped
from ...plain import PlainLayer
from . import around, files, links
from . import names as keras_names

#: tf_keras computes as Keras 2 did.
KERAS_MAJOR = 2


def entry(layer: Any) -> dict[str, Any]:
    """A live layer as the config entry a file holds, its class's module kept (so a user's
    subclass is told from tf_keras's own class)."""
    try:
        config = layer.get_config()
    except Exception:  # a user's layer need not have a config
        config = {"name": layer.name}
    return {"class_name": type(layer).__name__, "module": type(layer).__module__, "config": config}


def model_config(source: Any) -> dict[str, Any] | None:
    """The model's config as a file holds it, or None (a lone layer, a subclassed model)."""
    if not hasattr(source, "layers"):
        return None
    try:
        return {"class_name": type(source).__name__, "config": source.get_config()}
    except Exception:  # a subclassed model need not have a config
        return None


def leaves(root: Any) -> Iterator[Any]:
    """Every layer that is not a model, depth first in model order (a nested model's too)."""
    children = getattr(root, "layers", None)
    if children is None or getattr(root, "layer", None) is not None:
        yield root
        return
    for child in children:
        yield from leaves(child)


def read(source: Any, *, strict: bool = False) -> Model:
    """The IR of a live tf_keras model or layer: recurrent layers, plain ones, the rest skipped."""
    layers: list[Layer] = []
    plain: list[PlainLayer] = []
    skipped: list[Skipped] = []
    order: list[str] = []
    for layer in leaves(source):
        if type(layer).__name__ == "InputLayer":
            continue
        described = entry(layer)
        weights = [np.asarray(w) for w in layer.get_weights()]
        try:
            spec = files._rnn_spec(described)
        except LstmconvError as error:
            raise error.within(getattr(source, "name", "")) from None
        if spec is not None:
            _refuse_subclass(spec, layer)
            half = len(weights) // 2
            directions = [weights[:half], weights[half:]] if spec.bidirectional else [weights]
            layers.append(files._layer(spec, directions, KERAS_MAJOR))
            order.append(layer.name)
            continue
        read_plain = around.from_entry(described, weights)
        if read_plain is not None:
            plain.append(read_plain)
            order.append(read_plain.name)
        elif weights:
            shapes = [(w.name, tuple(int(n) for n in w.shape)) for w in layer.weights]
            skipped.append(Skipped.of(layer.name, type(layer).__name__, shapes))
    config = model_config(source)
    keras_names.check_masks(config, layers, strict, getattr(source, "name", ""))
    found = links.links(config, order) if config is not None else None
    name = getattr(source, "name", type(source).__name__)
    return Model(tuple(layers), name, found, skipped=tuple(skipped), around=tuple(plain), order=tuple(order))


def _refuse_subclass(spec: files._Spec, layer: Any) -> None:
    """A user's subclass of a recurrent layer is refused live (its call() may compute otherwise)."""
    if spec.subclass:
        raise UnsupportedFeatureError(
            f"a recurrent layer of class {type(layer).__name__}, which lstmconv does not read",
            where=(f'layer "{layer.name}"',),
            hint="lstmconv reads tf_keras's own LSTM, GRU, SimpleRNN, RNN of their cells, and "
            "Bidirectional of those; a subclass may compute otherwise",
        )
