"""The prefetching batch loop with fake slow loaders and generators (no model)."""

from __future__ import annotations

import threading
import time

import pytest

from llava_st.errors import ConfigError, LlavaSTError
from llava_st.infer.pipeline import BatchError, Loaded, Prefetcher, answer_loaded, pipelined, run_batches
from llava_st.media import MediaNotFoundError

LOAD_S = 0.2  # one item's load (a sleep: it lets other threads run, as decoding does)
GENERATE_S = 0.2  # one batch's generation


def slow_prepare(item):
    time.sleep(LOAD_S)
    if str(item).startswith("bad"):
        raise MediaNotFoundError(f"media file not found: {item}")
    return f"loaded {item}"


def slow_generate(prepared):
    time.sleep(GENERATE_S)
    return [p.replace("loaded", "answer to") for p in prepared]


def test_loading_overlaps_generation():
    items = [f"v{i}.mp4" for i in range(8)]  # 4 batches of 2, loaded by 2 threads
    t0 = time.perf_counter()
    with Prefetcher(slow_prepare, 2) as loader:  # loading alone
        keyed = list(enumerate(items))
        loader.prefetch(keyed)
        loaded = loader.take(keyed)
    load_alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    for lo in range(0, 8, 2):  # generating alone
        slow_generate([x.value for x in loaded[lo : lo + 2]])
    generate_alone = time.perf_counter() - t0

    answers, stats = run_batches(items, slow_prepare, slow_generate, batch_size=2, num_workers=2)
    assert answers == [f"answer to v{i}.mp4" for i in range(8)]
    # each batch loads while the one before generates: about one batch's load + all generation
    assert stats.total < 0.8 * (load_alone + generate_alone), (stats, load_alone, generate_alone)
    assert stats.model == pytest.approx(4 * GENERATE_S, rel=0.5)
    assert stats.waiting_for_media < 0.5 * stats.total and stats.wait_share < 0.5


def test_without_workers_everything_loads_in_the_calling_thread():
    where = []

    def prepare(item):
        where.append(threading.current_thread().name)
        return item

    answers, stats = run_batches(list(range(5)), prepare, lambda ps: [p * 10 for p in ps], batch_size=2, num_workers=0)
    assert answers == [0, 10, 20, 30, 40]
    assert set(where) == {threading.current_thread().name}
    assert stats.total >= stats.waiting_for_media >= 0 and stats.failed == 0


def test_a_load_not_started_is_done_in_place_and_a_running_one_is_waited_for():
    started = threading.Event()
    release = threading.Event()
    where: dict[str, str] = {}

    def prepare(item):
        where[item] = threading.current_thread().name
        if item == "slow":
            started.set()
            release.wait(5)
        return item

    with Prefetcher(prepare, 1) as loader:
        loader.prefetch([(0, "slow"), (1, "queued")])  # one thread: "queued" waits behind "slow"
        assert started.wait(5)
        threading.Timer(0.2, release.set).start()
        got = loader.take([(1, "queued"), (0, "slow")])
    assert [x.value for x in got] == ["queued", "slow"]
    assert where["queued"] == threading.current_thread().name  # cancelled in the pool, loaded here
    assert where["slow"].startswith("llava-st-load")  # waited for


def test_a_failed_load_is_named_and_the_other_answers_are_kept():
    items = ["v0.mp4", "v1.mp4", "v2.mp4", "bad3.mp4", "v4.mp4", "v5.mp4", "bad6.mp4"]
    done = []
    with pytest.raises(BatchError) as info:
        run_batches(items, slow_prepare, slow_generate, batch_size=2, num_workers=2,
                    describe=lambda i, r: f"request {i} ({r})", progress=done.append)
    err = info.value
    assert isinstance(err, LlavaSTError)
    assert sorted(err.failures) == [3, 6]
    assert isinstance(err.failures[3], MediaNotFoundError) and err.__cause__ is err.failures[3]
    assert err.results == [f"answer to {x}" if not x.startswith("bad") else None for x in items]
    message = str(err)
    assert "2 of 7 requests" in message
    assert "request 3 (bad3.mp4): MediaNotFoundError: media file not found: bad3.mp4" in message
    assert "request 6 (bad6.mp4)" in message
    assert done == [2, 4, 6, 7]  # the run went on after the failure
    assert err.stats is not None and err.stats.failed == 2


