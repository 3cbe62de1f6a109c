"""lstmconv's own HDF5 writer (formats/keras/h5write.py) and stored-zip writer
(formats/keras/zipstream.py), checked by reading their files with h5py (the HDF5 library) and
zipfile: groups of any size (multi-level B-trees, names in byte order), datasets of each float
type bit for bit, string attributes as h5py writes them, the library able to modify the file,
offsets past 4 GiB, and zip64 records."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from lstmconv.formats.keras import h5write, zipstream

h5py = pytest.importorskip("h5py")  # h5py is a core dependency: only an odd install lacks it


def _write(
    path: Path, root: h5write.Group, arrays: list[tuple[h5write.Dataset, np.ndarray]]
) -> h5write.Layout:
    layout = h5write.layout(root, [dataset for dataset, _ in arrays])
    with open(path, "wb") as handle:
        handle.write(layout.metadata)
        for _, array in arrays:
            handle.write(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    assert path.stat().st_size == layout.size
    return layout


def _dataset(group: h5write.Group, name: str, array: np.ndarray, arrays: list) -> None:
    dataset = h5write.Dataset(array.shape, array.dtype)
    group.children[name] = dataset
    arrays.append((dataset, array))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", ">f4"])
def test_datasets_read_back_bit_for_bit_with_their_shape_and_type(tmp_path, dtype: str) -> None:
    rng = np.random.default_rng(1)
    root, arrays = h5write.Group(), []
    shapes = {"a": (3, 8), "b": (8,), "c": (2, 3, 4), "empty": (0, 4), "scalar": ()}
    for name, shape in shapes.items():
        _dataset(root.group("g/vars"), name, rng.standard_normal(shape).astype(dtype), arrays)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-7, 65504.0], dtype=dtype)
    _dataset(root, "special", special, arrays)
    _write(tmp_path / "f.h5", root, arrays)
    with h5py.File(tmp_path / "f.h5", "r") as handle:
        for name, (_, array) in zip([*shapes, "special"], arrays, strict=True):
            node = handle["special" if name == "special" else f"g/vars/{name}"]
            assert node.shape == array.shape and node.dtype == np.dtype(dtype).newbyteorder("<")
            assert node.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
            little = np.dtype(dtype).newbyteorder("<")
            assert np.asarray(node[()], little).tobytes() == np.asarray(array, little).tobytes()


def test_groups_of_any_size_list_and_find_their_members_in_byte_order(tmp_path) -> None:
    """Past 8 members a group needs several symbol-table nodes, past 256 a B-tree of two levels,
    past 8,192 of three; HDF5 orders names by their bytes (``strcmp``)."""
    root = h5write.Group()
    odd = ["b", "B", "_", "a.1", "a/1".replace("/", "-"), "é", "10", "9", "Z" * 40]
    for name in odd:
        root.group(f"odd/{name}")
    sizes = (0, 1, 8, 9, 256, 257, 600, 8193)
    for size in sizes:
        group = root.group(f"g{size}")
        for index in range(size):
            group.group(f"n{index:05d}").attrs["name"] = f"member {index}"
    _write(tmp_path / "f.h5", root, [])
    with h5py.File(tmp_path / "f.h5", "r") as handle:
        assert list(handle["odd"]) == sorted(odd, key=lambda name: name.encode())
        assert list(handle) == sorted(["odd", *(f"g{size}" for size in sizes)])
        for size in sizes:
            group = handle[f"g{size}"]
            assert list(group) == [f"n{index:05d}" for index in range(size)]
            for index in {0, size // 2, size - 1} if size else ():
                assert group[f"n{index:05d}"].attrs["name"] == f"member {index}"
            assert "n99999" not in group and "m" not in group


def test_string_attributes_are_what_h5py_writes(tmp_path) -> None:
    """A scalar variable-length UTF-8 string, read back as ``str``, however many there are
    (their global heap collections past 4 KiB), and compared with h5py's own."""
    texts = ["lstmconv", "é…中", "x" * 5000, "", *(f"name_{index}" for index in range(3000))]
    root = h5write.Group()
    for index, text in enumerate(texts):
        root.group(f"g{index:05d}").attrs["name"] = text
    rng = np.random.default_rng(2)
    arrays: list = []
    _dataset(root.group("d"), "0", rng.standard_normal(4).astype("float32"), arrays)
    root.group("d").children["0"].attrs["dtype"] = "bfloat16"  # type: ignore[union-attr]
    _write(tmp_path / "ours.h5", root, arrays)
    with h5py.File(tmp_path / "theirs.h5", "w") as handle:
        handle.create_group("g").attrs["name"] = "lstmconv"
        theirs = handle["g"].attrs.get_id("name")
        their_type, their_shape = theirs.get_type(), theirs.shape
    with h5py.File(tmp_path / "ours.h5", "r") as handle:
        for index, text in enumerate(texts):
            value = handle[f"g{index:05d}"].attrs["name"]
            assert type(value) is str and value == text
        stored = handle["g00000"].attrs.get_id("name")
        assert stored.get_type() == their_type and stored.shape == their_shape == ()
        assert h5py.check_string_dtype(stored.dtype) == h5py.check_string_dtype(h5py.string_dtype("utf-8"))
        assert handle["d/0"].attrs["dtype"] == "bfloat16"


