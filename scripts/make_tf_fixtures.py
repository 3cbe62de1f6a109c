"""Regenerate the TensorFlow fixtures under ``fixtures/tensorflow/``: TF1 checkpoints written by
``tf.compat.v1.train.Saver`` for each cell type, ``tf.train.Checkpoint`` of Keras 3 and tf_keras
models, and SavedModel directories (tf_keras ``model.save``, Keras 3 ``model.export``).

Each fixture has ``<name>.io.npz`` with an input ``x`` and ``y``, TensorFlow's own output for it,
and an entry in ``fixtures/manifest.json``. The TF1 cells need tf_keras (``TF_USE_LEGACY_KERAS=1``)
and Keras 3 must not see that variable, so each group runs in a process of its own:
``.venv/bin/python scripts/make_tf_fixtures.py [names...]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FOLDER = FIXTURES / "tensorflow"
SEED = 20261203
INIT = 0.5
BATCH, TIME = 3, 5


def _input(features: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (BATCH, TIME, features)).astype("float32")


# -- TF1: graphs of tf.compat.v1 cells, saved by Saver ---------------------------------------------
def _tf1(build: Callable[[Any, Any], Any], features: int, prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """Build a graph with ``build(tf, x) -> output``, give every variable random values, run it
    and save it with ``tf.compat.v1.train.Saver`` (no meta graph)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (None, None, features), name="x")
        y = build(tf, x)
        rng = np.random.default_rng(seed)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for variable in v1.global_variables():
                shape = variable.shape.as_list()
                variable.load(rng.uniform(-INIT, INIT, shape).astype("float32"), session)
            x_in = _input(features, seed)
            y_out = session.run(y, {x: x_in})
            v1.train.Saver().save(session, str(prefix), write_meta_graph=False, write_state=False)
    return x_in, y_out, f"tensorflow {tf.__version__}, tf_keras (TF_USE_LEGACY_KERAS=1)"


