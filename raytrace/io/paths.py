"""Which files a scene file may make raytrace read, and the record of what it read.

A scene downloaded from the internet names the files it needs (meshes, textures, ``.npz``
arrays, Mitsuba ``<include>``s). Unchecked, ``{"texture": "/home/you/.ssh/id_rsa.png"}``,
``"../../secret.exr"``, a symlink planted in the scene's folder or ``<include
filename="/etc/passwd"/>`` would read files anywhere. The rule:

    Every file a scene refers to must resolve, after following symlinks
    (``os.path.realpath``), to a path inside the folder of the scene file, or inside one of
    the caller's ``allowed_paths``; ``allow_any_path=True`` lifts the rule.

A refusal is a ValueError naming the scene file, the entry (JSON path or XML line), the name
as written and where it resolves. The check is made before the file is opened (and whether
the file exists), so a refused scene learns nothing about files outside its folder. The scene
file itself is never refused: the caller chose it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

from .._validation import boolean
from .limits import Budget, Limits

__all__ = ["FileAccess"]

PathLike = Union[str, os.PathLike]


def check_policy_args(allowed_paths: Optional[Iterable[PathLike]], allow_any_path: bool) -> List[str]:
    """Checks the ``allowed_paths`` / ``allow_any_path`` arguments of a loader; returns the
    allowed paths as absolute real paths."""
    allow_any_path = boolean(allow_any_path, "allow_any_path")
    if allowed_paths is None:
        return []
    if isinstance(allowed_paths, (str, bytes, os.PathLike)):
        raise TypeError("allowed_paths must be a list of folders or files (got a single path; "
                        f"write allowed_paths=[{str(allowed_paths)!r}])")
    try:
        items = list(allowed_paths)
    except TypeError:
        raise TypeError(f"allowed_paths must be a list of folders or files (got "
                        f"{type(allowed_paths).__name__})") from None
    out = []
    for i, p in enumerate(items):
        if not isinstance(p, (str, os.PathLike)) or not str(p):
            raise TypeError(f"allowed_paths[{i}] must be a non-empty str or os.PathLike (got {p!r})")
        out.append(os.path.realpath(p))
    return out


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class FileAccess:
    """One load of a scene file: where its files may lie, its size limits and budget, and the
    files it read (real paths, in reading order, each once).

    Args:
        scene_file: the scene file (JSON or XML) as opened.
        shown: its name as the caller wrote it (used in messages).
        allowed_paths: folders (or files) outside the scene's folder that may be read.
        allow_any_path: read files anywhere.
        limits: the size limits (None: raytrace.io.limits.DEFAULT_LIMITS).
    """

    def __init__(self, scene_file: Path, shown: str, allowed_paths: Sequence[str] = (),
                 allow_any_path: bool = False, limits: Optional[Limits] = None):
        self.shown = shown
        self.folder = os.path.realpath(Path(scene_file).parent)
        self.roots = [self.folder] + list(allowed_paths)
        self.allow_any_path = allow_any_path
        self.budget = Budget(limits)
        self.files_read: List[str] = []

    def refused(self, file: Path) -> Optional[str]:
        """None when `file` may be read; else the real path it resolves to (refused)."""
        real = os.path.realpath(file)
        if self.allow_any_path or any(_inside(real, root) for root in self.roots):
            return None
        return real

    def refusal(self, name: str, real: str) -> str:
        """The message of a refused file name (after the file and entry of the caller)."""
        where = f"the scene's folder {self.folder!r}"
        if len(self.roots) > 1:
            where += " and the allowed paths " + ", ".join(repr(r) for r in self.roots[1:])
        return (f"{name!r} resolves to {real!r}, outside {where}; files elsewhere are read only "
                "with allowed_paths=[...] or allow_any_path=True (command line: --allow-path "
                "DIR or --allow-any-path)")

    def record(self, file: Path) -> None:
        real = os.path.realpath(file)
        if real not in self.files_read:
            self.files_read.append(real)
