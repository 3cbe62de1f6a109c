"""The whole model moved: :func:`port` fills a live target (every layer with weights, recurrent
and plain) and runs both ends on the same inputs; :func:`convert_like` writes a file in the exact
layout of a template the user saved from the target.

Both read the two sides, pair them (:func:`lstmconv.porting.pair`) and hand the pairs to the
target family's hooks (``port_into``, ``write_like``, ``run_whole``); a state_dict side, whose
keys cannot say every kind or epsilon, is read ``like`` the other side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import porting, verification
from .errors import LstmconvError, UnsupportedFeatureError, UsageError, VerificationError
from .ir import Layer, Model
from .plain import PlainLayer
from .registry import FORMATS, Format, for_object, for_path, is_path


def _api() -> Any:
    from . import api

    return api


def _hook(fmt: Format, name: str, purpose: str) -> Callable[..., Any]:
    """The family hook ``name`` (``port_into``, ``run_whole``, ``write_like``) of ``fmt``: its
    live module's, else (safetensors, which needs no torch) its writer's."""
    module: Any = fmt.load_live(purpose) if fmt.live else fmt.load_writer()
    hook = getattr(module, name, None)
    if hook is None:
        raise UnsupportedFeatureError(f"{fmt.name} has no {name}: {purpose} is not possible for it yet")
    return hook


def read_side(
    source: Any, fmt: Format, other: Model, names: Mapping[str, str] | None, **options: Any
) -> Model:
    """Read one side; a format whose reader takes ``like`` (a state_dict) reads ``like`` the
    other side, so its kinds and epsilons decide what the keys cannot say."""
    if is_path(source) and "like" in fmt.read_options:
        options = {"like": other, "like_names": dict(names or {}), **options}
    model: Model = _api().read(source, fmt.name if is_path(source) else None, **options)
    return model


def port(
    source: Any,
    target: Any,
    mapping: Mapping[str, str] | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    **read_options: Any,
) -> verification.Report:
    """Fill every layer with weights of the live ``target`` (a ``torch.nn.Module``, a Keras model,
    an ``onnx.ModelProto``) from ``source`` (a file or a live model), in order with kind and shape
    checks or by ``mapping`` ({target layer: source layer}); then run each recurrent layer and the
    whole model of both on the same random inputs (integer ids for an Embedding input). Returns the
    report; raises :class:`~lstmconv.errors.VerificationError` (carrying it) when they disagree, and
    :class:`~lstmconv.errors.PortMismatchError`, changing nothing, when the layers do not line up."""
    verification.tolerances([], rtol, atol)
    if is_path(target):
        raise UnsupportedFeatureError(
            "port fills a live model; for a file use convert(..., like=TEMPLATE)",
            where=(os.fspath(target),),
            hint="pass a torch.nn.Module, a keras.Model or an onnx.ModelProto as the target",
        )
    api = _api()
    target_fmt = for_object(target)
    present = api.read(target)
    source_fmt = api._format_of(source, None)
    inverse = {s: t for t, s in (mapping or {}).items()}
    model = read_side(source, source_fmt, present, inverse, **read_options)
    pairs = porting.pair(model, present, mapping)
    _hook(target_fmt, "port_into", f"port into a {target_fmt.name} model")(target, model, pairs)
    after = api.read(target)
    return _proved(
        (source, source_fmt, model),
        (target, target_fmt, after),
        pairs,
        (verification.label(target), False),
        rtol,
        atol,
        "the target disagrees with the source after the port",
    )


def _proved(
    source: tuple[Any, Any, Model],
    target: tuple[Any, Any, Model],
    pairs: Sequence[tuple[str, str]],
    label: tuple[str, bool],
    rtol: float | None,
    atol: float | None,
    failure: str,
) -> verification.Report:
    """Each paired layer of ``source`` (object or path, format, model) against ``target``'s, and the
    whole models where both run whole. ``label``: the target's name in the report, and whether
    it is a written file (then also where the error is). Raises :class:`VerificationError`
    carrying the report when they disagree."""
    (given, given_fmt, model), (other, other_fmt, found) = source, target
    name, written = label
    sides = (
        verification.side_runners("source", given, model, given_fmt),
        verification.side_runners("target", other, found, other_fmt, written=written),
    )
    whole, notes = _whole_runs(given, given_fmt, other, other_fmt)
    report = verification.check_pairs(
        verification.label(given),
        name,
        sides,
        _recurrent_pairs(model, found, pairs),
        model,
        plain=_plain_pairs(model, found, pairs),
        whole=whole,
        rtol=rtol,
        atol=atol,
        notes=notes,
    )
    if not report.ok:
        error = VerificationError(f"{failure}\n{report}", where=(name,) if written else ())
        error.report = report
        raise error
    return report


def _plain_pairs(source: Model, target: Model, pairs: Any) -> list[tuple[PlainLayer, PlainLayer]]:
    mine = {layer.name: layer for layer in source.around}
    theirs = {layer.name: layer for layer in target.around}
    return [(mine[s], theirs[t]) for t, s in pairs if t in theirs and s in mine]


def _recurrent_pairs(source: Model, target: Model, pairs: Any) -> list[tuple[Layer, Layer]]:
    mine = {layer.name: layer for layer in source.layers}
    theirs = {layer.name: layer for layer in target.layers}
    return [(mine[s], theirs[t]) for t, s in pairs if t in theirs and s in mine]


Whole = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _whole_runs(
    source: Any, source_fmt: Format, target: Any, target_fmt: Format
) -> tuple[Whole | None, list[str]]:
    """The run functions of both whole models, or None with a note saying why not."""
    try:
        run_target = _runner(target, target_fmt)
        run_source = _runner(source, source_fmt)
    except LstmconvError as error:
        return None, [f"no whole-model check: {error}"]
    for run, obj, fmt in ((run_source, source, source_fmt), (run_target, target, target_fmt)):
        if run is None:
            what = f"a {fmt.name} file is no runnable model" if is_path(obj) else f"{fmt.name} cannot run it"
            return None, [f"no whole-model check: {what} (checked layer by layer)"]
    assert run_source is not None and run_target is not None
    return (run_source, run_target), []


def _runner(obj: Any, fmt: Format) -> Callable[[np.ndarray], np.ndarray] | None:
    """``obj`` run end to end by its family's ``run_whole``: a live object as given; a file as its
    framework opens it (``load_written``), None where that is no runnable model (a state_dict)."""
    if isinstance(obj, Model):
        return None
    framework = fmt.runs_in if is_path(obj) else fmt.name
    if framework is None or not verification.framework_available(framework):
        return None
    family = FORMATS[framework]
    run_whole = _hook(family, "run_whole", f"running a {framework} model whole")
    if is_path(obj):
        loaded = family.load_live(f"opening {os.fspath(obj)}").load_written(os.fspath(obj))
        if loaded is None:
            return None
        return lambda x: np.asarray(run_whole(loaded, x))
    return lambda x: np.asarray(run_whole(obj, x))


def _quietly(api: Any, hook: Callable[..., Any], *args: Any) -> None:
    """Run ``hook`` with what its reading of the template would warn of muted (said already)."""
    with api._reading_own_output():
        hook(*args)


def convert_like(
    source: Any,
    dest: str,
    template: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    verify: bool = True,
    overwrite: bool = False,
    from_format: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> verification.Report | None:
    """Write ``source``'s weights to ``dest`` in the exact layout of ``template`` (a state_dict
    saved from the target module, a ``.safetensors`` of it, an untrained ``.keras``, an ``.onnx``
    graph): its names, keys, order and dtypes. Verified layer by layer, and end to end where the
    template's format runs whole (``.keras``, ``.onnx``)."""
    api = _api()
    template = os.fspath(template)
    template_fmt = api.source_format(template)
    dest_fmt = for_path(dest)
    if dest_fmt.face != template_fmt.face or dest_fmt.name != template_fmt.name:
        raise UsageError(
            f"--like writes {dest} in the layout of {template}, a {template_fmt.name} file",
            hint=f"name the output with {', '.join(template_fmt.write_endings)}",
        )
    api._check_destination(dest, overwrite)
    source_fmt = api._format_of(source, from_format)
    model = api.read(source, from_format, **dict(read_options or {}))
    inverse = {s: t for t, s in (mapping or {}).items()}
    present = read_side(template, template_fmt, model, mapping)
    if is_path(source) and "like" in source_fmt.read_options:
        model = read_side(source, source_fmt, present, inverse, **dict(read_options or {}))
    pairs = porting.pair(model, present, mapping)
    write_like = _hook(template_fmt, "write_like", f"writing in the layout of a {template_fmt.name} file")
    reports: list[verification.Report] = []

    def check_written(temporary: str) -> None:
        if not verify:
            return
        with api._reading_own_output():
            written = read_side(temporary, dest_fmt, model, {t: s for t, s in pairs})
        report = _proved(
            (source, source_fmt, model),
            (temporary, dest_fmt, written),
            pairs,
            (dest, True),
            rtol,
            atol,
            "the written model disagrees with the source",
        )
        reports.append(report)

    api._staged_write(
        model,
        dest_fmt,
        dest,
        overwrite,
        {},
        check_written,
        write_with=lambda path: _quietly(api, write_like, model, template, pairs, path),
    )
    return reports[0] if reports else None
