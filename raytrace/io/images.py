"""Reading and writing images: 8-bit sRGB PNG/JPEG, linear float32 OpenEXR and Radiance HDR.

Images in raytrace are ``[H, W, C]`` float tensors of *linear* radiance (C = 1, 3 or 4; a
fourth channel is alpha). Row 0 is the top of the image. ``imwrite`` also takes ``[H, W]``
(grey).

* ``.png``, ``.jpg``, ``.jpeg``: colour channels are encoded with the exact piecewise sRGB
  transfer function (IEC 61966-2-1), or with a plain power curve ``x^(1/gamma)`` when
  ``gamma=`` is given, clipped to [0, 1] and rounded to 8 bits; alpha is stored linearly.
  Reading decodes back to linear values.
* ``.exr``: float32 values stored as they are (lossless ZIP compression), so a write followed by
  a read is bit-exact. Needs the ``OpenEXR`` package (``pip install "OpenEXR>=3.3"``).
* ``.hdr``: Radiance RGBE (a shared 8-bit exponent per pixel: about 1% relative precision,
  values from about 1e-38 to 1e38, no negatives, RGB only). Read: run-length encoded and flat
  scanlines, any of the eight orientations of the resolution line (``-Y H +X W`` is the usual
  one: rows top to bottom); the ``EXPOSURE`` header is ignored (values are returned as stored,
  as most readers do). Written: ``-Y H +X W``, run-length encoded scanlines.

Writes are atomic (a temporary file beside the destination, then renamed): a killed process
never leaves a truncated image. Reads check the image's size from its header against
:class:`raytrace.io.Limits` before decoding it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from .._validation import boolean
from .atomic import atomic_write
from .limits import Budget, Limits

__all__ = ["imwrite", "imread", "srgb_encode", "srgb_decode", "exr_supported"]

PathLike = Union[str, os.PathLike]
ImageLike = Union[torch.Tensor, np.ndarray]

_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".exr": "exr", ".hdr": "hdr"}
# Channel names written to / looked for in EXR files, by channel count.
_EXR_CHANNELS = {1: ("Y",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


# ---------------------------------------------------------------------------------------------
# sRGB transfer function
# ---------------------------------------------------------------------------------------------
def srgb_encode(linear: ImageLike) -> ImageLike:
    """Linear values -> sRGB-encoded values, elementwise (no clipping; negatives map to 12.92 x).

    Uses the exact piecewise curve: ``12.92 x`` for ``x <= 0.0031308``, else
    ``1.055 x^(1/2.4) - 0.055``. Accepts and returns a numpy array or a torch tensor.
    """
    if isinstance(linear, torch.Tensor):
        x = linear
        return torch.where(x <= 0.0031308, 12.92 * x,
                           1.055 * torch.clamp(x, min=0.0031308) ** (1.0 / 2.4) - 0.055)
    x = np.asarray(linear)
    return np.where(x <= 0.0031308, 12.92 * x,
                    1.055 * np.maximum(x, 0.0031308) ** (1.0 / 2.4) - 0.055)


def srgb_decode(encoded: ImageLike) -> ImageLike:
    """sRGB-encoded values -> linear values, elementwise (the inverse of :func:`srgb_encode`).

    ``x / 12.92`` for ``x <= 0.04045``, else ``((x + 0.055) / 1.055)^2.4``.
    """
    if isinstance(encoded, torch.Tensor):
        x = encoded
        return torch.where(x <= 0.04045, x / 12.92,
                           ((torch.clamp(x, min=0.04045) + 0.055) / 1.055) ** 2.4)
    x = np.asarray(encoded)
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------
def _image_format(path: PathLike, arg: str = "path") -> str:
    """The format name ("png", "jpeg" or "exr") for a file name, or ValueError naming `arg`."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{arg} must be a str or os.PathLike (got {type(path).__name__})")
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"{arg} {str(path)!r} has unknown image extension {suffix!r} "
                         f"(supported: {', '.join(sorted(_FORMATS))})")
    return _FORMATS[suffix]


