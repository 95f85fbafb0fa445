"""Grammar-constrained answers: task grammars compiled to token programs, and the state of a batch.

:mod:`llava_st.protocol.grammars` says, as text, what each task's answer
looks like; :mod:`llava_st.model.grammar` runs token programs over a batch.
This module joins them with the tokenizer:

* :func:`token_classes`: which ids free text may use (no special tokens, no
  bins, nothing with ``{}[]<>``, which would open a span or box the parser
  would read) and which carry a letter or digit;
* :class:`GrammarCompiler`: each grammar item becomes ops: a :class:`Text` is
  its tokens, forced (tokenized on its own, which is how it tokenizes inside
  an answer: the pre-tokenizer splits at these boundaries, and
  :meth:`GrammarCompiler.compile` checks each text decodes back to itself); a
  :class:`Coord` is one bin op; a :class:`Caption` is free text whose exit is
  the first non-blank token of the text after it (the blanks before it are
  the model's to write, as training tokenized them with the caption); a
  :class:`Track` writes each frame's key and brackets itself and samples only
  the four box bins;
* :func:`grammar_state`: the per-row registers and frame keys of a batch of
  requests (frames sampled, the SVG span, the ELC start).

The program is built once per tokenizer and kept by the predictor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..model.grammar import (
    NUM_REGISTERS, R_END_MIN, R_KEY, R_KEY_MAX, R_LAST, R_S, R_START, R_X1, R_Y1, R_ZERO, GrammarError, GrammarState,
    ProgramBuilder, TokenProgram,
)
from ..protocol.bins import bin_to_value, value_to_bin
from ..protocol.grammars import GRAMMARS, AnswerGrammar, Caption, Coord, Phrases, Repeat, Text, Track, frame_keys, span_keys
from ..protocol.tokens import BinCounts

AXIS_INDEX = {"TEMP": 0, "HEIGHT": 1, "WIDTH": 2}
#: Registers of the named coordinates a later one depends on.
REGISTERS = {"s": R_S, "x1": R_X1, "y1": R_Y1, "start": R_START}
#: Characters free text may not hold: they would open or close a span, a box or a token.
STRUCTURAL = set("{}[]<>")
#: ``end`` of :meth:`GrammarCompiler._emit`: go on to the op emitted next.
FALLTHROUGH = "<fallthrough>"


def token_classes(tokenizer, vocab_size: int, num_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``text`` and ``content`` masks ``[V + K]`` of the ids free text may use.

    Text: a text-vocabulary id that is not a special or added token and whose
    text holds none of ``{}[]<>``. Content: text holding a letter or digit.
    """
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= set((tokenizer.get_added_vocab() if hasattr(tokenizer, "get_added_vocab") else {}).values())
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    text = torch.zeros(vocab_size + num_bins, dtype=torch.bool)
    content = torch.zeros(vocab_size + num_bins, dtype=torch.bool)
    for i, tok in enumerate(tokens):
        if tok is None or i in special:
            continue
        s = tokenizer.convert_tokens_to_string([tok])
        if not s or STRUCTURAL & set(s):
            continue
        text[i] = True
        content[i] = any(c.isalnum() for c in s)
    return text, content


