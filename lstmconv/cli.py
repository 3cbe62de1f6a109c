"""The command line (SPEC §4). The only module that prints or exits.

Exit status: 0 success; 1 the numbers disagree; 2 bad usage, bad or unsupported input, or a
missing dependency (one line on stderr; ``--debug`` for a traceback).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from . import __version__, api, dtypes, inspection, progress
from .errors import (
    LstmconvError,
    LstmconvWarning,
    PrintableFilter,
    UnsupportedFeatureError,
    UsageError,
    VerificationError,
    printable,
    printable_tree,
)
from .registry import FORMATS, for_path
from .verification import framework_available

EXIT_OK, EXIT_DISAGREE, EXIT_ERROR = 0, 1, 2
#: What TensorFlow's C++ side (absl) prints on import whatever TF_CPP_MIN_LOG_LEVEL says.
_FRAMEWORK_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmconv",
        description="Move LSTM/GRU/RNN weights between Keras, PyTorch and ONNX, exactly, and prove it.",
        epilog="Exit status: 0 success; 1 the outputs disagree; 2 bad usage, bad or unsupported input, "
        "or a missing dependency.",
    )
    parser.add_argument("--version", action="version", version=f"lstmconv {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show a traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument(
        "--strict",
        action="store_true",
        help="refuse NaN or infinite weights and masked recurrent layers (default: warn)",
    )
    reading.add_argument(
        "--config", metavar="PATH", help="the model config for a Keras weights-only file (.keras or JSON)"
    )
    reading.add_argument(
        "--drop-clips",
        action="store_true",
        help="TFLite: drop cell_clip/proj_clip (exact only while the clipped values stay inside the clip)",
    )
    reading.add_argument(
        "--dequantize",
        action="store_true",
        help="TFLite: read int8-quantized weights as scale·(q - zero_point) (costs their rounding)",
    )
    reading.add_argument(
        "--nonlinearity",
        choices=("tanh", "relu"),
        help="simple RNN activation where a state_dict cannot tell",
    )
    reading.add_argument(
        "--epsilon",
        type=float,
        metavar="X",
        help="PyTorch state_dict: the epsilon of its LayerNorm/BatchNorm layers, which it does not store "
        "(without it they are listed as not carried; --like decides it from the template)",
    )
    reading.add_argument(
        "--forget-bias",
        type=float,
        metavar="X",
        help="TensorFlow 1 LSTM cells: the forget_bias added at run time (default 1.0, TF's, assumed)",
    )
    reading.add_argument(
        "--cell-clip",
        type=float,
        metavar="X",
        help="TensorFlow 1 LSTMCell cell_clip (not stored in a checkpoint)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", parents=[common, reading], help="layers, gates, shapes and parameter counts of a model"
    )
    inspect.add_argument("source", metavar="SRC")
    inspect.add_argument(
        "--from", dest="from_format", choices=FORMATS, help="format of SRC (default: by ending)"
    )
    inspect.add_argument(
        "--as",
        dest="as_framework",
        choices=("torch", "keras", "onnx", "tf", "tflite"),
        help="show each layer as this framework lays it out (tensor names, gate slices, parameter "
        "formula, legend), whatever the source; tf = TensorFlow 1 cells",
    )
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=_inspect)

    convert = commands.add_parser(
        "convert",
        parents=[common, reading],
        help="convert SRC to DST (or many SRC into --out-dir) and verify the outputs agree",
        usage="lstmconv convert [options] SRC DST\n"
        "       lstmconv convert [options] SRC... --out-dir DIR --to FORMAT",
    )
    convert.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="SRC DST; or with --out-dir, any number of SRC: files, globs (quoted or not), or folders "
        "(every readable file in them)",
    )
    convert.add_argument(
        "--out-dir",
        metavar="DIR",
        help="batch: convert every SRC into DIR (named SRC's stem plus --to's ending), in one process "
        "with a worker per core; exit 1 if any disagreed, 2 if any failed (the rest still converted)",
    )
    convert.add_argument(
        "--jobs", type=int, metavar="N", help="batch: workers (default: the number of cores)"
    )
    convert.add_argument(
        "--from", dest="from_format", choices=FORMATS, help="format of SRC (default: by ending)"
    )
    convert.add_argument("--to", dest="to_format", choices=FORMATS, help="format of DST (default: by ending)")
    convert.add_argument(
        "--layer", dest="layers", action="append", metavar="NAME", help="convert only this layer (repeatable)"
    )
    convert.add_argument(
        "--dtype",
        choices=dtypes.NAMES,
        help="cast the weights to this dtype (default: keep the source's dtype)",
    )
    convert.add_argument(
        "--external-data",
        action="store_true",
        help="ONNX: keep the weights in DST.data beside DST (automatic past protobuf's 2 GiB)",
    )
    convert.add_argument(
        "--as-cell",
        action="store_true",
        help="PyTorch: write each layer as a single-step cell (nn.LSTMCell/GRUCell/RNNCell keys)",
    )
    convert.add_argument(
        "--opset",
        type=int,
        metavar="N",
        help="ONNX: the opset to write (default: the lowest that holds the model)",
    )
    convert.add_argument(
        "--input-name",
        metavar="NAME",
        help="ONNX: the graph input's name (default input; refused for a model of several chains, whose "
        "inputs are <layer>_input)",
    )
    convert.add_argument(
        "--output-name",
        metavar="NAME",
        help="ONNX: the graph output's name (default output; <layer>_output per chain otherwise)",
    )
    convert.add_argument(
        "--like",
        metavar="TEMPLATE",
        help="write DST in the exact layout of TEMPLATE, saved from the target model "
        "(torch.save(net.state_dict()), its .safetensors, an untrained .keras, an .onnx graph): its names, "
        "keys, order and dtypes, every layer with weights filled in order (or by --map)",
    )
    convert.add_argument(
        "--map",
        dest="mapping",
        action="append",
        metavar="T=S",
        help="with --like: fill template layer T from source layer S (repeatable; the rest in order)",
    )
    convert.add_argument(
        "--rename",
        action="append",
        metavar="OLD=NEW",
        help="PyTorch: a written key starting with OLD starts with NEW instead (repeatable; the first "
        "that matches applies)",
    )
    convert.add_argument(
        "--prefix",
        metavar="P",
        help="PyTorch: put P. before every written key (a module path, as net.P's state_dict has them)",
    )
    convert.add_argument("--force", action="store_true", help="replace DST if it exists")
    convert.add_argument("--no-verify", action="store_true", help="skip the numerical check")
    _tolerance_options(convert)
    convert.add_argument("--json", action="store_true", help="print the verification report as JSON")
    convert.set_defaults(handler=_convert)

    verify = commands.add_parser(
        "verify", parents=[common, reading], help="run A and B on the same inputs; exit 0 only if they agree"
    )
    verify.add_argument("a", metavar="A")
    verify.add_argument("b", metavar="B")
    verify.add_argument(
        "--from", dest="from_format", choices=FORMATS, help="format of A and B (default: by ending)"
    )
    verify.add_argument("--from-a", dest="from_a", choices=FORMATS, help="format of A (overrides --from)")
    verify.add_argument("--from-b", dest="from_b", choices=FORMATS, help="format of B (overrides --from)")
    _tolerance_options(verify)
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=_verify)

    formats = commands.add_parser("formats", parents=[common], help="what can be read and written here")
    formats.set_defaults(handler=_formats)
    return parser


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, found {text!r}")
    return value


def _tolerance_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--atol",
        type=_tolerance,
        metavar="A",
        help="absolute tolerance: outputs agree where |a - b| <= atol + rtol·|b| (default by dtype: "
        "1e-5 for float32)",
    )
    parser.add_argument(
        "--rtol",
        type=_tolerance,
        metavar="R",
        help="relative tolerance (default by dtype: 1.3e-6 for float32, 1e-3 float16, 1.6e-2 bfloat16)",
    )


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"strict": True} if getattr(args, "strict", False) else {}
    for name in ("nonlinearity", "config", "forget_bias", "cell_clip", "drop_clips", "dequantize", "epsilon"):
        if getattr(args, name, None) not in (None, False):
            options[name] = getattr(args, name)
    return options


_ONNX_FLAGS = {
    "external_data": "--external-data",
    "opset": "--opset",
    "input_name": "--input-name",
    "output_name": "--output-name",
}


def _write_options(args: argparse.Namespace, dest: str | None = None) -> dict[str, Any] | None:
    dest = args.dest if dest is None else dest
    cell: dict[str, Any] = {}
    torch_flags = {
        "as_cell": getattr(args, "as_cell", False) or None,
        "rename": _pairs(getattr(args, "rename", None), "--rename") or None,
        "prefix": getattr(args, "prefix", None),
    }
    cell = {name: value for name, value in torch_flags.items() if value is not None}
    if cell and for_path(dest, args.to_format).name not in ("torch", "safetensors"):
        flags = ", ".join("--" + name.replace("_", "-") for name in cell)
        raise UnsupportedFeatureError(
            f"{flags} {'is' if len(cell) == 1 else 'are'} for PyTorch outputs (.pt, .safetensors)",
            where=(dest,),
            hint="drop it",
        )
    options = {name: getattr(args, name) for name in _ONNX_FLAGS if getattr(args, name) not in (None, False)}
    if not options:
        return cell or None
    if for_path(dest, args.to_format).name != "onnx":
        flags = ", ".join(_ONNX_FLAGS[name] for name in options)
        raise UnsupportedFeatureError(
            f"{flags}: for ONNX outputs only", where=(dest,), hint="write .onnx (--to onnx), or drop it"
        )
    return options


# -- inspect -------------------------------------------------------------------------------------
def _inspect(args: argparse.Namespace) -> int:
    info = api.inspect(args.source, args.from_format, as_framework=args.as_framework, **_read_options(args))
    info["source"] = args.source
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    fmt, described = info["format"], printable_tree(info["layers"])  # JSON escapes by itself
    total = sum(d["parameters"]["stored"] for d in described)
    print(f"{printable(args.source)} ({fmt}): {len(described)} recurrent layer(s), {total:,} parameters")
    if args.quiet:  # the summary line and each layer's heading line only
        for d in described:
            print(_layer_text(d, fmt).splitlines()[0])
        return EXIT_OK
    for d in described:
        print()
        print(_layer_text(d, fmt))
        if args.as_framework:
            print(_view_text(d))
    if info.get("plain"):
        print()
        print(_plain_text(printable_tree(info["plain"]), printable_tree(info.get("order") or [])))
    if args.as_framework:
        print()
        print(f"as {args.as_framework}: {info['as_parameters']:,} parameters stored")
    if info["skipped"]:
        print()
        print(_skipped_text(info["skipped"]))
        counts = info["parameters"]
        print(f"carried {counts['carried']:,} of {counts['total']:,} parameters")
    return EXIT_OK


def _plain_text(plain: list[dict[str, Any]], order: list[str]) -> str:
    """The plain layers (Embedding, Dense, ...), one line each, and the whole model's order."""
    lines = [f"plain layers (model order: {' → '.join(order)}):"]
    width = max(len(entry["name"]) for entry in plain)
    for entry in plain:
        sizes = (
            f"{entry['input_size'] or 'ids'} → {entry['output_size']}" if entry["output_size"] else "no-op"
        )
        options = ", ".join(f"{key} {value}" for key, value in entry["options"].items())
        shapes = ", ".join(f"{t['name']} {_shape(t['shape'])}" for t in entry["stored"])
        text = "  ".join(part for part in (sizes, shapes, f"({options})" if options else "") if part)
        lines.append(f"  {entry['name']:<{width}}  {entry['kind']:<10}  {text}")
    return "\n".join(lines)


