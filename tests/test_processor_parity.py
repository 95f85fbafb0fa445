"""The processor against the authors' preprocessing, for every case of the parity fixture set.

Everything expected comes from each case's ``case.json`` / ``reference.npz``
and the fixture's ``model/`` and ``media/`` folders; nothing of a particular
case is written here. Cases that carry no prompt (variants that only change
the model's behaviour) are skipped with the reason their ``case.json`` gives.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from llava_st.protocol.coords import extract_variables, format_coordinates
from llava_st.processor import LlavaSTProcessor
from llava_st.protocol.tokens import PLACEHOLDER_TO_KEY, PLACEHOLDERS
from conftest import parity_case_params

CASES = parity_case_params()
IGNORE = -100


@pytest.fixture(scope="module")
def proc(parity_root: Path) -> LlavaSTProcessor:
    return LlavaSTProcessor.from_pretrained(parity_root / "model")


def load_case(folder: Path) -> tuple[dict, dict]:
    case = json.loads((folder / "case.json").read_text())
    if "prompt" not in case and not ("human" in case and "gpt" in case):
        pytest.skip(
            f"{folder.name}: official={case.get('official')}, based_on={case.get('based_on')!r}, "
            f"inject_fast_stream={case.get('inject_fast_stream')}, inject_width_inputs={case.get('inject_width_inputs')}: "
            "it only changes model behaviour and carries no prompt for the processor"
        )
    with np.load(folder / "reference.npz") as ref:
        arrays = {k: ref[k] for k in ref.files}
    return case, arrays


def conversation(case: dict) -> list[dict]:
    if "prompt" in case:
        return [{"from": "human", "value": case["prompt"]}]
    return [{"from": "human", "value": case["human"]}, {"from": "gpt", "value": case["gpt"]}]


def media_frames(root: Path, case: dict) -> np.ndarray | None:
    """The case's uint8 media: the array of the media file with the modality's rank."""
    if case.get("media") is None:
        return None
    rank = 4 if case["modality"] == "video" else 3
    with np.load(root / "media" / case["media"]) as data:
        found = [data[k] for k in data.files if data[k].dtype == np.uint8 and data[k].ndim == rank]
    assert len(found) == 1, f"expected one uint8 rank-{rank} array in {case['media']}"
    return found[0]


def stored_pixels(root: Path, case: dict) -> torch.Tensor | None:
    if case.get("media") is None:
        return None
    with np.load(root / "media" / f"{Path(case['media']).stem}_pixel_values.npz") as data:
        return torch.from_numpy(data["pixel_values"])


def expand_runs(text: str) -> str:
    """The fixture writes long runs of one token as ``<tok>xN``."""
    return re.sub(r"(<[^<>]+>)x(\d+)", lambda m: m.group(1) * int(m.group(2)), text)


@pytest.mark.parametrize("folder", CASES)
def test_input_ids_variables_and_labels(proc, parity_root, folder):
    case, ref = load_case(folder)
    training = "prompt" not in case
    out = proc(conversation(case), media=stored_pixels(parity_root, case), label_mode="release")
    ids = out["input_ids"][0]
    assert ids.tolist() == ref["input_ids"].tolist()
    assert len(ids) == case["seq_len"]
    assert out.variables[0] == case["variables"]
    assert out["modalities"] == [case["modality"]]
    assert out["attention_mask"].all()
    for name, positions in case["positions"].items():
        token_id = proc.tokenizer.convert_tokens_to_ids(f"<{name}>")
        assert torch.nonzero(ids == token_id).flatten().tolist() == positions, name
    values = out["coord_values"][0]
    for name in PLACEHOLDERS:
        where = ids == proc.tokenizer.convert_tokens_to_ids(name)
        assert values[where].tolist() == case["variables"][PLACEHOLDER_TO_KEY[name]], name
    assert int((~torch.isnan(values)).sum()) == sum(len(v) for v in case["variables"].values())
    decoded = proc.tokenizer.decode(ids.tolist(), skip_special_tokens=False)
    assert decoded == expand_runs(case["prompt_stages"]["decoded_input_ids"])
    if training:
        assert out["labels"][0].tolist() == ref["labels"].tolist()
    else:
        assert "labels" not in out


@pytest.mark.parametrize("folder", CASES)
def test_our_labels_are_the_answer_and_its_end(proc, parity_root, folder):
    case, ref = load_case(folder)
    if "prompt" in case:
        pytest.skip(f"{folder.name} is an inference case (mode {case['mode']!r}): no labels")
    out = proc(conversation(case), media=stored_pixels(parity_root, case))
    ids = ref["input_ids"]
    tok = proc.tokenizer
    header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    start = int(np.flatnonzero(ids == tok.convert_tokens_to_ids("<|im_start|>"))[-1]) + len(header)
    end = int(np.flatnonzero(ids == tok.convert_tokens_to_ids("<|im_end|>"))[-1]) + 1
    expected = np.full_like(ids, IGNORE)
    expected[start:end] = ids[start:end]
    assert out["labels"][0].tolist() == expected.tolist()
    release = ref["labels"]
    assert np.all((expected == IGNORE) | (expected == release))


@pytest.mark.parametrize("folder", CASES)
def test_text_stages(parity_root, folder):
    case, _ = load_case(folder)
    stages = case["prompt_stages"]
    if "prompt" in case:
        formatted = format_coordinates(case["prompt"], "INPUT")
        assert formatted == stages["after_format_helpers"]
        assert extract_variables(formatted)[0] == stages["after_get_variables"]
    else:
        formatted = [format_coordinates(case["human"], "INPUT"), format_coordinates(case["gpt"], "OUTPUT")]
        assert formatted == stages["after_format_helpers"]
        assert [extract_variables(t)[0] for t in formatted] == stages["after_get_variables"]


@pytest.mark.parametrize("folder", CASES)
def test_generated_ids_decode_like_the_release(proc, parity_root, folder):
    case, ref = load_case(folder)
    if "gen_ids" not in ref or "generated_text" not in case:
        pytest.skip(f"{folder.name} stores no generated ids and text (mode {case['mode']!r})")
    ids = torch.from_numpy(ref["gen_ids"])
    assert proc.decode(ids) == case["generated_text"]
    if "generated_text_converted" in case:
        assert proc.decode(ids, release_form=True) == case["generated_text_converted"]


@pytest.mark.parametrize("folder", CASES)
def test_pixels_from_decoded_media_are_bitwise_the_stored_ones(proc, parity_root, folder):
    case, ref = load_case(folder)
    frames = media_frames(parity_root, case)
    if frames is None:
        pytest.skip(f"{folder.name} has no media")
    out = proc(conversation(case), media=frames, label_mode="release")
    pixels = out["pixel_values"][0]
    expected = stored_pixels(parity_root, case)
    assert pixels.dtype == torch.float32 and pixels.shape == expected.shape
    assert torch.equal(pixels, expected)
    assert out["input_ids"][0].tolist() == ref["input_ids"].tolist()
