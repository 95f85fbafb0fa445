"""The SigLIP vision tower (SPEC §2.3).

transformers' ``SiglipVisionModel`` built with only the KEPT layers (the
release drops the last encoder layer of the full tower) and no pooling head.
The feature is the output of the last kept layer, before ``post_layernorm``;
``post_layernorm`` is kept as a module only because the checkpoint stores it.

Notation: ``N`` images or frames, ``G`` patches per side, ``C`` tower width.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import VisionConfig


class VisionTower(nn.Module):
    """Pixels ``[N, 3, S, S]`` -> patch features ``[N, G*G, C]`` (pre-post-layernorm)."""

    def __init__(self, config: VisionConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        from transformers import SiglipVisionModel

        self.config = config
        self.tower = SiglipVisionModel(config.to_siglip_config(attn_implementation))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.dim() != 4 or pixel_values.shape[1] != self.config.num_channels:
            raise ValueError(
                f"pixel_values must be [N, {self.config.num_channels}, H, W], got {tuple(pixel_values.shape)}"
            )
        size = self.config.image_size
        if pixel_values.shape[-2:] != (size, size):
            raise ValueError(f"pixel_values must be {size}x{size}, got {tuple(pixel_values.shape[-2:])}")
        weight = self.tower.embeddings.patch_embedding.weight
        hidden = self.tower.embeddings(pixel_values.to(weight.device, weight.dtype))  # [N, G*G, C]
        return self.tower.encoder(inputs_embeds=hidden).last_hidden_state  # [N, G*G, C]
