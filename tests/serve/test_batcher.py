"""The background batcher alone (a fake model) and through the API: batching, groups, the bounded
queue (429), the request timeout (504), one request's failure staying its own."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from llava_st.errors import ConfigError
from llava_st.serve.batcher import Batcher
from llava_st.serve.errors import Busy, Unavailable
from serve_helpers import error_of, upload


class Recorder:
    """A fake ``run_batch``: answers ``request * 10``, records each batch, fails on negative requests."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None):
        self.batches: list[tuple[list, object]] = []
        self.delay = delay
        self.gate = gate
        self.threads: set[str] = set()

    def __call__(self, requests, group):
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        self.batches.append((list(requests), group))
        if "boom" in requests:
            raise RuntimeError("the model broke")
        return [ValueError(f"bad {r}") if isinstance(r, int) and r < 0 else r * 10 for r in requests]


def _run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_batched_up_to_the_limit_in_order() -> None:
    rec = Recorder(delay=0.05)

    async def main():
        b = Batcher(rec, max_batch=4, max_wait_s=0.02, max_queue=64)
        b.start()
        try:
            answers = await asyncio.gather(*(b.submit(i) for i in range(10)))
        finally:
            await b.stop()
        return answers, b.stats

    answers, stats = _run(main())
    assert answers == [i * 10 for i in range(10)]
    sizes = [len(r) for r, _ in rec.batches]
    assert sizes == [4, 4, 2] and [x for r, _ in rec.batches for x in r] == list(range(10))
    assert stats.batches == 3 and stats.answered == 10 and stats.mean_batch == pytest.approx(10 / 3)
    assert rec.threads and all(name.startswith("llava-st-batch") for name in rec.threads)  # never the event loop


def test_a_lone_request_waits_at_most_max_wait() -> None:
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=8, max_wait_s=0.05)
        b.start()
        t0 = time.perf_counter()
        try:
            answer = await b.submit(3)
        finally:
            await b.stop()
        return answer, time.perf_counter() - t0

    answer, seconds = _run(main())
    assert answer == 30 and 0.04 <= seconds < 1.0


def test_a_batch_waits_for_announced_requests_and_not_for_withdrawn_ones() -> None:
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=8, max_wait_s=0.01, max_intake_wait_s=5.0)
        b.start()
        try:
            b.announce()  # a request reading its media: the batch of 1 waits for it
            first = asyncio.ensure_future(b.submit(1))
            await asyncio.sleep(0.3)
            assert not first.done() and b.incoming == 1
            second = asyncio.ensure_future(b.submit(2, announced=True))
            together = await asyncio.gather(first, second)
            b.announce()
            t0 = time.perf_counter()
            third = asyncio.ensure_future(b.submit(3))
            await asyncio.sleep(0.05)
            b.withdraw()  # it will not come: the batch goes at once
            alone = await third
            return together, alone, time.perf_counter() - t0, b.incoming
        finally:
            await b.stop()

    together, alone, seconds, incoming = _run(main())
    assert together == [10, 20] and alone == 30 and seconds < 2.0 and incoming == 0
    assert [r for r, _ in rec.batches] == [[1, 2], [3]]


def test_only_requests_of_one_group_share_a_batch() -> None:
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=8, max_wait_s=0.02)
        b.start()
        try:
            return await asyncio.gather(b.submit(1, "a"), b.submit(2, "b"), b.submit(3, "a"), b.submit(4, "b"))
        finally:
            await b.stop()

    assert _run(main()) == [10, 20, 30, 40]
    assert sorted((tuple(r), g) for r, g in rec.batches) == [((1, 3), "a"), ((2, 4), "b")]


def test_errors_stay_with_their_request_and_a_broken_batch_fails_all_its_requests() -> None:
    rec = Recorder()

    async def main():
        b = Batcher(rec, max_batch=8, max_wait_s=0.02)
        b.start()
        try:
            first = await asyncio.gather(b.submit(1), b.submit(-1), b.submit(2), return_exceptions=True)
            second = await asyncio.gather(b.submit("boom"), b.submit("x"), return_exceptions=True)
        finally:
            await b.stop()
        return first, second

    first, second = _run(main())
    assert first[0] == 10 and first[2] == 20 and isinstance(first[1], ValueError) and "bad -1" in str(first[1])
    assert all(isinstance(e, RuntimeError) and "the model broke" in str(e) for e in second)


