"""Numerical proof of a conversion: each recurrent layer of the source, run as the user has it,
against the same layer of the written file, run in its own framework, on the same inputs.

Each side runs with as little of lstmconv's reading in between as can be:

- ``object``: a live model, layer by layer, as it is;
- ``original file``: the file loaded by its own framework (Keras ``load_model`` with
  ``safe_mode``; the ONNX node cut from its graph with the ops around it, in onnxruntime; an
  ``nn.LSTM/GRU/RNN`` filled with the file's own tensors under their own keys);
- ``written file``: the file lstmconv wrote, the same way;
- ``reference``: lstmconv's NumPy forward pass of what was read, where no framework runs that
  side (an ``.npz`` is the IR itself, so for it this *is* the file as given), with the reason;
- ``rebuilt``: never used for a file that its framework can open: only when nothing else can
  run it, and then the report says why.

Where neither side can run, the check is what it is: "round trip only", the written file's
tensors compared with the source's. Every difference is judged by ``|a - b| <= atol + rtol·|b|``
(``b`` the source), with defaults by dtype.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import dtypes, reference
from .errors import LstmconvError, VerificationError, printable
from .ir import Kind, Layer, Model
from .plain import PlainLayer
from .registry import FORMATS, Format, installed, is_path

Runner = Callable[[np.ndarray], np.ndarray]
#: (batch, time) of the random inputs: length 1, and a batch of uneven sizes long enough for
#: the recurrence to build up. Two runs per layer and side (each step of a large layer reads
#: all its weights), the larger first: a batch and a length that no other size has tell the
#: axes of an ONNX cut's output apart without a probe run.
SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (5, 7))
#: Default (rtol, atol) by the coarsest weight dtype, as ``torch.testing.assert_close`` has them,
#: with atol widened for float16 and bfloat16 to what running in them costs.
TOLERANCES: Mapping[str, tuple[float, float]] = {
    "float64": (1.3e-6, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, dtypes.tolerance(1e-5, np.dtype("float16"))),
    "bfloat16": (1.6e-2, 4 * 2.0**-7),
}
#: How many times the float32 rounding the reference shows a float32 side may be off by (each
#: side rounds its own way, and a framework sums in another order than NumPy).
ROUNDING_FACTOR = 4.0
HOWS = ("object", "original file", "written file", "rebuilt", "reference")
#: The row of the whole model, run end to end on both sides.
WHOLE = "(whole model)"


@dataclasses.dataclass(frozen=True)
class Side:
    """How one side of the check ran: the framework and what of the user's it ran."""

    role: str
    framework: str
    how: str
    why: str = ""

    def text(self) -> str:
        told = self.how if self.framework == "reference" else f"{self.framework}, {self.how}"
        return f"{self.role}: {told}" + (f" ({self.why})" if self.why else "")

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Check:
    """One layer (or the whole model) of both sides, on the same inputs."""

    layer: str
    target_layer: str
    max_abs: float
    max_rel: float
    ok: bool
    #: "run": both sides' outputs; "tensors": the round trip's tensors only.
    compared: str = "run"

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "target_layer": self.target_layer,
            "compared": self.compared,
            "max_abs": _json_float(self.max_abs),
            "max_rel": _json_float(self.max_rel),
            "ok": self.ok,
        }