def _skipped_text(skipped: list[dict[str, Any]]) -> str:
    """The layers and tensors read past, one line each, with their parameter counts."""
    lines = ["not carried:"]
    labels = [entry["name"] + (f" ({entry['kind']})" if entry["kind"] else "") for entry in skipped]
    counts = [f"{entry['parameters']:,}" for entry in skipped]
    width, count_width = max(map(len, labels)), max(map(len, counts))
    for label, count, entry in zip(labels, counts, skipped):
        shapes = ", ".join(_shape(t["shape"]) for t in entry["tensors"][:4])
        shapes += f", … ({len(entry['tensors'])} tensors)" if len(entry["tensors"]) > 4 else ""
        lines.append(f"  {label:<{width}}  {count:>{count_width}} parameters  {shapes}")
    return "\n".join(lines)


def _layer_text(d: dict[str, Any], fmt: str) -> str:
    direction = d["direction"] + (f", merge {d['merge']}" if d["merge"] else "")
    sizes = f"input {d['input_size']}, hidden {d['hidden_size']}"
    sizes += f", projection {d['proj_size']}" if d["proj_size"] else ""
    extras = [d["gru_variant"]] if d["gru_variant"] else []
    extras += [f"clip {d['clip']:g}"] if d["clip"] is not None else []
    extras += ["input_forget"] if d["input_forget"] else []
    extras += ["peepholes"] if d["peepholes"] else []
    extras += ["no bias"] if not d["bias"] else []
    extras += ["output in reversed time order (go_backwards)"] if d["reversed_output"] else []
    cell = {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "RNNCell"}.get(d["kind"], "")
    extras += [f"a single-step cell (nn.{cell}), read as stepped over time"] if d.get("stepped") else []
    lines = [
        f'layer "{d["name"]}": {d["kind"].upper()}, {direction}; {sizes}, '
        f"output {d['output_size']}; {d['dtype']}",
        "  activations: " + ", ".join(f"{slot} {act}" for slot, act in d["activations"].items()),
    ]
    if extras:
        lines.append("  " + ", ".join(extras))
    lines.append(f"  {fmt} layout:")
    groups = _canonical_groups(d["canonical"])
    width = max([len(t["name"]) for t in d["stored"]] + [len(group) for group, _ in groups])
    for t in d["stored"]:
        gates = f"  gates {t['gates']}" if len(t["gates"]) > 1 else ""
        lines.append(f"    {t['name']:<{width}}  {_shape(t['shape']):<14}{gates}")
    lines.append("  canonical (out × in, per gate):")
    for group, shape in groups:
        lines.append(f"    {group:<{width}}  {shape}")
    stored, canonical = d["parameters"]["stored"], d["parameters"]["canonical"]
    note = "" if stored == canonical else " (the canonical form keeps b_ih and b_hh apart)"
    lines.append(f"  parameters: {stored:,} stored, {canonical:,} canonical{note}")
    return "\n".join(lines)


