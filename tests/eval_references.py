"""Slow, obviously correct computations shared by the evaluation tests (written here, not by the code under test)."""

from __future__ import annotations


def slow_box_iou(a, b) -> float:
    """Box IoU of two ``xyxy`` boxes, written out; 0 for a zero union, never below 0."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return max(inter / union, 0.0) if union != 0 else 0.0


def toolkit(references: list[list[str]], hypotheses: list[str]) -> dict[str, float]:
    """Corpus caption scores (x100, canonical names) as the COCO toolkit's own classes give them: PTB tokens of
    every caption in one run, then each scorer once over all samples."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    lines = {("h", i): [{"caption": h}] for i, h in enumerate(hypotheses)}
    for i, refs in enumerate(references):
        lines.update({("r", i, k): [{"caption": r}] for k, r in enumerate(refs)})
    tok = PTBTokenizer().tokenize(lines)
    gts = {i: [tok[("r", i, k)][0] for k in range(len(refs))] for i, refs in enumerate(references)}
    res = {i: tok[("h", i)] for i in range(len(hypotheses))}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"BLEU-{n + 1}": bleu[n] * 100 for n in range(4)}
    out["METEOR"] = Meteor().compute_score(gts, res)[0] * 100
    out["ROUGE-L"] = Rouge().compute_score(gts, res)[0] * 100
    out["CIDEr"] = Cider().compute_score(gts, res)[0] * 100
    return out
