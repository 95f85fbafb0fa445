"""Evaluation: readers, parsers, metrics, scoring, reports and the runner (SPEC §5, EVAL-PROTOCOL).

Modules, one job each:

* :mod:`.metrics`: pure IoU / recall / one-to-one matching functions (numpy);
* :mod:`.captions`: BLEU, METEOR, ROUGE-L, CIDEr through ``pycocoevalcap``;
* :mod:`.dense_captioning`: the ActivityNet Captions dense-captioning protocol and SODA_c;
* :mod:`.parsing`: the release's answer parsers (published-compatible mode);
  canonical reading is :mod:`llava_st.protocol.answers`;
* :mod:`.refcoco`, :mod:`.charades`, :mod:`.st_align`: one benchmark family
  each: reader, prompt, per-sample scoring and aggregates in both modes;
* :mod:`.descriptions` (REG, TR), :mod:`.dvc`, :mod:`.dgc`: the tasks the release
  does not score, canonical mode only; their public formats
  (:mod:`.activitynet`, RefCOCOg, Charades-STA) and release-format files
  (:mod:`.release_format`, ST-Synth's held-out split);
* :mod:`.benchmarks`: the benchmarks by name and their data-root layout;
* :mod:`.scoring`: predictions file -> report; :mod:`.report`: published
  numbers and the markdown table;
* :mod:`.runner` (+ :mod:`.shards`, :mod:`.store`): the sharded, resumable
  evaluation loop behind the :class:`~.runner.Predictor` interface.
"""
