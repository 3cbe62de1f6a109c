"""ONNX graphs as the whole model (#16): the plain layers around the recurrent nodes read from
torch.onnx.export's graphs (both exporters) and tf2onnx's, written by to_onnx, and a source
ported into an exported graph (port_into, run_whole, write_like), each run in onnxruntime
against the framework's own forward pass."""

from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
import pytest

import lstmconv
from lstmconv import porting
from lstmconv.errors import LstmconvWarning, PortMismatchError
from lstmconv.plain import PlainKind, PlainLayer

ATOL = 2e-5
VOCAB, STEPS, BATCH = 50, 7, 3


def _net(torch, *, eps: float = 1e-5, norm_name: str = "norm", seed: int = 0):
    """Embedding → 2-layer bidirectional LSTM → LayerNorm → Linear (softmax), weights random
    per tensor (the norm's too, so that a wrong scale shows)."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, 8)
            self.lstm = torch.nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
            setattr(self, norm_name, torch.nn.LayerNorm(12, eps=eps))
            self.fc = torch.nn.Linear(12, 5)

        def forward(self, ids):
            y, _ = self.lstm(self.emb(ids))
            return torch.softmax(self.fc(getattr(self, norm_name)(y)), dim=-1)

    torch.manual_seed(seed)
    net = Net().eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.uniform_(-0.8, 0.8)
    return net


def _export(torch, module, x, dynamo: bool):
    import onnx

    if dynamo:
        from conftest import require

        require("onnxscript")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.onnx.export(
            module,
            (torch.from_numpy(x),),
            f=None if dynamo else buffer,
            dynamo=dynamo,
            input_names=["ids"],
            # dynamo's graphs keep the traced sizes: lstmconv does not read its dynamic-shape merge
            dynamic_axes=None if dynamo else {"ids": {0: "batch", 1: "time"}},
        )
    return exported.model_proto if dynamo else onnx.load_from_string(buffer.getvalue())


def _ids(seed: int = 0, batch: int = BATCH) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, STEPS)).astype(np.int64)


def _torch_out(torch, module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_torch_export_reads_its_plain_layers_in_model_order(torch, ort, dynamo: bool) -> None:
    net = _net(torch)
    model = lstmconv.read(_export(torch, net, _ids(), dynamo))
    kinds = [getattr(layer.kind, "value", layer.kind) for layer in model.everything()]
    assert kinds == ["embedding", "lstm", "lstm", "layer_norm", "dense"]
    emb, norm, fc = model.around
    assert (emb.name, norm.name, fc.name) == ("emb", "norm", "fc")
    np.testing.assert_array_equal(emb.tensors["weight"], net.emb.weight.detach().numpy())
    np.testing.assert_array_equal(fc.tensors["weight"], net.fc.weight.detach().numpy())  # (out, in)
    np.testing.assert_array_equal(fc.tensors["bias"], net.fc.bias.detach().numpy())
    np.testing.assert_array_equal(norm.tensors["weight"], net.norm.weight.detach().numpy())
    assert norm.options["epsilon"] == 1e-5 and fc.options["activation"] == "softmax"
    assert model.skipped == ()
    # to_onnx writes the whole chain: it runs like the torch module
    x = _ids(1)
    gap = _gap(lstmconv.formats.onnx.live.run_whole(lstmconv.to_onnx(model), x), _torch_out(torch, net, x))
    print(f"to_onnx of the read model against torch: {gap:.2e}")
    assert gap < ATOL


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_onnx_source_ported_into_a_fresh_export_runs_like_it(torch, ort, dynamo: bool) -> None:
    from lstmconv.formats.onnx import live

    source_net, target_net = _net(torch, seed=0), _net(torch, seed=1)
    source = _export(torch, source_net, _ids(), dynamo)
    target = _export(torch, target_net, _ids(), dynamo)
    x = _ids(2, batch=BATCH if dynamo else 4)
    before = _gap(live.run_whole(target, x), live.run_whole(source, x))
    assert before > 1e-2  # the two exports differ before the port
    pairs = porting.pair(lstmconv.read(source), lstmconv.read(target))
    assert len(pairs) == 5
    live.port_into(target, lstmconv.read(source), pairs)
    gap = _gap(live.run_whole(target, x), live.run_whole(source, x))
    to_torch = _gap(live.run_whole(target, x), _torch_out(torch, source_net, x))
    print(f"ported ONNX against the source: {gap:.2e}, against torch: {to_torch:.2e} (before: {before:.2e})")
    assert gap < ATOL and to_torch < ATOL


def test_write_like_fills_an_onnx_template_keeping_its_layout(torch, ort, tmp_path) -> None:
    import onnx

    from lstmconv.formats.onnx import live

    source_net = _net(torch, seed=0)
    source = lstmconv.read(_export(torch, source_net, _ids(), False))
    template = tmp_path / "template.onnx"
    onnx.save_model(
        _export(torch, _net(torch, seed=3), _ids(), False),
        str(template),
        save_as_external_data=True,
        location="template.onnx.data",
        size_threshold=0,
    )
    dest = tmp_path / "out" / "ported.onnx"
    dest.parent.mkdir()
    live.write_like(source, str(template), porting.pair(source, lstmconv.read(str(template))), str(dest))
    x = _ids(4)
    gap = _gap(live.run_whole(str(dest), x), _torch_out(torch, source_net, x))
    print(f"write_like's .onnx against torch: {gap:.2e}")
    assert gap < ATOL
    written, kept = onnx.load(str(dest)), onnx.load(str(template))
    shapes = [(t.name, tuple(t.dims), t.data_type) for t in written.graph.initializer]
    assert shapes == [(t.name, tuple(t.dims), t.data_type) for t in kept.graph.initializer]
    assert [n.op_type for n in written.graph.node] == [n.op_type for n in kept.graph.node]
    assert (dest.parent / "ported.onnx.data").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ported.onnx", "ported.onnx.data"]


def test_a_mismatch_names_both_layers(torch) -> None:
    source = lstmconv.read(_export(torch, _net(torch), _ids(), False))
    target = lstmconv.read(_export(torch, _net(torch, eps=1e-3, norm_name="ln"), _ids(), False))
    with pytest.raises(PortMismatchError, match=r"epsilon") as raised:
        porting.pair(source, target)
    assert '"ln"' in str(raised.value) and '"norm"' in str(raised.value)

    class NoNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, 8)
            self.lstm = torch.nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
            self.head = torch.nn.Linear(12, 5)

        def forward(self, ids):
            return self.head(self.lstm(self.emb(ids))[0])

    missing = lstmconv.read(_export(torch, NoNorm().eval(), _ids(), False))
    with pytest.raises(PortMismatchError) as raised:
        porting.pair(source, missing)
    text = str(raised.value)
    assert "norm" in text and "head" in text and "fc" in text


def test_conv_and_batch_norm_written_and_read_back_run_like_torch(torch, ort, tmp_path) -> None:
    """Both torch exporters fold an eval BatchNorm1d into the Conv before it; lstmconv writes it
    as a BatchNormalization node, reads it back, and the whole chain runs like torch's."""
    from lstmconv.formats.onnx import live

    class ConvNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(4, 6, 3, padding=2, dilation=2)
            self.bn = torch.nn.BatchNorm1d(6, eps=1e-3)
            self.lstm = torch.nn.LSTM(6, 5, batch_first=True)
            self.fc = torch.nn.Linear(5, 3)

        def forward(self, x):
            y = self.bn(torch.relu(self.conv(x.transpose(1, 2)))).transpose(1, 2)
            return torch.tanh(self.fc(self.lstm(y)[0]))

    torch.manual_seed(5)
    net = ConvNet().eval()
    with torch.no_grad():
        for tensor in [*net.parameters(), *net.buffers()]:
            if tensor.dtype.is_floating_point:
                tensor.uniform_(0.2, 0.9)
    x = np.random.default_rng(6).uniform(-1, 1, (3, 9, 4)).astype(np.float32)
    exported = lstmconv.read(_export_float(torch, net, x))
    conv = exported.around[0]
    assert conv.kind is PlainKind.CONV1D and conv.options["padding"] == 2 and conv.options["dilation"] == 2
    assert conv.options["activation"] == "relu"
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    bn = PlainLayer(
        PlainKind.BATCH_NORM,
        "bn",
        {
            "weight": state["bn.weight"],
            "bias": state["bn.bias"],
            "mean": state["bn.running_mean"],
            "var": state["bn.running_var"],
        },
        {"epsilon": 1e-3, "axis": 1},
    )
    fc = exported.around[-1]
    assert fc.options["activation"] == "tanh"
    conv_raw = conv.replace(tensors={"weight": state["conv.weight"], "bias": state["conv.bias"]})
    model = lstmconv.Model(
        exported.layers,
        around=(conv_raw, bn, fc),
        order=(conv.name, "bn", exported.layers[0].name, fc.name),
        links=((conv.name, "bn"), ("bn", exported.layers[0].name), (exported.layers[0].name, fc.name)),
    )
    path = tmp_path / "convnet.onnx"
    lstmconv.write(model, str(path))
    gap = _gap(live.run_whole(str(path), x), _torch_out(torch, net, x))
    print(f"Conv1D + BatchNorm + LSTM + Dense written by lstmconv against torch: {gap:.2e}")
    assert gap < ATOL
    back = lstmconv.read(str(path))
    assert [layer.name for layer in back.everything()] == list(model.order)
    read_bn = back.around[1]
    assert read_bn.kind is PlainKind.BATCH_NORM and read_bn.options["epsilon"] == 1e-3
    np.testing.assert_array_equal(read_bn.tensors["var"], state["bn.running_var"])


