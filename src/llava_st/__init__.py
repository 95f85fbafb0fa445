"""llava-st: the LLaVA-ST spatial-temporal multimodal LLM on PyTorch and transformers.

The public API: :class:`LlavaST` (ask questions about videos and images),
:class:`LlavaSTModel` (the network), :class:`LlavaSTProcessor` (prompts and media to
model inputs) and :class:`LlavaSTConfig`. Heavy parts are imported on first use, so
``import llava_st`` stays light.
"""

from .config import CoordConfig, LlavaSTConfig, PackerConfig, TextConfig, VisionConfig

__version__ = "0.1.0"

_LAZY = {
    "LlavaST": ("llava_st.infer", "LlavaST"),
    "Answer": ("llava_st.infer", "Answer"),
    "Request": ("llava_st.infer", "Request"),
    "LlavaSTModel": ("llava_st.model", "LlavaSTModel"),
    "LlavaSTProcessor": ("llava_st.processor", "LlavaSTProcessor"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'llava_st' has no attribute {name!r}")


__all__ = [
    "Answer",
    "CoordConfig",
    "LlavaST",
    "LlavaSTConfig",
    "LlavaSTModel",
    "LlavaSTProcessor",
    "PackerConfig",
    "Request",
    "TextConfig",
    "VisionConfig",
    "__version__",
]
