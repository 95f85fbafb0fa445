"""Inference: media and a question in, a structured answer out.

* :mod:`.predictor`: :class:`LlavaST`, the high-level predictor and its task helpers;
* :mod:`.answer`: :class:`Answer` and its JSON schema, shared by ``llava-st ask --json``
  and the REST server;
* :mod:`.pipeline`: the one prefetching batch loop used by ``ask_batch``, the
  evaluation predictor and the server.
"""

from .predictor import Answer, LlavaST, LoadedMedia, Request, load_media, read_answer

__all__ = ["Answer", "LlavaST", "LoadedMedia", "Request", "load_media", "read_answer"]