def _export_float(torch, module, x):
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x),), buffer, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def test_an_unknown_op_ends_the_plain_part_and_what_follows_is_skipped(torch) -> None:
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, 8)
            self.lstm = torch.nn.LSTM(8, 6, batch_first=True)
            self.fc = torch.nn.Linear(6, 4)

        def forward(self, ids):
            y = self.lstm(self.emb(ids))[0]
            return self.fc(torch.cumsum(y, dim=1))  # an op lstmconv does not read as a layer

    model = lstmconv.read(_export(torch, Odd().eval(), _ids(), False))
    assert [layer.name for layer in model.around] == ["emb"]
    skipped = {tensor for item in model.skipped for tensor, _ in item.tensors}
    assert "fc.bias" in skipped


def test_tf2onnx_embedding_lstm_dense_reads_like_keras(ort) -> None:
    """tf2onnx's Keras Embedding → LSTM → Dense(softmax) (fixtures/tf2onnx/plain.onnx, made by
    scripts/make_tf2onnx_plain.py): the Gather behind tf2onnx's wrap of negative ids is the
    Embedding, MatMul + Add + Softmax the Dense; the read model, written by to_onnx, gives Keras's
    outputs at the last step (the Keras LSTM returns the last step only)."""
    from pathlib import Path

    from lstmconv.formats.onnx import live

    folder = Path(__file__).resolve().parent.parent / "fixtures" / "tf2onnx"
    stored = np.load(folder / "plain.io.npz")
    model = lstmconv.read(str(folder / "plain.onnx"))
    emb, fc = model.around
    assert [layer.name for layer in model.everything()] == [emb.name, model.layers[0].name, fc.name]
    np.testing.assert_array_equal(emb.tensors["weight"], stored["emb.0"])
    np.testing.assert_array_equal(fc.tensors["weight"], stored["fc.0"].T)
    np.testing.assert_array_equal(fc.tensors["bias"], stored["fc.1"])
    assert fc.options["activation"] == "softmax" and model.skipped == ()
    original = _gap(live.run_whole(str(folder / "plain.onnx"), stored["x"]), stored["y"])
    written = _gap(live.run_whole(lstmconv.to_onnx(model), stored["x"])[:, -1], stored["y"])
    print(f"tf2onnx graph against Keras: {original:.2e}; lstmconv's to_onnx at the last step: {written:.2e}")
    assert original < ATOL and written < ATOL


