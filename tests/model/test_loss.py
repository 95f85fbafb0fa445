"""The sparse coordinate loss against a dense two-hot cross-entropy written out here (SPEC §2.11).

The reference builds the full ``[N, V + bins]`` target matrix position by
position from the labels and values (two-hot on an ``-OUTPUT`` placeholder's
axis, one-hot otherwise, nothing for ignored positions), takes
``log_softmax`` over the extended vocabulary in float64 and the mean
cross-entropy over every supervised position of the batch. Its loss and its
gradient (by autograd) are compared with ``build_targets`` +
``coordinate_loss`` on float32 logits, at float32 tolerance, on batches with
more rows than several chunks of the hand-written backward.
"""

from __future__ import annotations

import math

import pytest
import torch

import llava_st.model.loss as loss_module
from llava_st.model.loss import build_targets, coordinate_loss, soft_target_cross_entropy
from llava_st.protocol.tokens import BinCounts, SpecialTokenIds

V, NT, NS = 60, 100, 100  # text vocabulary (its last 14 ids are the added tokens) and the release's bin counts
E = V + NT + 2 * NS
IGNORE = -100
F32 = dict(rtol=1e-5, atol=1e-6)


def dense_two_hot_loss(logits: torch.Tensor, labels: torch.Tensor, values: torch.Tensor, ids: SpecialTokenIds):
    """SPEC §2.11 written densely: ``-sum(target * log_softmax(logits))`` averaged over supervised positions.

    ``logits`` ``[B, L, E]`` (any float dtype, computed in float64); the logits at
    ``p - 1`` predict ``labels[p]``. Returns the loss (float64) and the number of
    supervised positions.
    """
    axes = {
        ids.temp_output: (V, NT),
        ids.height_output: (V + NT, NS),
        ids.width_output: (V + NT + NS, NS),
    }
    targets = torch.zeros(labels.shape[0], labels.shape[1], E, dtype=torch.float64)
    supervised = torch.zeros(labels.shape[0], labels.shape[1], dtype=torch.bool)
    for b in range(labels.shape[0]):
        for p in range(1, labels.shape[1]):
            label = int(labels[b, p])
            if label == IGNORE:
                continue
            supervised[b, p - 1] = True
            if label in axes:
                first, n = axes[label]
                pos = float(values[b, p]) * (n - 1)
                lo, hi = math.floor(pos), math.ceil(pos)
                if lo == hi:
                    targets[b, p - 1, first + lo] = 1.0
                else:
                    targets[b, p - 1, first + lo] = 1.0 - (pos - lo)
                    targets[b, p - 1, first + hi] = pos - lo
            else:
                targets[b, p - 1, label] = 1.0
    logp = logits.double().log_softmax(dim=-1)
    per_position = -(targets * logp).sum(dim=-1)  # [B, L]
    n = int(supervised.sum())
    return per_position[supervised].sum() / n, n


def make_batch(seed: int, batch: int = 3, length: int = 1100, dtype=torch.float32):
    """Random labels (about 20 % ignored, about a third coordinates on the three axes) and logits.

    Coordinate values include 0, 1 and whole bin positions k / 99 (one-hot) as well as
    values between bins (two-hot); text targets include the added and chat tokens.
    """
    g = torch.Generator().manual_seed(seed)
    ids = SpecialTokenIds.release_layout(V)
    coord_ids = torch.tensor([ids.temp_output, ids.height_output, ids.width_output])
    text_ids = torch.tensor([i for i in range(V) if i not in coord_ids.tolist()])
    labels = text_ids[torch.randint(0, len(text_ids), (batch, length), generator=g)]
    draw = torch.rand(batch, length, generator=g)
    is_coord = draw < 0.35
    labels[is_coord] = coord_ids[torch.randint(0, 3, (int(is_coord.sum()),), generator=g)]
    values = torch.full((batch, length), float("nan"), dtype=torch.float64)
    values[is_coord] = torch.rand(int(is_coord.sum()), generator=g, dtype=torch.float64)
    whole = is_coord & (torch.rand(batch, length, generator=g) < 0.2)
    values[whole] = torch.randint(0, 100, (int(whole.sum()),), generator=g).double() / 99
    for b, (p0, p1) in enumerate([(5, 6), (7, 8), (9, 10)][:batch]):
        labels[b, p0], values[b, p0] = ids.width_output, 0.0
        labels[b, p1], values[b, p1] = ids.height_output, 1.0
    labels[draw > 0.8] = IGNORE
    labels[0, 300:420] = IGNORE  # a long unsupervised run, as a prompt is
    values[labels == IGNORE] = float("nan")
    logits = (3 * torch.randn(batch, length, E, generator=g, dtype=torch.float64)).to(dtype)
    return logits, labels, values, ids


def sparse_loss(logits: torch.Tensor, labels, values, ids):
    rows, target_ids, target_weights = build_targets(labels, values, ids, BinCounts(NT, NS))
    return coordinate_loss(logits[rows[:, 0], rows[:, 1]], target_ids, target_weights), rows