def _import_openexr():
    try:
        import OpenEXR  # noqa: PLC0415  (optional dependency)
    except ImportError as e:
        raise ImportError("reading or writing .exr files needs the OpenEXR package: "
                          "pip install \"OpenEXR>=3.3\"") from e
    if not hasattr(OpenEXR, "File"):
        raise ImportError("reading or writing .exr files needs OpenEXR >= 3.3 (the installed "
                          "version lacks OpenEXR.File): pip install -U \"OpenEXR>=3.3\"")
    return OpenEXR


def exr_supported() -> bool:
    """True when the OpenEXR package needed for ``.exr`` files is installed."""
    try:
        _import_openexr()
    except ImportError:
        return False
    return True


def _as_image_array(img: ImageLike) -> np.ndarray:
    """Checks `img` and returns it as a C-contiguous float32 numpy array [H, W, C]."""
    if isinstance(img, torch.Tensor):
        if img.device.type == "meta":
            raise ValueError("img is on the 'meta' device and has no values to write")
        if not img.dtype.is_floating_point:
            raise TypeError(f"img must be a floating-point tensor of linear values "
                            f"(got {img.dtype})")
        arr = img.detach().cpu().to(torch.float32).numpy()
    elif isinstance(img, np.ndarray):
        if not np.issubdtype(img.dtype, np.floating):
            raise TypeError(f"img must be a floating-point array of linear values "
                            f"(got {img.dtype})")
        arr = img.astype(np.float32, copy=False)
    else:
        raise TypeError(f"img must be a torch.Tensor or numpy.ndarray (got {type(img).__name__})")
    if arr.ndim == 2:  # grey
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"img must have shape [H, W, C] with C in (1, 3, 4), or [H, W] "
                         f"(got {list(arr.shape)})")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"img must not be empty (got shape {list(arr.shape)})")
    if np.isnan(arr).any():
        raise ValueError(f"img contains NaN ({int(np.isnan(arr).sum())} values)")
    if np.isinf(arr).any():
        raise ValueError(f"img contains Inf ({int(np.isinf(arr).sum())} values)")
    return np.ascontiguousarray(arr)


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------
def _check_gamma(gamma, srgb: bool) -> Optional[float]:
    """The ``gamma`` argument: None or a finite number > 0 (and not with ``srgb=False``)."""
    if gamma is None:
        return None
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)):
        raise TypeError(f"gamma must be None or a number > 0 (got {type(gamma).__name__} {gamma!r})")
    gamma = float(gamma)
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0 (got {gamma!r})")
    if not srgb:
        raise ValueError("give either srgb=False (values stored linearly) or gamma= (a power "
                         "curve), not both")
    return gamma


def _make_parent(path: PathLike) -> None:
    """Creates the missing folders above `path` (ValueError naming it when that fails)."""
    parent = Path(os.path.realpath(path)).parent
    if parent.is_dir():
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"path {str(path)!r}: cannot create its folder {str(parent)!r} ({e})") from e


