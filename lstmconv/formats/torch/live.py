"""PyTorch: live ``nn.Module`` objects and ``.pt``/``.pth``/``.bin`` state_dict files.

The only module of lstmconv that imports torch. Gate orders and key names live in
:mod:`lstmconv.formats.statedict`, shared with safetensors.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ... import dtypes, porting
from ...errors import FormatError, UnsafeInputError, UnsupportedFeatureError
from ...ir import Direction, Kind, Layer, Model, Skipped
from ...plain import NO_OPS, PlainLayer
from .. import _common
from . import keys, pt_header, statedict, torchscript, whole
from .statedict import GATE_ORDER, check

#: The writer carries the plain layers (Embedding, Linear, Conv1d, norms) as nn keys.
HOLDS_PLAIN = True

_MODULE_KINDS: Mapping[type, Kind] = {
    nn.LSTM: Kind.LSTM,
    nn.GRU: Kind.GRU,
    nn.RNN: Kind.RNN,
    nn.LSTMCell: Kind.LSTM,
    nn.GRUCell: Kind.GRU,
    nn.RNNCell: Kind.RNN,
}
_CELLS: Mapping[Kind, type] = {Kind.LSTM: nn.LSTMCell, Kind.GRU: nn.GRUCell, Kind.RNN: nn.RNNCell}
_log = logging.getLogger(__name__)

__all__ = [
    "GATE_ORDER",
    "Stack",
    "build",
    "check",
    "is_runnable",
    "layer_runners",
    "load_into",
    "load_written",
    "port_into",
    "read",
    "run",
    "run_whole",
    "runnable",
    "running_note",
    "write",
    "write_like",
]


def _kind_of(module: nn.Module) -> Kind | None:
    for cls, kind in _MODULE_KINDS.items():
        if isinstance(module, cls):
            return kind
    return None


def recurrent_modules(root: nn.Module) -> list[tuple[str, nn.Module, Kind]]:
    """Every LSTM/GRU/RNN inside ``root``, in module order, with its path."""
    found = []
    for path, module in root.named_modules():
        kind = _kind_of(module)
        if kind is not None:
            found.append((path, module, kind))
    return found


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's values as NumPy, sharing memory; bfloat16 (which NumPy lacks) as ml_dtypes'."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(dtypes.resolve("bfloat16"))
    return tensor.numpy()


def _layers_of(path: str, module: nn.Module, kind: Kind) -> list[Layer]:
    tensors = {name: _numpy(value) for name, value in module.named_parameters()}
    group = statedict.recurrent_groups(tensors)[""]
    nonlinearity = getattr(module, "nonlinearity", "tanh")
    layers = statedict.layers_from_group("", group, kind, nonlinearity=nonlinearity, base=path or kind.value)
    if isinstance(module, nn.RNNCellBase):  # one step: read as a layer stepped over time
        return [layer.replace(stepped=True) for layer in layers]
    return layers


def read(source: Any, *, nonlinearity: str | None = None, **options: Any) -> Model:
    """IR of a live module (its recurrent and plain modules in registration order), or of a
    ``.pt`` file holding a state_dict or a checkpoint."""
    if isinstance(source, nn.Module):
        return _read_module(source)
    path = os.fspath(source)
    tensors, recorded, links = _load_state_dict(path)
    return statedict.read_tensors(
        tensors,
        nonlinearity=nonlinearity,
        source=path,
        per_module=None if nonlinearity else recorded,
        recorded=links,
        **{key: options[key] for key in pt_header.PLAIN_OPTIONS if key in options},
    )


def _read_module(source: nn.Module) -> Model:
    layers: list[Layer] = []
    plain: list[PlainLayer] = []
    order: list[str] = []
    unread: list[Skipped] = []
    taken: set[str] = set()  # the paths of modules read (or skipped as a whole)
    for path, module in source.named_modules():
        if _inside(path, taken):
            continue
        kind = _kind_of(module)
        if kind is not None:
            found = _layers_of(path, module, kind)
            layers += found
            order += [layer.name for layer in found]
            taken.add(path)
        elif whole.is_plain(module) and path:
            read_ = whole.read_plain(path, module)
            if isinstance(read_, PlainLayer):
                plain.append(read_)
                order.append(read_.name)
            else:
                unread.append(read_)
            taken.add(path)
    if isinstance(source, Stack):  # nn.LSTM always concatenates; the Stack knows the merge
        layers = [layer.replace(merge=merge or "concat") for layer, merge in zip(layers, source.merges)]
        names = [x.name for x in layers]
        links = tuple(zip(names, names[1:])) if source.chained else ()
        if source.whole:  # it runs its children in order: each layer feeds the next, no-ops looked through
            noops = {x.name for x in plain if x.kind in NO_OPS}
            computing = [name for name in order if name not in noops]
            links = (*zip(order, order[1:]), *zip(computing, computing[1:]))
        return Model(
            tuple(layers),
            type(source).__name__,
            links,
            skipped=source.not_carried,
            around=tuple(plain),
            order=tuple(order),
        )
    skipped = (*unread, *_skipped(source, taken))
    return Model(
        tuple(layers),
        type(source).__name__,
        statedict.links(layers),
        skipped=skipped,
        around=tuple(plain),
        order=tuple(order),
    )


def _inside(path: str, taken: set[str]) -> bool:
    """Whether ``path`` is one of the non-root module paths ``taken`` or inside one (by its
    ancestors: linear in the depth, not in the number of modules)."""
    parts = path.split(".")
    return bool(parts[0]) and any(".".join(parts[:end]) in taken for end in range(1, len(parts) + 1))


def _skipped(root: nn.Module, done: set[str]) -> tuple[Skipped, ...]:
    """The parameters and floating-point buffers outside the modules read, by module."""
    groups: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for key, tensor in [*root.named_parameters(), *root.named_buffers()]:
        owner = key.rpartition(".")[0]
        if "" in done or _inside(owner, done):
            continue
        if not tensor.is_floating_point():
            continue
        groups.setdefault(owner, []).append((key, tuple(tensor.shape)))
    return tuple(
        Skipped.of(owner or type(root).__name__, type(root.get_submodule(owner)).__name__, tensors)
        for owner, tensors in groups.items()
    )


def _pickled_objects(message: str, path: str) -> UnsafeInputError:
    """The refusal of a pickle holding objects, naming the first class torch would not load (a
    madmom model file pickles madmom.ml.nn.NeuralNetwork, not a state_dict)."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    name = found.group(1) if found else ""
    hint = "save a plain state_dict with torch.save(module.state_dict(), path)"
    if name and not name.startswith("torch."):
        hint = f"it is not a PyTorch state_dict: export the weights with the library of {name}, or " + hint
    return UnsafeInputError(
        "refused: the file holds pickled objects beyond tensors"
        + (f" ({name})" if name else "")
        + " (loading would run code)",
        where=(path,),
        hint=hint,
    )


