"""``.pt`` files read without torch where they can be: torch's zip format through the
restricted unpickler of :mod:`.pt_header`, values memory-mapped from the storages' records;
what it declines (the legacy format, other globals, compressed records) goes to
``torch.load(weights_only=True)`` in :mod:`.live`, which needs torch."""

from __future__ import annotations

import os
from typing import Any

from ...errors import missing
from ...ir import Model
from ...registry import Declined, installed
from . import pt_header


def read(source: Any, *, nonlinearity: str | None = None, **options: Any) -> Model:
    path = os.fspath(source)
    try:
        return pt_header.read(
            path,
            nonlinearity=nonlinearity,
            values=not options.get("header_only"),
            **{key: options[key] for key in pt_header.PLAIN_OPTIONS if key in options},
        )
    except Declined as declined:
        if not installed("torch"):
            raise missing("torch", "torch", f"reading this .pt file ({declined})") from None
    from . import live  # torch, for what only torch.load reads

    return live.read(path, nonlinearity=nonlinearity, **options)
