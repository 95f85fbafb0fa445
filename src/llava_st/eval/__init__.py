"""Evaluation: readers, parsers, metrics, scoring, reports and the runner (SPEC §5, EVAL-PROTOCOL).

Modules, one job each:

* :mod:`.metrics`: pure IoU / recall functions (numpy);
* :mod:`.captions`: BLEU, METEOR, ROUGE-L, CIDEr through ``pycocoevalcap``;
* :mod:`.parsing`: the release's answer parsers (published-compatible mode);
  canonical reading is :mod:`llava_st.protocol.answers`;
* :mod:`.refcoco`, :mod:`.charades`, :mod:`.st_align`: one benchmark family
  each: reader, prompt, per-sample scoring and aggregates in both modes;
* :mod:`.benchmarks`: the benchmarks by name and their data-root layout;
* :mod:`.scoring`: predictions file -> report; :mod:`.report`: published
  numbers and the markdown table;
* :mod:`.runner` (+ :mod:`.shards`, :mod:`.store`): the sharded, resumable
  evaluation loop behind the :class:`~.runner.Predictor` interface.
"""
