"""Whole PyTorch models (#16): plain layers read from live modules and state_dicts, written into
state_dicts and to_torch's module, ports into a user's module and convert --like, each checked
against torch's own forward pass (and Keras's, for the Keras ↔ PyTorch ports)."""

from __future__ import annotations

import dataclasses
import logging
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import lstmconv
from lstmconv import PortMismatchError
from lstmconv.cli import main
from lstmconv.plain import PlainKind

VOCAB, DIM, HIDDEN, OUT = 30, 8, 6, 4
#: Float32 end to end through two recurrent levels, a norm and a head.
TOLERANCE = 2e-5


def _randomized(module: Any, seed: int) -> Any:
    """Every parameter and running statistic drawn at random (a different number per gate)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]:
            tensor.copy_(torch.rand(tensor.shape, generator=generator) - 0.5)
        for name, buffer in module.named_buffers():
            if name.endswith("running_var"):
                buffer.abs_().add_(0.5)
    return module


def issue_module(
    torch: ModuleType,
    *,
    eps: float = 1e-5,
    names: tuple[str, ...] = ("emb", "rnn", "norm", "head"),
    width: int = OUT,
) -> Any:
    """Embedding → 2-layer bidirectional LSTM → LayerNorm → Linear, under the given names."""
    nn = torch.nn
    emb, rnn, norm, head = names

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.add_module(emb, nn.Embedding(VOCAB, DIM))
            self.add_module(rnn, nn.LSTM(DIM, HIDDEN, num_layers=2, bidirectional=True, batch_first=True))
            self.add_module(norm, nn.LayerNorm(2 * HIDDEN, eps=eps))
            self.add_module(head, nn.Linear(2 * HIDDEN, width))

        def forward(self, ids: Any) -> Any:
            x = getattr(self, emb)(ids)
            x, _ = getattr(self, rnn)(x)
            return getattr(self, head)(getattr(self, norm)(x))

    return Net()


def _ids(seed: int = 0, shape: tuple[int, int] = (3, 9)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, shape).astype(np.int64)


def _run(torch: ModuleType, module: Any, x: np.ndarray) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return module(torch.as_tensor(x)).numpy()


def test_live_module_reads_its_plain_layers_in_registration_order(torch) -> None:
    net = _randomized(issue_module(torch, eps=1e-3), 0)
    model = lstmconv.read(net)
    assert model.order == ("emb", "rnn.l0", "rnn.l1", "norm", "head")
    assert not model.skipped
    kinds = {layer.name: layer.kind for layer in model.around}
    assert kinds == {"emb": PlainKind.EMBEDDING, "norm": PlainKind.LAYER_NORM, "head": PlainKind.DENSE}
    norm = next(layer for layer in model.around if layer.name == "norm")
    assert norm.options["epsilon"] == pytest.approx(1e-3)
    np.testing.assert_array_equal(norm.tensors["weight"], net.norm.weight.detach().numpy())
    head = next(layer for layer in model.around if layer.name == "head")
    np.testing.assert_array_equal(head.tensors["weight"], net.head.weight.detach().numpy())  # (out, in)


def _linked(model: lstmconv.Model) -> lstmconv.Model:
    """``model`` with every computing layer linked to the next, as a Keras config or an ONNX
    graph says it (a module's registration order does not)."""
    from lstmconv.porting import weighted

    names = [layer.name for layer in weighted(model)]
    return dataclasses.replace(model, links=tuple(zip(names, names[1:])))


def test_to_torch_runs_the_whole_model_as_the_module_does_where_the_links_say_so(torch) -> None:
    net = _randomized(issue_module(torch, eps=1e-3), 1)
    built = lstmconv.to_torch(_linked(lstmconv.read(net)))
    x = _ids(1)
    gap = np.abs(_run(torch, built, x) - _run(torch, net, x)).max()
    print(f"to_torch end to end: max |error| {gap:.3g}")
    assert gap <= TOLERANCE
    again = lstmconv.read(built)  # lstmconv's own module runs its children in order: linked
    assert [x.name for x in again.around] == ["emb", "norm", "head"] and not again.skipped
    gap = np.abs(_run(torch, lstmconv.to_torch(again), x) - _run(torch, net, x)).max()
    assert gap <= TOLERANCE


def test_to_torch_of_a_module_runs_its_recurrent_layers_alone_and_names_the_rest(torch, caplog) -> None:
    """A module's registration order says nothing of its forward: the plain layers are left out
    of to_torch's module (as .keras and .onnx leave them out), warned, and listed when it is read."""
    net = _randomized(issue_module(torch, eps=1e-3), 1)
    with caplog.at_level(logging.WARNING):
        built = lstmconv.to_torch(net)
    assert 'the plain layers "emb", "norm", "head" are not built into to_torch' in caplog.text
    assert 'the source does not say that "emb" feeds "rnn.l0"' in caplog.text
    assert sorted(name for name, _ in built.named_children()) == ["rnn_l0", "rnn_l1"]
    x = np.random.default_rng(1).uniform(-1, 1, (3, 9, DIM)).astype(np.float32)
    with torch.no_grad():
        expected = net.rnn(torch.as_tensor(x))[0].numpy()
    gap = np.abs(lstmconv.formats.torch.live.run(built, x) - expected).max()
    print(f"to_torch of the module's LSTM alone: max |error| {gap:.3g}")
    assert gap <= TOLERANCE
    assert {entry.name for entry in lstmconv.read(built).skipped} == {"emb", "norm", "head"}


def test_to_torch_of_a_state_dict_does_not_run_an_unlinked_linear(torch, tmp_path, caplog) -> None:
    nn = torch.nn
    net = nn.Sequential()
    net.add_module("lstm", nn.LSTM(5, 4, batch_first=True))
    net.add_module("fc", nn.Linear(4, 3))
    _randomized(net, 9)
    path = tmp_path / "sd.pt"
    torch.save(net.state_dict(), path)
    model = lstmconv.read(path)
    assert [x.name for x in model.around] == ["fc"]  # read as a Linear, but nothing links it
    with caplog.at_level(logging.WARNING):
        built = lstmconv.to_torch(model)
    assert 'the plain layers "fc" are not built into to_torch' in caplog.text
    assert [name for name, _ in built.named_children()] == ["lstm"]
    x = np.random.default_rng(9).uniform(-1, 1, (2, 7, 5)).astype(np.float32)
    with torch.no_grad():
        expected = net.lstm(torch.as_tensor(x))[0].numpy()
    out = lstmconv.formats.torch.live.run(built, x)
    assert out.shape == (2, 7, 4)  # the LSTM's output: the Linear (to 3) was not run
    assert np.abs(out - expected).max() <= TOLERANCE
    assert [entry.name for entry in lstmconv.read(built).skipped] == ["fc"]


def test_conv_and_batch_norm_read_and_built_channels_first(torch) -> None:
    nn = torch.nn

    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(5, 6, 3, padding=2, dilation=2)
            self.bn = nn.BatchNorm1d(6, eps=1e-3)
            self.drop = nn.Dropout(0.3)
            self.gru = nn.GRU(6, 4, batch_first=True)

        def forward(self, x: Any) -> Any:
            y = self.bn(self.conv(x.transpose(1, 2))).transpose(1, 2)
            return self.gru(self.drop(y))[0]

    net = _randomized(Conv(), 2).eval()
    model = lstmconv.read(net)
    conv = model.around[0]
    assert (conv.kind, conv.options["padding"], conv.options["dilation"]) == (PlainKind.CONV1D, 2, 2)
    bn = model.around[1]
    assert bn.kind is PlainKind.BATCH_NORM and bn.options["epsilon"] == pytest.approx(1e-3)
    np.testing.assert_array_equal(bn.tensors["var"], net.bn.running_var.numpy())
    assert model.around[2].kind is PlainKind.DROPOUT
    x = np.random.default_rng(2).uniform(-1, 1, (2, 11, 5)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.as_tensor(x)).numpy()
    gap = np.abs(lstmconv.formats.torch.live.run(lstmconv.to_torch(_linked(model)), x) - expected).max()
    assert gap <= TOLERANCE


def test_state_dict_reads_what_its_keys_say_and_lists_the_rest(torch, tmp_path) -> None:
    path = tmp_path / "net.pt"
    torch.save(_randomized(issue_module(torch), 3).state_dict(), path)
    model = lstmconv.read(path)
    assert [layer.name for layer in model.around] == ["head"]  # weight + bias: a Linear
    assert {entry.name: entry.kind for entry in model.skipped} == {
        "emb": "Embedding or Linear(bias=False) (unknown kind)",
        "norm": "LayerNorm (epsilon unknown; pass epsilon=)",
    }
    told = lstmconv.read(path, epsilon=1e-5)
    assert [layer.name for layer in told.around] == ["norm", "head"]


def test_state_dict_read_like_a_module_takes_its_kinds_and_epsilon(torch, tmp_path, caplog) -> None:
    path = tmp_path / "net.pt"
    torch.save(_randomized(issue_module(torch), 4).state_dict(), path)
    target = lstmconv.read(issue_module(torch, eps=1e-3, names=("e", "r", "n", "h")))
    with caplog.at_level(logging.WARNING):
        model = lstmconv.read(path, like=target)
    assert model.order == ("emb", "rnn.l0", "rnn.l1", "norm", "head")
    assert next(x for x in model.around if x.name == "norm").options["epsilon"] == pytest.approx(1e-3)
    assert (
        'a state_dict holds no epsilon: "norm" (nn.LayerNorm) taken as epsilon=0.001, as "n"' in caplog.text
    )


def test_written_state_dicts_load_strictly_into_the_module(torch, tmp_path) -> None:
    from safetensors.torch import load_file

    net = _randomized(issue_module(torch), 5)
    x = _ids(5)
    for ending in (".pt", ".safetensors"):
        dest = tmp_path / f"net{ending}"
        lstmconv.convert(net, dest)
        state = torch.load(dest) if ending == ".pt" else load_file(dest)
        fresh = issue_module(torch)
        fresh.load_state_dict(state, strict=True)
        assert np.abs(_run(torch, fresh, x) - _run(torch, net, x)).max() == 0.0


def test_batch_norm_written_with_its_counter_and_an_odd_epsilon_warned(torch, tmp_path, caplog) -> None:
    nn = torch.nn
    net = nn.Sequential()
    net.add_module("bn", nn.BatchNorm1d(3, eps=1e-3))
    net.add_module("lstm", nn.LSTM(3, 2, batch_first=True))
    _randomized(net, 6)
    with caplog.at_level(logging.WARNING):
        lstmconv.convert(net, tmp_path / "bn.pt")
    state = torch.load(tmp_path / "bn.pt")
    assert state["bn.num_batches_tracked"].dtype == torch.int64
    np.testing.assert_array_equal(state["bn.running_mean"].numpy(), net.bn.running_mean.numpy())
    assert 'layer "bn" (batch_norm)' in caplog.text and "nn.BatchNorm1d(3, eps=0.001)" in caplog.text


def test_port_into_a_hand_written_module_end_to_end(torch) -> None:
    source = _randomized(issue_module(torch), 7)
    target = issue_module(torch, names=("embedding", "encoder", "ln", "classifier"))
    report = lstmconv.port(source, target)
    whole = report.to_dict()["whole_model"]
    print(report)
    assert report.ok and whole["ok"] and whole["max_abs"] <= TOLERANCE
    assert [c["layer"] for c in report.to_dict()["layers"]] == ["rnn.l0", "rnn.l1", "emb", "norm", "head"]
    x = _ids(7, (4, 12))
    gap = np.abs(_run(torch, target, x) - _run(torch, source, x)).max()
    print(f"torch → torch port end to end: max |error| {gap:.3g}")
    assert gap <= TOLERANCE


def test_a_missing_layer_is_refused_naming_both_sides_and_nothing_changes(torch) -> None:
    source = _randomized(issue_module(torch), 8)
    nn = torch.nn
    target = nn.Sequential()
    target.add_module("embedding", nn.Embedding(VOCAB, DIM))
    target.add_module("lstm", nn.LSTM(DIM, HIDDEN, num_layers=2, bidirectional=True, batch_first=True))
    target.add_module("fc", nn.Linear(2 * HIDDEN, OUT))
    before = target.fc.weight.detach().clone()
    with pytest.raises(PortMismatchError) as caught:
        lstmconv.port(source, target)
    text = str(caught.value)
    assert "the target has 4 layers holding weights, the source 5" in text
    assert '"fc" dense weight (4, 12), bias (4,) | source layers: "emb"' in text
    assert '"norm" layer_norm weight (12,), bias (12,), epsilon 1e-05' in text
    assert torch.equal(target.fc.weight, before)


def test_a_wrong_width_is_refused_naming_both_layers(torch) -> None:
    source = _randomized(issue_module(torch), 9)
    target = issue_module(torch, names=("e", "r", "n", "h"), width=OUT + 1)
    with pytest.raises(
        PortMismatchError,
        match=r'target layer "h" \(dense weight \(5, 12\), bias \(5,\)\) and source layer "head" '
        r"\(dense weight \(4, 12\), bias \(4,\)\) do not match: weight \(5, 12\) against \(4, 12\)",
    ):
        lstmconv.port(source, target)


def test_a_layer_norm_epsilon_that_differs_in_the_target_is_refused(torch) -> None:
    source = _randomized(issue_module(torch, eps=1e-3), 10)
    target = issue_module(torch, names=("e", "r", "ln", "h"))
    with pytest.raises(
        PortMismatchError,
        match=r'target layer "ln" \(layer_norm .*epsilon 1e-05\) and source layer "norm" '
        r"\(layer_norm .*epsilon 0.001\) differ in epsilon: 1e-05 against 0.001",
    ):
        lstmconv.port(source, target)


@pytest.mark.parametrize("ending", [".pt", ".safetensors"])
def test_convert_like_writes_the_templates_keys_order_and_dtypes(torch, tmp_path, ending) -> None:
    from safetensors.torch import load_file, save_file

    source = _randomized(issue_module(torch), 11)
    nn = torch.nn

    class Target(nn.Module):  # other names, float64, a BatchNorm whose counter the template keeps
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, DIM)
            self.encoder = nn.LSTM(DIM, HIDDEN, num_layers=2, bidirectional=True, batch_first=True)
            self.ln = nn.LayerNorm(2 * HIDDEN)
            self.classifier = nn.Linear(2 * HIDDEN, OUT)

        def forward(self, ids: Any) -> Any:
            return self.classifier(self.ln(self.encoder(self.embedding(ids))[0]))

    template_state = Target().double().state_dict()
    template = tmp_path / f"init{ending}"
    if ending == ".pt":
        torch.save(template_state, template)
    else:
        save_file(template_state, template)
    dest = tmp_path / f"dst{ending}"
    report = lstmconv.convert(source, dest, like=template)
    assert report is not None and report.ok
    state = torch.load(dest) if ending == ".pt" else load_file(dest)
    assert list(state) == list(template_state if ending == ".pt" else load_file(template))
    assert {value.dtype for value in state.values()} == {torch.float64}
    net = Target().double()
    net.load_state_dict(state, strict=True)
    x = _ids(11)
    gap = np.abs(_run(torch, net, x) - _run(torch, source.double(), x)).max()
    print(f"convert --like {ending}: max |error| {gap:.3g}")
    assert gap <= 1e-12


