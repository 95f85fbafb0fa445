"""The text-side coordinate protocol (SPEC §3): markup -> placeholders + values, and values -> markup."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from llava_st.protocol.coords import (
    CoordinateError,
    Variables,
    convert_conversation,
    count_placeholders,
    extract_variables,
    format_box,
    format_coordinates,
    format_span,
    format_value,
    insert_values,
    round3,
    to_placeholders,
)
from llava_st.protocol.tokens import VARIABLE_KEYS


def exact_round3(value: float) -> float:
    """Reference rounding: the float's exact binary value to 3 decimals, ties to even."""
    return float(Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN))


# --------------------------------------------------------------- rounding


@pytest.mark.parametrize("value", [0.3125, 0.0625, 0.1875, 0.0005, 0.0015, 0.2345, 0.9995, 0.12345, 0.5, 1.0, 0.0])
def test_round3_matches_exact_binary_rounding(value):
    assert round3(value) == exact_round3(value)


def test_round3_ties_go_to_even_on_exact_halves():
    # 0.3125 and 0.0625 are exact binary ties: they go to the even last digit
    assert round3(0.3125) == 0.312
    assert round3(0.0625) == 0.062
    assert round3(0.1875) == 0.188


# ------------------------------------------------------------ formatting


def test_box_becomes_width_height_placeholders_with_a_space_before():
    out = format_coordinates("at [0.3125, 0.25, 0.5, 0.5].", "OUTPUT")
    a, b, c, d = (str(exact_round3(v)) for v in (0.3125, 0.25, 0.5, 0.5))
    assert out == f"at  [<WIDTH-OUTPUT{a}><HEIGHT-OUTPUT{b}><WIDTH-OUTPUT{c}><HEIGHT-OUTPUT{d}>]."


def test_span_becomes_time_placeholders_with_spaces_around():
    assert format_coordinates("during {0.2, 0.6}?", "INPUT") == "during  {<TEMP-INPUT0.2><TEMP-INPUT0.6>} ?"


def test_spacing_variants_inside_markup_are_accepted():
    assert format_coordinates("{ 0.2 ,0.6 }", "INPUT") == " {<TEMP-INPUT0.2><TEMP-INPUT0.6>} "
    assert format_coordinates("[0.1,0.2 , 0.5,0.7 ]", "INPUT") == (
        " [<WIDTH-INPUT0.1><HEIGHT-INPUT0.2><WIDTH-INPUT0.5><HEIGHT-INPUT0.7>]"
    )


def test_edge_values_are_written_as_python_floats():
    out = format_coordinates("It is visible {0, 1} here", "OUTPUT")
    assert out == "It is visible  {<TEMP-OUTPUT0.0><TEMP-OUTPUT1.0>}  here"


def test_starts_in():
    assert format_coordinates("Starts in 0.5912.", "INPUT") == f" Starts in <TEMP-INPUT{exact_round3(0.5912)}> ."


def test_leading_dot_numbers_are_recognised():
    assert format_coordinates("{.2, .6}", "INPUT") == " {<TEMP-INPUT0.2><TEMP-INPUT0.6>} "


def test_short_tags_are_converted_in_place_keeping_their_punctuation():
    out = format_coordinates("{<t0.4>,<t0.6>} and [<w0.1234>,<h0.35>,<w0.4>,<h0.9>]", "INPUT")
    assert out == (
        "{<TEMP-INPUT0.4>,<TEMP-INPUT0.6>} and "
        f"[<WIDTH-INPUT{exact_round3(0.1234)}>,<HEIGHT-INPUT0.35>,<WIDTH-INPUT0.4>,<HEIGHT-INPUT0.9>]"
    )


def test_tags_that_do_not_start_like_numbers_are_not_coordinates():
    text = "<think> a <td> cell and <what> </t>"
    assert format_coordinates(text, "INPUT") == text


def test_placeholder_with_value_passes_unchanged_and_keeps_full_precision():
    text = "During {<TEMP-INPUT0.41234><TEMP-INPUT0.6>} here"
    assert format_coordinates(text, "INPUT") == text
    stripped, values = extract_variables(text)
    assert stripped == "During {<TEMP-INPUT><TEMP-INPUT>} here"
    assert values.temporal_input_locations == [0.41234, 0.6]


