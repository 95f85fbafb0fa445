"""Grammar-constrained answers: the grammars accept what training writes, and random weights answer well-formed.

The tiny model has random weights, so by itself it never writes a
well-formed task answer; under its task's grammar every answer must parse.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_test_video
from llava_st.errors import ProtocolError
from llava_st.infer import LlavaST, Request
from llava_st.infer.constrain import ConstraintRow, GrammarCompiler, grammar_state
from llava_st.model.grammar import GrammarError
from llava_st.protocol import answers as A
from llava_st.protocol.bins import value_to_bin
from llava_st.protocol.coords import format_box, format_span, format_value, to_placeholders
from llava_st.protocol.grammars import GRAMMARS, frame_keys, span_keys
from llava_st.protocol.tokens import PLACEHOLDER_TO_KEY, BinCounts, bin_token

T = 12  # frames per video of the tiny model
TASK_CALLS = {
    "tvg": lambda st, m: st.ground_time(m["video"], "the screen brightens", **m["kw"]),
    "rec": lambda st, m: st.refer(m["image"], "the grey area", **m["kw"]),
    "stvg": lambda st, m: st.track(m["video"], "the bright frame", **m["kw"]),
    "svg": lambda st, m: st.boxes_in_span(m["video"], "the frame", 0.5, 2.0, **m["kw"]),
    "elc": lambda st, m: st.caption_event(m["video"], 1.0, [8, 6, 40, 30], **m["kw"]),
    "reg": lambda st, m: st.describe_region(m["image"], [0, 0, 40, 20], **m["kw"]),
    "tr": lambda st, m: st.describe_span(m["video"], 0.0, 1.5, **m["kw"]),
    "dvc": lambda st, m: st.dense_captions(m["video"], **m["kw"]),
    "dgc": lambda st, m: st.grounded_caption(m["image"], **m["kw"]),
}


@pytest.fixture(scope="module")
def st(tiny_model_dir) -> LlavaST:
    return LlavaST.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    image = folder / "photo.png"
    Image.fromarray(np.full((40, 80, 3), 120, dtype=np.uint8)).save(image)
    return {"video": write_test_video(folder / "clip.mp4", num_frames=30, fps=10, size=(64, 48)), "image": image}


# ----------------------------------------------------------------- the grammars accept training answers


def _token_form(markup: str, bins: BinCounts) -> str:
    """An answer as training writes it (markup), with each coordinate as the bin the model answers."""
    text, variables = to_placeholders(markup, "OUTPUT")
    values = {k: list(v) for k, v in variables.to_dict().items()}

    def sub(m: re.Match) -> str:
        return bin_token(m.group(1), value_to_bin(m.group(1), values[PLACEHOLDER_TO_KEY[m.group(0)]].pop(0), bins))

    return re.sub(r"<(TEMP|HEIGHT|WIDTH)-OUTPUT>", sub, text)


def _synth_answers() -> dict[str, tuple[str, ConstraintRow]]:
    """Each task's answer written the way ST-Synth writes it (synth/tasks.py), T = 12 frames."""
    t = lambda i: i / (T - 1)  # noqa: E731 - the time of sampled frame i
    box = [0.1, 0.2, 0.5, 0.6]
    pairs = lambda a, z: ", ".join(f"<t{format_value(t(i))}>: {format_box(box)}" for i in range(a, z + 1))  # noqa: E731
    return {
        "tvg": (format_span(t(2), t(5)), ConstraintRow("tvg", T)),
        "rec": (format_box(box), ConstraintRow("rec")),
        "stvg": (f"During the span of {format_span(t(2), t(5))}. Object bounding box: {pairs(2, 5)}", ConstraintRow("stvg", T)),
        "svg": (f"Object bounding box: {pairs(3, 6)}", ConstraintRow("svg", T, span=(round(t(3), 3), round(t(6), 3)))),
        "elc": (f"Ends in <t{format_value(t(7))}>, a man opens the door. Object bounding box: {pairs(4, 7)}",
                ConstraintRow("elc", T, start=round(t(4), 3))),
        "dvc": (" ".join(f"{format_span(t(a), t(z))}, {c}." for a, z, c in [(0, 3, "a man runs"), (4, 9, "the dog sits")]),
                ConstraintRow("dvc", T)),
        "dgc": (f"The image shows a red ball {format_box(box)}, a cube {format_box(box)} on grass.", ConstraintRow("dgc")),
        "reg": ("It is a red ball.", ConstraintRow("reg")),
        "tr": ("The man opens the door.", ConstraintRow("tr", T)),
    }


