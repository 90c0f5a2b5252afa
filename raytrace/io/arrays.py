"""numpy arrays from files (``.npy``, ``.npz``), read header first, and checks of mesh arrays.

A ``.npz`` is a zip of ``.npy`` files, and zip compresses zeros a thousandfold: 4 MB on disk can
inflate to 4 GiB. ``numpy.load`` inflates first and asks questions later; here every member's
``.npy`` header (dtype and shape) is read and checked against the load's
:class:`~raytrace.io.limits.Limits` before a byte of its data is inflated, and the member's
declared size must match its header (a member that claims less data than its header is
truncated or forged). Only plain numeric arrays are read (no pickles, no object or structured
dtypes).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Dict, Optional, Sequence, Tuple

import numpy as np

from .limits import Budget

__all__ = ["read_npy", "read_npz", "check_mesh"]

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats


def _header(fp: IO[bytes], shown: str, what: str, budget: Budget) -> Tuple[int, np.dtype, Tuple[int, ...]]:
    """Reads and checks a .npy header from `fp`; returns (header length, dtype, shape)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except ValueError as e:
        raise ValueError(f"{shown}: {what}: not a valid .npy array ({e})") from e
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None \
            or dtype.subdtype is not None:
        raise ValueError(f"{shown}: {what}: dtype {dtype} is not a plain numeric type (bool, int, "
                         "uint or float)")
    budget.check_array(shown, what, shape, dtype.itemsize)
    return fp.tell(), dtype, tuple(int(s) for s in shape)


def _read(fp: IO[bytes], shown: str, what: str) -> np.ndarray:
    try:
        return np.lib.format.read_array(fp, allow_pickle=False)
    except MemoryError as e:
        raise ValueError(f"{shown}: {what}: out of memory reading the array") from e
    except Exception as e:  # zlib.error, EOFError, BadZipFile (CRC), ValueError (short data)
        raise ValueError(f"{shown}: {what}: cannot read the array ({type(e).__name__}: {e})") from e


def read_npy(file: Path, shown: str, budget: Optional[Budget] = None) -> np.ndarray:
    """A ``.npy`` file -> its array, checked against the limits from its header first."""
    budget = budget or Budget()
    budget.check_file(file, shown)
    with open(file, "rb") as fp:
        header_len, dtype, shape = _header(fp, shown, "array", budget)
        expected = header_len + int(np.prod(shape, dtype=object)) * dtype.itemsize
        size = fp.seek(0, 2)
        if size < expected:
            raise ValueError(f"{shown}: truncated .npy file ({size} bytes; its header needs "
                             f"{expected})")
        fp.seek(0)
        return _read(fp, shown, "array")


def read_npz(file: Path, shown: str, budget: Optional[Budget] = None,
             names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """A ``.npz`` file -> {name: array}. Every member's header is checked against the limits
    (elements, total bytes) before any member is inflated. With `names`, a member of another
    name is an error (before anything is inflated)."""
    budget = budget or Budget()
    budget.check_file(file, shown)
    try:
        zf = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise ValueError(f"{shown}: not a valid .npz (zip) file ({type(e).__name__}: {e})") from e
    with zf:
        members: Dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{shown}: member {info.filename!r} is not a .npy array")
            key = info.filename[:-4]
            if key in members:
                raise ValueError(f"{shown}: array {key!r} is stored twice")
            if names is not None and key not in names:
                raise ValueError(f"{shown}: unknown array {key!r} (allowed: "
                                 f"{', '.join(sorted(names))})")
            members[key] = info
        for key, info in members.items():  # all headers first: nothing inflated yet
            what = f"array {key!r}"
            try:
                with zf.open(info) as fp:
                    header_len, dtype, shape = _header(fp, shown, what, budget)
            except ValueError:
                raise
            except Exception as e:  # encrypted, unsupported compression, corrupt data
                raise ValueError(f"{shown}: {what}: cannot read ({type(e).__name__}: {e})") from e
            expected = header_len + int(np.prod(shape, dtype=object)) * dtype.itemsize
            if info.file_size != expected:
                raise ValueError(f"{shown}: {what}: the zip entry holds {info.file_size} bytes "
                                 f"but its header needs {expected} (truncated or forged)")
        out = {}
        for key, info in members.items():
            try:
                with zf.open(info) as fp:
                    out[key] = _read(fp, shown, f"array {key!r}")
            except ValueError:
                raise
            except Exception as e:
                raise ValueError(f"{shown}: array {key!r}: cannot read ({type(e).__name__}: {e})") from e
        return out


def check_mesh(mesh: Dict[str, Optional[np.ndarray]], shown: str, where: str = "") -> None:
    """Checks mesh arrays before they are returned: vertices [N, 3], indices [M, 3] integers in
    [0, N), uvs [N, 2] and normals [N, 3] when present, every float finite *as float32* (1e39
    is finite in float64 and inf in float32). Messages name the file, `where` (e.g. "mesh
    'Cube': ") and the element (vertex k, face k)."""
    def fail(msg: str) -> ValueError:
        return ValueError(f"{shown}: {where}{msg}")

    v = np.asarray(mesh["vertices"])
    if v.ndim != 2 or v.shape[1] != 3:
        raise fail(f"vertices must have shape [N, 3] (got {list(v.shape)})")
    n = len(v)
    for key, width in (("vertices", 3), ("uvs", 2), ("normals", 3)):
        a = mesh.get(key)
        if a is None:
            continue
        a = np.asarray(a)
        if a.shape != (n, width):
            raise fail(f"{key} must have shape [{n}, {width}] (got {list(a.shape)})")
        if not np.issubdtype(a.dtype, np.floating):
            raise fail(f"{key} must be floating point (got {a.dtype})")
        with np.errstate(over="ignore", invalid="ignore"):
            ok = np.isfinite(a.astype(np.float32)).all(axis=1)
        if not ok.all():
            k = int(np.argmin(ok))
            element = {"vertices": "vertex", "uvs": "uv of vertex", "normals": "normal of vertex"}[key]
            raise fail(f"{element} {k} is not finite in float32: {a[k].tolist()}")
    f = np.asarray(mesh["indices"])
    if f.ndim != 2 or f.shape[1] != 3:
        raise fail(f"indices must have shape [M, 3] (got {list(f.shape)})")
    if not np.issubdtype(f.dtype, np.integer):
        raise fail(f"indices must be integers (got {f.dtype})")
    if f.size:
        bad = ((f < 0) | (f >= n)).any(axis=1)
        if bad.any():
            k = int(np.argmax(bad))
            i = next(int(x) for x in f[k] if not 0 <= x < n)
            raise fail(f"face {k}: vertex index {i} is "
                       f"{'negative' if i < 0 else f'out of range ({n} vertices)'}")
