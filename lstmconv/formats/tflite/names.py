"""TFLite's names for what the IR holds: operator codes, tensor types, the per-gate inputs of
the LSTM and RNN operators by position, activations, and the tensors a layer becomes, for
``inspect``. Needs neither TensorFlow nor the flatbuffers package.

Positions are those of ``tensorflow/lite/kernels/lstm_shared.h`` (``lstm::full``),
``bidirectional_sequence_lstm.cc``, ``unidirectional_sequence_rnn.cc`` and
``bidirectional_sequence_rnn.cc``; numbers of ``tensorflow/lite/schema/schema.fbs``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...inspection import Tensor
from ...ir import Activation, Direction, Kind, Layer

#: TFLite stores every gate as its own tensor, in this order of inputs: input, forget, cell, output.
GATE_ORDER: Mapping[Kind, tuple[str, ...]] = {Kind.LSTM: ("i", "f", "g", "o"), Kind.RNN: ("h",)}
#: TFLite's word for each IR gate, as in its tensor names.
GATE_WORDS = {"i": "input", "f": "forget", "g": "cell", "o": "output"}

# -- schema numbers ----------------------------------------------------------------------------
#: BuiltinOperator codes lstmconv reads, follows or names.
LSTM, RNN = 16, 24
UNIDIRECTIONAL_SEQUENCE_RNN, UNIDIRECTIONAL_SEQUENCE_LSTM = 35, 44
BIDIRECTIONAL_SEQUENCE_RNN, BIDIRECTIONAL_SEQUENCE_LSTM = 46, 52
CONCATENATION, DEQUANTIZE, REVERSE_V2, WHILE, CUSTOM = 2, 6, 105, 119, 32
ADD, MUL, STRIDED_SLICE = 0, 18, 45
OP_NAMES = {
    LSTM: "LSTM",
    RNN: "RNN",
    UNIDIRECTIONAL_SEQUENCE_RNN: "UNIDIRECTIONAL_SEQUENCE_RNN",
    UNIDIRECTIONAL_SEQUENCE_LSTM: "UNIDIRECTIONAL_SEQUENCE_LSTM",
    BIDIRECTIONAL_SEQUENCE_RNN: "BIDIRECTIONAL_SEQUENCE_RNN",
    BIDIRECTIONAL_SEQUENCE_LSTM: "BIDIRECTIONAL_SEQUENCE_LSTM",
    CONCATENATION: "CONCATENATION",
    DEQUANTIZE: "DEQUANTIZE",
    REVERSE_V2: "REVERSE_V2",
    WHILE: "WHILE",
    CUSTOM: "CUSTOM",
    ADD: "ADD",
    MUL: "MUL",
    118: "IF",
    129: "CALL_ONCE",
    39: "TRANSPOSE",
    STRIDED_SLICE: "STRIDED_SLICE",
}
RECURRENT_OPS = {
    LSTM,
    RNN,
    UNIDIRECTIONAL_SEQUENCE_LSTM,
    BIDIRECTIONAL_SEQUENCE_LSTM,
    UNIDIRECTIONAL_SEQUENCE_RNN,
    BIDIRECTIONAL_SEQUENCE_RNN,
}

#: TensorType -> NumPy dtype name.
FLOAT32, FLOAT16, INT32, UINT8, INT64, INT8, FLOAT64, INT16, BFLOAT16 = 0, 1, 2, 3, 4, 9, 10, 7, 18
TYPE_NAMES = {
    FLOAT32: "float32",
    FLOAT16: "float16",
    INT32: "int32",
    UINT8: "uint8",
    INT64: "int64",
    5: "string",
    6: "bool",
    INT16: "int16",
    8: "complex64",
    INT8: "int8",
    FLOAT64: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
    BFLOAT16: "bfloat16",
}
FLOAT_TYPES = {FLOAT32: "float32", FLOAT16: "float16", FLOAT64: "float64", BFLOAT16: "bfloat16"}
QUANTIZED_TYPES = {INT8, UINT8, INT16, 17}
#: The integers quantized weights are stored as (int32: biases of integer kernels).
STORED_QUANTIZED = {INT8: "int8", UINT8: "uint8", INT16: "int16", INT32: "int32"}

#: BuiltinOptions union members: (name, {field: (field index, struct code, default)}).
_CLIPS = {"cell_clip": (1, "f", 0.0), "proj_clip": (2, "f", 0.0)}
OPTIONS: Mapping[int, tuple[str, dict[str, tuple[int, str, object]]]] = {
    7: (
        "RNNOptions",
        {"fused_activation_function": (0, "b", 0), "asymmetric_quantize_inputs": (1, "?", False)},
    ),
    11: ("AddOptions", {"fused_activation_function": (0, "b", 0)}),
    21: ("MulOptions", {"fused_activation_function": (0, "b", 0)}),
    10: ("ConcatenationOptions", {"axis": (0, "i", 0), "fused_activation_function": (1, "b", 0)}),
    14: (
        "LSTMOptions",
        {
            "fused_activation_function": (0, "b", 0),
            **_CLIPS,
            "kernel_type": (3, "b", 0),
            "asymmetric_quantize_inputs": (4, "?", False),
        },
    ),
    31: (
        "SequenceRNNOptions",
        {
            "time_major": (0, "?", False),
            "fused_activation_function": (1, "b", 0),
            "asymmetric_quantize_inputs": (2, "?", False),
        },
    ),
    69: (
        "BidirectionalSequenceLSTMOptions",
        {
            "fused_activation_function": (0, "b", 0),
            **_CLIPS,
            "merge_outputs": (3, "?", False),
            "time_major": (4, "?", True),
            "asymmetric_quantize_inputs": (5, "?", False),
        },
    ),
    70: (
        "BidirectionalSequenceRNNOptions",
        {
            "time_major": (0, "?", False),
            "fused_activation_function": (1, "b", 0),
            "merge_outputs": (2, "?", False),
            "asymmetric_quantize_inputs": (3, "?", False),
        },
    ),
    71: (
        "UnidirectionalSequenceLSTMOptions",
        {
            "fused_activation_function": (0, "b", 0),
            **_CLIPS,
            "time_major": (3, "?", False),
            "asymmetric_quantize_inputs": (4, "?", False),
            "diagonal_recurrent_tensors": (5, "?", False),
        },
    ),
    93: ("WhileOptions", {"cond_subgraph_index": (0, "i", 0), "body_subgraph_index": (1, "i", 0)}),
}

#: ActivationFunctionType -> the IR's activation (None: no IR activation computes it).
ACTIVATION_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
ACTIVATIONS: Mapping[int, Activation | None] = {
    0: Activation("affine", 1.0, 0.0),  # NONE: the identity
    1: Activation("relu"),
    2: None,
    3: None,
    4: Activation("tanh"),
    5: None,
}

# -- inputs by position ------------------------------------------------------------------------
#: One LSTM direction's tensors: (offset from the direction's first weight, field, gate, name).
LSTM_SLOTS: tuple[tuple[int, str, str, str], ...] = (
    *((k, "w_ih", g, f"input_to_{GATE_WORDS[g]}_weights") for k, g in enumerate("ifgo")),
    *((4 + k, "w_hh", g, f"recurrent_to_{GATE_WORDS[g]}_weights") for k, g in enumerate("ifgo")),
    (8, "peephole", "i", "cell_to_input_weights"),
    (9, "peephole", "f", "cell_to_forget_weights"),
    (10, "peephole", "o", "cell_to_output_weights"),
    *((11 + k, "bias", g, f"{GATE_WORDS[g]}_gate_bias") for k, g in enumerate("ifgo")),
    (15, "w_hr", "", "projection_weights"),
    (16, "projection_bias", "", "projection_bias"),
)
#: The unidirectional LSTM (and the plain LSTM op): weights from input 1; states 18, 19;
#: layer-norm coefficients 20-23.
UNI_LSTM_FIRST = 1
LSTM_STATES = (18, 19)
LAYER_NORM = tuple((20 + k, f"{GATE_WORDS[g]}_layer_norm_coefficients") for k, g in enumerate("ifgo"))
#: The bidirectional LSTM: forward from 1, backward from 18; aux input 39 and its weights 40-47.
BI_LSTM_FIRST = (1, 18)
BI_LSTM_AUX = tuple(range(39, 48))
#: Simple RNNs: (weights, recurrent_weights, bias, hidden_state) per direction; aux 9-11.
RNN_SLOTS = (("w_ih", "weights"), ("w_hh", "recurrent_weights"), ("bias", "bias"))
UNI_RNN_FIRST = 1
BI_RNN_FIRST = (1, 5)
BI_RNN_AUX = (9, 10, 11)


def check(layer: Layer) -> None:
    """Nothing to refuse: lstmconv reads ``.tflite`` but writes none (the registry's
    ``write_hint`` says so before any layer is checked)."""


def layout(layer: Layer) -> list[Tensor]:
    """The operator inputs a TFLite LSTM or RNN op holds for ``layer``, one tensor per gate, named
    as TFLite's kernels name them (``fw_``/``bw_`` for the two directions of a bidirectional op)."""
    h, i, p = layer.hidden_size, layer.input_size, layer.state_size
    sides = ("fw_", "bw_") if layer.direction is Direction.BIDIRECTIONAL else ("",)
    tensors: list[Tensor] = []
    for side in sides:
        if layer.kind is Kind.RNN:
            tensors += [
                Tensor(f"{side}weights", (h, i), "h"),
                Tensor(f"{side}recurrent_weights", (h, h), "h"),
            ]
            if layer.has_bias:
                tensors.append(Tensor(f"{side}bias", (h,), "h"))
            continue
        gates = "fgo" if layer.input_forget else "ifgo"  # CIFG: no input gate tensors
        tensors += [Tensor(f"{side}input_to_{GATE_WORDS[g]}_weights", (h, i), g) for g in gates]
        tensors += [Tensor(f"{side}recurrent_to_{GATE_WORDS[g]}_weights", (h, p), g) for g in gates]
        if layer.has_peepholes:
            kept = "fo" if layer.input_forget else "ifo"
            tensors += [Tensor(f"{side}cell_to_{GATE_WORDS[g]}_weights", (h,), g) for g in kept]
        if layer.has_bias:
            tensors += [Tensor(f"{side}{GATE_WORDS[g]}_gate_bias", (h,), g) for g in gates]
        if layer.proj_size:
            tensors.append(Tensor(f"{side}projection_weights", (p, h), ""))
    return tensors
