"""PyTorch's plain modules and whole models: ``nn.Embedding``, ``nn.Linear``, ``nn.Conv1d``,
``nn.LayerNorm``, ``nn.BatchNorm1d``, ``nn.Dropout`` read from a live module and built for
``to_torch``; a user's module filled from any model (``port_into``) and run end to end
(``run_whole``); a state_dict written in a template's exact layout (``write_like``).

Imports torch, and is reached only through :mod:`.live` (as ONNX's ``graph.py`` is).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import PortMismatchError, UnsupportedFeatureError
from ...ir import Layer, Model, Skipped
from ...plain import PlainKind, PlainLayer
from . import statedict
from . import template as template_

_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
    "gelu": lambda x: nn.functional.gelu(x),
    "elu": nn.functional.elu,
    "selu": nn.functional.selu,
    "softplus": nn.functional.softplus,
    "softsign": nn.functional.softsign,
    "swish": nn.functional.silu,
    "silu": nn.functional.silu,
    "exponential": torch.exp,
}


class Dense(nn.Linear):
    """``nn.Linear`` with the activation a Keras Dense applies after it (``to_torch``)."""

    def __init__(self, layer: PlainLayer, dtype: torch.dtype):
        out, inputs = layer.tensors["weight"].shape
        super().__init__(inputs, out, bias="bias" in layer.tensors, dtype=dtype)
        self.lstmconv_activation = _activation(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ACTIVATIONS[self.lstmconv_activation](super().forward(x))


class SeqConv1d(nn.Conv1d):
    """``nn.Conv1d`` on (batch, time, channels), as the recurrent layers take it."""

    def __init__(self, layer: PlainLayer, dtype: torch.dtype):
        out, per_group, kernel = layer.tensors["weight"].shape
        options = layer.options
        padding = options["padding"]
        self.lstmconv_causal = padding == "causal"
        super().__init__(
            per_group * options["groups"],
            out,
            kernel,
            stride=options["stride"],
            padding=0 if padding in ("causal", "valid") else padding,
            dilation=options["dilation"],
            groups=options["groups"],
            bias="bias" in layer.tensors,
            dtype=dtype,
        )
        self.lstmconv_activation = _activation(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        if self.lstmconv_causal:
            x = nn.functional.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0))
        return _ACTIVATIONS[self.lstmconv_activation](super().forward(x).transpose(1, 2))


class SeqBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` on (batch, time, channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class Masking(nn.Module):
    """Keras Masking: the steps whose features all equal ``mask_value`` are skipped by the
    recurrent layers after it, which ``nn.LSTM`` cannot do: refused where a step is masked."""

    def __init__(self, mask_value: float):
        super().__init__()
        self.mask_value = float(mask_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(torch.any(torch.all(x == self.mask_value, dim=-1))):
            raise UnsupportedFeatureError(
                f"a step of the input is all {self.mask_value:g}, which the Keras Masking layer masks; "
                "nn.LSTM cannot skip masked steps"
            )
        return x


def _activation(layer: PlainLayer) -> str:
    name = str(layer.options["activation"])
    if name not in _ACTIVATIONS:
        raise UnsupportedFeatureError(
            f"to_torch cannot apply the activation {name!r}",
            where=(f'layer "{layer.name}"',),
            hint=f"known: {', '.join(_ACTIVATIONS)}",
        )
    return name


def _tensor(array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    from .live import _tensor as shared

    tensor = shared(np.asarray(array))
    return tensor if dtype is None else tensor.to(dtype)


def new_module(layer: PlainLayer, dtype: torch.dtype) -> nn.Module:
    """The runnable module of a plain layer, filled (``to_torch``)."""
    options = layer.options
    module: nn.Module
    if layer.kind is PlainKind.EMBEDDING:
        num, dim = layer.tensors["weight"].shape
        module = nn.Embedding(num, dim, dtype=dtype)
    elif layer.kind is PlainKind.DENSE:
        module = Dense(layer, dtype)
    elif layer.kind is PlainKind.CONV1D:
        module = SeqConv1d(layer, dtype)
    elif layer.kind is PlainKind.LAYER_NORM:
        affine = bool(layer.tensors)
        module = nn.LayerNorm(
            layer.width or 1, eps=options["epsilon"], elementwise_affine=affine, dtype=dtype
        )
        if affine and "bias" not in layer.tensors:
            module = nn.LayerNorm(layer.width or 1, eps=options["epsilon"], bias=False, dtype=dtype)
    elif layer.kind is PlainKind.BATCH_NORM:
        affine = "weight" in layer.tensors or "bias" in layer.tensors  # the other one filled
        module = SeqBatchNorm1d(layer.width or 1, eps=options["epsilon"], affine=affine, dtype=dtype)
    elif layer.kind is PlainKind.DROPOUT:
        module = nn.Dropout(float(options["rate"]))
    else:
        module = Masking(options["mask_value"])
    fill(module, _complete(layer, module))
    return module


def _complete(layer: PlainLayer, module: nn.Module) -> PlainLayer:
    """``layer`` holding the tensors ``module`` has (a BatchNorm's missing beta as zeros)."""
    present = read_plain("", module)
    return around_adapted(layer, present) if isinstance(present, PlainLayer) else layer


def around_adapted(layer: PlainLayer, present: PlainLayer) -> PlainLayer:
    from ... import porting

    return porting.adapted(layer, present).replace(name=layer.name, options=layer.options)


def fill(module: nn.Module, layer: PlainLayer) -> None:
    """Copy ``layer``'s tensors into ``module``'s parameters and running statistics."""
    names = {"weight": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
    with torch.no_grad():
        for tensor, array in layer.items():
            present = getattr(module, names[tensor])
            present.copy_(_tensor(array, present.dtype))


# -- reading live modules ---------------------------------------------------------------------------
_PLAIN = (nn.Embedding, nn.Linear, nn.Conv1d, nn.LayerNorm, nn.BatchNorm1d, nn.Dropout, Masking)


def is_plain(module: nn.Module) -> bool:
    return isinstance(module, _PLAIN)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    from .live import _numpy as shared

    return shared(tensor)


def _tensors(module: nn.Module, fields: Mapping[str, str]) -> dict[str, np.ndarray]:
    found = {}
    for field, tensor in fields.items():
        value = getattr(module, field, None)
        if isinstance(value, torch.Tensor):
            found[tensor] = _numpy(value)
    return found


def read_plain(path: str, module: nn.Module) -> PlainLayer | Skipped:
    """The IR of one plain module, or what it is and why it is not read."""
    params = [(f"{path}.{name}" if path else name, tuple(p.shape)) for name, p in module.named_parameters()]
    why = _unreadable(module)
    if why is not None:
        return Skipped.of(path, f"{type(module).__name__} ({why})", params)
    weights = {"weight": "weight", "bias": "bias"}
    if isinstance(module, nn.Embedding):
        return PlainLayer(PlainKind.EMBEDDING, path, _tensors(module, {"weight": "weight"}))
    if isinstance(module, nn.Linear):
        return PlainLayer(
            PlainKind.DENSE,
            path,
            _tensors(module, weights),
            {"activation": getattr(module, "lstmconv_activation", "linear")},
        )
    if isinstance(module, nn.Conv1d):
        padding = module.padding if isinstance(module.padding, str) else int(module.padding[0])
        options = {
            "stride": int(module.stride[0]),
            "padding": "causal" if getattr(module, "lstmconv_causal", False) else padding,
            "dilation": int(module.dilation[0]),
            "groups": int(module.groups),
            "activation": getattr(module, "lstmconv_activation", "linear"),
        }
        return PlainLayer(PlainKind.CONV1D, path, _tensors(module, weights), options)
    if isinstance(module, nn.LayerNorm):
        return PlainLayer(
            PlainKind.LAYER_NORM, path, _tensors(module, weights), {"epsilon": float(module.eps)}
        )
    if isinstance(module, nn.BatchNorm1d):
        fields = {**weights, "running_mean": "mean", "running_var": "var"}
        return PlainLayer(
            PlainKind.BATCH_NORM, path, _tensors(module, fields), {"epsilon": float(module.eps), "axis": 1}
        )
    if isinstance(module, nn.Dropout):
        return PlainLayer(PlainKind.DROPOUT, path, {}, {"rate": float(module.p)})
    return PlainLayer(PlainKind.MASKING, path, {}, {"mask_value": module.mask_value})


def _unreadable(module: nn.Module) -> str | None:
    if isinstance(module, nn.Embedding) and module.max_norm is not None:
        return "max_norm renormalizes the rows it looks up"
    if isinstance(module, nn.Conv1d) and module.padding_mode != "zeros":
        return f"padding_mode {module.padding_mode!r}"
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) != 1:
        return f"normalized over {len(module.normalized_shape)} axes"
    if isinstance(module, nn.BatchNorm1d) and module.running_mean is None:
        return "track_running_stats=False normalizes with each batch's statistics"
    return None


# -- porting into a live module -----------------------------------------------------------------
def port_into(
    target: nn.Module, source: Model, pairs: Sequence[tuple[str, str]], present: Model
) -> nn.Module:
    """Fill ``target`` (read as ``present``) with ``source``'s layers as ``pairs`` say: every
    pair is checked first, the recurrent layers go in by :func:`.live.load_into`, the plain ones
    by their tensors. Nothing changes when a pair does not fit."""
    from ... import porting
    from . import live

    theirs = {layer.name: layer for layer in present.everything()}
    mine = {layer.name: layer for layer in source.everything()}
    missing = [f"{t} ← {s}" for t, s in pairs if t not in theirs or s not in mine]
    if missing:
        raise PortMismatchError(f"pairs name layers neither model has: {', '.join(missing)}")
    plain = []
    for t, s in pairs:
        porting.check(mine[s], theirs[t])
        if isinstance(theirs[t], PlainLayer):
            plain.append((target.get_submodule(t), porting.adapted(mine[s], theirs[t])))  # type: ignore[arg-type]
    recurrent = {t: s for t, s in pairs if isinstance(theirs[t], Layer)}
    if recurrent:
        live.load_into(target, source, recurrent)
    for module, layer in plain:
        fill(module, layer)
    return target


def run_whole(obj: nn.Module, x: np.ndarray) -> np.ndarray:
    """Run a module end to end in eval mode (its mode restored after): float input (batch,
    time, features) in its parameters' dtype, integer ids as int64; the first output if it
    returns several (``nn.LSTM``'s output and state)."""
    parameter = next(obj.parameters(), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    array = np.asarray(x)
    tensor = torch.as_tensor(array).long() if array.dtype.kind in "iu" else torch.as_tensor(array).to(dtype)
    was_training = obj.training
    obj.eval()
    try:
        with torch.no_grad():
            output = obj(tensor)
    finally:
        obj.train(was_training)
    while isinstance(output, (tuple, list)):
        output = output[0]
    return _numpy(output.float() if output.dtype == torch.bfloat16 else output)


# -- a state_dict in a template's layout -----------------------------------------------------------
def load_template(path: str) -> tuple[Mapping[str, Any], Any]:
    """The template's state_dict (its tensors, in order) and its ``_metadata``."""
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    state = statedict.find_state_dict(loaded, lambda value: isinstance(value, torch.Tensor))
    if state is None:
        raise statedict.no_state_dict(path, loaded, lambda value: isinstance(value, torch.Tensor))
    return state, getattr(state, "_metadata", None)


def write_like(model: Model, template: str, pairs: Sequence[tuple[str, str]], dest: str) -> None:
    """Write ``model``'s weights into ``dest`` in the exact layout of the ``.pt`` (or
    ``.safetensors``) ``template``: its keys, their order and dtypes; its integer entries
    (``num_batches_tracked``) and ``_metadata`` kept. ``pairs``: (template layer, model layer)."""
    if os.fspath(template).lower().endswith(".safetensors"):
        from . import safetensors

        safetensors.write_like(model, template, pairs, dest)
        return
    state, metadata = load_template(template)
    arrays = OrderedDict(
        (key, _numpy(value)) for key, value in state.items() if isinstance(value, torch.Tensor)
    )
    present = statedict.read_tensors(arrays, source=template, like=model, like_names={t: s for t, s in pairs})
    values = template_.values(model, present, pairs, arrays, template)
    written = OrderedDict()
    for key, value in state.items():
        written[key] = _tensor(values[key]).to(value.dtype).reshape(value.shape) if key in values else value
    if metadata is not None:
        written._metadata = metadata  # type: ignore[attr-defined]  # PyTorch's own convention
    with open(dest, "wb") as handle:
        torch.save(written, handle)
