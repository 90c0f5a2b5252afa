"""Renders docs/edge_sampling.png: an image, its gradient image w.r.t. a translation of the
object, and a finite-difference image of the same derivative.

    python docs/make_edge_sampling_figure.py
"""
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import raytrace as rt

HERE = Path(__file__).resolve().parent
RES = 128


def scene(offset=0.0):
    mesh = rt.sphere(radius=0.7, subdivisions=2)
    verts = mesh.vertices + torch.tensor([offset, 0.0, 0.0])
    plane = torch.tensor([[-3.0, -0.7, -3], [3, -0.7, -3], [3, -0.7, 3], [-3, -0.7, 3]])
    light = torch.tensor([[-0.9, 2.0, -0.3], [-0.3, 2.0, -0.3], [-0.3, 2.0, 0.3], [-0.9, 2.0, 0.3]])
    cam = rt.Camera([0.0, 1.5, 3.2], [0.0, -0.2, 0.0], [0.0, 1.0, 0.0], fov=45.0, resolution=(RES, RES))
    shapes = [rt.Shape(verts, mesh.indices, 0),  # flat-shaded: its creases are edges too
              rt.Shape(plane, torch.tensor([[0, 2, 1], [0, 3, 2]]), 1),
              rt.Shape(light, torch.tensor([[0, 1, 2], [0, 2, 3]]), 2)]
    mats = [rt.Material(torch.tensor([0.8, 0.4, 0.2])), rt.Material(torch.tensor([0.6, 0.6, 0.6])),
            rt.Material(torch.zeros(3))]
    return rt.Scene(cam, shapes, mats, [rt.AreaLight(2, torch.tensor([12.0, 12.0, 12.0]))])


def to_srgb(img):
    x = np.clip(img, 0, 1)
    x = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return (x * 255 + 0.5).astype(np.uint8)


def diverging(g, scale):
    """Blue (negative) - white - red (positive)."""
    t = np.clip(g / scale, -1, 1)[..., None]
    white = np.ones(3)
    red, blue = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.2, 0.8])
    rgb = np.where(t > 0, white + t * (red - white), white - t * (blue - white))
    return (rgb * 255 + 0.5).astype(np.uint8)


def main():
    s = scene()
    image = rt.render(s, spp=256, max_bounces=1, seed=0)[..., :3].numpy()
    v = s.shapes[0].vertices
    direction = torch.tensor([1.0, 0.0, 0.0]).expand_as(v)
    grad = rt.gradient_image(s, v, direction, spp=64, edge_spp=256, seed=1).numpy()
    h = 0.01
    fd = ((rt.render(scene(h), spp=1024, seed=2) - rt.render(scene(-h), spp=1024, seed=2)).sum(-1) / (2 * h)).numpy()
    scale = np.percentile(np.abs(fd), 99.5)
    panels = [to_srgb(image), diverging(grad, scale), diverging(fd, scale)]
    titles = ["image", "edge sampling", "finite differences"]
    pad, top = 8, 18
    canvas = Image.new("RGB", (3 * RES + 4 * pad, RES + top + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (p, title) in enumerate(zip(panels, titles)):
        x = pad + i * (RES + pad)
        canvas.paste(Image.fromarray(p), (x, top))
        draw.text((x, 3), title, fill="black")
    out = HERE / "edge_sampling.png"
    canvas.save(out)
    print(f"wrote {out}; sum of gradient image {grad.sum():.3f}, finite differences {fd.sum():.3f}")


if __name__ == "__main__":
    main()
