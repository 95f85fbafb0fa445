"""The training dataset over a mix, its collate and a length-grouped batch sampler.

Pieces (SPEC §4, §8):

* :func:`build_mix_dataset` reads every source of a training mix
  (:mod:`llava_st.data.mix`) through the one reader of the release format
  (:func:`~llava_st.data.formats.release_sft.read_release_sft`), keeps the
  samples the mix's strategies select and returns a :class:`SFTDataset`.
* :class:`SFTDataset` turns sample ``i`` into an
  :class:`~llava_st.processor.EncodedSample`: its video is sampled at the
  frame count and inclusive frame range the sample states
  (``meta.sample_frames``, ``meta.split``; the dataset's default count where
  ``meta`` has none), its image is read upright RGB, and the processor applies
  the chat template, expands the visual slots, makes the labels and aligns the
  coordinate values.
* :class:`TrainCollator` pads a micro-batch with the processor's
  :meth:`~llava_st.processor.LlavaSTProcessor.collate` (right padding,
  attention mask, NaN values, -100 labels).
* :class:`LengthGroupedBatchSampler` yields each rank's micro-batches:
  deterministic given ``(seed, epoch)``, independent of the number of ranks
  for a given global batch, and resumable at an optimizer step.

Bad samples. A sample that cannot be read, whose media do not load or that
the processor refuses raises :class:`~llava_st.errors.DataError` naming the
file, the sample index and the cause. With ``skip_bad`` the dataset returns a
:class:`SkippedSample` instead; the collate drops it and lists it under the
batch's ``"skipped"`` key, so the trainer counts and reports every one (log
and metrics). Nothing is replaced by another sample behind the caller's back.

Loading runs in DataLoader worker processes (:func:`worker_context`: started
from a fork server by default); the dataset and the collate are plain
picklable objects sent to each worker once, then only indices travel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from ..errors import DataError, LlavaSTError
from .formats._io import AnnotationError, is_jsonl, iter_jsonl, load_json_list
from .formats.release_sft import SFTSample, parse_sft_sample, read_release_sft
from .mix import MixEntry, Strategy, read_mix, select_entry

#: The ``meta`` key in which a video sample states how many frames it was annotated for.
FRAMES_KEY = "sample_frames"
_PLACEHOLDER_RE = re.compile(r"<(?:TEMP|HEIGHT|WIDTH)-(?:INPUT|OUTPUT)>")
#: Tokens the chat template adds around a conversation (system turn, headers), for length estimates.
_TEMPLATE_TOKENS = 24


@dataclass(frozen=True)
class SkippedSample:
    """A sample that failed to load under ``skip_bad``: where it is and why."""

    file: str
    index: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "index": self.index, "reason": self.reason}


@dataclass
class SFTDataset(torch.utils.data.Dataset):
    """Training samples of a mix, encoded on access (see the module docstring).

    Attributes:
        entries: the mix's sources.
        items: ``(source number, sample)`` per dataset index.
        processor: a :class:`~llava_st.processor.LlavaSTProcessor`.
        num_frames: frames sampled from a video whose ``meta`` does not state
            ``sample_frames``.
        skip_bad: return :class:`SkippedSample` for a sample that fails instead of raising.
        read_skips: samples the mix selected that were malformed in their file
            (only with ``skip_bad``; without it reading raises).
        lengths: an estimate of each sample's token count (for length grouping).
        counts: ``(kept, available)`` samples per source (for the log).
        targets: optional ``targets(data_folder, sample, encoded)`` giving extra
            per-sample training targets (e.g. :class:`~llava_st.train.auxiliary.DenseTargetSource`
            for stage 0); an item is then ``(encoded sample, targets)``.
    """

    entries: list[MixEntry]
    items: list[tuple[int, SFTSample]]
    processor: Any
    num_frames: int
    skip_bad: bool = False
    read_skips: list[SkippedSample] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    counts: list[tuple[int, int]] = field(default_factory=list)
    targets: Any = None

    def __post_init__(self) -> None:
        if not self.lengths:
            self.lengths = [self.estimate_length(s) for _, s in self.items]

    def __len__(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------ frames & lengths
    def frames_of(self, sample: SFTSample, source: int | None = None) -> int:
        """``T`` for a video sample: ``meta.sample_frames`` when given, else :attr:`num_frames`."""
        stated = sample.meta.get(FRAMES_KEY)
        if stated is None:
            return self.num_frames
        if isinstance(stated, bool) or not isinstance(stated, int) or stated < 1:
            where = self.entries[source].json_path if source is not None else "<sample>"
            raise DataError(f"{where}: sample {sample.index}: meta.{FRAMES_KEY} must be a whole number >= 1, got {stated!r}")
        return stated

    def estimate_length(self, sample: SFTSample) -> int:
        """Approximate tokens of a sample without tokenizing it: the visual run (exact), one per
        placeholder, about one per 4 other characters, plus the chat template."""
        config = self.processor.config
        text = "".join(t.text for t in sample.conversations)
        placeholders = len(_PLACEHOLDER_RE.findall(text))
        chars = len(_PLACEHOLDER_RE.sub("", text))
        visual = 0
        if sample.media_kind == "image":
            visual = config.image_token_count
        elif sample.media_kind == "video":
            stated = sample.meta.get(FRAMES_KEY)
            t = stated if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0 else self.num_frames
            visual = config.video_fast_token_count(t) + config.video_slow_token_count(t)
        return visual + placeholders + math.ceil(chars / 4) + _TEMPLATE_TOKENS

    # ------------------------------------------------------------------ loading
    def describe(self, i: int) -> str:
        """``<file>: sample <index> (id ...)`` for messages."""
        source, sample = self.items[i]
        return f"{self.entries[source].json_path}: sample {sample.index} (id {sample.id!r})"

    def load_media(self, source: int, sample: SFTSample):
        """The decoded media of a sample: uint8 ``[T, H, W, 3]`` frames, ``[H, W, 3]``, or None."""
        from ..media import load_image, load_video

        if sample.media_kind is None:
            return None
        path = self.entries[source].data_folder / sample.media
        if sample.media_kind == "image":
            return load_image(path)
        clip = load_video(path, self.frames_of(sample, source), frame_range=sample.split)
        return clip.frames

    def encode(self, i: int):
        """Sample ``i`` as an :class:`~llava_st.processor.EncodedSample` (raises on failure)."""
        source, sample = self.items[i]
        media = self.load_media(source, sample)
        encoded = self.processor.encode(
            [t.to_dict() for t in sample.conversations], media, variables=sample.variables.to_dict()
        )
        if self.targets is None:
            return encoded
        return encoded, self.targets(self.entries[source].data_folder, sample, encoded)

    def __getitem__(self, i: int):
        try:
            return self.encode(i)
        except (LlavaSTError, OSError) as exc:
            source, sample = self.items[i]
            reason = f"{type(exc).__name__}: {exc}"
            if self.skip_bad:
                return SkippedSample(str(self.entries[source].json_path), sample.index, reason)
            media = f", {sample.media_kind} {sample.media}" if sample.media_kind else ""
            raise DataError(f"{self.describe(i)}{media}: {reason}") from exc


def _read_source(entry: MixEntry, skip_bad: bool) -> tuple[list[SFTSample | SkippedSample], int]:
    """Every record of a training file, parsed; with ``skip_bad`` a malformed record becomes a
    :class:`SkippedSample` (a file that cannot be read at all still raises)."""
    if not skip_bad:
        samples = read_release_sft(entry.json_path)
        return list(samples), len(samples)
    path = entry.json_path
    records = iter_jsonl(path) if is_jsonl(path) else load_json_list(path)
    out: list[SFTSample | SkippedSample] = []
    for i, record in enumerate(records):
        try:
            out.append(parse_sft_sample(record, path, i))
        except AnnotationError as exc:
            out.append(SkippedSample(str(path), i, f"{type(exc).__name__}: {exc}"))
    return out, len(out)


def build_mix_dataset(
    mix: str | Path,
    processor,
    *,
    seed: int,
    num_frames: int | None = None,
    skip_bad: bool = False,
    targets: Any = None,
) -> SFTDataset:
    """Read a training mix into an :class:`SFTDataset`.

    Args:
        mix: the mix YAML (:func:`llava_st.data.mix.read_mix`).
        processor: the model's :class:`~llava_st.processor.LlavaSTProcessor`.
        seed: for ``random:N`` strategies.
        num_frames: frames for videos whose ``meta`` states none (default: the model config's).
        skip_bad: see the module docstring.
        targets: see :class:`SFTDataset`.

    Raises:
        DataError: a bad mix or (without ``skip_bad``) a malformed sample, naming file and index.
    """
    entries = read_mix(mix)
    frames = int(num_frames if num_frames is not None else processor.config.num_frames)
    items: list[tuple[int, SFTSample]] = []
    read_skips: list[SkippedSample] = []
    counts = []
    for s, entry in enumerate(entries):
        records, n = _read_source(entry, skip_bad)
        keep = select_entry(entry, n, seed)
        counts.append((len(keep), n))
        for i in keep:
            r = records[i]
            if isinstance(r, SkippedSample):
                read_skips.append(r)
            else:
                items.append((s, r))
    if not items:
        raise DataError(f"{mix}: the mix selects no usable sample")
    return SFTDataset(entries, items, processor, frames, skip_bad, read_skips, counts=counts, targets=targets)


def file_dataset(
    json_path: str | Path,
    data_folder: str | Path,
    processor,
    *,
    limit: int | None = None,
    targets: Any = None,
) -> SFTDataset:
    """An :class:`SFTDataset` over the first ``limit`` samples (default all) of one training-format
    file whose media paths start at ``data_folder`` (for scoring held-out files; a training run
    reads a mix with :func:`build_mix_dataset`).

    Raises:
        DataError: a malformed file, or one with no sample.
    """
    json_path = Path(json_path)
    samples = read_release_sft(json_path)[:limit]
    if not samples:
        raise DataError(f"{json_path}: no samples")
    entry = MixEntry(json_path, Path(data_folder), json_path.stem, Strategy("all"))
    return SFTDataset([entry], [(0, s) for s in samples], processor, int(processor.config.num_frames), targets=targets)


def worker_context(method: str = "forkserver"):
    """The multiprocessing context DataLoader workers start with.

    ``forkserver`` (the default) starts workers from a clean server process that
    has imported this module (and so torch) once: a worker inherits no state of
    the training process (its CUDA context, its memory, other libraries'
    threads) and does not depend on what that process did before. ``fork``
    copies the parent as it is and needs no pickling of the dataset; it is safe
    after the parent decoded video with :mod:`llava_st.media`, which keeps no
    FFmpeg object that owns threads beyond the call that made it (a copy of one
    in a forked worker used to hang it: see :mod:`llava_st.media.video`, "Fork";
    ``tests/media/test_video_fork.py`` checks it). ``spawn`` works everywhere.
    """
    import multiprocessing

    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["llava_st.data.dataset"])
    return ctx


class TrainCollator:
    """Pads a micro-batch of :class:`SFTDataset` items into the model's training inputs.

    Returns a plain dict: the processor's keys (``input_ids``, ``attention_mask``,
    ``coord_values``, ``labels`` ``[B, L]``; ``pixel_values``, ``modalities`` lists)
    plus ``skipped`` (a list of :class:`SkippedSample` dicts) and ``size`` (B). A
    micro-batch whose every sample was skipped has only ``skipped`` and ``size`` 0.
    Items that carry extra targets (``(sample, targets)``, see :class:`SFTDataset`)
    give ``dense_targets``, the list of the batch's targets in batch order.
    """

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, items: Sequence[Any]) -> dict[str, Any]:
        good = [x for x in items if not isinstance(x, SkippedSample)]
        skipped = [x.to_dict() for x in items if isinstance(x, SkippedSample)]
        if not good:
            return {"skipped": skipped, "size": 0}
        extra = None
        if good and isinstance(good[0], tuple):
            good, extra = [x[0] for x in good], [x[1] for x in good]
        batch = dict(self.processor.collate(good, padding_side="right"))
        if extra is not None:
            batch["dense_targets"] = extra
        batch["skipped"] = skipped
        batch["size"] = len(good)
        return batch


class LengthGroupedBatchSampler(torch.utils.data.Sampler):
    """Micro-batches of one rank, grouped by length, in optimizer-step order.

    One epoch, for ``n`` samples and a global batch ``G = per_device * world * grad_accum``:

    1. shuffle ``0..n-1`` with a generator seeded by ``seed + epoch``;
    2. cut the permutation into mega-batches of ``G * group_size`` samples and sort
       each by estimated length, longest first (stable), so that a global batch
       holds samples of similar length and padding is small;
    3. cut the mega-batches into global batches of ``G`` (a last partial one is
       dropped: every rank must take the same number of steps) and shuffle their order;
    4. global batch ``s`` is ``grad_accum`` rounds of ``world`` micro-batches of
       ``per_device`` consecutive samples; rank ``r`` takes micro-batch ``r`` of each round.

    Without ``group_by_length`` step 2 keeps the shuffled order. The global
    batches depend only on ``(n, lengths, seed, epoch, G, group_size)``, so two
    ranks with ``per_device = 1`` see the same samples per step as one rank with
    ``per_device = 2``.

    Example: ``n = 10``, ``per_device = 2``, ``world = 1``, ``grad_accum = 2``:
    ``G = 4``, two steps per epoch (2 samples dropped), four micro-batches of 2.

    ``start_step`` skips the first steps of the epoch (resuming at an optimizer step).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        per_device: int,
        world_size: int = 1,
        rank: int = 0,
        grad_accum: int = 1,
        seed: int = 0,
        epoch: int = 0,
        start_step: int = 0,
        group_by_length: bool = True,
        group_size: int = 16,
    ):
        if per_device < 1 or world_size < 1 or grad_accum < 1 or group_size < 1:
            raise ValueError("per_device, world_size, grad_accum and group_size must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.lengths = list(lengths)
        self.per_device, self.world_size, self.rank, self.grad_accum = per_device, world_size, rank, grad_accum
        self.seed, self.epoch, self.start_step = seed, epoch, start_step
        self.group_by_length, self.group_size = group_by_length, group_size
        if self.steps_per_epoch < 1:
            raise DataError(
                f"{len(self.lengths)} samples do not fill one global batch of {self.global_batch} "
                f"(per_device {per_device} x {world_size} processes x grad_accum {grad_accum})"
            )
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} is outside [0, {self.steps_per_epoch}]")

    def set_position(self, epoch: int, start_step: int = 0) -> None:
        """Make the next iteration the one of ``epoch`` from ``start_step`` (a DataLoader with
        persistent workers iterates the same sampler object epoch after epoch)."""
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} is outside [0, {self.steps_per_epoch}]")
        self.epoch, self.start_step = epoch, start_step

    @property
    def global_batch(self) -> int:
        return self.per_device * self.world_size * self.grad_accum

    @property
    def steps_per_epoch(self) -> int:
        return len(self.lengths) // self.global_batch

    def global_batches(self) -> list[list[int]]:
        """Every global batch of the epoch (dataset indices), in step order."""
        gen = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(self.epoch))
        order = torch.randperm(len(self.lengths), generator=gen).tolist()
        if self.group_by_length:
            mega = self.global_batch * self.group_size
            grouped = []
            for start in range(0, len(order), mega):
                chunk = order[start : start + mega]
                grouped += sorted(chunk, key=lambda i: -self.lengths[i])
            order = grouped
        g = self.global_batch
        batches = [order[i * g : (i + 1) * g] for i in range(self.steps_per_epoch)]
        perm = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[p] for p in perm]

    def micro_batches(self, batch: Sequence[int]) -> list[list[int]]:
        """This rank's ``grad_accum`` micro-batches of one global batch."""
        p, w = self.per_device, self.world_size
        return [list(batch[(a * w + self.rank) * p : (a * w + self.rank + 1) * p]) for a in range(self.grad_accum)]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches()[self.start_step :]:
            yield from self.micro_batches(batch)

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.grad_accum


__all__ = [
    "FRAMES_KEY",
    "LengthGroupedBatchSampler",
    "SFTDataset",
    "SkippedSample",
    "TrainCollator",
    "build_mix_dataset",
    "file_dataset",
    "worker_context",
]
