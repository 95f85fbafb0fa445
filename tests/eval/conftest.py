"""Builders of tiny benchmark files in the released formats, and a predictions writer."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import pytest

from annotation_builders import st_item  # noqa: F401 - the tests import it from here


def box_tokens(x1: int, y1: int, x2: int, y2: int) -> str:
    return f"[<WIDTH-{x1:03d}><HEIGHT-{y1:03d}><WIDTH-{x2:03d}><HEIGHT-{y2:03d}>]"


def refcoco_file(path: Path, entries: list[tuple[float, float, list[float], str]]) -> Path:
    """entries: (width, height, bbox xywh, caption)."""
    images, anns = [], []
    for i, (w, h, bbox, cap) in enumerate(entries):
        images.append({"id": 100 + i, "file_name": f"COCO_{i}.jpg", "width": w, "height": h, "caption": cap})
        anns.append({"id": 100 + i, "image_id": 7, "bbox": bbox})
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def write_predictions(path: Path, answers: Mapping[int, str]) -> Path:
    with path.open("w") as fh:
        for i, a in answers.items():
            fh.write(json.dumps({"id": i, "answer": a}) + "\n")
    return path


@pytest.fixture
def files():
    """The builders above, for tests (conftest modules are not importable by name)."""
    return SimpleNamespace(
        box_tokens=box_tokens,
        st_item=st_item,
        refcoco_file=refcoco_file,
        write_json=write_json,
        write_predictions=write_predictions,
    )
