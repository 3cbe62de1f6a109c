"""Property-based round trips (hypothesis) and mutation fuzzing of every fixture."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import require
from fuzzing import run as fuzz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from natives import EVERYTHING, FILES, writable

import lstmconv
import lstmconv.registry
from lstmconv import Activation, Cell, Direction, Kind, Layer, Model
from lstmconv.ir import GATES, PEEPHOLE_GATES

#: Mutations per fixture; scripts/fuzz runs many more.
FUZZ_COUNT = int(os.environ.get("LSTMCONV_FUZZ_COUNT", "300"))


@st.composite
def layers(draw, inputs: int, name: str, holds: dict[str, bool]) -> Layer:
    kind = draw(st.sampled_from(list(Kind)))
    hidden = draw(st.integers(1, 6))
    directions = [Direction.FORWARD, Direction.BIDIRECTIONAL] + (
        [Direction.REVERSE] if holds["reverse"] else []
    )
    direction = draw(st.sampled_from(directions))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    bias = draw(st.booleans())
    proj = draw(st.integers(0, hidden - 1)) if holds["proj"] and kind is Kind.LSTM and hidden > 1 else 0
    onnx_only = holds["onnx_only"] and kind is Kind.LSTM
    peephole = onnx_only and draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    width = proj or hidden

    def gates(*shape: int) -> dict[str, np.ndarray]:
        return {g: rng.uniform(-1, 1, shape).astype(dtype) for g in GATES[kind]}

    cells = tuple(
        Cell(
            gates(hidden, inputs),
            gates(hidden, width),
            gates(hidden) if bias else None,
            gates(hidden) if bias else None,
            rng.uniform(-1, 1, (proj, hidden)).astype(dtype) if proj else None,
            {g: rng.uniform(-1, 1, hidden).astype(dtype) for g in PEEPHOLE_GATES} if peephole else None,
        )
        for _ in range(2 if direction is Direction.BIDIRECTIONAL else 1)
    )
    activations = (Activation(draw(st.sampled_from(["tanh", "relu"]))),) if kind is Kind.RNN else ()
    return Layer(
        kind,
        cells,
        name=name,
        direction=direction,
        merge=draw(st.sampled_from(["concat", "sum", "mul", "ave"] if holds["merges"] else ["concat"])),
        activations=activations,
        clip=draw(st.sampled_from([None, 0.5, 3.0])) if onnx_only else None,
        input_forget=onnx_only and draw(st.booleans()),
        reset_after=draw(st.booleans()) if kind is Kind.GRU and holds["reset_before"] else True,
        reversed_output=direction is Direction.REVERSE
        and (not holds["aligned_reverse"] or draw(st.booleans())),
    )


@st.composite
def models(draw, holds: dict[str, bool] = EVERYTHING) -> Model:
    first = draw(layers(draw(st.integers(1, 5)), "first", holds))
    if draw(st.booleans()):
        return Model((first, draw(layers(first.output_size, "second", holds))))
    return Model((first,))


def _same(a: Model, b: Model) -> None:
    assert [(y.kind, y.direction, y.hidden_size, y.proj_size, y.reset_after) for y in a] == [
        (y.kind, y.direction, y.hidden_size, y.proj_size, y.reset_after) for y in b
    ]
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, a.input_size))
    np.testing.assert_allclose(lstmconv.reference.run(b, x), lstmconv.reference.run(a, x), rtol=0, atol=1e-5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=models())
def test_npz_round_trip_is_exact(model: Model, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("npz") / "m.npz"
    again = lstmconv.read(lstmconv.write(model, path))
    assert all(_equal_layers(x, y) for x, y in zip(model.layers, again.layers, strict=True))


def _equal_layers(a: Layer, b: Layer) -> bool:
    fields = (
        "kind",
        "name",
        "direction",
        "merge",
        "activations",
        "clip",
        "input_forget",
        "reset_after",
        "reversed_output",
    )
    if any(getattr(a, f) != getattr(b, f) for f in fields):
        return False
    return all(
        name_a == name_b and np.array_equal(x, y)
        for cell_a, cell_b in zip(a.cells, b.cells, strict=True)
        for (name_a, x), (name_b, y) in zip(cell_a.tensors(), cell_b.tensors(), strict=True)
    )


@pytest.mark.parametrize("name", writable())
def test_round_trip_through_every_format(name: str, tmp_path_factory) -> None:
    for module in lstmconv.registry.by_name(name).writer_needs:
        require(module)
    entry = FILES[name]
    assert entry.holds is not None and entry.ending is not None

    @settings(max_examples=entry.examples, deadline=None)
    @given(model=models(entry.holds))
    def check(model: Model) -> None:
        path = tmp_path_factory.mktemp("rt") / f"m{entry.ending}"
        lstmconv.write(model, path)
        _same(model, lstmconv.read(path))

    check()


def test_mutated_fixtures_raise_only_lstmconv_errors() -> None:
    include_torch = True
    try:
        require("torch")
    except pytest.skip.Exception:
        include_torch = False
    escaped = list(
        fuzz(FUZZ_COUNT, seed=int(os.environ.get("LSTMCONV_FUZZ_SEED", "0")), include_torch=include_torch)
    )
    assert not escaped, "\n".join(
        f"{where}: {type(error).__name__}: {error}" for where, error in escaped[:20]
    )
