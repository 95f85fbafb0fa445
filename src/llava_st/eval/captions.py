"""Caption metrics through the COCO caption toolkit ``pycocoevalcap`` (ELC; SPEC §5, EVAL-PROTOCOL §3).

PTB tokenizer (Stanford CoreNLP through Java: lower-cases, drops
punctuation), then BLEU-1..4 (corpus BLEU), METEOR 1.5, ROUGE-L and CIDEr
(document frequencies from the evaluated references, so CIDEr depends on the
whole set). SPICE is not computed, as in the release. One reference per
sample.

The toolkit starts Java processes (a tokenizer run per call, and one METEOR
server per process, kept for later calls): call :func:`caption_scores` once
per set, not once per sample.
"""

from __future__ import annotations

import atexit
import contextlib
import io
from dataclasses import dataclass
from typing import Sequence

from .._optional import require

#: Toolkit metric names, in the order the release reports them.
METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


@dataclass(frozen=True)
class CaptionScores:
    """Corpus scores (``aggregate``) and per-sample scores (``per_sample[name][i]``), toolkit scale (0-1; CIDEr 0-10)."""

    aggregate: dict[str, float]
    per_sample: dict[str, list[float]]


def caption_scores(references: Sequence[str], hypotheses: Sequence[str]) -> CaptionScores:
    """Score ``hypotheses[i]`` against ``references[i]`` with the toolkit.

    Raises:
        ValueError: the two lists differ in length or are empty.
        ImportError: ``pycocoevalcap`` is missing (names the extra to install).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no captions to score")
    require("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    n = len(references)
    # one tokenizer run for both sides (the PTB tokenizer reads line by line, so this
    # equals two runs); keys 0..n-1 are references, n..2n-1 hypotheses
    both = {i: [{"caption": str(r)}] for i, r in enumerate(references)}
    both.update({n + i: [{"caption": str(h)}] for i, h in enumerate(hypotheses)})
    # the toolkit prints progress lines; keep our stdout for our own output
    with contextlib.redirect_stdout(io.StringIO()):
        tokens = PTBTokenizer().tokenize(both)
        gts_tok = {i: tokens[i] for i in range(n)}
        res_tok = {i: tokens[n + i] for i in range(n)}
        bleu, bleu_each = Bleu(4).compute_score(gts_tok, res_tok, verbose=0)
        meteor, meteor_each = _meteor(Meteor).compute_score(gts_tok, res_tok)
        rouge, rouge_each = Rouge().compute_score(gts_tok, res_tok)
        cider, cider_each = Cider().compute_score(gts_tok, res_tok)
    aggregate = {f"Bleu_{n + 1}": float(bleu[n]) for n in range(4)}
    aggregate.update({"METEOR": float(meteor), "ROUGE_L": float(rouge), "CIDEr": float(cider)})
    per_sample = {f"Bleu_{n + 1}": [float(v) for v in bleu_each[n]] for n in range(4)}
    per_sample.update(
        {
            "METEOR": [float(v) for v in meteor_each],
            "ROUGE_L": [float(v) for v in rouge_each],
            "CIDEr": [float(v) for v in cider_each],
        }
    )
    return CaptionScores(aggregate, per_sample)


_METEOR = None


def _meteor(cls):
    """One METEOR server per process: it takes seconds to load its tables and keeps no state between sets."""
    global _METEOR
    proc = getattr(_METEOR, "meteor_p", None)
    if _METEOR is None or proc is None or proc.poll() is not None:
        _METEOR = cls()
        atexit.register(_close_meteor, _METEOR)
    return _METEOR


def _close_meteor(scorer) -> None:
    # The toolkit leaves its METEOR Java server running until garbage collection.
    proc = getattr(scorer, "meteor_p", None)
    if proc is None:
        return
    with contextlib.suppress(Exception):
        proc.stdin.close()
        proc.kill()
        proc.wait(timeout=10)


def release_caption_scores(scores: CaptionScores) -> dict[str, float | list[float]]:
    """The release's ``caption_score`` dict: ``Bleu_n`` is the list BLEU-1..n, every score rounded to 3 decimals."""
    out: dict[str, float | list[float]] = {}
    for n in range(1, 5):
        out[f"Bleu_{n}"] = [round(scores.aggregate[f"Bleu_{i}"], 3) for i in range(1, n + 1)]
    for name in ("METEOR", "ROUGE_L", "CIDEr"):
        out[name] = round(scores.aggregate[name], 3)
    return out


__all__ = ["METRICS", "CaptionScores", "caption_scores", "release_caption_scores"]
