"""Reading and writing images: 8-bit sRGB PNG/JPEG and linear float32 OpenEXR.

Images in raytrace are ``[H, W, C]`` float tensors of *linear* radiance (C = 1, 3 or 4; a
fourth channel is alpha). Row 0 is the top of the image.

* ``.png``, ``.jpg``, ``.jpeg``: colour channels are encoded with the exact piecewise sRGB
  transfer function (IEC 61966-2-1), clipped to [0, 1] and rounded to 8 bits; alpha is stored
  linearly. Reading decodes back to linear values.
* ``.exr``: float32 values stored as they are (lossless ZIP compression), so a write followed by
  a read is bit-exact. Needs the ``OpenEXR`` package (``pip install "OpenEXR>=3.3"``).

Writes are atomic (a temporary file beside the destination, then renamed): a killed process
never leaves a truncated image. Reads check the image's size from its header against
:class:`raytrace.io.Limits` before decoding it.
"""

from __future__ import annotations

import os
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

_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".exr": "exr"}
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
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"img must have shape [H, W, C] with C in (1, 3, 4) "
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
def imwrite(img: ImageLike, path: PathLike, *, srgb: bool = True) -> None:
    """Writes an image of linear values to ``path``; the extension picks the format.

    Args:
        img: ``[H, W, C]`` float tensor or numpy array, C in (1, 3, 4): linear radiance (and
            alpha in channel 4). Tensors that require grad are detached.
        path: ``.png``, ``.jpg``/``.jpeg`` (8 bit, sRGB-encoded, clipped to [0, 1]) or ``.exr``
            (float32, linear, lossless). The parent folder must exist. The file is written
            atomically: a temporary file in the same folder, renamed over `path` when complete.
        srgb: for PNG/JPEG, encode colour channels with the sRGB curve (default). Pass False to
            store values linearly (data such as roughness maps). Ignored for EXR.

    Raises:
        TypeError: `img` is not a float tensor/array, or `path` not a str/PathLike.
        ValueError: unknown extension, wrong shape, NaN/Inf values, alpha in a JPEG.
        ImportError: ``.exr`` without the OpenEXR package.
    """
    fmt = _image_format(path)
    arr = _as_image_array(img)
    channels = arr.shape[2]
    if fmt == "exr":
        OpenEXR = _import_openexr()
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
        data = {name: np.ascontiguousarray(arr[:, :, c])
                for c, name in enumerate(_EXR_CHANNELS[channels])}
        with atomic_write(path) as tmp, OpenEXR.File(header, data) as f:
            f.write(str(tmp))
        return

    from PIL import Image  # noqa: PLC0415

    if fmt == "jpeg" and channels == 4:
        raise ValueError(f"img has an alpha channel, which JPEG cannot store (path {str(path)!r}); "
                         "write a .png or pass img[..., :3]")
    colour = min(channels, 3)
    out = arr.copy()
    if boolean(srgb, "srgb"):
        out[:, :, :colour] = srgb_encode(out[:, :, :colour])
    out = np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    pil = Image.fromarray(out[:, :, 0] if channels == 1 else out, mode=mode)
    with atomic_write(path) as tmp:
        if fmt == "jpeg":
            pil.save(str(tmp), format="JPEG", quality=95, subsampling=0)
        else:
            pil.save(str(tmp), format="PNG")


def imread(path: PathLike, *, srgb: bool = True, limits: Optional[Limits] = None) -> torch.Tensor:
    """Reads an image as linear values.

    Args:
        path: ``.png``, ``.jpg``/``.jpeg`` or ``.exr`` file.
        srgb: for PNG/JPEG, decode colour channels from sRGB to linear (default). Pass False
            for files that store data linearly. Ignored for EXR.
        limits: size limits (:class:`raytrace.io.Limits`; None: the defaults): file size,
            pixels and decoded bytes, checked from the file's header before it is decoded.

    Returns:
        ``[H, W, C]`` float32 tensor, C in (1, 3, 4) (grey, RGB, RGBA). PNG/JPEG values are in
        [0, 1] (16-bit greyscale PNGs keep their precision; Pillow reads other 16-bit PNGs as
        8 bit); EXR values are as stored (half-float channels are converted to float32).

    Raises:
        ValueError: unknown extension, missing, unreadable or malformed file, unsupported
            channel layout, or a size limit exceeded (the message names the file).
        ImportError: ``.exr`` without the OpenEXR package.
    """
    _image_format(path)
    return _imread(Path(path), f"path {str(path)!r}", boolean(srgb, "srgb"), Budget(limits))


def _imread(path: Path, shown: str, srgb: bool, budget: Budget) -> torch.Tensor:
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
    else:
        arr = _read_pil(path, shown, budget)
        if srgb:
            colour = min(arr.shape[2], 3)
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
