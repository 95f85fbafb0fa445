"""Token-level answer grammars: a small state machine over ids, applied as a logits mask.

A task's answer grammar (:mod:`llava_st.protocol.grammars`) is compiled, with
the tokenizer, into a :class:`TokenProgram`: a flat table of *ops*, one per
token the answer writes. Every row of a batch has its own program counter
``pc`` and a few integer registers; all rows advance together with tensor
operations (no loop over rows), and rows may run different programs (tasks)
or none (:data:`ANY`, a free question) in the same batch.

Ops (``V`` = text vocabulary, bin ids ``V + k``)::

    ANY     unconstrained; an eos ends the row                       (sampled)
    BIN     one bin of an axis in [lo, hi], stored in a register     (sampled)
    FREE    free text (a caption), left by one of its exit tokens    (sampled)
    CHOICE  one of a few tokens, each leading elsewhere              (sampled)
    LIT     a fixed token (brackets, separators, fixed words)        (forced)
    KEY     the time bin of the track's current frame: V + reg KEY   (forced)
    NEXT    after a frame's box: the separator when another frame
            of the track follows (and fits the budget), else eos     (forced)
    EOS     the end-of-turn token                                    (forced)
    DONE    the row has ended

Forced ops need no model call to be chosen: :meth:`GrammarState.forced_run`
writes them all at once and the decoder feeds them to the model in one
call together with the sampled token before them.

Registers hold what later tokens depend on: the span start (``e >= s``),
the box's ``x1``/``y1`` (``x2 >= x1``, ``y2 >= y1``), the current and last
frame key of a track, the count of content tokens of a caption. Per-row key
tables list the time bins of the sampled frames (``first_ge``, ``last_le``,
``next_key`` over the ``n`` time bins), so a track writes one key per sampled
frame inside its span and a span always contains at least one frame.

Budget: ``need[pc]`` is the fewest tokens that complete a well-formed answer
from ``pc`` (a track needs one frame). A row may take a text token, an exit,
a choice or another track frame only while ``max_new_tokens`` still leaves
room for that minimum, so every answer ends, and parses, within the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..errors import ConfigError

# op kinds
ANY, LIT, BIN, KEY, FREE, CHOICE, NEXT, EOS, DONE = range(9)
KIND_NAMES = ("ANY", "LIT", "BIN", "KEY", "FREE", "CHOICE", "NEXT", "EOS", "DONE")
SAMPLED = (ANY, BIN, FREE, CHOICE)
FORCED = (LIT, KEY, NEXT, EOS)

# registers
R_ZERO, R_S, R_X1, R_Y1, R_KEY, R_LAST, R_COUNT, R_START, R_END_MIN, R_KEY_MAX = range(10)
NUM_REGISTERS = 10
REGISTER_NAMES = ("zero", "s", "x1", "y1", "key", "last", "count", "start", "end_min", "key_max")

#: Most exits of a FREE or CHOICE op.
MAX_EXITS = 3
_INF = 1 << 30


class GrammarError(ConfigError):
    """A grammar that cannot be built or run (an unknown label, a budget too small for its answer)."""


@dataclass
class _Op:
    kind: int
    tok: int = -1
    axis: int = -1
    lo_reg: int = R_ZERO
    lo_frames: bool = False
    hi_reg: int = -1
    store: int = -1
    track_from: int = -1
    next: object = None  # label or index
    exits: list = field(default_factory=list)  # (tok, target label/index, min content)
    note: str = ""


class ProgramBuilder:
    """Builds a :class:`TokenProgram`; ops are appended in order and jumps name labels.

    Op 0 is DONE and op 1 is ANY (shared by every program). Example, a TVG answer
    ``" {" <s> <e> "} " eos`` with the tokens of its literals::

        b = ProgramBuilder(vocab_size=V, bins=(100, 100, 100), eos=eos, text_mask=..., content_mask=...)
        b.entry("tvg")
        for t in open_ids: b.lit(t)
        b.bin(0, store=R_S); b.bin(0, lo=R_S)
        for t in close_ids: b.lit(t)
        b.eos()
        program = b.build()
    """

    def __init__(self, vocab_size: int, bins: Sequence[int], eos: int, text_mask: torch.Tensor, content_mask: torch.Tensor):
        self.vocab_size = vocab_size
        self.bins = tuple(int(n) for n in bins)  # per axis: time, height, width
        self.eos_id = eos
        self.text_mask = text_mask
        self.content_mask = content_mask
        self.ops: list[_Op] = [_Op(DONE, note="done"), _Op(ANY, note="any")]
        self.labels: dict[str, int] = {"done": 0, "any": 1}
        self.aliases: dict[str, str] = {}
        self.entries: dict[str, int] = {}

    @property
    def pc(self) -> int:
        return len(self.ops)

    def label(self, name: str) -> None:
        if name in self.labels:
            raise GrammarError(f"label {name!r} is defined twice")
        self.labels[name] = self.pc

    def entry(self, name: str) -> None:
        self.entries[name] = self.pc

    def link(self, target: str) -> None:
        """Send whatever would fall through to the next op (the last op's ``next``, labels
        defined here) to the label ``target`` instead."""
        here = self.pc
        for name, pos in list(self.labels.items()):
            if pos == here:
                del self.labels[name]
                self.aliases[name] = target
        if self.ops and self.ops[-1].next == here:
            self.ops[-1].next = target

    def _add(self, op: _Op) -> None:
        if op.next is None and op.kind in (LIT, BIN, KEY):
            op.next = self.pc + 1
        self.ops.append(op)

    def lit(self, tok: int, note: str = "") -> None:
        self._add(_Op(LIT, tok=int(tok), note=note))

    def bin(self, axis: int, lo: int = R_ZERO, lo_frames: bool = False, hi: int = -1, store: int = -1,
            track_from: int = -1, note: str = "") -> None:
        """A bin of ``axis`` (0 time, 1 height, 2 width) at least ``reg[lo]`` (or the first
        frame key at or after it, ``lo_frames``) and at most ``reg[hi]``; stored in ``store``.
        ``track_from``: this bin ends a track whose frames start at ``reg[track_from]``."""
        self._add(_Op(BIN, axis=axis, lo_reg=lo, lo_frames=lo_frames, hi_reg=hi, store=store, track_from=track_from,
                      note=note))

    def key(self) -> None:
        self._add(_Op(KEY, note="frame key"))

    def free(self, exits: Sequence[tuple[int, str, int]], note: str = "") -> None:
        """Free text left by ``(token, target label, min content tokens)`` exits."""
        self._add(_Op(FREE, exits=list(exits), note=note))

    def choice(self, exits: Sequence[tuple[int, str]], note: str = "") -> None:
        self._add(_Op(CHOICE, exits=[(t, target, 0) for t, target in exits], note=note))

    def next_frame(self, separator_tok: int, target: str) -> None:
        """After a frame's box: the separator's first token and on to ``target``, or eos."""
        self._add(_Op(NEXT, tok=int(separator_tok), next=target, note="next frame"))

    def eos(self) -> None:
        self._add(_Op(EOS, tok=self.eos_id, note="eos"))

    def build(self) -> "TokenProgram":
        def resolve(target) -> int:
            if isinstance(target, int):
                return target
            seen = set()
            while target in self.aliases and target not in seen:
                seen.add(target)
                target = self.aliases[target]
            if target not in self.labels:
                raise GrammarError(f"unknown label {target!r}")
            return self.labels[target]

        n = len(self.ops)
        for op in self.ops:
            if len(op.exits) > MAX_EXITS:
                raise GrammarError(f"an op has {len(op.exits)} exits, at most {MAX_EXITS}")
        kind = torch.tensor([op.kind for op in self.ops])
        nxt = torch.tensor([resolve(op.next) if op.next is not None else 0 for op in self.ops])
        exit_tok = torch.full((n, MAX_EXITS), -1)
        exit_target = torch.zeros(n, MAX_EXITS, dtype=torch.long)
        exit_min = torch.zeros(n, MAX_EXITS, dtype=torch.long)
        for i, op in enumerate(self.ops):
            for j, (tok, target, lo) in enumerate(op.exits):
                exit_tok[i, j], exit_target[i, j], exit_min[i, j] = int(tok), resolve(target), int(lo)
        need = _need(kind, nxt, exit_tok, exit_target, exit_min)
        for name, pc in self.entries.items():
            if need[pc] >= _INF:
                raise GrammarError(f"grammar {name!r} can never end")
        return TokenProgram(
            kind=kind,
            tok=torch.tensor([op.tok for op in self.ops]),
            axis=torch.tensor([op.axis for op in self.ops]),
            lo_reg=torch.tensor([op.lo_reg for op in self.ops]),
            lo_frames=torch.tensor([op.lo_frames for op in self.ops]),
            hi_reg=torch.tensor([op.hi_reg for op in self.ops]),
            store=torch.tensor([op.store for op in self.ops]),
            track_from=torch.tensor([op.track_from for op in self.ops]),
            next=nxt,
            exit_tok=exit_tok,
            exit_target=exit_target,
            exit_min=exit_min,
            need=need,
            vocab_size=self.vocab_size,
            bins=self.bins,
            eos=self.eos_id,
            text_mask=self.text_mask.bool().cpu(),
            content_mask=self.content_mask.bool().cpu(),
            entries=dict(self.entries),
            notes=tuple(op.note for op in self.ops),
        )


def _need(kind, nxt, exit_tok, exit_target, exit_min) -> torch.Tensor:
    """Fewest tokens from each op to DONE (Bellman-Ford over the small op graph)."""
    n = len(kind)
    need = [_INF] * n
    need[0] = 0
    k, nx, et, tg, mn = kind.tolist(), nxt.tolist(), exit_tok.tolist(), exit_target.tolist(), exit_min.tolist()
    for _ in range(n + 1):
        changed = False
        for i in range(n):
            kk = k[i]
            if kk == DONE or kk == ANY:
                v = 0
            elif kk in (NEXT, EOS):
                v = 1
            elif kk in (LIT, BIN, KEY):
                v = 1 + need[nx[i]]
            else:  # FREE, CHOICE
                v = min((1 + need[tg[i][j]] + min(mn[i][j], 1) for j in range(MAX_EXITS) if et[i][j] >= 0), default=_INF)
            v = min(v, _INF)
            if v < need[i]:
                need[i], changed = v, True
        if not changed:
            break
    return torch.tensor(need)


@dataclass
class TokenProgram:
    """The op tables of one or more grammars (CPU tensors, one row per op); see the module docstring.

    ``text_mask``/``content_mask`` ``[V + K]``: tokens free text may use, and those
    that carry a letter or digit (a caption's first token must, so no caption
    is empty once stripped). ``entries``: grammar name -> first op.
    """

    kind: torch.Tensor
    tok: torch.Tensor
    axis: torch.Tensor
    lo_reg: torch.Tensor
    lo_frames: torch.Tensor
    hi_reg: torch.Tensor
    store: torch.Tensor
    track_from: torch.Tensor
    next: torch.Tensor
    exit_tok: torch.Tensor
    exit_target: torch.Tensor
    exit_min: torch.Tensor
    need: torch.Tensor
    vocab_size: int
    bins: tuple[int, int, int]
    eos: int
    text_mask: torch.Tensor
    content_mask: torch.Tensor
    entries: dict[str, int]
    notes: tuple[str, ...] = ()
    _device_masks: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.bin_offsets = torch.tensor([0, self.bins[0], self.bins[0] + self.bins[1]])
        self.num_bins = sum(self.bins)
        self.extended_vocab = self.vocab_size + self.num_bins
        if self.text_mask.shape != (self.extended_vocab,):
            raise GrammarError(f"text_mask must have {self.extended_vocab} entries, got {tuple(self.text_mask.shape)}")
        # the fewest tokens from a FREE op's exits (the exit token and what follows it)
        valid = self.exit_tok >= 0
        paths = torch.where(valid, 1 + self.need[self.exit_target], _INF)
        self.exit_path = paths.min(1).values  # [P]
        self.content_first = (valid & (self.exit_min > 0)).sum(1).eq(valid.sum(1)) & valid.any(1)

    @property
    def num_ops(self) -> int:
        return len(self.kind)

    def masks(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """On ``device``: ``[P, V + K]`` the tokens each op allows before the per-row conditions
        (bounds, exits, budget), and the text and content masks ``[V + K]``."""
        key = str(device)
        if key not in self._device_masks:
            mask = torch.zeros(self.num_ops, self.extended_vocab, dtype=torch.bool)
            mask[self.kind == ANY] = True
            for i in (self.kind == BIN).nonzero().flatten().tolist():
                a = int(self.axis[i])
                start = self.vocab_size + int(self.bin_offsets[a])
                mask[i, start : start + self.bins[a]] = True
            self._device_masks[key] = (mask.to(device), self.text_mask.to(device), self.content_mask.to(device))
        return self._device_masks[key]

    def start(self, entries: Sequence[str | None], registers: torch.Tensor | None = None,
              frame_keys: torch.Tensor | None = None, eos_ids: Sequence[int] = ()) -> "GrammarState":
        """The state of a batch: row ``b`` runs grammar ``entries[b]`` (None: unconstrained).

        Args:
            registers: ``[B, R]`` initial registers (zeros when None).
            frame_keys: ``[B, n_time]`` bool, the time bins that name a sampled frame of
                the row's media (all bins when None).
            eos_ids: ids that end an unconstrained row (the program's eos always does).
        """
        bsz = len(entries)
        unknown = sorted({e for e in entries if e is not None and e not in self.entries})
        if unknown:
            raise GrammarError(f"no grammar named {unknown}; known: {sorted(self.entries)}")
        pc = torch.tensor([1 if e is None else self.entries[e] for e in entries], dtype=torch.long)
        regs = torch.zeros(bsz, NUM_REGISTERS, dtype=torch.long) if registers is None else registers.long().clone()
        if regs.shape != (bsz, NUM_REGISTERS):
            raise GrammarError(f"registers must be [{bsz}, {NUM_REGISTERS}], got {tuple(regs.shape)}")
        n = self.bins[0]
        keys = torch.ones(bsz, n, dtype=torch.bool) if frame_keys is None else frame_keys.bool().cpu()
        if keys.shape != (bsz, n):
            raise GrammarError(f"frame_keys must be [{bsz}, {n}], got {tuple(keys.shape)}")
        regs[:, R_KEY_MAX] = torch.where(keys, torch.arange(n), -1).amax(1)
        return GrammarState(self, pc, regs, *key_tables(keys), torch.tensor(sorted({self.eos, *eos_ids})))


def key_tables(frame_keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``first_ge``, ``last_le``, ``next_key`` ``[B, n]`` from ``frame_keys`` ``[B, n]`` bool.

    ``first_ge[b, k]``: the smallest frame key ``>= k`` (the last key when none);
    ``last_le[b, k]``: the largest frame key ``<= k`` (the first key when none);
    ``next_key[b, k]``: the smallest frame key ``> k`` (``k`` itself when none).

    Example: keys at bins 0, 9, 18 of ``n = 20``: ``first_ge[5] = 9``, ``last_le[17] = 9``,
    ``next_key[9] = 18``, ``first_ge[19] = 18``.
    """
    b, n = frame_keys.shape
    if not bool(frame_keys.any(1).all()):
        raise GrammarError("every row needs at least one frame key")
    idx = torch.arange(n).expand(b, n)
    # smallest key at or after k (n: none), a reversed running minimum; largest at or before k (-1: none)
    ge = torch.where(frame_keys, idx, n).flip(1).cummin(1).values.flip(1)
    le = torch.where(frame_keys, idx, -1).cummax(1).values
    first_ge = torch.where(ge < n, ge, le[:, -1:])
    last_le = torch.where(le >= 0, le, ge[:, :1])
    after = torch.cat([ge[:, 1:], torch.full((b, 1), n)], 1)
    next_key = torch.where(after < n, after, idx)
    return first_ge, last_le, next_key


class GrammarState:
    """Per-row program counters and registers of a batch under a :class:`TokenProgram` (CPU tensors)."""

    def __init__(self, program: TokenProgram, pc, regs, first_ge, last_le, next_key, eos_ids):
        self.program = program
        self.pc = pc
        self.regs = regs
        self.first_ge, self.last_le, self.next_key = first_ge, last_le, next_key
        self.eos_ids = eos_ids
        self.rows = torch.arange(len(pc))

    # ---------------------------------------------------------------- queries
    @property
    def kind(self) -> torch.Tensor:
        return self.program.kind[self.pc]

    @property
    def done(self) -> torch.Tensor:
        return self.kind == DONE

    def needs_sample(self) -> torch.Tensor:
        """``[B]`` rows whose next token the model chooses."""
        return torch.isin(self.kind, torch.tensor(SAMPLED))

    def min_tokens(self) -> torch.Tensor:
        """``[B]`` fewest tokens that still complete each row's answer."""
        return self.program.need[self.pc]

    def _bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B]`` inclusive bin bounds of rows at a BIN op (0 and n - 1 elsewhere)."""
        p, pc, r = self.program, self.pc, self.rows
        lo = self.regs[r, p.lo_reg[pc]]
        n_time = self.first_ge.shape[1]
        via = p.lo_frames[pc]
        lo = torch.where(via, self.first_ge[r, lo.clamp(0, n_time - 1)], lo)
        hi_reg = p.hi_reg[pc]
        axis_n = torch.tensor(p.bins)[p.axis[pc].clamp(min=0)]
        hi = torch.where(hi_reg >= 0, self.regs[r, hi_reg.clamp(min=0)], axis_n - 1)
        return lo, hi

    # ---------------------------------------------------------------- the mask
    def allowed(self, remaining: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``[B, V + K]`` bool on ``device``: the tokens each row may take now.

        Rows that do not sample now (forced or ended) allow everything: their
        logits are not read.
        """
        p, pc = self.program, self.pc
        kind = p.kind[pc]
        count = self.regs[:, R_COUNT]
        static, text_mask, content_mask = p.masks(device)
        mask = static[pc.to(device)]  # [B, V + K]
        # free text: content first when every exit needs it, and only while the budget allows an exit after it
        is_free = kind == FREE
        if bool(is_free.any()):
            content_only = p.content_first[pc] & (count == 0)
            text_ok = remaining - 1 >= p.exit_path[pc]
            text = torch.where(content_only.to(device)[:, None], content_mask, text_mask) & text_ok.to(device)[:, None]
            mask = torch.where(is_free.to(device)[:, None], text, mask)
        # bins within the row's bounds
        is_bin = kind == BIN
        if bool(is_bin.any()):
            lo, hi = self._bounds()
            off = p.bin_offsets[p.axis[pc].clamp(min=0)]
            lo_col = torch.where(is_bin, off + lo, 0).to(device)
            hi_col = torch.where(is_bin, off + hi, p.num_bins - 1).to(device)
            cols = torch.arange(p.num_bins, device=device)
            inside = (cols >= lo_col[:, None]) & (cols <= hi_col[:, None])
            mask = torch.cat([mask[:, : p.vocab_size], mask[:, p.vocab_size :] & inside], 1)
        # exits of FREE and CHOICE ops
        has_exits = is_free | (kind == CHOICE)
        if bool(has_exits.any()):
            ex_tok = p.exit_tok[pc]
            ok = (ex_tok >= 0) & has_exits[:, None] & (count[:, None] >= p.exit_min[pc])
            ok &= remaining[:, None] >= 1 + p.need[p.exit_target[pc]]
            rows, js = ok.nonzero(as_tuple=True)
            if len(rows):
                mask[rows.to(device), ex_tok[rows, js].to(device)] = True
        idle = ~self.needs_sample()
        if bool(idle.any()):
            mask[idle.to(device)] = True
        return mask

    # ---------------------------------------------------------------- transitions
    def advance(self, tokens: torch.Tensor, rows: torch.Tensor) -> None:
        """Take the sampled ``tokens`` ``[B]`` on the ``rows`` ``[B]`` bool that sampled."""
        p = self.program
        tokens = tokens.cpu().long()
        pc = self.pc
        kind = p.kind[pc]
        r = self.rows
        # BIN: store, and a track's last frame and first key when it ends one
        is_bin = rows & (kind == BIN)
        if bool(is_bin.any()):
            axis = p.axis[pc].clamp(min=0)
            value = tokens - p.vocab_size - p.bin_offsets[axis]
            store = p.store[pc]
            st = is_bin & (store >= 0)
            self.regs[r[st], store[st]] = value[st]
            tr = is_bin & (p.track_from[pc] >= 0)
            if bool(tr.any()):
                n = self.first_ge.shape[1]
                v = value.clamp(0, n - 1)
                start = self.regs[r, p.track_from[pc].clamp(min=0)].clamp(0, n - 1)
                self.regs[r[tr], R_LAST] = self.last_le[r, v][tr]
                self.regs[r[tr], R_KEY] = self.first_ge[r, start][tr]
        # FREE / CHOICE: an exit jumps, any other token counts as text
        ex = rows & ((kind == FREE) | (kind == CHOICE))
        hit = torch.zeros_like(rows)
        target = pc
        if bool(ex.any()):
            match = (p.exit_tok[pc] == tokens[:, None]) & (p.exit_tok[pc] >= 0)
            hit = ex & match.any(1)
            j = match.long().argmax(1)
            target = torch.where(hit, p.exit_target[pc, j], pc)
            self.regs[:, R_COUNT] = torch.where(hit, 0, self.regs[:, R_COUNT] + (ex & ~hit) * p.content_mask[tokens].long())
        # ANY: an eos ends the row
        stop = rows & (kind == ANY) & torch.isin(tokens, self.eos_ids)
        new_pc = torch.where(is_bin, p.next[pc], pc)
        new_pc = torch.where(hit, target, new_pc)
        self.pc = torch.where(stop, 0, new_pc)

    def forced_run(self, remaining: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Write every forced token from the current ops: ``tokens`` ``[B, F]`` and ``valid`` ``[B, F]``.

        ``remaining`` ``[B]``: tokens each row may still write (NEXT continues a
        track only while the rest of a frame fits). Rows stop at their next
        sampled op or at DONE; ``F`` is the longest run (0 when none).
        """
        p = self.program
        rem = remaining.clone()
        r = self.rows
        toks, valids = [], []
        for _ in range(p.num_ops + 1):
            pc = self.pc
            kind = p.kind[pc]
            forced = torch.isin(kind, torch.tensor(FORCED))
            if not bool(forced.any()):
                break
            key = self.regs[:, R_KEY]
            tok = torch.where(kind == KEY, p.vocab_size + key, p.tok[pc])
            nxt = p.next[pc]
            is_next = kind == NEXT
            if bool(is_next.any()):
                cont = is_next & (key < self.regs[:, R_LAST]) & (rem >= 1 + p.need[nxt])
                stop = is_next & ~cont
                tok = torch.where(stop, p.eos, tok)
                n = self.next_key.shape[1]
                self.regs[:, R_KEY] = torch.where(cont, self.next_key[r, key.clamp(0, n - 1)], key)
                nxt = torch.where(stop, 0, nxt)
            nxt = torch.where(kind == EOS, 0, nxt)
            self.pc = torch.where(forced, nxt, pc)
            rem = rem - forced.long()
            toks.append(torch.where(forced, tok, pad))
            valids.append(forced)
        else:  # pragma: no cover - a forced cycle is a bug in a program
            raise GrammarError("the grammar has a cycle of forced tokens")
        if not toks:
            return torch.zeros(len(r), 0, dtype=torch.long), torch.zeros(len(r), 0, dtype=torch.bool)
        return torch.stack(toks, 1), torch.stack(valids, 1)

    def describe(self, row: int) -> str:
        """The op a row is at, for error messages and debugging."""
        pc = int(self.pc[row])
        note = self.program.notes[pc] if pc < len(self.program.notes) else ""
        return f"op {pc} ({KIND_NAMES[int(self.program.kind[pc])]}{': ' + note if note else ''})"


__all__ = [
    "ANY", "BIN", "CHOICE", "DONE", "EOS", "FORCED", "FREE", "GrammarError", "GrammarState", "KEY", "LIT", "NEXT",
    "NUM_REGISTERS", "ProgramBuilder", "R_COUNT", "R_END_MIN", "R_KEY", "R_KEY_MAX", "R_LAST", "R_S", "R_START",
    "R_X1", "R_Y1", "R_ZERO", "SAMPLED", "TokenProgram", "key_tables",
]
