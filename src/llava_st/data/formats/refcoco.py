"""The RefCOCO-family evaluation format (RefCOCO, RefCOCO+, RefCOCOg; EVAL-PROTOCOL §1, SPEC §4).

One JSON object with two lists of equal length, paired BY POSITION (not by
``image_id``)::

    {"images":      [{"file_name", "width", "height", "caption", "id", ...}, ...],
     "annotations": [{"id", "bbox": [x, y, w, h], ...}, ...]}

``images[i]`` holds the image path (relative to the data folder), its size in
pixels and ONE referring expression (``caption``), so an image repeats once
per expression; ``annotations[i].bbox`` is the object's pixel box ``[x, y, w,
h]``, and ``annotations[i].id`` must equal ``images[i].id`` (the release
asserts it). Other keys (COCO's ``image_id``, ``area``, ``category_id``,
``iscrowd`` ...) are kept as read and written back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ._io import (
    WHOLE_FILE,
    AnnotationError,
    as_positive,
    as_text,
    as_xywh,
    dumps,
    json_list_text,
    load_json,
    need,
)

_IMAGE_KEYS = ("file_name", "width", "height", "caption", "id")
_ANNOTATION_KEYS = ("id", "bbox")


@dataclass(frozen=True)
class RefSample:
    """One referring expression.

    Attributes:
        id: ``images[i].id`` (= ``annotations[i].id``), any JSON value.
        file_name: the image, relative to the data folder.
        width, height: image size in pixels.
        caption: the referring expression.
        bbox: the object's pixel box ``(x, y, w, h)``.
        image_extra, annotation_extra: the entries' other keys, as read.
        index: position in the file (not part of the record's value: two
            equal records at different positions compare equal).
    """

    id: Any
    file_name: str
    width: float
    height: float
    caption: str
    bbox: tuple[float, float, float, float]
    image_extra: Mapping[str, Any] = field(default_factory=dict)
    annotation_extra: Mapping[str, Any] = field(default_factory=dict)
    index: int = field(default=0, compare=False)

    def to_entries(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``images[i]`` and ``annotations[i]`` objects of this record."""
        image = {
            "file_name": self.file_name,
            "width": self.width,
            "height": self.height,
            "caption": self.caption,
            **self.image_extra,
            "id": self.id,
        }
        ann = {"id": self.id, "bbox": list(self.bbox), **self.annotation_extra}
        return image, ann


def read_refcoco(path: str | Path) -> list[RefSample]:
    """Read a RefCOCO-family file (format above).

    Raises:
        AnnotationError: naming the file, the position and the field
            (``images[i].caption``, ``annotations[i].bbox`` ...).
    """
    p = Path(path)
    data = load_json(p)
    if not isinstance(data, dict):
        raise AnnotationError(p, None, WHOLE_FILE, "must be an object with 'images' and 'annotations'")
    images = need(data, "images", p, None)
    anns = need(data, "annotations", p, None)
    if not isinstance(images, list) or not isinstance(anns, list):
        raise AnnotationError(p, None, "images/annotations", "must both be lists")
    if len(images) != len(anns):
        raise AnnotationError(
            p, None, "images/annotations", f"must pair by position but have {len(images)} and {len(anns)} entries"
        )
    return [_read_pair(p, i, img, ann) for i, (img, ann) in enumerate(zip(images, anns))]


def _read_pair(p: Path, i: int, img: Any, ann: Any) -> RefSample:
    file_name = as_text(need(img, "file_name", p, i, "images[i]."), p, i, "images[i].file_name")
    width = as_positive(need(img, "width", p, i, "images[i]."), p, i, "images[i].width")
    height = as_positive(need(img, "height", p, i, "images[i]."), p, i, "images[i].height")
    caption = as_text(need(img, "caption", p, i, "images[i]."), p, i, "images[i].caption")
    img_id = need(img, "id", p, i, "images[i].")
    ann_id = need(ann, "id", p, i, "annotations[i].")
    if ann_id != img_id:
        raise AnnotationError(p, i, "annotations[i].id", f"{ann_id!r} differs from images[i].id {img_id!r}")
    bbox = as_xywh(need(ann, "bbox", p, i, "annotations[i]."), p, i, "annotations[i].bbox")
    image_extra = {k: v for k, v in img.items() if k not in _IMAGE_KEYS}
    annotation_extra = {k: v for k, v in ann.items() if k not in _ANNOTATION_KEYS}
    return RefSample(img_id, file_name, width, height, caption, bbox, image_extra, annotation_extra, index=i)


def refcoco_text(samples: Sequence[RefSample]) -> str:
    """The file's text: the two lists with one entry per line."""
    pairs = [s.to_entries() for s in samples]
    images = json_list_text([im for im, _ in pairs])
    annotations = json_list_text([an for _, an in pairs])
    return "{\n" + dumps("images") + ": " + images + ",\n" + dumps("annotations") + ": " + annotations + "\n}\n"


def write_refcoco(path: str | Path, samples: Sequence[RefSample]) -> Path:
    """Write ``samples`` as a RefCOCO-family file (each sample's ``id`` as given; parent folders are made)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(refcoco_text(samples), encoding="utf-8")
    return p


__all__ = ["RefSample", "read_refcoco", "refcoco_text", "write_refcoco"]
