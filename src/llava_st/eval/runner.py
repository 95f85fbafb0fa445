"""The evaluation runner: prompts -> batched answers -> resumable per-rank records -> merged report.

The model is reached through one small interface, :class:`Predictor`: a
batched ``ask_batch(requests) -> answers``. A :class:`~llava_st.eval.base.Request`
holds the prompt text (release markup, with ``<image>``/``<video>``) and the
media to show (an image, or a video with its frame range and frame count);
the answer is the decoded text with bin tokens kept (``<TEMP-012>``), as
``batch_decode(..., skip_special_tokens=False)`` gives it.

A run (see :func:`run_eval`):

1. reads the annotation file and picks the ids to score (the benchmark's
   evaluated set, cut to ``limit``), and this rank's share of them
   (:mod:`llava_st.eval.shards`);
2. checks the output folder with the other ranks: a fresh run needs an
   empty folder; ``resume`` continues the run recorded there (same benchmark,
   data, mode, frames and seed) and skips every id already recorded by any
   rank, tolerating a last line cut short by a kill;
3. asks the predictor batch by batch and appends one record per sample
   (id, prompt, raw answer, parsed result, per-sample scores) to its own
   file, flushed and synced after every batch (:mod:`llava_st.eval.store`);
4. on rank 0, waits until every id is recorded, writes ``predictions.jsonl``
   (all records in id order) and the report (``report.json``, ``report.md``),
   computed from the recorded answers exactly as ``llava-st score`` computes it.

Prompts: canonical mode draws each sample's template from a generator seeded
with ``(seed, benchmark, id)``, so a prompt never depends on the rank, the
batch or a resume; published-compatible mode draws unseeded, as the release.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from .base import ReleaseCrash, Request, check_mode
from .benchmarks import get_benchmark
from .report import markdown
from .scoring import score, select_ids
from .shards import Coordinator, DistEnv, dist_env, shard
from .store import (
    MANIFEST,
    MERGED,
    ShardWriter,
    StoreError,
    finished,
    read_manifest,
    read_records,
    shard_files,
    shard_path,
    write_jsonl,
    write_manifest,
)

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


@runtime_checkable
class Predictor(Protocol):
    """What the runner needs from a model: answers for a batch of requests, in order."""

    def ask_batch(self, requests: Sequence[Request]) -> list[str]:
        """One decoded answer per request (bin tokens kept, ``<|im_end|>`` may be present)."""
        ...


# A predictor may also have ``prefetch(requests)``: the runner calls it with the next
# batch before asking the current one, so media can load while the model generates.


@dataclass
class EvalConfig:
    """Settings of one evaluation run.

    Attributes:
        bench: benchmark name (:data:`llava_st.eval.benchmarks.BENCHMARKS`).
        data: the annotation file.
        media_root: folder the file's image/video paths are relative to.
        out_dir: the run folder (see :mod:`llava_st.eval.store`).
        mode: ``"canonical"`` or ``"published"``.
        split: RefCOCO split, for the published comparison.
        num_frames: frames sampled per video.
        batch_size: requests per ``ask_batch`` call.
        limit: score only the first ``limit`` ids of the evaluated set.
        resume: continue the run recorded in ``out_dir``.
        seed: prompt seed (canonical mode).
        progress: show a progress bar.
        wait_timeout_s: how long rank 0 waits for the other ranks' records.
        poll_s: how often rank 0 looks for them.
    """

    bench: str
    data: Path
    media_root: Path
    out_dir: Path
    mode: str = "canonical"
    split: str | None = None
    num_frames: int = 100
    batch_size: int = 8
    limit: int | None = None
    resume: bool = False
    seed: int = 0
    progress: bool = True
    wait_timeout_s: float = 86400.0
    poll_s: float = 0.5

    def manifest(self) -> dict[str, Any]:
        """What identifies the run (a resume must match it)."""
        return {
            "bench": self.bench,
            "data": str(Path(self.data).resolve()),
            "media_root": str(Path(self.media_root).resolve()),
            "mode": self.mode,
            "num_frames": self.num_frames,
            "seed": self.seed,
            "split": self.split,
        }


def prompt_rng(seed: int, bench: str, sample_id: int, mode: str) -> random.Random:
    """The generator that picks a sample's prompt template: seeded per sample, or unseeded (published mode)."""
    if mode == "published":
        return random.Random()
    return random.Random(f"{seed}:{bench}:{sample_id}")