def _view_text(d: dict[str, Any]) -> str:
    """The layer as ``inspect --as`` shows it: tensors, gate slices, formula, legend."""
    shown = d.get("as")
    if shown is None:
        return f"  as requested: {d.get('as_error')}"
    lines = [f"  as {shown['framework']} (gates {'·'.join(shown['gate_order'])}):"]
    width = max(len(t["name"]) for t in shown["tensors"])
    for t in shown["tensors"]:
        lines.append(f"    {t['name']:<{width}}  {_shape(t['shape'])}")
        text = inspection.slice_text(t)
        if text:
            lines.append(f"      {text}")
    formula, directions = shown["formula"], shown["directions"]
    per = shown["parameters"] // directions
    value = _formula_value(formula, d)
    check = (
        f" = {value:,}" if value == per else f"; {per:,} stored (projection, peepholes or clips add to it)"
    )
    times = f" per direction, ×{directions} = {shown['parameters']:,}" if directions > 1 else ""
    sizes = f"I={d['input_size']}, H={d['hidden_size']}"
    lines.append(f"    parameters: {formula}{check}{times}  ({sizes})")
    lines.append("    legend: " + "; ".join(shown["legend"]))
    return "\n".join(lines)


def _formula_value(formula: str, d: dict[str, Any]) -> int:
    i, h = d["input_size"], d["hidden_size"]
    expression = formula.replace("·", "*").replace("H", str(h)).replace("I", str(i))
    total = 1
    for factor in expression.split("*"):
        total *= sum(int(term) for term in factor.strip("()").split("+"))
    return total


