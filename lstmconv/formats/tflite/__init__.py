"""TFLite: the face of the family (imports no TensorFlow). Each gate is its own operator input
(``input_to_forget_weights`` (H, I), ``recurrent_to_forget_weights`` (H, P), ``forget_gate_bias``
(H,), peepholes ``cell_to_*_weights`` (H,), ``projection_weights`` (P, H)), in the order input,
forget, cell, output; ``files`` reads ``.tflite`` flatbuffers without TensorFlow or the
flatbuffers package (``flat``). Read-only."""

from .names import GATE_ORDER, check, layout

NAME = "tflite"

__all__ = ["GATE_ORDER", "NAME", "check", "layout"]
