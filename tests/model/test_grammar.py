"""The token-level grammar machine on small hand-built programs, against plain Python references."""

from __future__ import annotations

import random

import pytest
import torch

from llava_st.model.grammar import R_KEY, R_LAST, R_S, R_X1, R_Y1, GrammarError, ProgramBuilder, key_tables

V, BINS, EOS = 12, (10, 6, 6), 11  # text ids 0..11 (11 = eos), bins 12..33
OPEN, CLOSE, COMMA, SPACE, DOT = 1, 2, 3, 4, 5
WORDS = (6, 7, 8)  # content tokens; SPACE and COMMA are text without content


def _masks():
    text = torch.zeros(V + sum(BINS), dtype=torch.bool)
    text[[COMMA, SPACE, DOT, *WORDS]] = True
    content = torch.zeros_like(text)
    content[list(WORDS)] = True
    return text, content


def _program():
    """box:   "[" x1 y1 x2>=x1 y2>=y1 "]" eos
    span:  "[" s e>=s "]" "," caption "." (eos | " " "[" s e "]" "," caption ".")...   (a DVC-like loop)
    track: KEY "[" x1 y1 x2 y2 "]" (NEXT "," KEY ...)*  over the row's frame keys"""
    b = ProgramBuilder(V, BINS, EOS, *_masks())
    b.entry("box")
    b.lit(OPEN), b.bin(2, store=R_X1), b.bin(1, store=R_Y1), b.bin(2, lo=R_X1), b.bin(1, lo=R_Y1), b.lit(CLOSE), b.eos()
    b.entry("events")
    for copy in range(2):  # the first event, then the loop: choice -> " " -> another event
        b.lit(OPEN), b.bin(0, store=R_S), b.bin(0, lo=R_S), b.lit(CLOSE), b.lit(COMMA)
        b.free([(DOT, "choice", 1)], note="caption")
        if copy == 0:
            b.label("choice")
            b.choice([(EOS, "done"), (SPACE, "rest")])
            b.label("rest")
    b.entry("track")
    b.label("key")
    b.key(), b.lit(OPEN), b.bin(2, store=R_X1), b.bin(1, store=R_Y1), b.bin(2, lo=R_X1), b.bin(1, lo=R_Y1), b.lit(CLOSE)
    b.next_frame(COMMA, "key")
    return b.build()


def _walk(program, entry, budget, rng, frame_keys=None, registers=None):
    """Decode one row by picking uniformly among the allowed tokens (the model's part) and
    taking the forced runs; returns the tokens and whether the row ended."""
    state = program.start([entry], registers, frame_keys)
    out = []
    while not bool(state.done[0]) and len(out) < budget:
        remaining = torch.tensor([budget - len(out)])
        if bool(state.needs_sample()[0]):
            allowed = state.allowed(remaining, torch.device("cpu"))[0].nonzero().flatten().tolist()
            tok = rng.choice(allowed)
            state.advance(torch.tensor([tok]), torch.tensor([True]))
            out.append(tok)
        forced, valid = state.forced_run(torch.tensor([budget - len(out)]), pad=-1)
        out += forced[0][valid[0]].tolist()
    return out, bool(state.done[0])


def test_key_tables_match_a_plain_loop() -> None:
    g = torch.Generator().manual_seed(0)
    keys = torch.rand(6, 20, generator=g) < 0.3
    keys[:, 7] |= ~keys.any(1)  # every row has a key
    first_ge, last_le, next_key = key_tables(keys)
    for b in range(6):
        ks = keys[b].nonzero().flatten().tolist()
        for k in range(20):
            assert first_ge[b, k] == next((x for x in ks if x >= k), ks[-1])
            assert last_le[b, k] == next((x for x in reversed(ks) if x <= k), ks[0])
            assert next_key[b, k] == next((x for x in ks if x > k), k)
    with pytest.raises(GrammarError, match="at least one frame key"):
        key_tables(torch.zeros(1, 5, dtype=torch.bool))