@dataclasses.dataclass(frozen=True)
class Report:
    """Per layer: how each side ran, and the largest absolute and relative difference."""

    source: str
    target: str
    sides: tuple[Side, Side]
    checks: tuple[Check, ...]
    rtol: float
    atol: float
    notes: tuple[str, ...] = ()
    #: What the source holds that the conversion does not carry (layers and tensors), and the
    #: parameters carried of the total.
    skipped: tuple[dict[str, Any], ...] = ()
    parameters: dict[str, int] | None = None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def max_error(self) -> float:
        return max((check.max_abs for check in self.checks), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((check.max_rel for check in self.checks), default=0.0)

    @property
    def whole(self) -> Check | None:
        """The whole model's check, where both sides ran end to end."""
        return next((check for check in self.checks if check.layer == WHOLE), None)

    @property
    def round_trip_only(self) -> bool:
        return bool(self.checks) and all(check.compared == "tensors" for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "ok": self.ok,
            "round_trip_only": self.round_trip_only,
            "rtol": self.rtol,
            "atol": self.atol,
            "max_abs": _json_float(self.max_error),
            "max_rel": _json_float(self.max_rel),
            "sides": [side.to_dict() for side in self.sides],
            "layers": [check.to_dict() for check in self.checks if check.layer != WHOLE],
            "whole_model": self.whole.to_dict() if self.whole is not None else None,
            "notes": list(self.notes),
            "skipped": list(self.skipped),
            "parameters": self.parameters,
        }

    def table(self) -> str:
        """The report as text; every name from a file escaped (:func:`~lstmconv.errors.printable`)."""
        rows = [printable(side.text()) for side in self.sides]
        if self.round_trip_only:
            rows.append("round trip only: the written file read back equals the source's tensors")
        width = max([len(printable(_row_name(c))) for c in self.checks] + [5])
        rows.append(
            f"{'layer':<{width}}  {'compared':<8}  {'max |a-b|':>10}  {'max rel':>10}  "
            f"within {self.atol:g} + {self.rtol:g}·|b|"
        )
        for c in self.checks:
            rows.append(
                f"{printable(_row_name(c)):<{width}}  {c.compared:<8}  {c.max_abs:10.3e}  {c.max_rel:10.3e}  "
                + ("yes" if c.ok else "NO")
            )
        rows.extend(f"note: {printable(note)}" for note in self.notes)
        if self.skipped and self.parameters:
            shown = ", ".join(
                f"{entry['name']} ({entry['kind']}, {entry['parameters']:,})" for entry in self.skipped
            )
            rows.append(f"not carried: {printable(shown)}")
            rows.append(f"carried {self.parameters['carried']:,} of {self.parameters['total']:,} parameters")
        return "\n".join(rows)

    def __str__(self) -> str:
        verdict = "agree" if self.ok else "DISAGREE"
        if self.round_trip_only and self.ok:
            verdict = "tensors agree (round trip only)"
        return f"{self.source} → {self.target}: outputs {verdict}\n{self.table()}"


def _row_name(check: Check) -> str:
    return check.layer if check.layer == check.target_layer else f"{check.layer} → {check.target_layer}"


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def tolerances(
    model_dtypes: Sequence[np.dtype], rtol: float | None, atol: float | None
) -> tuple[float, float]:
    """(rtol, atol): the ones given, else the defaults of the coarsest dtype."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise LstmconvError(f"{name} must be a number ≥ 0, found {value}")
    names = [np.dtype(d).name for d in model_dtypes] or ["float32"]
    coarsest = max(names, key=lambda name: list(TOLERANCES).index(name) if name in TOLERANCES else 0)
    default_rtol, default_atol = TOLERANCES.get(coarsest, TOLERANCES["float32"])
    return (default_rtol if rtol is None else rtol), (default_atol if atol is None else atol)


def differences(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> tuple[float, float, bool]:
    """(max |a - b|, max |a - b| / |b|, every element within atol + rtol·|b|). NaN on both sides
    agrees; NaN or a shape on one side only does not. The relative error is taken where |b| is
    above atol (near zero only the absolute one means anything)."""
    if a.shape != b.shape:
        return math.inf, math.inf, False
    a, b = a.astype(np.float64), b.astype(np.float64)
    both = np.isnan(a) & np.isnan(b)
    gap = np.where(both, 0.0, np.abs(a - b))
    gap = np.nan_to_num(gap, nan=np.inf)
    bound = atol + rtol * np.abs(np.nan_to_num(b))
    ok = bool(np.all(gap <= bound))
    scale = np.abs(b)
    relative = np.where(scale > atol, gap / np.where(scale > atol, scale, 1.0), 0.0)
    return float(np.max(gap, initial=0.0)), float(np.max(relative, initial=0.0)), ok


def max_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|; NaN where both are NaN counts as agreement, NaN on one side as infinite."""
    return differences(a, b, 0.0, 0.0)[0]


def inputs(
    layer: Layer | Model, seed: int = 0, shapes: Sequence[tuple[int, int]] = SHAPES
) -> list[np.ndarray]:
    """Random inputs in (-1, 1): the range of a tanh or sigmoid that a layer is fed in a model."""
    rng = np.random.default_rng(seed)
    first = layer.layers[0] if isinstance(layer, Model) else layer
    dtype = np.float64 if first.dtype.name == "bfloat16" else first.dtype
    return [rng.uniform(-1.0, 1.0, (batch, steps, first.input_size)).astype(dtype) for batch, steps in shapes]


# -- the sides -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Runners:
    """One side: how it ran, and a run function per layer name (absent: the reference runs it)."""

    side: Side
    layers: dict[str, Runner]
    #: The side is the IR itself (an .npz, an IR model): the reference runs it as given.
    is_ir: bool = False
    #: The whole model as given, run at once, where it is a model of these layers alone.
    whole: Runner | None = None


def framework_available(name: str | None) -> bool:
    """Whether the framework (a format with a live module) can run models here."""
    if name is None:
        return False
    return FORMATS[name].available("runtime")


def _missing_runtime(framework: str) -> str:
    fmt = FORMATS[framework]
    names = [name for name in (*fmt.live_needs, *fmt.runtime) if not installed(name)]
    return f"{', '.join(names)} is not installed (pip install 'lstmconv[{fmt.runtime_extra}]')"


def side_runners(role: str, source: Any, model: Model, fmt: Format, *, written: bool = False) -> Runners:
    """Run functions for each layer of ``source`` (a path or a live object) as it is given."""
    if isinstance(source, Model) or fmt.runs_in is None:
        if isinstance(source, Model) or fmt.name == "npz":
            what = "an IR model" if isinstance(source, Model) else "an .npz holds the IR"
            return Runners(
                Side(role, "reference", "reference", f"{what}: the NumPy reference runs it"), {}, True
            )
        return Runners(Side(role, "reference", "reference", f"no framework runs {fmt.name} files"), {})
    framework = fmt.runs_in
    if not framework_available(framework):
        return Runners(Side(role, "reference", "reference", _missing_runtime(framework)), {})
    module = FORMATS[framework].load_live(f"running {fmt.name}")
    how = "written file" if written else ("original file" if is_path(source) else "object")
    if written:
        module.check_written(source)  # the framework's own validator (onnx.checker): raises
    try:
        ran_by, found, whole = module.layer_runners(source, model)
        runners = dict(found)
    except LstmconvError as error:
        return Runners(
            Side(role, "reference", "reference", f"{framework} cannot run it as given: {error}"), {}
        )
    except Exception as error:  # a framework's own loader refusing the file (custom classes, Lambda)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return Runners(
            Side(
                role,
                "reference",
                "reference",
                f"{framework} cannot load it: {type(error).__name__}: {reason}",
            ),
            {},
        )
    missing = [layer.name for layer in model if layer.name not in runners]
    why = f"layers not found by {framework}: {', '.join(missing)}" if missing else ""
    note = module.running_note(model)
    return Runners(Side(role, ran_by, how, "; ".join(n for n in (why, note) if n)), runners, whole=whole)


