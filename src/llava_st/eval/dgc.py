"""DGC: dense grounded captioning of an image, scored as phrase grounding plus caption quality.

The release has no DGC scorer (EVAL-PROTOCOL). Canonical mode follows the
grounded-caption evaluation of GLaMM (Rasheed et al., CVPR 2024, "GCG"), with
boxes where GLaMM has masks:

* an answer is read with the canonical DGC grammar (phrases each followed by
  a box; :func:`llava_st.protocol.answers.parse_answer`); its caption is the
  text with the boxes removed;
* the predicted boxes are matched one to one with the ground-truth phrase
  boxes, highest box IoU first, while that IoU is above 0 (GLaMM's matching;
  :func:`llava_st.eval.metrics.greedy_matching`);
* **mIoU**: per image the mean IoU of the matched pairs (0 when nothing
  matches), averaged over images (GLaMM's mIoU);
* **Recall@0.5**: matched pairs with IoU >= 0.5 over all ground-truth phrases
  of the set; **Precision@0.5**: the same pairs over all predicted phrases (GLaMM
  also asks the phrases' text to agree, by BERT similarity; we match boxes
  only);
* **caption** metrics (METEOR, CIDEr, BLEU-1..4, ROUGE-L) of the captions with
  the boxes removed, through the COCO toolkit.

An answer the grammar cannot read (no box, a malformed box) is a miss: no
predicted phrase and an empty caption. Boxes are normalised ``xyxy``; a
zero-area box has IoU 0 with everything. Every number is a percentage.

Samples: ``synth-dgc`` reads a release-format file (ST-Synth's
``test/dgc.json``, or any DGC file in the release's training format;
:mod:`.release_format`); the truth is its answer, read with the same grammar.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.formats import AnnotationError
from ..protocol.answers import GroundedCaption, ParseFailure, parse_answer
from ..protocol.tokens import RELEASE_BINS, BinCounts
from . import metrics
from .base import Benchmark, MediaRequest, Request
from .captions import attach_caption_scores, canonical_caption_metrics, caption_scores
from .release_format import read_question_answers

THRESHOLD = 0.5


@dataclass(frozen=True)
class GroundedImage:
    """One image's grounded description: its caption (boxes removed), phrases and their normalised ``xyxy`` boxes."""

    image: str
    caption: str
    phrases: tuple[str, ...]
    boxes: tuple[tuple[float, float, float, float], ...]
    question: str
    index: int = field(default=0, compare=False)


def read_release_grounded(path: str | Path) -> list[GroundedImage]:
    """DGC samples of a release-format file; the truth is its answer, read with the DGC grammar.

    An answer without any box is a caption with no phrase; a malformed box is an error.
    """
    out = []
    for qa in read_question_answers(path, "dgc"):
        truth = parse_answer(qa.answer, "dgc", bins=RELEASE_BINS)
        if isinstance(truth, ParseFailure):
            if "no [x1, y1, x2, y2] box" not in truth.reason:
                raise AnnotationError(path, qa.index, "conversations[1].value", f"not a DGC answer ({truth.reason})")
            out.append(GroundedImage(qa.media, qa.answer.strip(), (), (), qa.question, index=qa.index))
            continue
        assert isinstance(truth, GroundedCaption)
        phrases = tuple(ph.text for ph in truth.phrases)
        boxes = tuple(tuple(ph.box.xyxy) for ph in truth.phrases)
        out.append(GroundedImage(qa.media, truth.caption, phrases, boxes, qa.question, index=qa.index))  # type: ignore[arg-type]
    return out


def match_phrases(pred: np.ndarray, truth: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Greedy one-to-one matching of predicted (``[P, 4]``) and true (``[G, 4]``) boxes by IoU: ``(pairs, their IoUs)``."""
    iou = metrics.box_iou_matrix(pred, truth)
    pairs = metrics.greedy_matching(iou)
    return pairs, np.asarray([iou[p, g] for p, g in pairs], dtype=np.float64)


class GroundedCaptioning(Benchmark):
    """DGC: ``synth-dgc`` (release-format files)."""

    task = "dgc"
    published_scorer = False

    def __init__(self, name: str = "synth-dgc", *, bins: BinCounts):
        self.name = name
        self.bins = bins

    def load(self, path: str | Path) -> list[GroundedImage]:
        return read_release_grounded(path)

    def request(self, sample: GroundedImage, mode: str, rng: random.Random, media_root, num_frames: int) -> Request:
        return Request(sample.index, sample.question, MediaRequest("image", str(Path(media_root) / sample.image), None, 1))

    def score_sample(self, sample: GroundedImage, answer: str, mode: str, num_frames: int) -> dict:
        parsed = parse_answer(answer, "dgc", bins=self.bins)
        record: dict[str, Any] = {"id": sample.index, "reference": sample.caption}
        if isinstance(parsed, ParseFailure):
            record.update(parsed=parsed.to_dict(), readable=False, hypothesis="")
            pred = np.zeros((0, 4))
        else:
            assert isinstance(parsed, GroundedCaption)
            phrases = [{"phrase": ph.text, "box": list(ph.box.xyxy)} for ph in parsed.phrases]
            record.update(parsed={"caption": parsed.caption, "phrases": phrases}, readable=True, hypothesis=parsed.caption)
            pred = np.asarray([ph["box"] for ph in phrases], dtype=np.float64).reshape(-1, 4)
        pairs, ious = match_phrases(pred, np.asarray(sample.boxes, dtype=np.float64).reshape(-1, 4))
        record["matches"] = [{"pred": p, "truth": g, "iou": float(v)} for (p, g), v in zip(pairs, ious)]
        record["scores"] = {
            "mIoU": float(ious.mean() * 100) if len(ious) else 0.0,
            "hits@0.5": metrics.hits(ious, THRESHOLD, strict=False),
            "num_truth": len(sample.boxes),
            "num_pred": int(len(pred)),
        }
        return record

    def aggregate(self, samples: list[GroundedImage], records: list[dict], mode: str) -> dict:
        if not records:
            return {}
        hits = sum(r["scores"]["hits@0.5"] for r in records)
        n_truth = sum(r["scores"]["num_truth"] for r in records)
        n_pred = sum(r["scores"]["num_pred"] for r in records)
        out: dict[str, float] = {
            "mIoU": float(np.mean([r["scores"]["mIoU"] for r in records])),
            "Recall@0.5": hits / n_truth * 100 if n_truth else 0.0,
            "Precision@0.5": hits / n_pred * 100 if n_pred else 0.0,
        }
        scores = caption_scores([r["reference"] for r in records], [r["hypothesis"] for r in records])
        attach_caption_scores(records, scores.per_sample)
        out.update(canonical_caption_metrics(scores.aggregate))
        return out

    def notes(self, mode: str) -> list[str]:
        return [
            "the release has no DGC scorer; canonical scoring after GLaMM's grounded-caption evaluation, with boxes",
            "predicted and true phrase boxes matched one to one, highest IoU first while IoU > 0",
            "mIoU: mean IoU of the matched pairs per image (0 if none), averaged over images",
            "Recall@0.5 / Precision@0.5: matched pairs with IoU >= 0.5 over all true / all predicted phrases of the "
            "set (phrase text is not compared)",
            "caption metrics on the text with its boxes removed (COCO toolkit); all numbers x100",
            "an answer the DGC grammar cannot read is a miss: no phrase, empty caption",
        ]


__all__ = ["GroundedCaptioning", "GroundedImage", "match_phrases", "read_release_grounded"]
