"""The plain layers (:mod:`lstmconv.plain`) as ONNX nodes, for a model written as one chain.

Values between layers are batch-major (batch, time, features), as the user's model has them:
Embedding a ``Gather`` of int64 ids; Dense a ``MatMul`` by the (in, out) kernel, ``Add`` of the
bias, its activation; Conv1D a ``Conv`` between two ``Transpose`` (ONNX convolves channels-first),
its padding as explicit pads; LayerNorm ``LayerNormalization`` (opset 17) with the layer's
epsilon; BatchNorm ``BatchNormalization`` over the features. Dropout and Masking compute nothing
at inference and add no node. The builder is :class:`.graph.Graph`; this module needs no onnx.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import UnsupportedFeatureError
from ...ir import Model
from ...plain import NO_OPS, PlainKind, PlainLayer

#: Keras activation names as one ONNX op (with the attributes that make it Keras's: Keras 3's
#: leaky_relu has slope 0.2, ONNX's LeakyRelu 0.01 by default).
_ACTIVATION_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("Relu", {}),
    "tanh": ("Tanh", {}),
    "sigmoid": ("Sigmoid", {}),
    "softmax": ("Softmax", {"axis": -1}),
    "log_softmax": ("LogSoftmax", {"axis": -1}),
    "elu": ("Elu", {"alpha": 1.0}),
    "selu": ("Selu", {}),
    "softplus": ("Softplus", {}),
    "softsign": ("Softsign", {}),
    "exponential": ("Exp", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.2}),
}
LAYER_NORM_OPSET = 17


def not_carried(model: Model) -> str | None:
    """Why ``model``'s plain layers cannot be written with its recurrent ones as one chain, or
    None when they can (:func:`lstmconv.porting.unchained`)."""
    from ... import porting

    return porting.unchained(model)


def add(graph: Any, prefix: str, layer: PlainLayer, x: str, opset: int) -> str:
    """The layer's nodes on batch-major ``x``; returns the value after them."""
    if layer.kind in NO_OPS:
        return x
    tensors = {name: np.ascontiguousarray(array) for name, array in layer.tensors.items()}
    if layer.kind is PlainKind.EMBEDDING:
        return graph.node(
            "Gather", [graph.constant(f"{prefix}.weight", tensors["weight"]), x], f"{prefix}/out"
        )
    if layer.kind is PlainKind.DENSE:
        y = graph.node(
            "MatMul", [x, graph.constant(f"{prefix}.kernel", tensors["weight"].T)], f"{prefix}/matmul"
        )
        if "bias" in tensors:
            y = graph.node("Add", [y, graph.constant(f"{prefix}.bias", tensors["bias"])], f"{prefix}/biased")
        return _activation(graph, prefix, layer, y)
    if layer.kind is PlainKind.CONV1D:
        return _conv(graph, prefix, layer, tensors, x)
    if layer.kind is PlainKind.LAYER_NORM:
        return _layer_norm(graph, prefix, layer, tensors, x, opset)
    return _batch_norm(graph, prefix, layer, tensors, x)


def _activation(graph: Any, prefix: str, layer: PlainLayer, y: str) -> str:
    activation = layer.options["activation"]
    if activation == "linear":
        return y
    if activation in ("silu", "swish"):  # x · sigmoid(x)
        gate = graph.node("Sigmoid", [y], f"{prefix}/{activation}_gate")
        return graph.node("Mul", [y, gate], f"{prefix}/{activation}")
    found = _ACTIVATION_OPS.get(activation)
    if found is None:
        raise UnsupportedFeatureError(
            f"activation {activation!r} is not one lstmconv writes as ONNX ops",
            where=(f'layer "{layer.name}"',),
            hint=f"these are: {', '.join(sorted([*_ACTIVATION_OPS, 'silu', 'swish']))}",
        )
    op, attrs = found
    return graph.node(op, [y], f"{prefix}/{activation}", **attrs)


def _conv(graph: Any, prefix: str, layer: PlainLayer, tensors: dict[str, np.ndarray], x: str) -> str:
    options, kernel = layer.options, int(tensors["weight"].shape[2])
    reach = (kernel - 1) * int(options["dilation"])
    padding = options["padding"]
    if padding == "valid":
        pads = [0, 0]
    elif padding == "causal":
        pads = [reach, 0]
    elif padding == "same":
        if options["stride"] != 1:
            raise UnsupportedFeatureError(
                "padding 'same' with a stride other than 1", where=(f'layer "{layer.name}"',)
            )
        pads = [reach // 2, reach - reach // 2]
    else:
        pads = [int(padding), int(padding)]
    channels = graph.node("Transpose", [x], f"{prefix}/channels_first", perm=[0, 2, 1])
    inputs = [channels, graph.constant(f"{prefix}.weight", tensors["weight"])]
    if "bias" in tensors:
        inputs.append(graph.constant(f"{prefix}.bias", tensors["bias"]))
    y = graph.node(
        "Conv",
        inputs,
        f"{prefix}/conv",
        kernel_shape=[kernel],
        strides=[int(options["stride"])],
        dilations=[int(options["dilation"])],
        group=int(options["groups"]),
        pads=pads,
    )
    y = _activation(graph, prefix, layer, y)  # elementwise: before the Transpose, as exporters write it
    return graph.node("Transpose", [y], f"{prefix}/channels_last", perm=[0, 2, 1])


def _layer_norm(
    graph: Any, prefix: str, layer: PlainLayer, tensors: dict[str, np.ndarray], x: str, opset: int
) -> str:
    if opset < LAYER_NORM_OPSET:
        raise UnsupportedFeatureError(
            f"LayerNormalization needs opset {LAYER_NORM_OPSET}, but opset {opset} was asked",
            where=(f'layer "{layer.name}"',),
            hint="leave the opset to lstmconv",
        )
    width = int(layer.width or 0)
    dtype = layer.dtype
    scale = tensors.get("weight", np.ones(width, dtype))
    inputs = [x, graph.constant(f"{prefix}.weight", scale)]
    if "bias" in tensors:
        inputs.append(graph.constant(f"{prefix}.bias", tensors["bias"]))
    return graph.node(
        "LayerNormalization", inputs, f"{prefix}/out", axis=-1, epsilon=float(layer.options["epsilon"])
    )


def _batch_norm(graph: Any, prefix: str, layer: PlainLayer, tensors: dict[str, np.ndarray], x: str) -> str:
    width, dtype = int(layer.width or 0), layer.dtype
    parts = {
        "weight": tensors.get("weight", np.ones(width, dtype)),
        "bias": tensors.get("bias", np.zeros(width, dtype)),
        "mean": tensors["mean"],
        "var": tensors["var"],
    }
    channels = graph.node("Transpose", [x], f"{prefix}/channels_first", perm=[0, 2, 1])
    inputs = [channels, *(graph.constant(f"{prefix}.{name}", value) for name, value in parts.items())]
    y = graph.node(
        "BatchNormalization", inputs, f"{prefix}/normalized", epsilon=float(layer.options["epsilon"])
    )
    return graph.node("Transpose", [y], f"{prefix}/out", perm=[0, 2, 1])
