"""ONNX fixtures of issue 14, as such files are found, each made by the real tool that writes it,
with onnxruntime's outputs of the original model stored beside it (``*.io.npz``); listed in
``fixtures/onnx_found.json`` (not ``manifest.json``: their stored outputs are per branch, or of
a quantized model, which tests/test_found_onnx.py checks with their own rules).

- ``onnx_script_if_lstm.onnx``: ``torch.onnx.export(dynamo=False)`` of a ``torch.jit.script``
  module picking one of two ``nn.LSTM`` by a tensor condition: an ``If`` with an LSTM node in
  each branch, whose weights torch leaves as Slice/Concat/Unsqueeze of outer Constant nodes.
- ``onnx_quantized_lstm.onnx``: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights,
  ``op_types_to_quantize=["LSTM"]``) of a torch-exported bidirectional ``nn.LSTM``: a
  ``DynamicQuantizeLSTM`` node of the ``com.microsoft`` domain. Its float original is kept
  (``onnx_quantized_lstm.float.onnx``) to measure how far dequantization is from it.

Run: ``python scripts/make_onnx_found_fixtures.py``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SEED = 20261414


class _PickByRate(torch.nn.Module):
    """Two LSTMs, one chosen by the sign of ``rate`` (a model picking a branch by sample rate)."""

    def __init__(self) -> None:
        super().__init__()
        self.low = torch.nn.LSTM(3, 5, batch_first=True)
        self.high = torch.nn.LSTM(3, 5, batch_first=True)

    def forward(self, x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        if bool(rate.sum() > 0):
            y, _ = self.high(x)
        else:
            y, _ = self.low(x)
        return y


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def make_if() -> dict:
    torch.manual_seed(SEED)
    module = torch.jit.script(_PickByRate().eval())
    path = FIXTURES / "onnx_script_if_lstm.onnx"
    x = torch.randn(3, 7, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (x, torch.tensor([1.0])),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["x", "rate"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch", 1: "time"}},
        )
    session = _session(path)
    x_np = x.numpy()
    outs = {}
    for branch, rate in (("then", 1.0), ("else", -1.0)):
        feed = {"x": x_np, "rate": np.array([rate], np.float32)}
        outs[f"y_{branch}"] = session.run(None, feed)[0]
    with torch.no_grad():  # the module's own outputs, to show the ONNX file is the module
        np.testing.assert_allclose(outs["y_then"], module(x, torch.tensor([1.0])).numpy(), atol=1e-5)
        np.testing.assert_allclose(outs["y_else"], module(x, torch.tensor([-1.0])).numpy(), atol=1e-5)
    np.savez(FIXTURES / "onnx_script_if_lstm.io.npz", x=x_np, **outs)
    return {
        "description": "torch.jit.script module choosing one of two nn.LSTM by a tensor condition: "
        "an If with an LSTM node in each branch, weights as Slice/Concat/Unsqueeze of outer Constants",
        "file": "onnx_script_if_lstm.onnx",
        "io": "onnx_script_if_lstm.io.npz",
        "made_by": f"torch {torch.__version__} torch.jit.script + torch.onnx.export(dynamo=False); "
        f"outputs by onnxruntime {onnxruntime.__version__} (rate 1 runs then_branch = self.high, "
        "rate -1 else_branch = self.low)",
        "layers": {"If/then_branch/LSTM": "y_then", "If/else_branch/LSTM_1": "y_else"},
        "seed": SEED,
    }


def make_quantized() -> dict:
    torch.manual_seed(SEED + 1)
    module = torch.nn.LSTM(4, 6, batch_first=True, bidirectional=True).eval()
    float_path = FIXTURES / "onnx_quantized_lstm.float.onnx"
    path = FIXTURES / "onnx_quantized_lstm.onnx"
    x = torch.randn(3, 7, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (x,),
            str(float_path),
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y", "h", "c"],
            dynamic_axes={"x": {0: "batch", 1: "time"}},
        )
    # reduce_range: 7-bit weights, as onnxruntime's docs advise on x86 without VNNI, where the
    # u8·s8 products saturate (without it, onnxruntime's own outputs here are 0.3 off the float
    # model's); per_channel: a scale per gate row, (D, 4H).
    quantize_dynamic(
        str(float_path),
        str(path),
        op_types_to_quantize=["LSTM"],
        weight_type=QuantType.QInt8,
        reduce_range=True,
        per_channel=True,
    )
    ops = [(node.op_type, node.domain) for node in onnx.load(str(path)).graph.node]
    assert ("DynamicQuantizeLSTM", "com.microsoft") in ops, ops
    x_np = x.numpy()
    y = _session(path).run(None, {"x": x_np})[0]
    y_float = _session(float_path).run(None, {"x": x_np})[0]
    np.savez(FIXTURES / "onnx_quantized_lstm.io.npz", x=x_np, y=y, y_float=y_float)
    return {
        "description": "onnxruntime.quantization.quantize_dynamic(op_types_to_quantize=['LSTM'], "
        "QInt8, reduce_range, per_channel) of torch.onnx.export of a bidirectional nn.LSTM: "
        "DynamicQuantizeLSTM (com.microsoft)",
        "file": "onnx_quantized_lstm.onnx",
        "float_file": "onnx_quantized_lstm.float.onnx",
        "io": "onnx_quantized_lstm.io.npz",
        "made_by": f"torch {torch.__version__} torch.onnx.export(dynamo=False), onnxruntime "
        f"{onnxruntime.__version__} quantize_dynamic; y by onnxruntime on the quantized model, "
        "y_float on the float model",
        "seed": SEED + 1,
    }


def main() -> None:
    entries = {"onnx_script_if_lstm": make_if(), "onnx_quantized_lstm": make_quantized()}
    (FIXTURES / "onnx_found.json").write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
