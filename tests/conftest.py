"""Shared test fixtures: the parity fixture folder and small helpers.

Tests never download anything. Only ``tests/test_parity.py`` and
``tests/test_processor_parity.py`` read the parity fixtures (the authors'
reference tensors, ``$LLAVA_ST_PARITY_DIR`` or ``../shared/parity`` next to
the checkout); every other test builds what it needs here (a tiny model with a
tokenizer trained from a fixed text, small media files).

Where the fixtures are missing, the parity tests are skipped with a message
saying how to get them, except under ``CI=true``, where they fail: a CI run
must not pass without having compared anything (:func:`locate_parity_fixtures`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PARITY_ENV = "LLAVA_ST_PARITY_DIR"


def default_parity_dir(repo_root: Path | None = None) -> Path:
    return (REPO_ROOT if repo_root is None else repo_root).parent / "shared" / "parity"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ParityFixtures:
    """Where the parity fixtures are and what a test needing them must do.

    ``action`` is ``"use"`` (the folder holds ``model/config.json``),
    ``"skip"`` (they are missing on a developer machine) or ``"fail"``
    (missing under ``CI=true``, or missing at a path set explicitly in
    ``$LLAVA_ST_PARITY_DIR``); ``message`` says why and how to get them.
    """

    path: Path
    action: str
    message: str

    @property
    def found(self) -> bool:
        return self.action == "use"


def locate_parity_fixtures(environ: Mapping[str, str] | None = None, repo_root: Path | None = None) -> ParityFixtures:
    """Apply the skip/fail rule for the parity fixtures to an environment (default ``os.environ``)
    and a checkout (default this one)."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(PARITY_ENV) or None
    path = Path(explicit) if explicit else default_parity_dir(repo_root)
    if (path / "model" / "config.json").is_file():
        return ParityFixtures(path, "use", f"parity fixtures at {path}")
    how = (
        f"to run them, set {PARITY_ENV} to the parity fixture folder (the one holding model/ and the case "
        f"folders) or put that folder at {default_parity_dir(repo_root)}"
    )
    where = f"{path} ({'from ' + PARITY_ENV if explicit else 'the default location'})"
    if _truthy(environ.get("CI")):
        return ParityFixtures(path, "fail", f"CI=true but the parity fixtures are missing: no model/config.json under {where}; {how}")
    if explicit:
        return ParityFixtures(path, "fail", f"{PARITY_ENV} is set but holds no parity fixtures: no model/config.json under {where}; {how}")
    return ParityFixtures(path, "skip", f"parity fixtures not found at {where}; {how}")


def require_parity_fixtures() -> Path:
    """The fixture folder, or skip / fail the calling test as :func:`locate_parity_fixtures` decides."""
    found = locate_parity_fixtures()
    if found.action == "skip":
        pytest.skip(found.message)
    if found.action == "fail":
        pytest.fail(found.message, pytrace=False)
    return found.path


def parity_cases() -> list[Path]:
    """Every case folder (a folder holding ``case.json``) of the parity fixture set; [] when it is missing."""
    found = locate_parity_fixtures()
    if not found.found:
        return []
    return sorted(p.parent for p in found.path.glob("*/case.json"))


def parity_case_params() -> list:
    """:func:`parity_cases` as ``pytest.param`` s named after their folders.

    Without fixtures it is one placeholder (``None``) so that a test
    parametrized on it still runs, reaches the ``parity_root`` fixture and is
    skipped or failed with the rule's message (an empty parameter set would be
    skipped silently, even under ``CI=true``).
    """
    cases = parity_cases()
    if not cases:
        return [pytest.param(None, id="no-parity-fixtures")]
    return [pytest.param(c, id=c.name) for c in cases]


@pytest.fixture(scope="session")
def parity_root() -> Path:
    return require_parity_fixtures()


# A fixed text for the tiny tokenizer: the kinds of words the prompts and answers of the tests use.
_TOKENIZER_TEXT = """
You are a helpful assistant. What happens in the video? What is this? Describe the image.
Please give the bounding box of the person in the frame. When does the dog run across the road?
During which frames does the red ball move from the left to the right of the scene?
Give the start and end time of the event, and the box of the object at each time.
The man in the blue shirt opens the door, then the woman sits down on the chair.
The video shows a car driving on a street while people walk on the sidewalk.
Answer with the time span and the boxes. There is a cat on the table near the window.
0.0 0.1 0.25 0.5 0.75 1.0 12 100 2024 {0.12, 0.87} [0.1, 0.2, 0.5, 0.6]
"""


