"""Named model configurations, as data.

* ``llava-st-qwen2-7b``: the released LLaVA-ST-Qwen2-7B (SigLIP so400m, Qwen2-7B,
  100 frames, 100 bins per axis) with the release's quirk switches.
* ``debug``: a test-sized model with every size shrunk (a 9x9 patch grid, so
  the packer goes 9 -> 3 -> 1; 12 frames -> 2 slow slots) that runs the same code.

A name resolves to a :class:`~llava_st.config.LlavaSTConfig`; weights are not
part of a config (checkpoints are loaded from local folders).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .config import CoordConfig, LlavaSTConfig, PackerConfig, TextConfig, VisionConfig
from .errors import ModelNotFoundError, UnknownModelError


def release_7b() -> LlavaSTConfig:
    """The released 7B model (release switches: fast stream and width inputs not injected)."""
    return LlavaSTConfig(inject_fast_stream=False, inject_width_inputs=False)


def debug(vocab_size: int = 529, num_frames: int = 12) -> LlavaSTConfig:
    """A tiny random-weight model for tests (``vocab_size`` 529 matches the parity tokenizer)."""
    return LlavaSTConfig(
        text=TextConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            # Qwen-style layout: <|endoftext|> (pad), <|im_start|>, <|im_end|> (eos) sit just
            # before the 14 added tokens, as in the parity tokenizer.
            bos_token_id=None,
            eos_token_id=vocab_size - 14 - 1,
            pad_token_id=vocab_size - 14 - 3,
        ),
        vision=VisionConfig(
            image_size=126,
            patch_size=14,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=2,
            num_hidden_layers=2,
        ),
        packer=PackerConfig(embed_dim=32, num_heads=4),
        coords=CoordConfig(num_temporal_bins=100, num_spatial_bins=100),
        num_frames=num_frames,
        vision_tower="debug-siglip",
    )


REGISTRY: dict[str, Callable[[], LlavaSTConfig]] = {
    "llava-st-qwen2-7b": release_7b,
    "debug": debug,
}


def get_config(name: str) -> LlavaSTConfig:
    """The config registered under ``name``."""
    try:
        return REGISTRY[name]()
    except KeyError:
        raise UnknownModelError(f"unknown model name {name!r}; known names: {sorted(REGISTRY)}") from None


#: Named models with weights: name -> folder (in the release layout). Models we
#: ship inside the package are registered here with their folder.
WEIGHTS: dict[str, Callable[[], Path]] = {}


def model_path(name_or_path: str | os.PathLike) -> Path:
    """The folder of a model: an existing local folder, or a name registered in :data:`WEIGHTS`.

    Raises:
        FileNotFoundError: neither a folder nor a known name (the message lists the names).
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path
    key = str(name_or_path)
    if key in WEIGHTS:
        folder = WEIGHTS[key]()
        if not folder.is_dir():
            raise ModelNotFoundError(f"model {key!r} should be at {folder}, which does not exist")
        return folder
    known = ", ".join(sorted(WEIGHTS)) or "none yet"
    hint = " (that name is a configuration without weights)" if key in REGISTRY else ""
    raise ModelNotFoundError(
        f"no model folder {str(name_or_path)!r}{hint}; give a local folder in the release layout "
        f"(config.json, weights, tokenizer) or a registered model name ({known})"
    )
