"""Typed answers: every task grammar, failures, both text forms, seconds and pixels through a timeline."""

from __future__ import annotations

import random

import pytest

from llava_st.protocol.answers import (
    Caption,
    DenseEvents,
    EventLocalization,
    GroundedCaption,
    Grounding,
    ParseFailure,
    SpatialGrounding,
    SpatioTemporalGrounding,
    TemporalGrounding,
    Timeline,
    find_boxes,
    find_elc_caption,
    find_span,
    find_spans,
    find_track,
    parse_answer,
)
from llava_st.protocol.bins import release_rewrite, to_token_form
from llava_st.protocol.tokens import RELEASE_BINS, BinCounts

R = RELEASE_BINS

NTSC = 30000 / 1001  # 29.97... fps


def box_tokens(x1: int, y1: int, x2: int, y2: int) -> str:
    return f"[<WIDTH-{x1:03d}><HEIGHT-{y1:03d}><WIDTH-{x2:03d}><HEIGHT-{y2:03d}>]"


# ----------------------------------------------------------------- grammars

STVG = (
    "During the span of {<TEMP-012><TEMP-045>}. Object bounding box: "
    f"<TEMP-012>:{box_tokens(36, 37, 63, 54)}, <TEMP-013>:{box_tokens(36, 37, 63, 55)}"
)


def test_stvg_with_timeline_seconds_pixels_frames():
    tl = Timeline.from_split((30, 129), 100, width=640, height=360, fps=NTSC, start_time=0.5)
    ans = parse_answer(STVG, "stvg", bins=R, timeline=tl)
    assert isinstance(ans, SpatioTemporalGrounding)
    assert (ans.span.start, ans.span.end) == (12 / 99, 45 / 99)
    assert ans.span.start_s == pytest.approx(0.5 + 42 * 1001 / 30000)
    assert ans.span.end_s == pytest.approx(0.5 + 75 * 1001 / 30000)
    assert ans.track.keys == (12, 13)
    f12 = ans.track.frames[0]
    assert (f12.frame, f12.frame_id) == (12, 42)
    assert f12.seconds == pytest.approx(0.5 + 42 * 1001 / 30000)
    assert f12.box.xyxy == (36 / 99, 37 / 99, 63 / 99, 54 / 99)
    assert f12.box.pixels == pytest.approx((36 / 99 * 640, 37 / 99 * 360, 63 / 99 * 640, 54 / 99 * 360))
    d = ans.to_dict()
    assert d["type"] == "SpatioTemporalGrounding" and d["track"]["frames"][1]["key"] == 13


def test_both_forms_parse_identically_for_every_grammar():
    texts = {
        "tvg": "{<TEMP-012><TEMP-056>}",
        "rec": "It is at " + box_tokens(10, 20, 30, 40) + ".",
        "stvg": STVG,
        "svg": f"Object bounding box: <TEMP-003>:{box_tokens(1, 2, 3, 4)}, <TEMP-004>:{box_tokens(2, 2, 5, 6)}",
        "elc": f"Ends in <TEMP-080>, a child runs. Object bounding box: <TEMP-070>:{box_tokens(1, 2, 3, 4)}",
        "dvc": "{<TEMP-001><TEMP-020>}, a man walks. {<TEMP-030><TEMP-099>}, he sits down.",
        "dgc": f"A man {box_tokens(1, 2, 30, 40)} rides a horse {box_tokens(5, 5, 90, 90)}.",
    }
    tl = Timeline.from_split((0, 199), 100, width=320, height=240, fps=25.0)
    for task, text in texts.items():
        decimal = release_rewrite(text, R)
        assert decimal != text
        a = parse_answer(text, task, bins=R, timeline=tl, start=0.5 if task == "elc" else None)
        b = parse_answer(decimal, task, bins=R, timeline=tl, start=0.5 if task == "elc" else None)
        assert a.ok and b.ok, (task, a, b)
        da, db = a.to_dict(), b.to_dict()
        da.pop("text"), db.pop("text")
        assert da == db, task


