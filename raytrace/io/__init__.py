"""Files in and out: images, meshes, raytrace JSON scenes and Mitsuba 3 XML scenes.

    images.py            rt.imread / rt.imwrite: PNG, JPEG (8-bit sRGB), EXR and HDR (linear)
    meshes.py            rt.load_mesh: OBJ, PLY, STL, OFF, GLB, glTF (through trimesh)
    obj.py               rt.load_obj: raytrace's own OBJ reader (groups, materials, normals)
    mtl.py               .mtl material libraries -> rt.Material
    obj_writer.py        rt.save_obj: .obj + .mtl + PNG textures
    scenes.py            rt.load_scene (docs/scene_format.md)
    scene_writer.py      rt.save_scene
    mitsuba.py           rt.load_mitsuba: the XML document (docs/mesh_and_mitsuba.md)
    serialized.py        Mitsuba's .serialized meshes (zlib streams; read and written)
    _mitsuba_plugins.py  Mitsuba plugins -> raytrace objects
    arrays.py            .npy/.npz read header first; checks of mesh arrays
    limits.py            Limits: sizes checked before data is read (docs/limits.md)
    paths.py             which files a scene may read (its folder, allowed_paths)
    atomic.py            atomic writes (temporary file, then rename)
"""
from .images import imread, imwrite
from .limits import Limits
from .meshes import load_mesh
from .mitsuba import EmptySceneWarning, MitsubaReport, MitsubaWarning, load_mitsuba
from .obj import ObjObject, ObjWarning, SceneParts, load_obj, scene_parts
from .obj_writer import save_obj
from .scene_writer import save_scene
from .scenes import load_scene

__all__ = ["EmptySceneWarning", "Limits", "MitsubaReport", "MitsubaWarning", "ObjObject", "ObjWarning", "SceneParts",
           "imread", "imwrite", "load_mesh", "load_mitsuba", "load_obj", "load_scene", "save_obj",
           "save_scene", "scene_parts"]
