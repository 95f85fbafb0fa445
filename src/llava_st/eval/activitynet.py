"""The ActivityNet Captions annotation format (dense video captioning, temporal referring).

One JSON object keyed by video id (``val_1.json``, ``val_2.json`` of the
dataset; also the format of YouCook2 and ViTT conversions)::

    {"v_QOlSCBRmfWY": {"duration": 82.73,
                       "timestamps": [[0.83, 19.86], [17.37, 60.81]],
                       "sentences": ["A young woman is seen ...", "She then ..."]},
     ...}

Times are seconds of the video; ``duration`` is the video's length in
seconds. Events may overlap and may run past ``duration`` (the dataset has a
few); an event that ends before it starts is refused. Videos keep the file's
order: a prediction's ``id`` is the video's position.

The video files are looked up under the media folder by id, with the common
extensions and with or without the ``v_`` prefix (:func:`video_path`).

(A format module; :mod:`llava_st.data.formats` is its natural home.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.formats import AnnotationError
from ..data.formats._io import WHOLE_FILE, as_number, as_pair, as_text, load_json, need

#: Extensions tried, in order, when looking up a video by id.
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")


@dataclass(frozen=True)
class CaptionedVideo:
    """One video of the file: its id, length in seconds and events (seconds, and one sentence each)."""

    video_id: str
    duration: float
    spans: tuple[tuple[float, float], ...]
    sentences: tuple[str, ...]
    index: int = field(default=0, compare=False)


def read_activitynet_captions(path: str | Path) -> list[CaptionedVideo]:
    """Read an ActivityNet Captions file (format above), videos in file order.

    Raises:
        AnnotationError: naming the file, the video's position (and id) and the field.
    """
    p = Path(path)
    data = load_json(p)
    if not isinstance(data, dict):
        raise AnnotationError(
            p, None, WHOLE_FILE, f"must be a JSON object keyed by video id (ActivityNet Captions), got {type(data).__name__}"
        )
    return [_read_video(p, i, str(vid), item) for i, (vid, item) in enumerate(data.items())]


def _read_video(p: Path, i: int, vid: str, item: Any) -> CaptionedVideo:
    where = f"{vid}."
    duration = as_number(need(item, "duration", p, i, where), p, i, where + "duration")
    if not duration > 0:
        raise AnnotationError(p, i, where + "duration", f"must be > 0 seconds, got {duration}")
    stamps = need(item, "timestamps", p, i, where)
    sentences = need(item, "sentences", p, i, where)
    if not isinstance(stamps, list) or not isinstance(sentences, list):
        raise AnnotationError(p, i, where + "timestamps", "timestamps and sentences must be lists")
    if len(stamps) != len(sentences):
        raise AnnotationError(
            p, i, where + "sentences", f"{len(sentences)} sentences for {len(stamps)} timestamps; one sentence per event"
        )
    spans = []
    for k, ts in enumerate(stamps):
        field_name = f"{where}timestamps[{k}]"
        s, e = (as_number(v, p, i, field_name) for v in as_pair(ts, p, i, field_name, "[start, end] seconds"))
        if e < s:
            raise AnnotationError(p, i, field_name, f"{list(ts)} ends before it starts")
        if s < 0:
            raise AnnotationError(p, i, field_name, f"{list(ts)} starts before the video (negative seconds)")
        spans.append((s, e))
    texts = tuple(as_text(t, p, i, f"{where}sentences[{k}]", allow_empty=True) for k, t in enumerate(sentences))
    return CaptionedVideo(vid, duration, tuple(spans), texts, index=i)


def video_path(media_root: str | Path, video_id: str) -> Path:
    """The video file of ``video_id`` under ``media_root``: ``<id><ext>`` for the extensions of
    :data:`VIDEO_EXTENSIONS`, then the same without a leading ``v_``; the first that exists, else
    ``<id>.mp4`` (loading it then fails naming that path)."""
    root = Path(media_root)
    names = [video_id] + ([video_id[2:]] if video_id.startswith("v_") else [])
    for name in names:
        for ext in VIDEO_EXTENSIONS:
            candidate = root / f"{name}{ext}"
            if candidate.is_file():
                return candidate
    return root / f"{video_id}.mp4"


__all__ = ["CaptionedVideo", "VIDEO_EXTENSIONS", "read_activitynet_captions", "video_path"]
