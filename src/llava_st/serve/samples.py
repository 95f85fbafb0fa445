"""Sample media for the web page: shipped with the package, or rendered by ST-Synth at startup.

:func:`find_samples` returns the samples shipped inside the package (any
video or image under one of :data:`SAMPLE_FOLDERS`, with hints from the
folder's ``demo.json``, the embedded model's demo questions, or from a
``<name>.json`` beside it); when there are none it renders a short ST-Synth
video and image into a folder (:func:`render_samples`, well under a second),
in the world of the embedded model (preset ``embedded``: 96x96 frames, 6 s at
8 fps). Each sample carries hints for the page: a question, the phrase of its
target object for grounding and tracking, and a start time and box for
captioning an event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from ..errors import LlavaSTError
from ..media.load import is_image_file

#: Package folders searched for shipped samples (relative to the ``llava_st`` package).
SAMPLE_FOLDERS = ("assets/samples", "embedded/samples", "samples")
_VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


@dataclass(frozen=True)
class Sample:
    """A sample the page offers: ``hints`` maps ``question``, ``query`` (tracking, grounding),
    ``expression`` (referring), ``start`` (seconds) and ``box`` (``x1, y1, x2, y2`` pixels) to text."""

    name: str
    path: Path
    kind: Literal["image", "video"]
    hints: dict[str, str] = field(default_factory=dict)


def _hints_beside(path: Path) -> dict[str, str]:
    side = path.with_suffix(".json")
    if side.name == "demo.json" or not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError):
        return {}
    hints = data.get("hints", data) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in hints.items() if isinstance(v, (str, int, float))}


def _demo_hints(folder: Path) -> dict[str, dict[str, str]]:
    """Hints per file name from the folder's ``demo.json`` (the embedded model's demo questions:
    ``task``, ``media`` and the task's arguments, times and boxes normalised), in seconds and
    pixels of the file."""
    demo = folder / "demo.json"
    try:
        questions = json.loads(demo.read_text()).get("questions", [])
    except (OSError, ValueError, AttributeError):
        return {}
    hints: dict[str, dict[str, str]] = {}
    for q in questions if isinstance(questions, list) else []:
        try:
            path = folder / q["media"]
            h = hints.setdefault(q["media"], {})
            if q["task"] in ("tvg", "stvg", "svg") and "query" in q:
                h.setdefault("query", str(q["query"]))
            elif q["task"] == "rec" and "query" in q:
                h.setdefault("expression", str(q["query"]))
            elif q["task"] == "elc":
                width, height, last_s = _geometry(path)
                h["start"] = f"{float(q['start']) * last_s:.3g}"
                x1, y1, x2, y2 = (float(v) for v in q["box"])
                h["box"] = ", ".join(f"{v:g}" for v in (round(x1 * width, 1), round(y1 * height, 1),
                                                         round(x2 * width, 1), round(y2 * height, 1)))
        except (KeyError, TypeError, ValueError, OSError, LlavaSTError):
            continue
    return hints


def _geometry(path: Path) -> tuple[int, int, float]:
    """Width, height and the time of the last frame (seconds; 0 for an image) of a media file.
    A whole-clip sample's first and last frames are the clip's, so a normalised time ``t`` is
    ``t * last`` seconds."""
    if is_image_file(path):
        from PIL import Image

        with Image.open(path) as img:
            return img.size[0], img.size[1], 0.0
    from ..media.video import probe_video

    info = probe_video(path)
    return info.width, info.height, float(info.timestamps[-1])


def bundled_samples() -> list[Sample]:
    """Videos and images shipped in the package's sample folders, sorted by name, with the hints
    of a ``<name>.json`` beside them or of the folder's ``demo.json``."""
    found: list[Sample] = []
    root = resources.files("llava_st")
    for sub in SAMPLE_FOLDERS:
        folder = Path(str(root.joinpath(sub)))
        if not folder.is_dir():
            continue
        demo = _demo_hints(folder)
        for path in sorted(folder.iterdir()):
            suffix = path.suffix.lower()
            if path.is_file() and (suffix in _VIDEO_SUFFIXES or is_image_file(path)):
                kind: Literal["image", "video"] = "image" if is_image_file(path) else "video"
                hints = {"question": "What happens in the video?" if kind == "video" else "What is in the image?",
                         **demo.get(path.name, {}), **_hints_beside(path)}
                if "query" not in hints and "expression" in hints:
                    hints["query"] = hints["expression"]
                if "expression" not in hints and "query" in hints:
                    hints["expression"] = hints["query"]
                found.append(Sample(f"{'video' if kind == 'video' else 'image'}: {path.name}", path, kind, hints))
    return found


def render_samples(folder: Path, seed: int = 0) -> list[Sample]:
    """Render one ST-Synth video (the first of the first 32 whose target moves) and one image into ``folder``."""
    from ..synth.config import PRESETS
    from ..synth.item import make_image, make_video

    config = PRESETS["embedded"].replace(seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    chosen = None
    for index in range(32):
        out = make_video(config, index, frozenset(), None)
        target = out.truth["objects"][0]
        if target["motion"] != "static" and out.truth["events"]:
            chosen = index
            break
    index = 0 if chosen is None else chosen
    out = make_video(config, index, frozenset(), folder)
    truth = out.truth
    target = truth["objects"][0]
    event = truth["events"][0] if truth["events"] else None
    frame = event["start_frame"] if event else 0
    actor = truth["objects"][event["object"]] if event else target  # the object the event is about
    box = actor["boxes_xyxy"][frame] or next((b for b in actor["boxes_xyxy"] if b), [0, 0, 1, 1])
    video = Sample(f"ST-Synth video: {target['phrase']}", folder / truth["media"], "video", {
        "question": "What happens in the video?",
        "query": target["phrase"],
        "expression": target["phrase"],
        "start": f"{(event['start_s'] if event else 0.0):g}",
        "box": ", ".join(str(v) for v in box),
    })
    image_truth = make_image(config, 0, frozenset(), folder).truth
    image_target = image_truth["objects"][0]
    image = Sample(f"ST-Synth image: {image_target['phrase']}", folder / image_truth["media"], "image", {
        "question": "What is in the image?",
        "query": image_target["phrase"],
        "expression": image_target["phrase"],
        "box": ", ".join(str(v) for v in image_target["boxes_xyxy"][0]),
    })
    return [video, image]


def find_samples(folder: Path) -> list[Sample]:
    """The shipped samples, or samples rendered into ``folder`` when the package ships none."""
    return bundled_samples() or render_samples(folder)


__all__ = ["SAMPLE_FOLDERS", "Sample", "bundled_samples", "find_samples", "render_samples"]
