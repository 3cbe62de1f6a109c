"""Building runnable ONNX models from the IR: input ``input`` and output ``output``
(batch, time, features), one native LSTM/GRU/RNN node per layer (layout 0), the ops that
merge its directions, and the weights either as arrays or, streaming, as the IR's blocks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import __version__, steps
from ...ir import DEFAULT_ACTIVATIONS, Kind, Layer, Model
from ...plain import NO_OPS, PlainKind, PlainLayer
from .. import _common
from . import plain_out, proto
from .names import (
    BFLOAT16_OPSET,
    DEFAULT_OPSET,
    FROM_IR,
    GATE_ORDER,
    OP_NAMES,
    PEEPHOLE_ORDER,
    WEIGHT_INPUTS,
    check,
)

_log = logging.getLogger("lstmconv.formats.onnx")


class Graph:
    """Nodes and initializers being built. The weight initializers are placeholders: their bytes
    stay as the IR's per-gate blocks (``payload``) until the model is written or filled."""

    def __init__(self) -> None:
        self.nodes: list[proto.Node] = []
        self.initializers: list[proto.Tensor] = []
        self.payload: dict[str, list[np.ndarray]] = {}

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(proto.from_array(value, name))
        return name

    def weight(self, name: str, shape: tuple[int, ...], blocks: list[np.ndarray]) -> str:
        self.initializers.append(proto.Tensor(name, tuple(shape), proto.dtype_code(blocks[0].dtype)))
        self.payload[name] = blocks
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, name: str | None = None, **attrs: Any) -> str:
        self.nodes.append(proto.Node(op, list(inputs), [output], name or output, attrs))
        return output


def opset_for(model: Model, opset: int | None) -> int:
    """The asked opset, or the lowest one that holds the model's dtypes."""
    bfloat16 = any(layer.dtype.name == "bfloat16" for layer in model)
    if opset is None:
        return BFLOAT16_OPSET if bfloat16 else DEFAULT_OPSET
    needed = BFLOAT16_OPSET
    if bfloat16 and opset < needed:
        raise _common.UnsupportedFeatureError(
            f"bfloat16 LSTM/GRU/RNN need opset {needed}, but opset {opset} was asked",
            hint="leave the opset to lstmconv, or cast the weights (--dtype float32)",
        )
    return opset


def assemble(
    model: Model,
    graph: Graph,
    opset: int | None,
    input_name: str | None = None,
    output_name: str | None = None,
) -> proto.ModelProto:
    """The model's layers as native nodes. Layers the source links directly are chained; a model
    that is one chain has input ``input`` and output ``output`` (or ``input_name`` and
    ``output_name``); otherwise each chain has its own, named after its first and last layer
    (``<layer>_input``, ``<layer>_output``), and naming them is refused."""
    opset = opset_for(model, opset)
    proto.ir_version(opset)  # an opset lstmconv does not know is refused before anything is written
    for layer in model.layers:
        check(layer)
    if any(layer.kind not in NO_OPS for layer in model.around):
        why = plain_out.not_carried(model)
        if why is None:
            return _assemble_whole(model, graph, opset, input_name or "input", output_name or "output")
        _log.warning(
            "ONNX: the plain layers %s are not written (%s); the recurrent layers are",
            ", ".join(f'"{layer.name}"' for layer in model.around),
            why,
        )
    prefixes = _common.identifiers(model.layers)
    chains = model.chains()
    if len(chains) > 1 and (input_name or output_name):
        raise _common.UnsupportedFeatureError(
            f"the model is {len(chains)} separate chains of layers, each with its own input and output "
            f"(<layer>_input, <layer>_output): input_name/output_name name a one-chain model's",
            hint="select one chain of layers (--layer), or leave the names to lstmconv",
        )
    if input_name is not None and input_name == output_name:
        raise _common.UnsupportedFeatureError(f"the input and the output are both named {input_name!r}")
    single = (input_name or "input", output_name or "output")
    inputs, outputs = [], []
    for chain in chains:
        first, last = prefixes[chain[0].name], prefixes[chain[-1].name]
        names = single if len(chains) == 1 else (f"{first}_input", f"{last}_output")
        dtype = chain[0].dtype
        x = graph.node(
            "Transpose",
            [names[0]],
            "time_major" if len(chains) == 1 else f"{first}/time_major",
            perm=[1, 0, 2],
        )
        for layer in chain:
            prefix = prefixes[layer.name]
            if layer.dtype != dtype:
                x = graph.node("Cast", [x], f"{prefix}/cast", to=proto.dtype_code(layer.dtype))
            x = _add_layer(graph, prefix, layer, x, opset)
            dtype = layer.dtype
        graph.node("Transpose", [x], names[1], perm=[1, 0, 2])
        elem_in, elem_out = proto.dtype_code(chain[0].dtype), proto.dtype_code(chain[-1].dtype)
        inputs.append(proto.value_info(names[0], elem_in, ["batch", "time", chain[0].input_size]))
        outputs.append(proto.value_info(names[1], elem_out, ["batch", "time", chain[-1].output_size]))
    return proto.ModelProto(graph.nodes, graph.initializers, inputs, outputs, opset, __version__)