# -- the check -------------------------------------------------------------------------------------
def check(
    source_label: str,
    target_label: str,
    source: Runners,
    target: Runners,
    source_model: Model,
    target_model: Model,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    notes: Sequence[str] = (),
    seed: int = 0,
) -> Report:
    """Each layer of ``source_model`` against the layer in the same position of ``target_model``."""
    if len(source_model.layers) != len(target_model.layers):
        raise VerificationError(
            f"the source has {len(source_model.layers)} recurrent layers and the target "
            f"{len(target_model.layers)}",
            where=(target_label,),
        )
    seen = [*source_model.dtypes, *target_model.dtypes]
    rounding = rtol is None and atol is None
    rtol, atol = tolerances(seen, rtol, atol)
    checks = []
    found_notes: list[str] = []
    for index, (mine, theirs) in enumerate(zip(source_model.layers, target_model.layers)):
        run_source = source.layers.get(mine.name)
        run_target = target.layers.get(theirs.name)
        if run_source is None and run_target is None and not _is_ir_side(source, target):
            checks.append(_tensor_check(mine, theirs, rtol, atol))
            continue
        run_source = run_source or _reference(mine)
        run_target = run_target or _reference(theirs)
        checks.append(
            _run_check(
                mine, theirs, run_source, run_target, rtol, atol, seed + index, found_notes, rounding=rounding
            )
        )
    if source.whole is not None and target.whole is not None:  # both whole models of these layers
        checks.append(
            _run_check(
                source_model.recurrent_only(),
                target_model.recurrent_only(),
                source.whole,
                target.whole,
                rtol,
                atol,
                seed,
                found_notes,
                rounding=rounding,
            )
        )
    return Report(
        source_label,
        target_label,
        (source.side, target.side),
        tuple(checks),
        rtol,
        atol,
        (*notes, *found_notes),
    )


