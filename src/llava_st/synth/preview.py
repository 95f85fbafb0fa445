"""A preview picture: frames of a few videos and a few images, decoded from the written files,
with every object's ground-truth box and phrase drawn on top."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .._optional import require

#: Distinct outline colours for the boxes, cycled by object index.
BOX_COLOURS = ((255, 64, 64), (64, 255, 64), (80, 160, 255), (255, 255, 64), (255, 64, 255), (64, 255, 255), (255, 160, 64))


def _decode(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    av = require("av")
    out = {}
    with av.open(str(path)) as container:
        for f, frame in enumerate(container.decode(video=0)):
            if f in wanted:
                out[f] = frame.to_ndarray(format="rgb24")
            if f >= max(wanted):
                break
    return out


#: Small frames are enlarged (nearest neighbour) to at least this height, so labels stay readable.
MIN_CELL_HEIGHT = 200


def _annotate(rgb: np.ndarray, objects: list[dict], frame: int, title: str) -> Image.Image:
    img = Image.fromarray(rgb).convert("RGB")
    k = max(1, -(-MIN_CELL_HEIGHT // img.height))  # integer zoom
    if k > 1:
        img = img.resize((img.width * k, img.height * k), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for obj in objects:
        box = obj["boxes_xyxy"][frame]
        if box is None:
            continue
        colour = BOX_COLOURS[obj["index"] % len(BOX_COLOURS)]
        x1, y1, x2, y2 = (v * k for v in box)
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=colour, width=1)
        draw.text((x1 + 1, max(0, y1 - 11)), obj["phrase"].removeprefix("the "), fill=colour)
    draw.text((3, 3), title, fill=(255, 255, 255))
    return img


def make_preview(dataset: str | Path, videos: int = 3, frames_per_video: int = 5, images: int = 4) -> Path | None:
    """Draw ``preview.png`` in the dataset folder: one row per video, one row of images; returns its path."""
    root = Path(dataset)
    rows: list[list[Image.Image]] = []
    video_lines = (root / "ground_truth/videos.jsonl").read_text(encoding="utf-8").splitlines()[:videos]
    for line in video_lines:
        gt = json.loads(line)
        F = gt["num_frames"]
        wanted = sorted({round(k * (F - 1) / max(frames_per_video - 1, 1)) for k in range(frames_per_video)})
        decoded = _decode(root / gt["media"], wanted)
        rows.append([_annotate(decoded[f], gt["objects"], f, f"{gt['name']} f{f}") for f in wanted])
    image_lines = (root / "ground_truth/images.jsonl").read_text(encoding="utf-8").splitlines()[:images]
    if image_lines:
        row = []
        for line in image_lines:
            gt = json.loads(line)
            rgb = np.asarray(Image.open(root / gt["media"]).convert("RGB"))
            row.append(_annotate(rgb, gt["objects"], 0, gt["name"]))
        rows.append(row)
    if not rows:
        return None
    cell_w = max(im.width for row in rows for im in row)
    cell_h = max(im.height for row in rows for im in row)
    cols = max(len(row) for row in rows)
    gap = 4
    sheet = Image.new("RGB", (cols * (cell_w + gap) + gap, len(rows) * (cell_h + gap) + gap), (20, 20, 20))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            sheet.paste(im, (gap + c * (cell_w + gap), gap + r * (cell_h + gap)))
    path = root / "preview.png"
    sheet.save(path)
    return path