def _canonical_groups(tensors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``forward/w_ih/{i,f,g,o}  (16, 8) each`` rows from the per-gate tensor list."""
    groups: dict[str, tuple[list[str], list[int]]] = {}
    for t in tensors:
        head, _, gate = t["name"].rpartition("/")
        if t["name"].endswith("w_hr"):
            head, gate = t["name"], ""
        names, _shape_of_group = groups.setdefault(head, ([], t["shape"]))
        if gate:
            names.append(gate)
    return [
        (f"{head}/{{{','.join(names)}}}" if names else head, _shape(shape) + (" each" if names else ""))
        for head, (names, shape) in groups.items()
    ]


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


# -- convert, verify, formats ----------------------------------------------------------------------
def _convert(args: argparse.Namespace) -> int:
    if args.out_dir is not None:
        from . import batch

        if args.like or args.mapping:
            raise UsageError("--like writes one DST in a template's layout: not with --out-dir")
        return batch.run(args)
    args.source, args.dest = args.paths
    shown = not args.quiet and os.isatty(args.stderr_fd)
    display = progress.Display(args.stderr_fd, f"{args.source} → {args.dest}") if shown else None
    with display or contextlib.nullcontext():
        report = _run_convert(args, display or progress.quiet)
    if args.json:
        print(
            json.dumps(
                {"wrote": args.dest, "verification": None if report is None else report.to_dict()}, indent=2
            )
        )
        return EXIT_OK
    if not args.quiet:
        if report is not None:
            print(report.table())
        verdict = (
            " (not verified)" if report is None else (" (round trip only)" if report.round_trip_only else "")
        )
        print(f"wrote {printable(args.dest)}" + verdict)
    return EXIT_OK


def _pairs(values: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``OLD=NEW`` arguments as a mapping, in order; anything else refused naming the flag."""
    found: dict[str, str] = {}
    for value in values or ():
        old, sep, new = value.partition("=")
        if not sep or not old:
            raise UsageError(f"{flag} takes OLD=NEW, found {value!r}")
        found[old] = new
    return found


def _run_convert(args: argparse.Namespace, step: progress.Callback) -> Any:
    common: dict[str, Any] = {
        "verify": not args.no_verify,
        "overwrite": args.force,
        "from_format": args.from_format,
        "atol": args.atol,
        "rtol": args.rtol,
        "read_options": _read_options(args),
        "progress": step,
    }
    if args.like is not None:
        if args.rename or args.prefix:
            raise UsageError("--like writes the template's keys: --rename and --prefix do not apply")
        return api.convert(
            args.source, args.dest, like=args.like, mapping=_pairs(args.mapping, "--map") or None, **common
        )
    if args.mapping:
        raise UsageError("--map pairs layers with a template's: use it with --like")
    return api.convert(
        args.source,
        args.dest,
        to_format=args.to_format,
        layers=args.layers,
        dtype=args.dtype,
        write_options=_write_options(args),
        **common,
    )


def _verify(args: argparse.Namespace) -> int:
    report = api.verify(
        args.a,
        args.b,
        atol=args.atol,
        rtol=args.rtol,
        format_a=args.from_a or args.from_format,
        format_b=args.from_b or args.from_format,
        read_options=_read_options(args),
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not args.quiet or not report.ok:
        print(report, file=sys.stdout if report.ok else sys.stderr)
    return EXIT_OK if report.ok else EXIT_DISAGREE


def _formats(args: argparse.Namespace) -> int:
    rows = [("format", "endings", "read", "write", "run / verify in")]
    for fmt in FORMATS.values():
        if fmt.available("reader") and fmt.header_reader and not fmt.available("live"):
            read = f"yes (legacy non-zip files need lstmconv[{fmt.extra}])"  # .pt without torch
        elif fmt.available("reader"):
            read = "yes"
        elif fmt.header_reader is not None:  # names and shapes without the framework
            read = f"inspect only (converting needs lstmconv[{fmt.extra}])"
        else:
            read = f"needs lstmconv[{fmt.extra}]"
        if fmt.read_only:
            write = "no"
        else:
            write = "yes" if fmt.available("writer") else f"needs lstmconv[{fmt.extra}]"
        if fmt.runs_in is None:
            runs = "NumPy reference"
        elif framework_available(fmt.runs_in):
            runs = fmt.runs_in
        else:
            extra = FORMATS[fmt.runs_in].runtime_extra
            runs = f"reference (lstmconv[{extra}] for {fmt.runs_in})"
        if fmt.write_endings and fmt.write_endings != fmt.read_endings:
            write += f" ({' '.join(fmt.write_endings)})"
        endings = " ".join(fmt.read_endings) + (" .data-* or the prefix" if fmt.prefix_holds else "")
        if fmt.folder_holds:
            endings = (endings + " " if endings else "") + f"folder with {fmt.folder_holds}"
        rows.append((fmt.name, endings, read, write, runs))
    if args.quiet:  # the names of the formats read here, one a line, for scripts
        for row in rows[1:]:
            if row[2] == "yes":
                print(row[0])
        return EXIT_OK
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_OK


@contextlib.contextmanager
def _without_framework_noise(enabled: bool) -> Iterator[int]:
    """Hold what reaches file descriptor 2 and pass it on without TensorFlow's C++ log lines.
    Yields the descriptor that still reaches the real stderr (for the progress display)."""
    if not enabled:
        yield 2
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield saved
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode(errors="replace").splitlines(True)
            sys.stderr.write("".join(line for line in lines if not _FRAMEWORK_NOISE.match(line)))
            sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "convert" and args.out_dir is None and len(args.paths) != 2:
        commands = next(a for a in parser._actions if a.dest == "command")
        convert: argparse.ArgumentParser = commands.choices["convert"]  # type: ignore[index]
        convert.error(
            f"takes SRC DST (found {len(args.paths)} paths); for several sources pass --out-dir DIR"
        )
    with _without_framework_noise(not args.debug) as stderr_fd, _warnings_shown(args.quiet, stderr_fd):
        args.stderr_fd = stderr_fd
        return _dispatch(args)


@contextlib.contextmanager
def _warnings_shown(quiet: bool, stderr_fd: int) -> Iterator[None]:
    """lstmconv's warnings, each once, as they happen, on the real stderr (not held back with
    the framework noise, so they come before the output they are about). They are logged, and
    also issued through :mod:`warnings` for Python callers: here only the logged line is shown,
    unless ``-W`` asked for something of the warnings themselves (``-W error``)."""
    stream = os.fdopen(os.dup(stderr_fd), "w", buffering=1, errors="replace")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("lstmconv: %(message)s"))
    handler.addFilter(api.Unmuted())
    handler.addFilter(_Once())
    handler.addFilter(PrintableFilter())  # a name with a newline cannot forge a second line
    logger = logging.getLogger("lstmconv")
    saved_level = logger.level
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:
                warnings.simplefilter("ignore", LstmconvWarning)
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved_level)
        stream.close()