def run_eval(predictor: Predictor, cfg: EvalConfig, env: DistEnv | None = None) -> dict[str, Any] | None:
    """Run one benchmark through ``predictor``; return the report on rank 0 (``None`` on other ranks).

    Raises:
        AnnotationError: a malformed annotation file.
        RuntimeError: the output folder is not usable (on every rank alike).
        StoreError: corrupt record files, or other ranks' records missing after ``wait_timeout_s``.
        ReleaseCrash: published mode on a set where the released scorer crashes
            (the records and ``predictions.jsonl`` are written first).
    """
    bench, samples = _load(cfg)
    env = env or dist_env()
    ids = select_ids(bench, len(samples), cfg.mode, cfg.limit)
    out = Path(cfg.out_dir)

    coord = Coordinator(env)
    try:
        coord.agree(_folder_problem(out, cfg))
        out.mkdir(parents=True, exist_ok=True)
        problem = None
        if env.rank == 0 and read_manifest(out) is None:
            try:
                write_manifest(out, cfg.manifest())
            except OSError as exc:
                problem = f"cannot write {out / MANIFEST}: {exc}"
        coord.agree(problem)  # nobody writes records before the manifest exists
        own = shard_path(out, env.rank, env.world_size)
        read_records(own, repair=True)  # cut a line a kill left half-written
        done = set(finished(out))
        todo = [i for i in shard(ids, env.rank, env.world_size) if i not in done]
        _run_shard(predictor, bench, samples, todo, own, cfg, env)
        if env.rank != 0:
            return None
        records = _wait_for_all(out, ids, cfg)
        return _finish(bench, samples, records, out, cfg)
    finally:
        coord.close()


def _load(cfg: EvalConfig):
    """Check the settings and read the annotation file: ``(benchmark, samples)``."""
    check_mode(cfg.mode)
    if cfg.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.mode == "published" and cfg.num_frames != 100:
        raise ValueError("published-compatible runs sample 100 frames, as the release; do not change num_frames")
    bench = get_benchmark(cfg.bench)
    return bench, bench.load(cfg.data)


def preflight(cfg: EvalConfig) -> None:
    """Every check of :func:`run_eval` that needs no model (settings, annotation file, output
    folder), so that a command line can fail before it spends minutes loading a model.

    Raises what :func:`run_eval` raises for the same problems.
    """
    _load(cfg)
    problem = _folder_problem(Path(cfg.out_dir), cfg)
    if problem:
        raise RuntimeError(problem)


def _folder_problem(out: Path, cfg: EvalConfig) -> str | None:
    existing = shard_files(out) + [p for p in (out / MANIFEST, out / MERGED, out / REPORT_JSON) if p.exists()]
    if not cfg.resume:
        if existing:
            return f"{out} holds a previous run ({existing[0].name}); pass --resume to continue it or choose an empty folder"
        return None
    try:
        manifest = read_manifest(out)
    except StoreError as exc:
        return str(exc)
    if manifest is None:
        if shard_files(out):
            return f"{out} holds records but no {MANIFEST}: it is not a run folder of this runner"
        return None
    want = cfg.manifest()
    diff = [k for k in want if manifest.get(k) != want[k]]
    if diff:
        return (
            f"cannot resume {out}: it was run with "
            + ", ".join(f"{k}={manifest.get(k)!r}" for k in diff)
            + " but this run has "
            + ", ".join(f"{k}={want[k]!r}" for k in diff)
        )
    return None


