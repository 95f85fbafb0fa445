"""Data: the release's file formats (:mod:`.formats`), read and written in one place.

Training mixes (:mod:`.mix`) and the training dataset (:mod:`.dataset`, with
the processor and the media package) are built on :mod:`.formats.release_sft`;
the evaluation benchmarks read :mod:`.formats.st_align`, :mod:`.formats.refcoco`
and :mod:`.formats.charades`; ST-Synth writes all of them. :mod:`.formats` and
:mod:`.mix` import neither the evaluation, the model nor torch.
"""

from .formats import AnnotationError

__all__ = ["AnnotationError"]