def tf1_savedmodel(folder: Path, seed: int) -> tuple[Any, Any, str]:
    """A TF1 SavedModel (``tf.compat.v1.saved_model.Builder``): a graph, no object graph, its
    variables checkpoint keyed by TF1 names (here a GRUCell under dynamic_rnn)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, (None, None, 4), name="x")
        y = v1.nn.dynamic_rnn(v1.nn.rnn_cell.GRUCell(4), x, dtype=tf.float32)[0]
        rng = np.random.default_rng(seed)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for variable in v1.global_variables():
                variable.load(rng.uniform(-INIT, INIT, variable.shape.as_list()).astype("float32"), session)
            x_in = _input(4, seed)
            y_out = session.run(y, {x: x_in})
            builder = v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(session, ["serve"], strip_default_attrs=True)
            builder.save()
    return x_in, y_out, f"tensorflow {tf.__version__}, tf.compat.v1.saved_model.Builder"


def _dynamic(cell: Any) -> Callable[[Any, Any], Any]:
    return lambda tf, x: tf.compat.v1.nn.dynamic_rnn(cell(tf), x, dtype=tf.float32)[0]


def tf1_lstm(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    return _tf1(_dynamic(lambda tf: tf.compat.v1.nn.rnn_cell.LSTMCell(6)), 4, prefix, seed)


def tf1_lstm_peephole_proj(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    def cell(tf: Any) -> Any:
        return tf.compat.v1.nn.rnn_cell.LSTMCell(7, use_peepholes=True, num_proj=3, forget_bias=1.0)

    return _tf1(_dynamic(cell), 4, prefix, seed)


def tf1_lstm_clips(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """What a checkpoint cannot say: read back with READ_OPTIONS, or the numbers differ."""

    def cell(tf: Any) -> Any:
        return tf.compat.v1.nn.rnn_cell.LSTMCell(
            6, use_peepholes=True, num_proj=3, forget_bias=0.5, **READ_OPTIONS["tf1_lstm_clips"]["clips"]
        )

    return _tf1(_dynamic(cell), 4, prefix, seed)


def tf1_basic_lstm(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    return _tf1(_dynamic(lambda tf: tf.compat.v1.nn.rnn_cell.BasicLSTMCell(5)), 4, prefix, seed)


def tf1_gru(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    return _tf1(_dynamic(lambda tf: tf.compat.v1.nn.rnn_cell.GRUCell(6)), 4, prefix, seed)


def tf1_basic_rnn(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    return _tf1(_dynamic(lambda tf: tf.compat.v1.nn.rnn_cell.BasicRNNCell(5)), 4, prefix, seed)


def tf1_multi(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    def cell(tf: Any) -> Any:
        cells = tf.compat.v1.nn.rnn_cell
        return cells.MultiRNNCell([cells.LSTMCell(6), cells.GRUCell(5)])

    return _tf1(_dynamic(cell), 4, prefix, seed)


def tf1_bidir(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    def build(tf: Any, x: Any) -> Any:
        cells = tf.compat.v1.nn.rnn_cell
        (fw, bw), _ = tf.compat.v1.nn.bidirectional_dynamic_rnn(
            cells.LSTMCell(5), cells.LSTMCell(5), x, dtype=tf.float32
        )
        return tf.concat([fw, bw], axis=-1)

    return _tf1(build, 4, prefix, seed)


def tf1_lstm_block_fused(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """TF 2.21 has no LSTMBlockFusedCell (it lived in tf.contrib.rnn); its op does exist as
    ``tf.raw_ops.BlockLSTM``. The variables are made as the cell made them (contrib
    ``lstm_ops.py``: scope ``lstm_fused_cell``, ``kernel`` [I+H, 4H], ``bias`` [4H], peepholes
    ``w_i_diag`` ``w_f_diag`` ``w_o_diag``) and the op is run time-major, forget_bias 1.0."""
    hidden = 5

    def build(tf: Any, x: Any) -> Any:
        v1 = tf.compat.v1
        features = x.shape[-1]
        with v1.variable_scope("lstm_fused_cell"):
            kernel = v1.get_variable("kernel", (features + hidden, 4 * hidden))
            bias = v1.get_variable("bias", (4 * hidden,), initializer=v1.zeros_initializer())
            peep = [v1.get_variable(f"w_{g}_diag", (hidden,)) for g in "ifo"]
        time_major = tf.transpose(x, (1, 0, 2))
        batch = tf.shape(x)[0]
        zeros = tf.zeros((batch, hidden))
        outputs = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(tf.shape(x)[1], tf.int64),
            x=time_major,
            cs_prev=zeros,
            h_prev=zeros,
            w=kernel,
            wci=peep[0],
            wcf=peep[1],
            wco=peep[2],
            b=bias,
            forget_bias=1.0,
            cell_clip=-1.0,
            use_peephole=True,
        )
        return tf.transpose(outputs.h, (1, 0, 2))

    x_in, y, made_by = _tf1(build, 4, prefix, seed)
    return (
        x_in,
        y,
        made_by + "; LSTMBlockFusedCell's variables (contrib lstm_ops.py) run by tf.raw_ops.BlockLSTM",
    )


def _block_lstm(tf: Any, x: Any, kernel: Any, bias: Any, hidden: int, forget_bias: float) -> Any:
    zeros = tf.zeros((tf.shape(x)[0], hidden))
    outputs = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x)[1], tf.int64),
        x=tf.transpose(x, (1, 0, 2)),
        cs_prev=zeros,
        h_prev=zeros,
        w=kernel,
        wci=tf.zeros(hidden),
        wcf=tf.zeros(hidden),
        wco=tf.zeros(hidden),
        b=bias,
        forget_bias=forget_bias,
        cell_clip=-1.0,
        use_peephole=False,
    )
    return tf.transpose(outputs.h, (1, 0, 2))


def tf1_cudnn_lstm(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """TF 2.21 has no tf.contrib.cudnn_rnn (and this machine no GPU): the checkpoint holds the
    canonical form CudnnLSTMSaveable writes (contrib ``cudnn_rnn_ops.py``:
    ``<scope>/rnn/multi_rnn_cell/cell_<k>/cudnn_compatible_lstm_cell/{kernel, bias}``, the bias
    b_W + b_R), run as CudnnCompatibleLSTMCell runs it: an LSTMBlockCell with forget_bias 0."""
    hidden = 4

    def build(tf: Any, x: Any) -> Any:
        v1, out = tf.compat.v1, x
        for layer in range(2):
            with v1.variable_scope(f"cudnn_lstm/rnn/multi_rnn_cell/cell_{layer}/cudnn_compatible_lstm_cell"):
                kernel = v1.get_variable("kernel", (out.shape[-1] + hidden, 4 * hidden))
                bias = v1.get_variable("bias", (4 * hidden,))
            out = _block_lstm(tf, out, kernel, bias, hidden, forget_bias=0.0)
        return out

    x_in, y, made_by = _tf1(build, 3, prefix, seed)
    return (
        x_in,
        y,
        made_by + "; CudnnLSTMSaveable's names (contrib cudnn_rnn_ops.py) run by tf.raw_ops.BlockLSTM",
    )


def tf1_cudnn_gru(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """CudnnGRUSaveable's canonical form (``cudnn_compatible_gru_cell/gates/kernel`` r·u over
    [x; h], ``candidate/input_projection``, ``candidate/hidden_projection``), run by tf_keras's
    GRU(reset_after=True), the same cuDNN variant, given those weights as Keras lays them out
    (z r h, kernel (I, 3H), bias [input; recurrent])."""
    import tensorflow as tf
    import tf_keras

    hidden, features = 4, 3
    rng = np.random.default_rng(seed)
    u = lambda *shape: rng.uniform(-INIT, INIT, shape).astype("float32")  # noqa: E731
    gates, gates_bias = u(features + hidden, 2 * hidden), u(2 * hidden)
    w_x, b_x, w_h, b_h = u(features, hidden), u(hidden), u(hidden, hidden), u(hidden)
    r, z = slice(0, hidden), slice(hidden, 2 * hidden)
    kernel = np.concatenate([gates[:features, z], gates[:features, r], w_x], axis=1)
    recurrent = np.concatenate([gates[features:, z], gates[features:, r], w_h], axis=1)
    zeros = np.zeros(hidden, "float32")
    bias = np.stack(
        [np.concatenate([gates_bias[z], gates_bias[r], b_x]), np.concatenate([zeros, zeros, b_h])]
    )
    layer = tf_keras.layers.GRU(hidden, reset_after=True, return_sequences=True)
    x_in = _input(features, seed)
    layer.build((None, None, features))
    layer.set_weights([kernel, recurrent, bias])
    y = np.asarray(layer(x_in))
    scope = "cudnn_gru/rnn/multi_rnn_cell/cell_0/cudnn_compatible_gru_cell"
    values = {
        "gates/kernel": gates,
        "gates/bias": gates_bias,
        "candidate/input_projection/kernel": w_x,
        "candidate/input_projection/bias": b_x,
        "candidate/hidden_projection/kernel": w_h,
        "candidate/hidden_projection/bias": b_h,
    }
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session() as session:
        variables = [tf.compat.v1.Variable(value, name=f"{scope}/{name}") for name, value in values.items()]
        session.run(tf.compat.v1.variables_initializer(variables))
        tf.compat.v1.train.Saver(variables).save(
            session, str(prefix), write_meta_graph=False, write_state=False
        )
    return (
        x_in,
        y,
        f"tensorflow {tf.__version__}; CudnnGRUSaveable's names, run by tf_keras GRU(reset_after=True)",
    )


def tf1_gru_block(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """contrib's GRUBlockCell (gru_ops.py: scope ``gru_cell``, ``w_ru`` (I+H, 2H), ``b_ru``,
    ``w_c`` (I+H, H), ``b_c``), which TF 2.21 no longer has, run step by step by its op,
    ``tf.raw_ops.GRUBlockCell``."""
    hidden = 5

    def build(tf: Any, x: Any) -> Any:
        v1 = tf.compat.v1
        features = x.shape[-1]
        with v1.variable_scope("rnn/gru_cell"):
            w_ru = v1.get_variable("w_ru", (features + hidden, 2 * hidden))
            b_ru = v1.get_variable("b_ru", (2 * hidden,))
            w_c = v1.get_variable("w_c", (features + hidden, hidden))
            b_c = v1.get_variable("b_c", (hidden,))
        h = tf.zeros((tf.shape(x)[0], hidden))
        outputs = []
        for step in range(TIME):
            h = tf.raw_ops.GRUBlockCell(x=x[:, step], h_prev=h, w_ru=w_ru, w_c=w_c, b_ru=b_ru, b_c=b_c).h
            outputs.append(h)
        return tf.stack(outputs, axis=1)

    x_in, y, made_by = _tf1(build, 4, prefix, seed)
    return x_in, y, made_by + "; GRUBlockCell's variables (contrib gru_ops.py) run by tf.raw_ops.GRUBlockCell"


# -- TF2: tf.train.Checkpoint and SavedModel of Keras models ---------------------------------------
def _randomize(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.uniform(-INIT, INIT, w.shape).astype("float32") for w in weights])


def _keras_model(keras: Any, seed: int) -> Any:
    inputs = keras.Input((None, 4), name="features")
    x = keras.layers.LSTM(6, return_sequences=True, name="encoder")(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True), name="middle")(x)
    x = keras.layers.SimpleRNN(3, return_sequences=True, name="head")(x)
    model = keras.Model(inputs, x, name="tf_ckpt_model")
    _randomize(model, seed)
    return model


def keras3_checkpoint(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    import keras
    import tensorflow as tf

    model = _keras_model(keras, seed)
    written = tf.train.Checkpoint(model=model).write(str(prefix))
    assert written == str(prefix), written
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"keras {keras.__version__}, tensorflow {tf.__version__}"


def tf_keras_checkpoint(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    import tensorflow as tf
    import tf_keras

    model = _keras_model(tf_keras, seed)
    tf.train.Checkpoint(model=model).write(str(prefix))
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"tf_keras {tf_keras.__version__}, tensorflow {tf.__version__}"


def _train_one_step(model: Any, seed: int) -> None:
    """One Adam step, so the checkpoint holds an optimizer and its slot variables too."""
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(-1, 1, (2, TIME, 4)).astype("float32")
    y = rng.uniform(-1, 1, (2, TIME, model.output_shape[-1])).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)


def tf_keras_save_weights(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """tf_keras ``model.save_weights(prefix)`` (the TF format: the model is the root object)
    after one training step: optimizer iterations and Adam slots beside the layers'."""
    import tensorflow as tf
    import tf_keras

    model = _keras_model(tf_keras, seed)
    _train_one_step(model, seed)
    model.save_weights(str(prefix), save_format="tf")
    (prefix.parent / "checkpoint").unlink(missing_ok=True)
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"tf_keras {tf_keras.__version__}, tensorflow {tf.__version__}"


