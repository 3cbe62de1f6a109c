"""The conversion matrix: every variant × source framework × target (and back), generated from
the variants and the frameworks. Sources are built with each framework's own API; every output
is computed by the framework itself and must be within 2e-5 of the source's own forward pass.
Pairs a target cannot express sit in REFUSED and must raise UnsupportedFeatureError."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require
from natives import NATIVE, VARIANTS, Variant, expressible, inputs

import lstmconv
from lstmconv import UnsupportedFeatureError

ATOL = 2e-5
FRAMEWORKS = tuple(NATIVE)
TARGETS = (*FRAMEWORKS, "reference")
BUILD = {"torch": lstmconv.to_torch, "keras": lstmconv.to_keras, "onnx": lstmconv.to_onnx}

#: (variant, target) -> what the refusal must name.
REFUSED = {
    ("lstm-projection", "keras"): "projection",
    ("lstm-projection", "onnx"): "projection",
    ("lstm-peephole-clip", "torch"): "peepholes",
    ("lstm-peephole-clip", "keras"): "peepholes",
    ("lstm-input-forget", "torch"): "input_forget",
    ("lstm-input-forget", "keras"): "input_forget",
    ("lstm-reverse", "torch"): "reverse-only",
    ("lstm-hard-sigmoid", "torch"): "activations",
    ("gru-reset-before", "torch"): "reset-before",
}

CASES = [
    pytest.param(v, source, target, id=f"{v.id}:{source}->{target}")
    for v in VARIANTS
    for source in FRAMEWORKS
    if expressible(source, v)
    for target in TARGETS
]


def _source(v: Variant, framework: str):
    build, run, module = NATIVE[framework]
    require(module)
    if framework == "keras":
        require("tensorflow")
    rng = np.random.default_rng(abs(hash((v.id, framework))) % 2**32)
    native = build(v, rng)
    return native, run


@pytest.mark.parametrize(("variant", "source", "target"), CASES)
def test_conversion(variant: Variant, source: str, target: str) -> None:
    native, run_source = _source(variant, source)
    x = inputs(variant)
    expected = run_source(native, x)
    assert expected.shape == (3, 6, variant.output_size)
    model = lstmconv.read(native)

    if (variant.id, target) in REFUSED:
        require(NATIVE[target][2])
        with pytest.raises(UnsupportedFeatureError, match=REFUSED[variant.id, target]):
            BUILD[target](model)
        return
    if target == "reference":
        got = lstmconv.reference.run(model, x)
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
        return

    _, run_target, module = NATIVE[target]
    require(module)
    converted = BUILD[target](model)
    np.testing.assert_allclose(run_target(converted, x), expected, rtol=0, atol=ATOL)
    # ...and back into the source framework, from what the target holds.
    back = BUILD[source](lstmconv.read(converted))
    np.testing.assert_allclose(run_source(back, x), expected, rtol=0, atol=ATOL)


def test_every_refusal_is_a_real_case() -> None:
    ids = {v.id for v in VARIANTS}
    assert {variant for variant, _ in REFUSED} <= ids
