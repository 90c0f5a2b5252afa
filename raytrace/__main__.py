"""The command line: ``python -m raytrace render SCENE -o OUT``.

    python -m raytrace render scenes/cornell_box -o out.png
    python -m raytrace render scenes/cornell_box/scene.json -o out.exr --spp 256 --seed 3
    python -m raytrace render scenes/mitsuba_cbox/scene.xml -o out.png -D resolution=64

SCENE is a raytrace JSON scene (docs/scene_format.md) or a Mitsuba 3 XML scene, read by
``rt.load_mitsuba`` (docs/mesh_and_mitsuba.md): its sampler's sample_count and integrator's
max_depth are the defaults of --spp and --max-bounces, and what the loader skipped is listed on
stderr before rendering.

The image is rendered in passes of at most PASS_SPP samples per pixel (a progress bar counts
them); pass k uses the seed ``(seed * 1000003 + k) mod 2^63`` and the passes are averaged,
weighted by their sample counts, so the result depends only on the arguments.

Nothing is lost to a bad output path: before the scene is read, the output must be writable
(an existing folder on its path must be writable; nothing is created); after it is read, the
output must not be one of the files the scene read (its scene file, textures, meshes,
includes, arrays); only then is the output's folder created and the image rendered. The image
is written atomically (a temporary file in its folder, then renamed). Files a scene names must
lie inside its folder unless --allow-path or --allow-any-path says otherwise
(docs/limits.md).

Counts have the bounds of rt.render (docs/limits.md): --spp and a scene file's spp at
most 2^20, --max-bounces at most 1024, --seed below 2^63, --threads at most 256, each side of
--resolution at most 16384 and H x W at most 2^26. Ctrl-C stops the render within about 0.1 s
at any resolution: the command prints "interrupted", writes nothing and exits with status 130.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

PASS_SPP = 8  # samples per pixel in one pass (the progress bar's step)
DEFAULT_SPP = 16  # when neither --spp nor the scene file's render.spp is given
DEFAULT_MAX_BOUNCES = 4  # when neither --max-bounces nor the scene file's render.max_bounces is
PROG = "python -m raytrace"


SCENE_FOLDER_FILES = ("scene.json", "scene.xml")  # looked for, in this order, in a folder


class UsageError(Exception):
    """A problem with the command's arguments or inputs: reported in one line, exit code 2."""