class GrammarCompiler:
    """Compiles :class:`~llava_st.protocol.grammars.AnswerGrammar` s into one :class:`TokenProgram`."""

    def __init__(self, tokenizer, vocab_size: int, bins: BinCounts, eos: int):
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.bins = bins
        self.eos = eos
        self._uid = 0

    # ---------------------------------------------------------------- text
    def tokens(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        back = self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if back != text:
            raise GrammarError(f"the tokenizer does not write {text!r} back as itself (got {back!r})")
        return ids

    def exit_split(self, text: str) -> tuple[int, list[int]]:
        """The token that ends a caption before ``text`` (its first non-blank token) and the tokens after it."""
        ids = self.tokens(text)
        for i, t in enumerate(ids):
            if self.tokenizer.decode([t], clean_up_tokenization_spaces=False).strip():
                return t, ids[i + 1 :]
        raise GrammarError(f"the text after a caption, {text!r}, has no visible token")

    def _label(self, what: str) -> str:
        self._uid += 1
        return f"{what}#{self._uid}"

    # ---------------------------------------------------------------- items
    def compile(self, grammars: dict[str, AnswerGrammar] | None = None) -> TokenProgram:
        grammars = GRAMMARS if grammars is None else grammars
        text_mask, content_mask = token_classes(self.tokenizer, self.vocab_size, self.bins.total)
        b = ProgramBuilder(self.vocab_size, (self.bins.time, self.bins.space, self.bins.space), self.eos, text_mask,
                           content_mask)
        for task, grammar in grammars.items():
            b.entry(task)
            self._emit(b, grammar.items, end=None, grammar=grammar)
        return b.build()

    def _track_starts(self, grammar: AnswerGrammar) -> dict[str, str]:
        """Coordinate name -> the start of the track it ends."""
        return {i.end: i.start for i in grammar.items if isinstance(i, Track) and i.end is not None}

    def _emit(self, b: ProgramBuilder, items: Sequence, end: str | None, grammar: AnswerGrammar,
              skip_first: int = 0) -> None:
        """Emit ``items``; then the answer ends (``end`` None: eos), goes on to the next op
        (:data:`FALLTHROUGH`) or jumps to the label ``end``.

        ``skip_first``: tokens of the first Text that were already written (by a loop's choice).
        """
        tracks = self._track_starts(grammar)
        closes = False  # the last item ends the answer itself (a track, a loop, trailing free text)
        i = 0
        while i < len(items):
            item, nxt = items[i], items[i + 1] if i + 1 < len(items) else None
            last = nxt is None
            if isinstance(item, Text):
                text = item.text.rstrip() if isinstance(nxt, Caption) else item.text
                self._lits(b, self.tokens(text)[skip_first if i == 0 else 0 :])
            elif isinstance(item, Coord):
                self._coord(b, item, tracks, grammar)
            elif isinstance(item, Caption) and isinstance(nxt, Text):
                exit_tok, rest = self.exit_split(nxt.text)
                after = self._label("after-caption")
                b.free([(exit_tok, after, 1)], note="caption")
                b.label(after)
                self._lits(b, rest)
                i += 1  # the text after the caption is written
            elif isinstance(item, (Caption, Track, Repeat, Phrases)):
                if not last or end is not None:
                    raise GrammarError(f"{grammar.task}: {type(item).__name__} must end the answer")
                closes = True
                if isinstance(item, Caption):
                    b.free([(self.eos, "done", 1)], note="caption")
                elif isinstance(item, Track):
                    self._track(b, item, grammar)
                elif isinstance(item, Repeat):
                    self._repeat(b, item, grammar)
                else:
                    self._phrases(b, item, grammar)
            else:
                raise GrammarError(f"{grammar.task}: unknown grammar item {item!r}")
            i += 1
        if end is None:
            if not closes:
                b.eos()
        elif end is not FALLTHROUGH:
            b.link(end)

    def _lits(self, b: ProgramBuilder, ids: Sequence[int]) -> None:
        for t in ids:
            b.lit(t)

    def _coord(self, b: ProgramBuilder, c: Coord, tracks: dict[str, str], grammar: AnswerGrammar) -> None:
        lo, lo_frames, hi, track_from = R_ZERO, False, -1, -1
        if c.at_least == "start":
            lo = R_END_MIN  # the ELC end: at least the given start, and a frame at or after it (set per row)
        elif c.at_least is not None:
            if c.at_least not in REGISTERS:
                raise GrammarError(f"{grammar.task}: {c.name} depends on {c.at_least!r}, which no register holds")
            lo, lo_frames = REGISTERS[c.at_least], c.frames
        if c.frame_max:
            hi = R_KEY_MAX
        if c.name in tracks:
            track_from = REGISTERS[tracks[c.name]]
        b.bin(AXIS_INDEX[c.axis], lo=lo, lo_frames=lo_frames, hi=hi, store=REGISTERS.get(c.name, -1),
              track_from=track_from, note=f"{c.axis} {c.name}")

    def _track(self, b: ProgramBuilder, t: Track, grammar: AnswerGrammar) -> None:
        """``KEY pair NEXT separator`` looping back to KEY; NEXT writes eos after the last frame."""
        if not t.pair or not isinstance(t.pair[0], Coord) or t.pair[0].axis != "TEMP":
            raise GrammarError(f"{grammar.task}: a track's pair must start with its time key")
        key, sep_rest = self._label("frame"), self._label("separator")
        b.label(key)
        b.key()
        self._emit(b, t.pair[1:], end=FALLTHROUGH, grammar=grammar)
        sep = self.tokens(t.separator)
        b.next_frame(sep[0], sep_rest)
        b.label(sep_rest)
        self._lits(b, sep[1:])
        b.link(key)

    def _repeat(self, b: ProgramBuilder, r: Repeat, grammar: AnswerGrammar) -> None:
        """``body (CHOICE: eos | separator body)*``: the body is written twice, once to enter the loop."""
        if not r.body or not isinstance(r.body[0], Text):
            raise GrammarError(f"{grammar.task}: a repeated body must start with text")
        choice, rest = self._label("again"), self._label("again-rest")
        self._emit(b, r.body, end=choice, grammar=grammar)
        b.label(choice)
        first = self.tokens(r.body[0].text)
        again = self.tokens(r.separator + r.body[0].text)
        extra = len(again) - len(first)
        if extra < 0 or again[extra:] != first:
            raise GrammarError(f"{grammar.task}: the separator {r.separator!r} changes how {r.body[0].text!r} tokenizes")
        b.choice([(self.eos, "done"), (again[0], rest)], note="another one or end")
        b.label(rest)
        self._lits(b, again[1:extra])
        self._emit(b, r.body, end=choice, grammar=grammar, skip_first=1 if extra == 0 else 0)

    def _phrases(self, b: ProgramBuilder, p: Phrases, grammar: AnswerGrammar) -> None:
        """``phrase box (phrase box)* [text]``: free text, each box entered by its opening token."""
        if not p.box or not isinstance(p.box[0], Text):
            raise GrammarError(f"{grammar.task}: a phrase's box must start with text")
        exit_tok, rest = self.exit_split(p.box[0].text)
        box, tail = self._label("box"), self._label("tail")
        b.free([(exit_tok, box, 1)], note="phrase")
        b.label(box)
        self._lits(b, rest)
        self._emit(b, p.box[1:], end=FALLTHROUGH, grammar=grammar)
        b.label(tail)
        b.free([(exit_tok, box, 1), (self.eos, "done", 0)], note="phrase or end")


@dataclass(frozen=True)
class ConstraintRow:
    """What one row's grammar needs from its request.

    ``task``: a grammar name, or None for an unconstrained row; ``num_frames``:
    frames sampled from the video (1 for an image); ``span``: SVG's given
    normalised span; ``start``: ELC's given normalised start.
    """

    task: str | None
    num_frames: int = 1
    span: tuple[float, float] | None = None
    start: float | None = None


def grammar_state(program: TokenProgram, rows: Sequence[ConstraintRow], bins: BinCounts,
                  eos_ids: Sequence[int] = ()) -> GrammarState:
    """The start state of a batch: each row's grammar, frame keys and given values.

    Raises:
        GrammarError: an SVG row without its span or an ELC row without its start.
    """
    n = bins.time
    regs = torch.zeros(len(rows), NUM_REGISTERS, dtype=torch.long)
    keys = torch.zeros(len(rows), n, dtype=torch.bool)
    for r, row in enumerate(rows):
        frames = frame_keys(row.num_frames, bins)
        keys[r, list(frames)] = True
        if row.task == "svg":
            if row.span is None:
                raise GrammarError(f"row {r}: an svg answer needs the span given in the prompt")
            inside = span_keys(frames, row.span[0], row.span[1], bins)
            regs[r, R_KEY], regs[r, R_LAST] = inside[0], inside[-1]
        if row.task == "elc":
            if row.start is None:
                raise GrammarError(f"row {r}: an elc answer needs the start given in the prompt")
            start_bin = value_to_bin("TEMP", row.start, bins)
            first = next((k for k in frames if k >= start_bin), frames[-1])
            # the parser wants end >= start as values, and the track at least one frame
            value_lb = next(k for k in range(n) if bin_to_value("TEMP", k, bins) >= row.start)
            regs[r, R_START] = start_bin
            regs[r, R_END_MIN] = max(value_lb, first)
    return program.start([row.task for row in rows], regs, keys, eos_ids)


__all__ = ["AXIS_INDEX", "ConstraintRow", "GrammarCompiler", "grammar_state", "token_classes"]