def imwrite(img: ImageLike, path: PathLike, *, srgb: bool = True,
            gamma: Optional[float] = None) -> None:
    """Writes an image of linear values to ``path``; the extension picks the format.

    Args:
        img: ``[H, W, C]`` float tensor or numpy array, C in (1, 3, 4): linear radiance (and
            alpha in channel 4), or ``[H, W]`` (grey, written as C = 1). Tensors that require
            grad are detached.
        path: ``.png``, ``.jpg``/``.jpeg`` (8 bit, encoded, clipped to [0, 1]), ``.exr``
            (float32, linear, lossless) or ``.hdr`` (Radiance RGBE, linear; grey is written as
            RGB, alpha is refused). Missing folders above it are created. The file is written
            atomically: a temporary file in the same folder, renamed over `path` when complete.
        srgb: for PNG/JPEG, encode colour channels with the sRGB curve (default). Pass False to
            store values linearly (data such as roughness maps). Ignored for EXR and HDR.
        gamma: for PNG/JPEG, encode colour channels with ``x^(1/gamma)`` (e.g. 2.2) instead of
            the sRGB curve; a finite number > 0 (1 stores values linearly). Ignored for EXR and
            HDR.

    Raises:
        TypeError: `img` is not a float tensor/array, `path` not a str/PathLike, `gamma` not a
            number.
        ValueError: unknown extension, wrong shape, NaN/Inf values, alpha in a JPEG or HDR,
            negative values in an HDR, `gamma` <= 0 or given with ``srgb=False``, a folder that
            cannot be created.
        ImportError: ``.exr`` without the OpenEXR package.
    """
    fmt = _image_format(path)
    arr = _as_image_array(img)
    srgb = boolean(srgb, "srgb")
    gamma = _check_gamma(gamma, srgb)
    channels = arr.shape[2]
    if fmt == "exr":
        OpenEXR = _import_openexr()
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        data = {name: np.ascontiguousarray(arr[:, :, c])
                for c, name in enumerate(_EXR_CHANNELS[channels])}
        _make_parent(path)
        with atomic_write(path) as tmp, OpenEXR.File(header, data) as f:
            f.write(str(tmp))
        return
    if fmt == "hdr":
        if channels == 4:
            raise ValueError(f"img has an alpha channel, which Radiance HDR cannot store (path "
                             f"{str(path)!r}); write a .exr or pass img[..., :3]")
        if (arr < 0).any():
            raise ValueError(f"img has negative values ({int((arr < 0).sum())}), which Radiance "
                             f"HDR cannot store (path {str(path)!r}); write a .exr")
        data = _encode_hdr(np.repeat(arr, 3, axis=2) if channels == 1 else arr)
        _make_parent(path)
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
        return

    from PIL import Image  # noqa: PLC0415

    if fmt == "jpeg" and channels == 4:
        raise ValueError(f"img has an alpha channel, which JPEG cannot store (path {str(path)!r}); "
                         "write a .png or pass img[..., :3]")
    colour = min(channels, 3)
    out = arr.copy()
    if gamma is not None:
        out[:, :, :colour] = np.clip(out[:, :, :colour], 0.0, None) ** (1.0 / gamma)
    elif srgb:
        out[:, :, :colour] = srgb_encode(out[:, :, :colour])
    out = np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    pil = Image.fromarray(out[:, :, 0] if channels == 1 else out, mode=mode)
    _make_parent(path)
    with atomic_write(path) as tmp:
        if fmt == "jpeg":
            pil.save(str(tmp), format="JPEG", quality=95, subsampling=0)
        else:
            pil.save(str(tmp), format="PNG")


def imread(path: PathLike, *, srgb: bool = True, gamma: Optional[float] = None,
           limits: Optional[Limits] = None) -> torch.Tensor:
    """Reads an image as linear values.

    Args:
        path: ``.png``, ``.jpg``/``.jpeg``, ``.exr`` or ``.hdr`` (Radiance RGBE) file.
        srgb: for PNG/JPEG, decode colour channels from sRGB to linear (default). Pass False
            for files that store data linearly. Ignored for EXR and HDR.
        gamma: for PNG/JPEG, decode colour channels with ``x^gamma`` instead of the sRGB curve
            (the inverse of ``imwrite(gamma=)``). Ignored for EXR and HDR.
        limits: size limits (:class:`raytrace.io.Limits`; None: the defaults): file size,
            pixels and decoded bytes, checked from the file's header before it is decoded.

    Returns:
        ``[H, W, C]`` float32 tensor, C in (1, 3, 4) (grey, RGB, RGBA). PNG/JPEG values are in
        [0, 1] (16-bit greyscale PNGs keep their precision; Pillow reads other 16-bit PNGs as
        8 bit); EXR values are as stored (half-float channels are converted to float32); HDR
        files give C = 3, values as stored (the ``EXPOSURE`` header is ignored).

    Raises:
        ValueError: unknown extension, missing, unreadable or malformed file, unsupported
            channel layout, or a size limit exceeded (the message names the file).
        ImportError: ``.exr`` without the OpenEXR package.
    """
    _image_format(path)
    srgb = boolean(srgb, "srgb")
    gamma = _check_gamma(gamma, srgb)
    return _imread(Path(path), f"path {str(path)!r}", srgb, Budget(limits), gamma=gamma)


