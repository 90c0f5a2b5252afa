"""Generates the scenes shipped in scenes/ from code (nothing is downloaded).

    python scenes/make_scenes.py            # rewrites scenes/<name>/ for every scene
    python scenes/make_scenes.py --check    # also loads each scene and renders it at 16x16

Scenes:
  cornell_box/     the Cornell box from the published measurements of the Cornell Program of
                   Computer Graphics ("Cornell Box Data"): geometry, camera, and RGB values derived
                   from the measured reflectance and emission spectra (see CORNELL_* below).
  sphere_light/    a smooth diffuse sphere (10,092 triangles) on a ground plane under one small
                   area light: the benchmark reference scene, written from
                   benchmarks/scenes.py's reference_scene() so the two stay the same.
  envmap_spheres/  a diffuse, a glossy and a checker-textured sphere on a ground plane, lit by a
                   procedural sky (gradient + sun disk) stored as a 128x64 EXR.

The output is deterministic: running the script again gives the same files.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from raytrace.io.images import imwrite  # noqa: E402
from raytrace.io.scene_writer import _json_floats, dump_json  # noqa: E402


# =============================================================================================
# Helpers
# =============================================================================================
def write_json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_json(doc) + "\n", encoding="utf-8")


def fmt(x: float) -> str:
    """A number for an OBJ file: shortest decimal, no trailing zeros."""
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def write_obj(path: Path, vertices, faces, comment: str) -> None:
    """An OBJ file with positions only; faces are 0-based tuples (quads or triangles)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += ["v " + " ".join(fmt(c) for c in v) for v in vertices]
    lines += ["f " + " ".join(str(i + 1) for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def orient(quad, toward):
    """Orders a planar polygon's vertices so that its geometric normal
    cross(v1 - v0, v2 - v0) points along `toward` (a direction)."""
    q = np.asarray(quad, dtype=np.float64)
    n = np.cross(q[1] - q[0], q[2] - q[0])
    return q if np.dot(n, toward) > 0 else q[::-1]


def uv_sphere(n_lon: int, n_lat: int):
    """A unit sphere around the origin: vertices, normals, uvs, int32 indices.

    Rings of latitude theta = pi i / n_lat (i = 0 is the north pole, +y), longitude
    phi = 2 pi j / n_lon with the seam column duplicated so uvs do not wrap; uv = (j / n_lon,
    i / n_lat), so texture row 0 (v = 0) is at the north pole. Triangles at the poles are single
    (no degenerate ones): n_lon * (2 n_lat - 2) triangles, normals facing out.
    """
    i, j = np.meshgrid(np.arange(n_lat + 1), np.arange(n_lon + 1), indexing="ij")
    theta, phi = math.pi * i / n_lat, 2 * math.pi * j / n_lon
    p = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta), np.sin(theta) * np.cos(phi)], -1)
    p[0, :] = (0.0, 1.0, 0.0)
    p[-1, :] = (0.0, -1.0, 0.0)
    uv = np.stack([j / n_lon, i / n_lat], -1)
    idx = np.arange((n_lat + 1) * (n_lon + 1)).reshape(n_lat + 1, n_lon + 1)
    tris = []
    for r in range(n_lat):
        for c in range(n_lon):
            a, b = idx[r, c], idx[r, c + 1]
            d, e = idx[r + 1, c], idx[r + 1, c + 1]
            if r > 0:
                tris.append((a, d, b))
            if r < n_lat - 1:
                tris.append((b, d, e))
    tris = np.array(tris, dtype=np.int32)
    vertices = p.reshape(-1, 3).astype(np.float32)
    # Every triangle's normal must point away from the centre.
    v0, v1, v2 = (vertices[tris[:, k]] for k in range(3))
    assert (np.einsum("ij,ij->i", np.cross(v1 - v0, v2 - v0), v0 + v1 + v2) > 0).all()
    return vertices, vertices.copy(), uv.reshape(-1, 2).astype(np.float32), tris


def quad_mesh(corners, toward):
    """An inline two-triangle mesh for the scene file."""
    q = orient(corners, toward)
    return {"vertices": [[float(c) for c in v] for v in q], "indices": [[0, 1, 2], [0, 2, 3]]}


