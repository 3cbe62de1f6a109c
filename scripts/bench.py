"""Benchmark lstmconv against the I/O floor and the framework paths people use today.

    .venv/bin/python scripts/bench.py [--sizes tiny,small,medium,large,huge] [--runs 3]
                                      [--tf2onnx PYTHON] [--pairs a-b,...] [--out bench-out]
                                      [--all-pairs] [--no-verified]

For each size it generates a stacked bidirectional LSTM (medium is 64 MiB of float32 weights,
256m 256 MiB, large 1 GiB, huge 2.2 GiB, past protobuf's limit, so its ONNX form uses external
data) as .pt (a real nn.LSTM state_dict), .safetensors, .onnx, .keras and .npz, then measures,
each as a whole process, the median wall time and peak RSS over --runs runs of:
- ``lstmconv convert`` for the main pairs, with --no-verify and with verification;
- the I/O floor: a plain script reading the same tensors from the source (h5py, safetensors,
  onnx, torch) and writing the same bytes with NumPy;
- the peer path where one works: torch.onnx.export for .pt -> .onnx, tf2onnx for .keras -> .onnx
  (tf2onnx needs its own environment: --tf2onnx PYTHON);
- ``lstmconv inspect`` on each file.

``--all-pairs`` measures every pair among .keras, .pt, .safetensors, .onnx and .npz (20) instead
of the main ones, and prints each against issue 17's targets: ``--no-verify`` within 1.3× the
floor, peak RSS within 1.2× the model above the interpreter's baseline. ``--no-verified`` skips
the verified runs and the peers (the targets are about ``--no-verify``).

``--batch N`` measures instead the batch conversion (issue 17): N small .pt files (a real
nn.LSTM state_dict each) converted to .onnx with verification, first as a shell loop (one
``lstmconv convert`` process per file), then as one ``lstmconv convert SRC... --out-dir``
call with its thread pool, then with a spawn process pool (LSTMCONV_BATCH_POOL=process), in
the same run; it prints the three times and the speedups.
It prints a table of ratios, and writes results.json and bench.png (time and memory against
model size) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LSTMCONV = [PYTHON, "-m", "lstmconv"]
#: name -> (layers, input size, hidden size, batch of the peer's sample input)
SIZES = {
    "tiny": (1, 8, 16),
    "small": (2, 64, 128),
    "medium": (3, 512, 512),  # 64 MiB
    "256m": (3, 1024, 1024),  # 256 MiB
    "large": (3, 2048, 2048),
    "huge": (3, 2048, 3072),  # 2.2 GiB: past protobuf's 2 GiB, so ONNX needs external data
}
PAIRS = [
    ("keras", "onnx"),
    ("keras", "safetensors"),
    ("pt", "keras"),
    ("onnx", "safetensors"),
    ("safetensors", "onnx"),
    ("pt", "onnx"),
]
ENDINGS = {"keras": ".keras", "pt": ".pt", "onnx": ".onnx", "safetensors": ".safetensors", "npz": ".npz"}
#: Every pair among the formats that need no framework (issue 17), for --all-pairs.
ALL_PAIRS = [(a, b) for a in ENDINGS for b in ENDINGS if a != b]
#: Issue 17's targets for --no-verify conversions from 64 MiB up: time against the floor, and
#: peak RSS above the interpreter's baseline against the model's size.
FLOOR_TARGET, MEMORY_TARGET = 1.3, 1.2
#: What verification imports to run each kind of file (its runtime).
RUNTIMES = {
    "keras": "import tensorflow, keras",
    "pt": "import torch",
    "safetensors": "import torch, safetensors",
    "onnx": "import onnx, onnxruntime",
    "npz": "import numpy",
}


# -- one process, measured -------------------------------------------------------------------------
def measure(command: list[str], *, timeout: float = 1800) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process run to completion.

    GNU time starts the command, so its peak RSS is the command's own: a child forked straight
    from this (large) process would carry this process's high-water mark through exec."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    os.sync()  # every run starts with no dirty pages left by the one before
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
        seconds = time.perf_counter() - start
        told = report.read()
        if result.returncode != 0:
            peak = int(told.split()[-1]) * 1024 if told.split() and told.split()[-1].isdigit() else 0
            killed = next((line for line in told.splitlines() if "signal" in line), "")
            raise RuntimeError(
                f"{' '.join(command)} failed after {seconds:.0f} s at {peak / 2**30:.1f} GiB peak RSS "
                f"{('(' + killed.strip() + ', as the OOM killer does)') if 'signal 9' in killed else ''}:\n"
                f"{result.stderr.decode(errors='replace')[-2000:]}\nfailed after {seconds:.0f} s, "
                f"{peak / 2**30:.1f} GiB peak RSS{', killed by signal 9' if 'signal 9' in killed else ''}"
            )
        return seconds, int(told.split()[-1]) * 1024


def median_of(command: list[str], runs: int, clean: Path | None = None) -> tuple[float, int]:
    return alternated([(command, clean)], runs)[0]


def alternated(commands: list[tuple[list[str], Path | None]], runs: int) -> list[tuple[float, int]]:
    """Median seconds and peak RSS of each command, run in turn ``runs`` times (so a drift of the
    machine's speed during the run weighs on each alike); ``clean`` is removed before each run."""
    results: list[list[tuple[float, int]]] = [[] for _ in commands]
    for _ in range(runs):
        for (command, clean), measured in zip(commands, results, strict=True):
            if clean is not None:
                _remove(clean)
            measured.append(measure(command))
    return [(statistics.median(r[0] for r in rs), max(r[1] for r in rs)) for rs in results]


def _remove(path: Path) -> None:
    """An output, with the ONNX external data beside it; a folder (a peer's output) emptied."""
    if path.is_dir():
        shutil.rmtree(path)
        path.mkdir()
        return
    for each in (path, path.with_name(path.name + ".data")):
        each.unlink(missing_ok=True)


# -- generating the models -------------------------------------------------------------------------
def generate(name: str, folder: Path) -> dict[str, Path]:
    """The size's model as a real nn.LSTM state_dict, converted by lstmconv to the rest."""
    import numpy as np
    import torch

    layers, inputs, hidden = SIZES[name]
    files = {kind: folder / f"{name}{ending}" for kind, ending in ENDINGS.items()}
    if all(path.exists() for path in files.values()):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    module = torch.nn.LSTM(inputs, hidden, num_layers=layers, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(
                torch.from_numpy(rng.uniform(-0.05, 0.05, tuple(parameter.shape)).astype("float32"))
            )
    torch.save(module.state_dict(), files["pt"])
    for kind in ("safetensors", "onnx", "keras", "npz"):
        subprocess.run(
            [*LSTMCONV, "convert", str(files["pt"]), str(files[kind]), "--no-verify", "--force", "-q"],
            check=True,
        )
    return files


def weight_bytes(path: Path) -> int:
    return path.stat().st_size


# -- the floor and the peers (run as their own processes) -----------------------------------------------
def floor(source: Path, dest: Path) -> None:
    """Read every tensor of ``source`` with its format's plain library and write the bytes."""
    import numpy as np

    arrays: list[np.ndarray] = []
    if source.suffix == ".keras":
        import zipfile

        import h5py

        with (
            zipfile.ZipFile(source) as archive,
            archive.open("model.weights.h5") as member,
            h5py.File(member) as h5,
        ):
            h5.visititems(lambda _, node: arrays.append(node[()]) if isinstance(node, h5py.Dataset) else None)
    elif source.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(source, framework="numpy") as handle:
            arrays = [handle.get_tensor(key) for key in handle.keys()]  # noqa: SIM118
    elif source.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        arrays = [numpy_helper.to_array(t) for t in onnx.load(source).graph.initializer]
    elif source.suffix == ".npz":
        with np.load(source) as archive:
            arrays = [archive[key] for key in archive.files]
    else:
        import torch

        arrays = [t.numpy() for t in torch.load(source, weights_only=True, mmap=True).values()]
    with open(dest, "wb") as handle:
        for array in arrays:
            np.ascontiguousarray(array).tofile(handle)


def peer_torch(source: Path, dest: Path) -> None:
    """What a PyTorch user does today: rebuild the module, load the state_dict, export."""
    import warnings

    import torch

    state = torch.load(source, weights_only=True)
    hidden = state["weight_hh_l0"].shape[1]
    inputs = state["weight_ih_l0"].shape[1]
    layers = 1 + max(int(k.split("_l")[1].split("_")[0]) for k in state if k.startswith("weight_ih_l"))
    module = torch.nn.LSTM(inputs, hidden, num_layers=layers, bidirectional=True, batch_first=True)
    module.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, 2, inputs),),
            str(dest),
            dynamo=False,
            dynamic_axes={"x": {0: "batch", 1: "time"}},
            input_names=["x"],
        )


