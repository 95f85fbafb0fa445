"""Builders of release-format annotation records shared by the eval and data tests (written here, not by the code under test)."""

from __future__ import annotations

from typing import Any, Mapping


def st_item(
    *,
    split=(0, 198),
    width=198,
    height=99,
    s=20,
    e=100,
    track: Mapping[str, list[float]] | None = None,
    boxes: Mapping[str, list[float]] | None = None,
    human="<video>\nAt which time interval can we see a dog running? ",
    gpt="During {<s>,<e>}. Object bounding box: <bboxes>",
    video="clips/a.mp4",
) -> dict[str, Any]:
    spatial: dict[str, Any] = {"<bboxes>": dict(track or {"10": [10, 10, 20, 20]})}
    spatial.update(boxes or {})
    return {
        "video_path": video,
        "meta": {
            "width": width,
            "height": height,
            "split": list(split),
            "time_token": {"<s>": s, "<e>": e},
            "spatial_token": spatial,
        },
        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}],
    }
