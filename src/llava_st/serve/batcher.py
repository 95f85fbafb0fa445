"""The background batcher: requests arriving over time answered together.

Handlers :meth:`Batcher.submit` a request and await its answer. One task on
the event loop collects waiting requests into a batch, until the batch holds
``max_batch`` requests or ``max_wait_s`` passed since its first one arrived
(or since the last batch ended, when that is later),
and runs the batch on one worker thread (``run_batch``: for the server,
:meth:`LlavaST.ask_batch <llava_st.infer.LlavaST.ask_batch>`, the one
batching loop of :mod:`llava_st.infer.pipeline`), so the event loop never
waits for the model. Each request's future is then resolved with its answer
or its own exception. Timeline with ``max_batch = 4``::

    arrivals   r1 r2 .......... r3 r4 r5 r6 r7
    batches    [r1 r2](waited max_wait_s)   [r3 r4 r5 r6]  [r7 ...]
    worker     ....run(r1, r2)....          ....run(r3..r6)....

A handler may :meth:`~Batcher.announce` a request before it is ready (its
media are still being read): while announced requests are on their way, a
batch that is not full waits for them, up to ``max_intake_wait_s`` after
its first request, instead of ``max_wait_s``. Without it, a batch that just
ended lets the few requests already waiting start a small batch of their
own while the many answered clients' next requests are still being read,
and batches alternate between large and small.

Only requests of the same ``group`` (the server's group: the generation
settings, which one ``ask_batch`` call shares) go into one batch; the
others wait for the next. At most ``max_queue`` requests wait (the batch
being run is not counted); one more is refused at once with
:class:`~.errors.Busy` (HTTP 429). A request whose caller stopped waiting
(its timeout) is dropped when its batch is formed.

Nothing here imports torch or knows the model.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..errors import ConfigError
from .errors import Busy, Unavailable

R = TypeVar("R")  # a request
T = TypeVar("T")  # an answer

#: ``run_batch(requests, group) -> one answer or exception per request, in order``
RunBatch = Callable[[list[R], Hashable], Sequence[Any]]


@dataclass
class BatcherStats:
    """Counts since the batcher started: batches run, requests answered, refused (queue full),
    dropped (their caller had stopped waiting) and how many batches had each size."""

    batches: int = 0
    answered: int = 0
    refused: int = 0
    dropped: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    @property
    def mean_batch(self) -> float:
        return self.answered / self.batches if self.batches else 0.0

    def to_dict(self) -> dict:
        return {"batches": self.batches, "answered": self.answered, "refused": self.refused, "dropped": self.dropped,
                "mean_batch": round(self.mean_batch, 3), "sizes": {str(k): v for k, v in sorted(self.sizes.items())}}


@dataclass
class _Job(Generic[R]):
    request: R
    group: Hashable
    future: asyncio.Future
    arrived: float


class Batcher(Generic[R, T]):
    """Collects submitted requests into batches and runs them on one worker thread.

    Create and use it on one event loop: :meth:`start` it there (the server's
    startup), :meth:`submit` from handlers, :meth:`stop` at shutdown.
    """

    def __init__(self, run_batch: RunBatch, *, max_batch: int = 16, max_wait_s: float = 0.02, max_queue: int = 64,
                 max_intake_wait_s: float = 0.2):
        if max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ConfigError(f"max_wait_s must be >= 0, got {max_wait_s}")
        if max_intake_wait_s < 0:
            raise ConfigError(f"max_intake_wait_s must be >= 0, got {max_intake_wait_s}")
        if max_queue < 1:
            raise ConfigError(f"max_queue must be >= 1, got {max_queue}")
        self.run_batch = run_batch
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.max_queue = int(max_queue)
        self.max_intake_wait_s = max(float(max_intake_wait_s), self.max_wait_s)
        self.stats = BatcherStats()
        self.incoming = 0  # requests announced and not yet submitted
        self._free_since = 0.0  # when the worker finished its last batch
        self._pending: deque[_Job] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._running: list[_Job] = []  # the batch the worker is answering

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the collecting task on the running event loop (and the worker thread)."""
        if self._task is not None:
            return
        self._arrived = asyncio.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="llava-st-batch")
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="llava-st-batcher")

    async def stop(self) -> None:
        """Stop collecting; waiting requests and those of the running batch fail with :class:`Unavailable`
        (the running batch finishes on the worker before this returns)."""
        if self._task is None:
            return
        running = list(self._running)  # cancelling the task forgets them
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        for job in [*running, *self._pending]:
            if not job.future.done():
                job.future.set_exception(Unavailable("the server is shutting down"))
        self._pending.clear()
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    @property
    def running(self) -> int:
        """Requests in the batch the worker is answering."""
        return len(self._running)

    @property
    def queued(self) -> int:
        """Requests waiting for a batch (the one running not counted)."""
        return len(self._pending)

    # ------------------------------------------------------------- submitting
    def announce(self) -> None:
        """A request is on its way (its media are being read): a batch may wait for it.
        Follow it with :meth:`submit` (``announced=True``) or :meth:`withdraw`."""
        self.incoming += 1
        if self._arrived is not None:
            self._arrived.set()

    def withdraw(self) -> None:
        """An announced request will not come (its input was refused)."""
        self.incoming = max(0, self.incoming - 1)
        if self._arrived is not None:
            self._arrived.set()

    async def submit(self, request: R, group: Hashable = None, *, announced: bool = False) -> T:
        """The answer to ``request``; raises the request's own exception, or :class:`Busy` at
        once when ``max_queue`` requests are waiting. Cancelling the await drops the request
        if its batch has not started. ``announced``: it was :meth:`announce` d."""
        if announced:
            self.incoming = max(0, self.incoming - 1)
        if self._task is None or self._arrived is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        self._purge()
        if len(self._pending) >= self.max_queue:
            self.stats.refused += 1
            raise Busy(f"the server is busy: {len(self._pending)} requests are waiting (the limit); retry shortly")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(request, group, future, time.perf_counter()))
        self._arrived.set()
        return await future

    # ------------------------------------------------------------- collecting
    def _take_batch(self) -> list[_Job]:
        """Up to ``max_batch`` live jobs of the first live job's group, in arrival order."""
        batch: list[_Job] = []
        kept: deque[_Job] = deque()
        group = None
        while self._pending:
            job = self._pending.popleft()
            if job.future.done():  # its caller stopped waiting
                self.stats.dropped += 1
                continue
            if not batch:
                group = job.group
            if len(batch) < self.max_batch and job.group == group:
                batch.append(job)
            else:
                kept.append(job)
        self._pending = kept
        return batch

    def _purge(self) -> None:
        """Forget the jobs whose callers stopped waiting."""
        if any(j.future.done() for j in self._pending):
            live = deque(j for j in self._pending if not j.future.done())
            self.stats.dropped += len(self._pending) - len(live)
            self._pending = live

    def _ready(self) -> int:
        """Waiting jobs that would join the next batch (those of the first job's group)."""
        self._purge()
        if not self._pending:
            return 0
        group = self._pending[0].group
        return sum(1 for j in self._pending if j.group == group)

    async def _collect(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._ready():
                self._arrived.clear()
                await self._arrived.wait()
            # the wait counts from the later of the first request's arrival and the end of the last
            # batch: requests that queued up while the model was busy still give the clients just
            # answered a moment to send their next ones
            first = max(self._pending[0].arrived, self._free_since)
            while self._ready() < self.max_batch:
                # requests announced and still reading their media are worth a longer wait
                wait = self.max_intake_wait_s if self.incoming > 0 else self.max_wait_s
                left = first + wait - time.perf_counter()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    pass  # the loop looks again: an announced request may have been withdrawn meanwhile
            batch = self._take_batch()
            if not batch:
                continue
            self._running = batch
            try:
                outcomes = await loop.run_in_executor(self._worker, self._run, batch)
            finally:
                self._running = []
                self._free_since = time.perf_counter()
            self.stats.batches += 1
            self.stats.answered += len(batch)
            self.stats.sizes[len(batch)] = self.stats.sizes.get(len(batch), 0) + 1
            for job, outcome in zip(batch, outcomes):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    def _run(self, batch: list[_Job]) -> list[Any]:
        """Runs on the worker thread: one answer or exception per job, never raises."""
        try:
            outcomes = list(self.run_batch([j.request for j in batch], batch[0].group))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"run_batch returned {len(outcomes)} outcomes for {len(batch)} requests")
            return outcomes
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
            return [exc] * len(batch)


__all__ = ["Batcher", "BatcherStats", "RunBatch"]
