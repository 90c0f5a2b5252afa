"""The camera: where the picture is taken from."""
from __future__ import annotations

from typing import Tuple

import torch

from . import _limits as limits
from . import _validation as v

CAMERA_TYPES = ("perspective", "orthographic")


class Camera:
    """A pinhole (perspective) or orthographic camera.

    Args:
        position: [3] float, the eye.
        look_at: [3] float, the point the camera looks at (must differ from ``position``).
        up: [3] float, the direction that points to the top of the image; must not be zero or
            parallel to the view direction.
        fov: horizontal field of view in degrees, in (0, 180). For an orthographic camera it
            sets the view's width: the camera frames the plane through ``look_at`` exactly as
            a perspective camera with the same fov does (width 2 tan(fov/2) |look_at - position|).
        resolution: (H, W) in pixels: each side 1 to 16384, and H * W at most 2**26
            (67108864, e.g. 8192 x 8192).
        camera_type: "perspective" or "orthographic".

    Pixel (0, 0) is the top-left of the image; x grows to the right, y downwards.
    """

    def __init__(self, position, look_at, up, fov=45.0, resolution: Tuple[int, int] = (256, 256),
                 camera_type: str = "perspective"):
        v.check_same_device([("position", position), ("look_at", look_at), ("up", up), ("fov", fov)])
        device = v.device_of(position, look_at, up, fov)  # (numbers given join the tensors given)
        self.position = v.float_tensor(position, "Camera.position", (3,), device=device)
        self.look_at = v.float_tensor(look_at, "Camera.look_at", (3,), device=device)
        self.up = v.float_tensor(up, "Camera.up", (3,), device=device)
        fov_t = v.to_tensor(fov, "Camera.fov", floating=True, device=device)
        if fov_t.numel() != 1:
            raise ValueError(f"Camera.fov must be a scalar (got shape {list(fov_t.shape)})")
        self.fov = v.float_tensor(fov_t.reshape(()), "Camera.fov", ())
        fov_value = float(self.fov.detach())
        if not 0.0 < fov_value < 180.0:
            raise ValueError(f"Camera.fov must be in (0, 180) degrees (got {fov_value:g})")
        if not isinstance(resolution, (tuple, list)) or len(resolution) != 2:
            raise TypeError(f"Camera.resolution must be a tuple (H, W) (got {resolution!r})")
        self.resolution = (v.integer(resolution[0], "Camera.resolution[0] (height)", minimum=1,
                                     maximum=limits.MAX_RESOLUTION),
                           v.integer(resolution[1], "Camera.resolution[1] (width)", minimum=1,
                                     maximum=limits.MAX_RESOLUTION))
        limits.check_resolution(*self.resolution, "Camera.resolution")
        if camera_type not in CAMERA_TYPES:
            raise ValueError(f"Camera.camera_type must be one of {CAMERA_TYPES} (got {camera_type!r})")
        self.camera_type = camera_type
        # The view direction and up vector must define a frame.
        forward = (self.look_at - self.position).detach().double()
        if float(forward.norm()) == 0.0:
            raise ValueError("Camera.look_at must differ from Camera.position")
        up_d = self.up.detach().double()
        if float(up_d.norm()) == 0.0:
            raise ValueError("Camera.up must not be the zero vector")
        sin_angle = float(torch.linalg.cross(forward / forward.norm(), up_d / up_d.norm()).norm())
        if sin_angle < 1e-6:
            raise ValueError("Camera.up must not be parallel to the view direction (look_at - position)")

    @property
    def height(self) -> int:
        return self.resolution[0]

    @property
    def width(self) -> int:
        return self.resolution[1]

    def __repr__(self) -> str:
        p = [round(float(x), 4) for x in self.position.detach()]
        t = [round(float(x), 4) for x in self.look_at.detach()]
        return (f"Camera(position={p}, look_at={t}, fov={float(self.fov.detach()):g}, "
                f"resolution={self.resolution}, camera_type={self.camera_type!r})")


