"""LLaVA-ST's models for lmms-eval, by name (see :mod:`llava_st.integrations`).

``AVAILABLE_MODELS`` is what ``LMMS_EVAL_PLUGINS`` reads (model name -> class
in the module of the same name); :func:`manifests` is the ``lmms_eval.models``
entry point of lmms-eval's model registry. Importing this package does not
import lmms-eval.
"""

from __future__ import annotations

#: model name -> class name, in the module ``llava_st.integrations.models.<name>``.
AVAILABLE_MODELS = {"llava_st": "LlavaSTLmms"}


def manifests():
    """lmms-eval's registration of our models (called by lmms-eval when it loads its entry points)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [
        ModelManifest(model_id=name, simple_class_path=f"{__name__}.{name}.{cls}")
        for name, cls in AVAILABLE_MODELS.items()
    ]