def _load_state_dict(path: str) -> tuple[dict[str, np.ndarray], dict[str, str], list[tuple[str, str]]]:
    """The tensors of the file's state_dict, and the RNN nonlinearities lstmconv recorded (or a
    TorchScript archive's modules hold); a TorchScript archive is read as data, never loaded."""
    if torchscript.is_torchscript(path):
        tensors, nonlinearities = torchscript.read_state(path)
        return tensors, nonlinearities, []
    pt_header.check_file(path)  # every tensor inside its own storage record, before mapping
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except Exception as error:  # torch.load raises many classes for a broken file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if any(
            sign in str(error) for sign in ("Weights only load failed", "Unsupported global", "weights_only")
        ):
            raise _pickled_objects(str(error), path) from None
        raise FormatError(f"not a readable PyTorch file: {reason}", where=(path,)) from None
    state = statedict.find_state_dict(loaded, lambda value: isinstance(value, torch.Tensor))
    if state is None:
        raise statedict.no_state_dict(path, loaded, lambda value: isinstance(value, torch.Tensor))
    for key, value in state.items():
        if isinstance(value, torch.Tensor):  # the legacy format's too: nothing mapped there
            pt_header.check_extent(
                tuple(value.shape),
                tuple(value.stride()),
                int(value.storage_offset()),
                value.untyped_storage().nbytes() // max(value.element_size(), 1),
                str(key),
            )
    tensors = {key: _numpy(value) for key, value in state.items() if isinstance(value, torch.Tensor)}
    return tensors, statedict.recorded_nonlinearities(state), statedict.recorded_links(state)


