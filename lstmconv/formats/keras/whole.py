"""Whole Keras models: filling a user's model layer by layer (``port_into``, recurrent and plain),
running it end to end (``run_whole``), writing into an untrained ``.keras`` template
(``write_like``), and building a model of plain and recurrent layers in one chain.

Works on Keras 3 models and on tf_keras (Keras 2) ones alike: their layers are found by name
and filled with ``set_weights``, whose order and orientation the two share.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from ... import porting
from ...errors import LstmconvError, PortMismatchError, UnsupportedFeatureError
from ...ir import Layer, Model
from ...plain import PlainKind, PlainLayer
from .. import _common
from . import around, live, tf_keras_live

_log = logging.getLogger("lstmconv.formats.keras")


def _named(root: Any) -> dict[str, Any]:
    """Every layer that is not a model, by name, nested models' too."""
    return {layer.name: layer for layer in tf_keras_live.leaves(root)}


def _recurrent_weights(layer: Layer) -> list[np.ndarray]:
    return [w for cell in layer.cells for w in live._weights(layer, cell)]


def _planned(
    target: Any, source: Model, pairs: Sequence[tuple[str, str]]
) -> list[tuple[Any, list[np.ndarray]]]:
    """Each target layer with the weights it gets, every pair checked before any is written."""
    present = live.read(target)
    targets = {layer.name: layer for layer in present.everything()}
    sources = {layer.name: layer for layer in source.everything()}
    objects = _named(target)
    keras_3 = not live.is_tf_keras(target)
    plan = []
    for target_name, source_name in pairs:
        if target_name not in targets or target_name not in objects:
            raise PortMismatchError(
                f'the Keras model has no layer "{target_name}"', hint=f"layers: {', '.join(targets)}"
            )
        if source_name not in sources:
            raise PortMismatchError(
                f'the source has no layer "{source_name}"', hint=f"layers: {', '.join(sources)}"
            )
        wanted, given = targets[target_name], sources[source_name]
        porting.check(given, wanted)
        if isinstance(given, Layer) and isinstance(wanted, Layer):
            if keras_3:
                live.check(given)
            _same_math(wanted, given)
            weights = _recurrent_weights(given)
        else:
            assert isinstance(given, PlainLayer) and isinstance(wanted, PlainLayer)
            weights = around.keras_weights(porting.adapted(given, wanted))
        obj = objects[target_name]
        found = [tuple(w.shape) for w in obj.get_weights()]
        if found != [tuple(w.shape) for w in weights]:
            raise PortMismatchError(
                f'Keras layer "{target_name}" holds weights of shapes {found}; source layer '
                f'"{source_name}" gives {[tuple(w.shape) for w in weights]}'
            )
        dtypes = [w.dtype for w in obj.get_weights()]
        plan.append((obj, [np.asarray(w, dtype=d) for w, d in zip(weights, dtypes)]))
    return plan


def _same_math(target: Layer, source: Layer) -> None:
    """What a recurrent layer computes beyond its shapes: its activations (Keras 2's hard_sigmoid
    is not Keras 3's) and a bidirectional layer's merge, the same in both, or refused naming both."""
    differences = []
    if [str(a) for a in target.activations] != [str(a) for a in source.activations]:
        shown = [", ".join(str(a) for a in layer.activations) for layer in (target, source)]
        differences.append(f"activations {shown[0]} against {shown[1]}")
    if target.num_directions == 2 and target.merge != source.merge:
        differences.append(f"merge {target.merge} against {source.merge}")
    if differences:
        raise PortMismatchError(
            f'target layer "{target.name}" and source layer "{source.name}" differ: '
            + "; ".join(differences),
            hint="build the target's layer with the source's activations and merge mode",
        )


def port_into(target: Any, source: Model, pairs: Sequence[tuple[str, str]]) -> Any:
    """Fill the Keras 3 or tf_keras model's layer named ``pairs[i][0]`` with ``source``'s layer
    ``pairs[i][1]``, recurrent and plain; every pair is checked before anything is written."""
    for obj, weights in _planned(target, source, pairs):
        obj.set_weights(weights)
    return target


def run_whole(obj: Any, x: np.ndarray) -> np.ndarray:
    """Run a Keras 3 or tf_keras model end to end on ``x``: float (batch, time, features), or
    integer ids (batch, time) for a model that starts with an Embedding, cast to its input's dtype.
    A path is loaded as given: a ``.keras`` or Keras 3 ``.h5`` by Keras (``safe_mode``), a Keras 2
    ``.h5`` by tf_keras."""
    if isinstance(obj, (str, os.PathLike)):
        obj = live._load_as_given(obj)[1]
    inputs = getattr(obj, "inputs", None) or []
    if len(inputs) > 1:
        raise UnsupportedFeatureError(
            f"a model of {len(inputs)} inputs", where=(obj.name,), hint="port runs one input"
        )
    dtype = getattr(inputs[0].dtype, "name", inputs[0].dtype) if inputs else str(np.asarray(x).dtype)
    out = obj(np.asarray(x, dtype=np.dtype(str(dtype))), training=False)
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise UnsupportedFeatureError(f"a model of {len(out)} outputs", where=(obj.name,))
        out = out[0]
    return np.asarray(keras.ops.convert_to_numpy(out) if not live.is_tf_keras(obj) else out)


