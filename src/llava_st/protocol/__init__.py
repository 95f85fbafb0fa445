"""The text side of the model, with no tensors (SPEC §1, §3).

Each concept has one module:

* :mod:`.tokens`: special tokens, ids and the bin-token layout: the bin
  counts (:class:`~.tokens.BinCounts`, a model's ``config.coords.bins``),
  bin-token names and the one bin-token pattern;
* :mod:`.coords`: text -> model: coordinate markup -> placeholders + values,
  and the one formatter that writes values as markup;
* :mod:`.bins`: model -> text: bin tokens <-> values, and the release's
  decimal rewrite with its inverse;
* :mod:`.timebase`: the one frame sampler (SPEC §2.1) and :class:`Timeline`,
  which turns normalised times and boxes into seconds and pixels;
* :mod:`.results`: the typed answers (spans, boxes, tracks, one class per task);
* :mod:`.answers`: the parser of generated text into those results;
* :mod:`.prompts`: the release's prompt wording and our task prompts;
* :mod:`.grammars`: each task's answer grammar, as text (what constrained
  decoding compiles into a token program).
"""