def test_convert_like_keeps_a_templates_batch_norm_counter(torch, tmp_path) -> None:
    nn = torch.nn

    def net() -> Any:
        module = nn.Sequential()
        module.add_module("norm", nn.BatchNorm1d(3))
        module.add_module("rnn", nn.GRU(3, 2, batch_first=True))
        return module

    template_net = net()
    template_net.norm.num_batches_tracked.fill_(7)
    torch.save(template_net.state_dict(), tmp_path / "init.pt")
    source = _randomized(net(), 12)
    lstmconv.convert(source, tmp_path / "dst.pt", like=tmp_path / "init.pt")
    state = torch.load(tmp_path / "dst.pt")
    assert int(state["norm.num_batches_tracked"]) == 7
    np.testing.assert_array_equal(state["norm.running_var"].numpy(), source.norm.running_var.numpy())


def test_rename_and_prefix_make_a_state_dict_load_into_a_wrapper(torch, tmp_path) -> None:
    source = _randomized(issue_module(torch), 13)
    dest = tmp_path / "dst.pt"
    argv = ["convert", "SRC", str(dest), "--rename", "rnn=encoder", "--rename", "head=classifier"]
    torch.save(source.state_dict(), tmp_path / "src.pt")
    argv[1] = str(tmp_path / "src.pt")
    assert main([*argv, "--prefix", "model", "--epsilon", "1e-5", "-q"]) == 0
    state = torch.load(dest)
    inner = issue_module(torch, names=("emb", "encoder", "norm", "classifier"))
    wrapper = torch.nn.Module()
    wrapper.model = inner
    missing = wrapper.load_state_dict(state, strict=False)
    assert missing.missing_keys == ["model.emb.weight"]  # the Embedding a bare state_dict cannot tell
    assert not missing.unexpected_keys
    assert main([*argv, "--rename", "nope=x", "--force", "-q"]) == 2


