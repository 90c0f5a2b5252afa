"""raytrace: a differentiable Monte Carlo path tracer for PyTorch.

    import raytrace as rt
    scene = rt.Scene(camera=rt.Camera(...), shapes=[rt.Shape(...)], materials=[rt.Material(...)],
                     area_lights=[rt.AreaLight(...)])
    image = rt.render(scene, spp=16)          # [H, W, 3] float32, linear radiance
"""
from .camera import Camera
from .light import AreaLight, EnvironmentMap
from .material import Material
from .render import render
from .scene import Scene
from .shape import Shape

__version__ = "0.1.0"

__all__ = ["AreaLight", "Camera", "EnvironmentMap", "Material", "Scene", "Shape", "render"]