def test_random_walks_follow_the_grammar_and_end_within_any_budget() -> None:
    program = _program()
    rng = random.Random(0)
    tb = V  # first time bin id
    for _ in range(200):
        for entry in ("box", "events"):
            need = int(program.need[program.entries[entry]])
            budget = rng.randint(need, need + 12)
            toks, ended = _walk(program, entry, budget, rng)
            assert ended and toks[-1] == EOS and len(toks) <= budget
            if entry == "box":
                x1, y1, x2, y2 = (t - V for t in toks[1:5])
                assert toks[0] == OPEN and toks[5] == CLOSE and len(toks) == 7
                assert 16 <= x1 <= x2 < 22 and 10 <= y1 <= y2 < 16  # width bins come after 10 time, 6 height
            else:
                text = toks[:-1]
                while text:  # one event: [ s e ] , caption(>= 1 content, no DOT) .
                    assert text[0] == OPEN and tb <= text[1] <= text[2] < tb + 10 and text[3:5] == [CLOSE, COMMA]
                    end = text.index(DOT)
                    caption = text[5:end]
                    assert any(t in WORDS for t in caption) and all(t in (COMMA, SPACE, *WORDS) for t in caption)
                    text = text[end + 1 :]
                    if text:
                        assert text[0] == SPACE
                        text = text[1:]
    # the budget is exact: with the minimum, the answer is the shortest one
    assert len(_walk(program, "events", int(program.need[program.entries["events"]]), rng)[0]) == 8


def test_tracks_write_every_frame_key_until_the_budget_runs_out() -> None:
    program = _program()
    keys = torch.zeros(1, 10, dtype=torch.bool)
    keys[0, [1, 4, 6, 9]] = True
    regs = torch.zeros(1, 10, dtype=torch.long)
    regs[0, R_KEY], regs[0, R_LAST] = 4, 9
    rng = random.Random(1)
    toks, ended = _walk(program, "track", 100, rng, keys, regs)
    assert ended
    assert [t - V for t in toks if V <= t < V + 10 and toks[toks.index(t) + 1] == OPEN] == [4, 6, 9]
    assert toks.count(COMMA) == 2 and toks[-1] == EOS
    # 7 tokens per frame, a comma between frames, the eos: 18 tokens hold two frames (16), not three (24)
    toks, ended = _walk(program, "track", 18, rng, keys, regs)
    assert ended and len(toks) == 16 and toks.count(OPEN) == 2 and toks[-1] == EOS


def test_rows_of_a_batch_are_independent() -> None:
    """Masks and forced runs of a mixed batch equal those of each row alone."""
    program = _program()
    entries = ["box", "events", None, "box"]
    state = program.start(entries)
    alone = [program.start([e]) for e in entries]
    rng = random.Random(3)
    for _ in range(12):
        remaining = torch.full((4,), 50)
        forced, valid = state.forced_run(remaining, pad=-1)
        for b, s in enumerate(alone):
            f, v = s.forced_run(remaining[:1], pad=-1)
            assert forced[b][valid[b]].tolist() == f[0][v[0]].tolist()
        mask = state.allowed(remaining, torch.device("cpu"))
        sample = state.needs_sample()
        picks = torch.tensor([rng.choice(m.nonzero().flatten().tolist()) for m in mask])
        for b, s in enumerate(alone):
            assert torch.equal(mask[b], s.allowed(remaining[:1], torch.device("cpu"))[0])
            s.advance(picks[b : b + 1], sample[b : b + 1])
        state.advance(picks, sample)
    assert state.pc.tolist() == [int(s.pc[0]) for s in alone]


def test_errors_name_the_problem() -> None:
    b = ProgramBuilder(V, BINS, EOS, *_masks())
    b.entry("x")
    b.choice([(EOS, "nowhere")])
    with pytest.raises(GrammarError, match="unknown label 'nowhere'"):
        b.build()
    with pytest.raises(GrammarError, match="no grammar named"):
        _program().start(["boxes"])