def _imread(path: Path, shown: str, srgb: bool, budget: Budget,
            gamma: Optional[float] = None) -> torch.Tensor:
    """imread within a load's budget; messages start with `shown`."""
    fmt = _image_format(path)
    if not path.is_file():
        raise ValueError(f"{shown}: no such file")
    try:
        budget.check_file(path, shown)
    except OSError as e:
        raise ValueError(f"{shown}: cannot read ({e})") from e
    if fmt == "exr":
        arr = _read_exr(path, shown, budget)
    elif fmt == "hdr":
        arr = _read_hdr(path, shown, budget)
    else:
        arr = _read_pil(path, shown, budget)
        colour = min(arr.shape[2], 3)
        if gamma is not None:
            arr[:, :, :colour] = arr[:, :, :colour] ** gamma
        elif srgb:
            arr[:, :, :colour] = srgb_decode(arr[:, :, :colour])
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _read_pil(path: Path, shown: str, budget: Budget) -> np.ndarray:
    """PNG/JPEG -> float32 [H, W, C] in [0, 1]; the size is checked before decoding."""
    from PIL import Image  # noqa: PLC0415

    def fail(e: BaseException) -> ValueError:
        if isinstance(e, Image.DecompressionBombError):
            return ValueError(f"{shown}: cannot read image: too many pixels for Pillow ({e}; "
                              "raise PIL.Image.MAX_IMAGE_PIXELS to read it)")
        if isinstance(e, MemoryError):
            return ValueError(f"{shown}: cannot read image: out of memory")
        return ValueError(f"{shown}: cannot read image ({type(e).__name__}: {e})")

    try:
        pil = Image.open(str(path))
    except Exception as e:  # UnidentifiedImageError, DecompressionBombError, OSError, ...
        raise fail(e) from e
    with pil:
        width, height = pil.size
        channels = 1 if pil.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F") else \
            4 if pil.mode in ("LA", "RGBA", "PA", "P") else 3
        budget.check_image(shown, height, width, channels)
        try:
            pil.load()
            return _pil_to_array(pil)
        except Exception as e:  # truncated data, bad chunks, MemoryError, ...
            raise fail(e) from e


