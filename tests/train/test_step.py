"""The training forward: loss and token count, NTP switch, gradient checkpointing."""

from __future__ import annotations

import pytest
import torch

from llava_st.errors import ConfigError
from llava_st.model import LlavaSTModel
from llava_st.model.lape import ntp_matrix
from llava_st.train import LoraSettings, Trainability, add_lora, apply_trainability, enable_gradient_checkpointing, set_ntp, training_loss
from llava_st.train.step import supervised_tokens


def _model(config) -> LlavaSTModel:
    torch.manual_seed(0)
    return LlavaSTModel(config)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_loss_is_the_models_mean_over_supervised_tokens(debug_config, train_batch) -> None:
    model = _model(debug_config).train()
    out = training_loss(model, train_batch)
    assert out.num_tokens == supervised_tokens(train_batch["labels"]) == int((train_batch["labels"][:, 1:] != -100).sum())
    with torch.no_grad():
        ref = model(**train_batch, return_logits=False).loss
    assert torch.equal(out.loss.detach(), ref)
    assert out.loss.requires_grad


def test_batches_without_answers_are_refused(debug_config, train_batch) -> None:
    model = _model(debug_config).train()
    with pytest.raises(ConfigError, match="needs labels"):
        training_loss(model, {k: v for k, v in train_batch.items() if k != "labels"})
    with pytest.raises(ConfigError, match="no supervised position"):
        training_loss(model, {**train_batch, "labels": torch.full_like(train_batch["labels"], -100)})


def test_ntp_spreads_the_table_gradients_without_changing_the_loss(debug_config, train_batch) -> None:
    model = _model(debug_config).train()
    apply_trainability(model, Trainability(coord_tables=["time_out"]), lr=1e-4)
    set_ntp(model, False)
    plain = training_loss(model, train_batch)
    plain.loss.backward()
    g = model.coord_tables.time_out.grad.clone()
    model.zero_grad(set_to_none=True)
    set_ntp(model, True)
    spread = training_loss(model, train_batch)
    spread.loss.backward()
    assert abs(spread.loss.item() - plain.loss.item()) < 1e-5
    expected = g + ntp_matrix(g.shape[0], torch.float64).T.float() @ g  # g + R^T g
    assert torch.allclose(model.coord_tables.time_out.grad, expected, atol=1e-7)
    set_ntp(model, False)
    assert model.use_ntp is False


def test_gradient_checkpointing_keeps_loss_and_gradients(debug_config, train_batch) -> None:
    model = _model(debug_config)
    add_lora(model, LoraSettings(enabled=True, r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    apply_trainability(model, Trainability(packer=["spatial", "slow", "fast"], embed_tokens="all"), lr=1e-4)
    model.train()
    ref = training_loss(model, train_batch)
    ref.loss.backward()
    ref_grads = _grads(model)
    model.zero_grad(set_to_none=True)
    enable_gradient_checkpointing(model)
    assert model.language_model.gradient_checkpointing
    out = training_loss(model, train_batch)
    out.loss.backward()
    assert abs(out.loss.item() - ref.loss.item()) < 1e-6
    grads = _grads(model)
    assert grads.keys() == ref_grads.keys() and any(".lora_" in n for n in grads)
    for name, g in grads.items():
        assert torch.allclose(g, ref_grads[name], atol=1e-6, rtol=1e-5), name
