"""ONNX: the face of the family (imports no onnx). W is (D, G·H, in), R is (D, G·H, H), B is
(D, 2·G·H) = [Wb; Rb], P is (D, 3H) in i·o·f order. ``files`` and ``nodes`` read ``.onnx``
and ``graph``, ``proto`` and ``stream`` write it without the onnx package; ``live`` imports it to
build live models, check (``onnx.checker``) and run."""

from .names import GATE_ORDER, check, layout

NAME = "onnx"

__all__ = ["GATE_ORDER", "NAME", "check", "layout"]
