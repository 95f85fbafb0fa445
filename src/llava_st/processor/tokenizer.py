"""The release tokenizer layout: loading, checking and building it (SPEC §2.10).

The release tokenizer is the LLM's own (Qwen2) tokenizer plus, in this order,
the 3 image markers, the 5 video markers and the 6 coordinate placeholders
(the text embedding then has ``V`` rows) and ``bins_t + 2 * bins_s`` bin
tokens ``<TEMP-000>`` .. ``<WIDTH-099>`` at ids ``V .. V + bins - 1``.
:func:`check_tokenizer` verifies a tokenizer against a model config, and
:func:`build_release_tokenizer` makes such a tokenizer from a base LLM
tokenizer for models we create.
"""

from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path

from ..config import LlavaSTConfig
from ..protocol.tokens import ADDED_TOKENS, BinCounts, SpecialTokenIds, bin_tokens
from .chat import TURN_END, TURN_START
from ..errors import CheckpointError, ModelNotFoundError

# SpecialTokenIds' marker/placeholder fields, in the order of ADDED_TOKENS.
_ID_FIELDS = tuple(f.name for f in fields(SpecialTokenIds) if f.name not in ("vocab_size", "pad", "eos"))
assert len(_ID_FIELDS) == len(ADDED_TOKENS)


class TokenizerMismatchError(CheckpointError, ValueError):
    """The tokenizer does not have the token layout that the model config expects."""


def load_tokenizer(folder: str | Path):
    """Load the fast tokenizer stored in a model folder (``tokenizer.json`` as written).

    The generic fast tokenizer class is used on purpose: it takes
    ``tokenizer.json`` exactly as stored (no class-specific rebuilding) and
    does not read the folder's model ``config.json``.
    """
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    if not (folder / "tokenizer.json").is_file():
        raise ModelNotFoundError(f"no tokenizer.json in {folder}; a LLaVA-ST model folder holds its tokenizer files")
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def _token_id(tokenizer, token: str) -> int | None:
    tid = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if tid is None or (unk is not None and tid == unk and token != getattr(tokenizer, "unk_token", None)):
        return None
    return int(tid)


def single_token_id(tokenizer, text: str) -> int:
    """The id of ``text`` when the tokenizer encodes it as exactly one token (e.g. ``"\\n"``)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise TokenizerMismatchError(f"the tokenizer encodes {text!r} as {len(ids)} tokens {ids}, expected one")
    return int(ids[0])


def check_tokenizer(tokenizer, config: LlavaSTConfig) -> SpecialTokenIds:
    """Check that ``tokenizer`` has the token layout ``config`` expects; return its ids.

    Checked: a fast tokenizer (character offsets are needed for labels); every
    marker and placeholder at the id ``config.token_ids`` names; every bin
    token ``<AXIS-k>`` at ``V + offset(axis) + k``; ``V + bins`` tokens in
    all; the chat tokens ``<|im_start|>``, ``<|im_end|>`` and ``"\\n"`` single
    tokens; a pad token.

    Raises:
        TokenizerMismatchError: listing every mismatch found.
    """
    problems: list[str] = []
    if not getattr(tokenizer, "is_fast", False):
        problems.append(f"{type(tokenizer).__name__} is not a fast tokenizer (character offsets are needed)")
    expected = config.token_ids
    v = config.text.vocab_size
    for name, token in zip(_ID_FIELDS, ADDED_TOKENS):
        got, want = _token_id(tokenizer, token), getattr(expected, name)
        if got != want:
            problems.append(f"{token} has id {got}, the config expects {want}")
    names = bin_tokens(config.coords.bins)
    got_ids = tokenizer.convert_tokens_to_ids(names)
    wrong = [(n, g, v + k) for k, (n, g) in enumerate(zip(names, got_ids)) if g != v + k]
    if wrong:
        shown = ", ".join(f"{n} has id {g} (expected {w})" for n, g, w in wrong[:5])
        more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
        problems.append(f"{len(wrong)} bin token(s) are not at V + k with V = {v}: {shown}{more}")
    if len(tokenizer) != v + len(names):
        problems.append(
            f"the tokenizer has {len(tokenizer)} tokens, the config expects V + bins = {v} + {len(names)} "
            f"= {v + len(names)}"
        )
    for token in (TURN_START, TURN_END):
        if _token_id(tokenizer, token) is None:
            problems.append(f"the chat token {token} is missing")
    if getattr(tokenizer, "pad_token_id", None) is None:
        problems.append("the tokenizer has no pad token")
    if not problems:
        try:
            single_token_id(tokenizer, "\n")
        except TokenizerMismatchError as exc:
            problems.append(str(exc))
    if problems:
        raise TokenizerMismatchError(
            "the tokenizer does not match the model config:\n  - " + "\n  - ".join(problems)
        )
    return SpecialTokenIds.from_tokenizer(tokenizer, v)


def build_release_tokenizer(base_tokenizer, bins: BinCounts):
    """A copy of a base LLM tokenizer with the release's added tokens, in the release's order.

    ``bins`` are the model's counts (``config.coords.bins``; the released
    checkpoints have :data:`~llava_st.protocol.tokens.RELEASE_BINS`).

    Adds the 3 image markers, the 5 video markers and the 6 placeholders
    (their ids end at ``V - 1``, so ``V = len(base) + 14``) and then the bin
    tokens, time first, then height, then width, all as special tokens that
    are never split or normalised. The base must already hold the chat tokens
    ``<|im_start|>`` and ``<|im_end|>`` (Qwen2 tokenizers do). The model's
    text embedding must then have ``V`` rows (the release resizes it to that).

    Example: the parity tokenizer is a 515-token base (512 byte-level tokens
    and 3 chat tokens) built up to 829 tokens, ``V = 529``.

    Raises:
        TokenizerMismatchError: the base already holds one of the tokens, or
            lacks the chat tokens.
    """
    from transformers import AddedToken

    for token in (TURN_START, TURN_END):
        if _token_id(base_tokenizer, token) is None:
            raise TokenizerMismatchError(f"the base tokenizer has no chat token {token}")
    names = list(ADDED_TOKENS) + bin_tokens(bins)
    present = [n for n in names if _token_id(base_tokenizer, n) is not None]
    if present:
        raise TokenizerMismatchError(f"the base tokenizer already holds {present[:5]} ({len(present)} in all)")
    tokenizer = copy.deepcopy(base_tokenizer)
    first = len(tokenizer)
    added = tokenizer.add_tokens(
        [AddedToken(n, special=True, normalized=False, lstrip=False, rstrip=False) for n in names],
        special_tokens=True,
    )
    ids = tokenizer.convert_tokens_to_ids(names)
    if added != len(names) or ids != list(range(first, first + len(names))):
        raise TokenizerMismatchError("the added tokens did not receive consecutive ids after the base vocabulary")
    return tokenizer


__all__ = [
    "TokenizerMismatchError",
    "build_release_tokenizer",
    "check_tokenizer",
    "load_tokenizer",
    "single_token_id",
]
