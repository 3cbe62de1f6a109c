"""lstmconv: move trained LSTM, GRU and simple RNN weights between Keras, PyTorch and ONNX
through one canonical per-gate representation, and prove each conversion numerically.

``import lstmconv`` imports no framework: each one is imported by its format module on use.
"""

__version__ = "0.1.0"

from . import reference
from .api import convert, inspect, load_into, port, read, to_keras, to_onnx, to_torch, verify, write
from .errors import (
    FormatError,
    InputNotFoundError,
    LstmconvError,
    LstmconvWarning,
    MissingDependencyError,
    OutputExistsError,
    PortMismatchError,
    UnknownFormatError,
    UnknownOptionError,
    UnsafeInputError,
    UnsupportedFeatureError,
    VerificationError,
    WeightLayoutError,
)
from .ir import Activation, Cell, Direction, Kind, Layer, Model
from .verification import Report

__all__ = [
    "Activation",
    "Cell",
    "Direction",
    "FormatError",
    "InputNotFoundError",
    "Kind",
    "Layer",
    "LstmconvError",
    "LstmconvWarning",
    "MissingDependencyError",
    "Model",
    "OutputExistsError",
    "PortMismatchError",
    "Report",
    "UnknownFormatError",
    "UnknownOptionError",
    "UnsafeInputError",
    "UnsupportedFeatureError",
    "VerificationError",
    "WeightLayoutError",
    "__version__",
    "convert",
    "inspect",
    "load_into",
    "port",
    "read",
    "reference",
    "to_keras",
    "to_onnx",
    "to_torch",
    "verify",
    "write",
]