def _is_zip(path: str) -> bool:
    """torch can memory-map only its zip format, not the legacy pickle format."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def write(model: Model, path: str, *, as_cell: bool = False, **options: Any) -> None:
    """Save the state_dict of ``model``'s modules (:func:`statedict.modules`: a multi-layer
    module under its own keys, a cell as a cell) and plain layers to ``path``; ``as_cell``: every
    layer as a single-step cell; ``rename`` ({OLD: NEW}, prefix match) and ``prefix``: the keys
    renamed. A state_dict's shapes cannot say whether an RNN is tanh or relu, so that is
    recorded in its ``_metadata``, as PyTorch records module versions."""
    ready = keys.prepared(
        model, path, as_cell=as_cell, rename=options.get("rename"), prefix=options.get("prefix")
    )
    tensors = OrderedDict(
        (key, _tensor(np.concatenate(parts) if len(parts) > 1 else parts[0]))
        for key, parts in ready.blocks.items()
    )
    tensors._metadata = OrderedDict(  # type: ignore[attr-defined]  # PyTorch's own convention
        (key, {statedict.META_KEY: name}) for key, name in ready.nonlinearities.items()
    )
    if ready.links:  # which modules feed which: a state_dict cannot say
        tensors._metadata[""] = {statedict.LINKS_KEY: ready.links}  # type: ignore[attr-defined]
    with open(path, "wb") as handle:  # a handle, so the archive's folder is not named after the file
        torch.save(tensors, handle)


class Stack(nn.Module):
    """The recurrent layers of an IR model as ``nn.LSTM/GRU/RNN`` submodules, run in order on
    input (batch, time, features); bidirectional outputs merged as the source merged them. Plain
    layers are submodules too only where the source links every layer to the next
    (:func:`lstmconv.porting.unchained`): :func:`build` leaves them out otherwise."""

    def __init__(self, model: Model):
        super().__init__()
        #: Plain layers in: the source links every layer to the next, so they run as one chain.
        self.whole = bool(model.around)
        self.chained = self.whole or len(model.chains()) == 1
        #: What the module leaves out (:meth:`Model.recurrent_only`'s list), for reading it back.
        self.not_carried = model.skipped
        self.merges: list[str] = []
        names = dict(zip((layer.name for layer in model.everything()), statedict.module_names(model)))
        for layer in model.everything():
            if isinstance(layer, PlainLayer):
                dtype = _torch_dtype(layer.dtype) if layer.dtype is not None else torch.float32
                self.add_module(names[layer.name], whole.new_module(layer, dtype))
                continue
            check(layer)
            self.add_module(names[layer.name], _new_module(layer))
            self.merges.append(layer.merge if layer.direction is Direction.BIDIRECTIONAL else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.chained:
            raise UnsupportedFeatureError(
                "the layers are not one chain in the source, so they do not run as one module",
                hint="run each submodule on its own",
            )
        merges = iter(self.merges)
        for module in self.children():
            if whole.is_plain(module):
                x = module(x)
                continue
            merge = next(merges)
            x, _ = module(x)
            if merge and merge != "concat":
                batch, steps, _features = x.shape
                both = x.reshape(batch, steps, 2, -1)
                forward, backward = both[:, :, 0], both[:, :, 1]
                if merge == "sum":
                    x = forward + backward
                elif merge == "mul":
                    x = forward * backward
                else:
                    x = (forward + backward) / 2
        return x


def _new_module(layer: Layer) -> nn.Module:
    common = dict(
        input_size=layer.input_size,
        hidden_size=layer.hidden_size,
        num_layers=1,
        bias=layer.has_bias,
        batch_first=True,
        bidirectional=layer.direction is Direction.BIDIRECTIONAL,
        dtype=_torch_dtype(layer.dtype),
    )
    if layer.kind is Kind.LSTM:
        module: nn.Module = nn.LSTM(proj_size=layer.proj_size, **common)
    elif layer.kind is Kind.GRU:
        module = nn.GRU(**common)
    else:
        module = nn.RNN(nonlinearity=layer.activations[0].name, **common)
    _fill(module, 0, layer)
    return module


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory; only ever read (the IR's arrays are read-only)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        if array.dtype.name == "bfloat16":
            return torch.from_numpy(np.ascontiguousarray(array).view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(array))


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return _tensor(np.zeros(0, dtype=dtype)).dtype


def _fill(module: nn.Module, index: int, layer: Layer) -> None:
    order = GATE_ORDER[layer.kind]
    with torch.no_grad():
        for direction, cell in enumerate(layer.cells):
            suffix = (
                "" if isinstance(module, nn.RNNCellBase) else f"_l{index}{'_reverse' if direction else ''}"
            )
            values = {
                "weight_ih": cell.stacked("w_ih", order),
                "weight_hh": cell.stacked("w_hh", order),
            }
            if layer.has_bias:
                values["bias_ih"] = cell.stacked("b_ih", order)
                values["bias_hh"] = cell.stacked("b_hh", order)
            if cell.w_hr is not None:
                values["weight_hr"] = np.asarray(cell.w_hr)
            for field, value in values.items():
                parameter = getattr(module, field + suffix)
                parameter.copy_(_tensor(value).to(parameter.dtype))


def build(model: Model) -> Stack:
    """A runnable ``nn.Module`` holding the layers of ``model`` (``to_torch``): its plain layers
    only where the source links them into one chain with the recurrent ones, as the ``.keras``
    and ``.onnx`` writers build them (:func:`lstmconv.porting.unchained`); otherwise a warning
    names them and the module holds the recurrent layers alone (the plain ones listed as not
    carried when it is read back), never run in an order the source does not give."""
    if model.around:
        why = porting.unchained(model)
        if why is not None:
            _log.warning(
                "%s: the plain layers %s are not built into to_torch's module (%s): the recurrent layers are",
                model.source or "the model",
                ", ".join(f'"{layer.name}"' for layer in model.around),
                why,
            )
            model = model.recurrent_only()
    return Stack(model).eval()


def run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """Run a :class:`Stack` or a single ``nn.LSTM/GRU/RNN`` on (batch, time, features), or a
    :class:`Stack` starting with an embedding on (batch, time) integer ids."""
    parameter = next(module.parameters())
    with torch.no_grad():
        tensor = _tensor(x).long() if np.asarray(x).dtype.kind in "iu" else _tensor(x).to(parameter.dtype)
        if isinstance(module, Stack):
            return _numpy(module(tensor))
        batch_first = getattr(module, "batch_first", True)
        output, _ = module(tensor if batch_first else tensor.transpose(0, 1))
        return _numpy(output if batch_first else output.transpose(0, 1))


def is_runnable(module: object) -> bool:
    """Whether ``run`` can run this object on the canonical input as it is."""
    return isinstance(module, Stack) or _kind_of(module) is not None  # type: ignore[arg-type]


def check_written(path: str) -> None:
    """Nothing beyond what loading the file for verification checks (``torch.load``)."""


def load_written(path: str) -> None:
    """A state_dict file is no runnable module by itself: verification builds one from it."""
    return None


def runnable(model: Model) -> Stack:
    """What verification runs for an IR model: :func:`build`'s."""
    return build(model)