def _teacher_force(program, row: ConstraintRow, ids: list[int], bins: BinCounts) -> str:
    """Run ``ids`` through the grammar: every chosen token must be allowed, every forced one equal."""
    state = grammar_state(program, [row], bins)
    i, budget = 0, 10_000
    while not bool(state.done[0]):
        if bool(state.needs_sample()[0]):
            if i >= len(ids) or not state.allowed(torch.tensor([budget - i]), torch.device("cpu"))[0, ids[i]]:
                return f"token {i} is not allowed at {state.describe(0)}"
            state.advance(torch.tensor([ids[i]]), torch.tensor([True]))
            i += 1
        forced, valid = state.forced_run(torch.tensor([budget - i]), pad=-1)
        for tok in forced[0][valid[0]].tolist():
            if i >= len(ids) or tok != ids[i]:
                return f"the grammar forces {tok} at token {i}"
            i += 1
    return "ok" if i == len(ids) else f"the grammar ended at token {i} of {len(ids)}"


def test_every_grammar_accepts_the_answers_training_writes(st: LlavaST) -> None:
    bins = st.config.coords.bins
    program = st.grammar_program()
    tok = st.processor.tokenizer
    cases = _synth_answers()
    assert set(cases) == set(GRAMMARS)
    for task, (markup, row) in cases.items():
        text = _token_form(markup, bins)
        ids = tok.encode(text + "<|im_end|>", add_special_tokens=False)
        assert _teacher_force(program, row, ids, bins) == "ok", (task, text)
        assert A.parse_answer(text, task, bins=bins, start=row.start).ok, (task, text)


def test_frame_keys_and_span_keys() -> None:
    bins = BinCounts(100, 100)
    assert frame_keys(12, bins) == tuple(9 * i for i in range(12))
    assert frame_keys(100, bins) == tuple(range(100)) and frame_keys(1, bins) == (0,)
    assert len(frame_keys(300, bins)) == 100  # more frames than bins: frames share keys
    keys = frame_keys(12, bins)
    assert span_keys(keys, 0.2, 0.5, bins) == (27, 36, 45)
    assert span_keys(keys, 0.1, 0.15, bins) == (9,)  # no frame inside: the one nearest the middle


# ----------------------------------------------------------------- random weights, well-formed answers


def test_constrained_answers_parse_for_every_task_and_unconstrained_ones_mostly_do_not(st: LlavaST, media) -> None:
    ok = {}
    for constrained in (True, False):
        m = {**media, "kw": dict(max_new_tokens=70, constrained=constrained)}
        for task, call in TASK_CALLS.items():
            ans = call(st, m)
            assert ans.task == task
            ok[task, constrained] = ans.ok
            if constrained:
                assert ans.ok, f"{task}: {ans.result}"
                assert 1 <= ans.num_tokens <= 70
    structured = [t for t in TASK_CALLS if t not in ("reg", "tr")]
    assert sum(not ok[t, False] for t in structured) >= len(structured) - 1  # the random model is not well-formed


def test_tracks_list_the_frames_of_their_span(st: LlavaST, media) -> None:
    ans = st.track(media["video"], "the bright frame", max_new_tokens=200)
    span, track = ans.result.span, ans.result.track
    keys = [f.key for f in track.frames]
    bins = st.config.coords.bins
    expected = [k for k in frame_keys(T, bins) if value_to_bin("TEMP", span.start, bins) <= k <= value_to_bin("TEMP", span.end, bins)]
    assert keys == expected and keys
    svg = st.boxes_in_span(media["video"], "the frame", 0.5, 2.0, max_new_tokens=200)
    s, e = (round(float(svg.timeline.to_normalised(x)), 3) for x in (0.5, 2.0))
    assert [f.key for f in svg.result.track.frames] == list(span_keys(frame_keys(T, bins), s, e, bins))
    elc = st.caption_event(media["video"], 1.0, [8, 6, 40, 30], max_new_tokens=200)
    assert elc.ok and elc.result.span.end >= elc.result.span.start