# =============================================================================================
# (a) The Cornell box
# =============================================================================================
# Geometry, camera and spectra from the Cornell Program of Computer Graphics, "Cornell Box
# Data" (graphics.cornell.edu/online/box/data.html), in millimetres. The box is seen from
# z = -800 looking toward +z with y up, so x = 0 (the green wall) is on the image's right and
# x = 556 (the red wall) on its left.
CORNELL_CAMERA = {"position": [278.0, 273.0, -800.0], "direction": [0.0, 0.0, 1.0],
                  "up": [0.0, 1.0, 0.0], "focal_length": 0.035, "film": 0.025}

CORNELL_GEOMETRY = {  # name -> list of quads (each 4 corners as published)
    "floor": [[[552.8, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 559.2], [549.6, 0.0, 559.2]]],
    "ceiling": [[[556.0, 548.8, 0.0], [556.0, 548.8, 559.2], [0.0, 548.8, 559.2],
                 [0.0, 548.8, 0.0]]],
    "back_wall": [[[549.6, 0.0, 559.2], [0.0, 0.0, 559.2], [0.0, 548.8, 559.2],
                   [556.0, 548.8, 559.2]]],
    "green_wall": [[[0.0, 0.0, 559.2], [0.0, 0.0, 0.0], [0.0, 548.8, 0.0], [0.0, 548.8, 559.2]]],
    "red_wall": [[[552.8, 0.0, 0.0], [549.6, 0.0, 559.2], [556.0, 548.8, 559.2],
                  [556.0, 548.8, 0.0]]],
    "short_block": [
        [[130.0, 165.0, 65.0], [82.0, 165.0, 225.0], [240.0, 165.0, 272.0], [290.0, 165.0, 114.0]],
        [[290.0, 0.0, 114.0], [290.0, 165.0, 114.0], [240.0, 165.0, 272.0], [240.0, 0.0, 272.0]],
        [[130.0, 0.0, 65.0], [130.0, 165.0, 65.0], [290.0, 165.0, 114.0], [290.0, 0.0, 114.0]],
        [[82.0, 0.0, 225.0], [82.0, 165.0, 225.0], [130.0, 165.0, 65.0], [130.0, 0.0, 65.0]],
        [[240.0, 0.0, 272.0], [240.0, 165.0, 272.0], [82.0, 165.0, 225.0], [82.0, 0.0, 225.0]]],
    "tall_block": [
        [[423.0, 330.0, 247.0], [265.0, 330.0, 296.0], [314.0, 330.0, 456.0], [472.0, 330.0, 406.0]],
        [[423.0, 0.0, 247.0], [423.0, 330.0, 247.0], [472.0, 330.0, 406.0], [472.0, 0.0, 406.0]],
        [[472.0, 0.0, 406.0], [472.0, 330.0, 406.0], [314.0, 330.0, 456.0], [314.0, 0.0, 456.0]],
        [[314.0, 0.0, 456.0], [314.0, 330.0, 456.0], [265.0, 330.0, 296.0], [265.0, 0.0, 296.0]],
        [[265.0, 0.0, 296.0], [265.0, 330.0, 296.0], [423.0, 330.0, 247.0], [423.0, 0.0, 247.0]]],
    # The light is published at the ceiling's height (y = 548.8); it is lowered by 0.5 mm here
    # so the two surfaces do not coincide.
    "light": [[[343.0, 548.3, 227.0], [343.0, 548.3, 332.0], [213.0, 548.3, 332.0],
               [213.0, 548.3, 227.0]]],
}

# Measured reflectance spectra (Lambertian), 400-700 nm every 4 nm, as published.
CORNELL_WAVELENGTHS = np.arange(400.0, 701.0, 4.0)
CORNELL_WHITE = [
    0.343, 0.445, 0.551, 0.624, 0.665, 0.687, 0.708, 0.723, 0.715, 0.710, 0.745, 0.758, 0.739,
    0.767, 0.777, 0.765, 0.751, 0.745, 0.748, 0.729, 0.745, 0.757, 0.753, 0.750, 0.746, 0.747,
    0.735, 0.732, 0.739, 0.734, 0.725, 0.721, 0.733, 0.725, 0.732, 0.743, 0.744, 0.748, 0.728,
    0.716, 0.733, 0.726, 0.713, 0.740, 0.754, 0.764, 0.752, 0.736, 0.734, 0.741, 0.740, 0.732,
    0.745, 0.755, 0.751, 0.744, 0.731, 0.733, 0.744, 0.731, 0.712, 0.708, 0.729, 0.730, 0.727,
    0.707, 0.703, 0.729, 0.750, 0.760, 0.751, 0.739, 0.724, 0.730, 0.740, 0.737]
