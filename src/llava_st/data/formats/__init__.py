"""The release's file formats, one module each: schema (typed records), reader and writer.

==================  ==========================================  ===========================
module              format                                      public names
==================  ==========================================  ===========================
:mod:`.release_sft` training samples (SPEC §4), JSON list/JSONL  ``SFTSample``, ``Turn``,
                                                                ``read_release_sft``,
                                                                ``iter_release_sft``,
                                                                ``parse_sft_sample``,
                                                                ``write_release_sft``
:mod:`.st_align`    ST-Align STVG/SVG/ELC (EVAL-PROTOCOL §3)    ``STSample``, ``read_st_align``,
                                                                ``write_st_align``
:mod:`.refcoco`     RefCOCO family (EVAL-PROTOCOL §1)           ``RefSample``, ``read_refcoco``,
                                                                ``write_refcoco``
:mod:`.charades`    Charades-STA (EVAL-PROTOCOL §2)             ``TVGSample``, ``read_charades``,
                                                                ``write_charades``
==================  ==========================================  ===========================

ST-Synth writes through these writers; evaluation and training read through
these readers. The JSON helpers (:func:`load_records`: a JSON list or JSONL;
:func:`write_json_list`, :func:`write_jsonl`: one record per line) serve the
other files of the project too. Every reader raises :class:`AnnotationError` (a
:class:`llava_st.errors.DataError`) naming the file, the sample index and the
field. Records carry their position in the file as ``index``, which is not
part of their value: a record written and read back compares equal.
"""

from ._io import AnnotationError, load_records, write_json_list, write_jsonl
from .charades import TVGSample, read_charades, write_charades
from .refcoco import RefSample, read_refcoco, write_refcoco
from .release_sft import SFTSample, Turn, iter_release_sft, parse_sft_sample, read_release_sft, write_release_sft
from .st_align import STSample, read_st_align, write_st_align

__all__ = [
    "AnnotationError",
    "RefSample",
    "SFTSample",
    "STSample",
    "TVGSample",
    "Turn",
    "iter_release_sft",
    "load_records",
    "parse_sft_sample",
    "read_charades",
    "read_refcoco",
    "read_release_sft",
    "read_st_align",
    "write_charades",
    "write_json_list",
    "write_jsonl",
    "write_refcoco",
    "write_release_sft",
    "write_st_align",
]
