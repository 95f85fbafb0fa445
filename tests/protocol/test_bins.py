"""Model -> text (SPEC §1, §2.9, §3): bin tokens <-> values, the release's decimal rewrite and its inverse."""

from __future__ import annotations

import inspect
import random

import pytest

from llava_st.config import CoordConfig
from llava_st.errors import ConfigError, ProtocolError
from llava_st.protocol import answers, bins, coords, timebase, tokens
from llava_st.protocol.answers import ParseFailure, parse_answer
from llava_st.protocol.bins import bin_to_value, bin_values, find_bins, release_rewrite, to_token_form, value_to_bin
from llava_st.protocol.coords import CoordinateError
from llava_st.protocol.tokens import BIN_TOKEN_RE, RELEASE_BINS, BinCounts, bin_token, bin_tokens, read_bin_token

R = RELEASE_BINS


# ------------------------------------------------------------ BinCounts


def test_bin_counts_come_from_the_model_config():
    assert CoordConfig().bins == BinCounts(100, 100) == RELEASE_BINS == BinCounts.uniform(100)
    c = CoordConfig(num_temporal_bins=50, num_spatial_bins=20)
    assert c.bins == BinCounts(time=50, space=20) and c.bins.total == c.num_bins == 90
    assert c.bins.of("TEMP") == 50 and c.bins.of("HEIGHT") == c.bins.of("WIDTH") == 20
    with pytest.raises(ValueError):
        c.bins.of("DEPTH")


@pytest.mark.parametrize("bad", [(1, 10), (10, 0), (2.0, 10), (True, 10), ("10", 10)])
def test_bin_counts_reject_unusable_counts(bad):
    with pytest.raises(ConfigError):
        BinCounts(*bad)


def test_bin_counts_parse_the_command_line_forms():
    assert BinCounts.parse("100") == RELEASE_BINS
    assert BinCounts.parse("50,20") == BinCounts(50, 20)
    assert BinCounts.parse(" 7 , 9 ") == BinCounts(7, 9)
    for bad in ("", "a", "1", "5,5,5", "-5", "5.0"):
        with pytest.raises(ConfigError):
            BinCounts.parse(bad)


def test_bin_counts_are_frozen_and_hashable():
    b = BinCounts(10, 20)
    with pytest.raises(AttributeError):
        b.time = 5  # type: ignore[misc]
    assert {b: 1}[BinCounts(10, 20)] == 1


# ------------------------------------------------------------ no default count anywhere


CALLS = [
    lambda: bin_tokens(),
    lambda: bin_to_value("TEMP", 3),
    lambda: value_to_bin("TEMP", 0.5),
    lambda: bin_values("<TEMP-001>"),
    lambda: release_rewrite("<TEMP-001>"),
    lambda: to_token_form("{0.12121,0.5}"),
    lambda: parse_answer("{0.1, 0.2}", "tvg"),
    lambda: answers.find_span("{0.1, 0.2}"),
    lambda: answers.find_spans("{0.1, 0.2}"),
    lambda: answers.find_box("[0, 0, 1, 1]"),
    lambda: answers.find_boxes("[0, 0, 1, 1]"),
    lambda: answers.find_track("<TEMP-001>:[0, 0, 1, 1]"),
    lambda: answers.find_end("Ends in 0.5"),
    lambda: answers.find_elc_caption("Ends in 0.5, a dog."),
    lambda: timebase.sampled_position(3, num_frames=10),
]


@pytest.mark.parametrize("call", CALLS)
def test_calling_without_bin_counts_is_a_type_error(call):
    with pytest.raises(TypeError):
        call()


def test_no_protocol_signature_defaults_a_bin_count():
    for module in (tokens, coords, bins, answers, timebase):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__:
                continue
            for p in inspect.signature(fn).parameters.values():
                if "bin" in p.name:
                    assert p.default is inspect.Parameter.empty, f"{module.__name__}.{name}({p.name}=...)"


# ------------------------------------------------------------ the one bin-token pattern


