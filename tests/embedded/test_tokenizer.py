"""The tokenizer trained on ST-Synth text (llava_st.embedded.tokenizer, `llava-st tokenizer`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llava_st.errors import DataError
from llava_st.protocol.tokens import ADDED_TOKENS, BinCounts, bin_tokens


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory) -> Path:
    from llava_st.synth import generate
    from llava_st.synth.config import preset

    out = tmp_path_factory.mktemp("tok-synth") / "data"
    generate(preset("tiny").replace(num_videos=3, num_images=3), out, workers=1, preview=False)
    return out


def test_trained_tokenizer_has_the_release_layout_and_round_trips(synth_folder):
    from llava_st.embedded.tokenizer import train_tokenizer_on_folder
    from llava_st.processor import check_tokenizer
    from llava_st.train.build import fit_config_to_tokenizer
    from llava_st.zoo import tiny

    bins = BinCounts(20, 30)
    tok = train_tokenizer_on_folder(synth_folder, bins, vocab_size=400)
    v = len(tok) - bins.time - 2 * bins.space
    # the 14 added tokens end the text vocabulary, the bins follow at V + k
    assert tok.convert_tokens_to_ids(list(ADDED_TOKENS)) == list(range(v - 14, v))
    assert tok.convert_tokens_to_ids(bin_tokens(bins)) == list(range(v, len(tok)))
    from dataclasses import replace

    from llava_st.config import CoordConfig

    config = fit_config_to_tokenizer(replace(tiny(), coords=CoordConfig(bins.time, bins.space)), tok)
    check_tokenizer(tok, config)
    # learnt merges: the corpus' words are single tokens, any text still encodes and decodes exactly
    sample = json.loads((synth_folder / "train" / "rec.json").read_text())[0]["conversations"][0]["value"]
    text = sample.replace("<image>\n", "")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(text.encode()) / 2
    assert tok.decode(ids) == text
    odd = "Ünïcödé ✓ and <TEMP-003> 12.5"
    assert tok.decode(tok(odd, add_special_tokens=False)["input_ids"]) == odd


def test_a_folder_without_training_files_is_named(tmp_path):
    from llava_st.embedded.tokenizer import train_tokenizer_on_folder

    with pytest.raises(DataError, match="no train/\\*.json"):
        train_tokenizer_on_folder(tmp_path, BinCounts(10, 10))


def test_cli_writes_a_loadable_tokenizer(synth_folder, tmp_path):
    out = tmp_path / "tok"
    done = subprocess.run(
        [sys.executable, "-m", "llava_st", "tokenizer", "--data", str(synth_folder), "--out", str(out),
         "--vocab-size", "300", "--time-bins", "16", "--space-bins", "50"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    from llava_st.processor import load_tokenizer

    tok = load_tokenizer(out)
    assert len(tok) == report["tokens"] and report["text_vocab_size"] == len(tok) - 116