CORNELL_GREEN = [
    0.092, 0.096, 0.098, 0.097, 0.098, 0.095, 0.095, 0.097, 0.095, 0.094, 0.097, 0.098, 0.096,
    0.101, 0.103, 0.104, 0.107, 0.109, 0.112, 0.115, 0.125, 0.140, 0.160, 0.187, 0.229, 0.285,
    0.343, 0.390, 0.435, 0.464, 0.472, 0.476, 0.481, 0.462, 0.447, 0.441, 0.426, 0.406, 0.373,
    0.347, 0.337, 0.314, 0.285, 0.277, 0.266, 0.250, 0.230, 0.207, 0.186, 0.171, 0.160, 0.148,
    0.141, 0.136, 0.130, 0.126, 0.123, 0.121, 0.122, 0.119, 0.114, 0.115, 0.117, 0.117, 0.118,
    0.120, 0.122, 0.128, 0.132, 0.139, 0.144, 0.146, 0.150, 0.152, 0.157, 0.159]
CORNELL_RED = [
    0.040, 0.046, 0.048, 0.053, 0.049, 0.050, 0.053, 0.055, 0.057, 0.056, 0.059, 0.057, 0.061,
    0.061, 0.060, 0.062, 0.062, 0.062, 0.061, 0.062, 0.060, 0.059, 0.057, 0.058, 0.058, 0.058,
    0.056, 0.055, 0.056, 0.059, 0.057, 0.055, 0.059, 0.059, 0.058, 0.059, 0.061, 0.061, 0.063,
    0.063, 0.067, 0.068, 0.072, 0.080, 0.090, 0.099, 0.124, 0.154, 0.192, 0.255, 0.287, 0.349,
    0.402, 0.443, 0.487, 0.513, 0.558, 0.584, 0.620, 0.606, 0.609, 0.651, 0.612, 0.610, 0.650,
    0.638, 0.627, 0.620, 0.630, 0.628, 0.642, 0.639, 0.657, 0.639, 0.635, 0.642]
CORNELL_LIGHT_REFLECTANCE = 0.78  # published: flat 0.78 for the light's surface
# Published emission spectrum of the light: piecewise linear through these points (W/(sr m^2)
# per nm, arbitrary scale).
CORNELL_LIGHT_EMISSION = ([400.0, 500.0, 600.0, 700.0], [0.0, 8.0, 15.6, 18.4])
# The emission is scaled so the image is well exposed with the sRGB curve (the published
# absolute scale is not meaningful for an RGB renderer).
CORNELL_LIGHT_SCALE = 1.5


def _cie_xyz_cmf(wl: np.ndarray) -> np.ndarray:
    """CIE 1931 2-degree colour matching functions, [len(wl), 3], from the multi-lobe Gaussian
    fit of Wyman, Sloan and Shirley, "Simple Analytic Approximations to the CIE XYZ Color
    Matching Functions", JCGT 2(2), 2013."""
    def g(mu, s1, s2):
        s = np.where(wl < mu, s1, s2)
        return np.exp(-0.5 * ((wl - mu) / s) ** 2)
    x = 1.056 * g(599.8, 37.9, 31.0) + 0.362 * g(442.0, 16.0, 26.7) - 0.065 * g(501.1, 20.4, 26.2)
    y = 0.821 * g(568.8, 46.9, 40.5) + 0.286 * g(530.9, 16.3, 31.1)
    z = 1.217 * g(437.0, 11.8, 36.0) + 0.681 * g(459.0, 26.0, 13.8)
    return np.stack([x, y, z], -1)


# XYZ -> linear sRGB (D65), IEC 61966-2-1.
XYZ_TO_SRGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                        [-0.9692660, 1.8760108, 0.0415560],
                        [0.0556434, -0.2040259, 1.0572252]])


def spectrum_to_rgb(values) -> np.ndarray:
    """A spectrum sampled at CORNELL_WAVELENGTHS -> linear sRGB, relative to a flat spectrum.

    Integrates against the CIE colour matching functions, converts XYZ to linear sRGB and
    divides each channel by that of a flat spectrum of 1 (a von Kries white balance from the
    equal-energy illuminant), so a flat reflectance of r gives (r, r, r). Negative values
    (out of gamut) are clipped to 0.
    """
    cmf = _cie_xyz_cmf(CORNELL_WAVELENGTHS)
    rgb = XYZ_TO_SRGB @ (np.asarray(values, dtype=np.float64) @ cmf)
    white = XYZ_TO_SRGB @ cmf.sum(0)
    return np.maximum(rgb / white, 0.0)


