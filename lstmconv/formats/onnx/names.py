"""ONNX's names for what the IR holds (gate orders, operators, activations, input positions)
and the tensors a layer becomes, for ``inspect``. Needs no onnx package."""

from __future__ import annotations

from collections.abc import Mapping

from ...inspection import Tensor
from ...ir import Kind, Layer
from .. import _common

#: TensorProto.DataType -> NumPy dtype name (bfloat16 through ml_dtypes).
DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}
GATE_ORDER: Mapping[Kind, tuple[str, ...]] = {
    Kind.LSTM: ("i", "o", "f", "g"),
    Kind.GRU: ("z", "r", "n"),
    Kind.RNN: ("h",),
}
PEEPHOLE_ORDER = ("i", "o", "f")
#: The ONNX docs name the LSTM candidate c and the GRU candidate h.
GATE_NAMES = {Kind.LSTM: ("i", "o", "f", "c"), Kind.GRU: ("z", "r", "h"), Kind.RNN: ("h",)}
OPS: Mapping[str, Kind] = {"LSTM": Kind.LSTM, "GRU": Kind.GRU, "RNN": Kind.RNN}
OP_NAMES = {kind: op for op, kind in OPS.items()}
DEFAULT_OPSET = 17
#: bfloat16 became a type of LSTM, GRU and RNN in opset 22.
BFLOAT16_OPSET = 22
ACTIVATIONS: Mapping[str, str] = {
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Relu": "relu",
    "HardSigmoid": "hard_sigmoid",
    "Affine": "affine",
    "LeakyRelu": "leaky_relu",
    "ThresholdedRelu": "thresholded_relu",
    "ScaledTanh": "scaled_tanh",
    "Elu": "elu",
    "Softsign": "softsign",
    "Softplus": "softplus",
}
BY_LOWER = {name.lower(): ir_name for name, ir_name in ACTIVATIONS.items()}
FROM_IR = {ir_name: name for name, ir_name in ACTIVATIONS.items()}
#: The node's input position of each weight tensor, and its name.
WEIGHT_INPUTS = {1: "W", 2: "R", 3: "B", 7: "P"}
#: AttributeProto.AttributeType, and the field that holds each type's value.
FLOAT, INT, STRING, TENSOR, FLOATS, INTS, STRINGS = 1, 2, 3, 4, 6, 7, 8
#: The attribute types that hold subgraphs (the bodies of Loop, Scan and If).
GRAPH, GRAPHS = 5, 10
#: Ops whose attributes hold subgraphs: control flow.
CONTROL_FLOW = ("Loop", "Scan", "If")
#: TensorProto.DataType of the floating-point types (weights).
FLOAT_TYPES = (1, 10, 11, 16)
ATTRIBUTE_FIELDS = {
    FLOAT: "f",
    INT: "i",
    STRING: "s",
    TENSOR: "t",
    FLOATS: "floats",
    INTS: "ints",
    STRINGS: "strings",
}
#: Ops that move or reshape values without changing them.
SHAPE_OPS = {"Identity", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Expand", "Flatten", "Transpose"}


def check(layer: Layer) -> None:
    """Raise for what ONNX's LSTM/GRU/RNN cannot express: a projection, TensorFlow's clips."""
    _common.refuse_tf_clips(layer, "ONNX")
    if layer.proj_size:
        raise _common.unsupported(
            layer,
            f"a projection (proj_size={layer.proj_size})",
            "ONNX",
            "PyTorch and .npz keep projections",
        )


def layout(layer: Layer) -> list[Tensor]:
    """The tensors this format stores for ``layer``, for ``inspect``."""
    g, h, i, d = len(layer.gates), layer.hidden_size, layer.input_size, layer.num_directions
    order = "·".join(GATE_NAMES[layer.kind])
    tensors = [Tensor("W", (d, g * h, i), order), Tensor("R", (d, g * h, h), order)]
    if layer.has_bias:
        tensors.append(Tensor("B", (d, 2 * g * h), f"[Wb {order}; Rb {order}]"))
    if layer.has_peepholes:
        tensors.append(Tensor("P", (d, 3 * h), "i·o·f"))
    return tensors
