"""Generated ids -> answer text (SPEC §2.10, §3).

The model emits bin tokens ``<TEMP-k>``, ``<HEIGHT-k>``, ``<WIDTH-k>`` (ids
``V + k`` and up) for coordinates. :func:`decode_generated` turns generated
ids into text that keeps those tokens, and :func:`to_release_answer` writes
them as the release does (5 decimals, ``{<TEMP-012><TEMP-056>}`` ->
``{0.12121,0.56566}``) for scoring with the release's parsers.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..protocol.bins import release_rewrite
from ..protocol.tokens import BinCounts


def decode_generated(
    token_ids: torch.Tensor | Sequence[Sequence[int]],
    tokenizer,
    *,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> list[str]:
    """Generated ids ``[B, N]`` (new tokens only) -> B texts.

    Each row is cut at its first ``eos_token_id`` (``<|im_end|>``; the
    tokenizer's eos when None), padding ids are dropped, and the rest is
    decoded with special tokens kept, so bin tokens read ``<TEMP-012>``.
    (The release decodes everything and deletes ``<|im_end|>`` strings; the
    two agree whenever nothing follows the first ``<|im_end|>``.)

    Example: ids of ``"{", "<TEMP-012>", "<TEMP-056>", "}", "<|im_end|>", pad``
    decode to ``"{<TEMP-012><TEMP-056>}"``.

    Raises:
        ValueError: not a 2-D batch of ids, or an id outside the tokenizer.
    """
    if isinstance(token_ids, torch.Tensor):
        if token_ids.dim() != 2:
            raise ValueError(f"generated ids must be [B, N], got shape {tuple(token_ids.shape)}")
        rows = token_ids.tolist()
    else:
        rows = [list(r) for r in token_ids]
        if any(not all(isinstance(t, int) for t in r) for r in rows):
            raise ValueError("generated ids must be a list of lists of ints [B, N]")
    eos = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
    pad = tokenizer.pad_token_id if pad_token_id is None else pad_token_id
    size = len(tokenizer)
    texts = []
    for b, row in enumerate(rows):
        bad = [t for t in row if not 0 <= t < size]
        if bad:
            raise ValueError(f"row {b} holds id(s) {bad[:5]} outside the tokenizer's {size} tokens")
        if eos is not None and eos in row:
            row = row[: row.index(eos)]
        if pad is not None:
            row = [t for t in row if t != pad]
        texts.append(tokenizer.decode(row, skip_special_tokens=False, clean_up_tokenization_spaces=False))
    return texts


def to_release_answer(text: str, bins: BinCounts) -> str:
    """The release's answer text: bin tokens as ``k / (n - 1)`` with 5 decimals, ``,]``/``,}`` closed up.

    ``bins`` are the model's counts (``config.coords.bins``). The release uses
    one count for every axis; with different counts each token's axis picks
    its own (see :func:`llava_st.protocol.bins.release_rewrite`).
    """
    return release_rewrite(text, bins)


__all__ = ["decode_generated", "to_release_answer"]