def make_cornell_box(out: Path) -> None:
    centre = np.array([278.0, 274.4, 279.6])
    meshes = out / "meshes"
    for name, quads in CORNELL_GEOMETRY.items():
        oriented = []
        for q in quads:
            q = np.asarray(q)
            if name == "light":
                toward = np.array([0.0, -1.0, 0.0])  # emits downward
            elif name.endswith("block"):
                toward = q.mean(0) - np.mean(np.concatenate(quads), 0)  # outward
                toward[1] = 0.0 if np.ptp(q[:, 1]) > 0 else 1.0  # top faces up
            else:
                toward = centre - q.mean(0)  # walls face the inside of the box
            oriented.append(orient(q, toward))
        vertices = np.concatenate(oriented)
        faces = [tuple(range(4 * k, 4 * k + 4)) for k in range(len(oriented))]
        write_obj(meshes / f"{name}.obj", vertices, faces,
                  f"Cornell box: {name.replace('_', ' ')} (mm), from the Cornell Box Data;\n"
                  "generated by scenes/make_scenes.py. Faces wind so that cross(v1 - v0, v2 - v0)\n"
                  "faces the inside of the box (blocks: outward; light: down).")

    white = spectrum_to_rgb(CORNELL_WHITE)
    red = spectrum_to_rgb(CORNELL_RED)
    green = spectrum_to_rgb(CORNELL_GREEN)
    light = spectrum_to_rgb(np.interp(CORNELL_WAVELENGTHS, *CORNELL_LIGHT_EMISSION))
    light = light * CORNELL_LIGHT_SCALE
    rnd = (lambda v: [round(float(x), 4) for x in v])

    c = CORNELL_CAMERA
    fov = math.degrees(2.0 * math.atan(0.5 * c["film"] / c["focal_length"]))
    doc = {
        "version": 1,
        "description": (
            "The Cornell box (Cornell Program of Computer Graphics, 'Cornell Box Data'): published "
            "geometry (mm) and camera; RGB reflectances and light radiance converted from the "
            "measured spectra with the CIE 1931 colour matching functions (see "
            "scenes/make_scenes.py). Red wall on the left, green on the right."),
        "camera": {"position": c["position"],
                   "look_at": [p + d for p, d in zip(c["position"], [0.0, 0.0, 800.0])],
                   "up": c["up"], "fov": round(fov, 4), "resolution": [256, 256],
                   "type": "perspective"},
        "materials": [
            {"name": "white", "diffuse": rnd(white)},
            {"name": "red", "diffuse": rnd(red)},
            {"name": "green", "diffuse": rnd(green)},
            {"name": "light", "diffuse": [CORNELL_LIGHT_REFLECTANCE] * 3},
        ],
        "shapes": [
            {"name": "floor", "mesh": {"path": "meshes/floor.obj"}, "material": "white"},
            {"name": "ceiling", "mesh": {"path": "meshes/ceiling.obj"}, "material": "white"},
            {"name": "back_wall", "mesh": {"path": "meshes/back_wall.obj"}, "material": "white"},
            {"name": "red_wall", "mesh": {"path": "meshes/red_wall.obj"}, "material": "red"},
            {"name": "green_wall", "mesh": {"path": "meshes/green_wall.obj"}, "material": "green"},
            {"name": "short_block", "mesh": {"path": "meshes/short_block.obj"}, "material": "white"},
            {"name": "tall_block", "mesh": {"path": "meshes/tall_block.obj"}, "material": "white"},
            {"name": "light", "mesh": {"path": "meshes/light.obj"}, "material": "light",
             "emission": {"intensity": rnd(light), "two_sided": False}},
        ],
        "render": {"spp": 64, "max_bounces": 5},
    }
    write_json(out / "scene.json", doc)


