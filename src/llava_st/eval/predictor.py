"""The built-in evaluation predictor: a :class:`~llava_st.infer.LlavaST` model behind the runner's interface.

``llava-st eval --model DIR`` uses it; ``--predictor-arg`` passes ``device``,
``dtype``, ``max_new_tokens``, ``batch_workers`` (media decoding threads) and
``attn_implementation``. Decoding is greedy (deterministic; the release samples
at temperature 0.01, which is near-greedy but not reproducible), up to 1024 new
tokens as in the release.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .base import Request


class ModelPredictor:
    """Answers runner requests with a loaded :class:`~llava_st.infer.LlavaST`."""

    def __init__(self, st, media_workers: int = 2, **generation):
        self.st = st
        self.media_workers = int(media_workers)
        self.generation = generation

    def ask_batch(self, requests: Sequence[Request]) -> list[str]:
        from ..infer import Request as AskRequest

        asks = []
        for r in requests:
            if not Path(r.media.path).exists():
                raise FileNotFoundError(f"sample {r.sample_id}: media file not found: {r.media.path}")
            asks.append(AskRequest(
                media=r.media.path,
                question=r.prompt,
                kind=r.media.kind,
                frame_range=tuple(r.media.split) if (r.media.kind == "video" and r.media.split is not None) else None,
                num_frames=r.media.num_frames if r.media.kind == "video" else None,
            ))
        answers = self.st.ask_batch(asks, batch_size=max(1, len(asks)), num_workers=self.media_workers,
                                    **self.generation)
        return [a.text for a in answers]


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
