"""The dense video captioning evaluation of ActivityNet Captions, and SODA_c.

Sources, followed as their code computes (not as it is sometimes described):

* **event precision and recall, caption scores**: the ActivityNet Captions
  evaluation ``densevid_eval`` (Krishna et al., ICCV 2017), in the 2018
  version of ``evaluate.py`` that later work (PDVC, Vid2Seq, ...) ships as
  ``densevid_eval3``;
* **SODA_c**: ``soda.py`` of SODA (Fujita et al., ECCV 2020), type ``c``.

Definitions, per video (a video is one sample: its ground-truth events and
the predicted events, each a ``[start, end]`` span and a caption):

* tIoU of two spans ``a``, ``b``: ``max(0, min(a1, b1) - max(a0, b0)) /
  (min(max(a1, b1) - min(a0, b0), (a1 - a0) + (b1 - b0)) + 1e-8)`` (the
  union, written so, with the protocol's ``1e-8``: a zero-length span never
  overlaps anything, and an overlap of exactly half the union falls just below
  0.5);
* at each threshold ``t`` of 0.3, 0.5, 0.7, 0.9: **recall** = the share of
  ground-truth events that some prediction overlaps with tIoU ``> t``;
  **precision** = the share of predictions that overlap some ground-truth event
  with tIoU ``> t`` (0 for no prediction). At most the first 1000 predictions
  of a video count;
* **captions at** ``t``: every (prediction, ground-truth event) pair with tIoU
  ``>= t`` is one hypothesis/reference pair; a prediction that overlaps no event
  that well is paired with a reference sharing no word with any caption
  (``abc123!@#``; the 2018 code draws a random string, which scores the same,
  0). The pairs of one video are scored together with the COCO toolkit (PTB
  tokens after non-ASCII characters become spaces; BLEU-1..4, METEOR,
  ROUGE-L, CIDEr with the video's own document frequencies); a video without
  pairs scores 0;
* **SODA_c**: predictions sorted by start time, ground truth in its order;
  ``S[g, p] = tIoU(g, p) * METEOR(g, p)`` where METEOR is computed per pair as
  SODA's code calls the toolkit (the ground-truth caption as the hypothesis,
  the predicted caption as the reference); the best total ``M`` of a
  one-to-one matching that keeps both orders
  (:func:`~llava_st.eval.metrics.order_preserving_max`); ``precision = M / P``,
  ``recall = M / G``, SODA_c = their F-measure (0 for no prediction). SODA_c
  uses no tIoU threshold (type ``c``).

The set's numbers are means over videos (every video counts, also those with
no readable prediction), then means over the four thresholds; ``F1`` is the
F-measure of the mean precision and mean recall. Scores are returned as
fractions; the benchmark reports percentages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .captions import METRICS, pair_meteor, tokenize, toolkit_scores
from .metrics import order_preserving_max

THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)
#: Predictions of one video beyond this many are not scored (``max_proposals``).
MAX_PROPOSALS = 1000
#: The reference of a prediction that overlaps no ground-truth event well enough.
UNMATCHED_REFERENCE = "abc123!@#"
_EPS = 1e-8


@dataclass(frozen=True)
class Events:
    """Events of one video: ``spans`` ``[N, 2]`` (start, end; any unit, the same for truth and
    prediction) and one caption per span."""

    spans: np.ndarray
    captions: tuple[str, ...]

    @classmethod
    def of(cls, spans: Sequence[Sequence[float]], captions: Sequence[str]) -> "Events":
        arr = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
        if len(arr) != len(captions):
            raise ValueError(f"{len(arr)} spans but {len(captions)} captions")
        return cls(arr, tuple(str(c) for c in captions))

    def __len__(self) -> int:
        return len(self.captions)


def tiou_matrix(a: np.ndarray | Sequence, b: np.ndarray | Sequence) -> np.ndarray:
    """The protocol's tIoU of every span of ``a`` (``[N, 2]``) with every span of ``b`` (``[M, 2]``) -> ``[N, M]``.

    Example: ``[0, 2]`` and ``[1, 3]`` -> ``1 / (min(3, 4) + 1e-8)``, a hair under 1/3.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(1, -1, 2)
    inter = np.maximum(0.0, np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]))
    union = np.minimum(
        np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 0], b[..., 0]),
        (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]),
    )
    return inter / (union + _EPS)