def test_a_dense_activation_a_state_dict_cannot_hold_is_warned_naming_it(torch, tmp_path, caplog) -> None:
    from lstmconv.plain import PlainLayer

    rnn = lstmconv.read(torch.nn.LSTM(3, 4, batch_first=True))
    dense = PlainLayer(
        PlainKind.DENSE, "dense", {"weight": np.ones((2, 4), np.float32)}, {"activation": "softmax"}
    )
    model = lstmconv.Model(rnn.layers, "m", around=(dense,), order=(rnn.layers[0].name, "dense"))
    with caplog.at_level(logging.WARNING):
        lstmconv.write(model, tmp_path / "m.pt")
    assert 'layer "dense" (dense)' in caplog.text and "its activation softmax applied after it" in caplog.text


def test_plain_layers_written_to_a_format_that_cannot_hold_them_are_listed(
    torch, tmp_path, monkeypatch
) -> None:
    from lstmconv.formats import npz

    monkeypatch.setattr(npz, "HOLDS_PLAIN", False, raising=False)  # a writer of recurrent layers alone
    net = _randomized(issue_module(torch), 14)
    report = lstmconv.convert(net, tmp_path / "net.npz")
    assert report is not None
    assert [entry["name"] for entry in report.skipped] == ["emb", "norm", "head"]
    assert report.parameters is not None and report.parameters["carried"] < report.parameters["total"]


