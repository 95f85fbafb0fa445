"""``LlavaSTProcessor``: a conversation and its media -> model inputs (SPEC §2.7-2.8, §3, §7).

Notation: ``B`` samples, ``L`` tokens after padding, ``T`` frames, ``S`` the
tower's image size, ``N`` the visual positions of one sample.

Per sample, in the release's order:

1. the conversation is normalised (:func:`~.chat.normalize_conversation`);
2. coordinate markup becomes bare placeholders plus six ordered value lists
   (:func:`llava_st.protocol.coords.convert_conversation`; user/system turns INPUT,
   answers OUTPUT);
3. the one ``<image>`` / ``<video>`` tag is moved to the front of its turn
   (:func:`~.chat.place_media_tag`);
4. the chat template is applied (:func:`~.chat.render_chat`), with the tag
   standing in as one marker token, and the text is tokenized with character
   offsets;
5. that marker is replaced by the visual run built as an id tensor:
   image ``<im_start> + (N-2) x <im_patch> + <im_end>``, N = ``config.image_token_count``;
   video ``<vid_start> + (F-2) x <vid_patch> + <vid_end>`` then
   ``<slow_vid_start> + (S-2) x <vid_patch> + <slow_vid_end>``, F and S from
   the config for the sample's T;
6. labels come from the character offsets (see :class:`ProcessorOptions`),
   coordinate values are aligned with the placeholders
   (:func:`llava_st.protocol.tokens.values_from_variables`), pixels are preprocessed.

The output keys are exactly the model's inputs (:class:`ProcessorOutput`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch

from ..config import LlavaSTConfig
from ..protocol.bins import find_bins
from ..protocol.coords import CoordinateError, Variables, convert_conversation
from ..protocol.tokens import IGNORE_INDEX, IMAGE_MARKERS, PLACEHOLDERS, VIDEO_MARKERS, bin_tokens, values_from_variables
from .chat import (
    DEFAULT_SYSTEM_PROMPT,
    ChatText,
    Conversation,
    ConversationError,
    Message,
    TURN_END,
    TURN_START,
    find_media_tag,
    normalize_conversation,
    place_media_tag,
    render_chat,
)
from .decoding import decode_generated, to_release_answer
from .pixels import MediaError, media_pixels, num_frames
from .tokenizer import check_tokenizer, load_tokenizer, single_token_id
from ..errors import ConfigError, ProtocolError

LabelMode = Literal["ours", "release"]
PaddingSide = Literal["left", "right"]

PROCESSOR_FILE = "llava_st_processor.json"
_FORMAT = "llava_st_processor"
_FORMAT_VERSION = 1


@dataclass
class ProcessorOptions:
    """Choices of the processor that are not model sizes.

    ``label_mode``:
      * ``"ours"``: supervise each assistant turn's content and its closing
        ``<|im_end|>``; everything else is ``-100``.
      * ``"release"``: the release's labels (SPEC §7): every token of each
        assistant turn (header ``<|im_start|>assistant\\n`` and the ``"\\n"``
        after ``<|im_end|>`` included), plus every ``"\\n"``, ``<|im_start|>``
        and ``<|im_end|>`` token anywhere (system and user turns too, e.g. the
        ``"\\n"`` after the visual run). The release hard-codes id 198 for
        ``"\\n"``; we use the tokenizer's id of ``"\\n"`` (198 in Qwen2).
    ``padding_side``: ``None`` pads on the left when the batch asks for
    generation and on the right when it carries answers (training).
    ``max_length``: a sample longer than this raises (nothing is truncated).
    """

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    label_mode: LabelMode = "ours"
    padding_side: PaddingSide | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.system_prompt, str):
            raise ConfigError(f"system_prompt must be a string, got {type(self.system_prompt).__name__}")
        _check_choice("label_mode", self.label_mode, ("ours", "release"))
        _check_choice("padding_side", self.padding_side, ("left", "right", None))
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 1):
            raise ConfigError(f"max_length must be a positive int or None, got {self.max_length!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"format": _FORMAT, "version": _FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ProcessorOptions":
        data = dict(data)
        kind = data.pop("format", _FORMAT)
        if kind != _FORMAT:
            raise ConfigError(f"not a {_FORMAT} file: format is {kind!r}")
        version = data.pop("version", _FORMAT_VERSION)
        if version != _FORMAT_VERSION:
            raise ConfigError(f"{_FORMAT} version {version} is not supported (expected {_FORMAT_VERSION})")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown processor options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")


@dataclass
class EncodedSample:
    """One processed sample, before batching.

    ``input_ids`` ``[L]`` int64; ``coord_values`` ``[L]`` float64 (NaN where no
    placeholder); ``labels`` ``[L]`` int64 or None for a generation prompt;
    ``pixel_values`` float32 ``[T, 3, S, S]`` or None; ``modality`` ``"image"``,
    ``"video"`` or None; ``variables`` the release dict of value lists;
    ``text`` the chat text with the media tag and bare placeholders (before
    the visual run is expanded).
    """

    input_ids: torch.Tensor
    coord_values: torch.Tensor
    labels: torch.Tensor | None
    pixel_values: torch.Tensor | None
    modality: str | None
    variables: dict[str, list[float]]
    text: str


class ProcessorOutput(dict):
    """The model's inputs, plus per-sample debugging data as attributes.

    Keys: ``input_ids`` LongTensor ``[B, L]``; ``attention_mask`` LongTensor
    ``[B, L]`` (1 = token, 0 = padding); ``coord_values`` float64 ``[B, L]``
    (each placeholder's value at its position, NaN elsewhere); ``labels``
    LongTensor ``[B, L]`` (-100 = not supervised; only when every sample
    carries its answer); ``pixel_values`` list of B float32 ``[T_b, 3, S, S]``
    or None; ``modalities`` list of B ``"image"`` / ``"video"`` / None.

    Attributes (not keys, so ``model(**out)`` works): ``variables`` (B release
    dicts) and ``texts`` (B chat texts before the visual run is expanded).
    """

    def __init__(self, data: Mapping[str, Any], variables: list[dict[str, list[float]]], texts: list[str]):
        super().__init__(data)
        self.variables = variables
        self.texts = texts

    def to(self, device: torch.device | str) -> "ProcessorOutput":
        """A copy with every tensor (pixel lists included) on ``device``."""
        moved: dict[str, Any] = {}
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                moved[key] = value.to(device)
            elif key == "pixel_values":
                moved[key] = [None if p is None else p.to(device) for p in value]
            else:
                moved[key] = value
        return ProcessorOutput(moved, self.variables, self.texts)


@dataclass(frozen=True)
class _Prepared:
    chat: ChatText  # the media tag already replaced by the run's first marker
    text: str  # the same with the media tag, for debugging
    modality: str | None
    variables: Variables
    generation: bool


class LlavaSTProcessor:
    """Chat template, visual slots, tokenization, labels and coordinate values for LLaVA-ST.

    Example::

        proc = LlavaSTProcessor.from_pretrained("path/to/model")
        batch = proc("<video>\\nWhen does the dog jump? {0.1, 0.4}", media=frames)   # frames uint8 [T, H, W, 3]
        batch["input_ids"].shape        # [1, L]
        batch.variables[0]              # {'temporal_input_locations': [0.1, 0.4], ...}

    Args:
        tokenizer: a fast tokenizer with the release layout (checked against
            ``config`` with :func:`~.tokenizer.check_tokenizer`).
        config: the model config; it fixes the visual slot counts, the bins
            and the pixel size.
        options: :class:`ProcessorOptions` (defaults when None).
    """

    def __init__(self, tokenizer, config: LlavaSTConfig, options: ProcessorOptions | None = None):
        self.tokenizer = tokenizer
        self.config = config
        self.options = options or ProcessorOptions()
        self.token_ids = check_tokenizer(tokenizer, config)
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.eos_token_id = tokenizer.convert_tokens_to_ids(TURN_END)
        self.newline_id = single_token_id(tokenizer, "\n")
        self.turn_start_id = tokenizer.convert_tokens_to_ids(TURN_START)
        # Contents may not carry tokens that the template and the slot expansion
        # write themselves; placeholders and bin tokens are part of the text protocol.
        allowed = set(PLACEHOLDERS) | set(
            bin_tokens(config.coords.bins)
        )
        reserved = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
        reserved |= set(IMAGE_MARKERS) | set(VIDEO_MARKERS) | {TURN_START, TURN_END}
        self._reserved_re = re.compile("|".join(re.escape(t) for t in sorted(reserved - allowed, key=len, reverse=True)))
        self._sentinel = {"image": IMAGE_MARKERS[0], "video": VIDEO_MARKERS[0]}

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        config: LlavaSTConfig | None = None,
        options: ProcessorOptions | None = None,
        revision: str | None = None,
    ) -> "LlavaSTProcessor":
        """Load from a model folder: tokenizer files, ``config.json`` and, if present, ``llava_st_processor.json``.

        ``folder`` may also be a model shipped with the package or a Hugging Face Hub
        repository id (``org/name``, ``org/name@revision`` or ``revision=``), resolved by
        :func:`llava_st.zoo.model_path`.
        """
        from ..zoo import model_path

        folder = model_path(folder, revision=revision)
        if config is None:
            config = LlavaSTConfig.from_pretrained(folder)
        if options is None:
            path = folder / PROCESSOR_FILE
            options = ProcessorOptions.from_dict(json.loads(path.read_text())) if path.is_file() else None
        return cls(load_tokenizer(folder), config, options)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the tokenizer files and ``llava_st_processor.json``; also ``config.json`` if the folder lacks one."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(folder))
        (folder / PROCESSOR_FILE).write_text(json.dumps(self.options.to_dict(), indent=2) + "\n")
        if not (folder / "config.json").is_file():
            self.config.to_json_file(folder / "config.json")

    # ------------------------------------------------------------ visual run
    def visual_run(self, modality: str, num_frames: int = 1) -> torch.Tensor:
        """The ``[N]`` int64 ids that stand for one image or one video of ``num_frames`` frames.

        Example (7B release, T = 100): a video is ``<vid_start>``, 898
        ``<vid_patch>``, ``<vid_end>`` (900 fast positions), then
        ``<slow_vid_start>``, 1618 ``<vid_patch>``, ``<slow_vid_end>`` (1620
        slow positions): N = 2520. An image is 729 positions.
        """
        ids = self.token_ids
        if modality == "image":
            n = self.config.image_token_count
            run = torch.full((n,), ids.im_patch, dtype=torch.long)
            run[0], run[-1] = ids.im_start, ids.im_end
            return run
        if modality == "video":
            self.config.check_video_frames(num_frames)
            fast = self.config.video_fast_token_count(num_frames)
            slow = self.config.video_slow_token_count(num_frames)
            run = torch.full((fast + slow,), ids.vid_patch, dtype=torch.long)
            run[0], run[fast - 1] = ids.vid_start, ids.vid_end
            run[fast], run[-1] = ids.slow_vid_start, ids.slow_vid_end
            return run
        raise ProtocolError(f"modality must be 'image' or 'video', got {modality!r}")

    # ---------------------------------------------------------------- text
    def prepare_text(
        self,
        conversation: str | Sequence[Mapping[str, Any]],
        variables: Mapping[str, Sequence[float]] | None = None,
        system_prompt: str | None = None,
    ) -> _Prepared:
        """Steps 1-4 of the module docstring, up to (not including) tokenization."""
        conv = normalize_conversation(conversation)
        messages = list(conv.messages)
        if system_prompt is not None and messages[0].role == "system":
            raise ConversationError("the conversation has a system turn and a system_prompt was also given")
        turns, found = convert_conversation([{"role": m.role, "content": m.content} for m in messages], variables)
        messages = [Message(m.role, t["content"]) for m, t in zip(messages, turns)]
        for i, message in enumerate(messages):
            self._check_content(i, message)
        modality = None
        tagged = find_media_tag(messages)
        text_messages = messages
        if tagged is not None:
            index, tag = tagged
            modality = "image" if tag == "<image>" else "video"
            placed = place_media_tag(messages[index].content, tag, self.config.media_position)
            messages[index] = Message("user", placed.replace(tag, self._sentinel[modality], 1))
            text_messages = list(messages)
            text_messages[index] = Message("user", placed)
        system = self.options.system_prompt if system_prompt is None else system_prompt
        chat = render_chat(Conversation(tuple(messages), conv.generation), system)
        text = render_chat(Conversation(tuple(text_messages), conv.generation), system).text
        return _Prepared(chat, text, modality, found, conv.generation)

    def _check_content(self, index: int, message: Message) -> None:
        hit = self._reserved_re.search(message.content)
        if hit:
            raise ConversationError(
                f"turn {index} ({message.role}) contains {hit.group(0)!r}, a token that the processor writes "
                f"itself; remove it from the text: {message.content[:120]!r}"
            )
        bins = self.config.coords.bins
        for axis, k, _, _ in find_bins(message.content):
            if k >= bins.of(axis):
                raise CoordinateError(
                    f"turn {index} ({message.role}) holds the bin token <{axis}-{k:03d}>, outside this model's "
                    f"{bins.of(axis)} {axis} bins: {message.content[:120]!r}"
                )

    # ------------------------------------------------------------ samples
    def encode(
        self,
        conversation: str | Sequence[Mapping[str, Any]],
        media: Any = None,
        *,
        variables: Mapping[str, Sequence[float]] | None = None,
        system_prompt: str | None = None,
        label_mode: LabelMode | None = None,
    ) -> EncodedSample:
        """Process one sample (see the module docstring); :meth:`collate` batches samples."""
        return self._encode_many([conversation], [media], [variables], system_prompt, label_mode)[0]

    def _encode_many(
        self,
        conversations: Sequence[Any],
        media: Sequence[Any],
        variables: Sequence[Mapping[str, Sequence[float]] | None],
        system_prompt: str | None,
        label_mode: LabelMode | None,
    ) -> list[EncodedSample]:
        mode = self.options.label_mode if label_mode is None else label_mode
        _check_choice("label_mode", mode, ("ours", "release"))
        prepared = []
        for i, (conversation, item, given) in enumerate(zip(conversations, media, variables)):
            with _sample_context(i, len(conversations)):
                p = self.prepare_text(conversation, given, system_prompt)
                if p.modality is None and item is not None:
                    raise MediaError(
                        "media were given but the conversation has no <image> or <video> tag to place them"
                    )
                if p.modality is not None and item is None:
                    raise MediaError(f"the conversation holds a <{p.modality}> tag but no media were given")
                prepared.append(p)
        encodings = self.tokenizer(
            [p.chat.text for p in prepared], add_special_tokens=False, return_offsets_mapping=True
        )
        samples = []
        for i, (p, item) in enumerate(zip(prepared, media)):
            with _sample_context(i, len(prepared)):
                ids = np.asarray(encodings["input_ids"][i], dtype=np.int64)
                offsets = np.asarray(encodings["offset_mapping"][i], dtype=np.int64).reshape(-1, 2)
                labels = None if p.generation else self._labels(ids, offsets, p.chat, mode)
                pixels = None
                if p.modality is not None:
                    t = num_frames(item, p.modality)
                    pixels = media_pixels(item, p.modality, self.config.vision)
                    ids, labels = self._splice_run(ids, labels, p.modality, t)
                input_ids = torch.from_numpy(ids)
                if self.options.max_length is not None and len(input_ids) > self.options.max_length:
                    raise ProtocolError(
                        f"the sample has {len(input_ids)} tokens, more than max_length {self.options.max_length}"
                    )
                coord_values = values_from_variables(input_ids, p.variables.to_dict(), self.token_ids)
                samples.append(
                    EncodedSample(
                        input_ids=input_ids,
                        coord_values=coord_values,
                        labels=None if labels is None else torch.from_numpy(labels),
                        pixel_values=pixels,
                        modality=p.modality,
                        variables=p.variables.to_dict(),
                        text=p.text,
                    )
                )
        return samples

    def _labels(self, ids: np.ndarray, offsets: np.ndarray, chat: ChatText, mode: str) -> np.ndarray:
        """``[n]`` labels from the tokens' character offsets ``[n, 2]``: a token is supervised
        when its characters overlap a supervised span."""
        spans = chat.answer_spans if mode == "ours" else chat.assistant_turn_spans
        keep = np.zeros(len(ids), dtype=bool)
        for start, end in spans:
            keep |= (offsets[:, 0] < end) & (offsets[:, 1] > start)
        if mode == "release":
            keep |= np.isin(ids, [self.newline_id, self.turn_start_id, self.eos_token_id])
        return np.where(keep, ids, IGNORE_INDEX)

    def _splice_run(
        self, ids: np.ndarray, labels: np.ndarray | None, modality: str, frames: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Replace the one stand-in marker by the visual run (labels there are -100)."""
        sentinel = getattr(self.token_ids, _FIELD_OF[self._sentinel[modality]])
        where = np.flatnonzero(ids == sentinel)
        if len(where) != 1:
            raise ProtocolError(f"expected the {modality} stand-in token once in the tokenized text, found {len(where)}")
        p = int(where[0])
        run = self.visual_run(modality, frames).numpy()
        ids = np.concatenate([ids[:p], run, ids[p + 1 :]])
        if labels is not None:
            labels = np.concatenate([labels[:p], np.full(len(run), IGNORE_INDEX, dtype=np.int64), labels[p + 1 :]])
        return ids, labels

    # -------------------------------------------------------------- batches
    def collate(self, samples: Sequence[EncodedSample], padding_side: PaddingSide | None = None) -> ProcessorOutput:
        """Pad samples into one batch (see :class:`ProcessorOutput` for the keys).

        Padding: ``input_ids`` with the tokenizer's pad id, ``attention_mask``
        0, ``coord_values`` NaN, ``labels`` -100, on ``padding_side`` (default:
        the options', else left for generation and right for training).

        Raises:
            ValueError: an empty batch, or one that mixes generation prompts
                and samples with answers.
        """
        if not samples:
            raise ProtocolError("cannot collate an empty batch")
        with_labels = [s.labels is not None for s in samples]
        if any(with_labels) and not all(with_labels):
            rows = [i for i, w in enumerate(with_labels) if not w]
            raise ProtocolError(
                f"the batch mixes samples with answers (training) and generation prompts (samples {rows}); "
                "batch them separately"
            )
        side = padding_side if padding_side is not None else self.options.padding_side
        if side is None:
            side = "right" if all(with_labels) else "left"
        _check_choice("padding_side", side, ("left", "right"))
        b, length = len(samples), max(len(s.input_ids) for s in samples)
        input_ids = torch.full((b, length), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((b, length), dtype=torch.long)
        values = torch.full((b, length), float("nan"), dtype=torch.float64)
        labels = torch.full((b, length), IGNORE_INDEX, dtype=torch.long) if all(with_labels) else None
        for row, s in enumerate(samples):
            n = len(s.input_ids)
            cols = slice(length - n, length) if side == "left" else slice(0, n)
            input_ids[row, cols] = s.input_ids
            attention[row, cols] = 1
            values[row, cols] = s.coord_values
            if labels is not None:
                labels[row, cols] = s.labels
        data: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention, "coord_values": values}
        if labels is not None:
            data["labels"] = labels
        data["pixel_values"] = [s.pixel_values for s in samples]
        data["modalities"] = [s.modality for s in samples]
        return ProcessorOutput(data, [s.variables for s in samples], [s.text for s in samples])

    def __call__(
        self,
        conversations: str | Sequence[Any],
        media: Any = None,
        *,
        variables: Mapping[str, Sequence[float]] | Sequence[Mapping[str, Sequence[float]] | None] | None = None,
        system_prompt: str | None = None,
        label_mode: LabelMode | None = None,
        padding_side: PaddingSide | None = None,
    ) -> ProcessorOutput:
        """Process one sample or a batch.

        ``conversations``: a prompt string, a list of turns (one sample), a
        list of prompt strings or a list of turn lists (a batch). For a batch,
        ``media`` and ``variables`` are lists of the same length (entries may
        be None); for one sample they are the single item. A conversation
        that ends with the assistant's answer is a training sample (labels are
        returned); one that ends with a user turn asks for generation.
        """
        batch = _is_batch(conversations)
        if batch:
            conversations = list(conversations)
            media = _per_sample("media", media, len(conversations))
            variables = _per_sample("variables", variables, len(conversations))
        else:
            conversations, media, variables = [conversations], [media], [variables]
        samples = self._encode_many(conversations, media, variables, system_prompt, label_mode)
        return self.collate(samples, padding_side)

    # ------------------------------------------------------------- decoding
    def batch_decode(self, token_ids: torch.Tensor | Sequence[Sequence[int]], release_form: bool = False) -> list[str]:
        """Generated ids ``[B, N]`` -> texts, cut at ``<|im_end|>``, padding dropped, bin tokens kept.

        With ``release_form`` each bin token is written as the release writes
        it (``{<TEMP-012><TEMP-056>}`` -> ``{0.12121,0.56566}``).
        """
        texts = decode_generated(token_ids, self.tokenizer, eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id)
        if release_form:
            c = self.config.coords
            texts = [to_release_answer(t, c.bins) for t in texts]
        return texts

    def decode(self, token_ids: torch.Tensor | Sequence[int], release_form: bool = False) -> str:
        """One generated sequence ``[N]`` -> text (see :meth:`batch_decode`)."""
        ids = token_ids.tolist() if isinstance(token_ids, torch.Tensor) else list(token_ids)
        if ids and not isinstance(ids[0], int):
            raise ProtocolError("decode takes one sequence of ids [N]; use batch_decode for [B, N]")
        return self.batch_decode([ids], release_form=release_form)[0]


_FIELD_OF = {IMAGE_MARKERS[0]: "im_start", VIDEO_MARKERS[0]: "vid_start"}


def _is_batch(conversations: Any) -> bool:
    if isinstance(conversations, str):
        return False
    if isinstance(conversations, Mapping) or not isinstance(conversations, Sequence):
        raise ConversationError(
            f"conversations must be a prompt, a list of turns or a list of those; got {type(conversations).__name__}"
        )
    if len(conversations) == 0:
        raise ConversationError("no conversation given (empty list)")
    first = conversations[0]
    return isinstance(first, str) or (isinstance(first, Sequence) and not isinstance(first, Mapping))


def _per_sample(name: str, value: Any, batch_size: int) -> list[Any]:
    if value is None:
        return [None] * batch_size
    if not isinstance(value, (list, tuple)):
        raise ProtocolError(f"for a batch of {batch_size}, {name} must be a list of {batch_size} entries (None allowed)")
    if len(value) != batch_size:
        raise ProtocolError(f"{name} has {len(value)} entries for a batch of {batch_size}")
    return list(value)


class _sample_context:
    """Prefix errors raised while processing one sample of a batch with its index."""

    def __init__(self, index: int, batch_size: int):
        self.index, self.batch_size = index, batch_size

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and self.batch_size > 1 and isinstance(exc, ValueError):
            try:
                new = type(exc)(f"sample {self.index}: {exc}")
            except TypeError:
                return False
            raise new from exc
        return False


__all__ = [
    "EncodedSample",
    "IGNORE_INDEX",
    "LabelMode",
    "LlavaSTProcessor",
    "PROCESSOR_FILE",
    "PaddingSide",
    "ProcessorOptions",
    "ProcessorOutput",
]