def keras3_checkpoint_with_optimizer(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    import keras
    import tensorflow as tf

    model = _keras_model(keras, seed)
    _train_one_step(model, seed)
    tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(prefix))
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"keras {keras.__version__}, tensorflow {tf.__version__}"


def tf_keras_sharded(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """``tf.train.Checkpoint.write`` with ``MaxShardSizePolicy(300 bytes)``: seven data shards,
    the kernels partitioned into slices keyed by ``EncodeTensorNameSlice``."""
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((None, 4), name="features")
    x = tf_keras.layers.LSTM(6, return_sequences=True, name="lstm")(inputs)
    x = tf_keras.layers.GRU(5, return_sequences=True, name="gru")(x)
    model = tf_keras.Model(inputs, x)
    _randomize(model, seed)
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    tf.train.Checkpoint(model=model).write(str(prefix), options=options)
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"tf_keras {tf_keras.__version__}, tensorflow {tf.__version__}"


def tf_keras_stacked_cells(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """``RNN([LSTMCell, GRUCell])``: one layer, two cells (StackedRNNCells), one scope."""
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((None, 4), name="features")
    cells = [tf_keras.layers.LSTMCell(6), tf_keras.layers.GRUCell(5)]
    x = tf_keras.layers.RNN(cells, return_sequences=True, name="stack")(inputs)
    model = tf_keras.Model(inputs, x)
    _randomize(model, seed)
    tf.train.Checkpoint(model=model).write(str(prefix))
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"tf_keras {tf_keras.__version__}, tensorflow {tf.__version__}"


def keras3_checkpoint_config(prefix: Path, seed: int) -> tuple[Any, Any, str]:
    """A checkpoint whose layers are not Keras's defaults (relu, hard_sigmoid, go_backwards, a
    sum merge), read with the model's own config (``model.to_json()``) beside it."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((None, 4), name="features")
    x = keras.layers.LSTM(5, activation="relu", return_sequences=True, name="relu_lstm")(inputs)
    x = keras.layers.Bidirectional(
        keras.layers.GRU(4, recurrent_activation="hard_sigmoid", return_sequences=True),
        merge_mode="sum",
        name="bi",
    )(x)
    x = keras.layers.SimpleRNN(3, go_backwards=True, return_sequences=True, name="backwards")(x)
    model = keras.Model(inputs, x, name="configured")
    _randomize(model, seed)
    tf.train.Checkpoint(model=model).write(str(prefix))
    prefix.with_name(prefix.name + ".config.json").write_text(model.to_json())
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"keras {keras.__version__}, tensorflow {tf.__version__}"


def tf_keras_savedmodel(folder: Path, seed: int) -> tuple[Any, Any, str]:
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((None, 4), name="features")
    x = tf_keras.layers.GRU(5, reset_after=False, return_sequences=True, name="gru_before")(inputs)
    x = tf_keras.layers.LSTM(4, activation="relu", return_sequences=True, name="relu_lstm")(x)
    model = tf_keras.Model(inputs, x, name="savedmodel")
    _randomize(model, seed)
    model.save(str(folder), save_format="tf", include_optimizer=False, save_traces=False)
    x_in = _input(4, seed)
    return x_in, np.asarray(model(x_in)), f"tf_keras {tf_keras.__version__}, tensorflow {tf.__version__}"


def keras3_export(folder: Path, seed: int) -> tuple[Any, Any, str]:
    import keras
    import tensorflow as tf

    inputs = keras.Input((None, 4), name="features")
    x = keras.layers.LSTM(5, return_sequences=True, name="first")(inputs)
    x = keras.layers.GRU(3, return_sequences=True, name="second")(x)
    model = keras.Model(inputs, x, name="exported")
    _randomize(model, seed)
    model.export(str(folder), verbose=False)
    x_in = _input(4, seed)
    return (
        x_in,
        np.asarray(model(x_in)),
        f"keras {keras.__version__} model.export, tensorflow {tf.__version__}",
    )


#: name -> (maker, what it is, group: the process environment it needs, is a folder)
MAKERS: dict[str, tuple[Callable[[Path, int], tuple[Any, Any, str]], str, str, bool]] = {
    "tf1_lstm": (tf1_lstm, "TF1 Saver: dynamic_rnn over LSTMCell(6)", "legacy", False),
    "tf1_lstm_peephole_proj": (
        tf1_lstm_peephole_proj,
        "TF1 Saver: LSTMCell(7, use_peepholes, num_proj=3)",
        "legacy",
        False,
    ),
    "tf1_basic_lstm": (tf1_basic_lstm, "TF1 Saver: BasicLSTMCell(5)", "legacy", False),
    "tf1_gru": (tf1_gru, "TF1 Saver: GRUCell(6) (reset-before)", "legacy", False),
    "tf1_basic_rnn": (tf1_basic_rnn, "TF1 Saver: BasicRNNCell(5) (tanh)", "legacy", False),
    "tf1_multi": (tf1_multi, "TF1 Saver: MultiRNNCell([LSTMCell(6), GRUCell(5)])", "legacy", False),
    "tf1_bidir": (tf1_bidir, "TF1 Saver: bidirectional_dynamic_rnn, LSTMCell(5) fw and bw", "legacy", False),
    "tf1_lstm_block_fused": (
        tf1_lstm_block_fused,
        "TF1 Saver: LSTMBlockFusedCell's variables with peepholes, run by tf.raw_ops.BlockLSTM",
        "legacy",
        False,
    ),
    "tf1_cudnn_lstm": (
        tf1_cudnn_lstm,
        "CudnnLSTM's canonical checkpoint form, 2 layers (cudnn_compatible_lstm_cell, forget_bias 0)",
        "legacy",
        False,
    ),
    "tf1_cudnn_gru": (
        tf1_cudnn_gru,
        "CudnnGRU's canonical checkpoint form (cudnn_compatible_gru_cell, reset-after)",
        "legacy",
        False,
    ),
    "keras3_checkpoint": (
        keras3_checkpoint,
        "tf.train.Checkpoint of a Keras 3 model: LSTM 6, Bidirectional(GRU 4), SimpleRNN 3",
        "keras3",
        False,
    ),
    "tf_keras_checkpoint": (
        tf_keras_checkpoint,
        "tf.train.Checkpoint of a tf_keras model: LSTM 6, Bidirectional(GRU 4), SimpleRNN 3",
        "legacy",
        False,
    ),
    "tf_keras_savedmodel": (
        tf_keras_savedmodel,
        "tf_keras model.save SavedModel: GRU(reset_after=False) 5, LSTM(relu) 4",
        "legacy",
        True,
    ),
    "keras3_export": (keras3_export, "Keras 3 model.export SavedModel: LSTM 5, GRU 3", "keras3", True),
}


#: Fixtures read with options (what the checkpoint cannot say); listed in options.json, not in
#: the manifest, whose fixtures read without options.
READ_OPTIONS: dict[str, dict[str, Any]] = {
    "tf1_lstm_clips": {
        "clips": {"cell_clip": 0.3, "proj_clip": 0.05},
        "read": {"forget_bias": 0.5, "cell_clip": 0.3, "proj_clip": 0.05},
    }
}
MAKERS["tf_keras_save_weights"] = (
    tf_keras_save_weights,
    "tf_keras model.save_weights TF format after an Adam step: LSTM 6, Bidirectional(GRU 4), SimpleRNN 3",
    "legacy",
    False,
)
MAKERS["keras3_checkpoint_with_optimizer"] = (
    keras3_checkpoint_with_optimizer,
    "tf.train.Checkpoint(model, optimizer) of a Keras 3 model after an Adam step",
    "keras3",
    False,
)
MAKERS["tf_keras_sharded"] = (
    tf_keras_sharded,
    "tf.train.Checkpoint with MaxShardSizePolicy: 7 shards, partitioned kernels; tf_keras LSTM 6, GRU 5",
    "legacy",
    False,
)
MAKERS["tf_keras_stacked_cells"] = (
    tf_keras_stacked_cells,
    "tf.train.Checkpoint of tf_keras RNN([LSTMCell(6), GRUCell(5)]) (StackedRNNCells)",
    "legacy",
    False,
)
MAKERS["keras3_checkpoint_config"] = (
    keras3_checkpoint_config,
    "tf.train.Checkpoint of Keras 3 LSTM(relu), Bidirectional(GRU(hard_sigmoid), sum), SimpleRNN(backwards)",
    "keras3",
    False,
)
READ_OPTIONS["keras3_checkpoint_config"] = {
    "read": {"config": "tensorflow/keras3_checkpoint_config.config.json"}
}
MAKERS["tf1_gru_block"] = (
    tf1_gru_block,
    "TF1 Saver: GRUBlockCell's variables (w_ru, b_ru, w_c, b_c), run by tf.raw_ops.GRUBlockCell",
    "legacy",
    False,
)
MAKERS["tf1_savedmodel"] = (
    tf1_savedmodel,
    "TF1 SavedModel (saved_model.Builder) of dynamic_rnn over GRUCell(4): TF1 names, no object graph",
    "legacy",
    True,
)
MAKERS["tf1_lstm_clips"] = (
    tf1_lstm_clips,
    "TF1 Saver: LSTMCell(6, use_peepholes, num_proj=3, forget_bias=0.5, cell_clip=0.3, proj_clip=0.05)",
    "legacy",
    False,
)


def _make_one(name: str, offset: int) -> dict[str, Any]:
    maker, description, _, is_folder = MAKERS[name]
    seed = SEED + 100 * offset
    target = FOLDER / name
    for stale in [target, *FOLDER.glob(f"{name}.*")]:
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    x_in, y, made_by = maker(target, seed)
    np.savez(FOLDER / f"{name}.io.npz", x=x_in, y=np.asarray(y))
    return {
        "file": f"tensorflow/{name}" if is_folder else f"tensorflow/{name}.index",
        "io": f"tensorflow/{name}.io.npz",
        "description": description,
        "made_by": made_by,
        "seed": seed,
        "input_shape": list(x_in.shape),
        "output_shape": list(np.asarray(y).shape),
    }


def _child(group: str, names: list[str]) -> None:
    """Make the named fixtures of one group in this process; print their manifest entries."""
    entries = {name: _make_one(name, list(MAKERS).index(name)) for name in names if MAKERS[name][2] == group}
    print("MANIFEST " + json.dumps(entries))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--group":
        _child(sys.argv[2], sys.argv[3:])
        return
    names = sys.argv[1:] or list(MAKERS)
    FOLDER.mkdir(parents=True, exist_ok=True)
    manifest_path = FIXTURES / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    options_path = FOLDER / "options.json"
    options = json.loads(options_path.read_text()) if options_path.exists() else {}
    for group, legacy in (("legacy", "1"), ("keras3", "0")):
        env = {**os.environ, "TF_USE_LEGACY_KERAS": legacy, "KERAS_BACKEND": "tensorflow"}
        chosen = [name for name in names if MAKERS[name][2] == group]
        if not chosen:
            continue
        run = subprocess.run(
            [sys.executable, __file__, "--group", group, *chosen], env=env, capture_output=True, text=True
        )
        if run.returncode:
            sys.exit(run.stderr)
        line = next(line for line in run.stdout.splitlines() if line.startswith("MANIFEST "))
        for name, entry in json.loads(line.removeprefix("MANIFEST ")).items():
            if name in READ_OPTIONS:
                options[name] = {**entry, "read_options": READ_OPTIONS[name]["read"]}
            else:
                manifest[name] = entry
            print(f"{entry['file']}: {entry['description']} -> y {entry['output_shape']}")
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    options_path.write_text(json.dumps(options, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
