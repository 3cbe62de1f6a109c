"""Shared fixtures. In CI (CI=true) every framework is installed, so a missing one fails the
test instead of skipping it."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(module: str) -> ModuleType:
    """Import a framework for a test; skip without it locally, fail without it in CI."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if IN_CI:
            pytest.fail(f"{module} is not installed in CI: {error}")
        pytest.skip(f"{module} is not installed")


@pytest.fixture
def torch() -> ModuleType:
    return require("torch")


@pytest.fixture
def keras() -> ModuleType:
    require("tensorflow")
    return require("keras")


@pytest.fixture
def ort() -> ModuleType:
    return require("onnxruntime")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
