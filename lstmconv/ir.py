"""The canonical, framework-free representation of recurrent layers (SPEC §1).

One vocabulary: gates ``i f g o`` (LSTM), ``r z n`` (GRU), ``h`` (simple RNN); tensors ``w_ih``
(hidden × input), ``w_hh`` (hidden × hidden, or hidden × proj), ``b_ih``, ``b_hh`` per gate,
``w_hr`` (proj × hidden) and peepholes ``i f o``. Values are immutable and validated when built:
a :class:`Layer` that exists is consistent.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import math
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from . import dtypes, steps
from . import gates as gatelib
from .errors import LstmconvError, WeightLayoutError
from .plain import PlainLayer


class Kind(str, enum.Enum):
    LSTM = "lstm"
    GRU = "gru"
    RNN = "rnn"


GATES: Mapping[Kind, tuple[str, ...]] = MappingProxyType(
    {Kind.LSTM: ("i", "f", "g", "o"), Kind.GRU: ("r", "z", "n"), Kind.RNN: ("h",)}
)
PEEPHOLE_GATES = ("i", "f", "o")
#: The activation slots of each kind, named as ONNX names them (f: gates, g: candidate, h: output).
ACTIVATION_SLOTS: Mapping[Kind, tuple[str, ...]] = MappingProxyType(
    {Kind.LSTM: ("f", "g", "h"), Kind.GRU: ("f", "g"), Kind.RNN: ("f",)}
)


class Direction(str, enum.Enum):
    FORWARD = "forward"
    REVERSE = "reverse"
    BIDIRECTIONAL = "bidirectional"


MERGE_MODES = ("concat", "sum", "mul", "ave")

# name -> (default alpha, default beta); None where the function takes no such parameter.
# Defaults are those of the matching ONNX operators.
ACTIVATION_PARAMS: Mapping[str, tuple[float | None, float | None]] = MappingProxyType(
    {
        "sigmoid": (None, None),
        "tanh": (None, None),
        "relu": (None, None),
        "softsign": (None, None),
        "softplus": (None, None),
        "hard_sigmoid": (0.2, 0.5),
        "affine": (1.0, 0.0),
        "leaky_relu": (0.01, None),
        "thresholded_relu": (1.0, None),
        "scaled_tanh": (1.0, 1.0),
        "elu": (1.0, None),
    }
)


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation function with its parameters (hard sigmoid is ``clip(alpha·x + beta, 0, 1)``)."""

    name: str
    alpha: float | None = None
    beta: float | None = None

    def __post_init__(self) -> None:
        if self.name not in ACTIVATION_PARAMS:
            raise WeightLayoutError(
                f"unknown activation {self.name!r}",
                hint=f"known: {', '.join(ACTIVATION_PARAMS)}",
            )
        default_alpha, default_beta = ACTIVATION_PARAMS[self.name]
        for field, default in (("alpha", default_alpha), ("beta", default_beta)):
            value = getattr(self, field)
            if default is None and value is not None:
                raise WeightLayoutError(f"activation {self.name} takes no {field}")
            chosen = default if value is None else float(value)
            object.__setattr__(self, field, chosen)

    def __str__(self) -> str:
        params = [f"{p:g}" for p in (self.alpha, self.beta) if p is not None]
        return f"{self.name}({', '.join(params)})" if params else self.name


SIGMOID = Activation("sigmoid")
TANH = Activation("tanh")
RELU = Activation("relu")
DEFAULT_ACTIVATIONS: Mapping[Kind, tuple[Activation, ...]] = MappingProxyType(
    {Kind.LSTM: (SIGMOID, TANH, TANH), Kind.GRU: (SIGMOID, TANH), Kind.RNN: (TANH,)}
)

Tensors = Mapping[str, np.ndarray]


def _frozen_array(value: object, tensor: str) -> np.ndarray:
    array = np.asarray(value)
    if not dtypes.is_float(array.dtype):
        raise WeightLayoutError(
            f"expected floating-point weights, found dtype {array.dtype}",
            where=(tensor,),
            hint=f"lstmconv keeps {', '.join(dtypes.NAMES)}: cast the weights to one of them",
        )
    if not array.dtype.isnative:  # big-endian weights (an .npz's >f4): read, byte-swapped
        array = array.astype(array.dtype.newbyteorder("="))
    view = array.view()
    view.flags.writeable = False
    return view