def peer_tf2onnx(source: Path, dest: Path) -> None:
    """What a Keras user does today: load the model, trace it, convert with tf2onnx."""
    import keras
    import tensorflow as tf
    import tf2onnx

    model = keras.saving.load_model(source)
    features = model.inputs[0].shape[-1]
    function = tf.function(
        lambda t: model(t), input_signature=[tf.TensorSpec((None, None, features), tf.float32)]
    )
    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=17)
    dest.write_bytes(proto.SerializeToString())


# -- the run -----------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    baseline = median_of([*LSTMCONV, "--version"], args.runs)
    rows: list[dict] = []
    failed_peers: dict[tuple[str, str], str] = {}
    print(f"interpreter baseline (lstmconv --version): {baseline[0]:.3f} s, {baseline[1] / 2**20:.0f} MiB")
    imports = dict.fromkeys(RUNTIMES, 0.0)
    for kind, code in () if args.no_verified else RUNTIMES.items():
        imports[kind] = median_of([PYTHON, "-c", code], args.runs)[0] - baseline[0]
        print(f"  importing the {kind} runtime ({code[7:]}): {imports[kind]:.2f} s")
    for size in args.sizes.split(","):
        files = generate(size, out / "models")
        model_bytes = weight_bytes(files["safetensors"])
        print(f"\n== {size}: {model_bytes / 2**20:.1f} MiB of float32 weights")
        for kind, path in files.items():
            seconds, rss = median_of([*LSTMCONV, "inspect", str(path)], args.runs)
            rows.append(
                dict(size=size, bytes=model_bytes, what="inspect", source=kind, seconds=seconds, rss=rss)
            )
            print(f"  inspect {kind:<12} {seconds:7.3f} s {rss / 2**20:8.0f} MiB")
        for source, target in ALL_PAIRS if args.all_pairs else PAIRS:
            if args.pairs and f"{source}-{target}" not in args.pairs.split(","):
                continue
            src, dest = files[source], out / f"out-{size}{ENDINGS[target]}"
            fast_command = [*LSTMCONV, "convert", str(src), str(dest), "--no-verify", "--force", "-q"]
            floor_command = [PYTHON, __file__, "floor", str(src), str(out / "floor.bin")]
            try:
                (floor_time, floor_rss), fast = alternated(
                    [(floor_command, out / "floor.bin"), (fast_command, dest)], args.runs
                )
                checked = (
                    (float("nan"), 0)
                    if args.no_verified
                    else median_of(
                        [*LSTMCONV, "convert", str(src), str(dest), "--force", "-q"],
                        max(1, args.runs // 2),
                        dest,
                    )
                )
            except (RuntimeError, subprocess.TimeoutExpired) as error:  # a finding, not the end of the run
                print(f"  {source} -> {target}: lstmconv FAILED: {_last_error_line(str(error))}")
                continue
            row = dict(
                size=size,
                bytes=model_bytes,
                what="convert",
                source=source,
                target=target,
                seconds=fast[0],
                rss=fast[1],
                verified_seconds=checked[0],
                verified_rss=checked[1],
                #: verification's own cost, and what the target allows it: twice the conversion
                #: plus the frameworks' import (both sides' runtimes, once each)
                verify_seconds=checked[0] - fast[0],
                verify_allowed=2 * fast[0] + imports[source] + (imports[target] if target != source else 0),
                floor_seconds=floor_time,
                floor_rss=floor_rss,
            )
            try:
                if args.no_verified:
                    raise _NotRun
                if (source, target) in failed_peers:  # it only grows from there: not run again
                    raise RuntimeError(f"failed on the smaller {failed_peers[source, target]} model")
                peer = _peer(source, target, src, out / f"peer-{size}", args)
            except _NotRun:
                peer = None
            except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as error:
                peer, row["peer_failed"] = None, _last_error_line(str(error))
                failed_peers.setdefault((source, target), size)
            if peer is not None:
                row.update(peer_seconds=peer[0], peer_rss=peer[1])
            rows.append(row)
            print(_row_text(row, baseline[1]))
            _save(out, baseline, rows)
    _save(out, baseline, rows)
    plot(rows, out / "bench.png")
    print(f"\nwrote {out / 'results.json'} and {out / 'bench.png'}")


class _NotRun(Exception):
    """The peer is not run (--no-verified)."""


def _save(out: Path, baseline: tuple[float, int], rows: list[dict]) -> None:
    """Written after every row, so a run cut short keeps what it measured."""
    (out / "results.json").write_text(json.dumps({"baseline": baseline, "rows": rows}, indent=2) + "\n")


def _peer(
    source: str, target: str, src: Path, folder: Path, args: argparse.Namespace
) -> tuple[float, int] | None:
    """The peer's run, writing into ``folder`` (torch.onnx.export puts a big model's weights in
    files beside the model, named for the weights)."""
    folder.mkdir(exist_ok=True)
    dest = str(folder / "model.onnx")
    if (source, target) == ("pt", "onnx"):
        return median_of([PYTHON, __file__, "peer-torch", str(src), dest], max(1, args.runs // 2), folder)
    if (source, target) == ("keras", "onnx") and args.tf2onnx:
        return median_of([args.tf2onnx, __file__, "peer-tf2onnx", str(src), dest], 1, folder)
    return None


def _last_error_line(text: str) -> str:
    lines = [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith(("I0000", "W0000", "E0000", "WARNING: All"))
    ]
    return lines[-1][:200] if lines else "failed without a message"


def _row_text(row: dict, baseline_rss: int) -> str:
    floor_ratio = row["seconds"] / row["floor_seconds"]
    memory_ratio = (row["rss"] - baseline_rss) / row["bytes"]
    text = (
        f"  {row['source']:>11} -> {row['target']:<11} {row['seconds']:7.3f} s "
        f"(floor {row['floor_seconds']:.3f} s, x{floor_ratio:.2f}); "
        + (
            ""
            if row["verified_seconds"] != row["verified_seconds"]  # NaN: not run
            else f"verified {row['verified_seconds']:.2f} s (verification {row['verify_seconds']:.2f} s, "
            f"allowed {row['verify_allowed']:.2f} s); "
        )
        + f"RSS {row['rss'] / 2**20:.0f} MiB = {memory_ratio:.2f}x model above baseline"
    )
    met = floor_ratio <= FLOOR_TARGET and memory_ratio <= MEMORY_TARGET
    text += f"  [{'targets met' if met else 'MISSES the targets'}]" if row["bytes"] >= 64 << 20 else ""
    if "peer_failed" in row:
        text += f"; peer failed: {row['peer_failed']}"
    if "peer_seconds" in row:
        text += f"; peer {row['peer_seconds']:.2f} s (x{row['peer_seconds'] / row['seconds']:.1f} slower)"
    return text


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(13, 5))
    converts = [r for r in rows if r["what"] == "convert"]
    for source, target in ALL_PAIRS:
        series = sorted(
            (r for r in converts if (r["source"], r["target"]) == (source, target)), key=lambda r: r["bytes"]
        )
        if not series:
            continue
        sizes = [r["bytes"] / 2**20 for r in series]
        label = f"{source}→{target}"
        time_axis.plot(sizes, [r["seconds"] for r in series], "o-", label=f"lstmconv {label}")
        memory_axis.plot(sizes, [r["rss"] / 2**20 for r in series], "o-", label=f"lstmconv {label}")
        time_axis.plot(sizes, [r["floor_seconds"] for r in series], "x--", label=f"floor {label}")
        memory_axis.plot(sizes, [r["floor_rss"] / 2**20 for r in series], "x--", label=f"floor {label}")
        peers = [r for r in series if "peer_seconds" in r]
        if peers:
            peer_sizes = [r["bytes"] / 2**20 for r in peers]
            time_axis.plot(peer_sizes, [r["peer_seconds"] for r in peers], "s:", label=f"peer {label}")
            memory_axis.plot(peer_sizes, [r["peer_rss"] / 2**20 for r in peers], "s:", label=f"peer {label}")
    for axis, title, unit in ((time_axis, "wall time", "seconds"), (memory_axis, "peak RSS", "MiB")):
        axis.set(xscale="log", yscale="log", xlabel="model size (MiB of weights)", ylabel=unit, title=title)
        axis.grid(True, which="both", alpha=0.3)
    time_axis.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] in ("floor", "peer-torch", "peer-tf2onnx"):
        {"floor": floor, "peer-torch": peer_torch, "peer-tf2onnx": peer_tf2onnx}[sys.argv[1]](
            Path(sys.argv[2]), Path(sys.argv[3])
        )
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="tiny,small,medium,large")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pairs", help="only these, e.g. safetensors-onnx,pt-onnx (default: all)")
    parser.add_argument(
        "--tf2onnx", metavar="PYTHON", help="an interpreter with tensorflow, keras and tf2onnx"
    )
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    parser.add_argument("--all-pairs", action="store_true", help="every pair among the five formats")
    parser.add_argument("--no-verified", action="store_true", help="skip the verified runs and the peers")
    parser.add_argument("--batch", type=int, metavar="N", help="measure batch conversion of N small files")
    args = parser.parse_args()
    if args.batch:
        batch(args.batch, Path(args.out))
        return
    run(args)


