"""Builders of small files in the release formats for the format tests (written here, not by the code under test)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import annotation_builders


def st_item(**fields) -> dict[str, Any]:
    """An ST-Align record (:func:`annotation_builders.st_item`) whose default track has two keys."""
    fields.setdefault("track", {"10": [10, 10, 20, 20], "12": [11.5, 10, 20, 20]})
    return annotation_builders.st_item(**fields)


def refcoco_data(n: int = 3) -> dict[str, Any]:
    images = [
        {"file_name": f"COCO_{i}.jpg", "width": 100 + i, "height": 80, "caption": f"the dog number {i}", "id": 100 + i}
        for i in range(n)
    ]
    anns = [{"id": 100 + i, "image_id": 7, "bbox": [1, 2, 30.5, 40], "area": 1220.0} for i in range(n)]
    return {"images": images, "annotations": anns}


def sft_video(**over) -> dict[str, Any]:
    """A video training sample with bare placeholders and its values (two spans in, a span and two boxes out)."""
    rec = {
        "id": "src/stvg/v1/0",
        "video": "videos/000001.mp4",
        "conversations": [
            {"from": "human", "value": "<video>\nWhere is the dog during  {<TEMP-INPUT><TEMP-INPUT>} ?"},
            {
                "from": "gpt",
                "value": "During the span of  {<TEMP-OUTPUT><TEMP-OUTPUT>} . Object bounding box: <TEMP-OUTPUT>: "
                " [<WIDTH-OUTPUT><HEIGHT-OUTPUT><WIDTH-OUTPUT><HEIGHT-OUTPUT>]",
            },
        ],
        "variables": {
            "temporal_input_locations": [0.2, 0.6],
            "temporal_output_locations": [0.25, 0.5, 0.3],
            "spatial_height_input_locations": [],
            "spatial_height_output_locations": [0.2, 0.7],
            "spatial_width_input_locations": [],
            "spatial_width_output_locations": [0.1, 0.5],
        },
        "meta": {"split": [0, 23], "task": "stvg"},
    }
    rec.update(over)
    return rec


def sft_image(**over) -> dict[str, Any]:
    rec = {
        "id": 7,
        "image": "images/000002.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhere can I find the red ball in this image?"},
            {"from": "gpt", "value": " [<WIDTH-OUTPUT><HEIGHT-OUTPUT><WIDTH-OUTPUT><HEIGHT-OUTPUT>]"},
        ],
        "variables": {
            "temporal_input_locations": [],
            "temporal_output_locations": [],
            "spatial_height_input_locations": [],
            "spatial_height_output_locations": [0.25, 0.75],
            "spatial_width_input_locations": [],
            "spatial_width_output_locations": [0.125, 0.5],
        },
        "meta": {"task": "rec"},
    }
    rec.update(over)
    return rec


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def build():
    """The builders above (conftest modules are not importable by name)."""
    return SimpleNamespace(
        st_item=st_item,
        refcoco_data=refcoco_data,
        sft_video=sft_video,
        sft_image=sft_image,
        write_json=write_json,
        write_jsonl=write_jsonl,
    )
