"""``.safetensors`` in PyTorch ``nn.LSTM/GRU/RNN`` naming, read and written without torch.

The file is the state_dict of ``to_torch(model)``. The header metadata records each simple
RNN's nonlinearity (which shapes cannot tell) under ``lstmconv``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ..errors import FormatError, LstmconvError
from ..ir import Kind, Model
from . import statedict

NAME = "safetensors"
EXTENSIONS = (".safetensors",)
check = statedict.check


def read(source: Any, *, nonlinearity: str | None = None, **_: Any) -> Model:
    path = os.fspath(source)
    try:
        with safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open is no dict
    except (SafetensorError, OSError, ValueError) as error:
        raise FormatError(f"not a readable safetensors file: {error}", where=(path,)) from None
    recorded = json.loads(metadata.get("lstmconv", "{}")).get("nonlinearity", {})
    try:
        return statedict.read_tensors(
            tensors,
            nonlinearity=nonlinearity or "tanh",
            source=path,
            per_module=None if nonlinearity else recorded,
        )
    except LstmconvError as error:
        raise error.within(path) from None


def write(model: Model, path: str, **_: Any) -> None:
    tensors = {key: np.ascontiguousarray(value) for key, value in statedict.state_dict(model).items()}
    nonlinearity = {
        name: layer.activations[0].name
        for name, layer in zip(statedict.module_names(model), model)
        if layer.kind is Kind.RNN
    }
    metadata = {
        "format": "pt",
        "lstmconv": json.dumps({"nonlinearity": nonlinearity}, sort_keys=True),
    }
    save_file(tensors, path, metadata=metadata)