#: Canonical position of every gate name, so each cell lists its gates in canonical order.
_GATE_RANK = {gate: rank for order in GATES.values() for rank, gate in enumerate(order)}


def _frozen_gates(values: Mapping[str, object] | None, tensor: str) -> Tensors | None:
    if values is None:
        return None
    ordered = sorted(values.items(), key=lambda item: _GATE_RANK.get(item[0], len(_GATE_RANK)))
    return MappingProxyType({gate: _frozen_array(array, f"{tensor}/{gate}") for gate, array in ordered})


@dataclasses.dataclass(frozen=True)
class Cell:
    """The weights of one direction of one layer, per gate, stored out × in."""

    w_ih: Tensors
    w_hh: Tensors
    b_ih: Tensors | None = None
    b_hh: Tensors | None = None
    w_hr: np.ndarray | None = None
    peephole: Tensors | None = None

    def __post_init__(self) -> None:
        for field in ("w_ih", "w_hh", "b_ih", "b_hh", "peephole"):
            object.__setattr__(self, field, _frozen_gates(getattr(self, field), field))
        if self.w_hr is not None:
            object.__setattr__(self, "w_hr", _frozen_array(self.w_hr, "w_hr"))

    def tensors(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every tensor as (``field/gate`` or ``w_hr``, array), in canonical order."""
        for field in ("w_ih", "w_hh", "b_ih", "b_hh", "peephole"):
            values = getattr(self, field)
            if values is not None:
                for gate, array in values.items():
                    yield f"{field}/{gate}", array
        if self.w_hr is not None:
            yield "w_hr", self.w_hr

    def stacked(self, field: str, order: Sequence[str], *, axis: int = 0) -> np.ndarray:
        """One field's gates concatenated in ``order`` (a format's own stacking)."""
        return gatelib.pack(getattr(self, field), order, axis=axis)

    def bias_sum(self) -> Tensors | None:
        """Per-gate ``b_ih + b_hh``: all that matters for every gate but GRU reset-after ``n``."""
        if self.b_ih is None or self.b_hh is None:
            return None
        return {gate: steps.merge_bias(self.b_ih[gate], self.b_hh[gate]) for gate in self.b_ih}

    def astype(self, dtype: np.dtype) -> Cell:
        def cast(values: Tensors | None) -> dict[str, np.ndarray] | None:
            return None if values is None else {gate: array.astype(dtype) for gate, array in values.items()}

        return Cell(
            w_ih=cast(self.w_ih),  # type: ignore[arg-type]  # never None here
            w_hh=cast(self.w_hh),  # type: ignore[arg-type]
            b_ih=cast(self.b_ih),
            b_hh=cast(self.b_hh),
            w_hr=None if self.w_hr is None else self.w_hr.astype(dtype),
            peephole=cast(self.peephole),
        )


def cell_from_stacked(
    order: Sequence[str],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None = None,
    b_hh: np.ndarray | None = None,
    *,
    w_hr: np.ndarray | None = None,
    peephole: np.ndarray | None = None,
    peephole_order: Sequence[str] = PEEPHOLE_GATES,
) -> Cell:
    """Build a cell from out × in tensors stacked in a format's gate ``order``.

    A single bias (``b_hh`` None) is split as ``b_ih = bias``, ``b_hh = 0`` (:func:`steps.split_bias`).
    """
    if b_ih is not None and b_hh is None:
        b_ih, b_hh = steps.split_bias(b_ih)
    return Cell(
        w_ih=gatelib.unpack(w_ih, order, tensor="w_ih"),
        w_hh=gatelib.unpack(w_hh, order, tensor="w_hh"),
        b_ih=None if b_ih is None else gatelib.unpack(b_ih, order, tensor="b_ih"),
        b_hh=None if b_hh is None else gatelib.unpack(b_hh, order, tensor="b_hh"),
        w_hr=w_hr,
        peephole=None if peephole is None else gatelib.unpack(peephole, peephole_order, tensor="p"),
    )


@dataclasses.dataclass(frozen=True)
class Layer:
    """One recurrent layer: its kind, its cells (one, or forward then backward) and its math."""

    kind: Kind
    cells: tuple[Cell, ...]
    name: str = ""
    direction: Direction = Direction.FORWARD
    merge: str = "concat"
    activations: tuple[Activation, ...] = ()
    #: ONNX ``clip``: bounds every gate pre-activation to [-clip, clip].
    clip: float | None = None
    input_forget: bool = False
    reset_after: bool = True
    #: A reverse layer whose output comes in processing order, last step first (Keras go_backwards).
    reversed_output: bool = False
    #: TF1 / TFLite ``cell_clip``: bounds the carried cell state c to [-cell_clip, cell_clip] after
    #: each update (unlike ONNX ``clip``, which bounds the gate pre-activations).
    cell_clip: float | None = None
    #: TF1 / TFLite ``proj_clip``: bounds the projected output h to [-proj_clip, proj_clip].
    proj_clip: float | None = None
    #: The source held a single-step cell (``nn.LSTMCell``/``GRUCell``/``RNNCell``) stepped over
    #: time from a zero state: torch writers write it back as one. A note, not the layer's math.
    stepped: bool = dataclasses.field(default=False, compare=False)

    def __post_init__(self) -> None:
        try:
            self._validate()
        except LstmconvError as error:
            raise error.within(f'layer "{self.name}"' if self.name else "layer") from None

    def _validate(self) -> None:
        set_ = object.__setattr__
        set_(self, "kind", Kind(self.kind))
        set_(self, "direction", Direction(self.direction))
        set_(self, "cells", tuple(self.cells))
        set_(self, "activations", tuple(self.activations) or DEFAULT_ACTIVATIONS[self.kind])
        expected_cells = 2 if self.direction is Direction.BIDIRECTIONAL else 1
        if len(self.cells) != expected_cells:
            raise WeightLayoutError(
                f"a {self.direction.value} layer needs {expected_cells} cell(s), found {len(self.cells)}"
            )
        if self.merge not in MERGE_MODES:
            raise WeightLayoutError(f"merge mode {self.merge!r} unknown; expected one of {MERGE_MODES}")
        slots = ACTIVATION_SLOTS[self.kind]
        if len(self.activations) != len(slots) or not all(
            isinstance(a, Activation) for a in self.activations
        ):
            raise WeightLayoutError(
                f"expected {len(slots)} activations ({', '.join(slots)}), found {self.activations}"
            )
        if self.reversed_output and self.direction is not Direction.REVERSE:
            raise WeightLayoutError("reversed_output only applies to a reverse layer")
        if self.kind is not Kind.LSTM and (self.clip is not None or self.input_forget):
            raise WeightLayoutError(f"clip and input_forget are LSTM features, found on a {self.kind.value}")
        for field in ("clip", "cell_clip", "proj_clip"):
            value = getattr(self, field)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise WeightLayoutError(f"{field} must be a positive number, found {value}")
        if self.kind is not Kind.LSTM and self.cell_clip is not None:
            raise WeightLayoutError(f"cell_clip is an LSTM feature, found on a {self.kind.value}")
        for index, cell in enumerate(self.cells):
            try:
                self._validate_cell(cell)
            except LstmconvError as error:
                raise error.within(self.direction_name(index)) from None
        first = self.cells[0].w_ih.get(GATES[self.kind][0])
        if first is not None and first.ndim == 2 and (first.shape[0] < 1 or first.shape[1] < 1):
            raise WeightLayoutError(
                f"input size {first.shape[1]}, hidden size {first.shape[0]}: a layer needs at least "
                "one input feature and one unit",
                where=("w_ih",),
            )

    def _validate_cell(self, cell: Cell) -> None:
        gates = GATES[self.kind]
        first = self.cells[0]
        hidden, inputs = _shape_of(first.w_ih, gates, "w_ih", ndim=2)
        recurrent = first.w_hr.shape[0] if first.w_hr is not None else hidden
        dtype = first.w_ih[gates[0]].dtype
        expect = {
            "w_ih": (gates, (hidden, inputs)),
            "w_hh": (gates, (hidden, recurrent)),
            "b_ih": (gates, (hidden,)),
            "b_hh": (gates, (hidden,)),
            "peephole": (PEEPHOLE_GATES, (hidden,)),
        }
        for field, (names, shape) in expect.items():
            values = getattr(cell, field)
            if values is None:
                continue
            if set(values) != set(names):
                raise WeightLayoutError(
                    f"expected gates {'·'.join(names)}, found {'·'.join(values)}", where=(field,)
                )
            for gate in names:
                _check(values[gate], shape, dtype, f"{field}/{gate}")
        if (cell.b_ih is None) != (cell.b_hh is None):
            raise WeightLayoutError("b_ih and b_hh must both be present or both absent")
        if (first.b_ih is None) != (cell.b_ih is None):
            raise WeightLayoutError("one direction has biases and the other has none")
        if cell.w_hr is not None or first.w_hr is not None:
            if self.kind is not Kind.LSTM:
                raise WeightLayoutError("a projection (w_hr) is an LSTM feature")
            if cell.w_hr is None:
                raise WeightLayoutError("one direction has a projection and the other has none")
            _check(cell.w_hr, (recurrent, hidden), dtype, "w_hr")
        if self.proj_clip is not None and first.w_hr is None:
            raise WeightLayoutError("proj_clip needs a projection (w_hr)")
            if recurrent >= hidden:
                raise WeightLayoutError(
                    f"projection size must be smaller than hidden size {hidden}, found {recurrent}",
                    where=("w_hr",),
                )
        if cell.peephole is not None and self.kind is not Kind.LSTM:
            raise WeightLayoutError("peepholes are an LSTM feature")
        if (first.peephole is None) != (cell.peephole is None):
            raise WeightLayoutError("one direction has peepholes and the other has none")

    # -- derived facts -------------------------------------------------------------------------
    @property
    def gates(self) -> tuple[str, ...]:
        return GATES[self.kind]

    @property
    def hidden_size(self) -> int:
        return int(self.cells[0].w_ih[self.gates[0]].shape[0])

    @property
    def input_size(self) -> int:
        return int(self.cells[0].w_ih[self.gates[0]].shape[1])

    @property
    def proj_size(self) -> int:
        """The projection size, 0 when the layer has none (PyTorch's convention)."""
        w_hr = self.cells[0].w_hr
        return 0 if w_hr is None else int(w_hr.shape[0])

    @property
    def state_size(self) -> int:
        """The width of h: the projection size, or the hidden size."""
        return self.proj_size or self.hidden_size

    @property
    def num_directions(self) -> int:
        return len(self.cells)

    @property
    def output_size(self) -> int:
        """Features per time step of the layer's merged output."""
        if self.direction is Direction.BIDIRECTIONAL and self.merge == "concat":
            return 2 * self.state_size
        return self.state_size

    @property
    def dtype(self) -> np.dtype:
        return self.cells[0].w_ih[self.gates[0]].dtype

    @property
    def has_bias(self) -> bool:
        return self.cells[0].b_ih is not None

    @property
    def has_peepholes(self) -> bool:
        return self.cells[0].peephole is not None

    @property
    def parameter_count(self) -> int:
        return sum(array.size for cell in self.cells for _, array in cell.tensors())

    def direction_name(self, index: int) -> str:
        if self.direction is Direction.BIDIRECTIONAL:
            return ("forward", "backward")[index]
        return self.direction.value

    def __repr__(self) -> str:
        """A summary, as inspect's heading line (every weight would be thousands of characters)."""
        sizes = f"input {self.input_size}, hidden {self.hidden_size}"
        sizes += f", projection {self.proj_size}" if self.proj_size else ""
        return (
            f"<Layer {self.name!r}: {self.kind.value.upper()}, {self.direction.value}; {sizes}, "
            f"output {self.output_size}; {self.dtype}; {self.parameter_count:,} parameters>"
        )

    def replace(self, **changes: object) -> Layer:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]  # fields vary

    def astype(self, dtype: np.dtype) -> Layer:
        """The layer with its weights cast to ``dtype`` (itself when they already are)."""
        if self.dtype == dtype:
            return self
        return self.replace(cells=tuple(cell.astype(dtype) for cell in self.cells))