def detection(pred: Events, truth: Events, thresholds: Sequence[float] = THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """``(precision, recall)`` of one video's predicted spans at each threshold (tIoU ``>`` threshold).

    Raises:
        ValueError: the truth has no event (recall would divide by zero).
    """
    if len(truth) == 0:
        raise ValueError("a dense-captioning video needs at least one ground-truth event")
    t = np.asarray(thresholds, dtype=np.float64)
    spans = pred.spans[:MAX_PROPOSALS]
    if len(spans) == 0:
        return np.zeros(len(t)), np.zeros(len(t))
    hit = tiou_matrix(spans, truth.spans)[None] > t[:, None, None]  # [K, P, G]
    precision = hit.any(axis=2).mean(axis=1)
    recall = hit.any(axis=1).mean(axis=1)
    return precision, recall


def caption_pairs(pred: Events, truth: Events, threshold: float) -> list[tuple[int, int | None]]:
    """``(prediction, ground-truth event or None)`` pairs of one video at ``threshold`` (tIoU ``>=``), in the protocol's order."""
    spans = pred.spans[:MAX_PROPOSALS]
    if len(spans) == 0:
        return []
    ok = tiou_matrix(spans, truth.spans) >= threshold
    pairs: list[tuple[int, int | None]] = []
    for p in range(len(spans)):
        matched = np.flatnonzero(ok[p])
        if len(matched):
            pairs.extend((p, int(g)) for g in matched)
        else:
            pairs.append((p, None))
    return pairs


def remove_nonascii(text: str) -> str:
    """Every non-ASCII character becomes a space (the protocol's clean-up before tokenising)."""
    return "".join(c if ord(c) < 128 else " " for c in text)


@dataclass(frozen=True)
class DenseCaptionScores:
    """The set's scores (``metrics``, fractions; caption metrics under toolkit names) and each video's (``per_video``)."""

    metrics: dict[str, float]
    per_video: list[dict[str, float]]


def evaluate(videos: Sequence[tuple[Events, Events]], thresholds: Sequence[float] = THRESHOLDS) -> DenseCaptionScores:
    """Score ``(prediction, truth)`` per video with the protocol of the module docstring.

    ``metrics`` holds ``Precision@t``, ``Recall@t`` (each threshold),
    ``Precision``, ``Recall``, ``F1``, the toolkit metrics averaged over the
    thresholds (``Bleu_1`` ... ``CIDEr``) and ``SODA_c``.

    Raises:
        ValueError: no video, or a video whose truth has no event.
        ImportError: ``pycocoevalcap`` is missing.
    """
    if not videos:
        raise ValueError("no videos to score")
    for v, (_, truth) in enumerate(videos):
        if len(truth) == 0:
            raise ValueError(f"video {v}: a dense-captioning video needs at least one ground-truth event")
    k = len(thresholds)
    n = len(videos)
    precision = np.zeros((n, k))
    recall = np.zeros((n, k))
    for v, (pred, truth) in enumerate(videos):
        precision[v], recall[v] = detection(pred, truth, thresholds)

    # one tokenizer run for every caption of the set (Java starts slowly)
    texts: list[str] = [UNMATCHED_REFERENCE]
    pred_at, truth_at = [], []
    for pred, truth in videos:
        pred_at.append(len(texts))
        texts.extend(remove_nonascii(c) for c in pred.captions)
        truth_at.append(len(texts))
        texts.extend(remove_nonascii(c) for c in truth.captions)
    tokens = tokenize(texts)
    junk = tokens[0]

    caption = {m: np.zeros((n, k)) for m in METRICS}
    for j, t in enumerate(thresholds):
        for v, (pred, truth) in enumerate(videos):
            pairs = caption_pairs(pred, truth, t)
            if not pairs:
                continue  # no prediction: every caption score of the video is 0
            hyps = [tokens[pred_at[v] + p] for p, _ in pairs]
            refs = [[junk] if g is None else [tokens[truth_at[v] + g]] for _, g in pairs]
            scores = toolkit_scores(refs, hyps)
            for m in METRICS:
                caption[m][v, j] = scores.aggregate[m]

    soda = _soda_c(videos, tokens, pred_at, truth_at)

    metrics: dict[str, float] = {}
    for j, t in enumerate(thresholds):
        metrics[f"Precision@{t}"] = float(precision[:, j].mean())
    for j, t in enumerate(thresholds):
        metrics[f"Recall@{t}"] = float(recall[:, j].mean())
    p_mean, r_mean = float(precision.mean()), float(recall.mean())
    metrics["Precision"], metrics["Recall"] = p_mean, r_mean
    metrics["F1"] = 2 * p_mean * r_mean / (p_mean + r_mean) if p_mean + r_mean > 0 else 0.0
    for m in METRICS:
        metrics[m] = float(caption[m].mean())
    metrics["SODA_c"] = float(soda.mean())
    per_video = [
        {
            "Precision": float(precision[v].mean()),
            "Recall": float(recall[v].mean()),
            "METEOR": float(caption["METEOR"][v].mean()),
            "CIDEr": float(caption["CIDEr"][v].mean()),
            "SODA_c": float(soda[v]),
        }
        for v in range(n)
    ]
    return DenseCaptionScores(metrics, per_video)


def _soda_c(videos: Sequence[tuple[Events, Events]], tokens: list[str], pred_at: list[int], truth_at: list[int]) -> np.ndarray:
    """SODA_c of each video (see the module docstring); one METEOR call for every pair of the set."""
    orders = [np.argsort(pred.spans[:, 0], kind="stable") for pred, _ in videos]
    refs, hyps, where = [], [], []
    for v, ((pred, truth), order) in enumerate(zip(videos, orders)):
        for g in range(len(truth)):
            for p in order:
                refs.append([tokens[pred_at[v] + int(p)]])  # SODA's call: the prediction is the reference
                hyps.append(tokens[truth_at[v] + g])
        where.append(len(hyps))
    meteor = np.asarray(pair_meteor(refs, hyps), dtype=np.float64)
    out = np.zeros(len(videos))
    start = 0
    for v, ((pred, truth), order) in enumerate(zip(videos, orders)):
        stop = where[v]
        if len(pred) == 0:
            start = stop
            continue
        scores = meteor[start:stop].reshape(len(truth), len(pred))
        best = order_preserving_max(tiou_matrix(truth.spans, pred.spans[order]) * scores)
        p, r = best / len(pred), best / len(truth)
        out[v] = 2 * p * r / (p + r) if p + r > 0 else 0.0
        start = stop
    return out


__all__ = [
    "DenseCaptionScores",
    "Events",
    "MAX_PROPOSALS",
    "THRESHOLDS",
    "UNMATCHED_REFERENCE",
    "caption_pairs",
    "detection",
    "evaluate",
    "remove_nonascii",
    "tiou_matrix",
]
