"""Scoring predictions against a benchmark without a model.

Predictions are JSONL, one ``{"id": i, "answer": text}`` per line, where ``i``
is the 0-based position of the sample in the annotation list and ``text`` the
decoded answer, with bin tokens or after the release's decimal rewrite (both
score the same). Extra keys are allowed (the runner's records carry more).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from .base import Benchmark, PredictionError, check_bench_mode, mode_label
from .report import comparison


def read_predictions(path: str | Path) -> dict[int, str]:
    """``{id: answer}`` from a predictions JSONL file.

    Raises:
        PredictionError: an unreadable line, a line without ``id``/``answer``, an
            id that is not a non-negative whole number, an answer that is not
            text, or an id given twice; each names the file and the line.
    """
    p = Path(path)
    if not p.is_file():
        raise PredictionError(f"{p}: no such predictions file")
    out: dict[int, str] = {}
    with p.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PredictionError(f"{p}: line {lineno}: not valid JSON ({exc})") from exc
            i, answer = _id_and_answer(rec, f"{p}: line {lineno}")
            if i in out:
                raise PredictionError(f"{p}: line {lineno}: id {i} is given twice")
            out[i] = answer
    return out


def _id_and_answer(rec: Any, where: str) -> tuple[int, str]:
    if not isinstance(rec, dict) or "id" not in rec or "answer" not in rec:
        raise PredictionError(f"{where}: each line must be an object with 'id' and 'answer'")
    i = rec["id"]
    if isinstance(i, bool) or not isinstance(i, int) or i < 0:
        raise PredictionError(f"{where}: id must be a non-negative whole number (the sample's position), got {i!r}")
    answer = rec["answer"]
    if not isinstance(answer, str):
        raise PredictionError(f"{where}: answer of id {i} must be text, got {type(answer).__name__}")
    return i, answer


def select_ids(bench: Benchmark, num_samples: int, mode: str, limit: int | None = None) -> list[int]:
    """The sample positions a run scores: the benchmark's evaluated set, cut to ``limit``."""
    ids = bench.evaluated_ids(num_samples, mode)
    if limit is not None:
        if limit < 0:
            raise ConfigError(f"limit must be >= 0, got {limit}")
        ids = ids[:limit]
    return ids


def score(
    bench: Benchmark,
    samples: list,
    answers: Mapping[int, str],
    mode: str = "canonical",
    *,
    num_frames: int = 100,
    limit: int | None = None,
    data: str | Path | None = None,
    split: str | None = None,
    predictions: str | Path | None = None,
) -> dict[str, Any]:
    """Score ``answers`` (``{position: text}``) on ``samples`` and build the report.

    Every sample of the evaluated set (see :func:`select_ids`) must have an
    answer. An id outside the annotation list is an error; an id inside it but
    outside the evaluated set (the release's first-2000 rule, ``limit``) is
    left out and counted in ``ignored_predictions``.

    Raises:
        PredictionError: missing or unknown ids.
        ReleaseCrash: published mode on a sample where the release crashes.
    """
    check_bench_mode(bench, mode)
    if mode == "published" and num_frames != 100:
        raise ConfigError("published-compatible scoring samples 100 frames, as the release; do not change num_frames")
    n = len(samples)
    unknown = sorted(i for i in answers if not 0 <= i < n)
    if unknown:
        raise PredictionError(
            f"{_name(predictions)}: id(s) {_few(unknown)} are not positions of the {n} samples of {_name(data)}"
        )
    ids = select_ids(bench, n, mode, limit)
    missing = [i for i in ids if i not in answers]
    if missing:
        raise PredictionError(f"{_name(predictions)}: no answer for {len(missing)} sample(s): id(s) {_few(missing)}")
    wanted = set(ids)
    ignored = sum(1 for i in answers if i not in wanted)
    records = []
    for i in ids:
        rec = bench.score_sample(samples[i], answers[i], mode, num_frames)
        rec["answer"] = answers[i]
        records.append(rec)
    metrics = bench.aggregate([samples[i] for i in ids], records, mode)
    return {
        "bench": bench.name,
        "split": split,
        "task": bench.task,
        "mode": mode_label(mode),
        "data": None if data is None else str(data),
        "predictions": None if predictions is None else str(predictions),
        "num_frames": num_frames,
        "num_annotations": n,
        "num_scored": len(records),
        "ignored_predictions": ignored,
        "unreadable_answers": sum(1 for r in records if not r.get("readable", True)),
        "metrics": metrics,
        "published": comparison(bench.name, split, mode, metrics),
        "mode_notes": bench.notes(mode),
        "samples": records,
    }


def _few(ids: Iterable[int], k: int = 10) -> str:
    ids = list(ids)
    head = ", ".join(str(i) for i in ids[:k])
    return head + (f" ... ({len(ids)} in all)" if len(ids) > k else "")


def _name(path: str | Path | None) -> str:
    return "predictions" if path is None else str(path)


__all__ = ["read_predictions", "score", "select_ids"]
