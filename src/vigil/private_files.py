"""Files only Vigil's own user may read: the data directory (0700) and what holds secrets (0600)."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) and make it 0700. A directory Vigil does not own (a volume
    mounted for it) keeps its mode, with a warning."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 == 0o700:
        return
    try:
        path.chmod(0o700)
    except PermissionError:
        log.warning("cannot make the directory private (0700)", extra={"path": str(path)})


def private_file(path: Path) -> None:
    """Create `path` empty if missing, and make it 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    """Make `path` 0600 if it exists."""
    with contextlib.suppress(FileNotFoundError):
        path.chmod(0o600)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable and writable by its owner only, even if it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