def test_io_must_be_input_or_output():
    with pytest.raises(ValueError, match="io must be"):
        format_coordinates("x", "IN")


# ------------------------------------------------------------- extraction


def test_extraction_orders_values_per_kind_by_appearance():
    text = "[<WIDTH-INPUT0.1><HEIGHT-INPUT0.2><WIDTH-INPUT0.5><HEIGHT-INPUT0.7>] then <TEMP-OUTPUT0.3>"
    stripped, v = extract_variables(text)
    assert stripped == "[<WIDTH-INPUT><HEIGHT-INPUT><WIDTH-INPUT><HEIGHT-INPUT>] then <TEMP-OUTPUT>"
    assert v.spatial_width_input_locations == [0.1, 0.5]
    assert v.spatial_height_input_locations == [0.2, 0.7]
    assert v.temporal_output_locations == [0.3]
    assert len(v) == 5


def test_bare_placeholders_and_bin_tokens_are_left_alone():
    text = "{<TEMP-INPUT><TEMP-INPUT>} and <TEMP-012><WIDTH-099>"
    stripped, v = extract_variables(text)
    assert stripped == text
    assert len(v) == 0


def test_count_placeholders_counts_bare_and_valued():
    counts = count_placeholders("<TEMP-INPUT><TEMP-INPUT0.2><WIDTH-OUTPUT0.5><TEMP-012>")
    assert counts["temporal_input_locations"] == 2
    assert counts["spatial_width_output_locations"] == 1
    assert sum(counts.values()) == 3


def test_to_placeholders_composes_format_and_extract():
    text, v = to_placeholders("Where during {0.2, 0.6} is [0.1, 0.2, 0.5, 0.7]?", "INPUT")
    assert text == "Where during  {<TEMP-INPUT><TEMP-INPUT>}  is  [<WIDTH-INPUT><HEIGHT-INPUT><WIDTH-INPUT><HEIGHT-INPUT>]?"
    assert v.to_dict() == {
        "temporal_input_locations": [0.2, 0.6],
        "temporal_output_locations": [],
        "spatial_height_input_locations": [0.2, 0.7],
        "spatial_height_output_locations": [],
        "spatial_width_input_locations": [0.1, 0.5],
        "spatial_width_output_locations": [],
    }


# --------------------------------------------------------- conversations


def test_multi_turn_values_are_collected_turn_after_turn_with_io_by_role():
    turns = [
        {"from": "human", "value": "<video>\nWhen? {0.1, 0.3}"},
        {"from": "gpt", "value": "At {0.2, 0.4} in [0.1, 0.1, 0.2, 0.2]."},
        {"from": "human", "value": "And {0.5, 0.9}?"},
        {"from": "gpt", "value": "Starts in 0.6"},
    ]
    out, v = convert_conversation(turns)
    assert [t["from"] for t in out] == ["human", "gpt", "human", "gpt"]
    assert "<TEMP-OUTPUT>" in out[1]["value"] and "<TEMP-INPUT>" not in out[1]["value"]
    assert v.temporal_input_locations == [0.1, 0.3, 0.5, 0.9]
    assert v.temporal_output_locations == [0.2, 0.4, 0.6]
    assert v.spatial_width_output_locations == [0.1, 0.2]
    assert v.spatial_height_output_locations == [0.1, 0.2]


def test_role_content_turns_are_accepted_and_none_turns_pass_through():
    out, v = convert_conversation([{"role": "user", "content": "{0.2, 0.6}"}, {"role": "assistant", "content": None}])
    assert out[1] == {"role": "assistant", "content": None}
    assert v.temporal_input_locations == [0.2, 0.6]


def test_bare_placeholders_take_given_variables():
    turns = [{"from": "human", "value": "When {<TEMP-INPUT><TEMP-INPUT>}?"}, {"from": "gpt", "value": "[0.1, 0.2, 0.3, 0.4]"}]
    out, v = convert_conversation(turns, variables={"temporal_input_locations": [0.25, 0.75]})
    assert out[0]["value"] == "When {<TEMP-INPUT><TEMP-INPUT>}?"
    assert v.temporal_input_locations == [0.25, 0.75]
    assert v.spatial_width_output_locations == [0.1, 0.3]


