"""The command line: every exit status of SPEC §4 with its message, and inspect/convert with
TensorFlow, Keras and torch made unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import require

import lstmconv
from lstmconv.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KERAS_FILE = FIXTURES / "keras3_stacked_bidir.keras"


def _cli(*args: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lstmconv`` in a fresh process, with ``blocked`` modules unimportable."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    code = prelude + "from lstmconv.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_inspect_prints_every_layer_with_gates_and_counts(capsys) -> None:
    assert main(["inspect", str(KERAS_FILE)]) == 0
    out = capsys.readouterr().out
    assert "2 recurrent layer(s)" in out
    assert 'layer "encoder": LSTM, bidirectional, merge concat; input 6, hidden 8, output 16' in out
    assert "forward_layer/cell/kernel" in out and "gates i·f·c·o" in out
    assert "forward/w_ih/{i,f,g,o}" in out and "(8, 6) each" in out


def test_inspect_json(capsys) -> None:
    assert main(["inspect", str(FIXTURES / "torch_export_gru.onnx"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "onnx"
    first = data["layers"][0]
    assert first["kind"] == "gru" and first["gru_variant"] == "reset-after"
    assert {"name": "W", "shape": [1, 15, 4], "gates": "z·r·h"} in first["stored"]
    assert first["parameters"] == {"stored": 1 * 15 * 4 + 15 * 5 + 30, "canonical": 15 * 4 + 15 * 5 + 30}


def test_exit_0_and_the_table(tmp_path, capsys) -> None:
    require("onnxruntime")
    assert main(["convert", str(KERAS_FILE), str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max |a-b|" in out and "max rel" in out and "NO" not in out
    assert "source: keras, original file" in out and "target: onnxruntime, written file" in out


def test_exit_1_when_outputs_disagree(tmp_path, capsys) -> None:
    a = tmp_path / "a.npz"
    b = tmp_path / "b.npz"
    assert main(["convert", str(KERAS_FILE), str(a), "-q"]) == 0
    model = lstmconv.read(a)
    layer = model[0]
    cell = layer.cells[0]
    nudged = {gate: values + np.float32(1e-3) for gate, values in cell.w_ih.items()}
    other = lstmconv.Model(
        (layer.replace(cells=(type(cell)(nudged, cell.w_hh, cell.b_ih, cell.b_hh), layer.cells[1])), model[1])
    )
    lstmconv.write(other, b)
    capsys.readouterr()
    assert main(["verify", str(a), str(b)]) == 1
    assert "DISAGREE" in capsys.readouterr().err
    assert main(["verify", str(a), str(a), "-q"]) == 0


def test_exit_1_when_a_conversion_disagrees_and_nothing_is_written(tmp_path, capsys, monkeypatch) -> None:
    from lstmconv.formats import npz

    real = npz.arrays

    def tampered(model):
        arrays = real(model)
        key = next(k for k in arrays if k.endswith("/w_ih/i"))
        arrays[key] = arrays[key] + np.float32(0.01)
        return arrays

    monkeypatch.setattr(npz, "arrays", tampered)
    assert main(["convert", str(KERAS_FILE), str(tmp_path / "m.npz")]) == 1
    assert "disagrees with the source" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", str(KERAS_FILE), "out.xyz"], "cannot tell the format from the file name"),
        (["inspect", "missing.onnx"], "missing.onnx: no such file"),
        (
            ["convert", str(FIXTURES / "tf_keras_hard_sigmoid.h5"), "{tmp}/m.safetensors"],
            "PyTorch cannot express",
        ),
        (["convert", str(KERAS_FILE), "{tmp}/m.h5"], "legacy Keras .h5 is read-only"),
    ],
    ids=["unknown-format", "missing-file", "unsupported", "read-only-format"],
)
def test_exit_2_one_line_no_traceback(tmp_path, capsys, args, message) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_exit_2_for_a_corrupt_file_and_debug_shows_the_traceback(tmp_path) -> None:
    broken = tmp_path / "broken.keras"
    broken.write_bytes(KERAS_FILE.read_bytes()[:2000])
    result = _cli("inspect", str(broken))
    assert (
        result.returncode == 2
        and result.stderr.startswith("lstmconv: error: ")
        and "broken.keras" in result.stderr
    )
    assert result.stderr.count("\n") == 1
    debug = _cli("inspect", str(broken), "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_exit_2_for_bad_usage() -> None:
    result = _cli("convert", "only-one-argument")
    assert result.returncode == 2 and "usage:" in result.stderr


def test_exit_2_for_a_missing_dependency_says_how_to_fix(tmp_path) -> None:
    """A legacy (non-zip) .pt file is read by torch.load alone."""
    torch = require("torch")
    legacy = tmp_path / "legacy.pt"
    torch.save(torch.nn.GRU(3, 4).state_dict(), legacy, _use_new_zipfile_serialization=False)
    out = tmp_path / "out"
    out.mkdir()
    result = _cli("convert", str(legacy), str(out / "m.onnx"), blocked=("torch",))
    assert result.returncode == 2
    assert "needs torch, which is not installed (pip install 'lstmconv[torch]')" in result.stderr
    assert os.listdir(out) == []


BLOCKED = ("tensorflow", "keras", "torch", "tf_keras")


@pytest.mark.parametrize(
    "name", ["keras3_stacked_bidir.keras", "tf_keras_hard_sigmoid.h5", "torch_export_lstm.onnx"]
)
def test_inspect_without_frameworks(name: str) -> None:
    result = _cli("inspect", str(FIXTURES / name), blocked=BLOCKED)
    assert result.returncode == 0, result.stderr
    assert "recurrent layer(s)" in result.stdout


@pytest.mark.parametrize(
    ("source", "ending"),
    [
        ("keras3_stacked_bidir.keras", ".onnx"),
        ("keras3_stacked_bidir.keras", ".safetensors"),
        ("tf_keras_hard_sigmoid.h5", ".onnx"),
        ("tf_keras_weights_only.h5", ".npz"),
        ("torch_export_lstm.onnx", ".safetensors"),
        ("torch_export_gru.onnx", ".npz"),
    ],
)
def test_convert_without_frameworks_verifies_with_reference_and_onnxruntime(
    tmp_path, source: str, ending: str
) -> None:
    require("onnxruntime")
    dest = tmp_path / f"out{ending}"
    result = _cli("convert", str(FIXTURES / source), str(dest), blocked=BLOCKED)
    assert result.returncode == 0, result.stderr
    assert all("no model config" in line for line in result.stderr.splitlines())  # only the weights-only file
    if source.startswith(("keras", "tf_keras")):
        assert (
            "source: reference (keras, tensorflow is not installed (pip install 'lstmconv[keras]'))"
            in result.stdout
        )
    else:
        assert "source: onnxruntime, original file" in result.stdout
    if ending == ".safetensors":
        assert "target: reference (torch is not installed (pip install 'lstmconv[torch]'))" in result.stdout
    elif ending == ".onnx":
        assert "target: onnxruntime, written file" in result.stdout
    if source.startswith(("keras", "tf_keras")) and ending != ".onnx":
        assert "round trip only" in result.stdout
    with np.load(FIXTURES / source.replace(Path(source).suffix, ".io.npz")) as data:
        x, y = data["x"], data["y"]
    np.testing.assert_allclose(lstmconv.reference.run(lstmconv.read(dest), x), y, rtol=0, atol=2e-5)
    again = _cli("inspect", str(dest), blocked=BLOCKED)
    assert again.returncode == 0, again.stderr


def test_convert_without_frameworks_no_verify(tmp_path) -> None:
    result = _cli("convert", str(KERAS_FILE), str(tmp_path / "m.npz"), "--no-verify", blocked=BLOCKED)
    assert result.returncode == 0 and "not verified" in result.stdout


def test_formats_names_what_is_missing() -> None:
    result = _cli("formats", blocked=BLOCKED)
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "reference (lstmconv[torch] for torch)" in rows["torch"]
    assert "reference (lstmconv[keras] for keras)" in rows["keras"]
    assert all("needs" not in rows[name] for name in ("keras", "safetensors", "onnx", "npz"))  # read, write


def test_tensorflow_log_noise_stays_off_stderr(tmp_path) -> None:
    require("keras")
    result = _cli("convert", str(KERAS_FILE), str(tmp_path / "m.keras"))
    assert result.returncode == 0 and result.stderr == ""


def test_layer_selects_a_chain(tmp_path, capsys) -> None:
    dest = tmp_path / "decoder.npz"
    source = FIXTURES / "torch_checkpoint.pt"
    require("torch")
    assert main(["convert", str(source), str(dest), "--layer", "encoder.lstm.l1", "-q"]) == 0
    assert [layer.name for layer in lstmconv.read(dest)] == ["encoder.lstm.l1"]
    assert main(["convert", str(source), str(tmp_path / "x.npz"), "--layer", "nope"]) == 2
    assert "no layer named ['nope']" in capsys.readouterr().err


def test_config_names_a_weights_only_files_layers(capsys) -> None:
    weights = FIXTURES / "tf_keras_weights_only.h5"
    config = FIXTURES / "tf_keras_weights_only.json"
    assert main(["inspect", str(weights), "--config", str(config), "--json"]) == 0
    names = [layer["name"] for layer in json.loads(capsys.readouterr().out)["layers"]]
    with np.load(FIXTURES / "tf_keras_weights_only.io.npz") as data:
        model = lstmconv.read(weights, config=config)
        np.testing.assert_allclose(lstmconv.reference.run(model, data["x"]), data["y"], rtol=0, atol=2e-5)
    assert names == [layer.name for layer in model] and len(names) == 2


def test_nan_weights_warn_by_name_without_strict(tmp_path, caplog) -> None:
    model = lstmconv.read(KERAS_FILE)
    layer = model[1]
    cell = layer.cells[0]
    broken = {**cell.w_hh, "o": np.full_like(cell.w_hh["o"], np.inf)}
    path = lstmconv.write(
        lstmconv.Model(
            (model[0], layer.replace(cells=(type(cell)(cell.w_ih, broken, cell.b_ih, cell.b_hh),)))
        ),
        tmp_path / "m.npz",
    )
    with caplog.at_level("WARNING"):
        lstmconv.read(path)
    assert 'NaN or infinite weights in layer "decoder" › forward › w_hh/o' in caplog.text


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_on_a_terminal_only(tmp_path, quiet: bool) -> None:
    import pty

    primary, secondary = pty.openpty()
    args = ["convert", str(KERAS_FILE), str(tmp_path / "m.npz"), *(["-q"] if quiet else [])]
    code = "import sys\nfrom lstmconv.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {**os.environ, "LSTMCONV_PROGRESS_AFTER": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    shown = bytearray()

    def drain() -> None:  # a terminal reads all the while; an unread pty would block the writer
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    result = subprocess.run(
        [sys.executable, "-c", code, *args], stderr=secondary, stdout=subprocess.PIPE, env=env, timeout=300
    )
    os.close(secondary)
    reader.join(timeout=10)
    os.close(primary)
    assert result.returncode == 0
    assert (b"reading" in shown or b"verifying" in shown) is not quiet, bytes(shown)


@pytest.mark.parametrize("name", ["torch_export_lstm.onnx", "tf2onnx_keras_lstm.onnx"])
def test_onnx_files_are_read_without_the_onnx_package(tmp_path, name: str) -> None:
    """Reading (inspect, and conversion to a format that needs no onnx) never imports onnx."""
    blocked = (*BLOCKED, "onnx", "onnxruntime")
    result = _cli("inspect", str(FIXTURES / name), blocked=blocked)
    assert result.returncode == 0, result.stderr
    assert "recurrent layer(s)" in result.stdout and "onnx layout" in result.stdout
    dest = tmp_path / "m.npz"
    result = _cli("convert", str(FIXTURES / name), str(dest), blocked=blocked)
    assert result.returncode == 0, result.stderr
    with np.load(FIXTURES / name.replace(".onnx", ".io.npz")) as data:
        x, y = data["x"], data["y"]
    np.testing.assert_allclose(lstmconv.reference.run(lstmconv.read(dest), x), y, rtol=0, atol=2e-5)


def test_the_console_entry_leaves_without_teardown_but_with_everything_done(tmp_path) -> None:
    """``run`` ends with os._exit: the exit handlers still run (a temporary folder still alive is
    removed, logging flushed) and the standard streams are flushed, with main's exit status."""
    script = (
        "import logging, sys, tempfile, warnings\n"
        "from lstmconv.cli import _leave\n"
        "warnings.simplefilter('ignore')\n"  # lstmconv's warnings are also issued as warnings
        "folder = tempfile.TemporaryDirectory()\n"
        "logging.basicConfig(format='%(message)s')\n"
        "logging.getLogger('lstmconv').warning('warned')\n"
        "print(folder.name, end='')\n"  # no newline: only a flush gets it out of the buffer
        "_leave(3)\n"
        "print('never')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stdout and "never" not in result.stdout
    assert not os.path.exists(result.stdout)
    assert result.stderr.strip() == "warned"


@pytest.mark.parametrize("command", ["inspect", "convert", "bad"])
def test_python_m_lstmconv_prints_everything_and_exits_with_the_status(tmp_path, command: str) -> None:
    args = {
        "inspect": ["inspect", str(KERAS_FILE), "--json"],
        "convert": ["convert", str(KERAS_FILE), str(tmp_path / "m.npz"), "--no-verify"],
        "bad": ["convert", str(tmp_path / "missing.keras"), str(tmp_path / "m.npz")],
    }[command]
    result = subprocess.run(
        [sys.executable, "-m", "lstmconv", *args], capture_output=True, text=True, timeout=120
    )
    if command == "inspect":
        assert result.returncode == 0 and len(json.loads(result.stdout)["layers"]) == 2
    elif command == "convert":
        assert result.returncode == 0 and "wrote" in result.stdout
        assert len(lstmconv.read(tmp_path / "m.npz")) == 2
    else:
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no such file" in result.stderr
    assert sorted(os.listdir(tmp_path)) == (["m.npz"] if command == "convert" else [])


# -- issue 17: rough edges, each as a user meets it -------------------------------------------------
def _nan_npz(tmp_path: Path) -> Path:
    model = lstmconv.read(KERAS_FILE)
    layer = model[1]
    cell = layer.cells[0]
    broken = {**cell.w_hh, "o": np.full_like(cell.w_hh["o"], np.nan)}
    replaced = layer.replace(cells=(type(cell)(cell.w_ih, broken, cell.b_ih, cell.b_hh),))
    return Path(lstmconv.write(lstmconv.Model((model[0], replaced)), tmp_path / "nan.npz"))


def test_to_onnx_wins_over_a_txt_ending_with_opset_and_names(tmp_path) -> None:
    require("onnxruntime")
    import onnx

    dest = tmp_path / "model.txt"
    args = ["convert", str(KERAS_FILE), str(dest), "--to", "onnx", "--opset", "17"]
    assert main([*args, "--input-name", "x", "--output-name", "y", "-q"]) == 0
    proto = onnx.load(dest)
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["y"]
    assert [o.version for o in proto.opset_import if o.domain == ""] == [17]
    _same = lstmconv.read(dest, "onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 6))
    np.testing.assert_allclose(
        lstmconv.reference.run(_same, x), lstmconv.reference.run(lstmconv.read(KERAS_FILE), x), atol=1e-6
    )


def test_unknown_ending_without_to_says_the_cli_flag_and_keras_needs_its_ending(tmp_path, capsys) -> None:
    assert main(["convert", str(KERAS_FILE), str(tmp_path / "m.txt")]) == 2
    err = capsys.readouterr().err
    assert "pass --from/--to" in err and "format=" not in err
    assert main(["convert", str(KERAS_FILE), str(tmp_path / "m.txt"), "--to", "keras"]) == 2
    assert "keras files must end with .keras" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_onnx_flags_are_refused_for_other_outputs(tmp_path, capsys) -> None:
    assert main(["convert", str(KERAS_FILE), str(tmp_path / "m.npz"), "--opset", "17"]) == 2
    assert "--opset: for ONNX outputs only" in capsys.readouterr().err


def test_existing_output_is_refused_in_cli_words(tmp_path, capsys) -> None:
    dest = tmp_path / "m.npz"
    dest.write_bytes(b"keep")
    assert main(["convert", str(KERAS_FILE), str(dest)]) == 2
    err = capsys.readouterr().err
    assert "pass --force to replace it" in err and "overwrite=" not in err
    assert dest.read_bytes() == b"keep"


def test_verify_takes_from_for_both_or_each(tmp_path, capsys) -> None:
    a = Path(lstmconv.write(KERAS_FILE, tmp_path / "a.npz"))
    b = tmp_path / "b.bin"
    b.write_bytes(a.read_bytes())
    assert main(["verify", str(a), str(b), "-q"]) == 0  # .bin is torch's ending, but its bytes say npz
    capsys.readouterr()
    assert main(["verify", str(a), str(b), "--from-b", "npz", "-q"]) == 0
    assert main(["verify", str(b), str(b), "--from", "npz", "-q"]) == 0
    other = lstmconv.read(a)
    layer = other[0]
    cell = layer.cells[0]
    moved = {**cell.w_ih, "i": cell.w_ih["i"] + 0.5}
    changed = lstmconv.Model(
        (
            layer.replace(cells=(type(cell)(moved, cell.w_hh, cell.b_ih, cell.b_hh), *layer.cells[1:])),
            other[1],
        )
    )
    c = tmp_path / "c.weights"
    lstmconv.write(changed, tmp_path / "c.npz")
    os.rename(tmp_path / "c.npz", c)
    assert main(["verify", str(a), str(c), "--from-b", "npz", "-q"]) == 1


def test_nan_warning_once_before_the_output_never_naming_the_staging_path(tmp_path) -> None:
    source = _nan_npz(tmp_path)
    result = _cli("convert", str(source), str(tmp_path / "out.npz"))
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "NaN or infinite" in line]
    assert len(warned) == 1 and str(source) in warned[0] and ".lstmconv-" not in result.stderr
    # the warning reached the terminal before the table: written first, on the same stream
    merged = subprocess.run(
        [sys.executable, "-m", "lstmconv", "convert", str(source), str(tmp_path / "again.npz")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout
    assert merged.index("NaN or infinite") < merged.index("wrote ")


def test_no_config_warning_names_config_the_same_for_h5_and_weights_h5(tmp_path) -> None:
    legacy = FIXTURES / "tf_keras_weights_only.h5"
    renamed = tmp_path / "w.weights.h5"
    renamed.write_bytes(legacy.read_bytes())
    lines = []
    for path in (legacy, renamed):
        result = _cli("inspect", str(path))
        assert result.returncode == 0, result.stderr
        lines.append([line.replace(str(path), "F") for line in result.stderr.splitlines()])
    assert lines[0] == lines[1] and lines[0] and all("--config PATH" in line for line in lines[0])


def test_python_w_error_turns_a_warning_into_an_error(tmp_path) -> None:
    source = _nan_npz(tmp_path)
    code = "import lstmconv, sys; lstmconv.read(sys.argv[1]); print('read')"
    plain = subprocess.run([sys.executable, "-c", code, str(source)], capture_output=True, text=True)
    assert plain.returncode == 0 and "read" in plain.stdout
    strict = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, str(source)],
        capture_output=True,
        text=True,
    )
    assert strict.returncode == 1 and "LstmconvWarning" in strict.stderr and "NaN" in strict.stderr


def test_quiet_inspect_and_formats_print_less(capsys) -> None:
    assert main(["inspect", str(KERAS_FILE)]) == 0
    full = capsys.readouterr().out.splitlines()
    assert main(["inspect", str(KERAS_FILE), "-q"]) == 0
    short = capsys.readouterr().out.splitlines()
    assert len(short) == 3 and short[0] == full[0] and all(line in full for line in short)
    assert main(["formats", "-q"]) == 0
    names = capsys.readouterr().out.split()
    assert "npz" in names and "onnx" in names and all(name in lstmconv.registry.FORMATS for name in names)


def test_formats_says_what_reads_pt_without_torch(tmp_path) -> None:
    result = _cli("formats", blocked=("torch",))
    torch_row = next(line for line in result.stdout.splitlines() if line.startswith("torch "))
    assert "yes (legacy non-zip files need lstmconv[torch])" in torch_row
    assert "yes (.pt .pth .bin)" in torch_row  # writing, without torch too
    inspected = _cli("inspect", str(FIXTURES / "torch_checkpoint.pt"), "-q", blocked=("torch",))
    assert inspected.returncode == 0 and "2 recurrent layer(s)" in inspected.stdout
    dest = tmp_path / "m.npz"
    converted = _cli("convert", str(FIXTURES / "torch_checkpoint.pt"), str(dest), "-q", blocked=("torch",))
    assert converted.returncode == 0, converted.stderr
    with np.load(FIXTURES / "torch_checkpoint.io.npz") as data:
        y = lstmconv.reference.run(lstmconv.read(dest), data["x"])
        np.testing.assert_allclose(y, data["y"], rtol=0, atol=2e-6)


# -- inspect --as ----------------------------------------------------------------------------------
def test_inspect_as_torch_of_a_keras_file_gives_slices_formula_and_legend(capsys) -> None:
    assert main(["inspect", str(KERAS_FILE), "--as", "torch"]) == 0
    out = capsys.readouterr().out
    assert "as PyTorch (gates i·f·g·o):" in out
    assert "weight_ih_l0[0:8, :] = W_i  [8:16, :] = W_f  [16:24, :] = W_g  [24:32, :] = W_o" in out
    # encoder: I=6, H=8: 4·8·(6+8+2) = 512 per direction
    assert "parameters: 4·H·(I+H+2) = 512 per direction, ×2 = 1,024  (I=6, H=8)" in out


def test_inspect_as_json_slices_cut_the_written_tensors_into_the_canonical_gates(tmp_path, capsys) -> None:
    """The slices inspect --as onnx names, applied to the W, R and B the ONNX writer wrote, give
    back the canonical per-gate weights the IR holds (read from a PyTorch checkpoint)."""
    require("onnx")
    import onnx
    from onnx import numpy_helper

    source = FIXTURES / "torch_checkpoint.pt"
    assert main(["inspect", str(source), "--as", "onnx", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["as"] == "onnx" and [layer["name"] for layer in info["plain"]] == ["head"]  # its nn.Linear
    assert info["as_parameters"] == sum(layer["as"]["parameters"] for layer in info["layers"])
    first = info["layers"][0]["as"]
    assert first["gate_order"] == ["i", "o", "f", "c"] and first["canonical_order"] == ["i", "o", "f", "g"]
    assert any("c = canonical g" in line for line in first["legend"])
    model = lstmconv.read(source).select(["encoder.lstm.l0"])
    dest = tmp_path / "m.onnx"
    lstmconv.write(model, dest)
    stored = {t.name.rsplit(".", 1)[-1]: numpy_helper.to_array(t) for t in onnx.load(dest).graph.initializer}
    field = {"W": "w_ih", "R": "w_hh", "Wb": "b_ih", "Rb": "b_hh"}
    checked = 0
    for tensor in first["tensors"]:
        array = stored[tensor["name"]]
        for s in tensor["slices"]:
            a, b = s["range"]
            role = s["role"]
            for direction, cell in enumerate(model[0].cells):
                part = np.take(array[direction], range(a, b), axis=s["axis"] - 1)
                np.testing.assert_array_equal(part, getattr(cell, field[role])[s["gate"]])
                checked += 1
    assert checked == 2 * (4 + 4 + 8)


def test_inspect_as_a_framework_that_cannot_hold_the_layer_says_why(capsys) -> None:
    assert main(["inspect", str(FIXTURES / "keras3_gru_rnn.keras"), "--as", "torch", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    refused = [d for d in layers if d["as"] is None]
    assert len(refused) == 1 and "reset-before GRU" in refused[0]["as_error"]
    gru = next(d for d in layers if d["as"] and d["kind"] == "gru")
    assert gru["as"]["formula"] == "3·H·(I+H+2)"
    assert gru["as"]["parameters"] == 2 * 3 * 5 * (6 + 5 + 2)


def test_the_readme_synopsis_names_every_option_of_each_command() -> None:
    """The command-line section of the README and ``--help`` say the same options."""
    import re

    from lstmconv.cli import _parser

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Command line") : readme.index("Also `python -m lstmconv`")]
    subparsers = next(a for a in _parser()._actions if a.dest == "command").choices
    for name, parser in subparsers.items():
        flags = {f for action in parser._actions for f in action.option_strings if f.startswith("--")}
        flags -= {"--help"}
        missing = sorted(f for f in flags if not re.search(re.escape(f) + r"\b", section))
        assert not missing, f"{name}: {missing} not in the README's synopsis"
