"""The best constant answers: what a model that ignores the pixels and the question can score.

A model's numbers on ST-Synth mean something only next to this floor. For
each evaluated task the constant is chosen on the TRAINING split (the answer
that maximises the task's headline metric there, by exhaustive search over a
grid of bins) and scored on the evaluation set through ``llava-st eval`` with
:class:`ConstantPredictor`, the same scorer as the model:

* REC: one box for every image (Acc@0.5);
* TVG: one span (R@0.5);
* STVG: one span, and one box on every sampled frame of it (m_vIoU);
* SVG: one box on every sampled frame of the span the prompt gives (m_sIoU).

Spans are searched over pairs of sampled frames, boxes over a grid of
centres and sizes (:data:`BOX_GRID` steps per coordinate).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..eval.metrics import box_iou_matrix, temporal_iou
from ..protocol.tokens import BinCounts

BOX_GRID = 21


@dataclass(frozen=True)
class Constants:
    """The constant answer of each task (normalised coordinates)."""

    rec_box: tuple[float, float, float, float]
    tvg_span: tuple[float, float]
    stvg_span: tuple[float, float]
    stvg_box: tuple[float, float, float, float]
    svg_box: tuple[float, float, float, float]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Constants":
        data = json.loads(Path(path).read_text())
        return cls(**{k: tuple(v) for k, v in data.items()})


def box_candidates(steps: int = BOX_GRID) -> np.ndarray:
    """Boxes ``[C, 4]`` with centres and sizes on a ``steps`` grid, inside ``[0, 1]``."""
    g = np.linspace(0, 1, steps)
    cx, cy, w, h = (a.reshape(-1) for a in np.meshgrid(g, g, g[1:], g[1:], indexing="ij"))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes[(boxes >= 0).all(1) & (boxes <= 1).all(1)]


def best_box(truth: np.ndarray, threshold: float | None) -> tuple[float, ...]:
    """The candidate box with the most truth boxes at IoU >= ``threshold`` (or the best mean IoU)."""
    cands = box_candidates()
    score = np.zeros(len(cands))
    for start in range(0, len(truth), 512):  # [C, 512] blocks keep memory small
        iou = box_iou_matrix(cands, truth[start:start + 512])
        score += (iou >= threshold).sum(1) if threshold is not None else iou.sum(1)
    return tuple(float(v) for v in cands[int(score.argmax())])


def best_span(truth: np.ndarray, frames: int) -> tuple[float, float]:
    """The span between two sampled frames with the most truth spans at tIoU >= 0.5."""
    points = np.arange(frames) / (frames - 1)
    cands = np.array([(a, b) for a, b in itertools.combinations(points, 2)])
    score = (temporal_iou(cands[:, None, :], truth[None, :, :]) >= 0.5).sum(1)
    return tuple(float(v) for v in cands[int(score.argmax())])


def _values(folder: Path, task: str) -> list[dict]:
    path = folder / "train" / f"{task}.json"
    if not path.is_file():
        raise DataError(f"{path}: no training file of task {task}")
    return [s["variables"] for s in json.loads(path.read_text())]


def fit_constants(train_folder: str | Path, frames: int) -> Constants:
    """The best constant answers on an ST-Synth folder's training split (``frames`` = T)."""
    folder = Path(train_folder)

    def boxes(vs: list[dict], per_sample_all: bool) -> np.ndarray:
        out = []
        for v in vs:
            xs, ys = v["spatial_width_output_locations"], v["spatial_height_output_locations"]
            n = len(xs) // 2 if per_sample_all else 1
            out += [(xs[2 * i], ys[2 * i], xs[2 * i + 1], ys[2 * i + 1]) for i in range(n)]
        return np.array(out, dtype=np.float64)

    rec = boxes(_values(folder, "rec"), False)
    tvg = np.array([v["temporal_output_locations"][:2] for v in _values(folder, "tvg")])
    stvg_v = _values(folder, "stvg")
    stvg_spans = np.array([v["temporal_output_locations"][:2] for v in stvg_v])
    return Constants(
        rec_box=best_box(rec, 0.5),
        tvg_span=best_span(tvg, frames),
        stvg_span=best_span(stvg_spans, frames),
        stvg_box=best_box(boxes(stvg_v, True), None),
        svg_box=best_box(boxes(_values(folder, "svg"), True), None),
    )


class ConstantPredictor:
    """Answers every request with ``task``'s constant, in the model's answer text (bin
    tokens); a track gets the constant box on every sampled frame of its span. ``bins`` and
    ``num_frames`` are the model's (the runner reads answers with them)."""

    def __init__(self, constants: Constants, task: str, bins: BinCounts, num_frames: int):
        if task not in ("rec", "tvg", "stvg", "svg"):
            raise ConfigError(f"no constant answer for task {task!r}; the tasks are rec, tvg, stvg, svg")
        self.constants = constants
        self.task = task
        self.bins = bins
        self.num_frames = num_frames

    def _t(self, v: float) -> str:
        from ..protocol.bins import value_to_bin
        from ..protocol.tokens import bin_token

        return bin_token("TEMP", value_to_bin("TEMP", v, self.bins))

    def _box(self, box: Sequence[float]) -> str:
        from ..protocol.bins import value_to_bin
        from ..protocol.tokens import bin_token

        axes = ("WIDTH", "HEIGHT", "WIDTH", "HEIGHT")
        return "[" + "".join(bin_token(a, value_to_bin(a, v, self.bins)) for a, v in zip(axes, box)) + "]"

    def _track(self, span: tuple[float, float], box) -> str:
        t = self.num_frames
        frames = [k for k in range(t) if span[0] - 1e-9 <= k / (t - 1) <= span[1] + 1e-9]
        return ", ".join(f"{self._t(k / (t - 1))}: {self._box(box)}" for k in frames)

    def answer(self, prompt: str) -> str:
        c = self.constants
        if self.task == "rec":
            return self._box(c.rec_box)
        if self.task == "tvg":
            return "{" + self._t(c.tvg_span[0]) + self._t(c.tvg_span[1]) + "}"
        if self.task == "stvg":
            span = "{" + self._t(c.stvg_span[0]) + self._t(c.stvg_span[1]) + "}"
            return f"During the span of {span}. Object bounding box: {self._track(c.stvg_span, c.stvg_box)}"
        return self._track(_span_of_prompt(prompt), c.svg_box)

    def ask_batch(self, requests) -> list[str]:
        """:class:`~llava_st.eval.base.Request` s -> answers (the runner's predictor interface)."""
        return [self.answer(r.prompt) for r in requests]


def _span_of_prompt(prompt: str) -> tuple[float, float]:
    from ..protocol.coords import to_placeholders

    _, variables = to_placeholders(prompt, "INPUT")
    times = variables.to_dict()["temporal_input_locations"]
    if len(times) < 2:
        raise DataError(f"an SVG prompt without its span: {prompt!r}")
    return times[0], times[1]


def load(constants: str, task: str, time_bins: str = "16", space_bins: str = "100", num_frames: str = "16",
         **_) -> ConstantPredictor:
    """``llava-st eval --predictor llava_st.embedded.baselines:load --predictor-arg constants=FILE
    --predictor-arg task=rec`` (the defaults are the ``tiny`` config's bins and frames)."""
    return ConstantPredictor(Constants.load(constants), task, BinCounts(int(time_bins), int(space_bins)),
                             int(num_frames))
