"""Training samples for the nine tasks (SPEC §1), in the release's training format (SPEC §4).

Each builder writes the conversation with plain coordinates first (``{0.2,
0.6}`` spans, ``[x1, y1, x2, y2]`` boxes, ``Starts in 0.3``, ``<t0.25>`` for a
lone time value such as a frame key or ``Ends in``), then
:func:`llava_st.protocol.coords.convert_conversation` turns them into bare placeholders
and the six ``variables`` lists, so the placeholder counts equal the value
counts by construction.

Coordinates are those the model sees (SPEC §1, §2.1): over the sample's
``meta.split = [a, b]`` the sampler picks ``T`` frames ``idx_i``; a time is
``i / (T - 1)`` for a sampled frame ``i``; a span runs from the first to the
last sampled frame inside the event; a per-frame box list has one
``t: [x1, y1, x2, y2]`` pair per sampled frame inside the span on which the
object is visible (t = ``i / (T - 1)``, so bin ``i`` when T = 100). Boxes are
normalised by the frame size. Every value is rounded to 3 decimals, as the
release does.

Answer grammars (after conversion each number is a placeholder):
REC ``[x1, y1, x2, y2]``; REG a description; DGC a sentence with a box after
each phrase; TVG ``{s, e}``; TR a caption; DVC ``{s, e}, caption.`` per event;
STVG ``During the span of {s, e}. Object bounding box: t: [..], t: [..]``;
SVG ``Object bounding box: t: [..], ...``; ELC ``Ends in e, caption. Object
bounding box: t: [..], ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..protocol import prompts
from ..protocol.coords import convert_conversation, format_box, format_span, format_value, round3
from . import language as lang
from .config import SynthConfig
from .render import Raster
from .scene import Scene, SceneEvent
from ..protocol.timebase import sample_frame_indices
from .timeline import sampled_span, time_value

SOURCE = "st-synth"


class NoSample(RuntimeError):
    """The item cannot yield a sample of some task (the caller draws a new scene)."""


@dataclass
class Item:
    """A rendered scene with everything the builders need.

    ``name``: ``v000012`` / ``i000012``; ``media``: path of the video or image
    relative to the dataset folder; ``events``: the final events (spans read
    from the pixels); ``pan``: direction words of the camera pan or None.
    """

    name: str
    media: str
    scene: Scene
    raster: Raster
    events: list[SceneEvent]
    pan: str | None = None


@dataclass
class Choice:
    """What one video sample is about: an object over absolute frames ``[start, end]`` of the clip ``split``.

    ``indices``: the ``T`` sampled frame ids over ``split``; ``span``: the first
    and last sample index inside ``[start, end]``.
    """

    task: str
    object: int | None  # None: about the whole video (DVC, captions)
    start: int
    end: int
    split: tuple[int, int]
    indices: list[int]
    span: tuple[int, int]
    event: int | None = None
    template: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- formatting helpers


def norm_box(box: tuple[int, int, int, int], width: int, height: int) -> list[float]:
    """Pixel xyxy (exclusive end) -> normalised ``[x1/W, y1/H, x2/W, y2/H]`` rounded to 3 decimals."""
    x1, y1, x2, y2 = box
    return [round3(x1 / width), round3(y1 / height), round3(x2 / width), round3(y2 / height)]


def record(
    sample_id: str, media_key: str, media_path: str, human: str, gpt: str, meta: dict[str, Any]
) -> dict[str, Any]:
    """One training sample: text with bare placeholders plus ``variables`` (release key names)."""
    turns, variables = convert_conversation([{"from": "human", "value": human}, {"from": "gpt", "value": gpt}])
    return {
        "id": sample_id,
        media_key: media_path,
        "conversations": turns,
        "variables": variables.to_dict(),
        "meta": meta,
    }


# ---------------------------------------------------------------- video samples


class VideoBuilder:
    """Builds the video samples of one item; ``rng`` decides every free choice."""

    def __init__(self, item: Item, config: SynthConfig, rng: np.random.Generator):
        self.item = item
        self.scene = item.scene
        self.config = config
        self.rng = rng
        self.T = config.video.sample_frames
        self.F = item.scene.num_frames
        self.test = item.scene.split == "test"

    # -- choices

    def _spans(self, split: tuple[int, int], start: int, end: int) -> tuple[list[int], tuple[int, int]] | None:
        indices = sample_frame_indices(split[0], split[1], self.T).tolist()
        span = sampled_span(indices, start, end)
        if span is None or span[1] - span[0] < 2:
            return None
        return indices, span

    def choose_split(self, start: int, end: int) -> tuple[tuple[int, int], list[int], tuple[int, int]]:
        """The clip of a sample about frames ``[start, end]``: the whole video or, sometimes, a sub-range holding it."""
        if self.rng.random() < self.config.tasks.subclip_prob:
            a = int(self.rng.integers(0, start + 1))
            b = int(self.rng.integers(end, self.F))
            found = self._spans((a, b), start, end) if b > a else None
            if found is not None:
                return (a, b), *found
        found = self._spans((0, self.F - 1), start, end)
        if found is None:
            raise NoSample(f"frames [{start}, {end}] cover fewer than three sampled frames")
        return (0, self.F - 1), *found

    def events_for(self, count: int) -> list[int]:
        """Indices into ``item.events`` for ``count`` samples: the target's event in the test split,
        otherwise distinct events in random order (repeating when there are fewer events than samples)."""
        events = self.item.events
        if not events:
            raise NoSample("the video has no events")
        if self.test:
            own = [n for n, ev in enumerate(events) if ev.object == 0]
            if not own:
                raise NoSample("the test video has no event on its target")
            return [own[0]] * count
        order = [int(i) for i in self.rng.permutation(len(events))]
        return [order[k % len(order)] for k in range(count)]

    def event_choice(self, task: str, n: int) -> Choice:
        ev = self.item.events[n]
        split, indices, span = self.choose_split(ev.start, ev.end)
        return Choice(task, ev.object, ev.start, ev.end, split, indices, span, event=n)

    def window_choice(self, task: str) -> Choice:
        """SVG: an object over an event span or a random window in which it is seen on sampled frames."""
        if self.rng.random() < 0.5:
            candidates = [n for n, ev in enumerate(self.item.events) if (ev.object == 0 or not self.test)]
            if candidates:
                n = candidates[int(self.rng.integers(len(candidates)))]
                choice = self.event_choice(task, n)
                if self.track_pairs(choice):
                    return choice
        for _ in range(30):
            obj = 0 if self.test else int(self.rng.integers(len(self.scene.objects)))
            length = int(round(float(self.rng.uniform(0.2, 0.6)) * self.F))
            start = int(self.rng.integers(0, self.F - length))
            end = start + length
            found = self._spans((0, self.F - 1), start, end)
            if found is None:
                continue
            split, indices, span = self.choose_split(start, end)
            choice = Choice(task, obj, start, end, split, indices, span)
            if len(self.track_pairs(choice)) >= 2:
                return choice
        raise NoSample("no object is seen long enough for a spatial grounding sample")

    # -- text pieces

    def time(self, i: int) -> float:
        return time_value(i, self.T)

    def span_of(self, choice: Choice) -> str:
        return format_span(self.time(choice.span[0]), self.time(choice.span[1]))

    def track_pairs(self, choice: Choice) -> list[str]:
        """``<t..>: [x1, y1, x2, y2]`` for sampled frames inside the span where the object is visible."""
        assert choice.object is not None
        W, H = self.scene.width, self.scene.height
        out = []
        for i in range(choice.span[0], choice.span[1] + 1, self.config.tasks.box_stride):
            box = self.item.raster.box(choice.object, choice.indices[i])
            if box is not None:
                out.append(f"<t{format_value(self.time(i))}>: {format_box(norm_box(box, W, H))}")
        return out

    def track(self, choice: Choice) -> str:
        pairs = self.track_pairs(choice)
        if not pairs:
            raise NoSample(f"object {choice.object} is not visible on any sampled frame of its span")
        return ", ".join(pairs)

    def meta(self, choice: Choice) -> dict[str, Any]:
        m: dict[str, Any] = {
            "split": [choice.split[0], choice.split[1]],
            "task": choice.task,
            "source": SOURCE,
            "subset": self.scene.split,
            "scene": self.item.name,
        }
        if choice.object is not None:
            m["object"] = choice.object
        if choice.event is not None:
            m["event"] = choice.event
        m.update(
            num_frames=self.F, fps=self.scene.fps, width=self.scene.width, height=self.scene.height, sample_frames=self.T
        )
        return m

    def sample(self, choice: Choice, n: int, human: str, gpt: str) -> dict[str, Any]:
        sid = f"{SOURCE}/{choice.task}/{self.item.name}/{n}"
        return record(sid, "video", self.item.media, "<video>\n" + human, gpt, self.meta(choice))

    # -- the tasks

    def tvg(self, n: int, event: int) -> tuple[dict, Choice]:
        c = self.event_choice("tvg", event)
        c.template = lang.pick(self.rng, lang.TVG_TEMPLATES)
        query = self.item.events[event].caption
        return self.sample(c, n, c.template.format(x=query), self.span_of(c)), c

    def tr(self, n: int, event: int) -> tuple[dict, Choice]:
        c = self.event_choice("tr", event)
        human = lang.pick(self.rng, lang.TR_TEMPLATES).format(span=self.span_of(c))
        return self.sample(c, n, human, lang.sentence(self.item.events[event].caption)), c

    def dvc(self, n: int) -> tuple[dict, Choice]:
        indices = sample_frame_indices(0, self.F - 1, self.T).tolist()
        ordered = sorted(range(len(self.item.events)), key=lambda k: (self.item.events[k].start, self.item.events[k].end))
        parts = []
        for k in ordered:
            ev = self.item.events[k]
            span = sampled_span(indices, ev.start, ev.end)
            if span is None or span[1] - span[0] < 2:
                raise NoSample(f"event {k} covers fewer than three sampled frames")
            parts.append(f"{format_span(self.time(span[0]), self.time(span[1]))}, {ev.caption}.")
        c = Choice("dvc", None, 0, self.F - 1, (0, self.F - 1), indices, (0, self.T - 1))
        return self.sample(c, n, lang.pick(self.rng, lang.DVC_TEMPLATES), " ".join(parts)), c

    def stvg(self, n: int, event: int) -> tuple[dict, Choice]:
        c = self.event_choice("stvg", event)
        c.template = lang.pick(self.rng, lang.STVG_TEMPLATES)
        human = c.template.format(x=self.item.events[event].caption) + prompts.STVG_SUFFIX
        gpt = f"During the span of {self.span_of(c)}. Object bounding box: {self.track(c)}"
        return self.sample(c, n, human, gpt), c

    def svg(self, n: int) -> tuple[dict, Choice]:
        c = self.window_choice("svg")
        c.template = lang.pick(self.rng, lang.SVG_TEMPLATES)
        c.extra["span_phrase"] = lang.pick(self.rng, prompts.SPAN_PHRASES)
        phrase = self.scene.objects[c.object].phrase
        human = c.template.format(span_phrase=c.extra["span_phrase"], span=self.span_of(c), x=phrase) + prompts.SVG_SUFFIX
        return self.sample(c, n, human, f"Object bounding box: {self.track(c)}"), c

    def elc(self, n: int, event: int) -> tuple[dict, Choice]:
        c = self.event_choice("elc", event)
        first = self.item.raster.box(c.object, c.indices[c.span[0]])
        if first is None:
            raise NoSample(f"object {c.object} is hidden on the first sampled frame of its event")
        c.template = lang.pick(self.rng, lang.ELC_TEMPLATES)
        box = format_box(norm_box(first, self.scene.width, self.scene.height))
        human = c.template.format(box=box, t=format_value(self.time(c.span[0]))) + prompts.ELC_SUFFIX
        caption = self.item.events[event].caption
        gpt = f"Ends in <t{format_value(self.time(c.span[1]))}>, {caption}. Object bounding box: {self.track(c)}"
        return self.sample(c, n, human, gpt), c

    def video_caption(self, n: int) -> tuple[dict, Choice]:
        indices = sample_frame_indices(0, self.F - 1, self.T).tolist()
        c = Choice("video_caption", None, 0, self.F - 1, (0, self.F - 1), indices, (0, self.T - 1))
        text = lang.video_caption(self.scene, self.item.events, self.item.pan, self.rng)
        return self.sample(c, n, lang.pick(self.rng, lang.VIDEO_CAPTION_TEMPLATES), text), c


# ---------------------------------------------------------------- image samples


class ImageBuilder:
    """Builds the image samples of one item (REC, REG, DGC, captions)."""

    def __init__(self, item: Item, config: SynthConfig, rng: np.random.Generator):
        self.item = item
        self.scene = item.scene
        self.config = config
        self.rng = rng
        self.test = item.scene.split == "test"
        self.visible = [o.index for o in item.scene.objects if item.raster.box(o.index, 0) is not None]

    def targets(self, count: int) -> list[int]:
        """Objects the REC/REG samples are about: the target in the test split, else random visible objects."""
        if self.test:
            if 0 not in self.visible:
                raise NoSample("the test image's target is hidden")
            return [0] * count
        order = [self.visible[int(i)] for i in self.rng.permutation(len(self.visible))]
        return [order[k % len(order)] for k in range(count)]

    def box(self, obj: int) -> list[float]:
        box = self.item.raster.box(obj, 0)
        assert box is not None
        return norm_box(box, self.scene.width, self.scene.height)

    def meta(self, task: str, obj: int | None) -> dict[str, Any]:
        m: dict[str, Any] = {"task": task, "source": SOURCE, "subset": self.scene.split, "scene": self.item.name}
        if obj is not None:
            m["object"] = obj
        m.update(width=self.scene.width, height=self.scene.height)
        return m

    def sample(self, task: str, n: int, obj: int | None, human: str, gpt: str) -> dict[str, Any]:
        sid = f"{SOURCE}/{task}/{self.item.name}/{n}"
        return record(sid, "image", self.item.media, "<image>\n" + human, gpt, self.meta(task, obj))

    def rec(self, n: int, obj: int) -> dict:
        human = lang.pick(self.rng, prompts.REC_TEMPLATES).format(x=self.scene.objects[obj].phrase)
        return self.sample("rec", n, obj, human, format_box(self.box(obj)))

    def reg(self, n: int, obj: int) -> dict:
        human = lang.pick(self.rng, lang.REG_TEMPLATES).format(box=format_box(self.box(obj)))
        answer = lang.pick(self.rng, lang.REG_ANSWERS).format(d=self.scene.objects[obj].description)
        return self.sample("reg", n, obj, human, answer)

    def dgc(self, n: int) -> dict:
        shown = sorted(self.visible, key=lambda k: (self.item.raster.box(k, 0)[0], k))  # left to right
        phrases = [f"{lang.article(self.scene.objects[k].description)} {format_box(self.box(k))}" for k in shown]
        text = lang.sentence(f"The image shows {lang.list_phrases(phrases)} on {self.scene.background.description}")
        return self.sample("dgc", n, None, lang.pick(self.rng, lang.DGC_TEMPLATES), text)

    def image_caption(self, n: int) -> dict:
        shown = [self.scene.objects[k] for k in sorted(self.visible)]
        text = lang.image_caption(self.scene, shown)
        return self.sample("image_caption", n, None, lang.pick(self.rng, lang.IMAGE_CAPTION_TEMPLATES), text)