def _reference(layer: Layer) -> Runner:
    return lambda x: reference.run(layer, x)


def _is_ir_side(source: Runners, target: Runners) -> bool:
    """Whether a side is the IR itself (an .npz or an IR model): then the reference runs that
    side as given, and a run against the other side is a real check."""
    return any(side.is_ir for side in (source, target)) and any(side.layers for side in (source, target))


def _run_check(
    mine: Layer | Model,
    theirs: Layer | Model,
    run_source: Runner,
    run_target: Runner,
    rtol: float,
    atol: float,
    seed: int,
    notes: list[str] | None = None,
    *,
    rounding: bool = False,
) -> Check:
    """One layer (or the whole model of recurrent layers) on both sides. ``rounding`` (the
    default tolerances): where a float32 side is off by more than they allow, the float32
    rounding this layer amplifies on the same input (the reference run in float32 against
    float64, times :data:`ROUNDING_FACTOR`) is allowed on top, and a note says so with its size;
    a misread layer is off by far more than its rounding."""
    name = WHOLE if isinstance(mine, Model) else mine.name
    if isinstance(mine, Layer) and isinstance(theirs, Layer):
        run_source = _or_reference(run_source, mine, "source", notes)
        run_target = _or_reference(run_target, theirs, "target", notes)
    float32 = np.dtype("float32") in (*_dtypes(mine), *_dtypes(theirs))
    widened: list[float] = []
    allowance = (lambda x: ROUNDING_FACTOR * float32_rounding(mine, x)) if rounding and float32 else None
    found = _worst(inputs(mine, seed), run_source, run_target, rtol, atol, allowance, widened)
    if widened and found[2] and notes is not None:
        what = "the whole model" if isinstance(mine, Model) else f'layer "{name}"'
        notes.append(
            f"{what}: off by {found[0]:.3g}, within {atol:g} + {rtol:g}·|b| once the float32 "
            f"rounding it amplifies on the same input is allowed ({max(widened):.3g}: the reference "
            f"run in float32 against float64, ×{ROUNDING_FACTOR:g})"
        )
    return Check(name, WHOLE if isinstance(theirs, Model) else theirs.name, *found)


def _dtypes(layer: Layer | Model) -> list[np.dtype]:
    return list(layer.dtypes) if isinstance(layer, Model) else [layer.dtype]


def float32_rounding(layer: Layer | Model, x: np.ndarray) -> float:
    """The largest |float32 − float64| of the reference running ``layer`` on ``x``: how much
    rounding to float32 this layer amplifies on this input (large weights, long sequences)."""
    exact = reference.run(layer, x)
    rounded = reference.run(layer.astype(np.dtype("float32")), np.asarray(x, np.float32), dtype=np.float32)
    gap = np.abs(rounded.astype(np.float64) - exact)
    return float(np.max(np.nan_to_num(gap, nan=0.0, posinf=0.0), initial=0.0))