class _Once(logging.Filter):
    """Each message once (verification reads the source again, and may say the same)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except VerificationError as error:
        report = getattr(error, "report", None)
        if getattr(args, "json", False) and report is not None:
            print(json.dumps({"wrote": None, "verification": report.to_dict()}, indent=2))
        print(f"lstmconv: {error.render(cli=True)}", file=sys.stderr)
        return EXIT_DISAGREE
    except LstmconvError as error:
        if args.debug:
            traceback.print_exc()
        print(f"lstmconv: error: {error.render(cli=True)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("lstmconv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (| head): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:
        if args.debug:
            raise
        print(
            f"lstmconv: internal error ({type(error).__name__}: {printable(error)}); rerun with --debug "
            "and report it",
            file=sys.stderr,
        )
        return EXIT_ERROR


def run() -> None:
    """Console entry point (``lstmconv`` and ``python -m lstmconv``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _leave(main())


def _leave(status: int) -> None:
    """Exit without the interpreter's teardown, which takes over half a second once torch or
    TensorFlow is loaded (it frees every module's objects one by one, for an exiting process).
    What the teardown would do that matters is done first: the exit handlers (logging's flush,
    the removal of temporary folders still alive) and the flush of the standard streams. Every
    file lstmconv writes is closed, and renamed into place, before :func:`main` returns."""
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:  # not CPython: the usual exit
        sys.exit(status)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or its reader gone
            stream.flush()
    os._exit(status)