def _assemble_whole(
    model: Model, graph: Graph, opset: int, input_name: str, output_name: str
) -> proto.ModelProto:
    """A model that is one chain, plain layers and recurrent, in model order: batch-major
    values between layers (time-major inside each run of recurrent layers); input int64 ids
    (batch, time) when it starts with an Embedding, else (batch, time, features)."""
    if input_name == output_name:
        raise _common.UnsupportedFeatureError(f"the input and the output are both named {input_name!r}")
    everything = model.everything()
    prefixes = _common.identifiers(everything)
    x, time_major, dtype = input_name, False, None
    for layer in everything:
        prefix = prefixes[layer.name]
        if isinstance(layer, Layer) != time_major:
            x = graph.node(
                "Transpose", [x], f"{prefix}/{'time' if not time_major else 'batch'}_major", perm=[1, 0, 2]
            )
            time_major = not time_major
        if layer.dtype is not None and dtype is not None and layer.dtype != dtype:
            x = graph.node("Cast", [x], f"{prefix}/cast", to=proto.dtype_code(layer.dtype))
        if isinstance(layer, Layer):
            x = _add_layer(graph, prefix, layer, x, opset)
        else:
            x = plain_out.add(graph, prefix, layer, x, opset)
        dtype = layer.dtype or dtype
    if time_major:
        x = graph.node("Transpose", [x], f"{output_name}/batch_major", perm=[1, 0, 2])
    graph.node("Identity", [x], output_name)
    first = next(layer for layer in everything if layer.input_size is not None or layer.dtype is not None)
    embedded = isinstance(first, PlainLayer) and first.kind is PlainKind.EMBEDDING
    x_info = (
        proto.value_info(input_name, proto.dtype_code("int64"), ["batch", "time"])
        if embedded
        else proto.value_info(
            input_name, proto.dtype_code(model.layers[0].dtype), ["batch", "time", first.input_size]
        )
    )
    width = next((layer.output_size for layer in reversed(everything) if layer.output_size), None)
    y_info = proto.value_info(
        output_name, proto.dtype_code(dtype or model.layers[-1].dtype), ["batch", "time", width]
    )
    return proto.ModelProto(graph.nodes, graph.initializers, [x_info], [y_info], opset, __version__)


