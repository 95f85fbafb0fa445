"""Held-out answer loss: how well a model predicts the answers of a training-format file it never saw.

Greedy benchmark scores (Acc@0.5, R@0.5, ...) move in steps and sit at the best
constant answer until a model has learnt a skill almost completely, so two short
training runs that both fall short of a skill often score the same. The loss on
held-out answers moves with every bit the model learns, and compares runs that
share a tokenizer (same answer tokens) at any budget.

:func:`answer_loss` is the mean, over every supervised answer token of the file's
samples, of the loss the trainer minimises (the coordinate-aware cross-entropy of
SPEC §2.11: a coordinate's target is the two bins around its value), computed in
evaluation mode: no neighbouring-token propagation, no dropout, no auxiliary losses.
:class:`AnswerLoss` also splits it into the coordinate tokens (time, height and width
bins: where grounding shows) and the other answer tokens (brackets, words).
It reads samples with the training reader (release SFT layout, ``meta.sample_frames``
and ``meta.split`` honoured), so an ST-Synth ``test/<task>.json`` serves as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.dataset import TrainCollator, file_dataset
from ..errors import DataError
from ..model.loss import soft_target_cross_entropy
from .engine import to_device


@dataclass(frozen=True)
class AnswerLoss:
    """``loss``: mean per supervised answer token (nats); ``tokens``: how many entered it;
    ``samples``: how many samples; ``coord_loss`` / ``coord_tokens``: the same over the
    coordinate tokens only (NaN / 0 without any); ``text_loss``: over the other tokens."""

    loss: float
    tokens: int
    samples: int
    coord_loss: float
    coord_tokens: int
    text_loss: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@torch.no_grad()
def answer_loss(
    model,
    processor,
    json_path: str | Path,
    data_folder: str | Path | None = None,
    *,
    batch_size: int = 16,
    limit: int | None = None,
) -> AnswerLoss:
    """The held-out answer loss of ``model`` on a training-format file.

    Args:
        model: a :class:`~llava_st.model.LlavaSTModel` (put in evaluation mode; left there).
        processor: its :class:`~llava_st.processor.LlavaSTProcessor`.
        json_path: the samples (a release-layout JSON list or JSONL file).
        data_folder: where the samples' media paths start (default: the file's folder's parent,
            the layout of an ST-Synth ``train/`` or ``test/`` file).
        batch_size: samples per forward (padding does not change the result).
        limit: the first ``limit`` samples only (default: all).

    Raises:
        DataError: an unreadable file or sample, or a file with no answer to score.
        ValueError: ``batch_size`` or ``limit`` below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    json_path = Path(json_path)
    folder = Path(data_folder) if data_folder is not None else json_path.resolve().parent.parent
    dataset = file_dataset(json_path, folder, processor, limit=limit)
    collate = TrainCollator(processor)
    model.eval()
    device = next(model.parameters()).device
    ids = model.token_ids
    placeholders = torch.tensor([ids.temp_output, ids.height_output, ids.width_output], device=device)
    losses, is_coord = [], []
    for start in range(0, len(dataset), batch_size):
        batch = to_device(collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]), device)
        labels = batch.pop("labels")
        hidden = model(**batch, return_logits=False).hidden_states  # [B, L, D]
        rows, logits, target_ids, target_w = model.supervised_logits(hidden, labels, batch["coord_values"])
        if rows.shape[0] == 0:
            continue
        losses.append(soft_target_cross_entropy(logits, target_ids, target_w))  # [N]
        is_coord.append(torch.isin(labels[rows[:, 0], rows[:, 1] + 1], placeholders))  # [N]
    if not losses:
        raise DataError(f"{json_path}: no sample has an answer to score")
    loss, coord = torch.cat(losses).double(), torch.cat(is_coord)
    return AnswerLoss(
        loss=float(loss.mean()), tokens=loss.numel(), samples=len(dataset),
        coord_loss=float(loss[coord].mean()) if coord.any() else float("nan"), coord_tokens=int(coord.sum()),
        text_loss=float(loss[~coord].mean()) if (~coord).any() else float("nan"),
    )


__all__ = ["AnswerLoss", "answer_loss"]
