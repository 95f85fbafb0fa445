"""The prefetching batch loop: media of the next batch load while the model answers this one.

Three users share it: :meth:`LlavaST.ask_batch <llava_st.infer.LlavaST.ask_batch>`
(a list of requests known up front), the evaluation runner with its
predictor (:mod:`llava_st.eval.runner`, :mod:`llava_st.eval.predictor`: batches
made one at a time, records written after each) and the REST server (requests
arriving over time). It has three parts:

* :class:`Prefetcher` loads (decodes, resizes, encodes) requests on a pool of
  threads. :meth:`Prefetcher.take` gets a batch: a request no thread has
  started yet is cancelled and loaded in the calling thread (waiting for a
  free thread would only add latency), one being loaded is waited for, and a
  load that failed comes back as a :class:`Loaded` holding its exception, so
  one bad file does not take its batch down;
* :func:`pipelined` walks through batches, announcing (prefetching) the next
  ``depth`` batches before it runs the current one::

      prefetch(b0) prefetch(b1) run(b0) prefetch(b2) run(b1) prefetch(b3) run(b2) ...

* :func:`run_batches` is the two together over a list: it answers every request
  whose media loaded, and then raises :class:`BatchError` naming each request
  that failed, with the answers of all the others attached.

Loading runs in threads by default: they start at once and the loaded frames
need no copying. Threads share the interpreter lock with the model's
generation loop, though, and video decoding holds it for part of its work,
so a run whose loading and generating take comparable time overlaps them only
partly (``bench/batch_generation.py`` measures it); a ``pool`` of worker
processes (:func:`process_pool`) loads outside the interpreter instead
(``prepare`` and its results must then pickle), and
``finish`` runs the cheap rest of the preparation (the prompt's encoding) in
the calling thread. Nothing here imports torch or a model.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import ConfigError, LlavaSTError

R = TypeVar("R")  # a request
P = TypeVar("P")  # a request with its media loaded
T = TypeVar("T")  # an answer
B = TypeVar("B")  # a batch


@dataclass
class BatchStats:
    """Where the time of a batched run went (seconds).

    ``waiting_for_media``: time the model stood still because the media of its
    next batch were not loaded yet (loads done in the calling thread count in
    full); ``model``: time spent generating; ``failed``: requests whose media
    did not load; ``model_calls``: decoding forward calls (after each prefill);
    ``forced_tokens``: tokens an answer grammar wrote without a model choice.
    """

    total: float = 0.0
    waiting_for_media: float = 0.0
    model: float = 0.0
    generated_tokens: int = 0
    failed: int = 0
    model_calls: int = 0
    forced_tokens: int = 0

    @property
    def wait_share(self) -> float:
        """Share of the run the model spent waiting for media."""
        return self.waiting_for_media / self.total if self.total else 0.0


@dataclass(frozen=True)
class Loaded(Generic[P]):
    """The outcome of one load: ``value``, or the ``error`` it raised."""

    value: P | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BatchError(LlavaSTError):
    """The media of some requests of a batched run did not load; every other request was answered.

    Attributes:
        failures: position of each failed request -> the exception its load raised.
        results: one entry per request, in order: the answer, or ``None`` where it failed.
        stats: the run's :class:`BatchStats`, when a whole run ended so.
    """

    def __init__(self, failures: dict[int, Exception], results: list, names: dict[int, str],
                 stats: BatchStats | None = None):
        self.failures = dict(failures)
        self.results = list(results)
        self.stats = stats
        listed = "; ".join(f"{names[i]}: {type(e).__name__}: {e}" for i, e in sorted(failures.items()))
        super().__init__(f"{len(failures)} of {len(results)} requests could not be loaded ({listed})")


def _worker_start() -> None:
    # A loader process decodes one request at a time; one torch thread each
    # keeps the loaders and the model from oversubscribing the cores.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def process_pool(num_workers: int) -> ProcessPoolExecutor:
    """``num_workers`` loader processes (spawned, not forked: the model's process runs torch threads)."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(int(num_workers), mp_context=context, initializer=_worker_start)


class Prefetcher(Generic[R, P]):
    """Loads requests with ``prepare`` on ``num_workers`` threads (or on ``pool``) ahead of their use.

    Requests are named by a key (any hashable; an index, a sample id).
    :meth:`prefetch` and :meth:`take` are called from one thread, the one that
    runs the model; ``prepare`` runs on the pool and must be thread-safe (with
    a process ``pool``: a picklable function whose arguments and results
    pickle). ``finish``, when given, turns each prepared value into its final
    form in the calling thread. With ``num_workers = 0`` nothing is loaded
    ahead and :meth:`take` loads in place.
    """

    def __init__(self, prepare: Callable[[R], Any], num_workers: int = 2, *,
                 finish: Callable[[Any], P] | None = None, pool: Executor | None = None):
        workers = int(num_workers)
        if workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        self.prepare = prepare
        self.finish = finish
        self._pool: Executor | None = pool
        self._own_pool = pool is None
        if pool is None and workers:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="llava-st-load")
        self._pending: dict[Hashable, Future] = {}
        self.waiting = 0.0  # seconds spent in take()

    def prefetch(self, items: Iterable[tuple[Hashable, R]]) -> None:
        """Start loading each ``(key, request)`` not already started."""
        if self._pool is None:
            return
        for key, request in items:
            if key not in self._pending:
                self._pending[key] = self._pool.submit(self.prepare, request)

    def take(self, items: Sequence[tuple[Hashable, R]]) -> list[Loaded[P]]:
        """The loaded form of each ``(key, request)``, in order; a failed load holds its exception."""
        t0 = time.perf_counter()
        out = []
        for key, request in items:
            future = self._pending.pop(key, None)
            try:
                # not started yet: cancel it and load here rather than wait for a free thread
                value = self.prepare(request) if future is None or future.cancel() else future.result()
                out.append(Loaded(value if self.finish is None else self.finish(value)))
            except Exception as exc:  # noqa: BLE001 - one bad request must not cost the others their answers
                out.append(Loaded(error=exc))
        self.waiting += time.perf_counter() - t0
        return out

    def close(self) -> None:
        """Cancel the loads not started; loads running finish in the background.

        A pool given to the constructor stays open for its owner."""
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        if self._pool is not None and self._own_pool:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "Prefetcher[R, P]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def pipelined(
    batches: Iterable[B],
    run: Callable[[B], T],
    prefetch: Callable[[B], None] | None = None,
    depth: int = 1,
) -> Iterator[tuple[B, T]]:
    """``(batch, run(batch))`` for each batch, in order, with the next ``depth`` batches
    announced to ``prefetch`` before ``run`` is called on the current one.

    ``batches`` is read lazily, ``depth`` batches ahead of the one running.
    Example with ``depth = 1`` and batches b0, b1, b2: ``prefetch(b0)``,
    ``prefetch(b1)``, ``run(b0)``, ``prefetch(b2)``, ``run(b1)``, ``run(b2)``.
    """
    if depth < 0:
        raise ConfigError(f"depth must be >= 0, got {depth}")
    source = iter(batches)
    queue: deque = deque()  # announced batches, the current one first
    exhausted = False
    while True:
        while not exhausted and len(queue) <= depth:
            try:
                batch = next(source)
            except StopIteration:
                exhausted = True
                break
            queue.append(batch)
            if prefetch is not None:
                prefetch(batch)
        if not queue:
            return
        batch = queue.popleft()
        yield batch, run(batch)