def test_tf2onnx_layer_norm_as_elementary_ops_reads_and_takes_a_port(ort) -> None:
    """tf2onnx writes a Keras LayerNormalization as GlobalAveragePool, Sub, Mul, Sqrt,
    Reciprocal... (fixtures/tf2onnx/plain_norm.onnx) and a Dense on a sequence as Tensordot's
    Reshape → MatMul → Reshape: both read as one layer, with Keras's weights and epsilon, and
    other weights ported into that graph run like lstmconv's own graph of them."""
    from pathlib import Path

    import onnx

    from lstmconv.formats.onnx import live

    folder = Path(__file__).resolve().parent.parent / "fixtures" / "tf2onnx"
    stored = np.load(folder / "plain_norm.io.npz")
    model = lstmconv.read(str(folder / "plain_norm.onnx"))
    kinds = [getattr(layer.kind, "value", layer.kind) for layer in model.everything()]
    assert kinds == ["embedding", "lstm", "layer_norm", "dense"] and model.skipped == ()
    _, norm, fc = model.around
    assert norm.options["epsilon"] == 1e-3 and fc.options["activation"] == "relu"
    np.testing.assert_array_equal(norm.tensors["weight"], stored["norm.0"])
    np.testing.assert_array_equal(norm.tensors["bias"], stored["norm.1"])
    np.testing.assert_array_equal(fc.tensors["weight"], stored["fc.0"].T)
    read_gap = _gap(live.run_whole(lstmconv.to_onnx(model), stored["x"]), stored["y"])
    rng = np.random.default_rng(11)
    other = dataclasses.replace(
        model,
        around=tuple(
            layer.replace(
                tensors={k: rng.uniform(0.3, 1.2, v.shape).astype(v.dtype) for k, v in layer.items()}
            )
            for layer in model.around
        ),
    )
    target = onnx.load(str(folder / "plain_norm.onnx"))
    live.port_into(target, other, porting.pair(other, lstmconv.read(target)))
    ported = live.run_whole(target, stored["x"])
    port_gap = _gap(ported, live.run_whole(lstmconv.to_onnx(other), stored["x"]))
    print(
        f"tf2onnx LayerNorm model read, against Keras: {read_gap:.2e}; ported into its graph: {port_gap:.2e}"
    )
    assert read_gap < ATOL and port_gap < ATOL
    assert _gap(ported, stored["y"]) > 1e-2  # the port changed the numbers


