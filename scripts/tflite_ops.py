"""Single TFLite recurrent ops built with TensorFlow's own schema classes
(``tensorflow.lite.python.schema_py_generated``) and the flatbuffers package, and run in
``tf.lite.Interpreter``: for scripts/make_tflite_fixtures.py and the tests. Importing it changes
no environment variable."""

from __future__ import annotations

import flatbuffers
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

BATCH, TIME = 3, 7
INIT = 0.5


def run(content: bytes, x: np.ndarray, tensor: str | None = None) -> np.ndarray:
    """The interpreter's output for ``x`` (or the named tensor's value, for an op's sequence
    output that the model slices)."""
    interpreter = tf.lite.Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    if tensor is None:
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    (index,) = [d["index"] for d in interpreter.get_tensor_details() if d["name"] == tensor]
    return interpreter.get_tensor(index)


def time_major_run(content: bytes, x: np.ndarray) -> np.ndarray:
    """Run a time-major model on batch-major ``x``; the output batch-major again."""
    y = run(content, np.ascontiguousarray(x.transpose(1, 0, 2)))
    return np.ascontiguousarray(y.transpose(1, 0, 2))


def rnn_step(seed: int, features=4, hidden=5, activation=4) -> bytes:
    """The one-step RNN op: input (batch, features)."""
    rng, g = np.random.default_rng(seed), Graph()
    x = g.tensor("x", (BATCH, features))
    inputs = [
        x,
        g.tensor("weights", (hidden, features), uniform(rng, hidden, features)),
        g.tensor("recurrent_weights", (hidden, hidden), uniform(rng, hidden, hidden)),
        g.tensor("bias", (hidden,), uniform(rng, hidden)),
        g.tensor("hidden_state", (BATCH, hidden), variable=True),
    ]
    y = g.tensor("rnn_step", (BATCH, hidden))
    options = schema.RNNOptionsT()
    options.fusedActivationFunction = activation
    return g.finish(24, inputs, [y], schema.BuiltinOptions.RNNOptions, options, [x])


class Graph:
    """One subgraph of one op, built with schema_py_generated's object API."""

    def __init__(self) -> None:
        self.tensors: list = []
        self.buffers = [schema.BufferT()]  # buffer 0: the empty one

    def tensor(self, name: str, shape, value: np.ndarray | None = None, variable: bool = False) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.isVariable = (
            name.encode(),
            list(shape),
            schema.TensorType.FLOAT32,
            variable,
        )
        buffer = schema.BufferT()
        if value is not None:
            buffer.data = np.ascontiguousarray(value, dtype="<f4").view(np.uint8).reshape(-1)
        self.buffers.append(buffer)
        t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def finish(
        self, code: int, inputs, outputs, options_type: int, options, graph_inputs, *, external: bool = False
    ) -> bytes:
        """The model's bytes; ``external``: each buffer's data after the flatbuffer, found by its
        ``offset`` (from the file's start) and ``size``, as TFLite stores models past 2 GB."""
        if not external:
            return self._pack(code, inputs, outputs, options_type, options, graph_inputs)
        blobs = [b.data for b in self.buffers]
        for buffer in self.buffers:  # first with placeholders: the fields' width fixes the size
            buffer.data, buffer.offset, buffer.size = None, 1, 1
        head = self._pack(code, inputs, outputs, options_type, options, graph_inputs)
        tail, start = b"", -(-len(head) // 16) * 16
        for buffer, blob in zip(self.buffers, blobs):
            if blob is None:
                continue
            buffer.offset, buffer.size = start + len(tail), blob.size
            tail += bytes(blob) + bytes(-blob.size % 16)
        packed = self._pack(code, inputs, outputs, options_type, options, graph_inputs)
        assert len(packed) == len(head)
        return packed + bytes(start - len(packed)) + tail

    def _pack(self, code: int, inputs, outputs, options_type: int, options, graph_inputs) -> bytes:
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        sub = schema.SubGraphT()
        sub.tensors, sub.operators, sub.name = self.tensors, [op], b"main"
        sub.inputs, sub.outputs = list(graph_inputs), list(outputs[:1])
        opcode = schema.OperatorCodeT()
        opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), 1
        model = schema.ModelT()
        model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [opcode], [sub], self.buffers
        model.description = b"lstmconv fixture: one op built with tensorflow.lite schema_py_generated"
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def uniform(rng, *shape) -> np.ndarray:
    return rng.uniform(-INIT, INIT, shape).astype("float32")


def lstm_inputs(g: Graph, rng, side: str, features: int, hidden: int, *, cifg=False, peephole=False, proj=0):
    """The 17 weight inputs of one direction (indices, -1 for absent)."""
    out = proj or hidden
    words = ("input", "forget", "cell", "output")
    ids = []
    for w in words:
        ids.append(
            -1
            if cifg and w == "input"
            else g.tensor(f"{side}input_to_{w}_weights", (hidden, features), uniform(rng, hidden, features))
        )
    for w in words:
        ids.append(
            -1
            if cifg and w == "input"
            else g.tensor(f"{side}recurrent_to_{w}_weights", (hidden, out), uniform(rng, hidden, out))
        )
    for w in ("input", "forget", "output"):
        absent = not peephole or (cifg and w == "input")
        ids.append(-1 if absent else g.tensor(f"{side}cell_to_{w}_weights", (hidden,), uniform(rng, hidden)))
    for w in words:
        ids.append(
            -1 if cifg and w == "input" else g.tensor(f"{side}{w}_gate_bias", (hidden,), uniform(rng, hidden))
        )
    ids.append(
        g.tensor(f"{side}projection_weights", (proj, hidden), uniform(rng, proj, hidden)) if proj else -1
    )
    ids.append(-1)  # projection bias
    return ids