# -- batch conversion ---------------------------------------------------------------------------
def batch(count: int, out: Path) -> dict[str, float]:
    """The shell loop against one batch call (threads, then spawned processes), same files."""
    import torch

    folder = out / "batch"
    shutil.rmtree(folder, ignore_errors=True)
    sources = folder / "in"
    sources.mkdir(parents=True)
    for index in range(count):
        torch.manual_seed(index)
        torch.save(torch.nn.LSTM(8, 16, batch_first=True).state_dict(), sources / f"m{index:02d}.pt")
    files = sorted(str(p) for p in sources.iterdir())
    times: dict[str, float] = {}

    def fresh(name: str) -> Path:
        target = folder / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        return target

    target = fresh("loop")
    loop = (
        "for f in "
        + " ".join(files)
        + f'; do {" ".join(LSTMCONV)} convert "$f" {target}/"$(basename "$f" .pt)".onnx -q || exit 1; done'
    )
    start = time.perf_counter()
    subprocess.run(["bash", "-c", loop], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    times["shell loop"] = time.perf_counter() - start
    for label, pool in (
        ("one batch call (threads)", "thread"),
        ("one batch call (spawn processes)", "process"),
    ):
        target = fresh(pool)
        start = time.perf_counter()
        subprocess.run(
            [*LSTMCONV, "convert", *files, "--out-dir", str(target), "--to", "onnx", "-q"],
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "LSTMCONV_BATCH_POOL": pool},
        )
        times[label] = time.perf_counter() - start
        assert len(list(target.iterdir())) == count, f"{label}: not every file was written"
    loop_time = times["shell loop"]
    print(f"batch: {count} small .pt -> .onnx, verified, {os.cpu_count()} cores")
    for label, seconds in times.items():
        print(f"  {label:<34} {seconds:7.2f} s  {seconds / count:5.2f} s/file  {loop_time / seconds:5.1f}x")
    (out / "batch.json").write_text(json.dumps({"files": count, "seconds": times}, indent=2))
    return times


if __name__ == "__main__":
    main()