def parse_resolution(text: str) -> Tuple[int, int]:
    """'HxW' (e.g. '240x320': 240 rows, 320 columns) or 'N' (N x N) -> (H, W)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not m:
        raise UsageError(f"--resolution must be HEIGHTxWIDTH, e.g. 240x320 (got {text!r})")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) is not None else h
    if h <= 0 or w <= 0:
        raise UsageError(f"--resolution must be positive (got {text!r})")
    from . import _limits as limits  # noqa: PLC0415
    if max(h, w) > limits.MAX_RESOLUTION:
        raise UsageError(f"--resolution: each side must be at most {limits.MAX_RESOLUTION} (got {text!r})")
    if h * w > limits.MAX_PIXELS:
        raise UsageError(f"--resolution: HEIGHT x WIDTH must be at most {limits.MAX_PIXELS} pixels "
                         f"(got {text!r})")
    return h, w


def split_passes(spp: int, pass_spp: int = PASS_SPP) -> List[int]:
    """spp -> samples per pass, e.g. 20 -> [8, 8, 4]."""
    return [pass_spp] * (spp // pass_spp) + ([spp % pass_spp] if spp % pass_spp else [])


def pass_seed(seed: int, k: int) -> int:
    """The seed of pass k: deterministic in (seed, k), distinct across k."""
    return (seed * 1000003 + k) % (2 ** 63)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="raytrace: a differentiable Monte Carlo path tracer for PyTorch.",
        epilog=f"example:\n  {PROG} render scenes/cornell_box -o out.png\n\n"
               f"Run '{PROG} render --help' for the render command's options.\n"
               "Scene files are described in docs/scene_format.md (JSON) and\n"
               "docs/mesh_and_mitsuba.md (Mitsuba 3 XML).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    render = sub.add_parser(
        "render", help="render a scene file to an image",
        description="Render a scene file to an image (PNG/JPEG: sRGB 8-bit; EXR: linear float32).",
        epilog="examples:\n  python -m raytrace render scenes/cornell_box -o out.png --spp 64\n"
               "  python -m raytrace render scenes/mitsuba_cbox/scene.xml -o out.png "
               "-D resolution=64\n\n"
               f"The image is rendered in passes of at most {PASS_SPP} spp (the progress bar's "
               "steps);\npass k is seeded with (seed * 1000003 + k) mod 2^63 and the passes are "
               "averaged,\nso the output depends only on the arguments (not on --threads).\n\n"
               "Mitsuba 3 XML scenes (.xml) are read by rt.load_mitsuba, which converts the "
               "common subset:\nthe sampler's sample_count and the integrator's max_depth - 1 "
               "are the defaults of --spp\nand --max-bounces, the film's width/height that of "
               "--resolution, and every element or\nparameter the loader skipped is listed on "
               "stderr (unless -q) before rendering.\n"
               "Scene files are described in docs/scene_format.md (JSON) and "
               "docs/mesh_and_mitsuba.md (XML).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    render.add_argument("scene", metavar="SCENE",
                        help="a scene file: raytrace .json or Mitsuba 3 .xml; or a folder "
                             "containing scene.json (else scene.xml)")
    render.add_argument("-o", "--output", metavar="OUT", required=True,
                        help="output image; the extension picks the format: .png, .jpg/.jpeg "
                             "(sRGB, 8 bit) or .exr (linear float32; needs the OpenEXR package)")
    render.add_argument("--spp", type=int, default=None, metavar="N",
                        help="samples per pixel (default: the scene file's render.spp, or an "
                             "XML scene's sampler sample_count, else "
                             f"{DEFAULT_SPP})")
    render.add_argument("--max-bounces", type=int, default=None, metavar="B",
                        help="path length: 0 shows emitters only, 1 adds direct light, more add "
                             "indirect light (default: the scene file's render.max_bounces, "
                             "or an XML scene's integrator max_depth - 1, else "
                             f"{DEFAULT_MAX_BOUNCES})")
    render.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed, >= 0 (default: 0)")
    render.add_argument("--resolution", metavar="HxW", default=None,
                        help="image size as HEIGHTxWIDTH, e.g. 240x320, or N for NxN (default: "
                             "the scene's camera resolution; an XML scene's film width/height)")
    render.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE",
                        help="XML scenes only: a value for the scene's $NAME parameter, "
                             "overriding its <default> (repeatable)")
    render.add_argument("--threads", type=int, default=None, metavar="T",
                        help="worker threads (default: RT_NUM_THREADS or all cores)")
    render.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                        help="let the scene read files under DIR too (repeatable); by default "
                             "every file a scene names must lie inside the scene file's folder")
    render.add_argument("--allow-any-path", action="store_true",
                        help="let the scene read files anywhere (only for scenes you trust)")
    render.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar, no summary line and no list of what an XML "
                             "scene's loader skipped")
    return parser


def parse_defines(defines: Sequence[str]) -> Dict[str, str]:
    """['spp=4', 'resolution=64'] (the -D options) -> {'spp': '4', 'resolution': '64'}."""
    values: Dict[str, str] = {}
    for text in defines:
        name, eq, value = text.partition("=")
        name = name.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"-D must be NAME=VALUE with NAME a parameter name, e.g. -D spp=4 "
                             f"(got {text!r})")
        values[name] = value.strip()
    return values


def scene_file_kind(path: Path) -> Tuple[Path, str]:
    """A SCENE argument -> (the file, "json" or "xml"). A folder stands for its scene.json, or
    its scene.xml when it has no scene.json; a file's kind is its extension (.xml is Mitsuba,
    anything else is read as JSON)."""
    if path.is_dir():
        for name in SCENE_FOLDER_FILES:
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise UsageError(f"{path}: folder has no {' or '.join(SCENE_FOLDER_FILES)}")
    return path, ("xml" if path.suffix.lower() == ".xml" else "json")


def load_scene_file(scene_arg: str, resolution: Optional[Tuple[int, int]],
                    defines: Dict[str, str], allowed_paths: Sequence[str] = (),
                    allow_any_path: bool = False,
                    files_read: Optional[List[str]] = None) -> Tuple[Any, Dict[str, int], List[str]]:
    """Reads the SCENE argument: a JSON scene (raytrace.io.scenes) or a Mitsuba 3 XML scene
    (rt.load_mitsuba).

    Args:
        scene_arg: the SCENE argument: a .json or .xml file, or a folder (see scene_file_kind).
        resolution: (H, W) in pixels instead of the file's, or None.
        defines: values of the XML scene's $name parameters (from -D); must be empty for JSON.
        allowed_paths, allow_any_path: where the scene may read files besides its folder
            (--allow-path, --allow-any-path).
        files_read: a list that receives the real path of every file the scene read.

    Returns:
        (scene, settings, skipped): settings holds "spp" and/or "max_bounces" where the file
        gives them; skipped lists what the Mitsuba loader skipped ("file: line N: ..."; empty
        for JSON scenes).

    Raises:
        UsageError: a missing, malformed or unsupported scene file, or -D with a JSON scene.
    """
    path = Path(scene_arg)
    file, kind = scene_file_kind(path)
    files_read = files_read if files_read is not None else []
    policy = {"allowed_paths": list(allowed_paths), "allow_any_path": allow_any_path}
    if kind == "json":
        if defines:
            raise UsageError(f"-D sets parameters of Mitsuba XML scenes; {scene_arg} is not one")
        from .io.scenes import read_scene  # noqa: PLC0415
        try:
            scene, settings = read_scene(scene_arg, resolution=resolution, files_read=files_read,
                                         **policy)
        except (ValueError, TypeError, OSError) as e:
            raise UsageError(str(e)) from None
        return scene, settings, []

    from .io.mitsuba import load_mitsuba  # noqa: PLC0415
    shown = str(file)
    if not file.exists():
        raise UsageError(f"{shown}: no such file or folder")
    try:
        scene, report = load_mitsuba(file, params=defines, resolution=resolution,
                                     return_report=True, warn=False, **policy)
    except (ValueError, TypeError, OSError) as e:
        raise UsageError(str(e)) from None
    files_read.extend(f for f in report.files if f not in files_read)
    if scene.camera is None:
        raise UsageError(f"{shown}: the scene has no supported sensor (perspective, thinlens or "
                         "orthographic), so there is nothing to render")
    settings: Dict[str, int] = {}
    if report.spp is not None:
        settings["spp"] = report.spp
    if report.max_bounces is not None:
        settings["max_bounces"] = report.max_bounces
    if report.warnings:  # renders black or empty: say so even with --quiet
        for msg in report.warnings:
            print(f"{PROG}: warning: {' '.join(msg.split())}", file=sys.stderr)
    return scene, settings, list(report.skipped)


def check_output(out: Path) -> None:
    """Refuses an output path that cannot be written, before the scene is read or rendered;
    creates nothing. The nearest existing folder on the output's path must be a writable
    folder (the missing ones are created after the scene is read), and an existing output
    must be a writable file."""
    shown = str(out)
    if out.is_dir():
        raise UsageError(f"cannot write {shown!r}: it is a folder")
    if os.path.lexists(out) and not os.access(out, os.W_OK):
        raise UsageError(f"cannot write {shown!r}: the file is not writable")
    folder = out.absolute().parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {shown!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {shown!r}: the folder {str(folder)!r} is not writable")


def check_not_an_input(out: Path, files_read: Sequence[str]) -> None:
    """Refuses an output that is (after symlinks, or as a hard link) a file the scene read."""
    real = os.path.realpath(out)
    for f in files_read:
        same = real == f
        if not same and os.path.exists(out) and os.path.exists(f):
            try:
                same = os.path.samefile(out, f)
            except OSError:
                same = False
        if same:
            raise UsageError(f"-o {str(out)!r} is {f!r}, a file the scene reads; writing the image "
                             "there would destroy the scene. Choose another output file")


def cmd_render(args: argparse.Namespace) -> int:
    # Everything about the arguments is checked before any rendering starts.
    from .io.images import _image_format, imwrite  # noqa: PLC0415

    from . import _limits as limits  # noqa: PLC0415

    resolution = parse_resolution(args.resolution) if args.resolution is not None else None
    for name, value, minimum, maximum in (("--spp", args.spp, 1, limits.MAX_SPP),
                                          ("--max-bounces", args.max_bounces, 0, limits.MAX_BOUNCES),
                                          ("--seed", args.seed, 0, limits.MAX_SEED),
                                          ("--threads", args.threads, 1, limits.MAX_THREADS)):
        if value is not None and value < minimum:
            raise UsageError(f"{name} must be >= {minimum} (got {value})")
        if value is not None and value > maximum:
            raise UsageError(f"{name} must be <= {maximum} (got {value})")
    out = Path(args.output)
    try:
        fmt = _image_format(out, "output")
    except ValueError as e:
        raise UsageError(str(e)) from None
    if fmt == "exr":
        from .io.images import exr_supported  # noqa: PLC0415
        if not exr_supported():
            raise UsageError("writing .exr needs the OpenEXR package: pip install \"OpenEXR>=3.3\"")
    check_output(out)

    files_read: List[str] = []
    scene, settings, skipped = load_scene_file(args.scene, resolution, parse_defines(args.define),
                                               args.allow_path, args.allow_any_path, files_read)
    check_not_an_input(out, files_read)
    if out.parent != Path("") and not out.parent.is_dir():  # only now that the scene is read
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the output folder {str(out.parent)!r}: {e}") from None
    if skipped and not args.quiet:
        print(f"{PROG}: the Mitsuba loader skipped {len(skipped)} "
              f"{'thing' if len(skipped) == 1 else 'things'} (docs/mesh_and_mitsuba.md):",
              file=sys.stderr)
        for msg in skipped:
            print(f"  skipped: {' '.join(msg.split())}", file=sys.stderr)
    spp = args.spp if args.spp is not None else settings.get("spp", DEFAULT_SPP)
    max_bounces = args.max_bounces if args.max_bounces is not None else \
        settings.get("max_bounces", DEFAULT_MAX_BOUNCES)
    for name, value, maximum in (("spp", spp, limits.MAX_SPP), ("max_bounces", max_bounces, limits.MAX_BOUNCES)):
        if value > maximum:
            raise UsageError(f"{args.scene}: the scene's {name} must be <= {maximum} (got {value}); "
                             f"pass --{name.replace('_', '-')}")

    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from .render import render  # noqa: PLC0415

    h, w = scene.camera.resolution
    start = time.perf_counter()
    total: Optional[torch.Tensor] = None
    with tqdm(total=spp, unit="spp", desc=f"rendering {h}x{w}", disable=args.quiet,
              file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        for k, n in enumerate(split_passes(spp)):
            img = render(scene, spp=n, max_bounces=max_bounces, seed=pass_seed(args.seed, k),
                         threads=args.threads)
            total = img.double() * n if total is None else total + img.double() * n
            bar.update(n)
    image = (total / spp).float()
    elapsed = time.perf_counter() - start
    try:
        imwrite(image, out)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot write {str(out)!r}: {e}") from None
    if not args.quiet:
        print(f"wrote {out} ({h}x{w}, {spp} spp, {max_bounces} bounces) in {elapsed:.2f} s")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            return cmd_render(args)
    except UsageError as e:
        print(f"{PROG}: error: {' '.join(str(e).split(chr(10)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