def test_grammar_results():
    elc = parse_answer(f"Ends in <TEMP-080>, a child runs. Object bounding box: <TEMP-070>:{box_tokens(1, 2, 3, 4)}", "elc", bins=R, start=0.25)
    assert isinstance(elc, EventLocalization)
    assert elc.end.value == 80 / 99 and elc.caption == "a child runs."
    assert (elc.span.start, elc.span.end) == (0.25, 80 / 99)
    dvc = parse_answer("{0.1, 0.6}, a man walks. {<TEMP-050><TEMP-090>}, he sits.", "dvc", bins=R)
    assert isinstance(dvc, DenseEvents)
    assert [(e.span.start, e.span.end, e.caption) for e in dvc.events] == [
        (0.1, 0.6, "a man walks."),
        (50 / 99, 90 / 99, "he sits."),
    ]
    dgc = parse_answer("A man [0.1, 0.2, 0.3, 0.4] rides a horse [0.5, 0.5, 0.9, 0.9].", "dgc", bins=R)
    assert isinstance(dgc, GroundedCaption)
    assert [p.text for p in dgc.phrases] == ["A man", "rides a horse"]
    assert dgc.phrases[1].box.xyxy == (0.5, 0.5, 0.9, 0.9)
    assert dgc.caption == "A man rides a horse."
    reg = parse_answer("  a red car.<|im_end|>", "reg", bins=R)
    assert isinstance(reg, Caption) and reg.caption == "a red car."
    tr = parse_answer("people dance", "tr", bins=R)
    assert isinstance(tr, Caption) and tr.task == "tr"
    svg = parse_answer(f"<TEMP-003>:{box_tokens(1, 2, 3, 4)}", "svg", bins=R)
    assert isinstance(svg, SpatialGrounding) and svg.track.keys == (3,)
    assert isinstance(parse_answer("{0.2,0.5}", "tvg", bins=R), TemporalGrounding)
    assert isinstance(parse_answer("[0, 0, 1, 1]", "rec", bins=R), Grounding)


@pytest.mark.parametrize(
    "text",
    [
        "{<TEMP-012>, <TEMP-045>}",  # comma between tokens
        "{<TEMP-012><TEMP-045> }",  # space before }
        "{ <TEMP-012> <TEMP-045> }",
        "{0.12121212121212122,0.45454545454545453}",
        "{0.12121, 0.45455}",  # the rewrite with a space
    ],
)
def test_span_spacing_and_comma_variants(text):
    ans = parse_answer(text, "tvg", bins=R)
    assert isinstance(ans, TemporalGrounding)
    assert ans.span.start == pytest.approx(12 / 99, abs=1e-14)
    assert ans.span.end == pytest.approx(45 / 99, abs=1e-14)


@pytest.mark.parametrize(
    "text",
    [
        "[<WIDTH-036>,<HEIGHT-037>,<WIDTH-063>,<HEIGHT-054>]",
        "[<WIDTH-036><HEIGHT-037><WIDTH-063><HEIGHT-054> ]",
        "[ <WIDTH-036> <HEIGHT-037> <WIDTH-063> <HEIGHT-054>]",
        release_rewrite("[<WIDTH-036>,<HEIGHT-037>,<WIDTH-063>,<HEIGHT-054>]", R),  # '0.36364,,0.37374,,...'
        release_rewrite("[<WIDTH-036><HEIGHT-037><WIDTH-063><HEIGHT-054> ]", R),  # '..., 0.54545, ]'
    ],
)
def test_box_spacing_and_comma_variants(text):
    ans = parse_answer(text, "rec", bins=R)
    assert isinstance(ans, Grounding), ans
    assert ans.box.xyxy == (36 / 99, 37 / 99, 63 / 99, 54 / 99)