def test_torch_layer_norm_below_opset_17_reads_as_one_layer(torch, ort) -> None:
    import onnx

    from lstmconv.formats.onnx import live

    net = _net(torch, eps=1e-3)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.from_numpy(_ids()),), buffer, dynamo=False, opset_version=16)
    target = onnx.load_from_string(buffer.getvalue())
    assert "LayerNormalization" not in {node.op_type for node in target.graph.node}
    model = lstmconv.read(target)
    assert [layer.name for layer in model.around] == ["emb", "norm", "fc"]
    assert model.around[1].options["epsilon"] == 1e-3 and model.skipped == ()
    source_net = _net(torch, eps=1e-3, seed=7)
    source = lstmconv.read(_export(torch, source_net, _ids(), False))
    live.port_into(target, source, porting.pair(source, model))
    x = _ids(9, batch=BATCH)
    gap = _gap(live.run_whole(target, x), _torch_out(torch, source_net, x))
    print(f"opset 16 export ported from an opset 17 one, against torch: {gap:.2e}")
    assert gap < ATOL


# -- across families: lstmconv.port and convert(like=) with an ONNX side ---------------------------
def test_port_a_torch_module_into_an_onnx_export(torch, ort) -> None:
    from lstmconv.formats.onnx import live

    source_net = _net(torch, seed=0)
    target = _export(torch, _net(torch, seed=1), _ids(), False)
    with pytest.warns(
        LstmconvWarning, match=r'target layer "fc" .* and source layer "fc" .* differ in activation'
    ):
        report = lstmconv.port(source_net, target)  # torch applies the softmax in its forward
    whole = [row for row in report.checks if row.layer == "(whole model)"]
    assert report.ok and whole, report
    x = _ids(12)
    gap = _gap(live.run_whole(target, x), _torch_out(torch, source_net, x))
    print(f"torch module ported into an ONNX export: {gap:.2e}; report's whole row {whole[0].max_abs:.2e}")
    assert gap < ATOL


