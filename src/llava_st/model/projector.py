"""The ``mlp2x_gelu`` projector (SPEC §2.4): tower width ``C`` -> LLM width ``D``.

``Linear(C, D) -> GELU (exact erf form) -> Linear(D, D)``, applied per patch,
BEFORE the packer, so everything after it lives in width ``D``. The packer's
q/k/v maps (SPEC §2.6) have the same form, so they are this module too.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Projector(nn.Module):
    """``[..., in_dim]`` -> ``[..., out_dim]``: ``fc2(gelu(fc1(x)))``."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.fc2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))