@pytest.mark.parametrize(
    "task,text,reason",
    [
        ("tvg", "", "no {start, end} span"),
        ("tvg", "somewhere in the middle", "no {start, end} span"),
        ("tvg", "{<TEMP-050><TEMP-010>}", "ends before it starts"),
        ("tvg", "{<TEMP-012>}", "no {start, end} span"),
        ("tvg", "{0.2, 1.5}", "outside [0, 1]"),
        ("tvg", "{<TEMP-010><TEMP-150>}", "outside 0..99"),
        ("rec", "[<WIDTH-036><HEIGHT-037><WIDTH-063>]", "no [x1, y1, x2, y2] box"),
        ("rec", "[-0.1, 0.2, 0.3, 0.4]", "no [x1, y1, x2, y2] box"),
        ("rec", "[0.5, 0.2, 0.3, 0.4]", "ends before it starts"),
        ("stvg", "{<TEMP-010><TEMP-020>}", "no 'key: [x1, y1, x2, y2]' frame boxes"),
        ("stvg", f"<TEMP-010>:{box_tokens(1, 2, 3, 4)}", "no {start, end} span"),
        ("svg", f"<TEMP-010>:{box_tokens(1, 2, 3, 4)}, <TEMP-010>:{box_tokens(1, 2, 3, 5)}", "given twice"),
        ("elc", f"a dog. <TEMP-010>:{box_tokens(1, 2, 3, 4)}", "no 'Ends in <time>'"),
        ("elc", f"Ends in <TEMP-080>, Object bounding box: <TEMP-010>:{box_tokens(1, 2, 3, 4)}", "no event caption"),
        ("dvc", "a man walks", "no {start, end} span"),
        ("dvc", "{0.1, 0.2}", "has no caption"),
        ("dgc", "a man rides a horse", "no [x1, y1, x2, y2] box"),
        ("reg", "   ", "empty answer"),
    ],
)
def test_failures_carry_text_and_reason(task, text, reason):
    ans = parse_answer(text, task, bins=R)
    assert isinstance(ans, ParseFailure)
    assert ans.text == text and reason in ans.reason and ans.task == task
    assert ans.to_dict()["type"] == "ParseFailure"


def test_duplicate_identical_key_counts_once():
    text = f"<TEMP-010>:{box_tokens(1, 2, 3, 4)}, <TEMP-010>:{box_tokens(1, 2, 3, 4)}"
    ans = parse_answer(text, "svg", bins=R)
    assert isinstance(ans, SpatialGrounding) and ans.track.keys == (10,)


def test_non_text_answer_is_a_failure_and_unknown_task_raises():
    assert isinstance(parse_answer(None, "tvg", bins=R), ParseFailure)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_answer("{0.1,0.2}", "nope", bins=R)


def test_elc_end_before_start_is_a_failure():
    ans = parse_answer(f"Ends in <TEMP-010>, a dog. <TEMP-010>:{box_tokens(1, 2, 3, 4)}", "elc", bins=R, start=0.5)
    assert isinstance(ans, ParseFailure) and "before the given start" in ans.reason


def test_elc_caption_cut_at_first_pair_without_object_phrase():
    assert find_elc_caption(f"Ends in <TEMP-010>, a dog barks, loudly <TEMP-011>:{box_tokens(1, 2, 3, 4)}", bins=R) == "a dog barks, loudly"


def test_to_token_form_inverts_the_rewrite_on_random_answers():
    rng = random.Random(7)
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["span", "box", "pair", "end", "text"])
            if kind == "span":
                parts.append(f"{{<TEMP-{rng.randrange(100):03d}><TEMP-{rng.randrange(100):03d}>}}")
            elif kind == "box":
                parts.append(box_tokens(*(rng.randrange(100) for _ in range(4))))
            elif kind == "pair":
                parts.append(f"<TEMP-{rng.randrange(100):03d}>:" + box_tokens(*(rng.randrange(100) for _ in range(4))) + ",")
            elif kind == "end":
                parts.append(f"Ends in <TEMP-{rng.randrange(100):03d}>, a cat.")
            else:
                parts.append(rng.choice(["a man walks.", "then, he sits", "Object bounding box:"]))
        text = " ".join(parts)
        decimal = release_rewrite(text, R)
        assert to_token_form(decimal, R) == text
        assert release_rewrite(to_token_form(decimal, R), R) == decimal