@pytest.mark.parametrize("chunk_rows", [None, 7], ids=["default-chunks", "7-row-chunks"])
def test_loss_and_gradient_equal_the_dense_two_hot_reference(monkeypatch, chunk_rows) -> None:
    if chunk_rows is not None:
        monkeypatch.setattr(loss_module, "_CHUNK_ROWS", chunk_rows)
    logits, labels, values, ids = make_batch(0)

    ref_in = logits.double().requires_grad_(True)  # the same values, the reference entirely in float64
    expect, n = dense_two_hot_loss(ref_in, labels, values, ids)
    expect.backward()

    ours_in = logits.clone().requires_grad_(True)
    loss, rows = sparse_loss(ours_in, labels, values, ids)
    loss.backward()

    chunk = loss_module._CHUNK_ROWS
    assert rows.shape[0] == n and n > 2 * chunk + 1 and n % chunk, "the batch must span several chunks and a partial one"
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expect.detach(), **F32)
    # d(mean)/dz is (softmax - target) / n: compare the per-position gradient (times n)
    assert ours_in.grad.dtype == torch.float32
    torch.testing.assert_close(ours_in.grad.double() * n, ref_in.grad * n, **F32)
    # rows that predict nothing (ignored labels, the last position) get no gradient at all
    unsupervised = torch.ones(labels.shape, dtype=torch.bool)
    unsupervised[rows[:, 0], rows[:, 1]] = False
    assert bool((ours_in.grad[unsupervised] == 0).all())


def test_a_batch_loss_is_the_mean_over_all_its_supervised_positions() -> None:
    """Two samples with very different supervised counts: the mean over tokens, not of per-sample means."""
    logits, labels, values, ids = make_batch(3, batch=2, length=400)
    labels[1, 40:] = IGNORE
    values[1, 40:] = float("nan")
    expect, n = dense_two_hot_loss(logits, labels, values, ids)
    loss, _ = sparse_loss(logits, labels, values, ids)
    torch.testing.assert_close(loss.double(), expect, **F32)
    per_sample = [dense_two_hot_loss(logits[b : b + 1], labels[b : b + 1], values[b : b + 1], ids)[0] for b in range(2)]
    assert abs(float(loss) - float(sum(per_sample) / 2)) > 1e-3


def test_bfloat16_logits_are_reduced_in_float32() -> None:
    """On bfloat16 logits the loss is float32-accurate for those logits; the gradient is bfloat16's rounding of it."""
    logits, labels, values, ids = make_batch(1, batch=2, length=1200, dtype=torch.bfloat16)
    ref_in = logits.double().requires_grad_(True)
    expect, n = dense_two_hot_loss(ref_in, labels, values, ids)
    expect.backward()

    ours_in = logits.clone().requires_grad_(True)
    loss, _ = sparse_loss(ours_in, labels, values, ids)
    loss.backward()
    assert loss.dtype == torch.float32 and ours_in.grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss.double(), expect.detach(), **F32)
    # the float32 gradient rounded once to bfloat16: within half a bfloat16 step (2^-9 relative)
    torch.testing.assert_close(ours_in.grad.double() * n, ref_in.grad * n, rtol=2.0**-8, atol=1e-6)


def test_per_row_loss_is_logsumexp_minus_the_weighted_picked_logits() -> None:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2100, 37, generator=g, dtype=torch.float64)
    target_ids = torch.randint(0, 37, (2100, 2), generator=g)
    w = torch.rand(2100, generator=g, dtype=torch.float64)
    weights = torch.stack([w, 1 - w], dim=1)
    got = soft_target_cross_entropy(logits.float(), target_ids, weights.float())
    dense = torch.zeros(2100, 37, dtype=torch.float64)
    for r in range(2100):
        for k in range(2):
            dense[r, int(target_ids[r, k])] += float(weights[r, k])
    expect = -(dense * logits.log_softmax(-1)).sum(-1)
    assert got.shape == (2100,) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expect, **F32)


def test_targets_of_a_coordinate_label() -> None:
    ids = SpecialTokenIds.release_layout(V)
    labels = torch.tensor([[IGNORE, ids.width_output, ids.temp_output, 7, ids.height_output]])
    values = torch.tensor([[float("nan"), 0.5, 0.0, float("nan"), 1.0]], dtype=torch.float64)
    rows, tid, tw = build_targets(labels, values, ids, BinCounts(NT, NS))
    assert rows.tolist() == [[0, 0], [0, 1], [0, 2], [0, 3]]
    # width 0.5 on 100 bins: position 49.5 -> bins 49 and 50 of the width block
    assert tid[0].tolist() == [V + NT + NS + 49, V + NT + NS + 50]
    assert tw[0].tolist() == [0.5, 0.5]
    assert tid[1, 0] == V and tw[1].tolist() == [1.0, 0.0]
    assert tid[2].tolist() == [7, 7] and tw[2].tolist() == [1.0, 0.0]
    assert tid[3, 0] == V + NT + NS - 1 and tw[3].tolist() == [1.0, 0.0]


def test_coordinate_label_without_value_is_an_error() -> None:
    ids = SpecialTokenIds.release_layout(V)
    labels = torch.tensor([[IGNORE, ids.height_output]])
    with pytest.raises(ValueError, match="position 1 has no value"):
        build_targets(labels, torch.full((1, 2), float("nan"), dtype=torch.float64), ids, BinCounts(NT, NS))
    with pytest.raises(ValueError, match="no coord_values"):
        build_targets(labels, None, ids, BinCounts(NT, NS))


def test_no_supervised_position_is_an_error() -> None:
    with pytest.raises(ValueError, match="no supervised positions"):
        coordinate_loss(torch.zeros(0, E), torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, 2))