def _shape_of(values: Tensors, gates: Sequence[str], field: str, ndim: int) -> tuple[int, ...]:
    if gates[0] not in values:
        raise WeightLayoutError(f"expected gates {'·'.join(gates)}, found {'·'.join(values)}", where=(field,))
    shape = tuple(int(n) for n in values[gates[0]].shape)
    if len(shape) != ndim:
        raise WeightLayoutError(f"expected a {ndim}-D tensor, found shape {shape}", where=(field,))
    return shape


def _check(array: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, tensor: str) -> None:
    if tuple(array.shape) != shape:
        raise WeightLayoutError(f"expected shape {shape}, found {tuple(array.shape)}", where=(tensor,))
    if array.dtype != dtype:
        raise WeightLayoutError(
            f"expected dtype {dtype} like the rest of the layer, found {array.dtype}",
            where=(tensor,),
        )


@dataclasses.dataclass(frozen=True)
class Skipped:
    """Something a reader read past and does not carry: a non-recurrent layer holding weights
    (Keras), state_dict keys of other modules (PyTorch), initializers no recurrent node uses
    (ONNX). ``tensors`` are (name, shape) as the source names them."""

    name: str
    kind: str
    parameters: int
    tensors: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @classmethod
    def of(cls, name: str, kind: str, tensors: Sequence[tuple[str, Sequence[int]]]) -> Skipped:
        shaped = tuple((tensor, tuple(int(n) for n in shape)) for tensor, shape in tensors)
        return cls(name, kind, sum(math.prod(shape) for _, shape in shaped), shaped)


