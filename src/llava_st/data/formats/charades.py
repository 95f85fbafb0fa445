"""The Charades-STA evaluation format (TVG; EVAL-PROTOCOL §2, SPEC §4).

A JSON list; each item::

    {"image_id": "AB12C.mp4", "caption": "a person opens a door.", "timestamp": [s, e]}

``image_id`` is the video file name (with its extension) under the data
folder, ``caption`` the query, and ``timestamp`` the span ALREADY NORMALISED
to [0, 1] of the whole video: the release compares it directly with the
decoded ``k / 99`` values, so a span in seconds would be scored as nonsense
and is refused here. Other keys are kept as read and written back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ._io import AnnotationError, as_number, as_pair, as_text, load_json_list, need, write_json_list

_KEYS = ("image_id", "caption", "timestamp")


@dataclass(frozen=True)
class TVGSample:
    """One query: the video file name, the query text and the normalised span ``(s, e)``.

    ``extra`` holds the item's other keys; ``index`` is the position in the
    file (not part of the record's value).
    """

    video: str
    caption: str
    span: tuple[float, float]
    extra: Mapping[str, Any] = field(default_factory=dict)
    index: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": self.video, "caption": self.caption, "timestamp": list(self.span), **self.extra}


def read_charades(path: str | Path) -> list[TVGSample]:
    """Read a Charades-STA file (format above).

    Raises:
        AnnotationError: naming the file, the position and the field.
    """
    p = Path(path)
    return [_read_item(p, i, item) for i, item in enumerate(load_json_list(p))]


def _read_item(p: Path, i: int, item: Any) -> TVGSample:
    video = as_text(need(item, "image_id", p, i), p, i, "image_id")
    caption = as_text(need(item, "caption", p, i), p, i, "caption")
    ts = need(item, "timestamp", p, i)
    s, e = (as_number(v, p, i, "timestamp") for v in as_pair(ts, p, i, "timestamp", "[start, end]"))
    if not (0.0 <= s <= 1.0 and 0.0 <= e <= 1.0):
        raise AnnotationError(
            p, i, "timestamp", f"{list(ts)} is not normalised to [0, 1] of the video (seconds are not accepted)"
        )
    if e < s:
        raise AnnotationError(p, i, "timestamp", f"{list(ts)} ends before it starts")
    extra = {k: v for k, v in item.items() if k not in _KEYS}
    return TVGSample(video, caption, (s, e), extra, index=i)


def write_charades(path: str | Path, samples: Sequence[TVGSample]) -> Path:
    """Write ``samples`` as a Charades-STA file (a JSON list, one item per line)."""
    return write_json_list(path, [s.to_dict() for s in samples])


__all__ = ["TVGSample", "read_charades", "write_charades"]
