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
3. asks the predictor batch by batch through the prefetching loop of
   :func:`llava_st.infer.pipeline.pipelined` (each batch is announced to the
   predictor's ``prefetch``, when it has one, before the batch ahead of it is
   asked) and appends one record per sample (id, prompt, raw answer, parsed
   result, per-sample scores) to its own file, flushed and synced after every
   batch (:mod:`llava_st.eval.store`). When some media of a batch do not load
   (:class:`~llava_st.infer.pipeline.BatchError`), the rest of the batch is
   recorded before the error ends the run;
4. on rank 0, waits until every id is recorded, writes ``predictions.jsonl``
   (all records in id order) and the report (``report.json``, ``report.md``),
   computed from the recorded answers exactly as ``llava-st score`` computes it.

Frames: a video is sampled at ``num_frames`` frames; by default the
predictor's own count (its ``num_frames`` attribute: the model's configured
``T``), else the release's 100. Published-compatible runs always sample 100.

Prompts: canonical mode draws each sample's template from a generator seeded
with ``(seed, benchmark, id)``, so a prompt never depends on the rank, the
batch or a resume; published-compatible mode draws unseeded, as the release.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from ..config import LlavaSTConfig
from ..errors import ConfigError, EvalError
from ..infer.pipeline import BatchError, pipelined
from ..protocol.tokens import RELEASE_BINS, BinCounts
from .base import ReleaseCrash, Request, check_bench_mode, check_mode
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

#: Frames per video of the released model, which published-compatible runs must use.
RELEASE_NUM_FRAMES: int = LlavaSTConfig.__dataclass_fields__["num_frames"].default


class PredictorError(EvalError, RuntimeError):
    """The predictor broke the runner's interface (wrong number or type of answers)."""


@runtime_checkable
class Predictor(Protocol):
    """What the runner needs from a model: answers for a batch of requests, in order."""

    def ask_batch(self, requests: Sequence[Request]) -> list[str]:
        """One decoded answer per request (bin tokens kept, ``<|im_end|>`` may be present)."""
        ...


# A predictor may also have ``prefetch(requests)``: the runner calls it with each batch
# before it asks the one before, so media can load while the model generates; and
# ``num_frames``: the frames per video it samples when the run does not say.


@dataclass
class EvalConfig:
    """Settings of one evaluation run.

    Attributes:
        bench: benchmark name (:data:`llava_st.eval.benchmarks.BENCHMARKS`).
        data: the annotation file.
        media_root: folder the file's image/video paths are relative to.
        out_dir: the run folder (see :mod:`llava_st.eval.store`).
        bins: the model's bin counts (``config.coords.bins``), with which canonical
            mode reads answers (published mode reads with the release's); ``None``:
            the predictor's ``bins``, else the release's (see :func:`resolve_num_frames`).
        mode: ``"canonical"`` or ``"published"``.
        split: RefCOCO split, for the published comparison.
        num_frames: frames sampled per video; ``None``: the predictor's ``num_frames``
            (the model's own), or :data:`RELEASE_NUM_FRAMES` (published mode, or a
            predictor that has none); see :func:`resolve_num_frames`.
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
    bins: BinCounts | None = None
    mode: str = "canonical"
    split: str | None = None
    num_frames: int | None = None
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
            "bins": None if self.bins is None else [self.bins.time, self.bins.space],
            "seed": self.seed,
            "split": self.split,
        }


def resolve_num_frames(cfg: EvalConfig, predictor: Any = None) -> EvalConfig:
    """``cfg`` with its frame and bin counts decided. Each is the one given, else the
    release's in published mode, else the predictor's own (``num_frames``, ``bins``),
    else the release's (:data:`RELEASE_NUM_FRAMES`, :data:`~llava_st.protocol.tokens.RELEASE_BINS`)."""
    model_own = cfg.mode != "published"
    if cfg.num_frames is None:
        own = getattr(predictor, "num_frames", None) if model_own else None
        cfg = replace(cfg, num_frames=int(own) if own is not None else RELEASE_NUM_FRAMES)
    if cfg.bins is None:
        own = getattr(predictor, "bins", None) if model_own else None
        cfg = replace(cfg, bins=own if own is not None else RELEASE_BINS)
    return cfg


def prompt_rng(seed: int, bench: str, sample_id: int, mode: str) -> random.Random:
    """The generator that picks a sample's prompt template: seeded per sample, or unseeded (published mode)."""
    if mode == "published":
        return random.Random()
    return random.Random(f"{seed}:{bench}:{sample_id}")