def _learn_merges(words: Counter, count: int) -> list[tuple[str, str]]:
    """Byte-pair merges learnt from word counts, ties broken by the pair's text (deterministic)."""
    split = {w: list(w) for w in words}
    merges: list[tuple[str, str]] = []
    for _ in range(count):
        pairs: Counter = Counter()
        for w, n in words.items():
            parts = split[w]
            for a, b in zip(parts, parts[1:]):
                pairs[a, b] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        for w, parts in split.items():
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    out.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            split[w] = out
    return merges


def tiny_base_tokenizer(num_merges: int = 96):
    """A small Qwen2-style base LLM tokenizer built here, without any downloaded file.

    Byte-level BPE: the 256 byte tokens (id = byte), then ``num_merges`` merges
    learnt from a fixed text, the Qwen2 pre-tokenizer split and NFC, and the
    chat tokens ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos)
    last, where the ``debug`` config expects them.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from processor_fixtures import CHAT_SPECIALS, bytes_to_unicode

    split = pre_tokenizers.Split(
        Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
        behavior="isolated",
    )
    pre = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    text = _TOKENIZER_TEXT
    words = Counter(piece for piece, _ in pre.pre_tokenize_str(text))
    merges = _learn_merges(words, num_merges)
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(CHAT_SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def tiny_model_tokenizer(num_temporal_bins: int = 100, num_spatial_bins: int = 100):
    """:func:`tiny_base_tokenizer` with the release's added and bin tokens (``build_release_tokenizer``)."""
    from llava_st.processor import build_release_tokenizer
    from llava_st.protocol.tokens import BinCounts

    return build_release_tokenizer(tiny_base_tokenizer(), BinCounts(num_temporal_bins, num_spatial_bins))


def make_tiny_model_dir(folder: Path, num_frames: int = 12, seed: int = 0) -> Path:
    """A tiny random-weight model folder in the release layout (the ``debug`` config) with a
    tokenizer built by :func:`tiny_model_tokenizer`; needs no fixture or download."""
    import torch

    from llava_st.model import LlavaSTModel
    from llava_st.processor import LlavaSTProcessor
    from llava_st.zoo import debug

    bins = debug().coords.bins
    tokenizer = tiny_model_tokenizer(bins.time, bins.space)
    config = debug(vocab_size=len(tokenizer) - bins.total, num_frames=num_frames)
    torch.manual_seed(seed)
    model = LlavaSTModel(config)
    model.save_pretrained(folder)
    LlavaSTProcessor(tokenizer, model.config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny random model (12 frames, 9x9 patch grid) shared by the tests of a session."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model"))


def write_test_video(path: Path, num_frames: int = 30, fps: int = 10, size: tuple[int, int] = (64, 48)) -> Path:
    """A small H.264 MP4 whose frame i is a flat grey of level 4 * i (so frames can be told apart)."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(num_frames):
            img = np.full((h, w, 3), (4 * i) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def kill_after_records(proc, records_file: Path, count: int, timeout_s: float = 300.0) -> None:
    """SIGKILL ``proc`` once ``records_file`` holds ``count`` lines; fail if it ends first or takes too long."""
    import signal
    import time

    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if records_file.exists() and records_file.read_bytes().count(b"\n") >= count:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail(f"{count} records did not appear in {records_file} within {timeout_s:.0f} s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def left_pad(samples, pad: int):
    """``(ids, mask, values)`` of ``(seq, values, pixels)`` samples, left-padded with ``pad``."""
    import torch

    length = max(len(s[0]) for s in samples)
    ids = torch.full((len(samples), length), pad)
    vals = torch.full((len(samples), length), float("nan"), dtype=torch.float64)
    mask = torch.zeros(len(samples), length, dtype=torch.long)
    for b, (seq, v, _) in enumerate(samples):
        ids[b, length - len(seq):] = seq
        vals[b, length - len(seq):] = v
        mask[b, length - len(seq):] = 1
    return ids, mask, vals
