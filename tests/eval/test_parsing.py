"""The release's parsers on the variants EVAL-PROTOCOL §1-§3 lists."""

from __future__ import annotations

import pytest

from llava_st.protocol.bins import release_rewrite
from llava_st.protocol.tokens import RELEASE_BINS as R, BinCounts
from llava_st.eval.parsing import release_box, release_end_caption, release_pairs, release_span, release_texts


def conv(text: str) -> str:
    return release_texts(text, R).converted


def test_release_texts_from_either_form_agree():
    tokens = "During {<TEMP-012><TEMP-045>}. <TEMP-012>:[<WIDTH-036><HEIGHT-037><WIDTH-063><HEIGHT-054>]"
    a, b = release_texts(tokens, R), release_texts(release_rewrite(tokens, R), R)
    assert a == b
    assert a.converted == "During {0.12121,0.45455}. 0.12121,:[0.36364,0.37374,0.63636,0.54545]"
    assert a.integer == "During {12,45}. 12,:[36,37,63,54]"
    assert a.outputs == tokens


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("[<WIDTH-036><HEIGHT-037><WIDTH-063><HEIGHT-054>]", [0.36364, 0.37374, 0.63636, 0.54545]),
        ("[0.1, 0.2, 0.5, 0.6]", [0.1, 0.2, 0.5, 0.6]),  # plain decimals parse
        ("the box [ 0.1 , 0.2, 0.5, 0.6 ] here", [0.1, 0.2, 0.5, 0.6]),  # spaces deleted first
        ("[0.1,\n0.2,0.5,0.6]", [0.1, 0.2, 0.5, 0.6]),  # a newline after a comma is fine
        ("[2, 3, 4, 5] then [0.1, 0.2, 0.5, 0.6]", [2.0, 3.0, 4.0, 5.0]),  # the first, unchecked
    ],
)
def test_release_box_parses(answer, expected):
    assert release_box(conv(answer)) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "[<WIDTH-036>,<HEIGHT-037>,<WIDTH-063>,<HEIGHT-054>]",  # commas between tokens -> ',,'
        "[<WIDTH-036><HEIGHT-037><WIDTH-063><HEIGHT-054> ]",  # space before ] -> '0.54545,]' after deletion
        "[<WIDTH-036><HEIGHT-037><WIDTH-063>]",  # three numbers
        "",
        "[-0.1, 0.2, 0.5, 0.6]",  # no sign in the grammar
        "[0.1\n, 0.2, 0.5, 0.6]",  # whitespace before a comma
    ],
)
def test_release_box_fails(answer):
    assert release_box(conv(answer)) is None


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("{<TEMP-012><TEMP-045>}", [0.12121, 0.45455]),
        ("{ 0.1,  0.2 }", [0.1, 0.2]),
        ("{0.1,\t0.2}", [0.1, 0.2]),
        ("{<TEMP-000><TEMP-000>}", [0.0, 0.0]),
    ],
)
def test_release_span_parses(answer, expected):
    assert release_span(conv(answer)) == (expected, True)


@pytest.mark.parametrize(
    "answer",
    [
        "{<TEMP-012>,<TEMP-045>}",  # commas between tokens
        "{<TEMP-012><TEMP-045> }",  # '0.45455, }'
        "{0.1 , 0.2}",  # space before the comma
        "{<TEMP-012>}",  # one number
        "",
        "Ends in <TEMP-080>, a dog.",  # ELC's answer has no span
    ],
)
def test_release_span_fails_to_zero_zero(answer):
    assert release_span(conv(answer)) == ([0, 0], False)


def test_release_pairs_last_key_wins_and_ignores_malformed_pairs():
    answer = (
        "<TEMP-010>:[<WIDTH-001><HEIGHT-002><WIDTH-003><HEIGHT-004>], "
        "<TEMP-011>: [<WIDTH-001><HEIGHT-002><WIDTH-003>], "  # three values: ignored
        "12: [0.1, 0.2, 0.3, 0.4], "  # plain-number key (no comma): ignored
        "<TEMP-010>:[<WIDTH-005><HEIGHT-006><WIDTH-007><HEIGHT-008>], "  # duplicate key: overwrites
        "<TEMP-013>:[<WIDTH-001>,<HEIGHT-002>,<WIDTH-003>,<HEIGHT-004>]"  # commas between tokens: ignored
    )
    for form in (answer, release_rewrite(answer, R)):
        assert release_pairs(release_texts(form, R).integer) == {10.0: [5.0, 6.0, 7.0, 8.0]}


def test_release_end_caption_quirks():
    assert release_end_caption("Ends in <TEMP-080>, a child runs. Object bounding box: x") == " a child runs"
    # a comma inside the caption keeps only its last clause
    assert release_end_caption("Ends in <TEMP-080>, a man, who is tall, sits. Object") == " sits"
    # an abbreviation truncates it
    assert release_end_caption("Ends in <TEMP-080>, Mr. Smith waves.") == " Mr"
    # no '.' at all: the tail after the last comma, bin tokens included
    assert release_end_caption("Ends in <TEMP-080>, a dog <TEMP-001>:[<WIDTH-001>") == " a dog <TEMP-001>:[<WIDTH-001>"


def test_release_texts_take_the_bin_counts():
    # with 10 time bins <TEMP-003> is 3 / 9; the decimal form reads back with the same counts
    counts = BinCounts(10, 20)
    tokens = "{<TEMP-003><TEMP-009>} [<WIDTH-019><HEIGHT-000><WIDTH-019><HEIGHT-010>]"
    a = release_texts(tokens, counts)
    assert a.converted == "{" + f"{3 / 9:.5f},1.00000" + "} [1.00000,0.00000,1.00000," + f"{10 / 19:.5f}" + "]"
    assert release_texts(a.converted, counts) == a
    with pytest.raises(TypeError):
        release_texts(tokens)  # type: ignore[call-arg]