def answer_loaded(loaded: Sequence[Loaded[P]], generate: Callable[[list[P]], list[T]]) -> tuple[list[T | None], dict[int, Exception]]:
    """Run ``generate`` on the loads that succeeded, as one batch.

    Returns one entry per load (the answer, ``None`` where the load failed) and
    the failures by position.
    """
    good = [i for i, x in enumerate(loaded) if x.ok]
    results: list[T | None] = [None] * len(loaded)
    if good:
        answers = generate([loaded[i].value for i in good])
        if len(answers) != len(good):
            raise RuntimeError(f"generate returned {len(answers)} answers for {len(good)} requests")
        for i, a in zip(good, answers):
            results[i] = a
    return results, {i: x.error for i, x in enumerate(loaded) if not x.ok}


def run_batches(
    items: Sequence[R],
    prepare: Callable[[R], P],
    generate: Callable[[list[P]], list[T]],
    *,
    batch_size: int,
    num_workers: int = 2,
    finish: Callable[[Any], P] | None = None,
    pool: Executor | None = None,
    depth: int = 1,
    describe: Callable[[int, R], str] = lambda i, r: f"request {i}",
    progress: Callable[[int], None] | None = None,
) -> tuple[list[T], BatchStats]:
    """Answer ``items`` in batches of ``batch_size``, loading the next ``depth`` batches meanwhile
    (on a :class:`Prefetcher` of ``num_workers`` threads, or on ``pool``; ``finish`` applied).

    Returns the answers in order and the run's :class:`BatchStats`. When some
    loads fail, every other request is still answered, and then
    :class:`BatchError` is raised (naming each failed request with
    ``describe(position, item)``, and holding the other answers); an error of
    ``generate`` ends the run at once. ``progress`` gets the number of requests
    done after each batch.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    stats = BatchStats()
    start = time.perf_counter()
    keyed = list(enumerate(items))
    batches = [keyed[lo : lo + batch_size] for lo in range(0, len(keyed), batch_size)]
    results: list[T | None] = []
    failures: dict[int, Exception] = {}

    with Prefetcher(prepare, num_workers, finish=finish, pool=pool) as loader:

        def run(batch):
            loaded = loader.take(batch)
            t0 = time.perf_counter()
            out = answer_loaded(loaded, generate)
            stats.model += time.perf_counter() - t0
            return out

        for batch, (answers, failed) in pipelined(batches, run, loader.prefetch, depth):
            failures.update({batch[j][0]: exc for j, exc in failed.items()})
            results.extend(answers)
            if progress is not None:
                progress(len(results))
        stats.waiting_for_media = loader.waiting
    stats.total = time.perf_counter() - start
    stats.failed = len(failures)
    if failures:
        names = {i: describe(i, items[i]) for i in failures}
        raise BatchError(failures, results, names, stats) from failures[min(failures)]
    return results, stats  # type: ignore[return-value]


__all__ = [
    "BatchError",
    "BatchStats",
    "Loaded",
    "Prefetcher",
    "answer_loaded",
    "pipelined",
    "process_pool",
    "run_batches",
]