# =============================================================================================
# (b) A diffuse sphere under a small area light (the benchmark reference scene)
# =============================================================================================
def make_sphere_light(out: Path) -> None:
    """Writes benchmarks/scenes.py's reference_scene() (the scene bench_render.py times) as a
    scene file, so the shipped scene and the benchmark stay the same scene."""
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    from scenes import reference_scene  # noqa: PLC0415  (benchmarks/scenes.py)

    scene = reference_scene()
    sphere, ground, light = scene.shapes
    assert [l.shape_id for l in scene.area_lights] == [2]
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "meshes" / "sphere.npz", vertices=sphere.vertices.numpy(),
                        indices=sphere.indices.numpy().astype(np.int32),
                        normals=sphere.normals.numpy())

    def values(t):  # float32 values as the shortest decimals that read back exactly
        return _json_floats(t.detach().numpy().reshape(-1))

    def inline(shape):
        return {"vertices": [values(v) for v in shape.vertices],
                "indices": shape.indices.tolist()}

    cam = scene.camera
    names = ["sphere", "ground", "light"]
    doc = {
        "version": 1,
        "description": (f"The benchmark reference scene (benchmarks/scenes.py reference_scene): a "
                        f"smooth diffuse unit sphere of {sphere.indices.shape[0]:,} triangles "
                        "(cube-sphere, interpolated normals) on a 10 x 10 ground plane, lit by "
                        "one 1 x 1 area light."),
        "camera": {"position": values(cam.position), "look_at": values(cam.look_at),
                   "up": values(cam.up), "fov": _json_floats(cam.fov.numpy()), "resolution": list(cam.resolution),
                   "type": cam.camera_type},
        "materials": [{"name": n, "diffuse": values(m.diffuse_reflectance)}
                      for n, m in zip(names, scene.materials)],
        "shapes": [
            {"name": "sphere", "material": sphere.material_id, "mesh": {"path": "meshes/sphere.npz"}},
            {"name": "ground", "material": ground.material_id, "mesh": inline(ground)},
            {"name": "light", "material": light.material_id, "mesh": inline(light),
             "emission": {"intensity": values(scene.area_lights[0].intensity),
                          "two_sided": scene.area_lights[0].two_sided}},
        ],
        "render": {"spp": 16, "max_bounces": 4},
    }
    write_json(out / "scene.json", doc)


# =============================================================================================
# (c) Spheres under a procedural sky
# =============================================================================================
SUN_DIRECTION = np.array([-0.55, 0.6, -0.58])  # toward the sun: behind-left of the spheres
SUN_ANGULAR_RADIUS = math.radians(4.0)
SUN_RADIANCE = np.array([1.0, 0.9, 0.75]) * 300.0


def sky_radiance(d: np.ndarray) -> np.ndarray:
    """Radiance of the procedural sky for unit directions d [..., 3] (y up)."""
    y = d[..., 1:2]
    zenith, horizon = np.array([0.25, 0.45, 0.95]), np.array([0.85, 0.9, 1.0])
    ground = np.array([0.35, 0.3, 0.25])
    t = np.sqrt(np.clip(y, 0.0, 1.0))
    sky = np.where(y > 0, horizon * (1 - t) + zenith * t, ground)
    sun = SUN_DIRECTION / np.linalg.norm(SUN_DIRECTION)
    in_sun = (d @ sun) > math.cos(SUN_ANGULAR_RADIUS)
    return np.where(in_sun[..., None], SUN_RADIANCE, sky)


def sky_envmap(width: int, height: int, supersample: int = 8) -> np.ndarray:
    """The sky as a lat-long map [height, width, 3] in raytrace's convention: for a direction d,
    theta = acos(d.y), phi = atan2(d.x, -d.z), u = phi / 2pi + 1/2 (columns), v = theta / pi
    (rows, row 0 straight up). Each texel averages supersample^2 directions (so the small sun
    disk is anti-aliased and its power is kept)."""
    k = (np.arange(supersample) + 0.5) / supersample
    u = (np.arange(width)[:, None] + k[None, :]).reshape(-1) / width
    v = (np.arange(height)[:, None] + k[None, :]).reshape(-1) / height
    theta = v[:, None] * math.pi
    phi = (u[None, :] - 0.5) * 2 * math.pi
    d = np.stack(np.broadcast_arrays(np.sin(theta) * np.sin(phi), np.cos(theta),
                                     -np.sin(theta) * np.cos(phi)), -1)
    # Average over the sub-samples with their solid angle (sin theta) as weight.
    w = np.broadcast_to(np.sin(theta), theta.shape[:1] + phi.shape[1:])[..., None]
    rad = sky_radiance(d) * w
    rad = rad.reshape(height, supersample, width, supersample, 3).sum((1, 3))
    wsum = w.reshape(height, supersample, width, supersample, 1).sum((1, 3))
    return (rad / np.maximum(wsum, 1e-12)).astype(np.float32)