def test_the_answer_parses_on_any_budget_that_holds_one(st: LlavaST, media) -> None:
    program = st.grammar_program()
    for task in ("tvg", "stvg", "elc", "dvc", "dgc"):
        need = int(program.need[program.entries[task]])
        for budget in (need, need + 5):
            m = {**media, "kw": dict(max_new_tokens=budget)}
            ans = TASK_CALLS[task](st, m)
            assert ans.ok and ans.num_tokens <= budget, (task, budget, ans.result)
        with pytest.raises(GrammarError, match=f"max_new_tokens={need - 1} is too small .* {need} tokens"):
            TASK_CALLS[task](st, {**media, "kw": dict(max_new_tokens=need - 1)})


def test_sampled_answers_parse_too(st: LlavaST, media) -> None:
    for seed in range(3):
        m = {**media, "kw": dict(max_new_tokens=60, do_sample=True, temperature=1.5, seed=seed)}
        for task in ("tvg", "rec", "stvg", "dvc", "dgc"):
            ans = TASK_CALLS[task](st, m)
            assert ans.ok, (task, seed, ans.result)


def test_every_decoder_writes_the_same_constrained_answers(st: LlavaST, media) -> None:
    """Chunked feeds of forced runs: eager, static and (where torch.compile runs) compiled decoders agree."""
    from llava_st.model.static_decode import compile_available

    decoders = ["static"] + (["compiled"] if compile_available(st.model.device) is None else [])
    for task in ("stvg", "elc", "dvc"):
        a = TASK_CALLS[task](st, {**media, "kw": dict(max_new_tokens=60, decoder="eager")})
        assert a.ok
        for decoder in decoders:
            b = TASK_CALLS[task](st, {**media, "kw": dict(max_new_tokens=60, decoder=decoder)})
            assert a.text == b.text, (task, decoder)


def test_a_batch_mixes_constrained_and_free_requests(st: LlavaST, media) -> None:
    from llava_st.protocol import prompts

    reqs = [
        Request(media["video"], prompts.stvg("the bright frame"), task="stvg", constrained=True),
        Request(media["video"], "What happens?"),
        Request(media["image"], prompts.rec("the grey area"), task="rec", constrained=True),
        Request(media["image"], prompts.rec("the grey area"), task="rec"),  # a task, but not constrained
    ]
    batch = st.ask_batch(reqs, batch_size=4, num_workers=0, max_new_tokens=50)
    stats = st.last_stats
    for req, ans in zip(reqs, batch):
        alone = st.ask_request(req, max_new_tokens=50)
        assert ans.text == alone.text
    assert batch[0].ok and batch[2].ok
    # the grammar writes brackets, separators and frame keys itself: fewer calls than tokens
    assert stats.forced_tokens > 0
    assert stats.model_calls < max(a.num_tokens for a in batch)


def test_requests_say_what_a_constraint_needs() -> None:
    with pytest.raises(ProtocolError, match="needs a task"):
        Request("x.mp4", "What?", constrained=True)
    with pytest.raises(ProtocolError, match="needs the span"):
        Request("x.mp4", "Where?", task="svg", constrained=True)
    with pytest.raises(ProtocolError, match="needs the start"):
        Request("x.mp4", "Where?", task="elc", constrained=True)


def test_compiler_checks_texts_round_trip(st: LlavaST) -> None:
    compiler = GrammarCompiler(st.processor.tokenizer, st.config.text.vocab_size, st.config.coords.bins,
                               st.config.token_ids.eos)
    assert compiler.tokens(" {") and compiler.exit_split("  [")[1] == []
    with pytest.raises(GrammarError, match="no visible token"):
        compiler.exit_split("   ")