def running_note(model: Model) -> str | None:
    return None


def load_into(target: nn.Module, model: Model, mapping: Mapping[str, str] | None = None) -> nn.Module:
    """Fill the recurrent layers of ``target`` with ``model``'s layers, in order or by ``mapping``
    (target layer name → model layer name). Everything is checked before anything changes."""
    slots = [
        (present, module, index)
        for path, module, kind in recurrent_modules(target)
        for index, present in enumerate(_layers_of(path, module, kind))
    ]
    plan = []
    for position, layer in _common.pair_slots([present.name for present, _, _ in slots], model, mapping):
        present, module, index = slots[position]
        check(layer)
        _common.require_matching(layer, f'module "{present.name}"', _structure(layer), _structure(present))
        plan.append((module, index, layer))
    for module, index, layer in plan:
        _fill(module, index, layer)
    return target


def port_into(target: nn.Module, source: Model, pairs: Sequence[tuple[str, str]]) -> nn.Module:
    """Fill the layer of ``target`` named ``pairs[i][0]`` (as :func:`read` names it) with
    ``source``'s layer ``pairs[i][1]``, recurrent and plain; every pair is checked first."""
    return whole.port_into(target, source, pairs, read(target))


def run_whole(obj: nn.Module, x: np.ndarray) -> np.ndarray:
    """Run a torch module end to end: float (batch, time, features), or int64 ids (batch, time)."""
    return whole.run_whole(obj, x)