def _worst(
    batches: Sequence[np.ndarray],
    run_source: Runner,
    run_target: Runner,
    rtol: float,
    atol: float,
    allowance: Callable[[np.ndarray], float] | None = None,
    widened: list[float] | None = None,
) -> tuple[float, float, bool]:
    """The largest absolute and relative difference over ``batches``, and whether all agree;
    with ``allowance``, a batch that does not is judged again with it added to ``atol`` (each
    allowance used goes into ``widened``)."""
    worst_abs, worst_rel, ok = 0.0, 0.0, True
    for x in sorted(batches, key=lambda x: -x.size):  # the largest first: see :data:`SHAPES`
        a, b = np.asarray(run_target(x)), np.asarray(run_source(x))
        gap, rel, within = differences(a, b, rtol, atol)
        if not within and allowance is not None:
            extra = float(allowance(x))
            within = differences(a, b, rtol, atol + extra)[2]
            if widened is not None and within:
                widened.append(extra)
        worst_abs, worst_rel, ok = max(worst_abs, gap), max(worst_rel, rel), ok and within
    return worst_abs, worst_rel, ok


def _or_reference(run: Runner, layer: Layer, role: str, notes: list[str] | None) -> Runner:
    """``run``, or where its framework fails to run the layer at all (a CuDNN layer without a
    GPU: its first run raises), the NumPy reference from then on, with a note saying so."""
    chosen: list[Runner] = []

    def run_or_reference(x: np.ndarray) -> np.ndarray:
        if chosen:
            return chosen[0](x)
        try:
            out = run(x)
        except LstmconvError:
            raise
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if notes is not None:
                notes.append(
                    f'{role} layer "{layer.name}" could not run as given ({reason[:160]}): '
                    "the NumPy reference stood in"
                )
            chosen.append(_reference(layer))
            return chosen[0](x)
        chosen.append(run)
        return out

    return run_or_reference


def whole_inputs(model: Model, seed: int = 0) -> list[np.ndarray]:
    """Random inputs for the whole ``model``: integer ids in [0, vocabulary) (batch, time) when it
    starts with an Embedding, else floats in (-1, 1) (batch, time, features) of its first layer's
    width; long enough for every Conv1D's reach."""
    from .plain import NO_OPS, PlainKind, PlainLayer

    computing = [x for x in model.everything() if not (isinstance(x, PlainLayer) and x.kind in NO_OPS)]
    first = computing[0] if computing else model.layers[0]
    reach = sum(
        int(x.options["dilation"]) * (int(x.tensors["weight"].shape[2]) - 1)
        for x in model.around
        if x.kind is PlainKind.CONV1D
    )
    rng = np.random.default_rng(seed)
    shapes = [(batch, steps + reach) for batch, steps in SHAPES]
    if isinstance(first, PlainLayer) and first.kind is PlainKind.EMBEDDING:
        vocabulary = int(first.tensors["weight"].shape[0])
        return [rng.integers(0, vocabulary, shape).astype(np.int64) for shape in shapes]
    width = first.input_size or model.layers[0].input_size
    dtype = np.dtype(np.float64) if model.layers[0].dtype.name == "bfloat16" else model.layers[0].dtype
    return [rng.uniform(-1.0, 1.0, (*shape, width)).astype(dtype) for shape in shapes]


def _plain_check(mine: PlainLayer, theirs: PlainLayer, rtol: float, atol: float) -> Check:
    """A plain layer's tensors as the target holds them against the source's (a norm's scale or
    bias the source leaves out compared as the ones or zeros it stands for)."""
    from .porting import adapted

    wanted = adapted(mine, theirs)
    worst_abs, worst_rel, ok = 0.0, 0.0, True
    for name, array in theirs.items():
        gap, rel, within = differences(np.asarray(array), np.asarray(wanted.tensors[name]), rtol, atol)
        worst_abs, worst_rel, ok = max(worst_abs, gap), max(worst_rel, rel), ok and within
    return Check(mine.name, theirs.name, worst_abs, worst_rel, ok, "tensors")


