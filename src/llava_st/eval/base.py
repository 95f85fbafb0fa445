"""Shared pieces of the evaluation: scoring modes, errors, requests, annotation-file checks.

Two scoring modes (SPEC §5):

* ``canonical`` (our default): every sample counts, degenerate inputs never
  crash, prompts are seeded, ELC's time IoU uses the ``Ends in`` end time,
  ST-Align reports sIoU and vIoU under clear names;
* ``published``: reproduces the authors' released scorer, bugs included,
  under its own key names (``--published-compat`` on the command line).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping
from ..errors import DataError, EvalError

Mode = Literal["canonical", "published"]
MODES: tuple[str, ...] = ("canonical", "published")


def mode_label(mode: str) -> str:
    """How a mode is named in reports."""
    return {"canonical": "canonical", "published": "published-compat"}[mode]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; expected one of {MODES}")
    return mode


class AnnotationError(DataError):
    """A benchmark annotation file that does not have the released format.

    The message names the file, the sample index and the field.
    """

    def __init__(self, path: str | Path, index: int | None, field: str, problem: str):
        self.path, self.index, self.field = str(path), index, field
        where = f"sample {index}, " if index is not None else ""
        super().__init__(f"{path}: {where}field {field!r}: {problem}")


class PredictionError(EvalError, ValueError):
    """A predictions file that is malformed or does not match the annotation list."""


class ReleaseCrash(EvalError, RuntimeError):
    """Published-compatible scoring cannot go on: the released scorer crashes on this sample.

    The release gives no numbers for such a file; canonical mode scores it.
    """

    def __init__(self, index: int, reason: str):
        self.index = index
        super().__init__(
            f"sample {index}: the released scorer crashes here ({reason}), so there are no published-compatible "
            "numbers for this set; score it in canonical mode"
        )


@dataclass(frozen=True)
class MediaRequest:
    """The picture or clip a prompt is about.

    ``kind`` is ``"image"`` or ``"video"``; ``split`` is the inclusive frame
    range ``[first, last]`` to sample a video over (``None``: the whole video);
    ``num_frames`` frames are sampled uniformly over it (SPEC §2.1).
    """

    kind: Literal["image", "video"]
    path: str
    split: tuple[int, int] | None = None
    num_frames: int = 100


@dataclass(frozen=True)
class Request:
    """One question for the model: the user text (release markup) and its media.

    ``prompt`` holds the ``<image>``/``<video>`` tag and coordinates as plain
    numbers (``{0.087,0.581}``, ``[0.1, 0.2, 0.5, 0.7]``, ``Starts in 0.59``),
    exactly the human turn the release builds before its placeholder
    formatting; the processor turns them into placeholders.
    """

    sample_id: int
    prompt: str
    media: MediaRequest


def load_json(path: str | Path) -> Any:
    """Read a JSON file; a missing or malformed file is an :class:`AnnotationError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(p, None, "<file>", "no such file")
    try:
        with p.open("r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise AnnotationError(p, None, "<file>", f"not valid JSON ({exc})") from exc


def load_json_list(path: str | Path) -> list:
    """Read a JSON file that must hold a list of samples (:func:`load_json`'s errors, and one for a non-list)."""
    p = Path(path)
    data = load_json(p)
    if not isinstance(data, list):
        raise AnnotationError(p, None, "<file>", f"must be a JSON list of samples, got {type(data).__name__}")
    return data


# -- field checks, each raising AnnotationError(path, index, field, problem)


def need(obj: Any, key: str, path: Path, index: int | None, prefix: str = "") -> Any:
    if not isinstance(obj, Mapping):
        raise AnnotationError(path, index, prefix.rstrip(".") or "<item>", f"must be an object, got {type(obj).__name__}")
    if key not in obj:
        raise AnnotationError(path, index, prefix + key, "missing")
    return obj[key]


def as_text(value: Any, path: Path, index: int, field: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise AnnotationError(path, index, field, f"must be text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise AnnotationError(path, index, field, "is empty")
    return value


def as_number(value: Any, path: Path, index: int, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(path, index, field, f"must be a finite number, got {value!r}")
    return float(value)


def as_positive(value: Any, path: Path, index: int, field: str) -> float:
    v = as_number(value, path, index, field)
    if v <= 0:
        raise AnnotationError(path, index, field, f"must be positive, got {value!r}")
    return v


def as_frame(value: Any, path: Path, index: int, field: str) -> int:
    v = as_number(value, path, index, field)
    if v != int(v) or v < 0:
        raise AnnotationError(path, index, field, f"must be a non-negative whole frame number, got {value!r}")
    return int(v)


def as_xywh(value: Any, path: Path, index: int, field: str) -> tuple[float, float, float, float]:
    """A pixel box ``[x, y, w, h]`` with ``w, h >= 0``."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise AnnotationError(path, index, field, f"must be a box [x, y, w, h], got {value!r}")
    x, y, w, h = (as_number(v, path, index, field) for v in value)
    if w < 0 or h < 0:
        raise AnnotationError(path, index, field, f"box [x, y, w, h] has a negative size: {list(value)}")
    return (x, y, w, h)




class Benchmark(ABC):
    """One benchmark: how to read its file, ask the model, and score answers.

    Subclasses implement :meth:`load`, :meth:`request`, :meth:`score_sample`,
    :meth:`aggregate` and :meth:`notes`. Per-sample records are plain dicts
    ``{"id", "parsed", "scores", ...}`` so that they go to JSON as they are.
    """

    #: benchmark name on the command line (``refcoco``, ``charades-sta``, ``stvg`` ...)
    name: str = ""
    #: the task grammar of its answers (:data:`llava_st.protocol.answers.TASKS`)
    task: str = ""

    @abstractmethod
    def load(self, path: str | Path) -> list:
        ...

    def evaluated_ids(self, num_samples: int, mode: str) -> list[int]:
        """Positions of the annotation list that a run scores (all, unless the mode says otherwise)."""
        return list(range(num_samples))

    @abstractmethod
    def request(self, sample, mode: str, rng, media_root: str | Path, num_frames: int) -> Request:
        ...

    @abstractmethod
    def score_sample(self, sample, answer: str, mode: str, num_frames: int) -> dict:
        ...

    @abstractmethod
    def aggregate(self, samples: list, records: list[dict], mode: str) -> dict:
        ...

    @abstractmethod
    def notes(self, mode: str) -> list[str]:
        ...


__all__ = [
    "AnnotationError",
    "Benchmark",
    "MODES",
    "MediaRequest",
    "Mode",
    "PredictionError",
    "ReleaseCrash",
    "Request",
    "check_mode",
    "load_json",
    "mode_label",
]
