"""Draw docs/gates.png: how Keras, PyTorch and ONNX stack the four gates of one LSTM and its biases.

    .venv/bin/python scripts/gate_figure.py [--out docs/gates.png]

The blocks are not drawn from a table typed here: they are the gate slices ``inspect --as``
reports (``lstmconv.inspection.view``), for an LSTM with input 3 and hidden 4, so the figure
shows what the code says.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from lstmconv import inspection
from lstmconv.ir import Cell, Direction, Kind, Layer

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"i": "#4e79a7", "f": "#f28e2b", "g": "#59a14f", "o": "#e15759"}
INPUT, HIDDEN = 3, 4


def _layer() -> Layer:
    rng = np.random.default_rng(0)

    def gates(cols: int | None) -> dict[str, np.ndarray]:
        shape = (HIDDEN, cols) if cols else (HIDDEN,)
        return {g: rng.standard_normal(shape).astype(np.float32) for g in "ifgo"}

    cell = Cell(gates(INPUT), gates(HIDDEN), gates(None), gates(None))
    return Layer(Kind.LSTM, (cell,), name="lstm", direction=Direction.FORWARD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "gates.png"))
    out = Path(parser.parse_args().out)
    layer = _layer()
    views = [(name, inspection.view(layer, name)) for name in ("keras", "torch", "onnx")]
    rows = [(name, view, tensor) for name, view in views for tensor in view["tensors"]]
    figure, axis = plt.subplots(figsize=(11, 0.62 * len(rows) + 1.4))
    width = 2 * 4 * HIDDEN  # ONNX's B holds eight blocks
    for row, (_name, view, tensor) in enumerate(rows):
        y = len(rows) - 1 - row
        label = f"{view['framework']}  {tensor['name'].rsplit('/', 1)[-1]}  {tuple(tensor['shape'])}"
        axis.text(-0.6, y + 0.4, label, ha="right", va="center", fontsize=9)
        for s in tensor["slices"]:
            start, stop = s["range"]
            axis.add_patch(
                Rectangle((start, y), stop - start, 0.8, facecolor=COLOURS[s["gate"]], edgecolor="white")
            )
            stored = s["stored"] if s["stored"] == s["gate"] else f"{s['stored']}={s['gate']}"
            text = f"{s['role']}_{stored}"
            axis.text((start + stop) / 2, y + 0.4, text, ha="center", va="center", color="white", fontsize=8)
        axis.text(width + 0.4, y + 0.4, "gates along axis " + str(tensor["slices"][0]["axis"]), fontsize=8)
    for row in range(1, len(rows)):
        if rows[row][0] != rows[row - 1][0]:
            axis.axhline(len(rows) - row - 0.1, color="#999", linewidth=0.6)
    axis.set(xlim=(-0.5, width + 6), ylim=(-0.3, len(rows)), xticks=range(0, width + 1, HIDDEN), yticks=[])
    axis.set_xlabel(f"index along the gate axis (hidden size H = {HIDDEN}; input I = {INPUT})")
    for side in ("top", "right", "left"):
        axis.spines[side].set_visible(False)
    handles = [Rectangle((0, 0), 1, 1, facecolor=c) for c in COLOURS.values()]
    names = ["i input", "f forget", "g cell candidate (Keras/ONNX c)", "o output"]
    axis.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, frameon=False)
    axis.set_title(
        "One LSTM, three stackings: Keras i·f·c·o (one summed bias), PyTorch i·f·g·o "
        "(b_ih, b_hh apart), ONNX i·o·f·c (B = [Wb; Rb])",
        fontsize=10,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110, bbox_inches="tight", metadata={"Software": None})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
