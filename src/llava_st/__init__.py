"""llava-st: the LLaVA-ST spatial-temporal multimodal LLM on PyTorch and transformers."""

from .config import CoordConfig, LlavaSTConfig, PackerConfig, TextConfig, VisionConfig

__version__ = "0.1.0"

__all__ = [
    "CoordConfig",
    "LlavaSTConfig",
    "PackerConfig",
    "TextConfig",
    "VisionConfig",
    "__version__",
]