def test_port_an_onnx_file_into_a_torch_module(torch, ort, tmp_path) -> None:
    import onnx

    source_net = _net(torch, seed=2)
    path = tmp_path / "source.onnx"
    onnx.save_model(_export(torch, source_net, _ids(), False), str(path))
    target_net = _net(torch, seed=4)
    with pytest.warns(LstmconvWarning, match="differ in activation: linear against softmax"):
        report = lstmconv.port(str(path), target_net)
    assert report.ok and any(row.layer == "(whole model)" for row in report.checks), report
    x = _ids(13)
    gap = _gap(_torch_out(torch, target_net, x), _torch_out(torch, source_net, x))
    print(f".onnx file ported into a torch module: {gap:.2e}")
    assert gap < ATOL


def test_convert_like_an_onnx_template(torch, ort, tmp_path) -> None:
    import onnx

    from lstmconv.formats.onnx import live

    source_net = _net(torch, seed=5)
    template = tmp_path / "template.onnx"
    onnx.save_model(_export(torch, _net(torch, seed=6), _ids(), False), str(template))
    dest = tmp_path / "ported.onnx"
    with pytest.warns(LstmconvWarning, match="differ in activation: softmax against linear"):
        report = lstmconv.convert(source_net, str(dest), like=str(template))
    assert report is not None and report.ok, report
    x = _ids(14)
    gap = _gap(live.run_whole(str(dest), x), _torch_out(torch, source_net, x))
    print(f"convert(torch module, like=.onnx): {gap:.2e}")
    assert gap < ATOL


def test_plain_layers_the_source_does_not_link_are_named_as_not_written() -> None:
    """A state_dict's keys do not say how its plain layers connect (the Model's links name
    none): to_onnx writes the recurrent layers alone and names the plain ones."""
    from helpers import random_layer

    from lstmconv import Kind, Model

    rng = np.random.default_rng(22)
    lstm = random_layer(rng, Kind.LSTM, 3, 4, name="lstm")
    head = PlainLayer(PlainKind.DENSE, "head", {"weight": rng.standard_normal((2, 4)).astype(np.float32)})
    model = Model((lstm,), links=(), around=(head,), order=("lstm", "head"))
    with pytest.warns(
        LstmconvWarning, match=r'"head" are not written \(the source does not say that "lstm" feeds'
    ):
        proto = lstmconv.to_onnx(model)
    assert "MatMul" not in {node.op_type for node in proto.graph.node}


def test_plain_layers_of_a_model_that_is_no_one_chain_are_named_as_not_written(ort) -> None:
    from helpers import random_layer

    from lstmconv import Kind, Model

    rng = np.random.default_rng(21)
    first, second = random_layer(rng, Kind.LSTM, 3, 4, name="a"), random_layer(rng, Kind.GRU, 4, 5, name="b")
    head = PlainLayer(PlainKind.DENSE, "head", {"weight": rng.standard_normal((2, 5)).astype(np.float32)})
    model = Model((first, second), links=(), around=(head,), order=("a", "b", "head"))
    with pytest.warns(
        LstmconvWarning, match=r'plain layers "head" are not written \(recurrent layers "a" and "b"'
    ):
        proto = lstmconv.to_onnx(model)
    assert {node.op_type for node in proto.graph.node} >= {"LSTM", "GRU"}
    assert "MatMul" not in {node.op_type for node in proto.graph.node}


