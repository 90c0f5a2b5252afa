"""Files in and out: images, meshes, raytrace JSON scenes and Mitsuba 3 XML scenes.

    images.py            rt.imread / rt.imwrite: PNG, JPEG (8-bit sRGB) and EXR (linear float32)
    meshes.py            rt.load_mesh: OBJ, PLY, STL, OFF, GLB, glTF (through trimesh)
    scenes.py            rt.load_scene / rt.save_scene (docs/scene_format.md), rt.load_obj
    mitsuba.py           rt.load_mitsuba: the XML document (docs/mesh_and_mitsuba.md)
    _mitsuba_plugins.py  Mitsuba plugins -> raytrace objects
"""
from .images import imread, imwrite
from .meshes import load_mesh
from .mitsuba import MitsubaReport, MitsubaWarning, load_mitsuba
from .scenes import load_obj, load_scene, save_scene

__all__ = ["MitsubaReport", "MitsubaWarning", "imread", "imwrite", "load_mesh", "load_mitsuba",
           "load_obj", "load_scene", "save_scene"]