def _run_shard(predictor: Predictor, bench, samples: list, todo: list[int], own: Path, cfg: EvalConfig, env: DistEnv) -> None:
    from tqdm import tqdm

    bar = tqdm(
        total=len(todo),
        unit="sample",
        desc=f"{cfg.bench} rank {env.rank}/{env.world_size}",
        disable=not cfg.progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    try:
        batches = [todo[b : b + cfg.batch_size] for b in range(0, len(todo), cfg.batch_size)]

        def make(batch: list[int]) -> list[Request]:
            return [
                bench.request(samples[i], cfg.mode, prompt_rng(cfg.seed, cfg.bench, i, cfg.mode), cfg.media_root, cfg.num_frames)
                for i in batch
            ]

        prefetch = getattr(predictor, "prefetch", None)
        upcoming = make(batches[0]) if batches else []
        with ShardWriter(own) as writer:
            for k, batch in enumerate(batches):
                requests = upcoming
                if k + 1 < len(batches):
                    upcoming = make(batches[k + 1])
                    if prefetch is not None:
                        prefetch(upcoming)  # the next batch's media load while this one generates
                answers = predictor.ask_batch(requests)
                if not isinstance(answers, (list, tuple)) or len(answers) != len(requests):
                    got = len(answers) if isinstance(answers, (list, tuple)) else type(answers).__name__
                    raise RuntimeError(f"the predictor answered {got} for {len(requests)} requests")
                writer.write(_record(bench, samples[i], req, ans, cfg) for i, req, ans in zip(batch, requests, answers))
                bar.update(len(batch))
    finally:
        bar.close()
    if todo and cfg.progress:
        took = time.perf_counter() - start
        print(
            f"{cfg.bench} rank {env.rank}: {len(todo)} samples in {took:.1f} s ({len(todo) / max(took, 1e-9):.2f} samples/s)",
            file=sys.stderr,
        )


def _record(bench, sample, req: Request, answer: Any, cfg: EvalConfig) -> dict[str, Any]:
    if not isinstance(answer, str):
        raise RuntimeError(f"the predictor answered {type(answer).__name__} for sample {req.sample_id}, not text")
    rec: dict[str, Any] = {"id": req.sample_id, "prompt": req.prompt, "media": asdict(req.media), "answer": answer}
    try:
        scored = bench.score_sample(sample, answer, cfg.mode, cfg.num_frames)
    except ReleaseCrash as exc:
        rec["release_crash"] = str(exc)
        return rec
    scored.pop("id", None)
    rec.update(scored)
    return rec


def _wait_for_all(out: Path, ids: list[int], cfg: EvalConfig) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + cfg.wait_timeout_s
    while True:
        have = finished(out)
        missing = [i for i in ids if i not in have]
        if not missing:
            return {i: have[i][1] for i in ids}
        if time.monotonic() > deadline:
            head = ", ".join(str(i) for i in missing[:10])
            raise StoreError(
                f"{len(missing)} sample(s) still have no record after {cfg.wait_timeout_s:g} s (ids {head} ...): "
                "did another rank stop? rerun with --resume"
            )
        time.sleep(cfg.poll_s)


def _finish(bench, samples: list, records: dict[int, dict[str, Any]], out: Path, cfg: EvalConfig) -> dict[str, Any]:
    ordered = [records[i] for i in sorted(records)]
    write_jsonl(out / MERGED, ordered)
    report = score(
        bench,
        samples,
        {i: r["answer"] for i, r in records.items()},
        cfg.mode,
        num_frames=cfg.num_frames,
        limit=cfg.limit,
        data=cfg.data,
        split=cfg.split,
        predictions=MERGED,
    )
    tmp = out / (REPORT_JSON + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out / REPORT_JSON)
    (out / REPORT_MD).write_text(markdown(report), encoding="utf-8")
    return report


__all__ = ["EvalConfig", "Predictor", "REPORT_JSON", "REPORT_MD", "prompt_rng", "run_eval"]
