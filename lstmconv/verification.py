"""Numerical proof of a conversion: run both sides and the NumPy reference on the same inputs.

Each side runs in its own framework where it is installed: the live object itself when it can
run on (batch, time, features), a file lstmconv wrote as the file itself, anything else rebuilt
from its weights (``to_keras``, ``to_torch``, ``to_onnx``). Without the framework, the
reference stands in and the report says so.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import dtypes, reference
from .errors import UnsupportedFeatureError
from .ir import Model
from .registry import FORMATS, Format, is_path

Runner = Callable[[np.ndarray], np.ndarray]
#: (batch, time) of the random inputs: length 1 and uneven sizes on purpose.
SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (3, 5), (2, 13))


@dataclasses.dataclass(frozen=True)
class Comparison:
    left: str
    right: str
    max_error: float

    def ok(self, atol: float) -> bool:
        return bool(self.max_error <= atol)


@dataclasses.dataclass(frozen=True)
class Report:
    """What was compared with what, and the largest absolute difference of each pair."""

    source: str
    target: str
    atol: float
    comparisons: tuple[Comparison, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok(self.atol) for c in self.comparisons)

    @property
    def max_error(self) -> float:
        return max((c.max_error for c in self.comparisons), default=0.0)

    def table(self) -> str:
        width = max([len(c.left) for c in self.comparisons] + [4])
        rows = [f"{'run':<{width}}  {'against':<{width}}  max |error|  within {self.atol:g}"]
        for c in self.comparisons:
            rows.append(
                f"{c.left:<{width}}  {c.right:<{width}}  {c.max_error:11.3e}  "
                + ("yes" if c.ok(self.atol) else "NO")
            )
        rows.extend(f"note: {note}" for note in self.notes)
        return "\n".join(rows)

    def __str__(self) -> str:
        verdict = "agree" if self.ok else "DISAGREE"
        return f"{self.source} → {self.target}: outputs {verdict}\n{self.table()}"


def framework_available(name: str | None) -> bool:
    """Whether the framework (a format with a live module) can run models here."""
    if name is None:
        return False
    return FORMATS[name].available("runtime")


def runner(
    source: Any, model: Model, fmt: Format, *, whole: bool = True, own_file: bool = False
) -> tuple[str, Runner, str | None]:
    """(label, run function, note) for one side of a comparison."""
    framework = fmt.runs_in
    on_reference: Runner = lambda x: reference.run(model, x)  # noqa: E731 - the fallback, named once
    if framework is not None and framework_available(framework):
        module = FORMATS[framework].load_live(f"running {fmt.name}")  # e.g. safetensors runs in torch
        how = module.running_note(model)
        if whole and not is_path(source) and module.is_runnable(source):
            return f"{framework} (the object itself)", (lambda x: module.run(source, x)), how
        written = module.load_written(os.fspath(source)) if own_file and is_path(source) else None
        if written is not None:
            return f"{framework} (the written file)", (lambda x: module.run(written, x)), how
        try:
            built = module.runnable(model)  # onnx: a file past 2 GiB
        except UnsupportedFeatureError as error:
            note = f"{framework} cannot run this model ({error}): the NumPy reference stood in"
            return "reference", on_reference, note
        return f"{framework} (rebuilt from the weights)", (lambda x: module.run(built, x)), how
    if framework is None:
        return "reference", on_reference, None
    note = f"{framework} is not installed: the NumPy reference stood in for the {fmt.name} side"
    return "reference", on_reference, note


def inputs(model: Model, seed: int = 0, shapes: Sequence[tuple[int, int]] = SHAPES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = model.layers[0].dtype
    return [rng.uniform(-2.0, 2.0, (batch, steps, model.input_size)).astype(dtype) for batch, steps in shapes]


def max_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|; NaN where both are NaN counts as agreement, NaN on one side as infinite."""
    if a.shape != b.shape:
        return float("inf")
    a, b = a.astype(np.float64), b.astype(np.float64)
    both = np.isnan(a) & np.isnan(b)
    difference = np.where(both, 0.0, np.abs(a - b))
    return float(np.max(np.nan_to_num(difference, nan=np.inf), initial=0.0))


def compare(
    sides: Sequence[tuple[str, Runner]],
    reference_model: Model,
    atol: float,
    source: str,
    target: str,
    notes: Sequence[str] = (),
    seed: int = 0,
    *,
    models: Sequence[Model] = (),
) -> Report:
    """Run every side and the reference on the same inputs; compare each side with the
    reference and the sides with each other. Weights in float16 or bfloat16 (of the reference
    or of ``models``) widen ``atol`` to what that precision's arithmetic costs, with a note."""
    seen = [dtype for model in (reference_model, *models) for dtype in model.dtypes]
    widened = dtypes.tolerance(atol, *seen)
    if widened != atol:
        coarsest = max(seen, key=lambda dtype: dtypes.tolerance(0.0, dtype)).name
        notes = [
            *notes,
            f"{coarsest} weights: outputs compared within {widened:g}, {dtypes.REDUCED_PRECISION_UNITS} "
            f"units of {coarsest}'s precision (asked {atol:g})",
        ]
        atol = widened
    batches = inputs(reference_model, seed)
    expected = [reference.run(reference_model, x) for x in batches]
    outputs = {label: [run(x) for x in batches] for label, run in sides}
    comparisons = []
    labels = [label for label, _ in sides]
    for label in labels:
        if label.rpartition(": ")[2] != "reference":  # the reference against itself says nothing
            comparisons.append(Comparison(label, "reference", max(map(max_error, outputs[label], expected))))
    for first, second in zip(labels, labels[1:]):
        comparisons.append(Comparison(first, second, max(map(max_error, outputs[first], outputs[second]))))
    return Report(source, target, atol, tuple(comparisons), tuple(n for n in notes if n))
