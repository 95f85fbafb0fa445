"""Output paths of pictures and videos: checked before any work is done."""

from __future__ import annotations

import os
from pathlib import Path


def check_output_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` must be a file path in an existing folder we may write to (not a folder itself).

    ``what`` names the argument in the error (``"picture path"``, ``"out_path"``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{what} {p} is a folder; give a file name")
    parent = p.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{what} {p}: its folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise PermissionError(f"{what} {p} is not writable")
    return p
