"""The LLaVA-ST network: tower, projector, LAPE, packer, Qwen2 with coordinate vocabulary, loss, decoding, I/O."""

from .adapters import load_lora_adapter
from .checkpoint import CheckpointError, LoadReport, load_pretrained, save_pretrained
from .generate import GenerationConfig, GenerationOutput, generate
from .modeling import LlavaSTModel, LlavaSTOutput, VideoFeatures

__all__ = [
    "CheckpointError",
    "GenerationConfig",
    "GenerationOutput",
    "LlavaSTModel",
    "LlavaSTOutput",
    "LoadReport",
    "VideoFeatures",
    "generate",
    "load_lora_adapter",
    "load_pretrained",
    "save_pretrained",
]
