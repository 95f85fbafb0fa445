"""Shared test fixtures: the parity fixture folder and small helpers.

Tests never download anything: models and data are either the parity
fixtures (``LLAVA_ST_PARITY_DIR``, default ``../shared/parity`` next to the
checkout) or tiny ones the tests build themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def parity_dir() -> Path:
    """The parity fixture folder: ``$LLAVA_ST_PARITY_DIR`` or ``../shared/parity``."""
    env = os.environ.get("LLAVA_ST_PARITY_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "parity")


def parity_cases() -> list[Path]:
    """Every case folder (a folder holding ``case.json``) of the parity fixture set."""
    root = parity_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/case.json"))


@pytest.fixture(scope="session")
def parity_root() -> Path:
    root = parity_dir()
    if not (root / "model" / "config.json").is_file():
        pytest.fail(
            f"parity fixtures not found at {root}; set LLAVA_ST_PARITY_DIR to the folder holding model/ and the cases"
        )
    return root