def test_bin_token_pattern_reads_what_bin_token_writes():
    for axis in ("TEMP", "HEIGHT", "WIDTH"):
        for k in (0, 7, 99, 120, 1234):
            assert read_bin_token(bin_token(axis, k)) == (axis, k)
    assert read_bin_token("<TEMP-INPUT>") is None and read_bin_token("<TEMP-012> ") is None
    assert read_bin_token("<TEMP-7>") == ("TEMP", 7)
    assert [m.group(0) for m in BIN_TOKEN_RE.finditer("<t0.4><HEIGHT-002><WIDTH-OUTPUT0.5>")] == ["<HEIGHT-002>"]


def test_bin_tokens_are_in_id_order():
    names = bin_tokens(BinCounts(2, 3))
    assert names == ["<TEMP-000>", "<TEMP-001>"] + [f"<HEIGHT-00{k}>" for k in range(3)] + [f"<WIDTH-00{k}>" for k in range(3)]


def test_the_bin_pattern_is_defined_once():
    for module in (coords, bins, answers):
        src = inspect.getsource(module)
        assert r"-(\d+)>" not in src and r"-\d+>" not in src, module.__name__


# ------------------------------------------------------------ bins <-> values


@pytest.mark.parametrize("counts", [BinCounts(2, 2), BinCounts(10, 20), RELEASE_BINS, BinCounts(37, 5)])
def test_bins_map_to_values_and_back_on_every_axis(counts):
    for axis in ("TEMP", "HEIGHT", "WIDTH"):
        n = counts.of(axis)
        for k in range(n):
            v = bin_to_value(axis, k, counts)
            assert v == k / (n - 1)
            assert value_to_bin(axis, v, counts) == k
        assert bin_to_value(axis, 0, counts) == 0.0 and bin_to_value(axis, n - 1, counts) == 1.0


def test_bin_conversion_errors_are_protocol_errors():
    with pytest.raises(CoordinateError, match=r"<TEMP-100> is outside 0\.\.99"):
        bin_to_value("TEMP", 100, R)
    with pytest.raises(CoordinateError, match=r"outside 0\.\.19"):
        bin_to_value("WIDTH", 20, BinCounts(100, 20))
    with pytest.raises(ProtocolError):
        value_to_bin("HEIGHT", 1.2, R)
    with pytest.raises(ProtocolError):
        value_to_bin("HEIGHT", float("nan"), R)


def test_value_to_bin_rounds_to_the_nearest_bin():
    assert value_to_bin("TEMP", 0.5, R) == 50  # 49.5 -> 50 (ties to even)
    assert value_to_bin("TEMP", 0.2, R) == 20  # 19.8
    assert value_to_bin("WIDTH", 0.5, BinCounts(100, 20)) == 10  # 9.5 -> 10 (ties to even)
    assert value_to_bin("WIDTH", 0.47, BinCounts(100, 20)) == 9  # 8.93


def test_find_bins_and_bin_values():
    text = "{<TEMP-000><TEMP-009>} [<WIDTH-019><HEIGHT-010>,"
    assert [(a, k) for a, k, _, _ in find_bins(text)] == [("TEMP", 0), ("TEMP", 9), ("WIDTH", 19), ("HEIGHT", 10)]
    assert find_bins("{<TEMP-003><TEMP-009>}")[0] == ("TEMP", 3, 1, 11)
    assert bin_values(text, BinCounts(10, 20)) == [("TEMP", 0.0), ("TEMP", 1.0), ("WIDTH", 1.0), ("HEIGHT", 10 / 19)]
    with pytest.raises(CoordinateError):
        bin_values("<TEMP-010>", BinCounts(10, 20))


# ------------------------------------------------------------ the release's decimal text


def test_release_rewrite_writes_five_decimals_and_closes_commas():
    out = release_rewrite("{<TEMP-012><TEMP-056>} and [<WIDTH-001><HEIGHT-002><WIDTH-003><HEIGHT-099>].", R)
    expected = "{" + f"{12 / 99:.5f},{56 / 99:.5f}" + "} and [" + ",".join(f"{k / 99:.5f}" for k in (1, 2, 3, 99)) + "]."
    assert out == expected
    assert release_rewrite("{<TEMP-012><TEMP-056>}", R, integer=True) == "{12,56}"


