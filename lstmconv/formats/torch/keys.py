"""What a state_dict writer writes, keys renamed as asked (``--rename OLD=NEW``, ``--prefix P``):
the tensors' blocks, the RNN nonlinearities and module links lstmconv records, all under the
same new names, so the file reads back as it was written."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ...errors import UsageError
from ...ir import Model
from . import around, statedict


@dataclasses.dataclass(frozen=True)
class Prepared:
    blocks: dict[str, list[np.ndarray]]
    nonlinearities: dict[str, str]
    links: list[list[str]]


def renaming(
    rename: Mapping[str, str] | Sequence[tuple[str, str]] | None, prefix: str | None
) -> Callable[[str], str]:
    """The key (or module name) after the first ``rename`` whose OLD it starts with, then ``prefix``
    (a dot added unless it ends with one)."""
    pairs = list(rename.items() if isinstance(rename, Mapping) else rename or ())
    start = prefix or ""
    if start and not start.endswith("."):
        start += "."

    def renamed(name: str) -> str:
        for old, new in pairs:
            if name.startswith(old):
                name = new + name[len(old) :]
                break
        return start + name

    return renamed


def prepared(
    model: Model,
    path: str,
    *,
    as_cell: bool = False,
    rename: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    prefix: str | None = None,
) -> Prepared:
    """The blocks, nonlinearities and links of ``model`` in a state_dict, renamed; what the file
    cannot hold of its plain layers warned of. A rename that matches no key, or that makes two
    keys one, is refused."""
    blocks = statedict.blocks(model, as_cell=as_cell)
    around.warn_unheld(model, path)
    name = renaming(rename, prefix)
    pairs = list(rename.items() if isinstance(rename, Mapping) else rename or ())
    unused = [old for old, _ in pairs if not any(key.startswith(old) for key in blocks)]
    if unused:
        raise UsageError(
            f"--rename {', '.join(unused)}: no key starts with it",
            hint=f"the keys: {', '.join(list(blocks)[:8])}{', ...' if len(blocks) > 8 else ''}",
        )
    renamed = {name(key): parts for key, parts in blocks.items()}
    if len(renamed) != len(blocks):
        clashing = sorted({name(key) for key in blocks if [name(k) for k in blocks].count(name(key)) > 1})
        raise UsageError(f"the renames make several keys {', '.join(clashing)}")
    return Prepared(
        renamed,
        {name(key): value for key, value in statedict.nonlinearities(model, as_cell=as_cell).items()},
        [[name(a), name(b)] for a, b in statedict.written_links(model, as_cell=as_cell)],
    )
