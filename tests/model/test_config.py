"""Config: release layout in and out, unknown keys kept, switches, size checks."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llava_st.config import LlavaSTConfig, PackerConfig, VisionConfig
from llava_st.zoo import REGISTRY, get_config


def test_a_release_dict_reads_release_switches_and_keeps_unknown_keys(tmp_path) -> None:
    """A release-style config (no switches named, keys we do not own) read, written and read again.

    The parity fixture's own config.json is checked the same way in tests/test_parity.py."""
    raw = {k: v for k, v in get_config("debug").to_release_dict().items() if k not in ("inject_fast_stream", "inject_width_inputs")}
    raw.update(mm_patch_merge_type="spatial_unpad", image_aspect_ratio="anyres", tokenizer_padding_side="right")
    cfg = LlavaSTConfig.from_release_dict(raw)
    assert cfg.inject_fast_stream is False and cfg.inject_width_inputs is False
    assert cfg.extra["mm_patch_merge_type"] == "spatial_unpad" and cfg.extra["image_aspect_ratio"] == "anyres"
    written = cfg.to_release_dict()
    for key, value in raw.items():
        assert written[key] == value, key
    assert written["inject_fast_stream"] is False
    cfg.to_json_file(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["tokenizer_padding_side"] == "right"
    assert LlavaSTConfig.from_json_file(tmp_path / "config.json") == cfg


def test_configs_we_create_use_the_corrected_behaviour() -> None:
    cfg = LlavaSTConfig()
    assert cfg.inject_fast_stream and cfg.inject_width_inputs
    data = cfg.to_release_dict()
    assert data["inject_fast_stream"] is True
    assert LlavaSTConfig.from_release_dict(data).inject_fast_stream is True


def test_release_7b_sizes() -> None:
    cfg = get_config("llava-st-qwen2-7b")
    assert cfg.vision.grid_size == 27 and cfg.vision.num_kept_layers == 26
    assert cfg.image_token_count == 729
    assert cfg.video_fast_token_count() == 900 and cfg.video_slow_token_count() == 1620
    assert cfg.extended_vocab_size == cfg.text.vocab_size + 300
    assert not cfg.inject_fast_stream
    assert set(REGISTRY) >= {"llava-st-qwen2-7b", "debug"}
    with pytest.raises(KeyError, match="unknown model name"):
        get_config("nope")


def test_qwen2_config_carries_rope_theta() -> None:
    q = get_config("debug").text.to_qwen2_config()
    assert q.rope_parameters["rope_theta"] == 1e6 and q.use_sliding_window is False


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(packer=PackerConfig(spatial_factor=4)), "not divisible by packer.spatial_factor"),
        (dict(packer=PackerConfig(fast_factor=2)), "not divisible by packer.fast_factor"),
        (dict(packer=PackerConfig(embed_dim=30, num_heads=8)), "embed_dim 30"),
        (dict(vision=VisionConfig(select_layer=-30)), "select_layer"),
        (dict(num_frames=0), "num_frames"),
        (dict(projector_type="linear"), "projector_type"),
    ],
)
def test_invalid_sizes_are_named(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        replace(LlavaSTConfig(), **change)


def test_mismatched_release_fields_are_errors() -> None:
    data = LlavaSTConfig().to_release_dict()
    with pytest.raises(ValueError, match="mm_perceiver_latents = 64"):
        LlavaSTConfig.from_release_dict({**data, "mm_perceiver_latents": 64})
    with pytest.raises(ValueError, match="mm_hidden_size"):
        LlavaSTConfig.from_release_dict({k: v for k, v in {**data, "mm_hidden_size": 7}.items() if k != "vision_config"})
    with pytest.raises(ValueError, match="model_type"):
        LlavaSTConfig.from_release_dict({**data, "model_type": "llama"})
