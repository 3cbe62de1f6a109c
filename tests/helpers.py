"""Random IR layers with weights that differ per gate (never constants: a gate swap must show)."""

from __future__ import annotations

import numpy as np

from lstmconv.ir import GATES, PEEPHOLE_GATES, Activation, Cell, Direction, Kind, Layer


def random_cell(
    rng: np.random.Generator,
    kind: Kind,
    inputs: int,
    hidden: int,
    *,
    bias: bool = True,
    proj: int = 0,
    peephole: bool = False,
    dtype: str = "float32",
) -> Cell:
    gates = GATES[kind]
    width = proj or hidden

    def per_gate(*shape: int) -> dict[str, np.ndarray]:
        return {g: rng.uniform(-0.6, 0.6, shape).astype(dtype) for g in gates}

    return Cell(
        w_ih=per_gate(hidden, inputs),
        w_hh=per_gate(hidden, width),
        b_ih=per_gate(hidden) if bias else None,
        b_hh=per_gate(hidden) if bias else None,
        w_hr=rng.uniform(-0.6, 0.6, (proj, hidden)).astype(dtype) if proj else None,
        peephole={g: rng.uniform(-0.6, 0.6, hidden).astype(dtype) for g in PEEPHOLE_GATES}
        if peephole
        else None,
    )


def random_layer(
    rng: np.random.Generator,
    kind: Kind = Kind.LSTM,
    inputs: int = 4,
    hidden: int = 5,
    *,
    direction: Direction = Direction.FORWARD,
    name: str = "layer",
    activations: tuple[Activation, ...] = (),
    **cell_options: object,
) -> Layer:
    count = 2 if direction is Direction.BIDIRECTIONAL else 1
    cells = tuple(random_cell(rng, kind, inputs, hidden, **cell_options) for _ in range(count))  # type: ignore[arg-type]
    return Layer(kind, cells, name=name, direction=direction, activations=activations)