def node_blocks(layer: Layer) -> dict[int, tuple[tuple[int, ...], list[np.ndarray]]]:
    """W, R and, where the layer has them, B and P, keyed by their input position on the node,
    each as (shape, the IR's per-gate blocks whose bytes in turn make the tensor)."""
    order, cells = GATE_ORDER[layer.kind], layer.cells
    d, g, h = layer.num_directions, len(order), layer.hidden_size
    tensors: dict[int, tuple[tuple[int, ...], list[np.ndarray]]] = {
        1: ((d, g * h, layer.input_size), [c.w_ih[gate] for c in cells for gate in order]),
        2: ((d, g * h, h), [c.w_hh[gate] for c in cells for gate in order]),
    }
    if layer.has_bias:
        tensors[3] = (
            (d, 2 * g * h),
            [
                block
                for c in cells
                if c.b_ih and c.b_hh
                for block in steps.join_bias_halves(
                    [c.b_ih[gate] for gate in order], [c.b_hh[gate] for gate in order]
                )
            ],
        )
    if layer.has_peepholes:
        tensors[7] = ((d, 3 * h), [c.peephole[gate] for c in cells if c.peephole for gate in PEEPHOLE_ORDER])
    return tensors


def node_tensors(layer: Layer) -> dict[int, np.ndarray]:
    """W, R and, where the layer has them, B and P as arrays, keyed by their input position."""
    return {
        index: np.concatenate([block.ravel() for block in blocks]).reshape(shape)
        for index, (shape, blocks) in node_blocks(layer).items()
    }


def _add_layer(graph: Graph, prefix: str, layer: Layer, x: str, opset: int) -> str:
    inputs = [x, "", "", "", "", "", "", ""]
    for index, (shape, blocks) in node_blocks(layer).items():
        inputs[index] = graph.weight(f"{prefix}.{WEIGHT_INPUTS[index]}", shape, blocks)
    while inputs[-1] == "":
        inputs.pop()
    y = graph.node(OP_NAMES[layer.kind], inputs, f"{prefix}/Y", name=layer.name, **_attributes_of(layer))
    if layer.reversed_output:
        y = graph.node(
            "Slice",
            [
                y,
                *(
                    graph.constant(f"{prefix}.{n}", np.array([v], np.int64))
                    for n, v in (
                        ("starts", -1),
                        ("ends", np.iinfo(np.int64).min),
                        ("axes", 0),
                        ("steps", -1),
                    )
                ),
            ],
            f"{prefix}/Y_reversed",
        )
    return _merge(graph, prefix, layer, y, opset)


def _merge(graph: Graph, prefix: str, layer: Layer, y: str, opset: int) -> str:
    """(time, D, batch, H) -> (time, batch, features) as the layer merges its directions."""
    if layer.num_directions == 1 or layer.merge != "concat":
        axis = graph.constant(f"{prefix}.direction_axis", np.array([1], np.int64))
    if layer.num_directions == 1:
        return graph.node("Squeeze", [y, axis], f"{prefix}/out")
    if layer.merge == "concat":
        moved = graph.node("Transpose", [y], f"{prefix}/Y_batch_major", perm=[0, 2, 1, 3])
        shape = graph.constant(f"{prefix}.concat_shape", np.array([0, 0, -1], np.int64))
        return graph.node("Reshape", [moved, shape], f"{prefix}/out")
    op = {"sum": "ReduceSum", "mul": "ReduceProd", "ave": "ReduceMean"}[layer.merge]
    if op == "ReduceSum" or opset >= 18:
        return graph.node(op, [y, axis], f"{prefix}/out", keepdims=0)
    return graph.node(op, [y], f"{prefix}/out", axes=[1], keepdims=0)


def _attributes_of(layer: Layer) -> dict[str, Any]:
    attrs: dict[str, Any] = {"hidden_size": layer.hidden_size, "direction": layer.direction.value}
    if layer.activations != DEFAULT_ACTIVATIONS[layer.kind]:
        attrs["activations"] = [FROM_IR[a.name] for a in layer.activations] * layer.num_directions
        alphas = [a.alpha for a in layer.activations if a.alpha is not None] * layer.num_directions
        betas = [a.beta for a in layer.activations if a.beta is not None] * layer.num_directions
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    if layer.clip is not None:
        attrs["clip"] = layer.clip
    if layer.input_forget:
        attrs["input_forget"] = 1
    if layer.kind is Kind.GRU:
        attrs["linear_before_reset"] = int(layer.reset_after)
    return attrs
