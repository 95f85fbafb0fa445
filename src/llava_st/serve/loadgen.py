"""A bounded load generator for a server of this package on the loopback address.

:func:`run_load` sends a fixed list of :class:`Call` s with ``concurrency``
requests in flight and returns one :class:`Outcome` per call;
:func:`summarise` gives the counts by status, latency percentiles and
throughput; :func:`mismatches` compares every accepted answer with a
reference answer per input. The load is bounded in count (the calls given)
and in time (``timeout_s`` per request), and :func:`check_loopback` refuses
any address but this machine's. Used by ``bench/serve_load.py`` and
``tests/serve/test_load.py``; needs httpx.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError


@dataclass(frozen=True)
class Call:
    """One request: ``key`` names its input (calls with the same key must get the same answer);
    ``json`` for a path request, or ``file`` (name, bytes) and ``data`` (form fields) for an upload."""

    key: str
    json: dict[str, Any] | None = None
    file: tuple[str, bytes] | None = None
    data: dict[str, str] | None = None


@dataclass(frozen=True)
class Outcome:
    key: str
    status: int
    seconds: float
    body: Any


def check_loopback(url: str) -> None:
    """Refuse a URL whose host is not a loopback address (127.0.0.0/8, ::1, localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"the load generator only targets this machine (loopback); got {url!r}")


async def _send(client, url: str, call: Call) -> Outcome:
    t0 = time.perf_counter()
    if call.file is not None:
        response = await client.post(url, files={"file": call.file}, data=call.data or {})
    else:
        response = await client.post(url, json=call.json)
    seconds = time.perf_counter() - t0
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Outcome(call.key, response.status_code, seconds, body)


async def run_load(base_url: str, calls: list[Call], concurrency: int, *, headers: dict[str, str] | None = None,
                   timeout_s: float = 120.0) -> tuple[list[Outcome], float]:
    """Send ``calls`` to ``base_url/v1/ask``, ``concurrency`` at a time; returns the outcomes in
    call order and the wall time (seconds). A request that fails to connect or times out is an
    outcome with status 0 and the error's text."""
    import httpx

    check_loopback(base_url)
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    url = base_url.rstrip("/") + "/v1/ask"
    results: list[Outcome | None] = [None] * len(calls)
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout_s, limits=limits, headers=headers) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(calls):
                i = next_index
                next_index += 1
                t0 = time.perf_counter()
                try:
                    results[i] = await _send(client, url, calls[i])
                except httpx.HTTPError as exc:
                    results[i] = Outcome(calls[i].key, 0, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return [r for r in results if r is not None], wall


def summarise(outcomes: list[Outcome], wall_s: float) -> dict[str, Any]:
    """Counts by status, latency of the answered requests (p50, p95, mean; seconds) and throughput
    (answered requests per second of wall time)."""
    ok = sorted(o.seconds for o in outcomes if o.status == 200)
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[str(o.status)] = statuses.get(str(o.status), 0) + 1

    def pct(q: float) -> float | None:
        if not ok:
            return None
        return ok[min(len(ok) - 1, max(0, int(round(q * (len(ok) - 1)))))]

    return {
        "requests": len(outcomes),
        "answered": len(ok),
        "statuses": statuses,
        "latency_p50_s": pct(0.50),
        "latency_p95_s": pct(0.95),
        "latency_mean_s": statistics.fmean(ok) if ok else None,
        "wall_s": wall_s,
        "throughput_rps": len(ok) / wall_s if wall_s > 0 else None,
    }


def mismatches(outcomes: list[Outcome], reference: dict[str, Any], allowed: tuple[int, ...] = (429,)) -> list[str]:
    """Why outcomes fail the load test: a status other than 200 and ``allowed``, or an answer
    that differs from ``reference[key]`` (the single-request answer of the same input)."""
    problems = []
    for i, o in enumerate(outcomes):
        if o.status == 200:
            if o.body != reference.get(o.key):
                problems.append(f"call {i} ({o.key}): the answer differs from the single-request answer")
        elif o.status not in allowed:
            problems.append(f"call {i} ({o.key}): status {o.status}: {str(o.body)[:300]}")
    return problems


def build_calls(root: Path, names: list[str], questions: list[str], count: int, *, upload_every: int = 4,
                max_new_tokens: int = 16, seed: int = 0) -> list[Call]:
    """``count`` calls cycling over every (file, question) pair of ``names`` under ``root``: every
    ``upload_every``-th call uploads the file, the others name it by path. The key of a call is
    its input (mode, file, question): calls with one key must get one answer."""
    pairs = [(n, q) for n in names for q in questions]
    order = [pairs[i % len(pairs)] for i in range(count)]
    random.Random(seed).shuffle(order)  # every pair as often as the others, in a mixed order
    blobs = {n: (root / n).read_bytes() for n in names}
    calls = []
    for i, (name, question) in enumerate(order):
        if upload_every and i % upload_every == upload_every - 1:
            calls.append(Call(f"upload:{name}:{question}", file=(name, blobs[name]),
                              data={"question": question, "max_new_tokens": str(max_new_tokens)}))
        else:
            calls.append(Call(f"path:{name}:{question}",
                              json={"path": name, "question": question, "max_new_tokens": max_new_tokens}))
    return calls


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``llava-st serve ARGS`` in a child process on 127.0.0.1, up until the context exits.

    Entering waits (at most ``start_timeout_s``) until ``/v1/health`` answers;
    the process's output goes to ``log`` (a file) so a failure can be read.
    """

    def __init__(self, args: list[str], log: Path, *, port: int | None = None, start_timeout_s: float = 180.0,
                 env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "llava_st", "serve", *args, "--host", "127.0.0.1", "--port", str(self.port),
                     "--log-level", "warning"]
        self.log = Path(log)
        self.start_timeout_s = start_timeout_s
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def health(self) -> dict:
        with urllib.request.urlopen(self.url + "/v1/health", timeout=5) as r:
            return json.loads(r.read())

    def __enter__(self) -> "ServerProcess":
        self._out = open(self.log, "w")
        self.process = subprocess.Popen(self.args, stdout=self._out, stderr=subprocess.STDOUT, env=self.env,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._out.close()
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"the server did not answer within {self.start_timeout_s:.0f} s: {self.log.read_text()[-3000:]}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._out.close()


def reference_answers(base_url: str, calls: list[Call], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The single-request answer of each distinct input: one call per key, sent alone."""
    first: dict[str, Call] = {}
    for c in calls:
        first.setdefault(c.key, c)
    outcomes, _ = asyncio.run(run_load(base_url, list(first.values()), 1, headers=headers))
    bad = [f"{o.key}: {o.status} {str(o.body)[:300]}" for o in outcomes if o.status != 200]
    if bad:
        raise RuntimeError(f"single requests failed: {bad}")
    return {o.key: o.body for o in outcomes}


__all__ = [
    "Call",
    "Outcome",
    "ServerProcess",
    "build_calls",
    "check_loopback",
    "free_port",
    "mismatches",
    "reference_answers",
    "run_load",
    "summarise",
]
