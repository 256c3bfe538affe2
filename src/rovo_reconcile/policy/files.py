"""What kind of file a path is, and reading a named pipe without waiting forever.

Opening a FIFO for reading blocks until a writer comes, and a device may never end, so
every file the tool reads (policies, ack files, plan files, the key file) is checked first.
Only the key file may be a pipe (`--api-key-file <(pass show atlassian)`), read with a
deadline.
"""

from __future__ import annotations

import os
import select
import stat
import time
from pathlib import Path

__all__ = ["read_pipe", "real_path", "special_kind"]

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def real_path(path: Path) -> Path:
    """`path` made absolute with its symlinks followed, as `Path.resolve` does, except that a
    symlink loop ends the walk instead of raising RuntimeError (Python before 3.13): reading
    the path then says why."""
    return Path(os.path.realpath(path))


def special_kind(path: Path) -> str | None:
    """`a named pipe (FIFO)` and the like for anything but a regular file (after symlinks);
    None for a regular file or one that cannot be looked at (reading it will say why)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def read_pipe(path: Path, *, timeout: float = 10.0, limit: int = 64 * 1024) -> bytes | None:
    """Everything a writer sends through the FIFO `path` until it closes; None when nothing
    has come within `timeout` seconds (no writer, or a stuck one)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        writer_seen = False
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if chunk:
                writer_seen = True
                chunks.append(chunk)
                if sum(map(len, chunks)) > limit:
                    return b"".join(chunks)[:limit]
            elif writer_seen:
                return b"".join(chunks)  # the writer closed: all of it has come
            else:
                time.sleep(0.05)  # no writer yet: a FIFO reads as empty until one opens it
        return None
    finally:
        os.close(fd)