def write_like(model: Model, template: str, pairs: Sequence[tuple[str, str]], dest: str) -> None:
    """Write ``model``'s weights into ``dest`` as the untrained ``.keras`` ``template`` holds
    them: the template loaded by Keras (``safe_mode``: no lambdas), filled as :func:`port_into`
    fills a live model, saved as :func:`.live.write` saves (the same bytes for the same model)."""
    if not os.fspath(template).lower().endswith(".keras"):
        raise UnsupportedFeatureError(
            "a Keras template must be a .keras file",
            where=(os.fspath(template),),
            hint="save it with model.save('init.keras')",
        )
    try:
        loaded = keras.saving.load_model(os.fspath(template), compile=False, safe_mode=True)
    except LstmconvError:
        raise
    except Exception as error:
        raise UnsupportedFeatureError(
            f"Keras cannot load the template: {type(error).__name__}: {_first_line(error)}",
            where=(os.fspath(template),),
        ) from None
    port_into(loaded, model, pairs)
    live.save_built(loaded, dest)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- building: plain and recurrent layers in one chain ------------------------------------------
def one_chain(model: Model) -> bool:
    """Whether every layer, recurrent and plain, feeds the next in model order as the source
    says (:func:`lstmconv.porting.unchained`): what :func:`build_whole` can build."""
    from ... import porting

    return porting.unchained(model) is None


def not_carried(model: Model) -> list[str]:
    """The plain layers a built Keras model leaves out: all of them unless the model is one chain."""
    return [] if not model.around or one_chain(model) else [layer.name for layer in model.around]


def _plain_layer(layer: PlainLayer, name: str, dtype: str) -> Any:
    """The Keras 3 layer computing ``layer``."""
    options, kind, L = layer.options, layer.kind, keras.layers
    try:
        if kind is PlainKind.EMBEDDING:
            vocab, dim = layer.tensors["weight"].shape
            return L.Embedding(int(vocab), int(dim), name=name, dtype=dtype)
        if kind is PlainKind.DENSE:
            dense = L.Dense(
                layer.output_size,
                activation=options["activation"],
                use_bias="bias" in layer.tensors,
                dtype=dtype,
                name=f"{name}_dense" if options["time_distributed"] else name,
            )
            return L.TimeDistributed(dense, name=name, dtype=dtype) if options["time_distributed"] else dense
        if kind is PlainKind.CONV1D:
            if not isinstance(options["padding"], str):
                raise UnsupportedFeatureError(
                    f"Conv1D padding of {options['padding']} zeros each side",
                    hint="Keras pads valid, same or causal",
                )
            return L.Conv1D(
                layer.output_size,
                int(layer.tensors["weight"].shape[2]),
                strides=options["stride"],
                padding=options["padding"],
                dilation_rate=options["dilation"],
                groups=options["groups"],
                activation=options["activation"],
                use_bias="bias" in layer.tensors,
                name=name,
                dtype=dtype,
            )
        norm = {
            "axis": options.get("axis"),
            "epsilon": options.get("epsilon"),
            "center": "bias" in layer.tensors,
        }
        if kind is PlainKind.LAYER_NORM:
            return L.LayerNormalization(**norm, scale="weight" in layer.tensors, name=name, dtype=dtype)
        if kind is PlainKind.BATCH_NORM:
            return L.BatchNormalization(**norm, scale="weight" in layer.tensors, name=name, dtype=dtype)
        if kind is PlainKind.DROPOUT:
            return L.Dropout(options["rate"], name=name, dtype=dtype)
        return L.Masking(options["mask_value"], name=name, dtype=dtype)
    except LstmconvError as error:
        raise error.within(f'layer "{layer.name}"') from None
    except ValueError as error:  # an activation Keras does not know
        raise UnsupportedFeatureError(
            f"Keras cannot build it: {error}", where=(f'layer "{layer.name}"',)
        ) from None


def build_whole(model: Model) -> Any:
    """A ``keras.Model`` of every layer, plain and recurrent, in model order (one chain): input
    integer ids (batch, time) when it starts with an Embedding, else (batch, time, features)."""
    for layer in model.layers:
        live.check(layer)
    layers = model.everything()
    names = _common.identifiers(layers)
    dtype = str(model.layers[0].dtype)
    first = layers[0]
    if isinstance(first, PlainLayer) and first.kind is PlainKind.EMBEDDING:
        x = keras.Input(shape=(None,), dtype="int32", name="input")
    else:
        width = next(layer.input_size for layer in layers if layer.input_size is not None)
        x = keras.Input(shape=(None, width), dtype=dtype, name="input")
    inputs, built = x, list[tuple[Any, Layer | PlainLayer, list[np.ndarray]]]()
    for one in layers:
        name = names[one.name]
        if isinstance(one, Layer):
            keras_layer = live.new_layer(one, name)
            weights = _recurrent_weights(one)
        else:
            keras_layer = _plain_layer(one, name, dtype)
            weights = around.keras_weights(one.astype(np.dtype(dtype)))
        x = keras_layer(x)
        built.append((keras_layer, one, weights))
    result = keras.Model(inputs, x, name="lstmconv")
    for keras_layer, made, weights in built:
        keras_layer.set_weights(weights)
        if isinstance(made, Layer):
            live._restore_initializers(keras_layer, made)
    return result
