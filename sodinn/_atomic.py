"""Safe outputs: check a location before any work, write files atomically, leave nothing behind on failure.

- :func:`check_writable_output`: before any work, refuse an output that cannot be written (a file
  where a folder is wanted or the reverse, a missing permission, a read-only file system), with a
  message that names the caller's path and the setting that chooses another;
- :func:`atomic_path`: write to a temporary file in the target folder, rename on success;
- :func:`output_folder`: a context manager that creates an output folder for the duration of a run
  and, if the run fails or is interrupted, removes what the run created (unless it holds the
  non-empty resume state of a resumable run).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__: list[str] = []

_KINDS = ("folder", "file")


class OutputError(OSError):
    """An output location that cannot be written; the message names the path and the setting to change.

    ``str(err)`` is the message alone (no ``[Errno …]`` prefix).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _reason(err: OSError) -> str:
    """Return a short reason for an OS error, without the errno prefix or a temporary file's name."""
    if isinstance(err, PermissionError) or err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if err.errno == errno.EROFS:
        return "read-only file system"
    if err.errno == errno.ENOSPC:
        return "no space left on the device"
    return (err.strerror or type(err).__name__).lower()


def _nearest_existing(path: Path) -> Path:
    """Return the path itself if it exists, else its nearest existing ancestor."""
    here = path
    while not here.exists() and here != here.parent:
        here = here.parent
    return here


def check_writable_output(path: str | os.PathLike[str], *, kind: str = "folder", name: str = "output") -> Path:
    """Check, before any work, that an output folder or file can be written at ``path``.

    Nothing is created: the folder (and its missing parents) are made by the run. The checks are: a
    folder output is not an existing file, a file output is not an existing folder, no part of the
    path is a file, and the folder that would receive it is writable (``os.access`` and a probe file,
    removed at once, which also catches read-only file systems).

    Parameters
    ----------
    path : path-like
        The output folder or file, as the caller gave it.
    kind : {"folder", "file"}
        What ``path`` is meant to be.
    name : str
        The setting that chooses the output (a parameter name in Python, a flag on the command
        line), named in the message.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        (an :class:`OSError`) "cannot write PATH: REASON; choose another NAME".
    ValueError
        If ``kind`` is not ``"folder"`` or ``"file"``.
    """
    if kind not in _KINDS:
        msg = f"kind must be one of {_KINDS}; got {kind!r}"
        raise ValueError(msg)
    target = Path(path)

    def refuse(reason: str) -> OutputError:
        return OutputError(f"cannot write {target}: {reason}; choose another {name}")

    if kind == "folder" and target.exists() and not target.is_dir():
        raise refuse("it is a file, not a folder")
    if kind == "file" and target.is_dir():
        raise refuse("it is a folder, not a file")
    anchor = _nearest_existing(target if kind == "folder" else target.parent)
    if not anchor.is_dir():
        raise refuse(f"{anchor} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        where = "" if anchor == target else f" in {anchor}"
        raise refuse(f"permission denied{where}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".sodinn-probe.", dir=anchor)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        where = "" if anchor == target else f" ({anchor})"
        raise refuse(f"{_reason(err)}{where}") from None
    if kind == "file" and target.exists() and not os.access(target, os.W_OK):
        raise refuse("the file exists and is read-only")
    return target


def _holds_a_file(path: Path) -> bool:
    """Tell whether ``path`` is a non-empty file or a folder holding one (at any depth)."""
    if path.is_file():
        return path.stat().st_size > 0
    if path.is_dir():
        return any(p.is_file() for p in path.rglob("*"))
    return False


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def output_folder(path: str | os.PathLike[str], *, resume_state: Sequence[str] = ()) -> Iterator[Path]:
    """Create an output folder for the duration of a run; on failure remove what the run created.

    If the body raises (any exception, ``KeyboardInterrupt`` included), the entries the run added to
    the folder are removed, then the folder itself and the parents made for it if they are empty, so
    a failed run leaves nothing new on disk. What existed before is not touched. A resumable run names
    its resume state: if one of those entries holds a file, everything is kept for the next run to
    resume from.

    Parameters
    ----------
    path : path-like
        The output folder (created, with its parents, if missing).
    resume_state : sequence of str
        Names of entries of the folder that let an interrupted run resume (e.g. ``"samples.h5.parts"``).

    Yields
    ------
    Path
        The folder.
    """
    target = Path(path)
    created: list[Path] = []  # the folders this run makes, deepest last
    here = target
    while not here.exists() and here != here.parent:
        created.insert(0, here)
        here = here.parent
    before = set(os.listdir(target)) if target.is_dir() else set()
    target.mkdir(parents=True, exist_ok=True)
    try:
        yield target
    except BaseException:
        if not any(_holds_a_file(target / name) for name in resume_state):
            with contextlib.suppress(OSError):
                for entry in set(os.listdir(target)) - before:
                    _remove(target / entry)
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
        raise


def _rename_error(err: OSError, tmp: str, target: Path) -> OSError:
    """Return an error about the temporary file, reworded to name the caller's file."""
    if err.filename in (tmp, Path(tmp)) or err.filename2 in (tmp, Path(tmp)) or tmp in str(err):
        return OutputError(f"cannot write {target}: {_reason(err)}")
    return err


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success give it the usual permissions and rename it.

    On any error (or interruption) the temporary file is removed and ``path`` is left untouched, so
    a file that exists is always complete. An error about the temporary file is reported as an
    :class:`OutputError` naming ``path``.

    Parameters
    ----------
    path : path-like
        The file to write; its folder is created if needed.

    Yields
    ------
    Path
        The temporary file (hidden, in the same folder) to write to.

    Raises
    ------
    OutputError
        If the folder cannot be made, the temporary file cannot be created or written, or the
        rename fails (e.g. ``path`` is a folder).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise OutputError(f"cannot write {target}: {_reason(err)}") from err
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files; use what open() would
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        renamed = _rename_error(err, tmp, target)
        if renamed is err:
            raise
        raise renamed from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