def run_eval(predictor: Predictor, cfg: EvalConfig, env: DistEnv | None = None) -> dict[str, Any] | None:
    """Run one benchmark through ``predictor``; return the report on rank 0 (``None`` on other ranks).

    Raises:
        ConfigError: settings that cannot hold together.
        AnnotationError: a malformed annotation file.
        StoreError: the output folder is not usable (on every rank alike), corrupt
            record files, or other ranks' records missing after ``wait_timeout_s``.
        BatchError: media of some samples did not load (named in the message; the
            rest of their batch is recorded).
        PredictorError: the predictor answered the wrong number or type of answers.
        ReleaseCrash: published mode on a set where the released scorer crashes
            (the records and ``predictions.jsonl`` are written first).
    """
    cfg = resolve_num_frames(cfg, predictor)
    bench, samples = _load(cfg)
    env = env or dist_env()
    ids = select_ids(bench, len(samples), cfg.mode, cfg.limit)
    out = Path(cfg.out_dir)

    coord = Coordinator(env)
    try:
        _agree(coord, _folder_problem(out, cfg))
        out.mkdir(parents=True, exist_ok=True)
        problem = None
        if env.rank == 0 and read_manifest(out) is None:
            try:
                write_manifest(out, cfg.manifest())
            except OSError as exc:
                problem = f"cannot write {out / MANIFEST}: {exc}"
        _agree(coord, problem)  # nobody writes records before the manifest exists
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


def _agree(coord: Coordinator, problem: str | None) -> None:
    """Every rank stops with the same :class:`StoreError` when any rank found a problem with the folder."""
    try:
        coord.agree(problem)
    except RuntimeError as exc:  # the coordinator's way of saying that some rank has a problem
        raise StoreError(str(exc)) from None


def _load(cfg: EvalConfig):
    """Check the settings and read the annotation file: ``(benchmark, samples)``."""
    check_mode(cfg.mode)
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.num_frames is not None and cfg.num_frames < 1:
        raise ConfigError(f"num_frames must be >= 1, got {cfg.num_frames}")
    if cfg.mode == "published" and cfg.num_frames not in (None, RELEASE_NUM_FRAMES):
        raise ConfigError(
            f"published-compatible runs sample {RELEASE_NUM_FRAMES} frames, as the release; do not change num_frames"
        )
    # before run_eval decides them, the counts only need to read the annotations: any will do
    bench = get_benchmark(cfg.bench, bins=cfg.bins if cfg.bins is not None else RELEASE_BINS)
    check_bench_mode(bench, cfg.mode)
    return bench, bench.load(cfg.data)


def preflight(cfg: EvalConfig) -> None:
    """Every check of :func:`run_eval` that needs no model (settings, annotation file, output
    folder), so that a command line can fail before it spends minutes loading a model.
    With ``num_frames=None`` or ``bins=None`` (decided by the predictor) a
    resumed run's frame and bin counts are checked by :func:`run_eval` only.

    Raises what :func:`run_eval` raises for the same problems.
    """
    _load(cfg)
    problem = _folder_problem(Path(cfg.out_dir), cfg)
    if problem:
        raise StoreError(problem)


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
    # counts not decided yet (preflight, the predictor's own) are checked by run_eval
    want = {k: v for k, v in cfg.manifest().items() if not (k in ("num_frames", "bins") and v is None)}
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
        batches = (todo[b : b + cfg.batch_size] for b in range(0, len(todo), cfg.batch_size))

        def make(batch: list[int]) -> tuple[list[int], list[Request]]:
            return batch, [
                bench.request(samples[i], cfg.mode, prompt_rng(cfg.seed, cfg.bench, i, cfg.mode), cfg.media_root, cfg.num_frames)
                for i in batch
            ]

        def ask(made: tuple[list[int], list[Request]]) -> tuple[Any, BatchError | None]:
            try:
                return predictor.ask_batch(made[1]), None
            except BatchError as exc:  # some media did not load: keep the answers of the others
                return exc.results, exc

        prefetch = getattr(predictor, "prefetch", None)
        announce = None if prefetch is None else (lambda made: prefetch(made[1]))
        with ShardWriter(own) as writer:
            for (batch, requests), (answers, failed) in pipelined(map(make, batches), ask, announce):
                if not isinstance(answers, (list, tuple)) or len(answers) != len(requests):
                    got = len(answers) if isinstance(answers, (list, tuple)) else type(answers).__name__
                    raise PredictorError(f"the predictor answered {got} for {len(requests)} requests")
                done = [(i, req, ans) for i, req, ans in zip(batch, requests, answers) if failed is None or ans is not None]
                writer.write(_record(bench, samples[i], req, ans, cfg) for i, req, ans in done)
                bar.update(len(done))
                if failed is not None:
                    raise failed
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
        raise PredictorError(f"the predictor answered {type(answer).__name__} for sample {req.sample_id}, not text")
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


__all__ = [
    "RELEASE_NUM_FRAMES",
    "REPORT_JSON",
    "REPORT_MD",
    "EvalConfig",
    "Predictor",
    "PredictorError",
    "preflight",
    "prompt_rng",
    "resolve_num_frames",
    "run_eval",
]
