"""A zip archive of stored (uncompressed) members written in one pass: each member's size is
known when it starts, its CRC-32 computed while its bytes go by and written into its local
header afterwards (the file is seekable), every member dated 1980-01-01 00:00, so the same
members give the same bytes. Zip64 records where a size or an offset needs them, at the
threshold :mod:`zipfile` uses (2 GiB), as the zip application note (4.5.3, 4.3.14) lays out."""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

#: Sizes and offsets from here on are written in zip64 records (as :mod:`zipfile` decides).
ZIP64_LIMIT = (1 << 31) - 1
#: 1980-01-01 00:00:00 in MS-DOS time and date.
DOS_TIME, DOS_DATE = 0, (1 << 5) | 1
#: Made by Unix (3), versions 2.0 and, with zip64 records, 4.5.
MADE_BY, VERSION, VERSION_64 = 3 << 8, 20, 45
MAX_32, MAX_16 = 0xFFFF_FFFF, 0xFFFF


@dataclass
class _Entry:
    name: bytes
    size: int
    crc: int
    offset: int


class Member:
    """The bytes of one member, written in order; :meth:`write` counts and checksums them."""

    def __init__(self, handle: BinaryIO):
        self.handle, self.crc, self.written = handle, 0, 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.handle.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.written += memoryview(data).nbytes


class StoredZip:
    """Members added in order to an open, seekable binary file; :meth:`close` writes the
    central directory (the file itself stays the caller's to close)."""

    def __init__(self, handle: BinaryIO):
        self.handle, self.entries = handle, list[_Entry]()
        self.start = handle.tell()

    def add(self, name: str, data: bytes) -> None:
        with self.member(name, len(data)) as member:
            member.write(data)

    @contextlib.contextmanager
    def member(self, name: str, size: int) -> Iterator[Member]:
        """A member of ``size`` bytes, written through the :class:`Member` yielded."""
        encoded = name.encode("ascii")
        offset = self.handle.tell() - self.start
        self.handle.write(local_header(encoded, size, 0))
        member = Member(self.handle)
        yield member
        if member.written != size:
            raise ValueError(f"zip member {name!r}: {member.written} bytes written, {size} declared")
        end = self.handle.tell()
        self.handle.seek(self.start + offset + 14)  # the CRC-32 field of the local header
        self.handle.write(struct.pack("<I", member.crc))
        self.handle.seek(end)
        self.entries.append(_Entry(encoded, size, member.crc, offset))

    def close(self) -> None:
        directory = b"".join(central_header(entry) for entry in self.entries)
        offset = self.handle.tell() - self.start
        self.handle.write(directory + end_records(len(self.entries), len(directory), offset))


def local_header(name: bytes, size: int, crc: int) -> bytes:
    large = size > ZIP64_LIMIT
    extra = struct.pack("<HHQQ", 1, 16, size, size) if large else b""
    shown = MAX_32 if large else size
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            VERSION_64 if large else VERSION,
            0,  # flags
            0,  # stored
            DOS_TIME,
            DOS_DATE,
            crc,
            shown,
            shown,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def central_header(entry: _Entry) -> bytes:
    """The member's central directory record; a zip64 extra field holds, in this order, the
    sizes and the offset that do not fit 32 bits."""
    large_size, large_offset = entry.size > ZIP64_LIMIT, entry.offset > ZIP64_LIMIT
    extra = (struct.pack("<QQ", entry.size, entry.size) if large_size else b"") + (
        struct.pack("<Q", entry.offset) if large_offset else b""
    )
    extra = struct.pack("<HH", 1, len(extra)) + extra if extra else b""
    version = VERSION_64 if extra else VERSION
    size = MAX_32 if large_size else entry.size
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            MADE_BY | version,
            version,
            0,  # flags
            0,  # stored
            DOS_TIME,
            DOS_DATE,
            entry.crc,
            size,
            size,
            len(entry.name),
            len(extra),
            0,  # comment
            0,  # disk
            0,  # internal attributes
            0,  # external attributes
            MAX_32 if large_offset else entry.offset,
        )
        + entry.name
        + extra
    )


def end_records(count: int, size: int, offset: int) -> bytes:
    """The end of central directory record, after the zip64 one and its locator where the
    directory's offset, size or member count needs them."""
    end = b""
    if count >= MAX_16 or size > ZIP64_LIMIT or offset > ZIP64_LIMIT:
        record = struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, MADE_BY | VERSION_64, VERSION_64, 0, 0, count, count, size, offset
        )
        locator = struct.pack("<IIQI", 0x07064B50, 0, offset + size, 1)
        end = record + locator
        count, size, offset = min(count, MAX_16), min(size, MAX_32), min(offset, MAX_32)
    return end + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, size, offset, 0)
