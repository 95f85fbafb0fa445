"""Shared pieces of the evaluation: scoring modes, errors, requests and the benchmark interface.

Annotation files are read by :mod:`llava_st.data.formats`; its
:class:`AnnotationError` is re-exported here.

Two scoring modes (SPEC §5):

* ``canonical`` (our default): every sample counts, degenerate inputs never
  crash, prompts are seeded, ELC's time IoU uses the ``Ends in`` end time,
  ST-Align reports sIoU and vIoU under clear names;
* ``published``: reproduces the authors' released scorer, bugs included,
  under its own key names (``--published-compat`` on the command line).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..data.formats import AnnotationError  # defined with the formats; re-exported for older imports
from ..errors import ConfigError, EvalError
from ..protocol.tokens import BinCounts

Mode = Literal["canonical", "published"]
MODES: tuple[str, ...] = ("canonical", "published")


def mode_label(mode: str) -> str:
    """How a mode is named in reports."""
    return {"canonical": "canonical", "published": "published-compat"}[mode]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"unknown scoring mode {mode!r}; expected one of {MODES}")
    return mode


def check_bench_mode(bench: "Benchmark", mode: str) -> str:
    """``mode`` when ``bench`` can be scored in it.

    Raises:
        ConfigError: an unknown mode, or published-compatible scoring of a benchmark
            the authors' release has no scorer for.
    """
    check_mode(mode)
    if mode == "published" and not bench.published_scorer:
        raise ConfigError(
            f"{bench.name}: the authors' release has no scorer for {bench.task.upper()}, so there is no "
            "published-compatible mode; score it in canonical mode (drop --published-compat)"
        )
    return mode


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
    #: bin counts of the model whose answers canonical mode reads (given to the
    #: constructor); published mode reads with the release's, ``RELEASE_BINS``
    bins: BinCounts
    #: whether the authors' release scores this benchmark, i.e. whether it has a
    #: published-compatible mode (REG, TR, DVC and DGC have no released scorer)
    published_scorer: bool = True

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
    "check_bench_mode",
    "check_mode",
    "mode_label",
]
