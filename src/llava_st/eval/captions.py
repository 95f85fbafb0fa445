"""Caption metrics through the COCO caption toolkit ``pycocoevalcap`` (SPEC §5, EVAL-PROTOCOL §3).

PTB tokenizer (Stanford CoreNLP through Java: lower-cases, drops
punctuation), then BLEU-1..4 (corpus BLEU), METEOR 1.5, ROUGE-L and CIDEr
(document frequencies from the evaluated references, so CIDEr depends on the
whole set). SPICE is not computed, as in the release. A sample has one
reference or several (region captions: every expression of the region).

Three entry points, from the simplest:

* :func:`caption_scores`: raw references and hypotheses -> corpus and
  per-sample scores (ELC, REG, TR, DGC);
* :func:`tokenize` then :func:`toolkit_scores`: the same in two steps, for
  protocols that score many groups of one tokenized corpus (dense video
  captioning scores each video on its own, EVAL: :mod:`.dense_captioning`);
* :func:`pair_meteor`: METEOR of many independent (hypothesis, references)
  pairs in one call (SODA's score matrix).

The toolkit starts Java processes (a tokenizer run per :func:`tokenize`, and
one METEOR server per process, kept for later calls): tokenize once per set,
not once per sample.
"""

from __future__ import annotations

import atexit
import contextlib
import io
from dataclasses import dataclass
from typing import Sequence, Union

from .._optional import require

#: Toolkit metric names, in the order the release reports them.
METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")

#: One sample's reference: a caption, or several captions of the same thing.
References = Union[str, Sequence[str]]


@dataclass(frozen=True)
class CaptionScores:
    """Corpus scores (``aggregate``) and per-sample scores (``per_sample[name][i]``), toolkit scale (0-1; CIDEr 0-10)."""

    aggregate: dict[str, float]
    per_sample: dict[str, list[float]]


def _reference_lists(references: Sequence[References]) -> list[list[str]]:
    out = []
    for i, ref in enumerate(references):
        refs = [ref] if isinstance(ref, str) else list(ref)
        if not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"reference {i} must be a caption or a non-empty list of captions, got {ref!r}")
        out.append(refs)
    return out


def tokenize(texts: Sequence[str]) -> list[str]:
    """The toolkit's PTB tokenization of each text (one Java run for all of them).

    Example: ``tokenize(["A dog runs."])`` -> ``["a dog runs"]``.

    Raises:
        ImportError: ``pycocoevalcap`` is missing (names the extra to install).
    """
    if not texts:
        return []
    require("pycocoevalcap")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with contextlib.redirect_stdout(io.StringIO()):  # the toolkit prints progress lines
        tokens = PTBTokenizer().tokenize({i: [{"caption": str(t)}] for i, t in enumerate(texts)})
    return [tokens[i][0] for i in range(len(texts))]


def toolkit_scores(
    references: Sequence[Sequence[str]], hypotheses: Sequence[str], metrics: Sequence[str] = METRICS
) -> CaptionScores:
    """Scores of already tokenized captions: ``hypotheses[i]`` against the list ``references[i]``.

    One call per scorer over the whole list, so corpus scores (BLEU, METEOR,
    CIDEr's document frequencies) are those of this list.

    Raises:
        ValueError: the lists differ in length or are empty, or an unknown metric.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no captions to score")
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown caption metrics {unknown}; expected some of {METRICS}")
    require("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: list(r) for i, r in enumerate(references)}
    res = {i: [h] for i, h in enumerate(hypotheses)}
    aggregate: dict[str, float] = {}
    per_sample: dict[str, list[float]] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        if any(m.startswith("Bleu_") for m in metrics):
            bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
            for n in range(4):
                aggregate[f"Bleu_{n + 1}"] = float(bleu[n])
                per_sample[f"Bleu_{n + 1}"] = [float(v) for v in bleu_each[n]]
        if "METEOR" in metrics:
            meteor, meteor_each = _meteor(Meteor).compute_score(gts, res)
            aggregate["METEOR"], per_sample["METEOR"] = float(meteor), [float(v) for v in meteor_each]
        if "ROUGE_L" in metrics:
            rouge, rouge_each = Rouge().compute_score(gts, res)
            aggregate["ROUGE_L"], per_sample["ROUGE_L"] = float(rouge), [float(v) for v in rouge_each]
        if "CIDEr" in metrics:
            cider, cider_each = Cider().compute_score(gts, res)
            aggregate["CIDEr"], per_sample["CIDEr"] = float(cider), [float(v) for v in cider_each]
    keep = [m for m in METRICS if m in metrics]
    return CaptionScores({m: aggregate[m] for m in keep}, {m: per_sample[m] for m in keep})


def pair_meteor(references: Sequence[Sequence[str]], hypotheses: Sequence[str]) -> list[float]:
    """METEOR of each tokenized ``hypotheses[i]`` against its references ``references[i]``, pair by pair.

    A pair's METEOR does not depend on the other pairs, so the pairs go to the
    METEOR server in a few large calls; an empty list gives an empty list.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    out: list[float] = []
    for start in range(0, len(references), _PAIRS_PER_CALL):
        stop = start + _PAIRS_PER_CALL
        out += toolkit_scores(references[start:stop], hypotheses[start:stop], ("METEOR",)).per_sample["METEOR"]
    return out


