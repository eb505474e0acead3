"""Token files: a prepared split's ids on disk, read by memory-mapping.

    offset  size  field
    0       8     magic b"TFCRNNID"
    8       4     format version, little-endian uint32 (1)
    12      4     bytes per id: 1, 2 or 4 (uint8, uint16, uint32), little-endian uint32
    16      8     number of ids, little-endian uint64
    24      40    zeros (room for later fields)
    64      ...   the ids, little-endian, in the narrowest type that holds the vocabulary

The header makes a damaged or foreign file recognizable (wrong magic, unknown version, a count
that disagrees with the file's size) before any training reads it. A file is written under a
temporary name and renamed when complete (`Writer`), so a killed writer never leaves a file
that looks finished.
"""

import os
import struct

import numpy as np

from tfcharrnn.errors import UsageError

MAGIC = b"TFCRNNID"
VERSION = 1
HEADER_BYTES = 64
_HEADER = struct.Struct("<8sIIQ")
DTYPES = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}


def id_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned type that holds ids 0..vocab_size-1."""
    for width, dtype in DTYPES.items():
        if vocab_size <= 1 << (8 * width):
            return dtype
    raise ValueError(f"a vocabulary of {vocab_size} tokens does not fit 32-bit ids")


class Writer:
    """Appends ids to `path` (written as `path`.partial until `close`)."""

    def __init__(self, path: str, dtype):
        self.path, self.dtype = path, np.dtype(dtype).newbyteorder("<")
        self.partial = path + ".partial"
        self.count = 0
        self._file = open(self.partial, "wb")
        self._file.write(b"\0" * HEADER_BYTES)

    def append(self, ids: np.ndarray):
        self._file.write(np.asarray(ids).astype(self.dtype, copy=False).tobytes())
        self.count += len(ids)

    def close(self):
        """Writes the header and puts the file in place."""
        self._file.seek(0)
        self._file.write(_HEADER.pack(MAGIC, VERSION, self.dtype.itemsize, self.count))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.partial, self.path)

    def abort(self):
        self._file.close()
        if os.path.exists(self.partial):
            os.remove(self.partial)


def header(path: str) -> tuple:
    """(dtype, count) of a token file; a UsageError naming the problem if it is not one."""
    fix = "prepare the data again (python -m tfcharrnn.prepare)"
    if not os.path.isfile(path):
        raise UsageError(f"{path} is missing; {fix}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES or raw[:8] != MAGIC:
        raise UsageError(f"{path} is not a tfcharrnn token file (no {MAGIC.decode()} header); "
                         f"{fix}")
    _, version, width, count = _HEADER.unpack(raw[:_HEADER.size])
    if version != VERSION:
        raise UsageError(f"{path} has token file version {version}; this tfcharrnn reads "
                         f"version {VERSION}: {fix}")
    if width not in DTYPES:
        raise UsageError(f"{path} is damaged (ids of {width} bytes); {fix}")
    if size != HEADER_BYTES + width * count:
        raise UsageError(f"{path} is damaged: its header counts {count:,} ids of {width} "
                         f"byte(s), but the file has {size - HEADER_BYTES:,} bytes of ids "
                         f"(truncated or appended to); {fix}")
    return DTYPES[width], count


def read(path: str) -> np.ndarray:
    """The ids of a token file, memory-mapped read-only ([count]; nothing is read yet)."""
    dtype, count = header(path)
    if count == 0:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(count,))
