"""The full model on tiny random configs: merging, switches, errors and decoding."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from conftest import left_pad
from llava_st.model import LlavaSTModel
from llava_st.model.lape import interpolate_rows
from llava_st.zoo import debug


def _model(num_frames: int = 12, **switches) -> LlavaSTModel:
    torch.manual_seed(0)
    cfg = replace(debug(num_frames=num_frames), **switches)
    return LlavaSTModel(cfg, attn_implementation="eager").eval()


def _run(model: LlavaSTModel, modality: str | None, frames: int = 0) -> list[int]:
    ids = model.token_ids
    cfg = model.config
    if modality == "image":
        n = cfg.image_token_count
        return [ids.im_start] + [ids.im_patch] * (n - 2) + [ids.im_end]
    if modality == "video":
        f, s = cfg.video_fast_token_count(frames), cfg.video_slow_token_count(frames)
        return ([ids.vid_start] + [ids.vid_patch] * (f - 2) + [ids.vid_end]
                + [ids.slow_vid_start] + [ids.vid_patch] * (s - 2) + [ids.slow_vid_end])
    return []


def _pixels(frames: int, model: LlavaSTModel, seed: int) -> torch.Tensor:
    size = model.config.vision.image_size
    return torch.randn(frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _sample(model: LlavaSTModel, modality: str | None, frames: int, seed: int):
    """ids with text, the visual run and two placeholders (a time and a width input)."""
    ids = model.token_ids
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(0, 400, (5,), generator=g).tolist()
    seq = text[:2] + _run(model, modality, frames) + text[2:] + [ids.temp_input, 17, ids.width_input, 9]
    values = torch.full((len(seq),), float("nan"), dtype=torch.float64)
    values[len(seq) - 4] = 0.25
    values[len(seq) - 2] = 0.7
    pix = None if modality is None else _pixels(frames if modality == "video" else 1, model, seed)
    return torch.tensor(seq), values, pix


def test_merged_sequence_against_a_written_out_merge() -> None:
    model = _model(inject_fast_stream=True, inject_width_inputs=True)
    seq, values, pix = _sample(model, "video", 12, seed=1)
    with torch.no_grad():
        embeds = model.embed_inputs(seq[None], values[None], [pix], ["video"])[0]
        feats = model.get_video_features(pix)
        expect = model.language_model.embed_tokens(seq).clone()
        ids = model.token_ids
        pos = seq.tolist()
        fast_start, slow_start = pos.index(ids.vid_start), pos.index(ids.slow_vid_start)
        fast_rows = feats.fast.reshape(-1, feats.fast.shape[-1])
        slow_rows = feats.slow.reshape(-1, feats.slow.shape[-1])
        for i in range(fast_rows.shape[0]):
            expect[fast_start + i] = fast_rows[i]
        for i in range(slow_rows.shape[0]):
            expect[slow_start + i] = slow_rows[i]
        t_in, _, w_in = model.coord_tables.inputs()
        p_t, p_w = pos.index(ids.temp_input), pos.index(ids.width_input)
        expect[p_t] = interpolate_rows(t_in, torch.tensor([0.25], dtype=torch.float64))[0]
        expect[p_w] = interpolate_rows(w_in, torch.tensor([0.7], dtype=torch.float64))[0]
    torch.testing.assert_close(embeds, expect, rtol=0, atol=0)


def test_release_switches_keep_plain_rows() -> None:
    model = _model(inject_fast_stream=False, inject_width_inputs=False)
    seq, values, pix = _sample(model, "video", 12, seed=2)
    with torch.no_grad():
        embeds = model.embed_inputs(seq[None], values[None], [pix], ["video"])[0]
        plain = model.language_model.embed_tokens(seq)
    ids = model.token_ids
    pos = seq.tolist()
    fast = slice(pos.index(ids.vid_start), pos.index(ids.vid_end) + 1)
    assert torch.equal(embeds[fast], plain[fast])
    w = pos.index(ids.width_input)
    assert torch.equal(embeds[w], plain[w])
    t = pos.index(ids.temp_input)
    assert not torch.equal(embeds[t], plain[t])  # time inputs are always injected


@pytest.mark.parametrize("frames", [12, 7, 2, 100])
def test_forward_shapes_for_frame_counts_other_than_the_bins(frames: int) -> None:
    model = _model(num_frames=frames)
    seq, values, pix = _sample(model, "video", frames, seed=3)
    with torch.no_grad():
        feats = model.get_video_features(pix)
        out = model(seq[None], coord_values=values[None], pixel_values=[pix], modalities=["video"])
    slots = max(1, frames // 5)
    assert feats.slow.shape == (slots, 9, 64) and feats.fast.shape == (frames, 1, 64)
    assert out.logits.shape == (1, len(seq), model.config.extended_vocab_size)


def test_video_too_short_for_its_runs_is_an_error() -> None:
    model = _model(num_frames=1)
    with pytest.raises(ValueError, match="a video of 1 frame"):
        model.get_video_features(_pixels(1, model, 0))


def test_mixed_batch_equals_single_samples() -> None:
    model = _model()
    samples = [_sample(model, "video", 12, 4), _sample(model, "image", 1, 5), _sample(model, None, 0, 6)]
    ids, mask, vals = left_pad(samples, model.token_ids.pad)
    with torch.no_grad():
        batch = model(ids, attention_mask=mask, coord_values=vals, pixel_values=[s[2] for s in samples],
                      modalities=["video", "image", None]).logits
        for b, (seq, v, pix) in enumerate(samples):
            single = model(seq[None], coord_values=v[None], pixel_values=[pix],
                           modalities=[["video", "image", None][b]]).logits[0]
            torch.testing.assert_close(batch[b, -len(seq):], single, rtol=0, atol=2e-5)


def test_visual_slot_mismatch_names_both_counts() -> None:
    model = _model()
    seq, values, pix = _sample(model, "video", 12, seed=7)
    with pytest.raises(ValueError, match=r"sample 0: the sequence has 12 visual slot\(s\) in <vid_start>..<vid_end> runs but the video with 5 frame\(s\) needs 5"):
        model.embed_inputs(seq[None], values[None], [pix[:5]], ["video"])
    img_seq, img_vals, img = _sample(model, "image", 1, seed=8)
    with pytest.raises(ValueError, match="81 visual slot"):
        model.embed_inputs(img_seq[None], img_vals[None], [None], [None])
    with pytest.raises(ValueError, match="modality 'image' but no pixel_values"):
        model.embed_inputs(img_seq[None], img_vals[None], [None], ["image"])
    with pytest.raises(ValueError, match=r"image pixel_values must be \[1, 3, H, W\]"):
        model.embed_inputs(img_seq[None], img_vals[None], [torch.cat([img, img])], ["image"])
    with pytest.raises(ValueError, match="modality must be one of"):
        model.embed_inputs(img_seq[None], img_vals[None], [img], ["picture"])


def test_placeholder_without_value_is_an_error() -> None:
    model = _model()
    seq, values, pix = _sample(model, None, 0, seed=9)
    values[:] = float("nan")
    with pytest.raises(ValueError, match="position .* has no value"):
        model.embed_inputs(seq[None], values[None])
    with pytest.raises(ValueError, match="no coord_values"):
        model.embed_inputs(seq[None], None)
    with pytest.raises(ValueError, match="shape of input_ids"):
        model.embed_inputs(seq[None], values[None, :-1])
    with pytest.raises(ValueError, match="input_ids must lie in"):
        model.embed_inputs(torch.tensor([[model.config.extended_vocab_size]]))


def test_bin_ids_are_fed_back_through_input_table_rows() -> None:
    model = _model()
    v = model.config.text.vocab_size
    nt = model.config.coords.num_temporal_bins
    ids = torch.tensor([[v + 3, v + nt + 5, v + nt + 100 + 7, 11]])
    with torch.no_grad():
        emb = model.embed_tokens(ids)[0]
        assert torch.equal(model.embed_tokens(ids, validate=False)[0], emb)
    t_in, h_in, w_in = model.coord_tables.inputs()
    assert torch.equal(emb[0], t_in[3]) and torch.equal(emb[1], h_in[5]) and torch.equal(emb[2], w_in[7])
    assert torch.equal(emb[3], model.language_model.embed_tokens.weight[11])


def test_extended_head_is_text_head_then_bin_tables() -> None:
    model = _model()
    h = torch.randn(3, 64)
    with torch.no_grad():
        logits = model.extended_logits(h)
        t_out, h_out, w_out = model.coord_tables.outputs()
        expect = h @ torch.cat([model.lm_head.weight, t_out, h_out, w_out]).T
    torch.testing.assert_close(logits, expect)


def test_cached_greedy_decoding_equals_full_recompute() -> None:
    model = _model()
    seq, values, pix = _sample(model, "image", 1, seed=10)
    with torch.no_grad():
        out = model.generate(seq[None], coord_values=values[None], pixel_values=[pix], modalities=["image"],
                             max_new_tokens=6, return_scores=True, eos_token_ids=())
        ids = seq.clone()
        vals = values.clone()
        for step in range(6):
            logits = model(ids[None], coord_values=vals[None], pixel_values=[pix], modalities=["image"]).logits[0, -1]
            torch.testing.assert_close(out.scores[0, step], logits, rtol=0, atol=2e-5)
            nxt = int(logits.argmax())
            assert nxt == int(out.sequences[0, step])
            ids = torch.cat([ids, torch.tensor([nxt])])
            vals = torch.cat([vals, torch.tensor([float("nan")], dtype=torch.float64)])


def test_left_padded_batch_decodes_like_single_rows_and_is_deterministic() -> None:
    model = _model()
    samples = [_sample(model, "image", 1, 11), _sample(model, None, 0, 12), _sample(model, "video", 12, 13)]
    ids, mask, vals = left_pad(samples, model.token_ids.pad)
    kwargs = dict(attention_mask=mask, coord_values=vals, pixel_values=[s[2] for s in samples],
                  modalities=["image", None, "video"], max_new_tokens=5, eos_token_ids=(), return_scores=True)
    first = model.generate(ids, **kwargs)
    second = model.generate(ids, **kwargs)
    assert torch.equal(first.sequences, second.sequences)
    for b, (seq, v, pix) in enumerate(samples):
        single = model.generate(seq[None], coord_values=v[None], pixel_values=[pix], modalities=[kwargs["modalities"][b]],
                                max_new_tokens=5, eos_token_ids=(), return_scores=True)
        assert torch.equal(single.sequences[0], first.sequences[b])
        torch.testing.assert_close(single.scores[0], first.scores[b], rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="left-padded"):
        model.generate(ids, attention_mask=mask.flip(-1), coord_values=vals, pixel_values=kwargs["pixel_values"],
                       modalities=kwargs["modalities"])


def test_eos_stops_a_row_and_pads_after_it() -> None:
    model = _model()
    samples = [_sample(model, None, 0, 14), _sample(model, None, 0, 15)]
    ids, mask, vals = left_pad(samples, model.token_ids.pad)
    free = model.generate(ids, attention_mask=mask, coord_values=vals, max_new_tokens=4, eos_token_ids=())
    stop = int(free.sequences[0, 1])
    assert stop not in free.sequences[1].tolist(), "choose seeds whose rows differ"
    out = model.generate(ids, attention_mask=mask, coord_values=vals, max_new_tokens=4, eos_token_ids=(stop,),
                         pad_token_id=0)
    first_stop = free.sequences[0].tolist().index(stop)
    assert out.lengths.tolist() == [first_stop + 1, 4]
    assert out.sequences[0, first_stop + 1:].tolist() == [0] * (3 - first_stop)
    assert torch.equal(out.sequences[1], free.sequences[1])


def test_sampling_is_seeded_and_top_p_one_token_is_greedy() -> None:
    model = _model()
    seq, values, _ = _sample(model, None, 0, 16)
    kw = dict(coord_values=values[None], max_new_tokens=5, eos_token_ids=(), do_sample=True, temperature=1.5)
    a = model.generate(seq[None], seed=3, **kw).sequences
    b = model.generate(seq[None], seed=3, **kw).sequences
    assert torch.equal(a, b)
    greedy = model.generate(seq[None], coord_values=values[None], max_new_tokens=5, eos_token_ids=()).sequences
    nucleus = model.generate(seq[None], seed=4, **{**kw, "temperature": 1.0}, top_p=1e-6).sequences
    assert torch.equal(greedy, nucleus)
    with pytest.raises(ValueError, match="temperature > 0"):
        model.generate(seq[None], coord_values=values[None], do_sample=True, temperature=0.0)
    with pytest.raises(TypeError, match="unknown generation arguments"):
        model.generate(seq[None], coord_values=values[None], beams=2)


def test_training_mode_uses_ntp_with_identical_forward_values() -> None:
    model = _model()
    seq, values, pix = _sample(model, "image", 1, seed=17)
    with torch.no_grad():
        eval_logits = model(seq[None], coord_values=values[None], pixel_values=[pix], modalities=["image"]).logits
    model.train()
    labels = seq.clone()[None]
    labels[0, : len(seq) - 3] = -100
    out = model(seq[None], coord_values=values[None], pixel_values=[pix], modalities=["image"], labels=labels)
    assert torch.equal(out.logits.detach(), eval_logits)
    out.loss.backward()
    grad = model.coord_tables.time_in.grad
    # the time input at 0.25 of 100 bins touches rows 24 and 25; NTP spreads the gradient to all rows
    assert bool((grad.abs().sum(-1) > 0).all())
    model.eval()