@dataclasses.dataclass(frozen=True)
class Model:
    """Recurrent layers in model order, with where they came from and what the reader left out.

    ``links`` are the (from, to) pairs of layers whose output is the other's input directly (no
    other layer computing in between), as the source says; None where the source cannot say (a
    state_dict of several modules). Writers chain layers only along links."""

    layers: tuple[Layer, ...]
    source: str = ""
    links: tuple[tuple[str, str], ...] | None = None
    #: What the reader read past (not part of the model's identity: equality ignores it).
    skipped: tuple[Skipped, ...] = dataclasses.field(default=(), compare=False)
    #: The plain layers around the recurrent ones (:mod:`lstmconv.plain`), carried where the
    #: target can hold them; equality ignores them, as the recurrent layers are the model's identity.
    around: tuple[PlainLayer, ...] = dataclasses.field(default=(), compare=False)
    #: Every layer's name, recurrent and plain, in model order (None: recurrent, then plain).
    order: tuple[str, ...] | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "skipped", tuple(self.skipped))
        object.__setattr__(self, "around", tuple(self.around))
        self._check_order()
        if self.links is not None:
            object.__setattr__(self, "links", tuple((str(a), str(b)) for a, b in self.links))
        if not self.layers:
            raise WeightLayoutError(
                "no recurrent layer found",
                where=(self.source,),
                hint="lstmconv reads LSTM, GRU and simple RNN layers",
            )
        names = [layer.name for layer in self.layers] + [layer.name for layer in self.around]
        counts = collections.Counter(names)  # linear: 60,000 layers
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise WeightLayoutError(f"layer names must be unique, found {duplicates} twice")

    def _check_order(self) -> None:
        names = [layer.name for layer in self.layers] + [layer.name for layer in self.around]
        if self.order is None:
            object.__setattr__(self, "order", tuple(names))
            return
        object.__setattr__(self, "order", tuple(str(name) for name in self.order))
        if sorted(self.order) != sorted(names):
            raise WeightLayoutError(
                f"the model order {list(self.order)} must name every layer once: {sorted(names)}",
                where=(self.source,),
            )

    def everything(self) -> tuple[Layer | PlainLayer, ...]:
        """Every layer, recurrent and plain, in model order."""
        by_name: dict[str, Layer | PlainLayer] = {layer.name: layer for layer in self.layers}
        by_name.update((layer.name, layer) for layer in self.around)
        return tuple(by_name[name] for name in self.order or ())

    def __repr__(self) -> str:
        """A summary like inspect's first lines: the source, then one line per layer."""
        head = (
            f"<Model {self.source!r}: {len(self.layers)} recurrent layer(s), "
            f"{self.parameter_count:,} parameters"
        )
        head += f", {len(self.around)} plain" if self.around else ""
        head += f", {len(self.skipped)} skipped" if self.skipped else ""
        return head + "".join(f"\n  {layer!r}" for layer in self.everything()) + ">"

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, key: int | str) -> Layer:
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyError(key)
        return self.layers[key]

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def parameter_count(self) -> int:
        """Parameters of the recurrent layers (canonical: b_ih and b_hh apart)."""
        return sum(layer.parameter_count for layer in self.layers)

    @property
    def skipped_count(self) -> int:
        return sum(entry.parameters for entry in self.skipped)

    def select(self, names: Sequence[str]) -> Model:
        """The named layers only, in model order."""
        unknown = [name for name in names if name not in {layer.name for layer in self.layers}]
        if unknown:
            known = ", ".join(layer.name for layer in self.layers)
            raise LstmconvError(f"no layer named {unknown}", where=(self.source,), hint=f"layers: {known}")
        left = tuple(
            Skipped.of(
                layer.name, layer.kind.value, [(n, a.shape) for c in layer.cells for n, a in c.tensors()]
            )
            for layer in self.layers
            if layer.name not in names
        )
        kept = tuple(layer for layer in self.layers if layer.name in names)
        left += tuple(
            Skipped.of(layer.name, layer.kind.value, [(n, a.shape) for n, a in layer.items()])
            for layer in self.around
        )
        return Model(kept, self.source, self.links, skipped=self.skipped + left)

    def astype(self, dtype: np.dtype | str) -> Model:
        """Every layer's weights cast to ``dtype`` (float16, bfloat16, float32 or float64)."""
        wanted = dtypes.resolve(dtype)
        return Model(
            tuple(layer.astype(wanted) for layer in self.layers),
            self.source,
            self.links,
            self.skipped,
            tuple(layer.astype(wanted) for layer in self.around),
            self.order,
        )

    def recurrent_only(self) -> Model:
        """The model without its plain layers, which are listed as skipped (a target that holds
        recurrent layers alone)."""
        if not self.around:
            return self
        return self.select([layer.name for layer in self.layers])

    @property
    def dtypes(self) -> tuple[np.dtype, ...]:
        return tuple(dict.fromkeys(layer.dtype for layer in self.layers))

    def linked(self, before: Layer, after: Layer) -> bool:
        """Whether ``before``'s output is ``after``'s input directly. Where the source cannot say
        (``links`` None), consecutive layers whose widths fit are taken as linked, as a stack."""
        if self.links is None:
            return before.output_size == after.input_size
        return (before.name, after.name) in set(self.links)

    def chains(self) -> list[tuple[Layer, ...]]:
        """The layers in runs of consecutive linked layers, in model order: what a written model
        holds as one input → layers → one output each."""
        runs: list[list[Layer]] = []
        for layer in self.layers:
            if runs and self.linked(runs[-1][-1], layer) and runs[-1][-1].output_size == layer.input_size:
                runs[-1].append(layer)
            else:
                runs.append([layer])
        return [tuple(run) for run in runs]

    def check_chain(self) -> None:
        """Raise unless each layer's output feeds the next one's input (a runnable stack)."""
        for before, after in zip(self.layers, self.layers[1:]):
            if before.output_size != after.input_size:
                raise WeightLayoutError(
                    f'layer "{after.name}" takes {after.input_size} features but "{before.name}" '
                    f"gives {before.output_size}: the layers do not form one stack",
                    where=(self.source,),
                    hint="select a chain of layers with --layer",
                )
