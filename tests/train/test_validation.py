"""Held-out answer loss (llava_st.train.validation) against per-sample forwards of the model."""

from __future__ import annotations

import json
import re

import pytest
import torch

from llava_st.errors import DataError
from llava_st.model import LlavaSTModel
from llava_st.processor import LlavaSTProcessor
from llava_st.train.validation import answer_loss


@pytest.fixture(scope="module")
def model_and_processor(tokenizer_dir):
    return LlavaSTModel.from_pretrained(tokenizer_dir), LlavaSTProcessor.from_pretrained(tokenizer_dir)


def _one_by_one(model, processor, path, folder) -> tuple[float, int]:
    """Token-weighted mean of the model's own loss over single-sample forwards (no padding)."""
    from llava_st.data.formats.release_sft import read_release_sft
    from llava_st.media import load_image, load_video

    total, tokens = 0.0, 0
    model.eval()
    for s in read_release_sft(path):
        if s.media_kind == "video":
            media = load_video(folder / s.media, s.meta["sample_frames"], frame_range=s.split).frames
        else:
            media = load_image(folder / s.media) if s.media_kind == "image" else None
        enc = processor.encode([t.to_dict() for t in s.conversations], media, variables=s.variables.to_dict())
        batch = processor.collate([enc], padding_side="right")
        labels = batch["labels"]
        count = int((labels[:, 1:] != -100).sum())
        with torch.no_grad():
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        coord_values=batch["coord_values"], pixel_values=batch["pixel_values"],
                        modalities=batch["modalities"], labels=labels, return_logits=False)
        total += float(out.loss) * count
        tokens += count
    return total / tokens, tokens


@pytest.mark.parametrize("task", ["rec", "stvg"])
def test_batched_loss_is_the_token_weighted_mean_of_single_forwards(model_and_processor, synth_data, task):
    model, processor = model_and_processor
    path = synth_data / "train" / f"{task}.json"
    want, tokens = _one_by_one(model, processor, path, synth_data)
    got = answer_loss(model, processor, path, batch_size=3)
    assert got.tokens == tokens
    assert got.samples == len(json.loads(path.read_text()))
    assert got.loss == pytest.approx(want, rel=1e-5)
    # a random-weight model is far from the answers; a uniform guess over V + K costs log(V + K)
    assert got.loss > 1.0
    # the coordinate tokens are the answers' placeholders; the two parts make up the whole
    answers = [t["value"] for r in json.loads(path.read_text()) for t in r["conversations"] if t["from"] == "gpt"]
    assert got.coord_tokens == sum(len(re.findall(r"<(TEMP|HEIGHT|WIDTH)-OUTPUT>", a)) for a in answers) > 0
    parts = got.coord_loss * got.coord_tokens + got.text_loss * (got.tokens - got.coord_tokens)
    assert parts == pytest.approx(got.loss * got.tokens, rel=1e-6)


def test_limit_takes_the_first_samples(model_and_processor, synth_data, tmp_path):
    model, processor = model_and_processor
    path = synth_data / "train" / "rec.json"
    first = tmp_path / "train" / "first.json"
    first.parent.mkdir()
    first.write_text(json.dumps(json.loads(path.read_text())[:2]))
    got = answer_loss(model, processor, path, limit=2, batch_size=1)
    want = answer_loss(model, processor, first, synth_data, batch_size=2)
    assert (got.tokens, got.samples) == (want.tokens, want.samples) == (want.tokens, 2)
    assert got.loss == pytest.approx(want.loss, rel=1e-5)


def test_bad_inputs_are_named(model_and_processor, tmp_path):
    model, processor = model_and_processor
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(DataError, match="empty.json"):
        answer_loss(model, processor, empty)
    with pytest.raises(ValueError, match="batch_size"):
        answer_loss(model, processor, empty, batch_size=0)


def test_a_file_without_coordinates_has_text_loss_only(model_and_processor, synth_data):
    model, processor = model_and_processor
    got = answer_loss(model, processor, synth_data / "train" / "image_caption.json", batch_size=4)
    assert got.coord_tokens == 0 and got.coord_loss != got.coord_loss  # NaN
    assert got.text_loss == pytest.approx(got.loss) and got.tokens > 0
