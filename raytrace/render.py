"""render(): the differentiable renderer."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

from . import _limits as limits
from . import _validation as v
from .camera import Camera
from .scene import Scene, _threads

# Channel name -> (core id, width).
CHANNELS = {
    "radiance": (0, 3),
    "alpha": (1, 1),
    "depth": (2, 1),
    "normal": (3, 3),
    "albedo": (4, 3),
    "shape_id": (5, 1),
    "position": (6, 3),
    "geometry_normal": (7, 3),
    "uv": (8, 2),
    "barycentrics": (9, 2),
    "triangle_id": (10, 1),
}

# The channels that carry gradients besides radiance, at their place in the core's d_aux.
_AUX = {"alpha": 0, "depth": 1, "normal": 2, "albedo": 5, "position": 8, "geometry_normal": 11, "uv": 14}
_AUX_WIDTH = 16

# Every value a finite scene gives is finite; where one is not, the scene's values overflow
# float32 on the way (radiance is light intensity x reflectances x geometric factors).
_NOT_FINITE = ("render: the {what} has NaN or Inf values, from finite inputs: the scene's light intensities "
               "or reflectances are too large for float32 (scale the intensities down), or this is a bug "
               "to report")

_MAX_GRAD_BOUNCES = limits.MAX_GRAD_BOUNCES  # the longest path the reverse pass records (16)


def render(scene: Scene, spp: int = 16, max_bounces: int = 1, seed: int = 0,
           channels: Sequence[str] = ("radiance",), threads: Optional[int] = None, *,
           edge_spp: Optional[int] = None, secondary_spp: Optional[int] = None, secondary_stride: int = 16,
           boundary: Union[bool, str] = True,
           interior: bool = True) -> torch.Tensor:
    """Renders the scene with a Monte Carlo path tracer.

    Every count has an upper bound (docs/limits.md); a count outside its range is a
    ValueError naming the argument. Ctrl-C (SIGINT) stops the render, or its backward pass,
    within about 0.1 s and raises KeyboardInterrupt; the scene is left as it was.

    Args:
        scene: the Scene.
        spp: samples per pixel, 1 to 2**20 (1048576), stratified within each pixel.
        max_bounces: 0 shows emitters (and the environment) seen directly; 1 adds direct
            lighting; more add indirect light. At most 1024, and at most 16 when gradients
            are needed.
        seed: the random seed, 0 to 2**63 - 1. The same scene and seed give the same image, bit
            for bit, whatever the thread count.
        channels: names stacked along the last axis in this order: "radiance" (3, linear),
            "alpha" (1, pixel coverage), "depth" (1, mean distance to the first hit), "normal"
            (3, mean shading normal facing the camera), "albedo" (3, mean diffuse reflectance at
            the first hit), "position" (3, mean first-hit point), "geometry_normal" (3, mean unit
            geometric normal facing the camera), "uv" (2, mean texture coordinates of the first
            hit), and, from the one ray through the pixel's centre, "shape_id" (1), "triangle_id"
            (1, the triangle's index within its shape) and "barycentrics" (2, as
            ``scene.intersect``'s uv). The means are over the pixel's samples, misses counting as
            0: where nothing is hit every channel is 0 (depth too: mask a depth loss with alpha),
            shape_id and triangle_id -1.
            At most 8 names.
        threads: worker threads, 1 to 256 (default: RT_NUM_THREADS or all cores, at most 256).
        edge_spp: primary-edge samples per pixel for the boundary gradient, 0 to 2**20, with
            edge_spp * H * W at most 2**31 - 1 where primary edges are sampled (default: spp / 2,
            rounded up, lowered to that bound at large resolutions):
            edge_spp * H * W samples spread over the screen-space length of the edges that can
            matter, of which only those on edges whose motion a requested gradient needs (the
            vertices of shapes that require grad, or the camera) are taken.
        secondary_spp: secondary-edge samples at each vertex of the backward pass's paths
            that takes them (stratified over the edges that can matter there). Default: 16
            where only emission arrives (no bounce left after the vertex and no environment
            map: a sample costs at most a shadow ray) and 4 elsewhere (each sample traces a
            path on both sides of the edge); an integer (0 to 4096) sets both.
        secondary_stride: the vertices where only emission arrives take their secondary-edge
            samples on one path in this many (chosen at random per pixel from the seed, weighted
            up to stand for all; default 16). Their samples are drawn by exact importance among the
            few edges that can matter there, so most of their cost is finding those edges and
            fewer vertices with more samples each is the cheaper way to a given noise. 1 takes
            them on every path: less noise where the shadow terms vary much across a surface
            (coarse meshes, lights close by), at several times the cost of the backward pass
            (3.5x on benchmarks/bench_grad.py's scene). At most 65536.
        boundary: which boundary (visibility) terms the gradient includes: True (all),
            "primary" (edges seen from the camera), "secondary" (shadows and indirect
            visibility) or False (none: plain autodiff of the shading, which misses the
            gradient of moving edges). The split follows the formulation (Li et al. 2018):
            directions are held fixed in solid angle, so the change of the light an area
            light sends to a point as the point moves (e.g. the camera moving the primary hit
            points over a lit floor) is a boundary term, the light's own outline seen from the
            point (secondary); only the full gradient (True, with interior) is the derivative.
        interior: include the interior (shading) terms of the gradient.

    Returns:
        [H, W, C] float32 tensor. When any scene tensor requires grad, the result is part of
        the autograd graph: its radiance channels are differentiable w.r.t. vertices, uvs,
        normals, material values and textures, light intensities, the environment map and the
        camera's position, look_at, up and fov. The alpha, depth, normal, albedo, position,
        geometry_normal and uv channels are differentiable too, w.r.t. what they depend on
        (vertices, normals, uvs, the diffuse texture, the camera), their silhouettes' jumps
        included (the primary-edge term: alpha, being piecewise constant, has only that, so it
        needs boundary=True or "primary"). A radiance and an alpha loss, say, take one backward
        pass. shape_id, triangle_id and barycentrics, and a second copy of a channel, carry no
        gradient: a loss that depends on them gets a RuntimeWarning naming them. The
        backward pass traces its own paths, from another random stream of the same seed.
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"scene must be a raytrace.Scene (got {type(scene).__name__})")
    settings = _settings(scene, spp, max_bounces, seed, channels, threads, edge_spp, secondary_spp,
                         secondary_stride, boundary, interior)
    return _render(scene, scene._state(), settings)


def render_batch(scenes: Union[Scene, Sequence[Scene]], cameras: Optional[Sequence[Camera]] = None,
                 spp: int = 16, max_bounces: int = 1, seed: int = 0, channels: Sequence[str] = ("radiance",),
                 threads: Optional[int] = None, **kwargs) -> torch.Tensor:
    """Renders several views in one call: [B, H, W, C].

    Either a list of scenes (``render_batch([s1, s2])``), or one scene seen through several
    cameras (``render_batch(scene, cameras=[c1, c2, c3])``): the cameras share the scene's BVH
    and its other host-side tables, which are built once for the batch. All views must have the
    same resolution. Each view is rendered, and differentiated, exactly as ``render`` would with
    that view's seed: view b uses ``view_seed(seed, b)`` (view 0 uses ``seed`` itself), so the
    views' noise is independent and the result does not depend on how views are batched. The
    views are rendered one after another, each on all the threads (or the scene's GPU).

    Args:
        scenes: a Scene, or a list of Scene.
        cameras: with one scene, the cameras to render it from (the scene's own camera is not
            used and may be None); must be None with a list of scenes.
        spp, max_bounces, seed, channels, threads and the keyword arguments of ``render``
            (edge_spp, secondary_spp, secondary_stride, boundary, interior): as for ``render``.

    Returns:
        [B, H, W, C] float32 on the scenes' device, differentiable as ``render``'s images are.
    """
    if isinstance(scenes, Scene):
        if cameras is None:
            raise ValueError("render_batch: with one scene, pass cameras=[...] (or pass a list of scenes)")
        if isinstance(cameras, Camera) or not isinstance(cameras, (list, tuple)) or len(cameras) == 0:
            raise TypeError("render_batch: cameras must be a non-empty list of raytrace.Camera")
        for i, c in enumerate(cameras):
            if not isinstance(c, Camera):
                raise TypeError(f"render_batch: cameras[{i}] must be a raytrace.Camera (got {type(c).__name__})")
        base = scenes._state()
        views = []
        for c in cameras:
            state = base._replace(camera=c)
            _check_camera(state)
            views.append((scenes, state))
    else:
        if cameras is not None:
            raise ValueError("render_batch: cameras= goes with one scene; each scene of a list uses its own camera")
        if isinstance(scenes, (str, bytes)) or not isinstance(scenes, (list, tuple)) or len(scenes) == 0:
            raise TypeError("render_batch: scenes must be a raytrace.Scene or a non-empty list of them")
        for i, sc in enumerate(scenes):
            if not isinstance(sc, Scene):
                raise TypeError(f"render_batch: scenes[{i}] must be a raytrace.Scene (got {type(sc).__name__})")
        views = [(sc, sc._state()) for sc in scenes]
    for i, (_, state) in enumerate(views):
        if state.camera is None:
            raise ValueError(f"render_batch: view {i} has no camera (its scene's camera is None)")
        if state.camera.resolution != views[0][1].camera.resolution:
            raise ValueError(f"render_batch: every view must have the same resolution (view 0: "
                             f"{views[0][1].camera.resolution}, view {i}: {state.camera.resolution})")
    images = []
    for b, (scene, state) in enumerate(views):
        settings = _settings(state, spp, max_bounces, seed, channels, threads, **kwargs)
        settings["seed"] = view_seed(settings["seed"], b)
        images.append(_render(scene, state, settings))
    return torch.stack(images)


def view_seed(seed: int, view: int) -> int:
    """The seed of view `view` of a batch rendered with `seed` (render_batch): `seed` itself for
    view 0, else a hash of both (in [0, 2**63)). Independent of how the views are batched."""
    seed = v.integer(seed, "seed", minimum=0, maximum=limits.MAX_SEED)
    view = v.integer(view, "view", minimum=0)
    if view == 0:
        return seed
    x = (seed * 0x9E3779B97F4A7C15 + view * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 29
    return x & limits.MAX_SEED


def _check_camera(state) -> None:
    """The value checks of Scene._state for a camera put into a state afterwards."""
    from .scene import _check_extent, _check_values
    only_camera = state._replace(shapes=[], materials=[], area_lights=[], envmap=None)
    only_camera.device()
    _check_values(only_camera)
    _check_extent(only_camera)
    state.device()  # (the camera on the scene's device)


def _settings(scene, spp, max_bounces, seed, channels, threads, edge_spp=None, secondary_spp=None,
              secondary_stride=16, boundary=True, interior=True) -> dict:
    """render's arguments checked, as the settings dict of one render. `scene`: a Scene or a
    Scene._state() (its camera gives the resolution)."""
    spp, max_bounces, seed = _counts(spp, max_bounces, seed)
    if isinstance(channels, str) or not isinstance(channels, (list, tuple)) or len(channels) == 0:
        raise TypeError(f"channels must be a non-empty tuple of names from {tuple(CHANNELS)} (got {channels!r})")
    for c in channels:
        if c not in CHANNELS:
            raise ValueError(f"channels: unknown channel {c!r}; known channels are {tuple(CHANNELS)}")
    if len(channels) > limits.MAX_CHANNELS:
        raise ValueError(f"channels: at most {limits.MAX_CHANNELS} channels per call (got {len(channels)})")
    num_threads = _threads(threads)
    edge_spp, primary, secondary, secondary_stride, interior = _sampling(
        scene, spp, edge_spp, secondary_spp, secondary_stride, boundary, interior)
    radiance_slice = None
    aux = {}  # the first of each auxiliary channel: its offset in the image
    width = 0
    for c in channels:
        if c == "radiance" and radiance_slice is None:
            radiance_slice = (width, width + 3)
        if c in _AUX and c not in aux:
            aux[c] = width
        width += CHANNELS[c][1]
    settings = {
        "spp": spp, "max_bounces": max_bounces, "seed": seed, "threads": num_threads,
        "channel_ids": [CHANNELS[c][0] for c in channels], "width": width, "radiance_slice": radiance_slice,
        "channels": list(channels), "aux": aux,
        "edge_spp": edge_spp, "interior": interior, "primary_edges": primary, "secondary_edges": secondary, "secondary_stride": secondary_stride,
    }
    return settings


def _render(scene: Scene, state, st: dict) -> torch.Tensor:
    """Renders `state` (a Scene._state() of `scene`) with the settings `st`, as part of the
    autograd graph when a tensor it reads requires grad."""
    params = _parameters(state)
    if torch.is_grad_enabled() and any(t.requires_grad for t, _ in params):
        if st["max_bounces"] > _MAX_GRAD_BOUNCES:
            raise ValueError(f"max_bounces must be <= {_MAX_GRAD_BOUNCES} when gradients are needed "
                             f"(got {st['max_bounces']})")
        if st["primary_edges"]:
            limits.check_edge_samples(st["edge_spp"], *state.camera.resolution)
        return _Render.apply(scene, st, state, *[t for t, _ in params])
    return _forward(scene, st, state)




def _parameters(scene):
    """The differentiable scene tensors as (tensor, (block, begin, end)) pairs: where each
    one's gradient lies in the core's gradient blocks. `scene`: a Scene or a Scene._state()."""
    c = scene.camera
    params = [(c.position, ("camera", 0, 3)), (c.look_at, ("camera", 3, 6)), (c.up, ("camera", 6, 9)),
              (c.fov, ("camera", 9, 10))]
    v_off = 0
    for s in scene.shapes:
        n = s.num_vertices
        params.append((s.vertices, ("vertices", 3 * v_off, 3 * (v_off + n))))
        if s.uvs is not None:
            params.append((s.uvs, ("uvs", 2 * v_off, 2 * (v_off + n))))
        if s.normals is not None:
            params.append((s.normals, ("normals", 3 * v_off, 3 * (v_off + n))))
        v_off += n
    t_off = 0  # the core's texel buffer: diffuse, specular, roughness of each material in turn
    for m in scene.materials:
        for t in (m.diffuse_reflectance, m.specular_reflectance, m.roughness):
            params.append((t, ("texels", t_off, t_off + t.numel())))
            t_off += t.numel()
    for i, light in enumerate(scene.area_lights):
        params.append((light.intensity, ("lights", 3 * i, 3 * i + 3)))
    if scene.envmap is not None:
        params.append((scene.envmap.values, ("envmap", 0, scene.envmap.values.numel())))
    return params


_BLOCKS = ("vertices", "uvs", "normals", "texels", "lights", "envmap", "camera")


def _grad_layout(scene):
    """Where each block of the core's gradient lies in its flat vector (csrc/core/grad.h,
    GradLayout): ({block: (begin, end)}, total). `scene`: a Scene or a Scene._state()."""
    n_vertices = sum(s.num_vertices for s in scene.shapes)
    n_texels = sum(t.numel() for m in scene.materials
                   for t in (m.diffuse_reflectance, m.specular_reflectance, m.roughness))
    sizes = {"vertices": 3 * n_vertices, "uvs": 2 * n_vertices, "normals": 3 * n_vertices, "texels": n_texels,
             "lights": 3 * len(scene.area_lights),
             "envmap": 0 if scene.envmap is None else scene.envmap.values.numel(), "camera": 10}
    offsets, total = {}, 0
    for block in _BLOCKS:
        offsets[block] = (total, total + sizes[block])
        total += sizes[block]
    return offsets, total


def _boundary(boundary):
    """render's `boundary`: True or False (Python, numpy or torch booleans), "primary" or
    "secondary"; anything else (1, "all", None) is an error naming it."""
    if isinstance(boundary, str):
        if boundary not in ("primary", "secondary"):
            raise ValueError(f"boundary must be True, False, 'primary' or 'secondary' (got {boundary!r})")
        return boundary
    try:
        return v.boolean(boundary, "boundary")
    except TypeError:
        raise TypeError(f"boundary must be True, False, 'primary' or 'secondary' "
                        f"(got {type(boundary).__name__} {boundary!r})") from None


def _sampling(scene, spp, edge_spp, secondary_spp, secondary_stride, boundary, interior):
    """The arguments of render and gradient_image that say what the reverse pass samples,
    checked: (edge_spp, whether primary edges are sampled, the secondary-edge counts
    (_secondary_counts), secondary_stride, interior)."""
    if scene.camera is None:
        raise ValueError("scene.camera is None: a camera is needed to render")
    edge_spp = _edge_spp(edge_spp, spp, scene)
    boundary = _boundary(boundary)
    interior = v.boolean(interior, "interior")
    secondary = _secondary_counts(secondary_spp, boundary)
    secondary_stride = v.integer(secondary_stride, "secondary_stride", minimum=1,
                                 maximum=limits.MAX_SECONDARY_STRIDE)
    return edge_spp, boundary is True or boundary == "primary", secondary, secondary_stride, interior


def _counts(spp, max_bounces, seed):
    """spp, max_bounces and seed checked against their bounds (docs/limits.md)."""
    return (v.integer(spp, "spp", minimum=1, maximum=limits.MAX_SPP),
            v.integer(max_bounces, "max_bounces", minimum=0, maximum=limits.MAX_BOUNCES),
            v.integer(seed, "seed", minimum=0, maximum=limits.MAX_SEED))


def _default_edge_spp(spp: int) -> int:
    """Primary-edge samples per pixel: half the paths. They all land on the edges, which cross
    few pixels, so even half gives those pixels many times the samples of their paths."""
    return (spp + 1) // 2


def _edge_spp(edge_spp, spp: int, scene: Scene) -> int:
    """The edge_spp argument checked against its bound, or the default: half of spp, lowered so
    that edge_spp * H * W stays within MAX_EDGE_SAMPLES (an explicit value past that is refused
    by check_edge_samples where gradients are computed)."""
    if edge_spp is None:
        h, w = scene.camera.resolution
        return min(_default_edge_spp(spp), limits.MAX_EDGE_SAMPLES // (h * w))
    return v.integer(edge_spp, "edge_spp", minimum=0, maximum=limits.MAX_EDGE_SPP)


def _secondary_counts(secondary_spp, boundary):
    """(secondary-edge samples per vertex where only emission arrives, elsewhere) for the core;
    (0, 0) when the boundary setting leaves secondary edges out."""
    if secondary_spp is None:
        counts = (16, 4)
    else:
        n = v.integer(secondary_spp, "secondary_spp", minimum=0, maximum=limits.MAX_SECONDARY_SPP)
        counts = (n, n)
    return counts if boundary is True or boundary == "secondary" else (0, 0)


def _geometry_needs(scene, wanted):
    """(one flag per shape: its vertices are among `wanted`; whether a camera tensor is): the
    core samples only the edges whose motion can reach a wanted gradient. `scene`: a Scene or a
    Scene._state()."""
    vertex_grad = [any(s.vertices is t for t in wanted) for s in scene.shapes]
    c = scene.camera
    camera_grad = any(t is u for t in wanted for u in (c.position, c.look_at, c.up, c.fov))
    return vertex_grad, camera_grad


def _forward(scene: Scene, st: dict, state) -> torch.Tensor:
    """Renders `state` (a Scene._state() of `scene`) with the settings `st`."""
    h, w = state.camera.resolution
    device = state.device()
    with scene._lock:  # (the core scene holds one state at a time; see Scene._lock)
        core = scene._sync(st["threads"], state=state)  # (checks the resolution before the allocation)
        out = torch.empty((h, w, st["width"]), dtype=torch.float32, device=device)
        if device.type == "cuda":
            core.render_cuda(out, st["spp"], st["max_bounces"], st["seed"], st["channel_ids"], _stream(device))
        else:
            core.render(out.numpy(), st["spp"], st["max_bounces"], st["seed"], st["channel_ids"], st["threads"])
    if not bool(torch.isfinite(out).all()):
        raise FloatingPointError(_NOT_FINITE.format(what="image"))
    return out


def _warn_gradientless_channels(st: dict, d_out: torch.Tensor) -> None:
    """A loss that depends on a channel other than radiance gets no gradient through it (issue 11):
    say so, naming the channel, rather than return a silently partial gradient."""
    names, offset = [], 0
    for name in st["channels"]:
        width = CHANNELS[name][1]
        differentiable = (name == "radiance" and (offset, offset + width) == st["radiance_slice"]) or \
            (name in _AUX and st["aux"].get(name) == offset)
        if not differentiable and bool((d_out[..., offset:offset + width] != 0).any()):
            names.append(name)
        offset += width
    if names:
        warnings.warn(f"render: the loss depends on the channel(s) {names}, which carry no gradient (shape_id, "
                      "triangle_id and barycentrics never do; of the others only the first of each name does): "
                      "that part of the gradient is zero", RuntimeWarning,
                      stacklevel=3)


def _stream(device: torch.device) -> int:
    """The handle of torch's current CUDA stream on `device`: the GPU backend works in its order."""
    return torch.cuda.current_stream(device).cuda_stream


def _warn_cpu_backward() -> None:
    global _WARNED_CPU_BACKWARD
    if not _WARNED_CPU_BACKWARD:
        _WARNED_CPU_BACKWARD = True
        warnings.warn("raytrace: gradient_image of a scene on a GPU runs on the CPU (the GPU's reverse pass does not "
                      "make gradient images: docs/cuda.md); the image is returned on the GPU",
                      RuntimeWarning, stacklevel=3)


_WARNED_CPU_BACKWARD = False


class _Render(torch.autograd.Function):
    """render() as an autograd Function; the core computes all gradient blocks in one pass.

    The reverse pass uses the scene exactly as the forward pass saw it: the forward keeps a
    snapshot of the scene's structure (Scene._state: which camera, shapes, materials and lights,
    and their tensors) and saves every tensor the core reads, so that a scene changed between
    render and backward (another camera assigned, as in a multi-view loop; a new tensor
    assigned) does not change this render's gradient, and a tensor edited in place raises
    autograd's usual "modified by an inplace operation" error."""

    @staticmethod
    def forward(ctx, scene, settings, state, *tensors):
        ctx.scene = scene
        ctx.settings = settings
        ctx.state = state
        ctx.shapes = [t.shape for t in tensors]
        ctx.save_for_backward(*state.tensors())
        return _forward(scene, settings, state)

    @staticmethod
    def backward(ctx, d_out):
        scene, st, state = ctx.scene, ctx.settings, ctx.state
        ctx.saved_tensors  # noqa: B018 (raises if a tensor the render read was modified in place)
        needs = ctx.needs_input_grad[3:]
        _warn_gradientless_channels(st, d_out)
        d_aux = None
        if st["aux"]:
            # The core's layout (csrc/core/path_tracer.h, aux_values): alpha, depth, normal, albedo,
            # position, geometry normal, uv.
            d_aux = torch.zeros((*d_out.shape[:2], _AUX_WIDTH), dtype=torch.float32, device=d_out.device)
            for name, offset in st["aux"].items():
                at, width = _AUX[name], CHANNELS[name][1]
                d_aux[..., at:at + width] = d_out[..., offset:offset + width].detach()
            if not bool((d_aux != 0).any()):
                d_aux = None
        if (st["radiance_slice"] is None and d_aux is None) or not any(needs):
            return (None, None, None) + (None,) * len(needs)
        device = state.device()
        if st["radiance_slice"] is None:
            d_image = torch.zeros((*d_out.shape[:2], 3), dtype=torch.float32, device=d_out.device)
        else:
            lo, hi = st["radiance_slice"]
            d_image = d_out[..., lo:hi].detach().to(torch.float32).contiguous()
        finite_in = bool(torch.isfinite(d_image).all()) and (d_aux is None or bool(torch.isfinite(d_aux).all()))
        # (NaN in, NaN out, as torch's own ops)
        params = _parameters(state)
        vertex_grad, camera_grad = _geometry_needs(state, [t for (t, _), need in zip(params, needs) if need])
        args = dict(spp=st["spp"], max_bounces=st["max_bounces"], seed=st["seed"], edge_spp=st["edge_spp"],
                    interior=st["interior"], primary_edges=st["primary_edges"],
                    secondary_edges=st["secondary_edges"][0], shape_vertex_grad=vertex_grad, camera_grad=camera_grad,
                    secondary_edges_traced=st["secondary_edges"][1], secondary_stride=st["secondary_stride"])
        with scene._lock:
            core = scene._sync(st["threads"], state=state)
            if device.type == "cuda":
                if not finite_in:
                    raise ValueError("d_image contains NaN or Inf")  # (as the CPU's core says)
                offsets, total = _grad_layout(state)
                grad = torch.zeros(total, dtype=torch.float64, device=device)
                info = core.render_backward_cuda(d_image, grad, stream=_stream(device), d_aux=d_aux, **args)
                blocks = {b: grad[offsets[b][0]:offsets[b][1]].float() for b in offsets}
            else:
                info = blocks = core.render_backward(d_image.numpy(), num_threads=st["threads"],
                                                     d_aux=None if d_aux is None else d_aux.numpy(), **args)
                blocks = {b: torch.from_numpy(blocks[b]) for b in _BLOCKS}
        scene._stats["primary_edge_samples"] = info["primary_edge_samples"]
        scene._stats["secondary_edge_draws"] = info["secondary_edge_draws"]
        for block in _BLOCKS:
            if finite_in and not bool(torch.isfinite(blocks[block]).all()):
                raise FloatingPointError(_NOT_FINITE.format(what=f"gradient ({block})"))
        grads = []
        for (_, (block, begin, end)), shape, need in zip(params, ctx.shapes, needs):
            grads.append(blocks[block][begin:end].reshape(shape) if need else None)
        return (None, None, None) + tuple(grads)


def gradient_image(scene: Scene, tensor: torch.Tensor, direction=None, spp: int = 16, max_bounces: int = 1,
                   seed: int = 0, threads: Optional[int] = None, *, edge_spp: Optional[int] = None,
                   secondary_spp: Optional[int] = None, secondary_stride: int = 16,
                   boundary: Union[bool, str] = True,
                   interior: bool = True) -> torch.Tensor:
    """The derivative of every pixel w.r.t. a step of one scene tensor along `direction`.

    Each term the reverse pass computes belongs to the pixel whose sample made it (the pixel
    traced, or the one an edge sample falls in), so one backward pass gives the whole image of
    d(pixel)/d(step): a picture of where the gradient comes from (silhouettes, shadow edges,
    shading).

    Args:
        scene: the Scene.
        tensor: one of the scene's tensors (e.g. ``scene.shapes[0].vertices``,
            ``scene.camera.position``), the very object the scene holds.
        direction: same shape as ``tensor`` (default: all ones, e.g. a translation along
            x + y + z for vertices; pass a [N, 3] field for a particular motion).
        spp, max_bounces, seed, threads, edge_spp, secondary_spp, secondary_stride, boundary,
            interior: as for
            ``render`` (with their bounds; max_bounces at most 16). Ctrl-C stops it as it
            stops ``render``.

    Returns:
        [H, W] float32: d(sum of the pixel's three radiance channels)/d(step).
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"scene must be a raytrace.Scene (got {type(scene).__name__})")
    params = _parameters(scene)
    where = next((w for t, w in params if t is tensor), None)
    if where is None:
        raise ValueError("tensor must be one of the scene's own tensors (e.g. scene.shapes[0].vertices)")
    if direction is None:
        direction = torch.ones_like(tensor)
    direction = v.float_tensor(direction, "direction", list(tensor.shape))
    spp, max_bounces, seed = _counts(spp, max_bounces, seed)
    if max_bounces > _MAX_GRAD_BOUNCES:
        raise ValueError(f"max_bounces must be <= {_MAX_GRAD_BOUNCES} for gradients (got {max_bounces})")
    edge_spp, primary, secondary, secondary_stride, interior = _sampling(
        scene, spp, edge_spp, secondary_spp, secondary_stride, boundary, interior)
    if primary:
        limits.check_edge_samples(edge_spp, *scene.camera.resolution)
    num_threads = _threads(threads)
    offsets, total = _grad_layout(scene)
    block, begin, end = where
    probe = torch.zeros(total, dtype=torch.float32)
    probe[offsets[block][0] + begin:offsets[block][0] + end] = direction.detach().reshape(-1).cpu()
    device = tensor.device
    if device.type == "cuda":
        _warn_cpu_backward()
    with scene._lock:
        core = scene._sync(num_threads)
        h, w = scene.camera.resolution
        ones = torch.ones((h, w, 3), dtype=torch.float32)
        vertex_grad, camera_grad = _geometry_needs(scene, [tensor])
        out = core.render_backward(ones.numpy(), spp, max_bounces, seed, edge_spp, interior, primary,
                                   secondary[0], num_threads, probe.numpy(), shape_vertex_grad=vertex_grad,
                                   camera_grad=camera_grad, secondary_edges_traced=secondary[1],
                                   secondary_stride=secondary_stride)
    return torch.from_numpy(out["probe_image"]).to(device)
