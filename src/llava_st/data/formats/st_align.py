"""The ST-Align evaluation format: STVG, SVG and ELC (EVAL-PROTOCOL §3, SPEC §4).

A JSON list; each item::

    {"video_path": "clips/a.mp4",
     "meta": {"width": W, "height": H, "split": [a, b],
              "time_token": {"<s>": frame, "<e>": frame},
              "spatial_token": {"<bboxes>": {"frame": [x, y, w, h], ...}, "<box>": [x, y, w, h]}},
     "conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]}

Times are ABSOLUTE frame numbers, ``split`` the inclusive frame range the
clip is sampled over, boxes PIXELS ``[x, y, w, h]``. ``<bboxes>`` is the
object's track (frame-number strings as keys; a reader of the benchmark keeps
only the frames its sampler picks); other list-valued spatial tokens are
single boxes named in the human text. The human text carries ``<video>`` and
the token names (``From <s> to <e>``, ``Starts in <s>``, ``<box>``); the gpt
text is the answer template (the ELC caption comes from it). ST-Synth's
evaluation files use the same format.

Kept as read and written back: other time tokens, other spatial tokens
holding a per-frame dict (the release filters them but never uses them),
other ``meta`` keys and other top-level keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ._io import (
    AnnotationError,
    as_frame,
    as_object,
    as_pair,
    as_positive,
    as_text,
    as_xywh,
    load_json_list,
    need,
    write_json_list,
)

XYWH = tuple[float, float, float, float]
TRACK_KEY = "<bboxes>"
_FRAME_KEY_RE = re.compile(r"\d+\Z")
_KEYS = ("video_path", "meta", "conversations")
_META_KEYS = ("width", "height", "split", "time_token", "spatial_token")


@dataclass(frozen=True)
class STSample:
    """One ST-Align item, as the file holds it (pixel boxes ``[x, y, w, h]``, absolute frame numbers).

    Attributes:
        video_path: the clip, relative to the data folder.
        width, height: frame size in pixels.
        split: inclusive absolute frame range ``(a, b)`` the clip is sampled over.
        time_tokens: token -> absolute frame (``<s>`` and ``<e>`` at least).
        track: frame-number string -> ``(x, y, w, h)``: the ``<bboxes>`` track.
        boxes: other spatial tokens -> one ``(x, y, w, h)`` box.
        human, gpt: the texts of the two turns.
        spatial_order: the ``spatial_token`` keys in file order (prompts replace
            them in this order); computed as ``<bboxes>``, boxes, other tracks
            when not given.
        other_tracks: spatial tokens other than ``<bboxes>`` holding a per-frame dict.
        meta_extra, extra: other keys of ``meta`` and of the item.
        index: position in the file (not part of the record's value).
    """

    video_path: str
    width: float
    height: float
    split: tuple[int, int]
    time_tokens: Mapping[str, int]
    track: Mapping[str, XYWH]
    boxes: Mapping[str, XYWH]
    human: str
    gpt: str
    spatial_order: tuple[str, ...] = ()
    other_tracks: Mapping[str, Mapping[str, XYWH]] = field(default_factory=dict)
    meta_extra: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    index: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not self.spatial_order:
            object.__setattr__(self, "spatial_order", (TRACK_KEY, *self.boxes, *self.other_tracks))

    def to_dict(self) -> dict[str, Any]:
        """The item as the file holds it."""
        spatial: dict[str, Any] = {}
        order = list(self.spatial_order) + [
            k for k in (TRACK_KEY, *self.boxes, *self.other_tracks) if k not in self.spatial_order
        ]
        for key in order:
            if key == TRACK_KEY:
                spatial[key] = {f: list(b) for f, b in self.track.items()}
            elif key in self.boxes:
                spatial[key] = list(self.boxes[key])
            elif key in self.other_tracks:
                spatial[key] = {f: list(b) for f, b in self.other_tracks[key].items()}
        meta = {
            "width": self.width,
            "height": self.height,
            "split": list(self.split),
            "time_token": dict(self.time_tokens),
            "spatial_token": spatial,
            **self.meta_extra,
        }
        conversations = [{"from": "human", "value": self.human}, {"from": "gpt", "value": self.gpt}]
        return {"video_path": self.video_path, "meta": meta, "conversations": conversations, **self.extra}


def read_st_align(path: str | Path) -> list[STSample]:
    """Read an ST-Align (or ST-Synth) evaluation file (format above).

    Checked: the split is ``[a, b]`` with ``a <= b``; every time token is a
    whole frame inside the split, ``<s>`` and ``<e>`` exist and ``<e>`` is not
    before ``<s>``; track keys are whole frame numbers; boxes have a
    non-negative size; there are a human and a gpt turn.

    Raises:
        AnnotationError: naming the file, the position and the field.
    """
    p = Path(path)
    return [_read_item(p, i, item) for i, item in enumerate(load_json_list(p))]


def _read_track(raw: Any, p: Path, i: int, fld: str) -> dict[str, XYWH]:
    if not isinstance(raw, Mapping):
        raise AnnotationError(p, i, fld, "must be an object {frame: [x, y, w, h]}")
    track = {}
    for key, box in raw.items():
        where = f"{fld}.{key}"
        if not isinstance(key, str) or not _FRAME_KEY_RE.match(key):
            raise AnnotationError(p, i, where, "frame key must be a whole frame number")
        track[key] = as_xywh(box, p, i, where)
    return track


def _read_item(p: Path, i: int, item: Any) -> STSample:
    video = as_text(need(item, "video_path", p, i), p, i, "video_path")
    meta = as_object(need(item, "meta", p, i), p, i, "meta")
    width = as_positive(need(meta, "width", p, i, "meta."), p, i, "meta.width")
    height = as_positive(need(meta, "height", p, i, "meta."), p, i, "meta.height")
    split = need(meta, "split", p, i, "meta.")
    a, b = (as_frame(v, p, i, "meta.split") for v in as_pair(split, p, i, "meta.split", "[first, last] frame numbers"))
    if b < a:
        raise AnnotationError(p, i, "meta.split", f"{list(split)} ends before it starts")
    tt = need(meta, "time_token", p, i, "meta.")
    if not isinstance(tt, Mapping):
        raise AnnotationError(p, i, "meta.time_token", "must be an object {name: frame}")
    times: dict[str, int] = {}
    for name, frame in tt.items():
        f = as_frame(frame, p, i, f"meta.time_token.{name}")
        if not a <= f <= b:
            raise AnnotationError(p, i, f"meta.time_token.{name}", f"frame {f} is outside the split [{a}, {b}]")
        times[name] = f
    for name in ("<s>", "<e>"):
        if name not in times:
            raise AnnotationError(p, i, f"meta.time_token.{name}", "missing")
    if times["<e>"] < times["<s>"]:
        raise AnnotationError(p, i, "meta.time_token", f"<e> ({times['<e>']}) is before <s> ({times['<s>']})")
    st = as_object(need(meta, "spatial_token", p, i, "meta."), p, i, "meta.spatial_token")
    track = _read_track(need(st, TRACK_KEY, p, i, "meta.spatial_token."), p, i, f"meta.spatial_token.{TRACK_KEY}")
    boxes: dict[str, XYWH] = {}
    others: dict[str, dict[str, XYWH]] = {}
    for key, box in st.items():
        if key == TRACK_KEY:
            continue
        if isinstance(box, Mapping):
            others[key] = _read_track(box, p, i, f"meta.spatial_token.{key}")
        else:
            boxes[key] = as_xywh(box, p, i, f"meta.spatial_token.{key}")
    conv = need(item, "conversations", p, i)
    if not isinstance(conv, list) or len(conv) < 2:
        raise AnnotationError(p, i, "conversations", "must be [human, gpt] turns")
    human = as_text(need(conv[0], "value", p, i, "conversations[0]."), p, i, "conversations[0].value")
    gpt = as_text(need(conv[1], "value", p, i, "conversations[1]."), p, i, "conversations[1].value", allow_empty=True)
    return STSample(
        video,
        width,
        height,
        (a, b),
        times,
        track,
        boxes,
        human,
        gpt,
        tuple(st.keys()),
        others,
        meta_extra={k: v for k, v in meta.items() if k not in _META_KEYS},
        extra={k: v for k, v in item.items() if k not in _KEYS},
        index=i,
    )


def write_st_align(path: str | Path, samples: Sequence[STSample]) -> Path:
    """Write ``samples`` as an ST-Align file (a JSON list, one item per line)."""
    return write_json_list(path, [s.to_dict() for s in samples])


__all__ = ["STSample", "TRACK_KEY", "read_st_align", "write_st_align"]
