"""The registry is the whole truth about each format, and the tests follow it: every registered
format has its test entries, its modules have the hooks their roles declare, and its face imports
no framework. A new format registered with one record and one folder reads at once, refuses to
write when it has no writer, and is reported here for what its tests still lack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from helpers import random_layer
from natives import FILES, FileFormat

from lstmconv import registry
from lstmconv.errors import UnsupportedFeatureError
from lstmconv.registry import Format

FIXTURES = Path(__file__).parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
FRAMEWORKS = ("torch", "keras", "tensorflow", "tf_keras", "onnx", "onnxruntime")

#: The members each role's module must define (the registry's Protocols, spelled out).
HOOKS = {
    "face": ("NAME", "GATE_ORDER", "check", "layout"),
    "reader": ("read",),
    "header_reader": ("read",),
    "writer": ("write",),
    "live": (
        "read",
        "build",
        "run",
        "load_into",
        "is_runnable",
        "load_written",
        "check_written",
        "runnable",
        "running_note",
    ),
}


def _cases_by_format() -> Mapping[str, object]:
    from corpus import CASES_BY_FORMAT

    return CASES_BY_FORMAT


def problems(
    fmt: Format,
    files: Mapping[str, FileFormat] = FILES,
    manifest: Mapping[str, dict] = MANIFEST,
    cases: Mapping[str, object] | None = None,
) -> list[str]:
    """What the tests lack for ``fmt``: a natives.FILES entry, a fixture, a corpus case."""
    cases = _cases_by_format() if cases is None else cases
    found = []
    entry = files.get(fmt.name)
    if entry is None:
        found.append(f"{fmt.name}: no entry in tests/natives.py FILES")
    elif (entry.ending is None) != fmt.read_only:
        found.append(f"{fmt.name}: FILES says {'read-only' if entry.ending is None else 'writable'}")
    elif entry.ending is not None and entry.ending not in fmt.write_endings:
        found.append(f"{fmt.name}: FILES writes {entry.ending}, not one of {fmt.write_endings}")
    fixtures = [item for item in manifest.values() if _fixture_format(FIXTURES / item["file"]) == fmt.name]
    if not fixtures:
        found.append(f"{fmt.name}: no fixture in fixtures/manifest.json")
    if fmt.name not in cases:
        found.append(f"{fmt.name}: no hostile cases in tests/corpus.py CASES_BY_FORMAT")
    return found


def _fixture_format(path: Path) -> str | None:
    try:
        return registry.for_path(path).name
    except Exception:
        return None


def _modules(fmt: Format) -> dict[str, str]:
    roles = {
        "face": fmt.face,
        "reader": fmt.reader,
        "header_reader": fmt.header_reader,
        "writer": fmt.writer,
        "live": fmt.live,
    }
    return {role: module for role, module in roles.items() if module is not None}


FORMAT_NAMES = [fmt.name for fmt in registry.list_formats()]


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_every_format_has_its_test_entries(name):
    assert problems(registry.by_name(name)) == []


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_every_declared_module_has_its_hooks(name):
    fmt = registry.by_name(name)
    for role, module in _modules(fmt).items():
        if role in ("writer", "live") and not fmt.available("live" if role == "live" else "writer"):
            continue  # imports its framework; checked where that is installed
        loaded = __import__(module, fromlist=["_"])
        absent = [hook for hook in HOOKS[role] if not hasattr(loaded, hook)]
        assert absent == [], f"{name}: {role} module {module} lacks {absent}"


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_every_format_states_what_installs_it(name):
    fmt = registry.by_name(name)
    assert fmt.read_endings or fmt.folder_holds, name
    assert fmt.read_only == (not fmt.write_endings), name
    assert set(fmt.write_endings) <= set(fmt.read_endings), name
    if fmt.runs_in is not None:
        assert registry.by_name(fmt.runs_in).live is not None, name


def test_endings_belong_to_one_format():
    endings = registry.readable_endings()
    assert len(endings) == len(set(endings))


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_faces_and_readers_import_no_framework(name):
    """A face, and a reader that needs nothing, import with every framework blocked."""
    fmt = registry.by_name(name)
    modules = [fmt.face] + ([] if fmt.reader_needs else [fmt.reader])
    if fmt.header_reader:
        modules.append(fmt.header_reader)
    code = textwrap.dedent(
        f"""
        import sys, importlib
        for name in {FRAMEWORKS!r}:
            sys.modules[name] = None
        for module in {modules!r}:
            face = importlib.import_module(module)
        import lstmconv
        lstmconv.registry.by_name({name!r}).load_face()
        loaded = sorted(n for n in {FRAMEWORKS!r} if sys.modules.get(n) is not None)
        assert not loaded, loaded
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- a new format, registered with one record and one folder ---------------------------------
TOY_FACE = '''
"""A toy format: an .npz under another ending, read-only."""
from lstmconv.formats.npz import GATE_ORDER, check, layout

NAME = "toy"
'''
TOY_READER = """
from lstmconv.formats import npz


def read(path, **options):
    return npz.read(path, **options)
"""