def test_the_hdf5_library_can_modify_the_file(tmp_path) -> None:
    """Opened for writing, the library walks and changes every structure: each must be
    right, not only readable."""
    root, arrays = h5write.Group(), []
    for index in range(300):
        root.group(f"many/n{index:03d}")
    _dataset(root.group("vars"), "0", np.arange(6, dtype="float32").reshape(2, 3), arrays)
    root.group("vars").attrs["name"] = "v"
    root.group("empty")
    _write(tmp_path / "f.h5", root, arrays)
    with h5py.File(tmp_path / "f.h5", "r+") as handle:
        for index in range(100):
            handle["many"].create_group(f"x{index:03d}")
        del handle["many/n150"]
        handle["vars"].attrs["other"] = "added"
        handle["empty"]["z"] = np.arange(3.0)
        handle["vars/0"][0, 0] = 9.0
    with h5py.File(tmp_path / "f.h5", "r") as handle:
        assert len(handle["many"]) == 399 and "n150" not in handle["many"]
        assert dict(handle["vars"].attrs) == {"name": "v", "other": "added"}
        assert handle["vars/0"][()].tolist() == [[9.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        assert handle["empty/z"][()].tolist() == [0.0, 1.0, 2.0]


def test_offsets_past_4_gib(tmp_path) -> None:
    """A 5 GiB dataset before a small one: the file is sparse (its hole costs no disk), only
    the small dataset's bytes are written, where the layout says, past 4 GiB."""
    big = h5write.Dataset((5 << 28,), np.dtype("float32"))  # 5 GiB
    small = np.arange(4, dtype="float64")
    root = h5write.Group()
    root.group("a").children["big"] = big
    root.group("b").children["small"] = after = h5write.Dataset(small.shape, small.dtype)
    layout = h5write.layout(root, [big, after])
    assert layout.size == len(layout.metadata) + (5 << 30) + small.nbytes
    path = tmp_path / "large.h5"
    with open(path, "wb") as handle:
        handle.write(layout.metadata)
        handle.seek(len(layout.metadata) + big.nbytes)
        handle.write(small.tobytes())
    with h5py.File(path, "r") as handle:
        assert handle["a/big"].shape == (5 << 28,) and handle["a/big"].id.get_offset() == len(layout.metadata)
        assert handle["b/small"].id.get_offset() == len(layout.metadata) + (5 << 30) > 1 << 32
        assert handle["b/small"][()].tolist() == small.tolist()
        assert handle["a/big"][-2:].tolist() == [0.0, 0.0]


def test_the_layout_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="IEEE float"):
        h5write.Dataset((2,), np.dtype("int32"))
    with pytest.raises(ValueError, match="not a name"):
        h5write.Group().group("a//b")
    root = h5write.Group()
    root.children["d"] = h5write.Dataset((2,), np.dtype("float32"))
    with pytest.raises(ValueError, match="every dataset"):
        h5write.layout(root, [])


# -- the zip ----------------------------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes]) -> None:
    with open(path, "wb") as handle:
        archive = zipstream.StoredZip(handle)
        for name, data in members.items():
            with archive.member(name, len(data)) as member:
                for start in range(0, len(data), 7):  # in pieces: the CRC-32 accumulates
                    member.write(memoryview(data)[start : start + 7])
        archive.close()


def test_a_stored_zip_reads_back_with_zipfile(tmp_path) -> None:
    members = {"metadata.json": b"{}", "empty": b"", "model.weights.h5": bytes(range(256)) * 9}
    _zip(tmp_path / "a.zip", members)
    with zipfile.ZipFile(tmp_path / "a.zip") as opened:
        assert opened.testzip() is None
        assert [info.filename for info in opened.infolist()] == list(members)
        for info in opened.infolist():
            assert info.compress_type == zipfile.ZIP_STORED and info.date_time == (1980, 1, 1, 0, 0, 0)
            assert opened.read(info) == members[info.filename]
            assert zlib.crc32(members[info.filename]) == info.CRC
    _zip(tmp_path / "b.zip", members)
    assert (tmp_path / "b.zip").read_bytes() == (tmp_path / "a.zip").read_bytes()


def test_zip64_records_where_sizes_and_offsets_need_them(tmp_path, monkeypatch) -> None:
    """The threshold lowered, so that small members take the records a member, an offset and a
    directory past 2 GiB take; zipfile reads them through the zip64 fields."""
    monkeypatch.setattr(zipstream, "ZIP64_LIMIT", 100)
    members = {"small": b"x" * 50, "large": bytes(range(200)), "after": b"y" * 150}
    _zip(tmp_path / "a.zip", members)
    data = (tmp_path / "a.zip").read_bytes()
    assert data.count(b"PK\x06\x06") == 1 and data.count(b"PK\x06\x07") == 1  # zip64 end + locator
    with zipfile.ZipFile(tmp_path / "a.zip") as opened:
        assert opened.testzip() is None
        assert {info.filename: opened.read(info) for info in opened.infolist()} == members
        offsets = [info.header_offset for info in opened.infolist()]
    assert offsets[2] > 100  # read from the zip64 extra field
    local = data.index(b"PK\x03\x04" + struct.pack("<H", 45))  # "large": zip64 sizes in its local header
    assert struct.unpack_from("<II", data, local + 18) == (0xFFFFFFFF, 0xFFFFFFFF)


def test_zip64_records_for_real_sizes() -> None:
    """The records themselves for a 5 GiB member at an offset past 4 GiB (not written)."""
    size, offset = 5 << 30, 6 << 30
    local = zipstream.local_header(b"w", size, 0x1234)
    assert struct.unpack_from("<IIIHH", local, 14) == (0x1234, 0xFFFFFFFF, 0xFFFFFFFF, 1, 20)
    assert struct.unpack_from("<HHQQ", local, 31) == (1, 16, size, size)
    central = zipstream.central_header(zipstream._Entry(b"w", size, 0x1234, offset))
    assert struct.unpack_from("<I", central, 42)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<HHQQQ", central, 47) == (1, 24, size, size, offset)
    end = zipstream.end_records(3, 200, offset + size)
    assert struct.unpack_from("<IQ", end, 0) == (0x06064B50, 44)
    assert struct.unpack_from("<QQQQ", end, 24) == (3, 3, 200, offset + size)
    assert struct.unpack_from("<IIQI", end, 56) == (0x07064B50, 0, offset + size + 200, 1)
    assert struct.unpack_from("<IHHHHIIH", end, 76) == (0x06054B50, 0, 0, 3, 3, 200, 0xFFFFFFFF, 0)
