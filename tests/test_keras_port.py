"""Whole Keras models (#16): plain layers read from every Keras source (.keras, Keras 3 .h5,
tf_keras's legacy .h5, live Keras 3 and live tf_keras models), each checked against Keras's own
forward pass by porting lstmconv's view into a fresh model of the same architecture and running
both end to end; ports into tf_keras; writing .keras with plain layers and into a template;
mismatches named on both sides."""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from conftest import require

import lstmconv
from lstmconv import PortMismatchError
from lstmconv.plain import PlainKind
from lstmconv.porting import pair

VOCAB, T, BATCH = 40, 7, 3
#: Float32 end to end through two LSTMs, norms and a conv: what the same weights may move.
TOLERANCE = 2e-5


@pytest.fixture
def tf_keras() -> ModuleType:
    require("tensorflow")
    return require("tf_keras")


def issue_model(K: ModuleType, names: str = "") -> Any:
    """The issue's model: Embedding(40, 8) → Bidirectional(LSTM 6) → LSTM 5 → Dense(4)."""
    L = K.layers
    inputs = K.Input((None,), dtype="int32")
    x = L.Embedding(VOCAB, 8, name=f"{names}embedding")(inputs)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True), name=f"{names}bidirectional")(x)
    x = L.LSTM(5, name=f"{names}lstm")(x)
    return K.Model(inputs, L.Dense(4, name=f"{names}dense")(x))


def every_kind(K: ModuleType, names: str = "", epsilon: float = 1e-4) -> Any:
    """Every plain kind lstmconv carries around two recurrent layers."""
    L = K.layers
    inputs = K.Input((None,), dtype="int32")
    x = L.Embedding(VOCAB, 8, name=f"{names}embedding")(inputs)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True), name=f"{names}bidirectional")(x)
    x = L.Dropout(0.3, name=f"{names}dropout")(x)
    x = L.GRU(5, return_sequences=True, name=f"{names}gru")(x)
    x = L.LayerNormalization(epsilon=epsilon, name=f"{names}norm")(x)
    x = L.BatchNormalization(center=False, epsilon=0.01, name=f"{names}batch")(x)
    x = L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu", name=f"{names}conv")(x)
    x = L.TimeDistributed(L.Dense(5), name=f"{names}steps")(x)
    return K.Model(inputs, L.Dense(3, activation="tanh", name=f"{names}head")(x))


ARCHITECTURES = {"issue": issue_model, "every_kind": every_kind}


