"""Named model configurations, as data.

* ``llava-st-qwen2-7b``: the released LLaVA-ST-Qwen2-7B (SigLIP so400m, Qwen2-7B,
  100 frames, 100 bins per axis) with the release's quirk switches.
* ``debug``: a test-sized model with every size shrunk (a 9x9 patch grid, so
  the packer goes 9 -> 3 -> 1; 12 frames -> 2 slow slots) that runs the same code.
* ``tiny``: the architecture of the embedded model (96 px, 8x8 patches, width 128).

A name resolves to a :class:`~llava_st.config.LlavaSTConfig`; weights are not
part of a config. Where a model's files are is decided by :func:`model_path`,
the one resolver of every ``from_pretrained`` and ``--model``: a local folder,
then a model shipped with the package (:data:`WEIGHTS`), then a Hugging Face
Hub repository (``org/name``, ``org/name@revision``) in the Hub's cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .config import CoordConfig, LlavaSTConfig, PackerConfig, TextConfig, VisionConfig
from .errors import ConfigError, ModelNotFoundError, UnknownModelError


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


def tiny(vocab_size: int = 534, num_frames: int = 16) -> LlavaSTConfig:
    """The embedded model's architecture: every stage of the release at toy width.

    96 px frames in 12 px patches (an 8x8 grid; ST-Synth's ``embedded`` preset
    renders at 96x96, so nothing is resampled), the packer 8 -> 4 (spatial) ->
    2 (fast) with 4-frame slots (16 frames -> 4 slots: 64 slow + 64 fast
    tokens), width 128 for the tower and the LLM (3 layers each), one time bin
    per sampled frame (as the release has 100 for its 100 frames) and 100 bins
    per spatial axis; the fast stream and the width inputs injected (the paper's behaviour,
    SPEC §7). ``vocab_size`` is set from the tokenizer when the model is built
    (the default matches the tokenizer trained on the ``embedded`` preset).
    """
    return LlavaSTConfig(
        text=TextConfig(
            vocab_size=vocab_size,
            hidden_size=128,
            intermediate_size=320,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            bos_token_id=None,
            eos_token_id=vocab_size - 14 - 1,
            pad_token_id=vocab_size - 14 - 3,
        ),
        vision=VisionConfig(
            image_size=96,
            patch_size=12,
            hidden_size=128,
            intermediate_size=384,
            num_attention_heads=4,
            num_hidden_layers=3,
        ),
        packer=PackerConfig(embed_dim=64, num_heads=4, spatial_factor=2, fast_factor=2, temporal_window=4),
        coords=CoordConfig(num_temporal_bins=num_frames, num_spatial_bins=100),
        num_frames=num_frames,
        vision_tower="tiny-siglip",
        inject_fast_stream=True,
        inject_width_inputs=True,
    )


REGISTRY: dict[str, Callable[[], LlavaSTConfig]] = {
    "llava-st-qwen2-7b": release_7b,
    "debug": debug,
    "tiny": tiny,
}


def get_config(name: str) -> LlavaSTConfig:
    """The config registered under ``name``."""
    try:
        return REGISTRY[name]()
    except KeyError:
        raise UnknownModelError(f"unknown model name {name!r}; known names: {sorted(REGISTRY)}") from None


#: Named models with weights: name -> folder (in the release layout). Models we
#: ship inside the package are registered here with their folder.
WEIGHTS: dict[str, Callable[[], Path]] = {
    # the embedded model, trained here on ST-Synth (llava-st build-tiny; README, "The embedded model")
    "tiny": lambda: Path(__file__).resolve().parent / "embedded" / "model",
}


#: Files a Hub snapshot need not fetch: the loaders read safetensors weights, JSON configs and tokenizer files only.
HUB_IGNORE = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.gguf", "*.tflite", "*.ot")


def model_path(
    name_or_path: str | os.PathLike, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """The folder of a model, looked up in this order:

    1. an existing local folder;
    2. a name registered in :data:`WEIGHTS` (a model shipped with the package);
    3. a Hugging Face Hub repository id, ``org/name`` or ``org/name@revision``
       (a branch, tag or commit; or give ``revision``), fetched with
       ``huggingface_hub.snapshot_download`` into the Hub cache (``cache_dir``,
       default ``$HF_HUB_CACHE``, ``~/.cache/huggingface/hub``) and returned
       from there. With ``HF_HUB_OFFLINE=1`` nothing is fetched: the cached
       snapshot is used, or the error names the repository and the cache.
       Files the loaders never read (``*.bin`` and other non-safetensors
       weights, :data:`HUB_IGNORE`) are not fetched.

    Raises:
        ModelNotFoundError: none of the three (the message says what was tried), a
            Hub repository or revision that does not exist, or, offline, a
            repository missing from the cache.
        ConfigError: ``revision`` given for a local folder or a shipped model, or
            two different revisions (``@rev`` and ``revision``).
    """
    path = Path(name_or_path)
    key = str(name_or_path)
    if path.is_dir():
        _no_revision(key, revision, "a local folder")
        return path
    if key in WEIGHTS:
        _no_revision(key, revision, "a model shipped with llava-st")
        folder = WEIGHTS[key]()
        if not folder.is_dir():
            raise ModelNotFoundError(f"model {key!r} should be at {folder}, which does not exist")
        return folder
    known = ", ".join(sorted(WEIGHTS)) or "none yet"
    if key in REGISTRY:
        raise ModelNotFoundError(
            f"no model folder {key!r} (that name is a configuration without weights); give a local folder in the "
            f"release layout, a registered model name ({known}) or a Hugging Face Hub repository id (org/name)"
        )
    repo, rev = _hub_id(key, revision)
    if repo is None:
        raise ModelNotFoundError(
            f"no model folder {key!r}; give a local folder in the release layout (config.json, weights, tokenizer), "
            f"a registered model name ({known}) or a Hugging Face Hub repository id (org/name or org/name@revision)"
        )
    return _hub_snapshot(repo, rev, cache_dir, tried=f"no local folder {key!r} and no registered model of that name ({known})")


def _no_revision(key: str, revision: str | None, what: str) -> None:
    if revision is not None:
        raise ConfigError(f"revision={revision!r} applies to Hugging Face Hub ids only, but {key!r} is {what}")


def _hub_id(key: str, revision: str | None) -> tuple[str | None, str | None]:
    """``(repo id, revision)`` of ``org/name[@rev]``, or ``(None, None)`` when ``key`` cannot be a repository id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo, at, rev = key.partition("@")
    if at:
        if not rev:
            raise ConfigError(f"{key!r}: nothing after '@'; write org/name@revision (a branch, tag or commit)")
        if revision is not None and revision != rev:
            raise ConfigError(f"{key!r} names revision {rev!r} but revision={revision!r} was given too; give one")
    try:
        validate_repo_id(repo)
    except HFValidationError:
        return None, None
    return repo, (rev if at else revision)


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set now (read at each call, not at import)."""
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(var)
        if value is not None and value.strip() != "":
            return value.strip().upper() in ("1", "ON", "YES", "TRUE")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _hub_snapshot(repo: str, revision: str | None, cache_dir: str | os.PathLike | None, tried: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    offline = hub_offline()
    cache = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    where = f"Hugging Face Hub repository {repo!r} (revision {revision or 'main'})"
    try:
        folder = snapshot_download(
            repo, revision=revision, cache_dir=cache, local_files_only=offline, ignore_patterns=list(HUB_IGNORE)
        )
    except RevisionNotFoundError as exc:
        raise ModelNotFoundError(f"{where}: the repository has no such revision") from exc
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"{tried}, and the Hub has no {where} (or it is private or gated: log in with `hf auth login`)"
        ) from exc
    except LocalEntryNotFoundError as exc:
        if offline:
            raise ModelNotFoundError(
                f"{tried}; HF_HUB_OFFLINE is set and the {where} is not (completely) in the cache {cache}: fetch it "
                f"once with network access (`hf download {repo}` or any run without HF_HUB_OFFLINE), or unset it"
            ) from exc
        raise ModelNotFoundError(
            f"{tried}; the Hub could not be reached for the {where}, and it is not in the cache {cache} ({exc})"
        ) from exc
    return Path(folder)
