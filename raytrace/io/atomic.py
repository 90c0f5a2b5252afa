"""Atomic file writes: a file is either its old self or completely the new one.

Writers write to a temporary file in the destination's folder (same file system, so the
final ``os.replace`` is atomic), flush it to disk and rename it over the destination. A
killed process or a writer that raises leaves the destination untouched and no temporary
file behind (a killed process can leave the hidden temporary ``.NAME.XXXXXXXX.tmp.EXT``).
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

__all__ = ["atomic_write"]


@contextmanager
def atomic_write(path: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write to; on leaving the block without an
    exception, it replaces `path` (keeping an existing file's permissions); on an exception it
    is removed. A link at `path` is followed (its target is replaced). The temporary name keeps
    the extension, so writers that pick a format by extension (or append one, like
    ``numpy.save``) write the right thing."""
    # A symbolic link is written through, as open(path, "w") would: the file it points to is
    # replaced, and the link stays.
    path = Path(os.path.realpath(path))
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the data reaches the disk before the rename
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
