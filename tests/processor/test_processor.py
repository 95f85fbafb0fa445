"""LlavaSTProcessor on a tiny byte-level tokenizer and a tiny config (no fixtures needed).

Expected ids, labels and slot runs are built here piece by piece from the
template of SPEC §3 with :func:`reference_ids`, which does not run the
tokenizer on the text, so every comparison is against an independent
computation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from llava_st.protocol.coords import CoordinateError, extract_variables, format_coordinates, insert_values
from llava_st.processor import (
    ConversationError,
    LlavaSTProcessor,
    MediaError,
    ProcessorOptions,
    TokenizerMismatchError,
    build_release_tokenizer,
    check_tokenizer,
    normalize_conversation,
    place_media_tag,
    render_chat,
)
from llava_st.processor.processing import PROCESSOR_FILE
from llava_st.protocol.tokens import PLACEHOLDER_TO_KEY, PLACEHOLDERS, VARIABLE_KEYS, BinCounts, bin_token, variables_from_values
from tests.processor_fixtures import (
    byte_level_base_tokenizer,
    reference_ids,
    tiny_config,
    tiny_processor,
    tiny_release_tokenizer,
)

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
IGNORE = -100


@pytest.fixture(scope="module")
def proc() -> LlavaSTProcessor:
    return tiny_processor()


def pixels(t: int, size: int = 84) -> torch.Tensor:
    """Already-preprocessed pixels [T, 3, S, S] (the processor passes them through)."""
    return torch.linspace(-1, 1, t * 3 * size * size, dtype=torch.float32).reshape(t, 3, size, size)


def run_ids(proc: LlavaSTProcessor, modality: str, t: int = 1) -> list[int]:
    """The visual run from SPEC §2.7's formula and the tiny config's sizes, computed here."""
    tok = proc.tokenizer
    grid = proc.config.vision.image_size // proc.config.vision.patch_size
    slow_grid = grid // proc.config.packer.spatial_factor
    fast_grid = slow_grid // proc.config.packer.fast_factor
    if modality == "image":
        n = grid * grid
        return tok.convert_tokens_to_ids(["<im_start>"] + ["<im_patch>"] * (n - 2) + ["<im_end>"])
    fast = t * fast_grid**2
    slow = max(1, t // proc.config.packer.temporal_window) * slow_grid**2
    return tok.convert_tokens_to_ids(
        ["<vid_start>"] + ["<vid_patch>"] * (fast - 2) + ["<vid_end>"]
        + ["<slow_vid_start>"] + ["<vid_patch>"] * (slow - 2) + ["<slow_vid_end>"]
    )


def build(proc, pieces):
    """Concatenate (text or id list, supervised) pieces into expected ids and labels."""
    ids, labels = [], []
    for piece, supervised in pieces:
        piece_ids = piece if isinstance(piece, list) else reference_ids(piece, proc.tokenizer)
        ids += piece_ids
        labels += piece_ids if supervised else [IGNORE] * len(piece_ids)
    return ids, labels


# ------------------------------------------------------------ chat template


def test_generation_prompt_text_and_ids(proc):
    out = proc("What is shown?")
    text = SYSTEM + "<|im_start|>user\nWhat is shown?<|im_end|>\n<|im_start|>assistant\n"
    assert out.texts == [text]
    assert out["input_ids"].tolist() == [reference_ids(text, proc.tokenizer)]
    assert out["attention_mask"].tolist() == [[1] * len(out["input_ids"][0])]
    assert torch.isnan(out["coord_values"]).all()
    assert "labels" not in out
    assert out["pixel_values"] == [None] and out["modalities"] == [None]
    assert out["input_ids"].dtype == torch.long and out["coord_values"].dtype == torch.float64


def test_custom_system_prompt_by_argument_option_or_turn():
    p = tiny_processor(ProcessorOptions(system_prompt="Be brief."))
    expected = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert p("Hi").texts == [expected]
    assert p("Hi", system_prompt="Be brief.").texts == [expected]
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert p(conv).texts == [expected]
    with pytest.raises(ConversationError, match="system turn and a system_prompt"):
        p(conv, system_prompt="Other")


def test_generation_marker_turn_with_none_is_dropped(proc):
    a = proc([{"from": "human", "value": "Hi"}, {"from": "gpt", "value": None}])
    b = proc("Hi")
    assert torch.equal(a["input_ids"], b["input_ids"])


def test_render_chat_spans_cover_answer_and_whole_turn():
    conv = normalize_conversation([{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A."}])
    chat = render_chat(conv)
    (a0, a1), = chat.answer_spans
    (t0, t1), = chat.assistant_turn_spans
    assert chat.text[a0:a1] == "A.<|im_end|>"
    assert chat.text[t0:t1] == "<|im_start|>assistant\nA.<|im_end|>\n"
    assert chat.text.endswith("<|im_end|>\n")


# ------------------------------------------------------------- media tags


@pytest.mark.parametrize(
    "text, expected",
    [
        ("What is here? <image>", "<image>\nWhat is here?"),
        ("<image>\nWhat is here?", "<image>\nWhat is here?"),
        ("  Look <image> closely  ", "<image>\nLook  closely"),
        ("<image>", "<image>\n"),
    ],
)
def test_place_media_tag(text, expected):
    assert place_media_tag(text, "<image>") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("What is here? <image>", "What is here?\n<image>"),
        ("<image>\nWhat is here?", "What is here?\n<image>"),
        ("  Look <image> closely  ", "Look  closely\n<image>"),
    ],
)
def test_place_media_tag_last(text, expected):
    assert place_media_tag(text, "<image>", "last") == expected


def test_place_media_tag_refuses_an_unknown_position():
    with pytest.raises(ConversationError, match="media position must be one of"):
        place_media_tag("<image>\nHi", "<image>", "middle")


def test_a_media_last_config_puts_the_visual_run_after_the_question():
    from dataclasses import replace

    proc = tiny_processor()
    last = type(proc)(proc.tokenizer, replace(proc.config, media_position="last"))
    out = last("<image>\nWhat is here?", media=pixels(1))
    ids, _ = build(
        last,
        [(SYSTEM + "<|im_start|>user\nWhat is here?\n", False), (run_ids(last, "image"), False),
         ("<|im_end|>\n<|im_start|>assistant\n", False)],
    )
    assert out["input_ids"][0].tolist() == ids
    assert out.texts[0] == SYSTEM + "<|im_start|>user\nWhat is here?\n<image><|im_end|>\n<|im_start|>assistant\n"
    # the setting travels with the model's config.json
    assert type(proc.config).from_release_dict(last.config.to_release_dict()).media_position == "last"
    assert "media_position" not in proc.config.to_release_dict()  # a release config keeps its keys


def test_image_tag_moves_to_front_and_expands_to_the_config_count(proc):
    out = proc("What is here? <image>", media=pixels(1))
    ids, _ = build(
        proc,
        [(SYSTEM + "<|im_start|>user\n", False), (run_ids(proc, "image"), False),
         ("\nWhat is here?<|im_end|>\n<|im_start|>assistant\n", False)],
    )
    assert out["input_ids"][0].tolist() == ids
    assert out.texts[0] == SYSTEM + "<|im_start|>user\n<image>\nWhat is here?<|im_end|>\n<|im_start|>assistant\n"
    assert out["modalities"] == ["image"]
    assert out["pixel_values"][0].shape == (1, 3, 84, 84)


@pytest.mark.parametrize("frames", [2, 4, 7])
def test_video_run_follows_the_config_for_the_sample_frame_count(proc, frames):
    out = proc("<video>\nWhat happens?", media=pixels(frames))
    run = run_ids(proc, "video", frames)
    ids = out["input_ids"][0].tolist()
    prefix = reference_ids(SYSTEM + "<|im_start|>user\n", proc.tokenizer)
    assert ids[len(prefix) : len(prefix) + len(run)] == run
    assert len(ids) == len(reference_ids(out.texts[0].replace("<video>", ""), proc.tokenizer)) + len(run)
    assert torch.equal(proc.visual_run("video", frames), torch.tensor(run))


def test_slot_counts_differ_between_configs():
    small = tiny_processor()
    large = tiny_processor(image_size=126, spatial_factor=3, fast_factor=3)  # 9x9 grid, fast grid 1
    assert len(small.visual_run("image")) == 36
    assert len(large.visual_run("image")) == 81
    for p in (small, large):
        assert p.visual_run("image").tolist() == run_ids(p, "image")
        assert p.visual_run("video", 5).tolist() == run_ids(p, "video", 5)


def test_multi_turn_tag_in_a_later_user_turn(proc):
    conv = [
        {"from": "human", "value": "Hello"},
        {"from": "gpt", "value": "Hi."},
        {"from": "human", "value": "And this <image>?"},
        {"from": "gpt", "value": "A cat."},
    ]
    out = proc(conv, media=pixels(1))
    ids, labels = build(
        proc,
        [
            (SYSTEM + "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", False),
            ("Hi.<|im_end|>", True),
            ("\n<|im_start|>user\n", False),
            (run_ids(proc, "image"), False),
            ("\nAnd this ?<|im_end|>\n<|im_start|>assistant\n", False),
            ("A cat.<|im_end|>", True),
            ("\n", False),
        ],
    )
    assert out["input_ids"][0].tolist() == ids
    assert out["labels"][0].tolist() == labels


# ------------------------------------------------------------------ labels


def release_labels(proc, ids, assistant_ranges):
    """SPEC §7: whole assistant turns plus every "\\n", <|im_start|>, <|im_end|>."""
    keep = {proc.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>")}
    keep |= set(reference_ids("\n", proc.tokenizer))
    labels = [t if t in keep else IGNORE for t in ids]
    for a, b in assistant_ranges:
        labels[a:b] = ids[a:b]
    return labels


def test_labels_in_both_modes_for_a_training_sample(proc):
    conv = [{"from": "human", "value": "<image>\nWhere is it?"}, {"from": "gpt", "value": "At\n[0.1, 0.2, 0.5, 0.7]."}]
    ours = proc(conv, media=pixels(1))
    release = proc(conv, media=pixels(1), label_mode="release")
    answer = format_coordinates("At\n[0.1, 0.2, 0.5, 0.7].", "OUTPUT")
    answer_text = extract_variables(answer)[0]
    ids, labels = build(
        proc,
        [
            (SYSTEM + "<|im_start|>user\n", False),
            (run_ids(proc, "image"), False),
            ("\nWhere is it?<|im_end|>\n<|im_start|>assistant\n", False),
            (answer_text + "<|im_end|>", True),
            ("\n", False),
        ],
    )
    assert ours["input_ids"][0].tolist() == ids
    assert ours["labels"][0].tolist() == labels
    header = len(reference_ids(SYSTEM + "<|im_start|>user\n", proc.tokenizer) + run_ids(proc, "image")) + len(
        reference_ids("\nWhere is it?<|im_end|>\n", proc.tokenizer)
    )
    assert release["labels"][0].tolist() == release_labels(proc, ids, [(header, len(ids))])
    # the release supervises more, never less, and agrees where both supervise
    r, o = release["labels"][0], ours["labels"][0]
    assert ((o == IGNORE) | (o == r)).all() and (r != IGNORE).sum() > (o != IGNORE).sum()


def test_release_labels_multi_turn(proc):
    conv = [
        {"from": "human", "value": "a"},
        {"from": "gpt", "value": "b"},
        {"from": "human", "value": "c\nd"},
        {"from": "gpt", "value": "e"},
    ]
    out = proc(conv, label_mode="release")
    ids = out["input_ids"][0].tolist()
    text = out.texts[0]
    turn = "<|im_start|>assistant\n"
    first = text.index(turn)
    second = text.index(turn, first + 1)
    r1 = (len(reference_ids(text[:first], proc.tokenizer)), len(reference_ids(text[: text.index("\n<|im_start|>user", first) + 1], proc.tokenizer)))
    r2 = (len(reference_ids(text[:second], proc.tokenizer)), len(ids))
    assert out["labels"][0].tolist() == release_labels(proc, ids, [r1, r2])


def test_label_mode_from_options():
    p = tiny_processor(ProcessorOptions(label_mode="release"))
    conv = [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]
    assert torch.equal(p(conv)["labels"], p(conv, label_mode="release")["labels"])
    with pytest.raises(ValueError, match="label_mode"):
        p(conv, label_mode="all")


# --------------------------------------------------------- coordinate values


def test_coord_values_sit_at_placeholders_in_order(proc):
    prompt = "<video>\nDuring {0.2, 0.6} where is [0.1, 0.25, 0.5, 0.7]? Starts in 0.3125"
    out = proc(prompt, media=pixels(4))
    ids = out["input_ids"][0]
    values = out["coord_values"][0]
    expected = {
        "temporal_input_locations": [0.2, 0.6, 0.312],
        "spatial_width_input_locations": [0.1, 0.5],
        "spatial_height_input_locations": [0.25, 0.7],
    }
    for name in PLACEHOLDERS:
        key = PLACEHOLDER_TO_KEY[name]
        where = ids == proc.tokenizer.convert_tokens_to_ids(name)
        assert values[where].tolist() == expected.get(key, [])
    assert int((~torch.isnan(values)).sum()) == 7
    assert out.variables[0] == {key: expected.get(key, []) for key in VARIABLE_KEYS}


def test_bare_placeholders_take_given_variables(proc):
    out = proc("When is {<TEMP-INPUT><TEMP-INPUT>}?", variables={"temporal_input_locations": [0.25, 0.75]})
    ids = out["input_ids"][0]
    where = ids == proc.tokenizer.convert_tokens_to_ids("<TEMP-INPUT>")
    assert out["coord_values"][0][where].tolist() == [0.25, 0.75]


def test_markup_round_trip_through_ids(proc):
    prompt = "<image>\nDuring {0.2, 0.6} where is [0.1, 0.25, 0.5, 0.7]?"
    out = proc(prompt, media=pixels(1))
    ids = out["input_ids"][0]
    text = proc.tokenizer.decode(ids.tolist(), skip_special_tokens=False)
    user = text.split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
    user = user[user.index("<im_end>") + len("<im_end>") :]  # drop the visual run
    values = variables_from_values(ids, out["coord_values"][0], proc.token_ids)
    restored = insert_values(user, values)
    assert restored == format_coordinates(prompt, "INPUT").replace("<image>", "")
    assert extract_variables(restored)[1].to_dict() == out.variables[0]


# ----------------------------------------------------------------- batching


def test_generation_batches_pad_left_by_default(proc):
    out = proc(["Hi", "A longer question here"])
    lengths = [len(reference_ids(t, proc.tokenizer)) for t in out.texts]
    length = max(lengths)
    pad = proc.tokenizer.pad_token_id
    for row, n in enumerate(lengths):
        assert out["attention_mask"][row].tolist() == [0] * (length - n) + [1] * n
        assert out["input_ids"][row, : length - n].tolist() == [pad] * (length - n)
        assert out["input_ids"][row, length - n :].tolist() == reference_ids(out.texts[row], proc.tokenizer)
    assert torch.isnan(out["coord_values"]).all()


def test_training_batches_pad_right_by_default_and_side_can_be_chosen(proc):
    convs = [
        [{"from": "human", "value": "a"}, {"from": "gpt", "value": "{0.1, 0.2}"}],
        [{"from": "human", "value": "longer"}, {"from": "gpt", "value": "much longer answer"}],
    ]
    right = proc(convs)
    left = proc(convs, padding_side="left")
    singles = [proc(c) for c in convs]
    length = right["input_ids"].shape[1]
    for row, single in enumerate(singles):
        n = single["input_ids"].shape[1]
        assert torch.equal(right["input_ids"][row, :n], single["input_ids"][0])
        assert torch.equal(right["labels"][row, :n], single["labels"][0])
        assert (right["labels"][row, n:] == IGNORE).all()
        assert torch.equal(left["input_ids"][row, length - n :], single["input_ids"][0])
        assert torch.equal(left["labels"][row, length - n :], single["labels"][0])
        assert torch.equal(
            torch.isnan(left["coord_values"][row, length - n :]), torch.isnan(single["coord_values"][0])
        )
        assert torch.isnan(left["coord_values"][row, : length - n]).all()


def test_padding_side_from_options():
    p = tiny_processor(ProcessorOptions(padding_side="right"))
    out = p(["Hi", "A longer question"])
    assert out["attention_mask"][0, 0] == 1 and out["attention_mask"][0, -1] == 0


def test_batch_media_variables_per_sample(proc):
    out = proc(["<image>\nA", "B <TEMP-INPUT>", "<video>\nC"], media=[pixels(1), None, pixels(2)],
               variables=[None, {"temporal_input_locations": [0.5]}, None])
    assert out["modalities"] == ["image", None, "video"]
    assert out["pixel_values"][1] is None and out["pixel_values"][2].shape[0] == 2
    assert out.variables[1]["temporal_input_locations"] == [0.5]


def test_output_moves_to_a_device(proc):
    out = proc("<image>\nA", media=pixels(1)).to("cpu")
    assert set(out) == {"input_ids", "attention_mask", "coord_values", "pixel_values", "modalities"}
    assert out.variables and out.texts


# -------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path):
    p = tiny_processor(ProcessorOptions(system_prompt="Short.", padding_side="right", max_length=5000))
    p.save_pretrained(tmp_path)
    assert (tmp_path / PROCESSOR_FILE).is_file() and (tmp_path / "config.json").is_file()
    q = LlavaSTProcessor.from_pretrained(tmp_path)
    assert q.options == p.options
    assert q.config.image_token_count == p.config.image_token_count
    assert q.config.video_token_count(3) == p.config.video_token_count(3)
    conv = [{"from": "human", "value": "<video>\nWhen {0.1, 0.9}?"}, {"from": "gpt", "value": "Starts in 0.4"}]
    a, b = p(conv, media=pixels(3)), q(conv, media=pixels(3))
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(a[key], b[key])
    assert torch.equal(torch.isnan(a["coord_values"]), torch.isnan(b["coord_values"]))


def test_save_keeps_an_existing_model_config(tmp_path):
    p = tiny_processor()
    (tmp_path / "config.json").write_text(json.dumps(p.config.to_release_dict()))
    before = (tmp_path / "config.json").read_text()
    p.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").read_text() == before


def test_bad_processor_file_raises(tmp_path):
    tiny_processor().save_pretrained(tmp_path)
    (tmp_path / PROCESSOR_FILE).write_text(json.dumps({"format": "llava_st_processor", "version": 1, "colour": 1}))
    with pytest.raises(ValueError, match="unknown processor options"):
        LlavaSTProcessor.from_pretrained(tmp_path)


# ---------------------------------------------------------------- tokenizer


def test_build_release_tokenizer_layout():
    base = byte_level_base_tokenizer()
    tok = build_release_tokenizer(base, BinCounts(10, 20))
    v = len(base) + 14
    assert len(tok) == v + 50
    names = ["<im_start>", "<im_end>", "<im_patch>", "<vid_start>", "<vid_end>", "<vid_patch>", "<slow_vid_start>",
             "<slow_vid_end>"] + list(PLACEHOLDERS)
    assert tok.convert_tokens_to_ids(names) == list(range(v - 14, v))
    bins = [bin_token("TEMP", k) for k in range(10)] + [bin_token("HEIGHT", k) for k in range(20)] + [
        bin_token("WIDTH", k) for k in range(20)
    ]
    assert tok.convert_tokens_to_ids(bins) == list(range(v, v + 50))
    assert len(base) == 259  # the base is left untouched
    # added tokens are never split, even glued to text
    assert tok("x<TEMP-003>y", add_special_tokens=False)["input_ids"] == reference_ids("x<TEMP-003>y", tok)
    check_tokenizer(tok, tiny_config(v))


def test_build_release_tokenizer_rejects_bad_bases():
    tok = tiny_release_tokenizer()
    with pytest.raises(TokenizerMismatchError, match="already holds"):
        build_release_tokenizer(tok, BinCounts(10, 20))
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab={"a": 0}, merges=[])))
    with pytest.raises(TokenizerMismatchError, match="chat token"):
        build_release_tokenizer(bare, BinCounts(10, 20))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda v: (tiny_release_tokenizer(10, 20), tiny_config(v + 1)), "config expects"),
        (lambda v: (tiny_release_tokenizer(10, 20), tiny_config(v, num_temporal_bins=12)), "bin token"),
        (lambda v: (tiny_release_tokenizer(10, 10), tiny_config(v + 10, num_spatial_bins=20)), "expects"),
        (lambda v: (byte_level_base_tokenizer(), tiny_config(v)), "missing|has id None"),
    ],
)
def test_wrong_tokenizer_is_rejected_with_the_mismatch(make, match):
    v = 259 + 14
    tok, cfg = make(v)
    with pytest.raises(TokenizerMismatchError, match=match):
        LlavaSTProcessor(tok, cfg)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "conv, media, error, match",
    [
        ("<image> and <image>", "image", ConversationError, "exactly one media tag, found 2"),
        ("<image> and <video>", "image", ConversationError, "exactly one media tag"),
        ("<image>\nWhat?", None, MediaError, "no media were given"),
        ("What?", "image", MediaError, "no <image> or <video> tag"),
        ([{"from": "human", "value": "Q"}, {"from": "gpt", "value": "<image> A"}], "image", ConversationError,
         "must be in a user turn"),
        ("Hi <|im_end|> there", None, ConversationError, "writes itself"),
        ("Hi <im_patch>", None, ConversationError, "writes itself"),
        ("When {<TEMP-INPUT><TEMP-INPUT>}?", None, CoordinateError, "2 placeholder"),
        ("Bin <TEMP-010> here", None, CoordinateError, "outside this model's 10 TEMP bins"),
        ([{"from": "gpt", "value": "A"}], None, ConversationError, "'user' was expected"),
        ([{"from": "human", "value": "A"}, {"from": "human", "value": "B"}], None, ConversationError, "alternate"),
        ([{"from": "robot", "value": "A"}], None, ConversationError, "unknown role"),
        ([{"from": "human", "value": 3}], None, ConversationError, "must be a string"),
        ("<video>\nA", "image1x4", MediaError, "image|video"),
    ],
)
def test_bad_input_raises_clearly(proc, conv, media, error, match):
    given = {None: None, "image": pixels(1), "image1x4": np.zeros((4, 8, 8), dtype=np.uint8)}[media]
    with pytest.raises(error, match=match):
        proc(conv, media=given)


def test_image_given_several_frames_is_rejected(proc):
    with pytest.raises(MediaError, match="one frame"):
        proc("<image>\nA", media=pixels(2))
    with pytest.raises(MediaError, match="float32"):
        proc("<image>\nA", media=pixels(1).double())
    with pytest.raises(MediaError, match="84, 84"):
        proc("<image>\nA", media=pixels(1, size=56))
    with pytest.raises(MediaError, match="uint8"):
        proc("<image>\nA", media=np.zeros((8, 8, 3), dtype=np.float64))


def test_batch_errors_name_the_sample(proc):
    with pytest.raises(MediaError, match="sample 1: .*no media"):
        proc(["<image>\nA", "<image>\nB"], media=[pixels(1), None])
    with pytest.raises(ValueError, match="media has 1 entries for a batch of 2"):
        proc(["A", "B"], media=[None])
    with pytest.raises(ValueError, match="must be a list"):
        proc(["<image>\nA", "B"], media=pixels(1))


def test_mixed_generation_and_training_batch_is_rejected(proc):
    with pytest.raises(ValueError, match="mixes samples with answers"):
        proc(["A", [{"from": "human", "value": "B"}, {"from": "gpt", "value": "C"}]])


def test_max_length_is_enforced_not_truncated():
    p = tiny_processor(ProcessorOptions(max_length=30))
    with pytest.raises(ValueError, match="more than max_length 30"):
        p("A question that is clearly too long for thirty tokens")


def test_too_small_runs_are_rejected():
    p = tiny_processor(spatial_factor=3, fast_factor=2, image_size=84)
    with pytest.raises(ValueError, match=r"a video of 1 frame\(s\) gives 1 fast"):
        # one frame with a 1x1 fast grid leaves a single fast position
        p("<video>\nA", media=pixels(1))


# ----------------------------------------------------------------- decoding


def test_batch_decode_keeps_bins_cuts_at_eos_and_drops_padding(proc):
    tok = proc.tokenizer
    row = reference_ids("{", tok) + tok.convert_tokens_to_ids(["<TEMP-003>", "<TEMP-007>"]) + reference_ids("}", tok)
    eos, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id
    rows = [row + [eos, pad, pad], reference_ids("ok", tok) + [pad] * 3 + [eos, 5]]
    rows[1] = rows[1][: len(rows[0])]
    assert proc.batch_decode(torch.tensor(rows)) == ["{<TEMP-003><TEMP-007>}", "ok"]
    assert proc.batch_decode(torch.tensor(rows), release_form=True) == ["{" + f"{3 / 9:.5f},{7 / 9:.5f}" + "}", "ok"]
    assert proc.decode(torch.tensor(row)) == "{<TEMP-003><TEMP-007>}"
    with pytest.raises(ValueError, match="outside the tokenizer"):
        proc.batch_decode([[len(tok)]])
    with pytest.raises(ValueError, match="\\[B, N\\]"):
        proc.batch_decode(torch.tensor(row))


def test_generated_bins_round_trip_to_values(proc):
    tok, c = proc.tokenizer, proc.config.coords
    values = [0.0, 0.13, 0.5, 0.87, 1.0]
    tokens = [bin_token("WIDTH", round(v * (c.num_spatial_bins - 1))) for v in values]
    text = proc.decode(tok.convert_tokens_to_ids(tokens), release_form=True)
    decoded = [float(x) for x in text.rstrip(",").split(",")]
    half_bin = 0.5 / (c.num_spatial_bins - 1)
    assert all(math.isclose(d, v, abs_tol=half_bin + 1e-5) for d, v in zip(decoded, values))


# ------------------------------------------------------------------ pixels


def reference_pixels(frames: np.ndarray, size: int) -> torch.Tensor:
    """SPEC §2.2 written out: Pillow bicubic on uint8, x * (1/255) in float64 -> float32, (x - 0.5) / 0.5."""
    from PIL import Image

    out = []
    for frame in frames:
        resized = np.asarray(Image.fromarray(frame).resize((size, size), Image.BICUBIC))
        x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)
        x = (x - np.float32(0.5)) / np.float32(0.5)
        out.append(x.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out))


def test_decoded_images_become_pixels(proc):
    from PIL import Image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(30, 50, 3), dtype=np.uint8)
    expected = reference_pixels(image[None], 84)
    for media in (image, image[None], torch.from_numpy(image), Image.fromarray(image)):
        out = proc("<image>\nA", media=media)
        assert torch.equal(out["pixel_values"][0], expected)


def test_decoded_video_frames_and_clips_become_pixels(proc):
    from types import SimpleNamespace

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 20, 28, 3), dtype=np.uint8)
    expected = reference_pixels(frames, 84)
    for media in (frames, torch.from_numpy(frames), SimpleNamespace(frames=frames)):
        out = proc("<video>\nA", media=media)
        assert torch.equal(out["pixel_values"][0], expected)
        assert out["input_ids"][0].tolist().count(proc.token_ids.vid_start) == 1
        assert len(out["input_ids"][0]) == len(reference_ids(out.texts[0].replace("<video>", ""), proc.tokenizer)) + len(
            run_ids(proc, "video", 3)
        )


def test_processor_file_of_another_kind_is_rejected(tmp_path):
    tiny_processor().save_pretrained(tmp_path)
    (tmp_path / PROCESSOR_FILE).write_text(json.dumps({"format": "something_else", "version": 1}))
    with pytest.raises(ValueError, match="format is 'something_else'"):
        LlavaSTProcessor.from_pretrained(tmp_path)
    (tmp_path / PROCESSOR_FILE).write_text(json.dumps({"format": "llava_st_processor", "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        LlavaSTProcessor.from_pretrained(tmp_path)


def test_missing_model_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model folder"):
        LlavaSTProcessor.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        LlavaSTProcessor.from_pretrained(tmp_path)
    cfg = tiny_config(273).to_release_dict()
    del cfg["vision_config"]
    cfg["mm_vision_tower"] = "my-tower"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match="my-tower"):
        LlavaSTProcessor.from_pretrained(tmp_path)