def randomized(model: Any, seed: int) -> Any:
    """Every weight drawn anew (each gate its own numbers); variances kept positive."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        path = str(getattr(variable, "path", None) or variable.name)
        value = rng.normal(0.0, 0.4, tuple(variable.shape))
        if "moving_variance" in path:
            value = np.abs(value) + 0.5
        variable.assign(value.astype(np.float32))
    return model


def ids(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, size=(BATCH, T))


def run(model: Any) -> np.ndarray:
    from lstmconv.formats.keras import live

    return live.run_whole(model, ids())


def port(target: Any, source: lstmconv.Model) -> Any:
    from lstmconv.formats.keras import live

    return live.port_into(target, source, pair(source, lstmconv.read(target)))


def _save_quietly(model: Any, path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf_keras: "HDF5 is legacy"
        model.save(path)


def _source(how: str, build: Any, keras: ModuleType, tf_keras: ModuleType | None, tmp_path: Any):
    """(what lstmconv reads, the Keras model that runs it as given)."""
    framework = tf_keras if how in ("legacy_h5", "live_tf_keras") else keras
    original = randomized(build(framework), seed=1)
    if how.startswith("live"):
        return original, original
    path = str(tmp_path / ("model.keras" if how == "keras" else "model.h5"))
    _save_quietly(original, path)
    return path, original


SOURCES = ["keras", "keras3_h5", "legacy_h5", "live", "live_tf_keras"]


@pytest.mark.parametrize("how", SOURCES)
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_each_keras_reader_matches_keras_end_to_end(keras, tmp_path, how, architecture) -> None:
    tf_keras = require("tf_keras") if how in ("legacy_h5", "live_tf_keras") else None
    build = ARCHITECTURES[architecture]
    given, original = _source(how, build, keras, tf_keras, tmp_path)
    model = lstmconv.read(given)
    expected = [layer.name for layer in original.layers if type(layer).__name__ != "InputLayer"]
    assert model.order == tuple(expected) and model.skipped == ()
    fresh = randomized(build(keras), seed=2)
    assert np.abs(run(fresh) - run(original)).max() > 1e-2  # a different init computes otherwise
    error = float(np.abs(run(port(fresh, model)) - run(original)).max())
    print(f"{architecture} from {how}: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE


def test_plain_layers_are_read_in_keras_orientation_with_their_options(keras, tmp_path) -> None:
    original = randomized(every_kind(keras), seed=3)
    model = lstmconv.read(original)
    by_name = {layer.name: layer for layer in model.around}
    head = by_name["head"]
    np.testing.assert_array_equal(head.tensors["weight"], original.get_layer("head").get_weights()[0].T)
    assert head.options["activation"] == "tanh" and not head.options["time_distributed"]
    assert by_name["steps"].options["time_distributed"]
    conv = by_name["conv"]
    kernel = original.get_layer("conv").get_weights()[0]  # (k, in, out)
    np.testing.assert_array_equal(conv.tensors["weight"], kernel.transpose(2, 1, 0))
    assert {k: conv.options[k] for k in ("padding", "dilation", "stride", "activation")} == {
        "padding": "causal",
        "dilation": 2,
        "stride": 1,
        "activation": "relu",
    }
    assert by_name["norm"].options["epsilon"] == pytest.approx(1e-4)
    batch = by_name["batch"]
    assert set(batch.tensors) == {"weight", "mean", "var"}  # center=False: no beta
    assert batch.options["epsilon"] == pytest.approx(0.01)
    assert by_name["dropout"].kind is PlainKind.DROPOUT and by_name["dropout"].options["rate"] == 0.3


def test_live_tf_keras_reads_like_keras_3_with_keras_2_meanings(keras, tf_keras) -> None:
    L = tf_keras.layers
    inputs = tf_keras.Input((None, 4))
    x = L.GRU(3, recurrent_activation="hard_sigmoid", return_sequences=True, name="gru")(inputs)
    model = tf_keras.Model(inputs, L.Dense(2, name="head")(x))
    read = lstmconv.read(model)
    assert [layer.name for layer in read] == ["gru"] and read.order == ("gru", "head")
    assert str(read["gru"].activations[0]) == "hard_sigmoid(0.2, 0.5)"  # Keras 2's, not x/6 + 0.5


def test_load_into_and_port_into_a_tf_keras_model(keras, tf_keras, tmp_path) -> None:
    original = randomized(issue_model(keras), seed=4)
    path = str(tmp_path / "model.keras")
    original.save(path)
    model = lstmconv.read(path)
    target = randomized(issue_model(tf_keras, names="t_"), seed=5)
    error = float(np.abs(run(port(target, model)) - run(original)).max())
    print(f"Keras 3 .keras into tf_keras: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE
    recurrent = randomized(issue_model(tf_keras), seed=6)
    lstmconv.load_into(recurrent, path)  # the recurrent layers alone
    for name in ("bidirectional", "lstm"):
        for ours, theirs in zip(
            recurrent.get_layer(name).get_weights(), original.get_layer(name).get_weights()
        ):
            np.testing.assert_array_equal(ours, theirs)


def test_a_model_with_plain_layers_is_written_to_keras_whole_and_reproducibly(keras, tmp_path) -> None:
    original = randomized(every_kind(keras), seed=7)
    model = lstmconv.read(original)
    first, second = str(tmp_path / "a.keras"), str(tmp_path / "b.keras")
    lstmconv.write(model, first)
    lstmconv.write(model, second)
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()
    loaded = keras.saving.load_model(first, safe_mode=True)
    error = float(np.abs(run(loaded) - run(original)).max())
    print(f"every kind written to .keras: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE
    config = json.loads(zipfile.ZipFile(first).read("config.json"))
    layers = {entry["config"]["name"]: entry for entry in config["config"]["layers"]}
    assert layers["norm"]["config"]["epsilon"] == pytest.approx(1e-4)
    assert layers["head"]["config"]["activation"] == "tanh"
    assert layers["steps"]["class_name"] == "TimeDistributed"
    assert layers["batch"]["config"]["center"] is False


def test_plain_layers_off_one_chain_are_said_not_carried(keras, caplog) -> None:
    L = keras.layers
    inputs = keras.Input((None, 4))
    a = L.LSTM(3, return_sequences=True, name="a")(inputs)
    b = L.LSTM(3, return_sequences=True, name="b")(inputs)
    head = L.Dense(2, name="head")(L.Concatenate()([a, b]))
    model = lstmconv.read(keras.Model(inputs, head))
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        built = lstmconv.to_keras(model)
    assert "head" not in [layer.name for layer in built.layers]
    assert any("not carried: head" in message for message in caplog.messages)


def test_write_like_fills_an_untrained_keras_template(keras, tmp_path) -> None:
    from lstmconv.formats.keras import live

    original = randomized(every_kind(keras), seed=8)
    model = lstmconv.read(original)
    template = str(tmp_path / "init.keras")
    every_kind(keras, names="mine_").save(template)
    with open(template, "rb") as handle:
        untouched = handle.read()
    pairs = pair(model, lstmconv.read(template))
    dest, again = str(tmp_path / "out.keras"), str(tmp_path / "again.keras")
    live.write_like(model, template, pairs, dest)
    live.write_like(model, template, pairs, again)
    with open(dest, "rb") as a, open(again, "rb") as b, open(template, "rb") as c:
        assert a.read() == b.read() and c.read() == untouched
    loaded = keras.saving.load_model(dest, safe_mode=True)
    assert [layer.name for layer in loaded.layers][1] == "mine_embedding"  # the template's names
    error = float(np.abs(run(loaded) - run(original)).max())
    print(f"written like a .keras template: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE


# -- mismatches, named on both sides ------------------------------------------------------------
def test_a_missing_layer_is_refused_naming_both_sides(keras) -> None:
    source = lstmconv.read(randomized(issue_model(keras), seed=9))
    L = keras.layers
    inputs = keras.Input((None,), dtype="int32")
    x = L.Embedding(VOCAB, 8, name="emb")(inputs)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True), name="rnn")(x)
    target = keras.Model(inputs, L.LSTM(5, name="last")(x))  # no Dense
    with pytest.raises(PortMismatchError, match=r'target has 3 layers.*source 4.*"last".*"dense"'):
        port(target, source)


def test_a_wrong_width_is_refused_naming_both_layers(keras) -> None:
    source = lstmconv.read(randomized(issue_model(keras), seed=10))
    L = keras.layers
    inputs = keras.Input((None,), dtype="int32")
    x = L.Embedding(VOCAB, 8, name="emb")(inputs)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True), name="rnn")(x)
    x = L.LSTM(5, name="last")(x)
    target = keras.Model(inputs, L.Dense(7, name="fc")(x))
    with pytest.raises(PortMismatchError, match=r'target layer "fc".*source layer "dense".*do not match'):
        port(target, source)


def test_a_different_epsilon_is_refused_naming_both_layers(keras) -> None:
    source = lstmconv.read(randomized(every_kind(keras), seed=11))
    target = every_kind(keras, names="t_", epsilon=1e-5)
    before = [w.copy() for w in target.get_weights()]
    with pytest.raises(PortMismatchError, match=r'"t_norm".*"norm".*epsilon: 1e-05 against 0.0001'):
        port(target, source)
    assert all(np.array_equal(a, b) for a, b in zip(before, target.get_weights()))  # nothing written


def test_a_channels_first_conv1d_is_listed_as_not_carried(keras, caplog) -> None:
    L = keras.layers
    inputs = keras.Input((5, 4))
    x = L.LSTM(6, return_sequences=True, name="lstm")(inputs)
    x = L.Conv1D(3, 2, data_format="channels_first", name="conv")(x)
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        model = lstmconv.read(keras.Model(inputs, x))
    assert [s.name for s in model.skipped] == ["conv"] and model.around == ()
    assert any('layer "conv" (Conv1D) is not carried: data_format' in m for m in caplog.messages)


# -- whole models across frameworks with one call (lstmconv.port, convert like=) ---------------
def _torch_issue_net(torch: ModuleType) -> Any:
    """The issue model written by hand in PyTorch: the last LSTM's last step feeds the Linear."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, 8)
            self.encoder = torch.nn.LSTM(8, 6, batch_first=True, bidirectional=True)
            self.decoder = torch.nn.LSTM(12, 5, batch_first=True)
            self.fc = torch.nn.Linear(5, 4)

        def forward(self, x: Any) -> Any:
            y, _ = self.encoder(self.emb(x))
            y, _ = self.decoder(y)
            return self.fc(y[:, -1])

    return Net()


