"""``.npy`` / ``.npz`` files from outside, read with their size known before any allocation: the
header's shape × dtype is checked against a cap and against the bytes really there (a 100-byte file
must not declare a 10¹⁰-element array), a zipped member's declared size against the same cap (a
deflate bomb is refused before it is inflated), no pickles, and — where asked — every value finite."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

MAX_ARRAY_BYTES = 256 << 20  # a region file (1,000 boxes × 2,048 floats) is 8 MB; a feature file tens of MB


class ArrayFileError(ValueError):
    """An array file that is not a plain ``.npy`` / ``.npz`` within its size bound; names it."""


def _nbytes(shape: tuple, dtype: np.dtype) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * dtype.itemsize


def _header(f, where: str, max_bytes: int) -> tuple[tuple, bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise ArrayFileError(f"{where}: unsupported .npy version {version}")
        shape, fortran, dtype = read(f, max_header_size=10_000)
    except ArrayFileError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise ArrayFileError(f"{where}: not a .npy array ({e})") from None
    if dtype.hasobject:
        raise ArrayFileError(f"{where}: holds Python objects (a pickle), not numbers")
    if _nbytes(shape, dtype) > max_bytes:
        raise ArrayFileError(f"{where}: declares a {dtype} array of shape {shape}, more than {max_bytes >> 20} MiB")
    return shape, fortran, dtype


def _body(f, shape: tuple, fortran: bool, dtype: np.dtype, where: str) -> np.ndarray:
    size = _nbytes(shape, dtype)
    data = f.read(size)
    if len(data) != size:
        raise ArrayFileError(f"{where}: declares shape {shape} ({size} bytes) but holds {len(data)}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array.copy()


def read_npy(path: str | Path, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """A ``.npy`` file whose declared array is at most ``max_bytes`` and really there."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype = _header(f, str(path), max_bytes)
            return _body(f, shape, fortran, dtype, str(path))
    except OSError as e:
        raise ArrayFileError(f"{path}: {e.strerror or e}") from None


def read_npz(path: str | Path, max_bytes: int = MAX_ARRAY_BYTES) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` (a zip of ``.npy``): the members' declared sizes together at most
    ``max_bytes`` before any is inflated, each header checked as :func:`read_npy` does."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.infolist() if m.filename.endswith(".npy")]
            declared = sum(m.file_size for m in members)
            if declared > max_bytes + 4096 * len(members):
                raise ArrayFileError(f"{path}: its arrays inflate to {declared} bytes, more than {max_bytes >> 20} MiB")
            out = {}
            for m in members:
                where = f"{path} ({m.filename})"
                with z.open(m) as f:
                    shape, fortran, dtype = _header(f, where, min(max_bytes, m.file_size))
                    out[m.filename[:-4]] = _body(f, shape, fortran, dtype, where)
            return out
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
        raise ArrayFileError(f"{path}: not a readable .npz ({e})") from None


def finite(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` if every value is finite; else ArrayFileError naming ``where``."""
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise ArrayFileError(f"{where} holds NaN or infinite values")
    return array


def read_features(path: str | Path, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Per-second features ``.npy`` [seconds, dim] (float, every value finite), its size bounded first."""
    array = read_npy(path, max_bytes)
    if array.ndim != 2 or array.shape[0] == 0 or array.dtype.kind != "f":
        raise ArrayFileError(f"{path}: expected float features [seconds, dim], got {array.dtype} {array.shape}")
    return finite(array.astype(np.float32, copy=False), f"{path}: the features")
