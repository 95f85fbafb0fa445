"""A small byte-level BPE tokenizer trained on ST-Synth text, in the release layout.

The base is trained with ``tokenizers`` on the conversations of ST-Synth
training files (coordinate placeholders removed); its 256 byte symbols are
always in the vocabulary, so any text encodes. The chat tokens of Qwen2
(``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``) come first, and
:func:`~llava_st.processor.build_release_tokenizer` then adds the release's
markers, placeholders and bin tokens after the learned vocabulary.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import DataError
from ..protocol.tokens import BinCounts

#: Qwen2's chat tokens, which the release layout expects in the base tokenizer.
CHAT_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_PLACEHOLDER_RE = re.compile(r"<(?:TEMP|HEIGHT|WIDTH)-(?:INPUT|OUTPUT)>|<image>|<video>")


def conversation_texts(files: Iterable[str | Path]) -> Iterator[str]:
    """Every turn of every sample in release-format files, placeholders and media tags removed."""
    from ..data.formats.release_sft import read_release_sft

    for f in files:
        for sample in read_release_sft(f):
            for turn in sample.conversations:
                text = _PLACEHOLDER_RE.sub(" ", turn.text).strip()
                if text:
                    yield text


def train_tokenizer(texts: Iterable[str], bins: BinCounts, vocab_size: int = 1024, extra_texts: Iterable[str] = ()):
    """Train a byte-level BPE base on ``texts`` and give it the release's added tokens.

    Args:
        texts: the training corpus (e.g. :func:`conversation_texts` of ST-Synth).
        bins: the model's bin counts (``config.coords.bins``).
        vocab_size: size of the base vocabulary: 256 bytes, the 3 chat tokens and
            the learned merges (fewer when the corpus has no more frequent pairs).
        extra_texts: more text to learn from, such as the chat template's system prompt.

    Returns:
        A ``PreTrainedTokenizerFast`` (pad ``<|endoftext|>``, eos ``<|im_end|>``);
        the model's text embedding must have ``len(base) + 14`` rows.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from ..processor import build_release_tokenizer

    if vocab_size < 256 + len(CHAT_TOKENS):
        raise DataError(f"vocab_size must hold the 256 bytes and {len(CHAT_TOKENS)} chat tokens, got {vocab_size}")
    corpus = [t for t in list(texts) + list(extra_texts) if t]
    if not corpus:
        raise DataError("no text to train the tokenizer on")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(CHAT_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    base = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    return build_release_tokenizer(base, bins)


def train_tokenizer_on_folder(folder: str | Path, bins: BinCounts, vocab_size: int = 1024):
    """:func:`train_tokenizer` on the training files of an ST-Synth folder (``train/*.json``) and the
    chat template's default system prompt."""
    from ..processor.chat import DEFAULT_SYSTEM_PROMPT

    files = sorted((Path(folder) / "train").glob("*.json"))
    if not files:
        raise DataError(f"{folder}: no train/*.json; give the folder `llava-st synth` wrote")
    return train_tokenizer(conversation_texts(files), bins, vocab_size, extra_texts=[DEFAULT_SYSTEM_PROMPT])
