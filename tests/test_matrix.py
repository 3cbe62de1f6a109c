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


def _save_natively(framework: str, native, folder) -> list:
    """The files each framework's own writers make of ``native``."""
    if framework == "keras":
        import warnings

        paths = [folder / "m.keras", folder / "m.weights.h5", folder / "legacy.h5"]
        native.save(paths[0])
        native.save_weights(paths[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            native.save(paths[2])
        return paths
    if framework == "torch":
        import safetensors.torch
        import torch

        torch.save({"model_state_dict": native.state_dict(), "epoch": 1}, folder / "m.pt")
        safetensors.torch.save_file(native.state_dict(), folder / "m.safetensors")
        return [folder / "m.pt", folder / "m.safetensors"]
    import onnx

    onnx.save(native, folder / "m.onnx")
    return [folder / "m.onnx"]


#: Files without a config cannot tell activations, merge mode or go_backwards; shapes tell the rest.
_NEEDS_CONFIG = {
    "lstm-bidir-sum",
    "lstm-bidir-mul",
    "lstm-bidir-ave",
    "lstm-reverse",
    "lstm-hard-sigmoid",
    "rnn-relu",
}


@pytest.mark.parametrize(
    ("variant", "framework"),
    [pytest.param(v, f, id=f"{v.id}:{f}") for v in VARIANTS for f in FRAMEWORKS if expressible(f, v)],
)
def test_reader_on_files_the_framework_saved(variant: Variant, framework: str, tmp_path) -> None:
    native, run = _source(variant, framework)
    x = inputs(variant)
    expected = run(native, x)
    for path in _save_natively(framework, native, tmp_path):
        if path.name.endswith("weights.h5"):  # weights only: with the model's config, it is exact
            model = lstmconv.read(path, config=tmp_path / "m.keras")
            np.testing.assert_allclose(lstmconv.reference.run(model, x), expected, rtol=0, atol=ATOL)
        if path.name.endswith(("weights.h5", ".pt", ".safetensors")) and variant.id in _NEEDS_CONFIG:
            continue  # without a config these cannot tell; nonlinearity has an option below
        model = lstmconv.read(path)
        np.testing.assert_allclose(
            lstmconv.reference.run(model, x), expected, rtol=0, atol=ATOL, err_msg=path.name
        )
    if framework == "torch" and variant.id == "rnn-relu":
        model = lstmconv.read(tmp_path / "m.safetensors", nonlinearity="relu")
        np.testing.assert_allclose(lstmconv.reference.run(model, x), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    ("kind", "activations", "target", "message"),
    [
        ("rnn", ("affine", 0.7, -0.1), "keras", "Keras 3 has no activation computing affine"),
        ("rnn", ("leaky_relu", 0.1, None), "torch", "PyTorch cannot express the activations"),
        ("gru", ("softsign", None, None), "torch", "PyTorch cannot express the activations"),
        (
            "gru",
            ("thresholded_relu", 0.3, None),
            "keras",
            "Keras 3 has no activation computing thresholded_relu",
        ),
    ],
)
def test_onnx_only_activations_are_refused(kind: str, activations, target: str, message: str) -> None:
    from helpers import random_layer

    from lstmconv.ir import ACTIVATION_SLOTS, Activation, Kind

    require(NATIVE[target][2])
    name, alpha, beta = activations
    chosen = Activation(name, alpha, beta)
    slots = ACTIVATION_SLOTS[Kind(kind)]
    layer = random_layer(np.random.default_rng(0), Kind(kind), activations=(chosen,) * len(slots), name="odd")
    with pytest.raises(UnsupportedFeatureError, match=message):
        BUILD[target](lstmconv.Model((layer,)))
    # ONNX keeps it, and onnxruntime agrees with the reference
    x = np.random.default_rng(1).uniform(-1, 1, (2, 4, layer.input_size)).astype(np.float32)
    got = NATIVE["onnx"][1](lstmconv.to_onnx(lstmconv.Model((layer,))), x)
    np.testing.assert_allclose(got, lstmconv.reference.run(layer, x), rtol=0, atol=ATOL)