def test_values_given_both_ways_for_one_kind_raise():
    turns = [{"from": "human", "value": "{0.2, 0.6} and <TEMP-INPUT>"}]
    with pytest.raises(CoordinateError, match="one way only"):
        convert_conversation(turns, variables={"temporal_input_locations": [0.5]})


@pytest.mark.parametrize("given", [None, {"temporal_input_locations": [0.5]}, {"temporal_input_locations": [0.1, 0.2, 0.3]}])
def test_placeholder_value_count_mismatch_raises_naming_both_counts(given):
    turns = [{"from": "human", "value": "When {<TEMP-INPUT><TEMP-INPUT>}?"}]
    n_given = len((given or {}).get("temporal_input_locations", []))
    with pytest.raises(CoordinateError, match=rf"temporal_input_locations.*2 placeholder.*{n_given} value"):
        convert_conversation(turns, variables=given)


def test_given_variables_without_placeholders_raise():
    with pytest.raises(CoordinateError, match="0 placeholder"):
        convert_conversation([{"from": "human", "value": "no coords"}], variables={"spatial_width_input_locations": [0.3]})


def test_turn_without_keys_raises():
    with pytest.raises(CoordinateError, match="keys"):
        convert_conversation([{"speaker": "human", "text": "x"}])


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, match",
    [
        ("at [0.1, 0.2, 1.5, 0.7] now", "outside"),
        ("at [-0.1, 0.2, 0.5, 0.7] now", "outside"),
        ("during {0.2, 1.01}", "outside"),
        ("during {-0.2, 0.5}", "outside"),
        ("during {0.6, 0.2}", "does not start before"),
        ("during {0.4, 0.4}", "does not start before"),
        ("Starts in 3 seconds", "outside"),
        ("at <t1.2>", "outside"),
        ("at <t0.4s>", "does not hold a number"),
        ("at <w.>", "does not hold a number"),
        ("{<t0.6>,<t0.2>}", "does not start before"),
        ("{<TEMP-INPUT0.6><TEMP-INPUT0.2>}", "does not start before"),
    ],
)
def test_format_errors_name_the_text(text, match):
    with pytest.raises(CoordinateError, match=match) as info:
        format_coordinates(text, "INPUT")
    assert repr(text)[1:-1] in str(info.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("<TEMP-INPT0.2>", "malformed coordinate token"),
        ("<HEIGHT-in>", "malformed coordinate token"),
        ("<WIDTH-OUTPUTabc>", "does not hold a number"),
        ("<WIDTH-OUTPUT 0.2>", "does not hold a number"),
        ("<HEIGHT-INPUT1.5>", "outside"),
        ("<TEMP-OUTPUT-0.1>", "outside"),
    ],
)
def test_extract_errors_name_the_text(text, match):
    full = f"see {text} here"
    with pytest.raises(CoordinateError, match=match) as info:
        extract_variables(full)
    assert full in str(info.value)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"temporal_locations": [0.1]}, "unknown variables keys"),
        ({"temporal_input_locations": ["a"]}, "not a number"),
        ({"temporal_input_locations": [1.2]}, "outside"),
        ({"temporal_input_locations": [float("nan")]}, "outside"),
        ({"temporal_input_locations": 0.3}, "list of numbers"),
    ],
)
def test_variables_from_dict_errors(data, match):
    with pytest.raises(CoordinateError, match=match):
        Variables.from_dict(data)


def test_variables_round_trip_dict():
    data = {key: [i / 10] for i, key in enumerate(VARIABLE_KEYS)}
    assert Variables.from_dict(data).to_dict() == data
    assert Variables.from_dict(None).to_dict() == {key: [] for key in VARIABLE_KEYS}


# --------------------------------------------------------------- inverse


