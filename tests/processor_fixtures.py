"""Tiny tokenizers, configs and an independent token reference for the processor tests.

The tiny tokenizer is byte-level BPE WITHOUT merges: every byte of ordinary
text is one token, so the ids of any text can be computed here without the
tokenizer (:func:`reference_ids`), which makes it an independent reference
for the processor's tokenization, labels and slot expansion.
"""

from __future__ import annotations

import re

from llava_st.config import CoordConfig, LlavaSTConfig, PackerConfig, TextConfig, VisionConfig

CHAT_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character map of byte-level BPE (GPT-2's)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def byte_level_base_tokenizer():
    """A 259-token base LLM tokenizer: 256 byte tokens (id = byte order) and the 3 chat tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(CHAT_SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def tiny_config(
    vocab_size: int,
    num_temporal_bins: int = 10,
    num_spatial_bins: int = 20,
    image_size: int = 84,
    patch_size: int = 14,
    spatial_factor: int = 3,
    fast_factor: int = 2,
    temporal_window: int = 2,
    num_frames: int = 4,
) -> LlavaSTConfig:
    """A test-sized config whose slot counts differ from the release's (84 px / 14 -> 6x6 grid)."""
    return LlavaSTConfig(
        text=TextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            bos_token_id=None,
            eos_token_id=None,
        ),
        vision=VisionConfig(
            image_size=image_size,
            patch_size=patch_size,
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
        ),
        packer=PackerConfig(
            embed_dim=16, num_heads=2, spatial_factor=spatial_factor, fast_factor=fast_factor, temporal_window=temporal_window
        ),
        coords=CoordConfig(num_temporal_bins=num_temporal_bins, num_spatial_bins=num_spatial_bins),
        num_frames=num_frames,
    )


def tiny_release_tokenizer(num_temporal_bins: int = 10, num_spatial_bins: int = 20):
    from llava_st.processor import build_release_tokenizer
    from llava_st.protocol.tokens import BinCounts

    return build_release_tokenizer(byte_level_base_tokenizer(), BinCounts(num_temporal_bins, num_spatial_bins))


def tiny_processor(options=None, **config_changes):
    """A processor on the byte-level tokenizer with the tiny config (V = 259 + 14 = 273)."""
    from llava_st.processor import LlavaSTProcessor

    bins_t = config_changes.get("num_temporal_bins", 10)
    bins_s = config_changes.get("num_spatial_bins", 20)
    tokenizer = tiny_release_tokenizer(bins_t, bins_s)
    vocab = len(tokenizer) - bins_t - 2 * bins_s
    return LlavaSTProcessor(tokenizer, tiny_config(vocab, **config_changes), options)


def reference_ids(text: str, tokenizer) -> list[int]:
    """Ids of ``text`` computed without running the tokenizer on it.

    Added tokens (looked up by name) are cut out first, longest name first;
    every other byte is its own token, whose id is looked up by its byte-level
    character. Valid for :func:`byte_level_base_tokenizer` and tokenizers built on it.
    """
    table = bytes_to_unicode()
    specials = sorted((t.content for t in tokenizer.added_tokens_decoder.values()), key=len, reverse=True)
    pattern = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")
    vocab = tokenizer.get_vocab()
    ids: list[int] = []
    for piece in pattern.split(text):
        if not piece:
            continue
        if piece in specials:
            ids.append(vocab[piece])
        else:
            ids.extend(vocab[table[b]] for b in piece.encode("utf-8"))
    return ids
