"""LLaVA-ST as an lmms-eval model: ``lmms-eval --model llava_st --model_args pretrained=...``.

The adapter answers lmms-eval's generation requests (``generate_until``)
with :meth:`llava_st.infer.LlavaST.ask_batch`, the same batched loop as the
Python API and ``llava-st eval``:

* the visual of a request is one image (a PIL image or an image file) or one
  video (a video file; several same-size PIL images are taken as the frames of
  a video); LLaVA-ST answers about one image or one video, so a request with
  none, or with several of another kind, is refused with the task and document;
* the request's text is the question; an ``<image>``/``<video>`` tag in it is
  dropped (the right tag for the visual is put in front). Coordinates written
  in it as the release's markup (``{0.2, 0.6}``, ``[0.1, 0.2, 0.5, 0.7]``) reach
  the model as coordinates;
* the answer's coordinates are written in the release's decimal form
  (``{0.12121,0.56566}``, ``[0.36364,0.37374,0.63636,0.54545]``), which text
  scorers read as numbers; ``coords=tokens`` keeps the bin tokens. The text is
  cut at the first of the request's ``until`` strings;
* decoding follows the request's ``generation_kwargs``: ``max_new_tokens``
  (default: the ``max_new_tokens`` model argument, 1024), greedy unless
  ``do_sample`` is set with a ``temperature`` > 0 (then ``top_p`` too).

Model arguments (``--model_args key=value,...``): ``pretrained`` (a model
folder, a shipped model name or a Hugging Face Hub id ``org/name[@revision]``),
``revision``, ``device`` (default ``cuda`` when available, under a launcher
``cuda:$LOCAL_RANK``), ``dtype`` (default ``bfloat16`` on CUDA, else
``float32``), ``batch_size``, ``max_new_tokens``, ``num_frames`` (frames per
video; default the model's own), ``coords`` (``decimal`` or ``tokens``),
``attn_implementation``, ``media_workers`` (media loader threads).

Log-likelihood and multi-round requests are not supported (LLaVA-ST is
evaluated by generation); such tasks stop with a message saying so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..._optional import require
from ...errors import ConfigError, MediaError

require("lmms_eval")

from lmms_eval.api.model import lmms  # noqa: E402  (after the check that names the extra)

COORD_FORMS = ("decimal", "tokens")
_TAGS = ("<image>", "<video>")


def _int(value: Any, name: str, minimum: int = 1) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"llava_st model argument {name} must be a whole number, got {value!r}") from None
    if out < minimum:
        raise ConfigError(f"llava_st model argument {name} must be >= {minimum}, got {out}")
    return out


@dataclass
class _Job:
    """One lmms-eval request as LLaVA-ST asks it."""

    request: Any  # llava_st.infer.Request
    generation: tuple[tuple[str, Any], ...]
    until: tuple[str, ...]


class LlavaSTLmms(lmms):
    """The ``llava_st`` model of lmms-eval (see the module docstring for its arguments)."""

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        revision: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | str = 1,
        max_new_tokens: int | str = 1024,
        num_frames: int | str | None = None,
        coords: str = "decimal",
        attn_implementation: str = "sdpa",
        media_workers: int | str = 2,
        max_batch_size: int | str | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise ConfigError(
                f"unknown llava_st model argument(s) {sorted(unknown)}; known: pretrained, revision, device, dtype, "
                "batch_size, max_new_tokens, num_frames, coords, attn_implementation, media_workers"
            )
        if coords not in COORD_FORMS:
            raise ConfigError(f"llava_st model argument coords must be one of {COORD_FORMS}, got {coords!r}")
        import torch

        from ...infer import LlavaST

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and "LOCAL_RANK" in os.environ:
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        if dtype is None:
            dtype = "bfloat16" if str(device).startswith("cuda") else "float32"
        self.st = LlavaST.from_pretrained(
            pretrained, device=device, dtype=dtype, attn_implementation=attn_implementation, revision=revision or None
        )
        self._device = torch.device(device)
        self._batch_size = _int(batch_size, "batch_size")
        self.max_new_tokens = _int(max_new_tokens, "max_new_tokens")
        self.num_frames = None if num_frames in (None, "", "None") else _int(num_frames, "num_frames")
        self.coords = coords
        self.media_workers = _int(media_workers, "media_workers", minimum=0)

    # lmms-eval reads these
    @property
    def device(self):
        return self._device

    @property
    def batch_size(self) -> int:
        return self._batch_size

    # ------------------------------------------------------------------ requests
    def generate_until(self, requests) -> list[str]:
        from tqdm import tqdm

        jobs = [self._job(r) for r in requests]
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.generation, []).append(i)
        out: list[str | None] = [None] * len(jobs)
        bar = tqdm(total=len(jobs), disable=self.rank != 0, desc="LLaVA-ST responding")
        try:
            for generation, idx in groups.items():
                done_before = bar.n  # ask_batch reports the requests done so far in this call

                def progress(done: int, before: int = done_before) -> None:
                    bar.update(before + done - bar.n)

                answers = self.st.ask_batch(
                    [jobs[i].request for i in idx], batch_size=self._batch_size, num_workers=self.media_workers,
                    progress=progress, **dict(generation),
                )
                for i, answer in zip(idx, answers):
                    out[i] = self.answer_text(answer.text, jobs[i].until)
        finally:
            bar.close()
        return [text if text is not None else "" for text in out]

    def answer_text(self, text: str, until: Sequence[str] = ()) -> str:
        """A generated answer as lmms-eval receives it: coordinates as decimals (``coords=decimal``), cut at ``until``."""
        from ...protocol.bins import release_rewrite

        if self.coords == "decimal":
            text = release_rewrite(text, self.st.config.coords.bins)
        for stop in until:
            if stop:
                text = text.split(stop, 1)[0]
        return text

    def _job(self, instance) -> _Job:
        from ...infer import Request

        context, gen_kwargs, doc_to_visual, doc_id, task, split = instance.args
        gen_kwargs = dict(gen_kwargs or {})
        where = f"lmms-eval task {task!r}, document {doc_id}"
        visual = self._visual(doc_to_visual(self.task_dict[task][split][doc_id]), where)
        question = str(context)
        for tag in _TAGS:
            question = question.replace(tag, "")
        question = question.strip()
        if not question:
            raise ConfigError(f"{where}: the request has no question text")
        video = not _is_image(visual)
        request = Request(media=visual, question=question, kind="video" if video else "image",
                          num_frames=self.num_frames if video else None)
        generation: dict[str, Any] = {"max_new_tokens": _int(gen_kwargs.get("max_new_tokens", self.max_new_tokens), "max_new_tokens")}
        temperature = float(gen_kwargs.get("temperature") or 0.0)
        if gen_kwargs.get("do_sample") and temperature > 0:
            generation.update(do_sample=True, temperature=temperature, top_p=float(gen_kwargs.get("top_p") or 1.0))
        until = gen_kwargs.get("until") or ()
        until = (until,) if isinstance(until, str) else tuple(until)
        return _Job(request, tuple(sorted(generation.items())), until)

    @staticmethod
    def _visual(visuals: Any, where: str) -> Any:
        """The one image or video of a request (several same-size images: the frames of a video, ``[T, H, W, 3]``)."""
        items = list(_flatten(visuals))
        if not items:
            raise MediaError(f"{where}: no image or video; LLaVA-ST answers questions about one image or one video")
        if len(items) == 1:
            return items[0]
        from PIL import Image

        if all(isinstance(v, Image.Image) for v in items) and len({v.size for v in items}) == 1:
            return np.stack([np.asarray(v.convert("RGB")) for v in items])
        raise MediaError(
            f"{where}: {len(items)} visuals ({', '.join(sorted({type(v).__name__ for v in items}))}); LLaVA-ST answers "
            "about one image or one video (several images of one size are read as the frames of a video)"
        )

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            "the llava_st model answers generation tasks (output_type: generate_until); log-likelihood tasks "
            "(multiple choice by likelihood) are not supported"
        )

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("the llava_st model answers single-round generation tasks only")


def _flatten(visuals: Any):
    if visuals is None:
        return
    if isinstance(visuals, (list, tuple)):
        for v in visuals:
            yield from _flatten(v)
    else:
        yield visuals


def _is_image(visual: Any) -> bool:
    from PIL import Image

    from ...media.load import is_image_file

    if isinstance(visual, Image.Image):
        return True
    if isinstance(visual, (str, os.PathLike)):
        return is_image_file(visual)
    return np.ndim(visual) < 4  # [H, W(, C)] is an image, [T, H, W, C] frames


__all__ = ["COORD_FORMS", "LlavaSTLmms"]