def test_to_token_form_leaves_other_decimals_and_removes_im_end():
    assert to_token_form("{0.5, 0.123456}<|im_end|>", R) == "{0.5, 0.123456}"
    # five decimals that are not a bin value stay plain text
    assert to_token_form("{0.12345,0.5}", R) == "{0.12345,0.5}"


def test_find_all_spans_and_boxes():
    text = "first {<TEMP-010><TEMP-020>} then {0.5, 0.75}; at [0, 0, 0.5, 0.5] and <TEMP-001>:" + box_tokens(1, 2, 3, 4)
    spans = find_spans(release_rewrite(text, R), bins=R)
    assert [(s.start, s.end) for s in spans] == [(10 / 99, 20 / 99), (0.5, 0.75)]
    boxes = find_boxes(text, bins=R)
    assert [b.xyxy for b in boxes] == [(0.0, 0.0, 0.5, 0.5), (1 / 99, 2 / 99, 3 / 99, 4 / 99)]
    assert find_spans("nothing", bins=R) == () and find_boxes("nothing", bins=R) == ()
    assert isinstance(find_spans("{0.5, 0.25}", bins=R), ParseFailure)
    assert isinstance(find_boxes("[0.5, 0, 0.25, 1]", bins=R), ParseFailure)


def test_time_and_space_axes_may_have_different_bin_counts():
    bins = BinCounts(50, 20)
    text = "{<TEMP-012><TEMP-049>} <TEMP-024>:[<WIDTH-000><HEIGHT-006><WIDTH-019><HEIGHT-010>]"
    ans = parse_answer(text, "stvg", bins=bins)
    assert (ans.span.start, ans.span.end) == (12 / 49, 1.0)
    frame = ans.track.frames[0]
    assert frame.time == 24 / 49 and frame.box.xyxy == (0.0, 6 / 19, 1.0, 10 / 19)
    decimal = release_rewrite(text, bins)
    assert to_token_form(decimal, bins) == text
    assert parse_answer(decimal, "stvg", bins=bins) == parse_answer(text, "stvg", bins=bins).__class__(
        text=decimal, span=ans.span, track=ans.track)
    bad = parse_answer("[<WIDTH-020><HEIGHT-000><WIDTH-001><HEIGHT-001>]", "rec", bins=bins)
    assert isinstance(bad, ParseFailure) and "outside 0..19" in bad.reason


@pytest.mark.parametrize("task", ["tvg", "rec", "stvg", "svg", "elc", "dvc", "dgc"])
def test_parse_answer_normalises_the_text_once(monkeypatch, task):
    import llava_st.protocol.answers as answers_module

    calls = []
    real = answers_module.to_token_form

    def counting(text, bins):
        calls.append(text)
        return real(text, bins)

    monkeypatch.setattr(answers_module, "to_token_form", counting)
    text = (
        "Ends in <TEMP-080>, a child runs. {<TEMP-010><TEMP-020>}, it sits. A dog "
        f"{box_tokens(1, 2, 3, 4)} Object bounding box: <TEMP-070>:{box_tokens(1, 2, 3, 4)}<|im_end|>"
    )
    ans = parse_answer(release_rewrite(text, R), task, bins=R, start=0.5 if task == "elc" else None)
    assert ans.ok, ans
    assert len(calls) == 1
    # the result is the same as reading the token form
    assert ans.to_dict() | {"text": None} == parse_answer(text, task, bins=R, start=0.5 if task == "elc" else None).to_dict() | {"text": None}


def test_find_functions_read_either_form_like_parse_answer():
    text = STVG + "<|im_end|>"
    decimal = release_rewrite(STVG, R)
    for form in (text, decimal):
        ans = parse_answer(form, "stvg", bins=R)
        assert find_span(form, "stvg", bins=R) == ans.span
        assert find_track(form, "stvg", bins=R) == ans.track
        assert find_boxes(form, bins=R) == tuple(f.box for f in ans.track.frames)
