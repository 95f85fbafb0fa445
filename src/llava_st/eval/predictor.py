"""The built-in evaluation predictor: a :class:`~llava_st.infer.LlavaST` model behind the runner's interface.

``llava-st eval --model DIR`` uses it; ``--predictor-arg`` passes ``device``,
``dtype``, ``max_new_tokens``, ``batch_workers`` (media loading threads) and
``attn_implementation``. Decoding is greedy (deterministic; the release samples
at temperature 0.01, which is near-greedy but not reproducible), up to 1024 new
tokens as in the release.

The runner announces the next batch with :meth:`ModelPredictor.prefetch`
before it asks the current one, so its media are loaded while the model
generates.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from .base import Request


class ModelPredictor:
    """Answers runner requests with a loaded :class:`~llava_st.infer.LlavaST`."""

    def __init__(self, st, media_workers: int = 2, **generation):
        self.st = st
        self.generation = generation
        self._pool = ThreadPoolExecutor(max_workers=int(media_workers)) if int(media_workers) > 0 else None
        self._pending: dict[int, Future] = {}

    def _ask(self, r: Request):
        from ..infer import Request as AskRequest

        if not Path(r.media.path).exists():
            raise FileNotFoundError(f"sample {r.sample_id}: media file not found: {r.media.path}")
        video = r.media.kind == "video"
        return AskRequest(
            media=r.media.path,
            question=r.prompt,
            kind=r.media.kind,
            frame_range=tuple(r.media.split) if (video and r.media.split is not None) else None,
            num_frames=r.media.num_frames if video else None,
        )

    def prefetch(self, requests: Sequence[Request]) -> None:
        """Start loading the media of requests that will be asked next."""
        if self._pool is None:
            return
        for r in requests:
            if r.sample_id not in self._pending:
                self._pending[r.sample_id] = self._pool.submit(self.st.prepare, self._ask(r))

    def ask_batch(self, requests: Sequence[Request]) -> list[str]:
        prepared = []
        for r in requests:
            future = self._pending.pop(r.sample_id, None)
            # a load no thread has started yet is done here rather than waited for
            if future is None or future.cancel():
                prepared.append(self.st.prepare(self._ask(r)))
            else:
                prepared.append(future.result())
        return self.st.generate_texts(prepared, **self.generation)


def load(
    model: str,
    device: str = "cpu",
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    max_new_tokens: str | int = 1024,
    batch_workers: str | int = 2,
) -> ModelPredictor:
    """Factory for ``llava-st eval`` (values may arrive as text from ``--predictor-arg``).

    ``device="cuda"`` under ``torchrun``/``accelerate launch`` picks ``cuda:$LOCAL_RANK``.
    """
    from ..infer import LlavaST

    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    st = LlavaST.from_pretrained(model, device=device, dtype=dtype, attn_implementation=attn_implementation)
    return ModelPredictor(st, media_workers=int(batch_workers), max_new_tokens=int(max_new_tokens))
