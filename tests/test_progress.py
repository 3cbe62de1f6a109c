"""The progress line's byte count: what the streaming writers report, and how it is shown."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_layer

import lstmconv
from lstmconv import progress
from lstmconv.ir import Direction, Kind, Model


def test_the_count_shows_bytes_done_and_the_time_left(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    progress.expect(8 << 20)
    try:
        assert progress.counted(progress.threading.get_ident()) == " 0/8 MiB"
        progress.advance(2 << 20)
        now[0] += 1.0  # 2 MiB a second: 6 MiB left take 3 s
        assert progress.counted(progress.threading.get_ident()) == " 2/8 MiB, ~3 s left"
    finally:
        progress.finish()
    assert progress.counted(progress.threading.get_ident()) == ""
    progress.expect(3 << 10, "into the archive")
    try:
        assert progress.counted(progress.threading.get_ident()) == " 0/3 KiB into the archive"
    finally:
        progress.finish()


@pytest.mark.parametrize("ending", [".onnx", ".pt", ".keras", ".safetensors", ".npz"])
def test_each_streaming_writer_counts_every_weight_byte(tmp_path, monkeypatch, ending: str) -> None:
    rng = np.random.default_rng(2)
    model = Model(
        (
            random_layer(rng, Kind.LSTM, 4, 6, direction=Direction.BIDIRECTIONAL, name="a"),
            random_layer(rng, Kind.GRU, 12, 5, name="b"),
        )
    )
    expected, done = [], [0]
    monkeypatch.setattr(progress, "expect", lambda total, what="": expected.append(total))
    monkeypatch.setattr(progress, "advance", lambda n: done.__setitem__(0, done[0] + n))
    lstmconv.write(model, tmp_path / f"m{ending}")
    assert expected and done[0] == sum(expected)  # every byte announced is counted, no more
    stored = sum(a.nbytes for layer in model for cell in layer.cells for _, a in cell.tensors())
    lstm_bias = 2 * 4 * 6 * 4  # Keras sums b_ih and b_hh: one (4·6,) float32 bias per cell
    assert expected[0] == (stored - lstm_bias if ending == ".keras" else stored)
    assert len(expected) == 1  # .keras too: its weights file is streamed into the archive, not copied
    # and what was counted is in the file: read back, the same weights
    assert (
        lstmconv.read(tmp_path / f"m{ending}")[0].cells[0].w_ih["i"].tobytes()
        == model[0].cells[0].w_ih["i"].tobytes()
    )
