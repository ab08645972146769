"""Files that hold patients' data (backups, exports, rows to fix): readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path


def new_private_file(path: Path) -> int:
    """A new file at `path` only its owner may read (0600), open for writing (the descriptor); one already there
    (from an earlier or killed run) is replaced, not reused with its old mode, and a link planted there is not
    followed."""
    path.unlink(missing_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