@pytest.fixture
def toy_format(tmp_path, monkeypatch):
    package = tmp_path / "toyformat"
    package.mkdir()
    (package / "__init__.py").write_text(TOY_FACE)
    (package / "files.py").write_text(TOY_READER)
    monkeypatch.syspath_prepend(str(tmp_path))
    fmt = Format(
        "toy",
        "a toy read-only format",
        read_endings=(".toy",),
        write_endings=(),
        face="toyformat",
        reader="toyformat.files",
        write_hint="toy files are read-only; write .npz",
    )
    monkeypatch.setitem(registry.FORMATS, "toy", fmt)
    yield fmt
    for module in ("toyformat", "toyformat.files"):
        sys.modules.pop(module, None)


def _toy_file(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    import lstmconv
    from lstmconv.ir import Model
    from lstmconv.reference import run

    rng = np.random.default_rng(7)
    model = Model((random_layer(rng, inputs=3, hidden=4, name="toy_lstm"),))
    source = tmp_path / "m.npz"
    lstmconv.write(model, str(source))
    toy = tmp_path / "m.toy"
    toy.write_bytes(source.read_bytes())
    x = rng.uniform(-1, 1, (2, 5, 3))
    return toy, x, run(model, x)


def test_a_new_read_only_format_reads_and_refuses_to_write(toy_format, tmp_path):
    import lstmconv
    from lstmconv.reference import run

    toy, x, expected = _toy_file(tmp_path)
    assert registry.for_path(toy) is toy_format
    model = lstmconv.read(str(toy))
    np.testing.assert_allclose(run(model, x), expected, rtol=0, atol=0)
    assert [layer["name"] for layer in lstmconv.inspect(str(toy))["layers"]] == [
        layer.name for layer in model.layers
    ]
    with pytest.raises(UnsupportedFeatureError, match="does not write") as refused:
        lstmconv.write(model, str(tmp_path / "out.toy"))
    assert "write .npz" in str(refused.value)
    assert not (tmp_path / "out.toy").exists()
    assert "toy" not in [fmt.name for fmt in registry.list_formats() if not fmt.read_only]


def test_a_new_format_is_reported_for_what_its_tests_lack(toy_format):
    assert problems(toy_format) == [
        "toy: no entry in tests/natives.py FILES",
        "toy: no fixture in fixtures/manifest.json",
        "toy: no hostile cases in tests/corpus.py CASES_BY_FORMAT",
    ]
    complete = problems(
        toy_format,
        files={**FILES, "toy": FileFormat(None, (), None, None)},
        manifest={**MANIFEST, "toy": {"file": "toy_example.toy"}},
        cases={**_cases_by_format(), "toy": []},
    )
    assert complete == []
    wrong = problems(toy_format, files={"toy": FileFormat(".toy", (), None, None)}, cases={"toy": []})
    assert wrong[0] == "toy: FILES says writable"


def test_a_new_format_ending_is_offered(toy_format):
    assert ".toy" in registry.readable_endings()
    assert ".toy" not in registry.writable_endings()
