"""The IDX format (LeCun's MNIST files): a magic number giving the element type and the number
of dimensions, the dimensions as big-endian uint32, then the data. Parsed strictly: a file of the
wrong type, shape or length is an error, never a silently wrong array."""

from __future__ import annotations

import struct

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXError(ValueError):
    pass


def parse_idx(data: bytes, name: str = "file") -> np.ndarray:
    if len(data) < 4:
        raise IDXError(f"{name}: truncated (no IDX header)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _TYPES or ndim < 1:
        raise IDXError(f"{name}: not an IDX file (bad magic number)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{name}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_TYPES[code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise IDXError(f"{name}: {len(data)} bytes where shape {shape} needs {expected} "
                       f"({'truncated' if len(data) < expected else 'trailing data'})")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def write_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (used by tests to make small data sets)."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    return struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