def test_an_onnx_export_through_npz_keeps_its_plain_layers(torch, ort, tmp_path) -> None:
    net = _net(torch, seed=8)
    path = tmp_path / "model.npz"
    lstmconv.write(lstmconv.read(_export(torch, net, _ids(), False)), str(path))
    back = lstmconv.read(str(path))
    assert [layer.name for layer in back.around] == ["emb", "norm", "fc"]
    x = _ids(15)
    gap = _gap(lstmconv.formats.onnx.live.run_whole(lstmconv.to_onnx(back), x), _torch_out(torch, net, x))
    print(f"ONNX export → .npz → to_onnx against torch: {gap:.2e}")
    assert gap < ATOL


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_a_last_step_classifier_reads_its_head_and_takes_a_port(torch, ort, dynamo: bool) -> None:
    """``fc(y[:, -1])``: the step selection (a Gather off the feature axis) passes, the Gemm
    after it is the Dense."""
    from lstmconv.formats.onnx import live

    class Last(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, 4)
            self.lstm = torch.nn.LSTM(4, 6, batch_first=True)
            self.fc = torch.nn.Linear(6, 2)

        def forward(self, ids):
            return self.fc(self.lstm(self.emb(ids))[0][:, -1])

    def made(seed: int):
        torch.manual_seed(seed)
        return Last().eval()

    source_net, target = made(0), _export(torch, made(1), _ids(), dynamo)
    model = lstmconv.read(target)
    assert [layer.name for layer in model.around] == ["emb", "fc"] and model.skipped == ()
    assert model.around[1].kind is PlainKind.DENSE
    source = lstmconv.read(_export(torch, source_net, _ids(), dynamo))
    live.port_into(target, source, porting.pair(source, model))
    x = _ids(16)
    gap = _gap(live.run_whole(target, x), _torch_out(torch, source_net, x))
    print(f"last-step classifier ported: {gap:.2e}")
    assert gap < ATOL


def test_tf2onnx_conv1d_as_a_one_row_conv_reads_and_takes_a_port(ort) -> None:
    """tf2onnx writes a Keras Conv1D as Unsqueeze → 2-D Conv with a (out, in, 1, k) kernel →
    Squeeze → Add of a (1, out, 1) bias (fixtures/tf2onnx/plain_conv.onnx): read as one
    Conv1D with Keras's (k, in, out) kernel in (out, in, k), its stride and activation."""
    from pathlib import Path

    import onnx

    from lstmconv.formats.onnx import live

    folder = Path(__file__).resolve().parent.parent / "fixtures" / "tf2onnx"
    stored = np.load(folder / "plain_conv.io.npz")
    model = lstmconv.read(str(folder / "plain_conv.onnx"))
    conv, fc = model.around
    assert conv.kind is PlainKind.CONV1D and model.skipped == ()
    assert (conv.options["stride"], conv.options["padding"], conv.options["activation"]) == (
        2,
        "valid",
        "relu",
    )
    np.testing.assert_array_equal(conv.tensors["weight"], stored["conv.0"].transpose(2, 1, 0))
    np.testing.assert_array_equal(conv.tensors["bias"], stored["conv.1"])
    np.testing.assert_array_equal(fc.tensors["weight"], stored["fc.0"].T)
    read_gap = _gap(live.run_whole(lstmconv.to_onnx(model), stored["x"]), stored["y"])
    rng = np.random.default_rng(12)
    other = dataclasses.replace(
        model,
        around=tuple(
            layer.replace(tensors={k: rng.uniform(-1, 1, v.shape).astype(v.dtype) for k, v in layer.items()})
            for layer in model.around
        ),
    )
    target = onnx.load(str(folder / "plain_conv.onnx"))
    live.port_into(target, other, porting.pair(other, lstmconv.read(target)))
    ported = live.run_whole(target, stored["x"])
    port_gap = _gap(ported, live.run_whole(lstmconv.to_onnx(other), stored["x"]))
    print(f"tf2onnx Conv1D model read, against Keras: {read_gap:.2e}; ported into its graph: {port_gap:.2e}")
    assert read_gap < ATOL and port_gap < ATOL
    assert _gap(ported, stored["y"]) > 1e-2


def test_index_arithmetic_doubling_into_an_embedding_is_walked_once_per_value() -> None:
    """ids → Add(a, a) forty times → Gather: 2^40 paths through 40 values; each value is
    looked at once (a hostile graph must not make the walk exponential). The indices are not
    the ids (ids · 2^40), so the table is no Embedding of them: it is left as skipped."""
    from onnx import TensorProto, helper, numpy_helper

    from lstmconv.formats.onnx import live

    rng = np.random.default_rng(40)
    nodes, value = [helper.make_node("Add", ["ids", "ids"], ["a0"])], "a0"
    for index in range(1, 40):
        nodes.append(helper.make_node("Add", [value, value], [f"a{index}"]))
        value = f"a{index}"
    nodes.append(helper.make_node("Cast", ["ids"], ["ids_float"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Gather", ["table", value], ["embedded"]))
    nodes.append(helper.make_node("Transpose", ["embedded"], ["steps"], perm=[1, 0, 2]))
    nodes.append(helper.make_node("LSTM", ["steps", "W", "R"], ["y"], hidden_size=2))
    weights = [
        numpy_helper.from_array(rng.standard_normal((9, 3)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.standard_normal((1, 8, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((1, 8, 2)).astype(np.float32), "R"),
    ]
    graph = helper.make_graph(
        nodes,
        "doubling",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        weights,
    )
    model = live.read(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert len(model.layers) == 1
    assert model.around == ()
    assert [tensor for item in model.skipped for tensor, _ in item.tensors] == ["table"]


@pytest.mark.parametrize(
    "activation",
    [
        "relu",
        "tanh",
        "sigmoid",
        "softmax",
        "log_softmax",
        "elu",
        "selu",
        "softplus",
        "softsign",
        "exponential",
        "leaky_relu",
        "silu",
    ],
)
def test_a_dense_activation_is_written_as_keras_computes_it(keras, ort, activation: str) -> None:
    from helpers import random_layer

    from lstmconv import Kind, Model
    from lstmconv.formats.onnx import live

    rng = np.random.default_rng(50)
    lstm = random_layer(rng, Kind.LSTM, 3, 4, name="lstm")
    kernel = rng.uniform(-1.5, 1.5, (4, 5)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, 5).astype(np.float32)
    head = PlainLayer(PlainKind.DENSE, "head", {"weight": kernel.T, "bias": bias}, {"activation": activation})
    model = Model((lstm,), around=(head,), order=("lstm", "head"), links=(("lstm", "head"),))
    x = rng.uniform(-1, 1, (2, 6, 3)).astype(np.float32)
    dense = keras.layers.Dense(5, activation=activation)
    dense.build((None, 6, 4))
    dense.set_weights([kernel, bias])
    expected = np.asarray(dense(lstmconv.reference.run(Model((lstm,)), x).astype(np.float32)))
    gap = _gap(live.run_whole(lstmconv.to_onnx(model), x), expected)
    print(f"{activation}: {gap:.2e}")
    assert gap < ATOL


@pytest.mark.parametrize("activation", ["log_softmax", "elu", "selu", "softplus", "leaky_relu", "silu"])
def test_a_written_dense_activation_reads_back(activation: str) -> None:
    from helpers import random_layer

    from lstmconv import Kind, Model

    rng = np.random.default_rng(51)
    lstm = random_layer(rng, Kind.LSTM, 3, 4, name="lstm")
    head = PlainLayer(
        PlainKind.DENSE,
        "head",
        {"weight": rng.standard_normal((5, 4)).astype(np.float32)},
        {"activation": activation},
    )
    back = lstmconv.read(
        lstmconv.to_onnx(Model((lstm,), around=(head,), order=("lstm", "head"), links=(("lstm", "head"),)))
    )
    assert [(layer.name, layer.options["activation"]) for layer in back.around] == [("head", activation)]


def test_an_activation_other_than_keras_s_is_not_read_as_it() -> None:
    """ONNX's LeakyRelu defaults to slope 0.01, Keras's leaky_relu to 0.2: a graph with 0.01
    holds no Keras leaky_relu, so the Dense is linear and the LeakyRelu ends the plain part."""
    from helpers import random_layer

    from lstmconv import Kind, Model

    rng = np.random.default_rng(52)
    lstm = random_layer(rng, Kind.LSTM, 3, 4, name="lstm")
    head = PlainLayer(
        PlainKind.DENSE,
        "head",
        {"weight": rng.standard_normal((5, 4)).astype(np.float32)},
        {"activation": "leaky_relu"},
    )
    proto = lstmconv.to_onnx(
        Model((lstm,), around=(head,), order=("lstm", "head"), links=(("lstm", "head"),))
    )
    (leaky,) = [node for node in proto.graph.node if node.op_type == "LeakyRelu"]
    del leaky.attribute[:]  # ONNX's default slope
    back = lstmconv.read(proto)
    assert [(layer.name, layer.options["activation"]) for layer in back.around] == [("head", "linear")]


# -- Keras ↔ ONNX (both families' plain layers) -------------------------------------------------
def _keras_net(keras, seed: int):
    """Keras Embedding → Bidirectional(LSTM) → LSTM → LayerNormalization(1e-5) → Dense."""
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8, name="emb")(ids)
    x = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True), name="bi")(x)
    x = keras.layers.LSTM(6, return_sequences=True, name="l2")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")(x)
    model = keras.Model(ids, keras.layers.Dense(5, name="fc")(x))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in layer.get_weights()])
    return model


def _torch_like_keras(torch):
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, 8)
            self.bi = torch.nn.LSTM(8, 6, bidirectional=True, batch_first=True)
            self.l2 = torch.nn.LSTM(12, 6, batch_first=True)
            self.norm = torch.nn.LayerNorm(6)
            self.fc = torch.nn.Linear(6, 5)

        def forward(self, ids):
            return self.fc(self.norm(self.l2(self.bi(self.emb(ids))[0])[0]))

    return Net().eval()


def test_port_a_keras_model_into_an_onnx_export_and_back(torch, keras, ort) -> None:
    from lstmconv.formats.onnx import live

    source = _keras_net(keras, seed=0)
    target = _export(torch, _torch_like_keras(torch), _ids(), False)
    report = lstmconv.port(source, target)
    assert report.ok and any(row.layer == "(whole model)" for row in report.checks), report
    x = _ids(17)
    expected = np.asarray(source(x.astype("int32")))
    gap = _gap(live.run_whole(target, x), expected)
    back = _keras_net(keras, seed=1)
    assert _gap(np.asarray(back(x.astype("int32"))), expected) > 1e-2
    report_back = lstmconv.port(target, back)
    assert report_back.ok, report_back
    gap_back = _gap(np.asarray(back(x.astype("int32"))), expected)
    print(f"Keras → ONNX export: {gap:.2e}; that ONNX → a fresh Keras model: {gap_back:.2e}")
    assert gap < ATOL and gap_back < ATOL


def test_a_keras_norm_epsilon_differing_from_the_onnx_export_is_refused_naming_both(torch, keras) -> None:
    source = _keras_net(keras, seed=0)
    keras_default = keras.layers.LayerNormalization()  # Keras's default epsilon, 1e-3
    swapped = keras.Model(source.input, source.get_layer("fc")(keras_default(source.get_layer("l2").output)))
    keras_default.set_weights(source.get_layer("norm").get_weights())
    target = _export(torch, _torch_like_keras(torch), _ids(), False)
    with pytest.raises(PortMismatchError, match=r"epsilon: 1e-05 against 0\.001") as raised:
        lstmconv.port(swapped, target)
    assert f'"{keras_default.name}"' in str(raised.value) and '"norm"' in str(raised.value)
