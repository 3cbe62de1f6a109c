"""Each framework's own objects for a test variant, built with the framework's API and random
weights (never through lstmconv), and run by the framework itself.

A framework that cannot express a variant at all (``expressible``) is no source for it;
conversions *into* it are covered by the refusal table of the matrix test.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

INIT = 0.5  # weights uniform in (-INIT, INIT): large enough that every gate matters


@dataclasses.dataclass(frozen=True)
class Variant:
    id: str
    kind: str = "lstm"
    input_size: int = 5
    hidden: int = 7
    layers: int = 1
    direction: str = "forward"  # forward | reverse | bidirectional
    merge: str = "concat"
    bias: bool = True
    proj: int = 0
    peephole: bool = False
    clip: float | None = None
    input_forget: bool = False
    reset_after: bool = True
    #: LSTM/GRU gate activation, or the simple RNN's activation
    activation: str | None = None
    dtype: str = "float32"

    @property
    def output_size(self) -> int:
        width = self.proj or self.hidden
        return 2 * width if self.direction == "bidirectional" and self.merge == "concat" else width


VARIANTS = [
    Variant("lstm-one-layer"),
    Variant("lstm-stacked", layers=2),
    *(
        Variant(f"lstm-bidir-{m}", direction="bidirectional", merge=m)
        for m in ("concat", "sum", "mul", "ave")
    ),
    Variant("lstm-stacked-bidir", layers=2, direction="bidirectional"),
    Variant("lstm-hidden-gt-input", input_size=3, hidden=11),
    Variant("lstm-no-bias", bias=False),
    Variant("lstm-projection", hidden=8, proj=3, layers=2),
    Variant("lstm-peephole-clip", peephole=True, clip=0.7, direction="bidirectional"),
    Variant("lstm-input-forget", input_forget=True),
    Variant("lstm-float64", dtype="float64", layers=2),
    Variant("lstm-reverse", direction="reverse"),
    Variant("lstm-hard-sigmoid", activation="hard_sigmoid"),
    Variant("gru-reset-after", kind="gru", layers=2),
    Variant("gru-reset-after-bidir", kind="gru", direction="bidirectional"),
    Variant("gru-reset-before", kind="gru", reset_after=False),
    Variant("gru-no-bias", kind="gru", bias=False),
    Variant("rnn-tanh", kind="rnn", layers=2),
    Variant("rnn-relu", kind="rnn", activation="relu", direction="bidirectional"),
]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return rng.uniform(-INIT, INIT, shape).astype(dtype)


# -- PyTorch -----------------------------------------------------------------------------------
def expressible(framework: str, v: Variant) -> bool:
    """Whether ``framework`` itself can hold the variant (so it can be a conversion source)."""
    if framework == "torch":
        return not (
            v.peephole
            or v.clip
            or v.input_forget
            or not v.reset_after
            or v.direction == "reverse"
            or v.merge != "concat"
            or v.activation not in (None, "relu")
        )
    if framework == "keras":
        return not (v.proj or v.peephole or v.clip or v.input_forget)
    return not v.proj


def torch_native(v: Variant, rng: np.random.Generator) -> Any:
    import torch

    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[v.kind]
    options: dict[str, Any] = dict(
        num_layers=v.layers,
        bias=v.bias,
        batch_first=True,
        bidirectional=v.direction == "bidirectional",
    )
    if v.proj:
        options["proj_size"] = v.proj
    if v.kind == "rnn":
        options["nonlinearity"] = v.activation or "tanh"
    module = cls(v.input_size, v.hidden, **options).to(getattr(torch, v.dtype))
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.from_numpy(_uniform(rng, tuple(parameter.shape), v.dtype)))
    return module.eval()


def torch_run(module: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = module(torch.from_numpy(x))
    return (out[0] if isinstance(out, tuple) else out).numpy()


# -- Keras 3 -----------------------------------------------------------------------------------
def keras_native(v: Variant, rng: np.random.Generator) -> Any:
    import keras

    layers: list[Any] = [keras.Input((None, v.input_size), dtype=v.dtype)]
    for _ in range(v.layers):
        options: dict[str, Any] = dict(
            return_sequences=True,
            use_bias=v.bias,
            dtype=v.dtype,
            go_backwards=v.direction == "reverse",
        )
        if v.kind == "rnn":
            layer = keras.layers.SimpleRNN(v.hidden, activation=v.activation or "tanh", **options)
        elif v.kind == "gru":
            layer = keras.layers.GRU(v.hidden, reset_after=v.reset_after, **options)
        else:
            layer = keras.layers.LSTM(v.hidden, recurrent_activation=v.activation or "sigmoid", **options)
        if v.direction == "bidirectional":
            layer = keras.layers.Bidirectional(layer, merge_mode=v.merge, dtype=v.dtype)
        layers.append(layer)
    model = keras.Sequential(layers)
    for layer in model.layers:
        layer.set_weights([_uniform(rng, w.shape, v.dtype) for w in layer.get_weights()])
    return model


def keras_run(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


# -- ONNX --------------------------------------------------------------------------------------
def onnx_native(v: Variant, rng: np.random.Generator) -> Any:
    """A hand-built graph: (batch, time, in) -> Transpose -> op per layer -> merge -> Transpose."""
    from onnx import TensorProto, helper, numpy_helper

    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[v.kind]
    directions = 2 if v.direction == "bidirectional" else 1
    gates, hidden = GATES[v.kind], v.hidden
    nodes = [helper.make_node("Transpose", ["input"], ["x0"], perm=[1, 0, 2])]
    inits = [
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([0, 0, -1], np.int64), "flat"),
    ]
    width = v.input_size
    for k in range(v.layers):
        names = [f"W{k}", f"R{k}", f"B{k}" if v.bias else ""]
        inits += [
            numpy_helper.from_array(_uniform(rng, (directions, gates * hidden, width), v.dtype), f"W{k}"),
            numpy_helper.from_array(_uniform(rng, (directions, gates * hidden, hidden), v.dtype), f"R{k}"),
        ]
        if v.bias:
            inits.append(
                numpy_helper.from_array(_uniform(rng, (directions, 2 * gates * hidden), v.dtype), f"B{k}")
            )
        if v.peephole:
            names += ["", "", "", f"P{k}"]
            inits.append(numpy_helper.from_array(_uniform(rng, (directions, 3 * hidden), v.dtype), f"P{k}"))
        attrs: dict[str, Any] = dict(hidden_size=hidden, direction=v.direction)
        if v.clip:
            attrs["clip"] = v.clip
        if v.input_forget:
            attrs["input_forget"] = 1
        if v.kind == "gru":
            attrs["linear_before_reset"] = int(v.reset_after)
        if v.activation == "hard_sigmoid":
            attrs.update(
                activations=["HardSigmoid", "Tanh", "Tanh"] * directions,
                activation_alpha=[1 / 6] * directions,
                activation_beta=[0.5] * directions,
            )
        elif v.activation == "relu":
            attrs["activations"] = ["Relu"] * directions
        nodes.append(helper.make_node(op, [f"x{k}", *names], [f"y{k}"], name=f"{op.lower()}{k}", **attrs))
        y = f"y{k}"
        if v.direction == "reverse":  # match Keras go_backwards: output in processing order
            for name, value in (("s", -1), ("e", np.iinfo(np.int64).min), ("a", 0), ("st", -1)):
                inits.append(numpy_helper.from_array(np.array([value], np.int64), f"{name}{k}"))
            nodes.append(helper.make_node("Slice", [y, f"s{k}", f"e{k}", f"a{k}", f"st{k}"], [f"yr{k}"]))
            y = f"yr{k}"
        out = f"x{k + 1}"
        if directions == 1:
            nodes.append(helper.make_node("Squeeze", [y, "axis1"], [out]))
        elif v.merge == "concat":
            nodes.append(helper.make_node("Transpose", [y], [f"t{k}"], perm=[0, 2, 1, 3]))
            nodes.append(helper.make_node("Reshape", [f"t{k}", "flat"], [out]))
        else:
            reduce = {"sum": "ReduceSum", "mul": "ReduceProd", "ave": "ReduceMean"}[v.merge]
            nodes.append(helper.make_node(reduce, [y, "axis1"], [out], keepdims=0))
        width = hidden * (2 if directions == 2 and v.merge == "concat" else 1)
    nodes.append(helper.make_node("Transpose", [f"x{v.layers}"], ["output"], perm=[1, 0, 2]))
    elem = TensorProto.FLOAT if v.dtype == "float32" else TensorProto.DOUBLE
    graph = helper.make_graph(
        nodes,
        "native",
        [helper.make_tensor_value_info("input", elem, None)],
        [helper.make_tensor_value_info("output", elem, None)],
        inits,
    )
    return helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", 18)])


def onnx_run(model: Any, x: np.ndarray) -> np.ndarray:
    """onnxruntime; float64 on ONNX's own reference evaluator (onnxruntime has no float64
    LSTM/GRU/RNN kernels; the float64 variants use no attribute the evaluator ignores)."""
    if x.dtype == np.float64:
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})[0]
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: x})[0]


NATIVE = {
    "torch": (torch_native, torch_run, "torch"),
    "keras": (keras_native, keras_run, "keras"),
    "onnx": (onnx_native, onnx_run, "onnxruntime"),
}


def inputs(v: Variant, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (3, 6, v.input_size)).astype(v.dtype)


# -- files of each registry format, as a user handles them ---------------------------------------
def _run_keras_file(path: str, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.saving.load_model(path)(x.astype(np.float32)), dtype=np.float64)


def _run_onnx_file(path: str, x: np.ndarray) -> np.ndarray:
    """onnxruntime on the file itself (its external data beside it); float64 and bfloat16
    models, which onnxruntime has no kernels for, as lstmconv runs them."""
    import onnx

    elem = onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        from lstmconv.formats.onnx import live

        return np.asarray(live.run(live.load_written(path), x), dtype=np.float64)
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": x.astype(np.float32)})[0], dtype=np.float64)


def _run_state_dict(path: str, x: np.ndarray) -> np.ndarray:
    import lstmconv
    from lstmconv.formats.torch import live

    return np.asarray(live.run(lstmconv.to_torch(lstmconv.read(path)), x), dtype=np.float64)


def _run_reference(path: str, x: np.ndarray) -> np.ndarray:
    import lstmconv

    return lstmconv.reference.run(lstmconv.read(path), x)


#: What each format can hold; property strategies draw only that (refusals are tested elsewhere).
EVERYTHING = {
    "proj": True,
    "onnx_only": True,
    "reset_before": True,
    "reverse": True,
    "merges": True,
    "aligned_reverse": True,
}
_STATE_DICT = {**EVERYTHING, "onnx_only": False, "reset_before": False, "reverse": False, "merges": False}


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """How the tests handle files of one registry format."""

    #: The ending the tests write (None: a read-only format).
    ending: str | None
    #: What running a written file needs (modules for ``conftest.require``).
    needs: tuple[str, ...]
    #: The written file run as a user would: path, input -> output (float64).
    run: Any
    #: What the format holds, for the property strategies (None: read-only).
    holds: dict[str, bool] | None
    #: Hypothesis examples of the write-then-read round trip.
    examples: int = 0
    #: Whether reading back gives every tensor exactly (Keras merges LSTM biases).
    exact: bool = True


FILES: dict[str, FileFormat] = {
    "npz": FileFormat(".npz", (), _run_reference, EVERYTHING, examples=40),
    "safetensors": FileFormat(".safetensors", ("torch",), _run_state_dict, _STATE_DICT, examples=40),
    "onnx": FileFormat(".onnx", ("onnxruntime",), _run_onnx_file, {**EVERYTHING, "proj": False}, examples=40),
    "torch": FileFormat(".pt", ("torch",), _run_state_dict, _STATE_DICT, examples=25),
    "keras": FileFormat(
        ".keras",
        ("tensorflow", "keras"),
        _run_keras_file,
        {**EVERYTHING, "proj": False, "onnx_only": False, "aligned_reverse": False},
        examples=8,
        exact=False,
    ),
    "tf-checkpoint": FileFormat(None, (), None, None),
    "savedmodel": FileFormat(None, (), None, None),
    "tflite": FileFormat(None, (), None, None),
}


def writable() -> list[str]:
    """The registry's formats that write files, in registry order."""
    from lstmconv import registry

    return [fmt.name for fmt in registry.list_formats() if not fmt.read_only]
