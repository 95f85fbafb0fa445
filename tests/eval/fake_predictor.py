"""A deterministic stand-in for the model: an ST-Align style answer derived from a hash of the request.

Loaded by path (``--predictor tests/eval/fake_predictor.py:make``) in subprocess
tests and with :func:`llava_st.cli.eval.load_factory` in process.
"""

from __future__ import annotations

import hashlib
import time


def answer_for(sample_id: int, prompt: str) -> str:
    h = hashlib.sha256(f"{sample_id}|{prompt}".encode()).digest()
    if h[0] % 7 == 0:
        return "I cannot tell."
    s = h[1] % 60
    e = s + 1 + h[2] % 39
    pairs = []
    for j, k in enumerate(range(s, e, max(1, (e - s) // 3))):
        x1, y1 = h[3 + j] % 50, h[7 + j] % 50
        x2, y2 = x1 + 1 + h[11 + j] % 49, y1 + 1 + h[15 + j] % 49
        pairs.append(f"<TEMP-{k:03d}>:[<WIDTH-{x1:03d}><HEIGHT-{y1:03d}><WIDTH-{x2:03d}><HEIGHT-{y2:03d}>]")
    return f"During the span of {{<TEMP-{s:03d}><TEMP-{e:03d}>}}. Object bounding box: " + ", ".join(pairs) + "<|im_end|>"


class FakePredictor:
    """Answers from :func:`answer_for`; sleeps ``delay`` seconds per batch; records what it was asked."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.asked: list[int] = []
        self.batches: list[int] = []

    def ask_batch(self, requests):
        if self.delay:
            time.sleep(self.delay)
        self.asked.extend(r.sample_id for r in requests)
        self.batches.append(len(requests))
        return [answer_for(r.sample_id, r.prompt) for r in requests]


def make(delay: str = "0", **_options) -> FakePredictor:
    return FakePredictor(float(delay))
