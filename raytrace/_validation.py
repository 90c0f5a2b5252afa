"""Argument checks shared by the scene classes: every message names the argument."""
from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np
import torch

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def to_tensor(value, name: str, floating: bool = False, device: Optional[torch.device] = None) -> torch.Tensor:
    """``torch.as_tensor`` that turns failures into a TypeError naming the argument.

    With ``floating``, numbers given as Python or numpy integers (``[0, 1, 0]``, ``45``) become
    float32; integer *tensors* are left alone, for the caller to reject. Values that are not
    tensors are made on `device` (default: the CPU).
    """
    if isinstance(value, torch.Tensor):
        return value
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be a tensor or array-like of numbers (got {type(value).__name__})")
    try:
        t = torch.as_tensor(value, device=device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be a tensor or array-like of numbers ({e})") from None
    if floating and t.dtype in _INT_DTYPES:
        t = t.to(torch.float32)
    return t


def check_device(t: torch.Tensor, name: str) -> None:
    """Tensors may live on the CPU, or on a GPU when raytrace was built with its CUDA backend."""
    check_device_type(t.device, f"{name} is on device '{t.device}'")


def check_device_type(device: torch.device, what: str) -> None:
    """`what` names the argument or tensor in the message ("x is on device 'cuda:0'")."""
    if device.type == "cpu":
        return
    if device.type == "cuda":
        from . import _core
        if not _core.has_cuda:
            raise ValueError(f"{what}, but this build of raytrace has no CUDA backend: rebuild it with "
                             "RT_CUDA=1 pip install -e . (docs/cuda.md), or use CPU tensors")
        return
    raise ValueError(f"{what}: raytrace renders on the CPU or on CUDA GPUs")


def device_of(*values) -> Optional[torch.device]:
    """The device of the first tensor among `values` (None when none is a tensor): where a
    constructor puts the values it makes itself (defaults, numbers), beside the tensors given."""
    for x in values:
        if isinstance(x, torch.Tensor):
            return x.device
    return None


def float_tensor(value, name: str, shape: Sequence[Optional[int]], *, nonnegative: bool = False,
                 positive: bool = False, device: Optional[torch.device] = None) -> torch.Tensor:
    """A float32 tensor of the given shape (None: any extent), finite, on the CPU or a GPU
    (values that are not tensors are made on `device`, default the CPU).

    Floating inputs of other precisions are cast (differentiably); integer or bool inputs are
    a TypeError, a wrong shape or non-finite values a ValueError.
    """
    t = to_tensor(value, name, floating=True, device=device)
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating-point tensor (got dtype {t.dtype})")
    check_shape(t, name, shape)
    check_device(t, name)
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    check_values(t, name, nonnegative=nonnegative, positive=positive)
    return t


def check_values(t: torch.Tensor, name: str, *, nonnegative: bool = False, positive: bool = False) -> None:
    """Raises a ValueError naming `name` if the float tensor `t` holds NaN or Inf, or (with
    `nonnegative` / `positive`) values below or at zero."""
    d = t.detach()
    if d.numel() == 0:
        return
    if not bool(torch.isfinite(d).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    if nonnegative and bool((d < 0).any()):
        raise ValueError(f"{name} must be non-negative (got min {float(d.min()):g})")
    if positive and bool((d <= 0).any()):
        raise ValueError(f"{name} must be positive (got min {float(d.min()):g})")


def index_tensor(value, name: str, num_vertices: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """An integer [M, 3] tensor with every value in [0, num_vertices) (made on `device` when
    `value` is not a tensor)."""
    t = to_tensor(value, name, device=device)
    if t.dtype not in _INT_DTYPES or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (int32 or int64), got dtype {t.dtype}")
    check_shape(t, name, (None, 3))
    check_device(t, name)
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: a shape needs at least one triangle")
    lo, hi = int(t.min()), int(t.max())
    if lo < 0:
        raise ValueError(f"{name} must be non-negative (got min {lo})")
    if hi >= num_vertices:
        raise ValueError(f"{name} must have values < {num_vertices}, the number of vertices (got max {hi})")
    return t


def check_shape(t: torch.Tensor, name: str, shape: Sequence[Optional[int]]) -> None:
    ok = t.dim() == len(shape) and all(s is None or t.shape[i] == s for i, s in enumerate(shape))
    if not ok:
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want} (got {list(t.shape)})")


def check_same_device(tensors: Sequence[tuple]) -> None:
    """tensors: (name, tensor or None) pairs; raises if they live on different devices."""
    devices = {}
    for name, t in tensors:
        if isinstance(t, torch.Tensor):
            devices.setdefault(t.device, name)
    if len(devices) > 1:
        desc = ", ".join(f"{name} on {dev}" for dev, name in devices.items())
        raise ValueError(f"all tensors must be on one device (mixed devices: {desc})")


def integer(value, name: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype in _INT_DTYPES:
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer (got {type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum} (got {value})")
    return value


def boolean(value, name: str) -> bool:
    """A flag: Python's bool, numpy's bool_ or a one-element torch bool tensor, as a bool.

    Anything else (1, 0, "yes", None) is a TypeError naming the argument: a truthy value that
    is not a boolean is more likely a mistake (a count, a mode name) than a flag.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.numel() == 1:
        return bool(value)
    raise TypeError(f"{name} must be a bool (got {type(value).__name__} {value!r})")


def texture(value, name: str, channels: int, *, nonnegative: bool = False, positive: bool = False,
            device: Optional[torch.device] = None) -> torch.Tensor:
    """A constant ([channels], or a scalar when channels == 1) or a texture [h, w, channels]."""
    t = to_tensor(value, name, floating=True, device=device)
    if t.dim() == 0 and channels == 1:
        t = t.reshape(1)
    if t.dim() == 1:
        return float_tensor(t, name, (channels,), nonnegative=nonnegative, positive=positive)
    if t.dim() == 3:
        t = float_tensor(t, name, (None, None, channels), nonnegative=nonnegative, positive=positive)
        if t.shape[0] == 0 or t.shape[1] == 0:
            raise ValueError(f"{name} texture must not be empty (got {list(t.shape)})")
        return t
    raise ValueError(f"{name} must have shape [{channels}] (a constant) or [h, w, {channels}] (a texture), "
                     f"got {list(t.shape)}")
