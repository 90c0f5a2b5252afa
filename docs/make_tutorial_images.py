"""Copies small versions of the tutorials' pictures into docs/images/tutorials/.

Run each tutorial in full first (they write into tutorials/output/<name>/), then:

    python docs/make_tutorial_images.py

For each tutorial it writes <name>_comparison.png (target | initial | final), <name>.gif (the
optimisation, at most 24 frames, at most 256 pixels wide), <name>_loss.png and, where the
run wrote one, the recovered texture or environment map (enlarged 8x), and prints the
total size (the README budget is 2 MB for all of them) and each run's result.json numbers.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tutorials" / "output"
DEST = ROOT / "docs" / "images" / "tutorials"
NAMES = ("01_single_triangle", "02_pose_estimation", "03_camera_estimation", "04_light_intensity",
         "05_materials", "06_environment_light", "10_distributed_reconstruction")  # the runs docs/tutorials.md shows
MAX_FRAMES = 24
MAX_WIDTH = 256


def shrink(frame: np.ndarray, max_width: int) -> np.ndarray:
    """Box-filters a uint8 [H, W, 3] frame by an integer factor to at most max_width pixels wide."""
    f = int(np.ceil(frame.shape[1] / max_width))
    if f <= 1:
        return frame
    h, w = (frame.shape[0] // f) * f, (frame.shape[1] // f) * f
    return frame[:h, :w, :3].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3)).round().astype(np.uint8)


def main() -> None:
    import imageio.v2 as imageio

    DEST.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in NAMES:
        run = SOURCE / name
        if not (run / "result.json").is_file():
            print(f"{name}: no finished run in {run}, skipped")
            continue
        shutil.copyfile(run / "comparison.png", DEST / f"{name}_comparison.png")
        shutil.copyfile(run / "loss.png", DEST / f"{name}_loss.png")
        frames = [np.asarray(f)[..., :3] for f in imageio.mimread(run / "optimisation.gif")]
        keep = np.unique(np.linspace(0, len(frames) - 1, min(MAX_FRAMES, len(frames))).round().astype(int))
        small = [shrink(frames[i], MAX_WIDTH) for i in keep]
        imageio.mimsave(DEST / f"{name}.gif", small + [small[-1]] * 4, duration=0.15, loop=0)
        extras = []
        for extra in ("textures", "envmaps"):  # the recovered parameters as pictures, enlarged 8x
            if (run / f"{extra}.png").is_file():
                im = imageio.imread(run / f"{extra}.png")
                imageio.imwrite(DEST / f"{name}_{extra}.png", im.repeat(8, axis=0).repeat(8, axis=1))
                extras.append(f"_{extra}.png")
        size = sum((DEST / f"{name}{s}").stat().st_size
                   for s in ["_comparison.png", "_loss.png", ".gif"] + extras)
        total += size
        result = json.loads((run / "result.json").read_text())
        print(f"{name}: {size / 1024:.0f} KiB; {json.dumps({k: v for k, v in result.items() if k not in ('out', 'history')})}")
    print(f"total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
