"""Evaluation samples from files in the release's training format (SPEC §4).

REG, TR, DVC and DGC have no evaluation format in the release. Their
evaluation samples are read from training-format files: ST-Synth's held-out
split writes one per task (``test/reg.json``, ``test/tr.json``,
``test/dvc.json``, ``test/dgc.json``), and a file of the same format from
elsewhere works the same. Each sample must be one question and its answer:

* ``question``: the human turn as the model was trained on it, each
  coordinate written as a placeholder with its value (``<TEMP-INPUT0.2>``,
  :func:`llava_st.protocol.coords.insert_values`), so the processor builds
  exactly the training prompt;
* ``answer``: the gpt turn with its coordinates written back as markup with
  exact values (``{0.2, 0.6}``, ``[0.1, 0.2, 0.5, 0.7]``;
  :func:`llava_st.protocol.coords.to_markup`), so the canonical answer parser
  reads the truth with the same grammar as the model's answers.

The file is read by :func:`llava_st.data.formats.read_release_sft` (every
check of the training format); here come the checks of an evaluation sample
(one human and one gpt turn, the media kind of the task, and, when the sample
says, ``meta.task`` equal to the task).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from ..data.formats import AnnotationError, read_release_sft
from ..protocol.coords import Variables, insert_values, to_markup
from ..protocol.tokens import VARIABLE_KEYS

#: The media kind each task's samples have.
TASK_MEDIA = {"reg": "image", "dgc": "image", "tr": "video", "dvc": "video"}


@dataclass(frozen=True)
class QuestionAnswer:
    """One question and its reference answer from a release-format file (see the module docstring).

    ``split`` is ``meta.split`` (the inclusive frame range a video's times are
    normalised over; ``None``: the whole video).
    """

    question: str
    answer: str
    media_kind: Literal["image", "video"]
    media: str
    split: tuple[int, int] | None = None
    id: str | int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    index: int = field(default=0, compare=False)


def _only(variables: Variables, io: str) -> Variables:
    return Variables.from_dict({k: getattr(variables, k) for k in VARIABLE_KEYS if k.endswith(f"_{io.lower()}_locations")})


def read_question_answers(path: str | Path, task: str) -> list[QuestionAnswer]:
    """The samples of a release-format file of ``task`` (``reg``, ``tr``, ``dvc`` or ``dgc``) as questions and answers.

    Raises:
        AnnotationError: naming the file, the sample and the field: a training-format
            problem, more than one question, a media kind the task does not take, or
            ``meta.task`` naming another task.
    """
    if task not in TASK_MEDIA:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_MEDIA)}")
    p = Path(path)
    out = []
    for s in read_release_sft(p):
        i = s.index
        meta_task = s.meta.get("task")
        if meta_task is not None and meta_task != task:
            raise AnnotationError(p, i, "meta.task", f"is {meta_task!r}: this file holds {meta_task} samples, not {task}")
        turns = [t for t in s.conversations if t.role != "system"]
        if len(turns) != 2:
            raise AnnotationError(
                p, i, "conversations", f"an evaluation sample is one question and its answer, got {len(turns)} turns"
            )
        if s.media_kind != TASK_MEDIA[task]:
            got = s.media_kind or "no media"
            raise AnnotationError(p, i, s.media_kind or "image/video", f"a {task} sample is about one {TASK_MEDIA[task]}, got {got}")
        question = insert_values(turns[0].text, _only(s.variables, "INPUT"))
        answer = to_markup(turns[1].text, _only(s.variables, "OUTPUT"), "OUTPUT")
        out.append(QuestionAnswer(question, answer, s.media_kind, s.media, s.split, s.id, dict(s.meta), index=i))
    return out


__all__ = ["QuestionAnswer", "TASK_MEDIA", "read_question_answers"]