def check_pairs(
    source_label: str,
    target_label: str,
    sides: tuple[Runners, Runners],
    pairs: Sequence[tuple[Layer, Layer]],
    source_model: Model,
    *,
    plain: Sequence[tuple[PlainLayer, PlainLayer]] = (),
    whole: tuple[Runner, Runner] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    notes: Sequence[str] = (),
    seed: int = 0,
) -> Report:
    """Each recurrent (source, target) layer pair run on both sides as given (the reference
    standing in where a side cannot run a layer), and, with ``whole``, both whole models on the
    same inputs (:func:`whole_inputs`)."""
    source, target = sides
    rounding = rtol is None and atol is None
    rtol, atol = tolerances([*source_model.dtypes, *(theirs.dtype for _, theirs in pairs)], rtol, atol)
    checks, found_notes = [], list(notes)
    for index, (mine, theirs) in enumerate(pairs):
        run_source = source.layers.get(mine.name) or _reference(mine)
        run_target = target.layers.get(theirs.name) or _reference(theirs)
        checks.append(
            _run_check(
                mine, theirs, run_source, run_target, rtol, atol, seed + index, found_notes, rounding=rounding
            )
        )
    checks += [_plain_check(mine, theirs, rtol, atol) for mine, theirs in plain]
    if whole is not None:
        batches = whole_inputs(source_model, seed)
        try:
            checks.append(Check(WHOLE, WHOLE, *_worst(batches, whole[0], whole[1], rtol, atol)))
        except LstmconvError:
            raise
        except Exception as error:  # the user's forward refusing the input
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            found_notes.append(f"the whole models could not run on the same input: {reason[:200]}")
            checks.append(Check(WHOLE, WHOLE, math.inf, math.inf, False))
    return Report(
        source_label, target_label, (source.side, target.side), tuple(checks), rtol, atol, tuple(found_notes)
    )


def _tensor_check(mine: Layer, theirs: Layer, rtol: float, atol: float) -> Check:
    """The round trip: every tensor of ``theirs`` against ``mine`` (biases as the sum a format
    that keeps one bias holds, except a reset-after GRU's candidate biases, which stay apart)."""
    if _structure(mine) != _structure(theirs):
        return Check(mine.name, theirs.name, math.inf, math.inf, False, "tensors")
    worst_abs, worst_rel, ok = 0.0, 0.0, True
    for a, b in zip(_effective(mine), _effective(theirs)):
        gap, rel, within = differences(b, a, rtol, atol)
        worst_abs, worst_rel, ok = max(worst_abs, gap), max(worst_rel, rel), ok and within
    return Check(mine.name, theirs.name, worst_abs, worst_rel, ok, "tensors")


def _structure(layer: Layer) -> tuple[object, ...]:
    return (
        layer.kind,
        layer.direction,
        layer.merge,
        layer.input_size,
        layer.hidden_size,
        layer.proj_size,
        tuple(str(a) for a in layer.activations),
        layer.clip,
        layer.cell_clip,
        layer.proj_clip,
        layer.input_forget,
        layer.reset_after,
        layer.reversed_output,
        layer.has_peepholes,
    )


def _effective(layer: Layer) -> list[np.ndarray]:
    arrays: list[np.ndarray] = []
    for cell in layer.cells:
        for field in ("w_ih", "w_hh", "peephole"):
            values = getattr(cell, field)
            if values is not None:
                arrays.extend(np.asarray(values[g], dtype=np.float64) for g in sorted(values))
        if cell.w_hr is not None:
            arrays.append(np.asarray(cell.w_hr, dtype=np.float64))
        if cell.b_ih is not None and cell.b_hh is not None:
            for gate in sorted(cell.b_ih):
                b_ih = np.asarray(cell.b_ih[gate], dtype=np.float64)
                b_hh = np.asarray(cell.b_hh[gate], dtype=np.float64)
                if layer.kind is Kind.GRU and gate == "n" and layer.reset_after:
                    arrays.extend([b_ih, b_hh])
                else:
                    arrays.append(b_ih + b_hh)
    return arrays


def label(source: Any) -> str:
    return os.fspath(source) if is_path(source) else type(source).__name__
