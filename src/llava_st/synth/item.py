"""One dataset item, start to finish: draw a scene, render it, read the ground truth, build the
samples, write the media file.

Every item has its own random stream, seeded by ``(seed, kind, index)``, so an
item's content does not depend on which process makes it or in which order.
A draw that cannot give a valid item (an event hidden at its start, a
target fully occluded) is thrown away and the next draw of the same stream
is used; after :data:`MAX_ATTEMPTS` failures the settings are reported as
impossible.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import SynthConfig
from .encode import write_mp4, write_png
from .formats import EVAL_FILES, charades_tvg, refcoco_pair, st_align_elc, st_align_stvg, st_align_svg, training_file
from .render import compose, rasterise, solo_area, yuv420_frames
from .sampler import SceneError, sample_scene
from .split import split_of
from .tasks import ImageBuilder, Item, NoSample, VideoBuilder
from .truth import finalise_events
from ..errors import SynthError

MAX_ATTEMPTS = 60
#: A test image's target must show at least this share of its own pixels.
MIN_TARGET_VISIBLE = 0.4
#: Random streams per item kind.
VIDEO_STREAM, IMAGE_STREAM = 1, 2


class GenerationError(SynthError, RuntimeError):
    """No valid item could be drawn with these settings."""


@dataclass
class ItemOutput:
    """What one item contributes: records per output file (relative path) and its ground-truth line."""

    files: dict[str, list[Any]]
    truth: dict[str, Any]


def item_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def video_name(index: int) -> tuple[str, str]:
    return f"v{index:06d}", f"videos/{index:06d}.mp4"


def image_name(index: int) -> tuple[str, str]:
    return f"i{index:06d}", f"images/{index:06d}.png"


def _attempts(what: str, make):
    problems: list[str] = []
    for _ in range(MAX_ATTEMPTS):
        try:
            return make()
        except (SceneError, NoSample) as exc:
            problems.append(str(exc))
    common = max(set(problems), key=problems.count)
    raise GenerationError(
        f"could not draw a valid {what} in {MAX_ATTEMPTS} attempts; the settings are too tight "
        f"(most frequent problem: {common})"
    )


def build_video_samples(item: Item, config: SynthConfig, rng: np.random.Generator) -> dict[str, list[Any]]:
    """Training records (and, for the test split, evaluation records) of one video."""
    vb = VideoBuilder(item, config, rng)
    t = config.tasks
    subset = item.scene.split
    test = subset == "test"
    files: dict[str, list[Any]] = defaultdict(list)

    def add(task: str, made, eval_key: str | None = None, to_eval=None) -> None:
        rec, choice = made
        files[training_file(subset, task)].append(rec)
        if test and eval_key is not None:
            files[EVAL_FILES[eval_key]].append(to_eval(item, choice))

    for n, ev in enumerate(vb.events_for(t.tvg)):
        add("tvg", vb.tvg(n, ev), "tvg", charades_tvg)
    for n, ev in enumerate(vb.events_for(t.tr)):
        add("tr", vb.tr(n, ev))
    for n in range(t.dvc):
        add("dvc", vb.dvc(n))
    for n, ev in enumerate(vb.events_for(t.stvg)):
        add("stvg", vb.stvg(n, ev), "stvg", st_align_stvg)
    for n in range(t.svg):
        add("svg", vb.svg(n), "svg", st_align_svg)
    for n, ev in enumerate(vb.events_for(t.elc)):
        add("elc", vb.elc(n, ev), "elc", st_align_elc)
    for n in range(t.video_caption):
        add("video_caption", vb.video_caption(n))
    return dict(files)


def build_image_samples(item: Item, config: SynthConfig, rng: np.random.Generator) -> dict[str, list[Any]]:
    """Training records (and, for the test split, RefCOCO-style pairs) of one image."""
    ib = ImageBuilder(item, config, rng)
    t = config.tasks
    subset = item.scene.split
    files: dict[str, list[Any]] = defaultdict(list)
    for n, obj in enumerate(ib.targets(t.rec)):
        files[training_file(subset, "rec")].append(ib.rec(n, obj))
        if subset == "test":
            files[EVAL_FILES["rec"]].append(refcoco_pair(item, obj))
    for n, obj in enumerate(ib.targets(t.reg)):
        files[training_file(subset, "reg")].append(ib.reg(n, obj))
    for n in range(t.dgc):
        files[training_file(subset, "dgc")].append(ib.dgc(n))
    for n in range(t.image_caption):
        files[training_file(subset, "image_caption")].append(ib.image_caption(n))
    return dict(files)


def truth_record(item: Item) -> dict[str, Any]:
    """The ground-truth line of an item: attributes, per-frame pixel boxes, event spans in frames and seconds."""
    s, r = item.scene, item.raster
    objects = []
    for o in s.objects:
        boxes = [None if b[0] < 0 else [int(v) for v in b] for b in r.boxes[o.index]]
        objects.append(
            {
                "index": o.index,
                "phrase": o.phrase,
                "shape": o.shape,
                "colour": o.colour,
                "size": o.size,
                "colours": s.colour_names_of(o),
                "role": o.role,
                "motion": o.motion,
                "radius_px": round(o.radius, 3),
                "z": o.z,
                "boxes_xyxy": boxes,
            }
        )
    events = [
        {
            "kind": e.kind,
            "object": e.object,
            "start_frame": e.start,
            "end_frame": e.end,
            "start_s": round(e.start / s.fps, 6),
            "end_s": round(e.end / s.fps, 6),
            "caption": e.caption,
            "detail": dict(e.detail),
        }
        for e in item.events
    ]
    panned = bool(np.any(s.camera != s.camera[0]))
    return {
        "name": item.name,
        "media": item.media,
        "kind": s.media,
        "subset": s.split,
        "width": s.width,
        "height": s.height,
        "num_frames": s.num_frames,
        "fps": s.fps,
        "background": s.background.kind,
        "camera_pan": item.pan,
        "camera_xy": [[int(x), int(y)] for x, y in s.camera] if panned else None,
        "objects": objects,
        "events": events,
    }


def make_video(config: SynthConfig, index: int, heldout: frozenset, out_dir: Path | None) -> ItemOutput:
    """Draw, render, annotate and (when ``out_dir`` is given) encode video ``index``."""
    split = split_of(index, config.num_videos, config.split.test_fraction)
    rng = item_rng(config.seed, VIDEO_STREAM, index)
    name, media = video_name(index)

    def make():
        scene, pan = sample_scene(rng, config, "video", split, heldout)
        raster = rasterise(scene)
        events = finalise_events(scene, raster, config.video.sample_frames)
        scene.events = events
        item = Item(name, media, scene, raster, events, pan)
        return item, build_video_samples(item, config, rng)

    item, files = _attempts(f"video {index}", make)
    if out_dir is not None:
        s = item.scene
        write_mp4(out_dir / media, yuv420_frames(s, item.raster), s.width, s.height, s.fps, config.video.crf, config.video.preset)
    return ItemOutput(files, truth_record(item))


def make_image(config: SynthConfig, index: int, heldout: frozenset, out_dir: Path | None) -> ItemOutput:
    """Draw, render, annotate and (when ``out_dir`` is given) save image ``index``."""
    split = split_of(index, config.num_images, config.split.test_fraction)
    rng = item_rng(config.seed, IMAGE_STREAM, index)
    name, media = image_name(index)

    def make():
        scene, _ = sample_scene(rng, config, "image", split, heldout)
        raster = rasterise(scene)
        target = scene.objects[0]
        full = solo_area(scene, target, 0)
        if full == 0 or raster.area[0, 0] < MIN_TARGET_VISIBLE * full:
            raise SceneError("the target is mostly hidden")
        item = Item(name, media, scene, raster, [], None)
        return item, build_image_samples(item, config, rng)

    item, files = _attempts(f"image {index}", make)
    if out_dir is not None:
        write_png(out_dir / media, compose(item.scene, item.raster, 0))
    return ItemOutput(files, truth_record(item))


__all__ = [
    "GenerationError",
    "ItemOutput",
    "make_image",
    "make_video",
    "truth_record",
]
