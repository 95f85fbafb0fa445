"""Data: the release's file formats (:mod:`.formats`), read and written in one place.

Training datasets and mixes are built on :mod:`.formats.release_sft`; the
evaluation benchmarks read :mod:`.formats.st_align`, :mod:`.formats.refcoco`
and :mod:`.formats.charades`; ST-Synth writes all of them. Nothing here
imports the evaluation, the model or torch.
"""

from .formats import AnnotationError

__all__ = ["AnnotationError"]