def _trained(keras: ModuleType) -> Any:
    """The issue's Keras model, trained a few steps (so no weight is its initial value)."""
    keras.utils.set_random_seed(12)
    model = issue_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    rng = np.random.default_rng(12)
    x, y = rng.integers(0, VOCAB, size=(16, T)), rng.normal(size=(16, 4)).astype(np.float32)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    return model


def _torch_out(torch: ModuleType, net: Any) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(ids())).numpy()


def test_a_trained_keras_model_is_ported_into_a_torch_module_and_a_state_dict(keras, torch, tmp_path) -> None:
    trained = _trained(keras)
    path = str(tmp_path / "trained.keras")
    trained.save(path)
    expected = run(trained)
    net = _torch_issue_net(torch)
    report = lstmconv.port(path, net)
    assert report.ok and report.whole is not None and report.whole.ok
    error = float(np.abs(_torch_out(torch, net) - expected).max())
    print(f"trained .keras into a torch module: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE
    template, dest = str(tmp_path / "init.pt"), str(tmp_path / "ported.pt")
    torch.save(_torch_issue_net(torch).state_dict(), template)
    lstmconv.convert(path, dest, like=template)
    again = _torch_issue_net(torch)
    again.load_state_dict(torch.load(dest), strict=True)
    error = float(np.abs(_torch_out(torch, again) - expected).max())
    print(f"trained .keras into a state_dict like init.pt: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE


def _torch_stack(torch: ModuleType) -> Any:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, 8)
            self.rnn = torch.nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
            self.norm = torch.nn.LayerNorm(12)
            self.fc = torch.nn.Linear(12, 4)

        def forward(self, x: Any) -> Any:
            return self.fc(self.norm(self.rnn(self.emb(x))[0]))

    torch.manual_seed(13)
    net = Net()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.4)
    return net