def test_a_generation_error_ends_the_run_at_once():
    calls = []

    def generate(prepared):
        calls.append(prepared)
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        run_batches(list(range(10)), slow_prepare, generate, batch_size=2, num_workers=2)
    assert len(calls) == 1


def test_pipelined_announces_each_batch_before_running_the_one_ahead():
    log = []
    made = []

    def batches():
        for b in ("b0", "b1", "b2", "b3"):
            made.append(b)
            yield b

    def run(b):
        log.append(("run", b))
        return b.upper()

    out = []
    for batch, result in pipelined(batches(), run, lambda b: log.append(("prefetch", b))):
        out.append(result)
        assert len(made) <= len(out) + 1  # the batches are read one ahead, not all at once
    assert out == ["B0", "B1", "B2", "B3"]
    assert log == [("prefetch", "b0"), ("prefetch", "b1"), ("run", "b0"), ("prefetch", "b2"), ("run", "b1"),
                   ("prefetch", "b3"), ("run", "b2"), ("run", "b3")]
    log.clear()
    list(pipelined(["a", "b"], run, lambda b: log.append(("prefetch", b)), depth=0))
    assert log == [("prefetch", "a"), ("run", "a"), ("prefetch", "b"), ("run", "b")]
    assert list(pipelined([], run, None)) == []


def test_answer_loaded_keeps_positions_and_checks_counts():
    loaded = [Loaded("a"), Loaded(error=ValueError("x")), Loaded("c")]
    results, failures = answer_loaded(loaded, lambda ps: [p + "!" for p in ps])
    assert results == ["a!", None, "c!"] and list(failures) == [1]
    error = ValueError("x")
    assert answer_loaded([Loaded(error=error)], lambda ps: pytest.fail("nothing to generate")) == ([None], {0: error})
    with pytest.raises(RuntimeError, match="2 answers for 1 requests"):
        answer_loaded([Loaded("a")], lambda ps: ["x", "y"])


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="batch_size"):
        run_batches([1], slow_prepare, slow_generate, batch_size=0)
    with pytest.raises(ConfigError, match="num_workers"):
        Prefetcher(slow_prepare, -1)


def double_or_fail(item: int) -> int:
    """A module-level loader: loader processes receive it by pickling."""
    if item < 0:
        raise MediaNotFoundError(f"media file not found: item {item}")
    return 2 * item


def test_loader_processes_load_in_other_processes_and_report_failures():
    import os

    from llava_st.infer.pipeline import process_pool

    pool = process_pool(1)
    try:
        pids = set(pool.submit(os.getpid).result() for _ in range(2))
        assert os.getpid() not in pids  # a real process, not a thread

        answers = []

        def generate(batch):
            answers.append(list(batch))
            return [f"#{v}" for v in batch]

        items = [1, 2, -3, 4, 5]
        with pytest.raises(BatchError) as info:
            run_batches(items, double_or_fail, generate, batch_size=2, num_workers=1, pool=pool,
                        finish=lambda v: v + 1)
        err = info.value
        # finish ran on each loaded value in this process; the failed load is named, the rest answered
        assert err.results == ["#3", "#5", None, "#9", "#11"]
        assert list(err.failures) == [2] and isinstance(err.failures[2], MediaNotFoundError)
        assert "request 2" in str(err) and "item -3" in str(err)
        # a pool given to the loop stays open for its owner
        assert pool.submit(double_or_fail, 7).result() == 14
    finally:
        pool.shutdown()
