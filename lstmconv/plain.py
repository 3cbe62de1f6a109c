"""The plain layers around the recurrent ones (Embedding, Dense, Conv1D, normalizations, no-ops).

One vocabulary, framework-free, in PyTorch's orientation (out × in), as the recurrent IR is:

- ``embedding``: ``weight`` (num_embeddings, dim); input integer ids.
- ``dense``: ``weight`` (out, in), ``bias`` (out,); options ``activation`` (a Keras activation
  name, ``linear`` for none), ``time_distributed`` (applied to every step of a sequence).
- ``conv1d``: ``weight`` (out, in / groups, kernel), ``bias`` (out,); options ``stride``,
  ``padding`` (``valid``, ``same``, ``causal`` or a number of zeros each side), ``dilation``,
  ``groups``, ``activation``. Time runs along the sequence axis whatever the source's channel
  order (Keras is channels-last, PyTorch channels-first): each runnable form says which.
- ``layer_norm``: ``weight``/``bias`` (features,); options ``epsilon`` (always carried: Keras
  defaults to 1e-3, PyTorch to 1e-5), ``axis`` (-1).
- ``batch_norm``: ``weight``, ``bias``, ``mean``, ``var`` (features,); ``epsilon``, ``axis``
  (the feature axis: -1 channels-last, 1 channels-first).
- ``dropout``, ``masking``: no tensors, nothing computed at inference; ``rate`` / ``mask_value``
  kept so the report can say what was there.

Values are immutable and validated when built, as :mod:`lstmconv.ir`'s are.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from . import dtypes
from .errors import LstmconvError, WeightLayoutError


class PlainKind(str, enum.Enum):
    EMBEDDING = "embedding"
    DENSE = "dense"
    CONV1D = "conv1d"
    LAYER_NORM = "layer_norm"
    BATCH_NORM = "batch_norm"
    DROPOUT = "dropout"
    MASKING = "masking"


#: Per kind: the tensors it must hold, the ones it may hold, and its rank per tensor.
_TENSORS: Mapping[PlainKind, tuple[tuple[str, ...], tuple[str, ...]]] = MappingProxyType(
    {
        PlainKind.EMBEDDING: (("weight",), ()),
        PlainKind.DENSE: (("weight",), ("bias",)),
        PlainKind.CONV1D: (("weight",), ("bias",)),
        PlainKind.LAYER_NORM: ((), ("weight", "bias")),
        PlainKind.BATCH_NORM: (("mean", "var"), ("weight", "bias")),
        PlainKind.DROPOUT: ((), ()),
        PlainKind.MASKING: ((), ()),
    }
)
_RANK = {
    (PlainKind.EMBEDDING, "weight"): 2,
    (PlainKind.DENSE, "weight"): 2,
    (PlainKind.CONV1D, "weight"): 3,
}
#: Options every kind takes, with their defaults (None: must be given).
OPTIONS: Mapping[PlainKind, Mapping[str, Any]] = MappingProxyType(
    {
        PlainKind.EMBEDDING: {},
        PlainKind.DENSE: {"activation": "linear", "time_distributed": False},
        PlainKind.CONV1D: {
            "stride": 1,
            "padding": "valid",
            "dilation": 1,
            "groups": 1,
            "activation": "linear",
        },
        PlainKind.LAYER_NORM: {"epsilon": None, "axis": -1},
        PlainKind.BATCH_NORM: {"epsilon": None, "axis": -1},
        PlainKind.DROPOUT: {"rate": 0.0},
        PlainKind.MASKING: {"mask_value": 0.0},
    }
)
#: Kinds that compute nothing at inference.
NO_OPS = frozenset({PlainKind.DROPOUT, PlainKind.MASKING})


@dataclasses.dataclass(frozen=True)
class PlainLayer:
    """One non-recurrent layer: its kind, its tensors in the canonical orientation, its options."""

    kind: PlainKind
    name: str
    tensors: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self._validate()
        except LstmconvError as error:
            raise error.within(f'layer "{self.name}"' if self.name else "layer") from None

    def _validate(self) -> None:
        set_ = object.__setattr__
        set_(self, "kind", PlainKind(self.kind))
        required, optional = _TENSORS[self.kind]
        unknown = sorted(set(self.tensors) - set(required) - set(optional))
        missing = [name for name in required if name not in self.tensors]
        if unknown or missing:
            raise WeightLayoutError(
                f"a {self.kind.value} layer holds {', '.join(required + optional) or 'no tensors'}; "
                f"found {', '.join(self.tensors) or 'none'}"
            )
        frozen = {
            name: _frozen(self.tensors[name], name) for name in required + optional if name in self.tensors
        }
        set_(self, "tensors", MappingProxyType(frozen))
        defaults = OPTIONS[self.kind]
        unknown = sorted(set(self.options) - set(defaults))
        if unknown:
            raise WeightLayoutError(
                f"a {self.kind.value} layer takes options {', '.join(defaults) or 'none'}; found {unknown}"
            )
        options = {**defaults, **self.options}
        absent = [key for key, value in options.items() if value is None]
        if absent:
            raise WeightLayoutError(
                f"a {self.kind.value} layer needs {', '.join(absent)}: it is never defaulted"
            )
        if "epsilon" in options and not (math.isfinite(options["epsilon"]) and options["epsilon"] >= 0):
            raise WeightLayoutError(f"epsilon must be a non-negative number, found {options['epsilon']}")
        set_(self, "options", MappingProxyType(options))
        self._check_shapes()

    def _check_shapes(self) -> None:
        for name, array in self.tensors.items():
            rank = _RANK.get((self.kind, name), 1)
            if array.ndim != rank:
                raise WeightLayoutError(
                    f"expected a {rank}-D tensor, found shape {array.shape}", where=(name,)
                )
            if 0 in array.shape:
                raise WeightLayoutError(f"empty tensor of shape {array.shape}", where=(name,))
        if self.kind in (PlainKind.DENSE, PlainKind.CONV1D) and "bias" in self.tensors:
            _expect(self.tensors["bias"], (self.tensors["weight"].shape[0],), "bias")
        widths = {
            array.shape[0] for name, array in self.tensors.items() if _RANK.get((self.kind, name), 1) == 1
        }
        if self.kind in (PlainKind.LAYER_NORM, PlainKind.BATCH_NORM) and len(widths) > 1:
            shapes = {name: array.shape for name, array in self.tensors.items()}
            raise WeightLayoutError(f"every tensor must have one width, found {shapes}")
        dtypes_ = {array.dtype for array in self.tensors.values() if self.kind is not PlainKind.EMBEDDING}
        if len(dtypes_) > 1:
            raise WeightLayoutError(f"expected one dtype, found {sorted(map(str, dtypes_))}")

    # -- derived facts -------------------------------------------------------------------------
    @property
    def parameter_count(self) -> int:
        return sum(array.size for array in self.tensors.values())

    @property
    def input_size(self) -> int | None:
        """Features per step it takes (None where any width passes: no-ops, an embedding's ids)."""
        if self.kind is PlainKind.DENSE:
            return int(self.tensors["weight"].shape[1])
        if self.kind is PlainKind.CONV1D:
            return int(self.tensors["weight"].shape[1]) * int(self.options["groups"])
        return self.width

    @property
    def output_size(self) -> int | None:
        """Features per step it gives (None where it is its input's: no-ops)."""
        if self.kind in (PlainKind.EMBEDDING,):
            return int(self.tensors["weight"].shape[1])
        if self.kind in (PlainKind.DENSE, PlainKind.CONV1D):
            return int(self.tensors["weight"].shape[0])
        return self.width

    @property
    def width(self) -> int | None:
        """The feature width of a normalization, from its tensors."""
        for array in self.tensors.values():
            if array.ndim == 1:
                return int(array.shape[0])
        return None

    @property
    def dtype(self) -> np.dtype | None:
        for array in self.tensors.values():
            return array.dtype
        return None

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        return iter(self.tensors.items())

    def __repr__(self) -> str:
        sizes = f"{self.input_size} → {self.output_size}" if self.output_size else "no weights"
        return f"<PlainLayer {self.name!r}: {self.kind.value}; {sizes}; {self.parameter_count:,} parameters>"

    def replace(self, **changes: object) -> PlainLayer:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]  # fields vary

    def astype(self, dtype: np.dtype) -> PlainLayer:
        """The layer with its float tensors cast to ``dtype``."""
        if self.dtype is None or self.dtype == dtype:
            return self
        return self.replace(tensors={name: array.astype(dtype) for name, array in self.tensors.items()})


def _frozen(value: object, tensor: str) -> np.ndarray:
    array = np.asarray(value)
    if not dtypes.is_float(array.dtype):
        raise WeightLayoutError(
            f"expected floating-point weights, found dtype {array.dtype}", where=(tensor,)
        )
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    view = array.view()
    view.flags.writeable = False
    return view


def _expect(array: np.ndarray, shape: tuple[int, ...], tensor: str) -> None:
    if tuple(array.shape) != shape:
        raise WeightLayoutError(f"expected shape {shape}, found {tuple(array.shape)}", where=(tensor,))
