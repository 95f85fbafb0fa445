"""The text side of the model, with no tensors (SPEC §1, §3).

* :mod:`.tokens`: special tokens, ids and the bin-token layout;
* :mod:`.coords`: the coordinate protocol, markup <-> placeholders <-> values
  <-> bins <-> the release's decimals, both directions;
* :mod:`.timebase`: the one frame sampler (SPEC §2.1) and :class:`Timeline`,
  which turns normalised times and boxes into seconds and pixels;
* :mod:`.answers`: the typed answers and the parser of generated text;
* :mod:`.prompts`: the release's prompt wording.
"""