# -- Keras ↔ PyTorch -------------------------------------------------------------------------------
def _keras_issue_model(keras: ModuleType, tmp_path: Any) -> Any:
    """The issue's Keras 3 model, trained a few steps and saved as .keras."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(VOCAB, DIM),
            L.Bidirectional(L.LSTM(HIDDEN, return_sequences=True)),
            L.LSTM(5, return_sequences=True),
            L.Dense(OUT),
        ]
    )
    model.compile("adam", "mse")
    x, y = _ids(20, (16, 7)), np.random.default_rng(21).normal(size=(16, 7, OUT))
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    return model


def _torch_for_keras(torch: ModuleType) -> Any:
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, DIM)
            self.encoder = nn.LSTM(DIM, HIDDEN, bidirectional=True, batch_first=True)
            self.decoder = nn.LSTM(2 * HIDDEN, 5, batch_first=True)
            self.head = nn.Linear(5, OUT)

        def forward(self, ids: Any) -> Any:
            x, _ = self.encoder(self.embedding(ids))
            x, _ = self.decoder(x)
            return self.head(x)

    return Net()


def test_keras_model_into_a_torch_module_by_port_and_by_convert_like(keras, torch, tmp_path) -> None:
    model = _keras_issue_model(keras, tmp_path)
    x = _ids(22, (4, 10))
    expected = np.asarray(model.predict(x, verbose=0))
    net = _torch_for_keras(torch)
    report = lstmconv.port(tmp_path / "model.keras", net)
    print(report)
    assert report.ok and report.whole is not None and report.whole.max_abs <= TOLERANCE
    gap = np.abs(_run(torch, net, x) - expected).max()
    print(f"Keras → torch port end to end: max |error| {gap:.3g}")
    assert gap <= TOLERANCE
    torch.save(_torch_for_keras(torch).state_dict(), tmp_path / "init.pt")
    dest = tmp_path / "dst.pt"
    assert (
        main(["convert", str(tmp_path / "model.keras"), str(dest), "--like", str(tmp_path / "init.pt")]) == 0
    )
    fresh = _torch_for_keras(torch)
    fresh.load_state_dict(torch.load(dest), strict=True)
    gap = np.abs(_run(torch, fresh, x) - expected).max()
    print(f"Keras → convert --like init.pt end to end: max |error| {gap:.3g}")
    assert gap <= TOLERANCE


def test_torch_module_into_a_keras_model_by_port(keras, torch) -> None:
    source = _randomized(issue_module(torch, eps=1e-3), 23)
    L = keras.layers
    target = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(VOCAB, DIM),
            L.Bidirectional(L.LSTM(HIDDEN, return_sequences=True)),
            L.Bidirectional(L.LSTM(HIDDEN, return_sequences=True)),
            L.LayerNormalization(epsilon=1e-3),
            L.Dense(OUT),
        ]
    )
    report = lstmconv.port(source, target)
    print(report)
    assert report.ok and report.whole is not None and report.whole.max_abs <= TOLERANCE
    x = _ids(23, (4, 10))
    gap = np.abs(np.asarray(target.predict(x, verbose=0)) - _run(torch, source, x)).max()
    print(f"torch → Keras port end to end: max |error| {gap:.3g}")
    assert gap <= TOLERANCE


def test_to_torch_runs_keras_style_plain_layers_as_numpy_does(torch) -> None:
    """A causal dilated Conv1D, a BatchNorm without its scale and a Dense with softmax (as a
    Keras model holds them) built by to_torch, against the same arithmetic in NumPy."""
    from lstmconv.plain import PlainLayer

    rng = np.random.default_rng(30)

    def draw(*shape: int) -> np.ndarray:
        return rng.uniform(-1, 1, shape).astype(np.float32)

    rnn = lstmconv.read(_randomized(torch.nn.LSTM(4, 3, batch_first=True), 30))
    bn = PlainLayer(
        PlainKind.BATCH_NORM,
        "bn",
        {"bias": draw(2), "mean": draw(2), "var": draw(2) + 1.5},
        {"epsilon": 1e-3},
    )
    conv = PlainLayer(
        PlainKind.CONV1D,
        "conv",
        {"weight": draw(4, 2, 3), "bias": draw(4)},
        {"padding": "causal", "dilation": 2},
    )
    dense = PlainLayer(PlainKind.DENSE, "dense", {"weight": draw(5, 3)}, {"activation": "softmax"})
    order = ("bn", "conv", rnn.layers[0].name, "dense")
    links = tuple(zip(order, order[1:]))  # as a Keras config says them
    model = lstmconv.Model(rnn.layers, "m", links, around=(bn, conv, dense), order=order)
    x = draw(2, 9, 2)
    normed = (x - bn.tensors["mean"]) / np.sqrt(bn.tensors["var"] + 1e-3) + bn.tensors["bias"]
    padded = np.concatenate([np.zeros((2, 4, 2), np.float32), normed], axis=1)  # (3 - 1) · 2 zeros before
    w = conv.tensors["weight"]
    conved = np.stack([sum(padded[:, t + 2 * k] @ w[:, :, k].T for k in range(3)) for t in range(9)], 1)
    h = lstmconv.reference.run(lstmconv.Model(rnn.layers, "r"), conved + conv.tensors["bias"])
    logits = h @ dense.tensors["weight"].T
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    built = lstmconv.to_torch(model)
    gap = np.abs(lstmconv.formats.torch.live.run(built, x) - expected).max()
    assert gap <= TOLERANCE
    assert [layer.name for layer in lstmconv.read(built).around] == ["bn", "conv", "dense"]
    assert lstmconv.read(built).around[2].options["activation"] == "softmax"


# -- ONNX ↔ PyTorch --------------------------------------------------------------------------------
def _exported(torch: ModuleType, module: Any, tmp_path: Any) -> Any:
    import onnx

    path = tmp_path / "net.onnx"
    ids = torch.as_tensor(_ids(40, (2, 5)))
    torch.onnx.export(
        module.eval(),
        (ids,),
        str(path),
        input_names=["ids"],
        output_names=["out"],
        dynamic_axes={"ids": {0: "batch", 1: "time"}, "out": {0: "batch", 1: "time"}},
        dynamo=False,
    )
    return onnx.load(str(path))


def test_torch_module_into_an_onnx_export_and_back_by_port(torch, tmp_path) -> None:
    from conftest import require

    require("onnx")
    onnxruntime = require("onnxruntime")

    nn = torch.nn

    def net() -> Any:
        module = nn.Module()
        module.emb = nn.Embedding(VOCAB, DIM)
        module.rnn = nn.LSTM(DIM, HIDDEN, batch_first=True, bidirectional=True)
        module.head = nn.Linear(2 * HIDDEN, OUT)
        module.forward = lambda ids: module.head(module.rnn(module.emb(ids))[0])  # type: ignore[method-assign]
        return module

    source = _randomized(net(), 41)
    proto = _exported(torch, net(), tmp_path)  # an export of an untrained module: the target
    report = lstmconv.port(source, proto)
    print(report)
    assert report.ok and report.whole is not None and report.whole.max_abs <= TOLERANCE
    x = _ids(41, (3, 8))
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    gap = np.abs(session.run(None, {"ids": x})[0] - _run(torch, source, x)).max()
    print(f"torch → ONNX port end to end: max |error| {gap:.3g}")
    assert gap <= TOLERANCE
    back = net()
    report = lstmconv.port(proto, back)
    assert report.ok and report.whole is not None and report.whole.max_abs <= TOLERANCE
    gap = np.abs(_run(torch, back, x) - _run(torch, source, x)).max()
    print(f"ONNX → torch port end to end: max |error| {gap:.3g}")
    assert gap <= TOLERANCE
