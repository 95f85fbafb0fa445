"""Serving: a REST API (FastAPI) and a web page (Gradio) for any model the package loads.

* :mod:`.settings`: :class:`Limits` and :class:`ServerSettings`, the bounds and knobs of a server;
* :mod:`.app`: :func:`create_app`, the FastAPI application (``POST /v1/ask``,
  ``GET /v1/model``, ``GET /v1/health``, OpenAPI docs);
* :mod:`.batcher`: :class:`Batcher`, concurrent requests answered together
  through ``LlavaST.ask_batch``;
* :mod:`.params`, :mod:`.tasks`: the request's fields and the task prompts;
* :mod:`.intake`: uploads, the media root, kinds by decoding, limits;
* :mod:`.errors`, :mod:`.openapi`: JSON errors and the API's description;
* :mod:`.samples`, :mod:`.views`, :mod:`.ui`: the web page, its sample media
  and the pictures of an answer;
* :mod:`.loadgen`: a bounded load generator for the loopback address (the
  load test and ``bench/serve_load.py``).

The command line: ``llava-st serve`` (extra ``serve``: FastAPI, uvicorn,
python-multipart) and ``llava-st ui`` (extra ``ui``: Gradio, matplotlib).
Names are imported on first use, so importing this package needs neither.
The server stands on :mod:`llava_st.infer` only (no eval, no train).
"""

from __future__ import annotations

import importlib

_NAMES = {
    "Limits": ".settings",
    "ServerSettings": ".settings",
    "create_app": ".app",
    "Batcher": ".batcher",
    "build_ui": ".ui",
    "Sample": ".samples",
    "find_samples": ".samples",
}


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_NAMES)
