"""CRC-32C (Castagnoli), and the masked form LevelDB tables and tensor bundles store, in NumPy.

A CRC is sequential, so a large buffer is cut into ``k`` equal chunks whose CRCs are computed
side by side (one NumPy step per byte position), then joined: the register after chunk ``j`` is
the register after ``j - 1`` carried through ``L`` more bytes (a fixed linear map, applied with
four byte tables) xor chunk ``j``'s own CRC from a zero register. The tail is done byte by byte.
"""

from __future__ import annotations

import functools

import numpy as np

_POLY = 0x82F63B78  # CRC-32C, reflected
_MASK_DELTA = 0xA282EAD8


def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


TABLE = _table()
_TABLE_LIST = TABLE.tolist()


def _bytewise(register: int, data: bytes | memoryview) -> int:
    table = _TABLE_LIST
    for byte in bytes(data):
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


@functools.lru_cache(maxsize=16)
def _shift_tables(length: int) -> tuple[list[int], ...]:
    """Four byte tables computing the linear map 'carry a register through ``length`` zero
    bytes' (xor of the four lookups by the register's bytes)."""
    basis = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    for _ in range(length):
        basis = TABLE[basis & 0xFF] ^ (basis >> 8)
    bits = (np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1  # (256, 8)
    tables = []
    for byte in range(4):
        images = basis[8 * byte : 8 * byte + 8]
        chosen = np.where(bits.astype(bool), images[None, :], np.uint32(0))
        tables.append(np.bitwise_xor.reduce(chosen, axis=1).astype(np.uint32).tolist())
    return tuple(tables)


def _chunked(register: int, data: np.ndarray) -> tuple[int, int]:
    """The register after the largest whole number of chunks of ``data``, and the bytes used."""
    size = data.size
    length = max(64, int((size * 0.08) ** 0.5))
    count = size // length
    if count < 4:
        return register, 0
    columns = data[: count * length].reshape(count, length).T.copy()  # one row per byte position
    state = np.zeros(count, dtype=np.uint32)
    for row in columns:
        state = TABLE[(state ^ row) & 0xFF] ^ (state >> 8)
    t0, t1, t2, t3 = _shift_tables(length)
    for chunk in state.tolist():
        register = (
            t0[register & 0xFF]
            ^ t1[(register >> 8) & 0xFF]
            ^ t2[(register >> 16) & 0xFF]
            ^ t3[register >> 24]
        ) ^ chunk
    return register, count * length


def extend(crc: int, data: bytes | memoryview | np.ndarray) -> int:
    """The CRC-32C of the bytes hashed so far (``crc``) followed by ``data``."""
    array = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    array = array.reshape(-1)
    register = crc ^ 0xFFFFFFFF
    register, used = _chunked(register, array) if array.size >= 4096 else (register, 0)
    register = _bytewise(register, array[used:].tobytes())
    return register ^ 0xFFFFFFFF


def value(data: bytes | memoryview | np.ndarray) -> int:
    return extend(0, data)


def mask(crc: int) -> int:
    """LevelDB's masked CRC (a CRC stored beside data that holds CRCs)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rotated = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF
