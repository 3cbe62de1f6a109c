"""HDF5 and zip access for Keras files, with the checks that keep hostile files harmless:
links out of the file refused, declared sizes checked against the file's before allocating,
a stored zip member read in place."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import dtypes
from ...errors import FormatError, UnsafeInputError
from .._common import MAX_RATIO, dims, elements

if TYPE_CHECKING:  # h5py is imported where it is used: a file read by .h5read never imports it
    import h5py

#: A compressed HDF5 dataset may expand at most this many times the file's size.
MAX_HDF5_RATIO = MAX_RATIO


class H5:
    """An open HDF5 file whose datasets are read with the checks that keep hostile files harmless;
    with ``probe``, a dataset's shape and dtype are checked but its values left unread."""

    def __init__(
        self,
        handle: h5py.File,
        size: int,
        probe: bool = False,
        *,
        into: Iterator[np.ndarray] | None = None,
        preread: Iterator[np.ndarray] | None = None,
        outer: int | None = None,
        seen: list[tuple[str, list[int], str]] | None = None,
    ):
        """``into``: arrays (in the order the datasets are asked for) that each dataset is read
        into, in a child process (:mod:`.files`); ``preread``: those arrays, handed out in the
        same order instead of reading the file again. ``seen`` lists each dataset asked for.
        ``outer``: the stored size of the outermost file (a ``.keras`` archive holding this one),
        whose ``MAX_HDF5_RATIO`` times is the one budget for every dataset's declared bytes, so
        the zip's and HDF5's expansions do not multiply."""
        self.handle, self.size, self.probe = handle, size, probe
        self.budget = MAX_HDF5_RATIO * (size if outer is None else outer) + (1 << 20)
        self.declared = 0
        self.into, self.preread = into, preread
        self.seen = seen if seen is not None else []
        refuse_links(handle)

    def dataset(self, group: h5py.Group, key: str, where: str) -> np.ndarray:
        import h5py

        link = group.get(key, getlink=True)
        if link is None:
            raise FormatError(f"missing weight {key!r}", where=(where,))
        if not isinstance(link, h5py.HardLink):
            raise UnsafeInputError(
                f"{type(link).__name__} to {key!r} refused: weights must live in the file", where=(where,)
            )
        node = group[key]
        if not isinstance(node, h5py.Dataset):
            raise FormatError(f"{key!r} is not a dataset", where=(where,))
        self._require_inside(node, key, where)
        declared = elements(node.shape) * node.dtype.itemsize  # no int64 wrap: 2**64 is not 0
        allowed = self.size if node.compression is None else self.budget
        if declared > allowed:
            raise UnsafeInputError(
                f"dataset {key!r} declares {declared} bytes ({dims(node.shape)}) "
                f"but the file holds {self.size}",
                where=(where,),
                hint="the file's sizes are inconsistent; refusing to allocate",
            )
        self.declared += declared
        if self.declared > self.budget:
            raise UnsafeInputError(
                f"the datasets up to {key!r} declare {self.declared} bytes, more than {MAX_HDF5_RATIO}× "
                f"the {(self.budget - (1 << 20)) // MAX_HDF5_RATIO} bytes stored",
                where=(where,),
                hint="compression that expands this far is a bomb; refusing to allocate",
            )
        if node.dtype.hasobject or node.dtype.kind not in "biufcV":
            raise FormatError(f"dataset {key!r} holds {node.dtype}, not numbers", where=(where,))
        self.seen.append((node.name, [int(n) for n in node.shape], node.dtype.str))
        if self.preread is not None:  # read by the child, into memory it shares with us
            values = next(self.preread, None)
            if values is None or values.shape != node.shape or values.dtype != node.dtype:
                raise FormatError(f"dataset {key!r} changed while it was read", where=(where,))
        elif self.into is not None:
            values = next(self.into)
            if values.size:
                node.read_direct(values)
        elif self.probe:  # touch one element (its chunk index), allocate nothing
            first = node[(0,) * node.ndim] if node.size else np.zeros((), node.dtype)
            values = np.broadcast_to(np.asarray(first, node.dtype), node.shape)
        else:
            values = np.asarray(node[()])
        if node.attrs.get("dtype") in ("bfloat16", b"bfloat16") and values.dtype.itemsize == 2:
            return values.view(dtypes.resolve("bfloat16"))  # Keras 3 stores bfloat16 as raw 2-byte values
        return values

    def _require_inside(self, node: h5py.Dataset, key: str, where: str) -> None:
        """Only storage inside this file: the dataset reached through hard links alone, from
        this file, its bytes contiguous, chunked or compact here (no external storage, no
        virtual dataset mapping other files)."""
        import h5py

        if node.file != self.handle:
            raise UnsafeInputError(
                f"dataset {key!r} lies in another file ({node.file.filename}) through a link: refused",
                where=(where,),
                hint="weights must live in the file",
            )
        parent = self.handle
        parts = [part for part in node.name.split("/") if part]
        for index, part in enumerate(parts):
            link = parent.get(part, getlink=True)
            if not isinstance(link, h5py.HardLink):
                on = "/".join(parts[: index + 1])
                raise UnsafeInputError(
                    f"{type(link).__name__} {on!r} on the path to dataset {key!r} refused",
                    where=(where,),
                    hint="weights must live in the file",
                )
            parent = parent[part]
        plist = node.id.get_create_plist()
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            raise UnsafeInputError(
                f"dataset {key!r} is a virtual dataset (its bytes are mapped from other files): refused",
                where=(where,),
                hint="weights must live in the file",
            )
        if plist.get_external_count() > 0:
            first = plist.get_external(0)[0]
            shown = first.decode(errors="replace") if isinstance(first, bytes) else str(first)
            raise UnsafeInputError(
                f"dataset {key!r} keeps its bytes in external storage ({shown!r}): refused",
                where=(where,),
                hint="weights must live in the file",
            )


def refuse_links(handle: h5py.File) -> None:
    """Refuse a file holding any soft or external link, before anything follows one: an
    external link opens another file (which may be a FIFO, or a secret), and a soft link makes
    one name read another's bytes. Keras writes neither. Hard links are the file's own."""
    import h5py

    found: list[tuple[str, Any]] = []

    def visit(name: str, link: Any) -> Any:
        if not isinstance(link, h5py.HardLink):
            found.append((name, link))
            return True  # stop at the first
        return None

    handle.visititems_links(visit)
    if found:
        name, link = found[0]
        if isinstance(link, h5py.ExternalLink):
            target = f"{link.filename}:{link.path}"
        else:
            target = getattr(link, "path", "?")
        raise UnsafeInputError(
            f"{type(link).__name__} {name!r} to {target!r} refused",
            hint="weights must live in the file: no soft or external links",
        )


def attr_strings(group: h5py.Group, name: str) -> list[str]:
    """A string-list attribute, joined back from Keras's chunks ``name0``, ``name1``…"""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def attr_text(group: h5py.AttributeManager, name: str) -> str | None:
    value = group.get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class Window(io.RawIOBase):
    """A read-only file object onto ``length`` bytes of a file from ``start``: h5py reads a
    stored zip member through it at the speed of the file, not of zipfile's member reader."""

    def __init__(self, path: str, start: int, length: int):
        self._file = open(path, "rb")  # noqa: SIM115 - closed with the window
        self._start, self._length, self._position = start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), max(0, self._length - self._position))
        if not wanted:
            return 0
        self._file.seek(self._start + self._position)
        count = self._file.readinto(memoryview(buffer)[:wanted]) or 0
        self._position += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()
