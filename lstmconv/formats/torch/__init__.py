"""PyTorch: the face of the family for both ``torch`` (``.pt`` files and live modules) and
``safetensors``, which share ``nn.LSTM/GRU/RNN``'s state_dict naming (:mod:`.statedict`).
Imports no torch: ``live`` does; ``pt_header`` reads a ``.pt``'s names and shapes without it."""

from .statedict import GATE_ORDER, check, layout

NAME = "torch"

__all__ = ["GATE_ORDER", "NAME", "check", "layout"]
