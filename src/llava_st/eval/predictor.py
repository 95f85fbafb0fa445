"""The built-in evaluation predictor: a :class:`~llava_st.infer.LlavaST` model behind the runner's interface.

``llava-st eval --model M`` uses it (``M``: a folder, a shipped model or a Hugging
Face Hub id ``org/name[@revision]``); ``--predictor-arg`` passes ``device``,
``dtype``, ``max_new_tokens``, ``revision``, ``batch_workers`` (media loaders),
``media_processes`` (``true``: the loaders are processes, for long videos) and
``attn_implementation``. Decoding is greedy (deterministic; the release samples
at temperature 0.01, which is near-greedy but not reproducible), up to 1024 new
tokens as in the release.

The runner drives the one prefetching loop of :mod:`llava_st.infer.pipeline`:
it announces each batch with :meth:`ModelPredictor.prefetch` before it asks
the one before, so media load on a :class:`~llava_st.infer.pipeline.Prefetcher`
while the model generates. A sample whose media do not load makes
:meth:`ModelPredictor.ask_batch` raise a
:class:`~llava_st.infer.pipeline.BatchError` naming it, carrying the answers of
the rest of its batch so the runner records them.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..errors import ConfigError
from ..infer.pipeline import BatchError, answer_loaded
from .base import Request


class ModelPredictor:
    """Answers runner requests with a loaded :class:`~llava_st.infer.LlavaST`."""

    def __init__(self, st, media_workers: int = 2, media_processes: bool = False, **generation):
        self.st = st
        self.generation = generation
        self._loader = st.loader(int(media_workers), processes=media_processes)

    @property
    def num_frames(self) -> int:
        """Frames the model samples per video by default (its config's)."""
        return self.st.num_frames

    @property
    def bins(self):
        """The model's bin counts (its config's ``coords.bins``), with which its answers are read."""
        return self.st.config.coords.bins

    @staticmethod
    def _ask_request(r: Request):
        from ..infer import Request as AskRequest

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
        self._loader.prefetch((r.sample_id, self._ask_request(r)) for r in requests)

    def ask_batch(self, requests: Sequence[Request]) -> list[str]:
        loaded = self._loader.take([(r.sample_id, self._ask_request(r)) for r in requests])
        texts, failures = answer_loaded(loaded, lambda prepared: self.st.generate_texts(prepared, **self.generation))
        if failures:
            names = {i: f"sample {requests[i].sample_id} ({requests[i].media.path})" for i in failures}
            raise BatchError(failures, texts, names) from failures[min(failures)]
        return texts

    def close(self) -> None:
        self._loader.close()


def load(
    model: str,
    device: str = "cpu",
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    max_new_tokens: str | int = 1024,
    batch_workers: str | int = 2,
    media_processes: str | bool = False,
    revision: str | None = None,
) -> ModelPredictor:
    """Factory for ``llava-st eval`` (values may arrive as text from ``--predictor-arg``).

    ``device="cuda"`` under ``torchrun``/``accelerate launch`` picks ``cuda:$LOCAL_RANK``.
    """
    from ..infer import LlavaST

    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    st = LlavaST.from_pretrained(
        model, device=device, dtype=dtype, attn_implementation=attn_implementation, revision=revision or None
    )
    processes = media_processes if isinstance(media_processes, bool) else _flag(media_processes, "media_processes")
    return ModelPredictor(st, media_workers=int(batch_workers), media_processes=processes,
                          max_new_tokens=int(max_new_tokens))


def _flag(text: str, name: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ConfigError(f"--predictor-arg {name} must be true or false, got {text!r}")