#: Pairs per METEOR call in :func:`pair_meteor` (one call is one line to the Java server).
_PAIRS_PER_CALL = 2000


def caption_scores(references: Sequence[References], hypotheses: Sequence[str]) -> CaptionScores:
    """Score ``hypotheses[i]`` against ``references[i]`` (a caption or a list of captions) with the toolkit.

    Raises:
        ValueError: the two lists differ in length or are empty, or a reference is not text.
        ImportError: ``pycocoevalcap`` is missing (names the extra to install).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no captions to score")
    refs = _reference_lists(references)
    # one tokenizer run for both sides (the PTB tokenizer reads line by line, so this equals two runs)
    flat = [r for rs in refs for r in rs]
    tokens = tokenize(flat + [str(h) for h in hypotheses])
    tok_refs, pos = [], 0
    for rs in refs:
        tok_refs.append(tokens[pos : pos + len(rs)])
        pos += len(rs)
    return toolkit_scores(tok_refs, tokens[len(flat) :])


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


#: How canonical reports name the toolkit metrics (their values are percentages there).
CANONICAL_NAMES = {
    "Bleu_1": "BLEU-1",
    "Bleu_2": "BLEU-2",
    "Bleu_3": "BLEU-3",
    "Bleu_4": "BLEU-4",
    "METEOR": "METEOR",
    "ROUGE_L": "ROUGE-L",
    "CIDEr": "CIDEr",
}


def canonical_caption_metrics(aggregate: dict[str, float]) -> dict[str, float]:
    """Toolkit scores as canonical reports give them: canonical names, times 100."""
    return {CANONICAL_NAMES[name]: value * 100 for name, value in aggregate.items()}


def attach_caption_scores(records: list[dict], per_sample: dict[str, list[float]], scale: float = 100.0) -> None:
    """Put each sample's toolkit scores (times ``scale``) into its record as ``scores["caption"]``."""
    for i, r in enumerate(records):
        r.setdefault("scores", {})["caption"] = {name: vals[i] * scale for name, vals in per_sample.items()}


def release_caption_scores(scores: CaptionScores) -> dict[str, float | list[float]]:
    """The release's ``caption_score`` dict: ``Bleu_n`` is the list BLEU-1..n, every score rounded to 3 decimals."""
    out: dict[str, float | list[float]] = {}
    for n in range(1, 5):
        out[f"Bleu_{n}"] = [round(scores.aggregate[f"Bleu_{i}"], 3) for i in range(1, n + 1)]
    for name in ("METEOR", "ROUGE_L", "CIDEr"):
        out[name] = round(scores.aggregate[name], 3)
    return out


__all__ = [
    "CANONICAL_NAMES",
    "METRICS",
    "CaptionScores",
    "References",
    "attach_caption_scores",
    "canonical_caption_metrics",
    "caption_scores",
    "pair_meteor",
    "release_caption_scores",
    "tokenize",
    "toolkit_scores",
]
