"""Mitsuba's ``.serialized`` triangle meshes (Mitsuba 0.5/0.6, also read by Mitsuba 2 and 3).

The layout read here (little-endian throughout), as Mitsuba documents it:

A file is a sequence of meshes, then an end-of-file dictionary. Each mesh is

| type | content |
|---|---|
| uint16 | format identifier ``0x041C`` |
| uint16 | version: 3 or 4 |
| | from here on, one zlib (DEFLATE) stream holding: |
| uint32 | flags: ``0x0001`` vertex normals, ``0x0002`` texture coordinates, ``0x0008`` vertex colours, ``0x0010`` use face normals, ``0x1000`` single precision, ``0x2000`` double precision |
| string | version 4 only: the mesh's name, UTF-8, null-terminated |
| uint64 | number of vertices N |
| uint64 | number of triangles M |
| float or double [N x 3] | positions |
| float or double [N x 3] | normals, if flagged |
| float or double [N x 2] | texture coordinates, if flagged |
| float or double [N x 3] | vertex colours, if flagged (read past; raytrace has no vertex colours) |
| uint32 [M x 3] | triangle indices (uint64 when N > 2^32 - 1) |

The dictionary at the end of the file: the byte offset of each mesh (uint64 in version 4,
uint32 in version 3; the first is 0), then the number of meshes (uint32). ``shape_index``
selects a mesh through it.

Texture coordinates are taken as stored: Mitsuba's (u, v) has v = 0 at the top row of a
texture, as raytrace's (Mitsuba's OBJ loader flips the file's v into that convention; the
serialized format already holds it).

Limits: the file's size (``max_file_bytes``); the vertex and triangle counts of the header are
checked against ``max_array_elements`` / ``max_total_bytes`` before anything is inflated, and the
zlib stream is inflated only up to the size those counts imply (a stream that inflates to more
is never expanded past it: no decompression bombs).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from .limits import Budget

__all__ = ["read_serialized", "write_serialized", "FORMAT_ID"]

FORMAT_ID = 0x041C
HAS_NORMALS, HAS_TEXCOORDS, HAS_COLORS, FACE_NORMALS = 0x0001, 0x0002, 0x0008, 0x0010
SINGLE, DOUBLE = 0x1000, 0x2000
_MAX_NAME = 1 << 16  # bytes of a mesh name


class _Inflater:
    """Inflates a zlib stream exactly as far as asked, never more."""

    def __init__(self, data: memoryview, fail):
        self.d = zlib.decompressobj()
        self.tail = bytes(data)
        self.fail = fail

    def read(self, n: int, what: str) -> bytes:
        out = bytearray()
        try:
            while len(out) < n:
                chunk = self.d.decompress(self.tail, n - len(out))
                self.tail = self.d.unconsumed_tail
                out += chunk
                if not chunk and (not self.tail or self.d.eof):
                    break
        except zlib.error as e:
            raise self.fail(f"corrupt zlib stream while reading {what} ({e})") from None
        if len(out) < n:
            raise self.fail(f"the mesh data ends early: {what} needs {n} bytes, "
                            f"{len(out)} were left (truncated file)")
        return bytes(out)


def read_serialized(file: Path, shown: str, budget: Budget,
                    shape_index: int = 0) -> Dict[str, Optional[np.ndarray]]:
    """One mesh of a ``.serialized`` file -> {"vertices" [N, 3] float64, "indices" [M, 3]
    int64, "uvs" [N, 2] float64 or None, "normals" [N, 3] float64 or None, "face_normals"
    (bool: the file asks for flat shading), "name"}. ValueError naming the file on any problem.
    """
    try:
        budget.check_file(file, shown)
        data = memoryview(file.read_bytes())
    except OSError as e:
        raise ValueError(f"{shown}: cannot read ({e})") from e

    def fail(msg: str) -> ValueError:
        return ValueError(f"{shown}: not a valid .serialized mesh file: {msg}")

    if len(data) < 4:
        raise fail("shorter than its 4-byte header")
    fmt, version = struct.unpack_from("<HH", data, 0)
    if fmt != FORMAT_ID:
        raise fail(f"format identifier {fmt:#06x}, expected {FORMAT_ID:#06x}")
    if version not in (3, 4):
        raise fail(f"version {version} (3 and 4 are supported)")
    if isinstance(shape_index, bool) or not isinstance(shape_index, int) or shape_index < 0:
        raise ValueError(f"{shown}: shape_index must be an integer >= 0 (got {shape_index!r})")
    # The end-of-file dictionary: offsets of every mesh, then their count.
    offset = 0
    width = 8 if version == 4 else 4
    if len(data) >= 8:
        (count,) = struct.unpack_from("<I", data, len(data) - 4)
        table = len(data) - 4 - width * count
        if count >= 1 and table >= 4:
            if shape_index >= count:
                raise ValueError(f"{shown}: shape_index {shape_index} is out of range (the file "
                                 f"has {count} meshes: 0 to {count - 1})")
            (offset,) = struct.unpack_from("<Q" if version == 4 else "<I", data, table + width * shape_index)
            if offset + 4 > table:
                raise fail(f"mesh {shape_index} starts at byte {offset}, past the data")
            if struct.unpack_from("<HH", data, offset) != (fmt, version):
                raise fail(f"mesh {shape_index} at byte {offset} does not start with the "
                           "format identifier and version")
        elif shape_index != 0:
            raise fail(f"no end-of-file dictionary to find shape_index {shape_index} with")
    z = _Inflater(data[offset + 4:], fail)
    (flags,) = struct.unpack("<I", z.read(4, "the flags"))
    name = ""
    if version == 4:
        raw = bytearray()
        while True:
            c = z.read(1, "the mesh name")
            if c == b"\0":
                break
            raw += c
            if len(raw) > _MAX_NAME:
                raise fail(f"mesh name longer than {_MAX_NAME} bytes (no terminating null)")
        name = raw.decode("utf-8", errors="replace")
    n_vertices, n_triangles = struct.unpack("<QQ", z.read(16, "the vertex and triangle counts"))
    if flags & DOUBLE and flags & SINGLE:
        raise fail(f"flags {flags:#x} ask for both single and double precision")
    real = np.dtype("<f8") if flags & DOUBLE else np.dtype("<f4")
    index = np.dtype("<u8") if n_vertices > 0xFFFFFFFF else np.dtype("<u4")
    # Sizes from the header, checked before inflating (max_array_elements, max_total_bytes).
    where = f"mesh {shape_index}" + (f" ({name!r})" if name else "")
    budget.check_array(shown, f"{where} vertices", (n_vertices, 3), 4)
    budget.check_array(shown, f"{where} indices", (n_triangles, 3), 8)
    out: Dict[str, Optional[np.ndarray]] = {"name": name, "face_normals": bool(flags & FACE_NORMALS)}

    def array(columns: int, what: str, dtype=real) -> np.ndarray:
        count = n_vertices * columns if dtype is real else n_triangles * 3
        raw = z.read(count * dtype.itemsize, what)
        return np.frombuffer(raw, dtype=dtype).reshape(-1, columns).astype(
            np.float64 if dtype is real else np.int64)

    out["vertices"] = array(3, "the positions")
    out["normals"] = array(3, "the normals") if flags & HAS_NORMALS else None
    if flags & HAS_TEXCOORDS:
        budget.check_array(shown, f"{where} uvs", (n_vertices, 2), 4)
        out["uvs"] = array(2, "the texture coordinates")
    else:
        out["uvs"] = None
    if flags & HAS_COLORS:
        array(3, "the vertex colours")  # read past
    if out["normals"] is not None:
        budget.check_array(shown, f"{where} normals", (n_vertices, 3), 4)
    indices = array(3, "the triangle indices", dtype=index)
    if n_triangles and (indices.max() >= n_vertices):
        k = int(np.argmax((indices >= n_vertices).any(axis=1)))
        raise fail(f"{where}: triangle {k} has vertex index {int(indices[k].max())}, out of range "
                   f"({n_vertices} vertices)")
    out["indices"] = indices
    return out


def write_serialized(path: Union[str, Path], meshes: List[Dict[str, Optional[np.ndarray]]], *,
                     version: int = 4, double: bool = False, face_normals: bool = False) -> None:
    """Writes meshes ({"vertices", "indices", "uvs"?, "normals"?, "colors"?, "name"?}) as a
    ``.serialized`` file (the layout of the module docstring), for tests and for exporting to
    Mitsuba. Written atomically."""
    from .atomic import atomic_write  # noqa: PLC0415

    if version not in (3, 4):
        raise ValueError(f"version must be 3 or 4 (got {version!r})")
    real = "<f8" if double else "<f4"
    blobs, offsets, position = [], [], 0
    for mesh in meshes:
        v = np.asarray(mesh["vertices"], dtype=real).reshape(-1, 3)
        f = np.asarray(mesh["indices"]).reshape(-1, 3)
        flags = DOUBLE if double else SINGLE
        body = []
        for key, flag in (("normals", HAS_NORMALS), ("uvs", HAS_TEXCOORDS), ("colors", HAS_COLORS)):
            if mesh.get(key) is not None:
                flags |= flag
                body.append(np.asarray(mesh[key], dtype=real).tobytes())
        if face_normals:
            flags |= FACE_NORMALS
        header = struct.pack("<I", flags)
        if version == 4:
            header += str(mesh.get("name", "")).encode("utf-8") + b"\0"
        header += struct.pack("<QQ", len(v), len(f))
        index = "<u8" if len(v) > 0xFFFFFFFF else "<u4"
        stream = header + v.tobytes() + b"".join(body) + f.astype(index).tobytes()
        blob = struct.pack("<HH", FORMAT_ID, version) + zlib.compress(stream)
        offsets.append(position)
        position += len(blob)
        blobs.append(blob)
    table = b"".join(struct.pack("<Q" if version == 4 else "<I", o) for o in offsets)
    with atomic_write(path) as tmp:
        Path(tmp).write_bytes(b"".join(blobs) + table + struct.pack("<I", len(meshes)))
