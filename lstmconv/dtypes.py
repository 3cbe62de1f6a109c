"""The weight dtypes lstmconv keeps as they are: float16, bfloat16, float32 and float64.

bfloat16 is NumPy's through ``ml_dtypes`` (which onnx depends on), imported only when a
bfloat16 array is made. Conversions keep the weights' dtype unless asked to cast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UnsupportedFeatureError

NAMES = ("float16", "bfloat16", "float32", "float64")
#: The gap between 1 and the next larger number of each dtype.
_EPSILON = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
#: Running a model in reduced precision differs from the float64 reference by a few units of
#: its epsilon; verification allows this many for float16 and bfloat16.
REDUCED_PRECISION_UNITS = 4


def is_float(dtype: np.dtype | str) -> bool:
    return (dtype if isinstance(dtype, str) else np.dtype(dtype).name) in NAMES


def resolve(name: Any) -> np.dtype:
    """The NumPy dtype called ``name`` (one of :data:`NAMES`)."""
    text = str(getattr(name, "name", name))
    if text not in NAMES:
        raise UnsupportedFeatureError(
            f"dtype {text!r} is not a weight dtype lstmconv keeps", hint=f"use one of {', '.join(NAMES)}"
        )
    if text == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(text)


def tolerance(atol: float, *dtypes: np.dtype) -> float:
    """``atol``, widened to what running in the coarsest of ``dtypes`` costs."""
    reduced = [REDUCED_PRECISION_UNITS * _EPSILON[np.dtype(d).name] for d in dtypes if _reduced(d)]
    return max([atol, *reduced])


def _reduced(dtype: np.dtype) -> bool:
    return np.dtype(dtype).name in ("float16", "bfloat16")


def little_endian_bytes(array: np.ndarray) -> memoryview:
    """The array's values as little-endian bytes in C order, without a copy when they already
    are (a bfloat16 array cannot export its buffer, its bytes can)."""
    contiguous = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return contiguous.reshape(-1).view(np.uint8).data
