"""Dense targets that ST-Synth gives for free, per sample: the supervision of stage 0.

ST-Synth writes every object's box on every frame and every event
(``ground_truth/{videos,images}.jsonl``); a training sample names its scene,
its object and its event in ``meta``. From these, for the frames the model
sees (the ``T`` frames sampled over ``meta.split``, or the one image), this
module computes per patch of the tower's ``G x G`` grid:

* ``colour``, ``shape``, ``size``: class ids of the object drawn on top at the
  patch centre (0 = background; the colour is the one shown on that frame, so
  a recolour event changes it);
* ``box``: that object's box ``[x1, y1, x2, y2]`` normalised to ``[0, 1]``;
* ``referred``: 1 where the sample's object covers the patch centre, on the
  frames its answer is about (the event's span for a video sample with an
  event, every sampled frame otherwise);

and per frame ``visible``: whether the referred object is drawn. Boxes are
the ground truth's pixel boxes (``x2``, ``y2`` exclusive); a patch belongs to
a box when its centre lies inside.

Shapes: ``F`` frames (1 for an image), ``P = G * G`` patches in row-major order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import DataError
from ..protocol.timebase import sample_frame_indices
from .vocab import DEFAULT_COLOURS, DEFAULT_SIZES, SHAPES

#: Class ids (0 is background): the default ST-Synth vocabulary in its own order.
COLOUR_IDS = {c.name: i + 1 for i, c in enumerate(DEFAULT_COLOURS)}
SHAPE_IDS = {s: i + 1 for i, s in enumerate(SHAPES)}
SIZE_IDS = {s.name: i + 1 for i, s in enumerate(DEFAULT_SIZES)}
NUM_CLASSES = {"colour": len(COLOUR_IDS) + 1, "shape": len(SHAPE_IDS) + 1, "size": len(SIZE_IDS) + 1}


@dataclass
class DenseTargets:
    """The targets of one sample (see the module docstring).

    ``colour``, ``shape``, ``size``: int64 ``[F, P]``; ``box``: float32 ``[F, P, 4]``;
    ``referred``: float32 ``[F, P]``; ``visible``: float32 ``[F]``; ``has_object``:
    whether the sample names an object (else ``referred`` is all zero and unused);
    ``pointer``: filled in by the trainer's data pipeline
    (:class:`~llava_st.train.auxiliary.DenseTargetSource`): the positions that predict
    the answer's coordinates and where each should look, ``([C], [C, N_visual])``;
    ``asked``: filled in there too: int64 ``[3]``, the colour, shape and size the
    question names (0 where it names none).
    """

    colour: torch.Tensor
    shape: torch.Tensor
    size: torch.Tensor
    box: torch.Tensor
    referred: torch.Tensor
    visible: torch.Tensor
    has_object: bool
    pointer: tuple[torch.Tensor, torch.Tensor] | None = None
    asked: torch.Tensor | None = None


class SceneIndex:
    """The ground truth of an ST-Synth folder, by scene name."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.scenes: dict[str, dict[str, Any]] = {}
        for kind in ("images", "videos"):
            path = self.folder / "ground_truth" / f"{kind}.jsonl"
            if not path.is_file():
                raise DataError(f"{path}: no ST-Synth ground truth (stage 0 needs the folder `llava-st synth` wrote)")
            with open(path, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            record = json.loads(line)
                            self.scenes[record["name"]] = record
                        except (json.JSONDecodeError, KeyError) as exc:
                            raise DataError(f"{path}: line {n}: not a ground-truth record ({exc})") from None

    def __contains__(self, name: str) -> bool:
        return name in self.scenes

    def scene(self, name: str) -> dict[str, Any]:
        try:
            return self.scenes[name]
        except KeyError:
            raise DataError(f"scene {name!r} is not in the ground truth of {self.folder}") from None


def _frame_colours(obj: Mapping[str, Any], events: list, frames: np.ndarray) -> list[str]:
    """The colour name ``obj`` shows on each of ``frames`` (recolour events change it for their span)."""
    names = [obj["colour"]] * len(frames)
    for ev in events:
        if ev["kind"] == "recolour" and ev["object"] == obj["index"]:
            colour = ev["detail"]["colour"]
            for i, f in enumerate(frames):
                if ev["start_frame"] <= f <= ev["end_frame"]:
                    names[i] = colour
    return names


def dense_targets(scene: Mapping[str, Any], meta: Mapping[str, Any], grid: int) -> DenseTargets:
    """:class:`DenseTargets` of one sample of ``scene`` (its ``meta`` as written by ST-Synth) on a ``grid x grid`` patch grid."""
    width, height = scene["width"], scene["height"]
    if scene["kind"] == "image":
        frames = np.zeros(1, dtype=np.int64)
    else:
        start, end = meta.get("split", [0, scene["num_frames"] - 1])
        frames = sample_frame_indices(int(start), int(end), int(meta["sample_frames"]))
    f, p = len(frames), grid * grid
    centres = (np.arange(grid) + 0.5) / grid  # [G], fractions of the frame
    cx = np.broadcast_to(centres[None, :] * width, (grid, grid)).reshape(p)  # [P]
    cy = np.broadcast_to(centres[:, None] * height, (grid, grid)).reshape(p)  # [P]
    colour = np.zeros((f, p), np.int64)
    shape = np.zeros((f, p), np.int64)
    size = np.zeros((f, p), np.int64)
    box = np.zeros((f, p, 4), np.float32)
    depth = np.full((f, p), -np.inf)
    referred = np.zeros((f, p), np.float32)
    visible = np.zeros(f, np.float32)
    target = meta.get("object")
    span = None
    if meta.get("event") is not None and scene["kind"] == "video":
        ev = scene["events"][meta["event"]]
        span = (ev["start_frame"], ev["end_frame"])
    events = scene.get("events", [])
    for obj in sorted(scene["objects"], key=lambda o: o["z"]):
        boxes = [obj["boxes_xyxy"][int(i)] for i in frames]
        drawn = np.array([b is not None for b in boxes])
        arr = np.array([b if b is not None else [0, 0, 0, 0] for b in boxes], np.float32)  # [F, 4]
        inside = (
            drawn[:, None]
            & (cx[None] >= arr[:, 0:1]) & (cx[None] < arr[:, 2:3])
            & (cy[None] >= arr[:, 1:2]) & (cy[None] < arr[:, 3:4])
        )  # [F, P]
        on_top = inside & (obj["z"] > depth)
        colours = np.array([COLOUR_IDS.get(c, 0) for c in _frame_colours(obj, events, frames)])  # [F]
        colour = np.where(on_top, colours[:, None], colour)
        shape[on_top] = SHAPE_IDS.get(obj["shape"], 0)
        size[on_top] = SIZE_IDS.get(obj["size"], 0)
        norm = arr / np.array([width, height, width, height], np.float32)
        box = np.where(on_top[..., None], norm[:, None, :], box)
        depth = np.where(on_top, obj["z"], depth)
        if obj["index"] == target:
            active = np.ones(f, bool) if span is None else (frames >= span[0]) & (frames <= span[1])
            referred = np.where(inside & active[:, None], 1.0, referred).astype(np.float32)
            visible = drawn.astype(np.float32)
    return DenseTargets(
        colour=torch.from_numpy(colour),
        shape=torch.from_numpy(shape),
        size=torch.from_numpy(size),
        box=torch.from_numpy(box),
        referred=torch.from_numpy(referred),
        visible=torch.from_numpy(visible),
        has_object=target is not None,
    )