def _keras_stack(keras: ModuleType, epsilon: float = 1e-5) -> Any:
    L = keras.layers
    inputs = keras.Input((None,), dtype="int32")
    x = L.Embedding(VOCAB, 8)(inputs)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True))(x)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True))(x)
    x = L.LayerNormalization(epsilon=epsilon)(x)
    return keras.Model(inputs, L.Dense(4)(x))


def test_a_torch_module_is_ported_into_a_keras_model_and_a_keras_template(keras, torch, tmp_path) -> None:
    net = _torch_stack(torch)
    expected = _torch_out(torch, net)
    target = randomized(_keras_stack(keras), seed=14)
    report = lstmconv.port(net, target)
    assert report.ok and report.whole is not None and report.whole.ok
    error = float(np.abs(run(target) - expected).max())
    print(f"torch module into a Keras model: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE
    template, dest = str(tmp_path / "init.keras"), str(tmp_path / "ported.keras")
    _keras_stack(keras).save(template)
    lstmconv.convert(net, dest, like=template)
    error = float(np.abs(run(keras.saving.load_model(dest, safe_mode=True)) - expected).max())
    print(f"torch module into a .keras template: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE


def test_a_keras_layer_norm_epsilon_differing_from_torch_is_refused_naming_both(keras, torch) -> None:
    target = _keras_stack(keras, epsilon=1e-3)  # Keras's default; the torch LayerNorm's is 1e-5
    with pytest.raises(
        PortMismatchError, match=r'"layer_normalization.*"norm".*epsilon: 0.001 against 1e-05'
    ):
        lstmconv.port(_torch_stack(torch), target)


def test_port_from_keras_into_tf_keras_reports_the_whole_model(keras, tf_keras, tmp_path) -> None:
    original = randomized(every_kind(keras), seed=15)
    path = str(tmp_path / "model.keras")
    original.save(path)
    target = randomized(every_kind(tf_keras, names="t_"), seed=16)
    report = lstmconv.port(path, target)
    assert report.ok and report.whole is not None and report.whole.ok
    error = float(np.abs(run(target) - run(original)).max())
    print(f"every kind from .keras into tf_keras by port: end-to-end max abs error {error:.3g}")
    assert error < TOLERANCE


def test_to_keras_of_a_torch_module_builds_no_unlinked_plain_layer(keras, torch, caplog) -> None:
    net = _torch_stack(torch)
    # a torch module's registration order does not say how its forward connects the layers:
    # to_keras builds the recurrent layers alone and names the plain ones as not carried
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        built = lstmconv.to_keras(net)
    assert not any(type(layer).__name__ == "LayerNormalization" for layer in built.layers)
    assert any("not carried" in message and "norm" in message for message in caplog.messages)
    # (port into the user's own Keras model carries every layer: the test above)


@pytest.mark.parametrize("how", ["keras", "live"])
def test_to_torch_of_a_linked_keras_model_runs_its_plain_layers_as_keras_does(
    keras, torch, tmp_path, how
) -> None:
    """Dense → LSTM → LayerNormalization → Dense: the config links every layer to the next, so
    to_torch's module runs all four, as Keras's predict does (the .keras and .onnx rule)."""
    L = keras.layers
    inputs = keras.Input((None, 5))
    x = L.Dense(6, activation="tanh", name="in_dense")(inputs)
    x = L.LSTM(4, return_sequences=True, name="lstm")(x)
    x = L.LayerNormalization(epsilon=1e-3, name="norm")(x)
    original = randomized(keras.Model(inputs, L.Dense(3, name="head")(x)), seed=41)
    source: Any = original
    if how == "keras":
        source = str(tmp_path / "linked.keras")
        original.save(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", lstmconv.LstmconvWarning)  # nothing left out, nothing to warn
        built = lstmconv.to_torch(source)
    assert [name for name, _ in built.named_children()] == ["in_dense", "lstm", "norm", "head"]
    x = np.random.default_rng(41).uniform(-1, 1, (BATCH, T, 5)).astype(np.float32)
    expected = np.asarray(original.predict(x, verbose=0))
    with torch.no_grad():
        got = built(torch.as_tensor(x)).numpy()
    gap = float(np.abs(got - expected).max())
    print(f"to_torch of a linked Keras model ({how}) against Keras predict: max |error| {gap:.3g}")
    assert got.shape == expected.shape == (BATCH, T, 3) and gap <= 1e-5


def test_inspect_shows_the_plain_layers_in_model_order(keras, tmp_path, capsys) -> None:
    from lstmconv.cli import main

    path = str(tmp_path / "model.keras")
    every_kind(keras).save(path)
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert (
        "model order: embedding → bidirectional → dropout → gru → norm → batch → conv → steps → head" in out
    )
    # Keras's own names and shapes (kernel (k, in, out)), with the options that change the numbers
    assert "conv1d      5 → 4  kernel (3, 5, 4), bias (4,)  (stride 1, padding causal, dilation 2" in out
    assert "layer_norm  5 → 5  gamma (5,), beta (5,)  (epsilon 0.0001, axis -1)" in out


def test_a_live_dense_with_weights_lstmconv_does_not_know_is_listed_not_carried(
    keras, tmp_path, caplog
) -> None:
    L = keras.layers
    inputs = keras.Input((None, 4))
    x = L.LSTM(6, return_sequences=True, name="lstm")(inputs)
    model = randomized(keras.Model(inputs, L.Dense(3, lora_rank=2, name="lora")(x)), seed=17)
    with caplog.at_level(logging.WARNING, logger="lstmconv"):
        read = lstmconv.read(model)  # live: kernel, bias and the two LoRA factors
    assert [s.name for s in read.skipped] == ["lora"] and read.around == ()
    assert any('layer "lora" (Dense) is not carried: a Keras Dense holds 2' in m for m in caplog.messages)
    path = str(tmp_path / "lora.keras")
    model.save(path)  # Keras saves the LoRA factors merged into the kernel: a plain Dense
    saved = lstmconv.read(path)
    plain = keras.Model(inputs, L.Dense(3, name="dense")(L.LSTM(6, return_sequences=True)(inputs)))
    x = np.random.default_rng(17).normal(size=(BATCH, T, 4)).astype(np.float32)
    from lstmconv.formats.keras import live

    ported = live.port_into(plain, saved, pair(saved, lstmconv.read(plain)))
    error = float(np.abs(live.run_whole(ported, x) - live.run_whole(model, x)).max())
    assert error < TOLERANCE


def test_recurrent_activations_that_differ_are_refused_naming_both_layers(keras, tf_keras) -> None:
    def gru(K: ModuleType, activation: str) -> Any:
        inputs = K.Input((None, 4))
        return K.Model(inputs, K.layers.GRU(3, recurrent_activation=activation, name="gru")(inputs))

    source = lstmconv.read(randomized(gru(keras, "hard_sigmoid"), seed=18))  # Keras 3's: x/6 + 0.5
    target = gru(tf_keras, "hard_sigmoid")  # tf_keras's: 0.2·x + 0.5, another function
    with pytest.raises(
        PortMismatchError, match=r'target layer "gru" and source layer "gru" differ: activations'
    ):
        port(target, source)
    relu = gru(keras, "relu")
    with pytest.raises(PortMismatchError, match=r"activations relu, tanh against hard_sigmoid"):
        port(relu, source)


def test_weights_only_files_read_their_plain_layers_with_the_config_given(keras, tf_keras, tmp_path) -> None:
    for K, ending in ((keras, ".weights.h5"), (tf_keras, ".h5")):
        original = randomized(every_kind(K), seed=19)
        weights, config = str(tmp_path / f"w{ending}"), str(tmp_path / f"{K.__name__}.json")
        original.save_weights(weights)
        with open(config, "w") as handle:
            handle.write(original.to_json())
        model = lstmconv.read(weights, config=config)
        live = lstmconv.read(original)
        assert model.order == live.order
        for ours, theirs in zip(model.around, live.around):
            assert (ours.name, ours.kind, dict(ours.options)) == (
                theirs.name,
                theirs.kind,
                dict(theirs.options),
            )
            for name, array in ours.items():
                np.testing.assert_array_equal(array, theirs.tensors[name])