def test_a_full_queue_refuses_at_once_and_cancelled_requests_are_dropped() -> None:
    gate = threading.Event()
    rec = Recorder(gate=gate)

    async def main():
        b = Batcher(rec, max_batch=1, max_wait_s=0.0, max_queue=2)
        b.start()
        try:
            running = asyncio.ensure_future(b.submit(1))
            await asyncio.sleep(0.05)  # 1 is in the worker, blocked on the gate
            waiting = [asyncio.ensure_future(b.submit(i)) for i in (2, 3)]
            await asyncio.sleep(0.01)
            assert b.queued == 2 and b.running == 1
            with pytest.raises(Busy) as refused:
                await b.submit(4)
            assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "1"
            waiting[0].cancel()  # its caller gave up: it never reaches the model
            await asyncio.sleep(0.01)
            late = asyncio.ensure_future(b.submit(5))  # the cancelled one's place is free again
            gate.set()
            return await asyncio.gather(running, waiting[1], late), b.stats
        finally:
            await b.stop()

    answers, stats = _run(main())
    assert answers == [10, 30, 50]
    assert [r for r, _ in rec.batches] == [[1], [3], [5]]
    assert stats.refused == 1 and stats.dropped == 1


def test_stopping_fails_the_waiting_and_running_requests_with_503() -> None:
    gate = threading.Event()
    rec = Recorder(gate=gate)

    async def main():
        b = Batcher(rec, max_batch=1, max_wait_s=0.0)
        b.start()
        tasks = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0.05)
        threading.Timer(0.1, gate.set).start()  # the running batch may finish while stop() waits for it
        await b.stop()
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = _run(main())
    assert all(isinstance(o, Unavailable) and o.status == 503 for o in outcomes)
    with pytest.raises(RuntimeError, match="not running"):
        _run(Batcher(rec).submit(1))


def test_bad_settings() -> None:
    for kwargs in ({"max_batch": 0}, {"max_wait_s": -1}, {"max_queue": 0}, {"max_intake_wait_s": -1}):
        with pytest.raises(ConfigError):
            Batcher(Recorder(), **kwargs)


# ----------------------------------------------------------------- through the API


class GatedModel:
    """The tiny model behind a gate: ``ask_batch`` waits for ``gate`` and records batch sizes."""

    def __init__(self, st, gate: threading.Event | None = None, delay: float = 0.0):
        self.st, self.gate, self.delay = st, gate, delay
        self.config, self.num_frames = st.config, st.num_frames
        self.sizes: list[int] = []

    def ask_batch(self, requests, **kwargs):
        if self.gate is not None:
            self.gate.wait(20)
        time.sleep(self.delay)
        self.sizes.append(len(requests))
        return self.st.ask_batch(requests, **kwargs)


def test_concurrent_http_requests_are_answered_in_batches_with_the_single_answers(make_client, st, media_root) -> None:
    model = GatedModel(st, delay=0.3)
    questions = ["What happens?", "Where is it?", "When does it change?", "What is shown?", "Describe it."]
    with make_client(model=model, media_root=media_root, max_batch=4, batch_wait_ms=50) as client:
        singles = {q: client.post("/v1/ask", json={"path": "clip.mp4", "question": q}).json() for q in questions}
        model.sizes.clear()
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda q: client.post("/v1/ask", json={"path": "clip.mp4", "question": q}),
                                      questions * 2))
        stats = client.get("/v1/health").json()["stats"]
    assert all(r.status_code == 200 for r in responses)
    assert [r.json() for r in responses] == [singles[q] for q in questions * 2]
    assert max(model.sizes) > 1 and sum(model.sizes) == 10 and max(model.sizes) <= 4
    assert stats["answered"] == 15


def test_http_429_when_the_queue_is_full_and_504_after_the_timeout(make_client, st, media_root) -> None:
    gate = threading.Event()
    model = GatedModel(st, gate=gate)
    body = {"path": "clip.mp4", "question": "What?"}
    with make_client(model=model, media_root=media_root, max_batch=1,
                     limits={"max_queue": 1, "request_timeout_s": 30}) as client:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.post, "/v1/ask", json=body)
            while client.get("/v1/health").json()["running"] != 1:
                time.sleep(0.01)
            second = pool.submit(upload, client, media_root / "clip.mp4", question="What?")
            while client.get("/v1/health").json()["queued"] != 1:
                time.sleep(0.01)
            busy = client.post("/v1/ask", json=body)
            err = error_of(busy, 429)
            assert err["code"] == "queue_full" and busy.headers["retry-after"] == "1"
            gate.set()
            assert first.result().status_code == 200 and second.result().status_code == 200
    gate.clear()
    with make_client(model=model, media_root=media_root, limits={"request_timeout_s": 2.0}) as client:
        t0 = time.perf_counter()
        err = error_of(upload(client, media_root / "clip.mp4", question="What?"), 504)
        assert "2 s (still waiting for the model)" in err["message"] and time.perf_counter() - t0 < 10
        gate.set()
        while client.get("/v1/health").json()["running"]:  # the abandoned batch ends
            time.sleep(0.01)
        assert client.post("/v1/ask", json=body).status_code == 200  # the server goes on
