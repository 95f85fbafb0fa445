"""The training forward and loss: the one code path the trainer and the gradient tests share.

A training batch is what :meth:`llava_st.processor.LlavaSTProcessor.collate`
returns for samples with answers (keys ``input_ids`` ``[B, L]``,
``attention_mask`` ``[B, L]``, ``coord_values`` ``[B, L]``, ``labels`` ``[B, L]``,
``pixel_values`` (B tensors ``[T_b, 3, S, S]`` or None), ``modalities``; for stage 0
also ``dense_targets``).
:func:`training_loss` runs the model on it with labels and returns the mean
coordinate-aware cross-entropy over the batch's supervised tokens (SPEC
§2.11): the full ``[B, L, V + K]`` logits are never built, only the rows at
supervised positions.

With stage 0's auxiliary heads on the model, their weighted losses are added
(and the answers' loss is weighted by ``auxiliary.answers``); at ``answers: 0``
only the visual side runs (``model(..., media_only=True)``) and the loss is the
heads' alone.

The model must already be in training mode (``model.train()``): NTP
(SPEC §2.12) follows the mode unless ``model.use_ntp`` says otherwise (see
:func:`set_ntp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ConfigError
from ..protocol.tokens import IGNORE_INDEX
from .auxiliary import ATTRIBUTE as AUXILIARY, Capture, auxiliary_loss, grey_samples

#: Batch keys the training forward reads; any others (debug data) are ignored.
BATCH_KEYS = ("input_ids", "attention_mask", "coord_values", "pixel_values", "modalities", "labels")


@dataclass
class LossOutput:
    """``loss``: scalar, the mean over ``num_tokens`` supervised positions of the batch
    (plus the weighted auxiliary losses of stage 0 when the model carries their heads);
    ``num_tokens``: how many positions entered it (for weighting accumulated micro-batches);
    ``parts``: the separate values (``lm`` and each auxiliary loss) when there are several."""

    loss: torch.Tensor
    num_tokens: int
    parts: dict = field(default_factory=dict)


def supervised_tokens(labels: torch.Tensor) -> int:
    """Positions that enter the loss: labels ``[B, L]`` that are not -100, the first column excluded
    (logits at ``p - 1`` predict ``labels[p]``)."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def training_loss(model: nn.Module, batch: Mapping[str, Any]) -> LossOutput:
    """Forward with labels and the coordinate-aware loss of one (micro-)batch.

    Args:
        model: a :class:`~llava_st.model.LlavaSTModel` (with or without LoRA
            adapters attached), in training mode.
        batch: a training batch (see the module docstring); ``labels`` is required.

    Returns:
        :class:`LossOutput` with the mean loss (float32 scalar with autograd) and
        the supervised-token count.

    Raises:
        ConfigError: the batch has no ``labels`` or no supervised position.
    """
    if batch.get("labels") is None:
        raise ConfigError("a training batch needs labels (samples that end with the assistant's answer)")
    labels = batch["labels"]
    count = supervised_tokens(labels)
    if count == 0:
        raise ConfigError("the batch has no supervised position: every label is -100")
    inputs = {k: batch[k] for k in BATCH_KEYS if k in batch}
    base = getattr(model, "module", model)  # DDP and similar wrappers
    heads = getattr(base, AUXILIARY, None)
    if heads is None or batch.get("dense_targets") is None:
        if heads is not None and heads.config.tower_only:
            raise ConfigError("auxiliary.answers is 0 (a tower-only step) but the batch has no dense targets")
        out = model(**inputs, return_logits=False)
        return LossOutput(loss=out.loss, num_tokens=count)
    capture = Capture(base, heads.config.pointer_layer, heads.config.attend_layer if heads.config.attend > 0 else None)
    try:
        if heads.config.tower_only:
            greyed = None
            if heads.config.grey > 0:
                vision = base.config.vision
                inputs["pixel_values"], greyed = grey_samples(
                    inputs["pixel_values"], heads.config.grey, vision.image_mean, vision.image_std)
            model(**inputs, media_only=True)  # tower and projector only; the capture keeps their outputs
            aux, parts = auxiliary_loss(heads, capture, batch, batch["dense_targets"], base, greyed)
            return LossOutput(loss=aux, num_tokens=count, parts=parts)
        out = model(**inputs, return_logits=False)
        aux, parts = auxiliary_loss(heads, capture, batch, batch["dense_targets"], base)
    finally:
        capture.remove()
    lm = out.loss * heads.config.answers
    return LossOutput(loss=lm + aux, num_tokens=count, parts={"lm": float(out.loss.detach()), **parts})


def keep_trainables_in_graph(model: nn.Module):
    """Make every training forward of ``model`` give a gradient to every trainable parameter.

    A batch of images never reaches the packer (and with the release's switches
    the fast block is never used), so those parameters get no gradient. DDP
    copes (``find_unused_parameters``); FSDP does not: it reduce-scatters only
    the gradients a process has, and processes that used different parts then
    disagree on the sizes. This adds ``0 * sum(p)`` over the trainable
    parameters to the loss inside the forward (where FSDP has gathered them),
    which is what the release does by running the packer on images. Parameters
    a step did not use then get a zero gradient, so AdamW moves them by their
    momentum, as in the release.

    Parameters that are still sharded when the forward ends (FSDP units of their
    own, such as decoder layers, which every forward uses) are left out.
    Returns the hook handle.
    """
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without the distributed package
        DTensor = ()

    def hook(module, args, kwargs, output):
        if module.training and getattr(output, "loss", None) is not None:
            touch = [p.sum() for p in module.parameters() if p.requires_grad and not isinstance(p, DTensor)]
            if touch:
                output.loss = output.loss + 0.0 * torch.stack(touch).sum()
        return output

    return model.register_forward_hook(hook, with_kwargs=True)


def set_ntp(model: nn.Module, enabled: bool) -> None:
    """NTP on (in training mode; inference always reads the raw tables) or off everywhere."""
    model.use_ntp = None if enabled else False


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute the LLM's decoder layers in the backward pass (non-reentrant, so frozen
    inputs need no ``requires_grad`` trick and LoRA or partial training work as is)."""
    llm = model.language_model
    kwargs = {"use_reentrant": False}
    if hasattr(llm, "activation_checkpointing_enable"):  # transformers >= 5.25
        llm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


__all__ = [
    "BATCH_KEYS",
    "LossOutput",
    "enable_gradient_checkpointing",
    "keep_trainables_in_graph",
    "set_ntp",
    "supervised_tokens",
    "training_loss",
]
