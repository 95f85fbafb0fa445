"""Optional dependencies, gated in one place.

Parts of llava-st need packages that a minimal install does not carry (PyAV for
video, matplotlib for pictures, pycocoevalcap for caption metrics, FastAPI for
the server, peft/accelerate for training). :func:`require` imports one and,
when it is missing, raises an ImportError that names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# module name -> (pip extra, what needs it)
_EXTRAS = {
    "av": ("video", "reading and writing video files"),
    "matplotlib": ("viz", "drawing pictures of answers"),
    "pycocoevalcap": ("eval", "caption metrics (BLEU, METEOR, ROUGE-L, CIDEr)"),
    "fastapi": ("serve", "the REST server"),
    "uvicorn": ("serve", "the REST server"),
    "peft": ("train", "LoRA training and adapters"),
    "accelerate": ("train", "multi-process training and evaluation"),
    "lmms_eval": ("lmms-eval", "running LLaVA-ST models inside lmms-eval"),
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise an ImportError naming the llava-st extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra, purpose = _EXTRAS.get(top, (None, None))
        if extra is None:
            raise
        raise ImportError(
            f"{top} is needed for {purpose} but is not installed; install it with "
            f"`pip install 'llava-st[{extra}]'`"
        ) from exc
