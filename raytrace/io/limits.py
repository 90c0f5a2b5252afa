"""Size limits of the loaders: what a file may make raytrace allocate before it is refused.

A downloaded scene is data, and a few kilobytes of data can ask for gigabytes: a ``.npz`` of
zeros inflates a thousandfold, a PNG header can claim 10^10 pixels, ``[[[[...]]]]`` nests until
the parser's stack overflows, and Mitsuba ``<include>``s that include the next file twice read
2^depth files. Every loader checks these limits from headers and file sizes *before* it reads
or inflates the data, and refuses with a ValueError naming the file, the limit and how to raise
it::

    scene = rt.load_scene("big/scene.json", limits=rt.io.Limits(max_total_bytes=8 << 30))
    rt.io.limits.DEFAULT_LIMITS = rt.io.Limits(max_array_elements=1 << 30)   # for every call

The defaults (DEFAULT_LIMITS) are far above the scenes raytrace renders in memory on one
machine, and far below what takes it down.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Optional

__all__ = ["Limits", "DEFAULT_LIMITS"]


@dataclass(frozen=True)
class Limits:
    """Size limits of one load (``load_scene``, ``load_mitsuba``, ``load_mesh``, ``load_obj``,
    ``imread``). Every field is a positive integer.

    Attributes:
        max_file_bytes: size on disk of any one file read (scene, include, mesh, image,
            array). Default 1 GiB.
        max_array_elements: elements of any one array: a ``.npy``/``.npz`` array (checked from
            its header, before it is inflated), an image (height x width x channels). Default
            2^27 (134 million: 512 MiB of float32).
        max_image_pixels: pixels (height x width) of any one image, checked from its header
            before it is decoded. Default 2^27 (a 16384 x 8192 environment map). Pillow's own
            limit (``PIL.Image.MAX_IMAGE_PIXELS``, twice of which it refuses) also applies to
            PNG/JPEG.
        max_total_bytes: decoded bytes of all the arrays and images of one scene together
            (float32 pixels count 4 bytes per channel). Default 2 GiB.
        max_nesting_depth: nesting of JSON lists/objects and of XML elements. Default 64 (a
            raytrace scene nests at most 6 deep).
        max_includes: Mitsuba ``<include>``s read for one scene, counted over all files (a file
            included twice counts twice). Default 256.
    """
    max_file_bytes: int = 1 << 30
    max_array_elements: int = 1 << 27
    max_image_pixels: int = 1 << 27
    max_total_bytes: int = 1 << 31
    max_nesting_depth: int = 64
    max_includes: int = 256

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{f.name} must be a positive integer (got {value!r})")


#: The limits used when a loader is called without ``limits=``. Replace it to change them for
#: every call: ``rt.io.limits.DEFAULT_LIMITS = rt.io.Limits(max_total_bytes=8 << 30)``.
DEFAULT_LIMITS = Limits()


def resolve(limits: Optional[Limits]) -> Limits:
    """A loader's ``limits`` argument -> the Limits to use (None: DEFAULT_LIMITS, read now)."""
    if limits is None:
        return DEFAULT_LIMITS
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a raytrace.io.Limits or None (got {type(limits).__name__})")
    return limits


def _how(field: str) -> str:
    return f"raise it with limits=rt.io.Limits({field}=...)"


class Budget:
    """The limits of one load, and the decoded bytes it has used so far (max_total_bytes)."""

    def __init__(self, limits: Optional[Limits] = None):
        self.limits = resolve(limits)
        self.used = 0

    def check_file(self, file: os.PathLike, shown: str) -> int:
        """The size of `file` on disk; ValueError past max_file_bytes (OSError if stat fails)."""
        size = os.stat(file).st_size
        if size > self.limits.max_file_bytes:
            raise ValueError(f"{shown}: file is {size} bytes, more than the limit of "
                             f"{self.limits.max_file_bytes} (max_file_bytes; {_how('max_file_bytes')})")
        return size

    def check_array(self, shown: str, what: str, shape, itemsize: int) -> None:
        """Checks an array before it is allocated: elements against max_array_elements, then
        its bytes against what is left of max_total_bytes (and counts them as used)."""
        count = 1
        for s in shape:
            count *= int(s)
        if count > self.limits.max_array_elements:
            raise ValueError(f"{shown}: {what} has {count} elements (shape {list(map(int, shape))}), "
                             f"more than the limit of {self.limits.max_array_elements} "
                             f"(max_array_elements; {_how('max_array_elements')})")
        self.charge(shown, what, count * int(itemsize))

    def check_image(self, shown: str, height: int, width: int, channels: int) -> None:
        """Checks an image from its header: pixels, then elements and bytes as float32."""
        if height * width > self.limits.max_image_pixels:
            raise ValueError(f"{shown}: image is {width} x {height} = {width * height} pixels, "
                             f"more than the limit of {self.limits.max_image_pixels} "
                             f"(max_image_pixels; {_how('max_image_pixels')})")
        self.check_array(shown, "the image", (height, width, channels), 4)

    def charge(self, shown: str, what: str, nbytes: int) -> None:
        if self.used + nbytes > self.limits.max_total_bytes:
            raise ValueError(f"{shown}: {what} needs {nbytes} bytes, which with the {self.used} "
                             f"bytes read before is more than the limit of "
                             f"{self.limits.max_total_bytes} for one load (max_total_bytes; "
                             f"{_how('max_total_bytes')})")
        self.used += nbytes

    def check_depth(self, shown: str, depth: int, what: str) -> None:
        if depth > self.limits.max_nesting_depth:
            raise ValueError(f"{shown}: {what} nested more than {self.limits.max_nesting_depth} "
                             f"levels deep (max_nesting_depth; {_how('max_nesting_depth')})")