def test_release_rewrite_with_per_axis_bins():
    out = release_rewrite("<TEMP-003><HEIGHT-010>", BinCounts(10, 20))
    assert out == f"{3 / 9:.5f},{10 / 19:.5f},"


def _random_answer(rng: random.Random, counts: BinCounts) -> str:
    nt, ns = counts.time, counts.space
    box = lambda: f"[{bin_token('WIDTH', rng.randrange(ns))}{bin_token('HEIGHT', rng.randrange(ns))}" \
        f"{bin_token('WIDTH', rng.randrange(ns))}{bin_token('HEIGHT', rng.randrange(ns))}]"  # noqa: E731
    parts = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["span", "box", "pair", "end", "text"])
        if kind == "span":
            parts.append("{" + bin_token("TEMP", rng.randrange(nt)) + bin_token("TEMP", rng.randrange(nt)) + "}")
        elif kind == "box":
            parts.append(box())
        elif kind == "pair":
            parts.append(bin_token("TEMP", rng.randrange(nt)) + ":" + box() + ",")
        elif kind == "end":
            parts.append(f"Ends in {bin_token('TEMP', rng.randrange(nt))}, a cat.")
        else:
            parts.append(rng.choice(["a man walks.", "then, he sits", "Object bounding box:"]))
    return " ".join(parts)


@pytest.mark.parametrize("counts", [RELEASE_BINS, BinCounts(50, 20), BinCounts(7, 300)])
def test_rewrite_and_its_inverse_round_trip(counts):
    rng = random.Random(11)
    for _ in range(100):
        text = _random_answer(rng, counts)
        decimal = release_rewrite(text, counts)
        assert to_token_form(decimal, counts) == text
        assert release_rewrite(to_token_form(decimal, counts), counts) == decimal
        assert to_token_form(decimal + "<|im_end|>", counts) == text


# ------------------------------------------------------------ end to end with counts other than 100


def test_a_non_release_bin_count_works_end_to_end():
    from llava_st.protocol.timebase import Timeline

    counts = CoordConfig(num_temporal_bins=50, num_spatial_bins=20).bins
    # values -> bins -> the model's answer -> the release's decimals -> parsed back to the same values
    s, e = value_to_bin("TEMP", 0.25, counts), value_to_bin("TEMP", 1.0, counts)
    box = [value_to_bin(a, v, counts) for a, v in zip(("WIDTH", "HEIGHT") * 2, (0.0, 0.3, 1.0, 0.5))]
    track_box = "[" + "".join(bin_token(a, k) for a, k in zip(("WIDTH", "HEIGHT") * 2, box)) + "]"
    text = "{" + bin_token("TEMP", s) + bin_token("TEMP", e) + "} " + bin_token("TEMP", 24) + ":" + track_box
    decimal = release_rewrite(text, counts)
    tl = Timeline.from_split((0, 99), 25, width=200, height=100, fps=10.0)
    a = parse_answer(text, "stvg", bins=counts, timeline=tl)
    b = parse_answer(decimal, "stvg", bins=counts, timeline=tl)
    assert a.ok and b.ok
    assert (a.span.start, a.span.end) == (s / 49, 1.0) == (b.span.start, b.span.end)
    frame = a.track.frames[0]
    assert frame.key == 24 and frame.time == 24 / 49 and frame.frame == round(24 / 49 * 24)
    assert frame.box.xyxy == tuple(k / 19 for k in box) == b.track.frames[0].box.xyxy
    # the same text read with the release's counts means something else
    assert parse_answer(text, "stvg", bins=RELEASE_BINS).span.start == s / 99
    # a bin beyond this model's 20 space bins is a failure, not a guess
    bad = parse_answer("[<WIDTH-020><HEIGHT-000><WIDTH-021><HEIGHT-001>]", "rec", bins=counts)
    assert isinstance(bad, ParseFailure) and "outside 0..19" in bad.reason
