"""Atomic file writes: write to a temporary file in the target folder, rename on success."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__: list[str] = []


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success give it the usual permissions and rename it.

    On any error (or interruption) the temporary file is removed and ``path`` is left untouched, so
    a file that exists is always complete.

    Parameters
    ----------
    path : path-like
        The file to write; its folder is created if needed.

    Yields
    ------
    Path
        The temporary file (hidden, in the same folder) to write to.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files; use what open() would
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
