"""Gate packing by declared order, exactly, and proof that gate order matters."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_layer

from lstmconv import WeightLayoutError, reference
from lstmconv import gates as gatelib
from lstmconv.formats.keras import names as keras_names
from lstmconv.formats.torch import statedict
from lstmconv.ir import GATES, Kind, Model

ONNX_ORDER = {Kind.LSTM: ("i", "o", "f", "g"), Kind.GRU: ("z", "r", "n"), Kind.RNN: ("h",)}


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize(
    "order", [statedict.GATE_ORDER, keras_names.GATE_ORDER, ONNX_ORDER], ids=["torch", "keras", "onnx"]
)
def test_unpack_then_pack_is_exact(kind: Kind, order) -> None:
    stacked = np.arange(len(GATES[kind]) * 3 * 2).reshape(-1, 2)
    per_gate = gatelib.unpack(stacked, order[kind])
    for position, gate in enumerate(order[kind]):
        assert np.array_equal(per_gate[gate], stacked[position * 3 : (position + 1) * 3])
    assert np.array_equal(gatelib.pack(per_gate, order[kind]), stacked)


def test_reorder_torch_to_onnx_moves_blocks_exactly() -> None:
    hidden = 2
    torch_rows = np.arange(4 * hidden)  # blocks i=0,1 f=2,3 g=4,5 o=6,7
    onnx_rows = gatelib.reorder(torch_rows, ("i", "f", "g", "o"), ("i", "o", "f", "g"))
    assert np.array_equal(onnx_rows, [0, 1, 6, 7, 2, 3, 4, 5])
    assert np.array_equal(gatelib.reorder(onnx_rows, ("i", "o", "f", "g"), ("i", "f", "g", "o")), torch_rows)


def test_reorder_keras_gru_to_torch() -> None:
    keras_columns = np.arange(6).reshape(1, 6)  # z=0,1 r=2,3 h=4,5 on axis 1
    torch_order = gatelib.reorder(keras_columns, ("z", "r", "n"), ("r", "z", "n"), axis=1)
    assert np.array_equal(torch_order, [[2, 3, 0, 1, 4, 5]])


def test_unpack_returns_views() -> None:
    stacked = np.arange(8.0).reshape(4, 2)
    assert all(np.shares_memory(block, stacked) for block in gatelib.unpack(stacked, "ifgo").values())


def test_gate_count_that_does_not_divide_is_refused() -> None:
    with pytest.raises(WeightLayoutError, match="does not divide into 4 gates"):
        gatelib.unpack(np.zeros((10, 3)), ("i", "f", "g", "o"), tensor="weight_ih_l0")


@pytest.mark.parametrize(
    ("kind", "swap"), [(Kind.LSTM, ("i", "f")), (Kind.LSTM, ("f", "o")), (Kind.GRU, ("r", "z"))]
)
def test_swapping_two_gates_changes_the_output(kind: Kind, swap: tuple[str, str]) -> None:
    rng = np.random.default_rng(3)
    layer = random_layer(rng, kind)
    a, b = swap

    def swapped(values):
        out = dict(values)
        out[a], out[b] = values[b], values[a]
        return out

    cell = layer.cells[0]
    wrong = layer.replace(
        cells=(type(cell)(swapped(cell.w_ih), swapped(cell.w_hh), swapped(cell.b_ih), swapped(cell.b_hh)),)
    )
    x = rng.uniform(-1, 1, (2, 5, layer.input_size))
    difference = np.abs(reference.run(Model((layer,)), x) - reference.run(Model((wrong,)), x)).max()
    assert difference > 1e-2


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (64, 7), (130, 70)])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_pack_transposed_is_pack_then_transpose_in_c_order(shape: tuple[int, int], dtype: str) -> None:
    from lstmconv import dtypes

    order = ("i", "f", "g", "o")
    size = shape[0] * shape[1]
    per_gate = {
        gate: (np.arange(size).reshape(shape) + 10_000 * k).astype(np.float32).astype(dtypes.resolve(dtype))
        for k, gate in enumerate(order)
    }
    packed = gatelib.pack_transposed(per_gate, ("o", "g", "i", "f"), rows=64)
    assert packed.flags.c_contiguous and packed.dtype == dtypes.resolve(dtype)
    assert np.array_equal(packed, gatelib.pack(per_gate, ("o", "g", "i", "f")).T)
    with pytest.raises(WeightLayoutError, match="missing"):
        gatelib.pack_transposed(per_gate, ("i", "x"))