def _pil_to_array(pil) -> np.ndarray:
    """A PIL image -> float32 [H, W, C] in [0, 1], C in (1, 3, 4)."""
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(pil, dtype=np.float64)
        scale = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return (arr / scale).astype(np.float32)[:, :, None]
    if mode == "F":
        return np.asarray(pil, dtype=np.float32)[:, :, None].copy()
    if mode in ("1", "L"):
        pil = pil.convert("L")
    elif mode in ("LA", "RGBA", "PA") or (mode == "P" and "transparency" in pil.info):
        pil = pil.convert("RGBA")
    elif mode != "RGB":
        pil = pil.convert("RGB")
    arr = np.asarray(pil, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _read_exr(path: Path, shown: str, budget: Budget) -> np.ndarray:
    """Reads the first part of an EXR file into float32 [H, W, C]; the size is checked from
    the header before the pixels are read."""
    OpenEXR = _import_openexr()
    try:
        with OpenEXR.File(str(path), header_only=True) as f:
            header = f.header()
            (x0, y0), (x1, y1) = (np.asarray(c, dtype=np.int64) for c in header["dataWindow"])
            n_channels = max(1, len(header.get("channels", ())))
    except Exception as e:  # OpenEXR raises plain Exception/RuntimeError on bad files
        raise ValueError(f"{shown}: cannot read EXR file ({e})") from e
    height, width = int(y1 - y0 + 1), int(x1 - x0 + 1)
    if height < 1 or width < 1:
        raise ValueError(f"{shown}: EXR data window is empty ({width} x {height})")
    budget.check_image(shown, height, width, n_channels)
    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            channels = {name: np.asarray(ch.pixels) for name, ch in f.channels().items()}
    except MemoryError as e:
        raise ValueError(f"{shown}: cannot read EXR file: out of memory") from e
    except Exception as e:  # OpenEXR raises plain Exception/RuntimeError on bad files
        raise ValueError(f"{shown}: cannot read EXR file ({e})") from e
    for names in (_EXR_CHANNELS[4], _EXR_CHANNELS[3], _EXR_CHANNELS[1]):
        if all(n in channels for n in names):
            break
    else:
        if len(channels) == 1:
            names = tuple(channels)
        else:
            raise ValueError(f"{shown}: EXR channels {sorted(channels)} are not "
                             "Y, RGB or RGBA")
    return np.ascontiguousarray(
        np.stack([channels[n].astype(np.float32) for n in names], axis=-1))


# ---------------------------------------------------------------------------------------------
# Radiance HDR (RGBE)
# ---------------------------------------------------------------------------------------------
# A text header ("#?RADIANCE" or "#?RGBE", then NAME=value lines, FORMAT=32-bit_rle_rgbe among
# them, ended by an empty line), a resolution line such as "-Y 512 +X 1024" (512 scanlines of
# 1024 pixels, top to bottom, left to right), then the scanlines. A pixel is four bytes
# (r, g, b, e): value = (m + 0.5) * 2^(e - 136) for e > 0, 0 for e = 0 (Radiance's colr_color).
# A scanline whose width is in [8, 32767] may be run-length encoded: the bytes 2, 2, then the
# width (big-endian 16 bit), then each of the four channels in turn as runs: a byte n > 128
# repeats the next byte n - 128 times, a byte n in [1, 128] is followed by n literal bytes.
_HDR_MAX_HEADER = 1 << 16  # bytes of header text before the resolution line
_HDR_RESOLUTION = re.compile(rb"([-+])([XY]) +(\d+) +([-+])([XY]) +(\d+)")


def _read_hdr(path: Path, shown: str, budget: Budget) -> np.ndarray:
    """Reads a Radiance HDR file into float32 [H, W, 3]; the size is checked from the header
    before the pixels are decoded."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{shown}: cannot read ({e})") from e
    return _decode_hdr(data, shown, budget)


def _decode_hdr(data: bytes, shown: str, budget: Budget) -> np.ndarray:
    def fail(msg: str) -> ValueError:
        return ValueError(f"{shown}: not a valid Radiance HDR file: {msg}")

    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise fail("it does not start with '#?RADIANCE' or '#?RGBE'")
    end = data.find(b"\n\n", 0, _HDR_MAX_HEADER)
    if end < 0:
        raise fail(f"no empty line ending the header in its first {_HDR_MAX_HEADER} bytes")
    for line in data[:end].split(b"\n")[1:]:
        if line.startswith(b"FORMAT=") and line.strip() != b"FORMAT=32-bit_rle_rgbe":
            raise fail(f"format {line[7:].strip().decode('latin-1')!r} is not supported "
                       "(only 32-bit_rle_rgbe; XYZE is not)")
    eol = data.find(b"\n", end + 2)
    m = _HDR_RESOLUTION.fullmatch(data[end + 2:eol].strip()) if eol > 0 else None
    if m is None or m.group(2) == m.group(5):
        raise fail(f"bad resolution line {data[end + 2:eol if eol > 0 else end + 66][:64]!r} "
                   "(expected e.g. '-Y 512 +X 1024')")
    outer, inner = int(m.group(3)), int(m.group(6))  # scanlines, pixels per scanline
    if outer < 1 or inner < 1:
        raise fail(f"empty image ({inner} x {outer})")
    height, width = (outer, inner) if m.group(2) == b"Y" else (inner, outer)
    budget.check_image(shown, height, width, 3)
    body = memoryview(data)[eol + 1:]
    try:
        rgbe = _hdr_scanlines(body, outer, inner)
    except ValueError as e:
        raise fail(str(e)) from None
    e = rgbe[:, :, 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0).astype(np.float64)
    out = ((rgbe[:, :, :3].astype(np.float64) + 0.5) * scale[:, :, None]).astype(np.float32)
    # Orientation: rows and columns of the stored order -> top-to-bottom, left-to-right.
    if m.group(2) == b"X":  # scanlines are columns
        out = out.transpose(1, 0, 2)
    y_sign = m.group(1) if m.group(2) == b"Y" else m.group(4)
    x_sign = m.group(4) if m.group(2) == b"Y" else m.group(1)
    if y_sign == b"+":  # +Y: bottom to top
        out = out[::-1]
    if x_sign == b"-":
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def _hdr_scanlines(body: memoryview, count: int, width: int) -> np.ndarray:
    """`count` scanlines of `width` RGBE pixels from `body` -> uint8 [count, width, 4]."""
    out = np.empty((count, width, 4), dtype=np.uint8)
    pos = 0
    n = len(body)
    for y in range(count):
        head = bytes(body[pos:pos + 4])
        if (8 <= width <= 32767 and len(head) == 4 and head[0] == 2 and head[1] == 2
                and not head[2] & 0x80):
            if (head[2] << 8 | head[3]) != width:
                raise ValueError(f"scanline {y}: run-length width {head[2] << 8 | head[3]} "
                                 f"differs from the image width {width}")
            pos += 4
            for c in range(4):
                row = out[y, :, c]
                x = 0
                while x < width:
                    if pos >= n:
                        raise ValueError(f"scanline {y}: data ends early (truncated file)")
                    k = body[pos]
                    pos += 1
                    if k > 128:
                        k -= 128
                        if x + k > width or pos >= n:
                            raise ValueError(f"scanline {y}: a run passes the end of the line")
                        row[x:x + k] = body[pos]
                        pos += 1
                    else:
                        if k == 0 or x + k > width or pos + k > n:
                            raise ValueError(f"scanline {y}: bad run of {k} bytes")
                        row[x:x + k] = np.frombuffer(body[pos:pos + k], dtype=np.uint8)
                        pos += k
                    x += k
        else:  # flat scanlines: the rest of the image is plain RGBE pixels
            need = (count - y) * width * 4
            if pos + need > n:
                raise ValueError(f"scanline {y}: data ends early (truncated file: {n - pos} "
                                 f"bytes for {need})")
            out[y:] = np.frombuffer(body[pos:pos + need], dtype=np.uint8).reshape(count - y, width, 4)
            break
    return out


def _encode_hdr(rgb: np.ndarray) -> bytes:
    """float32 [H, W, 3] (>= 0) -> a Radiance HDR file ("-Y H +X W"; run-length encoded
    scanlines when 8 <= W <= 32767, flat ones otherwise)."""
    h, w = rgb.shape[:2]
    peak = rgb.max(axis=2).astype(np.float64)
    mantissa, exponent = np.frexp(peak)  # peak = mantissa * 2^exponent, mantissa in [0.5, 1)
    small = peak < 1e-38
    scale = np.where(small, 0.0, np.ldexp(1.0, 8 - exponent))  # 256 / 2^exponent
    rgbe = np.empty((h, w, 4), dtype=np.uint8)
    rgbe[:, :, :3] = np.clip(np.floor(rgb * scale[:, :, None]), 0, 255)
    rgbe[:, :, 3] = np.where(small, 0, np.clip(exponent + 128, 0, 255))
    out = [b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n", f"-Y {h} +X {w}\n".encode()]
    if not 8 <= w <= 32767:
        out.append(rgbe.tobytes())
        return b"".join(out)
    for y in range(h):
        out.append(bytes([2, 2, w >> 8, w & 0xFF]))
        for c in range(4):
            out.append(_rle(rgbe[y, :, c]))
    return b"".join(out)


def _rle(row: np.ndarray) -> bytes:
    """One channel of a scanline as runs (>= 4 equal bytes) and literals (at most 128 each)."""
    out = bytearray()
    n = len(row)
    # Starts of runs of equal values, and their lengths.
    change = np.flatnonzero(np.diff(row.astype(np.int16))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [n]]))
    literal_from = 0
    for s, length in zip(starts.tolist(), lengths.tolist()):
        if length < 4:
            continue
        for i in range(literal_from, s, 128):  # the literals before this run
            chunk = row[i:min(i + 128, s)]
            out.append(len(chunk))
            out += chunk.tobytes()
        value = int(row[s])
        for i in range(0, length, 127):
            k = min(127, length - i)
            out += bytes([128 + k, value])
        literal_from = s + length
    for i in range(literal_from, n, 128):
        chunk = row[i:min(i + 128, n)]
        out.append(len(chunk))
        out += chunk.tobytes()
    return bytes(out)
