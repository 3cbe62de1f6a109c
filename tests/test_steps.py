"""Each reversible layout step against its inverse, exactly, on arange-tagged arrays."""

from __future__ import annotations

import numpy as np
import pytest

from lstmconv import WeightLayoutError, steps


def _tagged(*shape: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + int(np.prod(shape)), dtype=np.float64).reshape(shape)


@pytest.mark.parametrize("shape", [(5,), (4, 5)])  # one gate's vector, or a stack of gates
def test_split_then_merge_gives_the_bias_back_exactly(shape: tuple[int, ...]) -> None:
    bias = _tagged(*shape)
    b_ih, b_hh = steps.split_bias(bias)
    assert np.array_equal(b_ih, bias) and not np.any(b_hh) and b_hh.shape == bias.shape
    assert np.array_equal(steps.merge_bias(b_ih, b_hh), bias)


def test_merge_then_split_keeps_the_sum_which_is_all_that_matters() -> None:
    b_ih, b_hh = _tagged(12), _tagged(12, start=100)
    merged = steps.merge_bias(b_ih, b_hh)
    assert np.array_equal(merged, np.arange(100, 124, 2, dtype=np.float64))
    again = steps.split_bias(merged)
    assert np.array_equal(steps.merge_bias(*again), b_ih + b_hh)


def test_bias_rows_stack_and_unstack_exactly() -> None:
    b_ih, b_hh = _tagged(9), _tagged(9, start=9)
    stacked = steps.stack_bias_rows(b_ih, b_hh)
    assert stacked.shape == (2, 9) and np.array_equal(stacked.ravel(), np.arange(18))
    first, second = steps.unstack_bias_rows(stacked)
    assert np.array_equal(first, b_ih) and np.array_equal(second, b_hh)
    assert np.array_equal(steps.stack_bias_rows(*steps.unstack_bias_rows(stacked)), stacked)


def test_onnx_bias_halves_join_and_split_exactly() -> None:
    gates = 4
    input_side = [_tagged(3, start=3 * g) for g in range(gates)]
    recurrent_side = [_tagged(3, start=100 + 3 * g) for g in range(gates)]
    joined = np.concatenate(steps.join_bias_halves(input_side, recurrent_side))
    wb, rb = steps.split_bias_halves(joined)
    assert np.array_equal(wb, np.arange(12)) and np.array_equal(rb, np.arange(100, 112))
    two_directions = np.stack([joined, joined + 1000])  # (D, 2·G·H): split along the last axis
    wb2, rb2 = steps.split_bias_halves(two_directions)
    assert np.array_equal(np.concatenate([wb2, rb2], axis=-1), two_directions)


def test_reset_after_is_told_by_the_bias_shape() -> None:
    assert steps.reset_after_from_bias(np.zeros((2, 9))) is True
    assert steps.reset_after_from_bias(np.zeros(9)) is False
    assert steps.reset_after_from_bias(None) is None


def test_steps_refuse_shapes_they_cannot_undo() -> None:
    with pytest.raises(WeightLayoutError, match="two rows"):
        steps.unstack_bias_rows(np.zeros((3, 9)))
    with pytest.raises(WeightLayoutError, match="even length"):
        steps.split_bias_halves(np.zeros(7))
