"""Files that are never half written: what the lab's recorder, checkpoints and calibration rely on.

A reader (another process, or this one after a crash) must find either the old content or the
new, never a mixture. The rule: write the new content to a temporary file *in the same folder*,
make it durable (``fsync``), then ``os.replace`` it over the old name (one step on POSIX file
systems), then make the folder's new entry durable too. A crash before the replace leaves the old
file and a stray temporary; after it, the new file.
"""
from __future__ import annotations

import os
import pathlib


def fsync_folder(folder: pathlib.Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(temporary: pathlib.Path, final: pathlib.Path, fsync: bool) -> None:
    """Put a finished file in place in one step (readers see the old file or the new one, never half)."""
    if fsync:
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(temporary, final)
    if fsync:
        fsync_folder(pathlib.Path(final).parent)


def write_atomically(path, data: bytes, fsync: bool = True) -> pathlib.Path:
    """Write ``data`` to ``path`` so that ``path`` holds the old content or all of the new, whatever
    happens (a crash, a full disk); a failed write leaves no temporary file behind and raises."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
        replace_atomically(temporary, path, fsync)
    finally:
        temporary.unlink(missing_ok=True)
    return path
