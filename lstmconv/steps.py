"""The reversible layout steps formats compose, each beside its inverse.

The bias policy lives here and nowhere else:

- ``split_bias`` ↔ ``merge_bias``: one bias (Keras LSTM and RNN, reset-before GRU) ↔ the IR's
  ``b_ih`` + ``b_hh``. Only the sum matters for those gates; splitting puts it all in ``b_ih``.
  Merging costs one float rounding.
- ``stack_bias_rows`` ↔ ``unstack_bias_rows``: Keras's reset-after GRU bias ``(2, 3H)`` =
  [input; recurrent].
- ``join_bias_halves`` ↔ ``split_bias_halves``: ONNX's ``B`` = [Wb; Rb] along its last axis.
- ``reset_after_from_bias``: a Keras GRU's variant told by its bias's shape.

Each works on one gate's vector or on a stack of gates alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import WeightLayoutError


def split_bias(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One bias as (``b_ih``, ``b_hh``): all of it input-side, zeros recurrent-side."""
    return bias, np.zeros_like(bias)


def merge_bias(b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """The one bias that computes what ``b_ih`` and ``b_hh`` do: their sum."""
    return b_ih + b_hh


def stack_bias_rows(b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """Keras's reset-after GRU bias: rows [input; recurrent]."""
    return np.stack([b_ih, b_hh])


def unstack_bias_rows(bias: np.ndarray, tensor: str = "bias") -> tuple[np.ndarray, np.ndarray]:
    if bias.ndim < 1 or bias.shape[0] != 2:
        raise WeightLayoutError(
            f"expected two rows [input; recurrent], found shape {bias.shape}", where=(tensor,)
        )
    return bias[0], bias[1]


def join_bias_halves(
    input_side: Sequence[np.ndarray], recurrent_side: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """ONNX's [Wb; Rb] as the blocks whose bytes in turn make it (each side's gates in order)."""
    return [*input_side, *recurrent_side]


def split_bias_halves(bias: np.ndarray, tensor: str = "B") -> tuple[np.ndarray, np.ndarray]:
    """[Wb; Rb] along the last axis as (Wb, Rb)."""
    width = bias.shape[-1] if bias.ndim else 1
    if bias.ndim == 0 or width % 2:
        raise WeightLayoutError(
            f"expected [Wb; Rb] of even length, found shape {bias.shape}", where=(tensor,)
        )
    return bias[..., : width // 2], bias[..., width // 2 :]


def reset_after_from_bias(bias: np.ndarray | None) -> bool | None:
    """A Keras GRU's variant from its bias: (2, 3H) is reset-after, (3H,) reset-before; None
    without a bias (then the shape cannot tell)."""
    return None if bias is None else bias.ndim == 2
