"""Adapters that let other evaluation harnesses run LLaVA-ST models.

* :mod:`.models`: the ``llava_st`` model of `lmms-eval
  <https://github.com/EvolvingLMMs-Lab/lmms-eval>`_ (``pip install
  'llava-st[lmms-eval]'``, then ``lmms-eval --model llava_st --model_args
  pretrained=...``). The package layout is the one lmms-eval's plugin
  mechanisms look for: the ``lmms_eval.models`` entry point of our
  ``pyproject.toml`` (lmms-eval >= 0.6), or ``LMMS_EVAL_PLUGINS=llava_st.integrations``
  (older releases), which import ``llava_st.integrations.models.llava_st``.
"""