def checker(size: int, checks: int) -> np.ndarray:
    """A [size, size, 3] checkerboard of linear values."""
    i = (np.arange(size) * checks // size)
    mask = (i[:, None] + i[None, :]) % 2 == 0
    light, dark = np.array([0.8, 0.8, 0.75]), np.array([0.05, 0.08, 0.3])
    return np.where(mask[..., None], light, dark).astype(np.float32)


def make_envmap_spheres(out: Path) -> None:
    vertices, normals, uvs, indices = uv_sphere(n_lon=64, n_lat=32)  # 3,968 triangles
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "meshes" / "sphere.npz", vertices=vertices, indices=indices,
                        uvs=uvs, normals=normals)
    (out / "textures").mkdir(parents=True, exist_ok=True)
    # Checks: 16 around the equator (u), 8 from pole to pole (v), so they look square.
    tex = checker(64, 16)[::2]  # 32 x 64
    imwrite(tex, out / "textures" / "checker.png")
    imwrite(sky_envmap(128, 64), out / "textures" / "sky.exr")
    r = 0.8

    def sphere(x):
        return {"path": "meshes/sphere.npz", "transform": {"scale": r, "translate": [x, r, 0.0]}}

    doc = {
        "version": 1,
        "description": ("A diffuse, a glossy (GGX roughness 0.2) and a checker-textured sphere on "
                        "a ground plane, lit only by a procedural sky with a sun disk "
                        "(textures/sky.exr, 128x64, lat-long)."),
        "camera": {"position": [0.0, 1.8, 7.0], "look_at": [0.0, 0.6, 0.0], "up": [0.0, 1.0, 0.0],
                   "fov": 45.0, "resolution": [192, 256], "type": "perspective"},
        "materials": [
            {"name": "ground", "diffuse": [0.45, 0.45, 0.45]},
            {"name": "diffuse", "diffuse": [0.7, 0.12, 0.08]},
            {"name": "glossy", "diffuse": [0.02, 0.02, 0.02], "specular": [0.95, 0.64, 0.54],
             "roughness": 0.2},
            {"name": "checker", "diffuse": {"texture": "textures/checker.png"},
             "specular": [0.04, 0.04, 0.04], "roughness": 0.3},
        ],
        "shapes": [
            {"name": "ground", "material": "ground",
             "mesh": quad_mesh([[-20, 0, -20], [20, 0, -20], [20, 0, 20], [-20, 0, 20]], [0, 1, 0])},
            {"name": "diffuse_sphere", "material": "diffuse", "mesh": sphere(-1.9)},
            {"name": "glossy_sphere", "material": "glossy", "mesh": sphere(0.0)},
            {"name": "checker_sphere", "material": "checker", "mesh": sphere(1.9)},
        ],
        "envmap": {"path": "textures/sky.exr"},
        "render": {"spp": 32, "max_bounces": 4},
    }
    write_json(out / "scene.json", doc)


SCENES = {"cornell_box": make_cornell_box, "sphere_light": make_sphere_light,
          "envmap_spheres": make_envmap_spheres}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"scenes to write (default: all of {', '.join(SCENES)})")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: "
                                                                "this script's folder)")
    parser.add_argument("--check", action="store_true",
                        help="load each scene and render it at 16x16, 1 spp")
    args = parser.parse_args(argv)
    names = args.names or list(SCENES)
    for name in names:
        if name not in SCENES:
            parser.error(f"unknown scene {name!r} (known: {', '.join(SCENES)})")
    for name in names:
        SCENES[name](args.out / name)
        size = sum(f.stat().st_size for f in (args.out / name).rglob("*") if f.is_file())
        print(f"wrote {args.out / name} ({size / 1024:.0f} KiB)")
        if args.check:
            import raytrace as rt  # noqa: PLC0415
            from raytrace.io.scenes import read_scene  # noqa: PLC0415
            scene, settings = read_scene(args.out / name, resolution=(16, 16))
            img = rt.render(scene, spp=1, max_bounces=settings.get("max_bounces", 1))
            print(f"  loaded and rendered: {scene!r}, mean {float(img.mean()):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