def write_like(model: Model, template: str, pairs: Sequence[tuple[str, str]], dest: str) -> None:
    """Write ``model`` into ``dest`` in the exact layout of the ``.pt``/``.safetensors`` template."""
    whole.write_like(model, template, pairs, dest)


def _structure(layer: Layer) -> dict[str, object]:
    return {
        **_common.structure(layer),
        "projection": layer.proj_size,
        "activations": [str(a) for a in layer.activations],
    }


# -- the source as given, layer by layer (verification) -------------------------------------------
_MODULES = {Kind.LSTM: nn.LSTM, Kind.GRU: nn.GRU, Kind.RNN: nn.RNN}
#: Held while a verification run turns oneDNN off: the flag is torch's, global to the process,
#: so two conversions of a batch must not save and restore it across each other.
_NATIVE_KERNEL = threading.Lock()


def layer_runners(source: Any, model: Model) -> tuple[str, dict[str, Any], Any]:
    """A run function for each of ``model``'s layers from ``source`` as the user has it: an
    ``nn.LSTM/GRU/RNN`` (one per ``num_layers`` index) built from the shapes and filled with the
    file's (or the live module's) own tensors under their own keys, ``load_state_dict(strict=True)``.
    Nothing of lstmconv's reading of the gates goes in."""
    wanted = {layer.name: layer for layer in model}
    runners: dict[str, Any] = {}
    for base, prefix, group, is_cell in _groups_as_given(source):
        kind = statedict.infer_kind(group, prefix)
        indices = sorted({index for index, _ in group})
        for index in indices:
            name = statedict.level_name(base, index, len(indices))
            layer = wanted.get(name)
            if layer is not None and layer.kind is kind and layer.merge == "concat":
                if is_cell:
                    runners[name] = _cell_runner(group[(0, False)], layer, f"{prefix}weight_ih")
                else:
                    runners[name] = _level_runner(group, index, layer, f"{prefix}…_l{index}")
    whole = None
    if isinstance(source, nn.Module) and is_runnable(source) and len(model.chains()) == 1:
        whole = lambda x: run(source, x)  # noqa: E731 - the module itself, as a whole
    return "torch", runners, whole


