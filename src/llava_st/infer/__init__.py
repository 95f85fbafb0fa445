"""Inference: media and a question in, a structured answer out.

* :mod:`.predictor`: :class:`LlavaST`, the high-level predictor and its task helpers;
* :mod:`.answer`: :class:`Answer` and its one JSON schema, shared by
  ``llava-st ask --json`` and the REST server;
* :mod:`.pipeline`: the one prefetching batch loop used by ``ask_batch``, the
  evaluation predictor and the server.

``load_media`` and ``LoadedMedia`` come from :mod:`llava_st.media.load`. Names
are imported on first use, so the evaluation runner can use :mod:`.pipeline`
without importing torch.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "LlavaST": ".predictor",
    "Request": ".loading",
    "LoadedRequest": ".loading",
    "load_request": ".loading",
    "Prepared": ".predictor",
    "Answer": ".answer",
    "format_answer": ".answer",
    "read_answer": ".answer",
    "BatchError": ".pipeline",
    "BatchStats": ".pipeline",
    "LoadedMedia": "..media.load",
    "load_media": "..media.load",
}


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_NAMES)
