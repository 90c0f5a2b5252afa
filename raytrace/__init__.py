"""raytrace: a differentiable Monte Carlo path tracer for PyTorch.

    import raytrace as rt
    scene = rt.Scene(camera=rt.Camera(...), shapes=[rt.Shape(...)], materials=[rt.Material(...)],
                     area_lights=[rt.AreaLight(...)])
    image = rt.render(scene, spp=16)          # [H, W, 3] float32, linear radiance
"""
from .camera import Camera
from .deferred import AmbientLight, DirectionalLight, PointLight, render_deferred
from .geometry import Mesh, box, plane, sphere, teapot, uv_sphere, vertex_normals
from .light import AreaLight, EnvironmentMap
from .material import Material
from .render import gradient_image, render, render_batch, view_seed
from .scene import Scene
from .shape import Shape
from . import distributed, io, optim
from .io import imread, imwrite, load_mesh, load_mitsuba, load_obj, load_scene, save_obj, save_scene

__version__ = "0.1.0"

__all__ = ["AmbientLight", "AreaLight", "Camera", "DirectionalLight", "EnvironmentMap", "Material", "Mesh",
           "PointLight", "Scene", "Shape", "box", "distributed", "gradient_image", "imread", "io", "imwrite",
           "load_mesh", "load_mitsuba", "load_obj", "load_scene", "optim", "plane", "render", "render_batch",
           "render_deferred", "save_obj", "save_scene", "sphere", "teapot", "uv_sphere", "vertex_normals", "view_seed"]
