"""The sparse coordinate loss against a dense two-hot cross-entropy on a small vocabulary."""

from __future__ import annotations

import math

import pytest
import torch

from llava_st.model.loss import build_targets, coordinate_loss, soft_target_cross_entropy
from llava_st.protocol.tokens import SpecialTokenIds

V, NT, NS = 40, 10, 6  # text vocabulary and bins: extended vocabulary 40 + 10 + 6 + 6
E = V + NT + 2 * NS


def _dense_reference(logits, labels, values, ids: SpecialTokenIds) -> torch.Tensor:
    """Dense [N, E] targets built position by position, then -sum(t * log_softmax)."""
    rows, targets = [], []
    offsets = {ids.temp_output: (V, NT), ids.height_output: (V + NT, NS), ids.width_output: (V + NT + NS, NS)}
    for b in range(labels.shape[0]):
        for p in range(1, labels.shape[1]):
            lab = int(labels[b, p])
            if lab == -100:
                continue
            t = torch.zeros(E, dtype=torch.float64)
            if lab in offsets:
                off, n = offsets[lab]
                pos = float(values[b, p]) * (n - 1)
                lo, hi = math.floor(pos), math.ceil(pos)
                t[off + lo] += 1 - (pos - lo)
                if hi != lo:
                    t[off + hi] += pos - lo
            else:
                t[lab] = 1.0
            rows.append(logits[b, p - 1])
            targets.append(t)
    logp = torch.stack(rows).double().log_softmax(-1)
    return -(torch.stack(targets) * logp).sum(-1).mean()


def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = SpecialTokenIds.release_layout(V)
    b, length = 3, 17
    labels = torch.randint(0, V - 14, (b, length), generator=g)
    labels[torch.rand(b, length, generator=g) < 0.35] = -100
    values = torch.full((b, length), float("nan"), dtype=torch.float64)
    for (bi, pi), pid in zip([(0, 3), (0, 4), (1, 8), (2, 2), (2, 16), (1, 1)],
                             [ids.temp_output, ids.width_output, ids.height_output, ids.temp_output,
                              ids.width_output, ids.height_output]):
        labels[bi, pi] = pid
        values[bi, pi] = float(torch.rand((), generator=g, dtype=torch.float64))
    values[2, 2] = 1.0  # a whole bin position: one-hot on the last bin
    logits = torch.randn(b, length, E, generator=g, dtype=torch.float64)
    return logits, labels, values, ids


def test_sparse_loss_equals_dense_two_hot_and_its_gradient() -> None:
    logits, labels, values, ids = _batch(0)
    dense_in = logits.clone().requires_grad_(True)
    expect = _dense_reference(dense_in, labels, values, ids)
    expect.backward()

    sparse_in = logits.clone().requires_grad_(True)
    rows, tid, tw = build_targets(labels, values, ids, NT, NS)
    loss = coordinate_loss(sparse_in[rows[:, 0], rows[:, 1]], tid, tw)
    loss.backward()
    torch.testing.assert_close(loss.double(), expect, rtol=0, atol=1e-6)
    torch.testing.assert_close(sparse_in.grad, dense_in.grad, rtol=0, atol=1e-6)


def test_loss_is_mean_over_supervised_tokens_of_the_batch() -> None:
    logits, labels, values, ids = _batch(1)
    rows, tid, tw = build_targets(labels, values, ids, NT, NS)
    per_row = soft_target_cross_entropy(logits[rows[:, 0], rows[:, 1]], tid, tw)
    assert per_row.shape[0] == int((labels[:, 1:] != -100).sum())
    torch.testing.assert_close(coordinate_loss(logits[rows[:, 0], rows[:, 1]], tid, tw), per_row.mean())


def test_targets_of_a_coordinate_label() -> None:
    ids = SpecialTokenIds.release_layout(V)
    labels = torch.tensor([[-100, ids.width_output, ids.temp_output, 7]])
    values = torch.tensor([[float("nan"), 0.5, 0.0, float("nan")]], dtype=torch.float64)
    rows, tid, tw = build_targets(labels, values, ids, NT, NS)
    assert rows.tolist() == [[0, 0], [0, 1], [0, 2]]
    # width 0.5 on 6 bins: position 2.5 -> bins 2 and 3 of the width block
    assert tid[0].tolist() == [V + NT + NS + 2, V + NT + NS + 3]
    torch.testing.assert_close(tw[0], torch.tensor([0.5, 0.5]))
    assert tid[1, 0] == V and tw[1].tolist() == [1.0, 0.0]
    assert tid[2].tolist() == [7, 7] and tw[2].tolist() == [1.0, 0.0]


def test_coordinate_label_without_value_is_an_error() -> None:
    ids = SpecialTokenIds.release_layout(V)
    labels = torch.tensor([[-100, ids.height_output]])
    with pytest.raises(ValueError, match="position 1 has no value"):
        build_targets(labels, torch.full((1, 2), float("nan"), dtype=torch.float64), ids, NT, NS)
    with pytest.raises(ValueError, match="no coord_values"):
        build_targets(labels, None, ids, NT, NS)


def test_no_supervised_position_is_an_error() -> None:
    with pytest.raises(ValueError, match="no supervised positions"):
        coordinate_loss(torch.zeros(0, E), torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, 2))


def test_half_precision_logits_reduce_in_float32() -> None:
    logits, labels, values, ids = _batch(2)
    rows, tid, tw = build_targets(labels, values, ids, NT, NS)
    sel = logits[rows[:, 0], rows[:, 1]]
    full = soft_target_cross_entropy(sel.float(), tid, tw)
    half = soft_target_cross_entropy(sel.bfloat16().float().bfloat16(), tid, tw)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, rtol=0, atol=0.1)
