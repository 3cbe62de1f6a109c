"""Keras: the face of the family (imports no Keras). Kernels are (in, G·H), gates ``i f c o``
(LSTM) and ``z r h`` (GRU); ``.keras``, ``.weights.h5`` and legacy ``.h5`` files are read by
``files`` without a framework (a ``.keras``'s weights by lstmconv's own ``h5read`` where it
reads them, else with h5py); ``live`` imports Keras to hold, build, run and write models."""

from .around import layout as plain_layout
from .names import GATE_ORDER, check, layout

NAME = "keras"

__all__ = ["GATE_ORDER", "NAME", "check", "layout", "plain_layout"]