def _groups_as_given(source: Any) -> list[tuple[str, str, statedict.Group, bool]]:
    """(layer base name, key prefix, tensors by (index, reverse), whether a single-step cell)
    of each recurrent module."""
    if isinstance(source, Stack):
        return []  # lstmconv's own module, built from the IR: nothing of the user's to run
    if isinstance(source, nn.Module):
        return [
            (
                path or kind.value,
                "",
                statedict.recurrent_groups(dict(module.named_parameters()))[""],  # type: ignore[arg-type]
                isinstance(module, nn.RNNCellBase),
            )
            for path, module, kind in recurrent_modules(source)
        ]
    path = os.fspath(source)
    if path.lower().endswith(".safetensors"):
        from safetensors.torch import load_file

        tensors: Mapping[str, Any] = load_file(path)
    elif torchscript.is_torchscript(path):  # its tensors as data: the archive's code is never loaded
        tensors = {key: torch.from_numpy(value) for key, value in torchscript.read_state(path)[0].items()}
    else:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
        found = statedict.find_state_dict(loaded, lambda value: isinstance(value, torch.Tensor))
        tensors = found if found is not None else {}
    plain = {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    groups = statedict.recurrent_groups(plain)  # type: ignore[arg-type]
    cells = statedict.cell_prefixes(plain)
    return [
        (prefix.rstrip(".") or statedict.infer_kind(group, prefix).value, prefix, group, prefix in cells)
        for prefix, group in groups.items()
    ]


def _cell_runner(fields: Mapping[str, Any], layer: Layer, where: str) -> Any:
    """The user's single-step cell (``nn.LSTMCell``/``GRUCell``/``RNNCell``, its own tensors
    under its own keys) stepped over the time axis from a zero state."""
    options: dict[str, Any] = {"input_size": layer.input_size, "hidden_size": layer.hidden_size}
    options["bias"] = layer.has_bias
    if layer.kind is Kind.RNN:
        options["nonlinearity"] = layer.activations[0].name
    own = {field: torch.as_tensor(tensor).detach() for field, tensor in fields.items()}
    first = own["weight_ih"]
    module = _CELLS[layer.kind](**options).to(first.dtype).eval()
    try:
        module.load_state_dict(own, strict=True)
    except RuntimeError as error:
        raise UnsupportedFeatureError(f"torch cannot load the tensors: {error}", where=(where,)) from None

    def run_cell(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            sequence = torch.as_tensor(np.asarray(x)).to(first.dtype)
            outputs, state = [], None
            for step in range(sequence.shape[1]):
                state = module(sequence[:, step], state)
                outputs.append(state[0] if isinstance(state, tuple) else state)
            output = torch.stack(outputs, dim=1)
        return _numpy(output.float() if first.dtype == torch.bfloat16 else output)

    return run_cell


@contextlib.contextmanager
def _native_kernel() -> Iterator[None]:
    """oneDNN off for the duration, then as it was (only the one flag: ``mkldnn.flags()`` also
    sets the others, with a warning on every machine without an Intel GPU)."""
    with _NATIVE_KERNEL:
        was = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # a property of the module
        try:
            yield
        finally:
            torch.backends.mkldnn.enabled = was


def _level_runner(group: statedict.Group, index: int, layer: Layer, where: str) -> Any:
    options: dict[str, Any] = {
        "input_size": layer.input_size,
        "hidden_size": layer.hidden_size,
        "num_layers": 1,
        "bias": layer.has_bias,
        "batch_first": True,
        "bidirectional": layer.direction is Direction.BIDIRECTIONAL,
    }
    if layer.kind is Kind.LSTM and layer.proj_size:
        options["proj_size"] = layer.proj_size
    if layer.kind is Kind.RNN:
        options["nonlinearity"] = layer.activations[0].name
    own = {}
    for (level, reverse), fields in group.items():
        if level == index:
            for field, tensor in fields.items():
                own[f"{field}_l0{'_reverse' if reverse else ''}"] = torch.as_tensor(tensor).detach()
    first = next(iter(own.values()))
    with torch.device("meta"):  # no random initialisation to throw away: the file's tensors go in
        module = _MODULES[layer.kind](**options)
    try:
        module.load_state_dict(own, strict=True, assign=True)
        module.eval()
        module.flatten_parameters()
    except RuntimeError as error:
        raise UnsupportedFeatureError(f"torch cannot load the tensors: {error}", where=(where,)) from None

    def run_level(x: np.ndarray) -> np.ndarray:
        # torch's own CPU kernel, not oneDNN's: oneDNN repacks every weight on every call (a
        # one-step run of a 2048-wide BiLSTM layer took 0.15-0.34 s against 0.015 s), and both
        # are torch's forward pass of the same module
        with _native_kernel(), torch.no_grad():
            output, _ = module(torch.as_tensor(np.asarray(x)).to(first.dtype))
        return _numpy(output.float() if first.dtype == torch.bfloat16 else output)

    return run_level