def test_insert_values_inverts_extract_variables():
    markup = "During {<TEMP-INPUT0.2><TEMP-INPUT0.6>} where [<WIDTH-INPUT0.1><HEIGHT-INPUT0.2><WIDTH-INPUT0.5><HEIGHT-INPUT0.7>]"
    stripped, v = extract_variables(markup)
    assert insert_values(stripped, v) == markup
    assert extract_variables(insert_values(stripped, v.to_dict())) == (stripped, v)


def test_insert_values_keeps_every_float_exactly():
    v = Variables(temporal_output_locations=[0.1 + 0.2, 1 / 3])
    text = insert_values("<TEMP-OUTPUT> to <TEMP-OUTPUT>", v)
    assert extract_variables(text)[1].temporal_output_locations == [0.1 + 0.2, 1 / 3]


def test_insert_values_count_mismatch_raises():
    with pytest.raises(CoordinateError, match="1 bare placeholder.*2 value"):
        insert_values("<TEMP-INPUT>", {"temporal_input_locations": [0.1, 0.2]})


# ------------------------------------------------------------ values -> markup


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5, 0.3125, 0.0625, 0.1875, 0.0005, 1 / 3, 0.999, 0.9996, 12 / 99])
def test_format_value_writes_the_release_rounding(value):
    assert format_value(value) == str(exact_round3(value))
    assert float(format_value(value)) == round3(value)


def test_format_span_and_box_are_the_markup_that_is_read_back():
    assert format_span(0.2, 0.6) == "{0.2, 0.6}"
    assert format_box([0.1, 0.2, 0.5, 0.7]) == "[0.1, 0.2, 0.5, 0.7]"
    assert format_box((0.3125, 0, 1, 0.5)) == "[0.312, 0.0, 1.0, 0.5]"
    # what the formatter writes, the markup reader reads back to the same rounded values
    text, v = to_placeholders(f"when {format_span(0.12345, 0.6789)} at {format_box([0.3125, 0.25, 0.5, 0.5])}", "INPUT")
    assert v.temporal_input_locations == [round3(0.12345), round3(0.6789)]
    assert v.spatial_width_input_locations == [0.312, 0.5] and v.spatial_height_input_locations == [0.25, 0.5]


def test_one_formatter_behind_prompts_and_synth():
    from llava_st.protocol import prompts

    assert prompts.tr(0.2, 0.6) == f"What happens in the video during {format_span(0.2, 0.6)}?"
    assert format_box([0.1, 0.2, 0.3, 0.4]) in prompts.reg([0.1, 0.2, 0.3, 0.4])
    assert f"Starts in {format_value(0.25)}." in prompts.elc(0.25, [0.1, 0.2, 0.3, 0.4])
    for name in ("fmt_value", "fmt_span", "fmt_box"):
        assert not hasattr(prompts, name)


# ------------------------------------------------------------ to_markup (placeholders + values -> markup)


def test_to_markup_inverts_to_placeholders():
    from llava_st.protocol.coords import to_markup, to_placeholders

    text = "During {0.2, 0.625}, a dog [0.1, 0.2, 0.3, 0.4] runs. Starts in 0.5 then <t0.7> and {0.1, 0.9}."
    for io in ("INPUT", "OUTPUT"):
        bare, values = to_placeholders(text, io)
        assert to_markup(bare, values, io) == text
        assert to_placeholders(to_markup(bare, values, io), io)[0] == bare


def test_to_markup_writes_exact_values_and_checks_counts():
    from llava_st.protocol.coords import CoordinateError, to_markup

    v = {"temporal_output_locations": [0.12345678, 1e-05]}
    assert to_markup("{<TEMP-OUTPUT><TEMP-OUTPUT>}", v, "OUTPUT") == "{0.12345678, 0.00001}"
    with pytest.raises(CoordinateError, match="temporal_output_locations: the text has 1"):
        to_markup("<TEMP-OUTPUT>", v, "OUTPUT")
    # placeholders of the other kind are left alone (their lists are not consulted)
    assert to_markup("<TEMP-INPUT> then <TEMP-OUTPUT>", {"temporal_output_locations": [0.5]}, "OUTPUT") == "<TEMP-INPUT> then <t0.5>"