def bidirectional_lstm(seed: int, features=4, hidden=5) -> bytes:
    rng, g = np.random.default_rng(seed), Graph()
    x = g.tensor("x", (TIME, BATCH, features))
    fw = lstm_inputs(g, rng, "fw_", features, hidden)
    bw = lstm_inputs(g, rng, "bw_", features, hidden)
    states = [g.tensor(name, (BATCH, hidden), variable=True) for name in ("fw_h", "fw_c", "bw_h", "bw_c")]
    y = g.tensor("bidirectional_sequence_lstm", (TIME, BATCH, 2 * hidden))
    options = schema.BidirectionalSequenceLSTMOptionsT()
    # Time-major, the op's default: TF 2.21's kernel gets the last batch row wrong when
    # merge_outputs is set on batch-major input (seen here: 0.1 off; two outputs are right).
    options.fusedActivationFunction, options.mergeOutputs, options.timeMajor = (
        schema.ActivationFunctionType.TANH,
        True,
        True,
    )
    inputs = [x, *fw, *bw, *states, *([-1] * 9)]
    return g.finish(52, inputs, [y], schema.BuiltinOptions.BidirectionalSequenceLSTMOptions, options, [x])


def lstm(
    seed: int,
    features=4,
    hidden=6,
    proj=3,
    *,
    cifg=True,
    peephole=True,
    cell_clip=0.6,
    proj_clip=0.25,
    time_major=True,
    activation=4,
    projection_bias=False,
    layer_norm=False,
) -> bytes:
    """UNIDIRECTIONAL_SEQUENCE_LSTM; by default CIFG with peepholes and a projection, cell_clip,
    proj_clip and a time-major input."""
    rng, g = np.random.default_rng(seed), Graph()
    x = g.tensor("x", (TIME, BATCH, features) if time_major else (BATCH, TIME, features))
    weights = lstm_inputs(g, rng, "", features, hidden, cifg=cifg, peephole=peephole, proj=proj)
    if projection_bias:
        weights[-1] = g.tensor("projection_bias", (proj,), uniform(rng, proj))
    out = proj or hidden
    states = [g.tensor("h", (BATCH, out), variable=True), g.tensor("c", (BATCH, hidden), variable=True)]
    norms = [
        g.tensor(f"{w}_layer_norm_coefficients", (hidden,), uniform(rng, hidden)) if layer_norm else -1
        for w in ("input", "forget", "cell", "output")
    ]
    y = g.tensor("cifg_lstm", (TIME, BATCH, out) if time_major else (BATCH, TIME, out))
    options = schema.UnidirectionalSequenceLSTMOptionsT()
    options.fusedActivationFunction, options.cellClip, options.projClip = activation, cell_clip, proj_clip
    options.timeMajor = time_major
    inputs = [x, *weights, *states, *norms]
    return g.finish(44, inputs, [y], schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions, options, [x])


def lstm_step(seed: int, features=4, hidden=5, *, kernel_type=0) -> bytes:
    """The plain LSTM op (full kernel): one time step, input (batch, features)."""
    rng, g = np.random.default_rng(seed), Graph()
    x = g.tensor("x", (BATCH, features))
    weights = lstm_inputs(g, rng, "", features, hidden, peephole=True)
    states = [g.tensor("h", (BATCH, hidden), variable=True), g.tensor("c", (BATCH, hidden), variable=True)]
    y = g.tensor("lstm_step", (BATCH, hidden))
    options = schema.LSTMOptionsT()
    options.fusedActivationFunction, options.kernelType = 4, kernel_type
    inputs = [x, *weights, *states, -1, -1, -1, -1]
    return g.finish(16, inputs, [y], schema.BuiltinOptions.LSTMOptions, options, [x])


def rnn(seed: int, *, bidirectional: bool, features=4, hidden=5, activation=4, external=False) -> bytes:
    rng, g = np.random.default_rng(seed), Graph()
    x = g.tensor("x", (BATCH, TIME, features))
    inputs = [x]
    for side in ("fw_", "bw_") if bidirectional else ("",):
        inputs += [
            g.tensor(f"{side}weights", (hidden, features), uniform(rng, hidden, features)),
            g.tensor(f"{side}recurrent_weights", (hidden, hidden), uniform(rng, hidden, hidden)),
            g.tensor(f"{side}bias", (hidden,), uniform(rng, hidden)),
            g.tensor(f"{side}hidden_state", (BATCH, hidden), variable=True),
        ]
    if bidirectional:
        y = g.tensor("bidirectional_sequence_rnn", (BATCH, TIME, 2 * hidden))
        options = schema.BidirectionalSequenceRNNOptionsT()
        options.timeMajor, options.fusedActivationFunction, options.mergeOutputs = False, activation, True
        return g.finish(
            46,
            [*inputs, -1, -1, -1],
            [y],
            schema.BuiltinOptions.BidirectionalSequenceRNNOptions,
            options,
            [x],
        )
    y = g.tensor("sequence_rnn", (BATCH, TIME, hidden))
    options = schema.SequenceRNNOptionsT()
    options.timeMajor, options.fusedActivationFunction = False, activation
    return g.finish(
        35, inputs, [y], schema.BuiltinOptions.SequenceRNNOptions, options, [x], external=external
    )
